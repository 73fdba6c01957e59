//! Extractors that turn every bad request into a problem document: the caller's key, JSON
//! bodies (with their hash and Idempotency-Key), paths, queries and If-Match.

use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, IF_MATCH};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::Principal;
use crate::error::{AppError, ErrorCode};
use crate::http::{ApiState, Problem};

/// The authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

/// A caller this process has authenticated itself — a person signed in to the web console,
/// whose pages call the API in-process. A request extension: only code inside the process can
/// set it (nothing a client sends becomes an extension), and a request carrying it needs no
/// `Authorization` header.
#[derive(Debug, Clone)]
pub struct Delegated(pub Principal);

impl<S: ApiState> FromRequestParts<S> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        if let Some(Delegated(principal)) = parts.extensions.get::<Delegated>() {
            tracing::Span::current().record("key_id", tracing::field::display(principal.key_id));
            return Ok(Caller(principal.clone()));
        }
        let header = parts.headers.get(AUTHORIZATION).ok_or_else(|| {
            AppError::new(
                ErrorCode::Unauthenticated,
                "send `Authorization: Bearer <api key>`; `banli keys create` makes a key",
            )
        })?;
        let token = header
            .to_str()
            .ok()
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .map(str::trim)
            .ok_or_else(|| {
                AppError::new(
                    ErrorCode::Unauthenticated,
                    "the Authorization header must be `Bearer <api key>`",
                )
            })?;
        let reference = match parts.headers.get(crate::principal::REFERENCE_HEADER) {
            None => None,
            Some(v) => Some(crate::principal::check_reference(v.to_str().unwrap_or(""))?),
        };
        let principal = state
            .authenticate(token)
            .await?
            .presented(parts.extensions.get::<crate::tls::ClientCert>())?
            .with_reference(reference);
        tracing::Span::current().record("key_id", tracing::field::display(principal.key_id));
        Ok(Caller(principal))
    }
}

/// A JSON body, with the SHA-256 of its bytes and the request's Idempotency-Key.
#[derive(Debug)]
pub struct Posted<T> {
    pub value: T,
    pub hash: String,
    pub idempotency_key: Option<String>,
}

impl<S: ApiState, T: DeserializeOwned + Send> FromRequest<S> for Posted<T> {
    type Rejection = Problem;

    async fn from_request(req: Request, state: &S) -> Result<Self, Problem> {
        let json = req
            .headers()
            .get(CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| {
                ct.split(';').next().is_some_and(|m| {
                    m.trim().eq_ignore_ascii_case("application/json") || m.trim().ends_with("+json")
                })
            });
        if !json {
            return Err(AppError::new(
                ErrorCode::UnsupportedMediaType,
                "send the body as JSON with `Content-Type: application/json`",
            )
            .into());
        }
        let idempotency_key = req
            .headers()
            .get("idempotency-key")
            .map(|v| v.to_str().map(str::to_owned))
            .transpose()
            .map_err(|_| AppError::malformed("Idempotency-Key must be visible ASCII"))?;
        let limit = state.body_limit();
        let bytes = axum::body::to_bytes(req.into_body(), limit)
            .await
            .map_err(|_| {
                AppError::new(
                    ErrorCode::PayloadTooLarge,
                    format!("the body is larger than {limit} bytes"),
                )
            })?;
        let value = serde_json::from_slice::<T>(&bytes)
            .map_err(|e| AppError::malformed(format!("invalid JSON body: {e}")))?;
        if has_nul_escape(&bytes) {
            return Err(AppError::nul_in_text().into());
        }
        let hash = Sha256::digest(&bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok(Posted {
            value,
            hash,
            idempotency_key,
        })
    }
}

/// Path parameters; a malformed id is a 400 that says so.
#[derive(Debug)]
pub struct ApiPath<T>(pub T);

impl<S: ApiState, T: DeserializeOwned + Send> FromRequestParts<S> for ApiPath<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(v)| ApiPath(v))
            .map_err(|e| {
                AppError::malformed(format!("bad path parameter: {}", e.body_text())).into()
            })
    }
}

/// Query parameters; an unknown or malformed one is a 400 that names it.
#[derive(Debug)]
pub struct ApiQuery<T>(pub T);

impl<S: ApiState, T: DeserializeOwned + Send> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Problem> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(v)| ApiQuery(v))
            .map_err(|e| AppError::malformed(format!("bad query: {}", e.body_text())).into())
    }
}

/// The version named by `If-Match` (`"v3"`, `W/"v3"` or `3`); `None` when absent or `*`.
#[derive(Debug, Clone, Copy)]
pub struct IfMatch(pub Option<u64>);

impl<S: ApiState> FromRequestParts<S> for IfMatch {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Problem> {
        let Some(v) = parts.headers.get(IF_MATCH) else {
            return Ok(IfMatch(None));
        };
        let text = v.to_str().unwrap_or_default().trim();
        if text == "*" {
            return Ok(IfMatch(None));
        }
        let bare = text
            .trim_start_matches("W/")
            .trim_matches('"')
            .trim_start_matches('v');
        bare.parse::<u64>().map(|n| IfMatch(Some(n))).map_err(|_| {
            AppError::malformed(format!(
                "If-Match `{text}` is not an ETag this API issued (like \"v3\")"
            ))
            .into()
        })
    }
}

/// Whether a JSON text holds a NUL escape (`\u0000`) — a `\u0000` preceded by an odd number of
/// backslashes; an escaped backslash followed by the letters `u0000` is no NUL. (JSON cannot
/// hold a raw NUL: the parser refuses control characters in strings.)
pub fn has_nul_escape(json: &[u8]) -> bool {
    json.windows(6).enumerate().any(|(i, w)| {
        w == b"\\u0000" && json[..i].iter().rev().take_while(|&&b| b == b'\\').count() % 2 == 0
    })
}

#[cfg(test)]
mod nul_tests {
    use super::has_nul_escape;

    #[test]
    fn finds_nul_escapes_and_only_them() {
        assert!(has_nul_escape(br#"{"title":"a\u0000b"}"#));
        assert!(has_nul_escape(br#"{"t":"\u0000"}"#));
        assert!(has_nul_escape(br#"{"t":"x\\\u0000"}"#));
        assert!(!has_nul_escape(br#"{"t":"x\\u0000"}"#));
        assert!(!has_nul_escape(br#"{"t":"u0000 \u0020"}"#));
        assert!(!has_nul_escape(b""));
    }
}
