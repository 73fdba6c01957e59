//! REST: `/v1/followup/…` — what is overdue (late, very late), what falls due soon, and the
//! alerts that went out. The assigning office and auditors see every agency; an agency's keys
//! see their own agency.

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use banli_api::http::{
    ApiPath, ApiQuery, ApiState, Caller, IfMatch, Posted, Problem, ProblemDocument, json_response,
};
use banli_api::{AppError, Authenticator, Clock, Principal};
use banli_domain::Role;
use banli_domain::followup::{DeadlineKind, TrackedDeadline, lateness};
use banli_domain::ids::{AgencyId, AssignmentId};
use serde::{Deserialize, Serialize};
use time::Duration;
use utoipa::{IntoParams, OpenApi, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use uuid::Uuid;

use crate::store::{AlertRow, DeadlineRow, Store};

/// The most rows one response holds.
pub const MAX_ROWS: u32 = 500;

#[derive(OpenApi)]
#[openapi(tags((name = "followup", description = "Follow-up (跟踪督办): overdue and due-soon deadlines per agency, reminders and overdue flags")))]
#[derive(Debug)]
pub struct ApiDoc;

/// The agencies' names, `(id, name)`, from the directory (the suggestions service's).
pub type AgencyNames = std::sync::Arc<
    dyn Fn() -> std::pin::Pin<Box<dyn std::future::Future<Output = Vec<(String, String)>> + Send>>
        + Send
        + Sync,
>;

#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub auth: Authenticator,
    /// The rule profile: reminder offsets, lateness tiers, default stage plans.
    pub profile: banli_domain::RuleProfile,
    pub clock: Clock,
    /// Names for reports; without it a report names the agency by its id.
    pub names: Option<AgencyNames>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").finish_non_exhaustive()
    }
}

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
    "/v1/audit",
    "/banli.followup.v1.",
    "/banli.audit.v1.",
];

pub fn api(state: AppState) -> (Router, utoipa::openapi::OpenApi) {
    let (router, openapi) = OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(overdue))
        .routes(routes!(due_soon))
        .routes(routes!(alerts))
        .routes(routes!(issue_notice, list_notices))
        .routes(routes!(get_notice))
        .routes(routes!(acknowledge_notice))
        .routes(routes!(answer_notice))
        .routes(routes!(metrics))
        .routes(routes!(ledger))
        .routes(routes!(annual_report))
        .routes(routes!(export_assignments))
        .routes(routes!(set_stage_plan, get_stage_plan))
        .routes(routes!(stage_circular))
        .split_for_parts();
    (router.with_state(state), openapi)
}

type ApiResult = Result<Response, Problem>;

/// The agency whose rows the caller may read: any (or one asked for) for the office and
/// auditors, its own for an agency's keys.
fn scope(p: &Principal, asked: Option<Uuid>) -> Result<Option<String>, AppError> {
    match p.role {
        Role::AssigningOffice | Role::Auditor => Ok(asked.map(|a| a.to_string())),
        Role::AgencyAdmin | Role::Handler | Role::Leader => {
            let own = p
                .agency
                .ok_or_else(|| AppError::forbidden("this key has no agency"))?;
            match asked {
                Some(a) if a != own.0 => Err(AppError::forbidden(
                    "an agency's key reads its own agency's deadlines only",
                )),
                _ => Ok(Some(own.to_string())),
            }
        }
        _ => Err(AppError::forbidden(
            "follow-up lists are read by the assigning office, auditors and agencies",
        )),
    }
}

fn to_json<T: Serialize>(v: &T) -> Result<String, AppError> {
    serde_json::to_string(v).map_err(|e| AppError::internal(&e))
}

fn internal(e: crate::store::StoreError) -> AppError {
    match e {
        crate::store::StoreError::Database(d) if banli_db::is_nul_in_text(&d) => {
            AppError::nul_in_text()
        }
        e => AppError::internal(&e),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct OverdueParams {
    pub(crate) agency_id: Option<Uuid>,
    /// Only the agency's assignments dispatched to this division.
    pub(crate) division_id: Option<Uuid>,
    /// `late` or `very_late` (default: both).
    pub(crate) level: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct OverdueItem {
    #[serde(flatten)]
    pub(crate) deadline: DeadlineRow,
    /// `late` or `very_late`.
    pub(crate) level: String,
    pub(crate) days_overdue: i64,
}

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

pub(crate) async fn overdue_of(
    st: &AppState,
    p: &Principal,
    q: OverdueParams,
) -> Result<Vec<OverdueItem>, AppError> {
    let agency = scope(p, q.agency_id)?;
    let division = q.division_id.map(|d| d.to_string());
    if let Some(l) = &q.level
        && !matches!(l.as_str(), "late" | "very_late")
    {
        return Err(AppError::malformed(format!(
            "`level`: `{l}` is neither late nor very_late"
        )));
    }
    let today = st.clock.today();
    let rows = st
        .store
        .open_deadlines(
            agency.as_deref(),
            division.as_deref(),
            today - Duration::days(1),
            MAX_ROWS,
            p.role.lists_without_confidential(),
        )
        .await
        .map_err(internal)?;
    Ok(rows
        .into_iter()
        .filter_map(|d| {
            let tracked = TrackedDeadline {
                assignment_id: AssignmentId(d.assignment_id.parse().ok()?),
                agency: AgencyId(d.agency_id.parse().ok()?),
                kind: DeadlineKind::parse(&d.kind)?,
                due: d.due,
                met: false,
            };
            let level = lateness(&tracked, today, &st.profile.reminders)?;
            if q.level.as_deref().is_some_and(|l| l != level) {
                return None;
            }
            Some(OverdueItem {
                days_overdue: (today - d.due).whole_days(),
                level: level.to_owned(),
                deadline: d,
            })
        })
        .collect())
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct DueSoonParams {
    pub(crate) agency_id: Option<Uuid>,
    /// Only the agency's assignments dispatched to this division.
    pub(crate) division_id: Option<Uuid>,
    /// 0 to 366 days ahead (default 15).
    pub(crate) within_days: Option<u32>,
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

pub(crate) async fn due_soon_of(
    st: &AppState,
    p: &Principal,
    q: DueSoonParams,
) -> Result<Vec<DeadlineRow>, AppError> {
    let agency = scope(p, q.agency_id)?;
    let division = q.division_id.map(|d| d.to_string());
    let within = q.within_days.unwrap_or(15);
    if within > 366 {
        return Err(AppError::malformed("`within_days`: at most 366"));
    }
    let today = st.clock.today();
    let rows = st
        .store
        .open_deadlines(
            agency.as_deref(),
            division.as_deref(),
            today + Duration::days(i64::from(within)),
            MAX_ROWS,
            p.role.lists_without_confidential(),
        )
        .await
        .map_err(internal)?;
    Ok(rows.into_iter().filter(|d| d.due >= today).collect())
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct AlertsParams {
    pub(crate) agency_id: Option<Uuid>,
    /// 1 to 500 (default 100).
    pub(crate) limit: Option<u32>,
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

pub(crate) async fn alerts_of(
    st: &AppState,
    p: &Principal,
    q: AlertsParams,
) -> Result<Vec<AlertRow>, AppError> {
    let agency = scope(p, q.agency_id)?;
    let limit = q.limit.unwrap_or(100);
    if !(1..=MAX_ROWS).contains(&limit) {
        return Err(AppError::malformed(format!("`limit`: 1 to {MAX_ROWS}")));
    }
    st.store
        .alerts(
            agency.as_deref(),
            limit,
            p.role.lists_without_confidential(),
        )
        .await
        .map_err(internal)
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
}

fn notice_json(n: &crate::notices::StoredNotice) -> Result<String, AppError> {
    let mut v = serde_json::to_value(&n.notice).map_err(|e| AppError::internal(&e))?;
    v["version"] = serde_json::Value::from(n.version);
    to_json(&v)
}

async fn notice_command(
    st: &AppState,
    caller: &Caller,
    if_match: IfMatch,
    hash: &str,
    key: Option<&str>,
    cmd: crate::notices::Command,
    status: u16,
) -> ApiResult {
    let p = &caller.0;
    let today = st.clock.today();
    let (code, body) = banli_api::idempotent(
        st.store.db(),
        st.store.idempotency_keys(),
        p,
        key,
        hash,
        || async {
            let n = crate::notices::command(&st.store, p, cmd, if_match.0, today).await?;
            Ok((status, notice_json(&n)?))
        },
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
    notice_command(
        &st,
        &caller,
        IfMatch(None),
        &hash,
        idempotency_key.as_deref(),
        cmd,
        201,
    )
    .await
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
    Ok(json_response(200, notice_json(&n)?, Some(n.version)))
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
    notice_command(
        &st,
        &caller,
        if_match,
        &body.hash,
        body.idempotency_key.as_deref(),
        cmd,
        200,
    )
    .await
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
    let cmd = crate::notices::Command::Answer(banli_domain::ids::NoticeId(id), value.response);
    notice_command(
        &st,
        &caller,
        if_match,
        &hash,
        idempotency_key.as_deref(),
        cmd,
        200,
    )
    .await
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct MetricsParams {
    /// The agency (the office and auditors: any, or none for every agency; an agency's keys:
    /// their own).
    pub(crate) agency_id: Option<Uuid>,
    /// Only assignments made in this year.
    pub(crate) year: Option<i32>,
    /// Only assignments dispatched to this division.
    pub(crate) division_id: Option<Uuid>,
    /// Only assignments in this role: `lead`, `co`, `separate` or `sole`.
    pub(crate) role: Option<String>,
    /// Only suggestions of this session.
    pub(crate) session_id: Option<Uuid>,
    /// Only what happened on or before this day (default: today).
    #[param(value_type = Option<String>, format = Date)]
    pub(crate) as_of: Option<time::Date>,
}

fn rate_json(r: &banli_domain::metrics::Rate) -> serde_json::Value {
    serde_json::json!({
        "numerator": r.numerator,
        "denominator": r.denominator,
        "value": r.value(),
        "definition": r.definition,
        "definition_version": r.definition_version,
    })
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
        "year": query.year,
        "as_of": query.as_of,
        "counts": {"lead": r.lead, "co": r.co, "separate": r.separate, "sole": r.sole},
        "rates": r
            .named()
            .into_iter()
            .map(|(name, rate)| (name.to_owned(), rate_json(rate)))
            .collect::<serde_json::Map<_, _>>(),
    });
    Ok(json_response(200, to_json(&body)?, None))
}

pub(crate) async fn metrics_of(
    st: &AppState,
    p: &Principal,
    q: MetricsParams,
) -> Result<(crate::store::MetricsQuery, banli_domain::metrics::Report), AppError> {
    let agency = scope(p, q.agency_id)?;
    let today = st.clock.today();
    if let Some(d) = q.as_of
        && d > today
    {
        return Err(AppError::malformed(format!(
            "`as_of`: {d} is in the future (today is {today})"
        )));
    }
    if let Some(y) = q.year
        && !(2000..=9999).contains(&y)
    {
        return Err(AppError::malformed("`year`: a year from 2000"));
    }
    if let Some(a) = &agency
        && !st.store.knows_agency(a).await.map_err(internal)?
    {
        return Err(AppError::not_found(format!(
            "agency {a} holds no assignment here"
        )));
    }
    if let Some(r) = &q.role
        && !matches!(r.as_str(), "lead" | "co" | "separate" | "sole")
    {
        return Err(AppError::malformed(format!(
            "`role`: `{r}` is not lead, co, separate or sole"
        )));
    }
    let query = crate::store::MetricsQuery {
        as_of: q.as_of.unwrap_or(today),
        agency,
        division: q.division_id.map(|d| d.to_string()),
        role: q.role.clone(),
        session: q.session_id.map(|s| s.to_string()),
        year: q.year,
    };
    let counts = st.store.counts(&query).await.map_err(internal)?;
    Ok((query, banli_domain::metrics::Report::from_counts(&counts)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct LedgerParams {
    /// The agency (the office and auditors: any, or none for every agency; an agency's keys:
    /// their own).
    pub(crate) agency_id: Option<Uuid>,
    /// Only items first replied in this year.
    pub(crate) year: Option<i32>,
    /// `open` (class not A yet, or a commitment still open) or `done`; default: both.
    pub(crate) state: Option<String>,
    /// `json` (default) or `csv` (one line per commitment).
    pub(crate) format: Option<String>,
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
    let csv = match q.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(other) => {
            return Err(
                AppError::malformed(format!("`format`: `{other}` is not json or csv")).into(),
            );
        }
    };
    let items = ledger_of(&st, &caller.0, q).await?;
    if csv {
        return Ok(axum::response::IntoResponse::into_response((
            [(axum::http::header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            ledger_csv(&items),
        )));
    }
    Ok(json_response(
        200,
        to_json(&serde_json::json!({ "items": items }))?,
        None,
    ))
}

pub(crate) async fn ledger_of(
    st: &AppState,
    p: &Principal,
    q: LedgerParams,
) -> Result<Vec<banli_domain::ledger::LedgerItem>, AppError> {
    let agency = scope(p, q.agency_id)?;
    if let Some(y) = q.year
        && !(2000..=9999).contains(&y)
    {
        return Err(AppError::malformed("`year`: a year from 2000"));
    }
    let open = match q.state.as_deref() {
        None => None,
        Some("open") => Some(true),
        Some("done") => Some(false),
        Some(other) => {
            return Err(AppError::malformed(format!(
                "`state`: `{other}` is not open or done"
            )));
        }
    };
    if let Some(a) = &agency
        && !st.store.knows_agency(a).await.map_err(internal)?
    {
        return Err(AppError::not_found(format!(
            "agency {a} holds no assignment here"
        )));
    }
    let replicas = st
        .store
        .ledger_replicas(agency.as_deref())
        .await
        .map_err(internal)?;
    let today = st.clock.today();
    let wanted = agency.as_deref().and_then(|a| a.parse().ok()).map(AgencyId);
    let hide = p.role.lists_without_confidential();
    let mut items: Vec<_> = replicas
        .iter()
        .filter(|s| !(hide && s.details.confidential))
        .filter_map(|s| banli_domain::ledger::ledger_item(s, wanted, today))
        .filter(|i| q.year.is_none_or(|y| i.year == y))
        .filter(|i| {
            open.is_none_or(|o| {
                let still = i.class != banli_domain::suggestion::ReplyClass::A
                    || i.commitments.iter().any(|c| c.state == "open");
                still == o
            })
        })
        .collect();
    items.sort_by(|a, b| (a.year, &a.number).cmp(&(b.year, &b.number)));
    Ok(items)
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct ReportParams {
    /// The agency (required for the office and auditors; an agency's keys: their own).
    pub(crate) agency_id: Option<Uuid>,
    /// The year reported on.
    pub(crate) year: i32,
    /// `json` (default) or `markdown`.
    pub(crate) format: Option<String>,
}

/// `format=json` (the default) or `markdown`.
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

pub(crate) async fn annual_report_of(
    st: &AppState,
    p: &Principal,
    q: ReportParams,
) -> Result<crate::report::AnnualReport, AppError> {
    let agency = scope(p, q.agency_id)?
        .ok_or_else(|| AppError::malformed("`agency_id`: the agency reported on is required"))?;
    let today = st.clock.today();
    if !(2000..=today.year()).contains(&q.year) {
        return Err(AppError::malformed(format!(
            "`year`: from 2000 to this year ({})",
            today.year()
        )));
    }
    if !st.store.knows_agency(&agency).await.map_err(internal)? {
        return Err(AppError::not_found(format!(
            "agency {agency} holds no assignment here"
        )));
    }
    let name = agency_name(st, &agency).await;
    let hide = p.role.lists_without_confidential();
    crate::report::build(&st.store, &agency, name, q.year, today, hide)
        .await
        .map_err(internal)
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
    Ok(axum::response::IntoResponse::into_response((
        [(axum::http::header::CONTENT_TYPE, "text/csv; charset=utf-8")],
        out,
    )))
}

/// One stage of a plan.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct StageBody {
    pub(crate) name: String,
    #[schema(value_type = String, format = Date)]
    pub(crate) ends_on: time::Date,
    /// `all_signed_for`, `all_communicated`, `all_replied`, `all_feedback_in`.
    #[schema(value_type = Vec<String>)]
    pub(crate) targets: Vec<banli_domain::stage_plan::StageTarget>,
    #[schema(value_type = Vec<String>)]
    pub(crate) supervision_rounds: Vec<time::Date>,
}

/// A stage plan: the stages given, or the profile's default (three stages to 30 November,
/// two supervision rounds each) from `starts_on`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct StagePlanBody {
    pub(crate) agency_id: Uuid,
    pub(crate) year: i32,
    /// Default: 1 March of the year.
    #[schema(value_type = Option<String>, format = Date)]
    pub(crate) starts_on: Option<time::Date>,
    #[serde(default)]
    pub(crate) stages: Vec<StageBody>,
}

/// Builds and checks the plan a body asks for.
pub(crate) fn plan_of(
    st: &AppState,
    b: StagePlanBody,
) -> Result<banli_domain::stage_plan::StagePlan, AppError> {
    use banli_domain::stage_plan::{Stage, StagePlan};
    let starts_on = match b.starts_on {
        Some(d) => d,
        None => time::Date::from_calendar_date(b.year, time::Month::March, 1)
            .map_err(|_| AppError::malformed("`year`: not a year"))?,
    };
    let id = banli_domain::ids::StagePlanId::new();
    let agency = AgencyId(b.agency_id);
    let plan = if b.stages.is_empty() {
        StagePlan::default_for(id, agency, starts_on, &st.profile)
    } else {
        StagePlan::new(
            id,
            agency,
            b.year,
            starts_on,
            b.stages
                .into_iter()
                .map(|s| Stage {
                    name: s.name,
                    ends_on: s.ends_on,
                    targets: s.targets,
                    supervision_rounds: s.supervision_rounds,
                })
                .collect(),
        )
    };
    plan.map_err(|e| AppError::invalid(e.to_string()))
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

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct StagePlanParams {
    /// The agency (required for the office and auditors; an agency's keys: their own).
    pub(crate) agency_id: Option<Uuid>,
    pub(crate) year: i32,
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

pub(crate) async fn stage_plan_of(
    st: &AppState,
    p: &Principal,
    q: StagePlanParams,
) -> Result<crate::stages::StoredPlan, AppError> {
    let agency = scope(p, q.agency_id)?
        .ok_or_else(|| AppError::malformed("`agency_id`: the agency is required"))?;
    crate::stages::get(&st.store, &agency, q.year)
        .await
        .map_err(internal)?
        .ok_or_else(|| AppError::not_found(format!("{agency} has no stage plan for {}", q.year)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct CircularParams {
    pub(crate) agency_id: Option<Uuid>,
    pub(crate) year: i32,
    /// 1-based.
    pub(crate) stage: usize,
    /// `json` (default) or `markdown`.
    pub(crate) format: Option<String>,
}

/// The progress circular (进度通报) of one stage: the agency's items of the year against the
/// stage's targets, as of today (the stage's end once past), overall and per division, with the
/// items still short.
#[utoipa::path(get, path = "/v1/followup/stage-plans/circular", tag = "followup", params(CircularParams),
    responses((status = 200, body = Object), (status = 400, body = ProblemDocument), (status = 403, body = ProblemDocument), (status = 404, body = ProblemDocument)))]
async fn stage_circular(
    State(st): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<CircularParams>,
) -> ApiResult {
    let markdown = wants_markdown(q.format.as_deref())?;
    let (progress, items) = circular_of(&st, &caller.0, &q).await?;
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
            crate::stages::circular_markdown(&progress, &name, &titles),
        )));
    }
    Ok(json_response(200, to_json(&progress)?, None))
}

pub(crate) async fn circular_of(
    st: &AppState,
    p: &Principal,
    q: &CircularParams,
) -> Result<
    (
        banli_domain::stage_plan::StageProgress,
        Vec<banli_domain::suggestion::Suggestion>,
    ),
    AppError,
> {
    let plan = stage_plan_of(
        st,
        p,
        StagePlanParams {
            agency_id: q.agency_id,
            year: q.year,
        },
    )
    .await?;
    let agency = plan.plan.agency.to_string();
    let items = crate::stages::items(&st.store, &agency, q.year)
        .await
        .map_err(internal)?;
    let progress =
        banli_domain::stage_plan::stage_progress(&plan.plan, q.stage, &items, st.clock.today())
            .ok_or_else(|| {
                AppError::malformed(format!(
                    "`stage`: the plan has stages 1 to {}",
                    plan.plan.stages.len()
                ))
            })?;
    Ok((progress, items))
}

/// An agency's name from the directory, or its id.
pub(crate) async fn agency_name(st: &AppState, agency: &str) -> String {
    match &st.names {
        Some(names) => names()
            .await
            .into_iter()
            .find(|(id, _)| id == agency)
            .map(|(_, n)| n),
        None => None,
    }
    .unwrap_or_else(|| agency.to_owned())
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct NoticesParams {
    /// Notices to or from this agency (the office and auditors: any; an agency's keys: their own).
    pub(crate) agency_id: Option<Uuid>,
    /// `issued`, `acknowledged`, `answered` or `escalated`.
    pub(crate) state: Option<String>,
    /// 1 to 500 (default 100).
    pub(crate) limit: Option<u32>,
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

/// `(notice JSON, version)` of the notices to or from an agency, newest first.
pub(crate) async fn notices_of(
    st: &AppState,
    p: &Principal,
    q: NoticesParams,
) -> Result<Vec<(String, i64)>, AppError> {
    let agency = scope(p, q.agency_id)?;
    if let Some(s) = &q.state
        && !matches!(
            s.as_str(),
            "issued" | "acknowledged" | "answered" | "escalated"
        )
    {
        return Err(AppError::malformed(format!(
            "`state`: `{s}` is not issued, acknowledged, answered or escalated"
        )));
    }
    let limit = q.limit.unwrap_or(100);
    if !(1..=MAX_ROWS).contains(&limit) {
        return Err(AppError::malformed(format!("`limit`: 1 to {MAX_ROWS}")));
    }
    st.store
        .notices(agency.as_deref(), q.state.as_deref(), limit)
        .await
        .map_err(internal)
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
