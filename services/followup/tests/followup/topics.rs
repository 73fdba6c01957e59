//! Topics (共性问题): the office links items of any agency, a unit only its own; an item the
//! caller cannot see is a 404; the topic shows each item with its commitments and counts, and
//! scopes the metrics.

use crate::support::*;

#[tokio::test]
async fn topics_link_items_and_scope_the_metrics() {
    use banli_domain::suggestion::{Commitment, CommitmentState, Suggestion};

    let Followed {
        w,
        _db,
        store,
        profile,
        ..
    } = followed(false).await;
    // The item (led by `lead`) carries a commitment fulfilled in time.
    let mut s: Suggestion = store
        .replicas(None)
        .await
        .expect("replicas")
        .pop()
        .expect("the replica");
    let lead = s.assignments[0].clone();
    s.commitments.push(Commitment {
        evidence_documents: Vec::new(),
        id: banli_domain::ids::CommitmentId::new(),
        assignment_id: lead.id,
        measure: "设立中小企业融资担保基金".into(),
        owner: lead.agency,
        division: None,
        target_date: date!(2020 - 06 - 30),
        state: CommitmentState::Converted,
        progress: vec![],
        evidence: "基金已设立".into(),
        converted_on: Some(date!(2020 - 06 - 15)),
        created_on: date!(2020 - 03 - 02),
        responsible: None,
        opinion_id: None,
    });
    store.import_facts(vec![s.clone()]).await.expect("facts");
    let banli_db::Pool::Sqlite(p) = store.pool() else {
        panic!("SQLite")
    };
    sqlx::query("UPDATE followup_cases SET replica = $1 WHERE suggestion_id = $2")
        .bind(serde_json::to_string(&s).expect("json"))
        .bind(s.id.to_string())
        .execute(p)
        .await
        .expect("replica");

    let (api, _) = banli_followup::http::api(banli_followup::app::AppState {
        documents: None,
        store: store.clone(),
        auth: test_auth(),
        profile: profile.clone(),
        clock: Clock::Fixed(date!(2020 - 12 - 01)),
        names: None,
    });
    let office = format!("office:{}", w.office_agency.id);
    let (lead_key, second_key) = (format!("agency:{}", w.lead), format!("agency:{}", w.second));
    // A topic of the office, and one of the second unit (which holds nothing on the item).
    let topic = ok(
        &api,
        "/v1/topics",
        &office,
        json!({"title": "中小企业融资难", "description": "2018–2020年代表反映的融资问题"}),
    )
    .await;
    let tid = topic["id"].as_str().expect("id").to_owned();
    let theirs = ok(
        &api,
        "/v1/topics",
        &second_key,
        json!({"title": "财政支持"}),
    )
    .await;
    let theirs_id = theirs["id"].as_str().expect("id").to_owned();
    let (status, v) = call(
        &api,
        "POST",
        "/v1/topics",
        &lead_key,
        Some(json!({"title": " "})),
    )
    .await;
    assert_eq!(status, 422, "{v}");
    let (status, v) = call(
        &api,
        "POST",
        "/v1/topics",
        "deputy:x",
        Some(json!({"title": "t"})),
    )
    .await;
    assert_eq!(status, 403, "{v}");
    let (status, v) = call(
        &api,
        "POST",
        "/v1/topics",
        &office,
        Some(json!({"title": "t", "owner_agency_id": uuid::Uuid::now_v7()})),
    )
    .await;
    assert_eq!(status, 422, "an owner that handles nothing here: {v}");
    // The second unit cannot link an item it holds no assignment on: 404, as for none.
    let (status, v) = call(
        &api,
        "POST",
        &format!("/v1/topics/{theirs_id}/items"),
        &second_key,
        Some(json!({"suggestion_id": w.id})),
    )
    .await;
    assert_eq!(
        (status.as_u16(), v["code"].as_str()),
        (404, Some("not_found")),
        "{v}"
    );
    // Nor touch the office's topic.
    let (status, v) = call(
        &api,
        "POST",
        &format!("/v1/topics/{tid}/items"),
        &second_key,
        Some(json!({"suggestion_id": w.id})),
    )
    .await;
    assert_eq!(status, 404, "{v}");
    let unknown = uuid::Uuid::now_v7();
    let (status, v) = call(
        &api,
        "POST",
        &format!("/v1/topics/{tid}/items"),
        &office,
        Some(json!({"suggestion_id": unknown})),
    )
    .await;
    assert_eq!(status, 404, "{v}");
    let linked = ok(
        &api,
        &format!("/v1/topics/{tid}/items"),
        &office,
        json!({"suggestion_id": w.id}),
    )
    .await;
    assert_eq!(linked["counts"]["items"], 1, "{linked}");
    assert_eq!(linked["counts"]["commitments_fulfilled"], 1, "{linked}");
    assert_eq!(
        linked["items"][0]["commitments"][0]["measure"],
        "设立中小企业融资担保基金"
    );
    assert_eq!(linked["items"][0]["agency_ids"][0], w.lead.as_str());
    // Linking twice changes nothing.
    let again = ok(
        &api,
        &format!("/v1/topics/{tid}/items"),
        &office,
        json!({"suggestion_id": w.id}),
    )
    .await;
    assert_eq!(again["version"], linked["version"]);
    // The lead's own topic may hold its item.
    let own = ok(
        &api,
        "/v1/topics",
        &lead_key,
        json!({"title": "本单位融资类建议"}),
    )
    .await;
    let own_id = own["id"].as_str().expect("id");
    ok(
        &api,
        &format!("/v1/topics/{own_id}/items"),
        &lead_key,
        json!({"suggestion_id": w.id}),
    )
    .await;
    // Who reads what: the office every topic, a unit its own.
    let (_, all) = call(&api, "GET", "/v1/topics", &office, None).await;
    assert_eq!(all["items"].as_array().map(Vec::len), Some(3), "{all}");
    let (_, mine) = call(&api, "GET", "/v1/topics", &lead_key, None).await;
    assert_eq!(mine["items"].as_array().map(Vec::len), Some(1), "{mine}");
    let (status, _) = call(&api, "GET", &format!("/v1/topics/{tid}"), &lead_key, None).await;
    assert_eq!(status, 404);
    // The metrics of the topic: its item's assignments only, with the implementation rate.
    let (status, m) = call(
        &api,
        "GET",
        &format!("/v1/metrics?topic_id={tid}"),
        &office,
        None,
    )
    .await;
    assert_eq!(status, 200, "{m}");
    assert_eq!(m["counts"]["lead"], 1, "{m}");
    assert_eq!(m["rates"]["implementation_rate"]["numerator"], 1, "{m}");
    assert_eq!(m["rates"]["implementation_rate"]["denominator"], 1, "{m}");
    let (status, m) = call(
        &api,
        "GET",
        &format!("/v1/metrics?topic_id={theirs_id}"),
        &office,
        None,
    )
    .await;
    assert_eq!(status, 200, "{m}");
    assert_eq!(m["counts"]["lead"], 0, "{m}");
    let (status, _) = call(
        &api,
        "GET",
        &format!("/v1/metrics?topic_id={tid}&agency_id={}", w.lead),
        &lead_key,
        None,
    )
    .await;
    assert_eq!(status, 404, "another's topic is not a scope of theirs");
    // Broken down by topic: the office every topic, the unit its own only.
    let (status, b) = call(&api, "GET", "/v1/metrics/breakdown?by=topic", &office, None).await;
    assert_eq!(status, 200, "{b}");
    let groups = b["items"].as_array().expect("items");
    assert_eq!(groups.len(), 3, "{b}");
    let of = |key: &str| {
        groups
            .iter()
            .find(|g| g["key"] == key)
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(of(&tid)["label"], "中小企业融资难", "{b}");
    assert_eq!(of(&tid)["counts"]["lead"], 1, "{b}");
    assert_eq!(
        of(&tid)["rates"]["implementation_rate"]["numerator"],
        1,
        "{b}"
    );
    assert_eq!(of(&theirs_id)["counts"]["lead"], 0, "{b}");
    let (status, b) = call(
        &api,
        "GET",
        "/v1/metrics/breakdown?by=topic",
        &lead_key,
        None,
    )
    .await;
    assert_eq!(status, 200, "{b}");
    assert_eq!(b["items"].as_array().map(Vec::len), Some(1), "{b}");
    assert_eq!(b["items"][0]["key"], own_id, "{b}");
    assert_eq!(b["agency_id"], w.lead.as_str(), "{b}");
    // By lead deputy: the item's; as CSV, a header and a line per group.
    let (status, b) = call(
        &api,
        "GET",
        "/v1/metrics/breakdown?by=deputy",
        &office,
        None,
    )
    .await;
    assert_eq!(status, 200, "{b}");
    assert_eq!(b["items"].as_array().map(Vec::len), Some(1), "{b}");
    assert_eq!(
        b["items"][0]["key"],
        s.details.lead_deputy.to_string(),
        "{b}"
    );
    assert_eq!(b["items"][0]["counts"]["lead"], 1, "{b}");
    let csv = raw(&api, "/v1/metrics/breakdown?by=topic&format=csv", &office).await;
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 1 + 3, "{csv}");
    assert!(
        lines[0].starts_with("key,label,lead,co,separate,sole,reply_rate_numerator,reply_rate_denominator,reply_rate,"),
        "{csv}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&format!("{tid},中小企业融资难,1,"))),
        "{csv}"
    );
    for bad in [
        "/v1/metrics/breakdown?by=colour",
        "/v1/metrics/breakdown",
        "/v1/metrics/breakdown?by=topic&format=xml",
    ] {
        let (status, v) = call(&api, "GET", bad, &office, None).await;
        assert_eq!(status, 400, "{bad}: {v}");
    }
    // The lead's annual report follows both topics that hold its item (延伸办理).
    let (status, r) = call(
        &api,
        "GET",
        &format!("/v1/reports/annual?agency_id={}&year=2020", w.lead),
        &office,
        None,
    )
    .await;
    assert_eq!(status, 200, "{r}");
    let systemic = r["systemic"].as_array().expect("systemic");
    assert_eq!(systemic.len(), 2, "{r}");
    assert!(
        systemic
            .iter()
            .any(|t| t["title"] == "中小企业融资难" && t["commitments_fulfilled"] == 1),
        "{r}"
    );
    // Unlinked: gone; unlinking again is a 404.
    let (status, after) = call(
        &api,
        "DELETE",
        &format!("/v1/topics/{tid}/items/{}", w.id),
        &office,
        None,
    )
    .await;
    assert_eq!(status, 200, "{after}");
    assert_eq!(after["counts"]["items"], 0, "{after}");
    let (status, _) = call(
        &api,
        "DELETE",
        &format!("/v1/topics/{tid}/items/{}", w.id),
        &office,
        None,
    )
    .await;
    assert_eq!(status, 404);
}
