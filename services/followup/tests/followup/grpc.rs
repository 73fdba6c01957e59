//! gRPC `banli.followup.v1`: the same rules and errors as REST.

use crate::support::*;

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
        documents: None,
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
                documents: Vec::new(),
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

/// Topics over gRPC: the same rules as REST (an item the caller cannot see is NOT_FOUND).
#[tokio::test]
async fn grpc_topics() {
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
        documents: None,
        store: store.clone(),
        auth: test_auth(),
        profile: profile.clone(),
        clock: Clock::Fixed(date!(2020 - 03 - 02)),
        names: None,
    });
    let office = format!("office:{}", w.office_agency.id);
    let other = format!("agency:{}", w.second);
    let t = svc
        .create_topic(with_key(
            pb::CreateTopicRequest {
                title: "中小企业融资难".into(),
                ..Default::default()
            },
            &office,
        ))
        .await
        .expect("created")
        .into_inner();
    let item = |key: &str, suggestion: &str| {
        with_key(
            pb::TopicItemRequest {
                topic_id: t.id.clone(),
                suggestion_id: suggestion.to_owned(),
            },
            key,
        )
    };
    let linked = svc
        .link_topic_item(item(&office, &w.id))
        .await
        .expect("linked")
        .into_inner();
    assert_eq!(linked.suggestion_ids, vec![w.id.clone()]);
    let view: serde_json::Value = serde_json::from_str(&linked.json).expect("json");
    assert_eq!(view["counts"]["items"], 1, "{view}");
    // The metrics broken down by topic, as over REST; an unknown breakdown is INVALID_ARGUMENT.
    let b = svc
        .get_metrics_breakdown(with_key(
            pb::GetMetricsBreakdownRequest {
                by: "topic".into(),
                ..Default::default()
            },
            &office,
        ))
        .await
        .expect("breakdown")
        .into_inner();
    assert_eq!(b.groups.len(), 1);
    assert_eq!(
        (b.groups[0].key.as_str(), b.groups[0].label.as_str()),
        (t.id.as_str(), "中小企业融资难")
    );
    let m = b.groups[0].metrics.as_ref().expect("metrics");
    assert_eq!(m.lead, 1);
    assert!(m.rates.contains_key("reply_rate"));
    let err = svc
        .get_metrics_breakdown(with_key(
            pb::GetMetricsBreakdownRequest {
                by: "colour".into(),
                ..Default::default()
            },
            &office,
        ))
        .await
        .expect_err("an unknown breakdown");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    let err = svc
        .link_topic_item(item(&office, &uuid::Uuid::now_v7().to_string()))
        .await
        .expect_err("unknown item");
    assert_eq!(err.code(), tonic::Code::NotFound);
    let err = svc
        .get_topic(with_key(pb::GetTopicRequest { id: t.id.clone() }, &other))
        .await
        .expect_err("another's topic");
    assert_eq!(err.code(), tonic::Code::NotFound);
    let unlinked = svc
        .unlink_topic_item(item(&office, &w.id))
        .await
        .expect("unlinked")
        .into_inner();
    assert!(unlinked.suggestion_ids.is_empty());
    let listed = svc
        .list_topics(with_key(pb::ListTopicsRequest {}, &office))
        .await
        .expect("listed")
        .into_inner();
    assert_eq!(listed.topics.len(), 1);
}
