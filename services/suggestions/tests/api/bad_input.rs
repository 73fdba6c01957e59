//! Every kind of bad input gets the right status and a problem document, and writes nothing.

use axum::body::Body;
use axum::http::{Method, Request};
use serde_json::{Value, json};

use crate::support::{Api, World};

fn assert_problem(r: &crate::support::Response, status: u16, code: &str) {
    assert_eq!(r.status.as_u16(), status, "{}", r.body);
    assert_eq!(r.code(), code, "{}", r.body);
    assert_eq!(r.headers["content-type"], "application/problem+json");
    assert!(!r.body["detail"].as_str().unwrap_or_default().is_empty());
    assert!(r.headers.contains_key("x-request-id"));
}

#[tokio::test]
async fn malformed_bodies_are_400_and_name_the_problem() {
    let w = World::new(Api::sqlite().await).await;
    let k = &w.keys.office;
    let req = |body: &'static str, ct: &'static str| {
        Request::builder()
            .method(Method::POST)
            .uri("/v1/agencies")
            .header("authorization", format!("Bearer {k}"))
            .header("content-type", ct)
            .body(Body::from(body))
            .expect("request")
    };
    let r = w.api.raw(req("{\"name\": ", "application/json")).await;
    assert_problem(&r, 400, "malformed_request");
    let r = w
        .api
        .raw(req("{\"name\": \"X\", \"colour\": 1}", "application/json"))
        .await;
    assert_problem(&r, 400, "malformed_request");
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("unknown field `colour`"),
        "{}",
        r.body
    );
    let r = w.api.raw(req("{}", "application/json")).await;
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("missing field `name`"),
        "{}",
        r.body
    );
    let r = w
        .api
        .raw(req("name=X", "application/x-www-form-urlencoded"))
        .await;
    assert_problem(&r, 415, "unsupported_media_type");
    let r = w
        .api
        .call(
            Method::GET,
            "/v1/suggestions/not-a-uuid",
            Some(k),
            None,
            &[],
        )
        .await;
    assert_problem(&r, 400, "malformed_request");
    let r = w
        .api
        .call(
            Method::GET,
            &format!("/v1/suggestions/{}", uuid::Uuid::now_v7()),
            Some(k),
            None,
            &[],
        )
        .await;
    assert_problem(&r, 404, "not_found");
    let r = w
        .api
        .call(Method::GET, "/v1/nowhere", Some(k), None, &[])
        .await;
    assert_problem(&r, 404, "not_found");
    // The list of agencies still holds only what was created on purpose.
    assert_eq!(
        w.api
            .get("/v1/agencies", k)
            .await
            .body
            .as_array()
            .map(Vec::len),
        Some(5)
    );
    w.api.close().await;
}

#[tokio::test]
async fn keys_are_required_and_revocation_is_immediate() {
    let w = World::new(Api::sqlite().await).await;
    let r = w
        .api
        .call(Method::GET, "/v1/agencies", None, None, &[])
        .await;
    assert_problem(&r, 401, "unauthenticated");
    assert_eq!(r.headers["www-authenticate"], "Bearer realm=\"banli\"");
    let r = w
        .api
        .call(
            Method::GET,
            "/v1/agencies",
            Some("banli_0000_xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"),
            None,
            &[],
        )
        .await;
    assert_problem(&r, 401, "unauthenticated");
    let r = w
        .api
        .call(
            Method::GET,
            "/v1/agencies",
            None,
            None,
            &[("authorization", "Basic dXNlcjpwdw==")],
        )
        .await;
    assert_problem(&r, 401, "unauthenticated");
    // A valid key with a tampered secret is refused.
    let mut tampered = w.keys.other_admin.clone();
    tampered.pop();
    tampered.push('0');
    let r = w
        .api
        .call(Method::GET, "/v1/agencies", Some(&tampered), None, &[])
        .await;
    assert!(r.status == 401 || w.keys.other_admin.ends_with('0'));
    let keys = w.api.get("/v1/admin/keys", &w.keys.office).await;
    let other = keys
        .body
        .as_array()
        .expect("keys")
        .iter()
        .find(|k| k["agency_id"] == w.other.as_str())
        .expect("key")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    assert_eq!(
        w.api.get("/v1/agencies", &w.keys.other_admin).await.status,
        200
    );
    let r = w
        .api
        .call(
            Method::DELETE,
            &format!("/v1/admin/keys/{other}"),
            Some(&w.keys.office),
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, 200);
    assert!(r.body["revoked_at"].is_string());
    assert_problem(
        &w.api.get("/v1/agencies", &w.keys.other_admin).await,
        401,
        "unauthenticated",
    );
    // Keys never leave in lists, and only the office manages them.
    assert!(!keys.body.to_string().contains(&w.keys.deputy));
    assert_problem(
        &w.api.get("/v1/admin/keys", &w.keys.lead_admin).await,
        403,
        "forbidden",
    );
    let bad = w
        .api
        .post("/v1/admin/keys", &w.keys.office, json!({"role": "handler"}))
        .await;
    assert_problem(&bad, 422, "invalid_argument");
    let bad = w
        .api
        .post("/v1/admin/keys", &w.keys.office, json!({"role": "emperor"}))
        .await;
    assert_problem(&bad, 400, "malformed_request");
    w.api.close().await;
}

#[tokio::test]
async fn idempotency_keys_replay_and_refuse_reuse() {
    let w = World::new(Api::sqlite().await).await;
    let k = &w.keys.deputy;
    let body = json!({"session_id": w.session, "number": "2020-0009", "title": "T", "body": "B", "lead_deputy_id": w.deputy});
    let first = w
        .api
        .call(
            Method::POST,
            "/v1/suggestions",
            Some(k),
            Some(body.clone()),
            &[("idempotency-key", "submit-9")],
        )
        .await;
    assert_eq!(first.status, 201);
    let again = w
        .api
        .call(
            Method::POST,
            "/v1/suggestions",
            Some(k),
            Some(body.clone()),
            &[("idempotency-key", "submit-9")],
        )
        .await;
    assert_eq!(again.status, 201);
    assert_eq!(again.body, first.body, "the replay is the first response");
    assert_eq!(again.headers["etag"], first.headers["etag"]);
    let mut other = body.clone();
    other["title"] = json!("Another");
    let reuse = w
        .api
        .call(
            Method::POST,
            "/v1/suggestions",
            Some(k),
            Some(other),
            &[("idempotency-key", "submit-9")],
        )
        .await;
    assert_problem(&reuse, 422, "idempotency_key_reused");
    // Without a key, a duplicate number is a conflict, and nothing more is stored.
    let dup = w.api.post("/v1/suggestions", k, body).await;
    assert_problem(&dup, 409, "already_exists");
    assert_eq!(
        w.api.get("/v1/suggestions", &w.keys.office).await.body["items"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    // A refusal is replayed as the same refusal.
    let id = first.body["id"].as_str().expect("id");
    let r1 = w
        .api
        .call(
            Method::POST,
            &format!("/v1/suggestions/{id}/review"),
            Some(&w.keys.office),
            Some(json!({"decision": "accept"})),
            &[("idempotency-key", "r1")],
        )
        .await;
    assert_problem(&r1, 409, "wrong_state");
    let r2 = w
        .api
        .call(
            Method::POST,
            &format!("/v1/suggestions/{id}/review"),
            Some(&w.keys.office),
            Some(json!({"decision": "accept"})),
            &[("idempotency-key", "r1")],
        )
        .await;
    assert_problem(&r2, 409, "wrong_state");
    w.api.close().await;
}

#[tokio::test]
async fn stale_versions_are_412_and_change_nothing() {
    let w = World::new(Api::sqlite().await).await;
    let s = w.submit("2020-0010").await;
    let id = s["id"].as_str().expect("id");
    let path = format!("/v1/suggestions/{id}/start-review");
    let ok = w
        .api
        .call(
            Method::POST,
            &path,
            Some(&w.keys.office),
            Some(json!({})),
            &[("if-match", "\"v1\"")],
        )
        .await;
    assert_eq!(ok.status, 200);
    assert_eq!(ok.headers["etag"], "\"v2\"");
    let stale = w
        .api
        .call(
            Method::POST,
            &format!("/v1/suggestions/{id}/review"),
            Some(&w.keys.office),
            Some(json!({"decision": "accept"})),
            &[("if-match", "\"v1\"")],
        )
        .await;
    assert_problem(&stale, 412, "stale_version");
    let garbage = w
        .api
        .call(
            Method::POST,
            &format!("/v1/suggestions/{id}/review"),
            Some(&w.keys.office),
            Some(json!({"decision": "accept"})),
            &[("if-match", "yesterday")],
        )
        .await;
    assert_problem(&garbage, 400, "malformed_request");
    assert_eq!(
        w.api
            .get(&format!("/v1/suggestions/{id}"), &w.keys.office)
            .await
            .body["state"],
        "under_review"
    );
    w.api.close().await;
}

#[tokio::test]
async fn oversized_bodies_are_413() {
    let w = World::new(Api::on(banli_db::testing::TestDb::sqlite().await, 4096).await).await;
    let big = json!({"name": "x".repeat(5000)});
    let r = w.api.post("/v1/agencies", &w.keys.office, big).await;
    assert_problem(&r, 413, "payload_too_large");
    w.api.close().await;
}

#[tokio::test]
async fn domain_refusals_map_to_their_statuses() {
    let w = World::new(Api::sqlite().await).await;
    let k = &w.keys;
    let (id, lead, co1, _) = w.assigned("2020-0011").await;
    // Wrong state: signing for twice.
    w.api
        .ok(
            &format!("/v1/coordination/assignments/{lead}/sign-for"),
            &k.lead_admin,
            json!({}),
        )
        .await;
    let r = w
        .api
        .post(
            &format!("/v1/coordination/assignments/{lead}/sign-for"),
            &k.lead_admin,
            json!({}),
        )
        .await;
    assert_problem(&r, 409, "wrong_state");
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("cannot sign for while the assignment is accepted"),
        "{}",
        r.body
    );
    // An agency acting on another unit's assignment.
    let r = w
        .api
        .post(
            &format!("/v1/coordination/assignments/{co1}/sign-for"),
            &k.lead_admin,
            json!({}),
        )
        .await;
    assert_problem(&r, 403, "forbidden");
    // An agency that is not party to the item cannot tell it from none.
    let r = w
        .api
        .post(
            &format!("/v1/coordination/assignments/{co1}/sign-for"),
            &k.other_admin,
            json!({}),
        )
        .await;
    assert_problem(&r, 404, "not_found");
    // Extension past the cap.
    let r = w
        .api
        .post(
            &format!("/v1/suggestions/{id}/assignments/{lead}/extension-request"),
            &k.lead_admin,
            json!({"new_due": "2020-12-31", "reason": "survey"}),
        )
        .await;
    assert_problem(&r, 409, "limit_reached");
    // A deputy rating someone else's suggestion.
    let r = w
        .api
        .post(
            &format!("/v1/suggestions/{id}/feedback"),
            &k.other_deputy,
            json!({"level": "dissatisfied"}),
        )
        .await;
    assert_problem(&r, 404, "not_found");
    // A co-signer rating for the lead deputy.
    let r = w
        .api
        .post(
            &format!("/v1/suggestions/{id}/feedback"),
            &k.co_signer,
            json!({"level": "dissatisfied", "deputy_id": w.deputy}),
        )
        .await;
    assert_problem(&r, 403, "forbidden");
    // Unknown assignment id.
    let r = w
        .api
        .post(
            &format!(
                "/v1/coordination/assignments/{}/sign-for",
                uuid::Uuid::now_v7()
            ),
            &k.lead_admin,
            json!({}),
        )
        .await;
    assert_problem(&r, 404, "not_found");
    // A division that is not the unit's.
    let foreign = w
        .api
        .ok(
            &format!("/v1/agencies/{}/divisions", w.co1),
            &k.office,
            json!({"name": "Budget"}),
        )
        .await;
    let r = w
        .api
        .post(
            &format!("/v1/suggestions/{id}/assignments/{lead}/dispatch"),
            &k.lead_admin,
            json!({"division_id": foreign["id"], "handler": "h", "responsible_leader": "l"}),
        )
        .await;
    assert_problem(&r, 422, "invalid_argument");
    // Unknown enum value.
    let r = w
        .api
        .post(
            &format!("/v1/suggestions/{id}/class"),
            &k.office,
            json!({"to": "E", "reason": "x"}),
        )
        .await;
    assert_problem(&r, 400, "malformed_request");
    w.api.close().await;
}

/// Commands without If-Match sent at once on one suggestion all apply (each decided again on
/// the state another committed first); one with a stale If-Match is a 412 and changes nothing.
#[tokio::test]
async fn concurrent_commands_without_if_match_all_apply() {
    let w = World::new(Api::sqlite().await).await;
    let k = &w.keys;
    let (id, lead, _, _) = w.assigned("2020-0777").await;
    w.sign_and_dispatch(&id, &lead, &k.lead_admin).await;
    let before = w.api.get(&format!("/v1/suggestions/{id}"), &k.office).await;
    let version = before.body["version"].as_u64().expect("version");
    let path = format!("/v1/suggestions/{id}/communications");
    let posts = (0..12).map(|i| {
        let (api, path, key) = (&w.api, path.clone(), k.lead_admin.clone());
        let body = json!({"assignment_id": lead, "phase": "during", "method": "phone", "deputy_ids": [w.deputy], "summary": format!("call {i}")});
        async move { api.post(&path, &key, body).await }
    });
    let answers = futures_util::future::join_all(posts).await;
    for r in &answers {
        assert!(r.status.is_success(), "{} {}", r.status, r.body);
    }
    let after = w.api.get(&format!("/v1/suggestions/{id}"), &k.office).await;
    assert_eq!(
        after.body["communications"].as_array().map(Vec::len),
        Some(12),
        "{}",
        after.body
    );
    assert_eq!(after.body["version"].as_u64(), Some(version + 12));
    let stale = w
        .api
        .call(
            Method::POST,
            &path,
            Some(&k.lead_admin),
            Some(json!({"assignment_id": lead, "phase": "during", "method": "phone", "deputy_ids": [w.deputy], "summary": "late"})),
            &[("if-match", &format!("\"{version}\""))],
        )
        .await;
    assert_problem(&stale, 412, "stale_version");
    w.api.close().await;
}

/// An agency's own reference id (`Reference-Id`): the same change sent again — by any key of
/// the agency, after any retention period — is not made again and answers as the first time;
/// the reference with another change is refused; other agencies' references are their own.
#[tokio::test]
async fn agency_reference_ids_make_repeats_no_ops() {
    let w = World::new(Api::sqlite().await).await;
    let (api, k) = (&w.api, &w.keys);
    let (id, lead, _, _) = w.assigned("2020-0901").await;
    w.sign_and_dispatch(&id, &lead, &k.lead_admin).await;
    let path = format!("/v1/suggestions/{id}/communications");
    let body = json!({"assignment_id": lead, "phase": "during", "method": "phone", "deputy_ids": [w.deputy], "summary": "call from the OA system"});
    let send = |key: &str, body: Value, reference: &str| {
        let (key, body, reference) = (key.to_owned(), body, reference.to_owned());
        let path = path.clone();
        async move {
            api.call(
                Method::POST,
                &path,
                Some(&key),
                Some(body),
                &[("reference-id", &reference)],
            )
            .await
        }
    };
    let events = |v: &Value| v.as_array().map(Vec::len).unwrap_or(0);
    let first = send(&k.lead_admin, body.clone(), "OA-2020-0001").await;
    assert_eq!(first.status, 200, "{}", first.body);
    let count = events(
        &api.get(&format!("/v1/suggestions/{id}/events"), &k.office)
            .await
            .body,
    );
    // Another key of the same agency, after the retention purge: a no-op with the first answer.
    api.app
        .store()
        .purge_idempotency(
            time::OffsetDateTime::now_utc() + time::Duration::days(1),
            time::OffsetDateTime::now_utc() - time::Duration::days(730),
        )
        .await
        .expect("purge");
    let again = send(&k.lead_handler, body.clone(), "OA-2020-0001").await;
    assert_eq!((again.status, &again.body), (first.status, &first.body));
    assert_eq!(
        events(
            &api.get(&format!("/v1/suggestions/{id}/events"), &k.office)
                .await
                .body
        ),
        count,
        "no second communication"
    );
    // The same reference with another change: refused, nothing stored.
    let mut other = body.clone();
    other["summary"] = json!("another call");
    let reuse = send(&k.lead_admin, other.clone(), "OA-2020-0001").await;
    assert_problem(&reuse, 422, "idempotency_key_reused");
    assert!(
        reuse.body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("Reference-Id `OA-2020-0001`")),
        "{}",
        reuse.body
    );
    // A new reference is a new change.
    let second = send(&k.lead_admin, other, "OA-2020-0002").await;
    assert_eq!(second.status, 200, "{}", second.body);
    assert_eq!(
        events(
            &api.get(&format!("/v1/suggestions/{id}/events"), &k.office)
                .await
                .body
        ),
        count + 1
    );
    // Only agency keys carry references; a malformed one is a 400.
    let r = api
        .call(
            Method::POST,
            "/v1/agencies",
            Some(&k.office),
            Some(json!({"name": "X"})),
            &[("reference-id", "x")],
        )
        .await;
    assert_problem(&r, 400, "malformed_request");
    let r = send(&k.lead_admin, body, "has space").await;
    assert_problem(&r, 400, "malformed_request");
    w.api.close().await;
}

#[tokio::test]
async fn no_answer_is_cached_and_the_docs_page_is_locked_down() {
    let w = World::new(Api::sqlite().await).await;
    let api = &w.api;
    // A new key's token is shown once: no cache may keep it (nor any other answer).
    let r = api
        .post(
            "/v1/admin/keys",
            &api.office,
            json!({"role": "auditor", "label": "cache"}),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.headers["cache-control"], "no-store");
    assert_eq!(r.headers["x-content-type-options"], "nosniff");
    let r = api.get("/v1/agencies", &api.office).await;
    assert_eq!(r.headers["cache-control"], "no-store");
    let r = api
        .call(axum::http::Method::GET, "/v1/nothing-here", None, None, &[])
        .await;
    assert_eq!(r.headers["cache-control"], "no-store");
    // The docs page: a content security policy its own markup keeps (no inline script), no
    // framing, no referrer.
    let r = api
        .call(axum::http::Method::GET, "/docs/", None, None, &[])
        .await;
    assert_eq!(r.status, 200);
    let csp = r.headers["content-security-policy"]
        .to_str()
        .unwrap_or_default();
    assert!(
        csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
        "{csp}"
    );
    assert_eq!(r.headers["x-frame-options"], "DENY");
    assert_eq!(r.headers["referrer-policy"], "no-referrer");
    let html = r.body.as_str().unwrap_or_default();
    assert!(html.contains("<script"), "{html}");
    for tag in html.split("<script").skip(1) {
        let open = tag.split('>').next().unwrap_or_default();
        assert!(
            open.contains("src="),
            "an inline script the policy would block: <script{open}>"
        );
    }
    w.api.close().await;
}
