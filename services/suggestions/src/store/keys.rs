//! API keys: created with a random secret shown once, stored as a SHA-256 hash.

use banli_db::on_pool;
use banli_domain::Role;
use banli_domain::ids::{AgencyId, DeputyId};
use serde::Serialize;
use sha2::{Digest, Sha256};
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
}

impl KeyRow {
    fn into_key(self) -> Result<ApiKey, StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("api key {}: {what}", self.id));
        Ok(ApiKey {
            id: self.id.parse().map_err(|_| corrupt("id"))?,
            role: self.role.parse().map_err(|_| corrupt("role"))?,
            agency_id: self
                .agency_id
                .as_deref()
                .map(str::parse)
                .transpose()
                .map_err(|_| corrupt("agency"))?,
            deputy_id: self
                .deputy_id
                .as_deref()
                .map(str::parse)
                .transpose()
                .map_err(|_| corrupt("deputy"))?,
            label: self.label.clone(),
            created_at: self.created_at,
            revoked_at: self.revoked_at,
            client_cert: self.client_cert_sha256.clone(),
        })
    }
}

const PREFIX: &str = "banli_";

fn hash(secret: &str) -> String {
    let digest = Sha256::digest(secret.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Constant-time comparison, so that timing does not reveal how much of a hash matched.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

/// Splits `banli_<id>_<secret>`.
fn parse_token(token: &str) -> Option<(Uuid, &str)> {
    let rest = token.strip_prefix(PREFIX)?;
    let (id, secret) = rest.split_once('_')?;
    if secret.len() < 32 {
        return None;
    }
    Some((Uuid::try_parse(id).ok()?, secret))
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
        self.create_bound_key(role, agency, deputy, label, None)
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
    ) -> Result<(ApiKey, String), StoreError> {
        let id = Uuid::now_v7();
        // Two v4 UUIDs: 244 bits from the operating system's CSPRNG.
        let secret = format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple());
        let token = format!("{PREFIX}{}_{secret}", id.simple());
        let now = OffsetDateTime::now_utc();
        let (secret_hash, owned_label) = (hash(&secret), label.to_owned());
        let cert = client_cert.clone();
        let result = self
            .write(move |pool| async move {
                Ok(on_pool!(&pool, p => sqlx::query(
                    "INSERT INTO api_keys (id, secret_hash, role, agency_id, deputy_id, label, created_at, client_cert_sha256) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(id.to_string())
                .bind(&secret_hash)
                .bind(role.as_str())
                .bind(agency.map(|a| a.to_string()))
                .bind(deputy.map(|d| d.to_string()))
                .bind(&owned_label)
                .bind(now)
                .bind(&cert)
                .execute(p)
                .await
                .map(|_| ())))
            })
            .await?;
        match result {
            Ok(()) => {}
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
        };
        Ok((key, token))
    }

    /// The live key a token belongs to, or `None` (unknown, wrong secret or revoked).
    pub async fn authenticate(&self, token: &str) -> Result<Option<ApiKey>, StoreError> {
        let Some((id, secret)) = parse_token(token) else {
            return Ok(None);
        };
        let row: Option<KeyRow> = on_pool!(self.pool(), p => sqlx::query_as(
            "SELECT id, secret_hash, role, agency_id, deputy_id, label, created_at, revoked_at, client_cert_sha256 FROM api_keys WHERE id = $1",
        )
        .bind(id.to_string())
        .fetch_optional(p)
        .await)?;
        match row {
            Some(r) if r.revoked_at.is_none() && same(&r.secret_hash, &hash(secret)) => {
                Ok(Some(r.into_key()?))
            }
            _ => Ok(None),
        }
    }

    pub async fn list_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        let rows: Vec<KeyRow> = on_pool!(self.pool(), p => sqlx::query_as(
            "SELECT id, secret_hash, role, agency_id, deputy_id, label, created_at, revoked_at, client_cert_sha256 FROM api_keys ORDER BY id",
        )
        .fetch_all(p)
        .await)?;
        rows.into_iter().map(KeyRow::into_key).collect()
    }

    /// Revokes a key; revoking twice is harmless. `NotFound` for an unknown id.
    pub async fn revoke_key(&self, id: Uuid) -> Result<ApiKey, StoreError> {
        let now = OffsetDateTime::now_utc();
        self.write(move |pool| async move {
            on_pool!(&pool, p => sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
                .bind(now)
                .bind(id.to_string())
                .execute(p)
                .await
                .map(|_| ()))?;
            Ok(())
        })
        .await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_parse_only_in_their_own_shape() {
        let id = Uuid::now_v7();
        let secret = "a".repeat(64);
        let token = format!("banli_{}_{secret}", id.simple());
        assert_eq!(parse_token(&token), Some((id, secret.as_str())));
        assert_eq!(parse_token("Bearer x"), None);
        assert_eq!(parse_token(&format!("banli_{}_short", id.simple())), None);
        assert_eq!(
            parse_token("banli_notauuid_aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"),
            None
        );
        assert!(same("abc", "abc") && !same("abc", "abd") && !same("abc", "ab"));
    }
}
