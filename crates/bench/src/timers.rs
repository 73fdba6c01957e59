//! Timer lag: 100,000 pending timers falling due over 20 s, fired by two replicas claiming with
//! leases (each firing completes in its own transaction batch); lag = fired − due, from the
//! table. Baseline from the same run: the same due times on tokio's in-memory timer wheel.

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use banli_db::testing::TestDb;
use banli_db::{Db, Pool, on_pool};
use banli_timers::{Claimed, RunOptions, TimerHandler, Timers, run};
use time::OffsetDateTime;

use crate::Backend;

struct Complete {
    db: Db,
    timers: Timers,
}

impl TimerHandler for Complete {
    async fn fire(&self, owner: &str, claimed: &[Claimed]) -> Result<Vec<bool>, String> {
        let (timers, owner, keys) = (
            self.timers.clone(),
            owner.to_owned(),
            claimed.iter().map(|c| c.key.clone()).collect::<Vec<_>>(),
        );
        self.db
            .write(move |pool| async move {
                let now = OffsetDateTime::now_utc();
                let mut out = Vec::with_capacity(keys.len());
                match &pool {
                    Pool::Sqlite(p) => {
                        let mut tx = p.begin().await?;
                        for k in &keys {
                            out.push(
                                banli_timers::sqlite::complete(&timers, &mut tx, k, &owner, now)
                                    .await?,
                            );
                        }
                        tx.commit().await?;
                    }
                    Pool::Postgres(p) => {
                        let mut tx = p.begin().await?;
                        for k in &keys {
                            out.push(
                                banli_timers::postgres::complete(&timers, &mut tx, k, &owner, now)
                                    .await?,
                            );
                        }
                        tx.commit().await?;
                    }
                }
                Ok::<_, banli_timers::TimerError>(out)
            })
            .await
            .map_err(|e| e.to_string())
    }
}

fn pct(v: &mut [i64], p: f64) -> i64 {
    if v.is_empty() {
        return 0;
    }
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

pub async fn run_bench(backend: Backend, count: u64, seconds: u64) -> Result<()> {
    println!("\n== timers on {backend:?}: {count} pending, falling due over {seconds} s");

    let tdb = match backend {
        Backend::Sqlite => TestDb::sqlite().await,
        Backend::Postgres => TestDb::postgres().await.context("PostgreSQL is needed")?,
    };
    let db = Db::new(tdb.pool.clone());
    let timers = Timers::new("bench_timers");
    timers.migrate(db.pool()).await?;
    // The first timer falls due once all are stored (storing takes a while on PostgreSQL).
    let start = OffsetDateTime::now_utc() + Duration::from_secs(30);
    let due = |i: u64| start + Duration::from_micros(i * seconds * 1_000_000 / count);
    let t = Instant::now();
    for chunk in (0..count).collect::<Vec<_>>().chunks(10_000) {
        timers
            .schedule(
                &db,
                chunk
                    .iter()
                    .map(|i| (format!("timer-{i}"), due(*i), "{}".to_owned()))
                    .collect(),
            )
            .await?;
    }
    println!(
        "schedule  {count} timers stored in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let replicas: Vec<_> = ["replica-1", "replica-2"]
        .iter()
        .map(|o| {
            tokio::spawn(run(
                db.clone(),
                timers.clone(),
                RunOptions {
                    owner: (*o).into(),
                    batch: 256,
                    lease: Duration::from_secs(30),
                    idle: Duration::from_secs(1),
                },
                Complete {
                    db: db.clone(),
                    timers: timers.clone(),
                },
                Arc::default(),
                std::future::pending(),
            ))
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(seconds + 120);
    while timers.pending(db.pool()).await? > 0 {
        anyhow::ensure!(
            Instant::now() < deadline,
            "timers still pending after {} s",
            seconds + 120
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for r in replicas {
        r.abort();
    }
    let rows: Vec<(i64,)> = on_pool!(db.pool(), p => sqlx::query_as(
        "SELECT fired_at - due_at FROM bench_timers WHERE state = 'fired'").fetch_all(p).await)?;
    let mut lag: Vec<i64> = rows.into_iter().map(|(l,)| l).collect();
    println!(
        "fired     {} timers by 2 replicas: lag p50 {} ms, p99 {} ms, max {} ms (goal p99 ≤ 1,000 ms)",
        lag.len(),
        pct(&mut lag, 0.5),
        pct(&mut lag, 0.99),
        lag.iter().max().copied().unwrap_or(0)
    );
    anyhow::ensure!(lag.len() as u64 == count, "{} of {count} fired", lag.len());
    tdb.drop_db().await;

    // Baseline: tokio's timer wheel, same due times.
    let t0 = tokio::time::Instant::now();
    let base = Instant::now();
    let offset = |i: u64| Duration::from_micros(i * seconds * 1_000_000 / count);
    let mut tasks = Vec::with_capacity(count as usize);
    for i in 0..count {
        let at = t0 + Duration::from_secs(1) + offset(i);
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep_until(at).await;
            (tokio::time::Instant::now() - at).as_millis() as i64
        }));
    }
    let mut lag = Vec::with_capacity(count as usize);
    for t in tasks {
        lag.push(t.await?);
    }
    println!(
        "baseline  tokio timer wheel: lag p50 {} ms, p99 {} ms ({:.1} s)",
        pct(&mut lag, 0.5),
        pct(&mut lag, 0.99),
        base.elapsed().as_secs_f64()
    );

    Ok(())
}
