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
        let on = if r.on.is_empty() {
            None
        } else {
            Some(banli_calendar::parse_date(&r.on).map_err(|_| {
                AppError::malformed(format!("on `{}` is not a YYYY-MM-DD date", r.on))
            })?)
        };
        let body = dto::OpinionBody {
            document_number: r.document_number,
            body: r.body,
            signer: signer_body(r.signer)?,
            on,
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

#[cfg(test)]
mod tests {
    //! Every coordination command is reachable from both transports and builds the domain
    //! command of the same name; every domain command is built by one.

    use std::collections::BTreeSet;

    use banli_domain::coordination::CoordinationCommand;

    use super::*;

    const ID: &str = "0190a5b4-0000-7000-8000-000000000001";

    fn signer() -> Option<pc::Signer> {
        Some(pc::Signer {
            name: "李四".into(),
            position: pc::SignerPosition::AuthorizedLeader as i32,
        })
    }

    fn grpc_samples() -> Vec<Result<Addressed, AppError>> {
        use pb::decide_adjustment_request::Outcome;
        vec![
            pb::SignForRequest {
                assignment_id: ID.into(),
                change: None,
            }
            .try_into(),
            pb::RequestAdjustmentRequest {
                assignment_id: ID.into(),
                ..Default::default()
            }
            .try_into(),
            pb::DecideAdjustmentRequest {
                assignment_id: ID.into(),
                outcome: Outcome::Reject as i32,
                ..Default::default()
            }
            .try_into(),
            pb::SubmitOpinionRequest {
                assignment_id: ID.into(),
                signer: signer(),
                ..Default::default()
            }
            .try_into(),
            pb::AcknowledgeOpinionRequest {
                opinion_id: ID.into(),
                change: None,
            }
            .try_into(),
            pb::WaiveOpinionRequest {
                assignment_id: ID.into(),
                ..Default::default()
            }
            .try_into(),
            pb::CountersignRequest {
                reply_id: ID.into(),
                signer: signer(),
                change: None,
            }
            .try_into(),
            pb::RecordDisagreementRequest {
                assignment_id: ID.into(),
                ..Default::default()
            }
            .try_into(),
            pb::EscalateDisagreementRequest {
                disagreement_id: ID.into(),
                change: None,
            }
            .try_into(),
            pb::ResolveDisagreementRequest {
                disagreement_id: ID.into(),
                ..Default::default()
            }
            .try_into(),
        ]
    }

    #[test]
    fn every_command_is_reachable_from_both_transports_and_builds_its_domain_command() {
        let doc = crate::http::openapi();
        let today = time::macros::date!(2020 - 06 - 10);
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
            let (target, _) = a.command.target();
            assert_eq!(
                target.to_string(),
                ID,
                "{variant} addresses the request's id"
            );
            let kind = a.command.into_command(today).expect("builds");
            assert_eq!(kind.variant(), variant);
            kinds.insert(kind.variant());
        }
        let all: BTreeSet<&str> = C::VARIANTS.iter().copied().collect();
        assert_eq!(from_grpc, all, "a command without a gRPC request");
        let domain: BTreeSet<&str> = CoordinationCommand::VARIANTS.iter().copied().collect();
        assert_eq!(kinds, domain, "a domain command no client command builds");
    }

    #[test]
    fn the_same_rules_for_both_transports() {
        let today = time::macros::date!(2020 - 06 - 10);
        let a: Addressed = pb::SubmitOpinionRequest {
            assignment_id: ID.into(),
            signer: signer(),
            on: "2020-06-11".into(),
            ..Default::default()
        }
        .try_into()
        .expect("accepted");
        let e = a.command.into_command(today).expect_err("refused");
        assert!(e.to_string().contains("future"), "{e}");
        let a: Addressed = pb::DecideAdjustmentRequest {
            assignment_id: ID.into(),
            outcome: pb::decide_adjustment_request::Outcome::Accept as i32,
            change: Some(pb::Change {
                expected_version: 3,
                idempotency_key: "k".into(),
            }),
            ..Default::default()
        }
        .try_into()
        .expect("accepted");
        assert_eq!(a.expected_version, Some(3));
        assert_eq!(a.idempotency_key.as_deref(), Some("k"));
        let e = a.command.into_command(today).expect_err("refused");
        assert!(e.to_string().contains("new_agency_id"), "{e}");
        let r: Result<Addressed, _> = pb::DecideAdjustmentRequest {
            assignment_id: ID.into(),
            ..Default::default()
        }
        .try_into();
        assert!(r.expect_err("refused").to_string().contains("outcome"));
    }
}
