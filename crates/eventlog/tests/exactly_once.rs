//! At-least-once delivery plus the inbox gives exactly-once, in-order effects — with the consumer
//! failing before its commit, failing after its commit but before its acknowledgement, and being
//! killed and restarted, on SQLite and PostgreSQL, over the embedded bus and NATS JetStream.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use banli_db::testing::TestDb;
use banli_db::{Pool, on_pool};
use banli_eventlog::inbox::{self, Inbox};
use banli_eventlog::runner::{self, RunOptions};
use banli_eventlog::{
    Apply, Bus, ConsumerStats, EmbeddedBus, Envelope, Handled, NatsBus, NatsConfig, Settled, Step,
};
use uuid::Uuid;

/// Applies `counter.bumped` events by inserting a row per (aggregate, version); fails on
/// purpose: every 3rd call before committing, every 4th after committing.
struct Counter {
    pool: Pool,
    inbox: Inbox,
    calls: AtomicU64,
}

macro_rules! apply_on {
    ($self:ident, $p:ident, $steps:ident, $module:ident) => {{
        let call = $self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        let mut tx = $p.begin().await.map_err(|e| e.to_string())?;
        let mut out = Vec::new();
        let mut settled = Settled::default();
        for step in $steps {
            out.push(match settled.admit(step) {
                Err(h) => h,
                Ok((e, ())) => {
                    sqlx::query("INSERT INTO effects (aggregate_id, version, seq) VALUES ($1, $2, (SELECT COUNT(*) FROM effects))")
                        .bind(&e.aggregate_id)
                        .bind(e.aggregate_version as i64)
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| e.to_string())?;
                    settled.applied(e)
                }
            });
        }
        inbox::$module::settle(&$self.inbox, &mut tx, &settled)
            .await
            .map_err(|e| e.to_string())?;
        if call % 3 == 0 {
            // The process dies before the commit: nothing of the batch is kept.
            drop(tx);
            return Err("injected failure before commit".into());
        }
        tx.commit().await.map_err(|e| e.to_string())?;
        if call % 4 == 0 {
            // The process dies after the commit, before the acknowledgement.
            return Err("injected failure after commit".into());
        }
        Ok(out)
    }};
}

/// The runner admits, orders and parks; the counter only reads and applies.
impl Apply for Counter {
    type Event = ();

    fn inbox(&self) -> &Inbox {
        &self.inbox
    }

    fn pool(&self) -> &Pool {
        &self.pool
    }

    fn decode(&self, e: &Envelope) -> Result<(), String> {
        if e.event_type == "counter.bumped" {
            Ok(())
        } else {
            Err(format!("unknown event type {}", e.event_type))
        }
    }

    async fn apply(&self, steps: Vec<Step<'_, ()>>) -> Result<Vec<Handled>, String> {
        match &self.pool {
            Pool::Sqlite(p) => apply_on!(self, p, steps, sqlite),
            Pool::Postgres(p) => apply_on!(self, p, steps, postgres),
        }
    }
}

fn bump(aggregate: &str, version: u64) -> Envelope {
    Envelope {
        event_id: Uuid::now_v7(),
        event_type: "counter.bumped".into(),
        aggregate_id: aggregate.into(),
        aggregate_version: version,
        payload: b"{}".to_vec(),
    }
}

async fn scenario(db: TestDb, bus: Bus) {
    on_pool!(&db.pool, p => sqlx::query("CREATE TABLE effects (aggregate_id TEXT NOT NULL, version BIGINT NOT NULL, seq BIGINT NOT NULL)").execute(p).await.map(|_| ()))
        .expect("effects table");
    let inbox = Inbox::new("test", "counter");
    inbox.migrate(&db.pool).await.expect("inbox tables");
    let counter = Arc::new(Counter {
        pool: db.pool.clone(),
        inbox: inbox.clone(),
        calls: AtomicU64::new(0),
    });
    let stats = Arc::new(ConsumerStats::default());
    let options = RunOptions {
        name: "counter".into(),
        filter: Some("counter.".into()),
        poll: Duration::from_millis(100),
        batch: 7,
    };
    let start = |stop: tokio::sync::oneshot::Receiver<()>| {
        tokio::spawn(runner::run(
            bus.clone(),
            options.clone(),
            counter.clone(),
            stats.clone(),
            async move {
                let _ = stop.await;
            },
        ))
    };

    let aggregates: Vec<String> = (0..4).map(|_| Uuid::now_v7().to_string()).collect();
    let mut stops = Vec::new();
    let (stop, rx) = tokio::sync::oneshot::channel();
    stops.push(stop);
    let mut task = start(rx);
    let mut published = 0i64;
    for round in 0..5u64 {
        for v in round * 10 + 1..=round * 10 + 10 {
            for a in &aggregates {
                let e = bump(a, v);
                bus.publish(&e).await.expect("publish");
                published += 1;
                if v % 7 == 0 {
                    // A relay that restarted publishes the same event again.
                    bus.publish(&e).await.expect("republish");
                }
            }
        }
        if round == 2 {
            // Kill the consumer mid-stream and start it again.
            task.abort();
            let _ = task.await;
            let (stop, rx) = tokio::sync::oneshot::channel();
            stops.push(stop);
            task = start(rx);
        }
    }
    // An unknown type of the same family, and an event whose predecessors never come.
    bus.publish(&Envelope {
        event_type: "counter.reset".into(),
        ..bump(&aggregates[0], 51)
    })
    .await
    .expect("publish");
    bus.publish(&bump(&aggregates[1], 60))
        .await
        .expect("publish");
    bus.publish(&bump(&aggregates[0], 52))
        .await
        .expect("publish");

    // Wait until everything is applied or parked.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    let count = || async {
        let (n,): (i64,) = on_pool!(&db.pool, p => sqlx::query_as("SELECT COUNT(*) FROM effects").fetch_one(p).await)
            .expect("count");
        n
    };
    loop {
        let applied = count().await;
        let parked = inbox.parked_count(&db.pool).await.expect("parked");
        if applied > published && parked >= 2 {
            // Give a wrongly doubled effect the time to show.
            tokio::time::sleep(Duration::from_millis(300)).await;
            break;
        }
        if tokio::time::Instant::now() >= deadline {
            let list = inbox.parked(&db.pool, 20).await.expect("parked");
            panic!("the consumer did not catch up: {applied} applied, {parked} parked: {list:#?}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    task.abort();
    drop(stops);

    let rows: Vec<(String, i64, i64)> = on_pool!(&db.pool, p =>
        sqlx::query_as("SELECT aggregate_id, version, seq FROM effects ORDER BY seq").fetch_all(p).await)
    .expect("effects");
    let mut per: BTreeMap<&str, Vec<i64>> = BTreeMap::new();
    for (a, v, _) in &rows {
        per.entry(a.as_str()).or_default().push(*v);
    }
    for (i, a) in aggregates.iter().enumerate() {
        let want: Vec<i64> = if i == 0 {
            (1..=50).chain([52]).collect()
        } else {
            (1..=50).collect()
        };
        assert_eq!(
            per.get(a.as_str()).cloned().unwrap_or_default(),
            want,
            "aggregate {i}: every version once, in order"
        );
    }
    let parked = inbox.parked(&db.pool, 10).await.expect("parked");
    let reasons: Vec<&str> = parked.iter().map(|p| p.reason.as_str()).collect();
    assert!(
        reasons.contains(&"unknown event type counter.reset"),
        "{reasons:?}"
    );
    assert!(
        reasons.contains(&"version 51 of this counter never arrived; later versions wait here"),
        "{reasons:?}"
    );
    assert!(
        stats.failures.load(Ordering::SeqCst) > 0,
        "the injected failures happened"
    );
}

#[tokio::test]
async fn exactly_once_on_sqlite_over_the_embedded_bus() {
    scenario(
        TestDb::sqlite().await,
        Bus::Embedded(EmbeddedBus::new(&["counter"])),
    )
    .await;
}

#[tokio::test]
async fn exactly_once_on_postgres_over_nats() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let url =
        std::env::var("BANLI_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let unique = Uuid::now_v7().simple().to_string();
    let config = NatsConfig {
        url,
        stream: format!("BANLI_TEST_{unique}"),
        prefix: format!("banlitest{unique}"),
        ack_wait: Duration::from_secs(2),
        max_age: Duration::from_secs(3600),
        auth: Default::default(),
    };
    let bus = match NatsBus::connect(config).await {
        Ok(b) => b,
        Err(e) if banli_db::testing::services_required() => panic!("NATS is required: {e}"),
        Err(e) => {
            eprintln!("notice: skipping the NATS exactly-once test: {e}");
            return;
        }
    };
    scenario(db, Bus::Nats(Box::new(bus.clone()))).await;
    bus.delete_stream().await;
}

/// A TCP relay between the bus client and NATS whose connections the test can cut, as a network
/// failure or a NATS restart would.
struct Proxy {
    url: String,
    connections: Arc<std::sync::Mutex<Vec<tokio::task::AbortHandle>>>,
    accepted: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn start(upstream: String) -> Proxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a local port");
        let url = format!("nats://{}", listener.local_addr().expect("its address"));
        let connections = Arc::new(std::sync::Mutex::new(Vec::new()));
        let accepted = Arc::new(AtomicU64::new(0));
        let (conns, count) = (connections.clone(), accepted.clone());
        let task = tokio::spawn(async move {
            while let Ok((mut down, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                let upstream = upstream.clone();
                let h = tokio::spawn(async move {
                    if let Ok(mut up) = tokio::net::TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut down, &mut up).await;
                    }
                });
                if let Ok(mut c) = conns.lock() {
                    c.push(h.abort_handle());
                }
            }
        });
        Proxy {
            url,
            connections,
            accepted,
            task,
        }
    }

    /// Drops every open connection (both ends see it closed).
    fn cut(&self) {
        if let Ok(mut c) = self.connections.lock() {
            for h in c.drain(..) {
                h.abort();
            }
        }
    }
}

/// The relay publishes an outbox while the bus connection (shared by the relay and the
/// consumer) is cut between each pair of steps and in the middle of them; the relay is killed
/// and restarted too. Every event's effect exactly once, in order.
#[tokio::test]
async fn exactly_once_when_the_bus_connection_drops() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let upstream = std::env::var("BANLI_TEST_NATS_URL")
        .unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
        .trim_start_matches("nats://")
        .to_owned();
    let proxy = Proxy::start(upstream).await;
    let unique = Uuid::now_v7().simple().to_string();
    let config = NatsConfig {
        url: proxy.url.clone(),
        stream: format!("BANLI_TEST_{unique}"),
        prefix: format!("banlitest{unique}"),
        ack_wait: Duration::from_secs(2),
        max_age: Duration::from_secs(3600),
        auth: Default::default(),
    };
    let bus = match NatsBus::connect(config).await {
        Ok(b) => b,
        Err(e) if banli_db::testing::services_required() => panic!("NATS is required: {e}"),
        Err(e) => {
            eprintln!("notice: skipping the NATS connection-drop test: {e}");
            return;
        }
    };
    let Pool::Postgres(pg) = &db.pool else {
        panic!("a PostgreSQL pool");
    };
    for ddl in [
        "CREATE TABLE effects (aggregate_id TEXT NOT NULL, version BIGINT NOT NULL, seq BIGINT NOT NULL)",
        "CREATE TABLE test_outbox (seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, event_id TEXT NOT NULL UNIQUE, \
         event_type TEXT NOT NULL, aggregate_type TEXT NOT NULL, aggregate_id TEXT NOT NULL, aggregate_version BIGINT NOT NULL, \
         payload TEXT NOT NULL, occurred_at TIMESTAMPTZ NOT NULL, published_at TIMESTAMPTZ)",
    ] {
        sqlx::query(ddl).execute(pg).await.expect("test tables");
    }
    let inbox = Inbox::new("test", "counter");
    inbox.migrate(&db.pool).await.expect("inbox tables");
    let counter = Arc::new(Counter {
        pool: db.pool.clone(),
        inbox: inbox.clone(),
        calls: AtomicU64::new(0),
    });
    let stats = Arc::new(ConsumerStats::default());
    let bus = Bus::Nats(Box::new(bus));
    let consumer = tokio::spawn(runner::run(
        bus.clone(),
        RunOptions {
            name: "counter".into(),
            filter: Some("counter.".into()),
            poll: Duration::from_millis(100),
            batch: 7,
        },
        counter.clone(),
        stats.clone(),
        std::future::pending(),
    ));
    let outbox = banli_eventlog::outbox::Outbox::new("test_outbox");
    let relay = || {
        tokio::spawn(
            banli_eventlog::relay::Relay::new(
                banli_db::Db::new(db.pool.clone()),
                outbox.clone(),
                bus.clone(),
            )
            .run(Duration::from_millis(10), std::future::pending()),
        )
    };
    let mut relay_task = relay();

    let aggregates: Vec<String> = (0..4).map(|_| Uuid::now_v7().to_string()).collect();
    for round in 0..5i64 {
        // One step: ten versions of each aggregate committed to the outbox.
        for v in round * 10 + 1..=round * 10 + 10 {
            for a in &aggregates {
                sqlx::query("INSERT INTO test_outbox (event_id, event_type, aggregate_type, aggregate_id, aggregate_version, payload, occurred_at) \
                             VALUES ($1, 'counter.bumped', 'counter', $2, $3, '{}', now())")
                    .bind(Uuid::now_v7().to_string())
                    .bind(a)
                    .bind(v)
                    .execute(pg)
                    .await
                    .expect("outbox row");
            }
            outbox.written();
            if v % 5 == 0 {
                // The connection drops in the middle of the step.
                proxy.cut();
            }
        }
        // And between steps.
        tokio::time::sleep(Duration::from_millis(50)).await;
        proxy.cut();
        if round == 2 {
            relay_task.abort();
            let _ = relay_task.await;
            relay_task = relay();
        }
    }

    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM effects")
            .fetch_one(pg)
            .await
            .expect("count");
        if n >= 200 {
            tokio::time::sleep(Duration::from_millis(500)).await;
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {n} of 200 effects after the connection came back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    relay_task.abort();
    consumer.abort();
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT aggregate_id, version FROM effects ORDER BY seq")
            .fetch_all(pg)
            .await
            .expect("effects");
    for a in &aggregates {
        let got: Vec<i64> = rows
            .iter()
            .filter(|(x, _)| x == a)
            .map(|(_, v)| *v)
            .collect();
        assert_eq!(
            got,
            (1..=50).collect::<Vec<_>>(),
            "every version once, in order"
        );
    }
    let (unpublished,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM test_outbox WHERE published_at IS NULL")
            .fetch_one(pg)
            .await
            .expect("outbox");
    assert_eq!(unpublished, 0, "every outbox row marked published");
    assert!(
        proxy.accepted.load(Ordering::SeqCst) > 5,
        "the client reconnected after each cut ({} connections)",
        proxy.accepted.load(Ordering::SeqCst)
    );
    assert_eq!(inbox.parked_count(&db.pool).await.expect("parked"), 0);
    proxy.task.abort();
    if let Bus::Nats(b) = &bus {
        b.delete_stream().await;
    }
}
