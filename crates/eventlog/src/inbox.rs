//! The consumer inbox (收件箱): exactly-once effects over at-least-once delivery, and
//! per-aggregate order.
//!
//! The runner ([`crate::consume`]) admits a delivered batch against what the inbox holds
//! ([`Inbox::seen_on`], two reads per batch); the consuming service writes the batch's entries
//! ([`sqlite::settle`] / [`postgres::settle`]) in the transaction that commits their effects.
//! The inbox remembers every event id and, per aggregate, the last version applied, so a
//! redelivered event is a no-op and version n+1 is never applied before n; the primary key on
//! the event id guards against a second effect committed concurrently.
//!
//! Each service has its own three tables, `<service>_inbox`, `<service>_inbox_positions` and
//! `<service>_parked_events`, created by [`Inbox::migrate`].

use banli_db::{Db, Pool, on_pool};
use time::OffsetDateTime;

use crate::Envelope;
use crate::runner::Handled;

/// What to do with a delivered event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// The next event of its aggregate: apply it.
    Apply,
    /// Already handled (same id, or a version at or below the last applied).
    Duplicate,
    /// An earlier version of its aggregate never arrived: park it, do not apply it.
    Gap { expected: u64 },
    /// A message without an event id: park it.
    NotAnEvent,
}

/// What the inbox holds for a batch, updated as the batch is decided in order.
#[derive(Debug, Clone, Default)]
pub struct Seen {
    ids: std::collections::HashSet<uuid::Uuid>,
    positions: std::collections::HashMap<(String, String), u64>,
}

impl Seen {
    /// Admission of `e` given what is stored and what the batch decided before it.
    pub fn admit(&self, e: &Envelope) -> Admission {
        if e.event_id.is_nil() {
            return Admission::NotAnEvent;
        }
        if self.ids.contains(&e.event_id) {
            return Admission::Duplicate;
        }
        let key = (aggregate_type(e).to_owned(), e.aggregate_id.clone());
        let last = self.positions.get(&key).copied().unwrap_or(0);
        if e.aggregate_version <= last {
            Admission::Duplicate
        } else if e.aggregate_version > last + 1 {
            Admission::Gap { expected: last + 1 }
        } else {
            Admission::Apply
        }
    }

    /// Notes that the batch handles `e`; `advance` moves its aggregate on.
    pub fn handled(&mut self, e: &Envelope, advance: bool) {
        self.ids.insert(e.event_id);
        if advance {
            self.positions.insert(
                (aggregate_type(e).to_owned(), e.aggregate_id.clone()),
                e.aggregate_version,
            );
        }
    }
}

/// One consumer's inbox in one service's tables.
#[derive(Debug, Clone)]
pub struct Inbox {
    service: &'static str,
    consumer: String,
    q: Queries,
}

#[derive(Debug, Clone)]
struct Queries {
    position: String,
    insert: String,
    advance: String,
    park: String,
    list_parked: String,
    count_parked: String,
}

/// A parked event, for the operator.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Parked {
    pub event_id: String,
    pub event_type: String,
    pub aggregate_id: String,
    pub aggregate_version: i64,
    pub reason: String,
    #[serde(with = "time::serde::rfc3339")]
    pub parked_at: OffsetDateTime,
}

impl Inbox {
    /// `service` names the tables (`coordination` → `coordination_inbox`, …): a fixed
    /// identifier, never input.
    pub fn new(service: &'static str, consumer: &str) -> Inbox {
        assert!(
            service.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
            "a service name is lowercase letters and underscores"
        );
        let s = service;
        let q = Queries {
            position: format!(
                "SELECT version FROM {s}_inbox_positions WHERE consumer = $1 AND aggregate_type = $2 AND aggregate_id = $3"
            ),
            insert: format!(
                "INSERT INTO {s}_inbox (consumer, event_id, event_type, aggregate_id, aggregate_version, outcome, handled_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)"
            ),
            advance: format!(
                "INSERT INTO {s}_inbox_positions (consumer, aggregate_type, aggregate_id, version) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (consumer, aggregate_type, aggregate_id) DO UPDATE SET version = excluded.version"
            ),
            park: format!(
                "INSERT INTO {s}_parked_events (consumer, event_id, event_type, aggregate_id, aggregate_version, reason, payload, parked_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (consumer, event_id) DO NOTHING"
            ),
            list_parked: format!(
                "SELECT event_id, event_type, aggregate_id, aggregate_version, reason, parked_at FROM {s}_parked_events \
                 WHERE consumer = $1 ORDER BY parked_at, event_id LIMIT $2"
            ),
            count_parked: format!("SELECT COUNT(*) FROM {s}_parked_events WHERE consumer = $1"),
        };
        Inbox {
            service,
            consumer: consumer.to_owned(),
            q,
        }
    }

    pub fn consumer(&self) -> &str {
        &self.consumer
    }

    /// Creates the inbox tables if they do not exist.
    pub async fn migrate(&self, pool: &Pool) -> Result<(), sqlx::Error> {
        let s = self.service;
        let (time, text) = match pool {
            Pool::Sqlite(_) => ("TEXT", "TEXT"),
            Pool::Postgres(_) => ("TIMESTAMPTZ", "TEXT"),
        };
        let ddl = [
            format!(
                "CREATE TABLE IF NOT EXISTS {s}_inbox (consumer TEXT NOT NULL, event_id TEXT NOT NULL, event_type TEXT NOT NULL, \
                 aggregate_id TEXT NOT NULL, aggregate_version BIGINT NOT NULL, outcome TEXT NOT NULL, handled_at {time} NOT NULL, \
                 PRIMARY KEY (consumer, event_id))"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {s}_inbox_positions (consumer TEXT NOT NULL, aggregate_type TEXT NOT NULL, \
                 aggregate_id TEXT NOT NULL, version BIGINT NOT NULL, PRIMARY KEY (consumer, aggregate_type, aggregate_id))"
            ),
            format!(
                "CREATE TABLE IF NOT EXISTS {s}_parked_events (consumer TEXT NOT NULL, event_id TEXT NOT NULL, event_type TEXT NOT NULL, \
                 aggregate_id TEXT NOT NULL, aggregate_version BIGINT NOT NULL, reason TEXT NOT NULL, payload {text} NOT NULL, \
                 parked_at {time} NOT NULL, PRIMARY KEY (consumer, event_id))"
            ),
        ];
        for stmt in ddl {
            on_pool!(pool, p => sqlx::query(sqlx::AssertSqlSafe(stmt)).execute(p).await.map(|_| ()))?;
        }
        Ok(())
    }

    /// The stored side of admission for a whole batch in two queries: which event ids the inbox
    /// holds, and the last applied version of each aggregate named. The caller sequences the
    /// batch against these (see [`Seen::admit`]).
    pub async fn seen_on(&self, pool: &Pool, batch: &[&Envelope]) -> Result<Seen, sqlx::Error> {
        let ids: Vec<String> = batch.iter().map(|e| e.event_id.to_string()).collect();
        let keys: Vec<(String, String)> = batch
            .iter()
            .map(|e| (aggregate_type(e).to_owned(), e.aggregate_id.clone()))
            .collect();
        let s = self.service;
        let known: Vec<(String,)> = match pool {
            Pool::Postgres(p) => {
                sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    // A join, not `event_id = ANY($2)`: once the statement's plan is generic,
                    // PostgreSQL scanned every row of the consumer for the latter.
                    "SELECT i.event_id FROM UNNEST($2::text[]) AS x(id) JOIN {s}_inbox i ON i.consumer = $1 AND i.event_id = x.id"
                )))
                .bind(&self.consumer)
                .bind(&ids)
                .fetch_all(p)
                .await?
            }
            Pool::Sqlite(p) => {
                // SQLite has no arrays: the batch goes in as JSON.
                sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT i.event_id FROM json_each($2) x CROSS JOIN {s}_inbox i WHERE i.consumer = $1 AND i.event_id = x.value"
                )))
                .bind(&self.consumer)
                .bind(serde_json::to_string(&ids).unwrap_or_default())
                .fetch_all(p)
                .await?
            }
        };
        let positions = self.positions_on(pool, &keys).await?;
        Ok(Seen {
            ids: known
                .into_iter()
                .filter_map(|(id,)| id.parse().ok())
                .collect(),
            positions: positions.into_iter().map(|(t, a, v)| ((t, a), v)).collect(),
        })
    }

    /// The last applied version of each of these aggregates (type, id) that the inbox holds, in
    /// one query.
    pub async fn positions_on(
        &self,
        pool: &Pool,
        keys: &[(String, String)],
    ) -> Result<Vec<(String, String, u64)>, sqlx::Error> {
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let s = self.service;
        let rows: Vec<(String, String, i64)> = match pool {
            Pool::Postgres(p) => {
                let (types, aggs): (Vec<&str>, Vec<&str>) =
                    keys.iter().map(|(t, a)| (t.as_str(), a.as_str())).unzip();
                sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT p.aggregate_type, p.aggregate_id, p.version FROM {s}_inbox_positions p \
                     JOIN UNNEST($2::text[], $3::text[]) AS x(t, a) ON p.aggregate_type = x.t AND p.aggregate_id = x.a \
                     WHERE p.consumer = $1"
                )))
                .bind(&self.consumer)
                .bind(&types)
                .bind(&aggs)
                .fetch_all(p)
                .await?
            }
            Pool::Sqlite(p) => {
                sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT p.aggregate_type, p.aggregate_id, p.version \
                     FROM (SELECT json_extract(value, '$[0]') AS t, json_extract(value, '$[1]') AS a FROM json_each($2)) x \
                     CROSS JOIN {s}_inbox_positions p \
                     WHERE p.consumer = $1 AND p.aggregate_type = x.t AND p.aggregate_id = x.a"
                )))
                .bind(&self.consumer)
                .bind(serde_json::to_string(keys).unwrap_or_default())
                .fetch_all(p)
                .await?
            }
        };
        Ok(rows
            .into_iter()
            .map(|(t, a, v)| (t, a, v.max(0) as u64))
            .collect())
    }

    /// Records an event with no effect of its own (`reason: None`), or parks it, in its own
    /// transaction — on the database's write path (on SQLite its one writer thread: a write
    /// beside it would contend for the file's lock and sleep in SQLite's busy handler).
    pub async fn settle_on(
        &self,
        db: &Db,
        e: &Envelope,
        park: Option<&str>,
        advance: bool,
    ) -> Result<(), sqlx::Error> {
        let (me, e, park) = (self.clone(), e.clone(), park.map(str::to_owned));
        enum Failed {
            Db(sqlx::Error),
            Stopped,
        }
        impl From<banli_db::WriterStopped> for Failed {
            fn from(_: banli_db::WriterStopped) -> Failed {
                Failed::Stopped
            }
        }
        impl From<sqlx::Error> for Failed {
            fn from(e: sqlx::Error) -> Failed {
                Failed::Db(e)
            }
        }
        let to_sqlx = |f: Failed| match f {
            Failed::Db(e) => e,
            Failed::Stopped => sqlx::Error::WorkerCrashed,
        };
        // SQLite: in the writer's group commit (a savepoint of its own) rather than in a
        // transaction of its own.
        let (me2, e2, park2) = (me.clone(), e.clone(), park.clone());
        let grouped = db
            .write_grouped(move |c: &mut sqlx::SqliteConnection| {
                Box::pin(async move {
                    match park2.as_deref() {
                        Some(reason) => sqlite::park(&me2, c, &e2, reason, advance).await?,
                        None => sqlite::record(&me2, c, &e2, Handled::Applied, advance).await?,
                    }
                    Ok::<(), Failed>(())
                })
            })
            .await;
        if let Some(done) = grouped {
            return done.map_err(to_sqlx);
        }
        db.write(move |pool| async move {
            me.settle(&pool, &e, park.as_deref(), advance)
                .await
                .map_err(Failed::Db)
        })
        .await
        .map_err(to_sqlx)
    }

    async fn settle(
        &self,
        pool: &Pool,
        e: &Envelope,
        park: Option<&str>,
        advance: bool,
    ) -> Result<(), sqlx::Error> {
        match pool {
            Pool::Sqlite(p) => {
                let mut tx = p.begin().await?;
                match park {
                    Some(reason) => sqlite::park(self, &mut tx, e, reason, advance).await?,
                    None => sqlite::record(self, &mut tx, e, Handled::Applied, advance).await?,
                }
                tx.commit().await
            }
            Pool::Postgres(p) => {
                let mut tx = p.begin().await?;
                match park {
                    Some(reason) => postgres::park(self, &mut tx, e, reason, advance).await?,
                    None => postgres::record(self, &mut tx, e, Handled::Applied, advance).await?,
                }
                tx.commit().await
            }
        }
    }

    /// The last version of an aggregate this consumer applied (or skipped past), if any.
    pub async fn position(
        &self,
        pool: &Pool,
        aggregate_type: &str,
        aggregate_id: &str,
    ) -> Result<Option<u64>, sqlx::Error> {
        let row: Option<(i64,)> = on_pool!(pool, p =>
            sqlx::query_as(sqlx::AssertSqlSafe(self.q.position.clone()))
                .bind(&self.consumer)
                .bind(aggregate_type)
                .bind(aggregate_id)
                .fetch_optional(p)
                .await)?;
        Ok(row.map(|(v,)| v.max(0) as u64))
    }

    /// Parked events, oldest first.
    pub async fn parked(&self, pool: &Pool, limit: u32) -> Result<Vec<Parked>, sqlx::Error> {
        let rows: Vec<(String, String, String, i64, String, OffsetDateTime)> = on_pool!(pool, p =>
            sqlx::query_as(sqlx::AssertSqlSafe(self.q.list_parked.clone()))
                .bind(&self.consumer)
                .bind(i64::from(limit))
                .fetch_all(p)
                .await)?;
        Ok(rows
            .into_iter()
            .map(
                |(event_id, event_type, aggregate_id, aggregate_version, reason, parked_at)| {
                    Parked {
                        event_id,
                        event_type,
                        aggregate_id,
                        aggregate_version,
                        reason,
                        parked_at,
                    }
                },
            )
            .collect())
    }

    /// How many events are parked.
    pub async fn parked_count(&self, pool: &Pool) -> Result<u64, sqlx::Error> {
        let (n,): (i64,) = on_pool!(pool, p =>
            sqlx::query_as(sqlx::AssertSqlSafe(self.q.count_parked.clone()))
                .bind(&self.consumer)
                .fetch_one(p)
                .await)?;
        Ok(n.max(0) as u64)
    }
}

/// The aggregate type of an event: its type up to the first dot (`suggestion.assigned` →
/// `suggestion`).
pub fn aggregate_type(e: &Envelope) -> &str {
    e.event_type.split('.').next().unwrap_or("")
}

macro_rules! backend {
    ($(#[$doc:meta])* $module:ident, $conn:ty $(, { $($extra:item)* })?) => {
        $(#[$doc])*
        pub mod $module {
            $($($extra)*)?

            use time::OffsetDateTime;

            use super::{Inbox, aggregate_type};
            use crate::Envelope;
            use crate::runner::Handled;

            /// Records `e` as handled; `advance` moves its aggregate's position to its version
            /// (everything but a gap).
            pub async fn record(
                inbox: &Inbox,
                c: &mut $conn,
                e: &Envelope,
                outcome: Handled,
                advance: bool,
            ) -> Result<(), sqlx::Error> {
                if e.event_id.is_nil() {
                    // Not a banli event (no id): parked, nothing to remember it by.
                    return Ok(());
                }
                let outcome = match outcome {
                    Handled::Applied => "applied",
                    Handled::Duplicate => "duplicate",
                    Handled::Parked => "parked",
                    // Not handled yet: nothing to remember.
                    Handled::Deferred => return Ok(()),
                };
                sqlx::query(sqlx::AssertSqlSafe(inbox.q.insert.clone()))
                    .bind(&inbox.consumer)
                    .bind(e.event_id.to_string())
                    .bind(&e.event_type)
                    .bind(&e.aggregate_id)
                    .bind(e.aggregate_version as i64)
                    .bind(outcome)
                    .bind(OffsetDateTime::now_utc())
                    .execute(&mut *c)
                    .await?;
                if advance {
                    sqlx::query(sqlx::AssertSqlSafe(inbox.q.advance.clone()))
                        .bind(&inbox.consumer)
                        .bind(aggregate_type(e))
                        .bind(&e.aggregate_id)
                        .bind(e.aggregate_version as i64)
                        .execute(&mut *c)
                        .await?;
                }
                Ok(())
            }

            /// Parks `e` with its reason and records it in the inbox. An event that cannot be
            /// read or understood moves its aggregate on (`advance`); a gap does not.
            pub async fn park(
                inbox: &Inbox,
                c: &mut $conn,
                e: &Envelope,
                reason: &str,
                advance: bool,
            ) -> Result<(), sqlx::Error> {
                tracing::warn!(
                    consumer = %inbox.consumer,
                    event_id = %e.event_id,
                    event_type = %e.event_type,
                    aggregate_id = %e.aggregate_id,
                    version = e.aggregate_version,
                    reason,
                    "event parked; list parked events with GET /v1/admin/parked-events"
                );
                let id = if e.event_id.is_nil() {
                    uuid::Uuid::new_v4()
                } else {
                    e.event_id
                };
                sqlx::query(sqlx::AssertSqlSafe(inbox.q.park.clone()))
                    .bind(&inbox.consumer)
                    .bind(id.to_string())
                    .bind(&e.event_type)
                    .bind(&e.aggregate_id)
                    .bind(e.aggregate_version as i64)
                    .bind(reason)
                    .bind(String::from_utf8_lossy(&e.payload).into_owned())
                    .bind(OffsetDateTime::now_utc())
                    .execute(&mut *c)
                    .await?;
                record(inbox, c, e, Handled::Parked, advance).await
            }

            /// Writes what a batch settled: its parked events first, then its applied ones in
            /// two statements (positions only move forward, so the order between them is free).
            pub async fn settle(
                inbox: &Inbox,
                c: &mut $conn,
                settled: &crate::consume::Settled,
            ) -> Result<(), sqlx::Error> {
                for (e, reason, advance) in &settled.parked {
                    park(inbox, c, e, reason, *advance).await?;
                }
                let applied: Vec<&Envelope> = settled.applied.iter().collect();
                record_applied(inbox, c, &applied).await
            }
        }
    };
}

backend!(
    /// The inbox inside a SQLite transaction.
    sqlite,
    sqlx::SqliteConnection,
    {
        /// Records a batch of applied events, moving each aggregate to its highest version:
        /// two statements for the whole batch (SQLite has no arrays: the batch goes in as JSON).
        pub async fn record_applied(
            inbox: &Inbox,
            c: &mut sqlx::SqliteConnection,
            events: &[&Envelope],
        ) -> Result<(), sqlx::Error> {
            let events: Vec<&&Envelope> = events.iter().filter(|e| !e.event_id.is_nil()).collect();
            if events.is_empty() {
                return Ok(());
            }
            let (insert, advance) = inbox.bulk_sql_sqlite();
            let rows: Vec<(String, &str, &str, u64)> = events
                .iter()
                .map(|e| (e.event_id.to_string(), e.event_type.as_str(), e.aggregate_id.as_str(), e.aggregate_version))
                .collect();
            sqlx::query(sqlx::AssertSqlSafe(insert))
                .bind(&inbox.consumer)
                .bind(serde_json::to_string(&rows).unwrap_or_default())
                .bind(OffsetDateTime::now_utc())
                .execute(&mut *c)
                .await?;
            let mut last: std::collections::HashMap<(&str, &str), u64> = Default::default();
            for e in &events {
                let v = last.entry((aggregate_type(e), e.aggregate_id.as_str())).or_insert(0);
                *v = (*v).max(e.aggregate_version);
            }
            let last: Vec<(&str, &str, u64)> = last.into_iter().map(|((t, a), v)| (t, a, v)).collect();
            sqlx::query(sqlx::AssertSqlSafe(advance))
                .bind(&inbox.consumer)
                .bind(serde_json::to_string(&last).unwrap_or_default())
                .execute(&mut *c)
                .await?;
            Ok(())
        }
    }
);
backend!(
    /// The inbox inside a PostgreSQL transaction.
    postgres,
    sqlx::PgConnection,
    {
        /// Records a batch of applied events, moving each aggregate to its highest version:
        /// two statements for the whole batch.
        pub async fn record_applied(
            inbox: &Inbox,
            c: &mut sqlx::PgConnection,
            events: &[&Envelope],
        ) -> Result<(), sqlx::Error> {
            let events: Vec<&&Envelope> = events.iter().filter(|e| !e.event_id.is_nil()).collect();
            if events.is_empty() {
                return Ok(());
            }
            let (insert, advance) = inbox.bulk_sql();
            let ids: Vec<String> = events.iter().map(|e| e.event_id.to_string()).collect();
            let types: Vec<String> = events.iter().map(|e| e.event_type.clone()).collect();
            let aggs: Vec<String> = events.iter().map(|e| e.aggregate_id.clone()).collect();
            let versions: Vec<i64> = events.iter().map(|e| e.aggregate_version as i64).collect();
            sqlx::query(sqlx::AssertSqlSafe(insert))
                .bind(&inbox.consumer)
                .bind(&ids)
                .bind(&types)
                .bind(&aggs)
                .bind(OffsetDateTime::now_utc())
                .bind(&versions)
                .execute(&mut *c)
                .await?;
            let mut last: std::collections::HashMap<(String, String), i64> = Default::default();
            for e in &events {
                let v = last
                    .entry((aggregate_type(e).to_owned(), e.aggregate_id.clone()))
                    .or_insert(0);
                *v = (*v).max(e.aggregate_version as i64);
            }
            let (keys, versions): (Vec<_>, Vec<i64>) = last.into_iter().unzip();
            let (t, a): (Vec<String>, Vec<String>) = keys.into_iter().unzip();
            sqlx::query(sqlx::AssertSqlSafe(advance))
                .bind(&inbox.consumer)
                .bind(&t)
                .bind(&a)
                .bind(&versions)
                .execute(&mut *c)
                .await?;
            Ok(())
        }
    }
);

impl Inbox {
    fn bulk_sql_sqlite(&self) -> (String, String) {
        let s = self.service;
        (
            format!(
                "INSERT INTO {s}_inbox (consumer, event_id, event_type, aggregate_id, aggregate_version, outcome, handled_at) \
                 SELECT $1, json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]'), \
                 json_extract(value, '$[3]'), 'applied', $3 FROM json_each($2)"
            ),
            // `WHERE true`: SQLite's parser needs it between a SELECT and ON CONFLICT.
            format!(
                "INSERT INTO {s}_inbox_positions AS p (consumer, aggregate_type, aggregate_id, version) \
                 SELECT $1, json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]') \
                 FROM json_each($2) WHERE true \
                 ON CONFLICT (consumer, aggregate_type, aggregate_id) DO UPDATE SET version = max(p.version, excluded.version)"
            ),
        )
    }

    fn bulk_sql(&self) -> (String, String) {
        let s = self.service;
        (
            format!(
                "INSERT INTO {s}_inbox (consumer, event_id, event_type, aggregate_id, aggregate_version, outcome, handled_at) \
                 SELECT $1, x.id, x.ty, x.agg, x.v, 'applied', $5 FROM UNNEST($2::text[], $3::text[], $4::text[], $6::bigint[]) AS x(id, ty, agg, v)"
            ),
            format!(
                "INSERT INTO {s}_inbox_positions AS p (consumer, aggregate_type, aggregate_id, version) \
                 SELECT $1, x.t, x.a, x.v FROM UNNEST($2::text[], $3::text[], $4::bigint[]) AS x(t, a, v) \
                 ON CONFLICT (consumer, aggregate_type, aggregate_id) DO UPDATE SET version = GREATEST(p.version, excluded.version)"
            ),
        )
    }
}
