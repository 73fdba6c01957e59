//! `banli backup` of a running server under load and `banli restore` into a new data directory:
//! the restored server starts, holds what was there before the backup and nothing after it, and
//! its audit log verifies against a checkpoint saved before the backup. Damaged, partial and
//! newer backups are refused with the file named, and nothing is overwritten.

use std::path::Path;
use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::audit::banli;
use crate::distributed::{Proc, office_key, temp_dir};
use crate::serve::http;

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn post(port: u16, path: &str, key: &str, body: Value) -> (u16, Value) {
    let (status, body) = http(port, "POST", path, Some(key), Some(&body.to_string()));
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

fn created(port: u16, path: &str, key: &str, body: Value) -> String {
    let (status, v) = post(port, path, key, body);
    assert!(status == 200 || status == 201, "{path}: {status} {v}");
    v["id"].as_str().expect("id").to_owned()
}

/// One suggestion registered, reviewed and assigned; its id, or the first refusal.
fn one_suggestion(
    port: u16,
    key: &str,
    session: &str,
    deputy: &str,
    agencies: &[String],
    n: usize,
) -> Result<String, String> {
    let (status, v) = post(
        port,
        "/v1/suggestions",
        key,
        json!({"session_id": session, "number": format!("BK-{n}"), "title": "Roads", "body": "Repair the county roads.", "lead_deputy_id": deputy}),
    );
    if status != 201 {
        return Err(format!("register: {status} {v}"));
    }
    let id = v["id"].as_str().unwrap_or_default().to_owned();
    for (path, body) in [
        (format!("/v1/suggestions/{id}/start-review"), json!({})),
        (
            format!("/v1/suggestions/{id}/review"),
            json!({"decision": "accept"}),
        ),
        (
            format!("/v1/suggestions/{id}/assignments"),
            json!({"units": [{"agency_id": agencies[0], "role": "lead"}, {"agency_id": agencies[1], "role": "co"}]}),
        ),
    ] {
        let (status, v) = post(port, &path, key, body);
        if !(200..300).contains(&status) {
            return Err(format!("{path}: {status} {v}"));
        }
    }
    Ok(id)
}

fn sha(path: &Path) -> Vec<u8> {
    std::fs::read(path).expect("read")
}

#[test]
fn a_backup_taken_under_load_restores_starts_and_verifies_against_an_earlier_checkpoint() {
    let dir = temp_dir("backup");
    let p = Proc::start(&dir, &[], &[]);
    let office = office_key(&dir);
    let port = p.http;
    let session = created(
        port,
        "/v1/sessions",
        &office,
        json!({"body":"npc","term":14,"number":2,"name":"14th PC, 2nd session","opens_on":"2024-01-10","closes_on":"2024-01-16"}),
    );
    let agencies: Vec<String> = ["Transport", "Finance"]
        .iter()
        .map(|n| {
            created(
                port,
                "/v1/agencies",
                &office,
                json!({ "name": format!("Department of {n}") }),
            )
        })
        .collect();
    let deputy = created(
        port,
        "/v1/deputies",
        &office,
        json!({"name": "Deputy Chen", "delegation": "Yueyang", "contact": "+86 730 0000"}),
    );
    let before = one_suggestion(port, &office, &session, &deputy, &agencies, 0).expect("first");

    // A witness of the log before the backup: the audit consumer records a little later.
    let (status, public_key) = http(port, "GET", "/v1/audit/public-key", None, None);
    assert_eq!(status, 200);
    std::fs::write(dir.join("audit.pub"), public_key).expect("key");
    let url = format!("http://127.0.0.1:{port}");
    let start = Instant::now();
    loop {
        let (_, note) = http(port, "GET", "/v1/audit/checkpoint", None, None);
        if note.lines().nth(1).is_some_and(|l| l != "0") {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(20), "no checkpoint");
        std::thread::sleep(Duration::from_millis(50));
    }
    let out = banli(
        &dir,
        &[
            "audit",
            "checkpoint",
            "--url",
            &url,
            "--save",
            "witness",
            "--public-key",
            "audit.pub",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));

    // Load while the backup runs: every command must succeed.
    let stop = Arc::new(AtomicBool::new(false));
    let load = {
        let (stop, office, session, deputy, agencies) = (
            stop.clone(),
            office.clone(),
            session.clone(),
            deputy.clone(),
            agencies.clone(),
        );
        std::thread::spawn(move || {
            let mut ids = Vec::new();
            let mut n = 1;
            while !stop.load(Ordering::Relaxed) {
                match one_suggestion(port, &office, &session, &deputy, &agencies, n) {
                    Ok(id) => ids.push(id),
                    Err(e) => return Err(e),
                }
                n += 1;
            }
            Ok(ids)
        })
    };
    std::thread::sleep(Duration::from_millis(500));
    let out = banli(&dir, &["backup", "--to", "backup"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("backed up 4 databases"),
        "{}",
        text(&out)
    );
    std::thread::sleep(Duration::from_millis(300));
    let after = one_suggestion(port, &office, &session, &deputy, &agencies, 1_000_000)
        .expect("a suggestion after the backup");
    stop.store(true, Ordering::Relaxed);
    let during = load
        .join()
        .expect("load thread")
        .expect("no command refused while the backup ran");
    assert!(!during.is_empty(), "the load ran");
    drop(p);

    // A second backup never goes into the first.
    let out = banli(&dir, &["backup", "--to", "backup"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("not empty"), "{}", text(&out));
    // PostgreSQL has pg_dump.
    let out = banli(
        &dir,
        &[
            "--database-url",
            "postgres://postgres@127.0.0.1:1/none",
            "backup",
            "--to",
            "pg",
        ],
    );
    assert!(!out.status.success());
    assert!(text(&out).contains("pg_dump"), "{}", text(&out));

    // Restore into a new data directory; the server starts on it.
    let out = banli(
        &dir,
        &["--data-dir", "restored", "restore", "--from", "backup"],
    );
    assert!(out.status.success(), "{}", text(&out));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.join("restored/audit-signing.key"))
            .expect("the signing key is restored")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    // The restored log against the witness taken before the backup, with the public key only.
    let verify_restored = || {
        banli(
            &dir,
            &[
                "--data-dir",
                "restored",
                "audit",
                "verify",
                "--public-key",
                "audit.pub",
                "--trusted-checkpoints",
                "witness",
            ],
        )
    };
    let out = verify_restored();
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("consistent with 1 trusted checkpoints"),
        "{}",
        text(&out)
    );

    let r = Proc::start(&dir, &["--data-dir", "restored"], &[]);
    let get = |id: &str| {
        http(
            r.http,
            "GET",
            &format!("/v1/suggestions/{id}"),
            Some(&office),
            None,
        )
        .0
    };
    assert_eq!(
        get(&before),
        200,
        "what was there before the backup is restored"
    );
    assert_eq!(get(&after), 404, "what came after the backup is not");
    let restored = during.iter().filter(|id| get(id) == 200).count();
    assert!(
        restored > 0,
        "some of the load before the backup is restored"
    );
    // The restored platform works on: the same keys, the log grows on the restored key.
    one_suggestion(r.http, &office, &session, &deputy, &agencies, 2_000_000)
        .expect("the restored server takes commands");
    drop(r);
    let out = verify_restored();
    assert!(out.status.success(), "{}", text(&out));

    // Never over existing files.
    let held = sha(&dir.join("restored/banli.db"));
    let out = banli(
        &dir,
        &["--data-dir", "restored", "restore", "--from", "backup"],
    );
    assert!(!out.status.success());
    assert!(text(&out).contains("never overwrites"), "{}", text(&out));
    assert_eq!(sha(&dir.join("restored/banli.db")), held);

    // Damaged backups: each refused naming the file, nothing written.
    let copy = |name: &str| {
        let to = dir.join(name);
        std::fs::create_dir_all(&to).expect("dir");
        for e in std::fs::read_dir(dir.join("backup")).expect("backup") {
            let e = e.expect("entry");
            std::fs::copy(e.path(), to.join(e.file_name())).expect("copy");
        }
        to
    };
    let refused = |from: &str, needle: &str| {
        let target = format!("target-{from}");
        let out = banli(&dir, &["--data-dir", &target, "restore", "--from", from]);
        assert!(!out.status.success(), "{from}: {}", text(&out));
        assert!(text(&out).contains(needle), "{from}: {}", text(&out));
        let left = std::fs::read_dir(dir.join(&target)).map_or(0, |d| d.count());
        assert_eq!(left, 0, "{from}: nothing restored");
    };
    let missing = copy("missing");
    std::fs::remove_file(missing.join("audit.db")).expect("rm");
    refused("missing", "audit.db");
    let damaged = copy("damaged");
    let mut bytes = std::fs::read(damaged.join("followup.db")).expect("read");
    let at = bytes.len() / 2;
    bytes[at] ^= 0x55;
    std::fs::write(damaged.join("followup.db"), bytes).expect("write");
    refused("damaged", "followup.db does not match the manifest");
    let partial = copy("partial");
    std::fs::remove_file(partial.join("manifest.json")).expect("rm");
    refused("partial", "manifest.json");
    let newer = copy("newer");
    let manifest = std::fs::read_to_string(newer.join("manifest.json")).expect("manifest");
    let mut m: Value = serde_json::from_str(&manifest).expect("json");
    for f in m["files"].as_array_mut().expect("files") {
        if f["name"] == "coordination.db" {
            f["migration"] = json!(99_999_999_999_i64);
        }
    }
    std::fs::write(newer.join("manifest.json"), m.to_string()).expect("write");
    refused("newer", "coordination.db is from a newer schema");

    let _ = std::fs::remove_dir_all(&dir);
}
