//! Consumes the suggestions service's events: keeps a replica of each suggestion and, from it,
//! the deadlines of every live assignment and their alert timers — each event's effect with its
//! inbox entry in one transaction. Unknown types, newer schema versions and unreadable payloads
//! are parked and reported.

use banli_db::Pool;
use banli_domain::followup::deadlines_of;
use banli_domain::ids::{AgencyId, SuggestionId};
use banli_domain::profile::Reminders;
use banli_domain::suggestion::{Satisfaction, Suggestion, SuggestionEvent};
use banli_domain::wire::WireEvent;
use banli_eventlog::inbox::Inbox;
use banli_eventlog::{Apply, Envelope, Handled, Settled, Step};
use time::OffsetDateTime;

use crate::store::{Store, StoreError};

/// The durable consumer's name on the bus and in the inbox.
pub const CONSUMER: &str = "followup";
/// The event types it reads.
pub const FILTER: &str = "suggestion.";

#[derive(Debug, Clone)]
pub struct EventConsumer {
    store: Store,
    inbox: Inbox,
    reminders: Reminders,
    /// The assigning office: with it, a dissatisfied rating raises a supervision notice to the
    /// responsible units, in the office's name.
    office: Option<AgencyId>,
}

/// The notices an event raises: a key item assigned, to the responsible unit; a dissatisfied
/// rating, to each live responsible unit.
fn raised_by(
    event: &SuggestionEvent,
    s: &Suggestion,
    office: Option<AgencyId>,
) -> Vec<banli_domain::supervision::SupervisionNotice> {
    let Some(office) = office else {
        return Vec::new();
    };
    // A key item (重点督办) assigned to a responsible unit: a notice asking for its handling
    // plan, led by a principal leader.
    if let SuggestionEvent::Assigned(a) = event {
        if !(s.details.key_supervised && a.role.is_responsible()) {
            return Vec::new();
        }
        return vec![crate::notices::raised(
            office,
            a.agency,
            vec![s.id],
            banli_domain::supervision::Level::Notice,
            banli_domain::supervision::Trigger::KeyItem,
            "重点督办件：请由主要负责同志领办，制定办理方案，7日内书面报告领办领导和办理安排。"
                .to_owned(),
            a.on,
        )];
    }
    let SuggestionEvent::FeedbackRecorded(f) = event else {
        return Vec::new();
    };
    if f.feedback.level != Satisfaction::Dissatisfied {
        return Vec::new();
    }
    let mut units: Vec<AgencyId> = s
        .assignments
        .iter()
        .filter(|a| a.is_responsible() && a.is_active())
        .map(|a| a.agency)
        .collect();
    units.sort();
    units.dedup();
    let comment = if f.feedback.comment.trim().is_empty() {
        String::new()
    } else {
        format!("（{}）", f.feedback.comment.trim())
    };
    units
        .into_iter()
        .map(|unit| {
            crate::notices::raised(
                office,
                unit,
                vec![s.id],
                banli_domain::supervision::Level::Notice,
                banli_domain::supervision::Trigger::Dissatisfied,
                format!(
                    "代表对答复不满意{comment}：请再次与代表沟通，重新办理并按期答复，7日内书面报告安排。"
                ),
                f.feedback.on,
            )
        })
        .collect()
}

/// A suggestion event as this service reads it.
type Read = (SuggestionId, WireEvent, SuggestionEvent);

/// A step of the batch, owned, for the write path.
enum Owned {
    Skip(Handled),
    Park(Envelope, String, bool),
    Apply(Envelope, Box<Read>),
}

macro_rules! handle_on {
    ($name:ident, $batch:ident, $module:ident, $db:ty, $conn:ty) => {
        /// Applies a whole batch in one transaction: one commit, and each suggestion's replica
        /// read once however many of its events the batch holds.
        async fn $batch(
            p: &sqlx::Pool<$db>,
            store: &Store,
            inbox: &Inbox,
            reminders: &Reminders,
            office: Option<AgencyId>,
            steps: &[Owned],
        ) -> Result<Vec<Handled>, StoreError> {
            let mut rows = BatchRows::default();
            let mut settled = Settled::default();
            let mut tx = p.begin().await?;
            // Every replica the batch applies to, in one query.
            let mut ids: Vec<String> = steps
                .iter()
                .filter_map(|s| match s {
                    Owned::Apply(_, read) => Some(read.0.to_string()),
                    _ => None,
                })
                .collect();
            ids.sort();
            ids.dedup();
            rows.deadlines = crate::store::$module::load_deadlines(&mut tx, &ids).await?;
            for (id, json) in crate::store::$module::load_many(&mut tx, &ids).await? {
                let s = serde_json::from_str::<Suggestion>(&json)
                    .map_err(|err| StoreError::Corrupt(format!("replica {id}: {err}")))?;
                rows.replicas.insert(id, s);
            }
            let mut out = Vec::with_capacity(steps.len());
            for step in steps {
                out.push(match step {
                    Owned::Skip(h) => *h,
                    Owned::Park(e, reason, advance) => settled.park(e, reason.clone(), *advance),
                    Owned::Apply(e, read) => {
                        $name(&mut tx, store, reminders, office, e, read, &mut rows, &mut settled).await?
                    }
                });
            }
            crate::store::$module::add_days(&mut tx, &rows.days).await?;
            banli_timers::$module::flush(store.timers(), &mut tx, std::mem::take(&mut rows.timers)).await?;
            // Each suggestion's replica and fact rows once, as the batch left it.
            let cases = rows
                .saved
                .iter()
                .filter_map(|(id, v)| rows.replicas.get(id).map(|s| (id, *v, s)))
                .map(|(id, v, s)| serde_json::to_string(s).map(|json| (id.as_str(), v, json, s.details.confidential)))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|err| StoreError::Corrupt(err.to_string()))?;
            let cases: Vec<(&str, u64, &str, bool)> = cases.iter().map(|(id, v, json, c)| (*id, *v, json.as_str(), *c)).collect();
            crate::store::$module::save_cases(&mut tx, &cases, OffsetDateTime::now_utc()).await?;
            // Before the fact rows: they mark the deadlines with their assignments' divisions.
            crate::store::$module::write_deadlines(&mut tx, &mut rows.deadlines).await?;
            let facts: Vec<&Suggestion> = rows.facts.iter().filter_map(|id| rows.replicas.get(id)).collect();
            crate::store::$module::save_fact_rows_many(&mut tx, &facts).await?;
            banli_eventlog::inbox::$module::settle(inbox, &mut tx, &settled).await?;
            tx.commit().await?;
            Ok(out)
        }

        #[allow(clippy::too_many_arguments)]
        async fn $name(
            tx: &mut $conn,
            store: &Store,
            reminders: &Reminders,
            office: Option<AgencyId>,
            e: &Envelope,
            read: &Read,
            batch_rows: &mut BatchRows,
            settled: &mut Settled,
        ) -> Result<Handled, StoreError> {
            let mut tx = tx;
            let (id, wire, event) = read;
            let (id, event) = (*id, event);
            let key = id.to_string();
            // Loaded for the whole batch, or left by its earlier events.
            let stored = batch_rows.replicas.remove(&key);
            let (before, replica) = match stored {
                Some(before) => {
                    let mut s = before.clone();
                    s.apply(event);
                    (Some(before), Some(s))
                }
                None => match event {
                    SuggestionEvent::Submitted(first) => (None, Some(Suggestion::new(id, first))),
                    _ => (None, None),
                },
            };
            let Some(s) = replica else {
                return Ok(settled.park(e, format!("suggestion {id} has no earlier events here"), true));
            };
            let deadlines = deadlines_of(&s);
            let units: Vec<String> = s.assignments.iter().map(|a| a.agency.to_string()).collect();
            let changed = crate::store::Changed {
                units: before.as_ref().is_none_or(|b| {
                    b.assignments.iter().map(|a| a.agency).ne(s.assignments.iter().map(|a| a.agency))
                }),
                deadlines: before.as_ref().is_none_or(|b| deadlines_of(b) != deadlines),
            };
            batch_rows.deadlines.track(
                &mut batch_rows.timers,
                &key,
                &units,
                &deadlines,
                changed,
                reminders,
                OffsetDateTime::now_utc(),
            );
            if crate::store::fact_changes(before.as_ref(), &s, &mut batch_rows.days) {
                batch_rows.facts.insert(key.clone());
            }
            crate::store::sync_commitments_into(&mut batch_rows.timers, &s);
            crate::store::sync_progress_into(&mut batch_rows.timers, before.as_ref(), &s, reminders);
            let office_actor = banli_domain::Actor { position: None,
                role: banli_domain::Role::AssigningOffice,
                agency: office,
                deputy: None,
            };
            for n in raised_by(event, &s, office) {
                let issued = banli_domain::supervision::NoticeEvent::Issued(n.clone());
                crate::notices::$module::save(&mut tx, store, None, &n, &[issued], &office_actor, OffsetDateTime::now_utc()).await?;
                tracing::info!(notice = %n.id, suggestion = %s.id, agency = %n.target, trigger = ?n.trigger, "an event raised a supervision notice");
            }
            batch_rows.saved.insert(key.clone(), wire.aggregate_version);
            batch_rows.replicas.insert(key, s);
            // The inbox entries of the batch are written at its end.
            Ok(settled.applied(e))
        }
    };
}

/// What a batch keeps while it decides its events, and writes once at its end rather than per
/// event: the summed per-day counts, the
/// fact rows of the suggestions whose facts changed (replaced, so only the last state counts)
/// and the timer changes (in order, a statement per run of schedules or cancellations).
#[derive(Default)]
struct BatchRows {
    /// The replicas the batch read, as its events have left them.
    replicas: Replicas,
    /// The replicas the batch changed, at their new versions: written at its end.
    saved: std::collections::BTreeMap<String, u64>,
    days: crate::store::DaySums,
    facts: std::collections::BTreeSet<String>,
    timers: banli_timers::Ops,
    /// The deadline and unit rows, read for the batch's suggestions, written at its end.
    deadlines: crate::store::DeadlineRows,
}

/// Replicas by suggestion id: read once for a batch, then as its events leave them.
type Replicas = std::collections::HashMap<String, Suggestion>;

handle_on!(
    handle_sqlite,
    batch_sqlite,
    sqlite,
    sqlx::Sqlite,
    sqlx::SqliteConnection
);
handle_on!(
    handle_postgres,
    batch_postgres,
    postgres,
    sqlx::Postgres,
    sqlx::PgConnection
);

impl EventConsumer {
    pub fn new(store: Store, reminders: Reminders) -> EventConsumer {
        EventConsumer {
            store,
            inbox: Inbox::new("followup", CONSUMER),
            reminders,
            office: None,
        }
    }

    /// Dissatisfied ratings raise notices from `office`.
    pub fn with_office(mut self, office: AgencyId) -> EventConsumer {
        self.office = Some(office);
        self
    }

    pub fn inbox(&self) -> &Inbox {
        &self.inbox
    }

    pub fn store(&self) -> &Store {
        &self.store
    }
}

impl Apply for EventConsumer {
    type Event = Read;

    fn inbox(&self) -> &Inbox {
        &self.inbox
    }

    fn pool(&self) -> &Pool {
        self.store.pool()
    }

    fn decode(&self, e: &Envelope) -> Result<Read, String> {
        banli_domain::wire::read_suggestion(&e.payload, "follow-up service")
    }

    /// Applies a whole batch in one transaction: one commit, and each suggestion's replica
    /// read once however many of its events the batch holds.
    async fn apply(&self, steps: Vec<Step<'_, Read>>) -> Result<Vec<Handled>, String> {
        let steps: Vec<Owned> = steps
            .into_iter()
            .map(|s| match s {
                Step::Skip(h) => Owned::Skip(h),
                Step::Park {
                    envelope,
                    reason,
                    advance,
                } => Owned::Park(envelope.clone(), reason, advance),
                Step::Apply { envelope, event } => Owned::Apply(envelope.clone(), Box::new(event)),
            })
            .collect();
        if steps.iter().all(|s| matches!(s, Owned::Skip(_))) {
            return Ok(steps
                .iter()
                .map(|s| match s {
                    Owned::Skip(h) => *h,
                    _ => Handled::Deferred,
                })
                .collect());
        }
        let (store, inbox, reminders, office) = (
            self.store.clone(),
            self.inbox.clone(),
            self.reminders.clone(),
            self.office,
        );
        let out = self
            .store
            .db()
            .write(move |pool| async move {
                match &pool {
                    Pool::Sqlite(p) => {
                        batch_sqlite(p, &store, &inbox, &reminders, office, &steps).await
                    }
                    Pool::Postgres(p) => {
                        batch_postgres(p, &store, &inbox, &reminders, office, &steps).await
                    }
                }
            })
            .await
            .map_err(|e| e.to_string())?;
        if out.contains(&Handled::Applied) {
            self.store.timers().scheduled();
            // A notice the batch raised goes to the audit log.
            self.store.audit_written();
        }
        Ok(out)
    }
}
