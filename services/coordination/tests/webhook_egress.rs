//! The delivery worker on SQLite and PostgreSQL: an endpoint whose address the egress policy
//! refuses is never connected to, even when it is already stored (a name that re-resolved, a
//! row written before the policy), and its log says `not_allowed` with no internal detail; one
//! agency's slow receivers hold at most its share of the workers.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{Path, State};
use banli_coordination::feed::FeedEntry;
use banli_coordination::store::Store;
use banli_coordination::webhooks::deliver::{Deliverer, Policy};
use banli_coordination::webhooks::egress::Egress;
use banli_coordination::webhooks::{EndpointRow, SecretKey};
use banli_db::testing::TestDb;
use banli_domain::ids::AgencyId;
use uuid::Uuid;

#[derive(Default)]
struct Seen {
    /// (path, when it arrived)
    arrivals: Mutex<Vec<(String, Instant)>>,
    slow_now: AtomicUsize,
    slow_most: AtomicUsize,
}

async fn hook(State(seen): State<Arc<Seen>>, Path(name): Path<String>) -> &'static str {
    if let Ok(mut a) = seen.arrivals.lock() {
        a.push((name.clone(), Instant::now()));
    }
    if name.starts_with("slow") {
        let now = seen.slow_now.fetch_add(1, Ordering::SeqCst) + 1;
        seen.slow_most.fetch_max(now, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(600)).await;
        seen.slow_now.fetch_sub(1, Ordering::SeqCst);
    }
    "ok"
}

async fn receiver(seen: Arc<Seen>) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("a port");
    let port = listener.local_addr().expect("addr").port();
    let app = axum::Router::new()
        .route("/{name}", axum::routing::post(hook))
        .with_state(seen);
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    port
}

fn endpoint(agency: AgencyId, url: String) -> EndpointRow {
    EndpointRow {
        id: Uuid::now_v7().to_string(),
        agency_id: agency.to_string(),
        url,
        event_types: "[]".into(),
        description: String::new(),
        state: "active".into(),
        disabled_reason: None,
        cursor: 0,
        failures: 0,
        failing_since: None,
        next_attempt_at: 0,
        version: 1,
        created_at: 0,
        updated_at: 0,
    }
}

fn entry(agency: AgencyId) -> FeedEntry {
    FeedEntry {
        agency_id: agency,
        event_id: Uuid::now_v7(),
        event_type: "suggestion.assigned".into(),
        aggregate_type: "suggestion".into(),
        aggregate_id: Uuid::now_v7().to_string(),
        aggregate_version: 1,
        occurred_at: "2026-12-06T00:00:00Z".into(),
        payload: "{}".into(),
    }
}

fn run(store: &Store, key: &Arc<SecretKey>, policy: Policy) -> tokio::sync::oneshot::Sender<()> {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let worker = Deliverer::new(store.clone(), key.clone(), policy).expect("deliverer");
    tokio::spawn(worker.run(async {
        let _ = stopped.await;
    }));
    stop
}

async fn add(store: &Store, key: &SecretKey, ep: &EndpointRow) {
    store
        .insert_webhook(
            ep.clone(),
            Uuid::now_v7().to_string(),
            key.seal(b"whsec_test", &ep.id).expect("sealed"),
        )
        .await
        .expect("endpoint");
}

async fn egress_and_fair_share(db: TestDb) {
    let store = Store::new(db.pool.clone());
    store.migrate().await.expect("migrations");
    let key = Arc::new(
        SecretKey::generate_text()
            .and_then(|t| SecretKey::parse(&t))
            .expect("key"),
    );
    let seen = Arc::new(Seen::default());
    let port = receiver(seen.clone()).await;

    // A stored endpoint on loopback, delivered under the default (strict) policy: nothing
    // reaches the receiver, and the log says only `not_allowed`.
    let strict_agency = AgencyId::new();
    let strict = endpoint(strict_agency, format!("http://127.0.0.1:{port}/strict"));
    add(&store, &key, &strict).await;
    let named = endpoint(strict_agency, format!("http://localhost:{port}/named"));
    add(&store, &key, &named).await;
    store
        .append_feed(vec![entry(strict_agency)])
        .await
        .expect("feed");
    let stop = run(
        &store,
        &key,
        Policy {
            first_retry: Duration::from_secs(60),
            ..Policy::default()
        },
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    let logs = loop {
        let a = store.webhook_deliveries(&strict.id, 10).await.expect("log");
        let b = store.webhook_deliveries(&named.id, 10).await.expect("log");
        if !a.is_empty() && !b.is_empty() {
            break [a, b];
        }
        assert!(Instant::now() < deadline, "no attempt logged");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let _ = stop.send(());
    for log in logs {
        assert_eq!(log[0].error.as_deref(), Some("not_allowed"), "{log:?}");
        assert_eq!(log[0].status, None);
    }
    assert!(
        seen.arrivals.lock().expect("lock").is_empty(),
        "a refused address was connected to"
    );

    // Fair share: agency A's three slow endpoints hold one worker of three; B is served at
    // once beside them.
    let (a, b) = (AgencyId::new(), AgencyId::new());
    for n in 0..3 {
        add(
            &store,
            &key,
            &endpoint(a, format!("http://127.0.0.1:{port}/slow{n}")),
        )
        .await;
    }
    store.append_feed(vec![entry(a)]).await.expect("feed");
    let started = Instant::now();
    let stop = run(
        &store,
        &key,
        Policy {
            first_retry: Duration::from_millis(50),
            concurrency: 3,
            per_agency: 1,
            egress: Egress::new(Egress::parse_list("127.0.0.0/8").expect("net")),
            ..Policy::default()
        },
    );
    // B's endpoint appears while A's hold their share.
    tokio::time::sleep(Duration::from_millis(100)).await;
    add(
        &store,
        &key,
        &endpoint(b, format!("http://127.0.0.1:{port}/quick")),
    )
    .await;
    store.append_feed(vec![entry(b)]).await.expect("feed");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let n = seen.arrivals.lock().expect("lock").len();
        if n >= 4 {
            break;
        }
        assert!(Instant::now() < deadline, "{n} of 4 deliveries arrived");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = stop.send(());
    assert_eq!(
        seen.slow_most.load(Ordering::SeqCst),
        1,
        "one agency held more than its share of the workers"
    );
    let arrivals = seen.arrivals.lock().expect("lock").clone();
    let quick = arrivals
        .iter()
        .find(|(p, _)| p == "quick")
        .map(|(_, t)| t.duration_since(started))
        .expect("B delivered");
    let slow: Vec<Duration> = arrivals
        .iter()
        .filter(|(p, _)| p.starts_with("slow"))
        .map(|(_, t)| t.duration_since(started))
        .collect();
    assert_eq!(slow.len(), 3, "{arrivals:?}");
    assert!(
        quick < slow[2],
        "B waited behind A's receivers: B at {quick:?}, A at {slow:?}"
    );
    db.drop_db().await;
}

#[tokio::test]
async fn egress_and_fair_share_on_sqlite() {
    egress_and_fair_share(TestDb::sqlite().await).await;
}

#[tokio::test]
async fn egress_and_fair_share_on_postgres() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    egress_and_fair_share(db).await;
}
