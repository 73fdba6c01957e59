//! Read-your-writes across the services: the `Banli-Consistency` contract, on both backends,
//! with a consumer slowed down on purpose so that no command could pass by luck.

use std::time::{Duration, Instant};

use axum::http::Method;
use banli_db::testing::TestDb;
use serde_json::{Value, json};

use crate::support::{Api, Options, Response, World, assignment_of};

const HEADER: &str = "banli-consistency";

/// A client that sends each command with the token of the previous response and never retries.
struct Chain<'a> {
    w: &'a World,
    token: Option<String>,
}

impl Chain<'_> {
    async fn send(&mut self, path: &str, key: &str, body: Value) -> Response {
        let headers: Vec<(&str, &str)> = self
            .token
            .as_deref()
            .map(|t| vec![(HEADER, t)])
            .unwrap_or_default();
        let r = self
            .w
            .api
            .call(Method::POST, path, Some(key), Some(body), &headers)
            .await;
        if r.status.is_success() {
            let t = r.headers.get(HEADER).expect("a write answers with a token");
            self.token = Some(t.to_str().expect("ascii").to_owned());
        }
        r
    }

    async fn ok(&mut self, path: &str, key: &str, body: Value) -> Value {
        let r = self.send(path, key, body).await;
        assert!(
            r.status.is_success(),
            "POST {path}: {} {} (no retry: the token must be enough)",
            r.status,
            r.body
        );
        r.body
    }
}

/// Every command of a co-handled lifecycle, chained by tokens across the two services, while
/// both consumers are held back 150 ms per batch: each is decided on the first try.
async fn chained_lifecycle(w: &World) {
    let k = &w.keys;
    let mut c = Chain { w, token: None };
    let s = c
        .ok(
            "/v1/suggestions",
            &k.deputy,
            json!({"session_id": w.session, "number": "C-1", "title": "Chained", "body": "b", "lead_deputy_id": w.deputy, "co_signer_ids": [w.co_signer]}),
        )
        .await;
    let id = s["id"].as_str().expect("id").to_owned();
    let p = |suffix: &str| format!("/v1/suggestions/{id}{suffix}");
    c.ok(&p("/start-review"), &k.office, json!({})).await;
    c.ok(&p("/review"), &k.office, json!({"decision": "accept"}))
        .await;
    let s = c
        .ok(
            &p("/assignments"),
            &k.office,
            json!({"units": [{"agency_id": w.lead, "role": "lead"}, {"agency_id": w.co1, "role": "co"}, {"agency_id": w.co2, "role": "co"}]}),
        )
        .await;
    let a = |agency: &str| assignment_of(&s, agency);
    let (lead, co1, co2) = (a(&w.lead), a(&w.co1), a(&w.co2));
    let division = w
        .api
        .ok(
            &format!("/v1/agencies/{}/divisions", w.lead),
            &k.office,
            json!({"name": "SME division"}),
        )
        .await;
    // The coordination service learns of the assignment through the slowed consumer.
    c.ok(
        &format!("/v1/coordination/assignments/{lead}/sign-for"),
        &k.lead_admin,
        json!({}),
    )
    .await;
    // The suggestions service learns of the sign-for the same way.
    c.ok(
        &p(&format!("/assignments/{lead}/dispatch")),
        &k.lead_admin,
        json!({"division_id": division["id"], "handler": "Li Hua", "responsible_leader": "Director Wang"}),
    )
    .await;
    c.ok(
        &p("/communications"),
        &k.lead_admin,
        json!({"assignment_id": lead, "phase": "during", "method": "visit", "face_to_face": true, "deputy_ids": [w.deputy], "summary": "met"}),
    )
    .await;
    // The first co-handler signs for and dispatches, then sends its opinion to the lead.
    let co_division = w
        .api
        .ok(
            &format!("/v1/agencies/{}/divisions", w.co1),
            &k.office,
            json!({"name": "Funds division"}),
        )
        .await;
    c.ok(
        &format!("/v1/coordination/assignments/{co1}/sign-for"),
        &k.co1_admin,
        json!({}),
    )
    .await;
    c.ok(
        &p(&format!("/assignments/{co1}/dispatch")),
        &k.co1_admin,
        json!({"division_id": co_division["id"], "handler": "Zhou Min", "responsible_leader": "Director Sun"}),
    )
    .await;
    c.ok(
        &format!("/v1/coordination/assignments/{co1}/opinions"),
        &k.co1_admin,
        json!({"document_number": "F-1", "body": "Within our remit we fund the pilot; details attached.", "signer": {"name": "Director Sun", "position": "authorized_leader"}}),
    )
    .await;
    c.ok(
        &format!("/v1/coordination/assignments/{co2}/waiver"),
        &k.office,
        json!({"reason": "no opinion needed"}),
    )
    .await;
    let case =
        c.w.api
            .call(
                Method::GET,
                &format!("/v1/coordination/cases/{id}"),
                Some(&k.lead_admin),
                None,
                &[(HEADER, c.token.as_deref().expect("token"))],
            )
            .await;
    assert_eq!(case.status, 200, "{}", case.body);
    let opinion = case.body["opinions"][0]["id"]
        .as_str()
        .expect("the opinion, read with the token")
        .to_owned();
    let s = c
        .ok(
            &p("/replies"),
            &k.lead_admin,
            json!({"assignment_id": lead, "document_number": "R-1", "body": "Done.", "class": "A", "signer": {"name": "Director Wang", "position": "principal_head"}, "opinion_ids": [opinion]}),
        )
        .await;
    assert_eq!(s["state"], "replied", "{s}");
    c.ok(&p("/feedback"), &k.deputy, json!({"level": "satisfied"}))
        .await;
    let s = c
        .ok(&p("/feedback"), &k.co_signer, json!({"level": "satisfied"}))
        .await;
    assert_eq!(s["state"], "closed", "{s}");
}

fn slowed() -> Options {
    Options {
        slow_suggestions_consumer: Some(Duration::from_millis(150)),
        slow_coordination_consumer: Some(Duration::from_millis(150)),
        ..Options::default()
    }
}

#[tokio::test]
async fn a_chained_lifecycle_needs_no_retry_on_sqlite() {
    let w = World::new(Api::with(TestDb::sqlite().await, 1 << 20, slowed()).await).await;
    chained_lifecycle(&w).await;
    w.api.close().await;
}

#[tokio::test]
async fn a_chained_lifecycle_needs_no_retry_on_postgres() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let w = World::new(Api::with(db, 1 << 20, slowed()).await).await;
    chained_lifecycle(&w).await;
    w.api.close().await;
}

#[tokio::test]
async fn bad_tokens_are_refused_at_once() {
    let w = World::new(Api::sqlite().await).await;
    let foreign = banli_api::consistency::TokenKey::from_bytes(&[7; 32]).encode(&[
        banli_eventlog::consistency::Position::new(
            "suggestion",
            &uuid::Uuid::now_v7().to_string(),
            1,
        ),
    ]);
    let own = w
        .api
        .call(
            Method::POST,
            "/v1/agencies",
            Some(&w.keys.office),
            Some(json!({"name": "Department of Water"})),
            &[],
        )
        .await;
    let own = own.headers[HEADER].to_str().expect("ascii").to_owned();
    let edited = format!("{}x", own);
    for (bad, what) in [
        ("not-a-token", "garbage"),
        (foreign.as_str(), "another deployment's"),
        (edited.as_str(), "edited"),
        ("c1.AAAA.AAAA", "made up"),
    ] {
        for path in ["/v1/suggestions", "/v1/coordination/tasks"] {
            let t = Instant::now();
            let r = w
                .api
                .call(
                    Method::GET,
                    path,
                    Some(&w.keys.office),
                    None,
                    &[(HEADER, bad)],
                )
                .await;
            assert_eq!(r.status, 400, "{what} on {path}: {}", r.body);
            assert_eq!(r.code(), "bad_consistency_token", "{what}");
            assert!(r.body["detail"].as_str().unwrap_or("").contains(HEADER));
            assert!(t.elapsed() < Duration::from_secs(1), "decided at once");
        }
    }
    // A valid token of this deployment passes; reads answer without a new token.
    let r = w
        .api
        .call(
            Method::GET,
            "/v1/suggestions",
            Some(&w.keys.office),
            None,
            &[(HEADER, &own)],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    w.api.close().await;
}

#[tokio::test]
async fn a_token_not_reached_in_time_is_a_503_with_retry_after() {
    // The coordination consumer is held far longer than the wait.
    let o = Options {
        slow_coordination_consumer: Some(Duration::from_secs(3)),
        consistency_wait: Duration::from_millis(300),
        ..Options::default()
    };
    let w = World::new(Api::with(TestDb::sqlite().await, 1 << 20, o).await).await;
    let s = w.submit("T-1").await;
    let id = s["id"].as_str().expect("id");
    let r = w
        .api
        .call(
            Method::POST,
            &format!("/v1/suggestions/{id}/start-review"),
            Some(&w.keys.office),
            Some(json!({})),
            &[],
        )
        .await;
    let token = r.headers[HEADER].to_str().expect("ascii").to_owned();
    let t = Instant::now();
    let r = w
        .api
        .call(
            Method::GET,
            &format!("/v1/coordination/cases/{id}"),
            Some(&w.keys.office),
            None,
            &[(HEADER, &token)],
        )
        .await;
    let waited = t.elapsed();
    assert_eq!(r.status, 503, "{}", r.body);
    assert_eq!(r.code(), "consistency_timeout");
    assert_eq!(r.headers["retry-after"], "1");
    assert!(
        waited >= Duration::from_millis(300) && waited < Duration::from_secs(2),
        "bounded by consistency_wait: {waited:?}"
    );
    // The suggestions service owns the suggestion: the same token passes there at once.
    let r = w
        .api
        .call(
            Method::GET,
            &format!("/v1/suggestions/{id}"),
            Some(&w.keys.office),
            None,
            &[(HEADER, &token)],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    w.api.close().await;
}

#[tokio::test]
async fn a_new_id_waits_without_a_token_and_an_unknown_one_does_not() {
    let o = Options {
        slow_coordination_consumer: Some(Duration::from_millis(300)),
        ..Options::default()
    };
    let w = World::new(Api::with(TestDb::sqlite().await, 1 << 20, o).await).await;
    let s = w.submit("N-1").await;
    let id = s["id"].as_str().expect("id").to_owned();
    let office = &w.keys.office;
    w.api
        .ok(
            &format!("/v1/suggestions/{id}/start-review"),
            office,
            json!({}),
        )
        .await;
    w.api
        .ok(
            &format!("/v1/suggestions/{id}/review"),
            office,
            json!({"decision": "accept"}),
        )
        .await;
    let s = w
        .api
        .ok(
            &format!("/v1/suggestions/{id}/assignments"),
            office,
            json!({"units": [{"agency_id": w.lead, "role": "lead"}]}),
        )
        .await;
    let lead = s["assignments"][0]["id"].as_str().expect("id").to_owned();
    // No token: the assignment id is a fresh UUIDv7, so sign-for waits for it.
    let r = w
        .api
        .post(
            &format!("/v1/coordination/assignments/{lead}/sign-for"),
            &w.keys.lead_admin,
            json!({}),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    // An id nobody made: a UUIDv4, and a UUIDv7 of an hour ago, answer 404 at once.
    let old = uuid::Uuid::new_v7(uuid::Timestamp::from_unix(
        uuid::NoContext,
        (time::OffsetDateTime::now_utc().unix_timestamp() - 3_600) as u64,
        0,
    ));
    for unknown in [uuid::Uuid::new_v4(), old] {
        let t = Instant::now();
        let r = w
            .api
            .post(
                &format!("/v1/coordination/assignments/{unknown}/sign-for"),
                &w.keys.lead_admin,
                json!({}),
            )
            .await;
        assert_eq!(r.status, 404, "{}", r.body);
        assert!(
            t.elapsed() < Duration::from_millis(200),
            "{:?}",
            t.elapsed()
        );
    }
    w.api.close().await;
}

#[tokio::test]
async fn grpc_answers_and_honours_tokens_in_metadata() {
    use banli_proto::coordination::v1 as cpb;
    use banli_proto::suggestions::v1 as spb;
    let w = World::new(Api::with(TestDb::sqlite().await, 1 << 20, slowed()).await).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let mut routes = tonic::service::RoutesBuilder::default();
    banli_suggestions::grpc::add_services(w.api.app.clone(), &mut routes);
    banli_coordination::grpc::add_services(w.api.coordination.clone(), 1 << 20, &mut routes);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(banli_api::grpc::serve_with(
        routes,
        &[],
        listener,
        w.api.consistency.clone(),
        banli_api::grpc::GrpcOptions::default(),
        async {
            let _ = stopped.await;
        },
    ));
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("url")
        .connect()
        .await
        .expect("connects");
    let authed = |key: &str, token: Option<&str>| {
        let mut m = tonic::metadata::MetadataMap::new();
        m.insert(
            "authorization",
            format!("Bearer {key}").parse().expect("ascii"),
        );
        if let Some(t) = token {
            m.insert(HEADER, t.parse().expect("ascii"));
        }
        m
    };
    // Submitted and assigned over REST, chained: the last token names the assignment.
    let mut chain = Chain { w: &w, token: None };
    let sub = chain
        .ok(
            "/v1/suggestions",
            &w.keys.deputy,
            json!({"session_id": w.session, "number": "G-1", "title": "Over gRPC", "body": "b", "lead_deputy_id": w.deputy, "co_signer_ids": []}),
        )
        .await;
    let id = sub["id"].as_str().expect("id").to_owned();
    chain
        .ok(
            &format!("/v1/suggestions/{id}/start-review"),
            &w.keys.office,
            json!({}),
        )
        .await;
    chain
        .ok(
            &format!("/v1/suggestions/{id}/review"),
            &w.keys.office,
            json!({"decision": "accept"}),
        )
        .await;
    let assigned = chain
        .ok(
            &format!("/v1/suggestions/{id}/assignments"),
            &w.keys.office,
            json!({"units": [{"agency_id": w.lead, "role": "lead"}]}),
        )
        .await;
    let lead = assigned["assignments"][0]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let rest_token = chain.token.clone();
    let mut s = spb::suggestion_service_client::SuggestionServiceClient::new(channel.clone());
    let got = s
        .get_suggestion(req(
            authed(&w.keys.office, None),
            spb::GetSuggestionRequest { id: id.clone() },
        ))
        .await
        .expect("read");
    assert!(
        got.metadata().get(HEADER).is_none(),
        "a read without a token gets none"
    );
    let mut coord = cpb::coordination_service_client::CoordinationServiceClient::new(channel);
    let signed = coord
        .sign_for(req(
            authed(&w.keys.lead_admin, rest_token.as_deref()),
            cpb::SignForRequest {
                assignment_id: lead.clone(),
                ..Default::default()
            },
        ))
        .await
        .expect("sign-for with the REST token, first try");
    let token = signed
        .metadata()
        .get(HEADER)
        .expect("a gRPC write answers with banli-consistency")
        .to_str()
        .expect("ascii")
        .to_owned();
    // The suggestions service, given that token, shows the sign-for at once.
    let after = s
        .get_suggestion(req(
            authed(&w.keys.lead_admin, Some(&token)),
            spb::GetSuggestionRequest { id },
        ))
        .await
        .expect("read with the token")
        .into_inner();
    let state = after
        .assignments
        .iter()
        .find(|a| a.id == lead)
        .map(|a| a.state.clone())
        .expect("the lead");
    assert_eq!(state, "accepted");
    let err = coord
        .sign_for(req(
            authed(&w.keys.lead_admin, Some("nonsense")),
            cpb::SignForRequest {
                assignment_id: lead,
                ..Default::default()
            },
        ))
        .await
        .expect_err("a bad token");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert_eq!(
        err.metadata()
            .get("banli-error-code")
            .and_then(|v| v.to_str().ok()),
        Some("bad_consistency_token")
    );
    let _ = stop.send(());
    w.api.close().await;
}

fn req<T>(m: tonic::metadata::MetadataMap, msg: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    *r.metadata_mut() = m;
    r
}
