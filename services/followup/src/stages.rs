//! Stage plans (阶段安排): per agency and year, stages with end dates, targets and supervision
//! rounds (default: the profile's three stages with two rounds each). Each round is a durable
//! timer; when it fires, the items short of the stage's targets get a supervision notice from
//! the plan's issuer (trigger `stage`), in the timer's own transaction. The morning after each
//! stage ends, another timer checks the agency's rates against the profile's targets and, for
//! those under target, issues a notice naming the items that keep them down (trigger
//! `metric_below_target`). A progress circular (进度通报) per stage and division, as JSON or
//! Markdown.

use banli_api::{AppError, ErrorCode, Principal};
use banli_db::Pool;
use banli_domain::Actor;
use banli_domain::ids::AgencyId;
use banli_domain::stage_plan::{StagePlan, StageProgress, StageTarget};
use banli_domain::supervision::{Level, NoticeEvent, SupervisionNotice, Trigger};
use serde::{Deserialize, Serialize};
use time::{Date, OffsetDateTime};

use crate::store::{Store, StoreError, fire_time};

/// A stored plan: who set it and its version (for If-Match).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StoredPlan {
    #[serde(flatten)]
    pub plan: StagePlan,
    pub issuer_agency_id: AgencyId,
    pub version: u64,
}

/// What a round's timer carries.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoundPayload {
    pub stage_round: RoundRef,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoundRef {
    pub agency_id: String,
    pub year: i32,
    pub plan_id: String,
    /// 1-based.
    pub stage: usize,
    /// 1-based.
    pub round: usize,
}

/// What a stage end's timer carries: the metric check as of the stage's last day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StageEndPayload {
    pub stage_end: RoundRef,
    /// The stage's last day: the rates are taken as of it.
    pub as_of: Date,
    /// The plan's last stage: the year's work is due, every target is judged.
    pub last: bool,
}

fn round_key(plan: &StagePlan, stage: usize, round: usize) -> String {
    format!("stage:{}:{stage}:{round}", plan.id)
}

/// The rounds' and the stage ends' timers: `(key, fire at, payload)`.
fn round_timers(plan: &StagePlan) -> Vec<(String, OffsetDateTime, String)> {
    let mut out = Vec::new();
    for (i, s) in plan.stages.iter().enumerate() {
        let end = StageEndPayload {
            stage_end: RoundRef {
                agency_id: plan.agency.to_string(),
                year: plan.year,
                plan_id: plan.id.to_string(),
                stage: i + 1,
                round: 0,
            },
            as_of: s.ends_on,
            last: i + 1 == plan.stages.len(),
        };
        out.push((
            format!("stage-end:{}:{}", plan.id, i + 1),
            fire_time(s.ends_on.next_day().unwrap_or(s.ends_on)),
            serde_json::to_string(&end).unwrap_or_default(),
        ));
        for (j, day) in s.supervision_rounds.iter().enumerate() {
            let payload = RoundPayload {
                stage_round: RoundRef {
                    agency_id: plan.agency.to_string(),
                    year: plan.year,
                    plan_id: plan.id.to_string(),
                    stage: i + 1,
                    round: j + 1,
                },
            };
            out.push((
                round_key(plan, i + 1, j + 1),
                fire_time(*day),
                serde_json::to_string(&payload).unwrap_or_default(),
            ));
        }
    }
    out
}

/// Who may plan for an agency: the assigning office, or the agency's own office (its
/// agency_admin) for its divisions.
pub fn may_plan(p: &Principal, agency: AgencyId) -> Result<(), AppError> {
    use banli_domain::Role;
    match p.role {
        Role::AssigningOffice => Ok(()),
        Role::AgencyAdmin if p.agency == Some(agency) => Ok(()),
        _ => Err(AppError::forbidden(
            "stage plans are set by the assigning office or the agency's own office (agency_admin)",
        )),
    }
}

macro_rules! backend {
    ($module:ident, $conn:ty, $timers:ident) => {
        /// Stage plan writes within a caller's transaction.
        pub mod $module {
            use super::*;

            pub async fn load(c: &mut $conn, agency: &str, year: i32) -> Result<Option<StoredPlan>, StoreError> {
                let row: Option<(String, String, i64)> = sqlx::query_as(
                    "SELECT plan, issuer_agency_id, version FROM followup_stage_plans WHERE agency_id = $1 AND year = $2")
                    .bind(agency).bind(year)
                    .fetch_optional(&mut *c).await?;
                row.map(|(plan, issuer, version)| {
                    Ok(StoredPlan {
                        plan: serde_json::from_str(&plan).map_err(|e| StoreError::Corrupt(format!("a stage plan: {e}")))?,
                        issuer_agency_id: AgencyId(issuer.parse().map_err(|_| StoreError::Corrupt("a stage plan's issuer".into()))?),
                        version: version.max(0) as u64,
                    })
                })
                .transpose()
            }

            /// Stores `plan` (replacing `old`, whose round timers are cancelled) and schedules
            /// its rounds; returns the new version.
            pub async fn save(
                c: &mut $conn,
                store: &Store,
                old: Option<&StoredPlan>,
                plan: &StagePlan,
                issuer: AgencyId,
                now: OffsetDateTime,
            ) -> Result<u64, StoreError> {
                let json = serde_json::to_string(plan).map_err(|e| StoreError::Corrupt(e.to_string()))?;
                let version = old.map_or(1, |o| o.version + 1);
                if let Some(o) = old {
                    for (key, _, _) in round_timers(&o.plan) {
                        banli_timers::$timers::cancel(store.timers(), &mut *c, &key).await?;
                    }
                    sqlx::query("UPDATE followup_stage_plans SET plan_id = $3, issuer_agency_id = $4, version = $5, plan = $6, updated_at = $7 \
                                 WHERE agency_id = $1 AND year = $2")
                        .bind(plan.agency.to_string()).bind(plan.year).bind(plan.id.to_string()).bind(issuer.to_string())
                        .bind(version as i64).bind(&json).bind(now)
                        .execute(&mut *c).await?;
                } else {
                    sqlx::query("INSERT INTO followup_stage_plans (agency_id, year, plan_id, issuer_agency_id, version, plan, updated_at) \
                                 VALUES ($1, $2, $3, $4, $5, $6, $7)")
                        .bind(plan.agency.to_string()).bind(plan.year).bind(plan.id.to_string()).bind(issuer.to_string())
                        .bind(version as i64).bind(&json).bind(now)
                        .execute(&mut *c).await?;
                }
                for (key, at, payload) in round_timers(plan) {
                    banli_timers::$timers::schedule(store.timers(), &mut *c, &key, at, &payload).await?;
                }
                Ok(version)
            }

            /// The replicas of the items an agency was assigned in `year`.
            pub async fn replicas(c: &mut $conn, agency: &str, year: i32) -> Result<Vec<banli_domain::suggestion::Suggestion>, StoreError> {
                let rows: Vec<(String,)> = sqlx::query_as(
                    "SELECT c.replica FROM followup_cases c WHERE c.suggestion_id IN \
                     (SELECT f.suggestion_id FROM followup_facts f WHERE f.agency_id = $1 AND f.year = $2)")
                    .bind(agency).bind(year)
                    .fetch_all(&mut *c).await?;
                crate::store::parse_replicas(rows)
            }

            /// A round's timer fired: a notice on the items short of the stage's targets, from
            /// the plan's issuer. Returns the notice, if one was needed.
            pub async fn fire_round(
                c: &mut $conn,
                store: &Store,
                r: &RoundRef,
                today: Date,
            ) -> Result<Option<SupervisionNotice>, StoreError> {
                let Some(stored) = load(&mut *c, &r.agency_id, r.year).await? else {
                    return Ok(None);
                };
                if stored.plan.id.to_string() != r.plan_id {
                    // The plan was replaced; its own timers carry on.
                    return Ok(None);
                }
                let items = replicas(&mut *c, &r.agency_id, r.year).await?;
                let Some(progress) = banli_domain::stage_plan::stage_progress(&stored.plan, r.stage, &items, today) else {
                    return Ok(None);
                };
                let lagging = progress.lagging();
                if lagging.is_empty() {
                    return Ok(None);
                }
                let n = crate::notices::raised(
                    stored.issuer_agency_id,
                    stored.plan.agency,
                    lagging,
                    if r.round > 1 { Level::Notice } else { Level::Reminder },
                    Trigger::Stage,
                    round_body(&progress, r.round),
                    today,
                );
                let actor = Actor { position: None,
                    role: banli_domain::Role::AssigningOffice,
                    agency: Some(stored.issuer_agency_id),
                    deputy: None,
                };
                let issued = NoticeEvent::Issued(n.clone());
                crate::notices::$module::save(&mut *c, store, None, &n, &[issued], &actor, OffsetDateTime::now_utc()).await?;
                Ok(Some(n))
            }

            /// A stage end's timer fired: the agency's rates as of the stage's last day against
            /// the profile's targets; a notice from the plan's issuer on those under target.
            pub async fn fire_stage_end(
                c: &mut $conn,
                store: &Store,
                e: &StageEndPayload,
                rules: &banli_domain::profile::MetricRules,
                today: Date,
            ) -> Result<Option<SupervisionNotice>, StoreError> {
                let r = &e.stage_end;
                let Some(stored) = load(&mut *c, &r.agency_id, r.year).await? else {
                    return Ok(None);
                };
                if stored.plan.id.to_string() != r.plan_id || rules.targets.is_empty() {
                    return Ok(None);
                }
                let items = replicas(&mut *c, &r.agency_id, r.year).await?;
                let check = banli_domain::targets::check(
                    &items,
                    stored.plan.agency,
                    r.year,
                    e.as_of,
                    &rules.targets,
                    u64::from(rules.min_items_for_ranking),
                    e.last,
                );
                if check.shortfalls.is_empty() {
                    return Ok(None);
                }
                let mut ids: Vec<_> = check.shortfalls.iter().flat_map(|s| s.items.iter().copied()).collect();
                ids.sort();
                ids.dedup();
                let n = crate::notices::raised(
                    stored.issuer_agency_id,
                    stored.plan.agency,
                    ids,
                    Level::Notice,
                    Trigger::MetricBelowTarget,
                    banli_domain::targets::notice_body(e.as_of, &check.shortfalls),
                    today,
                );
                let actor = Actor { position: None,
                    role: banli_domain::Role::AssigningOffice,
                    agency: Some(stored.issuer_agency_id),
                    deputy: None,
                };
                let issued = NoticeEvent::Issued(n.clone());
                crate::notices::$module::save(&mut *c, store, None, &n, &[issued], &actor, OffsetDateTime::now_utc()).await?;
                Ok(Some(n))
            }
        }
    };
}

backend!(sqlite, sqlx::SqliteConnection, sqlite);
backend!(postgres, sqlx::PgConnection, postgres);

fn target_name(t: StageTarget) -> &'static str {
    match t {
        StageTarget::AllSignedFor => "全部签收 all signed for",
        StageTarget::AllCommunicated => "全部沟通 all communicated",
        StageTarget::AllReplied => "全部答复 all replied (co-handlers: opinions in)",
        StageTarget::AllFeedbackIn => "全部反馈 all feedback in",
    }
}

fn round_body(p: &StageProgress, round: usize) -> String {
    let short: Vec<String> = p
        .targets
        .iter()
        .filter(|t| t.done < t.total)
        .map(|t| format!("{}: {}/{}", target_name(t.target), t.done, t.total))
        .collect();
    format!(
        "第{}阶段（{}，{}截止）第{}轮督办：以下事项未达阶段目标（{}），请于7日内书面报告进展。",
        p.stage,
        p.name,
        p.ends_on,
        round,
        short.join("；")
    )
}

/// The circular as Markdown.
pub fn circular_markdown(
    p: &StageProgress,
    rates: &banli_domain::metrics::Report,
    agency_name: &str,
    titles: &dyn Fn(&str) -> String,
) -> String {
    let mut out = format!(
        "# {agency_name} {}年建议办理进度通报（第{}阶段：{}）\n\n*截至 {}（阶段截止 {}）.*\n\n| 目标 | 完成 | 应完成 | 完成率 |\n|---|---:|---:|---:|\n",
        p.year, p.stage, p.name, p.as_of, p.ends_on
    );
    let pct = |d: u64, t: u64| {
        if t == 0 {
            "—".to_owned()
        } else {
            format!("{:.1}%", d as f64 * 100.0 / t as f64)
        }
    };
    for t in &p.targets {
        out.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            target_name(t.target),
            t.done,
            t.total,
            pct(t.done, t.total)
        ));
    }
    out.push_str("\n## 各处室进度\n\n| 处室 | 目标 | 完成 | 应完成 |\n|---|---|---:|---:|\n");
    for u in &p.units {
        let unit = u
            .division
            .map(|d| d.to_string())
            .unwrap_or_else(|| "未交办处室 not dispatched".into());
        for t in &u.targets {
            out.push_str(&format!(
                "| {unit} | {} | {} | {} |\n",
                target_name(t.target),
                t.done,
                t.total
            ));
        }
    }
    out.push_str(&format!(
        "\n## 主要指标（{}年交办事项，截至 {}）\n\n| 指标 | 分子 | 分母 | 比率 |\n|---|---:|---:|---:|\n",
        p.year, p.as_of
    ));
    for ((_, label), (_, rate)) in banli_domain::metrics::RATES.iter().zip(rates.named()) {
        out.push_str(&format!(
            "| {label} | {} | {} | {} |\n",
            rate.numerator,
            rate.denominator,
            pct(rate.numerator, rate.denominator)
        ));
    }
    let lagging = p.lagging();
    out.push_str("\n## 未达目标事项\n\n");
    if lagging.is_empty() {
        out.push_str("全部事项已达本阶段目标。\n");
    } else {
        for s in lagging {
            out.push_str(&format!("- {}\n", titles(&s.to_string())));
        }
    }
    out
}

/// Reads an agency's plan for a year.
pub async fn get(store: &Store, agency: &str, year: i32) -> Result<Option<StoredPlan>, StoreError> {
    match store.pool() {
        Pool::Sqlite(p) => {
            let mut c = p.acquire().await?;
            sqlite::load(&mut c, agency, year).await
        }
        Pool::Postgres(p) => {
            let mut c = p.acquire().await?;
            postgres::load(&mut c, agency, year).await
        }
    }
}

/// The replicas of an agency's items of a year.
pub async fn items(
    store: &Store,
    agency: &str,
    year: i32,
) -> Result<Vec<banli_domain::suggestion::Suggestion>, StoreError> {
    match store.pool() {
        Pool::Sqlite(p) => {
            let mut c = p.acquire().await?;
            sqlite::replicas(&mut c, agency, year).await
        }
        Pool::Postgres(p) => {
            let mut c = p.acquire().await?;
            postgres::replicas(&mut c, agency, year).await
        }
    }
}

/// Sets (or, with the current version, replaces) the plan of `plan.agency` for `plan.year`.
#[tracing::instrument(name = "followup.set_stage_plan", skip_all, fields(key_id = %p.key_id, agency = %plan.agency, year = plan.year))]
pub async fn set(
    store: &Store,
    p: &Principal,
    plan: StagePlan,
    if_match: Option<u64>,
) -> Result<StoredPlan, AppError> {
    may_plan(p, plan.agency)?;
    let issuer = p
        .agency
        .ok_or_else(|| AppError::forbidden("this key has no agency to plan from"))?;
    let store2 = store.clone();
    let role = p.role;
    let out = store
        .db()
        .write(move |pool| async move {
            let now = OffsetDateTime::now_utc();
            let agency = plan.agency.to_string();
            macro_rules! run {
                ($p:expr, $module:ident) => {{
                    let mut tx = $p.begin().await?;
                    let old = $module::load(&mut tx, &agency, plan.year).await?;
                    match (&old, if_match) {
                        (Some(o), Some(v)) if o.version != v => return Ok(Err(AppError::new(
                            ErrorCode::StaleVersion,
                            format!("the plan is at version {}, not {v}; read it again", o.version),
                        ))),
                        (Some(o), None) => return Ok(Err(AppError::new(
                            ErrorCode::Conflict,
                            format!("{agency} has a plan for {} (version {}); send If-Match with that version to replace it", plan.year, o.version),
                        ))),
                        _ => {}
                    }
                    // A plan the assigning office issued stays the office's: the agency's own
                    // office may add stages, targets and rounds to it (its internal ones), not
                    // remove or postpone any, and the rounds' notices still come from the office.
                    let mut issuer = issuer;
                    if let Some(o) = &old
                        && o.issuer_agency_id != plan.agency
                        && role == banli_domain::Role::AgencyAdmin
                    {
                        if let Some(why) = plan.weakens(&o.plan) {
                            return Ok(Err(AppError::forbidden(format!(
                                "the assigning office issued this plan: {why}; an agency may add its own stages, targets and rounds to it, not remove or postpone the office's"
                            ))));
                        }
                        issuer = o.issuer_agency_id;
                    }
                    let version = $module::save(&mut tx, &store2, old.as_ref(), &plan, issuer, now).await?;
                    tx.commit().await?;
                    Ok::<_, StoreError>(Ok(StoredPlan { plan, issuer_agency_id: issuer, version }))
                }};
            }
            match &pool {
                Pool::Sqlite(p) => run!(p, sqlite),
                Pool::Postgres(p) => run!(p, postgres),
            }
        })
        .await
        .map_err(|e| AppError::internal(&e))??;
    store.timers().scheduled();
    Ok(out)
}
