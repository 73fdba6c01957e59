//! TLS against plain text, in one run: the same lifecycles through REST and the same gRPC calls
//! against two `banli serve` processes on SQLite — one plain, one with `--tls-cert`,
//! `--tls-key` and `--tls-client-ca` (every client presents a certificate) — in alternating
//! rounds, so that both see the same machine. New connections are part of the load as a real
//! client's pool makes them; nothing is retried and refusals are printed.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use banli_api::test_pki::TestPki;
use banli_proto::suggestions::v1 as pb;
use pb::suggestion_service_client::SuggestionServiceClient;
use tonic::transport::Channel;

use crate::client::Http;
use crate::server::Server;

struct Side {
    name: &'static str,
    server: Server,
    http: Http,
    world: crate::World,
    /// TLS for gRPC: the client configuration (ALPN h2) with the certificate.
    grpc_tls: Option<Arc<rustls::ClientConfig>>,
    rest: Vec<f64>,
    grpc: Vec<f64>,
    refused: BTreeMap<String, u64>,
}

pub async fn run(clients: usize, seconds: u64, rounds: usize) -> Result<()> {
    let dir = std::env::temp_dir().join(format!("banli-bench-tls-{}", uuid::Uuid::now_v7()));
    let pki = TestPki::new(&dir);
    let identity = pki.client("bench agency system");
    let files = pki.server_files(true);
    let path = |p: &std::path::Path| p.to_string_lossy().into_owned();
    let (cert, key, ca) = (
        path(&files.cert),
        path(&files.key),
        path(files.client_ca.as_deref().context("a client CA")?),
    );
    let duration = Duration::from_secs(seconds);
    println!(
        "\n== TLS: plain HTTP/gRPC vs TLS with client certificates (SQLite, one process each; {clients} clients, {rounds} alternating rounds of {seconds}s)"
    );
    let plain = Server::sqlite().await?;
    let http = Http::new(plain.http_url.clone());
    let world = crate::setup(&http, &plain.office_key).await?;
    let mut sides = vec![Side {
        name: "plain",
        server: plain,
        http,
        world,
        grpc_tls: None,
        rest: Vec::new(),
        grpc: Vec::new(),
        refused: BTreeMap::new(),
    }];
    let tls = Server::sqlite_with(&[
        "--tls-cert",
        &cert,
        "--tls-key",
        &key,
        "--tls-client-ca",
        &ca,
    ])
    .await?;
    let base = tls
        .http_url
        .replace("http://127.0.0.1", "https://localhost");
    // hyper-rustls sets ALPN itself (http/1.1 here).
    let rest_tls = Arc::unwrap_or_clone(pki.client_config(Some(&identity), &[]));
    let http = Http::with_tls(base, rest_tls);
    let world = crate::setup(&http, &tls.office_key)
        .await
        .context("setting up through HTTPS")?;
    sides.push(Side {
        name: "TLS",
        server: tls,
        http,
        world,
        grpc_tls: Some(pki.client_config(Some(&identity), &[b"h2"])),
        rest: Vec::new(),
        grpc: Vec::new(),
        refused: BTreeMap::new(),
    });
    let mut first = 0;
    for round in 0..rounds {
        for side in &mut sides {
            let start = Instant::now();
            let run = crate::closed_loop(&side.http, &side.world, clients, duration, first).await?;
            first += 10_000_000;
            let cps = crate::sorted(&run.lat).len() as f64 / start.elapsed().as_secs_f64();
            side.rest.push(cps);
            for ((name, status), (n, _)) in &run.refused {
                *side
                    .refused
                    .entry(format!("REST {name} {status}"))
                    .or_default() += n;
            }
            let (calls, refused) = grpc_load(side, clients, duration, round).await?;
            side.grpc.push(calls);
            for (what, n) in refused {
                *side.refused.entry(format!("gRPC {what}")).or_default() += n;
            }
            println!(
                "  round {} {:<5}  REST lifecycle commands/s {:>8.1}   gRPC calls/s {:>8.1}",
                round + 1,
                side.name,
                cps,
                calls
            );
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len().max(1) as f64;
    let (rest_plain, rest_tls) = (mean(&sides[0].rest), mean(&sides[1].rest));
    let (grpc_plain, grpc_tls) = (mean(&sides[0].grpc), mean(&sides[1].grpc));
    println!("  REST commands/s plain   {rest_plain:>9.1}  (baseline, same run)");
    println!(
        "  REST commands/s TLS     {rest_tls:>9.1}  = {:.1}% of plain (goal ≥ 80%)",
        100.0 * rest_tls / rest_plain
    );
    println!("  gRPC calls/s plain      {grpc_plain:>9.1}  (baseline, same run)");
    println!(
        "  gRPC calls/s TLS        {grpc_tls:>9.1}  = {:.1}% of plain (goal ≥ 80%)",
        100.0 * grpc_tls / grpc_plain
    );
    for side in &sides {
        let total: u64 = side.refused.values().sum();
        println!(
            "  refused ({:<5})         {total:>9}  (goal 0; nothing is retried)",
            side.name
        );
        for (what, n) in &side.refused {
            println!("    {what}  x{n}");
        }
    }
    for side in sides {
        side.server.stop().await?;
    }
    let _ = std::fs::remove_dir_all(dir);
    Ok(())
}

/// A gRPC channel to `addr`, over TLS with `tls` when given.
async fn channel(addr: SocketAddr, tls: Option<Arc<rustls::ClientConfig>>) -> Result<Channel> {
    let endpoint = tonic::transport::Endpoint::from_static("http://localhost");
    Ok(match tls {
        None => {
            endpoint
                .connect_with_connector(tower::service_fn(move |_| async move {
                    let s = tokio::net::TcpStream::connect(addr).await?;
                    s.set_nodelay(true)?;
                    Ok::<_, std::io::Error>(hyper_util::rt::TokioIo::new(s))
                }))
                .await?
        }
        Some(config) => {
            endpoint
                .connect_with_connector(tower::service_fn(move |_| {
                    let config = config.clone();
                    async move {
                        banli_api::test_pki::connect(addr, config)
                            .await
                            .map(hyper_util::rt::TokioIo::new)
                    }
                }))
                .await?
        }
    })
}

/// `clients` tasks over four channels, each submitting a suggestion and reading it back, for
/// `duration`: calls per second and refusals by call and code.
async fn grpc_load(
    side: &Side,
    clients: usize,
    duration: Duration,
    round: usize,
) -> Result<(f64, BTreeMap<String, u64>)> {
    let mut channels = Vec::new();
    for _ in 0..4 {
        channels.push(channel(side.server.grpc_addr, side.grpc_tls.clone()).await?);
    }
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let mut client = SuggestionServiceClient::new(channels[c % channels.len()].clone());
        let w = side.world.clone();
        tasks.push(tokio::spawn(async move {
            let mut ok = 0u64;
            let mut refused: BTreeMap<String, u64> = BTreeMap::new();
            let mut n = 0u64;
            while start.elapsed() < duration {
                n += 1;
                let submit = pb::SubmitSuggestionRequest {
                    session_id: w.session.clone(),
                    number: format!("G-{round}-{c}-{n}"),
                    title: "bench".into(),
                    body: "bench".into(),
                    lead_deputy_id: w.deputy_id.clone(),
                    ..Default::default()
                };
                let id = match client.submit_suggestion(authed(submit, &w.deputy)).await {
                    Ok(r) => {
                        ok += 1;
                        r.into_inner().id
                    }
                    Err(e) => {
                        *refused.entry(format!("submit {:?}", e.code())).or_default() += 1;
                        continue;
                    }
                };
                match client
                    .get_suggestion(authed(pb::GetSuggestionRequest { id }, &w.deputy))
                    .await
                {
                    Ok(_) => ok += 1,
                    Err(e) => *refused.entry(format!("get {:?}", e.code())).or_default() += 1,
                }
            }
            (ok, refused)
        }));
    }
    let mut ok = 0;
    let mut refused = BTreeMap::new();
    for t in tasks {
        let (n, r) = t.await?;
        ok += n;
        for (k, v) in r {
            *refused.entry(k).or_default() += v;
        }
    }
    Ok((ok as f64 / start.elapsed().as_secs_f64(), refused))
}

fn authed<T>(msg: T, key: &str) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    if let Ok(v) = format!("Bearer {key}").parse() {
        r.metadata_mut().insert("authorization", v);
    }
    r
}
