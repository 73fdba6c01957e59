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

/// The event type name on the wire: `<aggregate>.<variant in snake_case>` — the same name serde
/// gives the payload's `type` (`rename_all = "snake_case"`). The one place a type name is made.
pub fn event_type(aggregate: &str, variant: &str) -> String {
    let mut out = String::with_capacity(aggregate.len() + variant.len() + 8);
    out.push_str(aggregate);
    out.push('.');
    for (i, c) in variant.chars().enumerate() {
        if c.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Reads an envelope and its payload as `E`, for a service that reads schema versions up to
/// `reads`; `Err` is the reason the event is parked. `reader` names the service in the reason
/// ("upgrade the {reader} and replay").
pub fn read<E: serde::de::DeserializeOwned>(
    envelope: &[u8],
    reads: u32,
    reader: &str,
) -> Result<(WireEvent, E), String> {
    let wire: WireEvent = serde_json::from_slice(envelope)
        .map_err(|err| format!("the envelope cannot be read: {err}"))?;
    if wire.schema_version > reads {
        return Err(format!(
            "schema version {} is newer than this service reads ({reads}); upgrade the {reader} and replay",
            wire.schema_version
        ));
    }
    let event = E::deserialize(&wire.payload)
        .map_err(|err| format!("unknown or unreadable event {}: {err}", wire.event_type))?;
    Ok((wire, event))
}

/// [`read`] for a suggestion event, with the suggestion it belongs to: what every consumer of
/// the suggestions service's events decodes.
pub fn read_suggestion(
    envelope: &[u8],
    reader: &str,
) -> Result<
    (
        crate::ids::SuggestionId,
        WireEvent,
        crate::suggestion::SuggestionEvent,
    ),
    String,
> {
    let (wire, event) = read(envelope, crate::suggestion::SCHEMA_VERSION, reader)?;
    let id = wire
        .aggregate_id
        .parse::<Uuid>()
        .map(crate::ids::SuggestionId)
        .map_err(|_| "the aggregate id is not a suggestion id".to_owned())?;
    Ok((id, wire, event))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_types_are_snake_case_under_their_aggregate() {
        assert_eq!(
            event_type("suggestion", "ReHandlingOpened"),
            "suggestion.re_handling_opened"
        );
        assert_eq!(
            event_type("coordination", "SignedFor"),
            "coordination.signed_for"
        );
    }

    #[test]
    fn read_says_why_an_envelope_is_parked() {
        let envelope = |schema: u32, payload: &str| {
            format!(
                r#"{{"event_id":"0192f0c4-7d2e-7c1a-9b3e-000000000001","schema_version":{schema},"event_type":"x.y","aggregate_id":"a","aggregate_version":1,"actor":{{"role":"assigning_office","agency":null,"deputy":null}},"payload":{payload}}}"#
            )
        };
        let (wire, n): (WireEvent, u32) =
            read(envelope(1, "7").as_bytes(), 1, "test service").expect("readable");
        assert_eq!((wire.aggregate_version, n), (1, 7));
        let newer =
            read::<u32>(envelope(2, "7").as_bytes(), 1, "test service").expect_err("parked");
        assert!(
            newer.contains("schema version 2 is newer")
                && newer.contains("upgrade the test service"),
            "{newer}"
        );
        let unknown =
            read::<u32>(envelope(1, "\"x\"").as_bytes(), 1, "test service").expect_err("parked");
        assert!(
            unknown.starts_with("unknown or unreadable event x.y"),
            "{unknown}"
        );
        let garbage = read::<u32>(b"not json", 1, "test service").expect_err("parked");
        assert!(
            garbage.starts_with("the envelope cannot be read"),
            "{garbage}"
        );
    }
}
