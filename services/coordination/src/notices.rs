//! Supervision notices (督办通知) in the agencies' feeds: the follow-up service publishes each
//! notice event (issued, acknowledged, answered, escalated); this consumer writes it into the
//! feed of the notified agency, with its inbox entry in one transaction, once per event.

use banli_db::Pool;
use banli_domain::ids::AgencyId;
use banli_domain::wire::WireEvent;
use banli_eventlog::inbox::{Admission, Inbox};
use banli_eventlog::runner::GAP_PATIENCE;
use banli_eventlog::{Handled, Handler, Incoming};

use crate::feed::FeedEntry;
use crate::store::{Store, StoreError};

/// The durable consumer's name on the bus and in the inbox.
pub const CONSUMER: &str = "coordination-notices";
/// The event types it reads.
pub const FILTER: &str = "supervision.";

#[derive(Debug, Clone)]
pub struct NoticeConsumer {
    store: Store,
    inbox: Inbox,
}

/// The feed row of a notice event, for the notified agency; `Err` says why it cannot be read.
fn entry(payload: &[u8]) -> Result<FeedEntry, String> {
    let w: WireEvent =
        serde_json::from_slice(payload).map_err(|e| format!("the envelope cannot be read: {e}"))?;
    let target = w.payload["data"]["notice"]["target"]
        .as_str()
        .and_then(|t| t.parse().ok())
        .map(AgencyId)
        .ok_or_else(|| format!("{} names no notified agency", w.event_type))?;
    Ok(FeedEntry {
        agency_id: target,
        event_id: w.event_id,
        event_type: w.event_type,
        aggregate_type: "supervision".to_owned(),
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

    pub fn inbox(&self) -> &Inbox {
        &self.inbox
    }

    /// Creates the inbox tables.
    pub async fn migrate(&self) -> Result<(), sqlx::Error> {
        self.inbox.migrate(self.store.pool()).await
    }

    async fn one(&self, incoming: &Incoming) -> Result<Handled, StoreError> {
        let (inbox, e, attempt) = (
            self.inbox.clone(),
            incoming.envelope.clone(),
            incoming.attempt,
        );
        let read = entry(&e.payload);
        let out = self
            .store
            .db()
            .write(move |pool| async move {
                macro_rules! run {
                    ($p:expr, $module:ident) => {{
                        let mut tx = $p.begin().await?;
                        let out = match banli_eventlog::inbox::$module::admit(&inbox, &mut tx, &e).await? {
                            Admission::Duplicate => Handled::Duplicate,
                            Admission::Gap { .. } if attempt < GAP_PATIENCE => Handled::Deferred,
                            Admission::Gap { expected } => {
                                let reason = format!("version {expected} of this notice never arrived; later versions wait here");
                                banli_eventlog::inbox::$module::park(&inbox, &mut tx, &e, &reason, false).await?;
                                Handled::Parked
                            }
                            Admission::NotAnEvent => {
                                banli_eventlog::inbox::$module::park(&inbox, &mut tx, &e, "a message without an event id", false).await?;
                                Handled::Parked
                            }
                            Admission::Apply => match &read {
                                Ok(entry) => {
                                    crate::feed::$module::insert(&mut tx, std::slice::from_ref(entry)).await?;
                                    banli_eventlog::inbox::$module::record(&inbox, &mut tx, &e, Handled::Applied, true).await?;
                                    Handled::Applied
                                }
                                Err(reason) => {
                                    banli_eventlog::inbox::$module::park(&inbox, &mut tx, &e, reason, true).await?;
                                    Handled::Parked
                                }
                            },
                        };
                        tx.commit().await?;
                        out
                    }};
                }
                let out = match &pool {
                    Pool::Sqlite(p) => run!(p, sqlite),
                    Pool::Postgres(p) => run!(p, postgres),
                };
                Ok::<_, StoreError>(out)
            })
            .await?;
        if out == Handled::Applied {
            self.store.feed_written();
        }
        Ok(out)
    }
}

impl Handler for NoticeConsumer {
    async fn handle(&self, batch: &[Incoming]) -> Result<Vec<Handled>, String> {
        let mut out = Vec::with_capacity(batch.len());
        for incoming in batch {
            out.push(self.one(incoming).await.map_err(|e| e.to_string())?);
        }
        Ok(out)
    }
}
