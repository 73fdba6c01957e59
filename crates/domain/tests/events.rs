//! The event contract: every suggestion, coordination, directory, supervision and audit log
//! event type has a golden
//! example in `docs/events/<type>.v<schema version>.json` — the envelope as it travels on the
//! bus; agencies' feeds and webhooks carry its `event_id`, `event_type`, `aggregate_*`,
//! `occurred_at` and `payload` — and a line in `docs/events.md`. Each example is read into the
//! Rust type that writes it and written back: a renamed, removed or added field, a type name that
//! is not the one the code derives, or a new event without its example fails here.

use std::collections::BTreeMap;
use std::path::PathBuf;

use banli_domain::Actor;
use banli_domain::audit_log::{self, AuditLogEvent};
use banli_domain::coordination::{self, CoordinationEvent};
use banli_domain::directory::published;
use banli_domain::suggestion::{self, SuggestionEvent};
use banli_domain::supervision::{self, PublishedNotice};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

fn docs() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs")
}

/// The golden examples by file name.
fn golden() -> BTreeMap<String, Value> {
    let dir = docs().join("events");
    let mut out = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).expect("docs/events") {
        let path = entry.expect("entry").path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .expect("name")
            .to_owned();
        assert!(name.ends_with(".json"), "{name}: only examples belong here");
        let text = std::fs::read_to_string(&path).expect("readable");
        let v: Value =
            serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name} is not JSON: {e}"));
        out.insert(name, v);
    }
    out
}

/// Reads `value` as `T` and writes it back: the same JSON, or the reason it differs.
fn round_trip<T: Serialize + DeserializeOwned>(value: &Value) -> Result<T, String> {
    let typed: T = serde_json::from_value(value.clone()).map_err(|e| e.to_string())?;
    let back = serde_json::to_value(&typed).map_err(|e| e.to_string())?;
    if &back != value {
        return Err(format!("written back as {back}"));
    }
    Ok(typed)
}

/// Every event type the code writes, with its current schema version.
fn every_type() -> Vec<(String, u32)> {
    let mut types: Vec<(String, u32)> = SuggestionEvent::event_types()
        .into_iter()
        .map(|t| (t, suggestion::SCHEMA_VERSION))
        .collect();
    types.extend(
        CoordinationEvent::event_types()
            .into_iter()
            .map(|t| (t, coordination::SCHEMA_VERSION)),
    );
    types.extend(
        PublishedNotice::event_types()
            .into_iter()
            .map(|t| (t, supervision::SCHEMA_VERSION)),
    );
    types.extend(
        AuditLogEvent::event_types()
            .into_iter()
            .map(|t| (t, audit_log::SCHEMA_VERSION)),
    );
    for t in [
        published::AGENCY_REGISTERED,
        published::KEY_ISSUED,
        published::KEY_REVOKED,
    ] {
        types.push((t.to_owned(), published::SCHEMA_VERSION));
    }
    types
}

#[test]
fn every_golden_example_reads_into_its_type_and_writes_back_exactly() {
    let mut failures = Vec::new();
    for (name, e) in golden() {
        let ty = e["event_type"].as_str().unwrap_or_default().to_owned();
        let version = e["schema_version"].as_u64().unwrap_or_default();
        if name != format!("{ty}.v{version}.json") {
            failures.push(format!("{name} holds {ty} version {version}"));
        }
        for field in [
            "event_id",
            "event_type",
            "schema_version",
            "aggregate_type",
            "aggregate_id",
            "aggregate_version",
            "occurred_at",
            "actor",
            "payload",
        ] {
            if e.get(field).is_none() {
                failures.push(format!("{name} has no {field}"));
            }
        }
        if let Err(why) = round_trip::<Actor>(&e["actor"]) {
            failures.push(format!("{name}: actor: {why}"));
        }
        let payload = &e["payload"];
        let checked: Result<(String, u32), String> = match e["aggregate_type"].as_str() {
            Some("suggestion") => round_trip::<SuggestionEvent>(payload)
                .map(|ev| (ev.event_type(), suggestion::SCHEMA_VERSION)),
            Some("coordination") => round_trip::<CoordinationEvent>(payload)
                .map(|ev| (ev.event_type(), coordination::SCHEMA_VERSION)),
            Some("supervision") => round_trip::<PublishedNotice>(payload)
                .map(|ev| (ev.event_type(), supervision::SCHEMA_VERSION)),
            Some(audit_log::AGGREGATE_TYPE) => round_trip::<AuditLogEvent>(payload)
                .map(|ev| (ev.event_type(), audit_log::SCHEMA_VERSION)),
            Some("directory") if ty == published::AGENCY_REGISTERED => {
                round_trip::<published::Agency>(payload)
                    .map(|_| (ty.clone(), published::SCHEMA_VERSION))
            }
            Some("directory") => round_trip::<published::Key>(payload)
                .map(|_| (ty.clone(), published::SCHEMA_VERSION)),
            other => Err(format!("no type is known for the aggregate {other:?}")),
        };
        match checked {
            Ok((derived, current)) => {
                if derived != ty {
                    failures.push(format!("{name}: its payload is a {derived}, not a {ty}"));
                }
                if u64::from(current) != version {
                    failures.push(format!(
                        "{name}: the code writes version {current}; keep the old example and add one for the new version"
                    ));
                }
            }
            Err(why) => failures.push(format!("{name}: payload: {why}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_event_type_has_a_golden_example_and_a_line_in_the_docs() {
    let golden = golden();
    let listing = std::fs::read_to_string(docs().join("events.md")).expect("docs/events.md");
    let mut missing = Vec::new();
    for (ty, version) in every_type() {
        let file = format!("{ty}.v{version}.json");
        if !golden.contains_key(&file) {
            missing.push(format!("docs/events/{file}"));
        }
        if !listing.contains(&format!("`{ty}`")) {
            missing.push(format!("`{ty}` in docs/events.md"));
        }
        if !listing.contains(&format!("events/{file}")) {
            missing.push(format!("a link to events/{file} in docs/events.md"));
        }
    }
    let known: Vec<String> = every_type()
        .into_iter()
        .map(|(t, v)| format!("{t}.v{v}.json"))
        .collect();
    for name in golden.keys() {
        // An example of an older version stays (consumers may still meet it), but it must be
        // of a type the code knows.
        let ty = name.rsplit_once(".v").map(|(t, _)| t).unwrap_or_default();
        if !known.iter().any(|k| k.starts_with(&format!("{ty}.v"))) {
            missing.push(format!("{name} is of no event type the code writes"));
        }
    }
    assert!(missing.is_empty(), "missing:\n{}", missing.join("\n"));
}
