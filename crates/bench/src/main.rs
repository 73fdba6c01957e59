//! `banli-bench`: drives a real `banli serve` process over HTTP and prints each figure beside its
//! baseline, measured in the same run.
//!
//!     cargo build --release -p banli -p banli-bench
//!     target/release/banli-bench                      # lifecycles on SQLite and PostgreSQL, memory
//!     target/release/banli-bench lifecycle --backend sqlite --clients 32 --seconds 20
//!     target/release/banli-bench lifecycle --mode distributed   # three processes, PostgreSQL + NATS
//!     target/release/banli-bench memory --suggestions 100000
//!     target/release/banli-bench propagation --transport nats
//!     target/release/banli-bench audit --backend sqlite --leaves 1000000
//!     target/release/banli-bench timers --count 100000
//!     target/release/banli-bench metrics --assignments 1000000
//!     target/release/banli-bench feed --events 1000000
//!     target/release/banli-bench webhooks
//!     target/release/banli-bench notify --count 20000     # e-mail and SMS to deputies vs plain SMTP
//!     target/release/banli-bench tls                       # HTTPS and gRPC over TLS vs plain
//!     target/release/banli-bench webhook-memory            # receivers answering 100 MB bodies
//!
//! A lifecycle is 13 REST commands: submit → start review → accept → assign lead + 2 co →
//! sign for → dispatch → 2 communications → 2 co-opinion waivers → reply → 2 feedbacks.
//! (The waivers, sign-for and dispatch are what the rules require before a lead may reply.)
//! Sign-for and the waivers go to the coordination service. Each command carries the
//! `Banli-Consistency` token of the previous response, so the service deciding it first applies
//! what the other service committed (its latency includes that wait); nothing is retried, and
//! every refused command is counted and printed by name and status.
//! The baseline is single-row INSERT transactions on the same database with the same concurrency.

mod audit;
mod backup;
mod client;
mod connections;
mod console;
mod documents;
mod feed;
mod lifecycle;
mod metrics;
mod notify;
mod propagation;
mod public;
mod server;
mod soak;
mod timers;
mod tls;
mod watch;
mod webhook_rss;
mod webhooks;

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use serde_json::json;

use crate::client::Http;
use crate::server::Server;
use lifecycle::*;

#[derive(Debug, Parser)]
#[command(
    name = "banli-bench",
    about = "Load and memory figures for banli serve"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Complete lifecycles per second through REST, with p50/p99 per command.
    Lifecycle {
        #[arg(long, value_enum, default_value = "sqlite")]
        backend: Backend,
        /// `one`: every service in one process; `distributed`: one process per service on
        /// PostgreSQL + NATS JetStream (the bench starts them), each command sent to its owner.
        #[arg(long, value_enum, default_value = "one")]
        mode: Mode,
        #[arg(long, default_value_t = 32)]
        clients: usize,
        #[arg(long, default_value_t = 20)]
        seconds: u64,
    },
    /// The web console on the demo data: the office's dashboard p50/p99 beside `GET
    /// /v1/metrics` for the same agency, interleaved; each main page's weight and any request
    /// it would make elsewhere.
    Console {
        /// Requests of each kind.
        #[arg(long, default_value_t = 2000)]
        requests: usize,
    },
    /// Uploads of 5 MiB PDFs through REST beside `std::fs` writes of the same bytes; the
    /// server's RSS while 16 clients upload 20 MiB files at once.
    Documents {
        #[arg(long, default_value_t = 160)]
        count: usize,
        #[arg(long, default_value_t = 4)]
        clients: usize,
    },
    /// 公开答复: `GET /v1/public/replies` p50/p99 with 100,000 published replies (first page,
    /// deep pages, one agency's pages) beside `GET /readyz` in the same run.
    Public {
        #[arg(long, value_enum, default_value = "sqlite")]
        backend: Backend,
        #[arg(long, default_value_t = 100_000)]
        replies: usize,
        /// Requests per kind.
        #[arg(long, default_value_t = 4000)]
        requests: usize,
        #[arg(long, default_value_t = 4)]
        clients: usize,
    },
    /// Peak RSS of `banli serve` while 8 webhook receivers answer every delivery with a 100 MB
    /// body, beside the same load with receivers answering `ok`.
    WebhookMemory {
        #[arg(long, default_value_t = 60)]
        seconds: u64,
    },
    /// Lifecycles through REST and gRPC calls over TLS with client certificates beside the
    /// same over plain text, in alternating rounds (two `banli serve` processes on SQLite).
    Tls {
        #[arg(long, default_value_t = 32)]
        clients: usize,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
        #[arg(long, default_value_t = 2)]
        rounds: usize,
    },
    /// Event propagation between services (commit → effect in another service), embedded and
    /// on PostgreSQL + NATS, beside raw JetStream publish → consume.
    Propagation {
        #[arg(long, value_enum)]
        transport: Option<propagation::Transport>,
        /// Events for the sustained figure.
        #[arg(long, default_value_t = 20_000)]
        events: u64,
        /// The paced rate for the latency figure.
        #[arg(long, default_value_t = 1_000)]
        rate: u64,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// The audit log: durable appends, time to a signed checkpoint, verify, proofs (in-process
    /// and through REST) at 1,000,000 leaves, beside plain SHA-256.
    Audit {
        #[arg(long, value_enum)]
        backend: Option<Backend>,
        #[arg(long, default_value_t = 1_000_000)]
        leaves: u64,
    },
    /// Timer lag (due → fired) with N pending timers, two replicas, beside tokio's timer wheel.
    Timers {
        #[arg(long, value_enum)]
        backend: Option<Backend>,
        #[arg(long, default_value_t = 100_000)]
        count: u64,
        #[arg(long, default_value_t = 20)]
        seconds: u64,
    },
    /// Metrics for one agency over N stored assignments, beside `SELECT count(*)`.
    Metrics {
        #[arg(long, value_enum)]
        backend: Option<Backend>,
        #[arg(long, default_value_t = 1_000_000)]
        assignments: u64,
    },
    /// An agency's event feed read through REST with N stored events, beside the plain indexed
    /// range query.
    Feed {
        #[arg(long, value_enum)]
        backend: Option<Backend>,
        #[arg(long, default_value_t = 1_000_000)]
        events: u64,
    },
    /// Notifications to deputies: e-mail to a local SMTP sink and SMS to a local gateway,
    /// sustained rate and commit → delivered at 50/s, beside plain SMTP sends.
    Notify {
        #[arg(long, value_enum)]
        backend: Option<Backend>,
        #[arg(long, default_value_t = 20_000)]
        count: u64,
    },
    /// Signed webhook deliveries to a local receiver: sustained rate and commit → delivery
    /// latency at 100/s, beside plain POSTs.
    Webhooks {
        #[arg(long, value_enum)]
        backend: Option<Backend>,
    },
    /// gRPC `Watch` fed by another process on the same PostgreSQL database (LISTEN/NOTIFY):
    /// write → arrival p50/p99, beside rows written by the serving process itself.
    Watch {
        /// Feed rows per second.
        #[arg(long, default_value_t = 200)]
        rate: u64,
        #[arg(long, default_value_t = 10)]
        seconds: u64,
    },
    /// Lifecycles offered at half of saturation (measured first, unless --rate) for many
    /// minutes: consumer lag, RSS and open sockets sampled over time, and their slopes.
    Soak {
        #[arg(long, value_enum, default_value = "sqlite")]
        backend: Backend,
        #[arg(long, value_enum, default_value = "one")]
        mode: Mode,
        #[arg(long, default_value_t = 10)]
        minutes: u64,
        /// Commands per second to offer (default: half of the saturation measured first).
        #[arg(long)]
        rate: Option<f64>,
    },
    /// CPU and RSS of an idle banli serve on an empty data directory, beside the same
    /// measurement of an idle `sleep` process (the measurement's own floor).
    Idle {
        #[arg(long, default_value_t = 60)]
        seconds: u64,
    },
    /// `banli backup` of a running server with N audit leaves and M suggestions: time and size
    /// beside `cp` of the same files, and `banli restore`.
    Backup {
        #[arg(long, default_value_t = 1_000_000)]
        leaves: u64,
        #[arg(long, default_value_t = 100_000)]
        suggestions: usize,
    },
    /// N idle connections (half silent, half with half a request) held against banli serve
    /// while 8 clients read: server RSS and the readers' p99 beside the same load without them,
    /// then how many the header-read timeout closed.
    Connections {
        #[arg(long, default_value_t = 10_000)]
        count: usize,
        #[arg(long, default_value_t = 8)]
        seconds: u64,
    },
    /// RSS of banli serve idle and with N suggestions stored.
    Memory {
        #[arg(long, default_value_t = 100_000)]
        suggestions: usize,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    One,
    Distributed,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Backend {
    Sqlite,
    Postgres,
}

#[tokio::main]
async fn main() -> Result<()> {
    match Cli::parse().command {
        Some(Command::WebhookMemory { seconds }) => webhook_rss::run(seconds).await,
        Some(Command::Documents { count, clients }) => documents::run(count, clients).await,
        Some(Command::Public {
            backend,
            replies,
            requests,
            clients,
        }) => public::run(backend, replies, requests, clients).await,
        Some(Command::Console { requests }) => console::run(requests).await,
        Some(Command::Tls {
            clients,
            seconds,
            rounds,
        }) => tls::run(clients, seconds, rounds).await,
        Some(Command::Lifecycle {
            backend,
            mode,
            clients,
            seconds,
        }) => lifecycle(backend, mode, clients, Duration::from_secs(seconds)).await,
        Some(Command::Memory { suggestions }) => memory(suggestions).await,
        Some(Command::Backup {
            leaves,
            suggestions,
        }) => backup::run(leaves, suggestions).await,
        Some(Command::Idle { seconds }) => idle(Duration::from_secs(seconds)).await,
        Some(Command::Connections { count, seconds }) => connections::run(count, seconds).await,
        Some(Command::Timers {
            backend,
            count,
            seconds,
        }) => {
            for b in backend.map_or(vec![Backend::Sqlite, Backend::Postgres], |b| vec![b]) {
                timers::run_bench(b, count, seconds).await?;
            }
            Ok(())
        }
        Some(Command::Metrics {
            backend,
            assignments,
        }) => {
            for b in backend.map_or(vec![Backend::Sqlite, Backend::Postgres], |b| vec![b]) {
                metrics::run(b, assignments).await?;
            }
            Ok(())
        }
        Some(Command::Feed { backend, events }) => {
            for b in backend.map_or(vec![Backend::Sqlite, Backend::Postgres], |b| vec![b]) {
                feed::run(b, events).await?;
            }
            Ok(())
        }
        Some(Command::Soak {
            backend,
            mode,
            minutes,
            rate,
        }) => soak::run(backend, mode, minutes, rate).await,
        Some(Command::Watch { rate, seconds }) => watch::run(rate, seconds).await,
        Some(Command::Notify { backend, count }) => {
            for b in backend.map_or(vec![Backend::Sqlite, Backend::Postgres], |b| vec![b]) {
                notify::run(b, count).await?;
            }
            Ok(())
        }
        Some(Command::Webhooks { backend }) => {
            for b in backend.map_or(vec![Backend::Sqlite, Backend::Postgres], |b| vec![b]) {
                webhooks::run(b).await?;
            }
            Ok(())
        }
        Some(Command::Audit { backend, leaves }) => {
            for b in backend.map_or(vec![Backend::Sqlite, Backend::Postgres], |b| vec![b]) {
                audit::run(b, leaves).await?;
            }
            Ok(())
        }
        Some(Command::Propagation {
            transport,
            events,
            rate,
            seconds,
        }) => {
            let all = [
                propagation::Transport::Embedded,
                propagation::Transport::Nats,
            ];
            for t in transport.map_or(all.to_vec(), |t| vec![t]) {
                propagation::run(t, events, rate, seconds).await?;
            }
            Ok(())
        }
        None => {
            lifecycle(Backend::Sqlite, Mode::One, 32, Duration::from_secs(20)).await?;
            lifecycle(Backend::Postgres, Mode::One, 32, Duration::from_secs(20)).await?;
            lifecycle(
                Backend::Postgres,
                Mode::Distributed,
                32,
                Duration::from_secs(20),
            )
            .await?;
            for t in [
                propagation::Transport::Embedded,
                propagation::Transport::Nats,
            ] {
                propagation::run(t, 20_000, 1_000, 10).await?;
            }
            documents::run(160, 4).await?;
            public::run(Backend::Sqlite, 100_000, 4000, 4).await?;
            console::run(2000).await?;
            for b in [Backend::Sqlite, Backend::Postgres] {
                audit::run(b, 1_000_000).await?;
                timers::run_bench(b, 100_000, 20).await?;
                metrics::run(b, 1_000_000).await?;
                feed::run(b, 1_000_000).await?;
                webhooks::run(b).await?;
                notify::run(b, 20_000).await?;
            }
            watch::run(200, 10).await?;
            soak::run(Backend::Sqlite, Mode::One, 10, None).await?;
            backup::run(1_000_000, 100_000).await?;
            idle(Duration::from_secs(60)).await?;
            connections::run(10_000, 8).await?;
            tls::run(32, 10, 2).await?;
            webhook_rss::run(60).await?;
            memory(100_000).await
        }
    }
}

/// CPU time (user + system, in clock ticks) a process has used so far.
fn cpu_ticks(pid: u32) -> Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // The fields after the command name (which may hold spaces) start after the last ')'.
    let rest = stat.rsplit_once(')').context("/proc/<pid>/stat")?.1;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = f.get(11).context("utime")?.parse()?;
    let stime: u64 = f.get(12).context("stime")?.parse()?;
    Ok(utime + stime)
}

fn clock_ticks_per_second() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

async fn idle(duration: Duration) -> Result<()> {
    let server = Server::sqlite().await?;
    let pid = server.pid().context("the server is running")?;
    // Let start-up work (migrations, first key) settle before measuring.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let floor = std::process::Command::new("sleep")
        .arg(format!("{}", duration.as_secs() + 5))
        .spawn()?;
    let (t0, f0) = (cpu_ticks(pid)?, cpu_ticks(floor.id())?);
    let start = Instant::now();
    tokio::time::sleep(duration).await;
    let (t1, f1) = (cpu_ticks(pid)?, cpu_ticks(floor.id())?);
    let elapsed = start.elapsed().as_secs_f64();
    let hz = clock_ticks_per_second();
    let pct = |ticks: u64| 100.0 * ticks as f64 / hz / elapsed;
    println!(
        "\n== idle banli serve (SQLite, empty data directory, {:.0} s)",
        elapsed
    );
    println!(
        "  CPU                     {:>8.2}%  of one core (goal ≤ 0.5%)",
        pct(t1 - t0)
    );
    println!(
        "  RSS                     {:>8.1} MiB (goal ≤ 40 MiB)",
        server.rss_kib()? as f64 / 1024.0
    );
    println!(
        "  baseline: idle `sleep`  {:>8.2}%  of one core, measured the same way",
        pct(f1 - f0)
    );
    let mut floor = floor;
    let _ = floor.kill();
    let _ = floor.wait();
    server.stop().await
}

/// Registers `count` suggestions (rounded up to a multiple of 32) through REST from 32 clients;
/// how many.
async fn submit_many(http: &Http, world: &World, count: usize) -> Result<usize> {
    let clients = 32;
    let per = count.div_ceil(clients);
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (http, w) = (http.clone(), world.clone());
        tasks.push(tokio::spawn(async move {
            for i in 0..per {
                let body = json!({"session_id": w.session, "number": format!("M-{c}-{i}"), "title": "memory", "body": "a suggestion body of a realistic length ".repeat(8), "lead_deputy_id": w.deputy_id, "co_signer_ids": [w.co_signer_id]});
                let (status, v) = http.post("/v1/suggestions", &w.office, body).await?;
                anyhow::ensure!(status == 201, "submit: {status} {} {}", v.code, v.detail);
            }
            anyhow::Ok(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    Ok(per * clients)
}

async fn memory(suggestions: usize) -> Result<()> {
    let server = Server::sqlite().await?;
    let http = Http::new(server.http_url.clone());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle = server.rss_kib()?;
    let world = setup(&http, &server.office_key).await?;
    println!("\n== memory of banli serve (SQLite)");
    println!(
        "  idle RSS                {:>8.1} MiB  (goal ≤ 40 MiB)",
        idle as f64 / 1024.0
    );
    let start = Instant::now();
    let stored = submit_many(&http, &world, suggestions).await?;
    let (status, page) = http
        .get("/v1/suggestions?page_size=200", &world.office)
        .await?;
    anyhow::ensure!(
        status == 200 && page.items.len() == 200,
        "listing after the load failed"
    );
    let loaded = server.rss_kib()?;
    println!(
        "  RSS, {stored} stored     {:>6.1} MiB  (goal ≤ 150 MiB; stored in {:.0} s)",
        loaded as f64 / 1024.0,
        start.elapsed().as_secs_f64()
    );
    println!("  baseline: the same process idle, above");
    server.stop().await
}
