//! `Idempotency-Key` for every POST: the first response (or refusal) is stored and replayed.

use banli_db::Db;
use banli_db::idempotency::{Idempotency, IdempotencyKeys};

use crate::Principal;
use crate::error::{AppError, ErrorCode};

/// Runs `f` once per (caller, key, request): a replay returns the stored response; the same key
/// with another request, or while the first still runs, is refused. Without a key, `f` runs.
/// Stored references are kept under `agency:<id>`, for `reference_retention_days`.
pub const REFERENCE_SCOPE_PREFIX: &str = "agency:";
const REFERENCE_KEY_PREFIX: &str = "reference:";

/// What makes a command idempotent, on either transport: the client's key (`Idempotency-Key`
/// header or metadata, or a request's own `idempotency_key` field) and the hash of the request
/// as received. An agency's `Reference-Id` travels on the principal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Once {
    pub key: Option<String>,
    pub hash: String,
}

impl Once {
    /// The request's own `idempotency_key` field, when it has one, before the header's.
    pub fn or_field(self, field: Option<String>) -> Once {
        Once {
            key: field.filter(|k| !k.is_empty()).or(self.key),
            hash: self.hash,
        }
    }
}

pub async fn idempotent<F, Fut>(
    db: &Db,
    keys: &IdempotencyKeys,
    p: &Principal,
    key: Option<&str>,
    request_hash: &str,
    f: F,
) -> Result<(u16, String), AppError>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<(u16, String), AppError>>,
{
    // An agency's own reference id: agency-wide (any of its keys) and kept for good; it takes
    // the place of an Idempotency-Key.
    let scoped;
    let (principal, key, label) = match &p.reference {
        Some(r) => {
            let agency = p.agency.filter(|_| p.role.is_agency_role()).ok_or_else(|| {
                AppError::malformed(
                    "Reference-Id is for an agency's own system: send it with an agency key, or use Idempotency-Key",
                )
            })?;
            scoped = format!("{REFERENCE_KEY_PREFIX}{r}");
            (
                format!("{REFERENCE_SCOPE_PREFIX}{agency}"),
                scoped.as_str(),
                "Reference-Id",
            )
        }
        None => {
            let Some(key) = key else { return f().await };
            if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(AppError::malformed(
                    "Idempotency-Key must be 1 to 255 visible ASCII characters",
                ));
            }
            (p.key_id.to_string(), key, "Idempotency-Key")
        }
    };
    let shown = key.strip_prefix(REFERENCE_KEY_PREFIX).unwrap_or(key);
    let internal = |e: &dyn std::fmt::Display| AppError::internal(e);
    match keys
        .reserve(db, &principal, key, request_hash)
        .await
        .map_err(|e| internal(&e))?
    {
        Idempotency::Replay { status, response } if status < 400 => Ok((status, response)),
        Idempotency::Replay { response, .. } => {
            let v: serde_json::Value =
                serde_json::from_str(&response).map_err(|e| AppError::internal(&e))?;
            let code = v["code"]
                .as_str()
                .and_then(ErrorCode::parse)
                .unwrap_or(ErrorCode::Internal);
            Err(AppError::new(
                code,
                v["detail"].as_str().unwrap_or_default(),
            ))
        }
        Idempotency::Mismatch => Err(AppError::new(
            ErrorCode::IdempotencyKeyReused,
            format!("{label} `{shown}` was used for a different request; use a new one"),
        )),
        Idempotency::InProgress => Err(AppError::new(
            ErrorCode::IdempotencyKeyInProgress,
            format!("a request with {label} `{shown}` is still running; retry shortly"),
        )),
        Idempotency::Reserved => match f().await {
            Ok((status, body)) => {
                keys.complete(db, &principal, key, status, &body)
                    .await
                    .map_err(|e| internal(&e))?;
                Ok((status, body))
            }
            Err(e) if e.code.http_status() < 500 => {
                // A refusal is an answer too: the same request gets the same refusal.
                let body =
                    serde_json::json!({ "code": e.code.as_str(), "detail": e.detail }).to_string();
                keys.complete(db, &principal, key, e.code.http_status(), &body)
                    .await
                    .map_err(|e| internal(&e))?;
                Err(e)
            }
            Err(e) => {
                let _ = keys.release(db, &principal, key).await;
                Err(e)
            }
        },
    }
}
