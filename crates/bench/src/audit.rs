//! The audit log's figures, on SQLite and PostgreSQL, each beside plain SHA-256 over the same
//! records measured in the same run (the hashing limit):
//! - durable appends per second from 64 concurrent callers, batched by the sequencer;
//! - how long a record waits to be under a signed checkpoint, at a paced 1,000 records/s;
//! - with 1,000,000 leaves stored: the tree rebuilt at start, `verify` of the whole log (what
//!   `banli audit verify` runs), inclusion proofs computed server-side, and proofs per second
//!   through REST from 32 keep-alive clients.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use banli_api::{Authenticator, Principal};
use banli_audit::{Checkpoint, Record, Signer, Tree, leaf_hash};
use banli_auditlog::lease::Lease;
use banli_auditlog::store::{NewLeaf, Store, StoredCheckpoint};
use banli_auditlog::{AuditLog, LogOptions};
use banli_db::testing::TestDb;
use serde_json::json;

use crate::Backend;
use crate::client::Http;

const ORIGIN: &str = "bench.banli/audit";

fn record(i: u64) -> Record {
    Record {
        record_type: "supervision_notice".into(),
        source_id: format!("bench-{i}"),
        subject: Some(format!("0192f0c4-7d2e-7c1a-9b3e-{:012}", i % 100_000)),
        occurred_at: "2026-03-02T01:00:00Z".into(),
        actor: json!({"role": "assigning_office", "agency": null, "deputy": null}),
        data: json!({"level": "notice", "stage": i % 3, "due": "2026-04-01", "to": "0192f0c4-7d2e-7c1a-9b3e-00000000beef"}),
        personal: None,
    }
}

/// Stores `leaves` records directly (10,000 per transaction, a checkpoint every 100,000, the seal
/// at the end), signed by `signer` under `origin`.
pub async fn load(store: &Store, signer: &Signer, origin: &str, leaves: u64) -> Result<()> {
    let mut tree = Tree::new();
    let chunk = 10_000u64;
    for start in (0..leaves).step_by(chunk as usize) {
        let batch: Vec<NewLeaf> = (start..(start + chunk).min(leaves))
            .map(|i| {
                let input = record(i).leaf_input(&[0; 32]);
                let h = leaf_hash(&input);
                tree.push(h);
                NewLeaf {
                    index: i,
                    leaf_input: input,
                    leaf_hash: h,
                    record_type: "supervision_notice".into(),
                    source_id: format!("bench-{i}"),
                    personal: None,
                    subjects: Vec::new(),
                }
            })
            .collect();
        let last = start + batch.len() as u64 >= leaves;
        let checkpoint = if last || (start / chunk) % 10 == 9 {
            let size = tree.size();
            let root = tree.root(size)?;
            Some(StoredCheckpoint {
                size,
                root: root.to_vec(),
                note: signer.sign(&Checkpoint {
                    origin: origin.into(),
                    size,
                    root,
                }),
                signed_at: time::OffsetDateTime::now_utc(),
            })
        } else {
            None
        };
        let seal = if last { checkpoint.clone() } else { None };
        store.append(batch, seal, checkpoint, None).await?;
    }
    Ok(())
}

fn pct(v: &mut [Duration], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i].as_secs_f64() * 1e3
}

async fn fresh(backend: Backend) -> Result<TestDb> {
    Ok(match backend {
        Backend::Sqlite => TestDb::sqlite().await,
        Backend::Postgres => TestDb::postgres().await.context("PostgreSQL is needed")?,
    })
}

/// A new database as `banli serve` opens the log's: on SQLite `synchronous=FULL`.
async fn durable(backend: Backend) -> Result<TestDb> {
    Ok(match backend {
        Backend::Sqlite => {
            TestDb::sqlite_with(&banli_db::ConnectOptions {
                durable: true,
                ..Default::default()
            })
            .await
        }
        Backend::Postgres => fresh(backend).await?,
    })
}

/// Records appended per second by 64 callers, one record per call, for 5 s.
async fn appends(log: &AuditLog) -> Result<f64> {
    let next = Arc::new(AtomicU64::new(0));
    let until = Instant::now() + Duration::from_secs(5);
    let mut tasks = Vec::new();
    for _ in 0..64 {
        let (log, next) = (log.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < until {
                let i = next.fetch_add(1, Ordering::Relaxed);
                log.append(vec![record(i)]).await?;
            }
            anyhow::Ok(())
        }));
    }
    let t = Instant::now();
    for task in tasks {
        task.await??;
    }
    Ok(next.load(Ordering::Relaxed) as f64 / t.elapsed().as_secs_f64())
}

/// The log as `banli serve` opens it: holding the sequencer lock, every append checking its
/// epoch (`fenced`); or without, as before the lock existed.
async fn open(db: &TestDb, signer: &Signer, fenced: bool) -> Result<(AuditLog, Option<Lease>)> {
    let store = Store::new(db.pool.clone());
    store.migrate().await?;
    let lease = if fenced {
        Some(
            banli_auditlog::lease::try_acquire(&store, "bench")
                .await?
                .context("the sequencer lock is free")?,
        )
    } else {
        None
    };
    let log = AuditLog::open(
        store,
        Signer::parse(&signer.to_text())?,
        LogOptions {
            fence: lease.as_ref().map(|l| l.fence.clone()),
            ..LogOptions::new(ORIGIN)
        },
    )
    .await?;
    Ok((log, lease))
}

pub async fn run(backend: Backend, leaves: u64) -> Result<()> {
    println!("\n== audit log on {backend:?}");
    let sample: Vec<Vec<u8>> = (0..200_000)
        .map(|i| record(i).leaf_input(&[0; 32]))
        .collect();
    let t = Instant::now();
    for r in &sample {
        std::hint::black_box(leaf_hash(r));
    }
    let sha = sample.len() as f64 / t.elapsed().as_secs_f64();
    let size = sample.iter().map(Vec::len).sum::<usize>() / sample.len();
    println!(
        "baseline  plain SHA-256 over {} records of {size} B: {sha:.0} records/s",
        sample.len()
    );
    drop(sample);

    // Durable appends from many callers: on SQLite as `banli serve` opens audit.db
    // (synchronous=FULL: a commit survives a power loss), beside WAL's default NORMAL.
    let signer = Signer::generate(ORIGIN)?;
    if matches!(backend, Backend::Sqlite) {
        let normal = TestDb::sqlite().await;
        let (log, lease) = open(&normal, &signer, true).await?;
        let rate = appends(&log).await?;
        println!(
            "appends   64 callers, one record per call, synchronous=NORMAL (a power loss may drop the last commits): {rate:.0} records/s"
        );
        drop((log, lease));
        normal.drop_db().await;
    }
    // Before the sequencer lock: the same appends without the epoch check in each transaction.
    let db = durable(backend).await?;
    let (log, _) = open(&db, &signer, false).await?;
    let unfenced = appends(&log).await?;
    println!(
        "appends   64 callers, durable on return, no sequencer epoch check (before): {unfenced:.0} records/s"
    );
    drop(log);
    db.drop_db().await;
    let db = durable(backend).await?;
    let (log, lease) = open(&db, &signer, true).await?;
    let rate = appends(&log).await?;
    println!(
        "appends   64 callers, one record per call, durable on return, each batch checking the sequencer's epoch{}: {rate:.0} records/s ({:.1}% of the hashing limit; goal ≥ 5,000)",
        if matches!(backend, Backend::Sqlite) {
            " (synchronous=FULL, as banli serve)"
        } else {
            ""
        },
        rate / sha * 100.0
    );

    // Time to a signed checkpoint at a paced rate (source ids past any appended above).
    let appended = u64::from(u32::MAX);
    let rate = 1_000u64;
    let start = tokio::time::Instant::now();
    let mut tasks = Vec::new();
    for n in 0..rate * 5 {
        tokio::time::sleep_until(start + Duration::from_micros(n * 1_000_000 / rate)).await;
        let log = log.clone();
        let i = appended + n;
        tasks.push(tokio::spawn(async move {
            let t = Instant::now();
            let a = log.append(vec![record(i)]).await?;
            let index = a.first().map_or(0, |a| a.index);
            while log.signed_size() <= index {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            anyhow::Ok(t.elapsed())
        }));
    }
    let mut lat = Vec::new();
    for task in tasks {
        lat.push(task.await??);
    }
    println!(
        "checkpoint {rate} records/s for 5 s, append → under a signed checkpoint: p50 {:.0} ms, p99 {:.0} ms (goal p99 ≤ 1,000 ms)",
        pct(&mut lat, 0.5),
        pct(&mut lat, 0.99)
    );
    drop((log, lease));
    db.drop_db().await;

    // A large log: loaded directly, then verified, reopened, and served.
    let db = fresh(backend).await?;
    let store = Store::new(db.pool.clone());
    store.migrate().await?;
    let t = Instant::now();
    load(&store, &signer, ORIGIN, leaves).await?;
    println!(
        "load      {leaves} leaves stored in {:.1} s (10,000 per transaction, a checkpoint every 100,000)",
        t.elapsed().as_secs_f64()
    );
    let t = Instant::now();
    let verified = banli_auditlog::verify::verify(&store, &signer.verifier(), ORIGIN, &[]).await?;
    println!(
        "verify    {} leaves and {} checkpoints read, rehashed and checked: {:.2} s (goal ≤ 2 s; hashing alone would take {:.2} s)",
        verified.leaves,
        verified.checkpoints,
        t.elapsed().as_secs_f64(),
        verified.leaves as f64 / sha
    );
    let t = Instant::now();
    let (log, lease) = open(&db, &signer, true).await?;
    println!(
        "open      tree of {} leaves rebuilt from storage: {:.2} s",
        log.signed_size(),
        t.elapsed().as_secs_f64()
    );
    let n = log.signed_size();
    let mut lat = Vec::with_capacity(10_000);
    for k in 0..10_000u64 {
        let index = (k * 7_919_993) % n;
        let t = Instant::now();
        std::hint::black_box(log.inclusion_proof(index, n)?);
        lat.push(t.elapsed());
    }
    println!(
        "proof     inclusion at {n} leaves, server-side: p50 {:.4} ms, p99 {:.4} ms (goal ≤ 1 ms)",
        pct(&mut lat, 0.5),
        pct(&mut lat, 0.99)
    );

    // Through REST.
    let auth: Authenticator = Arc::new(|token: String| {
        Box::pin(async move {
            if token == "bench-auditor" {
                Ok(Principal {
                    position: None,
                    key_id: uuid::Uuid::nil(),
                    role: banli_domain::Role::Auditor,
                    agency: None,
                    deputy: None,
                    reference: None,
                    client_cert: None,
                })
            } else {
                Err(banli_api::AppError::new(
                    banli_api::ErrorCode::Unauthenticated,
                    "unknown key",
                ))
            }
        })
    });
    let (api, openapi) =
        banli_auditlog::http::api(banli_auditlog::LogHandle::ready(log.clone()), auth);
    let router = banli_api::http::finish(api, openapi);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(async move { axum::serve(listener, router).await });
    let http = Http::new(format!("http://{addr}"));
    let until = Instant::now() + Duration::from_secs(5);
    let mut tasks = Vec::new();
    for c in 0..32u64 {
        let http = http.clone();
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut k = c;
            while Instant::now() < until {
                let index = (k * 7_919_993) % n;
                k += 32;
                let t = Instant::now();
                let (status, _) = http
                    .get(
                        &format!("/v1/audit/proofs/inclusion?index={index}&tree_size={n}"),
                        "bench-auditor",
                    )
                    .await?;
                anyhow::ensure!(status == 200, "proof request: {status}");
                lat.push(t.elapsed());
            }
            anyhow::Ok(lat)
        }));
    }
    let t = Instant::now();
    let mut lat = Vec::new();
    for task in tasks {
        lat.extend(task.await??);
    }
    let rate = lat.len() as f64 / t.elapsed().as_secs_f64();
    println!(
        "rest      inclusion proofs through REST, 32 clients: {rate:.0} proofs/s (goal ≥ 2,000), p50 {:.2} ms, p99 {:.2} ms",
        pct(&mut lat, 0.5),
        pct(&mut lat, 0.99)
    );
    server.abort();
    drop((log, lease));
    db.drop_db().await;
    Ok(())
}
