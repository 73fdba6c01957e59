//! The follow-up service's tables: the replica of each suggestion, its deadlines, the alerts
//! that went out, and the timers (banli-timers) that send them.
//!
//! Here: the store and its queries; `alerts` (timer keys, the alerts and reminders a suggestion
//! schedules), `deadlines` (deadline rows, written in bulk), `write` (the per-backend writes of a
//! consumed batch), `facts` (the metric facts and daily sums, and the metrics query).

use banli_db::{Db, Pool, WriterStopped, on_pool};
use banli_domain::followup::{
    Alert, DeadlineKind, ProgressDue, TrackedDeadline, alerts, progress_notices_due,
};
use banli_domain::metrics::{
    COUNTS, Counts, DayKey, Facet, SuggestionFacts, day_changes, day_changes_diff,
};
use banli_domain::profile::Reminders;
use banli_domain::suggestion::{Suggestion, UnitRole};
use banli_eventlog::inbox::Inbox;
use banli_timers::{Ops, Timers};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use time::{Date, OffsetDateTime, UtcOffset};

mod alerts;
mod deadlines;
mod facts;
#[cfg(test)]
mod tests;
mod write;

pub use alerts::*;
pub use deadlines::*;
pub use facts::*;
pub use write::*;

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
    /// counts (agency, year and role slices; a category or a delegation with any agency and
    /// year), or aggregated from the per-assignment rows for every other scope (a division, a
    /// session, a deputy, a topic, or two facets at once).
    pub async fn counts(&self, q: &MetricsQuery) -> Result<Counts, StoreError> {
        let facet = match (&q.category, &q.delegation, &q.role) {
            (None, None, _) => None,
            (Some(c), None, None) => Some(Facet::Category(c.clone())),
            (None, Some(d), None) => Some(Facet::Delegation(d.clone())),
            _ => return self.counts_from_rows(q).await,
        };
        if q.division.is_some() || q.session.is_some() || q.deputy.is_some() || q.topic.is_some() {
            return self.counts_from_rows(q).await;
        }
        let sums: Vec<String> = DAY_COLUMNS
            .iter()
            .map(|c| format!("CAST(COALESCE(SUM({c}), 0) AS BIGINT)"))
            .collect();
        let sql = format!(
            "SELECT {} FROM followup_metric_days WHERE agency_id = $1 AND year = $2 AND role = $3 \
             AND facet = $4 AND facet_value = $5 AND day <= $6",
            sums.join(", ")
        );
        let (facet, facet_value) = facet
            .as_ref()
            .map_or(("", String::new()), |f| (f.kind(), f.value().to_owned()));
        let v: Vec<i64> = on_pool!(self.pool(), p => {
            let row = sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                .bind(q.agency.clone().unwrap_or_default())
                .bind(q.year.unwrap_or(0))
                .bind(q.role.clone().unwrap_or_default())
                .bind(facet)
                .bind(facet_value.clone())
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
        let texts: Vec<&str> = [
            &q.agency,
            &q.division,
            &q.role,
            &q.session,
            &q.category,
            &q.deputy,
            &q.topic,
            &q.delegation,
        ]
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
            (0..COUNTS).map(|i| row.try_get::<i64, _>(i)).collect::<Result<Vec<_>, _>>()
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
                    "DELETE FROM followup_fact_commitments",
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
    /// The distinct values of an item's property (its category, its delegation, its lead
    /// deputy) among the assignments of `agency` (every agency when `None`) made in `year`
    /// (every year when `None`), sorted, at most `limit`. Categories and delegations are read
    /// from the per-day counts' keys (a few rows a slice), deputies from the per-assignment
    /// rows by their index.
    pub async fn group_values(
        &self,
        by: GroupColumn,
        agency: Option<&str>,
        year: Option<i32>,
        limit: u32,
    ) -> Result<Vec<String>, StoreError> {
        let agency = agency.unwrap_or_default().to_owned();
        let rows: Vec<(String,)> = match by {
            GroupColumn::Category | GroupColumn::Delegation => {
                let facet = match by {
                    GroupColumn::Category => "category",
                    _ => "delegation",
                };
                on_pool!(self.pool(), p => sqlx::query_as(
                    "SELECT DISTINCT facet_value FROM followup_metric_days WHERE agency_id = $1 AND year = $2 \
                     AND role = '' AND facet = $3 ORDER BY facet_value LIMIT $4")
                    .bind(&agency)
                    .bind(year.unwrap_or(0))
                    .bind(facet)
                    .bind(i64::from(limit))
                    .fetch_all(p)
                    .await)?
            }
            GroupColumn::Deputy => {
                // The conditions present only (a `$1 = '' OR …` would keep PostgreSQL's plan
                // off the indexes).
                let mut sql = String::from(
                    "SELECT DISTINCT lead_deputy_id FROM followup_facts WHERE lead_deputy_id <> ''",
                );
                let mut n = 0;
                if !agency.is_empty() {
                    n += 1;
                    sql.push_str(&format!(" AND agency_id = ${n}"));
                }
                if year.is_some() {
                    n += 1;
                    sql.push_str(&format!(" AND year = ${n}"));
                }
                sql.push_str(&format!(" ORDER BY lead_deputy_id LIMIT ${}", n + 1));
                on_pool!(self.pool(), p => {
                    let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()));
                    if !agency.is_empty() {
                        q = q.bind(&agency);
                    }
                    if let Some(y) = year {
                        q = q.bind(y);
                    }
                    q.bind(i64::from(limit)).fetch_all(p).await
                })?
            }
        };
        Ok(rows.into_iter().map(|(v,)| v).collect())
    }

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
