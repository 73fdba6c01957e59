//! The coordination service's consumer of suggestion events: it keeps the replica of each
//! suggestion and the task rows, settles its own pending commands when the suggestions service
//! answers them, and sends the co-handlers their copies of the lead's reply — each effect with
//! its inbox entry in one transaction. Unknown types, newer schema versions and unreadable
//! payloads are parked and reported.

use banli_domain::coordination::{CoordinationCase, copies_for, feed_parties};
use banli_domain::ids::{AgencyId, SuggestionId};
use banli_domain::suggestion::{Suggestion, SuggestionEvent};
use banli_domain::wire::WireEvent;
use banli_eventlog::inbox::Inbox;
use banli_eventlog::{Apply, Envelope, Handled, Step};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::feed::FeedEntry;
use crate::store::{BatchItem, CaseRecord, NewOwnEvent, ReplicaChange, Status, Store, StoreError};

/// The durable consumer's name on the bus and in the inbox.
pub const CONSUMER: &str = "coordination";
/// The event types this service consumes.
pub const FILTER: &str = "suggestion.";

/// Applies suggestion events to the coordination store.
#[derive(Debug, Clone)]
pub struct SuggestionConsumer {
    store: Store,
    inbox: Inbox,
}

impl SuggestionConsumer {
    pub fn new(store: Store) -> SuggestionConsumer {
        SuggestionConsumer {
            store,
            inbox: Inbox::new("coordination", CONSUMER),
        }
    }

    pub fn inbox(&self) -> &Inbox {
        &self.inbox
    }

    /// Creates the inbox tables.
    pub async fn migrate(&self) -> Result<(), sqlx::Error> {
        self.inbox.migrate(self.store.pool()).await
    }

    /// What an admitted event changes, against the state as this batch has left it.
    async fn decide(
        &self,
        read: Read,
        records: &mut Records,
    ) -> Result<Result<ReplicaChange, String>, StoreError> {
        let (id, wire, event) = read;
        let record = match records.get(&id) {
            Some(r) => r.clone(),
            // A submission starts a case: nothing to load.
            None if matches!(event, SuggestionEvent::Submitted(_)) => None,
            None => self.store.load(id).await?,
        };
        Ok(match change(id, record.as_ref(), &wire, event) {
            Some((change, after)) => {
                records.insert(id, Some(after));
                Ok(change)
            }
            None => Err(format!("suggestion {id} has no earlier events here")),
        })
    }
}

/// A suggestion event as this service reads it.
type Read = (SuggestionId, WireEvent, SuggestionEvent);

/// Each case as the batch has left it so far, for the events after.
type Records = std::collections::HashMap<SuggestionId, Option<CaseRecord>>;

/// What one suggestion event changes here, and the record after it; `None` when the suggestion
/// has no earlier events here.
fn change(
    id: SuggestionId,
    record: Option<&CaseRecord>,
    wire: &WireEvent,
    event: SuggestionEvent,
) -> Option<(ReplicaChange, CaseRecord)> {
    if let SuggestionEvent::Submitted(first) = &event {
        let replica = Suggestion::new(id, first);
        let after = CaseRecord {
            replica: replica.clone(),
            replica_version: wire.aggregate_version,
            case: CoordinationCase::default(),
            pending: Vec::new(),
        };
        return Some((
            ReplicaChange {
                suggestion_id: id,
                expected_replica_version: None,
                replica,
                replica_version: wire.aggregate_version,
                event,
                settles: None,
                case_version: 0,
                case: CoordinationCase::default(),
                caused: Vec::new(),
                feed: Vec::new(),
                tasks_before: None,
            },
            after,
        ));
    }
    let record = record?;
    let mut replica = record.replica.clone();
    replica.apply(&event);
    let mut parties = feed_parties(Some(&record.replica), &replica);
    // A co-handling opinion goes only to the feeds of the agencies that may read it.
    if let SuggestionEvent::OpinionSubmitted(o) = &event {
        let readers = replica.opinion_readers(o.opinion.assignment_id);
        parties.retain(|a| readers.contains(a));
    }
    // A drafted reply and its approval steps (内部审批) go only to the drafting unit's feed.
    let internal = match &event {
        SuggestionEvent::ReplySubmittedForApproval(e) => Some(e.assignment_id),
        SuggestionEvent::ApprovalStepDecided(e) => Some(e.assignment_id),
        _ => None,
    };
    if let Some(id) = internal {
        let unit = replica.assignment(id).map(|a| a.agency);
        parties.retain(|a| Some(*a) == unit);
    }
    let feed = feed_entries(wire, &parties);
    let settles = wire.causation_id.and_then(|c| {
        record
            .pending
            .iter()
            .find(|p| p.event_id == c)
            .map(|_| match &event {
                SuggestionEvent::CoordinationRefused(r) => {
                    (c, Status::Refused, Some(r.reason.clone()))
                }
                _ => (c, Status::Confirmed, None),
            })
    });
    let copies = copies_for(&replica, &record.case, &event);
    let mut case = record.case.clone();
    for c in &copies {
        case.apply(c);
    }
    let now = OffsetDateTime::now_utc();
    let caused: Vec<NewOwnEvent> = copies
        .into_iter()
        .map(|c| NewOwnEvent {
            event_id: Uuid::now_v7(),
            event: c,
            actor: wire.actor.clone(),
            effects: Vec::new(),
            occurred_at: now,
        })
        .collect();
    let mut pending = record.pending.clone();
    if let Some((c, _, _)) = &settles {
        pending.retain(|p| p.event_id != *c);
    }
    let after = CaseRecord {
        replica: replica.clone(),
        replica_version: wire.aggregate_version,
        case: case.clone(),
        pending,
    };
    Some((
        ReplicaChange {
            suggestion_id: id,
            expected_replica_version: Some(record.replica_version),
            replica,
            replica_version: wire.aggregate_version,
            event,
            settles,
            case_version: record.case.version,
            case,
            caused,
            feed,
            tasks_before: Some(crate::store::tasks_of(&record.replica)),
        },
        after,
    ))
}

/// The event's row in each of `agencies`' feeds.
fn feed_entries(wire: &WireEvent, agencies: &[AgencyId]) -> Vec<FeedEntry> {
    if agencies.is_empty() {
        return Vec::new();
    }
    let occurred_at = wire.occurred_at.clone().unwrap_or_else(|| {
        OffsetDateTime::now_utc()
            .format(&time::format_description::well_known::Rfc3339)
            .unwrap_or_default()
    });
    let payload = wire.payload.to_string();
    agencies
        .iter()
        .map(|a| FeedEntry {
            agency_id: *a,
            event_id: wire.event_id,
            event_type: wire.event_type.clone(),
            aggregate_type: "suggestion".to_owned(),
            aggregate_id: wire.aggregate_id.clone(),
            aggregate_version: wire.aggregate_version,
            occurred_at: occurred_at.clone(),
            payload: payload.clone(),
        })
        .collect()
}

impl Apply for SuggestionConsumer {
    type Event = Read;

    fn inbox(&self) -> &Inbox {
        &self.inbox
    }

    fn pool(&self) -> &banli_db::Pool {
        self.store.pool()
    }

    fn decode(&self, e: &Envelope) -> Result<Read, String> {
        banli_domain::wire::read_suggestion(&e.payload, "coordination service")
    }

    /// Decides every event of the batch in order (later events see what earlier ones changed),
    /// then writes all effects, parkings and inbox entries in one transaction.
    async fn apply(&self, steps: Vec<Step<'_, Read>>) -> Result<Vec<Handled>, String> {
        // Every case the batch applies to, in two queries instead of two per case.
        let mut ids: Vec<SuggestionId> = steps
            .iter()
            .filter_map(|s| match s {
                Step::Apply { event, .. } => Some(event.0),
                _ => None,
            })
            .collect();
        ids.sort();
        ids.dedup();
        let mut records = Records::default();
        if !ids.is_empty() {
            let mut loaded = self
                .store
                .load_many(&ids)
                .await
                .map_err(|err| err.to_string())?;
            for id in ids {
                records.insert(id, loaded.remove(&id));
            }
        }
        let mut out = Vec::with_capacity(steps.len());
        let mut items = Vec::new();
        for step in steps {
            match step {
                Step::Skip(h) => out.push(h),
                Step::Park {
                    envelope,
                    reason,
                    advance,
                } => {
                    items.push(BatchItem::Park(envelope.clone(), reason, advance));
                    out.push(Handled::Parked);
                }
                Step::Apply { envelope, event } => {
                    match self
                        .decide(event, &mut records)
                        .await
                        .map_err(|err| err.to_string())?
                    {
                        Ok(change) => {
                            items.push(BatchItem::Apply(envelope.clone(), Box::new(change)));
                            out.push(Handled::Applied);
                        }
                        Err(reason) => {
                            items.push(BatchItem::Park(envelope.clone(), reason, false));
                            out.push(Handled::Parked);
                        }
                    }
                }
            }
        }
        if items.is_empty() {
            return Ok(out);
        }
        match self.store.apply_batch(&self.inbox, items).await {
            Ok(()) => Ok(out),
            // Another consumer committed some of these first: deliver again, skip those.
            Err(StoreError::Duplicate) => Err("part of the batch was applied concurrently".into()),
            Err(err) => Err(err.to_string()),
        }
    }
}
