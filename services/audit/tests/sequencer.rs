//! One sequencer per log, on SQLite and PostgreSQL: two processes (here two pools on one
//! database) share a log; only the lock's holder opens it; when the holder dies the other takes
//! over with a new epoch, and the old holder — still running, not yet aware — cannot write a
//! leaf after that; a holder whose claim or lock is gone is told so by its keeper.

use std::time::Duration;

use banli_audit::{Record, Signer};
use banli_auditlog::lease::{self, LeaseError};
use banli_auditlog::store::Store;
use banli_auditlog::verify::verify;
use banli_auditlog::{AuditLog, LogOptions};
use banli_db::testing::TestDb;
use banli_db::{ConnectOptions, Pool, on_pool};
use serde_json::json;

const ORIGIN: &str = "banli.test/audit";

fn records(from: u64, n: u64) -> Vec<Record> {
    (from..from + n)
        .map(|i| Record {
            record_type: "supervision_notice".into(),
            source_id: format!("notice-{i}"),
            subject: Some(format!("suggestion-{}", i % 3)),
            occurred_at: "2026-03-02T01:00:00Z".into(),
            actor: json!({"role": "assigning_office"}),
            data: json!({"round": i}),
            personal: None,
        })
        .collect()
}

async fn open(store: &Store, signer: &Signer, fence: &banli_auditlog::store::Fence) -> AuditLog {
    AuditLog::open(
        store.clone(),
        Signer::parse(&signer.to_text()).expect("same key"),
        LogOptions {
            checkpoint_interval: Duration::from_millis(20),
            fence: Some(fence.clone()),
            ..LogOptions::new(ORIGIN)
        },
    )
    .await
    .expect("the lock's holder opens the log")
}

async fn signed(log: &AuditLog, size: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while log.signed_size() < size {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no checkpoint at size {size}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn stored(pool: &Pool) -> i64 {
    let (n,): (i64,) =
        on_pool!(pool, p => sqlx::query_as("SELECT COUNT(*) FROM audit_leaves").fetch_one(p).await)
            .expect("count");
    n
}

async fn scenario(db: TestDb) {
    // A second "process": its own pool on the same database.
    let other = Pool::connect(&db.url, &ConnectOptions::default())
        .await
        .expect("a second pool");
    let a = Store::new(db.pool.clone());
    a.migrate().await.expect("migrations");
    let b = Store::new(other.clone());
    b.migrate().await.expect("migrations again, unchanged");
    let signer = Signer::generate(ORIGIN).expect("key");

    // A takes the lock; B cannot while A holds it, and sees who does.
    let lease_a = lease::try_acquire(&a, "replica-a")
        .await
        .expect("try")
        .expect("a free lock is taken");
    assert_eq!(lease_a.fence.epoch, 1);
    assert!(
        lease::try_acquire(&b, "replica-b")
            .await
            .expect("try")
            .is_none(),
        "a held lock is not taken"
    );
    let seen = b.sequencer().await.expect("read").expect("a sequencer");
    assert_eq!((seen.holder.as_str(), seen.epoch), ("replica-a", 1));

    let log_a = open(&a, &signer, &lease_a.fence).await;
    log_a.append(records(0, 10)).await.expect("append");
    signed(&log_a, 10).await;

    // A's lock goes (its process died; its log object lives on, unaware): B takes over.
    let fence_a = lease_a.fence.clone();
    drop(lease_a);
    let waited = tokio::time::Instant::now();
    let lease_b = lease::wait_for(&b, "replica-b", std::future::pending())
        .await
        .expect("wait")
        .expect("the lock once free");
    assert!(
        waited.elapsed() < Duration::from_secs(2),
        "a standby takes a free lock within a poll: {:?}",
        waited.elapsed()
    );
    assert_eq!(lease_b.fence.epoch, 2, "a takeover raises the epoch");
    let log_b = open(&b, &signer, &lease_b.fence).await;
    assert_eq!(log_b.signed_size(), 10);

    // The old holder's appends are refused in their transaction: nothing of them is stored.
    let refused = log_a.append(records(100, 3)).await;
    assert!(refused.is_err(), "a fenced sequencer appended: {refused:?}");
    assert!(
        log_a.append(records(200, 1)).await.is_err(),
        "a fenced sequencer stops"
    );
    assert_eq!(stored(&db.pool).await, 10);
    // A claim that is not the row's any more cannot be renewed.
    assert!(!b.renew_sequencer(&fence_a).await.expect("renew"));

    // The new sequencer goes on; the log verifies whole.
    log_b.append(records(10, 5)).await.expect("append");
    signed(&log_b, 15).await;
    assert_eq!(stored(&db.pool).await, 15);
    let report = verify(&b, &signer.verifier(), ORIGIN, &[])
        .await
        .expect("the log verifies after a takeover");
    assert_eq!((report.leaves, report.signed_size), (15, 15));

    // Someone else claims the row (an operator, a bug): the keeper says so and stops.
    on_pool!(&db.pool, p => sqlx::query("UPDATE audit_sequencer SET holder = 'intruder', epoch = epoch + 1").execute(p).await.map(|_| ()))
        .expect("tamper with the claim");
    let kept = tokio::time::timeout(
        Duration::from_secs(5),
        lease::keep(&b, lease_b, std::future::pending(), async {}),
    )
    .await
    .expect("the keeper notices within its check interval");
    match kept {
        Err(LeaseError::TakenOver { holder }) => assert_eq!(holder, "intruder"),
        other => panic!("expected TakenOver, got {other:?}"),
    }
    drop(log_a);
    drop(log_b);
    other.close().await;
    db.drop_db().await;
}

#[tokio::test]
async fn on_sqlite() {
    scenario(TestDb::sqlite().await).await;
}

#[tokio::test]
async fn on_postgres() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    scenario(db).await;
}

/// PostgreSQL: the lock is the session's; when the server ends that session (a vanished
/// machine's, after its keepalives) the keeper finds out and the standby takes over.
#[tokio::test]
async fn a_lost_session_ends_the_sequencer_on_postgres() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let a = Store::new(db.pool.clone());
    a.migrate().await.expect("migrations");
    let lease_a = lease::try_acquire(&a, "replica-a")
        .await
        .expect("try")
        .expect("taken");
    let keeper = tokio::spawn({
        let a = a.clone();
        async move { lease::keep(&a, lease_a, std::future::pending(), async {}).await }
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    let ended: Vec<(bool,)> = on_pool!(&db.pool, p => sqlx::query_as(
        "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())")
        .fetch_all(p)
        .await)
    .expect("terminate the lock's session");
    assert_eq!(ended, vec![(true,)], "one session held the lock");
    let kept = tokio::time::timeout(Duration::from_secs(5), keeper)
        .await
        .expect("the keeper notices within its check interval")
        .expect("joins");
    assert!(
        matches!(kept, Err(LeaseError::Lost(_))),
        "expected Lost, got {kept:?}"
    );
    let b = lease::try_acquire(&a, "replica-b")
        .await
        .expect("try")
        .expect("the lock is free once its session ended");
    assert_eq!(b.fence.epoch, 2);
    drop(b);
    db.drop_db().await;
}
