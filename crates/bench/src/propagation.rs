//! Event propagation between services: an event committed by the suggestions service (a
//! suggestion submitted: its row, event and outbox row in one transaction) → the outbox relay →
//! the bus → the coordination service's consumer → the effect committed there (the replica and
//! the task rows, with the inbox entry, in one transaction).
//!
//! Measured on the embedded default (SQLite files, in-process bus) and on PostgreSQL + NATS
//! JetStream, with the real relay, consumer runner, inbox and stores:
//! - sustained events per second: producers append as fast as they can, the figure is effects
//!   committed per second at the consumer;
//! - latency p50/p99 at a paced 1,000 events per second, from the producer's commit to the
//!   consumer's commit;
//! - every event's effect exactly once (the replica rows are counted at the end).
//!
//! Baseline from the same run: raw JetStream publish → consume of messages of the same size
//! with the same client library (async-nats), published as the relay publishes (up to 256 sends,
//! then their acknowledgements) and read by a pull consumer taking batches and acknowledging
//! each message.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use banli_coordination::consumer::SuggestionConsumer;
use banli_db::testing::TestDb;
use banli_db::{ConnectOptions, Pool, on_pool};
use banli_domain::Actor;
use banli_domain::directory::Session;
use banli_domain::ids::{DeputyId, SessionId, SuggestionId};
use banli_domain::suggestion::{
    Body, Disclosure, ItemKind, Priority, Submitted, Suggestion, SuggestionDetails, SuggestionEvent,
};
use banli_eventlog::runner::{self, RunOptions};
use banli_eventlog::{
    Bus, ConsumerStats, EmbeddedBus, Handled, Handler, Incoming, NatsBus, NatsConfig,
};
use banli_suggestions::store::{NewEvent, Store};
use time::OffsetDateTime;
use time::macros::date;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Transport {
    Embedded,
    Nats,
}

/// Records when each event's effect was committed.
struct Timed {
    inner: SuggestionConsumer,
    done: Arc<Mutex<HashMap<Uuid, Instant>>>,
    /// Time spent inside the handler, in microseconds.
    busy: Arc<std::sync::atomic::AtomicU64>,
}

impl Handler for Timed {
    async fn handle(&self, batch: &[Incoming]) -> Result<Vec<Handled>, String> {
        let t = Instant::now();
        let out = self.inner.handle(batch).await?;
        let now = Instant::now();
        self.busy.fetch_add(
            now.duration_since(t).as_micros() as u64,
            std::sync::atomic::Ordering::Relaxed,
        );
        if let Ok(mut d) = self.done.lock() {
            for (i, o) in batch.iter().zip(&out) {
                if *o == Handled::Applied {
                    d.insert(i.envelope.event_id, now);
                }
            }
        }
        Ok(out)
    }
}

struct Rig {
    producer: Store,
    consumer_pool: Pool,
    committed: Arc<Mutex<HashMap<Uuid, Instant>>>,
    done: Arc<Mutex<HashMap<Uuid, Instant>>>,
    session: SessionId,
    stats: Arc<ConsumerStats>,
    busy: Arc<std::sync::atomic::AtomicU64>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    cleanup: Vec<TestDb>,
    nats: Option<NatsBus>,
}

fn nats_url() -> String {
    std::env::var("BANLI_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

async fn rig(transport: Transport) -> Result<Rig> {
    let (pdb, cdb) = match transport {
        Transport::Embedded => (TestDb::sqlite().await, TestDb::sqlite().await),
        Transport::Nats => (
            TestDb::postgres().await.context("PostgreSQL is needed")?,
            TestDb::postgres().await.context("PostgreSQL is needed")?,
        ),
    };
    // The services' own pool size, not the test helper's.
    let (ppool, cpool) = match transport {
        Transport::Embedded => (pdb.pool.clone(), cdb.pool.clone()),
        Transport::Nats => (
            Pool::connect(&pdb.url, &ConnectOptions::default()).await?,
            Pool::connect(&cdb.url, &ConnectOptions::default()).await?,
        ),
    };
    let producer = Store::new(ppool);
    producer.migrate().await?;
    let session = Session {
        id: SessionId::new(),
        body: Body::Npc,
        term: 14,
        number: 1,
        name: "bench".into(),
        opens_on: date!(2026 - 01 - 10),
        closes_on: date!(2026 - 01 - 16),
    };
    producer.create_session(&session).await?;
    let cstore = banli_coordination::store::Store::new(cpool.clone());
    cstore.migrate().await?;
    let consumer = SuggestionConsumer::new(cstore.clone());
    consumer.migrate().await?;
    let (bus, nats) = match transport {
        Transport::Embedded => (Bus::Embedded(EmbeddedBus::new(&["coordination"])), None),
        Transport::Nats => {
            let unique = Uuid::now_v7().simple().to_string();
            let b = NatsBus::connect(NatsConfig {
                stream: format!("BANLI_BENCH_{unique}"),
                prefix: format!("banlibench{unique}"),
                ..NatsConfig::new(&nats_url())
            })
            .await?;
            (Bus::Nats(Box::new(b.clone())), Some(b))
        }
    };
    let done = Arc::new(Mutex::new(HashMap::new()));
    let stats = Arc::new(ConsumerStats::default());
    let busy = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let tasks = vec![
        tokio::spawn(
            banli_suggestions::relay::relay(&producer, bus.clone())
                .run(Duration::from_millis(20), std::future::pending()),
        ),
        tokio::spawn(runner::run(
            bus,
            RunOptions {
                name: "coordination".into(),
                filter: Some("suggestion.".into()),
                poll: Duration::from_millis(100),
                batch: 256,
            },
            Timed {
                inner: consumer,
                done: done.clone(),
                busy: busy.clone(),
            },
            stats.clone(),
            std::future::pending(),
        )),
    ];
    Ok(Rig {
        producer,
        consumer_pool: cpool,
        committed: Arc::new(Mutex::new(HashMap::new())),
        done,
        session: session.id,
        stats,
        busy,
        tasks,
        cleanup: vec![pdb, cdb],
        nats,
    })
}

impl Rig {
    /// Commits one new suggestion (one event) in the producing service.
    async fn produce(&self, n: u64) -> Result<()> {
        let id = SuggestionId::new();
        let details = SuggestionDetails {
            session_id: self.session,
            number: format!("P-{n}-{}", id.0.simple()),
            title: "propagation".into(),
            body: "b".into(),
            category: "industry".into(),
            kind: ItemKind::Session,
            lead_deputy: DeputyId::new(),
            delegation: String::new(),
            co_signers: Vec::new(),
            key_supervised: false,
            priority: Priority::Normal,
            confidential: false,
            disclosure: Disclosure::Full,
        };
        let submitted = Submitted {
            details,
            on: date!(2026 - 03 - 02),
        };
        let after = Suggestion::new(id, &submitted);
        let event = NewEvent::new(
            SuggestionEvent::Submitted(submitted),
            Actor {
                position: None,
                role: banli_domain::Role::AssigningOffice,
                agency: None,
                deputy: None,
            },
            OffsetDateTime::now_utc(),
        );
        let event_id = event.event_id;
        self.producer.append(None, &after, &[event]).await?;
        if let Ok(mut c) = self.committed.lock() {
            c.insert(event_id, Instant::now());
        }
        Ok(())
    }

    fn done_count(&self) -> usize {
        self.done.lock().map(|d| d.len()).unwrap_or(0)
    }

    async fn wait_for(&self, n: usize, limit: Duration) -> Result<()> {
        let start = Instant::now();
        while self.done_count() < n {
            anyhow::ensure!(
                start.elapsed() < limit,
                "only {} of {n} effects after {limit:?}",
                self.done_count()
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        Ok(())
    }

    /// Latencies of the events committed so far (commit → effect).
    fn latencies(&self) -> Vec<Duration> {
        let (Ok(c), Ok(d)) = (self.committed.lock(), self.done.lock()) else {
            return Vec::new();
        };
        let mut v: Vec<Duration> = c
            .iter()
            .filter_map(|(id, t)| d.get(id).map(|e| e.saturating_duration_since(*t)))
            .collect();
        v.sort();
        v
    }

    async fn replica_rows(&self) -> Result<i64> {
        let (n,): (i64,) = on_pool!(&self.consumer_pool, p => sqlx::query_as("SELECT COUNT(*) FROM coordination_cases").fetch_one(p).await)?;
        Ok(n)
    }

    async fn close(self) {
        for t in &self.tasks {
            t.abort();
        }
        if let Some(b) = &self.nats {
            b.delete_stream().await;
        }
        for db in self.cleanup {
            db.drop_db().await;
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

/// Sustained: `producers` tasks commit `total` events as fast as they can.
async fn sustained(transport: Transport, producers: u64, total: u64) -> Result<(f64, usize, i64)> {
    let rig = Arc::new(rig(transport).await?);
    let start = Instant::now();
    let mut handles = Vec::new();
    for p in 0..producers {
        let rig = rig.clone();
        handles.push(tokio::spawn(async move {
            let mut n = p;
            while n < total {
                rig.produce(n).await?;
                n += producers;
            }
            anyhow::Ok(())
        }));
    }
    for h in handles {
        h.await??;
    }
    let produced = total as f64 / start.elapsed().as_secs_f64();
    rig.wait_for(total as usize, Duration::from_secs(300))
        .await?;
    let rate = total as f64 / start.elapsed().as_secs_f64();
    let batches = rig
        .stats
        .batches
        .load(std::sync::atomic::Ordering::Relaxed)
        .max(1);
    let busy = rig.busy.load(std::sync::atomic::Ordering::Relaxed) as f64 / 1e6;
    println!(
        "          (the producers alone committed {produced:.0} events/s; the consumer took {batches} batches, {:.1} events each, {:.1} ms handling each)",
        total as f64 / batches as f64,
        busy * 1e3 / batches as f64
    );
    // Give a doubled effect the time to show, then count.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (effects, rows) = (rig.done_count(), rig.replica_rows().await?);
    if let Ok(r) = Arc::try_unwrap(rig) {
        r.close().await;
    }
    Ok((rate, effects, rows))
}

/// Paced at `rate` events per second for `seconds`: latency percentiles.
async fn paced(transport: Transport, rate: u64, seconds: u64) -> Result<(Vec<Duration>, i64)> {
    let rig = Arc::new(rig(transport).await?);
    let total = rate * seconds;
    let interval = Duration::from_secs_f64(1.0 / rate as f64);
    let start = tokio::time::Instant::now();
    let mut handles = Vec::new();
    for n in 0..total {
        tokio::time::sleep_until(start + interval * n as u32).await;
        let rig = rig.clone();
        handles.push(tokio::spawn(async move { rig.produce(n).await }));
    }
    for h in handles {
        h.await??;
    }
    rig.wait_for(total as usize, Duration::from_secs(120))
        .await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let lat = rig.latencies();
    let rows = rig.replica_rows().await?;
    if let Ok(r) = Arc::try_unwrap(rig) {
        r.close().await;
    }
    Ok((lat, rows))
}

/// Raw JetStream publish → consume of `total` messages of `size` bytes: (messages per second,
/// p50, p99 of publish → receive). `paced`: one message every `1/rate` s, each acknowledgement
/// awaited (the latency baseline); otherwise as fast as the relay publishes.
async fn raw_jetstream(
    total: usize,
    size: usize,
    paced: Option<u64>,
) -> Result<(f64, Duration, Duration)> {
    use async_nats::jetstream::{self, consumer, stream};
    use futures_util::StreamExt;
    let client = async_nats::connect(nats_url()).await?;
    let js = jetstream::new(client);
    let unique = Uuid::now_v7().simple().to_string();
    let name = format!("BANLI_RAW_{unique}");
    let subject = format!("banliraw{unique}");
    let s = js
        .get_or_create_stream(stream::Config {
            name: name.clone(),
            subjects: vec![format!("{subject}.>")],
            ..Default::default()
        })
        .await?;
    let c = s
        .get_or_create_consumer(
            "raw",
            consumer::pull::Config {
                durable_name: Some("raw".into()),
                ack_policy: consumer::AckPolicy::Explicit,
                max_ack_pending: 256,
                ..Default::default()
            },
        )
        .await?;
    let epoch = Instant::now();
    let reader = tokio::spawn(async move {
        let mut lat = Vec::with_capacity(total);
        while lat.len() < total {
            let mut batch = c
                .fetch()
                .max_messages(256)
                .expires(Duration::from_millis(100))
                .messages()
                .await?;
            while let Some(m) = batch.next().await {
                let m = m.map_err(|e| anyhow::anyhow!("{e}"))?;
                let sent = u64::from_le_bytes(
                    m.payload[..8]
                        .try_into()
                        .map_err(|_| anyhow::anyhow!("short payload"))?,
                );
                lat.push(epoch.elapsed().saturating_sub(Duration::from_nanos(sent)));
                m.ack().await.map_err(|e| anyhow::anyhow!("{e}"))?;
            }
        }
        anyhow::Ok(lat)
    });
    let start = Instant::now();
    let pace = tokio::time::Instant::now();
    // Published as the relay publishes: a batch of sends, then every acknowledgement awaited.
    let chunk_size = if paced.is_some() { 1 } else { 256 };
    for chunk in (0..total).collect::<Vec<_>>().chunks(chunk_size) {
        if let Some(rate) = paced {
            tokio::time::sleep_until(pace + Duration::from_secs_f64(chunk[0] as f64 / rate as f64))
                .await;
        }
        let mut acks = Vec::with_capacity(chunk.len());
        for i in chunk {
            let mut payload = vec![b'x'; size.max(8)];
            let t = epoch.elapsed().as_nanos() as u64;
            payload[..8].copy_from_slice(&t.to_le_bytes());
            let mut headers = async_nats::HeaderMap::new();
            headers.insert("Nats-Msg-Id", format!("{unique}-{i}").as_str());
            acks.push(
                js.publish_with_headers(format!("{subject}.e"), headers, payload.into())
                    .await?,
            );
        }
        for ack in acks {
            ack.await?;
        }
    }
    let mut lat = reader.await??;
    let rate = total as f64 / start.elapsed().as_secs_f64();
    js.delete_stream(&name).await?;
    lat.sort();
    Ok((rate, pct(&lat, 0.5), pct(&lat, 0.99)))
}

/// The size of a submitted event's envelope, for the baseline's messages.
fn envelope_size() -> usize {
    // An envelope with actor and payload of a small suggestion, as the outbox holds it.
    900
}

pub async fn run(transport: Transport, total: u64, rate: u64, seconds: u64) -> Result<()> {
    println!(
        "\n== event propagation on {transport:?}: commit in the suggestions service → effect committed in the coordination service"
    );
    if transport == Transport::Nats {
        let (raw_rate, _, _) = raw_jetstream(total as usize, envelope_size(), None).await?;
        let (_, p50, p99) =
            raw_jetstream((rate * seconds) as usize, envelope_size(), Some(rate)).await?;
        println!(
            "baseline  raw JetStream publish → consume, {} B messages: {raw_rate:.0} msg/s ({total} messages); paced {rate}/s for {seconds} s: latency p50 {:.2} ms, p99 {:.2} ms",
            envelope_size(),
            ms(p50),
            ms(p99)
        );
    }
    let producers = 32;
    let (sustained_rate, effects, rows) = sustained(transport, producers, total).await?;
    println!(
        "sustained {total} events, {producers} producers: {sustained_rate:.0} events/s end to end; effects {effects}, replica rows {rows} (lost {}, doubled {})",
        total as i64 - rows,
        (effects as i64 - rows).max(0)
    );
    let (lat, rows) = paced(transport, rate, seconds).await?;
    println!(
        "paced {rate} events/s for {seconds} s: latency p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; {} effects, replica rows {rows} (lost {})",
        ms(pct(&lat, 0.5)),
        ms(pct(&lat, 0.99)),
        ms(lat.last().copied().unwrap_or_default()),
        lat.len(),
        (rate * seconds) as i64 - rows
    );
    println!(
        "goals: ≥ 2,000 events/s end to end; p99 ≤ 100 ms at 1,000 events/s; nothing lost or doubled"
    );
    Ok(())
}
