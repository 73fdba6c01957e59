//! Every command is as safe to retry over gRPC as over REST, against a real `banli serve`: the
//! whole flow — directory, suggestion, coordination, follow-up, webhooks — is run once over
//! REST and once over gRPC, each command sent twice under the same idempotency key; the retry
//! must answer exactly as the first time (a second effect would show as another version, id or
//! a state refusal), and the item ends with one of everything.

use banli_proto::common::v1 as common;
use banli_proto::coordination::v1 as cp;
use banli_proto::followup::v1 as fp;
use banli_proto::suggestions::v1 as sp;
use serde_json::{Value, json};
use tonic::transport::Channel;

use crate::serve::serve_for_webhooks;
use crate::walk::{Client, id};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Via {
    Rest,
    Grpc,
}

impl Client {
    /// A REST command twice under one `Idempotency-Key`: both answers must be the same success
    /// (but for a webhook's secret, which only the first answer shows).
    fn twice(&self, method: &str, path: &str, key: &str, body: Value, idem: &str) -> Value {
        let headers = [("idempotency-key", idem)];
        let (s1, first) = self.call_with(method, path, key, Some(&body), &headers);
        let (s2, second) = self.call_with(method, path, key, Some(&body), &headers);
        assert!((200..300).contains(&s1), "{method} {path}: {s1} {first}");
        let mut seen = first.clone();
        if let Some(o) = seen.as_object_mut() {
            o.remove("secret");
        }
        assert_eq!(
            (s1, &seen),
            (s2, &second),
            "{method} {path}: a retry answers as the first time"
        );
        first
    }
}

/// A gRPC request with a key, the consistency token and an `idempotency-key`.
fn keyed<T>(msg: T, key: &str, token: &str, idem: &str) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    let m = r.metadata_mut();
    m.insert(
        "authorization",
        format!("Bearer {key}").parse().expect("ascii"),
    );
    m.insert("idempotency-key", idem.parse().expect("ascii"));
    if !token.is_empty() {
        m.insert("banli-consistency", token.parse().expect("ascii"));
    }
    r
}

/// A gRPC command twice under one `idempotency-key`: both answers must be the same success,
/// once `$shown_once` has taken out what only the first answer shows (a webhook's secret).
macro_rules! twice {
    ($c:expr, $client:expr, $method:ident, $key:expr, $idem:expr, $msg:expr) => {
        twice!($c, $client, $method, $key, $idem, $msg; |_| {})
    };
    ($c:expr, $client:expr, $method:ident, $key:expr, $idem:expr, $msg:expr; $shown_once:expr) => {{
        let msg = $msg;
        let token = $c.token.borrow().clone();
        let first = $client
            .$method(keyed(msg.clone(), $key, &token, $idem))
            .await;
        let second = $client.$method(keyed(msg, $key, &token, $idem)).await;
        let (first, second) = match (first, second) {
            (Ok(a), Ok(b)) => (a, b),
            (a, b) => panic!("{}: {a:?} / {b:?}", stringify!($method)),
        };
        if let Some(t) = first
            .metadata()
            .get("banli-consistency")
            .and_then(|v| v.to_str().ok())
        {
            *$c.token.borrow_mut() = t.to_owned();
        }
        let (a, mut b) = (first.into_inner(), second.into_inner());
        let mut seen = a.clone();
        $shown_once(&mut seen);
        $shown_once(&mut b);
        assert_eq!(
            seen,
            b,
            "{}: a retry answers as the first time",
            stringify!($method)
        );
        a
    }};
}

struct Keys {
    office: String,
    lead: String,
    co: String,
    lead_agency: String,
    co_agency: String,
    lead_division: String,
    co_division: String,
}

fn directory(c: &Client, office: &str, tag: &str) -> Keys {
    let agency = |name: String| c.agency(office, &name);
    let (lead_agency, lead, lead_division) = agency(format!("Department of Industry {tag}"));
    let (co_agency, co, co_division) = agency(format!("Department of Finance {tag}"));
    Keys {
        office: office.to_owned(),
        lead,
        co,
        lead_agency,
        co_agency,
        lead_division,
        co_division,
    }
}

/// The whole flow over `via`, each command twice; returns the suggestion's id.
async fn flow(c: &Client, channel: Channel, k: &Keys, via: Via) -> String {
    let mut s = sp::suggestion_service_client::SuggestionServiceClient::new(channel.clone());
    let mut co = cp::coordination_service_client::CoordinationServiceClient::new(channel.clone());
    let mut w = cp::webhook_service_client::WebhookServiceClient::new(channel.clone());
    let mut f = fp::follow_up_service_client::FollowUpServiceClient::new(channel);
    let office = k.office.as_str();
    let tag = format!("{via:?}");
    let idem = |name: &str| format!("{tag}-{name}");
    let signer = |name: &str| common::Signer {
        name: name.into(),
        position: common::SignerPosition::PrincipalHead as i32,
    };
    let today = time::OffsetDateTime::now_utc().date();

    let session = match via {
        Via::Rest => id(&c.twice(
            "POST",
            "/v1/sessions",
            office,
            json!({"body":"npc","term":14,"number":1,"name":"14th PC, 1st session","opens_on":"2026-01-10","closes_on":"2026-01-16"}),
            &idem("session"),
        )),
        Via::Grpc => {
            twice!(
                c,
                s,
                create_session,
                office,
                &idem("session"),
                sp::CreateSessionRequest {
                    session: Some(sp::Session {
                        body: "npc".into(),
                        term: 14,
                        number: 2,
                        name: "14th PC, 2nd session".into(),
                        opens_on: "2026-02-10".into(),
                        closes_on: "2026-02-16".into(),
                        ..Default::default()
                    }),
                    idempotency_key: String::new(),
                }
            )
            .id
        }
    };
    let deputy = match via {
        Via::Rest => id(&c.twice(
            "POST",
            "/v1/deputies",
            office,
            json!({"name": "Deputy Liu", "delegation": "Changsha"}),
            &idem("deputy"),
        )),
        Via::Grpc => {
            twice!(
                c,
                s,
                create_deputy,
                office,
                &idem("deputy"),
                sp::CreateDeputyRequest {
                    deputy: Some(sp::Deputy {
                        name: "Deputy Liu".into(),
                        delegation: "Changsha".into(),
                        ..Default::default()
                    }),
                    idempotency_key: String::new(),
                }
            )
            .id
        }
    };
    let sid = match via {
        Via::Rest => id(&c.twice(
            "POST",
            "/v1/suggestions",
            office,
            json!({"session_id": session, "number": "2026-0001", "title": "Digital upgrades", "body": "A fund and a platform.", "lead_deputy_id": deputy}),
            &idem("submit"),
        )),
        Via::Grpc => {
            twice!(
                c,
                s,
                submit_suggestion,
                office,
                &idem("submit"),
                sp::SubmitSuggestionRequest {
                    session_id: session.clone(),
                    number: "2026-0002".into(),
                    title: "Digital upgrades".into(),
                    body: "A fund and a platform.".into(),
                    lead_deputy_id: deputy.clone(),
                    ..Default::default()
                }
            )
            .id
        }
    };
    let p = format!("/v1/suggestions/{sid}");
    // Review and assignment.
    let assigned = match via {
        Via::Rest => {
            c.twice(
                "POST",
                &format!("{p}/start-review"),
                office,
                json!({}),
                &idem("start-review"),
            );
            c.twice(
                "POST",
                &format!("{p}/review"),
                office,
                json!({"decision": "accept"}),
                &idem("review"),
            );
            let v = c.twice(
                "POST",
                &format!("{p}/assignments"),
                office,
                json!({"units": [{"agency_id": k.lead_agency, "role": "lead"}, {"agency_id": k.co_agency, "role": "co"}]}),
                &idem("assign"),
            );
            v["assignments"]
                .as_array()
                .expect("assignments")
                .iter()
                .map(|a| (id(a), a["agency_id"].as_str().expect("agency").to_owned()))
                .collect::<Vec<_>>()
        }
        Via::Grpc => {
            twice!(
                c,
                s,
                start_review,
                office,
                &idem("start-review"),
                sp::StartReviewRequest {
                    suggestion_id: sid.clone(),
                    expected_version: 0,
                }
            );
            twice!(
                c,
                s,
                review_suggestion,
                office,
                &idem("review"),
                sp::ReviewSuggestionRequest {
                    suggestion_id: sid.clone(),
                    decision: sp::review_suggestion_request::Decision::Accept as i32,
                    ..Default::default()
                }
            );
            twice!(
                c,
                s,
                assign_suggestion,
                office,
                &idem("assign"),
                sp::AssignSuggestionRequest {
                    suggestion_id: sid.clone(),
                    units: vec![
                        sp::UnitAssignment {
                            agency_id: k.lead_agency.clone(),
                            role: common::UnitRole::Lead as i32,
                        },
                        sp::UnitAssignment {
                            agency_id: k.co_agency.clone(),
                            role: common::UnitRole::Co as i32,
                        },
                    ],
                    ..Default::default()
                }
            )
            .assignments
            .iter()
            .map(|a| (a.id.clone(), a.agency_id.clone()))
            .collect()
        }
    };
    let of = |agency: &str| {
        assigned
            .iter()
            .find(|(_, a)| a == agency)
            .map(|(id, _)| id.clone())
            .expect("an assignment")
    };
    let (lead, coa) = (of(&k.lead_agency), of(&k.co_agency));
    // Sign-for and dispatch by each unit.
    for (asg, key, division) in [
        (&lead, &k.lead, &k.lead_division),
        (&coa, &k.co, &k.co_division),
    ] {
        match via {
            Via::Rest => {
                c.twice(
                    "POST",
                    &format!("/v1/coordination/assignments/{asg}/sign-for"),
                    key,
                    json!({}),
                    &idem(&format!("sign-{asg}")),
                );
                c.twice(
                    "POST",
                    &format!("{p}/assignments/{asg}/dispatch"),
                    key,
                    json!({"division_id": division, "handler": "Li Hua", "responsible_leader": "Director Wang"}),
                    &idem(&format!("dispatch-{asg}")),
                );
            }
            Via::Grpc => {
                twice!(
                    c,
                    co,
                    sign_for,
                    key,
                    &idem(&format!("sign-{asg}")),
                    cp::SignForRequest {
                        assignment_id: asg.clone(),
                        change: None,
                    }
                );
                twice!(
                    c,
                    s,
                    dispatch,
                    key,
                    &idem(&format!("dispatch-{asg}")),
                    sp::DispatchRequest {
                        suggestion_id: sid.clone(),
                        assignment_id: asg.clone(),
                        division_id: division.clone(),
                        handler: "Li Hua".into(),
                        responsible_leader: "Director Wang".into(),
                        ..Default::default()
                    }
                );
            }
        }
    }
    // The co-handler's opinion, acknowledged by the lead; a communication; an extension.
    let new_due = (today + time::Duration::days(150)).to_string();
    let opinion = match via {
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
    };
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
                }
            );
            twice!(
                c,
                s,
                convert_commitment,
                &k.lead,
                &idem("convert"),
                sp::ConvertCommitmentRequest {
                    suggestion_id: sid.clone(),
                    commitment_id: commitment.clone(),
                    evidence: "regulation 12 in force".into(),
                    expected_version: 0,
                }
            );
        }
    }
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
    sid
}

/// How many items a list answer holds (a bare array or `{"items": [...]}`).
fn listed(v: &Value) -> Option<usize> {
    v.as_array().or_else(|| v["items"].as_array()).map(Vec::len)
}

#[tokio::test]
async fn every_command_is_safe_to_retry_over_rest_and_grpc() {
    let (dir, server, office) = serve_for_webhooks("retry");
    let c = Client::new(server.http);
    let channel = server.channel().await;
    for via in [Via::Rest, Via::Grpc] {
        let keys = directory(&c, &office, &format!("{via:?}"));
        let sid = flow(&c, channel.clone(), &keys, via).await;
        // One of everything: a second effect of any command would show here.
        let (status, v) = c.call("GET", &format!("/v1/suggestions/{sid}"), &office, None);
        assert_eq!(status, 200, "{v}");
        let count = |field: &str| v[field].as_array().map_or(0, Vec::len);
        assert_eq!(
            (
                count("assignments"),
                count("communications"),
                count("replies"),
                count("commitments"),
                count("feedback"),
            ),
            (2, 1, 1, 1, 1),
            "{via:?}: {v}"
        );
        let (_, hooks) = c.call("GET", "/v1/webhooks", &keys.lead, None);
        assert_eq!(listed(&hooks), Some(1), "{via:?}: {hooks}");
        let (_, notices) = c.call(
            "GET",
            &format!("/v1/followup/notices?agency_id={}", keys.lead_agency),
            &office,
            None,
        );
        assert_eq!(listed(&notices), Some(1), "{via:?}: {notices}");
    }
    // A key names one request: the same key on the other transport (another request's hash)
    // is refused, not run again.
    let err = sp::suggestion_service_client::SuggestionServiceClient::new(channel)
        .create_deputy(keyed(
            sp::CreateDeputyRequest {
                deputy: Some(sp::Deputy {
                    name: "Deputy Liu".into(),
                    delegation: "Changsha".into(),
                    ..Default::default()
                }),
                idempotency_key: String::new(),
            },
            &office,
            "",
            "Rest-deputy",
        ))
        .await
        .expect_err("the REST request's key");
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
