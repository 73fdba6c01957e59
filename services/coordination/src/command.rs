//! Coordination commands as data (one per client request kind). REST builds one from the path
//! and the JSON body, gRPC from the request message (`TryFrom` in `grpc`), and
//! [`App::command`](crate::app::App::command) runs it for both: authorization, the idempotency
//! key or `Reference-Id`, `If-Match` / `expected_version`, the domain command built here (dates
//! and required fields checked once), decide, commit.

use banli_api::AppError;
use banli_domain::coordination::CoordinationCommand;
use banli_domain::document::DocumentRef;
use banli_domain::ids::*;
use banli_domain::suggestion::{
    AdjustmentChoice, CoHandlingOpinion, Consultation, OpinionMeasure, Signer,
};
use time::Date;
use uuid::Uuid;

use crate::dto::*;

pub use banli_api::Once;

banli_domain::command_enum! {
/// A client's command on the coordination side of a suggestion, addressed by the id of what it
/// acts on (an assignment, an opinion, a reply or a disagreement).
#[derive(Debug, Clone)]
pub enum CaseCommand {
    SignFor { assignment_id: Uuid },
    RequestAdjustment { assignment_id: Uuid, body: AdjustmentRequestBody },
    DecideAdjustment { assignment_id: Uuid, body: AdjustmentDecisionBody },
    SubmitOpinion { assignment_id: Uuid, body: OpinionBody },
    AcknowledgeOpinion { opinion_id: Uuid },
    WaiveOpinion { assignment_id: Uuid, body: WaiverBody },
    Countersign { reply_id: Uuid, body: CountersignBody },
    RecordDisagreement { assignment_id: Uuid, body: DisagreementBody },
    EscalateDisagreement { disagreement_id: Uuid },
    ResolveDisagreement { disagreement_id: Uuid, body: ResolutionBody },
    RecordConsultation { assignment_id: Uuid, body: ConsultationBody },
}
}

impl CaseCommand {
    /// The id the command addresses and what it is (`assignment`, `opinion`, `reply`,
    /// `disagreement`), for finding the suggestion and for "not found" answers.
    pub fn target(&self) -> (Uuid, &'static str) {
        match self {
            Self::SignFor { assignment_id }
            | Self::RequestAdjustment { assignment_id, .. }
            | Self::DecideAdjustment { assignment_id, .. }
            | Self::SubmitOpinion { assignment_id, .. }
            | Self::WaiveOpinion { assignment_id, .. }
            | Self::RecordDisagreement { assignment_id, .. }
            | Self::RecordConsultation { assignment_id, .. } => (*assignment_id, "assignment"),
            Self::AcknowledgeOpinion { opinion_id } => (*opinion_id, "opinion"),
            Self::Countersign { reply_id, .. } => (*reply_id, "reply"),
            Self::EscalateDisagreement { disagreement_id }
            | Self::ResolveDisagreement {
                disagreement_id, ..
            } => (*disagreement_id, "disagreement"),
        }
    }

    /// The REST route that carries this command (`POST`), as in the OpenAPI document.
    pub fn rest_path(&self) -> &'static str {
        match self {
            Self::SignFor { .. } => "/v1/coordination/assignments/{assignment_id}/sign-for",
            Self::RequestAdjustment { .. } => {
                "/v1/coordination/assignments/{assignment_id}/adjustment-request"
            }
            Self::DecideAdjustment { .. } => {
                "/v1/coordination/assignments/{assignment_id}/adjustment-decision"
            }
            Self::SubmitOpinion { .. } => "/v1/coordination/assignments/{assignment_id}/opinions",
            Self::AcknowledgeOpinion { .. } => "/v1/coordination/opinions/{opinion_id}/acknowledge",
            Self::WaiveOpinion { .. } => "/v1/coordination/assignments/{assignment_id}/waiver",
            Self::Countersign { .. } => "/v1/coordination/replies/{reply_id}/countersign",
            Self::RecordDisagreement { .. } => {
                "/v1/coordination/assignments/{assignment_id}/disagreements"
            }
            Self::EscalateDisagreement { .. } => {
                "/v1/coordination/disagreements/{disagreement_id}/escalate"
            }
            Self::ResolveDisagreement { .. } => {
                "/v1/coordination/disagreements/{disagreement_id}/resolve"
            }
            Self::RecordConsultation { .. } => {
                "/v1/coordination/assignments/{assignment_id}/consultations"
            }
        }
    }

    /// The documents (SHA-256s) the command attaches: each must be one the caller uploaded.
    pub fn documents(&self) -> Vec<&str> {
        match self {
            Self::SubmitOpinion { body, .. } => body
                .letter
                .iter()
                .chain(&body.attachments)
                .map(String::as_str)
                .collect(),
            Self::RecordConsultation { body, .. } => {
                body.documents.iter().map(String::as_str).collect()
            }
            _ => Vec::new(),
        }
    }

    /// The domain command on `today`: the one place where a transport's request becomes a
    /// `CoordinationCommand`. `docs` are the documents of [`Self::documents`], resolved.
    pub fn into_command(
        self,
        today: Date,
        docs: &[DocumentRef],
    ) -> Result<CoordinationCommand, AppError> {
        use banli_documents::access::{pick, pick_all};
        let doc = |h: &str| pick(docs, h);
        let all = |hs: &[String]| pick_all(docs, hs);
        Ok(match self {
            Self::SignFor { assignment_id } => CoordinationCommand::SignFor {
                assignment: AssignmentId(assignment_id),
                on: today,
            },
            Self::RequestAdjustment {
                assignment_id,
                body,
            } => CoordinationCommand::RequestAdjustment {
                assignment: AssignmentId(assignment_id),
                reason: body.reason,
                suggested_agency: body.suggested_agency_id.map(AgencyId),
                on: today,
            },
            Self::DecideAdjustment {
                assignment_id,
                body,
            } => {
                let reason = body.reason.unwrap_or_default();
                let choice = match body.outcome {
                    Outcome::Accept => AdjustmentChoice::Accept {
                        agency: AgencyId(body.agency_id.ok_or_else(|| {
                            AppError::invalid(
                                "agency_id (gRPC: new_agency_id) is required to accept an adjustment",
                            )
                        })?),
                        role: body.role.map(Into::into),
                        new_assignment: AssignmentId::new(),
                    },
                    Outcome::Reject => AdjustmentChoice::Reject { reason },
                    Outcome::Escalate => AdjustmentChoice::Escalate { reason },
                };
                CoordinationCommand::DecideAdjustment {
                    assignment: AssignmentId(assignment_id),
                    choice,
                    on: today,
                }
            }
            Self::SubmitOpinion {
                assignment_id,
                body,
            } => {
                let on = not_future(body.on, today, "an opinion")?;
                CoordinationCommand::SubmitOpinion {
                    opinion: CoHandlingOpinion {
                        attachments: all(&body.attachments)?,
                        letter: body.letter.as_deref().map(doc).transpose()?,
                        id: OpinionId::new(),
                        assignment_id: AssignmentId(assignment_id),
                        document_number: body.document_number,
                        body: body.body,
                        signer: signer(body.signer),
                        on,
                        acknowledged_on: None,
                        measures: body
                            .measures
                            .into_iter()
                            .map(|m| OpinionMeasure {
                                id: CommitmentId::new(),
                                measure: m.measure,
                                responsible: m.responsible,
                                agency: m.agency_id.map(AgencyId),
                                target_date: m.target_date,
                            })
                            .collect(),
                        no_measure_reason: body.no_measure_reason,
                        consultations: body
                            .consultation_ids
                            .into_iter()
                            .map(ConsultationId)
                            .collect(),
                        flagged: false,
                    },
                }
            }
            Self::AcknowledgeOpinion { opinion_id } => CoordinationCommand::AcknowledgeOpinion {
                opinion: OpinionId(opinion_id),
                on: today,
            },
            Self::WaiveOpinion {
                assignment_id,
                body,
            } => CoordinationCommand::WaiveOpinion {
                assignment: AssignmentId(assignment_id),
                reason: body.reason,
                on: today,
            },
            Self::Countersign { reply_id, body } => CoordinationCommand::Countersign {
                reply: ReplyId(reply_id),
                signer: signer(body.signer),
                on: today,
            },
            Self::RecordDisagreement {
                assignment_id,
                body,
            } => CoordinationCommand::RecordDisagreement {
                id: DisagreementId::new(),
                assignment: AssignmentId(assignment_id),
                statement: body.statement,
                escalate: body.escalate,
                on: today,
            },
            Self::EscalateDisagreement { disagreement_id } => {
                CoordinationCommand::EscalateDisagreement {
                    id: DisagreementId(disagreement_id),
                    on: today,
                }
            }
            Self::ResolveDisagreement {
                disagreement_id,
                body,
            } => CoordinationCommand::ResolveDisagreement {
                id: DisagreementId(disagreement_id),
                resolution: body.resolution,
                on: today,
            },
            Self::RecordConsultation { body, .. } => CoordinationCommand::RecordConsultation {
                consultation: Consultation {
                    documents: all(&body.documents)?,
                    id: ConsultationId::new(),
                    // The guards set the convener from the caller.
                    convened_by: AgencyId(Uuid::nil()),
                    agencies: body.agency_ids.into_iter().map(AgencyId).collect(),
                    deputies: body.deputy_ids.into_iter().map(DeputyId).collect(),
                    attendees: body.attendees,
                    subject: body.subject,
                    minutes: body.minutes,
                    on: not_future(body.on, today, "a consultation")?,
                },
            },
        })
    }
}

/// `on`, default today; a date after today is refused.
fn not_future(on: Option<Date>, today: Date, what: &str) -> Result<Date, AppError> {
    let on = on.unwrap_or(today);
    if on > today {
        return Err(AppError::invalid(format!(
            "{what} cannot be dated in the future"
        )));
    }
    Ok(on)
}

fn signer(s: SignerBody) -> Signer {
    Signer {
        name: s.name,
        position: s.position.into(),
    }
}
