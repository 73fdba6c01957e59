//! REST: `/v1/inbox` (a deputy's or a unit contact's messages),
//! `/v1/notifications/preferences/{deputy_id}`, `/v1/notifications/contacts/{agency_id}`,
//! `/v1/notifications/deliveries` (each delivery and its outcome). Handlers parse and answer;
//! `crate::app` decides.

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use banli_api::http::{
    ApiPath, ApiQuery, ApiState, Caller, Posted, Problem, ProblemDocument, json_response,
};
use banli_api::{AppError, Principal};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::app::{AppState, Named, PreferencesBody, internal};
use crate::store::{DeliveryRow, InboxItem};

#[derive(OpenApi)]
#[openapi(tags((name = "notify", description = "Notifications (通知): deputies hear of their suggestions, and units' contacts of what their unit must do, in the inbox, by e-mail and by SMS")))]
#[derive(Debug)]
pub struct ApiDoc;

impl ApiState for AppState {
    async fn authenticate(&self, token: &str) -> Result<Principal, AppError> {
        (self.auth)(token.to_owned()).await
    }

    fn body_limit(&self) -> usize {
        8 * 1024
    }
}

/// The paths this service answers (REST prefixes and its gRPC service).
pub const PATHS: &[&str] = &["/v1/inbox", "/v1/notifications", "/banli.notify.v1."];

pub fn api(state: AppState) -> (Router, utoipa::openapi::OpenApi) {
    let (router, openapi) = routes().split_for_parts();
    (router.with_state(state), openapi)
}

pub fn openapi() -> utoipa::openapi::OpenApi {
    routes().split_for_parts().1
}

fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(inbox))
        .routes(routes!(mark_read))
        .routes(routes!(get_preferences, set_preferences))
        .routes(routes!(get_contact, set_contact))
        .routes(routes!(deliveries))
}

type ApiResult = Result<Response, Problem>;

fn to_json<T: Serialize>(v: &T) -> Result<String, AppError> {
    serde_json::to_string(v).map_err(internal)
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct InboxParams {
    /// The office and auditors: the deputy whose inbox; a deputy's key: their own (default).
    deputy_id: Option<Uuid>,
    /// The office and auditors: the agency whose contact's inbox; an agency's key: its own
    /// (default).
    agency_id: Option<Uuid>,
    /// Only messages not read yet.
    #[serde(default)]
    unread: bool,
    /// 1 to 500, default 100.
    limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
struct InboxList {
    items: Vec<InboxItem>,
}

/// A deputy's messages (通知), newest first: the assignment of their suggestions (who handles
/// them, by when), extensions approved, replies, re-handling, progress on commitments and the
/// closure of follow-up — in the deputy's language. With an agency's key, its contact's
/// messages: items assigned to the unit, extensions decided, deputies' ratings, re-handling,
/// closure requests decided.
#[utoipa::path(get, path = "/v1/inbox", tag = "notify", params(InboxParams),
    responses((status = 200, body = InboxList), (status = 400, body = ProblemDocument), (status = 403, body = ProblemDocument)))]
async fn inbox(
    State(st): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<InboxParams>,
) -> ApiResult {
    let items =
        crate::app::inbox_of(&st, &caller.0, q.deputy_id, q.agency_id, q.unread, q.limit).await?;
    Ok(json_response(200, to_json(&InboxList { items })?, None))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Empty {}

/// Marks one of the caller's messages read (a deputy's key, or an agency's for its contact's).
#[utoipa::path(post, path = "/v1/inbox/{id}/read", tag = "notify", params(("id" = Uuid, Path)), request_body = Object,
    responses((status = 200, body = InboxItem), (status = 403, body = ProblemDocument), (status = 404, body = ProblemDocument)))]
async fn mark_read(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    _body: Posted<Empty>,
) -> ApiResult {
    let m = crate::app::mark_read(&st, &caller.0, id).await?;
    Ok(json_response(200, to_json(&m)?, None))
}

/// A deputy's notification preferences: addresses, channels, quiet hours, language (the
/// deputy, the assigning office, auditors). Without any set: every channel, Chinese.
#[utoipa::path(get, path = "/v1/notifications/preferences/{id}", tag = "notify", params(("id" = Uuid, Path)),
    responses((status = 200, body = PreferencesBody), (status = 403, body = ProblemDocument)))]
async fn get_preferences(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult {
    let p = crate::app::preferences_of(&st, &caller.0, Named::Deputy(id)).await?;
    Ok(json_response(200, to_json(&p)?, None))
}

/// Replaces a deputy's notification preferences (the deputy, or the assigning office). A bad
/// address, time or language is a 422 naming the field. Messages already queued keep the
/// preferences they were queued with.
#[utoipa::path(put, path = "/v1/notifications/preferences/{id}", tag = "notify", params(("id" = Uuid, Path)),
    request_body = PreferencesBody,
    responses((status = 200, body = PreferencesBody), (status = 403, body = ProblemDocument), (status = 422, body = ProblemDocument)))]
async fn set_preferences(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    body: Posted<PreferencesBody>,
) -> ApiResult {
    let p = crate::app::set_preferences(&st, &caller.0, Named::Deputy(id), body.value).await?;
    Ok(json_response(200, to_json(&p)?, None))
}

/// A unit's contact (联络员) for notifications: the addresses, channels, quiet hours and
/// language of the person who hears what the unit must do (the agency's keys, the assigning
/// office, auditors). Without any set: the inbox only has the messages (no address).
#[utoipa::path(get, path = "/v1/notifications/contacts/{id}", tag = "notify", params(("id" = Uuid, Path, description = "The agency")),
    responses((status = 200, body = PreferencesBody), (status = 403, body = ProblemDocument)))]
async fn get_contact(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult {
    let p = crate::app::preferences_of(&st, &caller.0, Named::Agency(id)).await?;
    Ok(json_response(200, to_json(&p)?, None))
}

/// Replaces a unit's contact for notifications (the agency's admin key, or the assigning
/// office). A bad address, time or language is a 422 naming the field.
#[utoipa::path(put, path = "/v1/notifications/contacts/{id}", tag = "notify", params(("id" = Uuid, Path, description = "The agency")),
    request_body = PreferencesBody,
    responses((status = 200, body = PreferencesBody), (status = 403, body = ProblemDocument), (status = 409, body = ProblemDocument), (status = 422, body = ProblemDocument)))]
async fn set_contact(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    body: Posted<PreferencesBody>,
) -> ApiResult {
    let p = crate::app::set_preferences(&st, &caller.0, Named::Agency(id), body.value).await?;
    Ok(json_response(200, to_json(&p)?, None))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct DeliveryParams {
    deputy_id: Option<Uuid>,
    agency_id: Option<Uuid>,
    suggestion_id: Option<Uuid>,
    /// `pending`, `sent`, `failed` or `undeliverable`.
    state: Option<String>,
    limit: Option<u32>,
}

#[derive(Debug, Serialize, ToSchema)]
struct DeliveryList {
    items: Vec<DeliveryRow>,
}

/// Each e-mail and SMS delivery with its outcome: sent, pending (with the next attempt and the
/// last error), failed after the retries, or undeliverable with the reason (no address, the
/// channel not configured). The office and auditors: any deputy's or unit's; a deputy: their
/// own; an agency: its contact's.
#[utoipa::path(get, path = "/v1/notifications/deliveries", tag = "notify", params(DeliveryParams),
    responses((status = 200, body = DeliveryList), (status = 400, body = ProblemDocument), (status = 403, body = ProblemDocument)))]
async fn deliveries(
    State(st): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<DeliveryParams>,
) -> ApiResult {
    let items = crate::app::deliveries_of(
        &st,
        &caller.0,
        q.deputy_id,
        q.agency_id,
        q.suggestion_id,
        q.state,
        q.limit,
    )
    .await?;
    Ok(json_response(200, to_json(&DeliveryList { items })?, None))
}
