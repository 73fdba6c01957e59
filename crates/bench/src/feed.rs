//! Feed reads with 1,000,000 stored events: one client reading an agency's whole feed through
//! REST (`GET /v1/feed`, pages of 1,000, keep-alive), and four clients at once on four agencies,
//! beside the same rows read by the plain indexed range query the endpoint runs (no HTTP, no
//! JSON) in the same run.
//!
//! The rows are written through the service's own feed writer (`Store::append_feed`, the
//! statement the consumer runs): 1,000,000 rows over 8 agencies, each with a payload of about
//! 600 bytes like a real `suggestion.assigned` event.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use banli_api::{Authenticator, Principal};
use banli_coordination::feed::FeedEntry;
use banli_coordination::store::Store;
use banli_db::on_pool;
use banli_db::testing::TestDb;
use banli_domain::ids::AgencyId;

use crate::Backend;
use crate::client::Http;

const AGENCIES: usize = 8;

fn payload(i: u64) -> String {
    format!(
        r#"{{"type":"assigned","data":{{"assignment_id":"{i:032x}","agency":"{:032x}","role":"co","on":"2020-03-02","replaces":null,"deadlines":{{"objection":{{"start_label":"assignment","start":"2020-03-02","duration":{{"kind":"working_days","days":5}},"due":"2020-03-09","calendar_version":"2026.1","assumed_weekends_only":false,"trace":[{{"text":"5 working days from assignment on 2020-03-02 → 2020-03-09"}}]}},"co_opinion":{{"start_label":"assignment","start":"2020-03-02","duration":{{"kind":"calendar_months","months":1}},"due":"2020-04-02","calendar_version":"2026.1","assumed_weekends_only":false,"trace":[{{"text":"1 calendar month from assignment on 2020-03-02 → 2020-04-02"}}]}}}}}}}}"#,
        i.wrapping_mul(0x9E37_79B9)
    )
}

/// Authenticates `bench-agency-<uuid>` as that agency's administrator (the bench stands in
/// for the suggestions service that owns the keys).
pub fn bench_auth() -> Authenticator {
    std::sync::Arc::new(move |token: String| {
        Box::pin(async move {
            let agency = token
                .strip_prefix("bench-agency-")
                .and_then(|a| a.parse().ok())
                .map(AgencyId);
            match agency {
                Some(a) => Ok(Principal {
                    position: None,
                    key_id: a.0,
                    role: banli_domain::Role::AgencyAdmin,
                    agency: Some(a),
                    deputy: None,
                    reference: None,
                    client_cert: None,
                }),
                None => Err(banli_api::AppError::new(
                    banli_api::ErrorCode::Unauthenticated,
                    "unknown key",
                )),
            }
        })
    })
}

/// Reads `agency`'s whole feed through REST; returns (events, seconds).
async fn read_all(http: &Http, key: &str) -> Result<(u64, f64)> {
    let started = Instant::now();
    let mut after = String::new();
    let mut n = 0u64;
    loop {
        let (status, page) = http
            .get(&format!("/v1/feed?limit=1000&after={after}"), key)
            .await?;
        anyhow::ensure!(status == 200, "feed page: {status} {}", page.detail);
        if page.items.is_empty() {
            return Ok((n, started.elapsed().as_secs_f64()));
        }
        n += page.items.len() as u64;
        after = page.next_cursor;
    }
}

pub async fn run(backend: Backend, events: u64) -> Result<()> {
    println!("\n== feed on {backend:?}: {events} stored events over {AGENCIES} agencies");
    let db = match backend {
        Backend::Sqlite => TestDb::sqlite().await,
        Backend::Postgres => TestDb::postgres().await.context("PostgreSQL is needed")?,
    };
    let store = Store::new(db.pool.clone());
    store.migrate().await?;
    let agencies: Vec<AgencyId> = (0..AGENCIES).map(|_| AgencyId::new()).collect();
    let started = Instant::now();
    let mut i = 0u64;
    while i < events {
        let chunk: Vec<FeedEntry> = (i..(i + 10_000).min(events))
            .map(|k| FeedEntry {
                agency_id: agencies[(k % AGENCIES as u64) as usize],
                event_id: uuid::Uuid::now_v7(),
                event_type: "suggestion.assigned".into(),
                aggregate_type: "suggestion".into(),
                aggregate_id: uuid::Uuid::from_u128(u128::from(k / 4)).to_string(),
                aggregate_version: k % 4 + 1,
                occurred_at: "2020-03-02T09:00:00Z".into(),
                payload: payload(k),
            })
            .collect();
        i += chunk.len() as u64;
        store.append_feed(chunk).await?;
    }
    on_pool!(&db.pool, p => sqlx::query("ANALYZE").execute(p).await.map(|_| ()))?;
    println!(
        "  loaded in {:.1} s through the feed writer",
        started.elapsed().as_secs_f64()
    );

    // Baseline: the endpoint's own range query, paged by the same 1,000, straight from the pool.
    let per_agency = events / AGENCIES as u64;
    let t = Instant::now();
    let mut after = 0i64;
    let mut n = 0u64;
    loop {
        let rows: Vec<banli_coordination::feed::FeedRow> = on_pool!(&db.pool, p => sqlx::query_as(
            "SELECT seq, event_id, event_type, aggregate_type, aggregate_id, aggregate_version, occurred_at, payload \
             FROM feed_entries WHERE agency_id = $1 AND seq > $2 ORDER BY seq LIMIT 1000")
            .bind(agencies[0].to_string())
            .bind(after)
            .fetch_all(p)
            .await)?;
        let Some(last) = rows.last() else { break };
        after = last.seq;
        n += rows.len() as u64;
    }
    let base = n as f64 / t.elapsed().as_secs_f64();
    println!("  baseline: indexed range query, pages of 1,000: {n} rows at {base:.0} rows/s");

    // Through REST.
    let app = banli_coordination::app::App::new(
        store.clone(),
        banli_domain::RuleProfile::hunan(),
        banli_calendar::Calendar::embedded().clone(),
        banli_api::Clock::System,
        bench_auth(),
    );
    let router = banli_coordination::http::router(app, 1 << 20);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(async move { axum::serve(listener, router).await });
    let http = Http::new(format!("http://{addr}"));
    let key = |a: AgencyId| format!("bench-agency-{}", a.0);
    read_all(&http, &key(agencies[1])).await?; // warm
    let (n, secs) = read_all(&http, &key(agencies[0])).await?;
    anyhow::ensure!(n == per_agency, "read {n} events, expected {per_agency}");
    println!(
        "  REST, one client: {n} events in {secs:.2} s = {:.0} events/s ({:.0}% of the baseline)   goal ≥ 5,000/s",
        n as f64 / secs,
        100.0 * n as f64 / secs / base
    );
    let mut tasks = Vec::new();
    for a in &agencies[..4] {
        let (http, key) = (http.clone(), key(*a));
        tasks.push(tokio::spawn(async move { read_all(&http, &key).await }));
    }
    let mut rates = Vec::new();
    for t in tasks {
        let (n, secs) = t.await??;
        rates.push(n as f64 / secs);
    }
    rates.sort_by(f64::total_cmp);
    println!(
        "  REST, four clients at once: slowest {:.0} events/s per client, total {:.0} events/s",
        rates[0],
        rates.iter().sum::<f64>()
    );
    server.abort();
    let _ = tokio::time::timeout(Duration::from_secs(1), server).await;
    db.drop_db().await;
    Ok(())
}
