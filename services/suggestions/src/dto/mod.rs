//! The API's request and response bodies, shared by REST (JSON) and gRPC (converted at the edge).
//!
//! Requests refuse unknown fields. Domain enums are read and written in `snake_case` (`lead`,
//! `in_handling`, …); their allowed values are listed in each field's schema.
//!
//! `views` (what a suggestion shows), `directory` (sessions, deputies, agencies, divisions, keys,
//! the calendar), `commands` (the bodies of the suggestion commands), `doc` (enumerations for
//! the OpenAPI document).

use banli_calendar::{Deadline, DurationSpec, format_date};
use banli_domain::directory::{Agency, Deputy, Division, Session};
use banli_domain::ids::*;
use banli_domain::suggestion::*;
use serde::{Deserialize, Serialize};
use time::Date;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::store::{ApiKey, SuggestionSummary};

mod commands;
mod directory;
pub mod doc;
mod views;

pub use commands::*;
pub use directory::*;
pub use views::*;

/// Ids in paths and bodies are plain UUIDs; these wrap them into domain ids.
pub fn sid(u: Uuid) -> SuggestionId {
    SuggestionId(u)
}

pub fn date_text(d: Date) -> String {
    format_date(d)
}

/// A domain enum's `snake_case` name, as serde writes it.
pub(crate) fn name<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}
