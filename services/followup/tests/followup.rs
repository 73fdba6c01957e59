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

/// `world(with_co)`, and a follow-up store (SQLite) whose consumer has taken its events.
struct Followed {
    w: World,
    _db: TestDb,
    store: Store,
    profile: RuleProfile,
    consumer: EventConsumer,
}

async fn followed(with_co: bool) -> Followed {
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
fn test_auth() -> Authenticator {
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
async fn events(store: &banli_suggestions::store::Store) -> Vec<Incoming> {
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
struct World {
    _db: TestDb,
    store: banli_suggestions::store::Store,
    office_agency: banli_domain::directory::Agency,
    lead: String,
    second: String,
    id: String,
    /// The suggestion as the assignment answered it.
    assigned: Value,
}

async fn world(with_co: bool) -> World {
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

#[tokio::test]
async fn deadlines_alerts_and_lists() {
    let w = world(true).await;
    let (sstore, lead, co, s) = (&w.store, w.lead.clone(), w.second.clone(), &w.assigned);
    let profile = RuleProfile::hunan();
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
    let batch = events(sstore).await;
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
                AlertFirer::new(store.clone())
                    .with_office(w.office_agency.id)
                    .with_due_soon(5),
                stats.clone(),
                std::future::pending(),
            ))
        })
        .collect();
    for _ in 0..1000 {
        if store.timers().pending(store.pool()).await.expect("timers") == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for r in runners {
        r.abort();
    }
    let alerts = store.alerts(None, 500, false).await.expect("alerts");
    assert_eq!(alerts.len() as u64, pending, "every alert once");
    // Each deadline's first overdue flag raised one notice to its unit, in the office's name.
    let late: Vec<_> = alerts.iter().filter(|a| a.alert == "after-1").collect();
    assert!(
        late.len() >= 3,
        "first contact, reply, co-opinion: {late:?}"
    );
    let raised: Vec<banli_domain::supervision::SupervisionNotice> = store
        .notices(None, None, 500)
        .await
        .expect("notices")
        .into_iter()
        .map(|(n, _)| serde_json::from_str(&n).expect("a notice"))
        .filter(|n: &banli_domain::supervision::SupervisionNotice| {
            n.trigger == banli_domain::supervision::Trigger::Overdue
        })
        .collect();
    assert_eq!(raised.len(), late.len(), "one notice per overdue deadline");
    // And each deadline's reminder five days before (the profile's last before the day) one
    // due-soon notice.
    let soon = alerts.iter().filter(|a| a.alert == "before-5").count();
    let due_soon = store
        .notices(None, None, 500)
        .await
        .expect("notices")
        .into_iter()
        .map(|(n, _)| {
            serde_json::from_str::<banli_domain::supervision::SupervisionNotice>(&n)
                .expect("a notice")
        })
        .filter(|n| n.trigger == banli_domain::supervision::Trigger::DueSoon)
        .count();
    assert!(soon >= 3, "{alerts:?}");
    assert_eq!(due_soon, soon, "one due-soon notice per deadline");
    for a in &late {
        assert!(
            raised.iter().any(|n| n.target.to_string() == a.agency_id
                && n.suggestions
                    .iter()
                    .any(|s| s.to_string() == a.suggestion_id)
                && n.issuer == w.office_agency.id),
            "{a:?}"
        );
    }
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
    let auth = test_auth();
    let reply_due = time::Date::parse(
        &lead_reply_due,
        &time::format_description::well_known::Iso8601::DATE,
    )
    .expect("date");
    let state = |today| banli_followup::app::AppState {
        store: store.clone(),
        auth: auth.clone(),
        profile: profile.clone(),
        clock: Clock::Fixed(today),
        names: None,
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

    // Metrics from the data: nothing replied yet, one lead and one co assignment.
    let (status, m) = call(&api, "GET", "/v1/metrics", "office:x", None).await;
    assert_eq!(status, StatusCode::OK, "{m}");
    assert_eq!(
        (m["counts"]["lead"].as_u64(), m["counts"]["co"].as_u64()),
        (Some(1), Some(1)),
        "{m}"
    );
    assert_eq!(
        (
            m["rates"]["reply_rate"]["numerator"].as_u64(),
            m["rates"]["reply_rate"]["denominator"].as_u64()
        ),
        (Some(0), Some(2))
    );
    assert_eq!(m["rates"]["reply_rate"]["value"].as_f64(), Some(0.0));
    assert!(
        m["rates"]["satisfaction_rate_broad"]["value"].is_null(),
        "no feedback: no value, not 0 or 100%"
    );
    let (status, m) = call(
        &api,
        "GET",
        &format!("/v1/metrics?agency_id={co}"),
        &format!("agency:{co}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{m}");
    assert_eq!(
        (m["counts"]["lead"].as_u64(), m["counts"]["co"].as_u64()),
        (Some(0), Some(1)),
        "{m}"
    );
    let (status, m) = call(&api, "GET", "/v1/metrics?year=2019", "office:x", None).await;
    assert_eq!(status, StatusCode::OK, "{m}");
    assert_eq!(m["counts"]["lead"].as_u64(), Some(0), "{m}");
    let unknown = AgencyId::new();
    let (status, _) = call(
        &api,
        "GET",
        &format!("/v1/metrics?agency_id={unknown}"),
        "office:x",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, m) = call(
        &api,
        "GET",
        "/v1/metrics?as_of=2099-01-01",
        "office:x",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{m}");
    assert!(m["detail"].as_str().is_some_and(|d| d.contains("as_of")));
    let (status, _) = call(&api, "GET", "/v1/metrics", "deputy:x", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = call(
        &api,
        "GET",
        &format!("/v1/metrics?agency_id={lead}"),
        &format!("agency:{co}"),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
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
                &[],
                &[d],
                banli_followup::store::Changed::ALL,
                &r,
                time::OffsetDateTime::now_utc(),
            )
            .await
            .expect("save");
            tx.commit().await.expect("commit");
        }
    };
    save(d.clone()).await;
    let key = format!("{aid}:reply:2031-06-02:after-1");
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
    // The old date's alert is cancelled; the new date has its own.
    let state = |key: String| {
        let store = store.clone();
        async move {
            store
                .timers()
                .get(store.pool(), &key)
                .await
                .expect("read")
                .expect("there")
                .state
        }
    };
    assert_eq!(state(key.clone()).await, "cancelled");
    let new_key = format!("{aid}:reply:2031-07-02:after-1");
    let moved = store
        .timers()
        .get(store.pool(), &new_key)
        .await
        .expect("read")
        .expect("scheduled for the new date");
    assert!(moved.state == "pending" && moved.due_at > t.due_at);
    save(TrackedDeadline {
        due: date!(2031 - 07 - 02),
        met: true,
        ..d
    })
    .await;
    assert_eq!(state(new_key).await, "cancelled");
    assert_eq!(
        store.timers().pending(store.pool()).await.expect("count"),
        0
    );

    // A deadline past due: its flags go out; moved later (an extension), the new date's flags
    // go out too, and its reminders already past are not sent late.
    let past = TrackedDeadline {
        assignment_id: AssignmentId::new(),
        due: date!(2020 - 06 - 02),
        ..d.clone()
    };
    let fire_all = || {
        let store = store.clone();
        async move {
            let runner = tokio::spawn(banli_timers::run(
                store.db().clone(),
                store.timers().clone(),
                RunOptions {
                    owner: "r".into(),
                    batch: 64,
                    lease: Duration::from_secs(5),
                    idle: Duration::from_millis(20),
                },
                AlertFirer::new(store.clone()),
                Arc::new(TimerStats::default()),
                std::future::pending(),
            ));
            for _ in 0..1000 {
                if store.timers().pending(store.pool()).await.expect("count") == 0 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            runner.abort();
        }
    };
    save(past.clone()).await;
    fire_all().await;
    save(TrackedDeadline {
        due: date!(2020 - 07 - 02),
        ..past.clone()
    })
    .await;
    fire_all().await;
    let pid = past.assignment_id.to_string();
    let sent: Vec<(String, time::Date)> = store
        .alerts(None, 500, false)
        .await
        .expect("alerts")
        .into_iter()
        .filter(|a| a.assignment_id == pid)
        .map(|a| (a.alert, a.due))
        .collect();
    for due in [date!(2020 - 06 - 02), date!(2020 - 07 - 02)] {
        assert!(sent.contains(&("after-1".to_owned(), due)), "{sent:?}");
        assert!(sent.contains(&("very-late".to_owned(), due)), "{sent:?}");
    }
    assert!(
        sent.iter()
            .any(|(a, due)| a.starts_with("before-") && *due == date!(2020 - 06 - 02)),
        "the first date's reminders went out: {sent:?}"
    );
    assert!(
        !sent
            .iter()
            .any(|(a, due)| a.starts_with("before-") && *due == date!(2020 - 07 - 02)),
        "no late reminders for the moved date: {sent:?}"
    );
}

async fn post(
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

/// Supervision notices: issued to a unit handling the item (a 422 otherwise), seen by the
/// parties only, acknowledged and answered with If-Match and Idempotency-Key, an unanswered
/// one escalated by its timer; every step recorded in the audit log.
#[tokio::test]
async fn supervision_notices() {
    let w = world(false).await;
    let (sstore, lead, other, sid) = (&w.store, w.lead.clone(), w.second.clone(), w.id.clone());
    let profile = RuleProfile::hunan();
    let office_agency = &w.office_agency;

    let fdb = TestDb::sqlite().await;
    let store = Store::new(fdb.pool.clone());
    let consumer = EventConsumer::new(store.clone(), profile.reminders.clone());
    store.migrate(consumer.inbox()).await.expect("migrations");
    consumer
        .handle(&events(sstore).await)
        .await
        .expect("handled");

    // The audit log, fed by the follow-up service.
    let adb = TestDb::sqlite().await;
    let astore = banli_auditlog::store::Store::new(adb.pool.clone());
    astore.migrate().await.expect("migrations");
    let log = banli_auditlog::AuditLog::open(
        astore,
        banli_audit::Signer::generate("banli.test/audit").expect("key"),
        banli_auditlog::LogOptions {
            checkpoint_interval: Duration::from_millis(20),
            ..banli_auditlog::LogOptions::new("banli.test/audit")
        },
    )
    .await
    .expect("log");
    let feed = tokio::spawn(banli_followup::audit_feed::run(
        store.clone(),
        log.clone(),
        std::future::pending(),
    ));

    let office_id = office_agency.id.to_string();
    let auth = test_auth();
    let (api, _) = banli_followup::http::api(banli_followup::app::AppState {
        store: store.clone(),
        auth,
        profile: profile.clone(),
        clock: Clock::Fixed(date!(2020 - 03 - 02)),
        names: None,
    });
    let office_key = format!("office:{office_id}");
    let (lead_key, other_key) = (format!("agency:{lead}"), format!("agency:{other}"));
    let notice = |target: &str, due: &str| json!({"target_agency_id": target, "suggestion_ids": [sid], "level": "notice", "body": "Reply by the due date.", "response_due": due});

    let (status, v) = post(
        &api,
        "/v1/followup/notices",
        &office_key,
        notice(&other, "2020-03-20"),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    assert!(
        v["detail"]
            .as_str()
            .is_some_and(|d| d.contains("target_agency_id")),
        "{v}"
    );
    let (status, v) = post(
        &api,
        "/v1/followup/notices",
        &other_key,
        notice(&lead, "2020-03-20"),
        &[],
    )
    .await;
    assert_eq!(
        status,
        StatusCode::FORBIDDEN,
        "an agency does not notify another: {v}"
    );
    // The same answer whether or not the target holds the item: who may issue is decided
    // before anything about the items is looked at.
    let (status, v) = post(
        &api,
        "/v1/followup/notices",
        &other_key,
        notice(&office_id.to_string(), "2020-03-20"),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{v}");

    let (status, first) = post(
        &api,
        "/v1/followup/notices",
        &office_key,
        notice(&lead, "2020-03-20"),
        &[("idempotency-key", "n-1")],
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{first}");
    let (status, again) = post(
        &api,
        "/v1/followup/notices",
        &office_key,
        notice(&lead, "2020-03-20"),
        &[("idempotency-key", "n-1")],
    )
    .await;
    assert_eq!(
        (status, &again["id"]),
        (StatusCode::CREATED, &first["id"]),
        "a retry gets the first answer"
    );
    let nid = first["id"].as_str().expect("id").to_owned();
    assert_eq!(first["state"], "issued");

    let (status, _) = call(
        &api,
        "GET",
        &format!("/v1/followup/notices/{nid}"),
        &other_key,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "not party to it");
    let (status, v) = call(
        &api,
        "GET",
        &format!("/v1/followup/notices/{nid}"),
        &lead_key,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    // A unit not party to the notice cannot tell it from none, whatever it sends.
    for if_match in ["\"v7\"", "\"v1\""] {
        let (status, v) = post(
            &api,
            &format!("/v1/followup/notices/{nid}/acknowledge"),
            &other_key,
            json!({}),
            &[("if-match", if_match)],
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{v}");
    }
    let (status, _) = post(
        &api,
        &format!("/v1/followup/notices/{nid}/acknowledge"),
        &lead_key,
        json!({}),
        &[("if-match", "\"v7\"")],
    )
    .await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED);
    let (status, v) = post(
        &api,
        &format!("/v1/followup/notices/{nid}/acknowledge"),
        &lead_key,
        json!({}),
        &[("if-match", "\"v1\"")],
    )
    .await;
    assert_eq!(
        (status, v["state"].as_str()),
        (StatusCode::OK, Some("acknowledged")),
        "{v}"
    );
    let (status, _) = post(
        &api,
        &format!("/v1/followup/notices/{nid}/response"),
        &other_key,
        json!({"response": "x"}),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, v) = post(
        &api,
        &format!("/v1/followup/notices/{nid}/response"),
        &lead_key,
        json!({"response": "  "}),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (status, v) = post(
        &api,
        &format!("/v1/followup/notices/{nid}/response"),
        &lead_key,
        json!({"response": "Done: the fund is set up."}),
        &[],
    )
    .await;
    assert_eq!(
        (status, v["state"].as_str()),
        (StatusCode::OK, Some("answered")),
        "{v}"
    );
    let (status, v) = post(
        &api,
        &format!("/v1/followup/notices/{nid}/acknowledge"),
        &lead_key,
        json!({}),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{v}");

    // Unanswered past its due date (2020): the timer escalates it one rung up.
    let (status, late) = post(
        &api,
        "/v1/followup/notices",
        &office_key,
        notice(&lead, "2020-03-05"),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{late}");
    let lid = late["id"].as_str().expect("id").to_owned();
    let runner = tokio::spawn(banli_timers::run(
        store.db().clone(),
        store.timers().clone(),
        RunOptions {
            owner: "r".into(),
            batch: 64,
            lease: Duration::from_secs(5),
            idle: Duration::from_millis(50),
        },
        AlertFirer::new(store.clone()),
        Arc::new(TimerStats::default()),
        std::future::pending(),
    ));
    let mut escalated = Value::Null;
    for _ in 0..1000 {
        let (_, v) = call(
            &api,
            "GET",
            &format!("/v1/followup/notices/{lid}"),
            &office_key,
            None,
        )
        .await;
        if v["state"] == "escalated" {
            escalated = v;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    runner.abort();
    let next = escalated["escalated_to"]
        .as_str()
        .expect("escalated to a new notice")
        .to_owned();
    let (status, v) = call(
        &api,
        "GET",
        &format!("/v1/followup/notices/{next}"),
        &lead_key,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        (v["level"].as_str(), v["trigger"].as_str()),
        (Some("special_inspection"), Some("escalation"))
    );

    // An answer after escalation is recorded as late, not refused.
    let (status, v) = post(
        &api,
        &format!("/v1/followup/notices/{lid}/response"),
        &lead_key,
        json!({"response": "Done, late."}),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        (v["state"].as_str(), v["answered_late"].as_bool()),
        (Some("escalated"), Some(true)),
        "{v}"
    );

    // The lists: the notified unit sees its notices, another agency none, a bad state is a 400.
    let (status, v) = call(
        &api,
        "GET",
        "/v1/followup/notices?state=escalated",
        &lead_key,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert!(
        v["items"]
            .as_array()
            .is_some_and(|i| i.iter().any(|n| n["id"] == lid.as_str())),
        "{v}"
    );
    let (status, v) = call(&api, "GET", "/v1/followup/notices", &other_key, None).await;
    assert_eq!(
        (status, v["items"].as_array().map(Vec::len)),
        (StatusCode::OK, Some(0)),
        "{v}"
    );
    let (status, _) = call(
        &api,
        "GET",
        "/v1/followup/notices?state=lost",
        &office_key,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);

    // Every step is in the audit log, once.
    let mut types = Vec::new();
    for _ in 0..1000 {
        let n = log.signed_size();
        if n > 0 {
            types = log
                .entries(0, n - 1, 1000)
                .await
                .expect("entries")
                .into_iter()
                .map(|e| e.record_type)
                .collect();
            if types
                .iter()
                .filter(|t| t.as_str() == "notice_response")
                .count()
                >= 2
            {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    feed.abort();
    let n = |t: &str| types.iter().filter(|x| x.as_str() == t).count();
    // The escalated notice (due in 2020 too) escalates in turn while the runner runs: each
    // escalation is one record and one new notice.
    let escalations = n("notice_escalated");
    assert!(escalations >= 1, "{types:?}");
    assert_eq!(
        (
            n("supervision_notice"),
            n("notice_acknowledged"),
            n("notice_response")
        ),
        (2 + escalations, 1, 2),
        "{types:?}"
    );
}

fn with_key<T>(msg: T, key: &str) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.metadata_mut().insert(
        "authorization",
        format!("Bearer {key}").parse().expect("metadata"),
    );
    r
}

/// gRPC `banli.followup.v1`: the same rules and errors as REST, through the same functions.
#[tokio::test]
async fn grpc_follow_up() {
    use banli_followup::grpc::Grpc;
    use banli_proto::followup::v1 as pb;
    use pb::follow_up_service_server::FollowUpService;

    let Followed {
        w,
        _db,
        store,
        profile,
        ..
    } = followed(false).await;
    let svc = Grpc::new(banli_followup::app::AppState {
        store: store.clone(),
        auth: test_auth(),
        profile: profile.clone(),
        clock: Clock::Fixed(date!(2020 - 03 - 02)),
        names: None,
    });
    let office = format!("office:{}", w.office_agency.id);
    let (lead, other) = (format!("agency:{}", w.lead), format!("agency:{}", w.second));

    let err = svc
        .list_due_soon(tonic::Request::new(pb::ListDueSoonRequest::default()))
        .await
        .expect_err("a key is needed");
    assert_eq!(err.code(), tonic::Code::Unauthenticated);
    let due = svc
        .list_due_soon(with_key(
            pb::ListDueSoonRequest {
                agency_id: w.lead.clone(),
                within_days: Some(366),
                division_id: String::new(),
            },
            &lead,
        ))
        .await
        .expect("due soon")
        .into_inner();
    assert!(due.items.iter().any(|d| d.kind == "reply"), "{due:?}");
    let err = svc
        .list_due_soon(with_key(
            pb::ListDueSoonRequest {
                agency_id: w.lead.clone(),
                within_days: Some(366),
                division_id: String::new(),
            },
            &other,
        ))
        .await
        .expect_err("another agency's list");
    assert_eq!(err.code(), tonic::Code::PermissionDenied);

    let issue = |target: &str, key: &str| pb::IssueNoticeRequest {
        target_agency_id: target.to_owned(),
        suggestion_ids: vec![w.id.clone()],
        level: "notice".into(),
        body: "Reply by the due date.".into(),
        response_due: "2020-03-20".into(),
        idempotency_key: key.into(),
    };
    let err = svc
        .issue_notice(with_key(issue(&w.second, ""), &office))
        .await
        .expect_err("the unit holds no assignment on the item");
    // 422 on REST.
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    assert!(err.message().contains("target_agency_id"), "{err:?}");
    let n = svc
        .issue_notice(with_key(issue(&w.lead, "k-1"), &office))
        .await
        .expect("issued")
        .into_inner();
    assert_eq!(
        (n.state.as_str(), n.level.as_str(), n.version),
        ("issued", "notice", 1)
    );
    let again = svc
        .issue_notice(with_key(issue(&w.lead, "k-1"), &office))
        .await
        .expect("the same answer")
        .into_inner();
    assert_eq!(again.id, n.id, "an idempotency key issues once");
    let err = svc
        .acknowledge_notice(with_key(
            pb::AcknowledgeNoticeRequest {
                notice_id: n.id.clone(),
                expected_version: 7,
                idempotency_key: String::new(),
            },
            &lead,
        ))
        .await
        .expect_err("a stale version");
    assert_eq!(err.code(), tonic::Code::FailedPrecondition, "{err:?}");
    assert_eq!(
        err.metadata()
            .get("banli-error-code")
            .and_then(|v| v.to_str().ok()),
        Some("stale_version")
    );
    svc.acknowledge_notice(with_key(
        pb::AcknowledgeNoticeRequest {
            notice_id: n.id.clone(),
            expected_version: 1,
            idempotency_key: String::new(),
        },
        &lead,
    ))
    .await
    .expect("acknowledged");
    let answered = svc
        .answer_notice(with_key(
            pb::AnswerNoticeRequest {
                notice_id: n.id.clone(),
                response: "Replying on the 15th.".into(),
                expected_version: 0,
                idempotency_key: String::new(),
            },
            &lead,
        ))
        .await
        .expect("answered")
        .into_inner();
    assert_eq!(
        (answered.state.as_str(), answered.answered_late),
        ("answered", false)
    );
    let listed = svc
        .list_notices(with_key(
            pb::ListNoticesRequest {
                agency_id: w.lead.clone(),
                state: "answered".into(),
                limit: 0,
            },
            &lead,
        ))
        .await
        .expect("listed")
        .into_inner();
    assert_eq!(listed.notices.len(), 1);
    let err = svc
        .get_notice(with_key(
            pb::GetNoticeRequest {
                notice_id: n.id.clone(),
            },
            &other,
        ))
        .await
        .expect_err("not a party");
    assert!(
        matches!(
            err.code(),
            tonic::Code::NotFound | tonic::Code::PermissionDenied
        ),
        "{err:?}"
    );

    let m = svc
        .get_metrics(with_key(
            pb::GetMetricsRequest {
                agency_id: w.lead.clone(),
                ..Default::default()
            },
            &office,
        ))
        .await
        .expect("metrics")
        .into_inner();
    assert_eq!((m.lead, m.co, m.as_of.as_str()), (1, 0, "2020-03-02"));
    let reply = &m.rates["reply_rate"];
    assert_eq!(
        (reply.numerator, reply.denominator, reply.value),
        (0, 1, Some(0.0))
    );
    assert_eq!(
        m.rates["satisfaction_rate_broad"].value, None,
        "no feedback, no value"
    );
    for (req, code) in [
        (
            pb::GetMetricsRequest {
                as_of: "2099-01-01".into(),
                ..Default::default()
            },
            tonic::Code::InvalidArgument,
        ),
        (
            pb::GetMetricsRequest {
                as_of: "yesterday".into(),
                ..Default::default()
            },
            tonic::Code::InvalidArgument,
        ),
        (
            pb::GetMetricsRequest {
                agency_id: AgencyId::new().to_string(),
                ..Default::default()
            },
            tonic::Code::NotFound,
        ),
    ] {
        let err = svc
            .get_metrics(with_key(req, &office))
            .await
            .expect_err("refused");
        assert_eq!(err.code(), code, "{err:?}");
    }
    let ledger = svc
        .get_ledger(with_key(
            pb::GetLedgerRequest {
                agency_id: w.lead.clone(),
                ..Default::default()
            },
            &lead,
        ))
        .await
        .expect("ledger")
        .into_inner();
    assert!(ledger.items.is_empty(), "nothing replied as B yet");
    let report = svc
        .get_annual_report(with_key(
            pb::GetAnnualReportRequest {
                agency_id: w.lead.clone(),
                year: 2020,
            },
            &lead,
        ))
        .await
        .expect("report")
        .into_inner();
    assert!(
        report.markdown.contains("2020年共承办建议 **1** 件"),
        "{}",
        report.markdown
    );
    assert!(report.json.contains("\"year\":2020"));

    // The profile's default plan: three stages, two rounds each.
    let plan = svc
        .set_stage_plan(with_key(
            pb::SetStagePlanRequest {
                agency_id: w.lead.clone(),
                year: 2020,
                ..Default::default()
            },
            &office,
        ))
        .await
        .expect("planned")
        .into_inner();
    assert_eq!(plan.stages.len(), 3);
    assert!(plan.stages.iter().all(|s| s.supervision_rounds.len() == 2));
    assert_eq!((plan.version, plan.starts_on.as_str()), (1, "2020-03-01"));
    let err = svc
        .set_stage_plan(with_key(
            pb::SetStagePlanRequest {
                agency_id: w.lead.clone(),
                year: 2020,
                ..Default::default()
            },
            &office,
        ))
        .await
        .expect_err("a plan exists");
    assert_eq!(err.code(), tonic::Code::Aborted, "{err:?}");
    let got = svc
        .get_stage_plan(with_key(
            pb::GetStagePlanRequest {
                agency_id: w.lead.clone(),
                year: 2020,
            },
            &lead,
        ))
        .await
        .expect("read")
        .into_inner();
    assert_eq!(got, plan);
    let circular = svc
        .get_stage_circular(with_key(
            pb::GetStageCircularRequest {
                agency_id: w.lead.clone(),
                year: 2020,
                stage: 1,
            },
            &lead,
        ))
        .await
        .expect("circular")
        .into_inner();
    assert!(
        circular.markdown.contains("（第1阶段：stage 1）"),
        "{}",
        circular.markdown
    );
    assert!(circular.json.contains("\"stage\":1"));
}

/// Stage plans: set by the office (another agency's key refused, a bad plan a 422), replaced
/// only with If-Match; the circular shows the items short of a stage's targets; each
/// supervision round's timer issues a notice (trigger `stage`) on those items, once.
#[tokio::test]
async fn stage_plans_circulars_and_rounds() {
    let Followed {
        w,
        _db,
        store,
        profile,
        ..
    } = followed(false).await;
    let (api, _) = banli_followup::http::api(banli_followup::app::AppState {
        store: store.clone(),
        auth: test_auth(),
        profile: profile.clone(),
        clock: Clock::Fixed(date!(2020 - 04 - 01)),
        names: None,
    });
    let office = format!("office:{}", w.office_agency.id);
    let (lead, other) = (format!("agency:{}", w.lead), format!("agency:{}", w.second));
    let plan = |round1: &str| {
        json!({"agency_id": w.lead, "year": 2020, "starts_on": "2020-03-01", "stages": [
            {"name": "办前沟通", "ends_on": "2020-03-31", "targets": ["all_signed_for", "all_communicated"], "supervision_rounds": [round1]},
            {"name": "答复", "ends_on": "2020-06-30", "targets": ["all_replied"], "supervision_rounds": ["2020-06-01"]},
        ]})
    };
    let (status, v) = post(
        &api,
        "/v1/followup/stage-plans",
        &other,
        plan("2020-03-20"),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
    let (status, v) = post(
        &api,
        "/v1/followup/stage-plans",
        &office,
        plan("2020-04-20"),
        &[],
    )
    .await;
    assert_eq!(
        status,
        StatusCode::UNPROCESSABLE_ENTITY,
        "a round outside its stage: {v}"
    );
    assert!(
        v["detail"]
            .as_str()
            .is_some_and(|d| d.contains("2020-04-20")),
        "{v}"
    );
    let (status, v) = post(
        &api,
        "/v1/followup/stage-plans",
        &office,
        plan("2020-03-20"),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(v["version"], 1);
    let (status, v) = post(
        &api,
        "/v1/followup/stage-plans",
        &office,
        plan("2020-03-20"),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "a plan exists: {v}");
    let (status, _) = post(
        &api,
        "/v1/followup/stage-plans",
        &lead,
        plan("2020-03-20"),
        &[("if-match", "\"7\"")],
    )
    .await;
    assert_eq!(status, StatusCode::PRECONDITION_FAILED);
    // The agency's own office may replace it (for its divisions), with the current version.
    let (status, v) = post(
        &api,
        "/v1/followup/stage-plans",
        &lead,
        plan("2020-03-20"),
        &[("if-match", "\"1\"")],
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(v["version"], 2);
    let (status, v) = call(
        &api,
        "GET",
        &format!("/v1/followup/stage-plans?agency_id={}&year=2020", w.lead),
        &lead,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["stages"].as_array().map(Vec::len), Some(2), "{v}");
    let (status, _) = call(
        &api,
        "GET",
        &format!("/v1/followup/stage-plans?agency_id={}&year=2020", w.lead),
        &other,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = call(
        &api,
        "GET",
        &format!("/v1/followup/stage-plans?agency_id={}&year=2019", w.lead),
        &office,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Stage 1 is over (today is 1 April): the item was neither signed for nor communicated.
    let (status, c) = call(
        &api,
        "GET",
        &format!(
            "/v1/followup/stage-plans/circular?agency_id={}&year=2020&stage=1",
            w.lead
        ),
        &office,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{c}");
    assert_eq!(c["as_of"], "2020-03-31", "{c}");
    for t in c["targets"].as_array().expect("targets") {
        assert_eq!(
            (t["done"].as_u64(), t["total"].as_u64()),
            (Some(0), Some(1)),
            "{t}"
        );
        assert_eq!(t["lagging"][0], w.id.as_str(), "{t}");
    }
    let (status, _) = call(
        &api,
        "GET",
        &format!(
            "/v1/followup/stage-plans/circular?agency_id={}&year=2020&stage=3",
            w.lead
        ),
        &office,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "the plan has two stages");

    // The rounds' timers (their days are past): one notice per round on the item short.
    let runner = tokio::spawn(banli_timers::run(
        store.db().clone(),
        store.timers().clone(),
        RunOptions {
            owner: "r".into(),
            batch: 64,
            lease: Duration::from_secs(5),
            idle: Duration::from_millis(50),
        },
        AlertFirer::new(store.clone()),
        Arc::new(TimerStats::default()),
        std::future::pending(),
    ));
    let mut stage_notices = Vec::new();
    for _ in 0..1000 {
        let (_, v) = call(
            &api,
            "GET",
            &format!("/v1/followup/notices?agency_id={}&limit=500", w.lead),
            &office,
            None,
        )
        .await;
        stage_notices = v["items"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter(|n| n["trigger"] == "stage")
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        if stage_notices.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    runner.abort();
    assert_eq!(stage_notices.len(), 2, "{stage_notices:?}");
    for n in &stage_notices {
        assert_eq!(n["suggestions"][0], w.id.as_str(), "{n}");
        assert_eq!(n["target"], w.lead.as_str(), "{n}");
        // The office issued the plan; the agency's replacement (the same plan) kept it the
        // office's, so the rounds' notices come from the office.
        assert_eq!(
            n["issuer"],
            json!(w.office_agency.id),
            "the plan's issuer: {n}"
        );
    }
    let bodies: Vec<&str> = stage_notices
        .iter()
        .filter_map(|n| n["body"].as_str())
        .collect();
    assert!(bodies.iter().any(|b| b.contains("第1阶段")), "{bodies:?}");
    assert!(bodies.iter().any(|b| b.contains("第2阶段")), "{bodies:?}");
    // The plan is the office's: the agency cannot remove a round, drop a target or postpone
    // a stage of it (403, saying what it would lose)…
    let weaker = [
        json!({"agency_id": w.lead, "year": 2020, "starts_on": "2020-03-01", "stages": [
            {"name": "办前沟通", "ends_on": "2020-03-31", "targets": ["all_signed_for"], "supervision_rounds": ["2020-03-20"]},
            {"name": "答复", "ends_on": "2020-06-30", "targets": ["all_replied"], "supervision_rounds": ["2020-06-01"]},
        ]}),
        json!({"agency_id": w.lead, "year": 2020, "starts_on": "2020-03-01", "stages": [
            {"name": "办前沟通", "ends_on": "2020-03-31", "targets": ["all_signed_for", "all_communicated"], "supervision_rounds": ["2020-03-20"]},
            {"name": "答复", "ends_on": "2020-07-31", "targets": ["all_replied"], "supervision_rounds": ["2020-06-01"]},
        ]}),
    ];
    for plan in weaker {
        let (status, v) = post(
            &api,
            "/v1/followup/stage-plans",
            &lead,
            plan,
            &[("if-match", "\"2\"")],
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
        assert!(
            v["detail"]
                .as_str()
                .is_some_and(|d| d.contains("assigning office issued")),
            "{v}"
        );
    }
    // …but may add its own round and target; the plan stays the office's.
    let (status, v) = post(
        &api,
        "/v1/followup/stage-plans",
        &lead,
        json!({"agency_id": w.lead, "year": 2020, "starts_on": "2020-03-01", "stages": [
            {"name": "办前沟通", "ends_on": "2020-03-31", "targets": ["all_signed_for", "all_communicated"], "supervision_rounds": ["2020-03-10", "2020-03-20"]},
            {"name": "答复", "ends_on": "2020-06-30", "targets": ["all_replied", "all_feedback_in"], "supervision_rounds": ["2020-06-01"]},
        ]}),
        &[("if-match", "\"2\"")],
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(v["version"], 3);
    assert_eq!(
        v["issuer_agency_id"],
        json!(w.office_agency.id),
        "the rounds' notices still come from the office: {v}"
    );
}

/// A commitment still open the day after its target date raises one notice (trigger overdue)
/// to its owner in the office's name; a converted one has no timer and raises nothing.
#[tokio::test]
async fn overdue_commitments_raise_notices() {
    use banli_domain::suggestion::{Commitment, CommitmentState, Suggestion};

    let Followed {
        w,
        _db,
        store,
        profile,
        ..
    } = followed(false).await;
    let mut s: Suggestion = store
        .replicas(None)
        .await
        .expect("replicas")
        .pop()
        .expect("the replica");
    let lead = s.assignments[0].clone();
    let commitment = |measure: &str, state| Commitment {
        id: banli_domain::ids::CommitmentId::new(),
        assignment_id: lead.id,
        measure: measure.into(),
        owner: lead.agency,
        division: None,
        target_date: date!(2020 - 06 - 30),
        state,
        progress: vec![],
        evidence: String::new(),
        converted_on: None,
        created_on: date!(2020 - 05 - 20),
    };
    let (open, done) = (
        commitment("open the fund", CommitmentState::Open),
        commitment("publish the rules", CommitmentState::Converted),
    );
    s.commitments = vec![open.clone(), done.clone()];
    let banli_db::Pool::Sqlite(p) = store.pool() else {
        panic!("SQLite")
    };
    let mut tx = p.begin().await.expect("tx");
    banli_followup::store::sqlite::save(
        &mut tx,
        store.timers(),
        &s.id.to_string(),
        s.version,
        &serde_json::to_string(&s).expect("json"),
        &[],
        &[],
        banli_followup::store::Changed::ALL,
        &profile.reminders,
        time::OffsetDateTime::now_utc(),
    )
    .await
    .expect("save");
    banli_followup::store::sqlite::sync_commitments(&mut tx, store.timers(), &s)
        .await
        .expect("timers");
    tx.commit().await.expect("commit");
    let timer = |id| {
        let store = store.clone();
        async move {
            store
                .timers()
                .get(store.pool(), &banli_followup::store::commitment_key(id))
                .await
                .expect("read")
        }
    };
    assert!(timer(open.id).await.is_some_and(|t| t.state == "pending"));
    assert!(
        timer(done.id).await.is_none(),
        "a converted commitment has no timer"
    );

    let runner = tokio::spawn(banli_timers::run(
        store.db().clone(),
        store.timers().clone(),
        RunOptions {
            owner: "r".into(),
            batch: 64,
            lease: Duration::from_secs(5),
            idle: Duration::from_millis(50),
        },
        AlertFirer::new(store.clone()).with_office(w.office_agency.id),
        Arc::new(TimerStats::default()),
        std::future::pending(),
    ));
    for _ in 0..1000 {
        if timer(open.id).await.is_some_and(|t| t.state != "pending") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    runner.abort();
    let raised: Vec<banli_domain::supervision::SupervisionNotice> = store
        .notices(None, None, 500)
        .await
        .expect("notices")
        .into_iter()
        .map(|(n, _)| serde_json::from_str(&n).expect("a notice"))
        .filter(|n: &banli_domain::supervision::SupervisionNotice| {
            n.trigger == banli_domain::supervision::Trigger::Overdue
        })
        .collect();
    // Once (unanswered, it then climbs the ladder by escalation, as any notice does).
    assert_eq!(raised.len(), 1, "{raised:?}");
    let n = &raised[0];
    assert_eq!(n.trigger, banli_domain::supervision::Trigger::Overdue);
    assert_eq!((n.target, n.issuer), (lead.agency, w.office_agency.id));
    assert!(
        n.body.contains("open the fund") && n.body.contains("2020-06-30"),
        "{}",
        n.body
    );
    assert_eq!(n.suggestions, vec![s.id]);
    assert_eq!(
        n.issued_on,
        date!(2020 - 07 - 01),
        "the day after the target"
    );
}

/// A dissatisfied rating raises a notice (trigger dissatisfied) to the live responsible unit in
/// the office's name, in the event's transaction; a redelivered event raises nothing more, and
/// a satisfied rating raises nothing.
#[tokio::test]
async fn a_dissatisfied_rating_raises_a_notice() {
    use banli_domain::suggestion::{Feedback, FeedbackRecorded, Satisfaction, SuggestionEvent};

    let Followed {
        w,
        _db,
        store,
        consumer,
        ..
    } = followed(true).await;
    let consumer = consumer.with_office(w.office_agency.id);
    let s = store
        .replicas(None)
        .await
        .expect("replicas")
        .pop()
        .expect("the replica");
    let rating = |version: u64, level: Satisfaction| {
        let event = SuggestionEvent::FeedbackRecorded(FeedbackRecorded {
            feedback: Feedback {
                deputy: s.details.lead_deputy,
                level,
                handling: None,
                result: None,
                comment: "the fund is still closed".into(),
                round: 0,
                on: date!(2020 - 06 - 10),
            },
        });
        let event_id = uuid::Uuid::now_v7();
        let wire = json!({
            "event_id": event_id,
            "schema_version": 1,
            "event_type": "suggestion.feedback_recorded",
            "aggregate_id": s.id.to_string(),
            "aggregate_version": version,
            "actor": {"role": "deputy", "agency": null, "deputy": s.details.lead_deputy},
            "payload": serde_json::to_value(&event).expect("payload"),
        });
        Incoming {
            envelope: Envelope {
                event_id,
                event_type: "suggestion.feedback_recorded".into(),
                aggregate_id: s.id.to_string(),
                aggregate_version: version,
                payload: wire.to_string().into_bytes(),
            },
            attempt: 1,
        }
    };
    let bad = rating(s.version + 1, Satisfaction::Dissatisfied);
    assert_eq!(
        consumer
            .handle(std::slice::from_ref(&bad))
            .await
            .expect("handled"),
        vec![Handled::Applied]
    );
    assert_eq!(
        consumer.handle(&[bad]).await.expect("handled"),
        vec![Handled::Duplicate]
    );
    consumer
        .handle(&[rating(s.version + 2, Satisfaction::Satisfied)])
        .await
        .expect("handled");
    let raised: Vec<banli_domain::supervision::SupervisionNotice> = store
        .notices(None, None, 500)
        .await
        .expect("notices")
        .into_iter()
        .map(|(n, _)| serde_json::from_str(&n).expect("a notice"))
        .collect();
    assert_eq!(raised.len(), 1, "the lead only, once: {raised:?}");
    let n = &raised[0];
    assert_eq!(n.trigger, banli_domain::supervision::Trigger::Dissatisfied);
    assert_eq!(
        n.target.to_string(),
        w.lead,
        "the responsible unit, not the co-handler"
    );
    assert_eq!(n.issuer, w.office_agency.id);
    assert_eq!(n.suggestions, vec![s.id]);
    assert!(n.body.contains("the fund is still closed"), "{}", n.body);
    assert_eq!(n.issued_on, date!(2020 - 06 - 10));
}

/// Overdue and due-soon lists per division: a deadline carries its assignment's division once
/// the assignment is dispatched; another division's list does not show it.
#[tokio::test]
async fn lists_per_division() {
    use banli_domain::suggestion::{Dispatch, Suggestion};

    let Followed {
        w,
        _db,
        store,
        profile,
        ..
    } = followed(true).await;
    let mut s: Suggestion = store
        .replicas(None)
        .await
        .expect("replicas")
        .pop()
        .expect("the replica");
    let division = banli_domain::ids::DivisionId::new();
    let lead = s
        .assignments
        .iter_mut()
        .find(|a| a.agency.to_string() == w.lead)
        .expect("the lead");
    lead.dispatch = Some(Dispatch {
        division,
        handler: "Li".into(),
        responsible_leader: "Wang".into(),
        leading_official: None,
        plan: String::new(),
        on: date!(2020 - 03 - 03),
    });
    let banli_db::Pool::Sqlite(p) = store.pool() else {
        panic!("SQLite")
    };
    let mut tx = p.begin().await.expect("tx");
    banli_followup::store::sqlite::save_fact_rows_many(&mut tx, &[&s])
        .await
        .expect("rows");
    tx.commit().await.expect("commit");

    let (api, _) = banli_followup::http::api(banli_followup::app::AppState {
        store: store.clone(),
        auth: test_auth(),
        profile: profile.clone(),
        clock: Clock::Fixed(date!(2020 - 12 - 01)),
        names: None,
    });
    let lead_key = format!("agency:{}", w.lead);
    let (status, v) = call(
        &api,
        "GET",
        &format!(
            "/v1/followup/overdue?agency_id={}&division_id={division}",
            w.lead
        ),
        &lead_key,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let items = v["items"].as_array().expect("items");
    let kinds: Vec<&str> = items.iter().filter_map(|i| i["kind"].as_str()).collect();
    assert!(
        kinds.contains(&"reply") && kinds.contains(&"first_contact"),
        "{v}"
    );
    assert!(
        items
            .iter()
            .all(|i| i["division_id"] == division.to_string().as_str()),
        "{v}"
    );
    let (status, v) = call(
        &api,
        "GET",
        &format!(
            "/v1/followup/overdue?agency_id={}&division_id={}",
            w.lead,
            banli_domain::ids::DivisionId::new()
        ),
        &lead_key,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["items"].as_array().map(Vec::len), Some(0), "{v}");
    // Without the division: the co-handler's opinion deadline (no division) is in the office's
    // list too.
    let (_, v) = call(
        &api,
        "GET",
        "/v1/followup/overdue",
        &format!("office:{}", w.office_agency.id),
        None,
    )
    .await;
    assert!(
        v["items"].as_array().is_some_and(|i| i
            .iter()
            .any(|x| x["kind"] == "co_opinion" && x["division_id"].is_null())),
        "{v}"
    );
    let (status, v) = call(
        &api,
        "GET",
        &format!(
            "/v1/followup/due-soon?agency_id={}&division_id=not-a-uuid",
            w.lead
        ),
        &lead_key,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
}

/// The owner of an open commitment owes the deputy word of its progress every three months
/// (the profile): a reminder is scheduled from the commitment's creation, moved by a progress
/// report, and goes out once when it falls due.
#[tokio::test]
async fn progress_word_on_open_commitments() {
    use banli_domain::suggestion::{Commitment, CommitmentState, ProgressReport, Suggestion};

    let Followed {
        w,
        _db,
        store,
        profile,
        ..
    } = followed(false).await;
    assert_eq!(profile.reminders.progress_notice_months, 3);
    let mut s: Suggestion = store
        .replicas(None)
        .await
        .expect("replicas")
        .pop()
        .expect("the replica");
    let lead = s.assignments[0].clone();
    let commitment = Commitment {
        id: banli_domain::ids::CommitmentId::new(),
        assignment_id: lead.id,
        measure: "open the fund".into(),
        owner: lead.agency,
        division: None,
        target_date: date!(2021 - 12 - 31),
        state: CommitmentState::Open,
        progress: vec![],
        evidence: String::new(),
        converted_on: None,
        created_on: date!(2020 - 05 - 20),
    };
    let before = s.clone();
    s.commitments = vec![commitment.clone()];
    let sync = |before: Suggestion, after: Suggestion| {
        let (store, r) = (store.clone(), profile.reminders.clone());
        async move {
            let banli_db::Pool::Sqlite(p) = store.pool() else {
                panic!("SQLite")
            };
            let mut tx = p.begin().await.expect("tx");
            banli_followup::store::sqlite::sync_progress(
                &mut tx,
                store.timers(),
                Some(&before),
                &after,
                &r,
            )
            .await
            .expect("sync");
            tx.commit().await.expect("commit");
        }
    };
    sync(before, s.clone()).await;
    let key = |due: &str| format!("progress:{}:{due}", commitment.id);
    let state = |k: String| {
        let store = store.clone();
        async move {
            store
                .timers()
                .get(store.pool(), &k)
                .await
                .expect("read")
                .map(|t| t.state)
        }
    };
    assert_eq!(state(key("2020-08-20")).await.as_deref(), Some("pending"));
    // A progress report on 10 August: the next word is due three months after it.
    let mut reported = s.clone();
    reported.commitments[0].progress.push(ProgressReport {
        note: "the fund's rules are drafted".into(),
        on: date!(2020 - 08 - 10),
    });
    sync(s.clone(), reported.clone()).await;
    assert_eq!(state(key("2020-08-20")).await.as_deref(), Some("cancelled"));
    assert_eq!(state(key("2020-11-10")).await.as_deref(), Some("pending"));

    let runner = tokio::spawn(banli_timers::run(
        store.db().clone(),
        store.timers().clone(),
        RunOptions {
            owner: "r".into(),
            batch: 64,
            lease: Duration::from_secs(5),
            idle: Duration::from_millis(20),
        },
        AlertFirer::new(store.clone()),
        Arc::new(TimerStats::default()),
        std::future::pending(),
    ));
    for _ in 0..1000 {
        if state(key("2020-11-10")).await.as_deref() != Some("pending") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    runner.abort();
    let sent: Vec<_> = store
        .alerts(None, 500, false)
        .await
        .expect("alerts")
        .into_iter()
        .filter(|a| a.kind == "progress_notice")
        .collect();
    assert_eq!(sent.len(), 1, "{sent:?}");
    assert_eq!(
        (
            sent[0].due,
            sent[0].agency_id.as_str(),
            sent[0].level.as_str()
        ),
        (date!(2020 - 11 - 10), w.lead.as_str(), "reminder")
    );
    // Converted: nothing more is owed, nothing new is scheduled.
    let pending = store.timers().pending(store.pool()).await.expect("count");
    let mut done = reported.clone();
    done.commitments[0].state = CommitmentState::Converted;
    done.commitments[0].progress.push(ProgressReport {
        note: "the fund is open".into(),
        on: date!(2020 - 12 - 01),
    });
    sync(reported, done).await;
    assert_eq!(
        store.timers().pending(store.pool()).await.expect("count"),
        pending
    );
    assert_eq!(
        state(key("2021-03-01")).await,
        None,
        "no reminder after conversion"
    );
}

/// Newer calendar data loaded into the suggestions service moves a tracked deadline: the
/// follow-up service keeps the new date and the old one, and its alerts follow the new date.
#[tokio::test]
async fn newer_calendar_data_moves_tracked_deadlines() {
    let f = followed(false).await;
    let lead = f.w.assigned["assignments"]
        .as_array()
        .expect("assignments")
        .iter()
        .find(|a| a["agency_id"] == f.w.lead.as_str())
        .expect("lead")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let (due, ..) = f
        .store
        .deadline(&lead, "first_contact")
        .await
        .expect("read")
        .expect("tracked");
    assert_eq!(due, date!(2020 - 03 - 23));

    // 5 and 6 March 2020 become days off: 15 working days from 2 March end on the 25th.
    let text = include_str!("../../../crates/calendar/data/prc-holidays.toml")
        .replace(r#"version = "2026.1""#, r#"version = "2026.1-test""#)
        + "\n[[period]]\nname = \"Test closure\"\nname_zh = \"测试\"\noff = [\"2020-03-05\", \"2020-03-06\"]\nmakeup = []\nsource = \"notice-2020\"\n";
    let cal = Calendar::from_toml_str("corrected.toml", &text).unwrap_or_else(|e| panic!("{e}"));
    let app = App::new(
        f.w.store.clone(),
        RuleProfile::hunan(),
        cal,
        Clock::Fixed(date!(2020 - 03 - 03)),
    );
    let r = app
        .recompute_all(&banli_domain::Actor::assigning_office(f.w.office_agency.id))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.suggestions_moved, 1);
    let out = f
        .consumer
        .handle(&events(&f.w.store).await)
        .await
        .expect("handled");
    assert!(out.contains(&Handled::Applied), "{out:?}");
    let (due, previous, met) = f
        .store
        .deadline(&lead, "first_contact")
        .await
        .expect("read")
        .expect("tracked");
    assert_eq!(
        (due, previous, met),
        (date!(2020 - 03 - 25), Some(date!(2020 - 03 - 23)), false)
    );
    let timer = |key: String| {
        let store = f.store.clone();
        async move {
            store
                .timers()
                .get(store.pool(), &key)
                .await
                .expect("read")
                .map(|t| t.state)
        }
    };
    assert_eq!(
        timer(format!("{lead}:first_contact:2020-03-25:after-1")).await,
        Some("pending".to_owned())
    );
    assert_eq!(
        timer(format!("{lead}:first_contact:2020-03-23:after-1")).await,
        Some("cancelled".to_owned())
    );
}

/// The morning after each stage ends, the agency's rates are checked against the profile's
/// targets: rates over every assignment only at the last stage's end, none over fewer items
/// than the profile's minimum; those under target raise one notice naming the items.
#[tokio::test]
async fn rates_under_target_at_a_stage_end_raise_a_notice() {
    use banli_domain::profile::MetricRules;

    let Followed {
        w,
        _db,
        store,
        profile,
        ..
    } = followed(false).await;
    let lead: AgencyId = AgencyId(w.lead.parse().expect("uuid"));
    let items = store.replicas(None).await.expect("replicas");
    let targets = profile.metrics.targets.clone();
    assert_eq!(targets.get("on_time_rate"), Some(&100), "{targets:?}");
    let check = |min: u64, last: bool| {
        banli_domain::targets::check(
            &items,
            lead,
            2020,
            date!(2020 - 06 - 30),
            &targets,
            min,
            last,
        )
        .shortfalls
        .iter()
        .map(|s| (s.rate, s.value.numerator, s.value.denominator))
        .collect::<Vec<_>>()
    };
    // One item: under the profile's minimum of 5, nothing is judged.
    assert_eq!(check(5, true), vec![]);
    // Mid-year, rates over every assignment wait; no feedback yet, satisfaction has nothing.
    assert_eq!(check(1, false), vec![]);
    assert_eq!(
        check(1, true),
        vec![("on_time_rate", 0, 1), ("communication_rate", 0, 1)]
    );

    let (api, _) = banli_followup::http::api(banli_followup::app::AppState {
        store: store.clone(),
        auth: test_auth(),
        profile: profile.clone(),
        clock: Clock::Fixed(date!(2020 - 04 - 01)),
        names: None,
    });
    let office = format!("office:{}", w.office_agency.id);
    let (status, v) = post(
        &api,
        "/v1/followup/stage-plans",
        &office,
        json!({"agency_id": w.lead, "year": 2020, "starts_on": "2020-03-01", "stages": [
            {"name": "办前沟通", "ends_on": "2020-03-31", "targets": ["all_communicated"], "supervision_rounds": ["2020-03-20"]},
            {"name": "答复", "ends_on": "2020-06-30", "targets": ["all_replied"], "supervision_rounds": ["2020-06-01"]},
        ]}),
        &[],
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    let rules = MetricRules {
        min_items_for_ranking: 1,
        targets: profile.metrics.targets.clone(),
    };
    let runner = tokio::spawn(banli_timers::run(
        store.db().clone(),
        store.timers().clone(),
        RunOptions {
            owner: "r".into(),
            batch: 64,
            lease: Duration::from_secs(5),
            idle: Duration::from_millis(50),
        },
        AlertFirer::new(store.clone()).with_targets(rules),
        Arc::new(TimerStats::default()),
        std::future::pending(),
    ));
    // Every timer of the plan (two rounds, two stage ends) has fired once all four are done.
    let mut done = false;
    for _ in 0..1000 {
        let mut states = Vec::new();
        let plan = call(
            &api,
            "GET",
            &format!("/v1/followup/stage-plans?agency_id={}&year=2020", w.lead),
            &office,
            None,
        )
        .await
        .1;
        let id = plan["id"].as_str().unwrap_or_default().to_owned();
        for key in [
            format!("stage:{id}:1:1"),
            format!("stage:{id}:2:1"),
            format!("stage-end:{id}:1"),
            format!("stage-end:{id}:2"),
        ] {
            states.push(
                store
                    .timers()
                    .get(store.pool(), &key)
                    .await
                    .expect("read")
                    .map(|t| t.state),
            );
        }
        if states.iter().all(|s| s.as_deref() == Some("fired")) {
            done = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    runner.abort();
    assert!(done, "the plan's timers fired");
    let (_, v) = call(
        &api,
        "GET",
        &format!("/v1/followup/notices?agency_id={}&limit=500", w.lead),
        &office,
        None,
    )
    .await;
    let below: Vec<&Value> = v["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter(|n| n["trigger"] == "metric_below_target")
        .collect();
    // Stage 1's end judges nothing (satisfaction has no feedback yet); stage 2's is the last.
    assert_eq!(below.len(), 1, "{v}");
    let n = below[0];
    assert_eq!(n["suggestions"], json!([w.id]), "{n}");
    assert_eq!(n["target"], w.lead.as_str(), "{n}");
    assert_eq!(n["level"], "notice", "{n}");
    let body = n["body"].as_str().unwrap_or_default();
    assert!(
        body.contains("截至2020-06-30")
            && body.contains("按期办复率 on-time rate 0.0%（0/1，目标100%）")
            && body.contains("沟通率 communication rate 0.0%（0/1，目标100%）")
            && !body.contains("满意率"),
        "{body}"
    );
}
