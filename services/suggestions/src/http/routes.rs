//! Every REST route, with its OpenAPI description next to it.

use axum::extract::{MatchedPath, State};
use axum::response::{IntoResponse, Response};
use banli_domain::ids::*;
use banli_domain::suggestion::*;
use serde::Deserialize;
use time::Date;
use utoipa::{IntoParams, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use super::AppState;
use crate::command::{Once, SuggestionCommand, Target};
use crate::dto::*;
use crate::error::AppError;
use crate::store::ListFilter;
use banli_api::http::{
    ApiPath, ApiQuery, Caller, IfMatch, Posted, Problem, ProblemDocument, json_response,
};

#[derive(OpenApi)]
#[openapi(
    info(title = "banli", description = "Handling deputies' suggestions (人大代表建议办理). Every call needs `Authorization: Bearer <api key>`; errors are RFC 9457 problem documents with a stable `code`; POSTs honour `Idempotency-Key`; changes honour `If-Match` with the `ETag` of the last read."),
    security(("bearer" = [])),
    components(schemas(ProblemDocument)),
    tags(
        (name = "suggestions", description = "Submit, review, assign, and read suggestions"),
        (name = "handling", description = "What agencies do with an assignment, and what deputies and the office do with replies"),
        (name = "directory", description = "Sessions, deputies, agencies and divisions"),
        (name = "calendar", description = "The PRC working-day calendar and deadline arithmetic"),
        (name = "keys", description = "API keys (assigning office only)"),
        (name = "documents", description = "Formal documents: signed reply letters (答复函), opinion letters, evidence, minutes — stored by SHA-256, type told by content"),
        (name = "publication", description = "公开答复: replies published with the personal data of individuals removed — the office's publish and withdraw, and the public pages (no key)"),
        (name = "health", description = "Liveness and readiness"),
    )
)]
#[derive(Debug)]
pub struct ApiDoc;

pub fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(calendar_days))
        .routes(routes!(calendar_deadline))
        .routes(routes!(calendar_recompute))
        .routes(routes!(create_session, list_sessions))
        .routes(routes!(get_session))
        .routes(routes!(create_deputy, list_deputies))
        .routes(routes!(get_deputy))
        .routes(routes!(create_agency, list_agencies))
        .routes(routes!(get_agency))
        .routes(routes!(create_division, list_divisions))
        .routes(routes!(get_approval_chain, put_approval_chain))
        .routes(routes!(create_key, list_keys))
        .routes(routes!(revoke_key))
        .routes(routes!(submit, list_suggestions))
        .routes(routes!(get_suggestion))
        .routes(routes!(upload_document))
        .routes(routes!(own_document))
        .routes(routes!(suggestion_document))
        .routes(routes!(suggestion_events))
        .routes(routes!(start_review))
        .routes(routes!(review))
        .routes(routes!(withdraw))
        .routes(routes!(assign))
        .routes(routes!(dispatch))
        .routes(routes!(record_communication))
        .routes(routes!(request_extension))
        .routes(routes!(decide_extension))
        .routes(routes!(issue_reply))
        .routes(routes!(review_reply))
        .routes(routes!(decide_approval_step))
        .routes(routes!(publish_reply))
        .routes(routes!(public_replies))
        .routes(routes!(public_reply))
        .routes(routes!(public_document))
        .routes(routes!(public_feed))
        .routes(routes!(withdraw_publication))
        .routes(routes!(change_class))
        .routes(routes!(record_feedback))
        .routes(routes!(close_feedback_window))
        .routes(routes!(resolve_escalation))
        .routes(routes!(report_progress))
        .routes(routes!(convert_commitment))
        .routes(routes!(decide_closure))
        .routes(routes!(rate_closure))
}

type ApiResult = Result<Response, Problem>;

fn to_json<T: serde::Serialize>(v: &T) -> Result<String, AppError> {
    serde_json::to_string(v).map_err(|e| AppError::internal(&e))
}

fn ok<T: serde::Serialize>(v: &T) -> ApiResult {
    Ok(json_response(200, to_json(v)?, None))
}

fn suggestion(status: u16, v: &SuggestionView) -> ApiResult {
    Ok(json_response(status, to_json(v)?, Some(v.version)))
}

/// The version inside a stored suggestion response, for the ETag of a replay.
fn version_of(body: &str) -> Option<u64> {
    serde_json::from_str::<serde_json::Value>(body)
        .ok()?
        .get("version")?
        .as_u64()
}

/// A POST through the idempotency store: the first response is kept and replayed.
async fn posted<F, Fut>(
    st: &AppState,
    caller: &Caller,
    hash: &str,
    key: Option<&str>,
    etag: bool,
    f: F,
) -> ApiResult
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<(u16, String), AppError>>,
{
    let (status, body) = st.app.idempotent(&caller.0, key, hash, f).await?;
    let tag = if etag { version_of(&body) } else { None };
    Ok(json_response(status, body, tag))
}

/// A POST that creates something: idempotent, answered 201 with what was created.
async fn create<T, F, Fut, V>(
    st: &AppState,
    caller: &Caller,
    body: Posted<T>,
    etag: bool,
    f: F,
) -> ApiResult
where
    F: FnOnce(T) -> Fut,
    Fut: std::future::Future<Output = Result<V, AppError>>,
    V: serde::Serialize,
{
    let Posted {
        value,
        hash,
        idempotency_key,
    } = body;
    posted(
        st,
        caller,
        &hash,
        idempotency_key.as_deref(),
        etag,
        || async { Ok((201, to_json(&f(value).await?)?)) },
    )
    .await
}

/// A command on a suggestion: idempotent, version-checked, answered with the new state.
async fn command<T>(
    st: &AppState,
    caller: &Caller,
    matched: &MatchedPath,
    id: Uuid,
    if_match: IfMatch,
    body: Posted<T>,
    make: impl FnOnce(T) -> SuggestionCommand,
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
    let target = Target {
        suggestion_id: id,
        expected_version: if_match.0,
        once: Once {
            key: idempotency_key,
            hash,
        },
    };
    let (status, body) = st.app.command(&caller.0, target, cmd).await?;
    let tag = version_of(&body);
    Ok(json_response(status, body, tag))
}

// ---- public pages (no key) ----

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct PublicQuery {
    /// Only the replies of this agency.
    agency_id: Option<Uuid>,
    /// 1–100, default 20.
    #[param(minimum = 1, maximum = 100)]
    page_size: Option<u32>,
    /// `next_page_token` of the previous page.
    page_token: Option<String>,
}

/// 公开答复: published replies, newest first, the personal data of individuals removed. No key.
#[utoipa::path(get, path = "/v1/public/replies", tag = "publication", security(), params(PublicQuery),
    responses((status = 200, body = crate::app::PublicReplyPage), (status = 400, body = ProblemDocument)))]
async fn public_replies(
    State(st): State<AppState>,
    ApiQuery(q): ApiQuery<PublicQuery>,
) -> ApiResult {
    ok(&st
        .app
        .public_replies(q.page_token.as_deref(), q.agency_id, q.page_size)
        .await?)
}

/// One published reply. No key; 404 when it is not published (or was withdrawn).
#[utoipa::path(get, path = "/v1/public/replies/{reply_id}", tag = "publication", security(), params(("reply_id" = Uuid, Path)),
    responses((status = 200, body = crate::app::PublicReplyView), (status = 404, body = ProblemDocument)))]
async fn public_reply(State(st): State<AppState>, ApiPath(id): ApiPath<Uuid>) -> ApiResult {
    ok(&st.app.public_reply(id).await?)
}

/// The published document of a reply: a printable HTML page. No key.
#[utoipa::path(get, path = "/v1/public/replies/{reply_id}/document", tag = "publication", security(), params(("reply_id" = Uuid, Path)),
    responses((status = 200, content_type = "text/html", description = "the published document"), (status = 404, body = ProblemDocument)))]
async fn public_document(State(st): State<AppState>, ApiPath(id): ApiPath<Uuid>) -> ApiResult {
    let v = st.app.public_reply(id).await?;
    Ok((
        [(axum::http::header::CONTENT_TYPE, "text/html; charset=utf-8")],
        crate::app::document_html(&v),
    )
        .into_response())
}

/// The newest published replies as an Atom feed (RFC 4287). No key.
#[utoipa::path(get, path = "/v1/public/feed.atom", tag = "publication", security(),
    responses((status = 200, content_type = "application/atom+xml", description = "the feed")))]
async fn public_feed(State(st): State<AppState>) -> ApiResult {
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "application/atom+xml; charset=utf-8",
        )],
        st.app.public_feed().await?,
    )
        .into_response())
}

// ---- health ----

/// Liveness: the process answers.
#[utoipa::path(get, path = "/healthz", tag = "health", security(), responses((status = 200, description = "alive")))]
async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: the database answers.
#[utoipa::path(get, path = "/readyz", tag = "health", security(), responses((status = 200, description = "ready"), (status = 503, body = ProblemDocument)))]
async fn readyz(State(st): State<AppState>) -> ApiResult {
    st.app.store().ping().await.map_err(|_| {
        AppError::new(
            crate::error::ErrorCode::Unavailable,
            "the database does not answer",
        )
    })?;
    Ok("ready".into_response())
}

// ---- calendar ----

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct DaysQuery {
    /// First day, `YYYY-MM-DD`.
    from: Date,
    /// Last day, `YYYY-MM-DD` (at most two years after `from`).
    to: Date,
}

/// Working days and rest days, with holiday and make-up-day notes.
#[utoipa::path(get, path = "/v1/calendar/days", tag = "calendar", params(DaysQuery),
    responses((status = 200, body = CalendarDays), (status = 400, body = ProblemDocument), (status = 422, body = ProblemDocument)))]
async fn calendar_days(
    State(st): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<DaysQuery>,
) -> ApiResult {
    ok(&st.app.calendar_days(&caller.0, q.from, q.to)?)
}

/// A due date from a start date and a duration, with its trace.
#[utoipa::path(post, path = "/v1/calendar/deadline", tag = "calendar", request_body = DeadlineRequest,
    responses((status = 200, body = DeadlineView), (status = 400, body = ProblemDocument), (status = 422, body = ProblemDocument)))]
async fn calendar_deadline(
    State(st): State<AppState>,
    caller: Caller,
    body: Posted<DeadlineRequest>,
) -> ApiResult {
    ok(&st.app.compute_deadline(&caller.0, &body.value)?)
}

/// Recompute every open deadline against the calendar data in force (after newer data was
/// loaded; the service also does it once at start for data it has not seen). Each suggestion
/// whose dates move gets a `deadlines_recomputed` event with the old and the new dates.
/// Assigning office.
#[utoipa::path(post, path = "/v1/calendar/recompute", tag = "calendar",
    responses((status = 200, body = Recomputation), (status = 403, body = ProblemDocument)))]
async fn calendar_recompute(State(st): State<AppState>, caller: Caller) -> ApiResult {
    ok(&st.app.recompute_deadlines(&caller.0).await?)
}

// ---- directory ----

/// Create a session (届次/会次). Assigning office.
#[utoipa::path(post, path = "/v1/sessions", tag = "directory", request_body = CreateSession,
    responses((status = 201, body = SessionView), (status = 403, body = ProblemDocument), (status = 409, body = ProblemDocument), (status = 422, body = ProblemDocument)))]
async fn create_session(
    State(st): State<AppState>,
    caller: Caller,
    body: Posted<CreateSession>,
) -> ApiResult {
    create(&st, &caller, body, false, |v| {
        st.app.create_session(&caller.0, v)
    })
    .await
}

/// List sessions.
#[utoipa::path(get, path = "/v1/sessions", tag = "directory", responses((status = 200, body = Vec<SessionView>)))]
async fn list_sessions(State(st): State<AppState>, caller: Caller) -> ApiResult {
    ok(&st.app.list_sessions(&caller.0).await?)
}

/// One session.
#[utoipa::path(get, path = "/v1/sessions/{id}", tag = "directory", params(("id" = Uuid, Path)),
    responses((status = 200, body = SessionView), (status = 404, body = ProblemDocument)))]
async fn get_session(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult {
    ok(&st.app.get_session(&caller.0, id).await?)
}

/// Register a deputy (代表). Assigning office.
#[utoipa::path(post, path = "/v1/deputies", tag = "directory", request_body = CreateDeputy,
    responses((status = 201, body = DeputyView), (status = 403, body = ProblemDocument), (status = 422, body = ProblemDocument)))]
async fn create_deputy(
    State(st): State<AppState>,
    caller: Caller,
    body: Posted<CreateDeputy>,
) -> ApiResult {
    create(&st, &caller, body, false, |v| {
        st.app.create_deputy(&caller.0, v)
    })
    .await
}

/// Every deputy, by name (the office and inspectors: the register form picks the lead deputy).
#[utoipa::path(get, path = "/v1/deputies", tag = "directory",
    responses((status = 200, body = Vec<DeputyView>), (status = 403, body = ProblemDocument)))]
async fn list_deputies(State(st): State<AppState>, caller: Caller) -> ApiResult {
    ok(&st.app.list_deputies(&caller.0).await?)
}

/// One deputy. A deputy's key reads only its own record.
#[utoipa::path(get, path = "/v1/deputies/{id}", tag = "directory", params(("id" = Uuid, Path)),
    responses((status = 200, body = DeputyView), (status = 404, body = ProblemDocument)))]
async fn get_deputy(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult {
    ok(&st.app.get_deputy(&caller.0, id).await?)
}

/// Register an agency (单位). Assigning office.
#[utoipa::path(post, path = "/v1/agencies", tag = "directory", request_body = CreateAgency,
    responses((status = 201, body = AgencyView), (status = 403, body = ProblemDocument), (status = 409, body = ProblemDocument)))]
async fn create_agency(
    State(st): State<AppState>,
    caller: Caller,
    body: Posted<CreateAgency>,
) -> ApiResult {
    create(&st, &caller, body, false, |v| {
        st.app.create_agency(&caller.0, v)
    })
    .await
}

/// The agency directory, the assigning office included.
#[utoipa::path(get, path = "/v1/agencies", tag = "directory", responses((status = 200, body = Vec<AgencyView>)))]
async fn list_agencies(State(st): State<AppState>, caller: Caller) -> ApiResult {
    ok(&st.app.list_agencies(&caller.0).await?)
}

/// One agency.
#[utoipa::path(get, path = "/v1/agencies/{id}", tag = "directory", params(("id" = Uuid, Path)),
    responses((status = 200, body = AgencyView), (status = 404, body = ProblemDocument)))]
async fn get_agency(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult {
    ok(&st.app.get_agency(&caller.0, id).await?)
}

/// Add a division (处室). Assigning office, or the agency's own agency_admin.
#[utoipa::path(post, path = "/v1/agencies/{id}/divisions", tag = "directory", params(("id" = Uuid, Path)), request_body = CreateDivision,
    responses((status = 201, body = DivisionView), (status = 403, body = ProblemDocument), (status = 404, body = ProblemDocument), (status = 409, body = ProblemDocument)))]
async fn create_division(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    body: Posted<CreateDivision>,
) -> ApiResult {
    create(&st, &caller, body, false, |v| {
        st.app.create_division(&caller.0, id, v)
    })
    .await
}

/// An agency's divisions.
#[utoipa::path(get, path = "/v1/agencies/{id}/divisions", tag = "directory", params(("id" = Uuid, Path)),
    responses((status = 200, body = Vec<DivisionView>), (status = 404, body = ProblemDocument)))]
async fn list_divisions(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult {
    ok(&st.app.list_divisions(&caller.0, id).await?)
}

/// An agency's approval chain for its replies (内部审批): the positions that sign a draft off.
#[utoipa::path(get, path = "/v1/agencies/{id}/approval-chain", tag = "directory", params(("id" = Uuid, Path)),
    responses((status = 200, body = ApprovalChainView), (status = 404, body = ProblemDocument)))]
async fn get_approval_chain(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult {
    ok(&st.app.approval_chain(&caller.0, id).await?)
}

/// Set (replace) an agency's approval chain: its replies then go through the steps, each
/// decided by a key holding the step's position, before they are issued. Drafts already in
/// review keep their steps. Assigning office, or the agency's own agency_admin.
#[utoipa::path(put, path = "/v1/agencies/{id}/approval-chain", tag = "directory", params(("id" = Uuid, Path)), request_body = ApprovalChainBody,
    responses((status = 200, body = ApprovalChainView), (status = 403, body = ProblemDocument), (status = 404, body = ProblemDocument), (status = 422, body = ProblemDocument)))]
async fn put_approval_chain(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    body: Posted<ApprovalChainBody>,
) -> ApiResult {
    ok(&st.app.set_approval_chain(&caller.0, id, body.value).await?)
}

// ---- keys ----

/// Create an API key. The token is in the response once and never again.
#[utoipa::path(post, path = "/v1/admin/keys", tag = "keys", request_body = CreateKey,
    responses((status = 201, body = CreatedKey), (status = 403, body = ProblemDocument), (status = 404, body = ProblemDocument), (status = 422, body = ProblemDocument)))]
async fn create_key(
    State(st): State<AppState>,
    caller: Caller,
    body: Posted<CreateKey>,
) -> ApiResult {
    // Not through the idempotency store: a replay would have to keep the token, which is shown
    // once and never stored.
    Ok(json_response(
        201,
        to_json(&st.app.create_key(&caller.0, body.value).await?)?,
        None,
    ))
}

/// Every key (without tokens).
#[utoipa::path(get, path = "/v1/admin/keys", tag = "keys", responses((status = 200, body = Vec<KeyView>), (status = 403, body = ProblemDocument)))]
async fn list_keys(State(st): State<AppState>, caller: Caller) -> ApiResult {
    ok(&st.app.list_keys(&caller.0).await?)
}

/// Revoke a key at once.
#[utoipa::path(delete, path = "/v1/admin/keys/{id}", tag = "keys", params(("id" = Uuid, Path)),
    responses((status = 200, body = KeyView), (status = 403, body = ProblemDocument), (status = 404, body = ProblemDocument)))]
async fn revoke_key(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult {
    ok(&st.app.revoke_key(&caller.0, id).await?)
}

// ---- suggestions ----

/// Submit a suggestion (lead deputy), or register one on a deputy's behalf (assigning office).
#[utoipa::path(post, path = "/v1/suggestions", tag = "suggestions", request_body = SubmitSuggestion,
    params(("Idempotency-Key" = Option<String>, Header, nullable = false, description = "Replays return the first response", pattern = "^[!-~]{1,255}$")),
    responses((status = 201, body = SuggestionView, headers(("ETag" = String))), (status = 400, body = ProblemDocument), (status = 403, body = ProblemDocument),
        (status = 404, body = ProblemDocument), (status = 409, body = ProblemDocument), (status = 422, body = ProblemDocument)))]
async fn submit(
    State(st): State<AppState>,
    caller: Caller,
    body: Posted<SubmitSuggestion>,
) -> ApiResult {
    create(&st, &caller, body, true, |v| st.app.submit(&caller.0, v)).await
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    session_id: Option<Uuid>,
    /// A suggestion state, e.g. `assigned`.
    state: Option<String>,
    /// Items assigned to this agency (agency keys: their own, always).
    agency_id: Option<Uuid>,
    /// With `agency_id`: only items where it has this role (`lead`, `co`, `separate`, `sole`).
    #[param(value_type = Option<crate::dto::doc::UnitRole>)]
    role: Option<UnitRole>,
    /// Only items with a reply past due.
    #[serde(default)]
    overdue: bool,
    /// Only key-supervised items.
    #[serde(default)]
    key: bool,
    /// 1–200, default 50.
    #[param(minimum = 1, maximum = 200)]
    page_size: Option<u32>,
    /// `next_page_token` of the previous page.
    page_token: Option<String>,
}

/// The suggestions the caller is party to, filtered, in submission order.
#[utoipa::path(get, path = "/v1/suggestions", tag = "suggestions", params(ListQuery),
    responses((status = 200, body = SuggestionPage), (status = 400, body = ProblemDocument), (status = 403, body = ProblemDocument)))]
async fn list_suggestions(
    State(st): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> ApiResult {
    if let Some(size) = q.page_size
        && !(1..=crate::app::MAX_PAGE).contains(&size)
    {
        return Err(AppError::malformed("page_size must be between 1 and 200").into());
    }
    let filter = ListFilter {
        session_id: q.session_id.map(SessionId),
        state: q.state,
        agency_id: q.agency_id.map(AgencyId),
        role: q.role,
        overdue_on: q.overdue.then(|| st.app.today()),
        key_only: q.key,
        after: None,
        limit: q.page_size.unwrap_or(50),
        ..Default::default()
    };
    ok(&st
        .app
        .list(&caller.0, filter, q.page_token.as_deref())
        .await?)
}

/// One suggestion with its assignments, deadlines (each with its trace), replies and feedback.
#[utoipa::path(get, path = "/v1/suggestions/{id}", tag = "suggestions", params(("id" = Uuid, Path)),
    responses((status = 200, body = SuggestionView, headers(("ETag" = String))), (status = 404, body = ProblemDocument)))]
async fn get_suggestion(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult {
    suggestion(200, &st.app.get(&caller.0, id).await?)
}

/// Uploads a document (PDF, OFD, DOCX, PNG, JPEG, TIFF or GIF, told by its content; at most
/// `max_document_bytes`, 20 MiB by default) as the caller's agency's (or the assigning
/// office's): `multipart/form-data` with the file in a part named `file`, or the file itself as
/// the body with its name in `?name=`. The answer's `sha256` is what a reply (`letter`,
/// `attachments`), a conversion (`documents`), an opinion or a consultation names to attach it;
/// only the agency that uploaded a document may attach it. The same content uploaded again is
/// stored once (200 instead of 201), so a retry is harmless.
#[utoipa::path(post, path = "/v1/documents", tag = "documents",
    params(("name" = Option<String>, Query, description = "The file name, for a body that is the file itself")),
    request_body(description = "The file: `multipart/form-data` (part `file`) or the bytes themselves", content(
        (Vec<u8> = "multipart/form-data"), (Vec<u8> = "application/pdf"), (Vec<u8> = "application/octet-stream"))),
    responses((status = 201, body = banli_documents::access::Uploaded), (status = 200, body = banli_documents::access::Uploaded, description = "Uploaded by this agency before"),
        (status = 413, body = ProblemDocument), (status = 415, body = ProblemDocument, description = "The content is not an allowed type; the detail names what it is")))]
async fn upload_document(
    State(st): State<AppState>,
    caller: Caller,
    req: axum::extract::Request,
) -> ApiResult {
    let docs = st
        .app
        .documents()
        .ok_or_else(banli_documents::access::unavailable)?;
    match banli_documents::http::upload(docs, &caller.0, req).await {
        Ok(up) => Ok(banli_documents::http::uploaded_response(&up)),
        Err(e) => Ok(banli_documents::http::refused(docs, &caller.0, e)),
    }
}

/// Downloads one of the caller's own uploads (its agency's, or the office's).
#[utoipa::path(get, path = "/v1/documents/{sha256}", tag = "documents", params(("sha256" = String, Path)),
    responses((status = 200, description = "The document, with `Repr-Digest: sha-256=…`", content_type = "application/octet-stream"), (status = 404, body = ProblemDocument)))]
async fn own_document(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(sha256): ApiPath<String>,
) -> ApiResult {
    let doc = st.app.own_document(&caller.0, &sha256).await?;
    download(&st, &doc).await
}

/// Downloads a document attached to the suggestion's record (a reply's letter, an opinion's,
/// conversion evidence, a consultation's minutes), for whoever reads that record: 404 for
/// anyone else, as for a document that does not exist.
#[utoipa::path(get, path = "/v1/suggestions/{id}/documents/{sha256}", tag = "documents", params(("id" = Uuid, Path), ("sha256" = String, Path)),
    responses((status = 200, description = "The document, with `Repr-Digest: sha-256=…`", content_type = "application/octet-stream"), (status = 404, body = ProblemDocument)))]
async fn suggestion_document(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath((id, sha256)): ApiPath<(Uuid, String)>,
) -> ApiResult {
    let doc = st.app.suggestion_document(&caller.0, id, &sha256).await?;
    download(&st, &doc).await
}

async fn download(st: &AppState, doc: &banli_domain::document::DocumentRef) -> ApiResult {
    let docs = st
        .app
        .documents()
        .ok_or_else(banli_documents::access::unavailable)?;
    Ok(banli_documents::http::download(docs, doc).await?)
}

/// The suggestion's events, in order.
#[utoipa::path(get, path = "/v1/suggestions/{id}/events", tag = "suggestions", params(("id" = Uuid, Path)),
    responses((status = 200, body = Vec<Object>), (status = 404, body = ProblemDocument)))]
async fn suggestion_events(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult {
    ok(&st.app.events(&caller.0, id).await?)
}

macro_rules! command_route {
    ($(#[$doc:meta])* $name:ident, $path:literal, $tag:literal, $body:ty, |$v:ident| $build:expr) => {
        $(#[$doc])*
        #[utoipa::path(post, path = $path, tag = $tag, request_body = $body,
            params(("id" = Uuid, Path), ("If-Match" = Option<String>, Header, nullable = false, description = "The ETag of the version this change is based on", pattern = r#"^(\*|(W/)?"v[0-9]{1,19}")$"#),
                ("Idempotency-Key" = Option<String>, Header, nullable = false, description = "Replays return the first response", pattern = "^[!-~]{1,255}$")),
            responses((status = 200, body = SuggestionView, headers(("ETag" = String))), (status = 400, body = ProblemDocument), (status = 401, body = ProblemDocument),
                (status = 403, body = ProblemDocument), (status = 404, body = ProblemDocument), (status = 409, body = ProblemDocument),
                (status = 412, body = ProblemDocument), (status = 413, body = ProblemDocument), (status = 422, body = ProblemDocument)))]
        async fn $name(State(st): State<AppState>, caller: Caller, matched: MatchedPath, ApiPath(id): ApiPath<Uuid>, if_match: IfMatch, body: Posted<$body>) -> ApiResult {
            #[allow(unused_variables)]
            command(&st, &caller, &matched, id, if_match, body, |$v: $body| $build).await
        }
    };
    ($(#[$doc:meta])* $name:ident, $path:literal, $tag:literal, $body:ty, $sub:ident = $subname:literal, |$v:ident| $build:expr) => {
        $(#[$doc])*
        #[utoipa::path(post, path = $path, tag = $tag, request_body = $body,
            params(("id" = Uuid, Path), ($subname = Uuid, Path), ("If-Match" = Option<String>, Header, nullable = false, description = "The ETag of the version this change is based on", pattern = r#"^(\*|(W/)?"v[0-9]{1,19}")$"#),
                ("Idempotency-Key" = Option<String>, Header, nullable = false, description = "Replays return the first response", pattern = "^[!-~]{1,255}$")),
            responses((status = 200, body = SuggestionView, headers(("ETag" = String))), (status = 400, body = ProblemDocument), (status = 401, body = ProblemDocument),
                (status = 403, body = ProblemDocument), (status = 404, body = ProblemDocument), (status = 409, body = ProblemDocument),
                (status = 412, body = ProblemDocument), (status = 413, body = ProblemDocument), (status = 422, body = ProblemDocument)))]
        async fn $name(State(st): State<AppState>, caller: Caller, matched: MatchedPath, ApiPath((id, $sub)): ApiPath<(Uuid, Uuid)>, if_match: IfMatch, body: Posted<$body>) -> ApiResult {
            #[allow(unused_variables)]
            command(&st, &caller, &matched, id, if_match, body, |$v: $body| $build).await
        }
    };
}

/// An empty JSON object, for commands without fields.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

command_route!(
    /// Start the review. Assigning office.
    start_review, "/v1/suggestions/{id}/start-review", "suggestions", Empty, |v| SuggestionCommand::StartReview {});
command_route!(
    /// Accept (立案), not accept, or convert to a letter. Assigning office.
    review, "/v1/suggestions/{id}/review", "suggestions", Review, |v| SuggestionCommand::Review { body: v });
command_route!(
    /// Withdraw in writing (lead deputy, or the office recording the request). Only before closing.
    withdraw, "/v1/suggestions/{id}/withdraw", "suggestions", Reason, |v| SuggestionCommand::Withdraw { body: v });
command_route!(
    /// Assign one or more units: one lead with co-handlers, one sole unit, or separate units.
    assign, "/v1/suggestions/{id}/assignments", "suggestions", Assign, |v| SuggestionCommand::Assign { body: v });
command_route!(
    /// Dispatch to a division of the unit with the responsible leader (and, for key items, the
    /// leading official 领办). The unit's agency_admin or leader.
    dispatch, "/v1/suggestions/{id}/assignments/{assignment_id}/dispatch", "handling", DispatchBody, assignment_id = "assignment_id",
    |v| SuggestionCommand::Dispatch { assignment_id, body: v });
command_route!(
    /// Record a communication with deputies (沟通); not dated in the future.
    record_communication, "/v1/suggestions/{id}/communications", "handling", CommunicationBody, |v| SuggestionCommand::RecordCommunication { body: v });
command_route!(
    /// Ask to move the reply date (at most the profile's cap from the assignment).
    request_extension, "/v1/suggestions/{id}/assignments/{assignment_id}/extension-request", "handling", ExtensionRequestBody, assignment_id = "assignment_id",
    |v| SuggestionCommand::RequestExtension { assignment_id, body: v });
command_route!(
    /// Approve or reject the pending extension. Assigning office.
    decide_extension, "/v1/suggestions/{id}/assignments/{assignment_id}/extension-decision", "handling", Decision, assignment_id = "assignment_id",
    |v| SuggestionCommand::DecideExtension { assignment_id, body: v });
command_route!(
    /// Issue a reply (答复) behind the gates: a communication with the lead deputy, every
    /// co-opinion in or waived, an authorised signer; class B replies list their commitments.
    issue_reply, "/v1/suggestions/{id}/replies", "handling", ReplyBody, |v| SuggestionCommand::IssueReply { body: v });
command_route!(
    /// 内部审批: a step of the unit's approval chain approves its drafted reply (the last
    /// step's approval issues it, dated today, under every check of the reply gate) or returns
    /// it to the drafter with a comment. By a key of the unit holding the step's position
    /// (`position` of the key); 403 for anyone else, 409 for a step decided already.
    decide_approval_step, "/v1/suggestions/{id}/assignments/{assignment_id}/approval", "handling", ApprovalDecisionBody, assignment_id = "assignment_id",
    |v| SuggestionCommand::DecideApprovalStep { assignment_id, body: v });
command_route!(
    /// 答复审查: accept a reply awaiting the office's review, or return it for re-handling
    /// (驳回重办) with reasons — the unit's reply deadline moves to the profile's
    /// `returned_reply` from today. Within the profile's `office_review` window of the reply;
    /// after it the platform accepts the reply. Assigning office.
    review_reply, "/v1/suggestions/{id}/replies/{reply_id}/review", "handling", ReplyReviewBody, reply_id = "reply_id",
    |v| SuggestionCommand::ReviewReply { reply_id, body: v });
command_route!(
    /// 公开答复: publish a reply now (before its `publication_due`), the personal data of
    /// individuals removed; `summary` disclosure publishes the record without the text. 422 for
    /// a confidential item, `none` disclosure or a supplementary reply; 409 when published
    /// already. Assigning office.
    publish_reply, "/v1/suggestions/{id}/replies/{reply_id}/publish", "publication", PublishBody, reply_id = "reply_id",
    |v| SuggestionCommand::PublishReply { reply_id, body: v });
command_route!(
    /// Withdraw a published reply from the public pages, with the reason (kept in the record).
    /// A withdrawn reply is not published again automatically. Assigning office.
    withdraw_publication, "/v1/suggestions/{id}/replies/{reply_id}/publication/withdraw", "publication", Reason, reply_id = "reply_id",
    |v| SuggestionCommand::WithdrawPublication { reply_id, body: v });
command_route!(
    /// Change the class of the reply (the history is kept). Assigning office.
    change_class, "/v1/suggestions/{id}/class", "handling", ClassChangeBody, |v| SuggestionCommand::ChangeClass { body: v });
command_route!(
    /// A deputy's rating of the reply (代表意见); a dissatisfied rating reopens the item.
    record_feedback, "/v1/suggestions/{id}/feedback", "handling", FeedbackBody, |v| SuggestionCommand::RecordFeedback { body: v });
command_route!(
    /// Evaluate after the feedback window has passed. Assigning office.
    close_feedback_window, "/v1/suggestions/{id}/feedback-window/close", "handling", Empty, |v| SuggestionCommand::CloseFeedbackWindow {});
command_route!(
    /// Record how an escalation was resolved (consultation meeting, special explanation). Assigning office.
    resolve_escalation, "/v1/suggestions/{id}/escalation/resolve", "handling", OutcomeBody, |v| SuggestionCommand::ResolveEscalation { body: v });
command_route!(
    /// Report progress on a commitment (append-only). The owner unit.
    report_progress, "/v1/suggestions/{id}/commitments/{commitment_id}/progress", "handling", ProgressBody, commitment_id = "commitment_id",
    |v| SuggestionCommand::ReportProgress { commitment_id, body: v });
command_route!(
    /// Convert a commitment: done, with evidence. The owner unit's agency_admin or leader.
    convert_commitment, "/v1/suggestions/{id}/commitments/{commitment_id}/convert", "handling", EvidenceBody, commitment_id = "commitment_id",
    |v| SuggestionCommand::ConvertCommitment { commitment_id, body: v });
command_route!(
    /// Confirm or return the unit's closure request (its supplementary reply once every
    /// commitment is converted with evidence): confirmed, the item closes and a B → A conversion
    /// takes effect; returned, the unit is told why and the commitments named are open again.
    /// Assigning office.
    decide_closure, "/v1/suggestions/{id}/closure/decision", "handling", ClosureDecisionBody, |v| SuggestionCommand::DecideClosure { body: v });
command_route!(
    /// A deputy's rating of a confirmed closure (B → A conversion); once per deputy.
    rate_closure, "/v1/suggestions/{id}/closure/ratings", "handling", ClosureRatingBody, |v| SuggestionCommand::RateClosure { body: v });
