//! Takes the accountability events from the event log into the audit log (until the follow-up
//! service appends its own records): assignments, adjustment and extension decisions, replies,
//! class changes, feedback, commitments created, progressed and converted, co-handling opinions
//! and consultations — each with the SHA-256 of every document it attaches.
//!
//! Each event becomes one record whose source id is the event id, so a redelivered event is
//! appended once. Personal data in an event (names of signers, handlers, leaders, contacts) is
//! moved out of the leaf into the erasable side table. Envelopes that cannot be read are
//! parked and reported, never dropped silently.

use banli_audit::Record;
use banli_eventlog::inbox::Inbox;
use banli_eventlog::{Apply, Envelope, Handled, Order, Step};
use serde_json::Value;

use crate::log::AuditLog;

/// The durable consumer's name.
pub const CONSUMER: &str = "audit";
/// The event types it reads (all of them; only the accountability ones are recorded).
pub const FILTER: &str = "suggestion.";

/// The suggestion events that decide accountability, and their record types.
pub const ACCOUNTABILITY: &[(&str, &str)] = &[
    ("suggestion.assigned", "assignment"),
    ("suggestion.adjustment_decided", "adjustment_decision"),
    ("suggestion.extension_decided", "extension_decision"),
    ("suggestion.reply_issued", "reply_issued"),
    ("suggestion.reply_reviewed", "reply_review"),
    // 内部审批: who in the unit signed a reply off, step by step, and who returned it.
    ("suggestion.reply_submitted_for_approval", "reply_draft"),
    ("suggestion.approval_step_decided", "approval_step"),
    // 公开答复: what was published (the redacted text) and when, and a withdrawal's reason.
    ("suggestion.reply_published", "publication"),
    ("suggestion.publication_withdrawn", "publication_withdrawal"),
    ("suggestion.class_changed", "class_change"),
    ("suggestion.feedback_recorded", "feedback"),
    ("suggestion.commitment_created", "commitment_created"),
    ("suggestion.commitment_progressed", "commitment_progressed"),
    ("suggestion.commitment_converted", "commitment_converted"),
    ("suggestion.closure_requested", "closure_request"),
    ("suggestion.closure_decided", "closure_decision"),
    ("suggestion.closure_rated", "closure_rating"),
    // The acts that attach formal documents: their hashes prove which letter was sent.
    ("suggestion.opinion_submitted", "opinion"),
    ("suggestion.consultation_recorded", "consultation"),
];

/// The suggestion events not recorded: the steps between the accountable decisions (their
/// effects show in the records above, in the follow-up service's metrics and in the feeds).
/// Every suggestion event type is in exactly one of the two lists (a test checks it), so a new
/// event cannot be left out of the audit log unnoticed.
pub const NOT_RECORDED: &[&str] = &[
    "suggestion.submitted",
    "suggestion.review_started",
    "suggestion.reviewed",
    "suggestion.withdrawn",
    "suggestion.signed_for",
    "suggestion.adjustment_requested",
    "suggestion.dispatched",
    "suggestion.communication_recorded",
    "suggestion.extension_requested",
    "suggestion.opinion_acknowledged",
    "suggestion.opinion_waived",
    "suggestion.replied",
    "suggestion.evaluated",
    "suggestion.re_handling_opened",
    "suggestion.escalated",
    "suggestion.escalation_resolved",
    "suggestion.follow_up_started",
    "suggestion.closed",
    "suggestion.coordination_refused",
    "suggestion.deadlines_recomputed",
];

/// The record an envelope gives, `Ok(None)` when its type is not recorded.
pub fn record_of(envelope: &[u8]) -> Result<Option<Record>, String> {
    let v: Value = serde_json::from_slice(envelope)
        .map_err(|e| format!("the envelope cannot be read: {e}"))?;
    let field = |name: &str| {
        v.get(name)
            .ok_or_else(|| format!("the envelope has no `{name}`"))
    };
    let event_type = field("event_type")?
        .as_str()
        .ok_or("`event_type` is not a string")?;
    let Some((_, record_type)) = ACCOUNTABILITY.iter().find(|(t, _)| *t == event_type) else {
        return Ok(None);
    };
    let event_id = field("event_id")?
        .as_str()
        .ok_or("`event_id` is not a string")?;
    let subject = field("aggregate_id")?
        .as_str()
        .ok_or("`aggregate_id` is not a string")?;
    let occurred_at = v
        .get("occurred_at")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let mut data = field("payload")?
        .get("data")
        .cloned()
        .unwrap_or(Value::Null);
    let personal = banli_audit::split_personal(&mut data);
    Ok(Some(Record {
        record_type: (*record_type).to_owned(),
        source_id: event_id.to_owned(),
        subject: Some(subject.to_owned()),
        occurred_at: occurred_at.to_owned(),
        actor: v.get("actor").cloned().unwrap_or(Value::Null),
        data,
        personal,
    }))
}

/// The consumer.
#[derive(Debug, Clone)]
pub struct EventConsumer {
    log: AuditLog,
    inbox: Inbox,
}

impl EventConsumer {
    pub fn new(log: AuditLog) -> EventConsumer {
        EventConsumer {
            log,
            inbox: Inbox::new("audit", CONSUMER),
        }
    }

    pub fn inbox(&self) -> &Inbox {
        &self.inbox
    }

    /// Creates the tables for parked events.
    pub async fn migrate(&self) -> Result<(), sqlx::Error> {
        self.inbox.migrate(self.log.store().pool()).await
    }
}

/// The runner parks what cannot be read; the audit log's own key on the source id is this
/// consumer's record of what it handled (an appended record is never appended again), so its
/// events are taken as they come and only parkings go into its inbox.
impl Apply for EventConsumer {
    type Event = Option<Record>;
    const ORDER: Order = Order::AsTheyCome;

    fn inbox(&self) -> &Inbox {
        &self.inbox
    }

    fn pool(&self) -> &banli_db::Pool {
        self.log.store().pool()
    }

    fn decode(&self, e: &Envelope) -> Result<Option<Record>, String> {
        record_of(&e.payload)
    }

    async fn apply(&self, steps: Vec<Step<'_, Option<Record>>>) -> Result<Vec<Handled>, String> {
        let mut out = Vec::with_capacity(steps.len());
        let mut records = Vec::new();
        let mut positions = Vec::new();
        for (i, step) in steps.into_iter().enumerate() {
            out.push(match step {
                Step::Skip(h) => h,
                // No position moves: this inbox keeps no order, only what it parked.
                Step::Park {
                    envelope, reason, ..
                } => {
                    self.inbox
                        .settle_on(self.log.store().db(), envelope, Some(&reason), false)
                        .await
                        .map_err(|e| e.to_string())?;
                    Handled::Parked
                }
                Step::Apply { event, .. } => {
                    if let Some(r) = event {
                        records.push(r);
                        positions.push(i);
                    }
                    Handled::Applied
                }
            });
        }
        let appended = self.log.append(records).await.map_err(|e| e.to_string())?;
        for (a, i) in appended.into_iter().zip(positions) {
            if a.duplicate {
                out[i] = Handled::Duplicate;
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_suggestion_event_is_recorded_or_named_as_not_recorded() {
        let types = banli_domain::suggestion::SuggestionEvent::event_types();
        let recorded = |t: &str| ACCOUNTABILITY.iter().any(|(a, _)| *a == t);
        let not = |t: &str| NOT_RECORDED.contains(&t);
        for t in &types {
            assert!(
                recorded(t) != not(t),
                "{t}: add it to ACCOUNTABILITY or NOT_RECORDED (exactly one)"
            );
        }
        for t in ACCOUNTABILITY
            .iter()
            .map(|(t, _)| *t)
            .chain(NOT_RECORDED.iter().copied())
        {
            assert!(types.iter().any(|x| x == t), "{t} is no suggestion event");
        }
    }

    #[test]
    fn a_reply_letter_s_hash_stays_in_the_record_and_its_file_name_is_erasable() {
        let sha = "9f".repeat(32);
        let envelope = json!({
            "event_id": "0192f0c4-7d2e-7c1a-9b3e-000000000002",
            "event_type": "suggestion.reply_issued",
            "aggregate_id": "0192f0c4-7d2e-7c1a-9b3e-0000000000aa",
            "occurred_at": "2026-05-02T01:00:00Z",
            "actor": {"role": "agency", "agency": "a-1", "deputy": null},
            "payload": {"type": "reply_issued", "data": {"reply": {"class": "A",
                "letter": {"sha256": sha, "media_type": "application/pdf", "size": 1234, "name": "给李四代表的答复函.pdf"}}}}
        });
        let r = record_of(envelope.to_string().as_bytes())
            .expect("readable")
            .expect("recorded");
        assert_eq!(
            r.data,
            json!({"reply": {"class": "A", "letter": {"sha256": sha, "media_type": "application/pdf", "size": 1234}}})
        );
        assert_eq!(
            r.personal,
            Some(json!({"/reply/letter/name": "给李四代表的答复函.pdf"}))
        );
        // An opinion and a consultation are recorded too (their letters and minutes).
        for (t, record) in [
            ("suggestion.opinion_submitted", "opinion"),
            ("suggestion.consultation_recorded", "consultation"),
        ] {
            let e = json!({"event_id": "e", "event_type": t, "aggregate_id": "s", "payload": {"data": {"x": {"documents": [{"sha256": sha}], "attendees": ["王五"], "minutes": "m"}}}});
            let r = record_of(e.to_string().as_bytes())
                .expect("readable")
                .expect("recorded");
            assert_eq!(r.record_type, record);
            assert_eq!(r.data, json!({"x": {"documents": [{"sha256": sha}]}}));
        }
    }

    #[test]
    fn accountability_events_become_records_without_personal_data() {
        let envelope = json!({
            "event_id": "0192f0c4-7d2e-7c1a-9b3e-000000000001",
            "schema_version": 1,
            "event_type": "suggestion.reply_issued",
            "aggregate_type": "suggestion",
            "aggregate_id": "0192f0c4-7d2e-7c1a-9b3e-0000000000aa",
            "aggregate_version": 9,
            "occurred_at": "2026-05-02T01:00:00Z",
            "actor": {"role": "agency", "agency": "a-1", "deputy": null},
            "payload": {"type": "reply_issued", "data": {"reply": {"class": "A", "signer": {"name": "李四", "position": "principal"}}}}
        });
        let r = record_of(envelope.to_string().as_bytes())
            .expect("readable")
            .expect("recorded");
        assert_eq!(r.record_type, "reply_issued");
        assert_eq!(r.source_id, "0192f0c4-7d2e-7c1a-9b3e-000000000001");
        assert_eq!(
            r.data,
            json!({"reply": {"class": "A", "signer": {"position": "principal"}}})
        );
        assert_eq!(r.personal, Some(json!({"/reply/signer/name": "李四"})));
        let other = json!({"event_type": "suggestion.review_started"});
        assert_eq!(record_of(other.to_string().as_bytes()), Ok(None));
        assert!(record_of(b"not json").is_err());
        assert!(
            record_of(
                json!({"event_type": "suggestion.assigned"})
                    .to_string()
                    .as_bytes()
            )
            .is_err()
        );
    }
}
