//! Supervision notices (督办通知) in the agencies' feeds: the follow-up service publishes each
//! notice event (issued, acknowledged, answered, escalated); this consumer writes it into the
//! feed of the notified agency, with its inbox entry in one transaction, once per event.
//!
//! A second instance of the same consumer puts the audit log's checkpoints (`audit.checkpoint`,
//! also published by the follow-up service) into every agency's feed: one row, read by every
//! agency (see [`crate::feed::EVERY_AGENCY`]).

use banli_db::Pool;
use banli_domain::ids::AgencyId;
use banli_domain::wire::WireEvent;
use banli_eventlog::inbox::Inbox;
use banli_eventlog::{Apply, Envelope, Handled, Settled, Step};

use crate::feed::FeedEntry;
use crate::store::{Store, StoreError};

/// The durable consumer's name on the bus and in the inbox.
pub const CONSUMER: &str = "coordination-notices";
/// The event types it reads.
pub const FILTER: &str = "supervision.";
/// The instance for the audit log's checkpoints, and the event types it reads.
pub const CHECKPOINT_CONSUMER: &str = "coordination-checkpoints";
pub const CHECKPOINT_FILTER: &str = "audit.";

#[derive(Debug, Clone)]
pub struct NoticeConsumer {
    store: Store,
    inbox: Inbox,
}

/// The feed row of a notice event (for the notified agency) or of an audit checkpoint (for every
/// agency); `Err` says why it cannot be read.
fn entry(payload: &[u8]) -> Result<FeedEntry, String> {
    let w: WireEvent =
        serde_json::from_slice(payload).map_err(|e| format!("the envelope cannot be read: {e}"))?;
    let (agency_id, aggregate_type) = if w.event_type.starts_with(FILTER) {
        let target = w.payload["data"]["notice"]["target"]
            .as_str()
            .and_then(|t| t.parse().ok())
            .map(AgencyId)
            .ok_or_else(|| format!("{} names no notified agency", w.event_type))?;
        (target, "supervision")
    } else if w.event_type == "audit.checkpoint" {
        if w.payload["data"]["note"].as_str().is_none() {
            return Err("audit.checkpoint carries no signed note".to_owned());
        }
        (crate::feed::EVERY_AGENCY, "audit_log")
    } else {
        return Err(format!(
            "{} is not an event of the agencies' feeds",
            w.event_type
        ));
    };
    Ok(FeedEntry {
        agency_id,
        event_id: w.event_id,
        event_type: w.event_type,
        aggregate_type: aggregate_type.to_owned(),
        aggregate_id: w.aggregate_id,
        aggregate_version: w.aggregate_version,
        occurred_at: w.occurred_at.unwrap_or_default(),
        payload: w.payload.to_string(),
    })
}

impl NoticeConsumer {
    pub fn new(store: Store) -> NoticeConsumer {
        NoticeConsumer {
            store,
            inbox: Inbox::new("coordination", CONSUMER),
        }
    }

    /// The instance for the audit log's checkpoints ([`CHECKPOINT_CONSUMER`], its own inbox).
    pub fn checkpoints(store: Store) -> NoticeConsumer {
        NoticeConsumer {
            store,
            inbox: Inbox::new("coordination", CHECKPOINT_CONSUMER),
        }
    }

    pub fn inbox(&self) -> &Inbox {
        &self.inbox
    }

    /// Creates the inbox tables.
    pub async fn migrate(&self) -> Result<(), sqlx::Error> {
        self.inbox.migrate(self.store.pool()).await
    }
}

impl Apply for NoticeConsumer {
    type Event = FeedEntry;

    fn inbox(&self) -> &Inbox {
        &self.inbox
    }

    fn pool(&self) -> &Pool {
        self.store.pool()
    }

    fn decode(&self, e: &Envelope) -> Result<FeedEntry, String> {
        entry(&e.payload)
    }

    /// The batch's feed rows and inbox entries in one transaction.
    async fn apply(&self, steps: Vec<Step<'_, FeedEntry>>) -> Result<Vec<Handled>, String> {
        let mut out = Vec::with_capacity(steps.len());
        let mut settled = Settled::default();
        let mut rows = Vec::new();
        for step in steps {
            out.push(match settled.admit(step) {
                Err(h) => h,
                Ok((envelope, event)) => {
                    rows.push(event);
                    settled.applied(envelope)
                }
            });
        }
        if settled.is_empty() {
            return Ok(out);
        }
        let (inbox, fed) = (self.inbox.clone(), !rows.is_empty());
        self.store
            .db()
            .write(move |pool| async move {
                macro_rules! run {
                    ($p:expr, $module:ident) => {{
                        let mut tx = $p.begin().await?;
                        crate::store::feed::$module::insert(&mut tx, &rows).await?;
                        banli_eventlog::inbox::$module::settle(&inbox, &mut tx, &settled).await?;
                        tx.commit().await?;
                    }};
                }
                match &pool {
                    Pool::Sqlite(p) => run!(p, sqlite),
                    Pool::Postgres(p) => run!(p, postgres),
                }
                Ok::<_, StoreError>(())
            })
            .await
            .map_err(|e| e.to_string())?;
        if fed {
            self.store.feed_written();
        }
        Ok(out)
    }
}
