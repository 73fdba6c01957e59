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
mod feed;
mod metrics;
mod propagation;
mod server;
mod soak;
mod timers;
mod tls;
mod watch;
mod webhook_rss;
mod webhooks;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use serde_json::{Value, json};

use crate::client::{Brief, Http};
use crate::server::Server;

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
            for b in [Backend::Sqlite, Backend::Postgres] {
                audit::run(b, 1_000_000).await?;
                timers::run_bench(b, 100_000, 20).await?;
                metrics::run(b, 1_000_000).await?;
                feed::run(b, 1_000_000).await?;
                webhooks::run(b).await?;
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

/// What every client needs: keys and ids of a populated directory.
#[derive(Debug, Clone)]
struct World {
    office: String,
    lead_admin: String,
    deputy: String,
    co_signer: String,
    session: String,
    lead: String,
    co1: String,
    co2: String,
    division: String,
    deputy_id: String,
    co_signer_id: String,
}

async fn setup(http: &Http, office: &str) -> Result<World> {
    let id = |v: &Brief| {
        if v.id.is_empty() {
            Err(anyhow::anyhow!(
                "no id in the response: {} {}",
                v.code,
                v.detail
            ))
        } else {
            Ok(v.id.clone())
        }
    };
    let session = id(&http.post("/v1/sessions", office, json!({"body": "npc", "term": 14, "number": 1, "name": "bench", "opens_on": "2026-01-10", "closes_on": "2026-01-16"})).await?.1)?;
    let mut agencies = Vec::new();
    for name in ["Industry", "Finance", "Science"] {
        agencies.push(id(&http
            .post(
                "/v1/agencies",
                office,
                json!({ "name": format!("{name} {}", uuid::Uuid::now_v7().simple()) }),
            )
            .await?
            .1)?);
    }
    let deputy_id = id(&http
        .post(
            "/v1/deputies",
            office,
            json!({"name": "Deputy A", "delegation": "X"}),
        )
        .await?
        .1)?;
    let co_signer_id = id(&http
        .post(
            "/v1/deputies",
            office,
            json!({"name": "Deputy B", "delegation": "X"}),
        )
        .await?
        .1)?;
    let division = id(&http
        .post(
            &format!("/v1/agencies/{}/divisions", agencies[0]),
            office,
            json!({"name": "SME"}),
        )
        .await?
        .1)?;
    let token = |v: Brief| {
        if v.token.is_empty() {
            Err(anyhow::anyhow!("no token: {} {}", v.code, v.detail))
        } else {
            Ok(v.token)
        }
    };
    let lead_admin = token(
        http.post(
            "/v1/admin/keys",
            office,
            json!({"role": "agency_admin", "agency_id": agencies[0]}),
        )
        .await?
        .1,
    )?;
    let deputy = token(
        http.post(
            "/v1/admin/keys",
            office,
            json!({"role": "deputy", "deputy_id": deputy_id}),
        )
        .await?
        .1,
    )?;
    let co_signer = token(
        http.post(
            "/v1/admin/keys",
            office,
            json!({"role": "deputy", "deputy_id": co_signer_id}),
        )
        .await?
        .1,
    )?;
    Ok(World {
        office: office.to_owned(),
        lead_admin,
        deputy,
        co_signer,
        session,
        lead: agencies[0].clone(),
        co1: agencies[1].clone(),
        co2: agencies[2].clone(),
        division,
        deputy_id,
        co_signer_id,
    })
}

/// Runs one lifecycle, recording each command's latency. Each command carries the consistency
/// token of the previous response, so it is decided only after its service has applied what
/// came before — in whichever service that happened. Nothing is retried: a refused command
/// (any status other than 2xx) is counted under its name and status, and ends the lifecycle.
/// Returns whether the lifecycle completed.
async fn one_lifecycle(http: &Http, w: &World, n: usize, run: &mut Run) -> Result<bool> {
    let mut token: Option<String> = None;
    let mut step =
        async |name: &'static str, path: String, key: &str, body: Value| -> Result<Option<Brief>> {
            let t = Instant::now();
            let (status, v, next) = http.post_after(&path, key, body, token.as_deref()).await?;
            if status < 300 {
                run.lat.entry(name).or_default().push(t.elapsed());
                if next.is_some() {
                    token = next;
                }
                return Ok(Some(v));
            }
            let entry = run
                .refused
                .entry((name, status))
                .or_insert_with(|| (0, format!("{} {}", v.code, v.detail)));
            entry.0 += 1;
            Ok(None)
        };
    let number = format!("B-{n}-{}", uuid::Uuid::now_v7().simple());
    let submit = json!({"session_id": w.session, "number": number, "title": "bench", "body": "bench", "lead_deputy_id": w.deputy_id, "co_signer_ids": [w.co_signer_id]});
    let Some(s) = step("submit", "/v1/suggestions".into(), &w.deputy, submit).await? else {
        return Ok(false);
    };
    let id = s.id;
    let p = |suffix: &str| format!("/v1/suggestions/{id}{suffix}");
    if step("start_review", p("/start-review"), &w.office, json!({}))
        .await?
        .is_none()
    {
        return Ok(false);
    }
    let accept = json!({"decision": "accept"});
    if step("review", p("/review"), &w.office, accept)
        .await?
        .is_none()
    {
        return Ok(false);
    }
    let units = json!({"units": [{"agency_id": w.lead, "role": "lead"}, {"agency_id": w.co1, "role": "co"}, {"agency_id": w.co2, "role": "co"}]});
    let Some(s) = step("assign", p("/assignments"), &w.office, units).await? else {
        return Ok(false);
    };
    let find = |agency: &str| -> Result<String> {
        s.assignments
            .iter()
            .find(|x| x.agency_id == agency)
            .map(|x| x.id.clone())
            .context("assignment")
    };
    let (lead, co1, co2) = (find(&w.lead)?, find(&w.co1)?, find(&w.co2)?);
    let sign_for = format!("/v1/coordination/assignments/{lead}/sign-for");
    if step("sign_for", sign_for, &w.lead_admin, json!({}))
        .await?
        .is_none()
    {
        return Ok(false);
    }
    let dispatch = json!({"division_id": w.division, "handler": "h", "responsible_leader": "l"});
    let path = p(&format!("/assignments/{lead}/dispatch"));
    if step("dispatch", path, &w.lead_admin, dispatch)
        .await?
        .is_none()
    {
        return Ok(false);
    }
    for (f2f, who) in [(true, &w.deputy_id), (false, &w.co_signer_id)] {
        let talk = json!({"assignment_id": lead, "phase": "during", "method": "visit", "face_to_face": f2f, "deputy_ids": [w.deputy_id, who], "summary": "met"});
        if step("communicate", p("/communications"), &w.lead_admin, talk)
            .await?
            .is_none()
        {
            return Ok(false);
        }
    }
    for co in [&co1, &co2] {
        let path = format!("/v1/coordination/assignments/{co}/waiver");
        let waive = json!({"reason": "bench"});
        if step("waive_opinion", path, &w.office, waive)
            .await?
            .is_none()
        {
            return Ok(false);
        }
    }
    let reply = json!({"assignment_id": lead, "document_number": "R-1", "body": "done", "class": "A", "signer": {"name": "c", "position": "principal_head"}});
    if step("reply", p("/replies"), &w.lead_admin, reply)
        .await?
        .is_none()
    {
        return Ok(false);
    }
    let rate = json!({"level": "satisfied"});
    if step("feedback", p("/feedback"), &w.deputy, rate.clone())
        .await?
        .is_none()
    {
        return Ok(false);
    }
    let Some(s) = step("feedback", p("/feedback"), &w.co_signer, rate).await? else {
        return Ok(false);
    };
    anyhow::ensure!(
        s.state == "closed",
        "the lifecycle ends closed, not {}",
        s.state
    );
    Ok(true)
}

/// What a run of lifecycles measured: latencies of the commands that succeeded, and every
/// refusal by command and status (with the first refusal's code and detail).
#[derive(Debug, Default)]
struct Run {
    lat: Latencies,
    refused: BTreeMap<(&'static str, u16), (u64, String)>,
    lifecycles: usize,
    incomplete: usize,
}

impl Run {
    fn absorb(&mut self, other: Run) {
        for (k, v) in other.lat {
            self.lat.entry(k).or_default().extend(v);
        }
        for (k, (n, detail)) in other.refused {
            self.refused.entry(k).or_insert((0, detail)).0 += n;
        }
        self.lifecycles += other.lifecycles;
        self.incomplete += other.incomplete;
    }

    fn print_refusals(&self) {
        let total: u64 = self.refused.values().map(|(n, _)| n).sum();
        println!(
            "  refused commands        {total:>9}  (goal 0; nothing is retried; {} lifecycles cut short)",
            self.incomplete
        );
        for ((name, status), (n, detail)) in &self.refused {
            println!("    {name:<16} {status}  x{n:<6} first: {detail}");
        }
    }
}

fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The server for `backend` and `mode`, a client routing each path to its service, a populated
/// directory, and how to name the setup in the output.
async fn start(backend: Backend, mode: Mode) -> Result<(Server, Http, World, String)> {
    let server = match (mode, backend) {
        (Mode::Distributed, _) => Server::distributed().await?,
        (Mode::One, Backend::Sqlite) => Server::sqlite().await?,
        (Mode::One, Backend::Postgres) => Server::postgres().await?,
    };
    let http = Http::new(server.http_url.clone()).routed(server.routes.clone());
    let world = setup(&http, &server.office_key).await?;
    let on = match mode {
        Mode::One => format!("{backend:?}, one process"),
        Mode::Distributed => "PostgreSQL + NATS, three processes".to_owned(),
    };
    Ok((server, http, world, on))
}

/// `clients` closed-loop clients, each running lifecycles back to back for `duration`
/// (lifecycle numbers from `first`).
async fn closed_loop(
    http: &Http,
    world: &World,
    clients: usize,
    duration: Duration,
    first: usize,
) -> Result<Run> {
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (http, world) = (http.clone(), world.clone());
        tasks.push(tokio::spawn(async move {
            let mut run = Run::default();
            let mut n = 0usize;
            while start.elapsed() < duration {
                if one_lifecycle(&http, &world, first + c * 1_000_000 + n, &mut run).await? {
                    run.lifecycles += 1;
                } else {
                    run.incomplete += 1;
                }
                n += 1;
            }
            anyhow::Ok(run)
        }));
    }
    collect(tasks).await
}

async fn lifecycle(backend: Backend, mode: Mode, clients: usize, duration: Duration) -> Result<()> {
    let (server, http, world, on) = start(backend, mode).await?;
    println!(
        "\n== lifecycles through REST on {on} ({} commands each)",
        COMMANDS_PER_LIFECYCLE
    );
    let baseline =
        baseline_inserts(&server, clients, duration.min(Duration::from_secs(10))).await?;
    println!(
        "  baseline INSERT tx/s    {baseline:>9.1}  (single-row INSERT transactions, same database, {clients} connections)"
    );

    let goal = if mode == Mode::Distributed { 15 } else { 25 };
    // Saturation: `clients` closed-loop clients, each running lifecycles back to back.
    let start = Instant::now();
    let run = closed_loop(&http, &world, clients, duration, 0).await?;
    let elapsed = start.elapsed().as_secs_f64();
    let every = sorted(&run.lat);
    let cps = every.len() as f64 / elapsed;
    println!(
        "  -- {clients} concurrent clients, {}s, as fast as it goes",
        duration.as_secs()
    );
    println!(
        "  lifecycles/s            {:>9.1}  ({} complete lifecycles)",
        run.lifecycles as f64 / elapsed,
        run.lifecycles
    );
    println!(
        "  commands/s              {:>9.1}  ({} commands)",
        cps,
        every.len()
    );
    println!(
        "  commands / baseline     {:>8.1}%  (goal ≥ {goal}%)",
        100.0 * cps / baseline
    );
    report(&run.lat, &every);
    run.print_refusals();
    consumer_lag(&http, &server.office_key, None).await?;

    // At the goal's load: commands offered at 25% of the baseline rate, open loop.
    let target = 0.25 * baseline;
    let every_lifecycle = Duration::from_secs_f64(COMMANDS_PER_LIFECYCLE as f64 / target);
    let before = scrape_lag(&http, &server.office_key).await?;
    let start = Instant::now();
    let mut ticker = tokio::time::interval(every_lifecycle);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Burst);
    let mut tasks = Vec::new();
    let mut n = 0;
    while start.elapsed() < duration {
        ticker.tick().await;
        let (http, world) = (http.clone(), world.clone());
        n += 1;
        tasks.push(tokio::spawn(async move {
            let mut run = Run::default();
            if one_lifecycle(&http, &world, 900_000_000 + n, &mut run).await? {
                run.lifecycles += 1;
            } else {
                run.incomplete += 1;
            }
            anyhow::Ok(run)
        }));
    }
    let run = collect(tasks).await?;
    let elapsed = start.elapsed().as_secs_f64();
    let every = sorted(&run.lat);
    println!(
        "  -- offered at 25% of the baseline: {target:.0} commands/s, open loop, {}s",
        duration.as_secs()
    );
    println!(
        "  commands/s achieved     {:>9.1}  ({} lifecycles)",
        every.len() as f64 / elapsed,
        run.lifecycles
    );
    report(&run.lat, &every);
    run.print_refusals();
    consumer_lag(&http, &server.office_key, Some(&before)).await?;
    server.stop().await
}

/// The consumer lag histograms on `/metrics`: per consumer, the cumulative count per bucket.
type LagHistograms = BTreeMap<String, Vec<(f64, u64)>>;

async fn scrape_lag(http: &Http, key: &str) -> Result<LagHistograms> {
    let mut text = String::new();
    for base in http.bases() {
        text.push_str(&http.get_text(&base, "/metrics", key).await?);
    }
    let mut out: LagHistograms = BTreeMap::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("banli_consumer_lag_milliseconds_bucket{consumer=\"")
        else {
            continue;
        };
        let Some((consumer, rest)) = rest.split_once("\",le=\"") else {
            continue;
        };
        let Some((le, count)) = rest.split_once("\"} ") else {
            continue;
        };
        let le = if le == "+Inf" {
            f64::INFINITY
        } else {
            le.parse()?
        };
        out.entry(consumer.to_owned())
            .or_default()
            .push((le, count.trim().parse()?));
    }
    Ok(out)
}

/// The `p` quantile of one consumer's lag histogram over what happened since `before`: the
/// upper bound of the bucket it falls in; `None` when nothing happened.
fn lag_quantile(now: &[(f64, u64)], before: Option<&Vec<(f64, u64)>>, p: f64) -> Option<f64> {
    let counts: Vec<(f64, u64)> = now
        .iter()
        .enumerate()
        .map(|(i, (le, n))| {
            let b = before.and_then(|b| b.get(i)).map_or(0, |(_, n)| *n);
            (*le, n.saturating_sub(b))
        })
        .collect();
    let total = counts.last().map_or(0, |(_, n)| *n);
    if total == 0 {
        return None;
    }
    let want = (total as f64 * p).ceil() as u64;
    counts
        .iter()
        .find(|(_, n)| *n >= want.max(1))
        .map(|(le, _)| *le)
}

/// Prints each consumer's lag (commit at the source → effect committed) p50 and p99, as the
/// upper bound of the histogram bucket they fall in, over what happened since `since`.
async fn consumer_lag(http: &Http, key: &str, since: Option<&LagHistograms>) -> Result<()> {
    let now = scrape_lag(http, key).await?;
    println!(
        "  consumer lag (commit → applied; bucket upper bounds; goal p99 ≤ 100 ms at the open-loop load)"
    );
    for (consumer, buckets) in &now {
        let base = since.and_then(|s| s.get(consumer));
        let total = buckets
            .last()
            .map_or(0, |(_, n)| *n)
            .saturating_sub(base.and_then(|b| b.last()).map_or(0, |(_, n)| *n));
        let q = |p: f64| lag_quantile(buckets, base, p).unwrap_or(f64::NAN);
        println!(
            "    {consumer:<22} events {total:>8}   p50 ≤ {:>6} ms   p99 ≤ {:>6} ms",
            q(0.5),
            q(0.99)
        );
    }
    Ok(())
}

const COMMANDS_PER_LIFECYCLE: usize = 13;

type Latencies = BTreeMap<&'static str, Vec<Duration>>;

async fn collect(tasks: Vec<tokio::task::JoinHandle<Result<Run>>>) -> Result<Run> {
    let mut all = Run::default();
    for t in tasks {
        all.absorb(t.await??);
    }
    Ok(all)
}

fn sorted(all: &Latencies) -> Vec<Duration> {
    let mut every: Vec<Duration> = all.values().flatten().copied().collect();
    every.sort();
    every
}

fn report(all: &Latencies, every: &[Duration]) {
    println!(
        "  all commands            p50 {:>6.2} ms   p99 {:>6.2} ms  (goal p99 ≤ 50 ms at 25% of the baseline)",
        ms(pct(every, 0.5)),
        ms(pct(every, 0.99))
    );
    for (name, v) in all {
        let mut v = v.clone();
        v.sort();
        println!(
            "    {name:<16} n={:<7} p50 {:>6.2} ms   p99 {:>6.2} ms",
            v.len(),
            ms(pct(&v, 0.5)),
            ms(pct(&v, 0.99))
        );
    }
}

/// Single-row INSERT transactions per second on the server's database, `clients` at a time.
async fn baseline_inserts(server: &Server, clients: usize, duration: Duration) -> Result<f64> {
    let pool = banli_db::Pool::connect(
        &server.database_url,
        &banli_db::ConnectOptions {
            max_connections: clients as u32,
            ..Default::default()
        },
    )
    .await?;
    banli_db::on_pool!(&pool, p => {
        sqlx::query("CREATE TABLE IF NOT EXISTS bench_baseline (id TEXT PRIMARY KEY, payload TEXT NOT NULL)").execute(p).await?;
    });
    let start = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..clients {
        let pool = pool.clone();
        tasks.push(tokio::spawn(async move {
            let mut n = 0u64;
            while start.elapsed() < duration {
                banli_db::on_pool!(&pool, p => {
                    let mut tx = p.begin().await?;
                    sqlx::query("INSERT INTO bench_baseline (id, payload) VALUES ($1, $2)").bind(uuid::Uuid::now_v7().to_string()).bind("x".repeat(200)).execute(&mut *tx).await?;
                    tx.commit().await?;
                });
                n += 1;
            }
            anyhow::Ok(n)
        }));
    }
    let mut total = 0;
    for t in tasks {
        total += t.await??;
    }
    let rate = total as f64 / start.elapsed().as_secs_f64();
    pool.close().await;
    Ok(rate)
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
