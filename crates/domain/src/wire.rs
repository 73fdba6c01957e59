//! The envelope every service writes into its outbox, as JSON: what a consumer reads.

use serde::Deserialize;
use uuid::Uuid;

use crate::actor::Actor;

/// An event as another service published it. `payload` is read by the consumer according to
/// `event_type` and `schema_version` (absent in the oldest envelopes: version 1).
#[derive(Debug, Clone, Deserialize)]
pub struct WireEvent {
    pub event_id: Uuid,
    #[serde(default = "first_version")]
    pub schema_version: u32,
    /// The event of another service this one answers, if any.
    #[serde(default)]
    pub causation_id: Option<Uuid>,
    pub event_type: String,
    pub aggregate_id: String,
    pub aggregate_version: u64,
    pub actor: Actor,
    /// RFC 3339, as the publishing service wrote it.
    #[serde(default)]
    pub occurred_at: Option<String>,
    pub payload: serde_json::Value,
}

fn first_version() -> u32 {
    1
}
