//! The documents bench: uploads of 5 MiB PDFs through REST (`banli serve`, SQLite, one process)
//! beside writing the same bytes to the same disk with `std::fs` (create, write, fsync — the
//! durability the store gives each upload); then the server's RSS while 16 clients upload
//! 20 MiB files at once, beside its RSS at rest.
//!
//! Uploads go over plain TCP with `Content-Length`, the body written in 256 KiB pieces as the
//! connection takes them, so the server reads a stream, never a buffered request. Every answer
//! that is not 201 is counted and printed as a refusal.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::server::Server;

const MIB: usize = 1024 * 1024;
const PIECE: usize = 256 * 1024;

/// A PDF of `len` bytes whose content depends on `seed` (so that no two are the same).
fn pdf(len: usize, seed: u64) -> Vec<u8> {
    let mut v = Vec::with_capacity(len);
    v.extend_from_slice(b"%PDF-1.7\n");
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    while v.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        v.extend_from_slice(&x.to_le_bytes());
    }
    v.truncate(len);
    v
}

/// One upload: the status the server answered.
async fn upload(addr: std::net::SocketAddr, key: &str, name: &str, body: &[u8]) -> Result<u16> {
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    s.set_nodelay(true)?;
    let head = format!(
        "POST /v1/documents?name={name} HTTP/1.1\r\nHost: bench\r\nAuthorization: Bearer {key}\r\nContent-Type: application/pdf\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).await?;
    for piece in body.chunks(PIECE) {
        if s.write_all(piece).await.is_err() {
            break; // refused early: the answer says why
        }
    }
    let mut answer = Vec::new();
    s.read_to_end(&mut answer).await?;
    let line = String::from_utf8_lossy(&answer[..answer.len().min(64)]).into_owned();
    line.split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .with_context(|| format!("no HTTP status in {line:?}"))
}

/// Runs `jobs` on `clients` tasks, each taking the next job; returns (seconds, refusals).
async fn run_uploads(
    addr: std::net::SocketAddr,
    key: &str,
    files: Arc<Vec<Vec<u8>>>,
    clients: usize,
) -> Result<(f64, u64)> {
    let next = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (next, refused, files, key) =
            (next.clone(), refused.clone(), files.clone(), key.to_owned());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                let Some(f) = files.get(i) else { break };
                match upload(addr, &key, &format!("letter-{i}.pdf"), f).await {
                    Ok(201) => {}
                    Ok(status) => {
                        refused.fetch_add(1, Ordering::Relaxed);
                        eprintln!("upload {i}: answered {status}");
                    }
                    Err(e) => {
                        refused.fetch_add(1, Ordering::Relaxed);
                        eprintln!("upload {i}: {e:#}");
                    }
                }
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    Ok((
        start.elapsed().as_secs_f64(),
        refused.load(Ordering::Relaxed),
    ))
}

/// The baseline: the same files written with `std::fs` into `dir` by `clients` threads.
async fn run_fs(dir: &Path, files: Arc<Vec<Vec<u8>>>, clients: usize) -> Result<f64> {
    std::fs::create_dir_all(dir)?;
    let next = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let (next, files, dir) = (next.clone(), files.clone(), dir.to_path_buf());
        tasks.push(tokio::task::spawn_blocking(
            move || -> std::io::Result<()> {
                use std::io::Write;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                    let Some(f) = files.get(i) else { return Ok(()) };
                    let mut out = std::fs::File::create(dir.join(format!("{i}.pdf")))?;
                    for piece in f.chunks(PIECE) {
                        out.write_all(piece)?;
                    }
                    out.sync_all()?;
                }
            },
        ));
    }
    for t in tasks {
        t.await??;
    }
    Ok(start.elapsed().as_secs_f64())
}

pub async fn run(count: usize, clients: usize) -> Result<()> {
    println!(
        "\n== documents: {count} uploads of 5 MiB PDFs through REST ({clients} clients, banli serve on SQLite) beside std::fs writes of the same bytes to the same disk; RSS with 16 × 20 MiB uploads at once"
    );
    // The hourly upload quota (2 GiB by default) is raised above what the bench sends (about
    // 2 GiB), so that every upload is measured, quota check included.
    let server = Server::sqlite_with_env(
        &[],
        &[(
            "BANLI_DOCUMENT_UPLOAD_BYTES_PER_HOUR",
            (64u64 << 30).to_string(),
        )],
    )
    .await?;
    let http = crate::client::Http::new(server.http_url.clone());
    let world = crate::lifecycle::setup(&http, &server.office_key).await?;
    let addr: std::net::SocketAddr = server
        .http_url
        .trim_start_matches("http://")
        .parse()
        .context("the server's address")?;
    let key = world.lead_admin.clone();
    let files: Arc<Vec<Vec<u8>>> =
        Arc::new((0..count).map(|i| pdf(5 * MIB, i as u64 + 1)).collect());
    let total_mib = (count * 5) as f64;
    let baseline_dir: PathBuf = server.dir().join("baseline");
    // Warm both paths once (page cache, connection setup), then measure each twice, alternating.
    let warm: Arc<Vec<Vec<u8>>> = Arc::new(vec![pdf(5 * MIB, 0)]);
    run_uploads(addr, &key, warm.clone(), 1).await?;
    run_fs(&baseline_dir.join("warm"), warm, 1).await?;
    let mut rows = Vec::new();
    for round in 1..=2 {
        let fs_secs = run_fs(
            &baseline_dir.join(format!("r{round}")),
            files.clone(),
            clients,
        )
        .await?;
        let _ = std::fs::remove_dir_all(baseline_dir.join(format!("r{round}")));
        // Fresh content per round, so that every upload is stored (not deduplicated).
        let round_files: Arc<Vec<Vec<u8>>> = if round == 1 {
            files.clone()
        } else {
            Arc::new(
                (0..count)
                    .map(|i| pdf(5 * MIB, (count + i) as u64 + 1))
                    .collect(),
            )
        };
        let (up_secs, refused) = run_uploads(addr, &key, round_files, clients).await?;
        let (fs_rate, up_rate) = (total_mib / fs_secs, total_mib / up_secs);
        println!(
            "round {round}: baseline std::fs {fs_rate:.1} MiB/s ({fs_secs:.2} s); uploads through REST {up_rate:.1} MiB/s ({up_secs:.2} s, {:.1} uploads/s) = {:.1} % of the baseline; refused {refused}",
            count as f64 / up_secs,
            100.0 * up_rate / fs_rate
        );
        rows.push((fs_rate, up_rate, refused));
    }
    let (fs_mean, up_mean) = (
        rows.iter().map(|r| r.0).sum::<f64>() / rows.len() as f64,
        rows.iter().map(|r| r.1).sum::<f64>() / rows.len() as f64,
    );
    println!(
        "upload throughput (5 MiB PDFs): {up_mean:.1} MiB/s vs std::fs {fs_mean:.1} MiB/s = {:.1} % (goal ≥ 50 %); refused {}",
        100.0 * up_mean / fs_mean,
        rows.iter().map(|r| r.2).sum::<u64>()
    );
    drop(files);

    // RSS: at rest, then 16 clients each streaming a 20 MiB file at once.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rest_kib = server.rss_kib()?;
    let big = Arc::new(pdf(20 * MIB, 7_777));
    let pid = server.pid().context("the server's pid")?;
    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(rest_kib));
    let sampler = {
        let (stop, peak) = (stop.clone(), peak.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                if let Ok(k) = crate::server::rss_kib_of(pid) {
                    peak.fetch_max(k, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..16u8 {
        let (big, key) = (big.clone(), key.clone());
        tasks.push(tokio::spawn(async move {
            // The same 20 MiB with the client's byte after the header: 16 distinct files.
            let mut mine = (*big).clone();
            mine[9] = c;
            upload(addr, &key, &format!("big-{c}.pdf"), &mine).await
        }));
    }
    let mut refused = 0u64;
    for t in tasks {
        match t.await? {
            Ok(201) => {}
            Ok(status) => {
                refused += 1;
                eprintln!("a 20 MiB upload answered {status}");
            }
            Err(e) => {
                refused += 1;
                eprintln!("a 20 MiB upload failed: {e:#}");
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    stop.store(true, Ordering::Relaxed);
    sampler.await?;
    let peak_kib = peak.load(Ordering::Relaxed);
    println!(
        "RSS of banli serve: {:.1} MiB at rest (baseline), peak {:.1} MiB while 16 clients uploaded 20 MiB each ({:.2} s, {:.0} MiB/s) (goal ≤ 100 MiB); refused {refused}",
        rest_kib as f64 / 1024.0,
        peak_kib as f64 / 1024.0,
        secs,
        320.0 / secs
    );
    server.stop().await
}
