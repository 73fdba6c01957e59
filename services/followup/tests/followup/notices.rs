//! Supervision notices through REST: issued, seen by the parties only, acknowledged, answered,
//! escalated; and the notice a dissatisfied rating raises.

use crate::support::*;

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
        documents: None,
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
