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
        pb::RecordConsultationRequest {
            assignment_id: ID.into(),
            agency_ids: vec![ID.into()],
            on: "2020-06-09".into(),
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
        let kind = a.command.into_command(today, &[]).expect("builds");
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
    let e = a.command.into_command(today, &[]).expect_err("refused");
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
    let e = a.command.into_command(today, &[]).expect_err("refused");
    assert!(e.to_string().contains("new_agency_id"), "{e}");
    let r: Result<Addressed, _> = pb::DecideAdjustmentRequest {
        assignment_id: ID.into(),
        ..Default::default()
    }
    .try_into();
    assert!(r.expect_err("refused").to_string().contains("outcome"));
}
