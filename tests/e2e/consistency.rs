//! Read-your-writes across the three processes (suggestions, coordination, follow-up on
//! PostgreSQL + NATS JetStream): a client chains every command of a co-handled lifecycle with the
//! `Banli-Consistency` token of the previous response and never retries — while the service that
//! must catch up is held back on purpose (SIGSTOP, then SIGCONT right before the request), so
//! its consumer is behind when the request arrives.

use std::time::Duration;

use serde_json::{Value, json};

use crate::distributed::{Cluster, Proc};
use crate::serve::http_with;

/// A client that carries the latest token from call to call (and, when set, a W3C
/// `traceparent` on each request).
pub(crate) struct Chain {
    pub(crate) token: Option<String>,
    pub(crate) traceparent: Option<String>,
}

impl Chain {
    pub(crate) fn new() -> Chain {
        Chain {
            token: None,
            traceparent: None,
        }
    }

    pub(crate) fn send(
        &mut self,
        port: u16,
        method: &str,
        path: &str,
        key: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let text = body.map(|b| b.to_string());
        let mut headers: Vec<(&str, &str)> = Vec::new();
        if let Some(t) = &self.token {
            headers.push(("Banli-Consistency", t));
        }
        if let Some(t) = &self.traceparent {
            headers.push(("traceparent", t));
        }
        let (status, head, body) =
            http_with(port, method, path, Some(key), text.as_deref(), &headers);
        if (200..300).contains(&status)
            && let Some(t) = head.lines().find_map(|l| {
                l.split_once(':')
                    .filter(|(n, _)| n.eq_ignore_ascii_case("banli-consistency"))
                    .map(|(_, v)| v.trim().to_owned())
            })
        {
            self.token = Some(t);
        }
        (
            status,
            serde_json::from_str(&body).unwrap_or(Value::String(body)),
        )
    }

    /// A POST that must succeed on the first try.
    pub(crate) fn ok(&mut self, port: u16, path: &str, key: &str, body: Value) -> Value {
        let (status, v) = self.send(port, "POST", path, key, Some(body));
        assert!(
            (200..300).contains(&status),
            "POST {path}: {status} {v} (no retry: the token must be enough)"
        );
        v
    }
}

/// Holds `p` stopped while `f` runs, and lets it go on right after.
fn while_stopped<T>(p: &Proc, f: impl FnOnce() -> T) -> T {
    let pid = p.pid().expect("running").to_string();
    let signal = |s: &str| {
        let ok = std::process::Command::new("kill")
            .args([s, &pid])
            .status()
            .expect("kill")
            .success();
        assert!(ok, "kill {s} {pid}");
    };
    signal("-STOP");
    let out = f();
    // Long enough for the event to be on the stream before the process looks again.
    std::thread::sleep(Duration::from_millis(100));
    signal("-CONT");
    out
}

/// A session, three agencies, a deputy, keys for the lead agency and the deputy, and a division
/// of the lead agency, registered with the office's key at the suggestions service `s`.
pub(crate) struct Parties {
    pub(crate) session: Value,
    pub(crate) agencies: Vec<String>,
    pub(crate) deputy: Value,
    pub(crate) lead_key: String,
    pub(crate) deputy_key: String,
    pub(crate) division: Value,
}

impl Parties {
    pub(crate) fn register(s: u16, office: &str) -> Parties {
        let office = office.to_owned();
        let unique = uuid::Uuid::now_v7().simple().to_string();

        let mut plain = Chain::new();
        let session = plain.ok(s, "/v1/sessions", &office, json!({"body":"npc","term":14,"number":1,"name":"e2e","opens_on":"2026-01-10","closes_on":"2026-01-16"}))["id"].clone();
        let agencies: Vec<String> = ["Industry", "Finance", "Science"]
            .iter()
            .map(|n| {
                plain.ok(
                    s,
                    "/v1/agencies",
                    &office,
                    json!({"name": format!("{n} {unique}")}),
                )["id"]
                    .as_str()
                    .expect("id")
                    .to_owned()
            })
            .collect();
        let deputy = plain.ok(
            s,
            "/v1/deputies",
            &office,
            json!({"name": "Deputy Liu", "delegation": "Changsha"}),
        )["id"]
            .clone();
        let lead_key = plain.ok(
            s,
            "/v1/admin/keys",
            &office,
            json!({"role": "agency_admin", "agency_id": agencies[0]}),
        )["token"]
            .as_str()
            .expect("token")
            .to_owned();
        let deputy_key = plain.ok(
            s,
            "/v1/admin/keys",
            &office,
            json!({"role": "deputy", "deputy_id": deputy}),
        )["token"]
            .as_str()
            .expect("token")
            .to_owned();
        let division = plain.ok(
            s,
            &format!("/v1/agencies/{}/divisions", agencies[0]),
            &office,
            json!({"name": "SME"}),
        )["id"]
            .clone();
        Parties {
            session,
            agencies,
            deputy,
            lead_key,
            deputy_key,
            division,
        }
    }

    /// Submits a suggestion as the deputy and has the office accept it; returns its id.
    pub(crate) fn accepted_suggestion(&self, chain: &mut Chain, s: u16, office: &str) -> String {
        let sid = chain.ok(s, "/v1/suggestions", &self.deputy_key, json!({"session_id": self.session, "number": format!("N-{}", uuid::Uuid::now_v7().simple()), "title": "Chained", "body": "b", "lead_deputy_id": self.deputy}))["id"].as_str().expect("id").to_owned();
        chain.ok(
            s,
            &format!("/v1/suggestions/{sid}/start-review"),
            office,
            json!({}),
        );
        chain.ok(
            s,
            &format!("/v1/suggestions/{sid}/review"),
            office,
            json!({"decision": "accept"}),
        );
        sid
    }

    /// The lead agency dispatches its assignment to its division and meets the deputy.
    pub(crate) fn dispatch_and_meet(&self, chain: &mut Chain, s: u16, sid: &str, lead: &str) {
        let p = |suffix: &str| format!("/v1/suggestions/{sid}{suffix}");
        chain.ok(s, &p(&format!("/assignments/{lead}/dispatch")), &self.lead_key, json!({"division_id": self.division, "handler": "Li Hua", "responsible_leader": "Director Wang"}));
        chain.ok(s, &p("/communications"), &self.lead_key, json!({"assignment_id": lead, "phase": "during", "method": "visit", "face_to_face": true, "deputy_ids": [self.deputy], "summary": "met"}));
    }
}

/// The id of `agency`'s assignment in an assignment command's answer.
pub(crate) fn assignment_of(assigned: &Value, agency: &str) -> String {
    assigned["assignments"]
        .as_array()
        .expect("assignments")
        .iter()
        .find(|x| x["agency_id"] == agency)
        .expect("assignment")["id"]
        .as_str()
        .expect("id")
        .to_owned()
}

#[test]
fn a_chained_lifecycle_across_processes_needs_no_retry() {
    let Some(cluster) = Cluster::start("chained") else {
        return;
    };
    let office = cluster.office.clone();
    let (suggestions, coordination, followup) = (
        &cluster.suggestions,
        &cluster.coordination,
        &cluster.followup,
    );
    let (s, c, f) = (suggestions.http, coordination.http, followup.http);
    let parties = Parties::register(s, &office);
    let (agencies, lead_key, deputy_key) = (
        parties.agencies.clone(),
        parties.lead_key.clone(),
        parties.deputy_key.clone(),
    );

    let mut chain = Chain::new();
    let sid = parties.accepted_suggestion(&mut chain, s, &office);
    let p = |suffix: &str| format!("/v1/suggestions/{sid}{suffix}");
    // The coordination process is stopped while the assignment is made: its consumer is behind
    // when the sign-for reaches it.
    let assigned = while_stopped(coordination, || {
        chain.ok(s, &p("/assignments"), &office, json!({"units": [{"agency_id": agencies[0], "role": "lead"}, {"agency_id": agencies[1], "role": "co"}, {"agency_id": agencies[2], "role": "co"}]}))
    });
    let a = |agency: &str| assignment_of(&assigned, agency);
    let (lead, co1, co2) = (a(&agencies[0]), a(&agencies[1]), a(&agencies[2]));
    // The suggestions process is stopped while the sign-for is made: its consumer is behind
    // when the dispatch reaches it.
    while_stopped(suggestions, || {
        chain.ok(
            c,
            &format!("/v1/coordination/assignments/{lead}/sign-for"),
            &lead_key,
            json!({}),
        );
    });
    parties.dispatch_and_meet(&mut chain, s, &sid, &lead);
    chain.ok(
        c,
        &format!("/v1/coordination/assignments/{co1}/waiver"),
        &office,
        json!({"reason": "e2e"}),
    );
    while_stopped(suggestions, || {
        chain.ok(
            c,
            &format!("/v1/coordination/assignments/{co2}/waiver"),
            &office,
            json!({"reason": "e2e"}),
        );
    });
    let replied = while_stopped(followup, || {
        chain.ok(s, &p("/replies"), &lead_key, json!({"assignment_id": lead, "document_number": "R-1", "body": "Done.", "class": "A", "signer": {"name": "Director Chen", "position": "principal_head"}}))
    });
    assert_eq!(replied["state"], "replied", "{replied}");
    // The follow-up process, held back while the reply was made, counts it once it answers a
    // read carrying the token.
    let (status, metrics) = chain.send(
        f,
        "GET",
        &format!("/v1/metrics?agency_id={}", agencies[0]),
        &office,
        None,
    );
    assert_eq!(status, 200, "{metrics}");
    assert_eq!(metrics["rates"]["reply_rate"]["numerator"], 1, "{metrics}");
    let closed = chain.ok(
        s,
        &p("/feedback"),
        &deputy_key,
        json!({"level": "satisfied"}),
    );
    assert_eq!(closed["state"], "closed", "{closed}");

    // A token from another deployment, or made up: 400 at once, in every process.
    for (port, path) in [
        (s, "/v1/suggestions"),
        (c, "/v1/coordination/tasks"),
        (f, "/v1/followup/alerts"),
    ] {
        let (status, _, body) = http_with(
            port,
            "GET",
            path,
            Some(&office),
            None,
            &[("Banli-Consistency", "c1.AAAA.AAAA")],
        );
        assert_eq!(status, 400, "{body}");
        assert!(body.contains("bad_consistency_token"), "{body}");
    }
    cluster.stop();
}
