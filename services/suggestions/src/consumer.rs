//! The suggestions service's consumer of coordination events: the mirrored commands (sign-for,
//! adjustments, opinions, waivers) are applied to the suggestion, each with its inbox entry in
//! the same transaction; the rest are recorded as seen. Unknown types, newer schema versions and
//! unreadable payloads are parked and reported.

use banli_domain::coordination::{self, CoordinationEvent};
use banli_domain::ids::SuggestionId;
use banli_domain::wire::WireEvent;
use banli_eventlog::inbox::{Admission, Inbox};
use banli_eventlog::runner::GAP_PATIENCE;
use banli_eventlog::{Envelope, Handled, Handler, Incoming};
use uuid::Uuid;

use crate::app::{App, RemoteOutcome};
use crate::store::InboxEntry;

/// The durable consumer's name on the bus and in the inbox.
pub const CONSUMER: &str = "suggestions";
/// The event types this service consumes.
pub const FILTER: &str = "coordination.";

/// Applies coordination events to suggestions.
#[derive(Debug, Clone)]
pub struct CoordinationConsumer {
    app: App,
    inbox: Inbox,
}

impl CoordinationConsumer {
    pub fn new(app: App) -> CoordinationConsumer {
        CoordinationConsumer {
            app,
            inbox: Inbox::new("suggestions", CONSUMER),
        }
    }

    pub fn inbox(&self) -> &Inbox {
        &self.inbox
    }

    /// Creates the inbox tables.
    pub async fn migrate(&self) -> Result<(), sqlx::Error> {
        self.inbox.migrate(self.app.store().pool()).await
    }

    async fn park(&self, e: &Envelope, reason: &str, advance: bool) -> Result<Handled, String> {
        self.inbox
            .settle_on(self.app.store().db(), e, Some(reason), advance)
            .await
            .map_err(|err| err.to_string())?;
        Ok(Handled::Parked)
    }

    async fn one(&self, incoming: &Incoming) -> Result<Handled, String> {
        let e = &incoming.envelope;
        let pool = self.app.store().pool();
        match self
            .inbox
            .admit_on(pool, e)
            .await
            .map_err(|err| err.to_string())?
        {
            Admission::Duplicate => return Ok(Handled::Duplicate),
            Admission::Gap { .. } if incoming.attempt < GAP_PATIENCE => {
                return Ok(Handled::Deferred);
            }
            Admission::Gap { expected } => {
                let reason = format!(
                    "version {expected} of this aggregate never arrived; later versions wait here"
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
        if wire.schema_version > coordination::SCHEMA_VERSION {
            let reason = format!(
                "schema version {} is newer than this service reads ({}); upgrade the suggestions service and replay",
                wire.schema_version,
                coordination::SCHEMA_VERSION
            );
            return self.park(e, &reason, true).await;
        }
        let event: CoordinationEvent = match serde_json::from_value(wire.payload) {
            Ok(ev) => ev,
            Err(err) => {
                let reason = format!("unknown or unreadable event {}: {err}", wire.event_type);
                return self.park(e, &reason, true).await;
            }
        };
        let Some(kind) = event.mirrored() else {
            // Countersignatures, disagreements and copies change nothing here.
            self.inbox
                .settle_on(self.app.store().db(), e, None, true)
                .await
                .map_err(|err| err.to_string())?;
            return Ok(Handled::Applied);
        };
        let Ok(id) = wire.aggregate_id.parse::<Uuid>().map(SuggestionId) else {
            return self
                .park(e, "the aggregate id is not a suggestion id", true)
                .await;
        };
        let source = InboxEntry {
            inbox: &self.inbox,
            envelope: e,
        };
        match self
            .app
            .apply_remote(&wire.actor, id, kind, source)
            .await
            .map_err(|err| err.to_string())?
        {
            RemoteOutcome::Applied => Ok(Handled::Applied),
            RemoteOutcome::Refused(reason) => {
                tracing::warn!(event_id = %e.event_id, event_type = %e.event_type, %reason, "a coordination command was refused by the suggestion; the refusal is recorded on it");
                Ok(Handled::Applied)
            }
            RemoteOutcome::NoChange => {
                self.inbox
                    .settle_on(self.app.store().db(), e, None, true)
                    .await
                    .map_err(|err| err.to_string())?;
                Ok(Handled::Applied)
            }
            RemoteOutcome::Duplicate => Ok(Handled::Duplicate),
            RemoteOutcome::UnknownSuggestion => {
                self.park(e, &format!("suggestion {id} does not exist here"), true)
                    .await
            }
        }
    }
}

impl Handler for CoordinationConsumer {
    /// Each suggestion's events in their order; different suggestions' at once, so that their
    /// appends share the writer's group commit instead of queueing one by one.
    async fn handle(&self, batch: &[Incoming]) -> Result<Vec<Handled>, String> {
        let mut groups: Vec<(&str, Vec<usize>)> = Vec::new();
        for (i, incoming) in batch.iter().enumerate() {
            let key = incoming.envelope.aggregate_id.as_str();
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, idx)) => idx.push(i),
                None => groups.push((key, vec![i])),
            }
        }
        let runs = groups.into_iter().map(|(_, idx)| async move {
            let mut done = Vec::with_capacity(idx.len());
            for i in idx {
                done.push((i, self.one(&batch[i]).await?));
            }
            Ok::<_, String>(done)
        });
        let mut out = vec![Handled::Deferred; batch.len()];
        for run in futures_util::future::try_join_all(runs).await? {
            for (i, h) in run {
                out[i] = h;
            }
        }
        Ok(out)
    }
}
