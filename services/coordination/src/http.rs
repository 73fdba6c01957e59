//! REST: the coordination resources under `/v1/coordination/`, with their OpenAPI description.
//! Every POST honours `Idempotency-Key` and `If-Match` (the case's ETag) and answers with the
//! case as the caller may see it.

use axum::Router;
use axum::extract::{MatchedPath, State};
use axum::response::Response;
use banli_api::http::{
    ApiPath, ApiQuery, ApiState, Caller, IfMatch, Posted, Problem, ProblemDocument, json_response,
};
use banli_api::{AppError, Principal};
use banli_eventlog::inbox::Parked;
use serde::Deserialize;
use utoipa::{IntoParams, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::app::{App, TaskQuery};
use crate::command::{CaseCommand, Once};
use crate::dto::*;

#[derive(OpenApi)]
#[openapi(tags((name = "coordination", description = "Between the units of a suggestion (协办): sign-for, adjustments, co-handling opinions and waivers, countersign, disagreements, reply copies, tasks")))]
#[derive(Debug)]
pub struct ApiDoc;

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

/// The paths this service answers (REST prefixes and its gRPC services' path): a request
/// carrying a consistency token waits on this service's gate.
pub const PATHS: &[&str] = &[
    "/v1/coordination",
    "/v1/feed",
    "/v1/webhooks",
    "/banli.coordination.v1.",
];

/// This service's routes, state applied, and their OpenAPI document.
pub fn api(app: App, body_limit: usize) -> (Router, utoipa::openapi::OpenApi) {
    let (router, openapi) = routes().split_for_parts();
    (router.with_state(AppState { app, body_limit }), openapi)
}

/// This service's OpenAPI document: every path in it starts with one of [`PATHS`].
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes().split_for_parts().1
}

fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(get_case))
        .routes(routes!(list_tasks))
        .routes(routes!(parked_events))
        .routes(routes!(feed))
        .routes(routes!(create_webhook, list_webhooks))
        .routes(routes!(get_webhook, update_webhook, delete_webhook))
        .routes(routes!(rotate_webhook_secret))
        .routes(routes!(replay_webhook))
        .routes(routes!(webhook_deliveries))
        .routes(routes!(sign_for))
        .routes(routes!(request_adjustment))
        .routes(routes!(decide_adjustment))
        .routes(routes!(submit_opinion))
        .routes(routes!(acknowledge_opinion))
        .routes(routes!(waive_opinion))
        .routes(routes!(countersign))
        .routes(routes!(record_disagreement))
        .routes(routes!(escalate_disagreement))
        .routes(routes!(resolve_disagreement))
        .routes(routes!(record_consultation))
}

/// The REST surface of this service alone, with `/healthz`, `/docs` and `/openapi.json`.
pub fn router(app: App, body_limit: usize) -> Router {
    let (api, openapi) = api(app.clone(), body_limit);
    let health = Router::new()
        .route("/healthz", axum::routing::get(|| async { "ok" }))
        .route(
            "/readyz",
            axum::routing::get(move || {
                let app = app.clone();
                async move {
                    match app.store().ping().await {
                        Ok(()) => Ok("ready"),
                        Err(_) => Err(Problem(AppError::new(
                            banli_api::ErrorCode::Unavailable,
                            "the database does not answer",
                        ))),
                    }
                }
            }),
        );
    banli_api::http::finish(api.merge(health), openapi)
}

type ApiResult = Result<Response, Problem>;

fn to_json<T: serde::Serialize>(v: &T) -> Result<String, AppError> {
    serde_json::to_string(v).map_err(|e| AppError::internal(&e))
}

/// A command: idempotent, version-checked, answered with the case.
async fn command<T>(
    st: &AppState,
    caller: &Caller,
    matched: &MatchedPath,
    if_match: IfMatch,
    body: Posted<T>,
    make: impl FnOnce(T) -> CaseCommand,
) -> ApiResult {
    let Posted {
        value,
        hash,
        idempotency_key,
    } = body;
    let cmd = make(value);
    // The route and the command it builds name the same path (tests exercise every route).
    debug_assert_eq!(
        matched.as_str(),
        cmd.rest_path(),
        "a route builds another path's command"
    );
    let once = Once {
        key: idempotency_key,
        hash,
    };
    let (status, body) = st.app.command(&caller.0, if_match.0, once, cmd).await?;
    let etag = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("version")?.as_u64());
    Ok(json_response(status, body, etag))
}

/// The coordination side of a suggestion: its units, opinions (the lead and the office see
/// all, a co-handler its own), countersignatures, disagreements, reply copies and the state of
/// this service's commands.
#[utoipa::path(get, path = "/v1/coordination/cases/{suggestion_id}", tag = "coordination", params(("suggestion_id" = Uuid, Path)),
    responses((status = 200, body = CaseView, headers(("ETag" = String))), (status = 404, body = ProblemDocument)))]
async fn get_case(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult {
    let view = st.app.case(&caller.0, id).await?;
    Ok(json_response(200, to_json(&view)?, Some(view.version)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct TasksParams {
    /// The office and auditors: one agency's tasks.
    agency_id: Option<Uuid>,
    role: Option<Role4>,
    page_token: Option<String>,
    /// 1 to 200 (default 50).
    page_size: Option<u32>,
}

/// The caller's tasks: what each of its assignments owes and by when (co-handlers: the opinion
/// by the co-handling sub-deadline).
#[utoipa::path(get, path = "/v1/coordination/tasks", tag = "coordination", params(TasksParams),
    responses((status = 200, body = TaskPage)))]
async fn list_tasks(
    State(st): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<TasksParams>,
) -> ApiResult {
    let page = st
        .app
        .tasks(
            &caller.0,
            TaskQuery {
                agency_id: q.agency_id,
                role: q.role.map(Into::into),
                page_token: q.page_token,
                limit: q.page_size,
            },
        )
        .await?;
    Ok(json_response(200, to_json(&page)?, None))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct FeedParams {
    /// Resume after this cursor (an item's `cursor` or a page's `next_cursor`); leave it out to
    /// start at the beginning, or `now` to follow only what comes next.
    after: Option<String>,
    /// 1 to 1000 (default 100).
    limit: Option<u32>,
    /// The office and auditors: whose feed (agency keys read their own).
    agency_id: Option<Uuid>,
}

/// The caller's event feed: every event of every suggestion the agency is party to (an agency
/// assigned gets the assignment; one whose assignment is superseded gets that event and nothing
/// after), in one stable order, resumable from any cursor. gRPC: `Watch` streams the same.
#[utoipa::path(get, path = "/v1/feed", tag = "coordination", params(FeedParams),
    responses((status = 200, body = crate::feed::FeedPage), (status = 400, body = ProblemDocument), (status = 403, body = ProblemDocument)))]
async fn feed(
    State(st): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<FeedParams>,
) -> ApiResult {
    let page = st
        .app
        .feed(&caller.0, q.agency_id, q.after.as_deref(), q.limit)
        .await?;
    Ok(json_response(200, to_json(&page)?, None))
}

// ---- webhooks ----

/// A webhook command through the idempotency store (only the first answer shows a secret).
async fn webhook_command<T, F, Fut>(
    st: &AppState,
    caller: &Caller,
    body: Posted<T>,
    status: u16,
    run: F,
) -> ApiResult
where
    F: FnOnce(T) -> Fut,
    Fut: std::future::Future<Output = Result<crate::webhooks::WebhookView, AppError>>,
{
    let Posted {
        value,
        hash,
        idempotency_key,
    } = body;
    let (status, v) = st
        .app
        .idempotent_webhook(&caller.0, idempotency_key.as_deref(), &hash, status, || {
            run(value)
        })
        .await?;
    Ok(json_response(status, to_json(&v)?, Some(v.version)))
}

/// Create a webhook endpoint (agency_admin, for its own agency). The answer shows the signing
/// secret once. Each delivery is a POST of one feed item (the JSON of `GET /v1/feed`'s items)
/// with the headers `Banli-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256>` (one `v1` per
/// current secret; two while a rotated secret overlaps), `Banli-Delivery` (the event id: the
/// same on a retry or replay) and `Banli-Event` (the type). To verify: HMAC-SHA256 with the
/// secret over `<t>.<raw body>`, compared in constant time with any `v1`; refuse a `t` more than
/// 300 s from your clock. Answer 2xx within 10 s; anything else is retried with exponential
/// backoff and jitter (10 s doubling to 1 h), and an endpoint failing for 72 hours is disabled
/// with a `webhook.disabled` event in the agency's feed.
#[utoipa::path(post, path = "/v1/webhooks", tag = "coordination", request_body = crate::webhooks::CreateWebhook,
    params(("Idempotency-Key" = Option<String>, Header, nullable = false, description = "Replays return the first response (without the secret)", pattern = "^[!-~]{1,255}$")),
    responses((status = 201, body = crate::webhooks::WebhookView), (status = 400, body = ProblemDocument), (status = 403, body = ProblemDocument), (status = 422, body = ProblemDocument)))]
async fn create_webhook(
    State(st): State<AppState>,
    caller: Caller,
    body: Posted<crate::webhooks::CreateWebhook>,
) -> ApiResult {
    webhook_command(&st, &caller, body, 201, |v| {
        st.app.create_webhook(&caller.0, v)
    })
    .await
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct WebhookListParams {
    /// The office and auditors: one agency's endpoints.
    agency_id: Option<Uuid>,
}

/// The caller's agency's webhook endpoints (the office and auditors: any agency's).
#[utoipa::path(get, path = "/v1/webhooks", tag = "coordination", params(WebhookListParams),
    responses((status = 200, body = Vec<crate::webhooks::WebhookView>), (status = 403, body = ProblemDocument)))]
async fn list_webhooks(
    State(st): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<WebhookListParams>,
) -> ApiResult {
    let list = st.app.list_webhooks(&caller.0, q.agency_id).await?;
    Ok(json_response(200, to_json(&list)?, None))
}

/// One webhook endpoint: its state, cursor and failures.
#[utoipa::path(get, path = "/v1/webhooks/{id}", tag = "coordination", params(("id" = Uuid, Path)),
    responses((status = 200, body = crate::webhooks::WebhookView, headers(("ETag" = String))), (status = 404, body = ProblemDocument)))]
async fn get_webhook(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult {
    let v = st.app.get_webhook(&caller.0, id).await?;
    Ok(json_response(200, to_json(&v)?, Some(v.version)))
}

/// Change an endpoint's URL, event types or description, pause it (`state: disabled`) or
/// re-enable it (`state: active`, its failures forgotten). `If-Match` its ETag.
#[utoipa::path(patch, path = "/v1/webhooks/{id}", tag = "coordination", request_body = crate::webhooks::UpdateWebhook,
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header, nullable = false, description = "The endpoint's ETag", pattern = r#"^(\*|(W/)?"v[0-9]{1,19}")$"#)),
    responses((status = 200, body = crate::webhooks::WebhookView), (status = 404, body = ProblemDocument), (status = 412, body = ProblemDocument), (status = 422, body = ProblemDocument)))]
async fn update_webhook(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    if_match: IfMatch,
    body: Posted<crate::webhooks::UpdateWebhook>,
) -> ApiResult {
    webhook_command(&st, &caller, body, 200, |v| {
        st.app.update_webhook(&caller.0, id, if_match.0, v)
    })
    .await
}

/// Delete an endpoint and its delivery log.
#[utoipa::path(delete, path = "/v1/webhooks/{id}", tag = "coordination", params(("id" = Uuid, Path)),
    responses((status = 204), (status = 403, body = ProblemDocument), (status = 404, body = ProblemDocument)))]
async fn delete_webhook(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult {
    st.app.delete_webhook(&caller.0, id).await?;
    Ok(axum::response::IntoResponse::into_response(
        axum::http::StatusCode::NO_CONTENT,
    ))
}

/// A new signing secret, shown once; the old one keeps signing beside it for `overlap_hours`
/// (default 24), so receivers can switch without losing a delivery.
#[utoipa::path(post, path = "/v1/webhooks/{id}/rotate-secret", tag = "coordination", request_body = crate::webhooks::RotateSecret,
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header, nullable = false, description = "The endpoint's ETag", pattern = r#"^(\*|(W/)?"v[0-9]{1,19}")$"#),
        ("Idempotency-Key" = Option<String>, Header, nullable = false, description = "Replays return the first response (without the secret)", pattern = "^[!-~]{1,255}$")),
    responses((status = 200, body = crate::webhooks::WebhookView), (status = 404, body = ProblemDocument), (status = 412, body = ProblemDocument), (status = 422, body = ProblemDocument)))]
async fn rotate_webhook_secret(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    if_match: IfMatch,
    body: Posted<crate::webhooks::RotateSecret>,
) -> ApiResult {
    webhook_command(&st, &caller, body, 200, |v| {
        st.app.rotate_webhook_secret(&caller.0, id, if_match.0, v)
    })
    .await
}

/// Deliver again everything after a cursor of the agency's feed (or `start`).
#[utoipa::path(post, path = "/v1/webhooks/{id}/replay", tag = "coordination", request_body = crate::webhooks::ReplayWebhook,
    params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header, nullable = false, description = "The endpoint's ETag", pattern = r#"^(\*|(W/)?"v[0-9]{1,19}")$"#)),
    responses((status = 200, body = crate::webhooks::WebhookView), (status = 400, body = ProblemDocument), (status = 404, body = ProblemDocument), (status = 412, body = ProblemDocument)))]
async fn replay_webhook(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    if_match: IfMatch,
    body: Posted<crate::webhooks::ReplayWebhook>,
) -> ApiResult {
    webhook_command(&st, &caller, body, 200, |v| {
        st.app.replay_webhook(&caller.0, id, if_match.0, v)
    })
    .await
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct DeliveriesParams {
    /// 1 to 1000 (default 50).
    limit: Option<u32>,
}

/// The endpoint's delivery log: every attempt, newest first, with the receiver's status or why
/// there was none.
#[utoipa::path(get, path = "/v1/webhooks/{id}/deliveries", tag = "coordination", params(("id" = Uuid, Path), DeliveriesParams),
    responses((status = 200, body = Vec<crate::webhooks::DeliveryView>), (status = 400, body = ProblemDocument), (status = 404, body = ProblemDocument)))]
async fn webhook_deliveries(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    ApiQuery(q): ApiQuery<DeliveriesParams>,
) -> ApiResult {
    let list = st.app.webhook_deliveries(&caller.0, id, q.limit).await?;
    Ok(json_response(200, to_json(&list)?, None))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ParkedParams {
    /// 1 to 200 (default 50).
    limit: Option<u32>,
}

/// Events this service's consumer set aside (unknown types, newer schema versions, unreadable
/// payloads, missing predecessors), oldest first. Assigning office and auditors.
#[utoipa::path(get, path = "/v1/coordination/parked-events", tag = "coordination", params(ParkedParams),
    responses((status = 200, body = Vec<Object>), (status = 403, body = ProblemDocument)))]
async fn parked_events(
    State(st): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ParkedParams>,
) -> ApiResult {
    let list: Vec<Parked> = st
        .app
        .parked_events(&caller.0, q.limit.unwrap_or(50))
        .await?;
    Ok(json_response(200, to_json(&list)?, None))
}

macro_rules! command_route {
    ($(#[$doc:meta])* $name:ident, $path:literal, $param:literal, $body:ty, |$v:ident, $target:ident| $build:expr) => {
        $(#[$doc])*
        #[utoipa::path(post, path = $path, tag = "coordination", request_body = $body,
            params(($param = Uuid, Path), ("If-Match" = Option<String>, Header, nullable = false, description = "The case's ETag this change is based on", pattern = r#"^(\*|(W/)?"v[0-9]{1,19}")$"#),
                ("Idempotency-Key" = Option<String>, Header, nullable = false, description = "Replays return the first response", pattern = "^[!-~]{1,255}$")),
            responses((status = 200, body = CaseView, headers(("ETag" = String))), (status = 400, body = ProblemDocument), (status = 401, body = ProblemDocument),
                (status = 403, body = ProblemDocument), (status = 404, body = ProblemDocument), (status = 409, body = ProblemDocument),
                (status = 412, body = ProblemDocument), (status = 413, body = ProblemDocument), (status = 422, body = ProblemDocument)))]
        async fn $name(State(st): State<AppState>, caller: Caller, matched: MatchedPath, ApiPath($target): ApiPath<Uuid>, if_match: IfMatch, body: Posted<$body>) -> ApiResult {
            #[allow(unused_variables)]
            command(&st, &caller, &matched, if_match, body, |$v: $body| $build).await
        }
    };
}

command_route!(
    /// Sign for an assignment (签收). The assigned unit's agency_admin or leader.
    sign_for, "/v1/coordination/assignments/{assignment_id}/sign-for", "assignment_id", Empty,
    |v, assignment_id| CaseCommand::SignFor { assignment_id });
command_route!(
    /// Contest an assignment within the objection window (退回/调整交办); a late request is
    /// refused with the window and how it was computed.
    request_adjustment, "/v1/coordination/assignments/{assignment_id}/adjustment-request", "assignment_id", AdjustmentRequestBody,
    |v, assignment_id| CaseCommand::RequestAdjustment { assignment_id, body: v });
command_route!(
    /// Decide an adjustment request: `accept` (the suggestions service supersedes the
    /// assignment and assigns `agency_id`), `reject`, or `escalate`. Assigning office.
    decide_adjustment, "/v1/coordination/assignments/{assignment_id}/adjustment-decision", "assignment_id", AdjustmentDecisionBody,
    |v, assignment_id| CaseCommand::DecideAdjustment { assignment_id, body: v });
command_route!(
    /// A co-handler's formal opinion letter to the lead (会办意见), due by the co-handling
    /// sub-deadline; not dated in the future. Only the co-handling unit of this assignment
    /// (otherwise 403); not after it is done or the item is replied (409).
    submit_opinion, "/v1/coordination/assignments/{assignment_id}/opinions", "assignment_id", OpinionBody,
    |v, assignment_id| CaseCommand::SubmitOpinion { assignment_id, body: v });
command_route!(
    /// The lead unit acknowledges a co-handling opinion.
    acknowledge_opinion, "/v1/coordination/opinions/{opinion_id}/acknowledge", "opinion_id", Empty,
    |v, opinion_id| CaseCommand::AcknowledgeOpinion { opinion_id });
command_route!(
    /// Waive a co-handler's opinion so the lead may reply without it. Assigning office.
    waive_opinion, "/v1/coordination/assignments/{assignment_id}/waiver", "assignment_id", WaiverBody,
    |v, assignment_id| CaseCommand::WaiveOpinion { assignment_id, body: v });
command_route!(
    /// Countersign the lead's joint reply (会签). A co-handling unit's agency_admin or leader.
    countersign, "/v1/coordination/replies/{reply_id}/countersign", "reply_id", CountersignBody,
    |v, reply_id| CaseCommand::Countersign { reply_id, body: v });
command_route!(
    /// Record a disagreement between the units (分歧), optionally escalating it to the
    /// assigning office at once. The unit holding the assignment.
    record_disagreement, "/v1/coordination/assignments/{assignment_id}/disagreements", "assignment_id", DisagreementBody,
    |v, assignment_id| CaseCommand::RecordDisagreement { assignment_id, body: v });
command_route!(
    /// Escalate a recorded disagreement to the assigning office.
    escalate_disagreement, "/v1/coordination/disagreements/{disagreement_id}/escalate", "disagreement_id", Empty,
    |v, disagreement_id| CaseCommand::EscalateDisagreement { disagreement_id });
command_route!(
    /// Decide a disagreement. Assigning office.
    resolve_disagreement, "/v1/coordination/disagreements/{disagreement_id}/resolve", "disagreement_id", ResolutionBody,
    |v, disagreement_id| CaseCommand::ResolveDisagreement { disagreement_id, body: v });
command_route!(
    /// Record a consultation among the units (会商): date, the units that took part (each
    /// assigned to the suggestion; at least two), attendees, subject and minutes; deputies
    /// optional. Convened by the unit of this assignment (the lead) or the assigning office;
    /// opinions and replies reference it by id.
    record_consultation, "/v1/coordination/assignments/{assignment_id}/consultations", "assignment_id", ConsultationBody,
    |v, assignment_id| CaseCommand::RecordConsultation { assignment_id, body: v });
