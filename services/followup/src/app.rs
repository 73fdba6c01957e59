//! The follow-up service's application layer: who may read what (`scope`), and each
//! capability as one function over the store — lists, notices, metrics, the ledger, the annual
//! report, stage plans — that REST (`http`) and gRPC (`grpc`) both call, so both transports
//! answer with the same checks and the same errors.

use banli_api::{AppError, Authenticator, Clock, Principal};
use banli_domain::Role;
use banli_domain::followup::{DeadlineKind, TrackedDeadline, lateness};
use banli_domain::ids::{AgencyId, AssignmentId};
use serde::{Deserialize, Serialize};
use time::Duration;
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use crate::store::{AlertRow, DeadlineRow, MAX_ROWS, Store};

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
    /// The document store (the documents notices' responses enclose); without it a response
    /// that names documents is answered 503.
    pub documents: Option<banli_documents::Documents>,
}

impl std::fmt::Debug for AppState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppState").finish_non_exhaustive()
    }
}

/// The agency whose rows the caller may read: any (or one asked for) for the office and
/// auditors, its own for an agency's keys.
pub(crate) fn scope(p: &Principal, asked: Option<Uuid>) -> Result<Option<String>, AppError> {
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

pub(crate) fn to_json<T: Serialize>(v: &T) -> Result<String, AppError> {
    serde_json::to_string(v).map_err(|e| AppError::internal(&e))
}

pub(crate) fn internal(e: crate::store::StoreError) -> AppError {
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
    /// Only suggestions of this category (分类), as registered.
    pub(crate) category: Option<String>,
    /// Only suggestions this deputy leads (领衔代表).
    pub(crate) deputy_id: Option<Uuid>,
    /// Only suggestions linked to this topic (共性问题) the caller may read.
    pub(crate) topic_id: Option<Uuid>,
    /// Only suggestions whose lead deputy is of this delegation (代表团).
    pub(crate) delegation: Option<String>,
    /// Only what happened on or before this day (default: today).
    #[param(value_type = Option<String>, format = Date)]
    pub(crate) as_of: Option<time::Date>,
}

pub(crate) fn rate_json(r: &banli_domain::metrics::Rate) -> serde_json::Value {
    serde_json::json!({
        "numerator": r.numerator,
        "denominator": r.denominator,
        "value": r.value(),
        "definition": r.definition,
        "definition_version": r.definition_version,
    })
}

/// Every rate of a report by name, as `/v1/metrics` shows them.
pub(crate) fn rates_json(r: &banli_domain::metrics::Report) -> serde_json::Value {
    r.named()
        .into_iter()
        .map(|(name, rate)| (name.to_owned(), rate_json(rate)))
        .collect::<serde_json::Map<_, _>>()
        .into()
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
    if let Some(t) = q.topic_id {
        // The topic must be one the caller reads (404 otherwise, as for none).
        crate::topics::view(st, p, t).await?;
    }
    let query = crate::store::MetricsQuery {
        as_of: q.as_of.unwrap_or(today),
        agency,
        division: q.division_id.map(|d| d.to_string()),
        role: q.role.clone(),
        session: q.session_id.map(|s| s.to_string()),
        category: q.category.clone().filter(|c| !c.trim().is_empty()),
        deputy: q.deputy_id.map(|d| d.to_string()),
        topic: q.topic_id.map(|t| t.to_string()),
        delegation: q.delegation.clone().filter(|d| !d.trim().is_empty()),
        year: q.year,
    };
    let counts = st.store.counts(&query).await.map_err(internal)?;
    Ok((query, banli_domain::metrics::Report::from_counts(&counts)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct BreakdownParams {
    /// `category` (分类), `delegation` (代表团), `deputy` (the lead deputy) or `topic` (共性问题,
    /// the topics the caller reads).
    pub(crate) by: String,
    /// The agency (the office and auditors: any, or none for every agency; an agency's keys:
    /// their own).
    pub(crate) agency_id: Option<Uuid>,
    /// Only assignments made in this year.
    pub(crate) year: Option<i32>,
    /// Only what happened on or before this day (default: today).
    #[param(value_type = Option<String>, format = Date)]
    pub(crate) as_of: Option<time::Date>,
    /// `json` (default) or `csv` (one line per group, each rate's numerator, denominator and
    /// value).
    pub(crate) format: Option<String>,
}

/// One group of a breakdown: its key (the category, the delegation, the deputy's or the
/// topic's id), a label (the topic's title; the key otherwise) and its figures.
#[derive(Debug, Clone)]
pub(crate) struct Group {
    pub(crate) key: String,
    pub(crate) label: String,
    pub(crate) report: banli_domain::metrics::Report,
}

/// How many groups a breakdown lists at most (deputies may be many): the first, by key.
pub(crate) const MAX_GROUPS: u32 = 500;

/// The metrics of each category, delegation, lead deputy or topic within the caller's scope:
/// the same counts as `/v1/metrics` with that scope, one per group.
pub(crate) async fn metrics_breakdown(
    st: &AppState,
    p: &Principal,
    q: BreakdownParams,
) -> Result<(crate::store::MetricsQuery, Vec<Group>, bool), AppError> {
    use crate::store::GroupColumn;
    let column = match q.by.as_str() {
        "category" => Some(GroupColumn::Category),
        "delegation" => Some(GroupColumn::Delegation),
        "deputy" => Some(GroupColumn::Deputy),
        "topic" => None,
        other => {
            return Err(AppError::malformed(format!(
                "`by`: `{other}` is not category, delegation, deputy or topic"
            )));
        }
    };
    let params = |category: Option<String>,
                  delegation: Option<String>,
                  deputy_id: Option<Uuid>,
                  topic_id: Option<Uuid>| MetricsParams {
        agency_id: q.agency_id,
        year: q.year,
        division_id: None,
        role: None,
        session_id: None,
        category,
        deputy_id,
        topic_id,
        delegation,
        as_of: q.as_of,
    };
    // The whole scope first: its checks (agency, year, day) answer bad input before any group.
    let (whole, _) = metrics_of(st, p, params(None, None, None, None)).await?;
    let mut keys: Vec<(String, String)> = match column {
        Some(c) => st
            .store
            .group_values(c, whole.agency.as_deref(), q.year, MAX_GROUPS + 1)
            .await
            .map_err(internal)?
            .into_iter()
            .map(|k| (k.clone(), k))
            .collect(),
        None => {
            // A unit reads its own topics; the office and auditors every topic, or those
            // holding an item of the agency they name.
            let own = matches!(p.role, Role::AgencyAdmin | Role::Handler | Role::Leader);
            let topics = match &whole.agency {
                Some(a) if own => st.store.topics(Some(a)).await,
                Some(a) => st.store.topics_of_agency(a).await,
                None => st.store.topics(None).await,
            }
            .map_err(internal)?;
            topics.into_iter().map(|t| (t.id, t.title)).collect()
        }
    };
    let truncated = keys.len() > MAX_GROUPS as usize;
    keys.truncate(MAX_GROUPS as usize);
    let mut groups = Vec::with_capacity(keys.len());
    for (key, label) in keys {
        let id = key.parse::<Uuid>().ok();
        let scoped = match column {
            Some(GroupColumn::Category) => params(Some(key.clone()), None, None, None),
            Some(GroupColumn::Delegation) => params(None, Some(key.clone()), None, None),
            // Ids of this service's own rows: a key that is none counts nothing.
            Some(GroupColumn::Deputy) if id.is_some() => params(None, None, id, None),
            None if id.is_some() => params(None, None, None, id),
            _ => continue,
        };
        let (_, report) = metrics_of(st, p, scoped).await?;
        // A value every item has left (recategorised) keeps its per-day rows, summing to
        // nothing: not a group.
        if report.lead + report.co + report.separate + report.sole == 0 && column.is_some() {
            continue;
        }
        groups.push(Group { key, label, report });
    }
    Ok((whole, groups, truncated))
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

#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub(crate) struct StagePlanParams {
    /// The agency (required for the office and auditors; an agency's keys: their own).
    pub(crate) agency_id: Option<Uuid>,
    pub(crate) year: i32,
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

/// A stage's progress, the agency's items of the year, and its rates as of the circular's day
/// (the reply rate beside the implementation rate, and the rest).
pub(crate) async fn circular_of(
    st: &AppState,
    p: &Principal,
    q: &CircularParams,
) -> Result<
    (
        banli_domain::stage_plan::StageProgress,
        Vec<banli_domain::suggestion::Suggestion>,
        banli_domain::metrics::Report,
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
    let counts = st
        .store
        .counts(&crate::store::MetricsQuery {
            as_of: progress.as_of,
            agency: Some(agency),
            division: None,
            role: None,
            session: None,
            category: None,
            deputy: None,
            topic: None,
            delegation: None,
            year: Some(q.year),
        })
        .await
        .map_err(internal)?;
    Ok((
        progress,
        items,
        banli_domain::metrics::Report::from_counts(&counts),
    ))
}

/// A circular as JSON: the stage's progress and, under `rates`, every rate as of its day.
pub(crate) fn circular_json(
    progress: &banli_domain::stage_plan::StageProgress,
    rates: &banli_domain::metrics::Report,
) -> Result<String, AppError> {
    let mut v = serde_json::to_value(progress).map_err(|e| AppError::internal(&e))?;
    v["rates"] = rates_json(rates);
    to_json(&v)
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
