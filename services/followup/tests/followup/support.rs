//! What the follow-up tests share: the suggestions service in process with one assigned
//! suggestion, a follow-up store fed with its real events, keys, and request helpers.

pub(crate) use std::sync::Arc;
pub(crate) use std::time::Duration;

pub(crate) use axum::body::Body;
pub(crate) use axum::http::{Request, StatusCode};
pub(crate) use banli_api::{Authenticator, Clock, Principal};
pub(crate) use banli_calendar::Calendar;
pub(crate) use banli_db::testing::TestDb;
pub(crate) use banli_domain::followup::{DeadlineKind, TrackedDeadline};
pub(crate) use banli_domain::ids::{AgencyId, AssignmentId};
pub(crate) use banli_domain::{Role, RuleProfile};
pub(crate) use banli_eventlog::{Envelope, Handled, Handler, Incoming};
pub(crate) use banli_followup::consumer::EventConsumer;
pub(crate) use banli_followup::fire::AlertFirer;
pub(crate) use banli_followup::store::Store;
pub(crate) use banli_suggestions::app::App;
pub(crate) use banli_timers::{RunOptions, TimerStats};
pub(crate) use http_body_util::BodyExt;
pub(crate) use serde_json::{Value, json};
pub(crate) use time::macros::date;
pub(crate) use tower::ServiceExt;

pub(crate) async fn call(
    router: &axum::Router,
    method: &str,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> (StatusCode, Value) {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {key}"));
    let req = match body {
        Some(b) => {
            req = req.header("content-type", "application/json");
            req.body(Body::from(b.to_string()))
        }
        None => req.body(Body::empty()),
    }
    .expect("request");
    let res = router.clone().oneshot(req).await.expect("response");
    let status = res.status();
    let bytes = res.into_body().collect().await.expect("body").to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// A GET answered 200 with a text body (CSV).
pub(crate) async fn raw(router: &axum::Router, path: &str, key: &str) -> String {
    let req = Request::builder()
        .method("GET")
        .uri(path)
        .header("authorization", format!("Bearer {key}"))
        .body(Body::empty())
        .expect("request");
    let res = router.clone().oneshot(req).await.expect("response");
    let status = res.status();
    let bytes = res.into_body().collect().await.expect("body").to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    assert_eq!(status, StatusCode::OK, "GET {path}: {text}");
    text
}

pub(crate) async fn ok(router: &axum::Router, path: &str, key: &str, body: Value) -> Value {
    let (status, v) = call(router, "POST", path, key, Some(body)).await;
    assert!(status.is_success(), "POST {path}: {status} {v}");
    v
}

/// `world(with_co)`, and a follow-up store (SQLite) whose consumer has taken its events.
pub(crate) struct Followed {
    pub(crate) w: World,
    pub(crate) _db: TestDb,
    pub(crate) store: Store,
    pub(crate) profile: RuleProfile,
    pub(crate) consumer: EventConsumer,
}

pub(crate) async fn followed(with_co: bool) -> Followed {
    let w = world(with_co).await;
    let db = TestDb::sqlite().await;
    let store = Store::new(db.pool.clone());
    let profile = RuleProfile::hunan();
    let consumer = EventConsumer::new(store.clone(), profile.reminders.clone());
    store.migrate(consumer.inbox()).await.expect("migrations");
    consumer
        .handle(&events(&w.store).await)
        .await
        .expect("handled");
    Followed {
        w,
        _db: db,
        store,
        profile,
        consumer,
    }
}

/// Keys for the tests: `office:<agency>`, `agency:<agency>`, `deputy:x`; each token its own key
/// id (idempotency keys are per key).
pub(crate) fn test_auth() -> Authenticator {
    Arc::new(|token: String| {
        Box::pin(async move {
            let (role, agency) = match token.split_once(':') {
                Some(("office", a)) => (Role::AssigningOffice, a.parse().ok().map(AgencyId)),
                Some(("agency", a)) => (Role::AgencyAdmin, a.parse().ok().map(AgencyId)),
                Some(("deputy", _)) => (Role::Deputy, None),
                _ => {
                    return Err(banli_api::AppError::new(
                        banli_api::ErrorCode::Unauthenticated,
                        "unknown",
                    ));
                }
            };
            Ok(Principal {
                position: None,
                key_id: {
                    use std::hash::{Hash, Hasher};
                    let mut h = std::collections::hash_map::DefaultHasher::new();
                    token.hash(&mut h);
                    uuid::Uuid::from_u64_pair(h.finish(), 1)
                },
                role,
                agency,
                deputy: None,
                reference: None,
                client_cert: None,
            })
        })
    })
}

/// The suggestions service's outbox as the bus would deliver it.
pub(crate) async fn events(store: &banli_suggestions::store::Store) -> Vec<Incoming> {
    store
        .outbox()
        .pending(store.db().pool(), 1000)
        .await
        .expect("outbox")
        .into_iter()
        // What the bus delivers to this consumer (its filter): the directory's events go to
        // the directory consumer.
        .filter(|r| r.event_type.starts_with(banli_followup::consumer::FILTER))
        .map(|r| Incoming {
            envelope: Envelope {
                event_id: r.event_id,
                event_type: r.event_type,
                aggregate_id: r.aggregate_id,
                aggregate_version: r.aggregate_version,
                payload: r.payload.into_bytes(),
            },
            attempt: 1,
        })
        .collect()
}

/// The suggestions service in process (SQLite, the business date fixed at 2020-03-02), its
/// assigning office, two agencies and one suggestion assigned to the first as lead and, when
/// `with_co`, to the second as co-handler.
pub(crate) struct World {
    pub(crate) _db: TestDb,
    pub(crate) store: banli_suggestions::store::Store,
    pub(crate) office_agency: banli_domain::directory::Agency,
    pub(crate) lead: String,
    pub(crate) second: String,
    pub(crate) id: String,
    /// The suggestion as the assignment answered it.
    pub(crate) assigned: Value,
}

pub(crate) async fn world(with_co: bool) -> World {
    let db = TestDb::sqlite().await;
    let store = banli_suggestions::store::Store::new(db.pool.clone());
    store.migrate().await.expect("migrations");
    let office_agency = banli_domain::directory::Agency {
        id: AgencyId::new(),
        name: "Assigning office".into(),
        assigning_office: true,
    };
    store.create_agency(&office_agency).await.expect("office");
    let (_, office) = store
        .create_key(Role::AssigningOffice, Some(office_agency.id), None, "test")
        .await
        .expect("key");
    let app = App::new(
        store.clone(),
        RuleProfile::hunan(),
        Calendar::embedded().clone(),
        Clock::Fixed(date!(2020 - 03 - 02)),
    );
    let (router, _) = banli_suggestions::http::api(app, 1 << 20);
    ok(&router, "/v1/sessions", &office, json!({"body":"npc","term":13,"number":3,"name":"13th PC, 3rd session","opens_on":"2020-01-10","closes_on":"2020-01-16"})).await;
    let (_, sessions) = call(&router, "GET", "/v1/sessions", &office, None).await;
    let session = sessions["items"][0]["id"]
        .as_str()
        .or(sessions[0]["id"].as_str())
        .expect("session")
        .to_owned();
    let id_of = |v: Value| v["id"].as_str().expect("id").to_owned();
    let lead = id_of(
        ok(
            &router,
            "/v1/agencies",
            &office,
            json!({"name": "Department of Industry"}),
        )
        .await,
    );
    let second = id_of(
        ok(
            &router,
            "/v1/agencies",
            &office,
            json!({"name": "Department of Finance"}),
        )
        .await,
    );
    let deputy = id_of(
        ok(
            &router,
            "/v1/deputies",
            &office,
            json!({"name": "Deputy Liu", "delegation": "Changsha", "contact": "+86 731 0000"}),
        )
        .await,
    );
    let id = id_of(ok(&router, "/v1/suggestions", &office, json!({"session_id": session, "number": "2020-0001", "title": "Digital upgrades", "body": "A fund.", "lead_deputy_id": deputy})).await);
    ok(
        &router,
        &format!("/v1/suggestions/{id}/start-review"),
        &office,
        json!({}),
    )
    .await;
    ok(
        &router,
        &format!("/v1/suggestions/{id}/review"),
        &office,
        json!({"decision": "accept"}),
    )
    .await;
    let mut units = vec![json!({"agency_id": lead, "role": "lead"})];
    if with_co {
        units.push(json!({"agency_id": second, "role": "co"}));
    }
    let assigned = ok(
        &router,
        &format!("/v1/suggestions/{id}/assignments"),
        &office,
        json!({"units": units}),
    )
    .await;
    World {
        _db: db,
        store,
        office_agency,
        lead,
        second,
        id,
        assigned,
    }
}

pub(crate) async fn post(
    router: &axum::Router,
    path: &str,
    key: &str,
    body: Value,
    headers: &[(&str, &str)],
) -> (StatusCode, Value) {
    let mut req = Request::builder()
        .method("POST")
        .uri(path)
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", "application/json");
    for (h, v) in headers {
        req = req.header(*h, *v);
    }
    let res = router
        .clone()
        .oneshot(req.body(Body::from(body.to_string())).expect("request"))
        .await
        .expect("response");
    let status = res.status();
    let bytes = res.into_body().collect().await.expect("body").to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

pub(crate) fn with_key<T>(msg: T, key: &str) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.metadata_mut().insert(
        "authorization",
        format!("Bearer {key}").parse().expect("metadata"),
    );
    r
}
