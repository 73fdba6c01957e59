//! Every route and RPC that names an item, called by a unit (and a deputy) not party to it,
//! against a real `banli serve`: the answer is exactly the one for an id that does not exist —
//! 404 / NOT_FOUND, the same code and the same words once the ids are blanked — so a stranger
//! cannot tell another agency's item from none, nor learn its state from a 403, 409, 412 or 422.

use std::cell::RefCell;

use serde_json::{Value, json};

use crate::serve::{http_with, serve_for_webhooks};

pub(crate) mod grpc;

pub(crate) use grpc::req;
use grpc::walk_grpc;

/// REST calls that carry the latest `Banli-Consistency` token, so that each call sees the
/// writes before it in every service (the contract; no polling).
pub(crate) struct Client {
    pub(crate) port: u16,
    pub(crate) token: RefCell<String>,
}

impl Client {
    pub(crate) fn new(port: u16) -> Client {
        Client {
            port,
            token: RefCell::new(String::new()),
        }
    }

    pub(crate) fn call(
        &self,
        method: &str,
        path: &str,
        key: &str,
        body: Option<&Value>,
    ) -> (u16, Value) {
        self.call_with(method, path, key, body, &[])
    }

    /// [`Client::call`] with extra request headers.
    pub(crate) fn call_with(
        &self,
        method: &str,
        path: &str,
        key: &str,
        body: Option<&Value>,
        extra: &[(&str, &str)],
    ) -> (u16, Value) {
        let token = self.token.borrow().clone();
        let mut headers = extra.to_vec();
        if !token.is_empty() {
            headers.push(("banli-consistency", token.as_str()));
        }
        let body = body.map(Value::to_string);
        let (status, head, text) = http_with(
            self.port,
            method,
            path,
            Some(key),
            body.as_deref(),
            &headers,
        );
        for line in head.lines() {
            if let Some((name, value)) = line.split_once(':')
                && name.eq_ignore_ascii_case("banli-consistency")
            {
                *self.token.borrow_mut() = value.trim().to_owned();
            }
        }
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    pub(crate) fn ok(&self, method: &str, path: &str, key: &str, body: Value) -> Value {
        let (status, v) = self.call(method, path, key, Some(&body));
        assert!(
            (200..300).contains(&status),
            "{method} {path}: {status} {v}"
        );
        v
    }

    pub(crate) fn post(&self, path: &str, key: &str, body: Value) -> Value {
        self.ok("POST", path, key, body)
    }

    /// A suggestion submitted by the office, reviewed and accepted (ready to assign): its id.
    pub(crate) fn accepted(&self, office: &str, submission: Value) -> String {
        let sid = id(&self.post("/v1/suggestions", office, submission));
        let s = format!("/v1/suggestions/{sid}");
        self.post(&format!("{s}/start-review"), office, json!({}));
        self.post(
            &format!("{s}/review"),
            office,
            json!({"decision": "accept"}),
        );
        sid
    }

    /// A new agency with a division and an `agency_admin` key: (id, key, division id).
    pub(crate) fn agency(&self, office: &str, name: &str) -> (String, String, String) {
        let a = id(&self.post("/v1/agencies", office, json!({ "name": name })));
        let key = self.post(
            "/v1/admin/keys",
            office,
            json!({"role": "agency_admin", "agency_id": a, "label": name}),
        )["token"]
            .as_str()
            .expect("token")
            .to_owned();
        let division = id(&self.post(
            &format!("/v1/agencies/{a}/divisions"),
            office,
            json!({"name": "Division one"}),
        ));
        (a, key, division)
    }
}

pub(crate) fn id(v: &Value) -> String {
    v["id"].as_str().expect("an id").to_owned()
}

/// The ids a walk uses: those of real items, or made-up ones of the same kinds.
#[derive(Clone)]
struct Ids {
    suggestion: String,
    lead: String,
    co: String,
    opinion: String,
    reply: String,
    commitment: String,
    disagreement: String,
    notice: String,
    webhook: String,
}

impl Ids {
    /// Ids of the same form as the platform's (UUIDv7) that name nothing, made ten minutes ago:
    /// a fresh id would be waited for (the coordination service waits a moment for an id made
    /// in the last minute that it does not know yet), which is the contract but slows the walk.
    fn unknown() -> Ids {
        let secs = time::OffsetDateTime::now_utc().unix_timestamp() - 600;
        let u = || {
            uuid::Uuid::new_v7(uuid::Timestamp::from_unix(
                uuid::NoContext,
                u64::try_from(secs).expect("after 1970"),
                0,
            ))
            .to_string()
        };
        Ids {
            suggestion: u(),
            lead: u(),
            co: u(),
            opinion: u(),
            reply: u(),
            commitment: u(),
            disagreement: u(),
            notice: u(),
            webhook: u(),
        }
    }

    /// `text` with every id replaced by its kind, so that two answers can be compared.
    fn blank(&self, text: &str) -> String {
        let mut t = text.to_owned();
        for (id, kind) in [
            (&self.suggestion, "<suggestion>"),
            (&self.lead, "<lead>"),
            (&self.co, "<co>"),
            (&self.opinion, "<opinion>"),
            (&self.reply, "<reply>"),
            (&self.commitment, "<commitment>"),
            (&self.disagreement, "<disagreement>"),
            (&self.notice, "<notice>"),
            (&self.webhook, "<webhook>"),
        ] {
            t = t.replace(id.as_str(), kind);
        }
        t
    }
}

/// The REST routes that name an item, for callers of an agency: (method, path, body).
fn agency_routes(i: &Ids) -> Vec<(&'static str, String, Value)> {
    let s = format!("/v1/suggestions/{}", i.suggestion);
    let signer = json!({"name": "Zhao", "position": "authorized_leader"});
    vec![
        ("GET", s.clone(), Value::Null),
        ("GET", format!("{s}/events"), Value::Null),
        ("POST", format!("{s}/start-review"), json!({})),
        ("POST", format!("{s}/review"), json!({"decision": "accept"})),
        (
            "POST",
            format!("{s}/assignments"),
            json!({"units": [{"agency_id": i.lead, "role": "co"}]}),
        ),
        (
            "POST",
            format!("{s}/assignments/{}/dispatch", i.lead),
            json!({"division_id": i.co, "handler": "h", "responsible_leader": "l"}),
        ),
        (
            "POST",
            format!("{s}/assignments/{}/extension-request", i.lead),
            json!({"new_due": "2030-07-01", "reason": "survey"}),
        ),
        (
            "POST",
            format!("{s}/assignments/{}/extension-decision", i.lead),
            json!({"approve": true}),
        ),
        (
            "POST",
            format!("{s}/communications"),
            json!({"assignment_id": i.lead, "phase": "after", "method": "phone", "deputy_ids": [], "summary": "call"}),
        ),
        (
            "POST",
            format!("{s}/replies"),
            json!({"assignment_id": i.lead, "document_number": "2", "body": "b", "class": "A", "signer": {"name": "c", "position": "principal_head"}}),
        ),
        (
            "POST",
            format!("{s}/class"),
            json!({"to": "C", "reason": "re-rated"}),
        ),
        ("POST", format!("{s}/feedback-window/close"), json!({})),
        (
            "POST",
            format!("{s}/escalation/resolve"),
            json!({"outcome": "met"}),
        ),
        (
            "POST",
            format!("{s}/commitments/{}/progress", i.commitment),
            json!({"note": "halfway"}),
        ),
        (
            "POST",
            format!("{s}/commitments/{}/convert", i.commitment),
            json!({"evidence": "regulation 12"}),
        ),
        (
            "POST",
            format!("{s}/feedback"),
            json!({"level": "satisfied", "deputy_id": i.co}),
        ),
        (
            "POST",
            format!("{s}/withdraw"),
            json!({"reason": "resolved"}),
        ),
        (
            "GET",
            format!("/v1/coordination/cases/{}", i.suggestion),
            Value::Null,
        ),
        (
            "POST",
            format!("/v1/coordination/assignments/{}/sign-for", i.lead),
            json!({}),
        ),
        (
            "POST",
            format!("/v1/coordination/assignments/{}/adjustment-request", i.lead),
            json!({"reason": "not ours"}),
        ),
        (
            "POST",
            format!(
                "/v1/coordination/assignments/{}/adjustment-decision",
                i.lead
            ),
            json!({"outcome": "reject", "reason": "stays"}),
        ),
        (
            "POST",
            format!("/v1/coordination/assignments/{}/opinions", i.co),
            json!({"document_number": "2", "body": "b", "signer": signer}),
        ),
        (
            "POST",
            format!("/v1/coordination/assignments/{}/waiver", i.co),
            json!({"reason": "again"}),
        ),
        (
            "POST",
            format!("/v1/coordination/assignments/{}/disagreements", i.co),
            json!({"statement": "the plan leaves out the fund"}),
        ),
        (
            "POST",
            format!("/v1/coordination/opinions/{}/acknowledge", i.opinion),
            json!({}),
        ),
        (
            "POST",
            format!("/v1/coordination/replies/{}/countersign", i.reply),
            json!({"signer": signer}),
        ),
        (
            "POST",
            format!("/v1/coordination/disagreements/{}/escalate", i.disagreement),
            json!({}),
        ),
        (
            "POST",
            format!("/v1/coordination/disagreements/{}/resolve", i.disagreement),
            json!({"resolution": "settled"}),
        ),
        (
            "GET",
            format!("/v1/followup/notices/{}", i.notice),
            Value::Null,
        ),
        (
            "POST",
            format!("/v1/followup/notices/{}/acknowledge", i.notice),
            json!({}),
        ),
        (
            "POST",
            format!("/v1/followup/notices/{}/response", i.notice),
            json!({"response": "done"}),
        ),
        ("GET", format!("/v1/webhooks/{}", i.webhook), Value::Null),
        (
            "PATCH",
            format!("/v1/webhooks/{}", i.webhook),
            json!({"description": "mine now"}),
        ),
        (
            "GET",
            format!("/v1/webhooks/{}/deliveries", i.webhook),
            Value::Null,
        ),
        (
            "POST",
            format!("/v1/webhooks/{}/replay", i.webhook),
            json!({"after": "start"}),
        ),
        (
            "POST",
            format!("/v1/webhooks/{}/rotate-secret", i.webhook),
            json!({}),
        ),
        ("DELETE", format!("/v1/webhooks/{}", i.webhook), Value::Null),
    ]
}

/// The REST routes that name an item, for a deputy's key.
fn deputy_routes(i: &Ids) -> Vec<(&'static str, String, Value)> {
    let s = format!("/v1/suggestions/{}", i.suggestion);
    vec![
        ("GET", s.clone(), Value::Null),
        ("GET", format!("{s}/events"), Value::Null),
        (
            "POST",
            format!("{s}/feedback"),
            json!({"level": "satisfied", "deputy_id": i.co}),
        ),
        (
            "POST",
            format!("{s}/withdraw"),
            json!({"reason": "resolved"}),
        ),
    ]
}

/// One item with everything a route can name: a suggestion led by A with C co-handling, C's
/// opinion, A's class-B reply with a commitment, C's disagreement, a notice to A and A's
/// webhook. Returns the ids and the keys (office, A, B, another deputy).
fn world(c: &Client, office: &str) -> (Ids, String, String, String) {
    let agency = |name: &str| c.agency(office, name);
    let (a, a_key, a_div) = agency("Department of Industry");
    let (co, c_key, c_div) = agency("Department of Finance");
    let (_, b_key, _) = agency("Department of Transport");
    let session = id(&c.post(
        "/v1/sessions",
        office,
        json!({"body":"npc","term":13,"number":3,"name":"13th PC, 3rd session","opens_on":"2020-01-10","closes_on":"2020-01-16"}),
    ));
    let deputy = |name: &str| {
        id(&c.post(
            "/v1/deputies",
            office,
            json!({"name": name, "delegation": "Changsha"}),
        ))
    };
    let (d1, d2) = (deputy("Deputy Liu"), deputy("Deputy Zhao"));
    let d2_key = c.post(
        "/v1/admin/keys",
        office,
        json!({"role": "deputy", "deputy_id": d2, "label": "Zhao"}),
    )["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let sid = c.accepted(
        office,
        json!({"session_id": session, "number": "2020-0417", "title": "Digital upgrades", "body": "A fund and a platform.", "lead_deputy_id": d1}),
    );
    let s = format!("/v1/suggestions/{sid}");
    let v = c.post(
        &format!("{s}/assignments"),
        office,
        json!({"units": [{"agency_id": a, "role": "lead"}, {"agency_id": co, "role": "co"}]}),
    );
    let of = |agency: &str| {
        v["assignments"]
            .as_array()
            .expect("assignments")
            .iter()
            .find(|x| x["agency_id"] == agency)
            .map(id)
            .expect("an assignment")
    };
    let (lead, coa) = (of(&a), of(&co));
    for (asg, key, div) in [(&lead, &a_key, &a_div), (&coa, &c_key, &c_div)] {
        c.post(
            &format!("/v1/coordination/assignments/{asg}/sign-for"),
            key,
            json!({}),
        );
        c.post(
            &format!("{s}/assignments/{asg}/dispatch"),
            key,
            json!({"division_id": div, "handler": "Li Hua", "responsible_leader": "Director Wang"}),
        );
    }
    let case = c.post(
        &format!("/v1/coordination/assignments/{coa}/opinions"),
        &c_key,
        json!({"document_number": "会办1号", "body": "The fund can come from the digital economy budget.", "signer": {"name": "Zhao", "position": "authorized_leader"}}),
    );
    let opinion = id(&case["opinions"][0]);
    c.post(
        &format!("/v1/coordination/opinions/{opinion}/acknowledge"),
        &a_key,
        json!({}),
    );
    c.post(
        &format!("{s}/communications"),
        &a_key,
        json!({"assignment_id": lead, "phase": "during", "method": "visit", "face_to_face": true, "deputy_ids": [d1], "summary": "visit"}),
    );
    let v = c.post(
        &format!("{s}/replies"),
        &a_key,
        json!({"assignment_id": lead, "document_number": "答复1号", "body": "planned", "class": "B", "signer": {"name": "Chen", "position": "principal_head"}, "opinion_ids": [opinion], "commitments": [{"measure": "open the fund", "target_date": "2030-12-31"}]}),
    );
    let reply = id(&v["replies"][0]);
    let commitment = id(&v["commitments"][0]);
    let case = c.post(
        &format!("/v1/coordination/assignments/{coa}/disagreements"),
        &c_key,
        json!({"statement": "the reply leaves out the fund's size"}),
    );
    let disagreement = id(&case["disagreements"][0]);
    let due = time::OffsetDateTime::now_utc().date() + time::Duration::days(20);
    let notice = id(&c.post(
        "/v1/followup/notices",
        office,
        json!({"target_agency_id": a, "suggestion_ids": [sid], "level": "notice", "body": "请报告办理进展。", "response_due": due.to_string()}),
    ));
    let webhook = id(&c.post(
        "/v1/webhooks",
        &a_key,
        json!({"url": "http://127.0.0.1:9/hook"}),
    ));
    let ids = Ids {
        suggestion: sid,
        lead,
        co: coa,
        opinion,
        reply,
        commitment,
        disagreement,
        notice,
        webhook,
    };
    (ids, office.to_owned(), b_key, d2_key)
}

/// Each route as the stranger and with unknown ids: both must be the same 404.
fn walk_rest(
    c: &Client,
    key: &str,
    routes: fn(&Ids) -> Vec<(&'static str, String, Value)>,
    real: &Ids,
    failures: &mut Vec<String>,
) {
    let unknown = Ids::unknown();
    for ((method, path, body), (_, upath, ubody)) in routes(real).into_iter().zip(routes(&unknown))
    {
        let send = |p: &str, b: &Value| c.call(method, p, key, (!b.is_null()).then_some(b));
        let (status, got) = send(&path, &body);
        let (ustatus, ugot) = send(&upath, &ubody);
        let (seen, none) = (
            real.blank(&got.to_string()),
            unknown.blank(&ugot.to_string()),
        );
        if status != 404 || ustatus != 404 || seen != none {
            failures.push(format!(
                "REST {method} {}: {status} {seen} (an unknown id: {ustatus} {none})",
                real.blank(&path)
            ));
        }
    }
}

#[test]
fn a_stranger_cannot_tell_anothers_item_from_none() {
    let (dir, server, office) = serve_for_webhooks("walk");
    let c = Client::new(server.http);
    let (ids, _, stranger, other_deputy) = world(&c, &office);
    let mut failures = Vec::new();
    walk_rest(&c, &stranger, agency_routes, &ids, &mut failures);
    walk_rest(&c, &other_deputy, deputy_routes, &ids, &mut failures);
    let token = c.token.borrow().clone();
    walk_grpc(&server, &stranger, &token, &ids, &mut failures);
    // The item is untouched: every walk above was refused.
    let (status, v) = c.call(
        "GET",
        &format!("/v1/suggestions/{}", ids.suggestion),
        &office,
        None,
    );
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["state"], "replied", "{v}");
    assert!(
        failures.is_empty(),
        "{} answers tell a stranger something:\n{}",
        failures.len(),
        failures.join("\n")
    );
    drop(server);
    let _ = std::fs::remove_dir_all(&dir);
}
