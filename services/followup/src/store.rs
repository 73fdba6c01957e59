//! The follow-up service's tables: the replica of each suggestion, its deadlines, the alerts
//! that went out, and the timers (banli-timers) that send them.

use banli_db::{Db, Pool, WriterStopped, on_pool};
use banli_domain::followup::{
    Alert, DeadlineKind, ProgressDue, TrackedDeadline, alerts, progress_notices_due,
};
use banli_domain::metrics::{
    COUNTS, Counts, DayKey, SuggestionFacts, day_changes, day_changes_diff,
};
use banli_domain::profile::Reminders;
use banli_domain::suggestion::{Suggestion, UnitRole};
use banli_eventlog::inbox::Inbox;
use banli_timers::{Ops, Timers};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use time::{Date, OffsetDateTime, UtcOffset};

/// The most rows one response (a list, a report's list) holds.
pub const MAX_ROWS: u32 = 500;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Writer(#[from] WriterStopped),
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

impl From<banli_timers::TimerError> for StoreError {
    fn from(e: banli_timers::TimerError) -> Self {
        match e {
            banli_timers::TimerError::Database(d) => StoreError::Database(d),
            banli_timers::TimerError::Writer(w) => StoreError::Writer(w),
        }
    }
}

/// What a timer carries: the alert it sends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertPayload {
    pub suggestion_id: String,
    pub assignment_id: String,
    pub agency_id: String,
    pub kind: String,
    pub due: Date,
    pub alert: String,
    pub level: String,
}

/// A deadline row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DeadlineRow {
    pub suggestion_id: String,
    pub assignment_id: String,
    pub agency_id: String,
    /// `first_contact`, `co_opinion` or `reply`.
    pub kind: String,
    pub due: Date,
    /// The due date before it last moved.
    pub previous_due: Option<Date>,
    /// The division the assignment was dispatched to.
    pub division_id: Option<String>,
}

/// An alert that went out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct AlertRow {
    pub suggestion_id: String,
    pub assignment_id: String,
    pub agency_id: String,
    pub kind: String,
    pub due: Date,
    /// `before-15`, `before-0`, `after-1`, `very-late`, …
    pub alert: String,
    /// `reminder`, `late` or `very_late`.
    pub level: String,
    #[serde(with = "time::serde::rfc3339")]
    pub fired_at: OffsetDateTime,
}

/// What a commitment's timer carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitmentPayload {
    pub commitment: CommitmentRef,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitmentRef {
    pub suggestion_id: String,
    pub commitment_id: String,
    /// The owner unit.
    pub agency_id: String,
    pub target_date: Date,
}

/// The key of the reminder for a commitment's next progress word.
pub fn progress_key(p: &ProgressDue) -> String {
    format!("progress:{}:{}", p.commitment, p.due)
}

/// A commitment's timer key.
pub fn commitment_key(id: banli_domain::ids::CommitmentId) -> String {
    format!("commitment:{id}")
}

/// The business day's morning (09:00, UTC+8) on which an alert dated `day` goes out.
pub fn fire_time(day: Date) -> OffsetDateTime {
    let cst = UtcOffset::from_hms(8, 0, 0).unwrap_or(UtcOffset::UTC);
    day.with_hms(9, 0, 0)
        .map(|t| t.assume_offset(cst))
        .unwrap_or_else(|_| day.midnight().assume_utc())
}

/// A timer's key: one per deadline, due date and alert. A deadline that moves gets new timers
/// (its old ones are cancelled, or stay fired), so the alerts of the new date go out too.
pub fn timer_key(assignment_id: &str, kind: DeadlineKind, due: Date, alert: Alert) -> String {
    format!("{assignment_id}:{}:{due}:{}", kind.as_str(), alert.key())
}

/// The key the first release gave a timer (without the due date); still cancelled, so that
/// timers scheduled before the upgrade do not fire for a deadline that moved or was met.
fn legacy_timer_key(assignment_id: &str, kind: DeadlineKind, alert: Alert) -> String {
    format!("{assignment_id}:{}:{}", kind.as_str(), alert.key())
}

/// The timers a deadline's alerts need: `(key, fire at, payload)`.
pub fn timers_for(
    suggestion_id: &str,
    d: &TrackedDeadline,
    r: &Reminders,
) -> Vec<(String, OffsetDateTime, String)> {
    let aid = d.assignment_id.to_string();
    alerts(d.due, r)
        .into_iter()
        .map(|(alert, day)| {
            let payload = AlertPayload {
                suggestion_id: suggestion_id.to_owned(),
                assignment_id: aid.clone(),
                agency_id: d.agency.to_string(),
                kind: d.kind.as_str().to_owned(),
                due: d.due,
                alert: alert.key(),
                level: alert.level().to_owned(),
            };
            (
                timer_key(&aid, d.kind, d.due, alert),
                fire_time(day),
                serde_json::to_string(&payload).unwrap_or_default(),
            )
        })
        .collect()
}

/// What an event changed of a replica, as far as its tracked rows go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Changed {
    /// The assignments (and with them the units party to the suggestion).
    pub units: bool,
    /// The deadlines (due dates, met flags, which deadlines there are).
    pub deadlines: bool,
}

impl Changed {
    /// Everything: a replica stored for the first time, or rebuilt.
    pub const ALL: Changed = Changed {
        units: true,
        deadlines: true,
    };
}

/// Adds what `s` changed of the per-day counts since `old` to `days` (they are sums: a batch
/// writes them once, with `add_days`); true when the suggestion's per-assignment fact rows
/// must be rewritten (`save_fact_rows_many`). Most events change no fact a metrics table holds (a
/// communication's text, a review step): then its rows stay as they are.
pub fn fact_changes(old: Option<&Suggestion>, s: &Suggestion, days: &mut DaySums) -> bool {
    for (key, day, change) in day_changes_diff(old, s) {
        let at = days.entry((key, day)).or_insert([0; COUNTS]);
        for (x, v) in at.iter_mut().zip(change) {
            *x += v;
        }
    }
    let keys = |x: &Suggestion| {
        banli_domain::followup::deadlines_of(x)
            .into_iter()
            .map(|d| (d.assignment_id, d.kind))
            .collect::<Vec<_>>()
    };
    !old.is_some_and(|o| SuggestionFacts::of(o) == SuggestionFacts::of(s) && keys(o) == keys(s))
}

/// Keeps a timer per commitment: due the day after its target date while it is open,
/// cancelled once it is converted (a timer that fired stays fired).
pub fn sync_commitments_into(ops: &mut Ops, s: &Suggestion) {
    for k in &s.commitments {
        let key = commitment_key(k.id);
        match k.state {
            banli_domain::suggestion::CommitmentState::Open => {
                let payload = CommitmentPayload {
                    commitment: CommitmentRef {
                        suggestion_id: s.id.to_string(),
                        commitment_id: k.id.to_string(),
                        agency_id: k.owner.to_string(),
                        target_date: k.target_date,
                    },
                };
                let at = fire_time(k.target_date + time::Duration::days(1));
                ops.schedule(
                    &key,
                    at,
                    &serde_json::to_string(&payload).unwrap_or_default(),
                );
            }
            banli_domain::suggestion::CommitmentState::Converted => {
                ops.cancel(&key);
            }
        }
    }
}

/// Keeps a reminder per open commitment for the progress word its owner next owes the deputy:
/// moved when progress is reported or the deputy contacted, gone when the commitment is
/// converted.
pub fn sync_progress_into(
    ops: &mut Ops,
    before: Option<&Suggestion>,
    s: &Suggestion,
    reminders: &Reminders,
) {
    let now = progress_notices_due(s, reminders);
    for old in before
        .map(|b| progress_notices_due(b, reminders))
        .unwrap_or_default()
    {
        if !now.contains(&old) {
            ops.cancel(&progress_key(&old));
        }
    }
    for p in &now {
        let payload = AlertPayload {
            suggestion_id: s.id.to_string(),
            assignment_id: p.assignment.to_string(),
            agency_id: p.agency.to_string(),
            kind: "progress_notice".into(),
            due: p.due,
            alert: format!("commitment-{}", p.commitment),
            level: "reminder".into(),
        };
        ops.schedule(
            &progress_key(p),
            fire_time(p.due),
            &serde_json::to_string(&payload).unwrap_or_default(),
        );
    }
}

/// Cancels the alerts of a deadline's date that have not gone out.
fn cancel_alerts(ops: &mut Ops, aid: &str, kind: DeadlineKind, due: Date, reminders: &Reminders) {
    for (alert, _) in alerts(due, reminders) {
        ops.cancel(&timer_key(aid, kind, due, alert));
        ops.cancel(&legacy_timer_key(aid, kind, alert));
    }
}

/// A deadline as its row stands, or will once its batch is written.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stored {
    assignment_id: String,
    kind: String,
    agency_id: String,
    due: Date,
    previous_due: Option<Date>,
    met: bool,
    /// Changed since it was read: written at the end of the batch.
    dirty: bool,
}

/// A deadline row as read and written in bulk: suggestion, assignment, kind, agency, due,
/// previous due, met.
pub type DeadlineValues = (String, String, String, String, Date, Option<Date>, bool);

/// The deadline and unit rows of a batch's suggestions: read in one query, moved in memory as
/// the batch's events move them (each event sees what the ones before it left, exactly as
/// if each had written its rows), written in two statements at the end.
#[derive(Debug, Default)]
pub struct DeadlineRows {
    by_suggestion: std::collections::HashMap<String, Vec<Stored>>,
    /// (agency, suggestion) rows to add to `followup_units`.
    units: std::collections::BTreeSet<(String, String)>,
}

impl DeadlineRows {
    /// The rows read for `ids` (a suggestion with none has none yet).
    fn read(ids: &[String], rows: Vec<DeadlineValues>) -> DeadlineRows {
        let mut by_suggestion: std::collections::HashMap<String, Vec<Stored>> =
            ids.iter().map(|id| (id.clone(), Vec::new())).collect();
        for (suggestion, assignment_id, kind, agency_id, due, previous_due, met) in rows {
            by_suggestion.entry(suggestion).or_default().push(Stored {
                assignment_id,
                kind,
                agency_id,
                due,
                previous_due,
                met,
                dirty: false,
            });
        }
        DeadlineRows {
            by_suggestion,
            units: Default::default(),
        }
    }

    /// Moves suggestion `id`'s rows to `deadlines` (and notes its units); schedules the alerts
    /// of open deadlines (moving them when a due date moved) and cancels those of met or gone
    /// ones, in `ops`.
    #[allow(clippy::too_many_arguments)]
    pub fn track(
        &mut self,
        ops: &mut Ops,
        id: &str,
        units: &[String],
        deadlines: &[TrackedDeadline],
        changed: Changed,
        reminders: &Reminders,
        now: OffsetDateTime,
    ) {
        // The same assignments as the stored replica's: the units' rows stand.
        if changed.units {
            for a in deadlines
                .iter()
                .map(|d| d.agency.to_string())
                .chain(units.iter().cloned())
            {
                self.units.insert((a, id.to_string()));
            }
        }
        // The same deadlines as the stored replica's: their rows and timers stand.
        if !changed.deadlines {
            return;
        }
        let rows = self.by_suggestion.entry(id.to_string()).or_default();
        for d in deadlines {
            let aid = d.assignment_id.to_string();
            let at = rows
                .iter()
                .position(|r| r.assignment_id == aid && r.kind == d.kind.as_str());
            let old = at.map(|i| (rows[i].due, rows[i].met));
            if old.is_some_and(|(due, met)| due == d.due && met == d.met) {
                continue;
            }
            match at {
                Some(i) => {
                    let r = &mut rows[i];
                    if r.due != d.due {
                        r.previous_due = Some(r.due);
                    }
                    r.due = d.due;
                    r.met = d.met;
                    r.agency_id = d.agency.to_string();
                    r.dirty = true;
                }
                None => rows.push(Stored {
                    assignment_id: aid.clone(),
                    kind: d.kind.as_str().to_string(),
                    agency_id: d.agency.to_string(),
                    due: d.due,
                    previous_due: None,
                    met: d.met,
                    dirty: true,
                }),
            }
            // The old date's alerts that have not gone out go (fired ones stay fired).
            let moved = old.map(|(due, _)| due).filter(|due| *due != d.due);
            if let Some(old_due) = moved {
                cancel_alerts(ops, &aid, d.kind, old_due, reminders);
            }
            if d.met {
                cancel_alerts(ops, &aid, d.kind, d.due, reminders);
            } else {
                let kinds = alerts(d.due, reminders);
                for ((key, at, payload), (alert, _)) in
                    timers_for(id, d, reminders).into_iter().zip(kinds)
                {
                    // A moved date's reminders already past are not sent late; its overdue
                    // flags are.
                    if moved.is_some() && at < now && matches!(alert, Alert::Before(_)) {
                        continue;
                    }
                    ops.schedule(&key, at, &payload);
                }
            }
        }
        // Deadlines no live assignment carries any more (superseded): met, their alerts gone.
        for r in rows.iter_mut() {
            if deadlines.iter().any(|d| {
                d.assignment_id.to_string() == r.assignment_id && d.kind.as_str() == r.kind
            }) {
                continue;
            }
            if !r.met {
                r.met = true;
                r.dirty = true;
            }
            if let Some(k) = DeadlineKind::parse(&r.kind) {
                cancel_alerts(ops, &r.assignment_id, k, r.due, reminders);
            }
        }
    }

    /// The unit rows to add and the deadline rows to write, once each; clears both marks.
    fn take_changes(&mut self) -> (Vec<(String, String)>, Vec<DeadlineValues>) {
        let units = std::mem::take(&mut self.units).into_iter().collect();
        let mut changed = Vec::new();
        for (suggestion, rows) in &mut self.by_suggestion {
            for r in rows.iter_mut().filter(|r| r.dirty) {
                r.dirty = false;
                changed.push((
                    suggestion.clone(),
                    r.assignment_id.clone(),
                    r.kind.clone(),
                    r.agency_id.clone(),
                    r.due,
                    r.previous_due,
                    r.met,
                ));
            }
        }
        (units, changed)
    }
}

/// The replica rows of a batch, in one statement each way.
mod bulk {
    use super::DeadlineValues;
    use time::{Date, OffsetDateTime};

    pub mod sqlite {
        use super::{DeadlineValues, OffsetDateTime};
        use banli_domain::suggestion::Suggestion;

        /// Every fact row of these suggestions, replaced: a few statements for the whole batch
        /// (the rows go in as JSON: SQLite has no arrays).
        pub async fn save_fact_rows_many(
            c: &mut sqlx::SqliteConnection,
            suggestions: &[&Suggestion],
        ) -> Result<(), sqlx::Error> {
            crate::store::save_facts_many_sqlite(c, suggestions).await
        }

        pub async fn load_deadlines(
            c: &mut sqlx::SqliteConnection,
            ids: &[String],
        ) -> Result<Vec<DeadlineValues>, sqlx::Error> {
            sqlx::query_as(
                "SELECT d.suggestion_id, d.assignment_id, d.kind, d.agency_id, d.due, d.previous_due, d.met \
                 FROM json_each($1) x JOIN followup_deadlines d ON d.suggestion_id = x.value",
            )
            .bind(serde_json::to_string(ids).unwrap_or_default())
            .fetch_all(&mut *c)
            .await
        }

        pub async fn insert_units(
            c: &mut sqlx::SqliteConnection,
            units: &[(String, String)],
        ) -> Result<(), sqlx::Error> {
            sqlx::query(
                "INSERT INTO followup_units (agency_id, suggestion_id) \
                 SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]') FROM json_each($1) WHERE true \
                 ON CONFLICT (agency_id, suggestion_id) DO NOTHING",
            )
            .bind(serde_json::to_string(units).unwrap_or_default())
            .execute(&mut *c)
            .await
            .map(|_| ())
        }

        pub async fn upsert_deadlines(
            c: &mut sqlx::SqliteConnection,
            rows: &[DeadlineValues],
        ) -> Result<(), sqlx::Error> {
            // Dates serialize as `YYYY-MM-DD`, as sqlx binds them.
            sqlx::query(
                "INSERT INTO followup_deadlines (suggestion_id, assignment_id, kind, agency_id, due, previous_due, met) \
                 SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]'), json_extract(value, '$[3]'), \
                 json_extract(value, '$[4]'), json_extract(value, '$[5]'), json_extract(value, '$[6]') FROM json_each($1) WHERE true \
                 ON CONFLICT (assignment_id, kind) DO UPDATE SET due = excluded.due, previous_due = excluded.previous_due, \
                 met = excluded.met, agency_id = excluded.agency_id",
            )
            .bind(serde_json::to_string(rows).unwrap_or_default())
            .execute(&mut *c)
            .await
            .map(|_| ())
        }

        pub async fn load_many(
            c: &mut sqlx::SqliteConnection,
            ids: &[String],
        ) -> Result<Vec<(String, String)>, sqlx::Error> {
            // SQLite has no arrays: the ids go in as JSON.
            sqlx::query_as(
                "SELECT f.suggestion_id, f.replica FROM json_each($1) x JOIN followup_cases f ON f.suggestion_id = x.value",
            )
            .bind(serde_json::to_string(ids).unwrap_or_default())
            .fetch_all(&mut *c)
            .await
        }

        pub async fn save_cases(
            c: &mut sqlx::SqliteConnection,
            cases: &[(&str, u64, &str, bool)],
            now: OffsetDateTime,
        ) -> Result<(), sqlx::Error> {
            // `WHERE true`: SQLite's parser needs it between a SELECT and ON CONFLICT.
            // `confidential` is written with the first row only: it is fixed at submission.
            sqlx::query(
                "INSERT INTO followup_cases (suggestion_id, replica_version, replica, updated_at, confidential) \
                 SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]'), $2, json_extract(value, '$[3]') FROM json_each($1) WHERE true \
                 ON CONFLICT (suggestion_id) DO UPDATE SET replica_version = excluded.replica_version, replica = excluded.replica, updated_at = excluded.updated_at",
            )
            .bind(serde_json::to_string(cases).unwrap_or_default())
            .bind(now)
            .execute(&mut *c)
            .await
            .map(|_| ())
        }
    }

    pub mod postgres {
        use super::{Date, DeadlineValues, OffsetDateTime};
        use banli_domain::suggestion::Suggestion;

        /// Every fact row of these suggestions, replaced: a few statements for the whole batch
        /// instead of about ten per suggestion.
        pub async fn save_fact_rows_many(
            c: &mut sqlx::PgConnection,
            suggestions: &[&Suggestion],
        ) -> Result<(), sqlx::Error> {
            crate::store::save_facts_many_postgres(c, suggestions).await
        }

        pub async fn load_deadlines(
            c: &mut sqlx::PgConnection,
            ids: &[String],
        ) -> Result<Vec<DeadlineValues>, sqlx::Error> {
            sqlx::query_as(
                "SELECT d.suggestion_id, d.assignment_id, d.kind, d.agency_id, d.due, d.previous_due, d.met \
                 FROM UNNEST($1::text[]) AS x(id) JOIN followup_deadlines d ON d.suggestion_id = x.id",
            )
            .bind(ids)
            .fetch_all(&mut *c)
            .await
        }

        pub async fn insert_units(
            c: &mut sqlx::PgConnection,
            units: &[(String, String)],
        ) -> Result<(), sqlx::Error> {
            let (agencies, suggestions): (Vec<&str>, Vec<&str>) =
                units.iter().map(|(a, s)| (a.as_str(), s.as_str())).unzip();
            sqlx::query(
                "INSERT INTO followup_units (agency_id, suggestion_id) SELECT * FROM UNNEST($1::text[], $2::text[]) \
                 ON CONFLICT (agency_id, suggestion_id) DO NOTHING",
            )
            .bind(&agencies)
            .bind(&suggestions)
            .execute(&mut *c)
            .await
            .map(|_| ())
        }

        pub async fn upsert_deadlines(
            c: &mut sqlx::PgConnection,
            rows: &[DeadlineValues],
        ) -> Result<(), sqlx::Error> {
            let mut cols: (Vec<&str>, Vec<&str>, Vec<&str>, Vec<&str>) = Default::default();
            let mut dates: (Vec<Date>, Vec<Option<Date>>, Vec<bool>) = Default::default();
            for (s, a, k, g, due, previous, met) in rows {
                cols.0.push(s);
                cols.1.push(a);
                cols.2.push(k);
                cols.3.push(g);
                dates.0.push(*due);
                dates.1.push(*previous);
                dates.2.push(*met);
            }
            sqlx::query(
                "INSERT INTO followup_deadlines (suggestion_id, assignment_id, kind, agency_id, due, previous_due, met) \
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::date[], $6::date[], $7::bool[]) \
                 ON CONFLICT (assignment_id, kind) DO UPDATE SET due = excluded.due, previous_due = excluded.previous_due, \
                 met = excluded.met, agency_id = excluded.agency_id",
            )
            .bind(&cols.0)
            .bind(&cols.1)
            .bind(&cols.2)
            .bind(&cols.3)
            .bind(&dates.0)
            .bind(&dates.1)
            .bind(&dates.2)
            .execute(&mut *c)
            .await
            .map(|_| ())
        }

        pub async fn load_many(
            c: &mut sqlx::PgConnection,
            ids: &[String],
        ) -> Result<Vec<(String, String)>, sqlx::Error> {
            sqlx::query_as(
                "SELECT f.suggestion_id, f.replica FROM UNNEST($1::text[]) AS x(id) JOIN followup_cases f ON f.suggestion_id = x.id",
            )
            .bind(ids)
            .fetch_all(&mut *c)
            .await
        }

        pub async fn save_cases(
            c: &mut sqlx::PgConnection,
            cases: &[(&str, u64, &str, bool)],
            now: OffsetDateTime,
        ) -> Result<(), sqlx::Error> {
            let ids: Vec<&str> = cases.iter().map(|c| c.0).collect();
            let versions: Vec<i64> = cases.iter().map(|c| c.1 as i64).collect();
            let replicas: Vec<&str> = cases.iter().map(|c| c.2).collect();
            let confidential: Vec<bool> = cases.iter().map(|c| c.3).collect();
            // `confidential` is written with the first row only: it is fixed at submission.
            sqlx::query(
                "INSERT INTO followup_cases (suggestion_id, replica_version, replica, updated_at, confidential) \
                 SELECT x.id, x.v, x.r, $4, x.c FROM UNNEST($1::text[], $2::bigint[], $3::text[], $5::boolean[]) AS x(id, v, r, c) \
                 ON CONFLICT (suggestion_id) DO UPDATE SET replica_version = excluded.replica_version, replica = excluded.replica, updated_at = excluded.updated_at",
            )
            .bind(&ids)
            .bind(&versions)
            .bind(&replicas)
            .bind(now)
            .bind(&confidential)
            .execute(&mut *c)
            .await
            .map(|_| ())
        }
    }
}

/// The condition that leaves out the rows of `table` (which has a `suggestion_id`) that belong
/// to confidential suggestions, when `hide`; nothing otherwise.
fn not_confidential(hide: bool, table: &str) -> String {
    if hide {
        format!(
            " AND NOT EXISTS (SELECT 1 FROM followup_cases cc WHERE cc.suggestion_id = {table}.suggestion_id AND cc.confidential)"
        )
    } else {
        String::new()
    }
}

macro_rules! backend {
    ($module:ident, $conn:ty, $timers:ident, $inbox:ident) => {
        /// The writes within a caller's transaction.
        pub mod $module {
            use super::*;

            pub async fn load(c: &mut $conn, id: &str) -> Result<Option<(i64, String)>, sqlx::Error> {
                sqlx::query_as("SELECT replica_version, replica FROM followup_cases WHERE suggestion_id = $1")
                    .bind(id)
                    .fetch_optional(&mut *c)
                    .await
            }

            /// The stored replicas (id, JSON) of these suggestions, in one query.
            pub async fn load_many(c: &mut $conn, ids: &[String]) -> Result<Vec<(String, String)>, sqlx::Error> {
                if ids.is_empty() {
                    return Ok(Vec::new());
                }
                super::bulk::$module::load_many(c, ids).await
            }

            /// Replaces the fact rows of these suggestions.
            pub async fn save_fact_rows_many(c: &mut $conn, suggestions: &[&Suggestion]) -> Result<(), sqlx::Error> {
                if suggestions.is_empty() {
                    return Ok(());
                }
                super::bulk::$module::save_fact_rows_many(c, suggestions).await
            }

            /// Stores replica rows (id, version, JSON, confidential), in one statement.
            pub async fn save_cases(c: &mut $conn, cases: &[(&str, u64, &str, bool)], now: OffsetDateTime) -> Result<(), sqlx::Error> {
                if cases.is_empty() {
                    return Ok(());
                }
                super::bulk::$module::save_cases(c, cases, now).await
            }

            /// Stores the replica and its deadlines; schedules the alerts of open deadlines
            /// (moving them when a due date moved) and cancels those of met or gone ones.
            #[allow(clippy::too_many_arguments)]
            pub async fn save(
                c: &mut $conn,
                timers: &Timers,
                id: &str,
                version: u64,
                replica: &str,
                units: &[String],
                deadlines: &[TrackedDeadline],
                changed: Changed,
                reminders: &Reminders,
                now: OffsetDateTime,
            ) -> Result<(), sqlx::Error> {
                let mut ops = Ops::default();
                // A whole replica comes in as its JSON: it says itself whether it is confidential.
                let confidential = serde_json::from_str::<serde_json::Value>(replica)
                    .ok()
                    .and_then(|r| r["details"]["confidential"].as_bool())
                    .unwrap_or(false);
                save_cases(c, &[(id, version, replica, confidential)], now).await?;
                let mut rows = load_deadlines(c, &[id.to_string()]).await?;
                rows.track(&mut ops, id, units, deadlines, changed, reminders, now);
                write_deadlines(c, &mut rows).await?;
                banli_timers::$timers::flush(timers, c, ops).await
            }

            /// The deadline rows of these suggestions, for a batch to move in memory.
            pub async fn load_deadlines(c: &mut $conn, ids: &[String]) -> Result<DeadlineRows, sqlx::Error> {
                let rows = if ids.is_empty() {
                    Vec::new()
                } else {
                    super::bulk::$module::load_deadlines(c, ids).await?
                };
                Ok(DeadlineRows::read(ids, rows))
            }

            /// Writes what a batch changed of its deadline and unit rows: two statements at most.
            pub async fn write_deadlines(c: &mut $conn, rows: &mut DeadlineRows) -> Result<(), sqlx::Error> {
                let (units, changed) = rows.take_changes();
                if !units.is_empty() {
                    super::bulk::$module::insert_units(c, &units).await?;
                }
                if !changed.is_empty() {
                    super::bulk::$module::upsert_deadlines(c, &changed).await?;
                }
                Ok(())
            }

            /// Replaces a suggestion's rows in the metrics tables with `s`'s facts, and updates
            /// the per-day counts with what changed from `old` (the suggestion as stored
            /// before; `None` when it is new).
            pub async fn save_facts(c: &mut $conn, old: Option<&Suggestion>, s: &Suggestion) -> Result<(), sqlx::Error> {
                let mut days = DaySums::new();
                let rows = fact_changes(old, s, &mut days);
                add_days(c, &days).await?;
                if rows {
                    save_fact_rows_many(c, &[s]).await?;
                }
                Ok(())
            }

            /// The per-day count changes of a batch, summed, in one statement.
            pub async fn add_days(c: &mut $conn, days: &DaySums) -> Result<(), sqlx::Error> {
                if days.is_empty() {
                    return Ok(());
                }
                super::add_days::$module(c, days).await
            }

            /// Keeps a timer per commitment: due the day after its target date while it is open,
            /// cancelled once it is converted (a timer that fired stays fired).
            pub async fn sync_commitments(c: &mut $conn, timers: &Timers, s: &Suggestion) -> Result<(), sqlx::Error> {
                let mut ops = Ops::default();
                super::sync_commitments_into(&mut ops, s);
                banli_timers::$timers::flush(timers, c, ops).await
            }

            /// Keeps a reminder per open commitment for the progress word its owner next owes the
            /// deputy: moved when progress is reported or the deputy contacted, gone when the
            /// commitment is converted.
            pub async fn sync_progress(
                c: &mut $conn,
                timers: &Timers,
                before: Option<&Suggestion>,
                s: &Suggestion,
                reminders: &Reminders,
            ) -> Result<(), sqlx::Error> {
                let mut ops = Ops::default();
                super::sync_progress_into(&mut ops, before, s, reminders);
                banli_timers::$timers::flush(timers, c, ops).await
            }

            pub async fn record_alert(c: &mut $conn, key: &str, p: &AlertPayload, at: OffsetDateTime) -> Result<(), sqlx::Error> {
                sqlx::query("INSERT INTO followup_alerts (timer_key, suggestion_id, assignment_id, agency_id, kind, due, alert, level, fired_at) \
                             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (timer_key) DO NOTHING")
                    .bind(key).bind(&p.suggestion_id).bind(&p.assignment_id).bind(&p.agency_id).bind(&p.kind)
                    .bind(p.due).bind(&p.alert).bind(&p.level).bind(at)
                    .execute(&mut *c).await?;
                Ok(())
            }
        }
    };
}

backend!(sqlite, sqlx::SqliteConnection, sqlite, sqlite);
backend!(postgres, sqlx::PgConnection, postgres, postgres);

/// The tables of per-suggestion metrics rows, replaced whole when a suggestion's facts change.
const FACT_TABLES: [&str; 3] = [
    "followup_facts",
    "followup_fact_classes",
    "followup_fact_feedback",
];

/// The metrics rows of many suggestions in a few statements (SQLite): the consumer's batches.
/// The rows go in as JSON arrays (dates as `YYYY-MM-DD`, as sqlx binds them).
async fn save_facts_many_sqlite(
    c: &mut sqlx::SqliteConnection,
    suggestions: &[&Suggestion],
) -> Result<(), sqlx::Error> {
    use serde_json::{Value, json};
    let ids: Vec<String> = suggestions.iter().map(|s| s.id.to_string()).collect();
    let ids_json = serde_json::to_string(&ids).unwrap_or_default();
    for table in FACT_TABLES {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM {table} WHERE suggestion_id IN (SELECT value FROM json_each($1))"
        )))
        .bind(&ids_json)
        .execute(&mut *c)
        .await?;
    }
    let (mut facts, mut classes, mut feedback, mut divisions) = (
        Vec::<Value>::new(),
        Vec::<Value>::new(),
        Vec::<Value>::new(),
        Vec::<Value>::new(),
    );
    for (s, id) in suggestions.iter().zip(&ids) {
        let x = SuggestionFacts::of(s);
        for a in &x.assignments {
            facts.push(json!([
                a.agency.to_string(),
                a.assignment_id.to_string(),
                id,
                a.division.map(|d| d.to_string()),
                a.role.as_str(),
                a.role.is_responsible(),
                x.session.to_string(),
                a.assigned_on.year(),
                a.assigned_on,
                a.superseded,
                a.replied_on,
                a.effective_due,
                a.first_contact_on,
                a.first_meeting_on,
                x.key_item,
                a.led_by_principal,
                x.class_now.map(|(c, _)| c.as_str()),
                x.class_now.map(|(_, on)| on),
                x.first_b_on,
                x.converted_on,
                x.has_commitments,
            ]));
        }
        for h in &x.classes {
            classes.push(json!([id, h.seq, h.on, h.class.as_str()]));
        }
        for b in &x.feedback {
            feedback.push(json!([
                id,
                b.deputy.to_string(),
                b.round,
                b.level.as_str(),
                b.on,
                b.superseded_on
            ]));
        }
        for a in &s.assignments {
            divisions.push(json!([
                a.id.to_string(),
                a.dispatch.as_ref().map(|d| d.division.to_string())
            ]));
        }
    }
    let columns = |n: usize| {
        (0..n)
            .map(|i| format!("json_extract(value, '$[{i}]')"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let inserts = [
        (
            "followup_facts (agency_id, assignment_id, suggestion_id, division_id, role, responsible, session_id, year, \
             assigned_on, superseded, replied_on, effective_due, first_contact_on, first_meeting_on, key_item, led_by_principal, \
             class_now, class_since, first_b_on, converted_on, has_commitments)",
            21,
            "",
            facts,
        ),
        (
            "followup_fact_classes (suggestion_id, seq, on_date, class)",
            4,
            "",
            classes,
        ),
        (
            "followup_fact_feedback (suggestion_id, deputy_id, round, level, on_date, superseded_on)",
            6,
            // `WHERE true`: SQLite's parser needs it between a SELECT and ON CONFLICT.
            " WHERE true ON CONFLICT (suggestion_id, deputy_id, round) DO NOTHING",
            feedback,
        ),
    ];
    for (table, n, tail, rows) in inserts {
        if rows.is_empty() {
            continue;
        }
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "INSERT INTO {table} SELECT {} FROM json_each($1){tail}",
            columns(n)
        )))
        .bind(Value::Array(rows).to_string())
        .execute(&mut *c)
        .await?;
    }
    sqlx::query(
        "UPDATE followup_deadlines SET division_id = json_extract(u.value, '$[1]') \
         FROM json_each($1) u WHERE followup_deadlines.assignment_id = json_extract(u.value, '$[0]')",
    )
    .bind(Value::Array(divisions).to_string())
    .execute(&mut *c)
    .await?;
    sqlx::query("UPDATE followup_cases SET facts_version = $2 WHERE suggestion_id IN (SELECT value FROM json_each($1))")
        .bind(&ids_json)
        .bind(FACTS_VERSION)
        .execute(&mut *c)
        .await?;
    Ok(())
}

/// The metrics rows of many suggestions in a few statements (PostgreSQL): rebuilds, imports
/// and the consumer's batches.
async fn save_facts_many_postgres(
    c: &mut sqlx::PgConnection,
    suggestions: &[&Suggestion],
) -> Result<(), sqlx::Error> {
    let ids: Vec<String> = suggestions.iter().map(|s| s.id.to_string()).collect();
    for table in FACT_TABLES {
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "DELETE FROM {table} WHERE suggestion_id = ANY($1)"
        )))
        .bind(&ids)
        .execute(&mut *c)
        .await?;
    }
    #[derive(Default)]
    struct Cols {
        agency: Vec<String>,
        assignment: Vec<String>,
        suggestion: Vec<String>,
        division: Vec<Option<String>>,
        role: Vec<&'static str>,
        responsible: Vec<bool>,
        session: Vec<String>,
        year: Vec<i32>,
        assigned_on: Vec<Date>,
        superseded: Vec<bool>,
        replied_on: Vec<Option<Date>>,
        effective_due: Vec<Option<Date>>,
        first_contact_on: Vec<Option<Date>>,
        first_meeting_on: Vec<Option<Date>>,
        key_item: Vec<bool>,
        led: Vec<bool>,
        class_now: Vec<Option<&'static str>>,
        class_since: Vec<Option<Date>>,
        first_b_on: Vec<Option<Date>>,
        converted_on: Vec<Option<Date>>,
        commitments: Vec<bool>,
    }
    let mut f = Cols::default();
    let (mut h_id, mut h_seq, mut h_on, mut h_class) = (vec![], vec![], vec![], vec![]);
    let (mut b_id, mut b_deputy, mut b_round, mut b_level, mut b_on, mut b_sup) =
        (vec![], vec![], vec![], vec![], vec![], vec![]);
    for (s, id) in suggestions.iter().zip(&ids) {
        let x = SuggestionFacts::of(s);
        for a in &x.assignments {
            f.agency.push(a.agency.to_string());
            f.assignment.push(a.assignment_id.to_string());
            f.suggestion.push(id.clone());
            f.division.push(a.division.map(|d| d.to_string()));
            f.role.push(a.role.as_str());
            f.responsible.push(a.role.is_responsible());
            f.session.push(x.session.to_string());
            f.year.push(a.assigned_on.year());
            f.assigned_on.push(a.assigned_on);
            f.superseded.push(a.superseded);
            f.replied_on.push(a.replied_on);
            f.effective_due.push(a.effective_due);
            f.first_contact_on.push(a.first_contact_on);
            f.first_meeting_on.push(a.first_meeting_on);
            f.key_item.push(x.key_item);
            f.led.push(a.led_by_principal);
            f.class_now.push(x.class_now.map(|(c, _)| c.as_str()));
            f.class_since.push(x.class_now.map(|(_, on)| on));
            f.first_b_on.push(x.first_b_on);
            f.converted_on.push(x.converted_on);
            f.commitments.push(x.has_commitments);
        }
        for c in &x.classes {
            h_id.push(id.clone());
            h_seq.push(c.seq as i32);
            h_on.push(c.on);
            h_class.push(c.class.as_str());
        }
        for b in &x.feedback {
            b_id.push(id.clone());
            b_deputy.push(b.deputy.to_string());
            b_round.push(b.round as i32);
            b_level.push(b.level.as_str());
            b_on.push(b.on);
            b_sup.push(b.superseded_on);
        }
    }
    sqlx::query(
        "INSERT INTO followup_facts (agency_id, assignment_id, suggestion_id, division_id, role, responsible, session_id, year, \
         assigned_on, superseded, replied_on, effective_due, first_contact_on, first_meeting_on, key_item, led_by_principal, \
         class_now, class_since, first_b_on, converted_on, has_commitments) \
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::bool[], $7::text[], $8::int[], \
         $9::date[], $10::bool[], $11::date[], $12::date[], $13::date[], $14::date[], $15::bool[], $16::bool[], \
         $17::text[], $18::date[], $19::date[], $20::date[], $21::bool[])",
    )
    .bind(&f.agency).bind(&f.assignment).bind(&f.suggestion).bind(&f.division).bind(&f.role)
    .bind(&f.responsible).bind(&f.session).bind(&f.year).bind(&f.assigned_on).bind(&f.superseded)
    .bind(&f.replied_on).bind(&f.effective_due).bind(&f.first_contact_on).bind(&f.first_meeting_on)
    .bind(&f.key_item).bind(&f.led).bind(&f.class_now).bind(&f.class_since).bind(&f.first_b_on)
    .bind(&f.converted_on)
    .bind(&f.commitments)
    .execute(&mut *c)
    .await?;
    sqlx::query(
        "INSERT INTO followup_fact_classes (suggestion_id, seq, on_date, class) \
         SELECT * FROM UNNEST($1::text[], $2::int[], $3::date[], $4::text[])",
    )
    .bind(&h_id)
    .bind(&h_seq)
    .bind(&h_on)
    .bind(&h_class)
    .execute(&mut *c)
    .await?;
    sqlx::query(
        "INSERT INTO followup_fact_feedback (suggestion_id, deputy_id, round, level, on_date, superseded_on) \
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::int[], $4::text[], $5::date[], $6::date[]) \
         ON CONFLICT (suggestion_id, deputy_id, round) DO NOTHING",
    )
    .bind(&b_id).bind(&b_deputy).bind(&b_round).bind(&b_level).bind(&b_on).bind(&b_sup)
    .execute(&mut *c)
    .await?;
    let (assignments, divisions): (Vec<String>, Vec<Option<String>>) = suggestions
        .iter()
        .flat_map(|s| &s.assignments)
        .map(|a| {
            (
                a.id.to_string(),
                a.dispatch.as_ref().map(|d| d.division.to_string()),
            )
        })
        .unzip();
    sqlx::query(
        "UPDATE followup_deadlines d SET division_id = u.division_id \
         FROM UNNEST($1::text[], $2::text[]) AS u(assignment_id, division_id) WHERE d.assignment_id = u.assignment_id",
    )
    .bind(&assignments)
    .bind(&divisions)
    .execute(&mut *c)
    .await?;
    sqlx::query("UPDATE followup_cases SET facts_version = $2 WHERE suggestion_id = ANY($1)")
        .bind(&ids)
        .bind(FACTS_VERSION)
        .execute(&mut *c)
        .await?;
    Ok(())
}

/// The per-day count columns, in the order of `Counts::to_array`.
const DAY_COLUMNS: [&str; COUNTS] = [
    "lead",
    "co",
    "separate",
    "sole",
    "live",
    "replied",
    "on_time",
    "responsible",
    "communicated",
    "met",
    "replied_responsible",
    "resolved",
    "solved_or_planned",
    "ever_b",
    "converted",
    "feedback_latest",
    "feedback_latest_good",
    "feedback_latest_satisfied",
    "feedback_first",
    "feedback_first_good",
];

/// A slice as stored: '' for every agency or role, 0 for every year.
fn day_key(k: &DayKey) -> (String, i32, &'static str) {
    (
        k.agency.map(|a| a.to_string()).unwrap_or_default(),
        k.year.unwrap_or(0),
        k.role.map_or("", UnitRole::as_str),
    )
}

/// The summed per-day changes of suggestions not stored before, in one statement (PostgreSQL)
/// or one per slice and day (SQLite), within the caller's transaction.
async fn add_days_postgres(c: &mut sqlx::PgConnection, sum: &DaySums) -> Result<(), sqlx::Error> {
    if sum.is_empty() {
        return Ok(());
    }
    let mut agency = Vec::with_capacity(sum.len());
    let mut year = Vec::with_capacity(sum.len());
    let mut role = Vec::with_capacity(sum.len());
    let mut day = Vec::with_capacity(sum.len());
    let mut cols: Vec<Vec<i64>> = (0..COUNTS).map(|_| Vec::with_capacity(sum.len())).collect();
    for ((k, d), v) in sum {
        let (a, y, r) = day_key(k);
        agency.push(a);
        year.push(y);
        role.push(r);
        day.push(*d);
        for (col, x) in cols.iter_mut().zip(v) {
            col.push(*x);
        }
    }
    let unnest: Vec<String> = (5..5 + COUNTS).map(|i| format!("${i}::int8[]")).collect();
    let sets: Vec<String> = DAY_COLUMNS
        .iter()
        .map(|c| format!("{c} = followup_metric_days.{c} + excluded.{c}"))
        .collect();
    let sql = format!(
        "INSERT INTO followup_metric_days (agency_id, year, role, day, {}) \
         SELECT * FROM UNNEST($1::text[], $2::int[], $3::text[], $4::date[], {}) \
         ON CONFLICT (agency_id, year, role, day) DO UPDATE SET {}",
        DAY_COLUMNS.join(", "),
        unnest.join(", "),
        sets.join(", ")
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(agency)
        .bind(year)
        .bind(role)
        .bind(day);
    for col in cols {
        q = q.bind(col);
    }
    q.execute(&mut *c).await?;
    Ok(())
}

/// Summed per-day count changes by slice and day.
pub type DaySums = std::collections::BTreeMap<(DayKey, Date), [i64; COUNTS]>;

/// [`add_days_sqlite`] and [`add_days_postgres`] by backend module name.
mod add_days {
    pub(super) use super::add_days_postgres as postgres;
    pub(super) use super::add_days_sqlite as sqlite;
}

/// The summed per-day changes in one statement: SQLite has no arrays, so the rows go in as
/// JSON (`[agency, year, role, day, counts…]` each).
async fn add_days_sqlite(c: &mut sqlx::SqliteConnection, sum: &DaySums) -> Result<(), sqlx::Error> {
    if sum.is_empty() {
        return Ok(());
    }
    let rows: Vec<serde_json::Value> = sum
        .iter()
        .map(|((k, d), v)| {
            let (agency, year, role) = day_key(k);
            let mut row = vec![
                serde_json::Value::from(agency),
                year.into(),
                role.into(),
                d.to_string().into(),
            ];
            row.extend(v.iter().map(|x| serde_json::Value::from(*x)));
            serde_json::Value::Array(row)
        })
        .collect();
    let cols = DAY_COLUMNS.join(", ");
    let values: Vec<String> = (0..4 + COUNTS)
        .map(|i| format!("json_extract(value, '$[{i}]')"))
        .collect();
    let sets: Vec<String> = DAY_COLUMNS
        .iter()
        .map(|c| format!("{c} = followup_metric_days.{c} + excluded.{c}"))
        .collect();
    // `WHERE true`: SQLite's parser needs it between a SELECT and ON CONFLICT.
    let sql = format!(
        "INSERT INTO followup_metric_days (agency_id, year, role, day, {cols}) SELECT {} FROM json_each($1) WHERE true \
         ON CONFLICT (agency_id, year, role, day) DO UPDATE SET {}",
        values.join(", "),
        sets.join(", ")
    );
    sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(serde_json::Value::Array(rows).to_string())
        .execute(&mut *c)
        .await?;
    Ok(())
}

/// The per-day changes of many new suggestions, summed by slice and day.
fn summed_days(
    suggestions: &[Suggestion],
) -> std::collections::BTreeMap<(DayKey, Date), [i64; COUNTS]> {
    let mut sum = std::collections::BTreeMap::new();
    for s in suggestions {
        for (k, d, c) in day_changes(s) {
            let e: &mut [i64; COUNTS] = sum.entry((k, d)).or_insert([0; COUNTS]);
            for (e, c) in e.iter_mut().zip(c) {
                *e += c;
            }
        }
    }
    sum.retain(|_, v| v.iter().any(|x| *x != 0));
    sum
}

/// One assignment as exported (CSV).
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct AssignmentRow {
    pub suggestion_id: String,
    pub assignment_id: String,
    pub agency_id: String,
    pub division_id: Option<String>,
    pub role: String,
    pub session_id: String,
    pub assigned_on: Date,
    pub superseded: bool,
    pub replied_on: Option<Date>,
    pub effective_due: Option<Date>,
    pub first_contact_on: Option<Date>,
    pub first_meeting_on: Option<Date>,
    pub key_item: bool,
    pub led_by_principal: bool,
    pub class_now: Option<String>,
}

/// Replicas as stored (JSON), read back.
pub fn parse_replicas(rows: Vec<(String,)>) -> Result<Vec<Suggestion>, StoreError> {
    rows.into_iter()
        .map(|(r,)| {
            serde_json::from_str(&r).map_err(|e| StoreError::Corrupt(format!("a replica: {e}")))
        })
        .collect()
}

/// The version of the metrics rows' layout; replicas whose rows are older are rebuilt at start.
pub const FACTS_VERSION: i32 = 1;

/// What a metrics query counts: an agency's (or every agency's) assignments made on or before
/// `as_of`, optionally narrowed, with their facts as of that day.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricsQuery {
    pub as_of: Date,
    pub agency: Option<String>,
    pub division: Option<String>,
    pub role: Option<String>,
    pub session: Option<String>,
    /// The year the assignment was made.
    pub year: Option<i32>,
}

/// The class of an item as of `$1`: the current one unless it took effect later.
const CLASS_AS_OF: &str = "(CASE WHEN f.class_since <= $1 THEN f.class_now ELSE \
    (SELECT h.class FROM followup_fact_classes h WHERE h.suggestion_id = f.suggestion_id AND h.on_date <= $1 \
     ORDER BY h.on_date DESC, h.seq DESC LIMIT 1) END)";

/// The counts of `banli_domain::metrics::Counts`, in its order, as one statement (one snapshot).
fn counts_sql(q: &MetricsQuery) -> String {
    let mut conds = vec!["f.assigned_on <= $1".to_owned()];
    let mut n = 1;
    for (col, present) in [
        ("agency_id", q.agency.is_some()),
        ("division_id", q.division.is_some()),
        ("role", q.role.is_some()),
        ("session_id", q.session.is_some()),
        ("year", q.year.is_some()),
    ] {
        if present {
            n += 1;
            conds.push(format!("f.{col} = ${n}"));
        }
    }
    let scope = conds.join(" AND ");
    let live = "NOT f.superseded";
    let resp = "NOT f.superseded AND f.responsible";
    let replied = "f.replied_on <= $1";
    let facts = [
        format!("{live} AND f.role = 'lead'"),
        format!("{live} AND f.role = 'co'"),
        format!("{live} AND f.role = 'separate'"),
        format!("{live} AND f.role = 'sole'"),
        live.to_owned(),
        format!("{live} AND {replied}"),
        format!("{live} AND {replied} AND f.replied_on <= f.effective_due"),
        resp.to_owned(),
        format!(
            "{resp} AND f.first_contact_on <= $1 AND (f.replied_on IS NULL OR f.replied_on > $1 OR f.first_contact_on <= f.replied_on)"
        ),
        format!("{resp} AND f.first_meeting_on <= $1"),
        format!("{resp} AND {replied}"),
        format!("{resp} AND {replied} AND {CLASS_AS_OF} = 'A'"),
        format!("{resp} AND {replied} AND {CLASS_AS_OF} IN ('A', 'B')"),
        format!("{resp} AND f.first_b_on <= $1"),
        format!("{resp} AND f.first_b_on <= $1 AND f.converted_on <= $1"),
    ];
    let latest = "(b.superseded_on IS NULL OR b.superseded_on > $1)";
    let good = "b.level IN ('satisfied', 'basically_satisfied')";
    let feedback = [
        latest.to_owned(),
        format!("{latest} AND {good}"),
        format!("{latest} AND b.level = 'satisfied'"),
        "b.round = 0".to_owned(),
        format!("b.round = 0 AND {good}"),
    ];
    let count = |c: &[String]| {
        c.iter()
            .map(|w| format!("COUNT(*) FILTER (WHERE {w})"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    format!(
        "SELECT * FROM (SELECT {} FROM followup_facts f WHERE {scope}) a, \
         (SELECT {} FROM followup_fact_feedback b WHERE b.on_date <= $1 AND b.suggestion_id IN \
          (SELECT f.suggestion_id FROM followup_facts f WHERE {scope})) b",
        count(&facts),
        count(&feedback)
    )
}

/// The follow-up service's store.
#[derive(Debug, Clone)]
pub struct Store {
    db: Db,
    timers: Timers,
    idempotency: banli_db::idempotency::IdempotencyKeys,
    audit: banli_db::signal::Signal,
    /// Supervision notice events for the event log.
    outbox: banli_eventlog::outbox::Outbox,
}

impl Store {
    pub fn new(pool: Pool) -> Store {
        Store {
            db: Db::new(pool),
            timers: Timers::new("followup_timers"),
            idempotency: banli_db::idempotency::IdempotencyKeys::new("followup_idempotency_keys"),
            audit: banli_db::signal::Signal::new("followup_audit_outbox"),
            outbox: banli_eventlog::outbox::Outbox::new("followup_outbox"),
        }
    }

    /// The outbox of supervision notice events.
    pub fn outbox(&self) -> &banli_eventlog::outbox::Outbox {
        &self.outbox
    }

    pub fn idempotency_keys(&self) -> &banli_db::idempotency::IdempotencyKeys {
        &self.idempotency
    }

    /// Tells the audit feeder that records were committed.
    pub fn audit_written(&self) {
        self.audit.raise();
        // Every write that feeds the audit log with notice records also wrote their events.
        self.outbox.written();
    }

    /// Wakes on [`Store::audit_written`].
    pub fn audit_waiter(&self) -> banli_db::signal::Waiter {
        self.audit.waiter()
    }

    /// The signals this store raises after its commits, for [`banli_db::signal::share`]: audit
    /// records, outbox rows and timers.
    pub fn signals(&self) -> Vec<banli_db::signal::Signal> {
        vec![
            self.audit.clone(),
            self.outbox.signal().clone(),
            self.timers.signal().clone(),
        ]
    }

    /// Audit records not yet in the log, oldest first: `(seq, record JSON)`.
    pub async fn pending_audit(&self, limit: u32) -> Result<Vec<(i64, String)>, StoreError> {
        Ok(on_pool!(self.pool(), p => sqlx::query_as(
            "SELECT seq, record FROM followup_audit_outbox WHERE appended_at IS NULL ORDER BY seq LIMIT $1")
            .bind(i64::from(limit))
            .fetch_all(p)
            .await)?)
    }

    /// Marks audit records appended.
    pub async fn mark_audited(&self, seqs: Vec<i64>) -> Result<(), StoreError> {
        let now = OffsetDateTime::now_utc();
        self.db
            .write(move |pool| async move {
                match &pool {
                    Pool::Sqlite(p) => {
                        let mut tx = p.begin().await?;
                        for s in &seqs {
                            sqlx::query(
                                "UPDATE followup_audit_outbox SET appended_at = $2 WHERE seq = $1",
                            )
                            .bind(s)
                            .bind(now)
                            .execute(&mut *tx)
                            .await?;
                        }
                        tx.commit().await?;
                    }
                    Pool::Postgres(p) => {
                        sqlx::query(
                            "UPDATE followup_audit_outbox SET appended_at = $2 WHERE seq = ANY($1)",
                        )
                        .bind(&seqs)
                        .bind(now)
                        .execute(p)
                        .await?;
                    }
                }
                Ok::<(), StoreError>(())
            })
            .await
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn pool(&self) -> &Pool {
        self.db.pool()
    }

    pub fn timers(&self) -> &Timers {
        &self.timers
    }

    pub async fn migrate(&self, inbox: &Inbox) -> Result<(), sqlx::migrate::MigrateError> {
        let m = migrator(self.pool().backend());
        match self.pool() {
            Pool::Sqlite(p) => m.run(p).await?,
            Pool::Postgres(p) => m.run(p).await?,
        }
        self.timers
            .migrate(self.pool())
            .await
            .map_err(sqlx::migrate::MigrateError::Execute)?;
        self.idempotency
            .migrate(self.pool())
            .await
            .map_err(sqlx::migrate::MigrateError::Execute)?;
        inbox
            .migrate(self.pool())
            .await
            .map_err(sqlx::migrate::MigrateError::Execute)
    }

    /// Open deadlines of an agency (or all), optionally of one division, due on or before
    /// `until`, soonest first.
    pub async fn open_deadlines(
        &self,
        agency: Option<&str>,
        division: Option<&str>,
        until: Date,
        limit: u32,
        hide_confidential: bool,
    ) -> Result<Vec<DeadlineRow>, StoreError> {
        type Row = (
            String,
            String,
            String,
            String,
            Date,
            Option<Date>,
            Option<String>,
        );
        let sql = format!(
            "SELECT suggestion_id, assignment_id, agency_id, kind, due, previous_due, division_id FROM followup_deadlines \
             WHERE NOT met AND due <= $1 AND ($2 = '' OR agency_id = $2) AND ($4 = '' OR division_id = $4){} \
             ORDER BY due, assignment_id LIMIT $3",
            not_confidential(hide_confidential, "followup_deadlines")
        );
        let rows: Vec<Row> = on_pool!(self.pool(), p => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
            .bind(until)
            .bind(agency.unwrap_or_default())
            .bind(i64::from(limit))
            .bind(division.unwrap_or_default())
            .fetch_all(p)
            .await)?;
        Ok(rows
            .into_iter()
            .map(
                |(
                    suggestion_id,
                    assignment_id,
                    agency_id,
                    kind,
                    due,
                    previous_due,
                    division_id,
                )| {
                    DeadlineRow {
                        suggestion_id,
                        assignment_id,
                        agency_id,
                        kind,
                        due,
                        previous_due,
                        division_id,
                    }
                },
            )
            .collect())
    }

    /// Alerts that went out to an agency (or all), newest first.
    pub async fn alerts(
        &self,
        agency: Option<&str>,
        limit: u32,
        hide_confidential: bool,
    ) -> Result<Vec<AlertRow>, StoreError> {
        type Row = (
            String,
            String,
            String,
            String,
            Date,
            String,
            String,
            OffsetDateTime,
        );
        let sql = format!(
            "SELECT suggestion_id, assignment_id, agency_id, kind, due, alert, level, fired_at FROM followup_alerts \
             WHERE ($1 = '' OR agency_id = $1){} ORDER BY fired_at DESC, timer_key LIMIT $2",
            not_confidential(hide_confidential, "followup_alerts")
        );
        let rows: Vec<Row> = on_pool!(self.pool(), p => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
            .bind(agency.unwrap_or_default())
            .bind(i64::from(limit))
            .fetch_all(p)
            .await)?;
        Ok(rows
            .into_iter()
            .map(
                |(suggestion_id, assignment_id, agency_id, kind, due, alert, level, fired_at)| {
                    AlertRow {
                        suggestion_id,
                        assignment_id,
                        agency_id,
                        kind,
                        due,
                        alert,
                        level,
                        fired_at,
                    }
                },
            )
            .collect())
    }

    /// The counts of a metrics query: summed over the days up to `as_of` from the per-day
    /// counts (agency, year and role slices), or aggregated from the per-assignment rows when
    /// the query names a division or a session.
    pub async fn counts(&self, q: &MetricsQuery) -> Result<Counts, StoreError> {
        if q.division.is_some() || q.session.is_some() {
            return self.counts_from_rows(q).await;
        }
        let sums: Vec<String> = DAY_COLUMNS
            .iter()
            .map(|c| format!("CAST(COALESCE(SUM({c}), 0) AS BIGINT)"))
            .collect();
        let sql = format!(
            "SELECT {} FROM followup_metric_days WHERE agency_id = $1 AND year = $2 AND role = $3 AND day <= $4",
            sums.join(", ")
        );
        let v: Vec<i64> = on_pool!(self.pool(), p => {
            let row = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .bind(q.agency.clone().unwrap_or_default())
                .bind(q.year.unwrap_or(0))
                .bind(q.role.clone().unwrap_or_default())
                .bind(q.as_of)
                .fetch_one(p)
                .await?;
            (0..COUNTS).map(|i| row.try_get::<i64, _>(i)).collect::<Result<Vec<_>, _>>()
        })?;
        let mut a = [0i64; COUNTS];
        a.copy_from_slice(&v);
        Ok(Counts::from_array(a))
    }

    /// The same counts aggregated in one statement from the per-assignment rows; any scope.
    pub async fn counts_from_rows(&self, q: &MetricsQuery) -> Result<Counts, StoreError> {
        let sql = counts_sql(q);
        let texts: Vec<&str> = [&q.agency, &q.division, &q.role, &q.session]
            .into_iter()
            .filter_map(|t| t.as_deref())
            .collect();
        let v: Vec<i64> = on_pool!(self.pool(), p => {
            // Built from fixed fragments; every value is bound.
            let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.clone())).bind(q.as_of);
            for t in &texts {
                query = query.bind(*t);
            }
            if let Some(y) = q.year {
                query = query.bind(y);
            }
            let row = query.fetch_one(p).await?;
            (0..20).map(|i| row.try_get::<i64, _>(i)).collect::<Result<Vec<_>, _>>()
        })?;
        let mut a = [0i64; COUNTS];
        a.copy_from_slice(&v);
        Ok(Counts::from_array(a))
    }

    /// Writes the metrics rows of many suggestions whose rows are not stored yet, in one
    /// transaction (rebuilds after clearing, imports, benches); the per-day changes are summed
    /// before they are written.
    pub async fn import_facts(&self, suggestions: Vec<Suggestion>) -> Result<(), StoreError> {
        self.db
            .write(move |pool| async move {
                let days = summed_days(&suggestions);
                match &pool {
                    Pool::Sqlite(p) => {
                        let mut tx = p.begin().await?;
                        add_days_sqlite(&mut tx, &days).await?;
                        let all: Vec<&Suggestion> = suggestions.iter().collect();
                        // Chunks keep each statement's JSON argument a reasonable size.
                        for chunk in all.chunks(500) {
                            save_facts_many_sqlite(&mut tx, chunk).await?;
                        }
                        tx.commit().await?;
                    }
                    Pool::Postgres(p) => {
                        let mut tx = p.begin().await?;
                        add_days_postgres(&mut tx, &days).await?;
                        let all: Vec<&Suggestion> = suggestions.iter().collect();
                        save_facts_many_postgres(&mut tx, &all).await?;
                        tx.commit().await?;
                    }
                }
                Ok::<(), StoreError>(())
            })
            .await
    }

    /// Rebuilds the metrics rows of replicas stored before the current layout
    /// ([`FACTS_VERSION`]); returns how many. Runs at start.
    pub async fn rebuild_facts(&self) -> Result<u64, StoreError> {
        let behind: Option<(String,)> = on_pool!(self.pool(), p => sqlx::query_as(
            "SELECT suggestion_id FROM followup_cases WHERE facts_version IS NULL OR facts_version < $1 LIMIT 1")
            .bind(FACTS_VERSION)
            .fetch_optional(p)
            .await)?;
        if behind.is_none() {
            return Ok(0);
        }
        // The per-day counts are sums over every suggestion: rebuilt from nothing.
        self.db
            .write(|pool| async move {
                for sql in [
                    "DELETE FROM followup_metric_days",
                    "DELETE FROM followup_facts",
                    "DELETE FROM followup_fact_classes",
                    "DELETE FROM followup_fact_feedback",
                    "UPDATE followup_cases SET facts_version = NULL",
                ] {
                    on_pool!(&pool, p => sqlx::query(sql).execute(p).await.map(|_| ()))?;
                }
                Ok::<(), StoreError>(())
            })
            .await?;
        let mut done = 0;
        loop {
            let rows: Vec<(String,)> = on_pool!(self.pool(), p => sqlx::query_as(
                "SELECT replica FROM followup_cases WHERE facts_version IS NULL OR facts_version < $1 ORDER BY suggestion_id LIMIT 200")
                .bind(FACTS_VERSION)
                .fetch_all(p)
                .await)?;
            if rows.is_empty() {
                return Ok(done);
            }
            let replicas = parse_replicas(rows)?;
            done += replicas.len() as u64;
            self.import_facts(replicas).await?;
        }
    }

    /// The replicas of the items in the B-class ledger of an agency (every agency when `None`):
    /// class B at some point or carrying commitments, where the agency is a responsible unit.
    pub async fn ledger_replicas(
        &self,
        agency: Option<&str>,
    ) -> Result<Vec<Suggestion>, StoreError> {
        let rows: Vec<(String,)> = on_pool!(self.pool(), p => sqlx::query_as(
            "SELECT c.replica FROM followup_cases c WHERE c.suggestion_id IN \
             (SELECT f.suggestion_id FROM followup_facts f WHERE f.responsible AND NOT f.superseded \
              AND (f.first_b_on IS NOT NULL OR f.has_commitments) AND ($1 = '' OR f.agency_id = $1))")
            .bind(agency.unwrap_or_default())
            .fetch_all(p)
            .await)?;
        parse_replicas(rows)
    }

    /// The replicas of the items an agency was assigned in `year` that a principal leader leads.
    pub async fn led_by_principal(
        &self,
        agency: &str,
        year: i32,
    ) -> Result<Vec<Suggestion>, StoreError> {
        let rows: Vec<(String,)> = on_pool!(self.pool(), p => sqlx::query_as(
            "SELECT c.replica FROM followup_cases c WHERE c.suggestion_id IN \
             (SELECT f.suggestion_id FROM followup_facts f WHERE f.agency_id = $1 AND f.year = $2 \
              AND f.led_by_principal AND NOT f.superseded)")
            .bind(agency)
            .bind(year)
            .fetch_all(p)
            .await)?;
        parse_replicas(rows)
    }

    /// The per-assignment rows of an agency (or all), optionally of one year, for export:
    /// in the order of assignment.
    pub async fn assignment_rows(
        &self,
        agency: Option<&str>,
        year: Option<i32>,
        hide_confidential: bool,
    ) -> Result<Vec<AssignmentRow>, StoreError> {
        let sql = format!(
            "SELECT suggestion_id, assignment_id, agency_id, division_id, role, session_id, assigned_on, superseded, \
             replied_on, effective_due, first_contact_on, first_meeting_on, key_item, led_by_principal, class_now \
             FROM followup_facts WHERE ($1 = '' OR agency_id = $1) AND ($2 = 0 OR year = $2){} \
             ORDER BY assigned_on, suggestion_id, assignment_id",
            not_confidential(hide_confidential, "followup_facts")
        );
        Ok(
            on_pool!(self.pool(), p => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
            .bind(agency.unwrap_or_default())
            .bind(year.unwrap_or(0))
            .fetch_all(p)
            .await)?,
        )
    }

    /// Whether any suggestion has (had) an assignment of this agency.
    pub async fn knows_agency(&self, agency: &str) -> Result<bool, StoreError> {
        let row: Option<(String,)> = on_pool!(self.pool(), p => sqlx::query_as(
            "SELECT agency_id FROM followup_units WHERE agency_id = $1 LIMIT 1")
            .bind(agency)
            .fetch_optional(p)
            .await)?;
        Ok(row.is_some())
    }

    /// The replicas of the suggestions an agency holds (held) an assignment on; every replica
    /// when `agency` is `None`.
    pub async fn replicas(
        &self,
        agency: Option<&str>,
    ) -> Result<Vec<banli_domain::suggestion::Suggestion>, StoreError> {
        let rows: Vec<(String,)> = on_pool!(self.pool(), p => sqlx::query_as(
            "SELECT c.replica FROM followup_cases c WHERE $1 = '' OR c.suggestion_id IN (SELECT u.suggestion_id FROM followup_units u WHERE u.agency_id = $1)")
            .bind(agency.unwrap_or_default())
            .fetch_all(p)
            .await)?;
        parse_replicas(rows)
    }

    /// Notices to or from an agency (or all), optionally in one state, newest first.
    pub async fn notices(
        &self,
        agency: Option<&str>,
        state: Option<&str>,
        limit: u32,
    ) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(on_pool!(self.pool(), p => sqlx::query_as(
            "SELECT notice, version FROM followup_notices \
             WHERE ($1 = '' OR target_agency_id = $1 OR issuer_agency_id = $1) AND ($2 = '' OR state = $2) \
             ORDER BY notice_id DESC LIMIT $3")
            .bind(agency.unwrap_or_default())
            .bind(state.unwrap_or_default())
            .bind(i64::from(limit))
            .fetch_all(p)
            .await)?)
    }

    /// A deadline's row (tests, tools).
    pub async fn deadline(
        &self,
        assignment_id: &str,
        kind: &str,
    ) -> Result<Option<(Date, Option<Date>, bool)>, StoreError> {
        Ok(on_pool!(self.pool(), p => sqlx::query_as(
            "SELECT due, previous_due, met FROM followup_deadlines WHERE assignment_id = $1 AND kind = $2")
            .bind(assignment_id)
            .bind(kind)
            .fetch_optional(p)
            .await)?)
    }
}

/// The table in which this service records its migrations: its own, so that services can share
/// one database.
pub const MIGRATIONS_TABLE: &str = "_migrations_followup";

/// This service's migrations on `backend` (`banli backup` and `banli restore` compare a copy's
/// latest with the latest here).
pub fn migrator(backend: banli_db::Backend) -> sqlx::migrate::Migrator {
    let mut m = match backend {
        banli_db::Backend::Sqlite => sqlx::migrate!("./migrations/sqlite"),
        banli_db::Backend::Postgres => sqlx::migrate!("./migrations/postgres"),
    };
    m.dangerous_set_table_name(MIGRATIONS_TABLE);
    m
}

#[cfg(test)]
mod tests {
    use super::*;
    use banli_domain::ids::{AgencyId, AssignmentId};
    use time::macros::{date, datetime};

    fn deadline(a: AssignmentId, agency: AgencyId, due: Date, met: bool) -> TrackedDeadline {
        TrackedDeadline {
            assignment_id: a,
            agency,
            kind: DeadlineKind::Reply,
            due,
            met,
        }
    }

    /// A batch's events move the rows in memory as each event's own writes would have: the
    /// previous due date is the one just before the last move, a deadline no live assignment
    /// carries is met, and each changed row is written once.
    #[test]
    fn a_batch_moves_deadline_rows_as_its_events_would_one_by_one() {
        let reminders = banli_domain::profile::RuleProfile::national().reminders;
        let now = datetime!(2020-03-01 0:00 UTC);
        let (a, b, agency) = (AssignmentId::new(), AssignmentId::new(), AgencyId::new());
        let stored = vec![(
            "s".to_string(),
            a.to_string(),
            "reply".to_string(),
            agency.to_string(),
            date!(2020 - 05 - 01),
            None,
            false,
        )];
        let mut rows = DeadlineRows::read(&["s".to_string(), "t".to_string()], stored);
        let mut ops = Ops::default();
        let units = [agency.to_string()];
        // An extension, then a second one in the same batch.
        for due in [date!(2020 - 05 - 15), date!(2020 - 06 - 01)] {
            let now_due = [deadline(a, agency, due, false)];
            rows.track(
                &mut ops,
                "s",
                &units,
                &now_due,
                Changed::ALL,
                &reminders,
                now,
            );
        }
        // Then the assignment is superseded by another one.
        let after = [deadline(b, agency, date!(2020 - 06 - 10), false)];
        rows.track(&mut ops, "s", &units, &after, Changed::ALL, &reminders, now);
        // A suggestion the batch did not move writes nothing.
        rows.track(
            &mut ops,
            "t",
            &[],
            &[],
            Changed {
                units: false,
                deadlines: false,
            },
            &reminders,
            now,
        );

        let (units_out, mut changed) = rows.take_changes();
        changed.sort_by(|x, y| x.1.cmp(&y.1).then(x.4.cmp(&y.4)));
        assert_eq!(units_out, vec![(agency.to_string(), "s".to_string())]);
        let by = |id: AssignmentId| changed.iter().find(|r| r.1 == id.to_string()).cloned();
        let moved = by(a).expect("the moved row");
        assert_eq!(
            (moved.4, moved.5, moved.6),
            (date!(2020 - 06 - 01), Some(date!(2020 - 05 - 15)), true),
            "due, previous due (the one before the last move), met (superseded)"
        );
        let new = by(b).expect("the new row");
        assert_eq!((new.4, new.5, new.6), (date!(2020 - 06 - 10), None, false));
        assert_eq!(changed.len(), 2, "each changed row once: {changed:?}");
        // Written: nothing is left to write.
        let (u, c) = rows.take_changes();
        assert!(u.is_empty() && c.is_empty());
    }
}
