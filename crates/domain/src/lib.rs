//! The domain of banli: handling deputies' suggestions (人大代表建议办理), as plain Rust.
//!
//! Owns: the entities of `docs/domain.md`, both lifecycles (the suggestion's and each
//! assignment's) as `decide(state, command) -> Result<Vec<Event>, DomainError>` plus
//! `apply(state, &event)`, every guard, the rule profiles, supervision notices, stage plans and
//! the metric formulas.
//!
//! Must never: do I/O, read a clock, or depend on a transport or a database. Dates come in with
//! the commands; rules and the calendar come in as [`Rules`].

pub mod actor;
pub mod coordination;
pub mod directory;
pub mod error;
pub mod followup;
pub mod ids;
pub mod ledger;
pub mod metrics;
pub mod profile;
pub mod stage_plan;
pub mod suggestion;
pub mod supervision;
pub mod targets;
pub mod wire;

pub use actor::{Actor, Role};
pub use error::DomainError;
pub use profile::{ClassScheme, RuleProfile};

use banli_calendar::Calendar;

/// What a decision needs besides the state and the command.
#[derive(Debug, Clone, Copy)]
pub struct Rules<'a> {
    pub profile: &'a RuleProfile,
    pub calendar: &'a Calendar,
}
