//! Storage of the coordination service on SQLite and PostgreSQL: per suggestion, the replica of
//! the suggestion and the coordination case; this service's events with their outbox rows; the
//! task projection; and the id references. Every change is one transaction; a consumed event's
//! inbox entry is written in the transaction of its effect.

use std::future::Future;

use banli_db::idempotency::IdempotencyKeys;
use banli_db::{Db, Pool, WriterStopped, on_pool};
use banli_domain::Actor;
use banli_domain::coordination::{CoordinationCase, CoordinationEvent, SCHEMA_VERSION};
use banli_domain::ids::{AgencyId, SuggestionId};
use banli_domain::suggestion::{AssignmentState, Suggestion, SuggestionEvent, UnitRole};
use banli_eventlog::Envelope;
use banli_eventlog::inbox::{self, Inbox};
use banli_eventlog::outbox::Outbox;
use serde::Serialize;
use time::{Date, OffsetDateTime};
use uuid::Uuid;

mod batch;
pub mod feed;
mod write;

use write::*;

/// What can go wrong at the storage edge.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(String),
    /// Someone else changed the case first.
    #[error("version conflict: expected version {expected}, the stored version is {actual}")]
    Conflict { expected: u64, actual: u64 },
    /// The inbox already holds this event: its effect was committed before.
    #[error("the event was applied before")]
    Duplicate,
    #[error("stored data could not be read: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Database(e)
    }
}

impl From<WriterStopped> for StoreError {
    fn from(e: WriterStopped) -> Self {
        StoreError::Corrupt(e.to_string())
    }
}

/// A unique violation on the inbox: the event was applied before.
fn duplicate(e: sqlx::Error) -> StoreError {
    match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Duplicate,
        _ => StoreError::Database(e),
    }
}

fn json<T: Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(format!("cannot encode JSON: {e}")))
}

/// The status of one of this service's events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// A mirrored command the suggestions service has not answered yet.
    Pending,
    Confirmed,
    Refused,
    /// Nothing to confirm: the event concerns only coordination.
    Final,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Confirmed => "confirmed",
            Status::Refused => "refused",
            Status::Final => "final",
        }
    }
}

/// One of this service's events, with its status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnEvent {
    pub event_id: Uuid,
    pub version: u64,
    pub event: CoordinationEvent,
    pub actor: Actor,
    pub effects: Vec<SuggestionEvent>,
    pub status: String,
    pub status_reason: Option<String>,
    pub occurred_at: OffsetDateTime,
}

/// A suggestion as this service knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaseRecord {
    pub replica: Suggestion,
    pub replica_version: u64,
    pub case: CoordinationCase,
    /// Own events whose effects the suggestions service has not confirmed yet, in order.
    pub pending: Vec<OwnEvent>,
}

impl CaseRecord {
    /// The replica with the effects of pending commands applied: what commands decide against.
    pub fn view(&self) -> Suggestion {
        let mut s = self.replica.clone();
        for p in &self.pending {
            for e in &p.effects {
                s.apply(e);
            }
        }
        s
    }
}

/// An event to append to a case.
#[derive(Debug, Clone)]
pub struct NewOwnEvent {
    pub event_id: Uuid,
    pub event: CoordinationEvent,
    pub actor: Actor,
    pub effects: Vec<SuggestionEvent>,
    pub occurred_at: OffsetDateTime,
}

/// A task row: what one unit owes on one suggestion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Task {
    pub assignment_id: Uuid,
    pub suggestion_id: Uuid,
    pub agency_id: Uuid,
    pub role: String,
    pub state: String,
    pub opinion: String,
    pub co_opinion_due: Option<Date>,
    pub reply_due: Option<Date>,
}

/// The task rows of a replica.
pub(crate) fn tasks_of(s: &Suggestion) -> Vec<Task> {
    s.assignments
        .iter()
        .map(|a| {
            let opinion = if a.role != UnitRole::Co {
                "not_required"
            } else if a.opinion_waived {
                "waived"
            } else {
                match s.opinions.iter().rev().find(|o| o.assignment_id == a.id) {
                    Some(o) if o.acknowledged_on.is_some() => "acknowledged",
                    Some(_) => "submitted",
                    None => "awaited",
                }
            };
            Task {
                assignment_id: a.id.0,
                suggestion_id: s.id.0,
                agency_id: a.agency.0,
                role: a.role.as_str().to_owned(),
                state: a.state.as_str().to_owned(),
                opinion: opinion.to_owned(),
                co_opinion_due: a.deadlines.co_opinion.as_ref().map(|d| d.due),
                reply_due: a.deadlines.reply.as_ref().map(|d| d.due),
            }
        })
        .collect()
}

/// The ids a suggestion event introduces, to find the suggestion by them.
fn refs_of(e: &SuggestionEvent) -> Vec<(Uuid, &'static str)> {
    match e {
        SuggestionEvent::Assigned(a) => vec![(a.assignment_id.0, "assignment")],
        SuggestionEvent::OpinionSubmitted(o) => vec![(o.opinion.id.0, "opinion")],
        SuggestionEvent::ReplyIssued(r) => vec![(r.reply.id.0, "reply")],
        _ => Vec::new(),
    }
}

/// The ids a coordination event introduces.
fn own_refs_of(e: &CoordinationEvent) -> Vec<(Uuid, &'static str)> {
    match e {
        CoordinationEvent::OpinionSubmitted { opinion } => vec![(opinion.id.0, "opinion")],
        CoordinationEvent::DisagreementRecorded { disagreement } => {
            vec![(disagreement.id.0, "disagreement")]
        }
        _ => Vec::new(),
    }
}

/// What the consumer writes for one suggestion event, with its inbox entry.
#[derive(Debug, Clone)]
pub struct ReplicaChange {
    pub suggestion_id: SuggestionId,
    /// `None` for the first event (the case row is created).
    pub expected_replica_version: Option<u64>,
    pub replica: Suggestion,
    pub replica_version: u64,
    pub event: SuggestionEvent,
    /// A pending own event this answers: its new status and reason.
    pub settles: Option<(Uuid, Status, Option<String>)>,
    /// Own events it causes (reply copies), appended after `case_version`.
    pub case_version: u64,
    pub case: CoordinationCase,
    pub caused: Vec<NewOwnEvent>,
    /// The event's rows in the feeds of the agencies party to it.
    pub feed: Vec<crate::feed::FeedEntry>,
    /// The task rows as the replica before the event gave them (`None`: a new case); only
    /// the rows the event changes are written.
    pub tasks_before: Option<Vec<Task>>,
}

/// One consumed event's outcome, written with the others of its batch in one transaction.
#[derive(Debug, Clone)]
pub enum BatchItem {
    Apply(Envelope, Box<ReplicaChange>),
    /// Park with the reason; `advance` moves the aggregate's position past it.
    Park(Envelope, String, bool),
}

/// The condition that leaves out the task rows of confidential suggestions.
const NOT_CONFIDENTIAL_TASK: &str = " AND NOT EXISTS (SELECT 1 FROM coordination_cases c \
     WHERE c.suggestion_id = coordination_tasks.suggestion_id AND c.confidential)";

/// The coordination service's store.
#[derive(Debug, Clone)]
pub struct Store {
    db: Db,
    idempotency: IdempotencyKeys,
    outbox: Outbox,
    /// Counts feed writes in this process: feed streams wait on it.
    feed_signal: banli_db::signal::Signal,
}

type OwnRow = (
    i64,
    String,
    String,
    String,
    String,
    String,
    Option<String>,
    OffsetDateTime,
);
type TaskRow = (
    String,
    String,
    String,
    String,
    String,
    String,
    Option<Date>,
    Option<Date>,
);

fn own_events_of(rows: Vec<OwnRow>) -> Result<Vec<OwnEvent>, StoreError> {
    rows.into_iter()
        .map(
            |(version, event_id, payload, actor, effects, status, status_reason, at)| {
                Ok(OwnEvent {
                    event_id: uuid("event", &event_id)?,
                    version: version.max(0) as u64,
                    event: parse("event", &payload)?,
                    actor: parse("actor", &actor)?,
                    effects: parse("effects", &effects)?,
                    status,
                    status_reason,
                    occurred_at: at,
                })
            },
        )
        .collect()
}

fn parse<T: serde::de::DeserializeOwned>(what: &str, s: &str) -> Result<T, StoreError> {
    serde_json::from_str(s).map_err(|e| StoreError::Corrupt(format!("{what}: {e}")))
}

fn uuid(what: &str, s: &str) -> Result<Uuid, StoreError> {
    s.parse()
        .map_err(|_| StoreError::Corrupt(format!("{what}: bad id `{s}`")))
}

impl Store {
    pub fn new(pool: Pool) -> Store {
        Store {
            db: Db::new(pool),
            idempotency: IdempotencyKeys::new("coordination_idempotency_keys"),
            outbox: Outbox::new("coordination_outbox"),
            feed_signal: banli_db::signal::Signal::new("coordination_feed"),
        }
    }

    /// Tells the feed streams and webhook deliveries that feed rows were committed: this
    /// process's at once, other processes' on PostgreSQL once [`Store::signals`] are shared.
    pub fn feed_written(&self) {
        self.feed_signal.raise();
    }

    /// Wakes when feed rows were committed (see [`Store::feed_written`]).
    pub fn feed_watch(&self) -> banli_db::signal::Waiter {
        self.feed_signal.waiter()
    }

    /// The signals this store raises after its commits, for [`banli_db::signal::share`]: feed
    /// rows and outbox rows.
    pub fn signals(&self) -> Vec<banli_db::signal::Signal> {
        vec![self.feed_signal.clone(), self.outbox.signal().clone()]
    }

    pub fn db(&self) -> &Db {
        &self.db
    }

    pub fn pool(&self) -> &Pool {
        self.db.pool()
    }

    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    pub fn idempotency_keys(&self) -> &IdempotencyKeys {
        &self.idempotency
    }

    /// Applies this service's migrations (idempotent), under its own migrations table.
    pub async fn migrate(&self) -> Result<(), sqlx::migrate::MigrateError> {
        let m = migrator(self.pool().backend());
        match self.pool() {
            Pool::Sqlite(p) => m.run(p).await?,
            Pool::Postgres(p) => m.run(p).await?,
        }
        self.idempotency
            .migrate(self.pool())
            .await
            .map_err(sqlx::migrate::MigrateError::Execute)
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        on_pool!(self.pool(), p => sqlx::query("SELECT 1").execute(p).await.map(|_| ()).map_err(StoreError::from))
    }

    async fn write<F, Fut, T>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(Pool) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, StoreError>> + Send + 'static,
        T: Send + 'static,
    {
        self.db.write(f).await
    }

    /// The suggestion an assignment, opinion, reply or disagreement belongs to.
    pub async fn suggestion_of(&self, ref_id: Uuid) -> Result<Option<SuggestionId>, StoreError> {
        let row: Option<(String,)> = on_pool!(self.pool(), p => sqlx::query_as("SELECT suggestion_id FROM coordination_refs WHERE ref_id = $1")
            .bind(ref_id.to_string())
            .fetch_optional(p)
            .await)?;
        row.map(|(s,)| uuid("reference", &s).map(SuggestionId))
            .transpose()
    }

    /// A case with its replica and pending own events, from one snapshot: read apart, the
    /// consumer could commit in between (the replica without an opinion, and the pending opinion
    /// already settled), and the command would see neither.
    pub async fn load(&self, id: SuggestionId) -> Result<Option<CaseRecord>, StoreError> {
        Ok(self.load_many(&[id]).await?.remove(&id))
    }

    /// This service's events of a suggestion, in order; only pending ones when `pending_only`.
    pub async fn own_events(
        &self,
        id: SuggestionId,
        pending_only: bool,
    ) -> Result<Vec<OwnEvent>, StoreError> {
        let sql = if pending_only {
            "SELECT version, event_id, payload, actor, effects, status, status_reason, occurred_at FROM coordination_events WHERE suggestion_id = $1 AND status = 'pending' ORDER BY version"
        } else {
            "SELECT version, event_id, payload, actor, effects, status, status_reason, occurred_at FROM coordination_events WHERE suggestion_id = $1 ORDER BY version"
        };
        let rows: Vec<OwnRow> = on_pool!(self.pool(), p => sqlx::query_as(sql)
            .bind(id.to_string())
            .fetch_all(p)
            .await)?;
        own_events_of(rows)
    }

    /// Appends own events to a case at `expected` version, with their outbox rows.
    pub async fn append(
        &self,
        id: SuggestionId,
        expected: u64,
        case: &CoordinationCase,
        events: &[NewOwnEvent],
    ) -> Result<(), StoreError> {
        let traceparent = banli_eventlog::trace::traceparent();
        let rows = event_rows(id, expected, events, traceparent.as_deref())?;
        let refs: Vec<_> = events.iter().flat_map(|e| own_refs_of(&e.event)).collect();
        let (key, case) = (id.to_string(), json(case)?);
        let written = (key.clone(), expected + events.len() as u64);
        let now = OffsetDateTime::now_utc();
        self.write(move |pool| async move {
            match &pool {
                Pool::Sqlite(p) => {
                    let mut tx = p.begin().await?;
                    sqlite::append_own(&mut tx, &key, expected, &case, &rows, &refs, now).await?;
                    tx.commit().await?;
                }
                Pool::Postgres(p) => {
                    let mut tx = p.begin().await?;
                    postgres::append_own(&mut tx, &key, expected, &case, &rows, &refs, now).await?;
                    tx.commit().await?;
                }
            }
            Ok(())
        })
        .await?;
        self.outbox.written();
        banli_eventlog::consistency::note_written("coordination", &written.0, written.1);
        Ok(())
    }

    /// Task rows, for an agency (or every agency), optionally of one role, after a cursor;
    /// without the confidential suggestions' rows when `hide_confidential`.
    pub async fn tasks(
        &self,
        agency: Option<AgencyId>,
        role: Option<UnitRole>,
        after: Option<Uuid>,
        limit: u32,
        hide_confidential: bool,
    ) -> Result<Vec<Task>, StoreError> {
        let sql = format!(
            "SELECT assignment_id, suggestion_id, agency_id, role, state, opinion, co_opinion_due, reply_due FROM coordination_tasks \
             WHERE ($1 = '' OR agency_id = $1) AND ($2 = '' OR role = $2) AND assignment_id > $3 AND state <> $4{} ORDER BY assignment_id LIMIT $5",
            if hide_confidential {
                NOT_CONFIDENTIAL_TASK
            } else {
                ""
            }
        );
        let rows: Vec<TaskRow> = on_pool!(self.pool(), p => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
            .bind(agency.map(|a| a.to_string()).unwrap_or_default())
            .bind(role.map(|r| r.as_str()).unwrap_or_default())
            .bind(after.map(|a| a.to_string()).unwrap_or_default())
            .bind(AssignmentState::Superseded.as_str())
            .bind(i64::from(limit))
            .fetch_all(p)
            .await)?;
        rows.into_iter()
            .map(
                |(aid, sid, agency, role, state, opinion, co_opinion_due, reply_due)| {
                    Ok(Task {
                        assignment_id: uuid("task", &aid)?,
                        suggestion_id: uuid("task", &sid)?,
                        agency_id: uuid("task", &agency)?,
                        role,
                        state,
                        opinion,
                        co_opinion_due,
                        reply_due,
                    })
                },
            )
            .collect()
    }
}

enum Prepared {
    Apply(Envelope, Box<ReplicaChange>, Vec<EventRow>, Vec<Task>),
    Park(Envelope, String, bool),
}

/// The table in which this service records its migrations: its own, so that services can share
/// one database.
pub const MIGRATIONS_TABLE: &str = "_migrations_coordination";

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
