//! The suggestions service's consumer of coordination events: the mirrored commands (sign-for,
//! adjustments, opinions, waivers) are applied to the suggestion, each with its inbox entry in
//! the same transaction; the rest are recorded as seen. Unknown types, newer schema versions and
//! unreadable payloads are parked and reported.

use banli_domain::coordination::{self, CoordinationEvent};
use banli_domain::ids::SuggestionId;
use banli_domain::wire::WireEvent;
use banli_eventlog::inbox::Inbox;
use banli_eventlog::{Apply, Envelope, Handled, Step};
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

    /// Applies one admitted event, in its own transaction on the write path.
    async fn one(&self, e: &Envelope, read: Read) -> Result<Handled, String> {
        let (wire, event) = read;
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

/// A coordination event as this service reads it.
type Read = (WireEvent, CoordinationEvent);

/// One suggestion's steps of a batch, with their places in it.
type Run<'a> = Vec<(usize, Step<'a, Read>)>;

impl Apply for CoordinationConsumer {
    type Event = Read;

    fn inbox(&self) -> &Inbox {
        &self.inbox
    }

    fn pool(&self) -> &banli_db::Pool {
        self.app.store().pool()
    }

    fn decode(&self, e: &Envelope) -> Result<Read, String> {
        banli_domain::wire::read(
            &e.payload,
            coordination::SCHEMA_VERSION,
            "suggestions service",
        )
    }

    /// Each suggestion's events in their order; different suggestions' at once, so that their
    /// appends share the writer's group commit instead of queueing one by one.
    async fn apply(&self, steps: Vec<Step<'_, Read>>) -> Result<Vec<Handled>, String> {
        let mut out = vec![Handled::Deferred; steps.len()];
        let mut groups: Vec<(&str, Run<'_>)> = Vec::new();
        for (i, step) in steps.into_iter().enumerate() {
            let e = match &step {
                Step::Skip(h) => {
                    out[i] = *h;
                    continue;
                }
                Step::Park { envelope, .. } | Step::Apply { envelope, .. } => *envelope,
            };
            let key = e.aggregate_id.as_str();
            match groups.iter_mut().find(|(k, _)| *k == key) {
                Some((_, run)) => run.push((i, step)),
                None => groups.push((key, vec![(i, step)])),
            }
        }
        let runs = groups.into_iter().map(|(_, run)| async move {
            let mut done = Vec::with_capacity(run.len());
            for (i, step) in run {
                let h = match step {
                    Step::Apply { envelope, event } => self.one(envelope, event).await?,
                    Step::Park {
                        envelope,
                        reason,
                        advance,
                    } => self.park(envelope, &reason, advance).await?,
                    Step::Skip(h) => h,
                };
                done.push((i, h));
            }
            Ok::<_, String>(done)
        });
        for run in futures_util::future::try_join_all(runs).await? {
            for (i, h) in run {
                out[i] = h;
            }
        }
        Ok(out)
    }
}
