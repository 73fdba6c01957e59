//! Webhook deliveries to a local receiver that checks every signature: the sustained rate with
//! 20,000 events waiting over 8 endpoints, and the time from commit (the feed row written) to
//! the receiver at a paced 100 events/s; beside plain unsigned POSTs of the same bodies from 8
//! concurrent clients to the same receiver, in the same run.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use axum::body::Bytes;
use axum::http::HeaderMap;
use banli_coordination::feed::FeedEntry;
use banli_coordination::store::Store;
use banli_coordination::webhooks::deliver::{Deliverer, Policy};
use banli_coordination::webhooks::sign::verify;
use banli_coordination::webhooks::{EndpointRow, SecretKey, now_ms};
use banli_db::testing::TestDb;
use banli_domain::ids::AgencyId;
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::Backend;

const ENDPOINTS: usize = 8;

#[derive(Default)]
struct Received {
    /// event id → when it arrived.
    at: HashMap<String, Instant>,
    bad: u64,
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn entry(agency: AgencyId, k: u64) -> FeedEntry {
    FeedEntry {
        agency_id: agency,
        event_id: uuid::Uuid::now_v7(),
        event_type: "suggestion.replied".into(),
        aggregate_type: "suggestion".into(),
        aggregate_id: uuid::Uuid::from_u128(u128::from(k)).to_string(),
        aggregate_version: 7,
        occurred_at: "2020-05-20T09:00:00Z".into(),
        payload: format!(
            r#"{{"type":"replied","data":{{"reply":{{"id":"{k:032x}","document_number":"工信函〔2020〕{k}号","class":"A","body":"经研究，已将相关措施纳入年度工作计划并组织实施。","on":"2020-05-20"}}}}}}"#
        ),
    }
}

pub async fn run(backend: Backend) -> Result<()> {
    println!("\n== webhooks on {backend:?}: {ENDPOINTS} endpoints, one local receiver");
    let db = match backend {
        Backend::Sqlite => TestDb::sqlite().await,
        Backend::Postgres => TestDb::postgres().await.context("PostgreSQL is needed")?,
    };
    let store = Store::new(db.pool.clone());
    store.migrate().await?;
    let key = Arc::new(
        SecretKey::generate_text()
            .and_then(|t| SecretKey::parse(&t))
            .map_err(anyhow::Error::msg)?,
    );

    // The receiver: checks each delivery's signature with its endpoint's secret.
    let received = Arc::new(Mutex::new(Received::default()));
    let secrets: Arc<Vec<String>> = Arc::new(
        (0..ENDPOINTS)
            .map(|i| format!("whsec_bench_{i:02}"))
            .collect(),
    );
    let app = {
        let (received, secrets) = (received.clone(), secrets.clone());
        axum::Router::new().route(
            "/hook/{i}",
            axum::routing::post(
                move |axum::extract::Path(i): axum::extract::Path<usize>,
                      headers: HeaderMap,
                      body: Bytes| {
                    let (received, secrets) = (received.clone(), secrets.clone());
                    async move {
                        let arrived = Instant::now();
                        let sig = headers
                            .get("banli-signature")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("");
                        let id = headers
                            .get("banli-delivery")
                            .and_then(|v| v.to_str().ok())
                            .unwrap_or("")
                            .to_owned();
                        let now = time::OffsetDateTime::now_utc().unix_timestamp();
                        let ok = secrets
                            .get(i)
                            .is_some_and(|s| verify(sig, s.as_bytes(), &body, now).is_ok());
                        if let Ok(mut r) = received.lock() {
                            if ok || sig.is_empty() {
                                r.at.insert(id, arrived);
                            } else {
                                r.bad += 1;
                            }
                        }
                        "ok"
                    }
                },
            ),
        )
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(async move { axum::serve(listener, app).await });

    // Baseline: unsigned POSTs of the same bodies, 8 clients, straight to the receiver.
    let client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let n_base = 20_000u64;
    let t = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..ENDPOINTS as u64 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            for k in (c..n_base).step_by(ENDPOINTS) {
                let body = serde_json::to_vec(&serde_json::json!({"event_id": k.to_string(), "payload": entry(AgencyId::new(), k).payload}))
                    .unwrap_or_default();
                let req = hyper::Request::post(format!("http://{addr}/hook/{c}"))
                    .header("content-type", "application/json")
                    .header("banli-delivery", format!("base-{k}"))
                    .body(Full::new(Bytes::from(body)))?;
                let res = client.request(req).await?;
                let _ = http_body_util::BodyExt::collect(res.into_body()).await;
            }
            Ok::<_, anyhow::Error>(())
        }));
    }
    for t in tasks {
        t.await??;
    }
    let base = n_base as f64 / t.elapsed().as_secs_f64();
    println!("  baseline: plain POSTs, 8 clients: {base:.0}/s");
    if let Ok(mut r) = received.lock() {
        r.at.clear();
    }

    // Endpoints, one per agency, each with its secret.
    let agencies: Vec<AgencyId> = (0..ENDPOINTS).map(|_| AgencyId::new()).collect();
    for (i, a) in agencies.iter().enumerate() {
        let now = now_ms();
        let id = uuid::Uuid::now_v7().to_string();
        store
            .insert_webhook(
                EndpointRow {
                    id: id.clone(),
                    agency_id: a.to_string(),
                    url: format!("http://{addr}/hook/{i}"),
                    event_types: "[]".into(),
                    description: "bench".into(),
                    state: "active".into(),
                    disabled_reason: None,
                    cursor: 0,
                    failures: 0,
                    failing_since: None,
                    next_attempt_at: 0,
                    version: 1,
                    created_at: now,
                    updated_at: now,
                },
                uuid::Uuid::now_v7().to_string(),
                key.seal(secrets[i].as_bytes(), &id)
                    .map_err(anyhow::Error::msg)?,
            )
            .await?;
    }

    // Sustained: 20,000 events waiting, then the worker starts.
    let n = 20_000u64;
    let waiting: Vec<FeedEntry> = (0..n)
        .map(|k| entry(agencies[(k % ENDPOINTS as u64) as usize], k))
        .collect();
    store.append_feed(waiting).await?;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let deliverer =
        Deliverer::new(store.clone(), key, loopback_policy()).map_err(anyhow::Error::msg)?;
    let started = Instant::now();
    let worker = tokio::spawn(deliverer.run(async {
        let _ = stopped.await;
    }));
    loop {
        let got = received.lock().map(|r| r.at.len() as u64).unwrap_or(0);
        if got >= n {
            break;
        }
        if started.elapsed() > Duration::from_secs(300) {
            for e in &store.webhooks(None).await? {
                let log = store.webhook_deliveries(&e.id, 3).await?;
                eprintln!(
                    "endpoint {} cursor {} failures {} next {} state {} last {:?}",
                    e.id,
                    e.cursor,
                    e.failures,
                    e.next_attempt_at - now_ms(),
                    e.state,
                    log.first().map(|d| (&d.error, d.status))
                );
            }
            anyhow::bail!("only {got} of {n} delivered in 300 s");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let rate = n as f64 / started.elapsed().as_secs_f64();
    println!(
        "  signed deliveries, {n} waiting over {ENDPOINTS} endpoints: {rate:.0}/s ({:.0}% of the baseline)   goal ≥ 500/s",
        100.0 * rate / base
    );

    // Paced: 100 commits/s for 10 s, each one feed row in its own transaction.
    let mut committed: Vec<(String, Instant)> = Vec::new();
    let tick = Duration::from_millis(10);
    let t0 = Instant::now();
    for k in 0..1000u64 {
        let due = t0 + tick * k as u32;
        tokio::time::sleep_until(due.into()).await;
        let e = entry(agencies[(k % ENDPOINTS as u64) as usize], n + k);
        let id = e.event_id.to_string();
        store.append_feed(vec![e]).await?;
        committed.push((id, Instant::now()));
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let missing = received
            .lock()
            .map(|r| {
                committed
                    .iter()
                    .filter(|(id, _)| !r.at.contains_key(id))
                    .count()
            })
            .unwrap_or(usize::MAX);
        if missing == 0 {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "{missing} paced deliveries never arrived"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let (mut lat, bad) = {
        let r = received.lock().map_err(|_| anyhow::anyhow!("lock"))?;
        (
            committed
                .iter()
                .filter_map(|(id, c)| {
                    r.at.get(id)
                        .map(|a| a.duration_since(*c).as_secs_f64() * 1e3)
                })
                .collect::<Vec<f64>>(),
            r.bad,
        )
    };
    println!(
        "  commit → delivered at 100/s: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms   goal p99 ≤ 200 ms",
        pct(&mut lat, 0.5),
        pct(&mut lat, 0.99),
        pct(&mut lat, 1.0)
    );
    println!("  deliveries whose signature did not verify: {bad}");
    let _ = stop.send(());
    let _ = worker.await;
    server.abort();
    db.drop_db().await;
    Ok(())
}

/// The default policy, with the receivers' loopback network allowed (as an operator would with
/// `webhook_allowed_networks`).
fn loopback_policy() -> Policy {
    Policy {
        egress: banli_coordination::webhooks::egress::Egress::new(
            banli_coordination::webhooks::egress::Egress::parse_list("127.0.0.0/8")
                .unwrap_or_default(),
        ),
        ..Policy::default()
    }
}
