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
        };
        addressed(
            &r.suggestion_id,
            r.expected_version,
            Some(r.idempotency_key),
            C::IssueReply { body },
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
        let body = dto::ProgressBody { note: r.note };
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

#[cfg(test)]
mod tests {
    //! Every client command is reachable from both transports, and every domain command is
    //! built by exactly one client command or named as coming from elsewhere.

    use std::collections::BTreeSet;

    use banli_domain::Role;

    use super::*;
    use crate::command::{NOT_FROM_SUGGESTION_COMMANDS, SuggestionCommand};

    const ID: &str = "0190a5b4-0000-7000-8000-000000000001";

    /// One request of each kind the gRPC `SuggestionService` turns into a command.
    fn grpc_samples() -> Vec<Result<Addressed, AppError>> {
        let signer = Some(pc::Signer {
            name: "张三".into(),
            position: pc::SignerPosition::PrincipalHead as i32,
        });
        vec![
            pb::StartReviewRequest {
                suggestion_id: ID.into(),
                ..Default::default()
            }
            .try_into(),
            pb::ReviewSuggestionRequest {
                suggestion_id: ID.into(),
                decision: pb::review_suggestion_request::Decision::Accept as i32,
                ..Default::default()
            }
            .try_into(),
            pb::WithdrawSuggestionRequest {
                suggestion_id: ID.into(),
                reason: "r".into(),
                ..Default::default()
            }
            .try_into(),
            pb::AssignSuggestionRequest {
                suggestion_id: ID.into(),
                units: vec![pb::UnitAssignment {
                    agency_id: ID.into(),
                    role: pc::UnitRole::Lead as i32,
                }],
                ..Default::default()
            }
            .try_into(),
            pb::DispatchRequest {
                suggestion_id: ID.into(),
                assignment_id: ID.into(),
                division_id: ID.into(),
                ..Default::default()
            }
            .try_into(),
            pb::RecordCommunicationRequest {
                suggestion_id: ID.into(),
                assignment_id: ID.into(),
                phase: "before".into(),
                method: "phone".into(),
                ..Default::default()
            }
            .try_into(),
            pb::RequestExtensionRequest {
                suggestion_id: ID.into(),
                assignment_id: ID.into(),
                new_due: "2020-08-01".into(),
                ..Default::default()
            }
            .try_into(),
            pb::DecideExtensionRequest {
                suggestion_id: ID.into(),
                assignment_id: ID.into(),
                ..Default::default()
            }
            .try_into(),
            pb::IssueReplyRequest {
                suggestion_id: ID.into(),
                assignment_id: ID.into(),
                class: pc::ReplyClass::A as i32,
                signer,
                ..Default::default()
            }
            .try_into(),
            pb::ChangeClassRequest {
                suggestion_id: ID.into(),
                to: pc::ReplyClass::B as i32,
                ..Default::default()
            }
            .try_into(),
            pb::RecordFeedbackRequest {
                suggestion_id: ID.into(),
                deputy_id: ID.into(),
                level: pc::Satisfaction::Satisfied as i32,
                ..Default::default()
            }
            .try_into(),
            pb::CloseFeedbackWindowRequest {
                suggestion_id: ID.into(),
                ..Default::default()
            }
            .try_into(),
            pb::ResolveEscalationRequest {
                suggestion_id: ID.into(),
                ..Default::default()
            }
            .try_into(),
            pb::ReportProgressRequest {
                suggestion_id: ID.into(),
                commitment_id: ID.into(),
                ..Default::default()
            }
            .try_into(),
            pb::ConvertCommitmentRequest {
                suggestion_id: ID.into(),
                commitment_id: ID.into(),
                ..Default::default()
            }
            .try_into(),
        ]
    }

    fn suggestion() -> Suggestion {
        let on = time::macros::date!(2020 - 06 - 01);
        Suggestion::new(
            SuggestionId::new(),
            &Submitted {
                details: SuggestionDetails {
                    session_id: SessionId(Uuid::nil()),
                    number: "2020-0001".into(),
                    title: "t".into(),
                    body: "b".into(),
                    category: String::new(),
                    kind: ItemKind::Session,
                    lead_deputy: DeputyId(Uuid::nil()),
                    co_signers: Vec::new(),
                    key_supervised: false,
                    priority: Priority::Normal,
                    confidential: false,
                    disclosure: Disclosure::Full,
                },
                on,
            },
        )
    }

    #[test]
    fn every_command_is_reachable_from_both_transports_and_builds_its_domain_command() {
        let doc = crate::http::openapi();
        let s = suggestion();
        let office = Principal {
            key_id: Uuid::nil(),
            role: Role::AssigningOffice,
            agency: None,
            deputy: None,
            reference: None,
            client_cert: None,
        };
        let mut from_grpc = BTreeSet::new();
        let mut kinds = BTreeSet::new();
        for sample in grpc_samples() {
            let a = sample.expect("every sample request converts");
            let variant = a.command.variant();
            assert!(from_grpc.insert(variant), "{variant} sampled twice");
            let path = a.command.rest_path();
            let item = doc
                .paths
                .paths
                .get(path)
                .unwrap_or_else(|| panic!("{variant}: {path} is not in the OpenAPI document"));
            assert!(item.post.is_some(), "{variant}: {path} has no POST");
            let kind = a
                .command
                .into_kind(&s, s.received_on, &office, Vec::new())
                .expect("the sample builds its domain command");
            assert_eq!(
                kind.variant(),
                variant,
                "a client command and the domain command it builds carry one name"
            );
            kinds.insert(kind.variant());
        }
        let all: BTreeSet<&str> = SuggestionCommand::VARIANTS.iter().copied().collect();
        assert_eq!(from_grpc, all, "a command without a gRPC request");
        for (name, from) in NOT_FROM_SUGGESTION_COMMANDS {
            assert!(!from.is_empty());
            assert!(
                kinds.insert(name),
                "{name} is built by a client command too"
            );
        }
        let domain: BTreeSet<&str> = CommandKind::VARIANTS.iter().copied().collect();
        assert_eq!(
            kinds, domain,
            "every domain command is built by one client command or named in NOT_FROM_SUGGESTION_COMMANDS"
        );
    }

    #[test]
    fn bad_requests_are_refused_at_the_edge_with_the_field_named() {
        let r: Result<Addressed, _> = pb::IssueReplyRequest {
            suggestion_id: ID.into(),
            assignment_id: ID.into(),
            class: pc::ReplyClass::A as i32,
            signer: None,
            ..Default::default()
        }
        .try_into();
        assert!(r.expect_err("refused").to_string().contains("signer"));
        let r: Result<Addressed, _> = pb::IssueReplyRequest {
            suggestion_id: ID.into(),
            reply_type: 99,
            ..Default::default()
        }
        .try_into();
        assert!(r.is_err());
        let r: Result<Addressed, _> = pb::RecordCommunicationRequest {
            suggestion_id: ID.into(),
            assignment_id: ID.into(),
            phase: "sometime".into(),
            method: "phone".into(),
            ..Default::default()
        }
        .try_into();
        assert!(r.expect_err("refused").to_string().contains("phase"));
        let r: Result<dto::SubmitSuggestion, _> = pb::SubmitSuggestionRequest {
            session_id: ID.into(),
            lead_deputy_id: ID.into(),
            priority: "urgent".into(),
            ..Default::default()
        }
        .try_into();
        assert!(r.expect_err("refused").to_string().contains("priority"));
        let ok: dto::SubmitSuggestion = pb::SubmitSuggestionRequest {
            session_id: ID.into(),
            lead_deputy_id: ID.into(),
            priority: "key".into(),
            disclosure: "summary".into(),
            received_on: "2020-06-01".into(),
            ..Default::default()
        }
        .try_into()
        .expect("accepted");
        assert_eq!(ok.priority, Priority::Key);
        assert_eq!(ok.disclosure, Disclosure::Summary);
        assert_eq!(ok.kind, Some(ItemKind::Session));
    }

    #[test]
    fn a_reply_or_communication_dated_in_the_future_is_refused_for_both_transports() {
        let s = suggestion();
        let today = time::macros::date!(2020 - 06 - 10);
        let p = Principal {
            key_id: Uuid::nil(),
            role: Role::AssigningOffice,
            agency: None,
            deputy: None,
            reference: None,
            client_cert: None,
        };
        let a: Addressed = pb::RecordCommunicationRequest {
            suggestion_id: ID.into(),
            assignment_id: ID.into(),
            phase: "before".into(),
            method: "phone".into(),
            on: "2020-06-11".into(),
            ..Default::default()
        }
        .try_into()
        .expect("accepted");
        let e = a
            .command
            .into_kind(&s, today, &p, Vec::new())
            .expect_err("refused");
        assert!(e.to_string().contains("future"), "{e}");
        let a: Addressed = pb::IssueReplyRequest {
            suggestion_id: ID.into(),
            assignment_id: ID.into(),
            class: pc::ReplyClass::A as i32,
            signer: Some(pc::Signer {
                name: "张三".into(),
                position: pc::SignerPosition::PrincipalHead as i32,
            }),
            on: "2020-06-11".into(),
            ..Default::default()
        }
        .try_into()
        .expect("accepted");
        let e = a
            .command
            .into_kind(&s, today, &p, Vec::new())
            .expect_err("refused");
        assert!(e.to_string().contains("future"), "{e}");
    }
}
