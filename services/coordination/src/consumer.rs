//! The coordination service's consumer of suggestion events: it keeps the replica of each
//! suggestion and the task rows, settles its own pending commands when the suggestions service
//! answers them, and sends the co-handlers their copies of the lead's reply — each effect with
//! its inbox entry in one transaction. Unknown types, newer schema versions and unreadable
//! payloads are parked and reported.

use banli_domain::coordination::{CoordinationCase, copies_for};
use banli_domain::ids::SuggestionId;
use banli_domain::suggestion::{Suggestion, SuggestionEvent};
use banli_domain::wire::WireEvent;
use banli_eventlog::inbox::{Admission, Inbox};
use banli_eventlog::runner::GAP_PATIENCE;
use banli_eventlog::{Envelope, Handled, Handler, Incoming};
use time::OffsetDateTime;
use uuid::Uuid;

use crate::store::{NewOwnEvent, ReplicaChange, Status, Store, StoreError};

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

    async fn park(&self, e: &Envelope, reason: &str, advance: bool) -> Result<Handled, String> {
        self.inbox
            .settle_on(self.store.pool(), e, Some(reason), advance)
            .await
            .map_err(|err| err.to_string())?;
        Ok(Handled::Parked)
    }

    async fn one(&self, incoming: &Incoming) -> Result<Handled, String> {
        let e = &incoming.envelope;
        match self
            .inbox
            .admit_on(self.store.pool(), e)
            .await
            .map_err(|err| err.to_string())?
        {
            Admission::Duplicate => return Ok(Handled::Duplicate),
            Admission::Gap { .. } if incoming.attempt < GAP_PATIENCE => {
                return Ok(Handled::Deferred);
            }
            Admission::Gap { expected } => {
                let reason = format!(
                    "version {expected} of this suggestion never arrived; later versions wait here"
                );
                return self.park(e, &reason, false).await;
            }
            Admission::NotAnEvent => {
                return self.park(e, "a message without an event id", false).await;
            }
            Admission::Apply => {}
        }
        let wire: WireEvent = match serde_json::from_slice(&e.payload) {
            Ok(w) => w,
            Err(err) => {
                return self
                    .park(e, &format!("the envelope cannot be read: {err}"), true)
                    .await;
            }
        };
        if wire.schema_version > SUGGESTION_SCHEMA_VERSION {
            let reason = format!(
                "schema version {} is newer than this service reads ({SUGGESTION_SCHEMA_VERSION}); upgrade the coordination service and replay",
                wire.schema_version
            );
            return self.park(e, &reason, true).await;
        }
        let event: SuggestionEvent = match serde_json::from_value(wire.payload.clone()) {
            Ok(ev) => ev,
            Err(err) => {
                let reason = format!("unknown or unreadable event {}: {err}", wire.event_type);
                return self.park(e, &reason, true).await;
            }
        };
        let Ok(id) = wire.aggregate_id.parse::<Uuid>().map(SuggestionId) else {
            return self
                .park(e, "the aggregate id is not a suggestion id", true)
                .await;
        };
        let change = match self.change(id, &wire, event).await {
            Ok(Some(c)) => c,
            Ok(None) => {
                return self
                    .park(
                        e,
                        &format!("suggestion {id} has no earlier events here"),
                        false,
                    )
                    .await;
            }
            Err(err) => return Err(err.to_string()),
        };
        match self.store.apply_replica(&self.inbox, e, change).await {
            Ok(()) => Ok(Handled::Applied),
            Err(StoreError::Duplicate) => Ok(Handled::Duplicate),
            Err(err) => Err(err.to_string()),
        }
    }

    /// What one suggestion event changes here.
    async fn change(
        &self,
        id: SuggestionId,
        wire: &WireEvent,
        event: SuggestionEvent,
    ) -> Result<Option<ReplicaChange>, StoreError> {
        if let SuggestionEvent::Submitted(first) = &event {
            return Ok(Some(ReplicaChange {
                suggestion_id: id,
                expected_replica_version: None,
                replica: Suggestion::new(id, first),
                replica_version: wire.aggregate_version,
                event,
                settles: None,
                case_version: 0,
                case: CoordinationCase::default(),
                caused: Vec::new(),
            }));
        }
        let Some(record) = self.store.load(id).await? else {
            return Ok(None);
        };
        let mut replica = record.replica.clone();
        replica.apply(&event);
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
        let caused = copies
            .into_iter()
            .map(|c| NewOwnEvent {
                event_id: Uuid::now_v7(),
                event: c,
                actor: wire.actor.clone(),
                effects: Vec::new(),
                occurred_at: now,
            })
            .collect();
        Ok(Some(ReplicaChange {
            suggestion_id: id,
            expected_replica_version: Some(record.replica_version),
            replica,
            replica_version: wire.aggregate_version,
            event,
            settles,
            case_version: record.case.version,
            case,
            caused,
        }))
    }
}

impl Handler for SuggestionConsumer {
    async fn handle(&self, batch: &[Incoming]) -> Result<Vec<Handled>, String> {
        let mut out = Vec::with_capacity(batch.len());
        for incoming in batch {
            out.push(self.one(incoming).await?);
        }
        Ok(out)
    }
}
