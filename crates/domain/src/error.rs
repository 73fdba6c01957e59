//! The one error type of the domain. Every refusal names the command and, where a state is
//! involved, the state it was refused in.

/// Why a command was refused. [`DomainError::code`] is stable and is what clients match on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// The command is not allowed in the current state.
    #[error("cannot {command} while the {entity} is {state}{}", paren(.hint))]
    WrongState {
        command: &'static str,
        entity: &'static str,
        state: String,
        hint: String,
    },
    /// The actor may not do this.
    #[error("{role} may not {command}: {reason}")]
    Forbidden {
        command: &'static str,
        role: String,
        reason: String,
    },
    /// A referenced thing does not exist in this aggregate.
    #[error("cannot {command}: {what} {id} not found")]
    NotFound {
        command: &'static str,
        what: &'static str,
        id: String,
    },
    /// A field of the command is missing or impossible.
    #[error("cannot {command}: `{field}` {reason}")]
    Invalid {
        command: &'static str,
        field: &'static str,
        reason: String,
    },
    /// A precondition of the rules is not met yet (the reply gate, pending opinions, …).
    #[error("cannot {command} yet: {reason}")]
    Precondition {
        command: &'static str,
        reason: String,
    },
    /// A time window has closed; `trace` explains the window.
    #[error("cannot {command}: the window closed on {closed_on} ({trace})")]
    WindowClosed {
        command: &'static str,
        closed_on: String,
        trace: String,
    },
    /// A profile limit is reached (extensions, re-handling rounds, the reply cap).
    #[error("cannot {command}: {reason}")]
    LimitReached {
        command: &'static str,
        reason: String,
    },
    /// A deadline could not be computed (for example outside the calendar data).
    #[error("cannot {command}: {reason}")]
    Deadline {
        command: &'static str,
        reason: String,
    },
}

fn paren(h: &str) -> String {
    if h.is_empty() {
        String::new()
    } else {
        format!(" ({h})")
    }
}

impl DomainError {
    /// A stable, machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            DomainError::WrongState { .. } => "wrong_state",
            DomainError::Forbidden { .. } => "forbidden",
            DomainError::NotFound { .. } => "not_found",
            DomainError::Invalid { .. } => "invalid_argument",
            DomainError::Precondition { .. } => "failed_precondition",
            DomainError::WindowClosed { .. } => "window_closed",
            DomainError::LimitReached { .. } => "limit_reached",
            DomainError::Deadline { .. } => "deadline_unavailable",
        }
    }
}
