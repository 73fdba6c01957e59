//! Supervision notices (督办通知) and the escalation ladder.

use serde::{Deserialize, Serialize};
use time::Date;

use crate::actor::{Actor, Role};
use crate::error::DomainError;
use crate::ids::*;

/// The ladder, from mildest to strongest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// 催办.
    Reminder,
    /// 督办.
    Notice,
    /// 专项督查.
    SpecialInspection,
    /// 通报.
    Circular,
    /// 现场督办: a leader supervises on site.
    OnSiteSupervision,
    /// 考核扣分.
    AssessmentDeduction,
}

impl Level {
    /// The next rung, or `None` at the top.
    pub fn next(self) -> Option<Level> {
        use Level::*;
        match self {
            Reminder => Some(Notice),
            Notice => Some(SpecialInspection),
            SpecialInspection => Some(Circular),
            Circular => Some(OnSiteSupervision),
            OnSiteSupervision => Some(AssessmentDeduction),
            AssessmentDeduction => None,
        }
    }
}

/// Why a notice was issued.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    Manual,
    Stage,
    DueSoon,
    Overdue,
    Dissatisfied,
    KeyItem,
    MetricBelowTarget,
    Escalation,
    /// The agency's webhook endpoint was disabled after failing for too long: its systems no
    /// longer hear of its items.
    WebhookDisabled,
    /// The owner of an open commitment owes the deputies word of its progress and is past the
    /// profile's grace period (闭会期间主动沟通汇报).
    ProgressOverdue,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeState {
    Issued,
    Acknowledged,
    Answered,
    /// Unanswered by its due date: a notice one level up replaced it.
    Escalated,
}

/// A supervision notice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SupervisionNotice {
    pub id: NoticeId,
    pub issuer: AgencyId,
    pub target: AgencyId,
    pub suggestions: Vec<SuggestionId>,
    pub level: Level,
    pub trigger: Trigger,
    pub body: String,
    pub issued_on: Date,
    pub response_due: Date,
    pub state: NoticeState,
    pub acknowledged_on: Option<Date>,
    pub response: Option<String>,
    pub answered_on: Option<Date>,
    /// The response came after the due date (or after the notice was escalated): recorded,
    /// not refused, and marked late.
    #[serde(default)]
    pub answered_late: bool,
    pub escalated_to: Option<NoticeId>,
    /// The documents the written response encloses (the signed response letter, evidence).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub response_documents: Vec<crate::document::DocumentRef>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "data", rename_all = "snake_case")]
pub enum NoticeEvent {
    Issued(SupervisionNotice),
    Acknowledged {
        on: Date,
    },
    Answered {
        response: String,
        on: Date,
        /// After the due date or after escalation.
        #[serde(default)]
        late: bool,
        /// The documents the response encloses.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        documents: Vec<crate::document::DocumentRef>,
    },
    Escalated {
        to: NoticeId,
        on: Date,
    },
}

published_events! {
    /// A notice event as the follow-up service publishes it (`supervision.notice_issued`, …) and
    /// the notified agency's feed carries it: the notice after the event, and what the event adds.
    pub enum PublishedNotice in "supervision" {
        NoticeIssued { notice: SupervisionNotice },
        NoticeAcknowledged { notice: SupervisionNotice, on: Date },
        NoticeAnswered { notice: SupervisionNotice, on: Date, late: bool },
        NoticeEscalated { notice: SupervisionNotice, to: NoticeId, on: Date },
    }
}

/// The schema version of [`PublishedNotice`] payloads.
pub const SCHEMA_VERSION: u32 = 1;

impl PublishedNotice {
    /// `notice` after `event`.
    pub fn of(notice: &SupervisionNotice, event: &NoticeEvent) -> PublishedNotice {
        let notice = notice.clone();
        match event {
            NoticeEvent::Issued(_) => PublishedNotice::NoticeIssued { notice },
            NoticeEvent::Acknowledged { on } => {
                PublishedNotice::NoticeAcknowledged { notice, on: *on }
            }
            NoticeEvent::Answered { on, late, .. } => PublishedNotice::NoticeAnswered {
                notice,
                on: *on,
                late: *late,
            },
            NoticeEvent::Escalated { to, on } => PublishedNotice::NoticeEscalated {
                notice,
                to: *to,
                on: *on,
            },
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoticeCommand {
    /// Issued by the assigning office to any unit, or by an agency's office to its own divisions
    /// (`target` = the issuing agency).
    Issue(SupervisionNotice),
    Acknowledge {
        on: Date,
    },
    Answer {
        response: String,
        on: Date,
        /// The documents it encloses (already in the document store, the unit's own).
        documents: Vec<crate::document::DocumentRef>,
    },
    /// Escalate an unanswered notice past its due date; `next` is the new notice's id.
    Escalate {
        next: NoticeId,
        on: Date,
    },
}

impl NoticeCommand {
    fn name(&self) -> &'static str {
        match self {
            NoticeCommand::Issue(_) => "issue a supervision notice",
            NoticeCommand::Acknowledge { .. } => "acknowledge a notice",
            NoticeCommand::Answer { .. } => "answer a notice",
            NoticeCommand::Escalate { .. } => "escalate a notice",
        }
    }
}

fn state_name(s: NoticeState) -> &'static str {
    match s {
        NoticeState::Issued => "issued",
        NoticeState::Acknowledged => "acknowledged",
        NoticeState::Answered => "answered",
        NoticeState::Escalated => "escalated",
    }
}

/// Decides a notice command. Escalation returns the old notice's event and the new notice.
pub fn decide(
    state: Option<&SupervisionNotice>,
    actor: &Actor,
    cmd: &NoticeCommand,
) -> Result<Vec<NoticeEvent>, DomainError> {
    let command = cmd.name();
    let forbidden = |reason: &str| DomainError::Forbidden {
        command,
        role: actor.role.to_string(),
        reason: reason.to_owned(),
    };
    let wrong = |s: NoticeState, hint: &str| DomainError::WrongState {
        command,
        entity: "notice",
        state: state_name(s).into(),
        hint: hint.into(),
    };
    let invalid = |field, reason: &str| DomainError::Invalid {
        command,
        field,
        reason: reason.to_owned(),
    };
    match (state, cmd) {
        (None, NoticeCommand::Issue(n)) => {
            let by_office = actor.role == Role::AssigningOffice;
            let by_own_office = actor.role == Role::AgencyAdmin && actor.agency == Some(n.target);
            if !(by_office || by_own_office) || actor.agency != Some(n.issuer) {
                return Err(forbidden(
                    "notices are issued by the assigning office, or by an agency's office to its own divisions",
                ));
            }
            if n.body.trim().is_empty() {
                return Err(invalid("body", "must say what is to be done"));
            }
            if n.response_due < n.issued_on {
                return Err(invalid("response_due", "is before the notice is issued"));
            }
            let mut n = n.clone();
            n.state = NoticeState::Issued;
            n.acknowledged_on = None;
            n.response = None;
            n.answered_on = None;
            n.escalated_to = None;
            Ok(vec![NoticeEvent::Issued(n)])
        }
        (None, _) => Err(DomainError::NotFound {
            command,
            what: "notice",
            id: "(not issued)".into(),
        }),
        (Some(n), NoticeCommand::Issue(_)) => Err(wrong(n.state, "it exists already")),
        (Some(n), NoticeCommand::Acknowledge { on }) => {
            if !actor.acts_for(n.target, &[Role::AgencyAdmin, Role::Leader, Role::Handler]) {
                return Err(forbidden("only the notified unit acknowledges"));
            }
            if n.state != NoticeState::Issued {
                return Err(wrong(n.state, "only an issued notice is acknowledged"));
            }
            Ok(vec![NoticeEvent::Acknowledged { on: *on }])
        }
        (
            Some(n),
            NoticeCommand::Answer {
                response,
                on,
                documents,
            },
        ) => {
            if !actor.acts_for(n.target, &[Role::AgencyAdmin, Role::Leader]) {
                return Err(forbidden(
                    "only the notified unit's office or leader answers",
                ));
            }
            // An escalated notice still takes its answer: recorded as late, not refused.
            if n.state == NoticeState::Answered {
                return Err(wrong(n.state, "an answered notice takes no further answer"));
            }
            if response.trim().is_empty() {
                return Err(invalid(
                    "response",
                    "must not be empty: a written response is required",
                ));
            }
            Ok(vec![NoticeEvent::Answered {
                response: response.clone(),
                on: *on,
                late: *on > n.response_due || n.state == NoticeState::Escalated,
                documents: documents.clone(),
            }])
        }
        (Some(n), NoticeCommand::Escalate { next, on }) => {
            if actor.role != Role::AssigningOffice
                && !(actor.role == Role::AgencyAdmin && actor.agency == Some(n.issuer))
            {
                return Err(forbidden("only the issuer escalates its notice"));
            }
            if !matches!(n.state, NoticeState::Issued | NoticeState::Acknowledged) {
                return Err(wrong(n.state, "only an unanswered notice escalates"));
            }
            if *on <= n.response_due {
                return Err(DomainError::Precondition {
                    command,
                    reason: format!(
                        "the response is due on {}; escalate only after that",
                        n.response_due
                    ),
                });
            }
            if n.level.next().is_none() {
                return Err(DomainError::LimitReached {
                    command,
                    reason: "the notice is at the top of the ladder (assessment deduction)".into(),
                });
            }
            Ok(vec![NoticeEvent::Escalated { to: *next, on: *on }])
        }
    }
}

impl SupervisionNotice {
    pub fn apply(&mut self, e: &NoticeEvent) {
        match e {
            NoticeEvent::Issued(n) => *self = n.clone(),
            NoticeEvent::Acknowledged { on } => {
                self.state = NoticeState::Acknowledged;
                self.acknowledged_on = Some(*on);
            }
            NoticeEvent::Answered {
                response,
                on,
                late,
                documents,
            } => {
                // An escalated notice stays escalated: the one above it replaced it.
                if self.state != NoticeState::Escalated {
                    self.state = NoticeState::Answered;
                }
                self.response = Some(response.clone());
                self.answered_on = Some(*on);
                self.answered_late = *late;
                self.response_documents = documents.clone();
            }
            NoticeEvent::Escalated { to, .. } => {
                self.state = NoticeState::Escalated;
                self.escalated_to = Some(*to);
            }
        }
    }

    /// The notice one level up that replaces an escalated one, due after the same span.
    pub fn escalated(&self, id: NoticeId, on: Date) -> Option<SupervisionNotice> {
        let span = self.response_due - self.issued_on;
        Some(SupervisionNotice {
            id,
            level: self.level.next()?,
            trigger: Trigger::Escalation,
            body: format!(
                "escalated: no response to the notice of {} by {}. {}",
                self.issued_on, self.response_due, self.body
            ),
            issued_on: on,
            response_due: on + span,
            state: NoticeState::Issued,
            acknowledged_on: None,
            response: None,
            answered_on: None,
            answered_late: false,
            escalated_to: None,
            ..self.clone()
        })
    }
}
