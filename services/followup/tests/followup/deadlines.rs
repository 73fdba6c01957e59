//! Deadlines tracked from the suggestions service's events, their alerts fired once by two
//! replicas, the overdue tiers and due-soon lists; a deadline met or moved.

use crate::support::*;

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
        documents: None,
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
