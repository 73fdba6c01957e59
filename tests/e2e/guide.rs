//! The agency integration guide (`docs/agency-integration.md`) as a user follows it: every
//! `sh` block, in order, in one shell, against a real `banli serve`; then an item assigned to the
//! agency reaches the guide's Python receiver, which checks each signature.

use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::serve::{free_port, http, serve_with};

/// The guide's `sh` blocks, in order (those a system runs before it has an item).
fn blocks(text: &str) -> Vec<String> {
    blocks_tagged(text, "```sh")
}

/// The guide's blocks opened by `fence` (`shell`: those run on an item the agency handles).
fn blocks_tagged(text: &str, fence: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        match (&mut current, line.trim_end()) {
            (None, f) if f == fence => current = Some(String::new()),
            (Some(b), "```") => {
                out.push(std::mem::take(b));
                current = None;
            }
            (Some(b), l) => {
                b.push_str(l);
                b.push('\n');
            }
            _ => {}
        }
    }
    out
}

fn have(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

fn post(port: u16, path: &str, key: &str, body: Value) -> Value {
    let (status, text) = http(port, "POST", path, Some(key), Some(&body.to_string()));
    assert!((200..300).contains(&status), "POST {path}: {status} {text}");
    serde_json::from_str(&text).unwrap_or(Value::Null)
}

/// A session, a deputy and a suggestion, accepted and assigned to `agency` alone by the office;
/// returns the suggestion's id.
fn assigned_to(port: u16, office: &str, agency: &str) -> String {
    let session = post(
        port,
        "/v1/sessions",
        office,
        json!({"body":"npc","term":13,"number":3,"name":"13th PC, 3rd session","opens_on":"2020-01-10","closes_on":"2020-01-16"}),
    );
    let deputy = post(
        port,
        "/v1/deputies",
        office,
        json!({"name": "Deputy Liu", "delegation": "Changsha", "contact": "+86 731 0000"}),
    );
    let sug = post(
        port,
        "/v1/suggestions",
        office,
        json!({"session_id": session["id"], "number": "2020-0417", "title": "Digital upgrades", "body": "A fund and a platform.", "lead_deputy_id": deputy["id"]}),
    );
    let sid = sug["id"].as_str().expect("id").to_owned();
    post(
        port,
        &format!("/v1/suggestions/{sid}/start-review"),
        office,
        json!({}),
    );
    post(
        port,
        &format!("/v1/suggestions/{sid}/review"),
        office,
        json!({"decision": "accept"}),
    );
    post(
        port,
        &format!("/v1/suggestions/{sid}/assignments"),
        office,
        json!({"units": [{"agency_id": agency, "role": "sole"}]}),
    );
    sid
}

#[test]
fn the_integration_guide_works_as_written() {
    if !(have("curl") && have("python3")) {
        assert!(
            std::env::var("BANLI_REQUIRE_SERVICES").is_err(),
            "curl and python3 are needed for the guide's test"
        );
        eprintln!("notice: curl or python3 is missing; the guide's test is skipped");
        return;
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let guide = std::fs::read_to_string(root.join("docs/agency-integration.md")).expect("guide");
    let script = blocks(&guide);
    assert!(
        script.len() >= 5,
        "the guide has its blocks: {}",
        script.len()
    );

    let dir = std::env::temp_dir().join(format!("banli-guide-{}", uuid::Uuid::now_v7()));
    let work = dir.join("work");
    std::fs::create_dir_all(&work).expect("dirs");
    // The guide's receiver listens on loopback: this server allows it, as the guide says.
    std::fs::create_dir_all(&dir).expect("dir");
    let config = dir.join("banli.toml");
    std::fs::write(&config, "webhook_allowed_networks = [\"127.0.0.0/8\"]\n").expect("config");
    let server = serve_with(&dir, &["--config", config.to_str().expect("a path")]);
    let office = std::fs::read_to_string(dir.join("data/assigning-office.key"))
        .expect("the office key")
        .trim()
        .to_owned();
    let receiver_port = free_port();
    // The guide's blocks, then what the test needs to go on: the receiver's pid, the agency.
    let all = format!(
        "set -euo pipefail\n{}\necho $! > receiver.pid\necho \"$AGENCY\" > agency.id\necho \"$KEY\" > agency.key\n",
        script.join("\n")
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(&all)
        .current_dir(&work)
        .env("BANLI", format!("http://127.0.0.1:{}", server.http))
        .env("OFFICE_KEY", &office)
        .env("EXAMPLES", root.join("examples"))
        .env("RECEIVER_PORT", receiver_port.to_string())
        .output()
        .expect("bash runs");
    let pid = std::fs::read_to_string(work.join("receiver.pid")).unwrap_or_default();
    let stop_receiver = || {
        if !pid.trim().is_empty() {
            let _ = Command::new("kill").arg(pid.trim()).status();
        }
    };
    if !out.status.success() {
        stop_receiver();
        panic!(
            "a block of the guide failed: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let agency = std::fs::read_to_string(work.join("agency.id"))
        .expect("agency")
        .trim()
        .to_owned();
    let webhook: Value = serde_json::from_str(
        &std::fs::read_to_string(work.join("webhook.json")).expect("webhook.json"),
    )
    .expect("json");
    assert!(
        webhook["secret"]
            .as_str()
            .is_some_and(|s| s.starts_with("whsec_"))
    );
    let rotated: Value = serde_json::from_str(
        &std::fs::read_to_string(work.join("rotated.json")).expect("rotated.json"),
    )
    .expect("json");
    assert!(
        rotated["secret"]
            .as_str()
            .is_some_and(|s| s.starts_with("whsec_"))
    );

    // The office assigns an item to the agency: the receiver gets it, signed (with both secrets
    // during the overlap; the receiver knows the first).
    let s = server.http;
    let sid = assigned_to(s, &office, &agency);
    let start = Instant::now();
    let log = loop {
        let log = std::fs::read_to_string(work.join("receiver.log")).unwrap_or_default();
        if log.contains("suggestion.assigned") || start.elapsed() > Duration::from_secs(30) {
            break log;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    stop_receiver();
    assert!(
        log.lines()
            .any(|l| l.starts_with("ok ") && l.contains("suggestion.assigned") && l.contains(&sid)),
        "the receiver verified the delivery: {log}"
    );
    assert!(!log.contains("refused"), "{log}");

    // Section 5: the agency handles the item (signs for, dispatches, talks to the deputy), then
    // the guide's `shell` blocks upload the signed letter, reply with it, and prove it from the
    // audit log.
    let key = std::fs::read_to_string(work.join("agency.key"))
        .expect("the agency's key")
        .trim()
        .to_owned();
    let (_, item) = http(
        s,
        "GET",
        &format!("/v1/suggestions/{sid}"),
        Some(&office),
        None,
    );
    let item: Value = serde_json::from_str(&item).expect("json");
    let assignment = item["assignments"][0]["id"]
        .as_str()
        .expect("assignment")
        .to_owned();
    let deputy = item["lead_deputy_id"].as_str().expect("deputy").to_owned();
    post(
        s,
        &format!("/v1/coordination/assignments/{assignment}/sign-for"),
        &key,
        json!({}),
    );
    let division = post(
        s,
        &format!("/v1/agencies/{agency}/divisions"),
        &office,
        json!({"name": "产业政策处"}),
    );
    let dispatch =
        json!({"division_id": division["id"], "handler": "李华", "responsible_leader": "王处长"});
    let start = Instant::now();
    loop {
        // The sign-for reaches the suggestions service through the event log.
        let path = format!("/v1/suggestions/{sid}/assignments/{assignment}/dispatch");
        let (status, text) = http(s, "POST", &path, Some(&key), Some(&dispatch.to_string()));
        if status == 200 {
            break;
        }
        assert!(
            status == 409 && start.elapsed() < Duration::from_secs(20),
            "{status} {text}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    post(
        s,
        &format!("/v1/suggestions/{sid}/communications"),
        &key,
        json!({"assignment_id": assignment, "phase": "during", "method": "visit", "face_to_face": true, "deputy_ids": [deputy], "summary": "面商"}),
    );
    let auditor = post(
        s,
        "/v1/admin/keys",
        &office,
        json!({"role": "auditor", "label": "inspector"}),
    )["token"]
        .as_str()
        .expect("token")
        .to_owned();
    let documents = blocks_tagged(&guide, "```shell");
    assert!(documents.len() >= 3, "section 5 has its blocks");
    let bin = crate::banli_binary();
    let path = format!(
        "{}:{}",
        bin.parent().expect("a directory").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "set -euo pipefail\ntrap 'echo \"failed: $BASH_COMMAND\" >&2' ERR\n{}",
            documents.join("\n")
        ))
        .current_dir(&work)
        .env("BANLI", format!("http://127.0.0.1:{s}"))
        .env("KEY", &key)
        .env("ITEM", &sid)
        .env("ASSIGNMENT", &assignment)
        .env("AUDITOR_KEY", &auditor)
        .env("PATH", path)
        .output()
        .expect("bash runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "a block of section 5 failed: {stdout}\n{}\nentries.json: {}",
        String::from_utf8_lossy(&out.stderr),
        std::fs::read_to_string(work.join("entries.json"))
            .unwrap_or_default()
            .chars()
            .take(3000)
            .collect::<String>()
    );
    assert!(stdout.contains("ok: leaf"), "the proof verified: {stdout}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// A supervision notice to an agency (from the follow-up service, through the event log) is in
/// that agency's feed, and so is its acknowledgement; another agency's feed has neither.
#[test]
fn supervision_notices_reach_the_notified_agencys_feed() {
    let dir = std::env::temp_dir().join(format!("banli-notices-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).expect("dir");
    let server = serve_with(&dir, &[]);
    let s = server.http;
    let office = std::fs::read_to_string(dir.join("data/assigning-office.key"))
        .expect("the office key")
        .trim()
        .to_owned();
    let agency = |name: &str| {
        let a = post(s, "/v1/agencies", &office, json!({ "name": name }));
        let id = a["id"].as_str().expect("id").to_owned();
        let key = post(
            s,
            "/v1/admin/keys",
            &office,
            json!({"role": "agency_admin", "agency_id": id, "label": "OA"}),
        );
        (id, key["token"].as_str().expect("token").to_owned())
    };
    let (a, a_key) = agency("Department of Industry");
    let (_, b_key) = agency("Department of Finance");
    let sid = assigned_to(s, &office, &a);
    // The follow-up service knows of the assignment once its consumer has the event.
    let due = time::OffsetDateTime::now_utc().date() + time::Duration::days(20);
    let start = Instant::now();
    let notice = loop {
        let body = json!({"target_agency_id": a, "suggestion_ids": [sid], "level": "notice", "body": "请于20日内书面报告办理进展。", "response_due": due.to_string()});
        let (status, text) = http(
            s,
            "POST",
            "/v1/followup/notices",
            Some(&office),
            Some(&body.to_string()),
        );
        if (200..300).contains(&status) {
            break serde_json::from_str::<Value>(&text).expect("json");
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "POST notice: {status} {text}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let nid = notice["id"].as_str().expect("notice id").to_owned();
    post(
        s,
        &format!("/v1/followup/notices/{nid}/acknowledge"),
        &a_key,
        json!({}),
    );
    // The unit answers with its signed response letter: its own upload only; the notice's
    // readers download it, nobody else.
    let upload = |key: &str, text: &str| -> String {
        let (status, body) = http(
            s,
            "POST",
            "/v1/documents?name=reply.pdf",
            Some(key),
            Some(text),
        );
        assert_eq!(status, 201, "{body}");
        serde_json::from_str::<Value>(&body).expect("json")["sha256"]
            .as_str()
            .expect("sha256")
            .to_owned()
    };
    let letter = "%PDF-1.7\n关于督办事项的书面报告\n";
    let mine = upload(&a_key, letter);
    let theirs = upload(&b_key, "%PDF-1.7\nanother agency's letter\n");
    let answer = |sha: &str| {
        json!({"response": "已召开专题会议，书面报告附后。", "documents": [sha]}).to_string()
    };
    let path = format!("/v1/followup/notices/{nid}/response");
    let (status, text) = http(s, "POST", &path, Some(&a_key), Some(&answer(&theirs)));
    assert_eq!(status, 404, "another agency's document: {text}");
    let (status, text) = http(s, "POST", &path, Some(&a_key), Some(&answer(&mine)));
    assert_eq!(status, 200, "{text}");
    let answered: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(
        answered["response_documents"][0]["sha256"],
        mine.as_str(),
        "{answered}"
    );
    let doc = format!("/v1/followup/notices/{nid}/documents/{mine}");
    let (status, body) = http(s, "GET", &doc, Some(&office), None);
    assert_eq!((status, body.as_str()), (200, letter));
    let (status, _) = http(s, "GET", &doc, Some(&b_key), None);
    assert_eq!(status, 404);
    let feed_types = |key: &str| -> Vec<(String, String)> {
        let (status, text) = http(s, "GET", "/v1/feed?limit=1000", Some(key), None);
        assert_eq!(status, 200, "{text}");
        let v: Value = serde_json::from_str(&text).expect("json");
        v["items"]
            .as_array()
            .expect("items")
            .iter()
            .map(|i| {
                (
                    i["event_type"].as_str().unwrap_or_default().to_owned(),
                    i["payload"]["data"]["notice"]["id"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned(),
                )
            })
            .collect()
    };
    let start = Instant::now();
    loop {
        let got = feed_types(&a_key);
        let has = |t: &str| got.iter().any(|(ty, id)| ty == t && *id == nid);
        if has("supervision.notice_issued") && has("supervision.notice_acknowledged") {
            break;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the agency's feed: {got:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        feed_types(&b_key)
            .iter()
            .all(|(ty, _)| !ty.starts_with("supervision.")),
        "not notified, not in the feed"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
