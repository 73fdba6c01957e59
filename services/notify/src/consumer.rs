//! Consumes the suggestions service's events: the ones that concern the deputies (assigned,
//! an extension approved, the reply, re-handling, progress on commitments, the closure
//! confirmed) become a message in each deputy's inbox and a delivery per channel they chose;
//! the ones that ask something of a unit or decide on its work (assigned, an extension decided,
//! a deputy's rating, re-handling, a closure request decided) a message to the unit's contact —
//! written with the event's inbox entry in one transaction, so a message is queued once however
//! often the event is delivered. Other events only move the position.

use std::collections::HashMap;

use banli_db::Pool;
use banli_domain::ids::{AgencyId, SuggestionId};
use banli_domain::suggestion::SuggestionEvent;
use banli_domain::wire::WireEvent;
use banli_eventlog::inbox::Inbox;
use banli_eventlog::{Apply, Envelope, Handled, Settled, Step};

use crate::messages::{Subject, messages, unit_messages};
use crate::store::{
    Channel, NewDelivery, NewNotification, Preferences, Recipient, Store, StoreError,
};

/// The durable consumer's name on the bus and in the inbox.
pub const CONSUMER: &str = "notify";
/// The event types it reads.
pub const FILTER: &str = "suggestion.";

/// Agencies' names (id, name), for the wording; without it, ids.
pub type AgencyNames = std::sync::Arc<
    dyn Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = Vec<(String, String)>> + Send>>
        + Send
        + Sync,
>;

/// Which channels this platform can send on (configured), besides the inbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Available {
    pub email: bool,
    pub sms: bool,
}

#[derive(Clone)]
pub struct EventConsumer {
    store: Store,
    inbox: Inbox,
    available: Available,
    names: Option<AgencyNames>,
    /// The names last read, and when: read again once older than [`NAMES_FRESH`] or when an
    /// agency an event assigns is not among them.
    cache: std::sync::Arc<std::sync::Mutex<Option<(std::time::Instant, Names)>>>,
}

type Names = std::sync::Arc<HashMap<AgencyId, String>>;

/// How long agencies' names read for the wording are used before they are read again (a
/// renamed agency is named anew after this).
pub const NAMES_FRESH: std::time::Duration = std::time::Duration::from_secs(60);

impl std::fmt::Debug for EventConsumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventConsumer").finish_non_exhaustive()
    }
}

type Read = (SuggestionId, WireEvent, SuggestionEvent);

impl EventConsumer {
    pub fn new(store: Store, available: Available, names: Option<AgencyNames>) -> EventConsumer {
        EventConsumer {
            store,
            inbox: Inbox::new("notify", CONSUMER),
            available,
            names,
            cache: Default::default(),
        }
    }

    /// Agencies' names for a batch that assigns `assigned` (and may name any unit already
    /// assigned): the cached ones while fresh and complete.
    async fn names(&self, assigned: &[AgencyId]) -> Names {
        let Some(f) = &self.names else {
            return Names::default();
        };
        if let Ok(cache) = self.cache.lock()
            && let Some((at, names)) = cache.as_ref()
            && at.elapsed() < NAMES_FRESH
            && assigned.iter().all(|a| names.contains_key(a))
        {
            return names.clone();
        }
        let names: Names = std::sync::Arc::new(
            f().await
                .into_iter()
                .filter_map(|(id, name)| Some((AgencyId(id.parse().ok()?), name)))
                .collect(),
        );
        if let Ok(mut cache) = self.cache.lock() {
            *cache = Some((std::time::Instant::now(), names.clone()));
        }
        names
    }

    pub fn inbox(&self) -> &Inbox {
        &self.inbox
    }
}

/// The deliveries of one message to a recipient with `prefs`: each channel chosen, pending when
/// there is an address and the platform sends on it, otherwise undeliverable with the reason.
pub fn deliveries(prefs: &Preferences, available: Available) -> Vec<NewDelivery> {
    let mut out = Vec::new();
    for (channel, address, configured, what) in [
        (
            Channel::Email,
            &prefs.email,
            available.email,
            "e-mail address",
        ),
        (Channel::Sms, &prefs.phone, available.sms, "mobile number"),
    ] {
        if !prefs.channels.contains(&channel) {
            continue;
        }
        let address = address
            .as_ref()
            .map(|a| a.trim().to_owned())
            .filter(|a| !a.is_empty());
        let (state, error) = match (&address, configured) {
            (None, _) => (
                "undeliverable",
                Some(format!("the recipient has no {what} in their preferences")),
            ),
            (Some(_), false) => (
                "undeliverable",
                Some(format!(
                    "this platform has no {} configured",
                    match channel {
                        Channel::Email => "SMTP server (notify.smtp_url)",
                        _ => "SMS gateway (notify.sms_url)",
                    }
                )),
            ),
            (Some(_), true) => ("pending", None),
        };
        out.push(NewDelivery {
            channel,
            state,
            address,
            last_error: error,
            quiet_from: prefs.quiet_from.clone(),
            quiet_to: prefs.quiet_to.clone(),
        });
    }
    out
}

/// The events that change what is kept of a suggestion (see [`Subject::apply`]).
fn shapes(e: &SuggestionEvent) -> bool {
    use SuggestionEvent as E;
    matches!(
        e,
        E::Submitted(_)
            | E::Assigned(_)
            | E::AdjustmentDecided(_)
            | E::CommitmentCreated(_)
            | E::ClosureRequested(_)
            | E::ReplyIssued(_)
    )
}

/// The events that may say something to the deputies (see [`crate::messages::messages`]).
fn speaks(e: &SuggestionEvent) -> bool {
    use SuggestionEvent as E;
    matches!(
        e,
        E::Assigned(_)
            | E::ExtensionDecided(_)
            | E::FeedbackRecorded(_)
            | E::ReplyIssued(_)
            | E::ReplyReviewed(_)
            | E::ReHandlingOpened(_)
            | E::CommitmentProgressed(_)
            | E::ClosureDecided(_)
    )
}

fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

macro_rules! batch_on {
    ($name:ident, $module:ident, $db:ty) => {
        async fn $name(
            p: &sqlx::Pool<$db>,
            inbox: &Inbox,
            available: Available,
            names: &HashMap<AgencyId, String>,
            steps: Vec<(Envelope, Option<Box<Read>>, Option<String>)>,
        ) -> Result<(Vec<Handled>, u64), StoreError> {
            let mut settled = Settled::default();
            let mut tx = p.begin().await?;
            // Only the suggestions whose events shape or speak are read: most events (a
            // communication, a review step, a deadline) neither, and cost the batch nothing.
            let mut ids: Vec<String> = steps
                .iter()
                .filter_map(|(_, r, _)| r.as_ref())
                .filter(|r| shapes(&r.2) || speaks(&r.2))
                .map(|r| r.0.to_string())
                .collect();
            ids.sort();
            ids.dedup();
            let mut subjects: HashMap<String, Subject> = HashMap::new();
            for (id, json) in crate::store::$module::load_subjects(&mut tx, &ids).await? {
                let s = serde_json::from_str(&json)
                    .map_err(|e| StoreError::Corrupt(format!("subject {id}: {e}")))?;
                subjects.insert(id, s);
            }
            let mut changed: HashMap<String, i64> = HashMap::new();
            let mut prefs: HashMap<Recipient, Option<Preferences>> = HashMap::new();
            let mut queued = 0;
            let mut out = Vec::with_capacity(steps.len());
            for (e, read, park) in &steps {
                if let Some(reason) = park {
                    out.push(settled.park(e, reason.clone(), true));
                    continue;
                }
                let Some(read) = read else {
                    out.push(Handled::Deferred);
                    continue;
                };
                let (id, wire, event) = read.as_ref();
                if !shapes(event) && !speaks(event) {
                    out.push(settled.applied(e));
                    continue;
                }
                let key = id.to_string();
                let known = subjects.contains_key(&key);
                if !known && !matches!(event, SuggestionEvent::Submitted(_)) {
                    // A suggestion submitted before this service kept subjects (an upgrade, a
                    // stream that no longer holds its start): nobody to address, nothing lost.
                    tracing::debug!(suggestion = %id, event = %e.event_type, "no subject kept for the suggestion; nothing to tell");
                    out.push(settled.applied(e));
                    continue;
                }
                let subject = subjects.entry(key.clone()).or_default();
                if subject.apply(event) {
                    changed.insert(key.clone(), wire.aggregate_version as i64);
                }
                let name = |a: AgencyId| names.get(&a).cloned().unwrap_or_else(|| a.to_string());
                // Deputies hear of their item; units' contacts of what their unit must do.
                let mut said: Vec<(Recipient, crate::messages::Message)> = Vec::new();
                let to_deputies = messages(subject, event, &name);
                for deputy in &subject.deputies {
                    for m in &to_deputies {
                        said.push((Recipient::Deputy(deputy.to_string()), m.clone()));
                    }
                }
                for (agency, m) in unit_messages(subject, event, &name) {
                    said.push((Recipient::Agency(agency.to_string()), m));
                }
                for (who, m) in said {
                    if !prefs.contains_key(&who) {
                        let p = crate::store::$module::preferences(&mut tx, &who).await?;
                        prefs.insert(who.clone(), p);
                    }
                    let stored = &prefs[&who];
                    // A deputy without preferences is reached on every channel (and told why
                    // a channel cannot be used); a unit without a contact has the inbox only.
                    let pref = match (stored, &who) {
                        (Some(p), _) => p.clone(),
                        (None, Recipient::Deputy(_)) => Preferences::default(),
                        (None, Recipient::Agency(_)) => Preferences {
                            channels: Vec::new(),
                            ..Preferences::default()
                        },
                    };
                    let (title, body) = m.text(&pref.language).clone();
                    let n = NewNotification {
                        id: uuid::Uuid::now_v7().to_string(),
                        source_event: e.event_id.to_string(),
                        recipient: who,
                        suggestion_id: key.clone(),
                        kind: m.kind.to_owned(),
                        language: if pref.language == "en" {
                            "en".into()
                        } else {
                            "zh".into()
                        },
                        title,
                        body,
                        created_at: now_ms(),
                        deliveries: deliveries(&pref, available),
                    };
                    if crate::store::$module::insert(&mut tx, &n).await? {
                        queued +=
                            n.deliveries.iter().filter(|d| d.state == "pending").count() as u64;
                    }
                }
                out.push(settled.applied(e));
            }
            for (key, version) in &changed {
                if let Some(s) = subjects.get(key) {
                    let json =
                        serde_json::to_string(s).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                    crate::store::$module::save_subject(&mut tx, key, &json, *version).await?;
                }
            }
            banli_eventlog::inbox::$module::settle(inbox, &mut tx, &settled).await?;
            tx.commit().await?;
            Ok((out, queued))
        }
    };
}

batch_on!(batch_sqlite, sqlite, sqlx::Sqlite);
batch_on!(batch_postgres, postgres, sqlx::Postgres);

impl Apply for EventConsumer {
    type Event = Read;

    fn inbox(&self) -> &Inbox {
        &self.inbox
    }

    fn pool(&self) -> &Pool {
        self.store.pool()
    }

    fn decode(&self, e: &Envelope) -> Result<Read, String> {
        banli_domain::wire::read_suggestion(&e.payload, "notification service")
    }

    async fn apply(&self, steps: Vec<Step<'_, Read>>) -> Result<Vec<Handled>, String> {
        let mut owned = Vec::with_capacity(steps.len());
        let mut skipped: Vec<Option<Handled>> = Vec::with_capacity(steps.len());
        for s in steps {
            match s {
                Step::Skip(h) => skipped.push(Some(h)),
                Step::Park {
                    envelope, reason, ..
                } => {
                    skipped.push(None);
                    owned.push((envelope.clone(), None, Some(reason)));
                }
                Step::Apply { envelope, event } => {
                    skipped.push(None);
                    owned.push((envelope.clone(), Some(Box::new(event)), None));
                }
            }
        }
        if owned.is_empty() {
            return Ok(skipped
                .into_iter()
                .map(|h| h.unwrap_or(Handled::Deferred))
                .collect());
        }
        // Names only for a batch that says something (most events say nothing to deputies).
        let speaks = owned
            .iter()
            .any(|(_, r, _)| r.as_ref().is_some_and(|r| speaks(&r.2)));
        let names = if speaks {
            let assigned: Vec<AgencyId> = owned
                .iter()
                .filter_map(|(_, r, _)| match r.as_deref() {
                    Some((_, _, SuggestionEvent::Assigned(a))) => Some(a.agency),
                    _ => None,
                })
                .collect();
            self.names(&assigned).await
        } else {
            Names::default()
        };
        let (inbox, available) = (self.inbox.clone(), self.available);
        let (handled, queued) = self
            .store
            .db()
            .write(move |pool| async move {
                match &pool {
                    Pool::Sqlite(p) => batch_sqlite(p, &inbox, available, &names, owned).await,
                    Pool::Postgres(p) => batch_postgres(p, &inbox, available, &names, owned).await,
                }
            })
            .await
            .map_err(|e| e.to_string())?;
        if queued > 0 {
            self.store.queued();
        }
        let mut handled = handled.into_iter();
        Ok(skipped
            .into_iter()
            .map(|h| h.unwrap_or_else(|| handled.next().unwrap_or(Handled::Deferred)))
            .collect())
    }
}
