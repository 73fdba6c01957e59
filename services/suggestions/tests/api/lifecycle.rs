//! A co-handled suggestion from submission to the deputies' feedback, through REST only.

use serde_json::json;

use crate::support::{Api, World};

async fn lifecycle(w: &World) {
    let api = &w.api;
    let k = &w.keys;
    let (id, lead, co1, co2) = w.assigned("2020-0101").await;
    let s = api
        .get(&format!("/v1/suggestions/{id}"), &k.lead_admin)
        .await;
    assert_eq!(s.status, 200);
    assert_eq!(
        s.headers["etag"], "\"v6\"",
        "submitted, review started, reviewed, three units assigned"
    );
    let reply_deadline = &s.body["assignments"][0]["deadlines"]["reply"];
    assert_eq!(reply_deadline["due"], "2020-06-02");
    assert_eq!(
        reply_deadline["explanation"],
        "3 calendar months from assignment on 2020-03-02 → 2020-06-02"
    );

    w.sign_and_dispatch(&id, &lead, &k.lead_admin).await;
    w.sign_and_dispatch(&id, &co1, &k.co1_admin).await;
    for (key, f2f) in [(&k.lead_handler, true), (&k.lead_admin, false)] {
        api.ok(&format!("/v1/suggestions/{id}/communications"), key, json!({"assignment_id": lead, "phase": "during", "method": if f2f { "visit" } else { "phone" }, "face_to_face": f2f, "deputy_ids": [w.deputy], "summary": "scope of the fund"})).await;
    }
    // The lead cannot reply before the co-handlers' opinions are in or waived.
    let reply = json!({"assignment_id": lead, "document_number": "答复〔2020〕7号", "body": "The fund opens in 2021.", "class": "A", "signer": {"name": "Director Chen", "position": "principal_head"}});
    let early = api
        .post(
            &format!("/v1/suggestions/{id}/replies"),
            &k.lead_admin,
            reply.clone(),
        )
        .await;
    assert_eq!(
        (early.status.as_u16(), early.code()),
        (409, "failed_precondition"),
        "{}",
        early.body
    );
    // The co-handling exchange goes through the coordination service; the suggestion learns
    // of it from its events.
    let c = api.ok(&format!("/v1/coordination/assignments/{co1}/opinions"), &k.co1_admin, json!({"document_number": "会办〔2020〕3号", "body": "We agree and will fund the platform.", "signer": {"name": "Deputy Director Zhao", "position": "authorized_leader"}})).await;
    let opinion = c["opinions"][0]["id"].as_str().expect("opinion").to_owned();
    api.ok(
        &format!("/v1/coordination/assignments/{co2}/waiver"),
        &k.office,
        json!({"reason": "not within the remit"}),
    )
    .await;
    api.eventually(&format!("/v1/suggestions/{id}"), &k.office, |s| {
        s["opinions"].as_array().is_some_and(|o| o.len() == 1)
            && s["assignments"].as_array().is_some_and(|a| {
                a.iter()
                    .any(|x| x["id"] == co2.as_str() && x["state"] == "done")
            })
    })
    .await;
    let mut reply = reply;
    reply["opinion_ids"] = json!([opinion]);
    let s = api
        .ok(
            &format!("/v1/suggestions/{id}/replies"),
            &k.lead_admin,
            reply,
        )
        .await;
    assert_eq!(s["state"], "replied");
    assert_eq!(s["feedback_deadline"]["due"], "2020-03-30");
    // Each co-handler receives a copy of the lead's reply, and sees only its own.
    let c = api
        .eventually(&format!("/v1/coordination/cases/{id}"), &k.office, |c| {
            c["reply_copies"].as_array().is_some_and(|r| r.len() == 2)
        })
        .await;
    assert_eq!(c["reply_copies"][0]["document_number"], "答复〔2020〕7号");
    let mine = api
        .get(&format!("/v1/coordination/cases/{id}"), &k.co1_admin)
        .await;
    let copies = mine.body["reply_copies"].as_array().expect("copies");
    assert_eq!(copies.len(), 1, "{}", mine.body);
    assert_eq!(copies[0]["assignment_id"], co1.as_str());
    assert!(
        mine.body["commands"]
            .as_array()
            .expect("commands")
            .iter()
            .all(|x| x["status"] == "confirmed" || x["status"] == "final"),
        "every command of co1 was applied to the suggestion: {}",
        mine.body
    );
    api.ok(
        &format!("/v1/suggestions/{id}/feedback"),
        &k.deputy,
        json!({"level": "satisfied"}),
    )
    .await;
    let s = api
        .ok(
            &format!("/v1/suggestions/{id}/feedback"),
            &k.co_signer,
            json!({"level": "basically_satisfied", "comment": "good"}),
        )
        .await;
    assert_eq!(s["state"], "closed");
    assert_eq!(s["current_class"], "A");
    let events = api
        .get(&format!("/v1/suggestions/{id}/events"), &k.auditor)
        .await;
    let types: Vec<_> = events
        .body
        .as_array()
        .expect("events")
        .iter()
        .map(|e| e["type"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        types.first().map(String::as_str),
        Some("suggestion.submitted")
    );
    assert_eq!(types.last().map(String::as_str), Some("suggestion.closed"));
    assert_eq!(types.len() as u64, s["version"].as_u64().expect("version"));
}

#[tokio::test]
async fn a_co_handled_lifecycle_over_rest_on_sqlite() {
    let w = World::new(Api::sqlite().await).await;
    lifecycle(&w).await;
    w.api.close().await;
}

#[tokio::test]
async fn a_co_handled_lifecycle_over_rest_on_postgres() {
    let Some(db) = banli_db::testing::TestDb::postgres().await else {
        return;
    };
    let w = World::new(Api::on(db, 1024 * 1024).await).await;
    lifecycle(&w).await;
    w.api.close().await;
}

#[tokio::test]
async fn lists_are_scoped_filtered_and_paged() {
    let w = World::new(Api::sqlite().await).await;
    let (a, ..) = w.assigned("2020-0001").await;
    let b = w.submit("2020-0002").await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let c = w.submit("2020-0003").await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let k = &w.keys;
    let ids = |r: &crate::support::Response| {
        r.body["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|i| i["id"].as_str().unwrap_or_default().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        ids(&w.api.get("/v1/suggestions", &k.office).await),
        [a.clone(), b.clone(), c.clone()]
    );
    assert_eq!(
        ids(&w.api.get("/v1/suggestions", &k.lead_admin).await),
        [a.as_str()]
    );
    assert!(ids(&w.api.get("/v1/suggestions", &k.other_admin).await).is_empty());
    assert_eq!(
        ids(&w.api.get("/v1/suggestions", &k.co_signer).await).len(),
        3
    );
    assert!(ids(&w.api.get("/v1/suggestions", &k.other_deputy).await).is_empty());
    let p1 = w.api.get("/v1/suggestions?page_size=2", &k.office).await;
    assert_eq!(ids(&p1), [a.clone(), b.clone()]);
    let token = p1.body["next_page_token"]
        .as_str()
        .expect("token")
        .to_owned();
    let p2 = w
        .api
        .get(
            &format!("/v1/suggestions?page_size=2&page_token={token}"),
            &k.office,
        )
        .await;
    assert_eq!(ids(&p2), [c.as_str()]);
    assert!(p2.body["next_page_token"].is_null());
    assert_eq!(
        ids(&w
            .api
            .get("/v1/suggestions?state=submitted", &k.office)
            .await),
        [b.clone(), c.clone()]
    );
    assert_eq!(
        ids(&w
            .api
            .get(
                &format!("/v1/suggestions?agency_id={}&role=co", w.co1),
                &k.office
            )
            .await),
        [a.as_str()]
    );
    let forbidden = w
        .api
        .get(
            &format!("/v1/suggestions?agency_id={}", w.co1),
            &k.lead_admin,
        )
        .await;
    assert_eq!(forbidden.status, 403);
    let bad = w
        .api
        .get("/v1/suggestions?page_token=nonsense", &k.office)
        .await;
    assert_eq!(
        (bad.status.as_u16(), bad.code()),
        (400, "malformed_request")
    );
    let bad = w.api.get("/v1/suggestions?colour=red", &k.office).await;
    assert_eq!(bad.status, 400);
    assert!(
        bad.body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("colour"),
        "{}",
        bad.body
    );
    w.api.close().await;
}

#[tokio::test]
async fn the_calendar_over_the_api() {
    let w = World::new(Api::sqlite().await).await;
    let k = &w.keys.deputy;
    let r = w
        .api
        .get("/v1/calendar/days?from=2020-10-09&to=2020-10-10", k)
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(
        r.body["days"],
        json!([{"date": "2020-10-09", "workday": true}, {"date": "2020-10-10", "workday": true, "note": "make-up working day, National Day and Mid-Autumn Festival"}])
    );
    let r = w
        .api
        .post(
            "/v1/calendar/deadline",
            k,
            json!({"start": "2020-09-29", "duration": {"kind": "working_days", "days": 5}}),
        )
        .await;
    assert_eq!(r.body["due"], "2020-10-13");
    assert!(
        r.body["explanation"]
            .as_str()
            .unwrap_or_default()
            .contains("make-up working day 2020-10-10"),
        "{}",
        r.body
    );
    let r = w
        .api
        .post(
            "/v1/calendar/deadline",
            k,
            json!({"start": "2026-12-28", "duration": {"kind": "working_days", "days": 10}}),
        )
        .await;
    assert_eq!((r.status.as_u16(), r.code()), (422, "invalid_argument"));
    let r = w.api.post("/v1/calendar/deadline", k, json!({"start": "2026-12-28", "duration": {"kind": "working_days", "days": 10}, "allow_weekends_only": true})).await;
    assert_eq!(
        (r.status.as_u16(), r.body["assumed_weekends_only"].as_bool()),
        (200, Some(true))
    );
    let r = w
        .api
        .get("/v1/calendar/days?from=2030-01-01&to=2030-01-02", k)
        .await;
    assert_eq!(r.status, 422);
    let r = w
        .api
        .get("/v1/calendar/days?from=2020-13-01&to=2020-10-02", k)
        .await;
    assert_eq!(r.status, 400);
    w.api.close().await;
}

/// Newer calendar data moves open deadlines once, recorded with the old and the new date; met
/// and decided dates stay; running it again changes nothing; only the office may run it.
#[tokio::test]
async fn newer_calendar_data_moves_open_deadlines() {
    use banli_calendar::Calendar;
    use banli_domain::RuleProfile;
    use banli_suggestions::app::{App, Clock};
    use time::macros::date;

    let w = World::new(Api::sqlite().await).await;
    let k = &w.keys;
    // Assigned on 2020-03-02: objection window 5 working days (2020-03-09), first contact 15
    // (2020-03-23).
    let (id, lead, _, _) = w.assigned("2020-0301").await;
    let (closed_id, ..) = w.assigned("2020-0302").await;
    w.api
        .ok(
            &format!("/v1/suggestions/{closed_id}/withdraw"),
            &k.deputy,
            json!({"reason": "solved meanwhile"}),
        )
        .await;
    let before = w.api.get(&format!("/v1/suggestions/{id}"), &k.office).await;
    let lead_of = |s: &serde_json::Value| {
        s["assignments"]
            .as_array()
            .expect("assignments")
            .iter()
            .find(|a| a["id"] == lead.as_str())
            .expect("lead")
            .clone()
    };
    assert_eq!(
        lead_of(&before.body)["deadlines"]["first_contact"]["due"],
        "2020-03-23"
    );

    // A corrected notice: 5 and 6 March 2020 are days off. The service restarts with it.
    let text = include_str!("../../../../crates/calendar/data/prc-holidays.toml")
        .replace(r#"version = "2026.1""#, r#"version = "2026.1-test""#)
        + "\n[[period]]\nname = \"Test closure\"\nname_zh = \"测试\"\noff = [\"2020-03-05\", \"2020-03-06\"]\nmakeup = []\nsource = \"notice-2020\"\n";
    let cal = Calendar::from_toml_str("corrected.toml", &text).unwrap_or_else(|e| panic!("{e}"));
    let store = w.api.app.store().clone();
    assert!(!store.recomputed_against("2026.1-test").await.expect("read"));
    let app = App::new(
        store.clone(),
        RuleProfile::hunan(),
        cal,
        Clock::Fixed(date!(2020 - 03 - 03)),
    );
    let (router, openapi) = banli_suggestions::http::api(app.clone(), 1 << 20);
    let router = banli_api::http::finish(router, openapi);
    let call = |key: &str| {
        let req = axum::http::Request::builder()
            .method("POST")
            .uri("/v1/calendar/recompute")
            .header("authorization", format!("Bearer {key}"))
            .body(axum::body::Body::empty())
            .expect("request");
        let router = router.clone();
        async move {
            use http_body_util::BodyExt;
            use tower::ServiceExt;
            let res = router.oneshot(req).await.expect("answer");
            let status = res.status().as_u16();
            let bytes = res.into_body().collect().await.expect("body").to_bytes();
            (
                status,
                serde_json::from_slice::<serde_json::Value>(&bytes).expect("json"),
            )
        }
    };
    let (status, body) = call(&k.lead_admin).await;
    assert_eq!(
        (status, body["code"].as_str()),
        (403, Some("forbidden")),
        "{body}"
    );

    let (status, r) = call(&k.office).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["calendar_version"], "2026.1-test");
    // The withdrawn item is not examined; the other is, and every one of its three units'
    // objection windows and the lead's first contact move by two working days.
    assert_eq!(r["examined"], 1, "{r}");
    assert_eq!(r["suggestions_moved"], 1, "{r}");
    let moved = r["moved"].as_array().expect("moved");
    assert_eq!(r["deadlines_moved"].as_u64(), Some(moved.len() as u64));
    assert!(
        moved.contains(&json!({"suggestion_id": id, "assignment_id": lead, "kind": "first_contact", "old_due": "2020-03-23", "new_due": "2020-03-25"})),
        "{r}"
    );
    assert!(
        moved.contains(&json!({"suggestion_id": id, "assignment_id": lead, "kind": "objection", "old_due": "2020-03-09", "new_due": "2020-03-11"})),
        "{r}"
    );
    // The reply is due three calendar months on: no working days in it, it stays.
    assert!(moved.iter().all(|m| m["kind"] != "reply"), "{r}");
    assert!(store.recomputed_against("2026.1-test").await.expect("read"));

    // The suggestion says so: the new date, and the old one in its explanation and its event.
    let office = app
        .authenticate(&k.office)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let s = serde_json::to_value(
        app.get(&office, id.parse().expect("uuid"))
            .await
            .unwrap_or_else(|e| panic!("{e}")),
    )
    .expect("json");
    let fc = &lead_of(&s)["deadlines"]["first_contact"];
    assert_eq!(fc["due"], "2020-03-25", "{s}");
    assert!(
        fc["explanation"]
            .as_str()
            .is_some_and(|e| e.contains("was 2020-03-23 with 2026.1")),
        "{fc}"
    );
    let events = w
        .api
        .get(&format!("/v1/suggestions/{id}/events"), &k.office)
        .await;
    assert!(
        events.body.to_string().contains("deadlines_recomputed"),
        "{}",
        events.body
    );

    // Again: nothing moves, no event.
    let (status, r) = call(&k.office).await;
    assert_eq!(
        (status, r["suggestions_moved"].as_u64()),
        (200, Some(0)),
        "{r}"
    );
    let again = w
        .api
        .get(&format!("/v1/suggestions/{id}/events"), &k.office)
        .await;
    assert_eq!(
        again
            .body
            .to_string()
            .matches("deadlines_recomputed")
            .count(),
        events
            .body
            .to_string()
            .matches("deadlines_recomputed")
            .count()
    );
    w.api.close().await;
}
