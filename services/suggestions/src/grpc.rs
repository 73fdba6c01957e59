//! gRPC (`banli.suggestions.v1`): the same application layer as REST, with the standard health
//! service and server reflection. Every call needs the `authorization: Bearer <key>` metadata.

use std::future::Future;

use banli_api::grpc::{opt_uuid, signer, uuid};
use banli_calendar::DurationSpec;
use banli_domain::ids::*;
use banli_domain::suggestion::*;
use banli_proto::common::v1 as pc;
use banli_proto::suggestions::v1 as pb;
use pb::calendar_service_server::{CalendarService, CalendarServiceServer};
use pb::suggestion_service_server::{SuggestionService, SuggestionServiceServer};
use time::Date;
use tokio::net::TcpListener;
use tonic::service::RoutesBuilder;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::app::App;
use crate::dto::{self, DeadlineView, SuggestionView};
use crate::error::AppError;
use crate::policy::Principal;
use crate::store::ListFilter;

/// The full names of this service's gRPC services.
pub const NAMES: [&str; 2] = [
    "banli.suggestions.v1.SuggestionService",
    "banli.suggestions.v1.CalendarService",
];

/// Adds this service's gRPC services to `routes`.
pub fn add_services(app: App, routes: &mut RoutesBuilder) {
    let grpc = Grpc { app };
    routes
        .add_service(
            SuggestionServiceServer::new(grpc.clone())
                .max_decoding_message_size(crate::http::DEFAULT_BODY_LIMIT),
        )
        .add_service(
            CalendarServiceServer::new(grpc)
                .max_decoding_message_size(crate::http::DEFAULT_BODY_LIMIT),
        );
}

/// Serves this service alone on `listener` until `shutdown` completes.
pub async fn serve(
    app: App,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mut routes = RoutesBuilder::default();
    add_services(app.clone(), &mut routes);
    let auth: banli_api::Authenticator = std::sync::Arc::new(move |token: String| {
        let app = app.clone();
        Box::pin(async move { app.authenticate(&token).await })
    });
    banli_api::grpc::serve(routes, &NAMES, listener, auth, shutdown).await
}

/// The gRPC services over the application layer.
#[derive(Debug, Clone)]
pub struct Grpc {
    app: App,
}

impl Grpc {
    pub fn new(app: App) -> Grpc {
        Grpc { app }
    }

    async fn caller<T>(&self, req: &Request<T>) -> Result<Principal, Status> {
        let token = banli_api::grpc::bearer(req.metadata())?;
        let reference = banli_api::grpc::reference(req.metadata())?;
        Ok(self
            .app
            .authenticate(token)
            .await?
            .presented(banli_api::grpc::client_cert(req.extensions()))?
            .with_reference(reference))
    }

    /// A command on a suggestion, once per idempotency key (or reference id): a retry answers
    /// as the first time did.
    async fn command<F>(
        &self,
        p: &Principal,
        once: Once,
        id: &str,
        expected: u64,
        build: F,
    ) -> Result<Response<pb::Suggestion>, Status>
    where
        F: FnOnce(&Suggestion, Date) -> Result<CommandKind, AppError>,
    {
        let id = uuid("suggestion_id", id)?;
        let app = self.app.clone();
        let view: SuggestionView = self
            .once(p, once, 200, || async move {
                app.execute(p, id, (expected > 0).then_some(expected), build)
                    .await
            })
            .await?;
        Ok(Response::new(suggestion(&view)))
    }

    /// Runs `run` through the idempotency store, as REST does for every POST: the first answer
    /// (or refusal) is kept and a retry with the same key gets it again; the same key with
    /// another request is INVALID_ARGUMENT (`idempotency_key_reused`).
    async fn once<V, F, Fut>(
        &self,
        p: &Principal,
        once: Once,
        status: u16,
        run: F,
    ) -> Result<V, Status>
    where
        V: serde::Serialize + serde::de::DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<V, AppError>>,
    {
        let (_, json) = self
            .app
            .idempotent(p, once.key.as_deref(), &once.hash, || async move {
                let v = run().await?;
                Ok((
                    status,
                    serde_json::to_string(&v).map_err(|e| AppError::internal(&e))?,
                ))
            })
            .await?;
        Ok(serde_json::from_str(&json).map_err(|e| AppError::internal(&e))?)
    }
}

/// What makes a gRPC command idempotent: the `idempotency-key` metadata (or the request's own
/// `idempotency_key` field) and the request's hash; a `reference-id` is on the principal.
struct Once {
    key: Option<String>,
    hash: String,
}

impl Once {
    /// The request's own `idempotency_key` field, when it has one, before the metadata's.
    fn or_field(self, field: &str) -> Once {
        Once {
            key: Some(field.to_owned())
                .filter(|k| !k.is_empty())
                .or(self.key),
            hash: self.hash,
        }
    }
}

/// The idempotency key and hash of a command's request (the message's type and content).
fn once_of<T: std::fmt::Debug>(req: &Request<T>) -> Result<Once, Status> {
    Ok(Once {
        key: banli_api::grpc::idempotency_key(req.metadata())?,
        hash: banli_api::grpc::request_hash(&format!(
            "{}:{:?}",
            std::any::type_name::<T>(),
            req.get_ref()
        )),
    })
}

fn date(field: &str, s: &str) -> Result<Date, AppError> {
    banli_calendar::parse_date(s)
        .map_err(|_| AppError::malformed(format!("{field} `{s}` is not a YYYY-MM-DD date")))
}

fn opt_date(field: &str, s: &str) -> Result<Option<Date>, AppError> {
    if s.is_empty() {
        Ok(None)
    } else {
        date(field, s).map(Some)
    }
}

fn text(d: Date) -> String {
    dto::date_text(d)
}

fn role(v: i32) -> Result<UnitRole, AppError> {
    match pc::UnitRole::try_from(v) {
        Ok(pc::UnitRole::Lead) => Ok(UnitRole::Lead),
        Ok(pc::UnitRole::Co) => Ok(UnitRole::Co),
        Ok(pc::UnitRole::Separate) => Ok(UnitRole::Separate),
        Ok(pc::UnitRole::Sole) => Ok(UnitRole::Sole),
        _ => Err(AppError::malformed(
            "role must be LEAD, CO, SEPARATE or SOLE",
        )),
    }
}

fn role_to(r: &str) -> i32 {
    match r {
        "lead" => pc::UnitRole::Lead as i32,
        "co" => pc::UnitRole::Co as i32,
        "separate" => pc::UnitRole::Separate as i32,
        "sole" => pc::UnitRole::Sole as i32,
        _ => 0,
    }
}

fn class(v: i32) -> Result<ReplyClass, AppError> {
    match pc::ReplyClass::try_from(v) {
        Ok(pc::ReplyClass::A) => Ok(ReplyClass::A),
        Ok(pc::ReplyClass::B) => Ok(ReplyClass::B),
        Ok(pc::ReplyClass::C) => Ok(ReplyClass::C),
        Ok(pc::ReplyClass::D) => Ok(ReplyClass::D),
        _ => Err(AppError::malformed("class must be A, B, C or D")),
    }
}

fn class_to(c: &str) -> i32 {
    match c {
        "A" => pc::ReplyClass::A as i32,
        "B" => pc::ReplyClass::B as i32,
        "C" => pc::ReplyClass::C as i32,
        "D" => pc::ReplyClass::D as i32,
        _ => 0,
    }
}

fn satisfaction(v: i32) -> Result<Option<Satisfaction>, AppError> {
    match pc::Satisfaction::try_from(v) {
        Ok(pc::Satisfaction::Unspecified) => Ok(None),
        Ok(pc::Satisfaction::Satisfied) => Ok(Some(Satisfaction::Satisfied)),
        Ok(pc::Satisfaction::BasicallySatisfied) => Ok(Some(Satisfaction::BasicallySatisfied)),
        Ok(pc::Satisfaction::Dissatisfied) => Ok(Some(Satisfaction::Dissatisfied)),
        Err(_) => Err(AppError::malformed("unknown satisfaction level")),
    }
}

fn deadline(d: &DeadlineView) -> pc::Deadline {
    pc::Deadline {
        due: text(d.due),
        start: text(d.start),
        start_label: d.start_label.clone(),
        duration: d.duration.clone(),
        calendar_version: d.calendar_version.clone(),
        assumed_weekends_only: d.assumed_weekends_only,
        trace: d.trace.clone(),
    }
}

fn suggestion(v: &SuggestionView) -> pb::Suggestion {
    pb::Suggestion {
        id: v.id.to_string(),
        version: v.version,
        state: v.state.clone(),
        session_id: v.session_id.to_string(),
        number: v.number.clone(),
        title: v.title.clone(),
        body: v.body.clone(),
        category: v.category.clone(),
        recess_item: v.kind == "recess",
        lead_deputy_id: v.lead_deputy_id.to_string(),
        co_signer_ids: v.co_signer_ids.iter().map(Uuid::to_string).collect(),
        key_supervised: v.key_supervised,
        assignments: v
            .assignments
            .iter()
            .map(|a| pb::Assignment {
                id: a.id.to_string(),
                agency_id: a.agency_id.to_string(),
                role: role_to(&a.role),
                state: a.state.clone(),
                assigned_on: text(a.assigned_on),
                objection_deadline: Some(deadline(&a.deadlines.objection)),
                first_contact_deadline: a.deadlines.first_contact.as_ref().map(deadline),
                co_opinion_deadline: a.deadlines.co_opinion.as_ref().map(deadline),
                reply_deadline: a.deadlines.reply.as_ref().map(deadline),
                replaces_assignment_id: a.replaces.map(|r| r.to_string()).unwrap_or_default(),
            })
            .collect(),
        replies: v
            .replies
            .iter()
            .map(|r| pb::Reply {
                id: r.id.to_string(),
                assignment_id: r.assignment_id.to_string(),
                reply_type: match r.reply_type.as_str() {
                    "initial" => pc::ReplyType::Initial as i32,
                    "re_handled" => pc::ReplyType::ReHandled as i32,
                    "supplementary" => pc::ReplyType::Supplementary as i32,
                    "joint" => pc::ReplyType::Joint as i32,
                    _ => 0,
                },
                document_number: r.document_number.clone(),
                body: r.body.clone(),
                class: class_to(&r.class),
                signer: Some(pc::Signer {
                    name: r.signer.name.clone(),
                    position: match r.signer.position.as_str() {
                        "principal_head" => pc::SignerPosition::PrincipalHead as i32,
                        "authorized_leader" => pc::SignerPosition::AuthorizedLeader as i32,
                        "division_head" => pc::SignerPosition::DivisionHead as i32,
                        _ => pc::SignerPosition::Staff as i32,
                    },
                }),
                opinion_ids: r.opinion_ids.iter().map(Uuid::to_string).collect(),
                on: text(r.on),
            })
            .collect(),
        current_class: v.current_class.as_deref().map(class_to).unwrap_or_default(),
        feedback_deadline: v.feedback_deadline.as_ref().map(deadline),
        rehandling_rounds: v.rehandling_rounds,
        confidential: v.confidential,
        commitments: v
            .commitments
            .iter()
            .map(|c| pb::Commitment {
                id: c.id.to_string(),
                assignment_id: c.assignment_id.to_string(),
                measure: c.measure.clone(),
                owner_agency_id: c.owner_agency_id.to_string(),
                division_id: c.division_id.map(|d| d.to_string()).unwrap_or_default(),
                target_date: text(c.target_date),
                state: c.state.clone(),
                progress: c
                    .progress
                    .iter()
                    .map(|p| pb::CommitmentProgress {
                        note: p.note.clone(),
                        on: text(p.on),
                    })
                    .collect(),
                evidence: c.evidence.clone(),
                converted_on: c.converted_on.map(text).unwrap_or_default(),
            })
            .collect(),
    }
}

#[tonic::async_trait]
impl SuggestionService for Grpc {
    async fn create_session(
        &self,
        req: Request<pb::CreateSessionRequest>,
    ) -> Result<Response<pb::Session>, Status> {
        let p = self.caller(&req).await?;
        let once = once_of(&req)?.or_field(&req.get_ref().idempotency_key);
        let s = req
            .into_inner()
            .session
            .ok_or_else(|| AppError::malformed("session is required"))?;
        let body = match s.body.as_str() {
            "npc" => Body::Npc,
            "cppcc" => Body::Cppcc,
            other => {
                return Err(
                    AppError::malformed(format!("body `{other}` is not npc or cppcc")).into(),
                );
            }
        };
        let r = dto::CreateSession {
            body,
            term: s.term,
            number: s.number,
            name: s.name,
            opens_on: date("opens_on", &s.opens_on)?,
            closes_on: date("closes_on", &s.closes_on)?,
        };
        let app = self.app.clone();
        let v: dto::SessionView = self
            .once(&p, once, 201, || async { app.create_session(&p, r).await })
            .await?;
        Ok(Response::new(session(&v)))
    }

    async fn list_sessions(
        &self,
        req: Request<pb::ListSessionsRequest>,
    ) -> Result<Response<pb::ListSessionsResponse>, Status> {
        let p = self.caller(&req).await?;
        let sessions = self
            .app
            .list_sessions(&p)
            .await?
            .iter()
            .map(session)
            .collect();
        Ok(Response::new(pb::ListSessionsResponse {
            sessions,
            next_page_token: String::new(),
        }))
    }

    async fn create_deputy(
        &self,
        req: Request<pb::CreateDeputyRequest>,
    ) -> Result<Response<pb::Deputy>, Status> {
        let p = self.caller(&req).await?;
        let once = once_of(&req)?.or_field(&req.get_ref().idempotency_key);
        let d = req
            .into_inner()
            .deputy
            .ok_or_else(|| AppError::malformed("deputy is required"))?;
        let app = self.app.clone();
        let v: dto::DeputyView = self
            .once(&p, once, 201, || async {
                app.create_deputy(
                    &p,
                    dto::CreateDeputy {
                        name: d.name,
                        delegation: d.delegation,
                        contact: d.contact,
                    },
                )
                .await
            })
            .await?;
        Ok(Response::new(pb::Deputy {
            id: v.id.to_string(),
            name: v.name,
            delegation: v.delegation,
            contact: v.contact,
        }))
    }

    async fn get_deputy(
        &self,
        req: Request<pb::GetDeputyRequest>,
    ) -> Result<Response<pb::Deputy>, Status> {
        let p = self.caller(&req).await?;
        let v = self
            .app
            .get_deputy(&p, uuid("id", &req.get_ref().id)?)
            .await?;
        Ok(Response::new(pb::Deputy {
            id: v.id.to_string(),
            name: v.name,
            delegation: v.delegation,
            contact: v.contact,
        }))
    }

    async fn submit_suggestion(
        &self,
        req: Request<pb::SubmitSuggestionRequest>,
    ) -> Result<Response<pb::Suggestion>, Status> {
        let p = self.caller(&req).await?;
        let once = once_of(&req)?;
        let r = req.into_inner();
        let co_signer_ids = r
            .co_signer_ids
            .iter()
            .map(|s| uuid("co_signer_ids", s))
            .collect::<Result<Vec<_>, _>>()?;
        let body = dto::SubmitSuggestion {
            session_id: uuid("session_id", &r.session_id)?,
            number: r.number,
            title: r.title,
            body: r.body,
            category: r.category,
            kind: Some(if r.recess_item {
                ItemKind::Recess
            } else {
                ItemKind::Session
            }),
            lead_deputy_id: uuid("lead_deputy_id", &r.lead_deputy_id)?,
            co_signer_ids,
            key_supervised: r.key_supervised,
            priority: Priority::Normal,
            confidential: r.confidential,
            disclosure: Disclosure::Full,
            received_on: None,
        };
        let once = once.or_field(&r.idempotency_key);
        let app = self.app.clone();
        let v: SuggestionView = self
            .once(&p, once, 201, || async { app.submit(&p, body).await })
            .await?;
        Ok(Response::new(suggestion(&v)))
    }

    async fn start_review(
        &self,
        req: Request<pb::StartReviewRequest>,
    ) -> Result<Response<pb::Suggestion>, Status> {
        let p = self.caller(&req).await?;
        let once = once_of(&req)?;
        let r = req.into_inner();
        self.command(
            &p,
            once,
            &r.suggestion_id,
            r.expected_version,
            |_, today| Ok(CommandKind::StartReview { on: today }),
        )
        .await
    }

    async fn review_suggestion(
        &self,
        req: Request<pb::ReviewSuggestionRequest>,
    ) -> Result<Response<pb::Suggestion>, Status> {
        let p = self.caller(&req).await?;
        let once = once_of(&req)?;
        let r = req.into_inner();
        let decision = match pb::review_suggestion_request::Decision::try_from(r.decision) {
            Ok(pb::review_suggestion_request::Decision::Accept) => ReviewDecision::Accept,
            Ok(pb::review_suggestion_request::Decision::NotAccept) => ReviewDecision::NotAccept,
            Ok(pb::review_suggestion_request::Decision::ConvertToLetter) => {
                ReviewDecision::ConvertToLetter
            }
            _ => return Err(AppError::malformed("decision is required").into()),
        };
        self.command(
            &p,
            once,
            &r.suggestion_id,
            r.expected_version,
            |_, today| {
                Ok(CommandKind::Review {
                    decision,
                    reason: r.reason,
                    on: today,
                })
            },
        )
        .await
    }

    async fn withdraw_suggestion(
        &self,
        req: Request<pb::WithdrawSuggestionRequest>,
    ) -> Result<Response<pb::Suggestion>, Status> {
        let p = self.caller(&req).await?;
        let once = once_of(&req)?;
        let r = req.into_inner();
        self.command(
            &p,
            once,
            &r.suggestion_id,
            r.expected_version,
            |_, today| {
                Ok(CommandKind::Withdraw {
                    reason: r.reason,
                    on: today,
                })
            },
        )
        .await
    }

    async fn assign_suggestion(
        &self,
        req: Request<pb::AssignSuggestionRequest>,
    ) -> Result<Response<pb::Suggestion>, Status> {
        let p = self.caller(&req).await?;
        let once = once_of(&req)?;
        let r = req.into_inner();
        let once = once.or_field(&r.idempotency_key);
        let units = r
            .units
            .iter()
            .map(|u| {
                Ok(UnitAssignment {
                    assignment_id: AssignmentId::new(),
                    agency: AgencyId(uuid("agency_id", &u.agency_id)?),
                    role: role(u.role)?,
                })
            })
            .collect::<Result<Vec<_>, AppError>>()?;
        self.command(
            &p,
            once,
            &r.suggestion_id,
            r.expected_version,
            |_, today| Ok(CommandKind::Assign { units, on: today }),
        )
        .await
    }

    async fn dispatch(
        &self,
        req: Request<pb::DispatchRequest>,
    ) -> Result<Response<pb::Suggestion>, Status> {
        let p = self.caller(&req).await?;
        let once = once_of(&req)?;
        let r = req.into_inner();
        let assignment = AssignmentId(uuid("assignment_id", &r.assignment_id)?);
        let division = DivisionId(uuid("division_id", &r.division_id)?);
        let unit_divisions = self
            .app
            .unit_divisions(&p, uuid("suggestion_id", &r.suggestion_id)?, assignment.0)
            .await?;
        self.command(
            &p,
            once,
            &r.suggestion_id,
            r.expected_version,
            |_, today| {
                Ok(CommandKind::Dispatch {
                    assignment,
                    division,
                    handler: r.handler,
                    responsible_leader: r.responsible_leader,
                    leading_official: (!r.leading_official.is_empty())
                        .then_some(r.leading_official),
                    plan: r.plan,
                    unit_divisions,
                    on: today,
                })
            },
        )
        .await
    }

    async fn record_communication(
        &self,
        req: Request<pb::RecordCommunicationRequest>,
    ) -> Result<Response<pb::Suggestion>, Status> {
        let p = self.caller(&req).await?;
        let once = once_of(&req)?;
        let r = req.into_inner();
        let once = once.or_field(&r.idempotency_key);
        let parse = |field: &str, v: &str| -> Result<serde_json::Value, AppError> {
            if v.is_empty() {
                return Err(AppError::malformed(format!("{field} is required")));
            }
            Ok(serde_json::Value::String(v.to_owned()))
        };
        let phase: CommunicationPhase = serde_json::from_value(parse("phase", &r.phase)?)
            .map_err(|_| AppError::malformed("phase must be before, during, after or recess"))?;
        let method: CommunicationMethod = serde_json::from_value(parse("method", &r.method)?)
            .map_err(|_| AppError::malformed("unknown communication method"))?;
        let deputies = r
            .deputy_ids
            .iter()
            .map(|d| uuid("deputy_ids", d).map(DeputyId))
            .collect::<Result<Vec<_>, _>>()?;
        let assignment_id = AssignmentId(uuid("assignment_id", &r.assignment_id)?);
        let on = opt_date("on", &r.on)?;
        self.command(
            &p,
            once,
            &r.suggestion_id,
            r.expected_version,
            |_, today| {
                Ok(CommandKind::RecordCommunication {
                    communication: Communication {
                        id: CommunicationId::new(),
                        assignment_id,
                        phase,
                        method,
                        face_to_face: r.face_to_face,
                        deputies,
                        participants: r.participants,
                        summary: r.summary,
                        on: on.unwrap_or(today),
                    },
                })
            },
        )
        .await
    }

    async fn request_extension(
        &self,
        req: Request<pb::RequestExtensionRequest>,
    ) -> Result<Response<pb::Suggestion>, Status> {
        let p = self.caller(&req).await?;
        let once = once_of(&req)?;
        let r = req.into_inner();
        let assignment = AssignmentId(uuid("assignment_id", &r.assignment_id)?);
        let new_due = date("new_due", &r.new_due)?;
        self.command(
            &p,
            once,
            &r.suggestion_id,
            r.expected_version,
            |_, today| {
                Ok(CommandKind::RequestExtension {
                    assignment,
                    new_due,
                    reason: r.reason,
                    on: today,
                })
            },
        )
        .await
    }

    async fn decide_extension(
        &self,
        req: Request<pb::DecideExtensionRequest>,
    ) -> Result<Response<pb::Suggestion>, Status> {
        let p = self.caller(&req).await?;
        let once = once_of(&req)?;
        let r = req.into_inner();
        let assignment = AssignmentId(uuid("assignment_id", &r.assignment_id)?);
        self.command(
            &p,
            once,
            &r.suggestion_id,
            r.expected_version,
            |_, today| {
                Ok(CommandKind::DecideExtension {
                    assignment,
                    approve: r.approve,
                    on: today,
                })
            },
        )
        .await
    }

    async fn issue_reply(
        &self,
        req: Request<pb::IssueReplyRequest>,
    ) -> Result<Response<pb::Suggestion>, Status> {
        let p = self.caller(&req).await?;
        let once = once_of(&req)?;
        let r = req.into_inner();
        let once = once.or_field(&r.idempotency_key);
        let assignment_id = AssignmentId(uuid("assignment_id", &r.assignment_id)?);
        let class = class(r.class)?;
        let signer = signer(r.signer)?;
        let references = r
            .opinion_ids
            .iter()
            .map(|o| uuid("opinion_ids", o).map(OpinionId))
            .collect::<Result<Vec<_>, _>>()?;
        let countersigned_by = r
            .countersigned_by
            .iter()
            .map(|a| uuid("countersigned_by", a).map(AgencyId))
            .collect::<Result<Vec<_>, _>>()?;
        let commitments = r
            .commitments
            .iter()
            .map(|c| {
                Ok(CommitmentDraft {
                    id: CommitmentId::new(),
                    measure: c.measure.clone(),
                    division: opt_uuid("division_id", &c.division_id)?.map(DivisionId),
                    target_date: date("target_date", &c.target_date)?,
                })
            })
            .collect::<Result<Vec<_>, AppError>>()?;
        let reply_type = match pc::ReplyType::try_from(r.reply_type) {
            Ok(pc::ReplyType::Initial) => Some(ReplyType::Initial),
            Ok(pc::ReplyType::ReHandled) => Some(ReplyType::ReHandled),
            Ok(pc::ReplyType::Supplementary) => Some(ReplyType::Supplementary),
            Ok(pc::ReplyType::Joint) => Some(ReplyType::Joint),
            _ => None,
        };
        self.command(
            &p,
            once,
            &r.suggestion_id,
            r.expected_version,
            |s, today| {
                let reply_type = reply_type.unwrap_or(match s.state {
                    SuggestionState::ReHandling => ReplyType::ReHandled,
                    SuggestionState::InFollowUp => ReplyType::Supplementary,
                    _ => ReplyType::Initial,
                });
                Ok(CommandKind::IssueReply {
                    reply: Reply {
                        id: ReplyId::new(),
                        assignment_id,
                        reply_type,
                        document_number: r.document_number,
                        body: r.body,
                        class,
                        signer,
                        references,
                        countersigned_by,
                        round: 0,
                        on: today,
                    },
                    commitments,
                    explanation: (!r.explanation.is_empty()).then_some(r.explanation),
                })
            },
        )
        .await
    }

    async fn report_progress(
        &self,
        req: Request<pb::ReportProgressRequest>,
    ) -> Result<Response<pb::Suggestion>, Status> {
        let p = self.caller(&req).await?;
        let once = once_of(&req)?;
        let r = req.into_inner();
        let commitment = CommitmentId(uuid("commitment_id", &r.commitment_id)?);
        self.command(
            &p,
            once,
            &r.suggestion_id,
            r.expected_version,
            |_, today| {
                Ok(CommandKind::ReportProgress {
                    commitment,
                    note: r.note,
                    on: today,
                })
            },
        )
        .await
    }

    async fn convert_commitment(
        &self,
        req: Request<pb::ConvertCommitmentRequest>,
    ) -> Result<Response<pb::Suggestion>, Status> {
        let p = self.caller(&req).await?;
        let once = once_of(&req)?;
        let r = req.into_inner();
        let commitment = CommitmentId(uuid("commitment_id", &r.commitment_id)?);
        self.command(
            &p,
            once,
            &r.suggestion_id,
            r.expected_version,
            |_, today| {
                Ok(CommandKind::ConvertCommitment {
                    commitment,
                    evidence: r.evidence,
                    on: today,
                })
            },
        )
        .await
    }

    async fn change_class(
        &self,
        req: Request<pb::ChangeClassRequest>,
    ) -> Result<Response<pb::Suggestion>, Status> {
        let p = self.caller(&req).await?;
        let once = once_of(&req)?;
        let r = req.into_inner();
        let to = class(r.to)?;
        self.command(
            &p,
            once,
            &r.suggestion_id,
            r.expected_version,
            |_, today| {
                Ok(CommandKind::ChangeClass {
                    to,
                    reason: r.reason,
                    on: today,
                })
            },
        )
        .await
    }

    async fn record_feedback(
        &self,
        req: Request<pb::RecordFeedbackRequest>,
    ) -> Result<Response<pb::Suggestion>, Status> {
        let p = self.caller(&req).await?;
        let once = once_of(&req)?;
        let r = req.into_inner();
        let deputy = opt_uuid("deputy_id", &r.deputy_id)?
            .map(DeputyId)
            .or(p.deputy)
            .ok_or_else(|| AppError::invalid("deputy_id is required"))?;
        let level =
            satisfaction(r.level)?.ok_or_else(|| AppError::malformed("level is required"))?;
        let (handling, result) = (satisfaction(r.handling)?, satisfaction(r.result)?);
        self.command(
            &p,
            once,
            &r.suggestion_id,
            r.expected_version,
            |_, today| {
                Ok(CommandKind::RecordFeedback {
                    feedback: Feedback {
                        deputy,
                        level,
                        handling,
                        result,
                        comment: r.comment,
                        round: 0,
                        on: today,
                    },
                })
            },
        )
        .await
    }

    async fn close_feedback_window(
        &self,
        req: Request<pb::CloseFeedbackWindowRequest>,
    ) -> Result<Response<pb::Suggestion>, Status> {
        let p = self.caller(&req).await?;
        let once = once_of(&req)?;
        let r = req.into_inner();
        self.command(
            &p,
            once,
            &r.suggestion_id,
            r.expected_version,
            |_, today| Ok(CommandKind::CloseFeedbackWindow { on: today }),
        )
        .await
    }

    async fn resolve_escalation(
        &self,
        req: Request<pb::ResolveEscalationRequest>,
    ) -> Result<Response<pb::Suggestion>, Status> {
        let p = self.caller(&req).await?;
        let once = once_of(&req)?;
        let r = req.into_inner();
        self.command(
            &p,
            once,
            &r.suggestion_id,
            r.expected_version,
            |_, today| {
                Ok(CommandKind::ResolveEscalation {
                    outcome: r.outcome,
                    on: today,
                })
            },
        )
        .await
    }

    async fn get_suggestion(
        &self,
        req: Request<pb::GetSuggestionRequest>,
    ) -> Result<Response<pb::Suggestion>, Status> {
        let p = self.caller(&req).await?;
        let v = self.app.get(&p, uuid("id", &req.get_ref().id)?).await?;
        Ok(Response::new(suggestion(&v)))
    }

    async fn list_suggestions(
        &self,
        req: Request<pb::ListSuggestionsRequest>,
    ) -> Result<Response<pb::ListSuggestionsResponse>, Status> {
        let p = self.caller(&req).await?;
        let r = req.into_inner();
        let page = r.page.unwrap_or_default();
        if page.page_size > crate::app::MAX_PAGE {
            return Err(AppError::malformed("page_size must be at most 200").into());
        }
        let filter = ListFilter {
            session_id: opt_uuid("session_id", &r.session_id)?.map(SessionId),
            state: (!r.state.is_empty()).then_some(r.state),
            agency_id: opt_uuid("agency_id", &r.agency_id)?.map(AgencyId),
            role: if r.role == 0 {
                None
            } else {
                Some(role(r.role)?)
            },
            overdue_on: r.overdue_only.then(|| self.app.today()),
            key_only: r.key_only,
            after: None,
            limit: page.page_size,
            ..Default::default()
        };
        let result = self
            .app
            .list(
                &p,
                filter,
                (!page.page_token.is_empty()).then_some(page.page_token.as_str()),
            )
            .await?;
        let mut suggestions = Vec::with_capacity(result.items.len());
        for item in &result.items {
            suggestions.push(suggestion(&self.app.get(&p, item.id).await?));
        }
        Ok(Response::new(pb::ListSuggestionsResponse {
            suggestions,
            next_page_token: result.next_page_token.unwrap_or_default(),
        }))
    }
}

fn session(v: &dto::SessionView) -> pb::Session {
    pb::Session {
        id: v.id.to_string(),
        body: v.body.clone(),
        term: v.term,
        number: v.number,
        opens_on: text(v.opens_on),
        closes_on: text(v.closes_on),
        name: v.name.clone(),
    }
}

#[tonic::async_trait]
impl CalendarService for Grpc {
    async fn list_days(
        &self,
        req: Request<pb::ListDaysRequest>,
    ) -> Result<Response<pb::ListDaysResponse>, Status> {
        let p = self.caller(&req).await?;
        let r = req.get_ref();
        let days = self
            .app
            .calendar_days(&p, date("from", &r.from)?, date("to", &r.to)?)?;
        Ok(Response::new(pb::ListDaysResponse {
            days: days
                .days
                .into_iter()
                .map(|d| pb::CalendarDay {
                    date: text(d.date),
                    workday: d.workday,
                    note: d.note.unwrap_or_default(),
                })
                .collect(),
            calendar_version: days.calendar_version,
        }))
    }

    async fn recompute_deadlines(
        &self,
        req: Request<pb::RecomputeDeadlinesRequest>,
    ) -> Result<Response<pb::RecomputeDeadlinesResponse>, Status> {
        let p = self.caller(&req).await?;
        let r = self.app.recompute_deadlines(&p).await?;
        Ok(Response::new(pb::RecomputeDeadlinesResponse {
            calendar_version: r.calendar_version,
            examined: r.examined,
            suggestions_moved: r.suggestions_moved,
            deadlines_moved: r.deadlines_moved,
            moved: r
                .moved
                .into_iter()
                .map(|m| pb::MovedDeadline {
                    suggestion_id: m.suggestion_id.to_string(),
                    assignment_id: m.assignment_id.map(|a| a.to_string()).unwrap_or_default(),
                    kind: m.kind,
                    old_due: text(m.old_due),
                    new_due: text(m.new_due),
                })
                .collect(),
        }))
    }

    async fn compute_deadline(
        &self,
        req: Request<pb::ComputeDeadlineRequest>,
    ) -> Result<Response<pc::Deadline>, Status> {
        let p = self.caller(&req).await?;
        let r = req.into_inner();
        let duration = match r.duration.and_then(|d| d.kind) {
            Some(pb::duration::Kind::CalendarDays(days)) => DurationSpec::CalendarDays { days },
            Some(pb::duration::Kind::WorkingDays(days)) => DurationSpec::WorkingDays { days },
            Some(pb::duration::Kind::CalendarMonths(months)) => {
                DurationSpec::CalendarMonths { months }
            }
            Some(pb::duration::Kind::FixedDate(d)) => DurationSpec::FixedDate {
                date: date("fixed_date", &d)?,
            },
            None => return Err(AppError::malformed("duration is required").into()),
        };
        let v = self.app.compute_deadline(
            &p,
            &dto::DeadlineRequest {
                start: date("start", &r.start)?,
                duration,
                allow_weekends_only: r.allow_weekends_only,
            },
        )?;
        Ok(Response::new(deadline(&v)))
    }
}
