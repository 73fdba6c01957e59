//! The coordination API against the suggestions service over the embedded bus: who may send an
//! opinion, when, disagreements and their escalation, countersign, and events the consumer
//! cannot read (parked and reported, the consumer going on).

use banli_eventlog::Envelope;
use serde_json::json;
use uuid::Uuid;

use crate::support::{Api, World};

fn assert_problem(r: &crate::support::Response, status: u16, code: &str) {
    assert_eq!((r.status.as_u16(), r.code()), (status, code), "{}", r.body);
}

#[tokio::test]
async fn opinions_only_from_the_co_handler_and_not_after_the_reply() {
    let w = World::new(Api::sqlite().await).await;
    let (k, api) = (&w.keys, &w.api);
    let (id, lead, co1, co2) = w.assigned("2020-0700").await;
    w.sign_and_dispatch(&id, &lead, &k.lead_admin).await;
    w.sign_and_dispatch(&id, &co1, &k.co1_admin).await;
    let letter = json!({"document_number": "会办1号", "body": "agree", "signer": {"name": "Zhao", "position": "authorized_leader"}});
    // The lead unit writing co1's opinion: 403; a unit not on the item: 404, as for none.
    let r = api
        .post(
            &format!("/v1/coordination/assignments/{co1}/opinions"),
            &k.lead_admin,
            letter.clone(),
        )
        .await;
    assert_problem(&r, 403, "forbidden");
    let r = api
        .post(
            &format!("/v1/coordination/assignments/{co1}/opinions"),
            &k.other_admin,
            letter.clone(),
        )
        .await;
    assert_problem(&r, 404, "not_found");
    // Bad input: an unknown field, a bad id, a letter without its number.
    let r = api
        .post(
            &format!("/v1/coordination/assignments/{co1}/opinions"),
            &k.co1_admin,
            json!({"document_number": "1", "body": "b", "signer": {"name": "z", "position": "staff"}, "urgent": true}),
        )
        .await;
    assert_problem(&r, 400, "malformed_request");
    let r = api
        .post(
            "/v1/coordination/assignments/not-a-uuid/opinions",
            &k.co1_admin,
            letter.clone(),
        )
        .await;
    assert_problem(&r, 400, "malformed_request");
    let r = api
        .post(
            &format!("/v1/coordination/assignments/{co1}/opinions"),
            &k.co1_admin,
            json!({"document_number": " ", "body": "b", "signer": {"name": "z", "position": "staff"}}),
        )
        .await;
    assert_problem(&r, 422, "invalid_argument");
    // The opinion, then a second one while the first awaits the lead: 409.
    let c = api
        .ok(
            &format!("/v1/coordination/assignments/{co1}/opinions"),
            &k.co1_admin,
            letter.clone(),
        )
        .await;
    let opinion = c["opinions"][0]["id"].as_str().expect("id").to_owned();
    let r = api
        .post(
            &format!("/v1/coordination/assignments/{co1}/opinions"),
            &k.co1_admin,
            letter.clone(),
        )
        .await;
    assert_problem(&r, 409, "wrong_state");
    // The co-handler sees its own opinion; the lead sees it and acknowledges it.
    let lead_view = api
        .get(&format!("/v1/coordination/cases/{id}"), &k.lead_admin)
        .await;
    assert_eq!(lead_view.body["opinions"][0]["id"], opinion.as_str());
    api.ok(
        &format!("/v1/coordination/opinions/{opinion}/acknowledge"),
        &k.lead_admin,
        json!({}),
    )
    .await;
    api.ok(
        &format!("/v1/coordination/assignments/{co2}/waiver"),
        &k.office,
        json!({"reason": "n/a"}),
    )
    .await;
    api.eventually(&format!("/v1/suggestions/{id}"), &k.office, |s| {
        s["assignments"].as_array().is_some_and(|a| {
            a.iter()
                .filter(|x| x["role"] == "co")
                .all(|x| x["state"] == "done")
        })
    })
    .await;
    api.ok(&format!("/v1/suggestions/{id}/communications"), &k.lead_admin, json!({"assignment_id": lead, "phase": "during", "method": "visit", "face_to_face": true, "deputy_ids": [w.deputy], "summary": "visit"})).await;
    api.ok(
        &format!("/v1/suggestions/{id}/replies"),
        &k.lead_admin,
        json!({"assignment_id": lead, "document_number": "答复1号", "body": "done", "class": "A", "signer": {"name": "Chen", "position": "principal_head"}, "opinion_ids": [opinion]}),
    )
    .await;
    api.eventually(&format!("/v1/coordination/cases/{id}"), &k.office, |c| {
        c["suggestion_state"] == "replied"
    })
    .await;
    // After the reply: an opinion is a 409; a countersignature of a non-joint reply a 422.
    let r = api
        .post(
            &format!("/v1/coordination/assignments/{co1}/opinions"),
            &k.co1_admin,
            letter,
        )
        .await;
    assert_problem(&r, 409, "wrong_state");
    let reply = api
        .get(&format!("/v1/suggestions/{id}"), &k.office)
        .await
        .body["replies"][0]["id"]
        .as_str()
        .expect("reply")
        .to_owned();
    let r = api
        .post(
            &format!("/v1/coordination/replies/{reply}/countersign"),
            &k.co1_admin,
            json!({"signer": {"name": "Zhao", "position": "authorized_leader"}}),
        )
        .await;
    assert_problem(&r, 422, "invalid_argument");
    w.api.close().await;
}

#[tokio::test]
async fn disagreements_are_recorded_escalated_and_resolved() {
    let w = World::new(Api::sqlite().await).await;
    let (k, api) = (&w.keys, &w.api);
    let (id, _lead, co1, _co2) = w.assigned("2020-0701").await;
    let c = api
        .ok(
            &format!("/v1/coordination/assignments/{co1}/disagreements"),
            &k.co1_admin,
            json!({"statement": "the lead's plan leaves out the fund", "escalate": true}),
        )
        .await;
    let d = &c["disagreements"][0];
    assert_eq!(d["escalated_on"], "2020-03-02", "{c}");
    let did = d["id"].as_str().expect("id").to_owned();
    // Only the office decides; a version that is not the case's is refused.
    let r = api
        .post(
            &format!("/v1/coordination/disagreements/{did}/resolve"),
            &k.co1_admin,
            json!({"resolution": "mine"}),
        )
        .await;
    assert_problem(&r, 403, "forbidden");
    let r = api
        .call(
            axum::http::Method::POST,
            &format!("/v1/coordination/disagreements/{did}/resolve"),
            Some(&k.office),
            Some(json!({"resolution": "the lead adds the fund"})),
            &[("if-match", "\"v99\"")],
        )
        .await;
    assert_problem(&r, 412, "stale_version");
    let c = api
        .ok(
            &format!("/v1/coordination/disagreements/{did}/resolve"),
            &k.office,
            json!({"resolution": "the lead adds the fund"}),
        )
        .await;
    assert_eq!(
        c["disagreements"][0]["resolution"],
        "the lead adds the fund"
    );
    let r = api
        .post(
            &format!("/v1/coordination/disagreements/{did}/escalate"),
            &k.co1_admin,
            json!({}),
        )
        .await;
    assert_problem(&r, 409, "wrong_state");
    // The lead sees it; a unit not on the item does not see the case at all.
    let lead = api
        .get(&format!("/v1/coordination/cases/{id}"), &k.lead_admin)
        .await;
    assert_eq!(lead.body["disagreements"].as_array().map(Vec::len), Some(1));
    let other = api
        .get(&format!("/v1/coordination/cases/{id}"), &k.other_admin)
        .await;
    assert_problem(&other, 404, "not_found");
    w.api.close().await;
}

#[tokio::test]
async fn unreadable_events_are_parked_and_reported_and_the_consumer_goes_on() {
    let w = World::new(Api::sqlite().await).await;
    let (k, api) = (&w.keys, &w.api);
    let (id, _, _, _) = w.assigned("2020-0702").await;
    let envelope = |ty: &str, schema: u32, version: u64| {
        Envelope {
        event_id: Uuid::now_v7(),
        event_type: ty.to_owned(),
        aggregate_id: id.clone(),
        aggregate_version: version,
        payload: json!({"event_id": Uuid::now_v7(), "schema_version": schema, "event_type": ty, "aggregate_type": "suggestion", "aggregate_id": id, "aggregate_version": version, "occurred_at": "2020-03-02T00:00:00Z", "actor": {"role": "assigning_office", "agency": null, "deputy": null}, "payload": {"type": "teleported", "data": {}}})
        .to_string()
        .into_bytes(),
    }
    };
    let current = api
        .get(&format!("/v1/suggestions/{id}"), &k.office)
        .await
        .body["version"]
        .as_u64()
        .expect("version");
    // An unknown type, then a newer schema version of the next versions.
    api.bus
        .publish(&envelope("suggestion.teleported", 1, current + 1))
        .await
        .expect("publish");
    api.bus
        .publish(&envelope("suggestion.assigned", 9, current + 2))
        .await
        .expect("publish");
    let parked = api
        .eventually("/v1/coordination/parked-events", &k.office, |p| {
            p.as_array().is_some_and(|a| a.len() == 2)
        })
        .await;
    let reasons: Vec<&str> = parked
        .as_array()
        .expect("list")
        .iter()
        .map(|p| p["reason"].as_str().expect("reason"))
        .collect();
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("unknown or unreadable event suggestion.teleported")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("schema version 9 is newer")),
        "{reasons:?}"
    );
    // The consumer went on: a new item reaches the coordination service.
    w.assigned("2020-0703").await;
    // Only the office and auditors read them.
    let r = api
        .get("/v1/coordination/parked-events", &k.lead_admin)
        .await;
    assert_problem(&r, 403, "forbidden");
    w.api.close().await;
}

/// One rule for co-handling opinions everywhere: the office, auditors, the lead unit and the
/// opinion's author read it — in the suggestion, its events and the feed; another co-handler and
/// the deputy do not.
#[tokio::test]
async fn co_handling_opinions_reach_the_lead_and_their_author_only() {
    let w = World::new(Api::sqlite().await).await;
    let (k, api) = (&w.keys, &w.api);
    let (id, lead, co1, _co2) = w.assigned("2020-0711").await;
    let co2_admin = api.key("agency_admin", Some(&w.co2), None).await;
    w.sign_and_dispatch(&id, &lead, &k.lead_admin).await;
    w.sign_and_dispatch(&id, &co1, &k.co1_admin).await;
    let secret = "co1's frank view of the budget";
    api.ok(
        &format!("/v1/coordination/assignments/{co1}/opinions"),
        &k.co1_admin,
        json!({"document_number": "会办7号", "body": secret, "signer": {"name": "Zhao", "position": "authorized_leader"}}),
    )
    .await;
    api.eventually(&format!("/v1/suggestions/{id}"), &k.office, |s| {
        s["opinions"].as_array().is_some_and(|o| o.len() == 1)
    })
    .await;
    for (who, key, sees) in [
        ("the office", &k.office, 1),
        ("an auditor", &k.auditor, 1),
        ("the lead", &k.lead_admin, 1),
        ("the author", &k.co1_admin, 1),
        ("another co-handler", &co2_admin, 0),
        ("the deputy", &k.deputy, 0),
    ] {
        let s = api.get(&format!("/v1/suggestions/{id}"), key).await;
        assert_eq!(s.status, 200, "{who}: {}", s.body);
        assert_eq!(
            s.body["opinions"].as_array().map(Vec::len),
            Some(sees),
            "{who}: {}",
            s.body["opinions"]
        );
        let events = api.get(&format!("/v1/suggestions/{id}/events"), key).await;
        assert_eq!(events.status, 200, "{who}: {}", events.body);
        assert_eq!(
            events.body.to_string().contains(secret),
            sees == 1,
            "{who}: the opinion's text in the events"
        );
    }
    // The feed: the lead's and the author's carry the opinion, the other co-handler's not.
    let has_opinion = |f: &serde_json::Value| {
        f["items"].as_array().is_some_and(|i| {
            i.iter().any(|x| {
                x["event_type"]
                    .as_str()
                    .is_some_and(|t| t.ends_with("opinion_submitted"))
            })
        })
    };
    api.eventually("/v1/feed?limit=1000", &k.lead_admin, has_opinion)
        .await;
    api.eventually("/v1/feed?limit=1000", &k.co1_admin, has_opinion)
        .await;
    let other = api.get("/v1/feed?limit=1000", &co2_admin).await;
    assert_eq!(other.status, 200, "{}", other.body);
    assert!(
        other.body["items"]
            .as_array()
            .is_some_and(|i| !i.is_empty()),
        "the other co-handler's feed has the case's other events: {}",
        other.body
    );
    assert!(!has_opinion(&other.body), "{}", other.body);
    assert!(!other.body.to_string().contains(secret));
    w.api.close().await;
}
