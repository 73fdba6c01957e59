//! gRPC requests to commands: one `TryFrom` per request message, the only place a command's
//! fields are read from protobuf. What a command means is decided once, in
//! [`SuggestionCommand::into_kind`](crate::command::SuggestionCommand::into_kind), for both
//! transports.

use super::*;
use crate::command::SuggestionCommand as C;

/// A command with the suggestion it addresses, as a gRPC request carries it.
#[derive(Debug)]
pub(super) struct Addressed {
    pub suggestion_id: Uuid,
    /// Zero (the proto default) is "no expectation".
    pub expected_version: Option<u64>,
    /// The request's own `idempotency_key` field, where it has one.
    pub idempotency_key: Option<String>,
    pub command: C,
}

fn addressed(
    suggestion_id: &str,
    expected_version: u64,
    idempotency_key: Option<String>,
    command: C,
) -> Result<Addressed, AppError> {
    Ok(Addressed {
        suggestion_id: uuid("suggestion_id", suggestion_id)?,
        expected_version: (expected_version > 0).then_some(expected_version),
        idempotency_key: idempotency_key.filter(|k| !k.is_empty()),
        command,
    })
}

/// An optional text field: empty is absent.
fn opt_text(s: String) -> Option<String> {
    (!s.is_empty()).then_some(s)
}

/// A snake_case enum carried as text (as in the JSON API), required.
fn text_enum<T: serde::de::DeserializeOwned>(
    field: &str,
    v: &str,
    expected: &str,
) -> Result<T, AppError> {
    if v.is_empty() {
        return Err(AppError::malformed(format!("{field} is required")));
    }
    serde_json::from_value(serde_json::Value::String(v.to_owned()))
        .map_err(|_| AppError::malformed(format!("{field} must be {expected}")))
}

/// A snake_case enum carried as text, optional (empty is absent).
pub(super) fn opt_text_enum<T: serde::de::DeserializeOwned>(
    field: &str,
    v: &str,
    expected: &str,
) -> Result<Option<T>, AppError> {
    if v.is_empty() {
        Ok(None)
    } else {
        text_enum(field, v, expected).map(Some)
    }
}

fn uuids(field: &str, ids: &[String]) -> Result<Vec<Uuid>, AppError> {
    ids.iter().map(|s| uuid(field, s)).collect()
}

impl TryFrom<pb::SubmitSuggestionRequest> for dto::SubmitSuggestion {
    type Error = AppError;
    fn try_from(r: pb::SubmitSuggestionRequest) -> Result<Self, AppError> {
        let kind =
            opt_text_enum("kind", &r.kind, "session or recess")?.unwrap_or(if r.recess_item {
                ItemKind::Recess
            } else {
                ItemKind::Session
            });
        Ok(dto::SubmitSuggestion {
            session_id: uuid("session_id", &r.session_id)?,
            number: r.number,
            title: r.title,
            body: r.body,
            category: r.category,
            kind: Some(kind),
            lead_deputy_id: uuid("lead_deputy_id", &r.lead_deputy_id)?,
            co_signer_ids: uuids("co_signer_ids", &r.co_signer_ids)?,
            key_supervised: r.key_supervised,
            priority: opt_text_enum("priority", &r.priority, "normal, key, difficult or special")?
                .unwrap_or_default(),
            confidential: r.confidential,
            disclosure: opt_text_enum("disclosure", &r.disclosure, "full, summary or none")?
                .unwrap_or_default(),
            received_on: opt_date("received_on", &r.received_on)?,
        })
    }
}

impl TryFrom<pb::StartReviewRequest> for Addressed {
    type Error = AppError;
    fn try_from(r: pb::StartReviewRequest) -> Result<Self, AppError> {
        addressed(
            &r.suggestion_id,
            r.expected_version,
            None,
            C::StartReview {},
        )
    }
}

impl TryFrom<pb::ReviewSuggestionRequest> for Addressed {
    type Error = AppError;
    fn try_from(r: pb::ReviewSuggestionRequest) -> Result<Self, AppError> {
        use pb::review_suggestion_request::Decision as D;
        let decision = match D::try_from(r.decision) {
            Ok(D::Accept) => ReviewDecision::Accept,
            Ok(D::NotAccept) => ReviewDecision::NotAccept,
            Ok(D::ConvertToLetter) => ReviewDecision::ConvertToLetter,
            _ => return Err(AppError::malformed("decision is required")),
        };
        let body = dto::Review {
            decision,
            reason: r.reason,
        };
        addressed(
            &r.suggestion_id,
            r.expected_version,
            None,
            C::Review { body },
        )
    }
}

impl TryFrom<pb::WithdrawSuggestionRequest> for Addressed {
    type Error = AppError;
    fn try_from(r: pb::WithdrawSuggestionRequest) -> Result<Self, AppError> {
        let body = dto::Reason { reason: r.reason };
        addressed(
            &r.suggestion_id,
            r.expected_version,
            None,
            C::Withdraw { body },
        )
    }
}

impl TryFrom<pb::AssignSuggestionRequest> for Addressed {
    type Error = AppError;
    fn try_from(r: pb::AssignSuggestionRequest) -> Result<Self, AppError> {
        let units = r
            .units
            .iter()
            .map(|u| {
                Ok(dto::UnitToAssign {
                    agency_id: uuid("agency_id", &u.agency_id)?,
                    role: role(u.role)?,
                })
            })
            .collect::<Result<Vec<_>, AppError>>()?;
        let body = dto::Assign { units };
        addressed(
            &r.suggestion_id,
            r.expected_version,
            Some(r.idempotency_key),
            C::Assign { body },
        )
    }
}

impl TryFrom<pb::DispatchRequest> for Addressed {
    type Error = AppError;
    fn try_from(r: pb::DispatchRequest) -> Result<Self, AppError> {
        let assignment_id = uuid("assignment_id", &r.assignment_id)?;
        let body = dto::DispatchBody {
            division_id: uuid("division_id", &r.division_id)?,
            handler: r.handler,
            responsible_leader: r.responsible_leader,
            leading_official: opt_text(r.leading_official),
            plan: r.plan,
        };
        addressed(
            &r.suggestion_id,
            r.expected_version,
            None,
            C::Dispatch {
                assignment_id,
                body,
            },
        )
    }
}

impl TryFrom<pb::RecordCommunicationRequest> for Addressed {
    type Error = AppError;
    fn try_from(r: pb::RecordCommunicationRequest) -> Result<Self, AppError> {
        let body = dto::CommunicationBody {
            assignment_id: uuid("assignment_id", &r.assignment_id)?,
            phase: text_enum("phase", &r.phase, "before, during, after or recess")?,
            method: text_enum(
                "method",
                &r.method,
                "a communication method (see the OpenAPI document)",
            )?,
            face_to_face: r.face_to_face,
            deputy_ids: uuids("deputy_ids", &r.deputy_ids)?,
            participants: r.participants,
            summary: r.summary,
            on: opt_date("on", &r.on)?,
        };
        addressed(
            &r.suggestion_id,
            r.expected_version,
            Some(r.idempotency_key),
            C::RecordCommunication { body },
        )
    }
}

impl TryFrom<pb::RequestExtensionRequest> for Addressed {
    type Error = AppError;
    fn try_from(r: pb::RequestExtensionRequest) -> Result<Self, AppError> {
        let assignment_id = uuid("assignment_id", &r.assignment_id)?;
        let body = dto::ExtensionRequestBody {
            new_due: date("new_due", &r.new_due)?,
            reason: r.reason,
        };
        addressed(
            &r.suggestion_id,
            r.expected_version,
            None,
            C::RequestExtension {
                assignment_id,
                body,
            },
        )
    }
}

impl TryFrom<pb::DecideExtensionRequest> for Addressed {
    type Error = AppError;
    fn try_from(r: pb::DecideExtensionRequest) -> Result<Self, AppError> {
        let assignment_id = uuid("assignment_id", &r.assignment_id)?;
        let body = dto::Decision { approve: r.approve };
        addressed(
            &r.suggestion_id,
            r.expected_version,
            None,
            C::DecideExtension {
                assignment_id,
                body,
            },
        )
    }
}

impl TryFrom<pb::IssueReplyRequest> for Addressed {
    type Error = AppError;
    fn try_from(r: pb::IssueReplyRequest) -> Result<Self, AppError> {
        let signer = signer(r.signer)?;
        let commitments = r
            .commitments
            .iter()
            .map(|c| {
                Ok(dto::CommitmentBody {
                    measure: c.measure.clone(),
                    division_id: opt_uuid("division_id", &c.division_id)?,
                    target_date: date("target_date", &c.target_date)?,
                })
            })
            .collect::<Result<Vec<_>, AppError>>()?;
        let reply_type = match pc::ReplyType::try_from(r.reply_type) {
            Ok(pc::ReplyType::Initial) => Some(ReplyType::Initial),
            Ok(pc::ReplyType::ReHandled) => Some(ReplyType::ReHandled),
            Ok(pc::ReplyType::Supplementary) => Some(ReplyType::Supplementary),
            Ok(pc::ReplyType::Joint) => Some(ReplyType::Joint),
            Ok(pc::ReplyType::Unspecified) => None,
            Err(_) => return Err(AppError::malformed("unknown reply_type")),
        };
        let body = dto::ReplyBody {
            letter: opt_text(r.letter),
            attachments: r.attachments,
            assignment_id: uuid("assignment_id", &r.assignment_id)?,
            reply_type,
            document_number: r.document_number,
            body: r.body,
            class: class(r.class)?,
            signer: dto::SignerBody {
                name: signer.name,
                position: signer.position,
            },
            opinion_ids: uuids("opinion_ids", &r.opinion_ids)?,
            countersigned_by: uuids("countersigned_by", &r.countersigned_by)?,
            commitments,
            explanation: opt_text(r.explanation),
            on: opt_date("on", &r.on)?,
            consultation_ids: uuids("consultation_ids", &r.consultation_ids)?,
        };
        addressed(
            &r.suggestion_id,
            r.expected_version,
            Some(r.idempotency_key),
            C::IssueReply { body },
        )
    }
}

impl TryFrom<pb::DecideApprovalStepRequest> for Addressed {
    type Error = AppError;
    fn try_from(r: pb::DecideApprovalStepRequest) -> Result<Self, AppError> {
        let assignment_id = uuid("assignment_id", &r.assignment_id)?;
        let body = dto::ApprovalDecisionBody {
            step: r.step,
            approve: r.approve,
            comment: r.comment,
        };
        addressed(
            &r.suggestion_id,
            r.expected_version,
            Some(r.idempotency_key),
            C::DecideApprovalStep {
                assignment_id,
                body,
            },
        )
    }
}

impl TryFrom<pb::PublishReplyRequest> for Addressed {
    type Error = AppError;
    fn try_from(r: pb::PublishReplyRequest) -> Result<Self, AppError> {
        let reply_id = uuid("reply_id", &r.reply_id)?;
        addressed(
            &r.suggestion_id,
            r.expected_version,
            Some(r.idempotency_key),
            C::PublishReply {
                reply_id,
                body: dto::PublishBody {},
            },
        )
    }
}

impl TryFrom<pb::WithdrawPublicationRequest> for Addressed {
    type Error = AppError;
    fn try_from(r: pb::WithdrawPublicationRequest) -> Result<Self, AppError> {
        let reply_id = uuid("reply_id", &r.reply_id)?;
        addressed(
            &r.suggestion_id,
            r.expected_version,
            Some(r.idempotency_key),
            C::WithdrawPublication {
                reply_id,
                body: dto::Reason { reason: r.reason },
            },
        )
    }
}

impl TryFrom<pb::ReviewReplyRequest> for Addressed {
    type Error = AppError;
    fn try_from(r: pb::ReviewReplyRequest) -> Result<Self, AppError> {
        let reply_id = uuid("reply_id", &r.reply_id)?;
        let body = dto::ReplyReviewBody {
            accept: r.accept,
            reasons: r.reasons,
        };
        addressed(
            &r.suggestion_id,
            r.expected_version,
            Some(r.idempotency_key),
            C::ReviewReply { reply_id, body },
        )
    }
}

impl TryFrom<pb::ChangeClassRequest> for Addressed {
    type Error = AppError;
    fn try_from(r: pb::ChangeClassRequest) -> Result<Self, AppError> {
        let body = dto::ClassChangeBody {
            to: class(r.to)?,
            reason: r.reason,
        };
        addressed(
            &r.suggestion_id,
            r.expected_version,
            None,
            C::ChangeClass { body },
        )
    }
}

impl TryFrom<pb::RecordFeedbackRequest> for Addressed {
    type Error = AppError;
    fn try_from(r: pb::RecordFeedbackRequest) -> Result<Self, AppError> {
        let body = dto::FeedbackBody {
            deputy_id: opt_uuid("deputy_id", &r.deputy_id)?,
            level: satisfaction(r.level)?
                .ok_or_else(|| AppError::malformed("level is required"))?,
            handling: satisfaction(r.handling)?,
            result: satisfaction(r.result)?,
            comment: r.comment,
        };
        addressed(
            &r.suggestion_id,
            r.expected_version,
            None,
            C::RecordFeedback { body },
        )
    }
}

impl TryFrom<pb::CloseFeedbackWindowRequest> for Addressed {
    type Error = AppError;
    fn try_from(r: pb::CloseFeedbackWindowRequest) -> Result<Self, AppError> {
        addressed(
            &r.suggestion_id,
            r.expected_version,
            None,
            C::CloseFeedbackWindow {},
        )
    }
}

impl TryFrom<pb::ResolveEscalationRequest> for Addressed {
    type Error = AppError;
    fn try_from(r: pb::ResolveEscalationRequest) -> Result<Self, AppError> {
        let body = dto::OutcomeBody { outcome: r.outcome };
        addressed(
            &r.suggestion_id,
            r.expected_version,
            None,
            C::ResolveEscalation { body },
        )
    }
}

impl TryFrom<pb::ReportProgressRequest> for Addressed {
    type Error = AppError;
    fn try_from(r: pb::ReportProgressRequest) -> Result<Self, AppError> {
        let commitment_id = uuid("commitment_id", &r.commitment_id)?;
        let body = dto::ProgressBody {
            note: r.note,
            notify_deputy: r.notify_deputy.unwrap_or(true),
        };
        addressed(
            &r.suggestion_id,
            r.expected_version,
            None,
            C::ReportProgress {
                commitment_id,
                body,
            },
        )
    }
}

impl TryFrom<pb::ConvertCommitmentRequest> for Addressed {
    type Error = AppError;
    fn try_from(r: pb::ConvertCommitmentRequest) -> Result<Self, AppError> {
        let commitment_id = uuid("commitment_id", &r.commitment_id)?;
        let body = dto::EvidenceBody {
            documents: r.documents,
            evidence: r.evidence,
        };
        addressed(
            &r.suggestion_id,
            r.expected_version,
            None,
            C::ConvertCommitment {
                commitment_id,
                body,
            },
        )
    }
}

impl TryFrom<pb::DecideClosureRequest> for Addressed {
    type Error = AppError;
    fn try_from(r: pb::DecideClosureRequest) -> Result<Self, AppError> {
        let body = dto::ClosureDecisionBody {
            confirm: r.confirm,
            reason: r.reason,
            reopen_commitment_ids: uuids("reopen_commitment_ids", &r.reopen_commitment_ids)?,
        };
        addressed(
            &r.suggestion_id,
            r.expected_version,
            None,
            C::DecideClosure { body },
        )
    }
}

impl TryFrom<pb::RateClosureRequest> for Addressed {
    type Error = AppError;
    fn try_from(r: pb::RateClosureRequest) -> Result<Self, AppError> {
        let body = dto::ClosureRatingBody {
            deputy_id: opt_uuid("deputy_id", &r.deputy_id)?,
            level: satisfaction(r.level)?
                .ok_or_else(|| AppError::malformed("level is required"))?,
            comment: r.comment,
        };
        addressed(
            &r.suggestion_id,
            r.expected_version,
            None,
            C::RateClosure { body },
        )
    }
}

#[cfg(test)]
mod tests;
