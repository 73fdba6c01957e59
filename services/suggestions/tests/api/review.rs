//! 答复审查 through REST: the office accepts a reply or returns it for re-handling before the
//! deputies are asked for their rating; the platform accepts a reply whose window closed.

use banli_domain::RuleProfile;
use banli_testkit::Options;
use serde_json::{Value, json};

use crate::support::{Api, World};

async fn world() -> World {
    let mut profile = RuleProfile::hunan();
    profile.rules.office_reviews_replies = true;
    let api = Api::with(
        banli_db::testing::TestDb::sqlite().await,
        1024 * 1024,
        Options {
            profile: Some(profile),
            ..Options::default()
        },
    )
    .await;
    World::new(api).await
}

/// A sole unit's item ready to reply (signed for, dispatched, discussed with the deputy on
/// `talked_on`); returns (suggestion, assignment).
async fn ready(w: &World, number: &str, talked_on: &str) -> (String, String) {
    w.ready_sole(&w.submit(number).await, talked_on).await
}

fn reply(a: &str, on: &str) -> Value {
    json!({"assignment_id": a, "document_number": "答复〔2020〕7号", "body": "The fund opens in 2021.", "class": "A", "signer": {"name": "Director Chen", "position": "principal_head"}, "on": on})
}

#[tokio::test]
async fn the_office_returns_a_reply_then_accepts_the_next_and_the_deputies_are_asked_then() {
    let w = world().await;
    let (api, k) = (&w.api, &w.keys);
    let (id, a) = ready(&w, "2020-0401", "2020-03-02").await;
    let s = api
        .ok(
            &format!("/v1/suggestions/{id}/replies"),
            &k.lead_admin,
            reply(&a, "2020-03-02"),
        )
        .await;
    assert_eq!(
        s["state"], "assigned",
        "the deputies wait for the review: {s}"
    );
    assert_eq!(s["assignments"][0]["state"], "awaiting_review");
    assert_eq!(s["replies"][0]["review_state"], "pending");
    assert_eq!(s["replies"][0]["review_deadline"]["due"], "2020-03-09");
    let first = s["replies"][0]["id"].as_str().expect("reply").to_owned();
    let path = format!("/v1/suggestions/{id}/replies/{first}/review");

    // The unit may not decide; a return says why; an unknown reply is 404.
    let r = api
        .post(&path, &k.lead_admin, json!({"accept": true}))
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    let r = api.post(&path, &k.office, json!({"accept": false})).await;
    assert_eq!(
        (r.status.as_u16(), r.code()),
        (422, "invalid_argument"),
        "{}",
        r.body
    );
    let r = api
        .post(
            &format!(
                "/v1/suggestions/{id}/replies/{}/review",
                uuid::Uuid::now_v7()
            ),
            &k.office,
            json!({"accept": true}),
        )
        .await;
    assert_eq!(r.status, 404, "{}", r.body);
    let s = api
        .ok(
            &path,
            &k.office,
            json!({"accept": false, "reasons": "措施不具体，请补充完成时限"}),
        )
        .await;
    assert_eq!(s["assignments"][0]["state"], "in_handling");
    assert_eq!(s["replies"][0]["review_state"], "returned");
    assert_eq!(
        s["replies"][0]["review_reasons"],
        "措施不具体，请补充完成时限"
    );
    // 15 working days from 2020-03-02.
    assert_eq!(
        s["assignments"][0]["deadlines"]["reply"]["due"],
        "2020-03-23"
    );
    // A second decision on the same reply: 409.
    let r = api.post(&path, &k.office, json!({"accept": true})).await;
    assert_eq!(
        (r.status.as_u16(), r.code()),
        (409, "wrong_state"),
        "{}",
        r.body
    );

    // The unit replies again; the office accepts: the feedback window opens.
    let s = api
        .ok(
            &format!("/v1/suggestions/{id}/replies"),
            &k.lead_admin,
            reply(&a, "2020-03-02"),
        )
        .await;
    let second = s["replies"][1]["id"].as_str().expect("reply").to_owned();
    let s = api
        .ok(
            &format!("/v1/suggestions/{id}/replies/{second}/review"),
            &k.office,
            json!({"accept": true}),
        )
        .await;
    assert_eq!(s["state"], "replied", "{s}");
    assert_eq!(s["replies"][1]["review_state"], "accepted");
    assert!(s["feedback_deadline"]["due"].is_string(), "{s}");
    // The audit log's source: the review events.
    let events = api
        .get(&format!("/v1/suggestions/{id}/events"), &k.auditor)
        .await;
    let reviews = events
        .body
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["type"] == "suggestion.reply_reviewed")
        .count();
    assert_eq!(reviews, 2);
    w.api.close().await;
}

#[tokio::test]
async fn a_reply_not_decided_on_in_time_is_accepted_by_the_platform() {
    let w = world().await;
    let (api, k) = (&w.api, &w.keys);
    // Replied on 2020-03-02: the window runs to 2020-03-09. Today (2020-03-02) the sweep finds
    // nothing to accept; the service running on 2020-03-10 accepts it.
    let (id, a) = ready(&w, "2020-0402", "2020-03-02").await;
    let s = api
        .ok(
            &format!("/v1/suggestions/{id}/replies"),
            &k.lead_admin,
            reply(&a, "2020-03-02"),
        )
        .await;
    assert_eq!(s["replies"][0]["review_deadline"]["due"], "2020-03-09");
    let office =
        banli_domain::Actor::assigning_office(banli_domain::ids::AgencyId(uuid::Uuid::nil()));
    assert_eq!(
        w.api.app.lapse_reply_reviews(&office).await.expect("swept"),
        0
    );
    let mut profile = RuleProfile::hunan();
    profile.rules.office_reviews_replies = true;
    let later = banli_suggestions::app::App::new(
        w.api.app.store().clone(),
        profile,
        banli_calendar::Calendar::embedded().clone(),
        banli_suggestions::app::Clock::Fixed(time::macros::date!(2020 - 03 - 10)),
    );
    let reply_id = s["replies"][0]["id"].as_str().expect("reply").to_owned();
    let (router, openapi) = banli_suggestions::http::api(later.clone(), 1 << 20);
    let router = banli_api::http::finish(router, openapi);
    let req = axum::http::Request::builder()
        .method("POST")
        .uri(format!("/v1/suggestions/{id}/replies/{reply_id}/review"))
        .header("authorization", format!("Bearer {}", k.office))
        .header("content-type", "application/json")
        .body(axum::body::Body::from(
            r#"{"accept": false, "reasons": "late"}"#,
        ))
        .expect("request");
    let res = tower::ServiceExt::oneshot(router, req)
        .await
        .expect("answers");
    assert_eq!(
        res.status(),
        409,
        "window_closed: the window closed on 2020-03-09"
    );
    assert_eq!(later.lapse_reply_reviews(&office).await.expect("swept"), 1);
    let s = api
        .get(&format!("/v1/suggestions/{id}"), &k.office)
        .await
        .body;
    assert_eq!(s["state"], "replied", "{s}");
    assert_eq!(s["replies"][0]["review_state"], "accepted");
    assert!(
        s["replies"][0]["review_reasons"]
            .as_str()
            .unwrap_or_default()
            .contains("2020-03-09"),
        "{s}"
    );
    // A second sweep finds nothing.
    assert_eq!(later.lapse_reply_reviews(&office).await.expect("swept"), 0);
    w.api.close().await;
}
