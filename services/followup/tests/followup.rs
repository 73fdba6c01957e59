//! The follow-up service fed with the suggestions service's real events (a suggestion assigned
//! to a lead and a co-handler, on SQLite): the deadlines it tracks, the alert timers it
//! schedules, alerts fired once by two replicas, the overdue tiers and the due-soon list per
//! agency, a redelivered batch changing nothing, and a deadline met or moved.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use banli_api::{Authenticator, Clock, Principal};
use banli_calendar::Calendar;
use banli_db::testing::TestDb;
use banli_domain::followup::{DeadlineKind, TrackedDeadline};
use banli_domain::ids::{AgencyId, AssignmentId};
use banli_domain::{Role, RuleProfile};
use banli_eventlog::{Envelope, Handled, Handler, Incoming};
use banli_followup::consumer::EventConsumer;
use banli_followup::fire::AlertFirer;
use banli_followup::store::Store;
use banli_suggestions::app::App;
use banli_timers::{RunOptions, TimerStats};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use time::macros::date;
use tower::ServiceExt;

async fn call(
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

async fn ok(router: &axum::Router, path: &str, key: &str, body: Value) -> Value {
    let (status, v) = call(router, "POST", path, key, Some(body)).await;
    assert!(status.is_success(), "POST {path}: {status} {v}");
    v
}

/// The suggestions service's outbox as the bus would deliver it.
async fn events(store: &banli_suggestions::store::Store) -> Vec<Incoming> {
    store
        .outbox()
        .pending(store.db().pool(), 1000)
        .await
        .expect("outbox")
        .into_iter()
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

#[tokio::test]
async fn deadlines_alerts_and_lists() {
    // The suggestions service, in process.
    let sdb = TestDb::sqlite().await;
    let sstore = banli_suggestions::store::Store::new(sdb.pool.clone());
    sstore.migrate().await.expect("migrations");
    let office_agency = banli_domain::directory::Agency {
        id: AgencyId::new(),
        name: "Assigning office".into(),
        assigning_office: true,
    };
    sstore.create_agency(&office_agency).await.expect("office");
    let (_, office) = sstore
        .create_key(Role::AssigningOffice, Some(office_agency.id), None, "test")
        .await
        .expect("key");
    let profile = RuleProfile::hunan();
    let app = App::new(
        sstore.clone(),
        profile.clone(),
        Calendar::embedded().clone(),
        Clock::Fixed(date!(2020 - 03 - 02)),
    );
    let (router, _) = banli_suggestions::http::api(app.clone(), 1 << 20);
    ok(&router, "/v1/sessions", &office, json!({"body":"npc","term":13,"number":3,"name":"13th PC, 3rd session","opens_on":"2020-01-10","closes_on":"2020-01-16"})).await;
    let (_, sessions) = call(&router, "GET", "/v1/sessions", &office, None).await;
    let session = sessions["items"][0]["id"]
        .as_str()
        .or(sessions[0]["id"].as_str())
        .expect("session")
        .to_owned();
    let lead = ok(
        &router,
        "/v1/agencies",
        &office,
        json!({"name": "Department of Industry"}),
    )
    .await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let co = ok(
        &router,
        "/v1/agencies",
        &office,
        json!({"name": "Department of Finance"}),
    )
    .await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let deputy = ok(
        &router,
        "/v1/deputies",
        &office,
        json!({"name": "Deputy Liu", "delegation": "Changsha", "contact": "+86 731 0000"}),
    )
    .await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let s = ok(&router, "/v1/suggestions", &office, json!({"session_id": session, "number": "2020-0001", "title": "Digital upgrades", "body": "A fund.", "lead_deputy_id": deputy})).await;
    let id = s["id"].as_str().expect("id").to_owned();
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
    let s = ok(
        &router,
        &format!("/v1/suggestions/{id}/assignments"),
        &office,
        json!({"units": [{"agency_id": lead, "role": "lead"}, {"agency_id": co, "role": "co"}]}),
    )
    .await;
    let assignment = |agency: &str| {
        s["assignments"]
            .as_array()
            .expect("assignments")
            .iter()
            .find(|a| a["agency_id"] == agency)
            .expect("assignment")
            .clone()
    };
    let (la, ca) = (assignment(&lead), assignment(&co));
    let lead_reply_due = la["deadlines"]["reply"]["due"]
        .as_str()
        .expect("reply due")
        .to_owned();

    // The follow-up service consumes those events.
    let fdb = TestDb::sqlite().await;
    let store = Store::new(fdb.pool.clone());
    let consumer = EventConsumer::new(store.clone(), profile.reminders.clone());
    store.migrate(consumer.inbox()).await.expect("migrations");
    let batch = events(&sstore).await;
    assert!(batch.len() >= 4);
    let out = consumer.handle(&batch).await.expect("handled");
    assert!(out.iter().all(|h| *h == Handled::Applied), "{out:?}");
    let again = consumer.handle(&batch).await.expect("handled");
    assert!(again.iter().all(|h| *h == Handled::Duplicate), "{again:?}");

    let lead_id = la["id"].as_str().expect("id");
    let co_id = ca["id"].as_str().expect("id");
    let (due, _, met) = store
        .deadline(lead_id, "reply")
        .await
        .expect("read")
        .expect("the lead's reply deadline");
    assert_eq!(due.to_string(), lead_reply_due);
    assert!(!met);
    assert!(
        store
            .deadline(co_id, "co_opinion")
            .await
            .expect("read")
            .is_some()
    );
    assert!(
        store
            .deadline(co_id, "reply")
            .await
            .expect("read")
            .is_none(),
        "a co-handler does not reply"
    );
    let pending = store.timers().pending(store.pool()).await.expect("timers");
    assert!(
        pending >= 10,
        "alerts scheduled for every open deadline: {pending}"
    );

    // 2020's alerts are all due now: two replicas fire each once.
    let stats = Arc::new(TimerStats::default());
    let runners: Vec<_> = ["one", "two"]
        .iter()
        .map(|o| {
            tokio::spawn(banli_timers::run(
                store.db().clone(),
                store.timers().clone(),
                RunOptions {
                    owner: (*o).into(),
                    batch: 3,
                    lease: Duration::from_secs(5),
                    idle: Duration::from_millis(50),
                },
                AlertFirer::new(store.clone()),
                stats.clone(),
                std::future::pending(),
            ))
        })
        .collect();
    for _ in 0..200 {
        if store.timers().pending(store.pool()).await.expect("timers") == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for r in runners {
        r.abort();
    }
    let alerts = store.alerts(None, 500).await.expect("alerts");
    assert_eq!(alerts.len() as u64, pending, "every alert once");
    assert!(
        alerts
            .iter()
            .any(|a| a.level == "very_late" && a.assignment_id == lead_id && a.kind == "reply")
    );
    assert!(
        alerts
            .iter()
            .any(|a| a.level == "reminder" && a.alert == "before-15")
    );

    // The lists, as of a fixed day, per agency.
    let auth: Authenticator = Arc::new(|token: String| {
        Box::pin(async move {
            let (role, agency) = match token.split_once(':') {
                Some(("office", _)) => (Role::AssigningOffice, None),
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
                key_id: uuid::Uuid::nil(),
                role,
                agency,
                deputy: None,
            })
        })
    });
    let reply_due = time::Date::parse(
        &lead_reply_due,
        &time::format_description::well_known::Iso8601::DATE,
    )
    .expect("date");
    let state = |today| banli_followup::http::AppState {
        store: store.clone(),
        auth: auth.clone(),
        reminders: profile.reminders.clone(),
        clock: Clock::Fixed(today),
    };
    let (api, _) = banli_followup::http::api(state(reply_due + time::Duration::days(3)));
    let (status, v) = call(&api, "GET", "/v1/followup/overdue", "office:x", None).await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let items = v["items"].as_array().expect("items");
    let reply = items
        .iter()
        .find(|i| i["assignment_id"] == lead_id && i["kind"] == "reply")
        .expect("the reply is late");
    assert_eq!(reply["level"], "late");
    assert_eq!(reply["days_overdue"], 3);
    assert!(
        items
            .iter()
            .any(|i| i["kind"] == "first_contact" && i["level"] == "very_late")
    );
    let (status, v) = call(
        &api,
        "GET",
        &format!("/v1/followup/overdue?agency_id={co}"),
        &format!("agency:{co}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert!(
        v["items"]
            .as_array()
            .expect("items")
            .iter()
            .all(|i| i["agency_id"] == co.as_str())
    );
    let (status, _) = call(
        &api,
        "GET",
        &format!("/v1/followup/overdue?agency_id={lead}"),
        &format!("agency:{co}"),
        None,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "an agency reads its own deadlines only"
    );
    let (status, _) = call(&api, "GET", "/v1/followup/overdue", "deputy:x", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, v) = call(
        &api,
        "GET",
        "/v1/followup/overdue?level=soon",
        "office:x",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    let (api, _) = banli_followup::http::api(state(reply_due - time::Duration::days(10)));
    let (status, v) = call(
        &api,
        "GET",
        "/v1/followup/due-soon?within_days=15",
        "office:x",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert!(
        v["items"]
            .as_array()
            .expect("items")
            .iter()
            .any(|i| i["assignment_id"] == lead_id && i["kind"] == "reply")
    );
    let (status, _) = call(
        &api,
        "GET",
        "/v1/followup/due-soon?within_days=400",
        "office:x",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

/// A deadline that moves reschedules its alerts (the old date kept); one that is met cancels
/// them.
#[tokio::test]
async fn moved_and_met_deadlines() {
    let db = TestDb::sqlite().await;
    let store = Store::new(db.pool.clone());
    let consumer = EventConsumer::new(store.clone(), RuleProfile::hunan().reminders);
    store.migrate(consumer.inbox()).await.expect("migrations");
    let r = RuleProfile::hunan().reminders;
    let d = TrackedDeadline {
        assignment_id: AssignmentId::new(),
        agency: AgencyId::new(),
        kind: DeadlineKind::Reply,
        due: date!(2031 - 06 - 02),
        met: false,
    };
    let aid = d.assignment_id.to_string();
    let save = |d: TrackedDeadline| {
        let (store, r) = (store.clone(), r.clone());
        async move {
            let banli_db::Pool::Sqlite(p) = store.pool() else {
                panic!("SQLite")
            };
            let mut tx = p.begin().await.expect("tx");
            banli_followup::store::sqlite::save(
                &mut tx,
                store.timers(),
                "s-1",
                1,
                "{}",
                &[d],
                &r,
                time::OffsetDateTime::now_utc(),
            )
            .await
            .expect("save");
            tx.commit().await.expect("commit");
        }
    };
    save(d.clone()).await;
    let key = format!("{aid}:reply:after-1");
    let t = store
        .timers()
        .get(store.pool(), &key)
        .await
        .expect("read")
        .expect("scheduled");
    assert_eq!(t.state, "pending");
    save(TrackedDeadline {
        due: date!(2031 - 07 - 02),
        ..d.clone()
    })
    .await;
    let (due, previous, _) = store
        .deadline(&aid, "reply")
        .await
        .expect("read")
        .expect("row");
    assert_eq!(
        (due, previous),
        (date!(2031 - 07 - 02), Some(date!(2031 - 06 - 02)))
    );
    let moved = store
        .timers()
        .get(store.pool(), &key)
        .await
        .expect("read")
        .expect("there");
    assert!(moved.due_at > t.due_at && moved.previous_due_at == Some(t.due_at));
    save(TrackedDeadline {
        due: date!(2031 - 07 - 02),
        met: true,
        ..d
    })
    .await;
    assert_eq!(
        store
            .timers()
            .get(store.pool(), &key)
            .await
            .expect("read")
            .expect("there")
            .state,
        "cancelled"
    );
    assert_eq!(
        store.timers().pending(store.pool()).await.expect("count"),
        0
    );
}
