//! 内部审批 through REST and gRPC: an agency's approval chain, keys holding positions, a drafted
//! reply in review (visible to its unit and the office only), each step decided once by its
//! position, the reply issued when the chain completes.

use banli_proto::suggestions::v1 as pb;
use pb::suggestion_service_client::SuggestionServiceClient;
use serde_json::{Value, json};
use tonic::Code;
use tonic::metadata::MetadataValue;

use crate::support::{Api, World};

async fn ready(w: &World, number: &str) -> (String, String) {
    w.ready_sole(&w.submit(number).await, "2020-03-02").await
}

fn reply(a: &str) -> Value {
    json!({"assignment_id": a, "document_number": "答复〔2020〕9号", "body": "The fund opens in 2021.", "class": "A", "signer": {"name": "Director Chen", "position": "principal_head"}, "on": "2020-03-02"})
}

async fn put(api: &Api, path: &str, key: &str, body: Value) -> crate::support::Response {
    api.call(axum::http::Method::PUT, path, Some(key), Some(body), &[])
        .await
}

async fn position_key(api: &Api, role: &str, agency: &str, position: &str) -> String {
    api.ok(
        "/v1/admin/keys",
        &api.office,
        json!({"role": role, "agency_id": agency, "label": position, "position": position}),
    )
    .await["token"]
        .as_str()
        .expect("token")
        .to_owned()
}

#[tokio::test]
async fn a_reply_waits_for_the_units_chain_and_each_step_decides_once() {
    let w = World::new(Api::sqlite().await).await;
    let (api, k) = (&w.api, &w.keys);
    let chain = format!("/v1/agencies/{}/approval-chain", w.lead);

    // Setting the chain: the agency's own admin or the office; checked.
    let r = put(
        api,
        &chain,
        &k.other_admin,
        json!({"steps": ["division_head"]}),
    )
    .await;
    assert_eq!(r.status, 403, "{}", r.body);
    let r = put(api, &chain, &k.lead_admin, json!({"steps": ["staff"]})).await;
    assert_eq!(r.status, 422, "{}", r.body);
    let r = put(
        api,
        &chain,
        &k.lead_admin,
        json!({"steps": ["division_head", "division_head"]}),
    )
    .await;
    assert_eq!(r.status, 422, "{}", r.body);
    let r = put(api, &chain, &k.lead_admin, json!({"steps": ["nobody"]})).await;
    assert_eq!(r.status.as_u16() / 100, 4, "{}", r.body);
    let r = put(
        api,
        &format!("/v1/agencies/{}/approval-chain", uuid::Uuid::now_v7()),
        &k.office,
        json!({"steps": ["division_head"]}),
    )
    .await;
    assert_eq!(r.status, 404, "{}", r.body);
    let r = put(
        api,
        &chain,
        &k.lead_admin,
        json!({"steps": ["division_head", "authorized_leader"]}),
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(
        r.body["key_item_steps"],
        json!(["division_head", "authorized_leader", "principal_head"])
    );
    let got = api.get(&chain, &k.deputy).await;
    assert_eq!(
        got.body["steps"],
        json!(["division_head", "authorized_leader"]),
        "{}",
        got.body
    );

    // Keys holding positions; a deputy's key holds none.
    let r = api
        .post(
            "/v1/admin/keys",
            &k.office,
            json!({"role": "deputy", "deputy_id": w.deputy, "position": "division_head"}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    let division_head = position_key(api, "leader", &w.lead, "division_head").await;
    let leader = position_key(api, "leader", &w.lead, "authorized_leader").await;
    let keys = api.get("/v1/admin/keys", &k.office).await;
    assert!(
        keys.body
            .as_array()
            .expect("keys")
            .iter()
            .any(|x| x["position"] == "authorized_leader"),
        "{}",
        keys.body
    );

    let (id, a) = ready(&w, "2020-0501").await;
    let s = api
        .ok(
            &format!("/v1/suggestions/{id}/replies"),
            &k.lead_handler,
            reply(&a),
        )
        .await;
    assert_eq!(s["state"], "assigned", "{s}");
    assert_eq!(s["replies"], json!([]), "nothing is issued yet: {s}");
    let x = &s["assignments"][0];
    assert_eq!(x["state"], "in_review");
    assert_eq!(x["approval"]["current_step"], 0);
    assert_eq!(x["approval"]["waiting_for"], "division_head");
    assert_eq!(x["approval"]["draft"]["document_number"], "答复〔2020〕9号");
    assert!(x["approval"]["steps"][0]["due"]["due"].is_string(), "{x}");

    // The draft is the unit's internal paper: the deputy sees where it waits, not the text.
    let d = api.get(&format!("/v1/suggestions/{id}"), &k.deputy).await;
    assert_eq!(
        d.body["assignments"][0]["approval"]["waiting_for"],
        "division_head"
    );
    assert!(
        d.body["assignments"][0]["approval"]["draft"].is_null(),
        "{}",
        d.body
    );
    let events = api
        .get(&format!("/v1/suggestions/{id}/events"), &k.deputy)
        .await;
    let drafted = events
        .body
        .as_array()
        .expect("events")
        .iter()
        .find(|e| e["type"] == "suggestion.reply_submitted_for_approval")
        .cloned()
        .expect("the draft's event");
    assert_eq!(drafted["data"]["withheld"], true, "{drafted}");
    assert!(!drafted.to_string().contains("The fund opens"), "{drafted}");

    let step = |n: u32, approve: bool, comment: &str| json!({"step": n, "approve": approve, "comment": comment});
    let path = format!("/v1/suggestions/{id}/assignments/{a}/approval");
    // Not the step's position: 403 (a key without a position, the next step's, the office);
    // another agency is not party to the item: 404.
    for key in [&k.lead_admin, &leader, &k.office] {
        let r = api.post(&path, key, step(0, true, "")).await;
        assert_eq!(r.status, 403, "{}", r.body);
    }
    let r = api.post(&path, &k.other_admin, step(0, true, "")).await;
    assert_eq!(r.status, 404, "{}", r.body);
    let r = api.post(&path, &leader, step(1, true, "")).await;
    assert_eq!(r.status, 409, "a later step waits its turn: {}", r.body);
    let s = api.ok(&path, &division_head, step(0, true, "同意")).await;
    assert_eq!(
        s["assignments"][0]["approval"]["waiting_for"],
        "authorized_leader"
    );
    let r = api
        .post(&path, &division_head, step(0, false, "再议"))
        .await;
    assert_eq!(r.status, 409, "a second decision on a step: {}", r.body);
    assert!(
        r.body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("decided on")),
        "{}",
        r.body
    );
    let r = api
        .post(
            &path,
            &leader,
            json!({"step": 1, "approve": true, "bogus": 1}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);

    let s = api.ok(&path, &leader, step(1, true, "同意签发")).await;
    assert_eq!(s["state"], "replied", "{s}");
    assert_eq!(s["assignments"][0]["state"], "replied");
    assert!(s["assignments"][0]["approval"].is_null());
    let approvals = s["replies"][0]["approvals"].as_array().expect("approvals");
    let signed: Vec<(&str, &str)> = approvals
        .iter()
        .map(|x| {
            (
                x["position"].as_str().unwrap_or(""),
                x["decision"].as_str().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        signed,
        [
            ("division_head", "approved"),
            ("authorized_leader", "approved")
        ]
    );
}

fn authed<T>(msg: T, key: &str) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    let v: MetadataValue<_> = format!("Bearer {key}").parse().expect("metadata");
    r.metadata_mut().insert("authorization", v);
    r
}

#[tokio::test]
async fn grpc_sets_the_chain_and_a_step_returns_the_draft() {
    let w = World::new(Api::sqlite().await).await;
    let (api, k) = (&w.api, &w.keys);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(banli_suggestions::grpc::serve(
        api.app.clone(),
        listener,
        async {
            let _ = rx.await;
        },
    ));
    let mut c = SuggestionServiceClient::connect(url)
        .await
        .expect("connects");
    use banli_proto::common::v1::SignerPosition as P;
    let err = c
        .set_approval_chain(authed(
            pb::SetApprovalChainRequest {
                agency_id: w.lead.clone(),
                steps: vec![P::DivisionHead as i32],
                key_items_without_head: false,
            },
            &k.other_admin,
        ))
        .await
        .expect_err("another agency's chain");
    assert_eq!(err.code(), Code::PermissionDenied, "{err}");
    let err = c
        .set_approval_chain(authed(
            pb::SetApprovalChainRequest {
                agency_id: w.lead.clone(),
                steps: vec![0],
                key_items_without_head: false,
            },
            &k.lead_admin,
        ))
        .await
        .expect_err("unspecified position");
    assert_eq!(err.code(), Code::InvalidArgument, "{err}");
    let set = c
        .set_approval_chain(authed(
            pb::SetApprovalChainRequest {
                agency_id: w.lead.clone(),
                steps: vec![P::DivisionHead as i32],
                key_items_without_head: true,
            },
            &k.lead_admin,
        ))
        .await
        .expect("set")
        .into_inner();
    assert_eq!(set.steps, [P::DivisionHead as i32]);
    assert!(!set.key_items_add_head);
    let got = c
        .get_approval_chain(authed(
            pb::GetApprovalChainRequest {
                agency_id: w.lead.clone(),
            },
            &k.office,
        ))
        .await
        .expect("get")
        .into_inner();
    assert_eq!(got, set);

    let division_head = position_key(api, "leader", &w.lead, "division_head").await;
    let (id, a) = ready(&w, "2020-0502").await;
    let s = api
        .ok(
            &format!("/v1/suggestions/{id}/replies"),
            &k.lead_handler,
            reply(&a),
        )
        .await;
    assert_eq!(s["assignments"][0]["state"], "in_review", "{s}");

    let decide = |approve: bool, comment: &str, key: &str| {
        authed(
            pb::DecideApprovalStepRequest {
                suggestion_id: id.clone(),
                assignment_id: a.clone(),
                step: 0,
                approve,
                comment: comment.into(),
                expected_version: 0,
                idempotency_key: String::new(),
            },
            key,
        )
    };
    let err = c
        .decide_approval_step(decide(false, "措施不具体", &k.lead_admin))
        .await
        .expect_err("no position");
    assert_eq!(err.code(), Code::PermissionDenied, "{err}");
    let err = c
        .decide_approval_step(decide(false, "", &division_head))
        .await
        .expect_err("a return says why");
    assert_eq!(err.code(), Code::InvalidArgument, "{err}");
    let s = c
        .decide_approval_step(decide(false, "措施不具体", &division_head))
        .await
        .expect("returned")
        .into_inner();
    let x = &s.assignments[0];
    assert_eq!(x.state, "in_handling");
    assert!(x.approval.is_none());
    assert!(s.replies.is_empty());

    // Redrafted: in review again, the draft visible through gRPC to its unit.
    api.ok(
        &format!("/v1/suggestions/{id}/replies"),
        &k.lead_handler,
        reply(&a),
    )
    .await;
    let s = c
        .get_suggestion(authed(
            pb::GetSuggestionRequest { id: id.clone() },
            &k.lead_admin,
        ))
        .await
        .expect("get")
        .into_inner();
    let approval = s.assignments[0].approval.as_ref().expect("in review");
    assert_eq!(approval.waiting_for, P::DivisionHead as i32);
    assert_eq!(
        approval.draft.as_ref().map(|d| d.document_number.as_str()),
        Some("答复〔2020〕9号")
    );
    let s = c
        .decide_approval_step(decide(true, "", &division_head))
        .await
        .expect("approved")
        .into_inner();
    assert_eq!(s.state, "replied");
    assert_eq!(s.replies[0].approvals.len(), 1);
    let _ = tx.send(());
}
