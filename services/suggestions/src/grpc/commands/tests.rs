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
        pb::ReviewReplyRequest {
            suggestion_id: ID.into(),
            reply_id: ID.into(),
            accept: false,
            reasons: "the measures are not concrete".into(),
            ..Default::default()
        }
        .try_into(),
        pb::DecideApprovalStepRequest {
            suggestion_id: ID.into(),
            assignment_id: ID.into(),
            step: 0,
            approve: true,
            ..Default::default()
        }
        .try_into(),
        pb::PublishReplyRequest {
            suggestion_id: ID.into(),
            reply_id: ID.into(),
            ..Default::default()
        }
        .try_into(),
        pb::WithdrawPublicationRequest {
            suggestion_id: ID.into(),
            reply_id: ID.into(),
            reason: "a name was left in".into(),
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
        pb::DecideClosureRequest {
            suggestion_id: ID.into(),
            confirm: true,
            ..Default::default()
        }
        .try_into(),
        pb::RateClosureRequest {
            suggestion_id: ID.into(),
            deputy_id: ID.into(),
            level: pc::Satisfaction::Satisfied as i32,
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
                delegation: String::new(),
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
        position: None,
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
            .into_kind(&s, s.received_on, &office, Default::default())
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
        position: None,
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
        .into_kind(&s, today, &p, Default::default())
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
        .into_kind(&s, today, &p, Default::default())
        .expect_err("refused");
    assert!(e.to_string().contains("future"), "{e}");
}
