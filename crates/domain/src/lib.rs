//! The domain of banli: handling deputies' suggestions (人大代表建议办理), as plain Rust.
//!
//! Owns: the entities of `docs/domain.md`, both lifecycles (the suggestion's and each
//! assignment's) as `decide(state, command) -> Result<Vec<Event>, DomainError>` plus
//! `apply(state, &event)`, every guard, the rule profiles, supervision notices, stage plans and
//! the metric formulas.
//!
//! Must never: do I/O, read a clock, or depend on a transport or a database. Dates come in with
//! the commands; rules and the calendar come in as [`Rules`].

/// Declares an event enum published as `<aggregate>.<snake_case variant>`: the enum (payload
/// `{"type": …, "data": {…}}`), its variants' names, and the event type derived from them in
/// one place ([`wire::event_type`]). The module using it imports serde's derives.
macro_rules! published_events {
    (
        $(#[$meta:meta])*
        pub enum $enum:ident in $aggregate:literal {
            $($(#[$doc:meta])* $name:ident { $($(#[$fmeta:meta])* $field:ident : $ty:ty),* $(,)? },)*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(tag = "type", content = "data", rename_all = "snake_case")]
        pub enum $enum { $($(#[$doc])* $name { $($(#[$fmeta])* $field: $ty),* },)* }

        impl $enum {
            /// Every variant's name (`CamelCase`), in declaration order.
            pub const VARIANTS: &'static [&'static str] = &[$(stringify!($name)),*];

            /// The variant's name (`CamelCase`); on the wire it is [`Self::event_type`].
            pub fn type_name(&self) -> &'static str {
                match self { $(Self::$name { .. } => stringify!($name)),* }
            }

            #[doc = concat!("The event type on the wire: `", $aggregate, ".<snake_case name>`.")]
            pub fn event_type(&self) -> String {
                crate::wire::event_type($aggregate, self.type_name())
            }

            #[doc = concat!("Every `", $aggregate, ".` event type on the wire.")]
            pub fn event_types() -> Vec<String> {
                Self::VARIANTS
                    .iter()
                    .map(|v| crate::wire::event_type($aggregate, v))
                    .collect()
            }
        }
    };
}

/// Declares a command enum (struct-like variants only) with `VARIANTS` and `variant()`, so that
/// a test can check every variant is reachable (from both transports, or named as internal)
/// instead of trusting a hand-kept list. Exported for the services' transport-level commands.
#[macro_export]
macro_rules! command_enum {
    (
        $(#[$meta:meta])*
        pub enum $enum:ident {
            $($(#[$doc:meta])* $name:ident { $($(#[$fmeta:meta])* $field:ident : $ty:ty),* $(,)? },)*
        }
    ) => {
        $(#[$meta])*
        pub enum $enum { $($(#[$doc])* $name { $($(#[$fmeta])* $field: $ty),* },)* }

        impl $enum {
            /// Every variant's name (`CamelCase`), in declaration order.
            pub const VARIANTS: &'static [&'static str] = &[$(stringify!($name)),*];

            /// The variant's name (`CamelCase`), one of [`Self::VARIANTS`].
            pub fn variant(&self) -> &'static str {
                match self { $(Self::$name { .. } => stringify!($name)),* }
            }
        }
    };
}

pub mod actor;
pub mod audit_log;
pub mod coordination;
pub mod directory;
pub mod document;
pub mod error;
pub mod followup;
pub mod ids;
pub mod ledger;
pub mod metrics;
pub mod profile;
pub mod publication;
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
