//! gRPC requests to commands: one `TryFrom` per request message, the only place a
//! coordination command's fields are read from protobuf. What a command means is decided once,
//! in [`CaseCommand::into_command`], for both transports.

use banli_api::AppError;
use banli_api::grpc::{opt_uuid, signer, uuid};
use banli_domain::suggestion::{Signer, UnitRole};
use banli_proto::common::v1 as pc;
use banli_proto::coordination::v1 as pb;
use uuid::Uuid;

use crate::command::CaseCommand as C;
use crate::dto;

/// A command with what a gRPC request's `Change` says about it.
#[derive(Debug)]
pub(super) struct Addressed {
    /// Zero (the proto default) is "no expectation".
    pub expected_version: Option<u64>,
    /// The request's own `change.idempotency_key`, where set.
    pub idempotency_key: Option<String>,
    pub command: C,
}

fn addressed(change: Option<pb::Change>, command: C) -> Addressed {
    let change = change.unwrap_or_default();
    Addressed {
        expected_version: (change.expected_version > 0).then_some(change.expected_version),
        idempotency_key: Some(change.idempotency_key).filter(|k| !k.is_empty()),
        command,
    }
}

fn signer_body(s: Option<pc::Signer>) -> Result<dto::SignerBody, AppError> {
    let Signer { name, position } = signer(s)?;
    Ok(dto::SignerBody {
        name,
        position: position.into(),
    })
}

fn id(field: &str, v: &str) -> Result<Uuid, AppError> {
    uuid(field, v)
}

/// A unit role; unspecified is absent.
pub(super) fn unit_role(field: &str, r: i32) -> Result<Option<UnitRole>, AppError> {
    match pc::UnitRole::try_from(r) {
        Ok(pc::UnitRole::Unspecified) => Ok(None),
        Ok(pc::UnitRole::Lead) => Ok(Some(UnitRole::Lead)),
        Ok(pc::UnitRole::Co) => Ok(Some(UnitRole::Co)),
        Ok(pc::UnitRole::Separate) => Ok(Some(UnitRole::Separate)),
        Ok(pc::UnitRole::Sole) => Ok(Some(UnitRole::Sole)),
        Err(_) => Err(AppError::malformed(format!(
            "{field} {r} is not a unit role"
        ))),
    }
}

fn role4(r: UnitRole) -> dto::Role4 {
    match r {
        UnitRole::Lead => dto::Role4::Lead,
        UnitRole::Co => dto::Role4::Co,
        UnitRole::Separate => dto::Role4::Separate,
        UnitRole::Sole => dto::Role4::Sole,
    }
}

impl TryFrom<pb::SignForRequest> for Addressed {
    type Error = AppError;
    fn try_from(r: pb::SignForRequest) -> Result<Self, AppError> {
        let assignment_id = id("assignment_id", &r.assignment_id)?;
        Ok(addressed(r.change, C::SignFor { assignment_id }))
    }
}

impl TryFrom<pb::RequestAdjustmentRequest> for Addressed {
    type Error = AppError;
    fn try_from(r: pb::RequestAdjustmentRequest) -> Result<Self, AppError> {
        let assignment_id = id("assignment_id", &r.assignment_id)?;
        let body = dto::AdjustmentRequestBody {
            reason: r.reason,
            suggested_agency_id: opt_uuid("suggested_agency_id", &r.suggested_agency_id)?,
        };
        Ok(addressed(
            r.change,
            C::RequestAdjustment {
                assignment_id,
                body,
            },
        ))
    }
}

impl TryFrom<pb::DecideAdjustmentRequest> for Addressed {
    type Error = AppError;
    fn try_from(r: pb::DecideAdjustmentRequest) -> Result<Self, AppError> {
        use pb::decide_adjustment_request::Outcome as O;
        let assignment_id = id("assignment_id", &r.assignment_id)?;
        let outcome = match O::try_from(r.outcome) {
            Ok(O::Accept) => dto::Outcome::Accept,
            Ok(O::Reject) => dto::Outcome::Reject,
            Ok(O::Escalate) => dto::Outcome::Escalate,
            _ => return Err(AppError::malformed("outcome is required")),
        };
        let body = dto::AdjustmentDecisionBody {
            outcome,
            agency_id: opt_uuid("new_agency_id", &r.new_agency_id)?,
            role: unit_role("new_role", r.new_role)?.map(role4),
            reason: Some(r.reason).filter(|s| !s.is_empty()),
        };
        Ok(addressed(
            r.change,
            C::DecideAdjustment {
                assignment_id,
                body,
            },
        ))
    }
}

impl TryFrom<pb::SubmitOpinionRequest> for Addressed {
    type Error = AppError;
    fn try_from(r: pb::SubmitOpinionRequest) -> Result<Self, AppError> {
        let assignment_id = id("assignment_id", &r.assignment_id)?;
        let on = date("on", &r.on)?;
        let measures = r
            .measures
            .into_iter()
            .map(|m| {
                Ok(dto::MeasureBody {
                    target_date: date("target_date", &m.target_date)?.ok_or_else(|| {
                        AppError::malformed("a measure's target_date is required")
                    })?,
                    measure: m.measure,
                    responsible: m.responsible,
                    agency_id: opt_uuid("agency_id", &m.agency_id)?,
                })
            })
            .collect::<Result<Vec<_>, AppError>>()?;
        let body = dto::OpinionBody {
            document_number: r.document_number,
            body: r.body,
            signer: signer_body(r.signer)?,
            on,
            measures,
            no_measure_reason: Some(r.no_measure_reason).filter(|s| !s.trim().is_empty()),
            consultation_ids: ids("consultation_ids", &r.consultation_ids)?,
            letter: Some(r.letter).filter(|s| !s.is_empty()),
            attachments: r.attachments,
        };
        Ok(addressed(
            r.change,
            C::SubmitOpinion {
                assignment_id,
                body,
            },
        ))
    }
}

impl TryFrom<pb::AcknowledgeOpinionRequest> for Addressed {
    type Error = AppError;
    fn try_from(r: pb::AcknowledgeOpinionRequest) -> Result<Self, AppError> {
        let opinion_id = id("opinion_id", &r.opinion_id)?;
        Ok(addressed(r.change, C::AcknowledgeOpinion { opinion_id }))
    }
}

impl TryFrom<pb::WaiveOpinionRequest> for Addressed {
    type Error = AppError;
    fn try_from(r: pb::WaiveOpinionRequest) -> Result<Self, AppError> {
        let assignment_id = id("assignment_id", &r.assignment_id)?;
        let body = dto::WaiverBody { reason: r.reason };
        Ok(addressed(
            r.change,
            C::WaiveOpinion {
                assignment_id,
                body,
            },
        ))
    }
}

impl TryFrom<pb::CountersignRequest> for Addressed {
    type Error = AppError;
    fn try_from(r: pb::CountersignRequest) -> Result<Self, AppError> {
        let reply_id = id("reply_id", &r.reply_id)?;
        let body = dto::CountersignBody {
            signer: signer_body(r.signer)?,
        };
        Ok(addressed(r.change, C::Countersign { reply_id, body }))
    }
}

impl TryFrom<pb::RecordDisagreementRequest> for Addressed {
    type Error = AppError;
    fn try_from(r: pb::RecordDisagreementRequest) -> Result<Self, AppError> {
        let assignment_id = id("assignment_id", &r.assignment_id)?;
        let body = dto::DisagreementBody {
            statement: r.statement,
            escalate: r.escalate,
        };
        Ok(addressed(
            r.change,
            C::RecordDisagreement {
                assignment_id,
                body,
            },
        ))
    }
}

impl TryFrom<pb::EscalateDisagreementRequest> for Addressed {
    type Error = AppError;
    fn try_from(r: pb::EscalateDisagreementRequest) -> Result<Self, AppError> {
        let disagreement_id = id("disagreement_id", &r.disagreement_id)?;
        Ok(addressed(
            r.change,
            C::EscalateDisagreement { disagreement_id },
        ))
    }
}

impl TryFrom<pb::ResolveDisagreementRequest> for Addressed {
    type Error = AppError;
    fn try_from(r: pb::ResolveDisagreementRequest) -> Result<Self, AppError> {
        let disagreement_id = id("disagreement_id", &r.disagreement_id)?;
        let body = dto::ResolutionBody {
            resolution: r.resolution,
        };
        Ok(addressed(
            r.change,
            C::ResolveDisagreement {
                disagreement_id,
                body,
            },
        ))
    }
}

impl TryFrom<pb::RecordConsultationRequest> for Addressed {
    type Error = AppError;
    fn try_from(r: pb::RecordConsultationRequest) -> Result<Self, AppError> {
        let assignment_id = id("assignment_id", &r.assignment_id)?;
        let body = dto::ConsultationBody {
            agency_ids: ids("agency_ids", &r.agency_ids)?,
            deputy_ids: ids("deputy_ids", &r.deputy_ids)?,
            attendees: r.attendees,
            subject: r.subject,
            minutes: r.minutes,
            on: date("on", &r.on)?,
            documents: r.documents,
        };
        Ok(addressed(
            r.change,
            C::RecordConsultation {
                assignment_id,
                body,
            },
        ))
    }
}

/// A `YYYY-MM-DD` field; empty is `None`.
fn date(field: &str, v: &str) -> Result<Option<time::Date>, AppError> {
    if v.is_empty() {
        return Ok(None);
    }
    banli_calendar::parse_date(v)
        .map(Some)
        .map_err(|_| AppError::malformed(format!("{field} `{v}` is not a YYYY-MM-DD date")))
}

fn ids(field: &str, v: &[String]) -> Result<Vec<Uuid>, AppError> {
    v.iter().map(|x| id(field, x)).collect()
}

#[cfg(test)]
mod tests;
