//! The gRPC half of the walk: every RPC that names an item, with the stranger's key, against
//! the same RPC with ids that do not exist.

use banli_proto::common::v1 as common;
use banli_proto::coordination::v1 as cp;
use banli_proto::followup::v1 as fp;
use banli_proto::suggestions::v1 as sp;

use super::Ids;
use crate::serve::Serve;

/// A gRPC request with the caller's key and the latest consistency token.
pub(crate) fn req<T>(msg: T, key: &str, token: &str) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    let m = r.metadata_mut();
    m.insert(
        "authorization",
        format!("Bearer {key}").parse().expect("ascii"),
    );
    if !token.is_empty() {
        m.insert("banli-consistency", token.parse().expect("ascii"));
    }
    r
}

/// Every RPC that names an item, with `i`'s ids: (method, status).
pub(super) async fn rpcs(
    channel: tonic::transport::Channel,
    key: &str,
    token: &str,
    i: &Ids,
) -> Vec<(&'static str, tonic::Status)> {
    let mut s = sp::suggestion_service_client::SuggestionServiceClient::new(channel.clone());
    let mut co = cp::coordination_service_client::CoordinationServiceClient::new(channel.clone());
    let mut w = cp::webhook_service_client::WebhookServiceClient::new(channel.clone());
    let mut f = fp::follow_up_service_client::FollowUpServiceClient::new(channel);
    let mut out = Vec::new();
    macro_rules! call {
        ($name:literal, $client:ident . $method:ident($msg:expr)) => {
            out.push((
                $name,
                match $client.$method(req($msg, key, token)).await {
                    Ok(_) => tonic::Status::ok(""),
                    Err(e) => e,
                },
            ));
        };
    }
    let sid = || i.suggestion.clone();
    let signer = || {
        Some(common::Signer {
            name: "Zhao".into(),
            position: common::SignerPosition::PrincipalHead as i32,
        })
    };
    call!(
        "GetSuggestion",
        s.get_suggestion(sp::GetSuggestionRequest { id: sid() })
    );
    call!(
        "StartReview",
        s.start_review(sp::StartReviewRequest {
            suggestion_id: sid(),
            ..Default::default()
        })
    );
    call!(
        "ReviewSuggestion",
        s.review_suggestion(sp::ReviewSuggestionRequest {
            suggestion_id: sid(),
            decision: sp::review_suggestion_request::Decision::Accept as i32,
            ..Default::default()
        })
    );
    call!(
        "WithdrawSuggestion",
        s.withdraw_suggestion(sp::WithdrawSuggestionRequest {
            suggestion_id: sid(),
            reason: "resolved".into(),
            ..Default::default()
        })
    );
    call!(
        "AssignSuggestion",
        s.assign_suggestion(sp::AssignSuggestionRequest {
            suggestion_id: sid(),
            units: vec![sp::UnitAssignment {
                agency_id: i.lead.clone(),
                role: common::UnitRole::Co as i32,
            }],
            ..Default::default()
        })
    );
    call!(
        "Dispatch",
        s.dispatch(sp::DispatchRequest {
            suggestion_id: sid(),
            assignment_id: i.lead.clone(),
            division_id: i.co.clone(),
            handler: "h".into(),
            responsible_leader: "l".into(),
            ..Default::default()
        })
    );
    call!(
        "RecordCommunication",
        s.record_communication(sp::RecordCommunicationRequest {
            suggestion_id: sid(),
            assignment_id: i.lead.clone(),
            phase: "after".into(),
            method: "phone".into(),
            summary: "call".into(),
            ..Default::default()
        })
    );
    call!(
        "RequestExtension",
        s.request_extension(sp::RequestExtensionRequest {
            suggestion_id: sid(),
            assignment_id: i.lead.clone(),
            new_due: "2030-07-01".into(),
            reason: "survey".into(),
            ..Default::default()
        })
    );
    call!(
        "DecideExtension",
        s.decide_extension(sp::DecideExtensionRequest {
            suggestion_id: sid(),
            assignment_id: i.lead.clone(),
            approve: true,
            ..Default::default()
        })
    );
    call!(
        "IssueReply",
        s.issue_reply(sp::IssueReplyRequest {
            suggestion_id: sid(),
            assignment_id: i.lead.clone(),
            document_number: "2".into(),
            body: "b".into(),
            class: common::ReplyClass::A as i32,
            signer: signer(),
            ..Default::default()
        })
    );
    call!(
        "ChangeClass",
        s.change_class(sp::ChangeClassRequest {
            suggestion_id: sid(),
            to: common::ReplyClass::C as i32,
            reason: "re-rated".into(),
            ..Default::default()
        })
    );
    call!(
        "RecordFeedback",
        s.record_feedback(sp::RecordFeedbackRequest {
            suggestion_id: sid(),
            deputy_id: i.co.clone(),
            level: common::Satisfaction::Satisfied as i32,
            ..Default::default()
        })
    );
    call!(
        "CloseFeedbackWindow",
        s.close_feedback_window(sp::CloseFeedbackWindowRequest {
            suggestion_id: sid(),
            ..Default::default()
        })
    );
    call!(
        "ResolveEscalation",
        s.resolve_escalation(sp::ResolveEscalationRequest {
            suggestion_id: sid(),
            outcome: "met".into(),
            ..Default::default()
        })
    );
    call!(
        "ReportProgress",
        s.report_progress(sp::ReportProgressRequest {
            suggestion_id: sid(),
            commitment_id: i.commitment.clone(),
            note: "halfway".into(),
            ..Default::default()
        })
    );
    call!(
        "ConvertCommitment",
        s.convert_commitment(sp::ConvertCommitmentRequest {
            suggestion_id: sid(),
            commitment_id: i.commitment.clone(),
            evidence: "regulation 12".into(),
            ..Default::default()
        })
    );
    call!(
        "GetCase",
        co.get_case(cp::GetCaseRequest {
            suggestion_id: sid()
        })
    );
    call!(
        "SignFor",
        co.sign_for(cp::SignForRequest {
            assignment_id: i.lead.clone(),
            change: None
        })
    );
    call!(
        "RequestAdjustment",
        co.request_adjustment(cp::RequestAdjustmentRequest {
            assignment_id: i.lead.clone(),
            reason: "not ours".into(),
            ..Default::default()
        })
    );
    call!(
        "DecideAdjustment",
        co.decide_adjustment(cp::DecideAdjustmentRequest {
            assignment_id: i.lead.clone(),
            outcome: cp::decide_adjustment_request::Outcome::Reject as i32,
            reason: "stays".into(),
            ..Default::default()
        })
    );
    call!(
        "SubmitOpinion",
        co.submit_opinion(cp::SubmitOpinionRequest {
            assignment_id: i.co.clone(),
            document_number: "2".into(),
            body: "b".into(),
            signer: signer(),
            ..Default::default()
        })
    );
    call!(
        "AcknowledgeOpinion",
        co.acknowledge_opinion(cp::AcknowledgeOpinionRequest {
            opinion_id: i.opinion.clone(),
            change: None
        })
    );
    call!(
        "WaiveOpinion",
        co.waive_opinion(cp::WaiveOpinionRequest {
            assignment_id: i.co.clone(),
            reason: "again".into(),
            change: None
        })
    );
    call!(
        "Countersign",
        co.countersign(cp::CountersignRequest {
            reply_id: i.reply.clone(),
            signer: signer(),
            change: None
        })
    );
    call!(
        "RecordDisagreement",
        co.record_disagreement(cp::RecordDisagreementRequest {
            assignment_id: i.co.clone(),
            statement: "no".into(),
            ..Default::default()
        })
    );
    call!(
        "EscalateDisagreement",
        co.escalate_disagreement(cp::EscalateDisagreementRequest {
            disagreement_id: i.disagreement.clone(),
            change: None
        })
    );
    call!(
        "ResolveDisagreement",
        co.resolve_disagreement(cp::ResolveDisagreementRequest {
            disagreement_id: i.disagreement.clone(),
            resolution: "settled".into(),
            change: None
        })
    );
    call!(
        "GetWebhook",
        w.get_webhook(cp::GetWebhookRequest {
            id: i.webhook.clone()
        })
    );
    call!(
        "UpdateWebhook",
        w.update_webhook(cp::UpdateWebhookRequest {
            id: i.webhook.clone(),
            description: Some("mine now".into()),
            ..Default::default()
        })
    );
    call!(
        "RotateWebhookSecret",
        w.rotate_webhook_secret(cp::RotateWebhookSecretRequest {
            id: i.webhook.clone(),
            ..Default::default()
        })
    );
    call!(
        "ReplayWebhook",
        w.replay_webhook(cp::ReplayWebhookRequest {
            id: i.webhook.clone(),
            after: "start".into(),
            change: None
        })
    );
    call!(
        "ListWebhookDeliveries",
        w.list_webhook_deliveries(cp::ListWebhookDeliveriesRequest {
            id: i.webhook.clone(),
            ..Default::default()
        })
    );
    call!(
        "DeleteWebhook",
        w.delete_webhook(cp::GetWebhookRequest {
            id: i.webhook.clone()
        })
    );
    call!(
        "GetNotice",
        f.get_notice(fp::GetNoticeRequest {
            notice_id: i.notice.clone()
        })
    );
    call!(
        "AcknowledgeNotice",
        f.acknowledge_notice(fp::AcknowledgeNoticeRequest {
            notice_id: i.notice.clone(),
            ..Default::default()
        })
    );
    call!(
        "AnswerNotice",
        f.answer_notice(fp::AnswerNoticeRequest {
            notice_id: i.notice.clone(),
            response: "done".into(),
            ..Default::default()
        })
    );
    out
}

pub(super) fn walk_grpc(
    server: &Serve,
    key: &str,
    token: &str,
    real: &Ids,
    failures: &mut Vec<String>,
) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let unknown = Ids::unknown();
    let (seen, none) = rt.block_on(async {
        let channel = server.channel().await;
        (
            rpcs(channel.clone(), key, token, real).await,
            rpcs(channel, key, token, &unknown).await,
        )
    });
    for ((name, got), (_, ugot)) in seen.iter().zip(&none) {
        let (a, b) = (real.blank(got.message()), unknown.blank(ugot.message()));
        if got.code() != tonic::Code::NotFound || ugot.code() != tonic::Code::NotFound || a != b {
            failures.push(format!(
                "gRPC {name}: {:?} {a} (an unknown id: {:?} {b})",
                got.code(),
                ugot.code()
            ));
        }
    }
}
