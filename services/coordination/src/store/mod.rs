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

pub mod feed;

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

#[derive(Serialize)]
struct WireOut<'a> {
    event_id: Uuid,
    schema_version: u32,
    event_type: &'a str,
    aggregate_type: &'static str,
    aggregate_id: String,
    aggregate_version: u64,
    #[serde(with = "time::serde::rfc3339")]
    occurred_at: OffsetDateTime,
    actor: &'a Actor,
    payload: &'a CoordinationEvent,
    /// The W3C trace context of the command that wrote it, when traces are exported.
    #[serde(skip_serializing_if = "Option::is_none")]
    traceparent: Option<&'a str>,
}

/// Rows for appending own events: (version, event id, type, payload, actor, effects, status,
/// envelope, time).
type EventRow = (
    i64,
    String,
    String,
    String,
    String,
    String,
    &'static str,
    String,
    OffsetDateTime,
);

fn event_rows(
    id: SuggestionId,
    from_version: u64,
    events: &[NewOwnEvent],
    traceparent: Option<&str>,
) -> Result<Vec<EventRow>, StoreError> {
    events
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let version = from_version + 1 + i as u64;
            let ty = e.event.event_type();
            let status = if e.effects.is_empty() {
                Status::Final
            } else {
                Status::Pending
            };
            let wire = WireOut {
                event_id: e.event_id,
                schema_version: SCHEMA_VERSION,
                event_type: &ty,
                aggregate_type: "coordination",
                aggregate_id: id.to_string(),
                aggregate_version: version,
                occurred_at: e.occurred_at,
                actor: &e.actor,
                payload: &e.event,
                traceparent,
            };
            let wire = json(&wire)?;
            Ok((
                version as i64,
                e.event_id.to_string(),
                ty,
                json(&e.event)?,
                json(&e.actor)?,
                json(&e.effects)?,
                status.as_str(),
                wire,
                e.occurred_at,
            ))
        })
        .collect()
}

macro_rules! backend {
    ($module:ident, $conn:ty, $inbox:ident) => {
        mod $module {
            use super::*;

            /// Appends own events and their outbox rows, moving the case from `expected` on.
            pub async fn append_own(
                c: &mut $conn,
                id: &str,
                expected: u64,
                case: &str,
                rows: &[EventRow],
                refs: &[(Uuid, &'static str)],
                now: OffsetDateTime,
            ) -> Result<(), StoreError> {
                let new_version = expected + rows.len() as u64;
                let r = sqlx::query("UPDATE coordination_cases SET version = $1, state = $2, updated_at = $3 WHERE suggestion_id = $4 AND version = $5")
                    .bind(new_version as i64)
                    .bind(case)
                    .bind(now)
                    .bind(id)
                    .bind(expected as i64)
                    .execute(&mut *c)
                    .await?;
                if r.rows_affected() == 0 {
                    let actual: Option<(i64,)> = sqlx::query_as("SELECT version FROM coordination_cases WHERE suggestion_id = $1")
                        .bind(id)
                        .fetch_optional(&mut *c)
                        .await?;
                    return Err(match actual {
                        None => StoreError::NotFound(format!("suggestion {id}")),
                        Some((v,)) => StoreError::Conflict { expected, actual: v as u64 },
                    });
                }
                for (version, event_id, ty, payload, actor, effects, status, wire, at) in rows {
                    sqlx::query("INSERT INTO coordination_events (suggestion_id, version, event_id, event_type, payload, actor, effects, status, occurred_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)")
                        .bind(id).bind(*version).bind(event_id).bind(ty).bind(payload).bind(actor).bind(effects).bind(*status).bind(*at)
                        .execute(&mut *c)
                        .await?;
                    sqlx::query("INSERT INTO coordination_outbox (event_id, event_type, aggregate_type, aggregate_id, aggregate_version, payload, occurred_at) VALUES ($1, $2, 'coordination', $3, $4, $5, $6)")
                        .bind(event_id).bind(ty).bind(id).bind(*version).bind(wire).bind(*at)
                        .execute(&mut *c)
                        .await?;
                }
                insert_refs(c, id, refs).await
            }

            pub async fn insert_refs(
                c: &mut $conn,
                id: &str,
                refs: &[(Uuid, &'static str)],
            ) -> Result<(), StoreError> {
                for (ref_id, kind) in refs {
                    sqlx::query("INSERT INTO coordination_refs (ref_id, kind, suggestion_id) VALUES ($1, $2, $3) ON CONFLICT (ref_id) DO NOTHING")
                        .bind(ref_id.to_string())
                        .bind(*kind)
                        .bind(id)
                        .execute(&mut *c)
                        .await?;
                }
                Ok(())
            }

            /// The writes of one consumed event that stay its own: the command it settles, and
            /// the events (reply copies) it causes here.
            pub async fn apply_own(
                c: &mut $conn,
                ch: &ReplicaChange,
                rows: &[EventRow],
                now: OffsetDateTime,
            ) -> Result<(), StoreError> {
                if let Some((event_id, status, reason)) = &ch.settles {
                    sqlx::query("UPDATE coordination_events SET status = $1, status_reason = $2 WHERE event_id = $3 AND status = 'pending'")
                        .bind(status.as_str())
                        .bind(reason.as_deref())
                        .bind(event_id.to_string())
                        .execute(&mut *c)
                        .await?;
                }
                if !rows.is_empty() {
                    let refs: Vec<_> = ch.caused.iter().flat_map(|e| own_refs_of(&e.event)).collect();
                    let id = ch.suggestion_id.to_string();
                    append_own(c, &id, ch.case_version, &json(&ch.case)?, rows, &refs, now).await?;
                }
                Ok(())
            }
        }
    };
}

backend!(sqlite, sqlx::SqliteConnection, sqlite);
backend!(postgres, sqlx::PgConnection, postgres);

/// The replicas a consumed batch moves on, written in one statement at its end: per case the
/// version it expected first and the replica it left last.
#[derive(Default)]
struct Replicas {
    order: Vec<String>,
    rows: std::collections::HashMap<String, (u64, u64, String)>,
}

impl Replicas {
    fn note(&mut self, ch: &ReplicaChange) -> Result<(), StoreError> {
        let Some(expected) = ch.expected_replica_version else {
            return Ok(());
        };
        let id = ch.suggestion_id.to_string();
        let replica = json(&ch.replica)?;
        match self.rows.get_mut(&id) {
            Some(row) => {
                row.1 = ch.replica_version;
                row.2 = replica;
            }
            None => {
                self.order.push(id.clone());
                self.rows
                    .insert(id, (expected, ch.replica_version, replica));
            }
        }
        Ok(())
    }

    /// One UPDATE for every case; a case whose replica moved meanwhile is a conflict (the
    /// batch is delivered again).
    async fn write_sqlite(
        self,
        c: &mut sqlx::SqliteConnection,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        if self.order.is_empty() {
            return Ok(());
        }
        let rows: Vec<(&str, u64, u64, &str)> = self
            .order
            .iter()
            .filter_map(|id| {
                self.rows
                    .get(id)
                    .map(|(e, v, r)| (id.as_str(), *e, *v, r.as_str()))
            })
            .collect();
        let r = sqlx::query(
            "UPDATE coordination_cases SET replica_version = x.v, replica = x.r, updated_at = $2 \
             FROM (SELECT json_extract(value, '$[0]') AS id, json_extract(value, '$[1]') AS e, \
                          json_extract(value, '$[2]') AS v, json_extract(value, '$[3]') AS r FROM json_each($1)) AS x \
             WHERE coordination_cases.suggestion_id = x.id AND coordination_cases.replica_version = x.e",
        )
        .bind(serde_json::to_string(&rows).map_err(|e| StoreError::Corrupt(e.to_string()))?)
        .bind(now)
        .execute(&mut *c)
        .await?;
        if r.rows_affected() != rows.len() as u64 {
            let (_, expected, actual, _) = rows[0];
            return Err(StoreError::Conflict { expected, actual });
        }
        Ok(())
    }
}

impl Replicas {
    /// [`Replicas::write_sqlite`] on PostgreSQL: one UPDATE from arrays.
    async fn write_postgres(
        self,
        c: &mut sqlx::PgConnection,
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        if self.order.is_empty() {
            return Ok(());
        }
        let mut ids = Vec::with_capacity(self.order.len());
        let (mut expected, mut versions, mut replicas) = (Vec::new(), Vec::new(), Vec::new());
        for id in &self.order {
            if let Some((e, v, r)) = self.rows.get(id) {
                ids.push(id.as_str());
                expected.push(*e as i64);
                versions.push(*v as i64);
                replicas.push(r.as_str());
            }
        }
        let r = sqlx::query(
            "UPDATE coordination_cases c SET replica_version = x.v, replica = x.r, updated_at = $5 \
             FROM UNNEST($1::text[], $2::bigint[], $3::bigint[], $4::text[]) AS x(id, e, v, r) \
             WHERE c.suggestion_id = x.id AND c.replica_version = x.e",
        )
        .bind(&ids)
        .bind(&expected)
        .bind(&versions)
        .bind(&replicas)
        .bind(now)
        .execute(&mut *c)
        .await?;
        if r.rows_affected() != ids.len() as u64 {
            return Err(StoreError::Conflict {
                expected: expected[0].max(0) as u64,
                actual: versions[0].max(0) as u64,
            });
        }
        Ok(())
    }
}

/// What every applied event of a batch adds besides its own events, gathered to be written once
/// for the batch: the replicas, the task rows, the feed rows, the references and the inbox
/// entries.
#[derive(Default)]
struct Gathered<'a> {
    applied: Vec<&'a Envelope>,
    replicas: Replicas,
    tasks: BatchTasks,
    feed: Vec<crate::feed::FeedEntry>,
    refs: Vec<(Uuid, &'static str, SuggestionId)>,
}

impl<'a> Gathered<'a> {
    fn add(
        &mut self,
        e: &'a Envelope,
        ch: &ReplicaChange,
        changed: &[Task],
    ) -> Result<(), StoreError> {
        self.replicas.note(ch)?;
        self.tasks.extend(changed);
        self.feed.extend(ch.feed.iter().cloned());
        self.refs.extend(
            refs_of(&ch.event)
                .into_iter()
                .map(|(r, k)| (r, k, ch.suggestion_id)),
        );
        self.applied.push(e);
        Ok(())
    }
}

/// The condition that leaves out the task rows of confidential suggestions.
const NOT_CONFIDENTIAL_TASK: &str = " AND NOT EXISTS (SELECT 1 FROM coordination_cases c \
     WHERE c.suggestion_id = coordination_tasks.suggestion_id AND c.confidential)";

/// The case rows a batch creates (id, replica version, replica, confidential): written first,
/// in one statement.
fn new_cases(prepared: &[Prepared]) -> Result<Vec<(String, i64, String, bool)>, StoreError> {
    prepared
        .iter()
        .filter_map(|i| match i {
            Prepared::Apply(_, ch, _, _) if ch.expected_replica_version.is_none() => Some(&**ch),
            _ => None,
        })
        .map(|c| {
            Ok((
                c.suggestion_id.to_string(),
                c.replica_version as i64,
                json(&c.replica)?,
                c.replica.details.confidential,
            ))
        })
        .collect()
}

/// SQLite has no arrays: the batch's rows go in as JSON, one statement a table.
mod sqlite_bulk {
    use super::*;

    pub async fn new_cases(
        c: &mut sqlx::SqliteConnection,
        cases: &[(String, i64, String, bool)],
        now: OffsetDateTime,
    ) -> Result<(), StoreError> {
        if cases.is_empty() {
            return Ok(());
        }
        sqlx::query(
            "INSERT INTO coordination_cases (suggestion_id, replica_version, replica, version, state, updated_at, confidential) \
             SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]'), 0, $2, $3, json_extract(value, '$[3]') FROM json_each($1)",
        )
        .bind(json(&cases)?)
        .bind(json(&CoordinationCase::default())?)
        .bind(now)
        .execute(&mut *c)
        .await?;
        Ok(())
    }

    pub async fn tasks(
        c: &mut sqlx::SqliteConnection,
        tasks: BatchTasks,
    ) -> Result<(), StoreError> {
        let rows: Vec<&Task> = tasks
            .order
            .iter()
            .filter_map(|a| tasks.rows.get(a))
            .collect();
        if rows.is_empty() {
            return Ok(());
        }
        let rows: Vec<_> = rows
            .iter()
            .map(|t| {
                (
                    t.assignment_id.to_string(),
                    t.suggestion_id.to_string(),
                    t.agency_id.to_string(),
                    &t.role,
                    &t.state,
                    &t.opinion,
                    t.co_opinion_due,
                    t.reply_due,
                )
            })
            .collect();
        // Dates serialize as `YYYY-MM-DD`, as sqlx binds them.
        sqlx::query(
            "INSERT INTO coordination_tasks (assignment_id, suggestion_id, agency_id, role, state, opinion, co_opinion_due, reply_due) \
             SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]'), json_extract(value, '$[3]'), \
             json_extract(value, '$[4]'), json_extract(value, '$[5]'), json_extract(value, '$[6]'), json_extract(value, '$[7]') \
             FROM json_each($1) WHERE true \
             ON CONFLICT (assignment_id) DO UPDATE SET state = excluded.state, opinion = excluded.opinion, \
             co_opinion_due = excluded.co_opinion_due, reply_due = excluded.reply_due",
        )
        .bind(json(&rows)?)
        .execute(&mut *c)
        .await?;
        Ok(())
    }

    pub async fn refs(
        c: &mut sqlx::SqliteConnection,
        refs: &[(Uuid, &'static str, SuggestionId)],
    ) -> Result<(), StoreError> {
        if refs.is_empty() {
            return Ok(());
        }
        let rows: Vec<(String, &str, String)> = refs
            .iter()
            .map(|(r, k, s)| (r.to_string(), *k, s.to_string()))
            .collect();
        sqlx::query(
            "INSERT INTO coordination_refs (ref_id, kind, suggestion_id) \
             SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]') FROM json_each($1) WHERE true \
             ON CONFLICT (ref_id) DO NOTHING",
        )
        .bind(json(&rows)?)
        .execute(&mut *c)
        .await?;
        Ok(())
    }
}

/// The task rows a consumed batch changes, each assignment once (as the batch left it), in
/// the order they were first changed.
#[derive(Default)]
struct BatchTasks {
    order: Vec<Uuid>,
    rows: std::collections::HashMap<Uuid, Task>,
}

impl BatchTasks {
    fn extend(&mut self, tasks: &[Task]) {
        for t in tasks {
            if self.rows.insert(t.assignment_id, t.clone()).is_none() {
                self.order.push(t.assignment_id);
            }
        }
    }

    /// One upsert from arrays.
    async fn write_postgres(self, c: &mut sqlx::PgConnection) -> Result<(), StoreError> {
        let tasks: Vec<&Task> = self.order.iter().filter_map(|a| self.rows.get(a)).collect();
        if tasks.is_empty() {
            return Ok(());
        }
        let text = |f: &dyn Fn(&Task) -> String| tasks.iter().map(|t| f(t)).collect::<Vec<_>>();
        sqlx::query(
            "INSERT INTO coordination_tasks (assignment_id, suggestion_id, agency_id, role, state, opinion, co_opinion_due, reply_due) \
             SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::date[], $8::date[]) \
             ON CONFLICT (assignment_id) DO UPDATE SET state = excluded.state, opinion = excluded.opinion, \
             co_opinion_due = excluded.co_opinion_due, reply_due = excluded.reply_due",
        )
        .bind(text(&|t| t.assignment_id.to_string()))
        .bind(text(&|t| t.suggestion_id.to_string()))
        .bind(text(&|t| t.agency_id.to_string()))
        .bind(text(&|t| t.role.clone()))
        .bind(text(&|t| t.state.clone()))
        .bind(text(&|t| t.opinion.clone()))
        .bind(tasks.iter().map(|t| t.co_opinion_due).collect::<Vec<_>>())
        .bind(tasks.iter().map(|t| t.reply_due).collect::<Vec<_>>())
        .execute(&mut *c)
        .await?;
        Ok(())
    }
}

/// The references a batch names, in one statement (a known one stays as it is).
async fn postgres_refs(
    c: &mut sqlx::PgConnection,
    refs: &[(Uuid, &'static str, SuggestionId)],
) -> Result<(), StoreError> {
    if refs.is_empty() {
        return Ok(());
    }
    let ids: Vec<String> = refs.iter().map(|(r, _, _)| r.to_string()).collect();
    let kinds: Vec<&str> = refs.iter().map(|(_, k, _)| *k).collect();
    let suggestions: Vec<String> = refs.iter().map(|(_, _, s)| s.to_string()).collect();
    sqlx::query(
        "INSERT INTO coordination_refs (ref_id, kind, suggestion_id) \
         SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[]) ON CONFLICT (ref_id) DO NOTHING",
    )
    .bind(&ids)
    .bind(&kinds)
    .bind(&suggestions)
    .execute(&mut *c)
    .await?;
    Ok(())
}

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

    /// [`Store::load`] for many cases at once, from one snapshot: two queries whatever their
    /// number (a consumer's batch). Cases not stored are absent from the map.
    pub async fn load_many(
        &self,
        ids: &[SuggestionId],
    ) -> Result<std::collections::HashMap<SuggestionId, CaseRecord>, StoreError> {
        let mut out = std::collections::HashMap::new();
        if ids.is_empty() {
            return Ok(out);
        }
        let keys: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
        type ManyCase = (String, i64, String, i64, String);
        type ManyOwn = (
            String,
            i64,
            String,
            String,
            String,
            String,
            String,
            Option<String>,
            OffsetDateTime,
        );
        let (cases, events): (Vec<ManyCase>, Vec<ManyOwn>) = match self.pool() {
            Pool::Sqlite(p) => {
                let list = serde_json::to_string(&keys).unwrap_or_default();
                let mut tx = p.begin().await?;
                let cases = sqlx::query_as(
                    "SELECT suggestion_id, replica_version, replica, version, state FROM coordination_cases \
                     WHERE suggestion_id IN (SELECT value FROM json_each($1))",
                )
                .bind(&list)
                .fetch_all(&mut *tx)
                .await?;
                let events = sqlx::query_as(
                    "SELECT suggestion_id, version, event_id, payload, actor, effects, status, status_reason, occurred_at FROM coordination_events \
                     WHERE suggestion_id IN (SELECT value FROM json_each($1)) AND status = 'pending' ORDER BY suggestion_id, version",
                )
                .bind(&list)
                .fetch_all(&mut *tx)
                .await?;
                tx.commit().await?;
                (cases, events)
            }
            Pool::Postgres(p) => {
                let mut tx = p
                    .begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
                    .await?;
                let cases = sqlx::query_as(
                    "SELECT suggestion_id, replica_version, replica, version, state FROM coordination_cases \
                     WHERE suggestion_id = ANY($1)",
                )
                .bind(&keys)
                .fetch_all(&mut *tx)
                .await?;
                let events = sqlx::query_as(
                    "SELECT suggestion_id, version, event_id, payload, actor, effects, status, status_reason, occurred_at FROM coordination_events \
                     WHERE suggestion_id = ANY($1) AND status = 'pending' ORDER BY suggestion_id, version",
                )
                .bind(&keys)
                .fetch_all(&mut *tx)
                .await?;
                tx.commit().await?;
                (cases, events)
            }
        };
        let mut pending: std::collections::HashMap<String, Vec<OwnRow>> = Default::default();
        for (sid, version, event_id, payload, actor, effects, status, reason, at) in events {
            pending.entry(sid).or_default().push((
                version, event_id, payload, actor, effects, status, reason, at,
            ));
        }
        for (sid, replica_version, replica, version, state) in cases {
            let id = SuggestionId(uuid("suggestion", &sid)?);
            let mut case: CoordinationCase = parse("case", &state)?;
            case.version = version.max(0) as u64;
            out.insert(
                id,
                CaseRecord {
                    replica: parse("replica", &replica)?,
                    replica_version: replica_version.max(0) as u64,
                    case,
                    pending: own_events_of(pending.remove(&sid).unwrap_or_default())?,
                },
            );
        }
        Ok(out)
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

    /// Writes a consumed batch — each event's effect or parking, each with its inbox entry —
    /// in one transaction.
    pub async fn apply_batch(
        &self,
        inbox: &Inbox,
        items: Vec<BatchItem>,
    ) -> Result<(), StoreError> {
        let mut prepared = Vec::with_capacity(items.len());
        for item in items {
            prepared.push(match item {
                BatchItem::Apply(e, change) => {
                    let traceparent = banli_eventlog::trace::inherited(&e.payload);
                    let rows = event_rows(
                        change.suggestion_id,
                        change.case_version,
                        &change.caused,
                        traceparent.as_deref(),
                    )?;
                    let tasks: Vec<Task> = tasks_of(&change.replica)
                        .into_iter()
                        .filter(|t| !change.tasks_before.as_ref().is_some_and(|b| b.contains(t)))
                        .collect();
                    Prepared::Apply(e, change, rows, tasks)
                }
                BatchItem::Park(e, reason, advance) => Prepared::Park(e, reason, advance),
            });
        }
        let caused = prepared
            .iter()
            .any(|p| matches!(p, Prepared::Apply(_, _, rows, _) if !rows.is_empty()));
        let fed = prepared
            .iter()
            .any(|p| matches!(p, Prepared::Apply(_, ch, _, _) if !ch.feed.is_empty()));
        let inbox = inbox.clone();
        let now = OffsetDateTime::now_utc();
        self.write(move |pool| async move {
            match &pool {
                Pool::Sqlite(p) => {
                    let mut tx = p.begin().await?;
                    // As on PostgreSQL: new cases first, each event's own writes in order,
                    // then what every event adds, once for the batch.
                    sqlite_bulk::new_cases(&mut tx, &new_cases(&prepared)?, now).await?;
                    let mut all = Gathered::default();
                    for item in &prepared {
                        match item {
                            Prepared::Apply(e, ch, rows, changed) => {
                                sqlite::apply_own(&mut tx, ch, rows, now).await?;
                                all.add(e, ch, changed)?;
                            }
                            Prepared::Park(e, reason, advance) => {
                                inbox::sqlite::park(&inbox, &mut tx, e, reason, *advance).await?;
                            }
                        }
                    }
                    all.replicas.write_sqlite(&mut tx, now).await?;
                    sqlite_bulk::tasks(&mut tx, all.tasks).await?;
                    feed::sqlite::insert(&mut tx, &all.feed).await?;
                    sqlite_bulk::refs(&mut tx, &all.refs).await?;
                    inbox::sqlite::record_applied(&inbox, &mut tx, &all.applied)
                        .await
                        .map_err(duplicate)?;
                    tx.commit().await?;
                }
                Pool::Postgres(p) => {
                    let mut tx = p.begin().await?;
                    // New cases first, in one statement; the inbox entries last, in two.
                    let cases = new_cases(&prepared)?;
                    if !cases.is_empty() {
                        let ids: Vec<&str> = cases.iter().map(|c| c.0.as_str()).collect();
                        let versions: Vec<i64> = cases.iter().map(|c| c.1).collect();
                        let replicas: Vec<&str> = cases.iter().map(|c| c.2.as_str()).collect();
                        let confidential: Vec<bool> = cases.iter().map(|c| c.3).collect();
                        sqlx::query("INSERT INTO coordination_cases (suggestion_id, replica_version, replica, version, state, updated_at, confidential) \
                                     SELECT x.id, x.v, x.r, 0, $4, $5, x.c FROM UNNEST($1::text[], $2::bigint[], $3::text[], $6::boolean[]) AS x(id, v, r, c)")
                            .bind(&ids)
                            .bind(&versions)
                            .bind(&replicas)
                            .bind(json(&CoordinationCase::default())?)
                            .bind(now)
                            .bind(&confidential)
                            .execute(&mut *tx)
                            .await?;
                    }
                    // Then each event's own writes in order (settled commands, reply copies),
                    // and what every event adds, once for the batch: the replicas, the task
                    // rows, the feed rows and the references.
                    let mut all = Gathered::default();
                    for item in &prepared {
                        match item {
                            Prepared::Apply(e, ch, rows, changed) => {
                                postgres::apply_own(&mut tx, ch, rows, now).await?;
                                all.add(e, ch, changed)?;
                            }
                            Prepared::Park(e, reason, advance) => {
                                inbox::postgres::park(&inbox, &mut tx, e, reason, *advance).await?;
                            }
                        }
                    }
                    all.replicas.write_postgres(&mut tx, now).await?;
                    all.tasks.write_postgres(&mut tx).await?;
                    feed::postgres::insert(&mut tx, &all.feed).await?;
                    postgres_refs(&mut tx, &all.refs).await?;
                    inbox::postgres::record_applied(&inbox, &mut tx, &all.applied)
                        .await
                        .map_err(duplicate)?;
                    tx.commit().await?;
                }
            }
            Ok(())
        })
        .await?;
        if caused {
            self.outbox.written();
        }
        if fed {
            self.feed_written();
        }
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
