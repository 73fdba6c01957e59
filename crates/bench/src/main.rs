//! `banli-bench`: drives a real `banli serve` process over HTTP and prints each figure beside its
//! baseline, measured in the same run.
//!
//!     cargo build --release -p banli -p banli-bench
//!     target/release/banli-bench                      # lifecycles on SQLite and PostgreSQL, memory
//!     target/release/banli-bench lifecycle --backend sqlite --clients 32 --seconds 20
//!     target/release/banli-bench memory --suggestions 100000
//!     target/release/banli-bench propagation --transport nats
//!     target/release/banli-bench audit --backend sqlite --leaves 1000000
//!     target/release/banli-bench timers --count 100000
//!     target/release/banli-bench metrics --assignments 1000000
//!     target/release/banli-bench feed --events 1000000
//!     target/release/banli-bench webhooks
//!
//! A lifecycle is 13 REST commands: submit → start review → accept → assign lead + 2 co →
//! sign for → dispatch → 2 communications → 2 co-opinion waivers → reply → 2 feedbacks.
//! (The waivers, sign-for and dispatch are what the rules require before a lead may reply.)
//! Sign-for and the waivers go to the coordination service; the commands after them wait for
//! the suggestions service to learn of them through the event log, and their latency includes
//! that wait.
//! The baseline is single-row INSERT transactions on the same database with the same concurrency.

mod audit;
mod client;
mod feed;
mod metrics;
mod propagation;
mod server;
mod timers;
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
        #[arg(long, default_value_t = 32)]
        clients: usize,
        #[arg(long, default_value_t = 20)]
        seconds: u64,
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
    /// RSS of banli serve idle and with N suggestions stored.
    Memory {
        #[arg(long, default_value_t = 100_000)]
        suggestions: usize,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Backend {
    Sqlite,
    Postgres,
}

#[tokio::main]
async fn main() -> Result<()> {
    match Cli::parse().command {
        Some(Command::Lifecycle {
            backend,
            clients,
            seconds,
        }) => lifecycle(backend, clients, Duration::from_secs(seconds)).await,
        Some(Command::Memory { suggestions }) => memory(suggestions).await,
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
            lifecycle(Backend::Sqlite, 32, Duration::from_secs(20)).await?;
            lifecycle(Backend::Postgres, 32, Duration::from_secs(20)).await?;
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

/// Runs one lifecycle, recording each command's latency.
async fn one_lifecycle(http: &Http, w: &World, n: usize, lat: &mut Latencies) -> Result<()> {
    // Every command is retried while it meets 404 or 409 (for at most 10 s): a command that
    // depends on an event crossing between the services (the coordination service learning of
    // an assignment, the suggestions service of a sign-for or waiver) waits for the other side
    // to catch up, and its latency includes the wait. Nothing is written by a 404 or 409.
    let mut step =
        async |name: &'static str, path: String, key: &str, body: Value| -> Result<Brief> {
            let t = Instant::now();
            loop {
                let (status, v) = http.post(&path, key, body.clone()).await?;
                if status < 300 {
                    lat.entry(name).or_default().push(t.elapsed());
                    return Ok(v);
                }
                anyhow::ensure!(
                    matches!(status, 404 | 409) && t.elapsed() < Duration::from_secs(10),
                    "{name}: {status} {} {}",
                    v.code,
                    v.detail
                );
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        };
    let number = format!("B-{n}-{}", uuid::Uuid::now_v7().simple());
    let submit = json!({"session_id": w.session, "number": number, "title": "bench", "body": "bench", "lead_deputy_id": w.deputy_id, "co_signer_ids": [w.co_signer_id]});
    let id = step("submit", "/v1/suggestions".into(), &w.deputy, submit)
        .await?
        .id;
    let p = |suffix: &str| format!("/v1/suggestions/{id}{suffix}");
    step("start_review", p("/start-review"), &w.office, json!({})).await?;
    step(
        "review",
        p("/review"),
        &w.office,
        json!({"decision": "accept"}),
    )
    .await?;
    let units = json!({"units": [{"agency_id": w.lead, "role": "lead"}, {"agency_id": w.co1, "role": "co"}, {"agency_id": w.co2, "role": "co"}]});
    let s = step("assign", p("/assignments"), &w.office, units).await?;
    let find = |agency: &str| -> Result<String> {
        s.assignments
            .iter()
            .find(|x| x.agency_id == agency)
            .map(|x| x.id.clone())
            .context("assignment")
    };
    let (lead, co1, co2) = (find(&w.lead)?, find(&w.co1)?, find(&w.co2)?);
    step(
        "sign_for",
        format!("/v1/coordination/assignments/{lead}/sign-for"),
        &w.lead_admin,
        json!({}),
    )
    .await?;
    let dispatch = json!({"division_id": w.division, "handler": "h", "responsible_leader": "l"});
    step(
        "dispatch",
        p(&format!("/assignments/{lead}/dispatch")),
        &w.lead_admin,
        dispatch,
    )
    .await?;
    for (f2f, who) in [(true, &w.deputy_id), (false, &w.co_signer_id)] {
        let talk = json!({"assignment_id": lead, "phase": "during", "method": "visit", "face_to_face": f2f, "deputy_ids": [w.deputy_id, who], "summary": "met"});
        step("communicate", p("/communications"), &w.lead_admin, talk).await?;
    }
    for co in [&co1, &co2] {
        step(
            "waive_opinion",
            format!("/v1/coordination/assignments/{co}/waiver"),
            &w.office,
            json!({"reason": "bench"}),
        )
        .await?;
    }
    let reply = json!({"assignment_id": lead, "document_number": "R-1", "body": "done", "class": "A", "signer": {"name": "c", "position": "principal_head"}});
    step("reply", p("/replies"), &w.lead_admin, reply).await?;
    step(
        "feedback",
        p("/feedback"),
        &w.deputy,
        json!({"level": "satisfied"}),
    )
    .await?;
    let s = step(
        "feedback",
        p("/feedback"),
        &w.co_signer,
        json!({"level": "satisfied"}),
    )
    .await?;
    anyhow::ensure!(
        s.state == "closed",
        "the lifecycle ends closed, not {}",
        s.state
    );
    Ok(())
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

async fn lifecycle(backend: Backend, clients: usize, duration: Duration) -> Result<()> {
    let server = match backend {
        Backend::Sqlite => Server::sqlite().await?,
        Backend::Postgres => Server::postgres().await?,
    };
    let http = Http::new(server.http_url.clone());
    let world = setup(&http, &server.office_key).await?;
    println!(
        "\n== lifecycles through REST on {backend:?} ({} commands each)",
        COMMANDS_PER_LIFECYCLE
    );
    let baseline =
        baseline_inserts(&server, clients, duration.min(Duration::from_secs(10))).await?;
    println!(
        "  baseline INSERT tx/s    {baseline:>9.1}  (single-row INSERT transactions, same database, {clients} connections)"
    );

    // Saturation: `clients` closed-loop clients, each running lifecycles back to back.
    let start = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (http, world) = (http.clone(), world.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat: BTreeMap<&'static str, Vec<Duration>> = BTreeMap::new();
            let mut done = 0usize;
            while start.elapsed() < duration {
                one_lifecycle(&http, &world, c * 1_000_000 + done, &mut lat).await?;
                done += 1;
            }
            anyhow::Ok((done, lat))
        }));
    }
    let (lifecycles, all) = collect(tasks).await?;
    let elapsed = start.elapsed().as_secs_f64();
    let every = sorted(&all);
    let cps = every.len() as f64 / elapsed;
    println!(
        "  -- {clients} concurrent clients, {}s, as fast as it goes",
        duration.as_secs()
    );
    println!(
        "  lifecycles/s            {:>9.1}  ({lifecycles} complete lifecycles)",
        lifecycles as f64 / elapsed
    );
    println!(
        "  commands/s              {:>9.1}  ({} commands)",
        cps,
        every.len()
    );
    println!(
        "  commands / baseline     {:>8.1}%  (goal ≥ 25%)",
        100.0 * cps / baseline
    );
    report(&all, &every);

    // At the goal's load: commands offered at 25% of the baseline rate, open loop.
    let target = 0.25 * baseline;
    let every_lifecycle = Duration::from_secs_f64(COMMANDS_PER_LIFECYCLE as f64 / target);
    let start = Instant::now();
    let mut ticker = tokio::time::interval(every_lifecycle);
    let mut tasks = Vec::new();
    let mut n = 0;
    while start.elapsed() < duration {
        ticker.tick().await;
        let (http, world) = (http.clone(), world.clone());
        n += 1;
        tasks.push(tokio::spawn(async move {
            let mut lat = BTreeMap::new();
            one_lifecycle(&http, &world, 900_000_000 + n, &mut lat).await?;
            anyhow::Ok((1, lat))
        }));
    }
    let (paced, all) = collect(tasks).await?;
    let elapsed = start.elapsed().as_secs_f64();
    let every = sorted(&all);
    println!(
        "  -- offered at 25% of the baseline: {target:.0} commands/s, open loop, {}s",
        duration.as_secs()
    );
    println!(
        "  commands/s achieved     {:>9.1}  ({paced} lifecycles)",
        every.len() as f64 / elapsed
    );
    report(&all, &every);
    server.stop().await
}

const COMMANDS_PER_LIFECYCLE: usize = 13;

type Latencies = BTreeMap<&'static str, Vec<Duration>>;

async fn collect(
    tasks: Vec<tokio::task::JoinHandle<Result<(usize, Latencies)>>>,
) -> Result<(usize, Latencies)> {
    let mut done = 0;
    let mut all: Latencies = BTreeMap::new();
    for t in tasks {
        let (n, lat) = t.await??;
        done += n;
        for (k, v) in lat {
            all.entry(k).or_default().extend(v);
        }
    }
    Ok((done, all))
}

fn sorted(all: &Latencies) -> Vec<Duration> {
    let mut every: Vec<Duration> = all.values().flatten().copied().collect();
    every.sort();
    every
}

fn report(all: &Latencies, every: &[Duration]) {
    println!(
        "  all commands            p50 {:>6.2} ms   p99 {:>6.2} ms  (goal p99 ≤ 20 ms)",
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
    let clients = 32;
    let per = suggestions.div_ceil(clients);
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
    let stored = per * clients;
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
