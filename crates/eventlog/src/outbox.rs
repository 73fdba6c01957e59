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

/// How far the relay is behind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OutboxLag {
    pub unpublished: u64,
    /// Seconds since the oldest unpublished row was written (0 when none).
    pub oldest_age_seconds: u64,
}

/// One service's outbox table.
#[derive(Debug, Clone)]
pub struct Outbox {
    table: &'static str,
}

impl Outbox {
    /// `table` is a fixed identifier, never input.
    pub fn new(table: &'static str) -> Outbox {
        assert!(
            table.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
            "a table name is lowercase letters and underscores"
        );
        Outbox { table }
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
        type Row = (i64, String, String, String, String, i64, String);
        let rows: Vec<Row> = on_pool!(pool, p => sqlx::query_as(sqlx::AssertSqlSafe(sql))
            .bind(i64::from(limit))
            .bind(after)
            .fetch_all(p)
            .await)?;
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

    /// Marks rows as published.
    pub async fn mark_published(
        &self,
        db: &Db,
        seqs: &[i64],
        at: OffsetDateTime,
    ) -> Result<(), OutboxError> {
        let sql = format!(
            "UPDATE {} SET published_at = $1 WHERE seq = $2 AND published_at IS NULL",
            self.table
        );
        let seqs = seqs.to_vec();
        db.write(move |pool| async move {
            on_pool!(&pool, p => {
                let mut tx = p.begin().await?;
                for seq in &seqs {
                    sqlx::query(sqlx::AssertSqlSafe(sql.clone())).bind(at).bind(*seq).execute(&mut *tx).await?;
                }
                tx.commit().await?;
            });
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
