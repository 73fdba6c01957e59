//! API keys: created with a random secret shown once, stored as a SHA-256 hash.

use banli_api::token;
use banli_db::on_pool;
use banli_domain::Role;
use banli_domain::ids::{AgencyId, DeputyId};
use banli_domain::suggestion::SignerPosition;
use serde::Serialize;
use sqlx::FromRow;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{Store, StoreError};

/// What a key is allowed to act as.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ApiKey {
    pub id: Uuid,
    pub role: Role,
    pub agency_id: Option<AgencyId>,
    pub deputy_id: Option<DeputyId>,
    pub label: String,
    #[serde(with = "time::serde::rfc3339")]
    pub created_at: OffsetDateTime,
    #[serde(with = "time::serde::rfc3339::option")]
    pub revoked_at: Option<OffsetDateTime>,
    /// The SHA-256 fingerprint of the client certificate the key is bound to.
    pub client_cert: Option<String>,
    /// The position the key holds in its agency (内部审批: the approval steps it decides).
    pub position: Option<SignerPosition>,
}

#[derive(FromRow)]
struct KeyRow {
    id: String,
    secret_hash: String,
    role: String,
    agency_id: Option<String>,
    deputy_id: Option<String>,
    label: String,
    created_at: OffsetDateTime,
    revoked_at: Option<OffsetDateTime>,
    client_cert_sha256: Option<String>,
    position: Option<String>,
}

impl KeyRow {
    fn into_key(self) -> Result<ApiKey, StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("api key {}: {what}", self.id));
        let (role, agency_id, deputy_id) = super::parse_binding(
            &format!("api key {}", self.id),
            &self.role,
            self.agency_id.as_deref(),
            self.deputy_id.as_deref(),
        )?;
        Ok(ApiKey {
            id: self.id.parse().map_err(|_| corrupt("id"))?,
            role,
            agency_id,
            deputy_id,
            label: self.label.clone(),
            created_at: self.created_at,
            revoked_at: self.revoked_at,
            client_cert: self.client_cert_sha256.clone(),
            position: self
                .position
                .as_deref()
                .map(str::parse)
                .transpose()
                .map_err(|_| corrupt("position"))?,
        })
    }
}

impl Store {
    /// Creates a key and returns it with the token, which is never stored and cannot be shown again.
    pub async fn create_key(
        &self,
        role: Role,
        agency: Option<AgencyId>,
        deputy: Option<DeputyId>,
        label: &str,
    ) -> Result<(ApiKey, String), StoreError> {
        self.create_bound_key(role, agency, deputy, label, None, None)
            .await
    }

    /// [`Store::create_key`], the key bound to the client certificate with SHA-256 fingerprint
    /// `client_cert` (hex) when given.
    pub async fn create_bound_key(
        &self,
        role: Role,
        agency: Option<AgencyId>,
        deputy: Option<DeputyId>,
        label: &str,
        client_cert: Option<String>,
        position: Option<SignerPosition>,
    ) -> Result<(ApiKey, String), StoreError> {
        let id = Uuid::now_v7();
        let (token, secret_hash) = token::issue(id);
        let now = OffsetDateTime::now_utc();
        let owned_label = label.to_owned();
        let cert = client_cert.clone();
        // Published to the other services' replicas (the hash only) in the same transaction.
        let result = self
            .write(move |pool| async move {
                let inserted: Result<(), sqlx::Error> = super::export::with_export!(pool, |tx| {
                    let r = sqlx::query(
                        "INSERT INTO api_keys (id, secret_hash, role, agency_id, deputy_id, label, created_at, client_cert_sha256, position) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                    )
                    .bind(id.to_string())
                    .bind(&secret_hash)
                    .bind(role.as_str())
                    .bind(agency.map(|a| a.to_string()))
                    .bind(deputy.map(|d| d.to_string()))
                    .bind(&owned_label)
                    .bind(now)
                    .bind(&cert)
                    .bind(position.map(|p| p.as_str()))
                    .execute(&mut *tx)
                    .await;
                    if let Err(e) = r {
                        return Ok(Err(e));
                    }
                    Ok(())
                });
                Ok::<_, StoreError>(inserted)
            })
            .await?;
        match result {
            Ok(()) => self.outbox().written(),
            Err(sqlx::Error::Database(db)) if db.is_foreign_key_violation() => {
                return Err(StoreError::NotFound(if agency.is_some() {
                    "agency".into()
                } else {
                    "deputy".into()
                }));
            }
            Err(e) => return Err(e.into()),
        }
        let key = ApiKey {
            id,
            role,
            agency_id: agency,
            deputy_id: deputy,
            label: label.to_owned(),
            created_at: now,
            revoked_at: None,
            client_cert,
            position,
        };
        Ok((key, token))
    }

    /// The live key a token belongs to, or `None` (unknown, wrong secret or revoked).
    pub async fn authenticate(&self, token: &str) -> Result<Option<ApiKey>, StoreError> {
        let Some((id, secret)) = token::parse(token) else {
            return Ok(None);
        };
        let row: Option<KeyRow> = on_pool!(self.pool(), p => sqlx::query_as(
            "SELECT id, secret_hash, role, agency_id, deputy_id, label, created_at, revoked_at, client_cert_sha256, position FROM api_keys WHERE id = $1",
        )
        .bind(id.to_string())
        .fetch_optional(p)
        .await)?;
        match row {
            Some(r) if r.revoked_at.is_none() && token::verifies(secret, &r.secret_hash) => {
                Ok(Some(r.into_key()?))
            }
            _ => Ok(None),
        }
    }

    pub async fn list_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        let rows: Vec<KeyRow> = on_pool!(self.pool(), p => sqlx::query_as(
            "SELECT id, secret_hash, role, agency_id, deputy_id, label, created_at, revoked_at, client_cert_sha256, position FROM api_keys ORDER BY id",
        )
        .fetch_all(p)
        .await)?;
        rows.into_iter().map(KeyRow::into_key).collect()
    }

    /// Revokes a key; revoking twice is harmless. `NotFound` for an unknown id.
    pub async fn revoke_key(&self, id: Uuid) -> Result<ApiKey, StoreError> {
        let now = OffsetDateTime::now_utc();
        // Published to the other services' replicas in the same transaction: their open
        // streams on this key end when it arrives.
        self.write(move |pool| async move {
            super::export::with_export!(pool, |tx| {
                sqlx::query("UPDATE api_keys SET revoked_at = $1, exported = FALSE WHERE id = $2 AND revoked_at IS NULL")
                    .bind(now)
                    .bind(id.to_string())
                    .execute(&mut *tx)
                    .await?;
            });
            Ok(())
        })
        .await?;
        self.outbox().written();
        self.list_keys()
            .await?
            .into_iter()
            .find(|k| k.id == id)
            .ok_or_else(|| StoreError::NotFound(format!("key {id}")))
    }

    /// Whether any key exists (the first start creates one).
    pub async fn has_keys(&self) -> Result<bool, StoreError> {
        let n: (i64,) = on_pool!(self.pool(), p => sqlx::query_as("SELECT COUNT(*) FROM api_keys").fetch_one(p).await)?;
        Ok(n.0 > 0)
    }
}
