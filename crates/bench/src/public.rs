//! The public replies bench (公开答复): `GET /v1/public/replies` with 100,000 published replies
//! — the first page, a page deep in the list (a cursor at a random published reply), and one
//! agency's page — p50/p99 over keep-alive connections, beside `GET /readyz` (the same HTTP
//! stack and a database round trip) timed the same way, interleaved, in the same run.
//!
//! The published rows are written straight into the suggestions service's publication table
//! (`Store::seed_publications`): the bench measures the public read path, and 100,000 full
//! lifecycles through the command path would take a quarter of an hour. Every answer that is not
//! 200 is counted and printed as a refusal.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use anyhow::{Context, Result};
use banli_db::{ConnectOptions, Pool};
use banli_suggestions::store::{PublicationRow, Store};
use serde_json::json;
use time::macros::date;

use crate::Backend;
use crate::client::Http;
use crate::server::Server;

const AGENCIES: usize = 20;

/// A published reply a page starts after: its date, id and agency.
type Cursor = (time::Date, uuid::Uuid, String);
/// A kind of request: its name, and its path from a cursor.
type Kind = (&'static str, fn(&Cursor) -> String);

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

pub async fn run(backend: Backend, replies: usize, requests: usize, clients: usize) -> Result<()> {
    println!(
        "\n== public replies on {backend:?}: {replies} published, {requests} requests per kind, {clients} clients"
    );
    let server = match backend {
        Backend::Sqlite => Server::sqlite().await?,
        Backend::Postgres => Server::postgres().await?,
    };
    let http = Http::new(server.http_url.clone());
    let mut agencies = Vec::new();
    for i in 0..AGENCIES {
        let (status, a) = http
            .post(
                "/v1/agencies",
                &server.office_key,
                json!({"name": format!("公开测试单位{i}")}),
            )
            .await?;
        anyhow::ensure!(status == 201, "creating an agency: {status} {}", a.detail);
        agencies.push(a.id);
    }

    let pool = Pool::connect(
        &server.database_url,
        &ConnectOptions {
            max_connections: 2,
            ..Default::default()
        },
    )
    .await
    .context("the bench reaches the server's database")?;
    let store = Store::new(pool);
    let started = Instant::now();
    let mut rng = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let body = "经认真研究，现答复如下：一、关于资金支持。省财政已安排专项资金，支持中小企业数字化改造。二、关于服务平台。平台已于年内上线，面向全省企业开放。感谢您对我们工作的关心和支持。".repeat(3);
    let mut rows = Vec::with_capacity(replies);
    let mut cursors = Vec::with_capacity(replies);
    for i in 0..replies {
        let id = uuid::Uuid::now_v7();
        let published = date!(2020 - 01 - 01) + time::Duration::days((next() % 1500) as i64);
        let agency = &agencies[(next() % AGENCIES as u64) as usize];
        cursors.push((published, id, agency.clone()));
        rows.push(PublicationRow {
            reply_id: id.to_string(),
            suggestion_id: uuid::Uuid::now_v7().to_string(),
            due: Some(published),
            published_on: Some(published),
            agency_id: Some(agency.clone()),
            number: Some(format!("{}-{:04}", 2020 + i % 5, i % 10_000)),
            title: Some(format!("关于进一步支持中小企业数字化改造的建议（第{i}件）")),
            class: Some(["A", "B", "C"][i % 3].to_owned()),
            reply_type: Some("initial".into()),
            document_number: Some(format!("答复〔2020〕{i}号")),
            replied_on: Some(published - time::Duration::days(30)),
            body: Some(body.clone()),
            disclosure: Some("full".into()),
            automatic: true,
        });
    }
    store.seed_publications(&rows).await?;
    drop(rows);
    match store.pool() {
        Pool::Sqlite(p) => {
            sqlx::query("ANALYZE").execute(p).await?;
        }
        Pool::Postgres(p) => {
            sqlx::query("VACUUM ANALYZE reply_publications")
                .execute(p)
                .await?;
        }
    }
    println!(
        "  seeded {replies} published replies in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let cursors = Arc::new(cursors);
    let kinds: [Kind; 4] = [
        ("readyz (baseline)", |_| "/readyz".to_owned()),
        ("first page", |_| {
            "/v1/public/replies?page_size=20".to_owned()
        }),
        ("deep page", |c| {
            format!(
                "/v1/public/replies?page_size=20&page_token=r1.{}.{}",
                banli_calendar::format_date(c.0),
                c.1.simple()
            )
        }),
        ("agency page", |c| {
            format!(
                "/v1/public/replies?page_size=20&agency_id={}&page_token=r1.{}.{}",
                c.2,
                banli_calendar::format_date(c.0),
                c.1.simple()
            )
        }),
    ];
    // Warm the connections and caches.
    for (_, path) in kinds.iter() {
        http.get(&path(&cursors[0]), "").await?;
    }
    let refused = Arc::new(AtomicU64::new(0));
    let mut times: Vec<Vec<f64>> = vec![Vec::new(); kinds.len()];
    let run_started = Instant::now();
    let mut tasks = Vec::new();
    for c in 0..clients {
        let (http, cursors, refused) = (http.clone(), cursors.clone(), refused.clone());
        tasks.push(tokio::spawn(async move {
            let mut mine: Vec<Vec<f64>> = vec![Vec::new(); kinds.len()];
            let mut r = 0xC0FF_EE00_0000_0001u64 ^ (c as u64) << 32;
            for i in 0..requests / clients {
                // Interleaved: each round asks every kind once, in a rotating order.
                for k in 0..kinds.len() {
                    let k = (k + i) % kinds.len();
                    r ^= r << 13;
                    r ^= r >> 7;
                    r ^= r << 17;
                    let path = (kinds[k].1)(&cursors[(r % cursors.len() as u64) as usize]);
                    let t = Instant::now();
                    match http.get(&path, "").await {
                        Ok((200, _)) => mine[k].push(t.elapsed().as_secs_f64() * 1e3),
                        _ => {
                            refused.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
            }
            mine
        }));
    }
    for t in tasks {
        for (k, v) in t.await?.into_iter().enumerate() {
            times[k].extend(v);
        }
    }
    let secs = run_started.elapsed().as_secs_f64();
    let total: usize = times.iter().map(Vec::len).sum();
    println!(
        "  {total} requests in {secs:.1} s ({:.0}/s), refused {}",
        total as f64 / secs,
        refused.load(Ordering::Relaxed)
    );
    for (k, (name, _)) in kinds.iter().enumerate() {
        let v = &mut times[k];
        if v.is_empty() {
            println!("    {name:<18} no answers");
            continue;
        }
        println!(
            "    {name:<18} n={:<6} p50 {:>6.2} ms   p99 {:>6.2} ms",
            v.len(),
            pct(v, 0.5),
            pct(v, 0.99)
        );
    }
    let worst = times[1..]
        .iter_mut()
        .filter(|v| !v.is_empty())
        .map(|v| pct(v, 0.99))
        .fold(0.0, f64::max);
    println!(
        "  public replies page p99 {worst:.2} ms at {replies} published (goal ≤ 50 ms); baseline GET /readyz p99 {:.2} ms",
        if times[0].is_empty() {
            f64::NAN
        } else {
            pct(&mut times[0], 0.99)
        }
    );
    server.stop().await
}
