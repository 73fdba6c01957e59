//! The flow's later steps: co-handling and contact, the reply and what follows it,
//! supervision, the lead's webhook.

use banli_proto::coordination::v1 as cp;
use banli_proto::followup::v1 as fp;
use banli_proto::suggestions::v1 as sp;
use serde_json::json;

use super::super::{Via, keyed};
use super::{Flow, Item, common};
use crate::walk::id;

/// The co-handler's opinion, acknowledged by the lead; a communication; an extension: returns the opinion's id.
#[allow(unused_variables, clippy::unused_unit)]
pub(super) async fn opinion_and_contact(fl: &mut Flow<'_>, it: &Item) -> String {
    step!(fl, it => c, s, co, w, f, k, via, today, office, idem, signer, deputy, sid, p, lead, coa, opinion);
    // The co-handler's opinion, acknowledged by the lead; a communication; an extension.
    let new_due = (today + time::Duration::days(150)).to_string();
    match via {
        Via::Rest => {
            let case = c.twice(
                "POST",
                &format!("/v1/coordination/assignments/{coa}/opinions"),
                &k.co,
                json!({"document_number": "会办1号", "body": "The fund can come from the digital economy budget.", "signer": {"name": "Zhao", "position": "principal_head"}}),
                &idem("opinion"),
            );
            let opinion = id(&case["opinions"][0]);
            c.twice(
                "POST",
                &format!("/v1/coordination/opinions/{opinion}/acknowledge"),
                &k.lead,
                json!({}),
                &idem("acknowledge"),
            );
            c.twice(
                "POST",
                &format!("{p}/communications"),
                &k.lead,
                json!({"assignment_id": lead, "phase": "during", "method": "visit", "face_to_face": true, "deputy_ids": [deputy], "summary": "visit"}),
                &idem("communication"),
            );
            c.twice(
                "POST",
                &format!("{p}/assignments/{lead}/extension-request"),
                &k.lead,
                json!({"new_due": new_due, "reason": "a survey across the province"}),
                &idem("extension-request"),
            );
            c.twice(
                "POST",
                &format!("{p}/assignments/{lead}/extension-decision"),
                office,
                json!({"approve": true}),
                &idem("extension-decision"),
            );
            opinion
        }
        Via::Grpc => {
            let case = twice!(
                c,
                co,
                submit_opinion,
                &k.co,
                &idem("opinion"),
                cp::SubmitOpinionRequest {
                    assignment_id: coa.clone(),
                    document_number: "会办1号".into(),
                    body: "The fund can come from the digital economy budget.".into(),
                    signer: Some(signer("Zhao")),
                    ..Default::default()
                }
            );
            let opinion = case.opinions[0].id.clone();
            twice!(
                c,
                co,
                acknowledge_opinion,
                &k.lead,
                &idem("acknowledge"),
                cp::AcknowledgeOpinionRequest {
                    opinion_id: opinion.clone(),
                    change: None,
                }
            );
            twice!(
                c,
                s,
                record_communication,
                &k.lead,
                &idem("communication"),
                sp::RecordCommunicationRequest {
                    suggestion_id: sid.clone(),
                    assignment_id: lead.clone(),
                    phase: "during".into(),
                    method: "visit".into(),
                    face_to_face: true,
                    deputy_ids: vec![deputy.clone()],
                    summary: "visit".into(),
                    ..Default::default()
                }
            );
            twice!(
                c,
                s,
                request_extension,
                &k.lead,
                &idem("extension-request"),
                sp::RequestExtensionRequest {
                    suggestion_id: sid.clone(),
                    assignment_id: lead.clone(),
                    new_due: new_due.clone(),
                    reason: "a survey across the province".into(),
                    ..Default::default()
                }
            );
            twice!(
                c,
                s,
                decide_extension,
                office,
                &idem("extension-decision"),
                sp::DecideExtensionRequest {
                    suggestion_id: sid.clone(),
                    assignment_id: lead.clone(),
                    approve: true,
                    ..Default::default()
                }
            );
            opinion
        }
    }
}

/// The lead's class-B reply with a commitment; the co-handler's disagreement, escalated and
/// resolved; the deputy's rating; progress on the commitment and its conversion.
#[allow(unused_variables, clippy::unused_unit)]
pub(super) async fn reply_and_follow_up(fl: &mut Flow<'_>, it: &Item) -> () {
    step!(fl, it => c, s, co, w, f, k, via, today, office, idem, signer, deputy, sid, p, lead, coa, opinion);
    // The lead's class-B reply with a commitment; the co-handler's disagreement, escalated and
    // resolved; the deputy's rating; progress on the commitment and its conversion.
    let target = (today + time::Duration::days(300)).to_string();
    match via {
        Via::Rest => {
            let v = c.twice(
                "POST",
                &format!("{p}/replies"),
                &k.lead,
                json!({"assignment_id": lead, "document_number": "答复1号", "body": "The fund opens next year.", "class": "B", "signer": {"name": "Chen", "position": "principal_head"}, "opinion_ids": [opinion], "commitments": [{"measure": "open the fund", "target_date": target}]}),
                &idem("reply"),
            );
            let commitment = id(&v["commitments"][0]);
            let case = c.twice(
                "POST",
                &format!("/v1/coordination/assignments/{coa}/disagreements"),
                &k.co,
                json!({"statement": "the reply leaves out the fund's size"}),
                &idem("disagreement"),
            );
            let d = id(&case["disagreements"][0]);
            c.twice(
                "POST",
                &format!("/v1/coordination/disagreements/{d}/escalate"),
                &k.co,
                json!({}),
                &idem("escalate"),
            );
            c.twice(
                "POST",
                &format!("/v1/coordination/disagreements/{d}/resolve"),
                office,
                json!({"resolution": "the size is set in the budget"}),
                &idem("resolve"),
            );
            c.twice(
                "POST",
                &format!("{p}/feedback"),
                office,
                json!({"level": "satisfied", "deputy_id": deputy}),
                &idem("feedback"),
            );
            c.twice(
                "POST",
                &format!("{p}/commitments/{commitment}/progress"),
                &k.lead,
                json!({"note": "the fund's rules are drafted"}),
                &idem("progress"),
            );
            c.twice(
                "POST",
                &format!("{p}/commitments/{commitment}/convert"),
                &k.lead,
                json!({"evidence": "regulation 12 in force"}),
                &idem("convert"),
            );
        }
        Via::Grpc => {
            let v = twice!(
                c,
                s,
                issue_reply,
                &k.lead,
                &idem("reply"),
                sp::IssueReplyRequest {
                    suggestion_id: sid.clone(),
                    assignment_id: lead.clone(),
                    document_number: "答复1号".into(),
                    body: "The fund opens next year.".into(),
                    class: common::ReplyClass::B as i32,
                    signer: Some(signer("Chen")),
                    opinion_ids: vec![opinion.clone()],
                    commitments: vec![sp::CommitmentDraft {
                        measure: "open the fund".into(),
                        target_date: target.clone(),
                        ..Default::default()
                    }],
                    ..Default::default()
                }
            );
            let commitment = v.commitments[0].id.clone();
            let case = twice!(
                c,
                co,
                record_disagreement,
                &k.co,
                &idem("disagreement"),
                cp::RecordDisagreementRequest {
                    assignment_id: coa.clone(),
                    statement: "the reply leaves out the fund's size".into(),
                    ..Default::default()
                }
            );
            let d = case.disagreements[0].id.clone();
            twice!(
                c,
                co,
                escalate_disagreement,
                &k.co,
                &idem("escalate"),
                cp::EscalateDisagreementRequest {
                    disagreement_id: d.clone(),
                    change: None,
                }
            );
            twice!(
                c,
                co,
                resolve_disagreement,
                office,
                &idem("resolve"),
                cp::ResolveDisagreementRequest {
                    disagreement_id: d.clone(),
                    resolution: "the size is set in the budget".into(),
                    change: None,
                }
            );
            twice!(
                c,
                s,
                record_feedback,
                office,
                &idem("feedback"),
                sp::RecordFeedbackRequest {
                    suggestion_id: sid.clone(),
                    deputy_id: deputy.clone(),
                    level: common::Satisfaction::Satisfied as i32,
                    ..Default::default()
                }
            );
            twice!(
                c,
                s,
                report_progress,
                &k.lead,
                &idem("progress"),
                sp::ReportProgressRequest {
                    suggestion_id: sid.clone(),
                    commitment_id: commitment.clone(),
                    note: "the fund's rules are drafted".into(),
                    expected_version: 0,
                    notify_deputy: None,
                }
            );
            twice!(
                c,
                s,
                convert_commitment,
                &k.lead,
                &idem("convert"),
                sp::ConvertCommitmentRequest {
                    documents: Vec::new(),
                    suggestion_id: sid.clone(),
                    commitment_id: commitment.clone(),
                    evidence: "regulation 12 in force".into(),
                    expected_version: 0,
                }
            );
        }
    }
}

/// Supervision: a notice to the lead, acknowledged and answered; the lead's stage plan.
#[allow(unused_variables, clippy::unused_unit)]
pub(super) async fn supervise(fl: &mut Flow<'_>, it: &Item) -> () {
    step!(fl, it => c, s, co, w, f, k, via, today, office, idem, signer, deputy, sid, p, lead, coa, opinion);
    // Supervision: a notice to the lead, acknowledged and answered; the lead's stage plan.
    let due = (today + time::Duration::days(20)).to_string();
    match via {
        Via::Rest => {
            let n = id(&c.twice(
                "POST",
                "/v1/followup/notices",
                office,
                json!({"target_agency_id": k.lead_agency, "suggestion_ids": [sid], "level": "notice", "body": "请报告办理进展。", "response_due": due}),
                &idem("notice"),
            ));
            c.twice(
                "POST",
                &format!("/v1/followup/notices/{n}/acknowledge"),
                &k.lead,
                json!({}),
                &idem("notice-ack"),
            );
            c.twice(
                "POST",
                &format!("/v1/followup/notices/{n}/response"),
                &k.lead,
                json!({"response": "the fund is open"}),
                &idem("notice-answer"),
            );
            c.twice(
                "POST",
                "/v1/followup/stage-plans",
                office,
                json!({"agency_id": k.lead_agency, "year": 2026}),
                &idem("plan"),
            );
        }
        Via::Grpc => {
            let n = twice!(
                c,
                f,
                issue_notice,
                office,
                &idem("notice"),
                fp::IssueNoticeRequest {
                    target_agency_id: k.lead_agency.clone(),
                    suggestion_ids: vec![sid.clone()],
                    level: "notice".into(),
                    body: "请报告办理进展。".into(),
                    response_due: due.clone(),
                    idempotency_key: String::new(),
                }
            )
            .id;
            twice!(
                c,
                f,
                acknowledge_notice,
                &k.lead,
                &idem("notice-ack"),
                fp::AcknowledgeNoticeRequest {
                    notice_id: n.clone(),
                    ..Default::default()
                }
            );
            twice!(
                c,
                f,
                answer_notice,
                &k.lead,
                &idem("notice-answer"),
                fp::AnswerNoticeRequest {
                    notice_id: n.clone(),
                    response: "the fund is open".into(),
                    ..Default::default()
                }
            );
            twice!(
                c,
                f,
                set_stage_plan,
                office,
                &idem("plan"),
                fp::SetStagePlanRequest {
                    agency_id: k.lead_agency.clone(),
                    year: 2026,
                    ..Default::default()
                }
            );
        }
    }
}

/// The lead's webhook: created, changed, its secret rotated, its feed replayed.
#[allow(unused_variables, clippy::unused_unit)]
pub(super) async fn webhook(fl: &mut Flow<'_>, it: &Item) -> () {
    step!(fl, it => c, s, co, w, f, k, via, today, office, idem, signer, deputy, sid, p, lead, coa, opinion);
    // The lead's webhook: created, changed, its secret rotated, its feed replayed.
    match via {
        Via::Rest => {
            let wid = id(&c.twice(
                "POST",
                "/v1/webhooks",
                &k.lead,
                json!({"url": "http://127.0.0.1:9/hook"}),
                &idem("webhook"),
            ));
            let wp = format!("/v1/webhooks/{wid}");
            c.twice(
                "PATCH",
                &wp,
                &k.lead,
                json!({"description": "the OA system"}),
                &idem("webhook-update"),
            );
            c.twice(
                "POST",
                &format!("{wp}/rotate-secret"),
                &k.lead,
                json!({}),
                &idem("webhook-rotate"),
            );
            c.twice(
                "POST",
                &format!("{wp}/replay"),
                &k.lead,
                json!({"after": "start"}),
                &idem("webhook-replay"),
            );
        }
        Via::Grpc => {
            let wid = twice!(
                c,
                w,
                create_webhook,
                &k.lead,
                &idem("webhook"),
                cp::CreateWebhookRequest {
                    url: "http://127.0.0.1:9/hook".into(),
                    ..Default::default()
                };
                |w: &mut cp::Webhook| w.secret.clear()
            )
            .id;
            twice!(
                c,
                w,
                update_webhook,
                &k.lead,
                &idem("webhook-update"),
                cp::UpdateWebhookRequest {
                    id: wid.clone(),
                    description: Some("the OA system".into()),
                    ..Default::default()
                }
            );
            twice!(
                c,
                w,
                rotate_webhook_secret,
                &k.lead,
                &idem("webhook-rotate"),
                cp::RotateWebhookSecretRequest {
                    id: wid.clone(),
                    ..Default::default()
                };
                |w: &mut cp::Webhook| w.secret.clear()
            );
            twice!(
                c,
                w,
                replay_webhook,
                &k.lead,
                &idem("webhook-replay"),
                cp::ReplayWebhookRequest {
                    id: wid.clone(),
                    after: "start".into(),
                    change: None,
                }
            );
        }
    }
}
