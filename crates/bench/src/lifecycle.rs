//! The lifecycle bench: a populated directory, the 13 commands of one lifecycle through REST,
//! closed-loop saturation and open-loop load at the goal, latencies, refusals and consumer lag,
//! beside single-row INSERT transactions on the same database.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use serde_json::{Value, json};

use crate::client::{Brief, Http};
use crate::server::Server;
use crate::{Backend, Mode};

/// What every client needs: keys and ids of a populated directory.
#[derive(Debug, Clone)]
pub(crate) struct World {
    pub(crate) office: String,
    pub(crate) lead_admin: String,
    pub(crate) deputy: String,
    pub(crate) co_signer: String,
    pub(crate) session: String,
    pub(crate) lead: String,
    pub(crate) co1: String,
    pub(crate) co2: String,
    pub(crate) division: String,
    pub(crate) deputy_id: String,
    pub(crate) co_signer_id: String,
}

pub(crate) async fn setup(http: &Http, office: &str) -> Result<World> {
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
pub(crate) async fn one_lifecycle(http: &Http, w: &World, n: usize, run: &mut Run) -> Result<bool> {
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
pub(crate) struct Run {
    pub(crate) lat: Latencies,
    pub(crate) refused: BTreeMap<(&'static str, u16), (u64, String)>,
    pub(crate) lifecycles: usize,
    pub(crate) incomplete: usize,
}

impl Run {
    pub(crate) fn absorb(&mut self, other: Run) {
        for (k, v) in other.lat {
            self.lat.entry(k).or_default().extend(v);
        }
        for (k, (n, detail)) in other.refused {
            self.refused.entry(k).or_insert((0, detail)).0 += n;
        }
        self.lifecycles += other.lifecycles;
        self.incomplete += other.incomplete;
    }

    pub(crate) fn print_refusals(&self) {
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

pub(crate) fn pct(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

pub(crate) fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The server for `backend` and `mode`, a client routing each path to its service, a populated
/// directory, and how to name the setup in the output.
pub(crate) async fn start(backend: Backend, mode: Mode) -> Result<(Server, Http, World, String)> {
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
pub(crate) async fn closed_loop(
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

pub(crate) async fn lifecycle(
    backend: Backend,
    mode: Mode,
    clients: usize,
    duration: Duration,
) -> Result<()> {
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
pub(crate) type LagHistograms = BTreeMap<String, Vec<(f64, u64)>>;

pub(crate) async fn scrape_lag(http: &Http, key: &str) -> Result<LagHistograms> {
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
pub(crate) fn lag_quantile(
    now: &[(f64, u64)],
    before: Option<&Vec<(f64, u64)>>,
    p: f64,
) -> Option<f64> {
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
pub(crate) async fn consumer_lag(
    http: &Http,
    key: &str,
    since: Option<&LagHistograms>,
) -> Result<()> {
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

pub(crate) const COMMANDS_PER_LIFECYCLE: usize = 13;

pub(crate) type Latencies = BTreeMap<&'static str, Vec<Duration>>;

pub(crate) async fn collect(tasks: Vec<tokio::task::JoinHandle<Result<Run>>>) -> Result<Run> {
    let mut all = Run::default();
    for t in tasks {
        all.absorb(t.await??);
    }
    Ok(all)
}

pub(crate) fn sorted(all: &Latencies) -> Vec<Duration> {
    let mut every: Vec<Duration> = all.values().flatten().copied().collect();
    every.sort();
    every
}

pub(crate) fn report(all: &Latencies, every: &[Duration]) {
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
pub(crate) async fn baseline_inserts(
    server: &Server,
    clients: usize,
    duration: Duration,
) -> Result<f64> {
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
