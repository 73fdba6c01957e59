//! `Watch` across processes: feed rows committed by one coordination process reach a `Watch`
//! stream served by another process on the same PostgreSQL database — woken by the writer's
//! commit signal through `LISTEN`/`NOTIFY`, not by a poll.
//!
//! Two coordination stores on two connection pools stand for the two processes: each has its
//! own signals, listening connection and notifier, exactly as two `banli serve --service
//! coordination` processes have. The stream is the real gRPC `Watch` (tonic client, HTTP/2 on
//! 127.0.0.1). Rows are written at a paced rate through the feed writer; the figure is the time
//! from the start of the write to the event's arrival on the stream, p50/p99/max.
//!
//! Baseline from the same run: the same stream with the rows written by the process that
//! serves it (its in-process signal, no database notification).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use banli_coordination::feed::FeedEntry;
use banli_coordination::store::Store;
use banli_db::testing::TestDb;
use banli_db::{ConnectOptions, Pool};
use banli_domain::ids::AgencyId;
use banli_proto::coordination::v1 as pb;
use futures_util::StreamExt;
use pb::coordination_service_client::CoordinationServiceClient;

use crate::feed::bench_auth;
use crate::{ms, pct};

pub async fn run(rate: u64, seconds: u64) -> Result<()> {
    println!(
        "\n== Watch across processes on PostgreSQL: {rate} feed rows/s for {seconds} s, written by another process than the stream's"
    );
    let db = TestDb::postgres().await.context("PostgreSQL is needed")?;
    let other = Pool::connect(&db.url, &ConnectOptions::default()).await?;
    let (serving, writing) = (Store::new(db.pool.clone()), Store::new(other.clone()));
    serving.migrate().await?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let shares = [
        banli_db::signal::share(&db.pool, serving.signals(), stopped(stop_rx.clone())),
        banli_db::signal::share(&other, writing.signals(), stopped(stop_rx.clone())),
    ];
    let app = banli_coordination::app::App::new(
        serving.clone(),
        banli_domain::RuleProfile::hunan(),
        banli_calendar::Calendar::embedded().clone(),
        banli_api::Clock::System,
        bench_auth(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let server = tokio::spawn(banli_coordination::grpc::serve(
        app,
        1 << 20,
        listener,
        stopped(stop_rx.clone()),
    ));
    let mut client = CoordinationServiceClient::connect(format!("http://{addr}")).await?;
    // Let both processes start listening before anything is measured.
    tokio::time::sleep(Duration::from_millis(500)).await;

    let same = measure(&mut client, &serving, rate, seconds).await?;
    let across = measure(&mut client, &writing, rate, seconds).await?;
    report("baseline: written by the serving process", &same);
    report("written by another process (LISTEN/NOTIFY)", &across);
    println!(
        "  goal: p99 ≤ 50 ms across processes (before: a 500 ms poll); missing events: {} (goal 0)",
        same.missing + across.missing
    );

    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(5), server).await;
    for t in shares.into_iter().flatten() {
        let _ = t.await;
    }
    other.close().await;
    db.drop_db().await;
    Ok(())
}

struct Measured {
    latencies: Vec<Duration>,
    missing: usize,
}

fn report(what: &str, m: &Measured) {
    let l = &m.latencies;
    println!(
        "  {what}: {} events, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms, missing {}",
        l.len(),
        ms(pct(l, 0.50)),
        ms(pct(l, 0.99)),
        ms(l.last().copied().unwrap_or_default()),
        m.missing
    );
}

/// Opens a stream for a new agency and writes its rows through `writer` at `rate`; every row
/// must arrive (waits 5 s after the last write at most, then counts the missing).
async fn measure(
    client: &mut CoordinationServiceClient<tonic::transport::Channel>,
    writer: &Store,
    rate: u64,
    seconds: u64,
) -> Result<Measured> {
    let agency = AgencyId::new();
    let mut req = tonic::Request::new(pb::WatchRequest::default());
    req.metadata_mut().insert(
        "authorization",
        format!("Bearer bench-agency-{}", agency.0).parse()?,
    );
    let mut stream = client.watch(req).await?.into_inner();
    let total = (rate * seconds) as usize;
    let sent: std::sync::Arc<std::sync::Mutex<HashMap<String, Instant>>> = Default::default();
    let writer_task = {
        let (writer, sent) = (writer.clone(), sent.clone());
        tokio::spawn(async move {
            let every = Duration::from_secs_f64(1.0 / rate as f64);
            let start = tokio::time::Instant::now();
            for n in 0..total {
                tokio::time::sleep_until(start + every * n as u32).await;
                let id = uuid::Uuid::now_v7();
                sent.lock()
                    .map_err(|_| anyhow::anyhow!("poisoned"))?
                    .insert(id.to_string(), Instant::now());
                writer
                    .append_feed(vec![FeedEntry {
                        agency_id: agency,
                        event_id: id,
                        event_type: "suggestion.assigned".into(),
                        aggregate_type: "suggestion".into(),
                        aggregate_id: uuid::Uuid::now_v7().to_string(),
                        aggregate_version: 1,
                        occurred_at: "2020-03-02T09:00:00Z".into(),
                        payload: "{}".into(),
                    }])
                    .await?;
            }
            Ok::<_, anyhow::Error>(())
        })
    };
    let mut latencies = Vec::with_capacity(total);
    let mut deadline = None;
    while latencies.len() < total {
        if deadline.is_none() && writer_task.is_finished() {
            deadline = Some(tokio::time::Instant::now() + Duration::from_secs(5));
        }
        let wait = deadline.map_or(Duration::from_secs(1), |d| {
            d.saturating_duration_since(tokio::time::Instant::now())
        });
        match tokio::time::timeout(wait, stream.next()).await {
            Ok(Some(Ok(e))) => {
                let at = Instant::now();
                let started = sent
                    .lock()
                    .map_err(|_| anyhow::anyhow!("poisoned"))?
                    .remove(&e.event_id)
                    .context("an event the bench did not write")?;
                latencies.push(at - started);
            }
            Ok(Some(Err(s))) => anyhow::bail!("the stream failed: {s}"),
            Ok(None) => anyhow::bail!("the stream ended"),
            Err(_) if deadline.is_some() => break,
            Err(_) => {}
        }
    }
    writer_task.await??;
    latencies.sort();
    Ok(Measured {
        missing: total - latencies.len(),
        latencies,
    })
}
