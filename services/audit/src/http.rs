//! REST: the audit log under `/v1/audit/`. The checkpoint and the public key are public (anyone
//! may check the log); entries and proofs are for the assigning office and auditors. Sizes and
//! indices are bounded by the latest signed checkpoint; a bad one is a 400 naming the parameter.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use banli_api::http::{
    ApiPath, ApiQuery, ApiState, Caller, Posted, Problem, ProblemDocument, json_response,
};
use banli_api::{AppError, Authenticator, ErrorCode, Principal};
use banli_audit::Hash;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use utoipa::{IntoParams, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub use crate::app::{MAX_ENTRIES, MAX_REASON, erasure_target};
use crate::app::{
    actor_of, b64, bad, consistency_of, entries_of, erase_error, eraser, erasure_source,
    hex_prefix, inclusion_by_hash_of, opening_of, proof_error, reader,
};
use crate::lease::LogHandle;
use crate::log::Erasure;

#[derive(OpenApi)]
#[openapi(tags((name = "audit", description = "The verifiable audit log (审计日志): signed checkpoints, entries, inclusion and consistency proofs (RFC 6962)")))]
#[derive(Debug)]
pub struct ApiDoc;

#[derive(Clone)]
pub struct AppState {
    pub log: LogHandle,
    pub auth: Authenticator,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState")
            .field("log", &self.log)
            .finish_non_exhaustive()
    }
}

impl ApiState for AppState {
    async fn authenticate(&self, token: &str) -> Result<Principal, AppError> {
        (self.auth)(token.to_owned()).await
    }

    fn body_limit(&self) -> usize {
        // One erasure request: an id or an index and a reason.
        8 * 1024
    }
}

/// The routes, state applied, and their OpenAPI document.
pub fn api(log: LogHandle, auth: Authenticator) -> (Router, utoipa::openapi::OpenApi) {
    let (router, openapi) = routes().split_for_parts();
    (router.with_state(AppState { log, auth }), openapi)
}

/// The audit log's OpenAPI document: every path in it starts with `/v1/audit`.
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes().split_for_parts().1
}

fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(checkpoint))
        .routes(routes!(public_key))
        .routes(routes!(entries))
        .routes(routes!(inclusion))
        .routes(routes!(consistency))
        .routes(routes!(erase))
        .routes(routes!(opening))
}

type ApiResult = Result<Response, Problem>;

fn text(body: String) -> Response {
    let mut res = body.into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    res
}

fn to_json<T: Serialize>(v: &T) -> Result<String, AppError> {
    serde_json::to_string(v).map_err(|e| AppError::internal(&e))
}

/// The latest signed checkpoint (C2SP tlog-checkpoint, as a signed note): origin, tree size,
/// root hash, a blank line, the Ed25519 signature. Public.
#[utoipa::path(get, path = "/v1/audit/checkpoint", tag = "audit", security(()),
    responses((status = 200, description = "The signed checkpoint; its `ETag` names the tree size and root", body = String, content_type = "text/plain"),
        (status = 304, description = "Unchanged since the `If-None-Match` tag")))]
async fn checkpoint(State(st): State<AppState>, headers: HeaderMap) -> ApiResult {
    match st.log.get()?.checkpoint() {
        Some(s) => {
            // The tree size and root name the checkpoint: a witness polling with
            // If-None-Match gets 304 until the log has grown.
            let tag = format!("\"{}-{}\"", s.size, hex_prefix(&s.root));
            let unchanged = headers
                .get_all(header::IF_NONE_MATCH)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(','))
                .any(|t| {
                    let t = t.trim();
                    t == "*" || t.trim_start_matches("W/") == tag
                });
            let mut res = if unchanged {
                StatusCode::NOT_MODIFIED.into_response()
            } else {
                text(s.note)
            };
            if let Ok(v) = HeaderValue::from_str(&tag) {
                res.headers_mut().insert(header::ETAG, v);
            }
            res.headers_mut()
                .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            Ok(res)
        }
        None => Err(AppError::new(
            ErrorCode::Unavailable,
            "the audit log has not signed a checkpoint yet; retry in a moment",
        )
        .into()),
    }
}

/// The log's public key as a signed-note verifier key, `<name>+<key id>+<base64 key>`. Public.
#[utoipa::path(get, path = "/v1/audit/public-key", tag = "audit", security(()),
    responses((status = 200, description = "The verifier key", body = String, content_type = "text/plain")))]
async fn public_key(State(st): State<AppState>) -> ApiResult {
    Ok(text(format!("{}\n", st.log.get()?.public_key())))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct EntriesParams {
    /// The first leaf index (0-based).
    start: u64,
    /// The last leaf index, inclusive; clipped to the signed tree and to 1,000 entries.
    end: u64,
}

#[derive(Debug, Serialize, ToSchema)]
struct EntryView {
    index: u64,
    /// Base64 of the exact bytes the leaf hash covers (canonical JSON of the record).
    leaf_input: String,
    record_type: String,
    #[serde(with = "time::serde::rfc3339")]
    #[schema(value_type = String, format = DateTime)]
    recorded_at: OffsetDateTime,
}

#[derive(Debug, Serialize, ToSchema)]
struct EntriesView {
    entries: Vec<EntryView>,
}

/// Leaves `start..=end` (RFC 6962 get-entries). Assigning office and auditors.
#[utoipa::path(get, path = "/v1/audit/entries", tag = "audit", params(EntriesParams),
    responses((status = 200, body = EntriesView), (status = 400, body = ProblemDocument), (status = 403, body = ProblemDocument)))]
async fn entries(
    State(st): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<EntriesParams>,
) -> ApiResult {
    reader(&caller.0)?;
    let list = entries_of(&st.log.get()?, q.start, q.end).await?;
    let view = EntriesView {
        entries: list
            .into_iter()
            .map(|e| EntryView {
                index: e.index,
                leaf_input: STANDARD.encode(&e.leaf_input),
                record_type: e.record_type,
                recorded_at: e.recorded_at,
            })
            .collect(),
    };
    Ok(json_response(200, to_json(&view)?, None))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct InclusionParams {
    /// The leaf index (0-based); or give `leaf_hash`.
    index: Option<u64>,
    /// The leaf hash, base64; or give `index`.
    leaf_hash: Option<String>,
    /// The tree size the proof is for (at most the signed size).
    tree_size: u64,
}

#[derive(Debug, Serialize, ToSchema)]
struct InclusionView {
    index: u64,
    tree_size: u64,
    /// Base64 hashes, leaf to root.
    audit_path: Vec<String>,
}

/// An inclusion proof (RFC 6962 get-proof-by-hash, or by index). Assigning office and auditors.
#[utoipa::path(get, path = "/v1/audit/proofs/inclusion", tag = "audit", params(InclusionParams),
    responses((status = 200, body = InclusionView), (status = 400, body = ProblemDocument), (status = 404, body = ProblemDocument)))]
async fn inclusion(
    State(st): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<InclusionParams>,
) -> ApiResult {
    reader(&caller.0)?;
    let (index, path) = match (q.index, q.leaf_hash) {
        (Some(index), None) => (
            index,
            st.log
                .get()?
                .inclusion_proof(index, q.tree_size)
                .map_err(|e| proof_error(e, "index", "tree_size"))?,
        ),
        (None, Some(h)) => {
            let hash: Hash = STANDARD
                .decode(h.as_bytes())
                .ok()
                .and_then(|b| b.try_into().ok())
                .ok_or_else(|| bad("leaf_hash", "not 32 bytes of standard base64"))?;
            inclusion_by_hash_of(&st.log.get()?, &hash, q.tree_size).await?
        }
        _ => return Err(bad("index", "give exactly one of `index` and `leaf_hash`").into()),
    };
    let view = InclusionView {
        index,
        tree_size: q.tree_size,
        audit_path: b64(&path),
    };
    Ok(json_response(200, to_json(&view)?, None))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ConsistencyParams {
    /// The older tree size (> 0).
    first: u64,
    /// The newer tree size (≥ first, at most the signed size).
    second: u64,
}

#[derive(Debug, Serialize, ToSchema)]
struct ConsistencyView {
    /// Base64 hashes (RFC 6962 PROOF order).
    consistency: Vec<String>,
}

/// A consistency proof between two tree sizes (RFC 6962 get-sth-consistency). Assigning
/// office and auditors.
#[utoipa::path(get, path = "/v1/audit/proofs/consistency", tag = "audit", params(ConsistencyParams),
    responses((status = 200, body = ConsistencyView), (status = 400, body = ProblemDocument)))]
async fn consistency(
    State(st): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ConsistencyParams>,
) -> ApiResult {
    reader(&caller.0)?;
    let proof = consistency_of(&st.log.get()?, q.first, q.second)?;
    Ok(json_response(
        200,
        to_json(&ConsistencyView {
            consistency: b64(&proof),
        })?,
        None,
    ))
}

/// What to erase: exactly one of `subject` (a deputy's id: every leaf whose personal data
/// concerns that deputy) and `leaf` (one leaf's index), and why.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EraseBody {
    pub subject: Option<String>,
    pub leaf: Option<u64>,
    /// Why (kept, as erasable text, with the erasure's own leaf).
    pub reason: String,
}

#[derive(Debug, Serialize, ToSchema)]
struct ErasureView {
    /// The leaves whose personal data and salt were erased.
    erased: Vec<u64>,
    /// The leaf that records the erasure.
    record: u64,
}

fn erasure_json(e: &Erasure) -> Result<String, AppError> {
    to_json(&ErasureView {
        erased: e.erased.clone(),
        record: e.record,
    })
}

/// Erases personal data from the audit log: a deputy's (`subject`) in every leaf that concerns
/// them, or one leaf's. The erasure is recorded first as a leaf of its own; the leaves keep
/// their commitments, so every proof and `banli audit verify` stay intact. Assigning office only.
/// 404: unknown subject, a leaf outside the signed log or without personal data; 409: erased
/// already. With an `Idempotency-Key`, a retry answers with the first erasure.
#[utoipa::path(post, path = "/v1/audit/erasures", tag = "audit", request_body = EraseBody,
    responses((status = 201, body = ErasureView), (status = 403, body = ProblemDocument), (status = 404, body = ProblemDocument),
        (status = 409, body = ProblemDocument), (status = 422, body = ProblemDocument)))]
async fn erase(State(st): State<AppState>, caller: Caller, body: Posted<EraseBody>) -> ApiResult {
    eraser(&caller.0)?;
    let Posted {
        value,
        idempotency_key,
        ..
    } = body;
    let target = erasure_target(value.subject, value.leaf, &value.reason)?;
    let log = st.log.get()?;
    let done = log
        .erase(
            &target,
            &value.reason,
            actor_of(&caller.0),
            erasure_source(&caller.0, idempotency_key.as_deref()),
        )
        .await
        .map_err(erase_error)?;
    Ok(json_response(201, erasure_json(&done)?, None))
}

#[derive(Debug, Serialize, ToSchema)]
struct OpeningView {
    index: u64,
    /// Base64 of the salt; absent once erased.
    salt: Option<String>,
    /// The personal data as canonical JSON text — exactly the bytes the leaf's
    /// `personal_commitment` covers: `hex(SHA-256(salt ‖ data))`; absent once erased.
    data: Option<String>,
    #[serde(with = "time::serde::rfc3339::option")]
    #[schema(value_type = Option<String>, format = DateTime)]
    erased_at: Option<OffsetDateTime>,
}

/// A leaf's personal data and salt, to check against the commitment in the leaf (or when they
/// were erased). Assigning office and auditors. 404: no personal data beside that leaf.
#[utoipa::path(get, path = "/v1/audit/entries/{index}/personal", tag = "audit", params(("index" = u64, Path)),
    responses((status = 200, body = OpeningView), (status = 400, body = ProblemDocument), (status = 404, body = ProblemDocument)))]
async fn opening(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(index): ApiPath<u64>,
) -> ApiResult {
    reader(&caller.0)?;
    let o = opening_of(&st.log.get()?, index).await?;
    let view = OpeningView {
        index: o.index,
        salt: o.salt.map(|s| STANDARD.encode(s)),
        data: o.data,
        erased_at: o.erased_at,
    };
    Ok(json_response(200, to_json(&view)?, None))
}
