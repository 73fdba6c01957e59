//! Co-handling with substance and implementation confirmed, over REST: a consultation among the
//! units, a co-handling opinion stating its measures (each the co-unit's commitment), the reply
//! resting on both, and the closure the co-unit's conversion leads to — confirmed by the
//! assigning office only, once, then rated by the deputies.

use serde_json::json;

use crate::support::{Api, World};

fn assert_problem(r: &crate::support::Response, status: u16, code: &str) {
    assert_eq!((r.status.as_u16(), r.code()), (status, code), "{}", r.body);
}

#[tokio::test]
async fn a_consultation_measures_and_the_offices_confirmation() {
    let w = World::new(Api::sqlite().await).await;
    let (k, api) = (&w.keys, &w.api);
    let (id, lead, co1, co2) = w.assigned("2020-0800").await;
    let s = api
        .get(&format!("/v1/suggestions/{id}"), &k.office)
        .await
        .body;
    assert_eq!(
        s["delegation"], "Changsha",
        "the lead deputy's, kept with the item: {s}"
    );
    w.sign_and_dispatch(&id, &lead, &k.lead_admin).await;
    w.sign_and_dispatch(&id, &co1, &k.co1_admin).await;

    // 会商: convened by the lead among the units of the item.
    let consult = format!("/v1/coordination/assignments/{lead}/consultations");
    let meeting = |agencies: Vec<&str>| json!({"agency_ids": agencies, "attendees": ["陈处长（主办）", "赵处长（会办）"], "subject": "中小企业融资", "minutes": "各单位明确职责范围内的措施。"});
    let r = api.post(&consult, &k.lead_admin, meeting(vec![])).await;
    assert_problem(&r, 422, "invalid_argument");
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("at least two units"),
        "{}",
        r.body
    );
    let r = api
        .post(&consult, &k.lead_admin, meeting(vec![&w.other]))
        .await;
    assert_problem(&r, 404, "not_found");
    let r = api
        .post(
            &format!("/v1/coordination/assignments/{co1}/consultations"),
            &k.co1_admin,
            meeting(vec![&w.lead]),
        )
        .await;
    assert_problem(&r, 403, "forbidden");
    let r = api
        .post(
            &consult,
            &k.lead_admin,
            json!({"agency_ids": [w.co1], "attendees": ["x"], "subject": "s", "minutes": "m", "on": "2020-03-03"}),
        )
        .await;
    assert_problem(&r, 422, "invalid_argument");
    let case = api
        .ok(&consult, &k.lead_admin, meeting(vec![&w.co1, &w.co2]))
        .await;
    let consultation = case["consultations"][0]["id"]
        .as_str()
        .expect("the consultation")
        .to_owned();
    assert_eq!(case["consultations"][0]["convened_by"], w.lead.as_str());
    assert_eq!(
        case["consultations"][0]["agency_ids"],
        json!([w.lead, w.co1, w.co2])
    );
    // A unit not at the meeting does not see it.
    let theirs = api
        .get(&format!("/v1/coordination/cases/{id}"), &k.other_admin)
        .await;
    assert_eq!(theirs.status.as_u16(), 404, "{}", theirs.body);

    // The co-handling opinion: measures within the co-unit's remit, or a 422 naming the measure.
    let opinions = format!("/v1/coordination/assignments/{co1}/opinions");
    let letter = |measures: serde_json::Value| json!({"document_number": "会办〔2020〕3号", "body": "我厅负责提供数据支持。", "signer": {"name": "Zhao", "position": "authorized_leader"}, "measures": measures, "consultation_ids": [consultation]});
    let r = api
        .post(
            &opinions,
            &k.co1_admin,
            letter(json!([{"measure": "设立担保基金", "responsible": "金融处", "agency_id": w.lead, "target_date": "2020-09-30"}])),
        )
        .await;
    assert_problem(&r, 422, "invalid_argument");
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("设立担保基金")
            && r.body["detail"]
                .as_str()
                .unwrap_or_default()
                .contains("outside the co-unit's assignment"),
        "{}",
        r.body
    );
    let r = api
        .post(
            &opinions,
            &k.co1_admin,
            letter(json!([{"measure": "开放信用数据接口", "responsible": "信用处", "target_date": "2020-03-01"}])),
        )
        .await;
    assert_problem(&r, 422, "invalid_argument");
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("开放信用数据接口"),
        "{}",
        r.body
    );
    let mut both = letter(
        json!([{"measure": "开放信用数据接口", "responsible": "信用处", "target_date": "2020-09-30"}]),
    );
    both["no_measure_reason"] = json!("不在职责范围");
    let r = api.post(&opinions, &k.co1_admin, both).await;
    assert_problem(&r, 422, "invalid_argument");
    let mut unknown = letter(json!([]));
    unknown["consultation_ids"] = json!([uuid::Uuid::now_v7()]);
    unknown["no_measure_reason"] = json!("不在职责范围");
    let r = api.post(&opinions, &k.co1_admin, unknown).await;
    assert_problem(&r, 404, "not_found");
    let case = api
        .ok(
            &opinions,
            &k.co1_admin,
            letter(json!([{"measure": "开放信用数据接口", "responsible": "信用处", "target_date": "2020-09-30"}])),
        )
        .await;
    let o = &case["opinions"][0];
    assert_eq!(o["flagged"], false, "{o}");
    assert_eq!(o["consultation_ids"], json!([consultation]));
    assert_eq!(o["measures"][0]["agency_id"], w.co1.as_str());
    let commitment = o["measures"][0]["id"].as_str().expect("id").to_owned();
    let opinion = o["id"].as_str().expect("id").to_owned();
    // The measure is the co-unit's commitment on the suggestion.
    let s = api
        .eventually(&format!("/v1/suggestions/{id}"), &k.office, |s| {
            s["commitments"].as_array().is_some_and(|c| !c.is_empty())
        })
        .await;
    assert_eq!(s["commitments"][0]["id"], commitment.as_str(), "{s}");
    assert_eq!(
        s["commitments"][0]["owner_agency_id"],
        w.co1.as_str(),
        "{s}"
    );

    // The lead replies on the opinion and the consultation; the deputies are satisfied; the
    // co-unit's open commitment keeps the item in follow-up.
    api.ok(
        &format!("/v1/coordination/opinions/{opinion}/acknowledge"),
        &k.lead_admin,
        json!({}),
    )
    .await;
    api.ok(
        &format!("/v1/coordination/assignments/{co2}/waiver"),
        &k.office,
        json!({"reason": "n/a"}),
    )
    .await;
    api.eventually(&format!("/v1/suggestions/{id}"), &k.office, |s| {
        s["assignments"].as_array().is_some_and(|a| {
            a.iter()
                .filter(|x| x["role"] == "co")
                .all(|x| x["state"] == "done")
        })
    })
    .await;
    api.ok(&format!("/v1/suggestions/{id}/communications"), &k.lead_admin, json!({"assignment_id": lead, "phase": "during", "method": "visit", "face_to_face": true, "deputy_ids": [w.deputy], "summary": "visit"})).await;
    let reply = |consultations: Vec<String>| json!({"assignment_id": lead, "document_number": "答复1号", "body": "已会商落实。", "class": "A", "signer": {"name": "Chen", "position": "principal_head"}, "opinion_ids": [opinion], "consultation_ids": consultations});
    let r = api
        .post(
            &format!("/v1/suggestions/{id}/replies"),
            &k.lead_admin,
            reply(vec![uuid::Uuid::now_v7().to_string()]),
        )
        .await;
    assert_problem(&r, 404, "not_found");
    let s = api
        .ok(
            &format!("/v1/suggestions/{id}/replies"),
            &k.lead_admin,
            reply(vec![consultation.clone()]),
        )
        .await;
    assert_eq!(s["state"], "replied", "{s}");
    for key in [&k.deputy, &k.co_signer] {
        api.ok(
            &format!("/v1/suggestions/{id}/feedback"),
            key,
            json!({"level": "satisfied"}),
        )
        .await;
    }
    let s = api
        .get(&format!("/v1/suggestions/{id}"), &k.office)
        .await
        .body;
    assert_eq!(s["state"], "in_follow_up", "{s}");

    // The co-unit converts its measure; the lead asks to close; only the office decides, once.
    api.ok(
        &format!("/v1/suggestions/{id}/commitments/{commitment}/progress"),
        &k.co1_admin,
        json!({"note": "接口已开发完成，正在联调。"}),
    )
    .await;
    api.ok(
        &format!("/v1/suggestions/{id}/commitments/{commitment}/convert"),
        &k.co1_admin,
        json!({"evidence": "数据接口已上线（附上线通知）。"}),
    )
    .await;
    let s = api
        .ok(
            &format!("/v1/suggestions/{id}/replies"),
            &k.lead_admin,
            json!({"assignment_id": lead, "document_number": "补充答复1号", "body": "承诺事项已落实。", "class": "A", "signer": {"name": "Chen", "position": "principal_head"}}),
        )
        .await;
    assert_eq!(s["state"], "in_follow_up", "a request, not a closure: {s}");
    assert_eq!(s["closure"]["state"], "pending", "{s}");
    let decision = format!("/v1/suggestions/{id}/closure/decision");
    let r = api
        .post(&decision, &k.lead_admin, json!({"confirm": true}))
        .await;
    assert_problem(&r, 403, "forbidden");
    let r = api
        .post(
            &decision,
            &k.office,
            json!({"confirm": true, "surprise": 1}),
        )
        .await;
    assert_problem(&r, 400, "malformed_request");
    let s = api.ok(&decision, &k.office, json!({"confirm": true})).await;
    assert_eq!(s["state"], "closed", "{s}");
    assert_eq!(s["closure"]["state"], "confirmed", "{s}");
    let r = api
        .post(&decision, &k.office, json!({"confirm": true}))
        .await;
    assert_problem(&r, 409, "wrong_state");
    let ratings = format!("/v1/suggestions/{id}/closure/ratings");
    let s = api
        .ok(
            &ratings,
            &k.deputy,
            json!({"level": "satisfied", "comment": "满意"}),
        )
        .await;
    assert_eq!(s["closure"]["ratings"][0]["level"], "satisfied", "{s}");
    let r = api
        .post(&ratings, &k.deputy, json!({"level": "satisfied"}))
        .await;
    assert_problem(&r, 409, "wrong_state");
    w.api.close().await;
}
