//! gRPC (`banli.followup.v1`): the same capabilities as REST, through the same functions (and so
//! the same checks and errors); every call needs `authorization: Bearer <key>`.

use banli_api::grpc::{opt_uuid, request_hash, uuid};
use banli_api::{AppError, Principal};
use banli_domain::ids::{AgencyId, NoticeId, SuggestionId};
use banli_proto::followup::v1 as pb;
use pb::follow_up_service_server::{FollowUpService, FollowUpServiceServer};
use time::Date;
use tonic::service::RoutesBuilder;
use tonic::{Request, Response, Status};

use crate::app::{
    AlertsParams, AppState, CircularParams, DueSoonParams, LedgerParams, MetricsParams,
    NoticesParams, OverdueParams, ReportParams, StageBody, StagePlanBody, StagePlanParams,
};
use crate::notices::{Command, StoredNotice};

/// The full names of this service's gRPC services.
pub const NAMES: [&str; 1] = ["banli.followup.v1.FollowUpService"];

/// Adds the follow-up service to `routes`.
pub fn add_services(state: AppState, routes: &mut RoutesBuilder) {
    routes.add_service(
        FollowUpServiceServer::new(Grpc { state }).max_decoding_message_size(64 * 1024),
    );
}

#[derive(Clone)]
pub struct Grpc {
    state: AppState,
}

impl std::fmt::Debug for Grpc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Grpc").finish_non_exhaustive()
    }
}

fn day(field: &str, s: &str) -> Result<Option<Date>, AppError> {
    if s.is_empty() {
        return Ok(None);
    }
    Date::parse(s, time::macros::format_description!("[year]-[month]-[day]"))
        .map(Some)
        .map_err(|_| AppError::malformed(format!("`{field}`: `{s}` is not a date (YYYY-MM-DD)")))
}

fn text(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

fn opt_day(d: Option<Date>) -> String {
    d.map(|d| d.to_string()).unwrap_or_default()
}

/// A serde enum's wire name (`notice`, `stage`, …).
fn name<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn notice_out(n: &StoredNotice) -> pb::Notice {
    let x = &n.notice;
    pb::Notice {
        response_document_sha256s: x
            .response_documents
            .iter()
            .map(|d| d.sha256.clone())
            .collect(),
        id: x.id.to_string(),
        issuer_agency_id: x.issuer.to_string(),
        target_agency_id: x.target.to_string(),
        suggestion_ids: x.suggestions.iter().map(ToString::to_string).collect(),
        level: name(&x.level),
        trigger: name(&x.trigger),
        body: x.body.clone(),
        issued_on: x.issued_on.to_string(),
        response_due: x.response_due.to_string(),
        state: name(&x.state),
        acknowledged_on: opt_day(x.acknowledged_on),
        response: x.response.clone().unwrap_or_default(),
        answered_on: opt_day(x.answered_on),
        answered_late: x.answered_late,
        escalated_to: x.escalated_to.map(|i| i.to_string()).unwrap_or_default(),
        version: n.version,
    }
}

fn plan_out(p: &crate::stages::StoredPlan) -> pb::StagePlan {
    pb::StagePlan {
        id: p.plan.id.to_string(),
        agency_id: p.plan.agency.to_string(),
        year: p.plan.year,
        starts_on: p.plan.starts_on.to_string(),
        stages: p
            .plan
            .stages
            .iter()
            .map(|s| pb::Stage {
                name: s.name.clone(),
                ends_on: s.ends_on.to_string(),
                targets: s.targets.iter().map(name).collect(),
                supervision_rounds: s
                    .supervision_rounds
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
            })
            .collect(),
        issuer_agency_id: p.issuer_agency_id.to_string(),
        version: p.version,
    }
}

impl Grpc {
    pub fn new(state: AppState) -> Grpc {
        Grpc { state }
    }

    async fn caller<T>(&self, req: &Request<T>) -> Result<Principal, AppError> {
        let token = banli_api::grpc::bearer(req.metadata())?;
        let reference = banli_api::grpc::reference(req.metadata())?;
        Ok((self.state.auth)(token.to_owned())
            .await?
            .presented(banli_api::grpc::client_cert(req.extensions()))?
            .with_reference(reference))
    }

    /// A notice command: the request converted at the edge (`TryFrom`), then the one
    /// notice path of the application (idempotency, version, decide, commit) as for REST.
    async fn notice_command<T>(&self, req: Request<T>) -> Result<Response<pb::Notice>, Status>
    where
        T: std::fmt::Debug + NoticeRequest,
        Command: TryFrom<T, Error = AppError>,
    {
        let p = self.caller(&req).await?;
        let meta = banli_api::grpc::idempotency_key(req.metadata())?;
        let r = req.into_inner();
        let once = banli_api::Once {
            key: banli_api::grpc::command_key(r.idempotency_key(), meta),
            hash: request_hash(&format!("{r:?}")),
        };
        let expected = r.expected_version();
        let cmd = Command::try_from(r)?;
        let st = &self.state;
        let (_, body) = crate::notices::run(
            &st.store,
            st.documents.as_ref(),
            &p,
            once,
            expected,
            cmd,
            st.clock.today(),
        )
        .await?;
        let v: serde_json::Value =
            serde_json::from_str(&body).map_err(|e| AppError::internal(&e))?;
        let notice = serde_json::from_value(v.clone()).map_err(|e| AppError::internal(&e))?;
        let version = v["version"].as_u64().unwrap_or_default();
        Ok(Response::new(notice_out(&StoredNotice { notice, version })))
    }
}

/// What a notice request carries besides its command.
trait NoticeRequest {
    fn idempotency_key(&self) -> &str;
    /// Zero (the proto default) is "no expectation".
    fn expected_version(&self) -> Option<u64>;
}

impl NoticeRequest for pb::IssueNoticeRequest {
    fn idempotency_key(&self) -> &str {
        &self.idempotency_key
    }
    fn expected_version(&self) -> Option<u64> {
        None
    }
}

impl NoticeRequest for pb::AcknowledgeNoticeRequest {
    fn idempotency_key(&self) -> &str {
        &self.idempotency_key
    }
    fn expected_version(&self) -> Option<u64> {
        (self.expected_version > 0).then_some(self.expected_version)
    }
}

impl NoticeRequest for pb::AnswerNoticeRequest {
    fn idempotency_key(&self) -> &str {
        &self.idempotency_key
    }
    fn expected_version(&self) -> Option<u64> {
        (self.expected_version > 0).then_some(self.expected_version)
    }
}

impl TryFrom<pb::IssueNoticeRequest> for Command {
    type Error = AppError;
    fn try_from(r: pb::IssueNoticeRequest) -> Result<Self, AppError> {
        let level = serde_json::from_value(serde_json::Value::String(r.level.clone()))
            .map_err(|_| {
                AppError::malformed(format!(
                    "`level`: `{}` is not reminder, notice, special_inspection, circular, on_site_supervision or assessment_deduction",
                    r.level
                ))
            })?;
        let suggestions = r
            .suggestion_ids
            .iter()
            .map(|s| uuid("suggestion_ids", s).map(SuggestionId))
            .collect::<Result<Vec<_>, _>>()?;
        let response_due = day("response_due", &r.response_due)?
            .ok_or_else(|| AppError::malformed("`response_due` is required"))?;
        Ok(Command::Issue {
            target: AgencyId(uuid("target_agency_id", &r.target_agency_id)?),
            suggestions,
            level,
            body: r.body,
            response_due,
        })
    }
}

impl TryFrom<pb::AcknowledgeNoticeRequest> for Command {
    type Error = AppError;
    fn try_from(r: pb::AcknowledgeNoticeRequest) -> Result<Self, AppError> {
        Ok(Command::Acknowledge(NoticeId(uuid(
            "notice_id",
            &r.notice_id,
        )?)))
    }
}

impl TryFrom<pb::AnswerNoticeRequest> for Command {
    type Error = AppError;
    fn try_from(r: pb::AnswerNoticeRequest) -> Result<Self, AppError> {
        Ok(Command::Answer(
            NoticeId(uuid("notice_id", &r.notice_id)?),
            r.response,
            r.documents,
        ))
    }
}

#[tonic::async_trait]
impl FollowUpService for Grpc {
    async fn list_overdue(
        &self,
        req: Request<pb::ListOverdueRequest>,
    ) -> Result<Response<pb::ListDueResponse>, Status> {
        let p = self.caller(&req).await?;
        let r = req.into_inner();
        let q = OverdueParams {
            agency_id: opt_uuid("agency_id", &r.agency_id)?,
            division_id: opt_uuid("division_id", &r.division_id)?,
            level: text(r.level),
        };
        let items = crate::app::overdue_of(&self.state, &p, q).await?;
        Ok(Response::new(pb::ListDueResponse {
            items: items
                .into_iter()
                .map(|i| pb::DueItem {
                    suggestion_id: i.deadline.suggestion_id,
                    assignment_id: i.deadline.assignment_id,
                    agency_id: i.deadline.agency_id,
                    kind: i.deadline.kind,
                    due: i.deadline.due.to_string(),
                    previous_due: opt_day(i.deadline.previous_due),
                    level: i.level,
                    days_overdue: i.days_overdue,
                    division_id: i.deadline.division_id.unwrap_or_default(),
                })
                .collect(),
        }))
    }

    async fn list_due_soon(
        &self,
        req: Request<pb::ListDueSoonRequest>,
    ) -> Result<Response<pb::ListDueResponse>, Status> {
        let p = self.caller(&req).await?;
        let r = req.into_inner();
        let q = DueSoonParams {
            agency_id: opt_uuid("agency_id", &r.agency_id)?,
            division_id: opt_uuid("division_id", &r.division_id)?,
            within_days: r.within_days,
        };
        let items = crate::app::due_soon_of(&self.state, &p, q).await?;
        Ok(Response::new(pb::ListDueResponse {
            items: items
                .into_iter()
                .map(|d| pb::DueItem {
                    suggestion_id: d.suggestion_id,
                    assignment_id: d.assignment_id,
                    agency_id: d.agency_id,
                    kind: d.kind,
                    due: d.due.to_string(),
                    previous_due: opt_day(d.previous_due),
                    level: String::new(),
                    days_overdue: 0,
                    division_id: d.division_id.unwrap_or_default(),
                })
                .collect(),
        }))
    }

    async fn list_alerts(
        &self,
        req: Request<pb::ListAlertsRequest>,
    ) -> Result<Response<pb::ListAlertsResponse>, Status> {
        let p = self.caller(&req).await?;
        let r = req.into_inner();
        let q = AlertsParams {
            agency_id: opt_uuid("agency_id", &r.agency_id)?,
            limit: (r.limit > 0).then_some(r.limit),
        };
        let items = crate::app::alerts_of(&self.state, &p, q).await?;
        Ok(Response::new(pb::ListAlertsResponse {
            items: items
                .into_iter()
                .map(|a| pb::Alert {
                    suggestion_id: a.suggestion_id,
                    assignment_id: a.assignment_id,
                    agency_id: a.agency_id,
                    kind: a.kind,
                    due: a.due.to_string(),
                    alert: a.alert,
                    level: a.level,
                    fired_at: a
                        .fired_at
                        .format(&time::format_description::well_known::Rfc3339)
                        .unwrap_or_default(),
                })
                .collect(),
        }))
    }

    async fn issue_notice(
        &self,
        req: Request<pb::IssueNoticeRequest>,
    ) -> Result<Response<pb::Notice>, Status> {
        self.notice_command(req).await
    }

    async fn get_notice(
        &self,
        req: Request<pb::GetNoticeRequest>,
    ) -> Result<Response<pb::Notice>, Status> {
        let p = self.caller(&req).await?;
        let id = NoticeId(uuid("notice_id", &req.get_ref().notice_id)?);
        let n = crate::notices::get(&self.state.store, &p, id).await?;
        Ok(Response::new(notice_out(&n)))
    }

    async fn acknowledge_notice(
        &self,
        req: Request<pb::AcknowledgeNoticeRequest>,
    ) -> Result<Response<pb::Notice>, Status> {
        self.notice_command(req).await
    }

    async fn answer_notice(
        &self,
        req: Request<pb::AnswerNoticeRequest>,
    ) -> Result<Response<pb::Notice>, Status> {
        self.notice_command(req).await
    }

    async fn list_notices(
        &self,
        req: Request<pb::ListNoticesRequest>,
    ) -> Result<Response<pb::ListNoticesResponse>, Status> {
        let p = self.caller(&req).await?;
        let r = req.into_inner();
        let q = NoticesParams {
            agency_id: opt_uuid("agency_id", &r.agency_id)?,
            state: text(r.state),
            limit: (r.limit > 0).then_some(r.limit),
        };
        let rows = crate::app::notices_of(&self.state, &p, q).await?;
        let mut notices = Vec::with_capacity(rows.len());
        for (json, version) in rows {
            let notice = serde_json::from_str(&json).map_err(|e| AppError::internal(&e))?;
            notices.push(notice_out(&StoredNotice {
                notice,
                version: version.max(0) as u64,
            }));
        }
        Ok(Response::new(pb::ListNoticesResponse { notices }))
    }

    async fn set_stage_plan(
        &self,
        req: Request<pb::SetStagePlanRequest>,
    ) -> Result<Response<pb::StagePlan>, Status> {
        let p = self.caller(&req).await?;
        let meta = banli_api::grpc::idempotency_key(req.metadata())?;
        let r = req.into_inner();
        let request = format!("{r:?}");
        let mut stages = Vec::with_capacity(r.stages.len());
        for s in r.stages {
            let targets = s
                .targets
                .iter()
                .map(|t| {
                    serde_json::from_value(serde_json::Value::String(t.clone())).map_err(|_| {
                        AppError::malformed(format!(
                            "`targets`: `{t}` is not all_signed_for, all_communicated, all_replied or all_feedback_in"
                        ))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            let mut rounds = Vec::with_capacity(s.supervision_rounds.len());
            for d in &s.supervision_rounds {
                rounds.push(
                    day("supervision_rounds", d)?
                        .ok_or_else(|| AppError::malformed("`supervision_rounds`: a date each"))?,
                );
            }
            stages.push(StageBody {
                name: s.name,
                ends_on: day("ends_on", &s.ends_on)?
                    .ok_or_else(|| AppError::malformed("`ends_on` is required"))?,
                targets,
                supervision_rounds: rounds,
            });
        }
        let body = StagePlanBody {
            agency_id: uuid("agency_id", &r.agency_id)?,
            year: r.year,
            starts_on: day("starts_on", &r.starts_on)?,
            stages,
        };
        let st = &self.state;
        let key = banli_api::grpc::command_key(&r.idempotency_key, meta);
        let key = key.as_deref();
        let (_, json) = banli_api::idempotent(
            st.store.db(),
            st.store.idempotency_keys(),
            &p,
            key,
            &request_hash(&request),
            || async {
                let plan = crate::app::plan_of(st, body)?;
                let expected = (r.expected_version > 0).then_some(r.expected_version);
                let stored = crate::stages::set(&st.store, &p, plan, expected).await?;
                let v = serde_json::to_string(&stored).map_err(|e| AppError::internal(&e))?;
                Ok((201, v))
            },
        )
        .await?;
        let v: serde_json::Value =
            serde_json::from_str(&json).map_err(|e| AppError::internal(&e))?;
        let plan = serde_json::from_value(v.clone()).map_err(|e| AppError::internal(&e))?;
        let issuer = v["issuer_agency_id"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .map(AgencyId)
            .ok_or_else(|| AppError::internal(&"a stored plan without its issuer"))?;
        Ok(Response::new(plan_out(&crate::stages::StoredPlan {
            plan,
            issuer_agency_id: issuer,
            version: v["version"].as_u64().unwrap_or_default(),
        })))
    }

    async fn get_stage_plan(
        &self,
        req: Request<pb::GetStagePlanRequest>,
    ) -> Result<Response<pb::StagePlan>, Status> {
        let p = self.caller(&req).await?;
        let r = req.into_inner();
        let q = StagePlanParams {
            agency_id: opt_uuid("agency_id", &r.agency_id)?,
            year: r.year,
        };
        let plan = crate::app::stage_plan_of(&self.state, &p, q).await?;
        Ok(Response::new(plan_out(&plan)))
    }

    async fn get_stage_circular(
        &self,
        req: Request<pb::GetStageCircularRequest>,
    ) -> Result<Response<pb::StageCircular>, Status> {
        let p = self.caller(&req).await?;
        let r = req.into_inner();
        let q = CircularParams {
            agency_id: opt_uuid("agency_id", &r.agency_id)?,
            year: r.year,
            stage: r.stage as usize,
            format: None,
        };
        let (progress, items, rates) = crate::app::circular_of(&self.state, &p, &q).await?;
        let name = crate::app::agency_name(&self.state, &progress.agency.to_string()).await;
        let titles = |id: &str| {
            items
                .iter()
                .find(|s| s.id.to_string() == id)
                .map(|s| format!("{} {}", s.details.number, s.details.title))
                .unwrap_or_else(|| id.to_owned())
        };
        Ok(Response::new(pb::StageCircular {
            json: crate::app::circular_json(&progress, &rates)?,
            markdown: crate::stages::circular_markdown(&progress, &rates, &name, &titles),
        }))
    }

    async fn get_ledger(
        &self,
        req: Request<pb::GetLedgerRequest>,
    ) -> Result<Response<pb::Ledger>, Status> {
        let p = self.caller(&req).await?;
        let r = req.into_inner();
        let q = LedgerParams {
            agency_id: opt_uuid("agency_id", &r.agency_id)?,
            year: (r.year != 0).then_some(r.year),
            state: text(r.state),
            format: None,
        };
        let items = crate::app::ledger_of(&self.state, &p, q).await?;
        Ok(Response::new(pb::Ledger {
            items: items
                .into_iter()
                .map(|i| pb::LedgerItem {
                    suggestion_id: i.suggestion_id.to_string(),
                    session_id: i.session_id.to_string(),
                    number: i.number,
                    title: i.title,
                    year: i.year,
                    first_class: i.first_class.as_str().to_owned(),
                    class: i.class.as_str().to_owned(),
                    converted_at: opt_day(i.converted_at),
                    key_item: i.key_item,
                    commitments: i
                        .commitments
                        .into_iter()
                        .map(|c| pb::Commitment {
                            id: c.id.to_string(),
                            measure: c.measure,
                            owner_agency_id: c.owner_agency_id.to_string(),
                            division_id: c.division_id.map(|d| d.to_string()).unwrap_or_default(),
                            target_date: c.target_date.to_string(),
                            state: c.state.to_owned(),
                            overdue: c.overdue,
                            progress: c
                                .progress
                                .into_iter()
                                .map(|p| pb::ProgressReport {
                                    note: p.note,
                                    on: p.on.to_string(),
                                })
                                .collect(),
                            evidence: c.evidence,
                            converted_on: opt_day(c.converted_on),
                        })
                        .collect(),
                })
                .collect(),
        }))
    }

    async fn create_topic(
        &self,
        req: Request<pb::CreateTopicRequest>,
    ) -> Result<Response<pb::Topic>, Status> {
        let p = self.caller(&req).await?;
        let r = req.into_inner();
        let body = crate::topics::TopicBody {
            title: r.title,
            description: r.description,
            owner_agency_id: opt_uuid("owner_agency_id", &r.owner_agency_id)?,
        };
        Ok(Response::new(topic_out(
            crate::topics::create(&self.state, &p, body).await?,
        )?))
    }

    async fn list_topics(
        &self,
        req: Request<pb::ListTopicsRequest>,
    ) -> Result<Response<pb::ListTopicsResponse>, Status> {
        let p = self.caller(&req).await?;
        let topics = crate::topics::list(&self.state, &p)
            .await?
            .into_iter()
            .map(topic_out)
            .collect::<Result<Vec<_>, AppError>>()?;
        Ok(Response::new(pb::ListTopicsResponse { topics }))
    }

    async fn get_topic(
        &self,
        req: Request<pb::GetTopicRequest>,
    ) -> Result<Response<pb::Topic>, Status> {
        let p = self.caller(&req).await?;
        let id = uuid("id", &req.into_inner().id)?;
        Ok(Response::new(topic_out(
            crate::topics::view(&self.state, &p, id).await?,
        )?))
    }

    async fn link_topic_item(
        &self,
        req: Request<pb::TopicItemRequest>,
    ) -> Result<Response<pb::Topic>, Status> {
        self.topic_item(req, true).await
    }

    async fn unlink_topic_item(
        &self,
        req: Request<pb::TopicItemRequest>,
    ) -> Result<Response<pb::Topic>, Status> {
        self.topic_item(req, false).await
    }

    async fn get_metrics(
        &self,
        req: Request<pb::GetMetricsRequest>,
    ) -> Result<Response<pb::Metrics>, Status> {
        let p = self.caller(&req).await?;
        let r = req.into_inner();
        let q = MetricsParams {
            agency_id: opt_uuid("agency_id", &r.agency_id)?,
            year: (r.year != 0).then_some(r.year),
            as_of: day("as_of", &r.as_of)?,
            division_id: opt_uuid("division_id", &r.division_id)?,
            role: text(r.role),
            session_id: opt_uuid("session_id", &r.session_id)?,
            category: text(r.category),
            deputy_id: opt_uuid("deputy_id", &r.deputy_id)?,
            topic_id: opt_uuid("topic_id", &r.topic_id)?,
            delegation: text(r.delegation),
        };
        let (query, m) = crate::app::metrics_of(&self.state, &p, q).await?;
        Ok(Response::new(metrics_out(query.as_of, &m)))
    }

    async fn get_metrics_breakdown(
        &self,
        req: Request<pb::GetMetricsBreakdownRequest>,
    ) -> Result<Response<pb::MetricsBreakdown>, Status> {
        let p = self.caller(&req).await?;
        let r = req.into_inner();
        let q = crate::app::BreakdownParams {
            by: r.by.clone(),
            agency_id: opt_uuid("agency_id", &r.agency_id)?,
            year: (r.year != 0).then_some(r.year),
            as_of: day("as_of", &r.as_of)?,
            format: None,
        };
        let (whole, groups, truncated) = crate::app::metrics_breakdown(&self.state, &p, q).await?;
        Ok(Response::new(pb::MetricsBreakdown {
            by: r.by,
            as_of: whole.as_of.to_string(),
            groups: groups
                .into_iter()
                .map(|g| pb::MetricsGroup {
                    metrics: Some(metrics_out(whole.as_of, &g.report)),
                    key: g.key,
                    label: g.label,
                })
                .collect(),
            truncated,
        }))
    }

    async fn get_annual_report(
        &self,
        req: Request<pb::GetAnnualReportRequest>,
    ) -> Result<Response<pb::AnnualReport>, Status> {
        let p = self.caller(&req).await?;
        let r = req.into_inner();
        let q = ReportParams {
            agency_id: opt_uuid("agency_id", &r.agency_id)?,
            year: r.year,
            format: None,
        };
        let report = crate::app::annual_report_of(&self.state, &p, q).await?;
        Ok(Response::new(pb::AnnualReport {
            json: serde_json::to_string(&report).map_err(|e| AppError::internal(&e))?,
            markdown: crate::report::markdown(&report),
        }))
    }
}

impl Grpc {
    /// Links (`link`) or unlinks a topic's item.
    async fn topic_item(
        &self,
        req: Request<pb::TopicItemRequest>,
        link: bool,
    ) -> Result<Response<pb::Topic>, Status> {
        let p = self.caller(&req).await?;
        let r = req.into_inner();
        let (t, s) = (
            uuid("topic_id", &r.topic_id)?,
            uuid("suggestion_id", &r.suggestion_id)?,
        );
        let view = crate::topics::link(&self.state, &p, t, s, link).await?;
        Ok(Response::new(topic_out(view)?))
    }
}

fn topic_out(t: crate::topics::TopicView) -> Result<pb::Topic, AppError> {
    Ok(pb::Topic {
        id: t.id.to_string(),
        owner_agency_id: t.owner_agency_id.to_string(),
        title: t.title.clone(),
        description: t.description.clone(),
        created_on: t.created_on.to_string(),
        version: t.version,
        suggestion_ids: t
            .items
            .iter()
            .map(|i| i.suggestion_id.to_string())
            .collect(),
        json: serde_json::to_string(&t).map_err(|e| AppError::internal(&e))?,
    })
}

/// A report's counts and rates, as of `as_of`.
fn metrics_out(as_of: time::Date, m: &banli_domain::metrics::Report) -> pb::Metrics {
    let rate = |r: &banli_domain::metrics::Rate| pb::Rate {
        numerator: r.numerator,
        denominator: r.denominator,
        value: r.value(),
        definition_version: r.definition_version.clone(),
        definition: r.definition.clone(),
    };
    pb::Metrics {
        as_of: as_of.to_string(),
        lead: m.lead,
        co: m.co,
        separate: m.separate,
        sole: m.sole,
        rates: m
            .named()
            .into_iter()
            .map(|(k, r)| (k.to_owned(), rate(r)))
            .collect(),
    }
}
