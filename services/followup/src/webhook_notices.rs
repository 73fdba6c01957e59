//! An agency whose webhook endpoint the coordination service disabled (it failed for too long)
//! gets a supervision notice from the assigning office (trigger `webhook_disabled`): its own
//! systems no longer hear of its items, so the office asks it to fix the receiver and re-enable
//! the endpoint. Once per event: the notice and the inbox entry are one transaction.

use banli_db::Pool;
use banli_domain::Actor;
use banli_domain::ids::AgencyId;
use banli_domain::supervision::{Level, NoticeEvent, Trigger};
use banli_eventlog::inbox::Inbox;
use banli_eventlog::{Apply, Envelope, Handled, Order, Settled, Step};
use serde::Deserialize;
use time::OffsetDateTime;

use crate::store::{Store, StoreError};

/// The durable consumer's name on the bus and in the inbox.
pub const CONSUMER: &str = "followup-webhooks";
/// The event types it reads.
pub const FILTER: &str = "webhook.";

#[derive(Debug, Clone)]
pub struct WebhookConsumer {
    store: Store,
    inbox: Inbox,
    office: AgencyId,
}

/// A webhook event as this consumer reads it.
#[derive(Debug, Deserialize)]
pub struct Disabled {
    event_type: String,
    agency_id: AgencyId,
    #[serde(default)]
    payload: serde_json::Value,
}

fn body(d: &Disabled) -> String {
    let data = &d.payload["data"];
    format!(
        "贵单位的事件推送地址（webhook）{} 连续投递失败，已被自动停用，贵单位系统将收不到所办建议的变化。请于7日内修复接收端后重新启用（PATCH /v1/webhooks/{}），停用期间的事件不会丢失。原因：{}",
        data["url"].as_str().unwrap_or(""),
        data["endpoint_id"].as_str().unwrap_or(""),
        data["reason"].as_str().unwrap_or("")
    )
}

/// This consumer's inbox (in the follow-up service's tables).
pub fn inbox() -> Inbox {
    Inbox::new("followup", CONSUMER)
}

impl WebhookConsumer {
    pub fn new(store: Store, office: AgencyId) -> WebhookConsumer {
        WebhookConsumer {
            store,
            inbox: inbox(),
            office,
        }
    }

    pub fn inbox(&self) -> &Inbox {
        &self.inbox
    }
}

impl Apply for WebhookConsumer {
    type Event = Disabled;
    /// An endpoint's version counts its settings' changes too, so its events skip versions:
    /// each is taken as it comes.
    const ORDER: Order = Order::AsTheyCome;

    fn inbox(&self) -> &Inbox {
        &self.inbox
    }

    fn pool(&self) -> &Pool {
        self.store.pool()
    }

    fn decode(&self, e: &Envelope) -> Result<Disabled, String> {
        serde_json::from_slice(&e.payload)
            .map_err(|err| format!("the envelope cannot be read: {err}"))
    }

    /// The batch's notices and inbox entries in one transaction.
    async fn apply(&self, steps: Vec<Step<'_, Disabled>>) -> Result<Vec<Handled>, String> {
        let mut out = Vec::with_capacity(steps.len());
        let mut settled = Settled::default();
        let mut disabled = Vec::new();
        for step in steps {
            out.push(match settled.admit(step) {
                Err(h) => h,
                Ok((envelope, event)) => {
                    if event.event_type == "webhook.disabled" {
                        disabled.push(event);
                    }
                    settled.applied(envelope)
                }
            });
        }
        if settled.is_empty() {
            return Ok(out);
        }
        let (inbox, store, office, raised) = (
            self.inbox.clone(),
            self.store.clone(),
            self.office,
            !disabled.is_empty(),
        );
        self.store
            .db()
            .write(move |pool| async move {
                let now = OffsetDateTime::now_utc();
                let today = now
                    .to_offset(time::UtcOffset::from_hms(8, 0, 0).unwrap_or(time::UtcOffset::UTC))
                    .date();
                let actor = Actor::assigning_office(office);
                macro_rules! run {
                    ($p:expr, $module:ident) => {{
                        let mut tx = $p.begin().await?;
                        for d in &disabled {
                            let n = crate::notices::raised(office, d.agency_id, Vec::new(), Level::Notice, Trigger::WebhookDisabled, body(d), today);
                            crate::notices::$module::save(&mut tx, &store, None, &n, &[NoticeEvent::Issued(n.clone())], &actor, now).await?;
                            tracing::warn!(agency = %d.agency_id, notice = %n.id, "a disabled webhook raised a supervision notice to its agency");
                        }
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
        if raised {
            self.store.audit_written();
            self.store.timers().scheduled();
        }
        Ok(out)
    }
}
