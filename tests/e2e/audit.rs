//! The audit log of `banli serve` after a co-handled lifecycle: the accountability events are in
//! it, the checkpoint and the public key are public, a proof served over REST verifies with
//! `banli audit verify-proof` from files, `banli audit checkpoint --save` keeps witness copies,
//! `banli audit verify` (with only the public key) passes on the stored log against them and
//! names the leaf once a byte of it is changed.

use std::path::Path;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use serde_json::Value;

use crate::banli_binary;
use crate::serve::http;

/// `banli ARGS` in `dir`, with nothing from the caller's environment choosing its data.
pub(crate) fn banli(dir: &Path, args: &[&str]) -> Output {
    Command::new(banli_binary())
        .args(args)
        .current_dir(dir)
        .env_remove("BANLI_DATABASE_URL")
        .env_remove("BANLI_DATA_DIR")
        .env_remove("BANLI_CONFIG")
        .env("BANLI_LOG", "warn")
        .output()
        .expect("banli runs")
}

fn get_json(port: u16, path: &str, key: &str) -> (u16, Value) {
    let (status, body) = http(port, "GET", path, Some(key), None);
    (
        status,
        serde_json::from_str(&body).unwrap_or(Value::String(body)),
    )
}

/// While the server runs: the records, the public reads, and a proof checked offline.
pub(crate) fn check_running(dir: &Path, port: u16, office: &str) {
    // The consumer records the events a little after they happen.
    let start = Instant::now();
    let (size, entries) = loop {
        let (status, note) = http(port, "GET", "/v1/audit/checkpoint", None, None);
        assert_eq!(status, 200, "the checkpoint is public: {note}");
        let size: u64 = note
            .lines()
            .nth(1)
            .and_then(|l| l.parse().ok())
            .expect("a size line");
        if size > 0 {
            let (status, v) = get_json(
                port,
                &format!("/v1/audit/entries?start=0&end={}", size - 1),
                office,
            );
            assert_eq!(status, 200, "{v}");
            let types: Vec<&str> = v["entries"]
                .as_array()
                .expect("entries")
                .iter()
                .filter_map(|e| e["record_type"].as_str())
                .collect();
            if types.contains(&"reply_issued") && types.contains(&"adjustment_decision") {
                assert!(types.contains(&"assignment"), "{types:?}");
                break (size, v);
            }
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the audit log never recorded the reply (size {size})"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    // Personal data stays out of the leaves (the reply's signer is named in the event).
    for e in entries["entries"].as_array().expect("entries") {
        let leaf = STANDARD
            .decode(e["leaf_input"].as_str().expect("leaf"))
            .expect("base64");
        let text = String::from_utf8(leaf).expect("utf-8 JSON");
        assert!(!text.contains("\"name\""), "{text}");
    }
    let (status, _) = http(port, "GET", "/v1/audit/entries?start=0&end=1", None, None);
    assert_eq!(status, 401, "entries need a key");
    let (status, v) = get_json(
        port,
        &format!(
            "/v1/audit/proofs/inclusion?index=0&tree_size={}",
            size + 1000
        ),
        office,
    );
    assert_eq!(status, 400, "{v}");
    assert!(
        v["detail"]
            .as_str()
            .is_some_and(|d| d.contains("tree_size")),
        "{v}"
    );
    let (status, v) = get_json(
        port,
        "/v1/audit/proofs/consistency?first=2&second=1",
        office,
    );
    assert_eq!(status, 400, "{v}");
    assert!(
        v["detail"].as_str().is_some_and(|d| d.contains("first")),
        "{v}"
    );

    // A deputy's or an inspector's check: the checkpoint, the key, the proof and the leaf as
    // files, nothing else.
    let (_, note) = http(port, "GET", "/v1/audit/checkpoint", None, None);
    let (status, key) = http(port, "GET", "/v1/audit/public-key", None, None);
    assert_eq!(status, 200);
    let signed: u64 = note
        .lines()
        .nth(1)
        .and_then(|l| l.parse().ok())
        .expect("size");
    let index = 1.min(signed - 1);
    let (status, proof) = get_json(
        port,
        &format!("/v1/audit/proofs/inclusion?index={index}&tree_size={signed}"),
        office,
    );
    assert_eq!(status, 200, "{proof}");
    let (_, one) = get_json(
        port,
        &format!("/v1/audit/entries?start={index}&end={index}"),
        office,
    );
    let leaf = STANDARD
        .decode(one["entries"][0]["leaf_input"].as_str().expect("leaf"))
        .expect("base64");
    let files = dir.join("proof");
    std::fs::create_dir_all(&files).expect("dir");
    std::fs::write(files.join("checkpoint"), &note).expect("write");
    std::fs::write(files.join("key"), &key).expect("write");
    std::fs::write(files.join("proof.json"), proof.to_string()).expect("write");
    std::fs::write(files.join("leaf"), &leaf).expect("write");
    let verify = |leaf_file: &str| {
        banli(
            &files,
            &[
                "audit",
                "verify-proof",
                "--public-key",
                "key",
                "--checkpoint",
                "checkpoint",
                "--inclusion",
                "proof.json",
                "--leaf-input",
                leaf_file,
            ],
        )
    };
    let out = verify("leaf");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut other = leaf.clone();
    other[5] ^= 1;
    std::fs::write(files.join("other"), &other).expect("write");
    let out = verify("other");
    assert!(!out.status.success(), "an altered leaf must not verify");

    // A witness copy of the checkpoint, kept outside the database: one command a cron line
    // runs; asked again, it keeps one file per size and sends the ETag.
    let base = format!("http://127.0.0.1:{port}");
    for round in 0..2 {
        let out = banli(
            dir,
            &[
                "audit",
                "checkpoint",
                "--url",
                &base,
                "--save",
                "witness",
                "--public-key",
                "proof/key",
            ],
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "round {round}: {stdout}{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            stdout.starts_with("saved ") || (round > 0 && stdout.starts_with("unchanged")),
            "round {round}: {stdout}"
        );
    }
    assert!(dir.join("witness/latest.etag").exists());

    // Every agency's feed carries the log's checkpoints: the copy an agency's system keeps is a
    // trusted checkpoint for `verify` (check_stopped reads the witness directory).
    let (status, agencies) = get_json(port, "/v1/agencies", office);
    assert_eq!(status, 200, "{agencies}");
    let agency = agencies
        .as_array()
        .expect("agencies")
        .iter()
        .find(|a| a["assigning_office"] == false)
        .and_then(|a| a["id"].as_str())
        .expect("an agency")
        .to_owned();
    let start = Instant::now();
    let item = loop {
        let (status, page) = get_json(
            port,
            &format!("/v1/feed?agency_id={agency}&limit=1000"),
            office,
        );
        assert_eq!(status, 200, "{page}");
        if let Some(item) = page["items"]
            .as_array()
            .expect("items")
            .iter()
            .find(|i| i["event_type"] == "audit.checkpoint")
        {
            break item.clone();
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "no audit.checkpoint in the agency's feed: {page}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(item["aggregate_type"], "audit_log", "{item}");
    let data = &item["payload"]["data"];
    let size = data["size"].as_u64().expect("size");
    assert!(size > 0, "{item}");
    let note = data["note"].as_str().expect("the signed note");
    assert!(
        note.lines().nth(1) == Some(size.to_string().as_str()),
        "{note}"
    );
    std::fs::write(dir.join(format!("witness/feed-{size}.checkpoint")), note).expect("write");
}

/// After the server stopped: the stored log verifies, and a changed byte is named.
pub(crate) fn check_stopped(dir: &Path) {
    // Never the key beside the database being checked: the public key is asked for.
    let out = banli(dir, &["audit", "verify"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--public-key"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let verify = |extra: &[&str]| {
        let mut args = vec!["audit", "verify", "--public-key", "proof/key"];
        args.extend_from_slice(extra);
        banli(dir, &args)
    };
    let out = verify(&["--trusted-checkpoints", "witness"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.starts_with("ok: "), "{stdout}");
    assert!(!stdout.contains("with 0 trusted"), "{stdout}");

    // A trusted checkpoint that is not one: its own exit code, the file named.
    std::fs::write(dir.join("bad.checkpoint"), "not a checkpoint\n").expect("write");
    let out = verify(&["--trusted-checkpoint", "bad.checkpoint"]);
    assert_eq!(out.status.code(), Some(4));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("bad.checkpoint"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let rt = tokio::runtime::Runtime::new().expect("runtime");
    rt.block_on(async {
        let url = banli_db::sqlite_url_for(&dir.join("data"), "audit.db");
        let pool = banli_db::Pool::connect(&url, &banli_db::ConnectOptions::default())
            .await
            .expect("audit.db");
        let banli_db::Pool::Sqlite(p) = &pool else {
            panic!("SQLite");
        };
        let refused = sqlx::query("UPDATE audit_leaves SET leaf_input = X'00' WHERE leaf_index = 1")
            .execute(p)
            .await;
        assert!(refused.is_err(), "the triggers refuse changes");
        sqlx::query("DROP TRIGGER audit_leaves_no_update").execute(p).await.expect("drop");
        sqlx::query("UPDATE audit_leaves SET leaf_input = CAST(REPLACE(CAST(leaf_input AS TEXT), 'assign', 'assigx') AS BLOB) WHERE leaf_index = 0")
            .execute(p)
            .await
            .expect("tamper");
        pool.close().await;
    });
    let out = verify(&[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(3),
        "a changed leaf must fail verification as tampering: {stderr}"
    );
    assert!(stderr.contains("leaf 0"), "{stderr}");
}

/// `banli audit quarantine` and `banli audit erase` never run beside a sequencer: while
/// `banli serve` holds the audit log's sequencer lock they are refused, naming what to do; once
/// the server has stopped they take the lock and look at the log (here whole and without
/// personal data: nothing to set aside, nobody to erase).
#[test]
fn quarantine_and_erase_are_refused_while_a_sequencer_runs() {
    let dir = crate::distributed::temp_dir("quarantine");
    let server = crate::serve::serve_with(&dir, &[]);
    // Until the process holds the log's sequencer lock (a moment after it answers /healthz),
    // the log answers 503 `unavailable` and says to retry: the contract promises it within
    // seconds.
    let start = Instant::now();
    let key = loop {
        let (status, key) = http(server.http, "GET", "/v1/audit/public-key", None, None);
        if status == 200 {
            break key;
        }
        assert!(
            status == 503 && start.elapsed() < Duration::from_secs(10),
            "{status} {key}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    std::fs::write(dir.join("audit.pub"), &key).expect("write the public key");
    let args = [
        "audit",
        "quarantine",
        "--from",
        "0",
        "--reason",
        "a test",
        "--public-key",
        "audit.pub",
    ];
    let out = banli(&dir, &args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("stop every follow-up process first"), "{err}");
    assert!(crate::serve::terminate(server).success());
    let out = banli(&dir, &args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{err}");
    assert!(err.contains("nothing to set aside"), "{err}");
    let _ = std::fs::remove_dir_all(&dir);
}
