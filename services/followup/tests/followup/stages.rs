//! Stage plans, circulars and supervision rounds; rates under target at a stage's end.

use crate::support::*;

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
        documents: None,
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
        documents: None,
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
