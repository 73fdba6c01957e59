//! The transactional outbox (发件箱) of one service: rows written in the same transaction as the
//! state change they announce, read and marked here by the relay.
//!
//! A service writes its rows with its own SQL (inside its own transactions) into a table of this
//! shape: `seq` (ascending), `event_id`, `event_type`, `aggregate_type`, `aggregate_id`,
//! `aggregate_version`, `payload` (the envelope JSON), `occurred_at`, `published_at`.

use banli_db::{Db, Pool, WriterStopped, on_pool};
use time::OffsetDateTime;
use uuid::Uuid;

/// A row of the outbox, waiting to be published.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    pub seq: i64,
    pub event_id: Uuid,
    pub event_type: String,
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub aggregate_version: u64,
    /// The event envelope as JSON.
    pub payload: String,
}

#[derive(Debug, thiserror::Error)]
pub enum OutboxError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Writer(#[from] WriterStopped),
    #[error("outbox row {seq} has a bad event id `{id}`")]
    BadId { seq: i64, id: String },
}

/// An outbox row as read: seq, event id, type, aggregate type, id and version, payload.
type Row = (i64, String, String, String, String, i64, String);

fn rows_of(rows: Vec<Row>) -> Result<Vec<OutboxRow>, OutboxError> {
    rows.into_iter()
        .map(
            |(seq, id, event_type, aggregate_type, aggregate_id, version, payload)| {
                Ok(OutboxRow {
                    seq,
                    event_id: id.parse().map_err(|_| OutboxError::BadId { seq, id })?,
                    event_type,
                    aggregate_type,
                    aggregate_id,
                    aggregate_version: version.max(0) as u64,
                    payload,
                })
            },
        )
        .collect()
}

/// How far the relay is behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OutboxLag {
    pub unpublished: u64,
    /// Seconds since the oldest unpublished row was written (0 when none).
    pub oldest_age_seconds: u64,
}

/// One service's outbox table, and the signal its store gives the relay after a commit that
/// wrote rows to it (so the relay publishes at once instead of at its next look).
#[derive(Debug, Clone)]
pub struct Outbox {
    table: &'static str,
    written: banli_db::signal::Signal,
}

impl Outbox {
    /// `table` is a fixed identifier, never input.
    pub fn new(table: &'static str) -> Outbox {
        assert!(
            table.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
            "a table name is lowercase letters and underscores"
        );
        Outbox {
            table,
            written: banli_db::signal::Signal::new(table),
        }
    }

    /// Tells the relay that rows were committed (this process's at once, other processes' on
    /// PostgreSQL once [`banli_db::signal::share`] carries [`Outbox::signal`]). Called by the
    /// store after the commit; a signal given while the relay is busy wakes its next wait.
    pub fn written(&self) {
        self.written.raise();
    }

    /// The table's name.
    pub fn table(&self) -> &'static str {
        self.table
    }

    /// The signal [`Outbox::written`] raises.
    pub fn signal(&self) -> &banli_db::signal::Signal {
        &self.written
    }

    /// Rows not yet published, oldest first.
    pub async fn pending(&self, pool: &Pool, limit: u32) -> Result<Vec<OutboxRow>, OutboxError> {
        self.pending_after(pool, 0, limit).await
    }

    /// Rows not yet published with a sequence number above `after`, oldest first.
    pub async fn pending_after(
        &self,
        pool: &Pool,
        after: i64,
        limit: u32,
    ) -> Result<Vec<OutboxRow>, OutboxError> {
        let sql = format!(
            "SELECT seq, event_id, event_type, aggregate_type, aggregate_id, aggregate_version, payload FROM {} \
             WHERE published_at IS NULL AND seq > $2 ORDER BY seq LIMIT $1",
            self.table
        );
        let rows: Vec<Row> = on_pool!(pool, p => sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(i64::from(limit))
            .bind(after)
            .fetch_all(p)
            .await)?;
        rows_of(rows)
    }

    /// Rows not yet published among `seqs` (the relay's holes), oldest first.
    pub async fn pending_in(
        &self,
        pool: &Pool,
        seqs: &[i64],
    ) -> Result<Vec<OutboxRow>, OutboxError> {
        if seqs.is_empty() {
            return Ok(Vec::new());
        }
        let cols =
            "seq, event_id, event_type, aggregate_type, aggregate_id, aggregate_version, payload";
        let rows: Vec<Row> = match pool {
            Pool::Postgres(p) => {
                sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT {cols} FROM {} WHERE published_at IS NULL AND seq = ANY($1) ORDER BY seq",
                    self.table
                )))
                .bind(seqs)
                .fetch_all(p)
                .await?
            }
            Pool::Sqlite(p) => {
                sqlx::query_as(sqlx::AssertSqlSafe(format!(
                    "SELECT {cols} FROM {} WHERE published_at IS NULL AND seq IN (SELECT value FROM json_each($1)) ORDER BY seq",
                    self.table
                )))
                .bind(serde_json::to_string(seqs).unwrap_or_default())
                .fetch_all(p)
                .await?
            }
        };
        rows_of(rows)
    }

    /// Marks rows as published, in one statement.
    pub async fn mark_published(
        &self,
        db: &Db,
        seqs: &[i64],
        at: OffsetDateTime,
    ) -> Result<(), OutboxError> {
        if seqs.is_empty() {
            return Ok(());
        }
        let table = self.table;
        let seqs = seqs.to_vec();
        db.write(move |pool| async move {
            match &pool {
                Pool::Postgres(p) => {
                    sqlx::query(sqlx::AssertSqlSafe(format!(
                        "UPDATE {table} SET published_at = $1 WHERE seq = ANY($2) AND published_at IS NULL"
                    )))
                    .bind(at)
                    .bind(&seqs)
                    .execute(p)
                    .await?;
                }
                Pool::Sqlite(p) => {
                    // SQLite has no arrays: the sequence numbers go in as JSON.
                    let json = serde_json::to_string(&seqs).unwrap_or_default();
                    sqlx::query(sqlx::AssertSqlSafe(format!(
                        "UPDATE {table} SET published_at = $1 WHERE seq IN (SELECT value FROM json_each($2)) AND published_at IS NULL"
                    )))
                    .bind(at)
                    .bind(json)
                    .execute(p)
                    .await?;
                }
            }
            Ok(())
        })
        .await
    }

    /// How many rows wait, and for how long the oldest has.
    pub async fn lag(&self, pool: &Pool) -> Result<OutboxLag, OutboxError> {
        let sql = format!(
            "SELECT COUNT(*), MIN(occurred_at) FROM {} WHERE published_at IS NULL",
            self.table
        );
        let (n, oldest): (i64, Option<OffsetDateTime>) =
            on_pool!(pool, p => sqlx::query_as(sqlx::AssertSqlSafe(sql)).fetch_one(p).await)?;
        let age = oldest.map_or(0, |t| {
            (OffsetDateTime::now_utc() - t).whole_seconds().max(0) as u64
        });
        Ok(OutboxLag {
            unpublished: n.max(0) as u64,
            oldest_age_seconds: age,
        })
    }
}
