//! Stored responses for `Idempotency-Key`, one table per service: a replay returns the first
//! response; the same key with another request is refused; a key whose first request is still
//! running is a conflict.

use time::OffsetDateTime;

use crate::{Db, Pool, WriterStopped, on_pool};

/// What the store knows about a key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Idempotency {
    /// First use: the key is now reserved for this request.
    Reserved,
    /// The same request was answered before.
    Replay { status: u16, response: String },
    /// The key was used with a different request.
    Mismatch,
    /// The first request with this key has not finished.
    InProgress,
}

#[derive(Debug, thiserror::Error)]
pub enum IdempotencyError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    #[error(transparent)]
    Writer(#[from] WriterStopped),
}

/// A service's idempotency-key table.
#[derive(Debug, Clone)]
pub struct IdempotencyKeys {
    table: &'static str,
}

impl IdempotencyKeys {
    /// `table` is a fixed identifier (e.g. `idempotency_keys`), never input.
    pub fn new(table: &'static str) -> IdempotencyKeys {
        assert!(
            table.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
            "a table name is lowercase letters and underscores"
        );
        IdempotencyKeys { table }
    }

    /// Creates the table if it does not exist.
    pub async fn migrate(&self, pool: &Pool) -> Result<(), sqlx::Error> {
        let t = self.table;
        let time = match pool {
            Pool::Sqlite(_) => "TEXT",
            Pool::Postgres(_) => "TIMESTAMPTZ",
        };
        let stmts = [
            format!(
                "CREATE TABLE IF NOT EXISTS {t} (principal_id TEXT NOT NULL, key TEXT NOT NULL, request_hash TEXT NOT NULL, \
                 status INTEGER, response TEXT, created_at {time} NOT NULL, PRIMARY KEY (principal_id, key))"
            ),
            format!("CREATE INDEX IF NOT EXISTS {t}_created ON {t} (created_at)"),
        ];
        for s in stmts {
            on_pool!(pool, p => sqlx::query(sqlx::AssertSqlSafe(s)).execute(p).await.map(|_| ()))?;
        }
        Ok(())
    }

    /// Reserves `key` for `request_hash`, or tells what happened to it before.
    pub async fn reserve(
        &self,
        db: &Db,
        principal: &str,
        key: &str,
        request_hash: &str,
    ) -> Result<Idempotency, IdempotencyError> {
        let now = OffsetDateTime::now_utc();
        let insert = format!(
            "INSERT INTO {} (principal_id, key, request_hash, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
            self.table
        );
        let (p1, k1, h1) = (
            principal.to_owned(),
            key.to_owned(),
            request_hash.to_owned(),
        );
        let inserted = db
            .write(move |pool| async move {
                Ok::<_, IdempotencyError>(
                    on_pool!(&pool, p => sqlx::query(sqlx::AssertSqlSafe(insert))
                    .bind(&p1)
                    .bind(&k1)
                    .bind(&h1)
                    .bind(now)
                    .execute(p)
                    .await
                    .map(|r| r.rows_affected()))?,
                )
            })
            .await?;
        if inserted == 1 {
            return Ok(Idempotency::Reserved);
        }
        let select = format!(
            "SELECT request_hash, status, response FROM {} WHERE principal_id = $1 AND key = $2",
            self.table
        );
        let row: Option<(String, Option<i32>, Option<String>)> = on_pool!(db.pool(), p => sqlx::query_as(sqlx::AssertSqlSafe(select))
            .bind(principal)
            .bind(key)
            .fetch_optional(p)
            .await)?;
        Ok(match row {
            None => Idempotency::InProgress, // released between the insert and the read: retry
            Some((hash, _, _)) if hash != request_hash => Idempotency::Mismatch,
            Some((_, Some(status), Some(response))) => Idempotency::Replay {
                status: status as u16,
                response,
            },
            Some(_) => Idempotency::InProgress,
        })
    }

    /// Stores the response of a reserved key.
    pub async fn complete(
        &self,
        db: &Db,
        principal: &str,
        key: &str,
        status: u16,
        response: &str,
    ) -> Result<(), IdempotencyError> {
        let sql = format!(
            "UPDATE {} SET status = $1, response = $2 WHERE principal_id = $3 AND key = $4",
            self.table
        );
        let (principal, key, response) =
            (principal.to_owned(), key.to_owned(), response.to_owned());
        db.write(move |pool| async move {
            on_pool!(&pool, p => sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(i32::from(status))
                .bind(&response)
                .bind(&principal)
                .bind(&key)
                .execute(p)
                .await
                .map(|_| ()))?;
            Ok(())
        })
        .await
    }

    /// Frees a reserved key whose request failed in a way worth retrying (a server-side error).
    pub async fn release(
        &self,
        db: &Db,
        principal: &str,
        key: &str,
    ) -> Result<(), IdempotencyError> {
        let sql = format!(
            "DELETE FROM {} WHERE principal_id = $1 AND key = $2 AND status IS NULL",
            self.table
        );
        let (principal, key) = (principal.to_owned(), key.to_owned());
        db.write(move |pool| async move {
            on_pool!(&pool, p => sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(&principal)
                .bind(&key)
                .execute(p)
                .await
                .map(|_| ()))?;
            Ok(())
        })
        .await
    }

    /// Forgets `Idempotency-Key`s made before `older_than` and agencies' reference ids (the
    /// `agency:` scopes, kept much longer: an agency's system may resend a change months later)
    /// made before `references_older_than`; returns how many.
    pub async fn purge(
        &self,
        db: &Db,
        older_than: OffsetDateTime,
        references_older_than: OffsetDateTime,
    ) -> Result<u64, IdempotencyError> {
        let sql = format!(
            "DELETE FROM {} WHERE (created_at < $1 AND principal_id NOT LIKE 'agency:%') \
             OR (created_at < $2 AND principal_id LIKE 'agency:%')",
            self.table
        );
        db.write(move |pool| async move {
            Ok(on_pool!(&pool, p => sqlx::query(sqlx::AssertSqlSafe(sql)).bind(older_than).bind(references_older_than).execute(p).await.map(|r| r.rows_affected()))?)
        })
        .await
    }
}
