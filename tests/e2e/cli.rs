//! The `banli` command line as a user runs it.

use std::process::{Command, Output};

use crate::banli_binary;

fn banli(dir: &std::path::Path, args: &[&str]) -> Output {
    Command::new(banli_binary())
        .args(args)
        .current_dir(dir)
        .env_remove("BANLI_DATABASE_URL")
        .env_remove("BANLI_DATA_DIR")
        .env_remove("BANLI_CONFIG")
        .output()
        .expect("banli runs")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn temp_dir() -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("banli-e2e-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    dir
}

#[test]
fn init_creates_the_embedded_database_once() {
    let dir = temp_dir();
    let first = banli(&dir, &["init"]);
    assert!(first.status.success(), "{}", text(&first.stderr));
    let out = text(&first.stdout);
    assert!(
        out.contains("migrations applied") && out.contains("assigning office"),
        "{out}"
    );
    assert!(dir.join("data/banli.db").exists());
    let office = out
        .lines()
        .find(|l| l.starts_with("assigning office"))
        .map(str::to_owned);
    let second = banli(&dir, &["init"]);
    assert!(second.status.success(), "{}", text(&second.stderr));
    assert_eq!(
        text(&second.stdout)
            .lines()
            .find(|l| l.starts_with("assigning office"))
            .map(str::to_owned),
        office,
        "the same office, not a second one"
    );
    std::fs::remove_dir_all(dir).expect("cleanup");
}

#[test]
fn init_on_postgres() {
    let rt = tokio::runtime::Runtime::new().expect("runtime");
    let Some(db) = rt.block_on(banli_db::testing::TestDb::postgres()) else {
        return;
    };
    let dir = temp_dir();
    let out = banli(&dir, &["init", "--database-url", &db.url]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("(Postgres)"),
        "{}",
        text(&out.stdout)
    );
    assert!(
        !dir.join("data").exists(),
        "no SQLite file when PostgreSQL is configured"
    );
    rt.block_on(db.drop_db());
    std::fs::remove_dir_all(dir).expect("cleanup");
}

#[test]
fn deadlines_come_with_their_explanation() {
    let dir = temp_dir();
    let out = banli(
        &dir,
        &[
            "calendar",
            "deadline",
            "--start",
            "2024-02-01",
            "--working-days",
            "20",
        ],
    );
    assert!(out.status.success(), "{}", text(&out.stderr));
    let s = text(&out.stdout);
    assert!(s.starts_with("2024-03-05\n"), "{s}");
    assert!(
        s.contains("counted the make-up working day 2024-02-04") && s.contains("2024-02-18"),
        "{s}"
    );

    let out = banli(
        &dir,
        &[
            "calendar",
            "deadline",
            "--start",
            "2026-12-28",
            "--working-days",
            "10",
        ],
    );
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("outside the calendar data"),
        "{}",
        text(&out.stderr)
    );

    let out = banli(
        &dir,
        &[
            "calendar",
            "deadline",
            "--start",
            "2020-02-30",
            "--working-days",
            "1",
        ],
    );
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("not a YYYY-MM-DD date"),
        "{}",
        text(&out.stderr)
    );
    std::fs::remove_dir_all(dir).expect("cleanup");
}

#[test]
fn bad_configuration_and_profiles_are_refused_with_the_reason() {
    let dir = temp_dir();
    std::fs::write(
        dir.join("bad.toml"),
        "http_addr = \"127.0.0.1:8080\"\nlisten = 1\n",
    )
    .expect("write");
    let out = banli(&dir, &["--config", "bad.toml", "init"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert!(err.contains("bad.toml") && err.contains("listen"), "{err}");

    std::fs::write(
        dir.join("p.toml"),
        include_str!("../../crates/domain/profiles/hunan.toml")
            .replace("rehandling_rounds = 1", "rehandling_rounds = -1"),
    )
    .expect("write");
    let out = banli(&dir, &["profile", "check", "p.toml"]);
    assert!(!out.status.success());
    assert!(
        text(&out.stderr).contains("p.toml: line"),
        "{}",
        text(&out.stderr)
    );

    let out = banli(
        &dir,
        &[
            "--database-url",
            "postgres://app:hunter2@127.0.0.1:1/x",
            "--dump-config",
            "init",
        ],
    );
    assert!(out.status.success());
    assert!(
        !text(&out.stdout).contains("hunter2") && text(&out.stdout).contains("app:***@"),
        "{}",
        text(&out.stdout)
    );
    std::fs::remove_dir_all(dir).expect("cleanup");
}

#[test]
fn users_are_created_listed_and_reset_from_the_command_line() {
    let dir = temp_dir();
    let created = banli(
        &dir,
        &[
            "users",
            "create",
            "--username",
            "office.li",
            "--role",
            "assigning_office",
        ],
    );
    assert!(created.status.success(), "{}", text(&created.stderr));
    let out = text(&created.stdout);
    let token = out
        .lines()
        .last()
        .expect("the token, last")
        .trim()
        .to_owned();
    assert_eq!(token.len(), 64, "{out}");
    assert!(out.contains("/set-password?token="), "{out}");
    let list = text(&banli(&dir, &["users", "list"]).stdout);
    assert!(
        list.contains("office.li\tassigning_office") && list.contains("password not set"),
        "{list}"
    );
    let again = banli(
        &dir,
        &[
            "users",
            "create",
            "--username",
            "office.li",
            "--role",
            "assigning_office",
        ],
    );
    assert!(!again.status.success());
    assert!(
        text(&again.stderr).contains("exists"),
        "{}",
        text(&again.stderr)
    );
    let bad = banli(
        &dir,
        &[
            "users",
            "create",
            "--username",
            "h",
            "--role",
            "handler",
            "--agency",
            "No such agency",
        ],
    );
    assert!(!bad.status.success());
    let reset = banli(
        &dir,
        &["users", "reset-password", "--username", "office.li"],
    );
    assert!(reset.status.success(), "{}", text(&reset.stderr));
    let new_token = text(&reset.stdout)
        .lines()
        .last()
        .expect("token")
        .trim()
        .to_owned();
    assert_eq!(new_token.len(), 64);
    assert_ne!(new_token, token, "a new token; the old one no longer works");
    let unknown = banli(&dir, &["users", "reset-password", "--username", "nobody"]);
    assert!(!unknown.status.success());
    std::fs::remove_dir_all(dir).expect("cleanup");
}
