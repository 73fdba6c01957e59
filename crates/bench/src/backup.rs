//! `banli backup` of a running server's data directory holding N audit leaves and M
//! suggestions: time, size and how long the writers were held, beside `cp` of the same files
//! (the baseline: a plain copy, which is not consistent while the server writes), and the time
//! of `banli restore` from it.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, ensure};
use banli_auditlog::store::Store;
use banli_db::{ConnectOptions, Pool};

use crate::client::Http;
use crate::server::{Server, banli_binary};

/// `banli serve`'s default origin: the loaded log must be the one the server opens.
const ORIGIN: &str = "banli.local/audit";

fn size_of(dir: &Path) -> Result<u64> {
    let mut total = 0;
    for e in std::fs::read_dir(dir)? {
        let m = e?.metadata()?;
        if m.is_file() {
            total += m.len();
        }
    }
    Ok(total)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Runs `banli ARGS` and returns its output; fails with its stderr.
fn banli(args: &[&str]) -> Result<String> {
    let out = std::process::Command::new(banli_binary()?)
        .args(args)
        .env("BANLI_LOG", "warn")
        .output()
        .context("running banli")?;
    ensure!(
        out.status.success(),
        "banli {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

pub async fn run(leaves: u64, suggestions: usize) -> Result<()> {
    println!(
        "\n== backup of a data directory (SQLite): {leaves} audit leaves, {suggestions} suggestions"
    );
    let dir: PathBuf =
        std::env::temp_dir().join(format!("banli-bench-{}", uuid::Uuid::now_v7().simple()));
    let data = dir.join("data");
    banli_db::create_private_dir(&data)?;

    // The log first, signed with the key the server then opens it with.
    let t = Instant::now();
    let signer =
        banli_auditlog::keys::load_or_create(&data.join(banli_auditlog::keys::KEY_FILE), ORIGIN)?;
    let pool = Pool::connect(
        &banli_db::sqlite_url_for(&data, "audit.db"),
        &ConnectOptions {
            durable: true,
            ..Default::default()
        },
    )
    .await?;
    let store = Store::new(pool.clone());
    store.migrate().await?;
    crate::audit::load(&store, &signer, ORIGIN, leaves).await?;
    pool.close().await;
    let server = Server::sqlite_in(dir.clone()).await?;
    let http = Http::new(server.http_url.clone());
    let world = crate::setup(&http, &server.office_key).await?;
    let stored = crate::submit_many(&http, &world, suggestions).await?;
    println!(
        "  loaded in {:.0} s ({leaves} leaves directly, {stored} suggestions through REST)",
        t.elapsed().as_secs_f64()
    );
    // Let the consumers settle so that both copies see the same files.
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;

    let copy = dir.join("cp");
    let t = Instant::now();
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(&data)
        .arg(&copy)
        .status()?;
    ensure!(status.success(), "cp failed");
    let cp = t.elapsed();
    let cp_size = size_of(&copy)?;

    let backup = dir.join("backup");
    let t = Instant::now();
    let out = banli(&[
        "--data-dir",
        &data.display().to_string(),
        "backup",
        "--to",
        &backup.display().to_string(),
    ])?;
    let took = t.elapsed();
    let backup_size = size_of(&backup)?;
    let held = out
        .split("writers were held ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or("?")
        .to_owned();

    let restored = dir.join("restored");
    let t = Instant::now();
    banli(&[
        "--data-dir",
        &restored.display().to_string(),
        "restore",
        "--from",
        &backup.display().to_string(),
    ])?;
    let restore = t.elapsed();
    server.stop().await?;
    let _ = std::fs::remove_dir_all(&dir);

    println!(
        "  banli backup   {:>6.2} s  {:>7.1} MiB  (the server's writers held {held} ms; consistent across the four files, with checksums)",
        took.as_secs_f64(),
        mib(backup_size)
    );
    println!(
        "  baseline cp -a {:>6.2} s  {:>7.1} MiB  (the same data directory as it lies, WAL files included; not consistent while the server writes)",
        cp.as_secs_f64(),
        mib(cp_size)
    );
    println!(
        "  banli restore  {:>6.2} s  (every checksum checked, then copied)",
        restore.as_secs_f64()
    );
    Ok(())
}
