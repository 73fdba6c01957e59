//! REST: resources under `/v1/`, JSON, RFC 9457 problem documents, an OpenAPI 3.1 document at
//! `/openapi.json` and a browsable page at `/docs`.

mod extract;
mod routes;

use std::time::Duration;

use axum::Router;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tower_http::request_id::{
    MakeRequestUuid, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::TraceLayer;
use utoipa::ToSchema;
use utoipa_swagger_ui::SwaggerUi;

use crate::app::App;
use crate::error::{AppError, ErrorCode};

pub use routes::ApiDoc;

/// The default request body limit.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

#[derive(Debug, Clone)]
pub struct AppState {
    pub app: App,
    pub body_limit: usize,
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

/// The whole REST surface.
pub fn router(app: App, body_limit: usize) -> Router {
    let state = AppState { app, body_limit };
    let (api, mut openapi) = routes::api().split_for_parts();
    routes::conventions(&mut openapi);
    let request_id = HeaderName::from_static("x-request-id");
    api.merge(SwaggerUi::new("/docs").url("/openapi.json", openapi))
        .fallback(|| async { Problem(AppError::not_found("no such route; see /docs for the API")) })
        .method_not_allowed_fallback(|| async { Problem(AppError::new(ErrorCode::MethodNotAllowed, "this method is not allowed on this route; see /docs")) })
        .with_state(state)
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| Problem(AppError::internal(&"a handler panicked")).into_response()))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(StatusCode::SERVICE_UNAVAILABLE, Duration::from_secs(30)))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(TraceLayer::new_for_http().make_span_with(|req: &axum::http::Request<_>| {
            let id = req.extensions().get::<RequestId>().and_then(|r| r.header_value().to_str().ok()).unwrap_or_default().to_owned();
            tracing::info_span!("http", method = %req.method(), path = %req.uri().path(), request_id = %id, key_id = tracing::field::Empty)
        }))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
}
