//! The webhook tables: endpoints, their sealed secrets, the delivery log.

use banli_db::{Pool, on_pool};

use crate::feed::FeedEntry;
use crate::store::{Store, StoreError};

/// An endpoint as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct EndpointRow {
    pub id: String,
    pub agency_id: String,
    pub url: String,
    /// JSON array.
    pub event_types: String,
    pub description: String,
    pub state: String,
    pub disabled_reason: Option<String>,
    pub cursor: i64,
    pub failures: i32,
    pub failing_since: Option<i64>,
    pub next_attempt_at: i64,
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
}

impl EndpointRow {
    pub fn types(&self) -> Vec<String> {
        serde_json::from_str(&self.event_types).unwrap_or_default()
    }
}

/// One attempt, as stored.
#[derive(Debug, Clone, PartialEq, Eq, sqlx::FromRow)]
pub struct DeliveryRow {
    pub id: String,
    pub endpoint_id: String,
    pub event_id: String,
    pub event_type: String,
    pub seq: i64,
    pub attempt: i32,
    pub status: Option<i32>,
    pub error: Option<String>,
    pub duration_ms: i64,
    pub at: i64,
}

/// The disable event goes to the event log too: the follow-up service raises a supervision
/// notice to the agency from it.
const OUTBOX_INSERT: &str = "INSERT INTO coordination_outbox (event_id, event_type, aggregate_type, aggregate_id, aggregate_version, payload, occurred_at) \
                             VALUES ($1, $2, 'webhook', $3, $4, $5, $6)";

/// The envelope of a feed entry on the event log (the same fields every service writes).
fn wire_of(e: &FeedEntry) -> String {
    let payload: serde_json::Value = serde_json::from_str(&e.payload).unwrap_or_default();
    serde_json::json!({
        "event_id": e.event_id,
        "schema_version": 1,
        "event_type": e.event_type,
        "aggregate_type": e.aggregate_type,
        "aggregate_id": e.aggregate_id,
        "aggregate_version": e.aggregate_version,
        "occurred_at": e.occurred_at,
        "agency_id": e.agency_id,
        "payload": payload,
    })
    .to_string()
}

const ENDPOINT_COLUMNS: &str = "id, agency_id, url, event_types, description, state, disabled_reason, cursor, failures, failing_since, next_attempt_at, version, created_at, updated_at";

/// Runs `$body` in a transaction on either backend, `$tx` bound to the connection.
macro_rules! in_tx {
    ($pool:expr, |$tx:ident| $body:expr) => {
        match $pool {
            Pool::Sqlite(p) => {
                let mut $tx = p.begin().await?;
                let out = $body;
                $tx.commit().await?;
                out
            }
            Pool::Postgres(p) => {
                let mut $tx = p.begin().await?;
                let out = $body;
                $tx.commit().await?;
                out
            }
        }
    };
}

/// Appends an attempt to the delivery log, on either backend's connection.
macro_rules! insert_delivery {
    ($c:expr, $d:expr) => {{
        let d: &DeliveryRow = $d;
        sqlx::query(
            "INSERT INTO webhook_deliveries (id, endpoint_id, event_id, event_type, seq, attempt, status, error, duration_ms, at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .bind(&d.id)
        .bind(&d.endpoint_id)
        .bind(&d.event_id)
        .bind(&d.event_type)
        .bind(d.seq)
        .bind(d.attempt)
        .bind(d.status)
        .bind(&d.error)
        .bind(d.duration_ms)
        .bind(d.at)
        .execute($c)
        .await
    }};
}

impl Store {
    /// Stores a new endpoint with its first secret.
    pub async fn insert_webhook(
        &self,
        row: EndpointRow,
        secret_id: String,
        sealed: String,
    ) -> Result<(), StoreError> {
        self.db()
            .write(move |pool| async move {
                in_tx!(&pool, |tx| {
                    sqlx::query(sqlx::AssertSqlSafe(format!(
                        "INSERT INTO webhook_endpoints ({ENDPOINT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
                    )))
                    .bind(&row.id)
                    .bind(&row.agency_id)
                    .bind(&row.url)
                    .bind(&row.event_types)
                    .bind(&row.description)
                    .bind(&row.state)
                    .bind(&row.disabled_reason)
                    .bind(row.cursor)
                    .bind(row.failures)
                    .bind(row.failing_since)
                    .bind(row.next_attempt_at)
                    .bind(row.version)
                    .bind(row.created_at)
                    .bind(row.updated_at)
                    .execute(&mut *tx)
                    .await?;
                    sqlx::query("INSERT INTO webhook_secrets (endpoint_id, id, sealed, created_at, expires_at) VALUES ($1, $2, $3, $4, NULL)")
                        .bind(&row.id)
                        .bind(&secret_id)
                        .bind(&sealed)
                        .bind(row.created_at)
                        .execute(&mut *tx)
                        .await?;
                });
                Ok::<_, StoreError>(())
            })
            .await
    }

    pub async fn webhook(&self, id: &str) -> Result<Option<EndpointRow>, StoreError> {
        let sql = format!("SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE id = $1");
        Ok(
            on_pool!(self.pool(), p => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(id).fetch_optional(p).await)?,
        )
    }

    /// An agency's endpoints (every agency's with `None`), oldest first.
    pub async fn webhooks(&self, agency: Option<&str>) -> Result<Vec<EndpointRow>, StoreError> {
        let sql = format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints WHERE ($1 = '' OR agency_id = $1) ORDER BY created_at, id"
        );
        let agency = agency.unwrap_or("").to_owned();
        Ok(
            on_pool!(self.pool(), p => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone())).bind(&agency).fetch_all(p).await)?,
        )
    }

    /// Writes `row`'s settings (url, types, description, state, reason, cursor, failures) if the
    /// stored version is `expected`; the version goes up by one. False when it was not.
    pub async fn update_webhook(
        &self,
        row: EndpointRow,
        expected: i64,
    ) -> Result<bool, StoreError> {
        self.db()
            .write(move |pool| async move {
                let n = on_pool!(&pool, p => sqlx::query(
                    "UPDATE webhook_endpoints SET url = $1, event_types = $2, description = $3, state = $4, disabled_reason = $5, \
                     cursor = $6, failures = $7, failing_since = $8, next_attempt_at = $9, version = version + 1, updated_at = $10 \
                     WHERE id = $11 AND version = $12")
                    .bind(&row.url)
                    .bind(&row.event_types)
                    .bind(&row.description)
                    .bind(&row.state)
                    .bind(&row.disabled_reason)
                    .bind(row.cursor)
                    .bind(row.failures)
                    .bind(row.failing_since)
                    .bind(row.next_attempt_at)
                    .bind(row.updated_at)
                    .bind(&row.id)
                    .bind(expected)
                    .execute(p)
                    .await
                    .map(|r| r.rows_affected()))?;
                Ok::<_, StoreError>(n == 1)
            })
            .await
    }

    /// Takes the endpoint's replay slot: `Ok(None)` when it was last replayed at or before
    /// `not_since` (unix ms; now it is `now`), else `Ok(Some(when))` it was.
    pub async fn take_webhook_replay(
        &self,
        id: &str,
        now: i64,
        not_since: i64,
    ) -> Result<Option<i64>, StoreError> {
        let id = id.to_owned();
        self.db()
            .write(move |pool| async move {
                let n = on_pool!(&pool, p => sqlx::query(
                    "UPDATE webhook_endpoints SET replayed_at = $1 WHERE id = $2 AND replayed_at <= $3")
                    .bind(now)
                    .bind(&id)
                    .bind(not_since)
                    .execute(p)
                    .await
                    .map(|r| r.rows_affected()))?;
                if n == 1 {
                    return Ok::<_, StoreError>(None);
                }
                let at: Option<(i64,)> = on_pool!(&pool, p => sqlx::query_as(
                    "SELECT replayed_at FROM webhook_endpoints WHERE id = $1")
                    .bind(&id)
                    .fetch_optional(p)
                    .await)?;
                Ok(Some(at.map_or(now, |(a,)| a)))
            })
            .await
    }

    pub async fn delete_webhook(&self, id: &str) -> Result<bool, StoreError> {
        let id = id.to_owned();
        self.db()
            .write(move |pool| async move {
                let n = in_tx!(&pool, |tx| {
                    sqlx::query("DELETE FROM webhook_deliveries WHERE endpoint_id = $1")
                        .bind(&id)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query("DELETE FROM webhook_secrets WHERE endpoint_id = $1")
                        .bind(&id)
                        .execute(&mut *tx)
                        .await?;
                    sqlx::query("DELETE FROM webhook_endpoints WHERE id = $1")
                        .bind(&id)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected()
                });
                Ok::<_, StoreError>(n == 1)
            })
            .await
    }

    /// A new secret; the current ones sign until `old_until` (unix ms). False on a stale version.
    pub async fn rotate_webhook_secret(
        &self,
        id: &str,
        expected: i64,
        secret_id: String,
        sealed: String,
        now: i64,
        old_until: i64,
    ) -> Result<bool, StoreError> {
        let id = id.to_owned();
        self.db()
            .write(move |pool| async move {
                let ok = in_tx!(&pool, |tx| {
                    let n = sqlx::query("UPDATE webhook_endpoints SET version = version + 1, updated_at = $1 WHERE id = $2 AND version = $3")
                        .bind(now)
                        .bind(&id)
                        .bind(expected)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    if n == 1 {
                        sqlx::query("UPDATE webhook_secrets SET expires_at = $1 WHERE endpoint_id = $2 AND (expires_at IS NULL OR expires_at > $1)")
                            .bind(old_until)
                            .bind(&id)
                            .execute(&mut *tx)
                            .await?;
                        sqlx::query("INSERT INTO webhook_secrets (endpoint_id, id, sealed, created_at, expires_at) VALUES ($1, $2, $3, $4, NULL)")
                            .bind(&id)
                            .bind(&secret_id)
                            .bind(&sealed)
                            .bind(now)
                            .execute(&mut *tx)
                            .await?;
                    }
                    n == 1
                });
                Ok::<_, StoreError>(ok)
            })
            .await
    }

    /// The sealed secrets that sign now, newest first.
    pub async fn webhook_secrets(&self, id: &str, now: i64) -> Result<Vec<String>, StoreError> {
        let rows: Vec<(String,)> = on_pool!(self.pool(), p => sqlx::query_as(
            "SELECT sealed FROM webhook_secrets WHERE endpoint_id = $1 AND (expires_at IS NULL OR expires_at > $2) ORDER BY created_at DESC, id DESC")
            .bind(id)
            .bind(now)
            .fetch_all(p)
            .await)?;
        Ok(rows.into_iter().map(|(s,)| s).collect())
    }

    /// Claims up to `limit` active endpoints that are due and have feed rows after their cursor,
    /// for `owner` until `until` (unix ms), none of an agency in `except`.
    pub async fn claim_webhooks(
        &self,
        owner: &str,
        now: i64,
        until: i64,
        limit: u32,
        except: &[String],
    ) -> Result<Vec<EndpointRow>, StoreError> {
        let except_sql: String = (0..except.len())
            .map(|i| format!(" AND w.agency_id <> ${}", i + 5))
            .collect();
        let except = except.to_vec();
        let sql = format!(
            "UPDATE webhook_endpoints SET lease_owner = $1, leased_until = $2 WHERE id IN ( \
               SELECT w.id FROM webhook_endpoints w WHERE w.state = 'active' AND w.next_attempt_at <= $3 \
               AND (w.leased_until IS NULL OR w.leased_until < $3){except_sql} \
               AND (EXISTS (SELECT 1 FROM feed_entries f WHERE f.agency_id = w.agency_id AND f.seq > w.cursor) \
                    OR EXISTS (SELECT 1 FROM feed_entries f WHERE f.agency_id = '00000000-0000-0000-0000-000000000000' AND f.seq > w.cursor)) \
               ORDER BY w.next_attempt_at LIMIT $4) \
             RETURNING {ENDPOINT_COLUMNS}"
        );
        let owner = owner.to_owned();
        self.db()
            .write(move |pool| async move {
                Ok::<_, StoreError>(on_pool!(&pool, p => {
                    let mut q = sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
                        .bind(&owner)
                        .bind(until)
                        .bind(now)
                        .bind(i64::from(limit));
                    for a in &except {
                        q = q.bind(a);
                    }
                    q.fetch_all(p).await
                })?)
            })
            .await
    }

    /// A delivered (or skipped, with no attempt) event: the cursor moves past it and the
    /// failures are forgotten. False when the lease was lost.
    pub async fn webhook_delivered(
        &self,
        id: &str,
        owner: &str,
        seq: i64,
        attempt: Option<DeliveryRow>,
    ) -> Result<bool, StoreError> {
        let (id, owner) = (id.to_owned(), owner.to_owned());
        self.db()
            .write(move |pool| async move {
                let ok = in_tx!(&pool, |tx| {
                    let n = sqlx::query("UPDATE webhook_endpoints SET cursor = $1, failures = 0, failing_since = NULL, next_attempt_at = 0 \
                                         WHERE id = $2 AND lease_owner = $3 AND cursor < $1")
                        .bind(seq)
                        .bind(&id)
                        .bind(&owner)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    if n == 1 && let Some(d) = &attempt {
                        insert_delivery!(&mut *tx, d)?;
                    }
                    n == 1
                });
                Ok::<_, StoreError>(ok)
            })
            .await
    }

    /// A failed attempt: logged, the next one scheduled at `next_at`, the lease released; with
    /// `disable`, the endpoint is disabled and `notice` goes into the agency's feed.
    pub async fn webhook_failed(
        &self,
        id: &str,
        owner: &str,
        attempt: DeliveryRow,
        next_at: i64,
        disable: Option<(String, FeedEntry)>,
    ) -> Result<(), StoreError> {
        let (id, owner) = (id.to_owned(), owner.to_owned());
        let fed = disable.is_some();
        self.db()
            .write(move |pool| async move {
                let now = attempt.at;
                macro_rules! run {
                    ($p:expr, $module:ident) => {{
                        let mut tx = $p.begin().await?;
                        insert_delivery!(&mut *tx, &attempt)?;
                        sqlx::query("UPDATE webhook_endpoints SET failures = failures + 1, failing_since = COALESCE(failing_since, $1), next_attempt_at = $2, \
                                     lease_owner = NULL, leased_until = NULL WHERE id = $3 AND lease_owner = $4")
                            .bind(now).bind(next_at).bind(&id).bind(&owner)
                            .execute(&mut *tx).await?;
                        if let Some((reason, entry)) = &disable {
                            sqlx::query("UPDATE webhook_endpoints SET state = 'disabled', disabled_reason = $1, version = version + 1, updated_at = $2 WHERE id = $3")
                                .bind(reason).bind(now).bind(&id)
                                .execute(&mut *tx).await?;
                            crate::store::feed::$module::insert(&mut tx, std::slice::from_ref(entry)).await?;
                            sqlx::query(OUTBOX_INSERT)
                                .bind(entry.event_id.to_string()).bind(&entry.event_type).bind(&entry.aggregate_id)
                                .bind(entry.aggregate_version as i64).bind(wire_of(entry)).bind(time::OffsetDateTime::now_utc())
                                .execute(&mut *tx).await?;
                        }
                        tx.commit().await?;
                    }};
                }
                match &pool {
                    Pool::Sqlite(p) => run!(p, sqlite),
                    Pool::Postgres(p) => run!(p, postgres),
                }
                Ok::<_, StoreError>(())
            })
            .await?;
        if fed {
            self.feed_written();
            self.outbox().written();
        }
        Ok(())
    }

    /// Gives an endpoint back (its batch is done).
    pub async fn release_webhook(&self, id: &str, owner: &str) -> Result<(), StoreError> {
        let (id, owner) = (id.to_owned(), owner.to_owned());
        self.db()
            .write(move |pool| async move {
                on_pool!(&pool, p => sqlx::query("UPDATE webhook_endpoints SET lease_owner = NULL, leased_until = NULL WHERE id = $1 AND lease_owner = $2")
                    .bind(&id).bind(&owner).execute(p).await.map(|_| ()))?;
                Ok::<_, StoreError>(())
            })
            .await
    }

    /// Forgets delivery log entries older than `before` (unix ms); returns how many.
    pub async fn purge_webhook_deliveries(&self, before: i64) -> Result<u64, StoreError> {
        self.db()
            .write(move |pool| async move {
                Ok::<_, StoreError>(
                    on_pool!(&pool, p => sqlx::query("DELETE FROM webhook_deliveries WHERE at < $1")
                    .bind(before).execute(p).await.map(|r| r.rows_affected()))?,
                )
            })
            .await
    }

    /// The newest attempts of an endpoint.
    pub async fn webhook_deliveries(
        &self,
        id: &str,
        limit: u32,
    ) -> Result<Vec<DeliveryRow>, StoreError> {
        Ok(on_pool!(self.pool(), p => sqlx::query_as(
            "SELECT id, endpoint_id, event_id, event_type, seq, attempt, status, error, duration_ms, at \
             FROM webhook_deliveries WHERE endpoint_id = $1 ORDER BY id DESC LIMIT $2")
            .bind(id)
            .bind(i64::from(limit.clamp(1, 1000)))
            .fetch_all(p)
            .await)?)
    }
}
