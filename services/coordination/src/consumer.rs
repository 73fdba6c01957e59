//! The coordination service's consumer of suggestion events: it keeps the replica of each
//! suggestion and the task rows, settles its own pending commands when the suggestions service
//! answers them, and sends the co-handlers their copies of the lead's reply — each effect with
//! its inbox entry in one transaction. Unknown types, newer schema versions and unreadable
//! payloads are parked and reported.

use banli_domain::coordination::{CoordinationCase, copies_for, feed_parties};
use banli_domain::ids::{AgencyId, SuggestionId};
use banli_domain::suggestion::{Suggestion, SuggestionEvent};
use banli_domain::wire::WireEvent;
use banli_eventlog::inbox::{Admission, Inbox, Seen};
use banli_eventlog::runner::GAP_PATIENCE;
use banli_eventlog::{Handled, Handler, Incoming};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::feed::FeedEntry;
use crate::store::{BatchItem, CaseRecord, NewOwnEvent, ReplicaChange, Status, Store, StoreError};

/// The durable consumer's name on the bus and in the inbox.
pub const CONSUMER: &str = "coordination";
/// The event types this service consumes.
pub const FILTER: &str = "suggestion.";
/// The schema version of suggestion payloads this service reads.
pub const SUGGESTION_SCHEMA_VERSION: u32 = 1;

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

    /// Decides what to do with one event, against the state as this batch has left it.
    async fn decide(
        &self,
        incoming: &Incoming,
        batch: &mut BatchState,
    ) -> Result<Step, StoreError> {
        let e = &incoming.envelope;
        let admission = batch.seen.admit(e);
        let park = |reason: String, advance: bool| Step::Park(reason, advance);
        let wire = match admission {
            Admission::Duplicate => return Ok(Step::Skip(Handled::Duplicate)),
            Admission::Gap { .. } if incoming.attempt < GAP_PATIENCE => {
                return Ok(Step::Skip(Handled::Deferred));
            }
            Admission::Gap { expected } => {
                return Ok(park(
                    format!(
                        "version {expected} of this suggestion never arrived; later versions wait here"
                    ),
                    false,
                ));
            }
            Admission::NotAnEvent => {
                return Ok(park("a message without an event id".into(), false));
            }
            Admission::Apply => match serde_json::from_slice::<WireEvent>(&e.payload) {
                Ok(w) => w,
                Err(err) => return Ok(park(format!("the envelope cannot be read: {err}"), true)),
            },
        };
        if wire.schema_version > SUGGESTION_SCHEMA_VERSION {
            return Ok(park(
                format!(
                    "schema version {} is newer than this service reads ({SUGGESTION_SCHEMA_VERSION}); upgrade the coordination service and replay",
                    wire.schema_version
                ),
                true,
            ));
        }
        let event: SuggestionEvent = match serde_json::from_value(wire.payload.clone()) {
            Ok(ev) => ev,
            Err(err) => {
                return Ok(park(
                    format!("unknown or unreadable event {}: {err}", wire.event_type),
                    true,
                ));
            }
        };
        let Ok(id) = wire.aggregate_id.parse::<Uuid>().map(SuggestionId) else {
            return Ok(park("the aggregate id is not a suggestion id".into(), true));
        };
        let record = match batch.records.get(&id) {
            Some(r) => r.clone(),
            // A submission starts a case: nothing to load.
            None if matches!(event, SuggestionEvent::Submitted(_)) => None,
            None => self.store.load(id).await?,
        };
        match change(id, record.as_ref(), &wire, event) {
            Some((change, after)) => {
                batch.records.insert(id, Some(after));
                Ok(Step::Apply(Box::new(change)))
            }
            None => Ok(park(
                format!("suggestion {id} has no earlier events here"),
                false,
            )),
        }
    }
}

/// What a batch has decided so far, for the events after.
struct BatchState {
    seen: Seen,
    records: std::collections::HashMap<SuggestionId, Option<CaseRecord>>,
}

enum Step {
    Skip(Handled),
    Park(String, bool),
    Apply(Box<ReplicaChange>),
}

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
    let feed = feed_entries(wire, &feed_parties(Some(&record.replica), &replica));
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

impl Handler for SuggestionConsumer {
    /// Decides every event of the batch in order (later events see what earlier ones changed),
    /// then writes all effects, parkings and inbox entries in one transaction.
    async fn handle(&self, batch: &[Incoming]) -> Result<Vec<Handled>, String> {
        let envelopes: Vec<&banli_eventlog::Envelope> = batch.iter().map(|i| &i.envelope).collect();
        let mut state = BatchState {
            seen: self
                .inbox
                .seen_on(self.store.pool(), &envelopes)
                .await
                .map_err(|err| err.to_string())?,
            records: Default::default(),
        };
        // Every case the batch names, in two queries instead of two per case.
        let mut ids: Vec<SuggestionId> = batch
            .iter()
            .filter_map(|i| {
                i.envelope
                    .aggregate_id
                    .parse::<Uuid>()
                    .ok()
                    .map(SuggestionId)
            })
            .collect();
        ids.sort();
        ids.dedup();
        let mut loaded = self
            .store
            .load_many(&ids)
            .await
            .map_err(|err| err.to_string())?;
        for id in ids {
            state.records.insert(id, loaded.remove(&id));
        }
        let mut out = Vec::with_capacity(batch.len());
        let mut items = Vec::new();
        for incoming in batch {
            let e = &incoming.envelope;
            let step = self
                .decide(incoming, &mut state)
                .await
                .map_err(|err| err.to_string())?;
            match step {
                Step::Skip(h) => out.push(h),
                Step::Park(reason, advance) => {
                    state.seen.handled(e, advance);
                    tracing::warn!(event_id = %e.event_id, event_type = %e.event_type, %reason, "event parked; list them with GET /v1/coordination/parked-events");
                    items.push(BatchItem::Park(e.clone(), reason, advance));
                    out.push(Handled::Parked);
                }
                Step::Apply(change) => {
                    state.seen.handled(e, true);
                    items.push(BatchItem::Apply(e.clone(), change));
                    out.push(Handled::Applied);
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
