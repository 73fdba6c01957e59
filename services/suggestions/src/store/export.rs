//! Publishing the directory: every agency and API key whose current record has not yet gone
//! out gets an outbox row (`directory.*`, the whole record) in the same transaction that marks
//! it exported. Directory writes call it inside their own transaction; a start calls it once
//! for anything written before (an upgrade, or a write by `banli keys` whose export failed).

use banli_db::Pool;
use banli_domain::Actor;
use banli_domain::directory::published::{
    AGENCY_REGISTERED, Agency, KEY_ISSUED, KEY_REVOKED, Key, SCHEMA_VERSION, StoredKey,
};
use serde::Serialize;
use time::OffsetDateTime;
use uuid::Uuid;

use super::{Store, StoreError};

#[derive(Serialize)]
struct Envelope<'a, T> {
    event_id: Uuid,
    schema_version: u32,
    event_type: &'a str,
    aggregate_type: &'static str,
    aggregate_id: String,
    aggregate_version: u64,
    #[serde(with = "time::serde::rfc3339")]
    occurred_at: OffsetDateTime,
    actor: &'a Actor,
    payload: &'a T,
}

/// An outbox row: event id, type, aggregate id, version, envelope.
type Row = (String, &'static str, String, i64, String);

fn row<T: Serialize>(
    event_type: &'static str,
    id: String,
    version: u64,
    actor: &Actor,
    payload: &T,
) -> Result<Row, StoreError> {
    let event_id = Uuid::now_v7();
    let envelope = Envelope {
        event_id,
        schema_version: SCHEMA_VERSION,
        event_type,
        aggregate_type: "directory",
        aggregate_id: id.clone(),
        aggregate_version: version,
        occurred_at: OffsetDateTime::now_utc(),
        actor,
        payload,
    };
    let json = serde_json::to_string(&envelope)
        .map_err(|e| StoreError::Corrupt(format!("cannot encode JSON: {e}")))?;
    Ok((event_id.to_string(), event_type, id, version as i64, json))
}

type AgencyRow = (String, String, bool);
type KeyRow = (
    String,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    bool,
);

/// What the unexported rows publish.
fn rows(agencies: Vec<AgencyRow>, keys: Vec<KeyRow>) -> Result<Vec<Row>, StoreError> {
    let corrupt = |what: String| StoreError::Corrupt(what);
    // The directory's writer: the assigning office (the only role that writes it).
    let office = agencies.iter().find(|a| a.2).and_then(|a| a.0.parse().ok());
    let actor = Actor {
        position: None,
        role: banli_domain::Role::AssigningOffice,
        agency: office,
        deputy: None,
    };
    let mut out = Vec::with_capacity(agencies.len() + keys.len());
    for (id, name, assigning_office) in agencies {
        let a = Agency {
            id: id
                .parse()
                .map_err(|_| corrupt(format!("agency {id}: id")))?,
            name,
            assigning_office,
        };
        out.push(row(AGENCY_REGISTERED, id, 1, &actor, &a)?);
    }
    for (id, secret_hash, role, agency_id, deputy_id, client_cert, revoked) in keys {
        let k = Key::try_from(StoredKey {
            id: id.clone(),
            secret_hash,
            role,
            agency_id,
            deputy_id,
            client_cert,
            revoked,
        })
        .map_err(corrupt)?;
        let (ty, version) = if revoked {
            (KEY_REVOKED, 2)
        } else {
            (KEY_ISSUED, 1)
        };
        out.push(row(ty, id, version, &actor, &k)?);
    }
    Ok(out)
}

macro_rules! export_on {
    ($name:ident, $db:ty) => {
        /// Publishes every unexported directory row inside `tx`; the number of rows published.
        pub(crate) async fn $name(tx: &mut sqlx::Transaction<'_, $db>) -> Result<usize, StoreError> {
            let agencies: Vec<AgencyRow> = sqlx::query_as(
                "SELECT id, name, assigning_office FROM agencies WHERE NOT exported ORDER BY created_at, id",
            )
            .fetch_all(&mut **tx)
            .await?;
            let keys: Vec<KeyRow> = sqlx::query_as(
                "SELECT id, secret_hash, role, agency_id, deputy_id, client_cert_sha256, revoked_at IS NOT NULL FROM api_keys WHERE NOT exported ORDER BY id",
            )
            .fetch_all(&mut **tx)
            .await?;
            if agencies.is_empty() && keys.is_empty() {
                return Ok(0);
            }
            let agency_ids: Vec<String> = agencies.iter().map(|a| a.0.clone()).collect();
            let key_ids: Vec<String> = keys.iter().map(|k| k.0.clone()).collect();
            let rows = rows(agencies, keys)?;
            let now = OffsetDateTime::now_utc();
            for (event_id, ty, id, version, envelope) in &rows {
                sqlx::query("INSERT INTO outbox (event_id, event_type, aggregate_type, aggregate_id, aggregate_version, payload, occurred_at) VALUES ($1, $2, $3, $4, $5, $6, $7)")
                    .bind(event_id).bind(*ty).bind("directory").bind(id).bind(*version).bind(envelope).bind(now)
                    .execute(&mut **tx)
                    .await?;
            }
            for id in &agency_ids {
                sqlx::query("UPDATE agencies SET exported = TRUE WHERE id = $1").bind(id).execute(&mut **tx).await?;
            }
            for id in &key_ids {
                sqlx::query("UPDATE api_keys SET exported = TRUE WHERE id = $1").bind(id).execute(&mut **tx).await?;
            }
            Ok(rows.len())
        }
    };
}

export_on!(export_sqlite, sqlx::Sqlite);
export_on!(export_postgres, sqlx::Postgres);

/// Runs `$body` (statements on `tx`) and the export in one transaction on either backend.
macro_rules! with_export {
    ($pool:expr, |$tx:ident| $body:block) => {{
        match &$pool {
            banli_db::Pool::Sqlite(p) => {
                let mut $tx = p.begin().await?;
                let out = $body;
                $crate::store::export::export_sqlite(&mut $tx).await?;
                $tx.commit().await?;
                out
            }
            banli_db::Pool::Postgres(p) => {
                let mut $tx = p.begin().await?;
                let out = $body;
                $crate::store::export::export_postgres(&mut $tx).await?;
                $tx.commit().await?;
                out
            }
        }
    }};
}
pub(crate) use with_export;

impl Store {
    /// Publishes whatever part of the directory has not gone out yet (rows written before the
    /// directory was published, or by a process whose export failed); the number of records.
    pub async fn export_directory(&self) -> Result<usize, StoreError> {
        let n = self
            .write(|pool| async move {
                let n: usize = match &pool {
                    Pool::Sqlite(p) => {
                        let mut tx = p.begin().await?;
                        let n = export_sqlite(&mut tx).await?;
                        tx.commit().await?;
                        n
                    }
                    Pool::Postgres(p) => {
                        let mut tx = p.begin().await?;
                        let n = export_postgres(&mut tx).await?;
                        tx.commit().await?;
                        n
                    }
                };
                Ok(n)
            })
            .await?;
        if n > 0 {
            self.outbox().written();
        }
        Ok(n)
    }
}
