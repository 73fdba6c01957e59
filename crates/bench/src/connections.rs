//! Idle connections against `banli serve` (SQLite, one process): a local client opens N
//! connections and sends nothing on half of them and half a request on the other half (the
//! slow-client attack), while 8 clients keep reading `GET /v1/agencies`. Printed: the server's
//! RSS and the other clients' p50/p99 with the connections held, beside the same load without
//! them (the baseline, same run); then how many of the held connections the server closed
//! after its header-read timeout. Every failed request is counted and printed.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use tokio::io::AsyncWriteExt;

use crate::client::Http;
use crate::server::Server;
use crate::{ms, pct};

/// The readers' load for `seconds`: sorted latencies and failures.
async fn load(http: &Http, key: &str, seconds: Duration) -> (Vec<Duration>, u64) {
    let until = Instant::now() + seconds;
    let mut tasks = Vec::new();
    for _ in 0..8 {
        let (http, key) = (http.clone(), key.to_owned());
        tasks.push(tokio::spawn(async move {
            let (mut lat, mut failed) = (Vec::new(), 0u64);
            while Instant::now() < until {
                let t = Instant::now();
                match http.get("/v1/agencies", &key).await {
                    Ok((200, _)) => lat.push(t.elapsed()),
                    _ => failed += 1,
                }
            }
            (lat, failed)
        }));
    }
    let (mut all, mut failed) = (Vec::new(), 0);
    for t in tasks {
        if let Ok((l, f)) = t.await {
            all.extend(l);
            failed += f;
        }
    }
    all.sort();
    (all, failed)
}

fn line(name: &str, lat: &[Duration], failed: u64, seconds: Duration, rss_mib: f64) {
    println!(
        "  {name:<28} {:>7.0} req/s  p50 {:>6.2} ms  p99 {:>6.2} ms  failed {failed:>4}  server RSS {rss_mib:>6.1} MiB",
        lat.len() as f64 / seconds.as_secs_f64(),
        ms(pct(lat, 0.5)),
        ms(pct(lat, 0.99)),
    );
}

pub async fn run(count: usize, seconds: u64) -> Result<()> {
    let seconds = Duration::from_secs(seconds);
    println!(
        "\n== {count} idle connections held against banli serve (SQLite) while 8 clients read, {} s each phase",
        seconds.as_secs()
    );
    let server = Server::sqlite().await?;
    let http = Http::new(server.http_url.clone());
    let addr: std::net::SocketAddr = server
        .http_url
        .trim_start_matches("http://")
        .parse()
        .context("the server's address")?;
    // Warm up, then the baseline.
    let _ = load(&http, &server.office_key, Duration::from_secs(2)).await;
    let (base, base_failed) = load(&http, &server.office_key, seconds).await;
    let base_rss = server.rss_kib()? as f64 / 1024.0;
    line(
        "baseline (none held)",
        &base,
        base_failed,
        seconds,
        base_rss,
    );

    // Hold the connections: half silent, half with half a request.
    let opened = Instant::now();
    let mut held = Vec::with_capacity(count);
    let mut refused = 0usize;
    for i in 0..count {
        match tokio::net::TcpStream::connect(addr).await {
            Ok(mut s) => {
                if i % 2 == 1 {
                    let _ = s
                        .write_all(b"GET /v1/agencies HTTP/1.1\r\nhost: bench\r\n")
                        .await;
                }
                held.push(s);
            }
            Err(_) => refused += 1,
        }
    }
    println!(
        "  opened {} connections in {:.1} s ({refused} refused)",
        held.len(),
        opened.elapsed().as_secs_f64()
    );
    let (with, with_failed) = load(&http, &server.office_key, seconds).await;
    let with_rss = server.rss_kib()? as f64 / 1024.0;
    line(
        &format!("with {} held", held.len()),
        &with,
        with_failed,
        seconds,
        with_rss,
    );
    let p99_change = 100.0 * (ms(pct(&with, 0.99)) / ms(pct(&base, 0.99)).max(1e-9) - 1.0);
    println!(
        "  p99 change {p99_change:+.1}% (goal within ±20%), server RSS {with_rss:.1} MiB (goal ≤ 200 MiB)"
    );

    // After the header-read timeout (20 s by default) the server has closed them all.
    let wait = Duration::from_secs(25).saturating_sub(opened.elapsed());
    tokio::time::sleep(wait).await;
    let mut closed = 0usize;
    for s in &held {
        let mut buf = [0u8; 256];
        // Closed: EOF (maybe after a 408) or a reset; open: nothing to read yet.
        loop {
            match s.try_read(&mut buf) {
                Ok(0) => {
                    closed += 1;
                    break;
                }
                Ok(_) => continue,
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(_) => {
                    closed += 1;
                    break;
                }
            }
        }
    }
    println!(
        "  {} s after opening: {closed} of {} held connections closed by the server",
        opened.elapsed().as_secs(),
        held.len()
    );
    drop(held);
    server.stop().await
}
