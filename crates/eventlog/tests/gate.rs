//! Requests waiting for a consistency token share the reads of the inboxes: however many wait,
//! the gate reads the inboxes one refresh at a time, and every waiter sees what another replica
//! of the consumer applied (written straight into the inbox, as that replica would).

use std::time::Duration;

use banli_db::on_pool;
use banli_db::testing::TestDb;
use banli_eventlog::consistency::{Gate, Position};
use banli_eventlog::inbox::Inbox;
use tokio::time::Instant;

async fn many_waiters_share_the_inbox_reads(db: TestDb) {
    let inbox = Inbox::new("gatetest", "reader");
    inbox.migrate(&db.pool).await.expect("inbox tables");
    let gate = Gate::new(&["own"]).watch("thing", db.pool.clone(), inbox.clone());
    let waiters = 200usize;
    let deadline = Instant::now() + Duration::from_secs(5);
    let tasks: Vec<_> = (0..waiters)
        .map(|i| {
            let gate = gate.clone();
            tokio::spawn(async move {
                let wanted = [
                    Position::new("thing", &format!("t-{}", i % 50), 2),
                    Position::new("own", "mine", 7),
                ];
                gate.wait(&wanted, deadline).await.expect("wait")
            })
        })
        .collect();
    // Another replica applies every thing's version 2, 300 ms later.
    tokio::time::sleep(Duration::from_millis(300)).await;
    for i in 0..50 {
        on_pool!(&db.pool, p => sqlx::query(
            "INSERT INTO gatetest_inbox_positions (consumer, aggregate_type, aggregate_id, version) VALUES ('reader', 'thing', $1, 2)",
        )
        .bind(format!("t-{i}"))
        .execute(p)
        .await
        .map(|_| ()))
        .expect("position");
    }
    let started = Instant::now();
    for t in tasks {
        assert!(t.await.expect("joined"), "every waiter saw the position");
    }
    let refreshes = gate.refreshes();
    println!("{waiters} waiters, {refreshes} inbox reads");
    // The waiters look again after 25 ms without a signal, sharing each look: a handful of reads
    // over ~0.35 s, not one per waiter per look (that would be thousands).
    assert!(
        refreshes < 60,
        "{refreshes} inbox reads for {waiters} waiters"
    );
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the waiters ended soon after the positions were applied"
    );
    // A position never applied ends in a timeout, not a hang.
    let late = [Position::new("thing", "never", 1)];
    let until = Instant::now() + Duration::from_millis(100);
    assert!(!gate.wait(&late, until).await.expect("wait"));
    // Own positions pass at once.
    assert!(
        gate.wait(&[Position::new("own", "x", 99)], Instant::now())
            .await
            .expect("wait")
    );
}

#[tokio::test]
async fn waiters_share_the_inbox_reads_on_sqlite() {
    many_waiters_share_the_inbox_reads(TestDb::sqlite().await).await;
}

#[tokio::test]
async fn waiters_share_the_inbox_reads_on_postgres() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    many_waiters_share_the_inbox_reads(db).await;
}
