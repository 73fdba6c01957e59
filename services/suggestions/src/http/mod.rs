//! REST: resources under `/v1/`, JSON, RFC 9457 problem documents, an OpenAPI 3.1 document at
//! `/openapi.json` and a browsable page at `/docs`.

mod routes;

use axum::Router;
use banli_api::Principal;
use banli_api::http::ApiState;

use crate::app::App;
use crate::error::AppError;

pub use banli_api::http::{DEFAULT_BODY_LIMIT, Problem, ProblemDocument};
pub use routes::ApiDoc;

#[derive(Debug, Clone)]
pub struct AppState {
    pub app: App,
    pub body_limit: usize,
}

impl ApiState for AppState {
    async fn authenticate(&self, token: &str) -> Result<Principal, AppError> {
        self.app.authenticate(token).await
    }

    fn body_limit(&self) -> usize {
        self.body_limit
    }
}

/// This service's routes, state applied, and their OpenAPI document, to be merged with other
/// services' and finished with [`banli_api::http::finish`].
/// The paths this service answers (REST prefixes and its gRPC services' path): a request
/// carrying a consistency token waits on this service's gate.
pub const PATHS: &[&str] = &[
    "/v1/suggestions",
    "/v1/sessions",
    "/v1/agencies",
    "/v1/deputies",
    "/v1/admin",
    "/v1/calendar",
    "/v1/documents",
    "/v1/public",
    "/banli.suggestions.v1.",
];

pub fn api(app: App, body_limit: usize) -> (Router, utoipa::openapi::OpenApi) {
    let state = AppState { app, body_limit };
    let (api, openapi) = routes::api().split_for_parts();
    (api.with_state(state), openapi)
}

/// This service's OpenAPI document: every path in it starts with one of [`PATHS`].
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes::api().split_for_parts().1
}

/// The REST surface of this service alone.
pub fn router(app: App, body_limit: usize) -> Router {
    let (api, openapi) = api(app, body_limit);
    banli_api::http::finish(api, openapi)
}
