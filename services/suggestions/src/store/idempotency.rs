//! Stored responses for `Idempotency-Key`: a replay returns the first response; the same key
//! with another request is refused; a key whose first request is still running is a conflict.

use banli_db::on_pool;
use time::OffsetDateTime;

use super::{Store, StoreError};

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

impl Store {
    /// Reserves `key` for `request_hash`, or tells what happened to it before.
    pub async fn reserve_idempotency(
        &self,
        principal: &str,
        key: &str,
        request_hash: &str,
    ) -> Result<Idempotency, StoreError> {
        let now = OffsetDateTime::now_utc();
        let (principal_owned, key_owned, hash_owned) = (
            principal.to_owned(),
            key.to_owned(),
            request_hash.to_owned(),
        );
        let inserted = self.write(move |pool| async move {
        Ok(on_pool!(&pool, p => sqlx::query(
            "INSERT INTO idempotency_keys (principal_id, key, request_hash, created_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
        )
        .bind(&principal_owned)
        .bind(&key_owned)
        .bind(&hash_owned)
        .bind(now)
        .execute(p)
        .await
        .map(|r| r.rows_affected()))?)
        })
        .await?;
        if inserted == 1 {
            return Ok(Idempotency::Reserved);
        }
        let row: Option<(String, Option<i32>, Option<String>)> = on_pool!(self.pool(), p => sqlx::query_as(
            "SELECT request_hash, status, response FROM idempotency_keys WHERE principal_id = $1 AND key = $2",
        )
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
    pub async fn complete_idempotency(
        &self,
        principal: &str,
        key: &str,
        status: u16,
        response: &str,
    ) -> Result<(), StoreError> {
        let (principal, key, response) =
            (principal.to_owned(), key.to_owned(), response.to_owned());
        self.write(move |pool| async move {
            on_pool!(&pool, p => sqlx::query("UPDATE idempotency_keys SET status = $1, response = $2 WHERE principal_id = $3 AND key = $4")
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
    pub async fn release_idempotency(&self, principal: &str, key: &str) -> Result<(), StoreError> {
        let (principal, key) = (principal.to_owned(), key.to_owned());
        self.write(move |pool| async move {
            on_pool!(&pool, p => sqlx::query("DELETE FROM idempotency_keys WHERE principal_id = $1 AND key = $2 AND status IS NULL")
                .bind(&principal)
                .bind(&key)
                .execute(p)
                .await
                .map(|_| ()))?;
            Ok(())
        })
        .await
    }

    /// Forgets keys older than the retention period.
    pub async fn purge_idempotency(&self, older_than: OffsetDateTime) -> Result<u64, StoreError> {
        self.write(move |pool| async move {
            Ok(on_pool!(&pool, p => sqlx::query("DELETE FROM idempotency_keys WHERE created_at < $1").bind(older_than).execute(p).await.map(|r| r.rows_affected()))?)
        })
        .await
    }
}
