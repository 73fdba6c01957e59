//! The authorization matrix: every endpoint × every kind of caller, own and other.
//!
//! "allowed" means authorization passed: the answer may still be a state or validation refusal
//! (409, 422), never 401, 403 or 404. Everyone else gets exactly the status in the table.

use axum::http::Method;
use serde_json::{Value, json};

use crate::support::{Api, World};

const CALLERS: [&str; 9] = [
    "office",
    "auditor",
    "lead_admin",
    "co1_admin",
    "other_admin",
    "deputy",
    "co_signer",
    "other_deputy",
    "anonymous",
];

struct Case {
    method: Method,
    path: String,
    body: Option<Value>,
    /// Callers that pass authorization.
    allowed: &'static [&'static str],
    /// The status for callers who may see the item but not do this (403), if different from
    /// callers who may not see it at all (404).
    party: &'static [&'static str],
}

fn key<'a>(w: &'a World, who: &str) -> Option<&'a str> {
    let k = &w.keys;
    Some(match who {
        "office" => &k.office,
        "auditor" => &k.auditor,
        "lead_admin" => &k.lead_admin,
        "co1_admin" => &k.co1_admin,
        "other_admin" => &k.other_admin,
        "deputy" => &k.deputy,
        "co_signer" => &k.co_signer,
        "other_deputy" => &k.other_deputy,
        _ => return None,
    })
}

/// Who is told 403 by a coordination command they may not give: the parties of the item, and
/// deputies' keys (refused for their role, whatever the item).
const COORDINATION_PARTIES: &[&str] = &[
    "office",
    "auditor",
    "lead_admin",
    "co1_admin",
    "deputy",
    "co_signer",
    "other_deputy",
];

/// Parties to the test suggestion: may read it.
const PARTIES: &[&str] = &[
    "office",
    "auditor",
    "lead_admin",
    "co1_admin",
    "deputy",
    "co_signer",
];

#[tokio::test]
async fn every_endpoint_for_every_caller() {
    let w = World::new(Api::sqlite().await).await;
    let k = &w.keys;
    let api = &w.api;
    // A suggestion with a lead reply of class B (a commitment), a co-opinion, and co2 waived.
    let (id, lead, co1, co2) = w.assigned("2020-0500").await;
    w.sign_and_dispatch(&id, &lead, &k.lead_admin).await;
    w.sign_and_dispatch(&id, &co1, &k.co1_admin).await;
    api.ok(&format!("/v1/suggestions/{id}/communications"), &k.lead_admin, json!({"assignment_id": lead, "phase": "during", "method": "visit", "face_to_face": true, "deputy_ids": [w.deputy], "summary": "visit"})).await;
    let c = api.ok(&format!("/v1/coordination/assignments/{co1}/opinions"), &k.co1_admin, json!({"document_number": "会办1号", "body": "agree", "signer": {"name": "Zhao", "position": "authorized_leader"}})).await;
    let opinion = c["opinions"][0]["id"].as_str().expect("opinion").to_owned();
    api.ok(
        &format!("/v1/coordination/assignments/{co2}/waiver"),
        &k.office,
        json!({"reason": "n/a"}),
    )
    .await;
    api.eventually(&format!("/v1/suggestions/{id}"), &k.office, |s| {
        s["opinions"].as_array().is_some_and(|o| o.len() == 1)
            && s["assignments"].as_array().is_some_and(|a| {
                a.iter()
                    .any(|x| x["id"] == co2.as_str() && x["state"] == "done")
            })
    })
    .await;
    let s = api
        .ok(
            &format!("/v1/suggestions/{id}/replies"),
            &k.lead_admin,
            json!({"assignment_id": lead, "document_number": "答复1号", "body": "planned", "class": "B", "signer": {"name": "Chen", "position": "principal_head"}, "opinion_ids": [opinion], "commitments": [{"measure": "open the fund", "target_date": "2020-12-31"}]}),
        )
        .await;
    let commitment = s["commitments"][0]["id"]
        .as_str()
        .expect("commitment")
        .to_owned();
    let agency = w.lead.clone();
    let sid = &id;
    let p = |suffix: &str| format!("/v1/suggestions/{sid}{suffix}");
    let post = |path: String,
                body: Value,
                allowed: &'static [&'static str],
                party: &'static [&'static str]| Case {
        method: Method::POST,
        path,
        body: Some(body),
        allowed,
        party,
    };
    let office_only: &'static [&'static str] = &["office"];
    let staff_of_lead: &'static [&'static str] = &["lead_admin"];
    // Parties that may see but not act: everyone who may read, minus the allowed.
    let all_parties: &'static [&'static str] = PARTIES;
    let cases = vec![
        Case {
            method: Method::GET,
            path: p(""),
            body: None,
            allowed: PARTIES,
            party: &[],
        },
        Case {
            method: Method::GET,
            path: p("/events"),
            body: None,
            allowed: PARTIES,
            party: &[],
        },
        post(p("/start-review"), json!({}), office_only, all_parties),
        post(
            p("/review"),
            json!({"decision": "accept"}),
            office_only,
            all_parties,
        ),
        post(
            p("/assignments"),
            json!({"units": [{"agency_id": w.other, "role": "co"}]}),
            office_only,
            all_parties,
        ),
        // Coordination: a unit not party to the item cannot tell it from none (404); parties and
        // keys of roles that never act on coordination are refused (403).
        post(
            format!("/v1/coordination/assignments/{lead}/sign-for"),
            json!({}),
            staff_of_lead,
            COORDINATION_PARTIES,
        ),
        post(
            format!("/v1/coordination/assignments/{lead}/adjustment-request"),
            json!({"reason": "not ours"}),
            staff_of_lead,
            COORDINATION_PARTIES,
        ),
        post(
            format!("/v1/coordination/assignments/{lead}/adjustment-decision"),
            json!({"outcome": "reject", "reason": "stays"}),
            office_only,
            COORDINATION_PARTIES,
        ),
        post(
            p(&format!("/assignments/{lead}/dispatch")),
            json!({"division_id": uuid::Uuid::now_v7(), "handler": "h", "responsible_leader": "l"}),
            staff_of_lead,
            all_parties,
        ),
        post(
            p("/communications"),
            json!({"assignment_id": lead, "phase": "after", "method": "phone", "deputy_ids": [w.deputy], "summary": "follow-up call"}),
            staff_of_lead,
            all_parties,
        ),
        post(
            p(&format!("/assignments/{lead}/extension-request")),
            json!({"new_due": "2020-07-01", "reason": "survey"}),
            staff_of_lead,
            all_parties,
        ),
        post(
            p(&format!("/assignments/{lead}/extension-decision")),
            json!({"approve": true}),
            office_only,
            all_parties,
        ),
        post(
            format!("/v1/coordination/assignments/{co1}/opinions"),
            json!({"document_number": "2", "body": "b", "signer": {"name": "z", "position": "staff"}}),
            &["co1_admin"],
            COORDINATION_PARTIES,
        ),
        post(
            format!("/v1/coordination/opinions/{opinion}/acknowledge"),
            json!({}),
            staff_of_lead,
            COORDINATION_PARTIES,
        ),
        post(
            format!("/v1/coordination/assignments/{co2}/waiver"),
            json!({"reason": "again"}),
            office_only,
            COORDINATION_PARTIES,
        ),
        post(
            format!("/v1/coordination/assignments/{co1}/disagreements"),
            json!({"statement": "the lead's plan leaves out the fund"}),
            &["co1_admin"],
            COORDINATION_PARTIES,
        ),
        Case {
            method: Method::GET,
            path: format!("/v1/coordination/cases/{id}"),
            body: None,
            allowed: &["office", "auditor", "lead_admin", "co1_admin"],
            party: &["deputy", "co_signer", "other_deputy"],
        },
        Case {
            method: Method::GET,
            path: "/v1/coordination/tasks".into(),
            body: None,
            allowed: &[
                "office",
                "auditor",
                "lead_admin",
                "co1_admin",
                "other_admin",
            ],
            party: &["deputy", "co_signer", "other_deputy"],
        },
        post(
            p("/replies"),
            json!({"assignment_id": lead, "document_number": "2", "body": "b", "class": "A", "signer": {"name": "c", "position": "principal_head"}}),
            staff_of_lead,
            all_parties,
        ),
        post(
            p("/class"),
            json!({"to": "C", "reason": "re-rated"}),
            office_only,
            all_parties,
        ),
        post(
            p("/feedback-window/close"),
            json!({}),
            office_only,
            all_parties,
        ),
        post(
            p("/escalation/resolve"),
            json!({"outcome": "met"}),
            office_only,
            all_parties,
        ),
        post(
            p(&format!("/commitments/{commitment}/progress")),
            json!({"note": "halfway"}),
            staff_of_lead,
            all_parties,
        ),
        post(
            p(&format!("/commitments/{commitment}/convert")),
            json!({"evidence": "regulation 12"}),
            staff_of_lead,
            all_parties,
        ),
        post(
            p("/feedback"),
            json!({"level": "satisfied", "deputy_id": w.deputy}),
            &["office", "deputy"],
            all_parties,
        ),
        post(
            p("/withdraw"),
            json!({"reason": "resolved"}),
            &["office", "deputy"],
            all_parties,
        ),
        // Directory and keys: role-gated, not item-scoped.
        post(
            "/v1/sessions".into(),
            json!({"body": "npc", "term": 13, "number": 4, "name": "x", "opens_on": "2021-01-10", "closes_on": "2021-01-16"}),
            office_only,
            &CALLERS_BUT_ANON,
        ),
        post(
            "/v1/deputies".into(),
            json!({"name": "x", "delegation": "y"}),
            office_only,
            &CALLERS_BUT_ANON,
        ),
        post(
            "/v1/agencies".into(),
            json!({"name": "New agency"}),
            office_only,
            &CALLERS_BUT_ANON,
        ),
        post(
            format!("/v1/agencies/{agency}/divisions"),
            json!({"name": "A division"}),
            &["office", "lead_admin"],
            &CALLERS_BUT_ANON,
        ),
        post(
            "/v1/webhooks".into(),
            json!({"url": "http://127.0.0.1:9/hook"}),
            &["lead_admin", "co1_admin", "other_admin"],
            &CALLERS_BUT_ANON,
        ),
        Case {
            method: Method::GET,
            path: "/v1/webhooks".into(),
            body: None,
            allowed: &[
                "office",
                "auditor",
                "lead_admin",
                "co1_admin",
                "other_admin",
            ],
            party: &["deputy", "co_signer", "other_deputy"],
        },
        post(
            "/v1/calendar/recompute".into(),
            json!({}),
            office_only,
            &CALLERS_BUT_ANON,
        ),
        post(
            "/v1/admin/keys".into(),
            json!({"role": "auditor"}),
            office_only,
            &CALLERS_BUT_ANON,
        ),
        Case {
            method: Method::GET,
            path: "/v1/admin/keys".into(),
            body: None,
            allowed: office_only,
            party: &CALLERS_BUT_ANON,
        },
        Case {
            method: Method::GET,
            path: "/v1/agencies".into(),
            body: None,
            allowed: &CALLERS_BUT_ANON,
            party: &[],
        },
        Case {
            method: Method::GET,
            path: "/v1/sessions".into(),
            body: None,
            allowed: &CALLERS_BUT_ANON,
            party: &[],
        },
        Case {
            method: Method::GET,
            path: "/v1/deputies".into(),
            body: None,
            allowed: &["office", "auditor"],
            party: &CALLERS_BUT_ANON,
        },
        Case {
            method: Method::GET,
            path: format!("/v1/deputies/{}", w.deputy),
            body: None,
            allowed: &[
                "office",
                "auditor",
                "lead_admin",
                "co1_admin",
                "other_admin",
                "deputy",
            ],
            party: &[],
        },
        Case {
            method: Method::GET,
            path: "/v1/suggestions".into(),
            body: None,
            allowed: &CALLERS_BUT_ANON,
            party: &[],
        },
        Case {
            method: Method::GET,
            path: "/v1/feed".into(),
            body: None,
            allowed: &[
                "office",
                "auditor",
                "lead_admin",
                "co1_admin",
                "other_admin",
            ],
            party: &["deputy", "co_signer", "other_deputy"],
        },
        Case {
            method: Method::GET,
            path: "/v1/calendar/days?from=2020-01-01&to=2020-01-02".into(),
            body: None,
            allowed: &CALLERS_BUT_ANON,
            party: &[],
        },
        post(
            "/v1/suggestions".into(),
            json!({"session_id": w.session, "number": "2020-0999", "title": "t", "body": "b", "lead_deputy_id": w.deputy}),
            &["office", "deputy"],
            &CALLERS_BUT_ANON,
        ),
    ];
    let mut failures = Vec::new();
    for case in &cases {
        // The allowed callers go last, so that a change they make cannot hide a refusal.
        let mut order: Vec<&str> = CALLERS
            .iter()
            .copied()
            .filter(|c| !case.allowed.contains(c))
            .collect();
        order.extend(CALLERS.iter().copied().filter(|c| case.allowed.contains(c)));
        for who in order {
            let r = api
                .call(
                    case.method.clone(),
                    &case.path,
                    key(&w, who),
                    case.body.clone(),
                    &[],
                )
                .await;
            let got = r.status.as_u16();
            let expected_ok = case.allowed.contains(&who);
            let fine = if who == "anonymous" {
                got == 401
            } else if expected_ok {
                !matches!(got, 401 | 403 | 404) && got < 500
            } else if case.party.contains(&who) {
                got == 403
            } else {
                got == 404
            };
            if !fine {
                failures.push(format!(
                    "{} {} as {who}: {got} {}",
                    case.method, case.path, r.body
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} wrong answers:\n{}",
        failures.len(),
        failures.join("\n")
    );
    w.api.close().await;
}

const CALLERS_BUT_ANON: [&str; 8] = [
    "office",
    "auditor",
    "lead_admin",
    "co1_admin",
    "other_admin",
    "deputy",
    "co_signer",
    "other_deputy",
];

/// A confidential item (涉密) is seen by the office, the agencies it is assigned to and its
/// deputies — in the item, its events and every list — and by no one else, auditors included.
#[tokio::test]
async fn confidential_items_are_seen_only_by_the_office_parties_and_deputies() {
    let w = World::new(Api::sqlite().await).await;
    let k = &w.keys;
    let api = &w.api;
    let open = w.submit("2020-0601").await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let s = api
        .ok(
            "/v1/suggestions",
            &k.deputy,
            json!({"session_id": w.session, "number": "2020-0602", "title": "Border security upgrades", "body": "…", "lead_deputy_id": w.deputy, "co_signer_ids": [w.co_signer], "confidential": true}),
        )
        .await;
    assert_eq!(s["confidential"], true, "{s}");
    let id = s["id"].as_str().expect("id").to_owned();
    for (path, body) in [
        ("start-review", json!({})),
        ("review", json!({"decision": "accept"})),
        (
            "assignments",
            json!({"units": [{"agency_id": w.lead, "role": "sole"}]}),
        ),
    ] {
        api.ok(&format!("/v1/suggestions/{id}/{path}"), &k.office, body)
            .await;
    }
    let sees = ["office", "lead_admin", "deputy", "co_signer"];
    let mut failures = Vec::new();
    // The coordination side: the office and the assigned agency; not auditors.
    let case = format!("/v1/coordination/cases/{id}");
    api.eventually(&case, &k.office, |c| {
        c["units"].as_array().is_some_and(|u| u.len() == 1)
    })
    .await;
    for (key, expected) in [
        (&k.lead_admin, 200),
        (&k.auditor, 404),
        (&k.other_admin, 404),
    ] {
        let got = api.get(&case, key).await;
        if got.status.as_u16() != expected {
            failures.push(format!("GET {case}: {} {}", got.status, got.body));
        }
    }
    for who in CALLERS_BUT_ANON {
        let key = key(&w, who).expect("a key");
        let may = sees.contains(&who);
        for path in [
            format!("/v1/suggestions/{id}"),
            format!("/v1/suggestions/{id}/events"),
        ] {
            let got = api.get(&path, key).await.status.as_u16();
            if got != if may { 200 } else { 404 } {
                failures.push(format!("GET {path} as {who}: {got}"));
            }
        }
        let list = api.get("/v1/suggestions?page_size=200", key).await;
        assert_eq!(list.status, 200, "{who}: {}", list.body);
        let listed = |x: &str| {
            list.body["items"]
                .as_array()
                .is_some_and(|items| items.iter().any(|i| i["id"] == x))
        };
        if listed(&id) != may {
            failures.push(format!("the list of {who}: {}", list.body));
        }
        // The open item is listed as before: the office and auditors, and its deputies.
        let open_seen = matches!(who, "office" | "auditor" | "deputy" | "co_signer");
        if listed(&open) != open_seen {
            failures.push(format!("the open item in the list of {who}: {}", list.body));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    w.api.close().await;
}
