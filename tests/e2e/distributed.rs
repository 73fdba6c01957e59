//! A complete co-handled lifecycle across the services as separate OS processes — the
//! suggestions and coordination services over PostgreSQL and NATS JetStream — and the same
//! scenario on the embedded default (one process, SQLite, in-process bus). In the middle, a
//! service is killed with SIGKILL and started again: the scenario completes with nothing lost and
//! nothing doubled.
//!
//! The scenario: assign a lead and two co-handlers; the second co-handler asks for an adjustment,
//! the office accepts and reassigns to a third unit; everyone signs for and dispatches; the first
//! co-handler sends its opinion, the office waives the third unit's; the lead replies; both
//! co-handlers receive their copy of the reply. Across processes, every call goes through one
//! front door routing by the services' route tables (`front_door.rs`), as the Ingress does.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::banli_binary;
use crate::front_door::FrontDoor;
use crate::serve::{free_port, http};

mod cluster;

pub(crate) use cluster::Cluster;

/// A `banli serve` process and how to start it again.
pub(crate) struct Proc {
    child: Option<Child>,
    pub(crate) http: u16,
    grpc: u16,
    dir: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

impl Proc {
    pub(crate) fn start(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Proc {
        let mut p = Proc {
            child: None,
            http: free_port(),
            grpc: free_port(),
            dir: dir.to_owned(),
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        };
        p.spawn();
        p
    }

    fn spawn(&mut self) {
        let mut cmd = Command::new(banli_binary());
        cmd.arg("serve")
            .args(&self.args)
            .args(["--http-addr", &format!("127.0.0.1:{}", self.http)])
            .args(["--grpc-addr", &format!("127.0.0.1:{}", self.grpc)])
            .current_dir(&self.dir)
            .env_remove("BANLI_DATABASE_URL")
            .env_remove("BANLI_NATS_URL")
            .env_remove("BANLI_DATA_DIR")
            .env("BANLI_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        self.child = Some(cmd.spawn().expect("banli serve starts"));
        let start = Instant::now();
        while http(self.http, "GET", "/healthz", None, None).0 != 200 {
            assert!(
                start.elapsed() < Duration::from_secs(30),
                "banli serve {:?} did not answer within 30 s",
                self.args
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The process id, while it runs.
    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL: no shutdown, no flushing, nothing finished.
    fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().expect("SIGKILL");
            let _ = c.wait();
        }
    }

    fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn call(port: u16, method: &str, path: &str, key: &str, body: Option<Value>) -> (u16, Value) {
    let text = body.map(|b| b.to_string());
    let (status, body) = http(port, method, path, Some(key), text.as_deref());
    let v = serde_json::from_str(&body).unwrap_or(Value::String(body));
    (status, v)
}

fn ok(port: u16, path: &str, key: &str, body: Value) -> Value {
    let (status, v) = call(port, "POST", path, key, Some(body));
    assert!((200..300).contains(&status), "POST {path}: {status} {v}");
    v
}

/// POSTs until the other service has caught up (a 404 or 409 changes nothing), at most 20 s.
fn ok_eventually(port: u16, path: &str, key: &str, body: Value) -> Value {
    let start = Instant::now();
    loop {
        let (status, v) = call(port, "POST", path, key, Some(body.clone()));
        if (200..300).contains(&status) {
            return v;
        }
        assert!(
            matches!(status, 404 | 409) && start.elapsed() < Duration::from_secs(20),
            "POST {path}: {status} {v}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn get_until(port: u16, path: &str, key: &str, done: impl Fn(&Value) -> bool) -> Value {
    let start = Instant::now();
    loop {
        let (status, v) = call(port, "GET", path, key, None);
        if status == 200 && done(&v) {
            return v;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "GET {path} never reached the expected state: {status} {v}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Uploads `text` (a tiny PDF) as `key`'s; returns its SHA-256.
fn upload(port: u16, key: &str, name: &str, text: &str) -> String {
    let (status, body) = http(
        port,
        "POST",
        &format!("/v1/documents?name={}", name.replace('.', "%2E")),
        Some(key),
        Some(text),
    );
    assert_eq!(status, 201, "{body}");
    let v: Value = serde_json::from_str(&body).expect("json");
    v["sha256"].as_str().expect("sha256").to_owned()
}

fn id(v: &Value) -> String {
    v["id"].as_str().expect("id").to_owned()
}

/// Runs the scenario through one port (the front door, or the one process of the embedded
/// mode); `kill` is called once, in the middle, with the step it is at. Returns the SHA-256s of
/// the two letters it attached.
fn scenario(front: u16, office: &str, kill: &mut dyn FnMut(&str)) -> [String; 2] {
    let session = id(&ok(
        front,
        "/v1/sessions",
        office,
        json!({"body":"npc","term":13,"number":3,"name":"13th PC, 3rd session","opens_on":"2020-01-10","closes_on":"2020-01-16"}),
    ));
    let unique = uuid::Uuid::now_v7().simple().to_string();
    let agencies: Vec<String> = ["Industry", "Finance", "Science", "Transport"]
        .iter()
        .map(|n| {
            id(&ok(
                front,
                "/v1/agencies",
                office,
                json!({ "name": format!("Department of {n} {unique}") }),
            ))
        })
        .collect();
    let deputy = id(&ok(
        front,
        "/v1/deputies",
        office,
        json!({"name": "Deputy Liu", "delegation": "Changsha", "contact": "+86 731 0000"}),
    ));
    let key = |role: &str, agency: &str| -> String {
        ok(
            front,
            "/v1/admin/keys",
            office,
            json!({"role": role, "agency_id": agency, "label": "e2e"}),
        )["token"]
            .as_str()
            .expect("token")
            .to_owned()
    };
    let keys: Vec<String> = agencies.iter().map(|a| key("agency_admin", a)).collect();
    let sug = ok(
        front,
        "/v1/suggestions",
        office,
        json!({"session_id": session, "number": format!("E2E-{unique}"), "title": "Digital upgrades", "body": "A fund and a platform.", "lead_deputy_id": deputy}),
    );
    let sid = id(&sug);
    ok(
        front,
        &format!("/v1/suggestions/{sid}/start-review"),
        office,
        json!({}),
    );
    ok(
        front,
        &format!("/v1/suggestions/{sid}/review"),
        office,
        json!({"decision": "accept"}),
    );
    let assigned = ok(
        front,
        &format!("/v1/suggestions/{sid}/assignments"),
        office,
        json!({"units": [{"agency_id": agencies[0], "role": "lead"}, {"agency_id": agencies[1], "role": "co"}, {"agency_id": agencies[2], "role": "co"}]}),
    );
    let assignment = |v: &Value, agency: &str| -> String {
        v["assignments"]
            .as_array()
            .expect("assignments")
            .iter()
            .find(|a| a["agency_id"] == agency && a["state"] != "superseded")
            .expect("assignment")["id"]
            .as_str()
            .expect("id")
            .to_owned()
    };
    let (lead, co1, co2) = (
        assignment(&assigned, &agencies[0]),
        assignment(&assigned, &agencies[1]),
        assignment(&assigned, &agencies[2]),
    );

    // The second co-handler contests; the office accepts and reassigns to the fourth unit.
    ok_eventually(
        front,
        &format!("/v1/coordination/assignments/{co2}/adjustment-request"),
        &keys[2],
        json!({"reason": "not within our remit", "suggested_agency_id": agencies[3]}),
    );
    ok_eventually(
        front,
        &format!("/v1/coordination/assignments/{co2}/adjustment-decision"),
        office,
        json!({"outcome": "accept", "agency_id": agencies[3]}),
    );
    let reassigned = get_until(front, &format!("/v1/suggestions/{sid}"), office, |v| {
        v["assignments"]
            .as_array()
            .is_some_and(|a| a.iter().any(|x| x["agency_id"] == agencies[3].as_str()))
    });
    let co3 = assignment(&reassigned, &agencies[3]);

    // Everyone signs for and dispatches.
    for (a, k, agency) in [
        (&lead, &keys[0], &agencies[0]),
        (&co1, &keys[1], &agencies[1]),
        (&co3, &keys[3], &agencies[3]),
    ] {
        ok_eventually(
            front,
            &format!("/v1/coordination/assignments/{a}/sign-for"),
            k,
            json!({}),
        );
        let division = id(&ok(
            front,
            &format!("/v1/agencies/{agency}/divisions"),
            office,
            json!({"name": format!("Division {a}")}),
        ));
        ok_eventually(
            front,
            &format!("/v1/suggestions/{sid}/assignments/{a}/dispatch"),
            k,
            json!({"division_id": division, "handler": "Li Hua", "responsible_leader": "Director Wang"}),
        );
    }
    ok(
        front,
        &format!("/v1/suggestions/{sid}/communications"),
        &keys[0],
        json!({"assignment_id": lead, "phase": "during", "method": "visit", "face_to_face": true, "deputy_ids": [deputy], "summary": "scope of the fund"}),
    );

    // The first co-handler's opinion, with its signed letter (uploaded through the suggestions
    // service, attached through the coordination service).
    let opinion_letter = format!("%PDF-1.7\n会办意见函 {unique}\n");
    let opinion_sha = upload(front, &keys[1], "会办意见函.pdf", &opinion_letter);
    let case = ok_eventually(
        front,
        &format!("/v1/coordination/assignments/{co1}/opinions"),
        &keys[1],
        json!({"document_number": "会办〔2020〕3号", "body": "We agree and will fund the platform.", "signer": {"name": "Deputy Director Zhao", "position": "authorized_leader"}, "letter": opinion_sha}),
    );
    let opinion = case["opinions"][0]["id"]
        .as_str()
        .expect("opinion")
        .to_owned();

    kill("after the opinion, before the waiver");

    ok_eventually(
        front,
        &format!("/v1/coordination/assignments/{co3}/waiver"),
        office,
        json!({"reason": "the new unit joined late"}),
    );
    let reply_letter = format!("%PDF-1.7\n答复函 {unique}\n");
    let reply_sha = upload(front, &keys[0], "答复函.pdf", &reply_letter);
    let replied = ok_eventually(
        front,
        &format!("/v1/suggestions/{sid}/replies"),
        &keys[0],
        json!({"assignment_id": lead, "document_number": "答复〔2020〕7号", "body": "The fund opens in 2021.", "class": "A", "signer": {"name": "Director Chen", "position": "principal_head"}, "opinion_ids": [opinion], "letter": reply_sha}),
    );
    assert_eq!(replied["state"], "replied", "{replied}");
    // Both letters are read back by those who read the record, byte for byte; the unit that
    // left the item reads neither.
    for (sha, text, reader) in [
        (&reply_sha, &reply_letter, office),
        (&opinion_sha, &opinion_letter, keys[0].as_str()),
    ] {
        let path = format!("/v1/suggestions/{sid}/documents/{sha}");
        let (status, body) = http(front, "GET", &path, Some(reader), None);
        assert_eq!((status, &body), (200, text), "{path}");
        let (status, _) = http(front, "GET", &path, Some(&keys[2]), None);
        assert_eq!(status, 404, "{path}");
    }

    // Both co-handlers get their copy; every coordination command reached the suggestion.
    let case = get_until(
        front,
        &format!("/v1/coordination/cases/{sid}"),
        office,
        |v| v["reply_copies"].as_array().is_some_and(|r| r.len() == 2),
    );
    let copied: Vec<&str> = case["reply_copies"]
        .as_array()
        .expect("copies")
        .iter()
        .map(|x| x["agency_id"].as_str().expect("agency"))
        .collect();
    assert!(
        copied.contains(&agencies[1].as_str()) && copied.contains(&agencies[3].as_str()),
        "{case}"
    );
    let statuses: Vec<&str> = case["commands"]
        .as_array()
        .expect("commands")
        .iter()
        .map(|x| x["status"].as_str().expect("status"))
        .collect();
    assert!(
        statuses.iter().all(|s| *s == "confirmed" || *s == "final"),
        "every command applied, none refused or pending: {case}"
    );

    // Nothing doubled: each effect exactly once in the suggestion's history.
    let (status, events) = call(
        front,
        "GET",
        &format!("/v1/suggestions/{sid}/events"),
        office,
        None,
    );
    assert_eq!(status, 200, "{events}");
    let count = |ty: &str| {
        events
            .as_array()
            .expect("events")
            .iter()
            .filter(|e| e["type"] == format!("suggestion.{ty}").as_str())
            .count()
    };
    assert_eq!(count("signed_for"), 3, "{events}");
    assert_eq!(count("adjustment_requested"), 1);
    assert_eq!(count("adjustment_decided"), 1);
    assert_eq!(count("assigned"), 4);
    assert_eq!(count("opinion_submitted"), 1);
    assert_eq!(count("opinion_waived"), 1);
    assert_eq!(count("reply_issued"), 1);
    assert_eq!(count("coordination_refused"), 0);
    [opinion_sha, reply_sha]
}

pub(crate) fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("banli-{name}-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).expect("dir");
    dir
}

pub(crate) fn office_key(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("data/assigning-office.key"))
        .expect("the first start writes the key")
        .trim()
        .to_owned()
}

#[test]
fn a_co_handled_lifecycle_on_the_embedded_default_survives_sigkill() {
    let dir = temp_dir("embedded");
    let mut p = Proc::start(&dir, &[], &[]);
    let office = office_key(&dir);
    let port = p.http;
    let mut killed = Vec::new();
    scenario(port, &office, &mut |at| {
        p.restart();
        killed.push(at.to_owned());
    });
    assert_eq!(killed.len(), 1);
    crate::audit::check_running(&dir, p.http, &office);
    drop(p);
    crate::audit::check_stopped(&dir);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_co_handled_lifecycle_across_processes_on_postgres_and_nats_survives_sigkill() {
    // The documents in an S3-compatible bucket, as the processes of a real deployment would
    // share them.
    let Some(s3) = banli_documents::testing::S3Server::start() else {
        assert!(
            !banli_documents::testing::required(),
            "an S3-compatible server is required: BANLI_TEST_S3_ENDPOINT or moto (pip install 'moto[server]')"
        );
        eprintln!("notice: skipping the distributed test: no S3-compatible server");
        return;
    };
    let bucket = s3.config("e2e/");
    let client = banli_documents::s3::S3::new(bucket.clone()).expect("an S3 client");
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(client.create_bucket()).expect("the bucket");
    let Some(mut cluster) = Cluster::start_with(
        "distributed",
        &[
            ("BANLI_DOCUMENTS_S3_ENDPOINT", bucket.endpoint.as_str()),
            ("BANLI_DOCUMENTS_S3_BUCKET", bucket.bucket.as_str()),
            ("BANLI_DOCUMENTS_S3_PREFIX", "e2e/"),
            ("BANLI_DOCUMENTS_S3_ACCESS_KEY", "test"),
            ("BANLI_DOCUMENTS_S3_SECRET_KEY", "test"),
        ],
    ) else {
        return;
    };
    let office = cluster.office.clone();
    let front = cluster.front.port;
    let Cluster {
        suggestions,
        coordination,
        followup,
        ..
    } = &mut cluster;
    // Kill the coordination service in the middle, and the suggestions and follow-up services
    // right after. Every call goes through the front door.
    let letters = scenario(front, &office, &mut |_| {
        coordination.restart();
        suggestions.restart();
        followup.restart();
    });
    // The letters are in the bucket, each once under its hash.
    for sha in &letters {
        let key = format!("blobs/{}/{sha}", &sha[..2]);
        assert!(rt.block_on(client.exists(&key)).expect("asked"), "{key}");
    }
    // The follow-up process recorded every accountability event in the audit log once.
    let start = Instant::now();
    let types = loop {
        let (status, cp) = http(front, "GET", "/v1/audit/checkpoint", None, None);
        // The restarted process takes over as the log's sequencer once the killed one's
        // database session has ended; until then it answers 503.
        if status == 503 && start.elapsed() < Duration::from_secs(30) {
            std::thread::sleep(Duration::from_millis(100));
            continue;
        }
        assert_eq!(status, 200, "{cp}");
        let size: u64 = cp.lines().nth(1).and_then(|l| l.parse().ok()).unwrap_or(0);
        let types = record_types(front, &office, size);
        if types.iter().any(|t| t == "reply_issued") {
            break types;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the audit log never got the reply: {types:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_scenario_recorded_once(&types);
    // Every deadline of the scenario was met before the follow-up service caught up after its
    // restart, so no alert went out for them and nothing is overdue.
    let (status, overdue) = call(front, "GET", "/v1/followup/overdue", &office, None);
    assert_eq!(status, 200, "{overdue}");
    let (status, alerts) = call(front, "GET", "/v1/followup/alerts", &office, None);
    assert_eq!(status, 200, "{alerts}");
    // The metrics of each process name its event log.
    let (status, text) = http(suggestions.http, "GET", "/metrics", Some(&office), None);
    assert_eq!(status, 200, "{text}");
    assert!(
        text.contains("banli_outbox_unpublished{service=\"suggestions\"}"),
        "{text}"
    );
    assert!(
        text.contains("banli_consumer_parked{service=\"suggestions\"} 0"),
        "{text}"
    );
    // Request metrics by route template, method and status; a duration histogram beside them
    // (since the restart: the reply).
    let value = |text: &str, prefix: &str| -> f64 {
        text.lines()
            .filter(|l| l.starts_with(prefix))
            .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
            .sum()
    };
    assert!(
        value(
            &text,
            "banli_requests_total{transport=\"http\",route=\"/v1/suggestions/{id}/replies\",method=\"POST\",status=\"200\"}"
        ) >= 1.0,
        "{text}"
    );
    assert!(
        value(
            &text,
            "banli_request_duration_seconds_count{transport=\"http\",route=\"/v1/suggestions/{id}/replies\",method=\"POST\"}"
        ) >= 1.0,
        "{text}"
    );
    // Every consumer of the follow-up process has its figures, and they moved. The restarted
    // process may first defer what follows an event the killed one held unacknowledged:
    // JetStream hands that event back after its acknowledgement wait (10 s), so the applied
    // count may take that long to move.
    let start = Instant::now();
    let text = loop {
        let (status, text) = http(followup.http, "GET", "/metrics", Some(&office), None);
        assert_eq!(status, 200, "{text}");
        if value(&text, "banli_consumer_applied_total{consumer=\"followup\"}") >= 1.0 {
            break text;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the follow-up consumer applied nothing after its restart: {text}"
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    for consumer in ["followup", "audit", "followup-webhooks"] {
        assert!(
            text.contains(&format!("banli_consumer_lag{{consumer=\"{consumer}\"}}")),
            "{consumer}: {text}"
        );
    }
    // Each service's outbox and parked events (every inbox of it, its directory replica's
    // too), nothing parked.
    assert!(
        text.contains("banli_outbox_unpublished{service=\"followup\"}"),
        "{text}"
    );
    assert!(
        text.contains("banli_consumer_parked{service=\"followup\"} 0"),
        "{text}"
    );
    let (status, text) = http(coordination.http, "GET", "/metrics", Some(&office), None);
    assert_eq!(status, 200, "{text}");
    assert!(
        text.contains("banli_consumer_parked{service=\"coordination\"} 0"),
        "{text}"
    );
    cluster.stop();
}

/// The scenario's accountability records, each once: four assignments, one adjustment
/// decision, one reply.
fn assert_scenario_recorded_once(types: &[String]) {
    let n = |t: &str| types.iter().filter(|x| *x == t).count();
    assert_eq!(
        (n("assignment"), n("adjustment_decision"), n("reply_issued")),
        (4, 1, 1),
        "{types:?}"
    );
}

/// The record types of the first `size` leaves of the audit log a process serves.
fn record_types(port: u16, key: &str, size: u64) -> Vec<String> {
    let (_, v) = call(
        port,
        "GET",
        &format!("/v1/audit/entries?start=0&end={}", size.max(1) - 1),
        key,
        None,
    );
    v["entries"]
        .as_array()
        .map(|e| {
            e.iter()
                .filter_map(|x| x["record_type"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}
