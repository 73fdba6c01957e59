//! REST plumbing every service shares: RFC 9457 problem documents, the extractors that turn
//! every bad request into one, and the layers around a router (request ids, tracing, timeouts,
//! panics, fallbacks).

use std::future::Future;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tower_http::request_id::{
    MakeRequestUuid, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::TraceLayer;
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, ToSchema};
use utoipa_swagger_ui::SwaggerUi;

use crate::Principal;
use crate::error::{AppError, ErrorCode};
pub use crate::extract::{ApiPath, ApiQuery, Caller, Delegated, IfMatch, Posted};

/// The default request body limit.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

/// What the shared extractors need from a service's router state.
pub trait ApiState: Clone + Send + Sync + 'static {
    /// Resolves a bearer token to a principal.
    fn authenticate(&self, token: &str)
    -> impl Future<Output = Result<Principal, AppError>> + Send;
    /// The largest request body accepted.
    fn body_limit(&self) -> usize;
}

/// An RFC 9457 problem document.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct ProblemDocument {
    /// `urn:banli:problem:<code>`.
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    /// What went wrong and what to do about it.
    pub detail: String,
    /// The stable error code to match on.
    pub code: ErrorCode,
}

/// An error on its way to becoming a problem response.
#[derive(Debug)]
pub struct Problem(pub AppError);

impl From<AppError> for Problem {
    fn from(e: AppError) -> Self {
        Problem(e)
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let code = self.0.code;
        let status =
            StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            tracing::warn!(code = code.as_str(), "request failed");
        } else {
            tracing::debug!(code = code.as_str(), detail = %self.0.detail, "request refused");
        }
        let doc = ProblemDocument {
            kind: format!("urn:banli:problem:{}", code.as_str()),
            title: code.title().to_owned(),
            status: status.as_u16(),
            detail: self.0.detail,
            code,
        };
        let mut res = (status, axum::Json(doc)).into_response();
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if code == ErrorCode::Unauthenticated {
            res.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static("Bearer realm=\"banli\""),
            );
        }
        res
    }
}

/// A JSON response with an optional `ETag` of the version (`"v3"`).
pub fn json_response(status: u16, body: String, etag: Option<u64>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
    let mut res = (status, body).into_response();
    res.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Some(v) = etag
        && let Ok(h) = HeaderValue::from_str(&format!("\"v{v}\""))
    {
        res.headers_mut().insert(header::ETAG, h);
    }
    res
}

/// The page the `/docs` HTML may load: its own scripts and styles only, never framed.
pub const HTML_CSP: &str = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

/// Headers on every response: `Cache-Control: no-store` unless a route set its own (answers
/// hold agencies' data, and some a secret shown once — an API key, a webhook secret — that no
/// cache may keep), `X-Content-Type-Options: nosniff`; on HTML (the `/docs` page) a content
/// security policy, no framing and no referrer.
async fn security_headers(mut res: Response) -> Response {
    let h = res.headers_mut();
    h.entry(header::CACHE_CONTROL)
        .or_insert(HeaderValue::from_static("no-store"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    let html = h
        .get(header::CONTENT_TYPE)
        .and_then(|c| c.to_str().ok())
        .is_some_and(|c| c.starts_with("text/html"));
    if html {
        h.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(HTML_CSP),
        );
        h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        h.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        );
    }
    res
}

/// Wraps a service's routes (state already applied) in the layers every service uses: the
/// problem fallbacks for unknown routes and methods, panics as 500 problems, a time limit
/// ([`time_limit`]),
/// security headers, request ids (set and propagated), a tracing span per request and the
/// request metrics.
pub fn with_layers(api: Router) -> Router {
    let request_id = HeaderName::from_static("x-request-id");
    api.fallback(|| async { Problem(AppError::not_found("no such route; see /docs for the API")) })
        .method_not_allowed_fallback(|| async { Problem(AppError::new(ErrorCode::MethodNotAllowed, "this method is not allowed on this route; see /docs")) })
        .layer(axum::middleware::map_response(security_headers))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| Problem(AppError::internal(&"a handler panicked")).into_response()))
        .layer(axum::middleware::from_fn(time_limit))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<_>| {
            let id = req.extensions().get::<RequestId>().and_then(|r| r.header_value().to_str().ok()).unwrap_or_default().to_owned();
            let span = tracing::info_span!("http", otel.name = %format!("{} {}", req.method(), route_of(req)), otel.kind = "server", method = %req.method(), path = %req.uri().path(), request_id = %id, key_id = tracing::field::Empty);
            banli_eventlog::trace::follow(&span, req.headers().get("traceparent").and_then(|v| v.to_str().ok()));
            span
        }))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .layer(crate::metrics::RequestMetricsLayer::http())
}

/// How long one request may take: [`REQUEST_TIME_LIMIT`]; an upload of a document
/// (`POST /v1/documents`) [`UPLOAD_TIME_LIMIT`], since 20 MiB over a slow office line takes
/// minutes (the document store cuts off an upload that stalls). Past it: 503 `unavailable`.
pub async fn time_limit(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let upload = req.method() == axum::http::Method::POST && req.uri().path() == "/v1/documents";
    let limit = if upload {
        UPLOAD_TIME_LIMIT
    } else {
        REQUEST_TIME_LIMIT
    };
    match tokio::time::timeout(limit, next.run(req)).await {
        Ok(res) => res,
        Err(_) => Problem(AppError::new(
            ErrorCode::Unavailable,
            format!(
                "the request took longer than {} s and was stopped; nothing of it was kept — send it again, or smaller",
                limit.as_secs()
            ),
        ))
        .into_response(),
    }
}

/// How long a request may take.
pub const REQUEST_TIME_LIMIT: Duration = Duration::from_secs(30);

/// How long an upload of a document may take.
pub const UPLOAD_TIME_LIMIT: Duration = Duration::from_secs(600);

/// The route a request matched (its template, e.g. `/v1/suggestions/{id}`), else its path.
fn route_of<B>(req: &axum::http::Request<B>) -> String {
    req.extensions()
        .get::<axum::extract::MatchedPath>()
        .map_or_else(|| req.uri().path().to_owned(), |m| m.as_str().to_owned())
}

/// A finished REST surface: the routes of one or more services (state applied), their merged
/// OpenAPI document at `/openapi.json` with a browsable page at `/docs`, and [`with_layers`].
pub fn finish(api: Router, mut openapi: utoipa::openapi::OpenApi) -> Router {
    conventions(&mut openapi);
    with_layers(api.merge(SwaggerUi::new("/docs").url("/openapi.json", openapi)))
}

/// What every route shares: the bearer scheme, and the problem documents of the uniform error
/// model (declared here once rather than on every route), as `application/problem+json`.
/// Applied to the finished document, after every route is in it.
pub fn conventions(api: &mut utoipa::openapi::OpenApi) {
    Conventions.modify(api);
}

struct Conventions;

impl Modify for Conventions {
    fn modify(&self, api: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::{ContentBuilder, Ref, RefOr, ResponseBuilder};
        let components = api.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(Http::new(HttpAuthScheme::Bearer)),
        );
        let problem = |description: &str| {
            ResponseBuilder::new()
                .description(description)
                .content(
                    "application/problem+json",
                    ContentBuilder::new()
                        .schema(Some(Ref::from_schema_name("ProblemDocument")))
                        .build(),
                )
                .build()
        };
        for (path, item) in api.paths.paths.iter_mut() {
            let public = path == "/healthz" || path == "/readyz";
            for (is_post, op) in [
                (false, item.get.as_mut()),
                (true, item.post.as_mut()),
                (false, item.delete.as_mut()),
            ] {
                let Some(op) = op else { continue };
                if !public {
                    let params = op.parameters.get_or_insert_with(Vec::new);
                    if !params
                        .iter()
                        .any(|p| matches!(p, RefOr::T(p) if p.name == "Banli-Consistency"))
                    {
                        params.push(RefOr::T(consistency_parameter()));
                    }
                }
                let responses = &mut op.responses.responses;
                // Problem responses declared on a route are problem+json, not plain JSON.
                for r in responses.values_mut() {
                    if let RefOr::T(r) = r
                        && let Some(c) = r.content.shift_remove("application/json")
                    {
                        let is_problem = matches!(&c, RefOr::T(c) if matches!(&c.schema, Some(RefOr::Ref(x)) if x.ref_location.ends_with("/ProblemDocument")));
                        let key = if is_problem {
                            "application/problem+json"
                        } else {
                            "application/json"
                        };
                        r.content.insert(key.to_owned(), c);
                    }
                }
                let mut wanted = vec![
                    ("500", "The server failed; quote the x-request-id"),
                    (
                        "503",
                        "Starting, shutting down, timed out, or (consistency_timeout, with Retry-After) not yet caught up with the Banli-Consistency token",
                    ),
                ];
                if !public {
                    wanted.extend([
                        ("400", "The request could not be read: a bad id, date, query, header or JSON body, or a Banli-Consistency token this deployment did not issue"),
                        ("401", "No valid API key"),
                        ("403", "The key's role may not do this"),
                        ("404", "Not found, or the key is not party to it"),
                    ]);
                }
                if op.operation_id.as_deref() == Some("revoke_key") {
                    wanted.push(("422", "A key cannot revoke itself"));
                }
                if is_post {
                    wanted.extend([
                        ("409", "Wrong state, a rule not yet met, a duplicate, or a concurrent change"),
                        ("413", "The body is larger than the limit"),
                        ("415", "The body is not JSON"),
                        ("422", "A value is not acceptable, or the Idempotency-Key was used for another request"),
                    ]);
                }
                for (status, description) in wanted {
                    responses
                        .entry(status.to_owned())
                        .or_insert_with(|| RefOr::T(problem(description)));
                }
            }
        }
    }
}

/// The `Banli-Consistency` request header every authenticated route takes.
fn consistency_parameter() -> utoipa::openapi::path::Parameter {
    use utoipa::openapi::path::{ParameterBuilder, ParameterIn};
    use utoipa::openapi::{ObjectBuilder, Required, schema::Type};
    ParameterBuilder::new()
        .name("Banli-Consistency")
        .parameter_in(ParameterIn::Header)
        .required(Required::False)
        .description(Some(
            "The Banli-Consistency header of an earlier response (or several, comma-joined): the \
             request is decided only once this service has applied everything it names, at most \
             consistency_wait_ms (then 503 consistency_timeout). Every successful write answers \
             with a new token that includes the one sent.",
        ))
        .schema(Some(ObjectBuilder::new().schema_type(Type::String)))
        .build()
}
