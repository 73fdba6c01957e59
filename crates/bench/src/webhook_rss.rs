//! Memory under hostile webhook receivers: `banli serve` (SQLite, one process) delivers the
//! events of lifecycles running through REST to 8 endpoints whose receivers first answer
//! `200 ok` (the baseline), then answer every delivery with a 100 MB body streamed as fast as
//! the connection takes it. The server's RSS is sampled every 200 ms in both phases; the bytes
//! the receivers managed to send show where the server stopped reading.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::client::Http;
use crate::server::Server;

const ENDPOINTS: usize = 8;
const HUGE: u64 = 100 * 1024 * 1024;

#[derive(Default)]
struct Receivers {
    huge: AtomicBool,
    deliveries: AtomicU64,
    sent: AtomicU64,
}

pub async fn run(seconds: u64) -> Result<()> {
    println!(
        "\n== webhook receivers answering 100 MB bodies: RSS of banli serve (SQLite, one process, {ENDPOINTS} endpoints, lifecycles through REST)"
    );
    let server = Server::sqlite_with_env(
        &[],
        &[("BANLI_WEBHOOK_ALLOWED_NETWORKS", "127.0.0.0/8".into())],
    )
    .await?;
    let http = Http::new(server.http_url.clone());
    let world = crate::setup(&http, &server.office_key).await?;
    let receivers = Arc::new(Receivers::default());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/hook", listener.local_addr()?);
    tokio::spawn(receive(listener, receivers.clone()));
    // Endpoints for the three agencies the lifecycles involve: 3 + 3 + 2.
    let mut admins = vec![world.lead_admin.clone()];
    for agency in [&world.co1, &world.co2] {
        let (status, v) = http
            .post(
                "/v1/admin/keys",
                &server.office_key,
                json!({"role": "agency_admin", "agency_id": agency, "label": "bench webhooks"}),
            )
            .await?;
        anyhow::ensure!(
            status == 201,
            "creating an agency key: {status} {}",
            v.detail
        );
        admins.push(v.token);
    }
    for i in 0..ENDPOINTS {
        let key = &admins[i % admins.len()];
        let (status, v) = http.post("/v1/webhooks", key, json!({"url": url})).await?;
        anyhow::ensure!(
            status == 201,
            "creating an endpoint: {status} {} {}",
            v.code,
            v.detail
        );
    }
    let mut peaks = Vec::new();
    for (phase, huge, secs) in [
        ("answers `ok` (baseline)", false, seconds.min(20)),
        ("answers 100 MB bodies", true, seconds),
    ] {
        receivers.huge.store(huge, Ordering::SeqCst);
        let (d0, s0) = (
            receivers.deliveries.load(Ordering::SeqCst),
            receivers.sent.load(Ordering::SeqCst),
        );
        let stop = Arc::new(AtomicBool::new(false));
        let sampler = {
            let (stop, pid) = (stop.clone(), server.pid().context("the server runs")?);
            tokio::spawn(async move {
                let mut peak = 0u64;
                while !stop.load(Ordering::SeqCst) {
                    peak = peak.max(crate::server::rss_kib_of(pid).unwrap_or(0));
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                peak
            })
        };
        let start = Instant::now();
        let run = crate::closed_loop(
            &http,
            &world,
            4,
            Duration::from_secs(secs),
            peaks.len() * 10_000_000,
        )
        .await?;
        // Deliveries trail the commands: give them a few seconds more under the same receivers.
        tokio::time::sleep(Duration::from_secs(3)).await;
        stop.store(true, Ordering::SeqCst);
        let peak = sampler.await?;
        let deliveries = receivers.deliveries.load(Ordering::SeqCst) - d0;
        let sent = receivers.sent.load(Ordering::SeqCst) - s0;
        println!(
            "  receivers {phase:<24} {:>5.0}s  peak RSS {:>7.1} MiB  deliveries {deliveries:>6}  bytes offered per delivery {:>9.0}  commands {}  refused {}",
            start.elapsed().as_secs_f64(),
            peak as f64 / 1024.0,
            if deliveries == 0 {
                0.0
            } else {
                sent as f64 / deliveries as f64
            },
            crate::sorted(&run.lat).len(),
            run.refused.values().map(|(n, _)| n).sum::<u64>(),
        );
        peaks.push(peak);
    }
    println!(
        "  peak RSS with 100 MB answers {:>7.1} MiB  (baseline {:.1} MiB with `ok` answers; goal ≤ 100 MiB)",
        peaks[1] as f64 / 1024.0,
        peaks[0] as f64 / 1024.0
    );
    server.stop().await
}

/// Each connection: read the request (headers, then the body by its length), answer `ok` or a
/// 100 MB body written until the server stops reading and closes.
async fn receive(listener: tokio::net::TcpListener, r: Arc<Receivers>) {
    while let Ok((mut s, _)) = listener.accept().await {
        let r = r.clone();
        tokio::spawn(async move {
            loop {
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    match s.read(&mut byte).await {
                        Ok(1) => head.push(byte[0]),
                        _ => return,
                    }
                }
                let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
                let length: usize = text
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                let mut body = vec![0u8; length];
                if s.read_exact(&mut body).await.is_err() {
                    return;
                }
                r.deliveries.fetch_add(1, Ordering::SeqCst);
                if !r.huge.load(Ordering::SeqCst) {
                    if s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                        .await
                        .is_err()
                    {
                        return;
                    }
                    continue;
                }
                let header = format!("HTTP/1.1 200 OK\r\ncontent-length: {HUGE}\r\n\r\n");
                if s.write_all(header.as_bytes()).await.is_err() {
                    return;
                }
                let chunk = vec![b'x'; 64 * 1024];
                let mut left = HUGE;
                while left > 0 {
                    let n = left.min(chunk.len() as u64) as usize;
                    match s.write(&chunk[..n]).await {
                        Ok(0) | Err(_) => return,
                        Ok(w) => {
                            r.sent.fetch_add(w as u64, Ordering::SeqCst);
                            left -= w as u64;
                        }
                    }
                }
            }
        });
    }
}
