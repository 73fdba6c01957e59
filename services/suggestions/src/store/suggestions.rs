//! Suggestions: events, list columns and outbox, appended under an expected version; the state
//! is rebuilt from the events.

use banli_calendar::format_date;
use banli_db::{Pool, on_pool};
use banli_domain::Actor;
use banli_domain::ids::{AgencyId, DeputyId, SessionId, SuggestionId};
use banli_domain::suggestion::{Suggestion, SuggestionEvent, UnitRole};
use serde::Serialize;
use time::{Date, OffsetDateTime};
use uuid::Uuid;

use banli_eventlog::Handled;
use banli_eventlog::inbox::Inbox;

pub use banli_eventlog::outbox::OutboxRow;

use super::rows::EventRow;
use super::{Store, StoreError, unique_as};

/// An event to append, with its envelope fields.
#[derive(Debug, Clone)]
pub struct NewEvent {
    pub event_id: Uuid,
    pub event: SuggestionEvent,
    pub actor: Actor,
    pub occurred_at: OffsetDateTime,
    /// The event of another service this one answers (a coordination command applied here).
    pub causation_id: Option<Uuid>,
}

impl NewEvent {
    pub fn new(event: SuggestionEvent, actor: Actor, occurred_at: OffsetDateTime) -> NewEvent {
        NewEvent {
            event_id: Uuid::now_v7(),
            event,
            actor,
            occurred_at,
            causation_id: None,
        }
    }
}

/// The schema version of the suggestion event payloads this code writes (declared in the domain).
pub use banli_domain::suggestion::SCHEMA_VERSION;

/// The inbox entry to record in the same transaction as an append: the event of another service
/// whose effect the append is.
#[derive(Debug, Clone, Copy)]
pub struct InboxEntry<'a> {
    pub inbox: &'a Inbox,
    pub envelope: &'a banli_eventlog::Envelope,
}

/// What lists return per suggestion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SuggestionSummary {
    pub id: SuggestionId,
    pub session_id: SessionId,
    pub number: String,
    pub state: String,
    pub version: u64,
    pub title: String,
    pub key_supervised: bool,
}

/// Filters for listing suggestions; every field narrows the result.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub session_id: Option<SessionId>,
    pub state: Option<String>,
    /// Only suggestions this agency is (or was) assigned.
    pub agency_id: Option<AgencyId>,
    pub role: Option<UnitRole>,
    /// Only suggestions with an open assignment whose reply was due before this date.
    pub overdue_on: Option<Date>,
    pub key_only: bool,
    /// Only suggestions this deputy leads or co-signed.
    pub deputy_id: Option<DeputyId>,
    /// Leave confidential suggestions out.
    pub without_confidential: bool,
    /// Cursor: only ids after this one (ids are time-ordered).
    pub after: Option<SuggestionId>,
    pub limit: u32,
}

#[derive(Serialize)]
struct Envelope<'a> {
    event_id: Uuid,
    schema_version: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    causation_id: Option<Uuid>,
    event_type: &'a str,
    aggregate_type: &'static str,
    aggregate_id: String,
    aggregate_version: u64,
    #[serde(with = "time::serde::rfc3339")]
    occurred_at: OffsetDateTime,
    actor: &'a Actor,
    payload: &'a SuggestionEvent,
    /// The W3C trace context of the command that wrote it, when traces are exported.
    #[serde(skip_serializing_if = "Option::is_none")]
    traceparent: Option<&'a str>,
}

fn json<T: Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(format!("cannot encode JSON: {e}")))
}

impl Store {
    /// The current state, rebuilt from the events, or `None` when no such suggestion exists.
    pub async fn load(&self, id: SuggestionId) -> Result<Option<Suggestion>, StoreError> {
        let events = self.events(id).await?;
        if events.is_empty() {
            return Ok(None);
        }
        Suggestion::replay(id, &events).map(Some).ok_or_else(|| {
            StoreError::Corrupt(format!(
                "suggestion {id}: the first event is not `submitted`"
            ))
        })
    }

    /// Every event of a suggestion, in order.
    pub async fn events(&self, id: SuggestionId) -> Result<Vec<SuggestionEvent>, StoreError> {
        let rows: Vec<EventRow> = on_pool!(self.pool(), p => sqlx::query_as("SELECT payload FROM suggestion_events WHERE suggestion_id = $1 ORDER BY version")
            .bind(id.to_string())
            .fetch_all(p)
            .await)?;
        rows.iter()
            .map(|r| {
                serde_json::from_str(&r.payload)
                    .map_err(|e| StoreError::Corrupt(format!("event of {id}: {e}")))
            })
            .collect()
    }

    /// Appends `events`, which took the suggestion from `before` (`None`: it is new) to `after`,
    /// with their outbox rows, in one transaction. Nothing is written when any step fails; a
    /// concurrent change since `before` is a `Conflict`.
    pub async fn append(
        &self,
        before: Option<&Suggestion>,
        after: &Suggestion,
        events: &[NewEvent],
    ) -> Result<(), StoreError> {
        self.append_with(before, after, events, None).await
    }

    /// [`Store::append`], recording `inbox` in the same transaction: the append is the effect
    /// of that event. A second effect of the same event fails on the inbox and writes nothing.
    pub async fn append_with(
        &self,
        before: Option<&Suggestion>,
        after: &Suggestion,
        events: &[NewEvent],
        inbox: Option<InboxEntry<'_>>,
    ) -> Result<(), StoreError> {
        self.write_append(before, after, events, inbox).await?;
        self.outbox.written();
        banli_eventlog::consistency::note_written(
            "suggestion",
            &after.id.to_string(),
            after.version,
        );
        Ok(())
    }

    async fn write_append(
        &self,
        before: Option<&Suggestion>,
        after: &Suggestion,
        events: &[NewEvent],
        inbox: Option<InboxEntry<'_>>,
    ) -> Result<(), StoreError> {
        let expected_version = before.map_or(0, |b| b.version);
        if events.is_empty()
            || after.version != expected_version + events.len() as u64
            || before.is_some_and(|b| b.id != after.id)
        {
            return Err(StoreError::Corrupt(format!(
                "append of {} event(s) from version {expected_version} does not reach version {}",
                events.len(),
                after.version
            )));
        }
        let id = after.id.to_string();
        let now = events
            .last()
            .map_or_else(OffsetDateTime::now_utc, |e| e.occurred_at);
        let mut rows = Vec::with_capacity(events.len());
        let traceparent = match &inbox {
            Some(i) => banli_eventlog::trace::inherited(&i.envelope.payload),
            None => banli_eventlog::trace::traceparent(),
        };
        for (i, e) in events.iter().enumerate() {
            let version = expected_version + 1 + i as u64;
            let ty = e.event.event_type();
            let envelope = Envelope {
                event_id: e.event_id,
                schema_version: SCHEMA_VERSION,
                causation_id: e.causation_id,
                event_type: &ty,
                aggregate_type: "suggestion",
                aggregate_id: id.clone(),
                aggregate_version: version,
                occurred_at: e.occurred_at,
                actor: &e.actor,
                payload: &e.event,
                traceparent: traceparent.as_deref(),
            };
            rows.push((
                e.event_id.to_string(),
                ty.clone(),
                version as i64,
                json(&e.event)?,
                json(&e.actor)?,
                json(&envelope)?,
                e.occurred_at,
            ));
        }
        let publications =
            super::publications::ops(after, &events.iter().map(|e| &e.event).collect::<Vec<_>>());
        let details = &after.details;
        // Only the assignment rows that are new or changed are written.
        let projection =
            |s: &Suggestion| -> Vec<(String, String, &'static str, &'static str, Option<Date>)> {
                s.assignments
                    .iter()
                    .map(|a| {
                        (
                            a.id.to_string(),
                            a.agency.to_string(),
                            a.role.as_str(),
                            a.state.as_str(),
                            a.deadlines.reply.as_ref().map(|d| d.due),
                        )
                    })
                    .collect()
            };
        let old = before.map(projection).unwrap_or_default();
        let changed: Vec<_> = projection(after)
            .into_iter()
            .filter(|row| !old.contains(row))
            .map(|row| (old.iter().any(|o| o.0 == row.0), row))
            .collect();

        let (session_id, number, title) = (
            details.session_id.to_string(),
            details.number.clone(),
            details.title.clone(),
        );
        let (lead, key_supervised, state, version) = (
            details.lead_deputy.to_string(),
            details.key_supervised,
            after.state.as_str(),
            after.version as i64,
        );
        let confidential = details.confidential;
        // The deputies of the item, written with its first row (they are fixed at submission).
        let deputies: Vec<String> = if expected_version == 0 {
            after.deputies().map(|d| d.to_string()).collect()
        } else {
            Vec::new()
        };
        if let Pool::Postgres(pg) = self.pool() {
            let append = PgAppend {
                id,
                expected_version,
                state,
                version,
                title,
                session_id,
                number,
                lead,
                key_supervised,
                confidential,
                deputies,
                now,
                rows,
                changed,
                publications,
            };
            let Some(i) = inbox else {
                // One statement is atomic by itself: no transaction round trips.
                let mut c = pg.acquire().await?;
                return append.run(&mut c).await;
            };
            let mut tx = pg.begin().await?;
            append.run(&mut tx).await?;
            banli_eventlog::inbox::postgres::record(
                i.inbox,
                &mut tx,
                i.envelope,
                Handled::Applied,
                true,
            )
            .await
            .map_err(unique_as("the effect of this event"))?;
            tx.commit().await?;
            return Ok(());
        }
        let inbox = inbox.map(|i| (i.inbox.clone(), i.envelope.clone()));
        // SQLite: on the writer thread, in one transaction shared with the appends queued with
        // it (group commit), in a savepoint of its own.
        let grouped = self.db().write_grouped(move |tx: &mut sqlx::SqliteConnection| Box::pin(async move {
        {
            if expected_version == 0 {
                let r = sqlx::query(
                    "INSERT INTO suggestions (id, session_id, number, state, version, title, lead_deputy_id, key_supervised, updated_at, confidential) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
                )
                .bind(&id)
                .bind(&session_id)
                .bind(&number)
                .bind(state)
                .bind(version)
                .bind(&title)
                .bind(&lead)
                .bind(key_supervised)
                .bind(now)
                .bind(confidential)
                .execute(&mut *tx)
                .await;
                match r {
                    Ok(_) => {}
                    Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                        return Err(StoreError::AlreadyExists(format!("suggestion number {number} in this session")));
                    }
                    Err(sqlx::Error::Database(db)) if db.is_foreign_key_violation() => {
                        return Err(StoreError::NotFound(format!("session {session_id}")));
                    }
                    Err(e) => return Err(e.into()),
                }
                for d in &deputies {
                    sqlx::query("INSERT INTO suggestion_deputies (deputy_id, suggestion_id) VALUES ($1, $2)")
                        .bind(d).bind(&id)
                        .execute(&mut *tx)
                        .await?;
                }
            } else {
                let r = sqlx::query("UPDATE suggestions SET state = $1, version = $2, title = $3, updated_at = $4 WHERE id = $5 AND version = $6")
                    .bind(state)
                    .bind(version)
                    .bind(&title)
                    .bind(now)
                    .bind(&id)
                    .bind(expected_version as i64)
                    .execute(&mut *tx)
                    .await?;
                if r.rows_affected() == 0 {
                    let actual: Option<(i64,)> = sqlx::query_as("SELECT version FROM suggestions WHERE id = $1").bind(&id).fetch_optional(&mut *tx).await?;
                    return Err(match actual {
                        None => StoreError::NotFound(format!("suggestion {id}")),
                        Some((v,)) => StoreError::Conflict { expected: expected_version, actual: v as u64 },
                    });
                }
            }
            for (event_id, ty, version, payload, actor, envelope, at) in &rows {
                sqlx::query("INSERT INTO suggestion_events (suggestion_id, version, event_id, event_type, payload, actor, occurred_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
                    .bind(&id).bind(*version).bind(event_id).bind(ty).bind(payload).bind(actor).bind(*at)
                    .execute(&mut *tx)
                    .await
                    .map_err(|e| match &e {
                        sqlx::Error::Database(db) if db.is_unique_violation() => StoreError::Conflict { expected: expected_version, actual: expected_version + 1 },
                        _ => StoreError::Database(e),
                    })?;
                sqlx::query("INSERT INTO outbox (event_id, event_type, aggregate_type, aggregate_id, aggregate_version, payload, occurred_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
                    .bind(event_id).bind(ty).bind("suggestion").bind(&id).bind(*version).bind(envelope).bind(*at)
                    .execute(&mut *tx)
                    .await?;
            }
            for (exists, (aid, agency, role, state, due)) in &changed {
                if *exists {
                    sqlx::query("UPDATE suggestion_assignments SET state = $1, reply_due = $2 WHERE assignment_id = $3")
                        .bind(*state).bind(*due).bind(aid)
                        .execute(&mut *tx)
                        .await?;
                } else {
                    sqlx::query("INSERT INTO suggestion_assignments (assignment_id, suggestion_id, agency_id, role, state, reply_due) VALUES ($1, $2, $3, $4, $5, $6)")
                        .bind(aid).bind(&id).bind(agency).bind(*role).bind(*state).bind(*due)
                        .execute(&mut *tx)
                        .await?;
                }
            }
            super::publications::sqlite::apply(&mut *tx, &publications).await?;
            if let Some((inbox, envelope)) = &inbox {
                banli_eventlog::inbox::sqlite::record(inbox, &mut *tx, envelope, Handled::Applied, true)
                    .await
                    .map_err(unique_as("the effect of this event"))?;
            }
        }
        Ok(())
        }));
        grouped.await.unwrap_or_else(|| {
            Err(StoreError::Corrupt(
                "the SQLite write path has no writer".into(),
            ))
        })
    }
}

/// An event row's values: id, type, version, payload, actor, envelope, time.
type EventValues = (String, String, i64, String, String, String, OffsetDateTime);
/// An assignment row's values: id, agency, role, state, reply due date.
type AssignmentValues = (String, String, &'static str, &'static str, Option<Date>);

/// One append on PostgreSQL as a single statement: the version-checked update (or insert) of the
/// suggestion row, its events, their outbox rows and the changed assignment rows, in one round
/// trip. A statement is atomic, so there is no explicit transaction; when the version check
/// fails, nothing else is written.
struct PgAppend {
    id: String,
    expected_version: u64,
    state: &'static str,
    version: i64,
    title: String,
    session_id: String,
    number: String,
    lead: String,
    key_supervised: bool,
    confidential: bool,
    /// The item's deputies: only with its first row.
    deputies: Vec<String>,
    now: OffsetDateTime,
    rows: Vec<EventValues>,
    changed: Vec<(bool, AssignmentValues)>,
    /// The publication rows the events move (公开答复).
    publications: super::publications::PublicationOps,
}

impl PgAppend {
    /// The part after the suggestion row, with array parameters from `$k` on.
    /// `publications`: with the publication rows' parts (公开答复), only for the appends that
    /// move them — the others run the smaller statement they always ran.
    fn tail(k: usize, publications: bool) -> String {
        let p = |i: usize| format!("${}", k + i);
        format!(
            ", e AS (INSERT INTO suggestion_events (suggestion_id, version, event_id, event_type, payload, actor, occurred_at) \
               SELECT s.id, x.v, x.eid, x.ty, x.payload, x.actor, x.at FROM s, \
               UNNEST({0}::bigint[], {1}::text[], {2}::text[], {3}::text[], {4}::text[], {5}::timestamptz[]) AS x(v, eid, ty, payload, actor, at)) \
             , o AS (INSERT INTO outbox (event_id, event_type, aggregate_type, aggregate_id, aggregate_version, payload, occurred_at) \
               SELECT x.eid, x.ty, 'suggestion', s.id, x.v, x.env, x.at FROM s, \
               UNNEST({0}::bigint[], {1}::text[], {2}::text[], {6}::text[], {5}::timestamptz[]) AS x(v, eid, ty, env, at)) \
             , a AS (INSERT INTO suggestion_assignments (assignment_id, suggestion_id, agency_id, role, state, reply_due) \
               SELECT x.aid, s.id, x.agency, x.role, x.state, NULLIF(x.due, '')::date FROM s, \
               UNNEST({7}::text[], {8}::text[], {9}::text[], {10}::text[], {11}::text[]) AS x(aid, agency, role, state, due) \
               ON CONFLICT (assignment_id) DO UPDATE SET state = EXCLUDED.state, reply_due = EXCLUDED.reply_due) \
             , d AS (INSERT INTO suggestion_deputies (deputy_id, suggestion_id) \
               SELECT x.deputy, s.id FROM s, UNNEST({12}::text[]) AS x(deputy)) \
             {13}SELECT COUNT(*) FROM s",
            p(0),
            p(1),
            p(2),
            p(3),
            p(4),
            p(5),
            p(6),
            p(7),
            p(8),
            p(9),
            p(10),
            p(11),
            p(12),
            if publications {
                Self::publication_ctes(k)
            } else {
                String::new()
            }
        )
    }

    /// The parts of the statement that write the publication rows, parameters from `$k + 13`.
    fn publication_ctes(k: usize) -> String {
        let p = |i: usize| format!("${}", k + i);
        format!(
            "             , pu AS (INSERT INTO reply_publications (reply_id, suggestion_id, due, published_on, agency_id, number, title, class, reply_type, document_number, replied_on, body, disclosure, automatic) \
               SELECT x.rid, x.sid, NULLIF(x.due, '')::date, NULLIF(x.pub, '')::date, NULLIF(x.agency, ''), NULLIF(x.num, ''), NULLIF(x.title, ''), NULLIF(x.class, ''), NULLIF(x.rtype, ''), NULLIF(x.docnum, ''), NULLIF(x.replied, '')::date, NULLIF(x.body, ''), NULLIF(x.disc, ''), x.auto FROM s, \
               UNNEST({0}::text[], {1}::text[], {2}::text[], {3}::text[], {4}::text[], {5}::text[], {6}::text[], {7}::text[], {8}::text[], {9}::text[], {10}::text[], {11}::text[], {12}::text[], {13}::bool[]) \
                 AS x(rid, sid, due, pub, agency, num, title, class, rtype, docnum, replied, body, disc, auto) \
               ON CONFLICT (reply_id) DO UPDATE SET due = EXCLUDED.due, published_on = EXCLUDED.published_on, agency_id = EXCLUDED.agency_id, number = EXCLUDED.number, title = EXCLUDED.title, class = EXCLUDED.class, reply_type = EXCLUDED.reply_type, document_number = EXCLUDED.document_number, replied_on = EXCLUDED.replied_on, body = EXCLUDED.body, disclosure = EXCLUDED.disclosure, automatic = EXCLUDED.automatic) \
             , pd AS (DELETE FROM reply_publications WHERE reply_id = ANY({14}::text[]) AND EXISTS (SELECT 1 FROM s)) ",
            p(13),
            p(14),
            p(15),
            p(16),
            p(17),
            p(18),
            p(19),
            p(20),
            p(21),
            p(22),
            p(23),
            p(24),
            p(25),
            p(26),
            p(27)
        )
    }

    async fn run(self, pg: &mut sqlx::PgConnection) -> Result<(), StoreError> {
        let new = self.expected_version == 0;
        let with_publications =
            !(self.publications.upserts.is_empty() && self.publications.deletes.is_empty());
        let sql = if new {
            format!(
                "WITH s AS (INSERT INTO suggestions (id, session_id, number, state, version, title, lead_deputy_id, key_supervised, updated_at, confidential) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING id){}",
                Self::tail(11, with_publications)
            )
        } else {
            format!(
                "WITH s AS (UPDATE suggestions SET state = $1, version = $2, title = $3, updated_at = $4 WHERE id = $5 AND version = $6 RETURNING id){}",
                Self::tail(7, with_publications)
            )
        };
        // Only parameter numbers are spliced into the statement; every value is bound.
        let mut q = sqlx::query_as::<_, (i64,)>(sqlx::AssertSqlSafe(sql));
        q = if new {
            q.bind(&self.id)
                .bind(&self.session_id)
                .bind(&self.number)
                .bind(self.state)
                .bind(self.version)
                .bind(&self.title)
                .bind(&self.lead)
                .bind(self.key_supervised)
                .bind(self.now)
                .bind(self.confidential)
        } else {
            q.bind(self.state)
                .bind(self.version)
                .bind(&self.title)
                .bind(self.now)
                .bind(&self.id)
                .bind(self.expected_version as i64)
        };
        let col = |f: fn(&EventValues) -> String| self.rows.iter().map(f).collect::<Vec<String>>();
        let versions: Vec<i64> = self.rows.iter().map(|r| r.2).collect();
        let times: Vec<OffsetDateTime> = self.rows.iter().map(|r| r.6).collect();
        let acol = |f: fn(&AssignmentValues) -> String| {
            self.changed
                .iter()
                .map(|(_, a)| f(a))
                .collect::<Vec<String>>()
        };
        q = q
            .bind(versions)
            .bind(col(|r| r.0.clone()))
            .bind(col(|r| r.1.clone()))
            .bind(col(|r| r.3.clone()))
            .bind(col(|r| r.4.clone()))
            .bind(times)
            .bind(col(|r| r.5.clone()))
            .bind(acol(|a| a.0.clone()))
            .bind(acol(|a| a.1.clone()))
            .bind(acol(|a| a.2.to_owned()))
            .bind(acol(|a| a.3.to_owned()))
            .bind(acol(|a| a.4.map(format_date).unwrap_or_default()))
            .bind(self.deputies.clone());
        // The publication rows (公开答复), for the appends that move them.
        let pubs = &self.publications.upserts;
        let text = |f: fn(&super::publications::PublicationRow) -> Option<String>| {
            pubs.iter()
                .map(|r| f(r).unwrap_or_default())
                .collect::<Vec<String>>()
        };
        if with_publications {
            q = q
                .bind(text(|r| Some(r.reply_id.clone())))
                .bind(text(|r| Some(r.suggestion_id.clone())))
                .bind(text(|r| r.due.map(format_date)))
                .bind(text(|r| r.published_on.map(format_date)))
                .bind(text(|r| r.agency_id.clone()))
                .bind(text(|r| r.number.clone()))
                .bind(text(|r| r.title.clone()))
                .bind(text(|r| r.class.clone()))
                .bind(text(|r| r.reply_type.clone()))
                .bind(text(|r| r.document_number.clone()))
                .bind(text(|r| r.replied_on.map(format_date)))
                .bind(text(|r| r.body.clone()))
                .bind(text(|r| r.disclosure.clone()))
                .bind(pubs.iter().map(|r| r.automatic).collect::<Vec<bool>>())
                .bind(self.publications.deletes.clone());
        }
        match q.fetch_one(&mut *pg).await {
            Ok((1,)) => Ok(()),
            Ok(_) => {
                let actual: Option<(i64,)> =
                    sqlx::query_as("SELECT version FROM suggestions WHERE id = $1")
                        .bind(&self.id)
                        .fetch_optional(&mut *pg)
                        .await?;
                Err(match actual {
                    None => StoreError::NotFound(format!("suggestion {}", self.id)),
                    Some((v,)) => StoreError::Conflict {
                        expected: self.expected_version,
                        actual: v as u64,
                    },
                })
            }
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() && new => {
                Err(StoreError::AlreadyExists(format!(
                    "suggestion number {} in this session",
                    self.number
                )))
            }
            Err(sqlx::Error::Database(db)) if db.is_unique_violation() => {
                Err(StoreError::Conflict {
                    expected: self.expected_version,
                    actual: self.expected_version + 1,
                })
            }
            Err(sqlx::Error::Database(db)) if db.is_foreign_key_violation() => {
                Err(StoreError::NotFound(format!("session {}", self.session_id)))
            }
            Err(e) => Err(e.into()),
        }
    }
}
