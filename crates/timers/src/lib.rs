//! Durable timers (定时器): rows with a due time in a service's own table, claimed with a lease
//! and fired once — across replicas (PostgreSQL: `FOR UPDATE SKIP LOCKED`; SQLite: its one
//! writer) and across restarts (a claim whose lease ran out is claimed again).
//!
//! Firing is the caller's effect plus [`sqlite::complete`] / [`postgres::complete`] in the same
//! transaction: completion succeeds only for the claim's owner while the timer is still pending,
//! so a replica whose lease expired and was taken over cannot fire it a second time (its
//! transaction rolls back), and a timer rescheduled meanwhile fires at its new time instead.
//!
//! Times are stored as Unix milliseconds.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use banli_db::{Db, Pool, WriterStopped, on_pool};
use time::OffsetDateTime;

#[derive(Debug, thiserror::Error)]
pub enum TimerError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Writer(#[from] WriterStopped),
}

/// A claimed timer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claimed {
    pub key: String,
    pub due_at: OffsetDateTime,
    pub payload: String,
    /// How many times it has been claimed (1 the first time).
    pub attempt: u64,
}

/// A scheduled timer as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scheduled {
    pub key: String,
    pub due_at: OffsetDateTime,
    /// The due time before the last reschedule, if it moved.
    pub previous_due_at: Option<OffsetDateTime>,
    pub state: String,
}

fn millis(t: OffsetDateTime) -> i64 {
    (t.unix_timestamp_nanos() / 1_000_000) as i64
}

fn from_millis(ms: i64) -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// One service's timer table.
#[derive(Debug, Clone)]
pub struct Timers {
    table: &'static str,
    scheduled: banli_db::signal::Signal,
}

impl Timers {
    /// `table` is a fixed identifier, never input.
    pub fn new(table: &'static str) -> Timers {
        assert!(
            table.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
            "a table name is lowercase letters and underscores"
        );
        Timers {
            table,
            scheduled: banli_db::signal::Signal::new(table),
        }
    }

    pub fn table(&self) -> &'static str {
        self.table
    }

    /// Creates the table.
    pub async fn migrate(&self, pool: &Pool) -> Result<(), sqlx::Error> {
        let t = self.table;
        for stmt in [
            format!(
                "CREATE TABLE IF NOT EXISTS {t} (timer_key TEXT PRIMARY KEY, due_at BIGINT NOT NULL, payload TEXT NOT NULL, \
                 state TEXT NOT NULL, owner TEXT, lease_until BIGINT, attempts BIGINT NOT NULL DEFAULT 0, \
                 previous_due_at BIGINT, fired_at BIGINT)"
            ),
            format!("CREATE INDEX IF NOT EXISTS {t}_due ON {t} (due_at) WHERE state = 'pending'"),
        ] {
            on_pool!(pool, p => sqlx::query(sqlx::AssertSqlSafe(stmt)).execute(p).await.map(|_| ()))?;
        }
        Ok(())
    }

    fn upsert_sql(&self) -> String {
        let t = self.table;
        format!(
            "INSERT INTO {t} (timer_key, due_at, payload, state, attempts) VALUES ($1, $2, $3, 'pending', 0) {}",
            on_conflict(t)
        )
    }

    /// Tells the runners that a timer was scheduled (it may be due sooner than the one they
    /// sleep for): this process's at once, other processes' on PostgreSQL once
    /// [`banli_db::signal::share`] carries [`Timers::signal`]. Call after the scheduling
    /// transaction commits.
    pub fn scheduled(&self) {
        self.scheduled.raise();
    }

    /// The signal [`Timers::scheduled`] raises.
    pub fn signal(&self) -> &banli_db::signal::Signal {
        &self.scheduled
    }

    /// Schedules timers in their own transaction (see [`sqlite::schedule`] and
    /// [`postgres::schedule`] to schedule within yours).
    pub async fn schedule(
        &self,
        db: &Db,
        timers: Vec<(String, OffsetDateTime, String)>,
    ) -> Result<(), TimerError> {
        let me = self.clone();
        db.write(move |pool| async move {
            match &pool {
                Pool::Sqlite(p) => {
                    let mut tx = p.begin().await?;
                    for (key, due, payload) in &timers {
                        sqlite::schedule(&me, &mut tx, key, *due, payload).await?;
                    }
                    tx.commit().await?;
                }
                Pool::Postgres(p) => {
                    let mut tx = p.begin().await?;
                    for (key, due, payload) in &timers {
                        postgres::schedule(&me, &mut tx, key, *due, payload).await?;
                    }
                    tx.commit().await?;
                }
            }
            Ok::<(), TimerError>(())
        })
        .await?;
        self.scheduled();
        Ok(())
    }

    /// Claims up to `limit` due timers for `owner` until `now + lease`.
    pub async fn claim(
        &self,
        db: &Db,
        owner: &str,
        now: OffsetDateTime,
        limit: u32,
        lease: Duration,
    ) -> Result<Vec<Claimed>, TimerError> {
        let t = self.table;
        let lock = match db.pool() {
            Pool::Postgres(_) => " FOR UPDATE SKIP LOCKED",
            Pool::Sqlite(_) => "",
        };
        let sql = format!(
            "UPDATE {t} SET owner = $1, lease_until = $2, attempts = attempts + 1 WHERE timer_key IN \
             (SELECT timer_key FROM {t} WHERE state = 'pending' AND due_at <= $3 AND (lease_until IS NULL OR lease_until < $3) \
              ORDER BY due_at LIMIT $4{lock}) \
             RETURNING timer_key, due_at, payload, attempts"
        );
        let owner = owner.to_owned();
        let (now_ms, until) = (millis(now), millis(now + lease));
        let rows: Vec<(String, i64, String, i64)> = db
            .write(move |pool| async move {
                let rows = on_pool!(&pool, p => sqlx::query_as(sqlx::AssertSqlSafe(sql))
                    .bind(&owner)
                    .bind(until)
                    .bind(now_ms)
                    .bind(i64::from(limit))
                    .fetch_all(p)
                    .await)?;
                Ok::<_, TimerError>(rows)
            })
            .await?;
        let mut out: Vec<Claimed> = rows
            .into_iter()
            .map(|(key, due, payload, attempts)| Claimed {
                key,
                due_at: from_millis(due),
                payload,
                attempt: attempts.max(1) as u64,
            })
            .collect();
        out.sort_by_key(|c| c.due_at);
        Ok(out)
    }

    /// Gives a claim back, to be claimed again after `delay` (a failed firing).
    pub async fn release(
        &self,
        db: &Db,
        key: &str,
        owner: &str,
        delay: Duration,
    ) -> Result<(), TimerError> {
        let t = self.table;
        let sql = format!(
            "UPDATE {t} SET owner = NULL, lease_until = $3 WHERE timer_key = $1 AND owner = $2 AND state = 'pending'"
        );
        let (key, owner) = (key.to_owned(), owner.to_owned());
        let until = millis(OffsetDateTime::now_utc() + delay);
        db.write(move |pool| async move {
            on_pool!(&pool, p => sqlx::query(sqlx::AssertSqlSafe(sql)).bind(&key).bind(&owner).bind(until).execute(p).await.map(|_| ()))?;
            Ok::<(), TimerError>(())
        })
        .await
    }

    /// When the next pending timer may be claimed: its due time, or the end of the lease
    /// another replica holds on it.
    pub async fn next_due(&self, pool: &Pool) -> Result<Option<OffsetDateTime>, TimerError> {
        let greatest = match pool {
            Pool::Postgres(_) => "GREATEST",
            Pool::Sqlite(_) => "MAX",
        };
        let sql = format!(
            "SELECT MIN({greatest}(due_at, COALESCE(lease_until, 0))) FROM {} WHERE state = 'pending'",
            self.table
        );
        let (min,): (Option<i64>,) =
            on_pool!(pool, p => sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_one(p).await)?;
        Ok(min.map(from_millis))
    }

    /// A timer by key.
    pub async fn get(&self, pool: &Pool, key: &str) -> Result<Option<Scheduled>, TimerError> {
        let sql = format!(
            "SELECT timer_key, due_at, previous_due_at, state FROM {} WHERE timer_key = $1",
            self.table
        );
        let row: Option<(String, i64, Option<i64>, String)> = on_pool!(pool, p => sqlx::query_as(sqlx::AssertSqlSafe(sql)).bind(key).fetch_optional(p).await)?;
        Ok(row.map(|(key, due, prev, state)| Scheduled {
            key,
            due_at: from_millis(due),
            previous_due_at: prev.map(from_millis),
            state,
        }))
    }

    /// How many timers are pending.
    pub async fn pending(&self, pool: &Pool) -> Result<u64, TimerError> {
        let sql = format!(
            "SELECT COUNT(*) FROM {} WHERE state = 'pending'",
            self.table
        );
        let (n,): (i64,) =
            on_pool!(pool, p => sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_one(p).await)?;
        Ok(n.max(0) as u64)
    }
}

/// What scheduling does to a timer that exists: moves a pending one (remembering its previous
/// time), leaves a fired or cancelled one alone.
fn on_conflict(t: &str) -> String {
    format!(
        "ON CONFLICT (timer_key) DO UPDATE SET \
         previous_due_at = CASE WHEN {t}.due_at <> excluded.due_at THEN {t}.due_at ELSE {t}.previous_due_at END, \
         due_at = excluded.due_at, payload = excluded.payload, owner = NULL, lease_until = NULL \
         WHERE {t}.state = 'pending'"
    )
}

/// Timer changes collected while a transaction decides what to do, written at its end in a
/// few statements ([`sqlite::flush`], [`postgres::flush`]) instead of one per timer. The order
/// between schedules and cancellations is kept (a cancelled timer stays cancelled; scheduling
/// after a cancellation creates one only where none existed), and a timer scheduled twice in a
/// row keeps its last time.
#[derive(Debug, Default)]
pub struct Ops {
    runs: Vec<Run>,
}

#[derive(Debug)]
enum Run {
    Schedule(
        Vec<(String, i64, String)>,
        std::collections::HashMap<String, usize>,
    ),
    Cancel(Vec<String>, std::collections::HashSet<String>),
}

impl Ops {
    /// Schedules (or moves) a timer; a fired or cancelled one is left alone.
    pub fn schedule(&mut self, key: &str, due_at: OffsetDateTime, payload: &str) {
        let row = (key.to_owned(), millis(due_at), payload.to_owned());
        if let Some(Run::Schedule(rows, at)) = self.runs.last_mut() {
            match at.get(key) {
                Some(i) => rows[*i] = row,
                None => {
                    at.insert(key.to_owned(), rows.len());
                    rows.push(row);
                }
            }
            return;
        }
        let at = std::iter::once((key.to_owned(), 0)).collect();
        self.runs.push(Run::Schedule(vec![row], at));
    }

    /// Cancels a pending timer.
    pub fn cancel(&mut self, key: &str) {
        if let Some(Run::Cancel(keys, seen)) = self.runs.last_mut() {
            if seen.insert(key.to_owned()) {
                keys.push(key.to_owned());
            }
            return;
        }
        let seen = std::iter::once(key.to_owned()).collect();
        self.runs.push(Run::Cancel(vec![key.to_owned()], seen));
    }

    pub fn is_empty(&self) -> bool {
        self.runs.is_empty()
    }
}

macro_rules! backend {
    ($module:ident, $conn:ty, { $($extra:item)* }) => {
        /// Scheduling and completing within the caller's transaction.
        pub mod $module {
            use super::*;

            $($extra)*

            /// Schedules (or moves) a timer; a fired or cancelled one is left alone.
            pub async fn schedule(
                timers: &Timers,
                c: &mut $conn,
                key: &str,
                due_at: OffsetDateTime,
                payload: &str,
            ) -> Result<(), sqlx::Error> {
                sqlx::query(sqlx::AssertSqlSafe(timers.upsert_sql()))
                    .bind(key)
                    .bind(millis(due_at))
                    .bind(payload)
                    .execute(&mut *c)
                    .await
                    .map(|_| ())
            }

            /// Cancels a pending timer.
            pub async fn cancel(timers: &Timers, c: &mut $conn, key: &str) -> Result<bool, sqlx::Error> {
                let sql = format!(
                    "UPDATE {} SET state = 'cancelled', owner = NULL, lease_until = NULL WHERE timer_key = $1 AND state = 'pending'",
                    timers.table
                );
                let r = sqlx::query(sqlx::AssertSqlSafe(sql)).bind(key).execute(&mut *c).await?;
                Ok(r.rows_affected() == 1)
            }

            /// Marks a claimed timer fired; false when the claim is no longer `owner`'s (taken
            /// over after its lease, or rescheduled) — then the caller rolls its effect back.
            pub async fn complete(
                timers: &Timers,
                c: &mut $conn,
                key: &str,
                owner: &str,
                at: OffsetDateTime,
            ) -> Result<bool, sqlx::Error> {
                let sql = format!(
                    "UPDATE {} SET state = 'fired', fired_at = $3, owner = NULL, lease_until = NULL \
                     WHERE timer_key = $1 AND owner = $2 AND state = 'pending'",
                    timers.table
                );
                let r = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(key)
                    .bind(owner)
                    .bind(millis(at))
                    .execute(&mut *c)
                    .await?;
                Ok(r.rows_affected() == 1)
            }
        }
    };
}

backend!(sqlite, sqlx::SqliteConnection, {
    /// Writes collected timer changes: one statement per run of schedules or cancellations.
    pub async fn flush(
        timers: &Timers,
        c: &mut sqlx::SqliteConnection,
        ops: Ops,
    ) -> Result<(), sqlx::Error> {
        let t = timers.table;
        for run in ops.runs {
            match run {
                Run::Schedule(rows, _) => {
                    // `WHERE true`: SQLite's parser needs it between a SELECT and ON CONFLICT.
                    let sql = format!(
                        "INSERT INTO {t} (timer_key, due_at, payload, state, attempts) \
                         SELECT json_extract(value, '$[0]'), json_extract(value, '$[1]'), json_extract(value, '$[2]'), 'pending', 0 \
                         FROM json_each($1) WHERE true \
                         {}",
                        on_conflict(t)
                    );
                    sqlx::query(sqlx::AssertSqlSafe(sql))
                        .bind(serde_json::to_string(&rows).unwrap_or_default())
                        .execute(&mut *c)
                        .await?;
                }
                Run::Cancel(keys, _) => {
                    let sql = format!(
                        "UPDATE {t} SET state = 'cancelled', owner = NULL, lease_until = NULL \
                         WHERE timer_key IN (SELECT value FROM json_each($1)) AND state = 'pending'"
                    );
                    sqlx::query(sqlx::AssertSqlSafe(sql))
                        .bind(serde_json::to_string(&keys).unwrap_or_default())
                        .execute(&mut *c)
                        .await?;
                }
            }
        }
        Ok(())
    }
});
backend!(postgres, sqlx::PgConnection, {
    /// Writes collected timer changes: one statement per run of schedules or cancellations.
    pub async fn flush(
        timers: &Timers,
        c: &mut sqlx::PgConnection,
        ops: Ops,
    ) -> Result<(), sqlx::Error> {
        let t = timers.table;
        for run in ops.runs {
            match run {
                Run::Schedule(rows, _) => {
                    let mut keys = Vec::with_capacity(rows.len());
                    let mut due = Vec::with_capacity(rows.len());
                    let mut payloads = Vec::with_capacity(rows.len());
                    for (k, d, p) in rows {
                        keys.push(k);
                        due.push(d);
                        payloads.push(p);
                    }
                    let sql = format!(
                        "INSERT INTO {t} (timer_key, due_at, payload, state, attempts) \
                         SELECT x.k, x.d, x.p, 'pending', 0 FROM UNNEST($1::text[], $2::bigint[], $3::text[]) AS x(k, d, p) \
                         {}",
                        on_conflict(t)
                    );
                    sqlx::query(sqlx::AssertSqlSafe(sql))
                        .bind(&keys)
                        .bind(&due)
                        .bind(&payloads)
                        .execute(&mut *c)
                        .await?;
                }
                Run::Cancel(keys, _) => {
                    let sql = format!(
                        "UPDATE {t} SET state = 'cancelled', owner = NULL, lease_until = NULL \
                         WHERE timer_key = ANY($1) AND state = 'pending'"
                    );
                    sqlx::query(sqlx::AssertSqlSafe(sql))
                        .bind(&keys)
                        .execute(&mut *c)
                        .await?;
                }
            }
        }
        Ok(())
    }
});

/// Fires claimed timers: for each, its effect and [`sqlite::complete`] / [`postgres::complete`]
/// in one transaction. Returns, per timer, whether it fired here.
pub trait TimerHandler: Send + Sync + 'static {
    fn fire(
        &self,
        owner: &str,
        timers: &[Claimed],
    ) -> impl Future<Output = Result<Vec<bool>, String>> + Send;
}

/// How a runner runs.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// This replica's name; claims carry it.
    pub owner: String,
    /// The most timers claimed at once.
    pub batch: u32,
    /// How long a claim holds before another replica may take the timer.
    pub lease: Duration,
    /// The longest sleep between looks: a safety net (a runner sleeps until the next due time
    /// or a schedule signal, other processes' too once the signal is shared).
    pub idle: Duration,
}

/// Counters a runner exports.
#[derive(Debug, Default)]
pub struct TimerStats {
    pub fired: std::sync::atomic::AtomicU64,
    pub lost: std::sync::atomic::AtomicU64,
    pub failures: std::sync::atomic::AtomicU64,
}

/// Claims and fires due timers until `stop` resolves. Never returns early: failures are logged
/// and retried.
pub async fn run<H: TimerHandler>(
    db: Db,
    timers: Timers,
    options: RunOptions,
    handler: H,
    stats: Arc<TimerStats>,
    stop: impl Future<Output = ()>,
) {
    use std::sync::atomic::Ordering;
    tokio::pin!(stop);
    let mut scheduled = timers.scheduled.waiter();
    loop {
        let now = OffsetDateTime::now_utc();
        let claimed = match timers
            .claim(&db, &options.owner, now, options.batch, options.lease)
            .await
        {
            Ok(c) => c,
            Err(e) => {
                stats.failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(table = timers.table, error = %e, "claiming timers failed; retrying");
                tokio::select! {
                    () = &mut stop => return,
                    () = tokio::time::sleep(Duration::from_secs(1)) => continue,
                }
            }
        };
        if !claimed.is_empty() {
            match handler.fire(&options.owner, &claimed).await {
                Ok(fired) => {
                    let n = fired.iter().filter(|f| **f).count() as u64;
                    stats.fired.fetch_add(n, Ordering::Relaxed);
                    stats
                        .lost
                        .fetch_add(claimed.len() as u64 - n, Ordering::Relaxed);
                }
                Err(e) => {
                    stats.failures.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(table = timers.table, error = %e, timers = claimed.len(), "firing timers failed; they will be tried again");
                    for c in &claimed {
                        let delay = Duration::from_secs(c.attempt.min(60));
                        let _ = timers.release(&db, &c.key, &options.owner, delay).await;
                    }
                }
            }
            if claimed.len() as u32 == options.batch {
                continue;
            }
        }
        let sleep = match timers.next_due(db.pool()).await {
            Ok(Some(due)) => {
                let wait = due - OffsetDateTime::now_utc();
                Duration::try_from(wait)
                    .unwrap_or(Duration::ZERO)
                    .min(options.idle)
                    .max(Duration::from_millis(5))
            }
            _ => options.idle,
        };
        tokio::select! {
            () = &mut stop => return,
            () = tokio::time::sleep(sleep) => {}
            () = scheduled.wait() => {}
        }
    }
}
