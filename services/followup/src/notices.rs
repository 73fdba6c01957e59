//! Supervision notices (督办通知): issued to a unit that holds an assignment on the items,
//! acknowledged, answered in writing, and — unanswered past their due date — escalated one rung
//! up the ladder by a timer. Every notice, acknowledgement, response and escalation is written
//! with its change as an audit record, then appended to the audit log in order.

use banli_api::{AppError, ErrorCode, Principal};
use banli_db::Pool;
use banli_domain::Actor;
use banli_domain::ids::{AgencyId, NoticeId, SuggestionId};
use banli_domain::suggestion::{AssignmentState, Suggestion};
use banli_domain::supervision::{
    NoticeCommand, NoticeEvent, NoticeState, PublishedNotice, SupervisionNotice, decide,
};
use serde_json::{Value, json};
use time::{Date, OffsetDateTime};
use tracing::Instrument;
use uuid::Uuid;

use crate::store::{Store, StoreError, fire_time};

/// The timer that escalates an unanswered notice.
pub fn escalation_key(id: NoticeId) -> String {
    format!("notice:{id}:escalate")
}

/// A stored notice and its version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredNotice {
    pub notice: SupervisionNotice,
    pub version: u64,
}

fn state_str(s: NoticeState) -> &'static str {
    match s {
        NoticeState::Issued => "issued",
        NoticeState::Acknowledged => "acknowledged",
        NoticeState::Answered => "answered",
        NoticeState::Escalated => "escalated",
    }
}

/// The audit record of a notice event.
fn record(
    n: &SupervisionNotice,
    e: &NoticeEvent,
    actor: &Actor,
    at: OffsetDateTime,
) -> (String, String) {
    let source_id = Uuid::now_v7().to_string();
    let (record_type, data) = match e {
        NoticeEvent::Issued(n) => (
            "supervision_notice",
            serde_json::to_value(n).unwrap_or(Value::Null),
        ),
        NoticeEvent::Acknowledged { on } => {
            ("notice_acknowledged", json!({"notice_id": n.id, "on": on}))
        }
        NoticeEvent::Answered {
            response,
            on,
            late,
            documents,
        } => (
            "notice_response",
            json!({"notice_id": n.id, "response": response, "on": on, "due": n.response_due, "late": late, "documents": documents}),
        ),
        NoticeEvent::Escalated { to, on } => (
            "notice_escalated",
            json!({"notice_id": n.id, "to": to, "on": on}),
        ),
    };
    let r = json!({
        "record_type": record_type,
        "source_id": source_id,
        "subject": n.suggestions.first().map(|s| s.to_string()),
        "occurred_at": at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
        "actor": actor,
        "data": data,
    });
    (source_id, r.to_string())
}

/// A notice event as the event log carries it (`supervision.notice_issued`, …): the envelope
/// every service writes, the payload `{"type": …, "data": {"notice": <the notice after it>, …}}`.
fn wire(
    n: &SupervisionNotice,
    e: &NoticeEvent,
    version: u64,
    actor: &Actor,
    at: OffsetDateTime,
) -> (String, String, String) {
    let published = PublishedNotice::of(n, e);
    let event_id = Uuid::now_v7();
    let ty = published.event_type();
    let envelope = json!({
        "event_id": event_id,
        "schema_version": banli_domain::supervision::SCHEMA_VERSION,
        "event_type": ty,
        "aggregate_type": "supervision",
        "aggregate_id": n.id.to_string(),
        "aggregate_version": version,
        "occurred_at": at.format(&time::format_description::well_known::Rfc3339).unwrap_or_default(),
        "actor": actor,
        "payload": published,
    });
    let mut envelope = envelope;
    if let Some(tp) = banli_eventlog::trace::traceparent() {
        envelope["traceparent"] = Value::String(tp);
    }
    (event_id.to_string(), ty, envelope.to_string())
}

macro_rules! backend {
    ($module:ident, $conn:ty, $timers:ident) => {
        /// Notice writes within a caller's transaction.
        pub mod $module {
            use super::*;

            pub async fn load(c: &mut $conn, id: NoticeId) -> Result<Option<StoredNotice>, StoreError> {
                let row: Option<(String, i64)> = sqlx::query_as("SELECT notice, version FROM followup_notices WHERE notice_id = $1")
                    .bind(id.to_string())
                    .fetch_optional(&mut *c)
                    .await?;
                row.map(|(n, v)| {
                    Ok(StoredNotice {
                        notice: serde_json::from_str(&n).map_err(|e| StoreError::Corrupt(format!("notice {id}: {e}")))?,
                        version: v.max(0) as u64,
                    })
                })
                .transpose()
            }

            /// Stores the notice after `events` (from `expected`, `None` when new), their audit
            /// records, and its escalation timer (scheduled while it awaits a response).
            pub async fn save(
                c: &mut $conn,
                store: &Store,
                expected: Option<u64>,
                n: &SupervisionNotice,
                events: &[NoticeEvent],
                actor: &Actor,
                now: OffsetDateTime,
            ) -> Result<u64, StoreError> {
                let json = serde_json::to_string(n).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                let version = expected.unwrap_or(0) + events.len() as u64;
                match expected {
                    None => {
                        sqlx::query("INSERT INTO followup_notices (notice_id, issuer_agency_id, target_agency_id, state, response_due, version, notice, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)")
                            .bind(n.id.to_string()).bind(n.issuer.to_string()).bind(n.target.to_string()).bind(state_str(n.state))
                            .bind(n.response_due).bind(version as i64).bind(&json).bind(now)
                            .execute(&mut *c).await?;
                    }
                    Some(v) => {
                        let r = sqlx::query("UPDATE followup_notices SET state = $2, version = $3, notice = $4, updated_at = $5 WHERE notice_id = $1 AND version = $6")
                            .bind(n.id.to_string()).bind(state_str(n.state)).bind(version as i64).bind(&json).bind(now).bind(v as i64)
                            .execute(&mut *c).await?;
                        if r.rows_affected() == 0 {
                            return Err(StoreError::Corrupt("conflict".into()));
                        }
                    }
                }
                for (i, e) in events.iter().enumerate() {
                    let (source, rec) = record(n, e, actor, now);
                    sqlx::query("INSERT INTO followup_audit_outbox (source_id, record) VALUES ($1, $2)")
                        .bind(source).bind(rec)
                        .execute(&mut *c).await?;
                    let v = expected.unwrap_or(0) + i as u64 + 1;
                    let (event_id, ty, wire) = wire(n, e, v, actor, now);
                    sqlx::query("INSERT INTO followup_outbox (event_id, event_type, aggregate_type, aggregate_id, aggregate_version, payload, occurred_at) \
                                 VALUES ($1, $2, 'supervision', $3, $4, $5, $6)")
                        .bind(event_id).bind(ty).bind(n.id.to_string()).bind(v as i64).bind(wire).bind(now)
                        .execute(&mut *c).await?;
                }
                let key = escalation_key(n.id);
                if matches!(n.state, NoticeState::Issued | NoticeState::Acknowledged) {
                    let payload = json!({"escalate": n.id}).to_string();
                    banli_timers::$timers::schedule(store.timers(), &mut *c, &key, fire_time(n.response_due + time::Duration::days(1)), &payload).await?;
                } else {
                    banli_timers::$timers::cancel(store.timers(), &mut *c, &key).await?;
                }
                Ok(version)
            }

            pub async fn replica(c: &mut $conn, id: SuggestionId) -> Result<Option<Suggestion>, StoreError> {
                let row: Option<(String,)> = sqlx::query_as("SELECT replica FROM followup_cases WHERE suggestion_id = $1")
                    .bind(id.to_string())
                    .fetch_optional(&mut *c)
                    .await?;
                row.map(|(r,)| serde_json::from_str(&r).map_err(|e| StoreError::Corrupt(format!("replica {id}: {e}"))))
                    .transpose()
            }
        }
    };
}

backend!(sqlite, sqlx::SqliteConnection, sqlite);
backend!(postgres, sqlx::PgConnection, postgres);

/// What the API asks for.
/// A notice command; `D` is how a response names its documents: SHA-256s as received, then
/// the caller's uploads they resolve to.
#[derive(Debug, Clone)]
pub enum Command<D = Vec<String>> {
    Issue {
        target: AgencyId,
        suggestions: Vec<SuggestionId>,
        level: banli_domain::supervision::Level,
        body: String,
        response_due: Date,
    },
    Acknowledge(NoticeId),
    /// The response, and the documents it encloses.
    Answer(NoticeId, String, D),
}

/// A command whose documents are resolved against the caller's uploads.
type Resolved = Command<Vec<banli_domain::document::DocumentRef>>;

impl Command {
    /// Resolves the documents a response names: each must be one the caller's agency uploaded
    /// (404 otherwise).
    async fn resolve(
        self,
        docs: Option<&banli_documents::Documents>,
        p: &Principal,
    ) -> Result<Resolved, AppError> {
        Ok(match self {
            Command::Issue {
                target,
                suggestions,
                level,
                body,
                response_due,
            } => Command::Issue {
                target,
                suggestions,
                level,
                body,
                response_due,
            },
            Command::Acknowledge(id) => Command::Acknowledge(id),
            Command::Answer(id, response, hashes) => {
                let hashes: Vec<&str> = hashes.iter().map(String::as_str).collect();
                let resolved = banli_documents::access::resolve(docs, p, &hashes).await?;
                Command::Answer(id, response, resolved)
            }
        })
    }
}

fn store_error(e: StoreError) -> AppError {
    match e {
        StoreError::Corrupt(m) if m == "conflict" => AppError::new(
            ErrorCode::Conflict,
            "the notice changed meanwhile; read it again and retry",
        ),
        other => AppError::internal(&other),
    }
}

macro_rules! run_on {
    ($name:ident, $db:ty, $module:ident) => {
        async fn $name(
            p: &sqlx::Pool<$db>,
            store: &Store,
            actor: &Actor,
            cmd: &Resolved,
            if_match: Option<u64>,
            today: Date,
        ) -> Result<StoredNotice, AppError> {
            let now = OffsetDateTime::now_utc();
            let mut tx = p.begin().await.map_err(|e| AppError::internal(&e))?;
            let (current, command) = match cmd {
                Command::Issue { target, suggestions, level, body, response_due } => {
                    if suggestions.is_empty() {
                        return Err(AppError::new(ErrorCode::InvalidArgument, "`suggestion_ids`: name at least one suggestion"));
                    }
                    let issuer = actor.agency.ok_or_else(|| AppError::forbidden("this key has no agency to issue from"))?;
                    let n = SupervisionNotice { response_documents: Vec::new(),
                        id: NoticeId::new(),
                        issuer,
                        target: *target,
                        suggestions: suggestions.clone(),
                        level: *level,
                        trigger: banli_domain::supervision::Trigger::Manual,
                        body: body.clone(),
                        issued_on: today,
                        response_due: *response_due,
                        state: NoticeState::Issued,
                        acknowledged_on: None,
                        response: None,
                        answered_on: None,
                        answered_late: false,
                        escalated_to: None,
                    };
                    let command = NoticeCommand::Issue(n);
                    // Who may issue, and the notice's own fields, are decided before anything
                    // about the items is looked at: a caller who may not issue learns nothing
                    // of who holds what.
                    decide(None, actor, &command)?;
                    for s in suggestions {
                        let replica = $module::replica(&mut tx, *s).await.map_err(store_error)?;
                        let holds = replica.as_ref().is_some_and(|r| {
                            r.assignments.iter().any(|a| a.agency == *target && a.state != AssignmentState::Superseded)
                        });
                        if !holds {
                            return Err(AppError::new(
                                ErrorCode::InvalidArgument,
                                format!("`target_agency_id`: the unit holds no assignment on suggestion {s}; a notice goes to a unit handling the item"),
                            ));
                        }
                    }
                    (None, command)
                }
                Command::Acknowledge(id) | Command::Answer(id, ..) => {
                    let current = $module::load(&mut tx, *id).await.map_err(store_error)?
                        .ok_or_else(|| AppError::not_found(format!("notice {id} not found")))?;
                    let cmd = match cmd {
                        Command::Answer(_, response, documents) => NoticeCommand::Answer { response: response.clone(), on: today, documents: documents.clone() },
                        _ => NoticeCommand::Acknowledge { on: today },
                    };
                    (Some(current), cmd)
                }
            };
            // Only the parties see a notice: the issuer's and the target's units, the office,
            // auditors. Checked before anything else about it (its version included), so that
            // a non-party cannot tell an existing notice from none.
            if let Some(c) = &current
                && !can_read(actor, &c.notice)
            {
                return Err(AppError::not_found(format!("notice {} not found", c.notice.id)));
            }
            if let (Some(c), Some(v)) = (&current, if_match)
                && c.version != v
            {
                return Err(AppError::new(ErrorCode::StaleVersion, format!("the notice is at version {}, not {v}; read it again", c.version)));
            }
            let events = decide(current.as_ref().map(|c| &c.notice), actor, &command)?;
            let mut n = current.as_ref().map(|c| c.notice.clone()).unwrap_or_else(|| match &command {
                NoticeCommand::Issue(n) => n.clone(),
                _ => unreachable_notice(),
            });
            for e in &events {
                n.apply(e);
            }
            let version = $module::save(&mut tx, store, current.as_ref().map(|c| c.version), &n, &events, actor, now)
                .await
                .map_err(store_error)?;
            tx.commit().await.map_err(|e| AppError::internal(&e))?;
            Ok(StoredNotice { notice: n, version })
        }
    };
}

fn unreachable_notice() -> SupervisionNotice {
    // `current` is None only for Issue, which carries its notice.
    SupervisionNotice {
        response_documents: Vec::new(),
        id: NoticeId::new(),
        issuer: AgencyId::new(),
        target: AgencyId::new(),
        suggestions: Vec::new(),
        level: banli_domain::supervision::Level::Reminder,
        trigger: banli_domain::supervision::Trigger::Manual,
        body: String::new(),
        issued_on: Date::MIN,
        response_due: Date::MIN,
        state: NoticeState::Issued,
        acknowledged_on: None,
        response: None,
        answered_on: None,
        answered_late: false,
        escalated_to: None,
    }
}

run_on!(run_sqlite, sqlx::Sqlite, sqlite);
run_on!(run_postgres, sqlx::Postgres, postgres);

/// A notice the service raises itself (a stage round, an overdue deadline), in `issuer`'s name,
/// answerable within seven days.
pub fn raised(
    issuer: AgencyId,
    target: AgencyId,
    suggestions: Vec<SuggestionId>,
    level: banli_domain::supervision::Level,
    trigger: banli_domain::supervision::Trigger,
    body: String,
    today: Date,
) -> SupervisionNotice {
    SupervisionNotice {
        response_documents: Vec::new(),
        id: NoticeId::new(),
        issuer,
        target,
        suggestions,
        level,
        trigger,
        body,
        issued_on: today,
        response_due: today + time::Duration::days(7),
        state: NoticeState::Issued,
        acknowledged_on: None,
        response: None,
        answered_on: None,
        answered_late: false,
        escalated_to: None,
    }
}

/// Whether `actor` is party to the notice.
pub fn can_read(actor: &Actor, n: &SupervisionNotice) -> bool {
    use banli_domain::Role;
    matches!(actor.role, Role::AssigningOffice | Role::Auditor)
        || actor.agency == Some(n.target)
        || actor.agency == Some(n.issuer)
}

/// Runs a notice command for REST and gRPC alike: once per idempotency key (or `Reference-Id`;
/// a retry answers as the first run did), checked against the expected version. Answers the
/// status (201 for an issued notice) and the notice as JSON with its version.
pub async fn run(
    store: &Store,
    docs: Option<&banli_documents::Documents>,
    p: &Principal,
    once: banli_api::Once,
    if_match: Option<u64>,
    cmd: Command,
    today: Date,
) -> Result<(u16, String), AppError> {
    let status = if matches!(cmd, Command::Issue { .. }) {
        201
    } else {
        200
    };
    banli_api::idempotent(
        store.db(),
        store.idempotency_keys(),
        p,
        once.key.as_deref(),
        &once.hash,
        || async {
            let cmd = cmd.resolve(docs, p).await?;
            let n = command(store, p, cmd, if_match, today).await?;
            Ok((status, notice_json(&n)?))
        },
    )
    .await
}

/// A notice as the API shows it: the notice with its version.
pub fn notice_json(n: &StoredNotice) -> Result<String, AppError> {
    let mut v = serde_json::to_value(&n.notice).map_err(|e| AppError::internal(&e))?;
    v["version"] = serde_json::Value::from(n.version);
    serde_json::to_string(&v).map_err(|e| AppError::internal(&e))
}

/// Runs a notice command for `p` on `today`.
#[tracing::instrument(name = "followup.notice_command", skip_all, fields(key_id = %p.key_id, role = %p.role))]
async fn command(
    store: &Store,
    p: &Principal,
    cmd: Resolved,
    if_match: Option<u64>,
    today: Date,
) -> Result<StoredNotice, AppError> {
    let (store2, actor) = (store.clone(), p.actor());
    // The write runs on the writer's task: in the request's span, so that the events it
    // writes carry the request's trace.
    let span = tracing::Span::current();
    let out = store
        .db()
        .write(move |pool| {
            async move {
                let r = match &pool {
                    Pool::Sqlite(p) => run_sqlite(p, &store2, &actor, &cmd, if_match, today).await,
                    Pool::Postgres(p) => {
                        run_postgres(p, &store2, &actor, &cmd, if_match, today).await
                    }
                };
                Ok::<_, banli_db::WriterStopped>(r)
            }
            .instrument(span)
        })
        .await
        .map_err(|e| AppError::internal(&e))??;
    store.timers().scheduled();
    store.audit_written();
    banli_eventlog::consistency::note_written(
        "supervision",
        &out.notice.id.to_string(),
        out.version,
    );
    Ok(out)
}

/// A notice, for a party to it.
pub async fn get(store: &Store, p: &Principal, id: NoticeId) -> Result<StoredNotice, AppError> {
    let found = match store.pool() {
        Pool::Sqlite(pool) => {
            let mut c = pool.acquire().await.map_err(|e| AppError::internal(&e))?;
            sqlite::load(&mut c, id).await
        }
        Pool::Postgres(pool) => {
            let mut c = pool.acquire().await.map_err(|e| AppError::internal(&e))?;
            postgres::load(&mut c, id).await
        }
    }
    .map_err(store_error)?;
    match found {
        Some(n) if can_read(&p.actor(), &n.notice) => Ok(n),
        _ => Err(AppError::not_found(format!("notice {id} not found"))),
    }
}

/// Escalates an unanswered notice past its due date (its timer fired): the notice one rung up
/// replaces it, issued in the issuer's name, with its own timer. Returns false when there is
/// nothing to do (answered meanwhile, at the top of the ladder).
pub async fn escalate_on_sqlite(
    c: &mut sqlx::SqliteConnection,
    store: &Store,
    id: NoticeId,
    today: Date,
) -> Result<bool, StoreError> {
    escalate_sqlite_impl(c, store, id, today).await
}

macro_rules! escalate_impl {
    ($name:ident, $conn:ty, $module:ident) => {
        pub async fn $name(
            c: &mut $conn,
            store: &Store,
            id: NoticeId,
            today: Date,
        ) -> Result<bool, StoreError> {
            let Some(current) = $module::load(&mut *c, id).await? else {
                return Ok(false);
            };
            let n = &current.notice;
            let actor = Actor {
                position: None,
                role: banli_domain::Role::AssigningOffice,
                agency: Some(n.issuer),
                deputy: None,
            };
            let next_id = NoticeId::new();
            let Ok(events) = decide(
                Some(n),
                &actor,
                &NoticeCommand::Escalate {
                    next: next_id,
                    on: today,
                },
            ) else {
                return Ok(false);
            };
            let mut old = n.clone();
            for e in &events {
                old.apply(e);
            }
            let now = OffsetDateTime::now_utc();
            $module::save(
                &mut *c,
                store,
                Some(current.version),
                &old,
                &events,
                &actor,
                now,
            )
            .await?;
            if let Some(next) = n.escalated(next_id, today) {
                let issued = NoticeEvent::Issued(next.clone());
                $module::save(&mut *c, store, None, &next, &[issued], &actor, now).await?;
            }
            Ok(true)
        }
    };
}

escalate_impl!(escalate_sqlite_impl, sqlx::SqliteConnection, sqlite);
escalate_impl!(escalate_on_postgres, sqlx::PgConnection, postgres);
