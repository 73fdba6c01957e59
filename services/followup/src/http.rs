//! REST: `/v1/followup/…`, `/v1/metrics`, `/v1/ledger`, `/v1/reports` — what is overdue (late,
//! very late), what falls due soon, the alerts that went out, notices, metrics, the ledger, the
//! annual report and stage plans. The assigning office and auditors see every agency; an
//! agency's keys see their own agency. Handlers parse and answer; `crate::app` decides.

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use banli_api::http::{
    ApiPath, ApiQuery, ApiState, Caller, IfMatch, Posted, Problem, ProblemDocument, json_response,
};
use banli_api::{AppError, Principal};
use banli_domain::ids::AgencyId;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::app::AppState;
use crate::app::{
    AlertsParams, BreakdownParams, CircularParams, DueSoonParams, LedgerParams, MetricsParams,
    NoticesParams, OverdueItem, OverdueParams, ReportParams, StagePlanBody, StagePlanParams,
    agency_name, alerts_of, annual_report_of, circular_of, due_soon_of, internal, ledger_of,
    metrics_of, notices_of, overdue_of, plan_of, scope, stage_plan_of, to_json,
};
use crate::store::{AlertRow, DeadlineRow};

pub use crate::store::MAX_ROWS;

#[derive(OpenApi)]
#[openapi(tags((name = "followup", description = "Follow-up (跟踪督办): overdue and due-soon deadlines per agency, reminders and overdue flags")))]
#[derive(Debug)]
pub struct ApiDoc;

impl ApiState for AppState {
    async fn authenticate(&self, token: &str) -> Result<Principal, AppError> {
        (self.auth)(token.to_owned()).await
    }

    /// A notice may name a unit's every open item (a few hundred ids).
    fn body_limit(&self) -> usize {
        64 * 1024
    }
}

/// The paths this process answers for the follow-up service and its audit log (REST prefixes
/// and gRPC services' paths): a request carrying a consistency token waits on its gate.
pub const PATHS: &[&str] = &[
    "/v1/followup",
    "/v1/ledger",
    "/v1/metrics",
    "/v1/reports",
    "/v1/topics",
    "/v1/audit",
    "/banli.followup.v1.",
    "/banli.audit.v1.",
];

pub fn api(state: AppState) -> (Router, utoipa::openapi::OpenApi) {
    let (router, openapi) = routes().split_for_parts();
    (router.with_state(state), openapi)
}

/// This service's OpenAPI document (the audit log's is its own): every path in it starts with
/// one of [`PATHS`].
pub fn openapi() -> utoipa::openapi::OpenApi {
    routes().split_for_parts().1
}

fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(overdue))
        .routes(routes!(due_soon))
        .routes(routes!(alerts))
        .routes(routes!(issue_notice, list_notices))
        .routes(routes!(get_notice))
        .routes(routes!(acknowledge_notice))
        .routes(routes!(answer_notice))
        .routes(routes!(notice_document))
        .routes(routes!(metrics))
        .routes(routes!(metrics_breakdown))
        .routes(routes!(ledger))
        .routes(routes!(annual_report))
        .routes(routes!(export_assignments))
        .routes(routes!(set_stage_plan, get_stage_plan))
        .routes(routes!(stage_circular))
        .routes(routes!(create_topic, list_topics))
        .routes(routes!(get_topic))
        .routes(routes!(link_topic_item))
        .routes(routes!(unlink_topic_item))
}

type ApiResult = Result<Response, Problem>;

#[derive(Debug, Serialize, ToSchema)]
struct OverdueList {
    items: Vec<OverdueItem>,
}

/// Deadlines past due and not met, with their tier (late; very late past the profile's
/// threshold), most overdue first.
#[utoipa::path(get, path = "/v1/followup/overdue", tag = "followup", params(OverdueParams),
    responses((status = 200, body = OverdueList), (status = 400, body = ProblemDocument), (status = 403, body = ProblemDocument)))]
async fn overdue(
    State(st): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<OverdueParams>,
) -> ApiResult {
    let items = overdue_of(&st, &caller.0, q).await?;
    Ok(json_response(200, to_json(&OverdueList { items })?, None))
}

#[derive(Debug, Serialize, ToSchema)]
struct DeadlineList {
    items: Vec<DeadlineRow>,
}

/// Deadlines not met that fall due from today to `within_days` ahead, soonest first.
#[utoipa::path(get, path = "/v1/followup/due-soon", tag = "followup", params(DueSoonParams),
    responses((status = 200, body = DeadlineList), (status = 400, body = ProblemDocument), (status = 403, body = ProblemDocument)))]
async fn due_soon(
    State(st): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<DueSoonParams>,
) -> ApiResult {
    let items = due_soon_of(&st, &caller.0, q).await?;
    Ok(json_response(200, to_json(&DeadlineList { items })?, None))
}

#[derive(Debug, Serialize, ToSchema)]
struct AlertList {
    items: Vec<AlertRow>,
}

/// Reminders and overdue flags that went out, newest first.
#[utoipa::path(get, path = "/v1/followup/alerts", tag = "followup", params(AlertsParams),
    responses((status = 200, body = AlertList), (status = 400, body = ProblemDocument), (status = 403, body = ProblemDocument)))]
async fn alerts(
    State(st): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<AlertsParams>,
) -> ApiResult {
    let items = alerts_of(&st, &caller.0, q).await?;
    Ok(json_response(200, to_json(&AlertList { items })?, None))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct IssueNotice {
    /// The unit notified: it must hold an assignment on every suggestion named.
    target_agency_id: Uuid,
    suggestion_ids: Vec<Uuid>,
    /// `reminder`, `notice`, `special_inspection`, `circular`, `on_site_supervision`,
    /// `assessment_deduction`.
    #[schema(value_type = String)]
    level: banli_domain::supervision::Level,
    /// What is to be done.
    body: String,
    /// When the written response is due.
    #[schema(value_type = String, format = Date)]
    response_due: time::Date,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct Empty {}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct AnswerNotice {
    /// The written response.
    response: String,
    /// The SHA-256s of documents the unit uploaded (`POST /v1/documents`) that the response
    /// encloses: its signed response letter, evidence.
    #[serde(default)]
    documents: Vec<String>,
}

async fn notice_command(
    st: &AppState,
    caller: &Caller,
    if_match: IfMatch,
    hash: String,
    key: Option<String>,
    cmd: crate::notices::Command,
) -> ApiResult {
    let once = banli_api::Once { key, hash };
    let (code, body) = crate::notices::run(
        &st.store,
        st.documents.as_ref(),
        &caller.0,
        once,
        if_match.0,
        cmd,
        st.clock.today(),
    )
    .await?;
    let etag = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("version")?.as_u64());
    Ok(json_response(code, body, etag))
}

/// Issues a supervision notice (督办通知) to a unit handling the items: by the assigning office,
/// or by an agency's office to its own divisions. Its written response is due by
/// `response_due`; unanswered after that it is escalated one rung up. Recorded in the audit log.
#[utoipa::path(post, path = "/v1/followup/notices", tag = "followup", request_body = IssueNotice,
    responses((status = 201, body = Object), (status = 403, body = ProblemDocument), (status = 422, body = ProblemDocument)))]
async fn issue_notice(
    State(st): State<AppState>,
    caller: Caller,
    body: Posted<IssueNotice>,
) -> ApiResult {
    let Posted {
        value,
        hash,
        idempotency_key,
    } = body;
    let cmd = crate::notices::Command::Issue {
        target: AgencyId(value.target_agency_id),
        suggestions: value
            .suggestion_ids
            .into_iter()
            .map(banli_domain::ids::SuggestionId)
            .collect(),
        level: value.level,
        body: value.body,
        response_due: value.response_due,
    };
    notice_command(&st, &caller, IfMatch(None), hash, idempotency_key, cmd).await
}

/// A notice, for the office, auditors, its issuer and the unit notified.
#[utoipa::path(get, path = "/v1/followup/notices/{notice_id}", tag = "followup", params(("notice_id" = Uuid, Path)),
    responses((status = 200, body = Object, headers(("ETag" = String))), (status = 404, body = ProblemDocument)))]
async fn get_notice(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult {
    let n = crate::notices::get(&st.store, &caller.0, banli_domain::ids::NoticeId(id)).await?;
    Ok(json_response(
        200,
        crate::notices::notice_json(&n)?,
        Some(n.version),
    ))
}

/// A document a notice's response encloses, for whoever reads the notice (the same 404 as for
/// a document that does not exist otherwise), with its hash in `Repr-Digest`.
#[utoipa::path(get, path = "/v1/followup/notices/{notice_id}/documents/{sha256}", tag = "followup",
    params(("notice_id" = Uuid, Path), ("sha256" = String, Path)),
    responses((status = 200, description = "The document", content_type = "application/octet-stream"), (status = 404, body = ProblemDocument)))]
async fn notice_document(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath((id, sha256)): ApiPath<(Uuid, String)>,
) -> ApiResult {
    let n = crate::notices::get(&st.store, &caller.0, banli_domain::ids::NoticeId(id)).await?;
    let doc = n
        .notice
        .response_documents
        .iter()
        .find(|d| d.sha256 == sha256)
        .ok_or_else(|| banli_documents::access::not_found(&sha256))?;
    let docs = st
        .documents
        .as_ref()
        .ok_or_else(banli_documents::access::unavailable)?;
    Ok(banli_documents::http::download(docs, doc).await?)
}

/// The notified unit acknowledges the notice.
#[utoipa::path(post, path = "/v1/followup/notices/{notice_id}/acknowledge", tag = "followup", params(("notice_id" = Uuid, Path)), request_body = Object,
    responses((status = 200, body = Object), (status = 403, body = ProblemDocument), (status = 409, body = ProblemDocument), (status = 412, body = ProblemDocument)))]
async fn acknowledge_notice(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    if_match: IfMatch,
    body: Posted<Empty>,
) -> ApiResult {
    let cmd = crate::notices::Command::Acknowledge(banli_domain::ids::NoticeId(id));
    notice_command(&st, &caller, if_match, body.hash, body.idempotency_key, cmd).await
}

/// The notified unit's office or leader answers in writing.
#[utoipa::path(post, path = "/v1/followup/notices/{notice_id}/response", tag = "followup", params(("notice_id" = Uuid, Path)), request_body = AnswerNotice,
    responses((status = 200, body = Object), (status = 403, body = ProblemDocument), (status = 409, body = ProblemDocument), (status = 422, body = ProblemDocument)))]
async fn answer_notice(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    if_match: IfMatch,
    body: Posted<AnswerNotice>,
) -> ApiResult {
    let Posted {
        value,
        hash,
        idempotency_key,
    } = body;
    let cmd = crate::notices::Command::Answer(
        banli_domain::ids::NoticeId(id),
        value.response,
        value.documents,
    );
    notice_command(&st, &caller, if_match, hash, idempotency_key, cmd).await
}

/// The handling figures (办复率, 按期办复率, 沟通率, 见面率, 满意率, resolution, B → A conversion)
/// computed from the data, each with numerator, denominator and definition.
#[utoipa::path(get, path = "/v1/metrics", tag = "followup", params(MetricsParams),
    responses((status = 200, body = Object), (status = 400, body = ProblemDocument), (status = 403, body = ProblemDocument), (status = 404, body = ProblemDocument)))]
async fn metrics(
    State(st): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<MetricsParams>,
) -> ApiResult {
    let (query, r) = metrics_of(&st, &caller.0, q).await?;
    let body = serde_json::json!({
        "agency_id": query.agency,
        "division_id": query.division,
        "role": query.role,
        "session_id": query.session,
        "category": query.category,
        "delegation": query.delegation,
        "deputy_id": query.deputy,
        "topic_id": query.topic,
        "year": query.year,
        "as_of": query.as_of,
        "counts": {"lead": r.lead, "co": r.co, "separate": r.separate, "sole": r.sole},
        "rates": crate::app::rates_json(&r),
    });
    Ok(json_response(200, to_json(&body)?, None))
}

/// The figures broken down (分类统计): one line per category, delegation, lead deputy or topic
/// within the scope, each with the counts and every rate of `/v1/metrics` for that group —
/// as JSON, or as CSV for a spreadsheet (`format=csv`). At most 500 groups (the first by key;
/// `truncated` says when there were more).
#[utoipa::path(get, path = "/v1/metrics/breakdown", tag = "followup", params(BreakdownParams),
    responses((status = 200, body = Object), (status = 200, content_type = "text/csv", body = String), (status = 400, body = ProblemDocument), (status = 403, body = ProblemDocument), (status = 404, body = ProblemDocument)))]
async fn metrics_breakdown(
    State(st): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<BreakdownParams>,
) -> ApiResult {
    let csv = wants_csv(q.format.as_deref())?;
    let by = q.by.clone();
    let (whole, groups, truncated) = crate::app::metrics_breakdown(&st, &caller.0, q).await?;
    if csv {
        let mut out = String::from("key,label,lead,co,separate,sole");
        for (n, _) in banli_domain::metrics::RATES {
            out.push_str(&format!(",{n}_numerator,{n}_denominator,{n}"));
        }
        out.push_str("\r\n");
        for g in &groups {
            let r = &g.report;
            let mut fields = vec![
                csv_field(&g.key),
                csv_field(&g.label),
                r.lead.to_string(),
                r.co.to_string(),
                r.separate.to_string(),
                r.sole.to_string(),
            ];
            for (_, rate) in r.named() {
                fields.push(rate.numerator.to_string());
                fields.push(rate.denominator.to_string());
                fields.push(rate.value().map(|v| format!("{v:.4}")).unwrap_or_default());
            }
            out.push_str(&fields.join(","));
            out.push_str("\r\n");
        }
        return Ok(csv_response(out));
    }
    let items: Vec<serde_json::Value> = groups
        .iter()
        .map(|g| {
            let r = &g.report;
            serde_json::json!({
                "key": g.key,
                "label": g.label,
                "counts": {"lead": r.lead, "co": r.co, "separate": r.separate, "sole": r.sole},
                "rates": crate::app::rates_json(r),
            })
        })
        .collect();
    let body = serde_json::json!({
        "by": by,
        "agency_id": whole.agency,
        "year": whole.year,
        "as_of": whole.as_of,
        "items": items,
        "truncated": truncated,
    });
    Ok(json_response(200, to_json(&body)?, None))
}

/// A CSV field, quoted when it must be. A deputy-supplied text starting with `=`, `+`, `-`, `@`,
/// a tab or a carriage return would run as a formula in a spreadsheet (CSV injection): it is
/// prefixed with `'`, which spreadsheets show as text.
fn csv_field(v: &str) -> String {
    if v.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        return csv_field(&format!("'{v}"));
    }
    if v.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", v.replace('"', "\"\""))
    } else {
        v.to_owned()
    }
}

fn ledger_csv(items: &[banli_domain::ledger::LedgerItem]) -> String {
    let mut out = String::from(
        "suggestion_id,number,title,year,first_class,class,converted_at,commitment_id,measure,owner_agency_id,target_date,commitment_state,overdue,progress_reports,converted_on\r\n",
    );
    let opt = |d: Option<time::Date>| d.map(|d| d.to_string()).unwrap_or_default();
    for i in items {
        let head = [
            i.suggestion_id.to_string(),
            i.number.clone(),
            i.title.clone(),
            i.year.to_string(),
            i.first_class.as_str().to_owned(),
            i.class.as_str().to_owned(),
            opt(i.converted_at),
        ];
        let mut lines: Vec<Vec<String>> = i
            .commitments
            .iter()
            .map(|c| {
                vec![
                    c.id.to_string(),
                    c.measure.clone(),
                    c.owner_agency_id.to_string(),
                    c.target_date.to_string(),
                    c.state.to_owned(),
                    c.overdue.to_string(),
                    c.progress.len().to_string(),
                    opt(c.converted_on),
                ]
            })
            .collect();
        if lines.is_empty() {
            lines.push(vec![String::new(); 8]);
        }
        for l in lines {
            let fields: Vec<String> = head.iter().chain(&l).map(|f| csv_field(f)).collect();
            out.push_str(&fields.join(","));
            out.push_str("\r\n");
        }
    }
    out
}

/// The B-class ledger (B类台账): items replied as B (or carrying commitments), across years and
/// sessions, with their class now, the day each became A, and every commitment with its
/// progress reports. JSON or CSV.
#[utoipa::path(get, path = "/v1/ledger", tag = "followup", params(LedgerParams),
    responses((status = 200, body = Object), (status = 400, body = ProblemDocument), (status = 403, body = ProblemDocument), (status = 404, body = ProblemDocument)))]
async fn ledger(
    State(st): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<LedgerParams>,
) -> ApiResult {
    let csv = wants_csv(q.format.as_deref())?;
    let items = ledger_of(&st, &caller.0, q).await?;
    if csv {
        return Ok(csv_response(ledger_csv(&items)));
    }
    Ok(json_response(
        200,
        to_json(&serde_json::json!({ "items": items }))?,
        None,
    ))
}

/// `format=json` (the default) or `markdown`.
fn wants_csv(format: Option<&str>) -> Result<bool, AppError> {
    match format {
        None | Some("json") => Ok(false),
        Some("csv") => Ok(true),
        Some(other) => Err(AppError::malformed(format!(
            "`format`: `{other}` is not json or csv"
        ))),
    }
}

/// A CSV body, for a spreadsheet.
fn csv_response(body: String) -> Response {
    axum::response::IntoResponse::into_response((
        [(axum::http::header::CONTENT_TYPE, "text/csv; charset=utf-8")],
        body,
    ))
}

fn wants_markdown(format: Option<&str>) -> Result<bool, AppError> {
    match format {
        None | Some("json") => Ok(false),
        Some("markdown" | "md") => Ok(true),
        Some(other) => Err(AppError::malformed(format!(
            "`format`: `{other}` is not json or markdown"
        ))),
    }
}

/// The annual handling report of an agency: counts and rates as of the year's end (or today),
/// key items led by principal leaders, the B-class ledger of earlier years, overdue and
/// unresolved items, supervision received. JSON or Markdown.
#[utoipa::path(get, path = "/v1/reports/annual", tag = "followup", params(ReportParams),
    responses((status = 200, body = Object), (status = 400, body = ProblemDocument), (status = 403, body = ProblemDocument), (status = 404, body = ProblemDocument)))]
async fn annual_report(
    State(st): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ReportParams>,
) -> ApiResult {
    let markdown = wants_markdown(q.format.as_deref())?;
    let r = annual_report_of(&st, &caller.0, q).await?;
    if markdown {
        return Ok(axum::response::IntoResponse::into_response((
            [(
                axum::http::header::CONTENT_TYPE,
                "text/markdown; charset=utf-8",
            )],
            crate::report::markdown(&r),
        )));
    }
    Ok(json_response(200, to_json(&r)?, None))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
struct ExportParams {
    /// The agency (the office and auditors: any, or none for every agency; an agency's keys:
    /// their own).
    agency_id: Option<Uuid>,
    /// Only assignments made in this year.
    year: Option<i32>,
}

/// Every assignment with the dated facts the metrics count, as CSV (one line each).
#[utoipa::path(get, path = "/v1/followup/assignments.csv", tag = "followup", params(ExportParams),
    responses((status = 200, content_type = "text/csv", body = String), (status = 400, body = ProblemDocument), (status = 403, body = ProblemDocument), (status = 404, body = ProblemDocument)))]
async fn export_assignments(
    State(st): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ExportParams>,
) -> ApiResult {
    let agency = scope(&caller.0, q.agency_id)?;
    if let Some(y) = q.year
        && !(2000..=9999).contains(&y)
    {
        return Err(AppError::malformed("`year`: a year from 2000").into());
    }
    if let Some(a) = &agency
        && !st.store.knows_agency(a).await.map_err(internal)?
    {
        return Err(AppError::not_found(format!("agency {a} holds no assignment here")).into());
    }
    let rows = st
        .store
        .assignment_rows(
            agency.as_deref(),
            q.year,
            caller.0.role.lists_without_confidential(),
        )
        .await
        .map_err(internal)?;
    let mut out = String::from(
        "suggestion_id,assignment_id,agency_id,division_id,role,session_id,assigned_on,superseded,replied_on,effective_due,on_time,first_contact_on,first_meeting_on,key_item,led_by_principal,class\r\n",
    );
    let opt = |d: Option<time::Date>| d.map(|d| d.to_string()).unwrap_or_default();
    for r in rows {
        let on_time = matches!((r.replied_on, r.effective_due), (Some(a), Some(d)) if a <= d);
        let fields = [
            r.suggestion_id,
            r.assignment_id,
            r.agency_id,
            r.division_id.unwrap_or_default(),
            r.role,
            r.session_id,
            r.assigned_on.to_string(),
            r.superseded.to_string(),
            opt(r.replied_on),
            opt(r.effective_due),
            on_time.to_string(),
            opt(r.first_contact_on),
            opt(r.first_meeting_on),
            r.key_item.to_string(),
            r.led_by_principal.to_string(),
            r.class_now.unwrap_or_default(),
        ];
        let fields: Vec<String> = fields.iter().map(|f| csv_field(f)).collect();
        out.push_str(&fields.join(","));
        out.push_str("\r\n");
    }
    Ok(csv_response(out))
}

/// Sets an agency's stage plan for a year (the assigning office, or the agency's own office);
/// replacing one needs If-Match with its version. Each supervision round then issues, on its
/// day, a notice on the items short of the stage's targets.
#[utoipa::path(post, path = "/v1/followup/stage-plans", tag = "followup", request_body = StagePlanBody,
    responses((status = 201, body = Object, headers(("ETag" = String))), (status = 400, body = ProblemDocument), (status = 403, body = ProblemDocument), (status = 409, body = ProblemDocument), (status = 412, body = ProblemDocument), (status = 422, body = ProblemDocument)))]
async fn set_stage_plan(
    State(st): State<AppState>,
    caller: Caller,
    if_match: IfMatch,
    body: Posted<StagePlanBody>,
) -> ApiResult {
    let Posted {
        value,
        hash,
        idempotency_key,
    } = body;
    let p = &caller.0;
    let (code, body) = banli_api::idempotent(
        st.store.db(),
        st.store.idempotency_keys(),
        p,
        idempotency_key.as_deref(),
        &hash,
        || async {
            let plan = plan_of(&st, value)?;
            let stored = crate::stages::set(&st.store, p, plan, if_match.0).await?;
            Ok((201, to_json(&stored)?))
        },
    )
    .await?;
    let etag = serde_json::from_str::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("version")?.as_u64());
    Ok(json_response(code, body, etag))
}

/// An agency's stage plan for a year.
#[utoipa::path(get, path = "/v1/followup/stage-plans", tag = "followup", params(StagePlanParams),
    responses((status = 200, body = Object, headers(("ETag" = String))), (status = 403, body = ProblemDocument), (status = 404, body = ProblemDocument)))]
async fn get_stage_plan(
    State(st): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<StagePlanParams>,
) -> ApiResult {
    let plan = stage_plan_of(&st, &caller.0, q).await?;
    Ok(json_response(200, to_json(&plan)?, Some(plan.version)))
}

/// The progress circular (进度通报) of one stage: the agency's items of the year against the
/// stage's targets, as of today (the stage's end once past), overall and per division, with the
/// items still short, and the year's rates as of that day (the reply rate beside the
/// implementation rate, 落实率).
#[utoipa::path(get, path = "/v1/followup/stage-plans/circular", tag = "followup", params(CircularParams),
    responses((status = 200, body = Object), (status = 400, body = ProblemDocument), (status = 403, body = ProblemDocument), (status = 404, body = ProblemDocument)))]
async fn stage_circular(
    State(st): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<CircularParams>,
) -> ApiResult {
    let markdown = wants_markdown(q.format.as_deref())?;
    let (progress, items, rates) = circular_of(&st, &caller.0, &q).await?;
    if markdown {
        let name = agency_name(&st, &progress.agency.to_string()).await;
        let titles = |id: &str| {
            items
                .iter()
                .find(|s| s.id.to_string() == id)
                .map(|s| format!("{} {}", s.details.number, s.details.title))
                .unwrap_or_else(|| id.to_owned())
        };
        return Ok(axum::response::IntoResponse::into_response((
            [(
                axum::http::header::CONTENT_TYPE,
                "text/markdown; charset=utf-8",
            )],
            crate::stages::circular_markdown(&progress, &rates, &name, &titles),
        )));
    }
    Ok(json_response(
        200,
        crate::app::circular_json(&progress, &rates)?,
        None,
    ))
}

/// Supervision notices to or from an agency, newest first.
#[utoipa::path(get, path = "/v1/followup/notices", tag = "followup", params(NoticesParams),
    responses((status = 200, body = Object), (status = 400, body = ProblemDocument), (status = 403, body = ProblemDocument)))]
async fn list_notices(
    State(st): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<NoticesParams>,
) -> ApiResult {
    let rows = notices_of(&st, &caller.0, q).await?;
    let mut items = Vec::with_capacity(rows.len());
    for (json, version) in rows {
        let mut v: serde_json::Value =
            serde_json::from_str(&json).map_err(|e| AppError::internal(&e))?;
        v["version"] = serde_json::Value::from(version);
        items.push(v);
    }
    Ok(json_response(
        200,
        to_json(&serde_json::json!({ "items": items }))?,
        None,
    ))
}

#[cfg(test)]
mod csv_tests {
    use super::csv_field;

    #[test]
    fn formula_cells_are_neutralised_and_fields_quoted() {
        assert_eq!(csv_field("Bridge repair"), "Bridge repair");
        assert_eq!(csv_field("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
        assert_eq!(csv_field("+1"), "'+1");
        assert_eq!(csv_field("-2+3"), "'-2+3");
        assert_eq!(csv_field("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(csv_field("\tx"), "'\tx");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("2026-12-06"), "2026-12-06");
    }
}

#[derive(Debug, Serialize, ToSchema)]
struct TopicList {
    items: Vec<crate::topics::TopicView>,
}

/// Creates a topic (共性问题): one issue followed across years, sessions and agencies. The
/// assigning office (for itself or, with `owner_agency_id`, for a unit), or an agency's admin or
/// leader for its own.
#[utoipa::path(post, path = "/v1/topics", tag = "followup", request_body = crate::topics::TopicBody,
    responses((status = 201, body = crate::topics::TopicView), (status = 403, body = ProblemDocument), (status = 422, body = ProblemDocument)))]
async fn create_topic(
    State(st): State<AppState>,
    caller: Caller,
    body: Posted<crate::topics::TopicBody>,
) -> ApiResult {
    let t = crate::topics::create(&st, &caller.0, body.value).await?;
    Ok(json_response(201, to_json(&t)?, Some(t.version)))
}

/// The topics the caller may read (the office and auditors: all; an agency: its own), each
/// with its items, their commitments and the counts.
#[utoipa::path(get, path = "/v1/topics", tag = "followup",
    responses((status = 200, body = TopicList), (status = 403, body = ProblemDocument)))]
async fn list_topics(State(st): State<AppState>, caller: Caller) -> ApiResult {
    let items = crate::topics::list(&st, &caller.0).await?;
    Ok(json_response(200, to_json(&TopicList { items })?, None))
}

/// A topic: every linked item with its state, class, responsible units and commitments
/// (fulfilled, open, overdue), and the counts (延伸办理).
#[utoipa::path(get, path = "/v1/topics/{id}", tag = "followup", params(("id" = Uuid, Path)),
    responses((status = 200, body = crate::topics::TopicView), (status = 404, body = ProblemDocument)))]
async fn get_topic(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult {
    let t = crate::topics::view(&st, &caller.0, id).await?;
    Ok(json_response(200, to_json(&t)?, Some(t.version)))
}

/// Links a suggestion of any year, session or agency to the topic (the office), or one the unit
/// holds an assignment on (the unit, for its own topic). An item the caller cannot see: 404.
#[utoipa::path(post, path = "/v1/topics/{id}/items", tag = "followup", params(("id" = Uuid, Path)),
    request_body = crate::topics::LinkBody,
    responses((status = 200, body = crate::topics::TopicView), (status = 403, body = ProblemDocument), (status = 404, body = ProblemDocument)))]
async fn link_topic_item(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath(id): ApiPath<Uuid>,
    body: Posted<crate::topics::LinkBody>,
) -> ApiResult {
    let t = crate::topics::link(&st, &caller.0, id, body.value.suggestion_id, true).await?;
    Ok(json_response(200, to_json(&t)?, Some(t.version)))
}

/// Unlinks a suggestion from the topic.
#[utoipa::path(delete, path = "/v1/topics/{id}/items/{suggestion_id}", tag = "followup",
    params(("id" = Uuid, Path), ("suggestion_id" = Uuid, Path)),
    responses((status = 200, body = crate::topics::TopicView), (status = 404, body = ProblemDocument)))]
async fn unlink_topic_item(
    State(st): State<AppState>,
    caller: Caller,
    ApiPath((id, suggestion)): ApiPath<(Uuid, Uuid)>,
) -> ApiResult {
    let t = crate::topics::link(&st, &caller.0, id, suggestion, false).await?;
    Ok(json_response(200, to_json(&t)?, Some(t.version)))
}
