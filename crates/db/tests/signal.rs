//! Commit signals between processes on one PostgreSQL database: two pools stand for two
//! processes (each with its own signals, listening connection and notifier, as two `banli`
//! processes have).

use std::time::Duration;

use banli_db::signal::{Signal, share};
use banli_db::testing::TestDb;
use banli_db::{ConnectOptions, Pool};

const BOUND: Duration = Duration::from_secs(10);

#[tokio::test]
async fn a_commit_in_one_process_wakes_the_waiters_of_another() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let other = Pool::connect(&db.url, &ConnectOptions::default())
        .await
        .expect("a second pool on the test database");
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let (a, b) = (Signal::new("test_outbox"), Signal::new("test_outbox"));
    let unrelated = Signal::new("test_feed");
    let (mut wa, mut wb, mut wu) = (a.waiter(), b.waiter(), unrelated.waiter());
    let ta = share(&db.pool, vec![a.clone()], stopped(stop_rx.clone())).expect("PostgreSQL shares");
    let tb = share(
        &other,
        vec![b.clone(), unrelated.clone()],
        stopped(stop_rx.clone()),
    )
    .expect("PostgreSQL shares");
    // Each process wakes its waiters once when it starts listening (it may have missed something).
    for w in [&mut wa, &mut wb, &mut wu] {
        tokio::time::timeout(BOUND, w.wait())
            .await
            .expect("listening wakes the waiters once");
    }
    // The two processes learn of each other on the channel they share (hello, here); on the
    // channel only one listens, nothing is sent.
    tokio::time::timeout(BOUND, async {
        while !(a.has_peers() && b.has_peers()) {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("processes on one channel learn of each other");
    assert!(
        !unrelated.has_peers(),
        "no other process listens on test_feed"
    );
    // Learning of a peer wakes the waiters once more (its earlier commits were not announced).
    for w in [&mut wa, &mut wb] {
        while tokio::time::timeout(Duration::from_millis(300), w.wait())
            .await
            .is_ok()
        {}
    }

    a.raise();
    tokio::time::timeout(Duration::from_millis(50), wa.wait())
        .await
        .expect("a raise wakes its own process at once");
    tokio::time::timeout(BOUND, wb.wait())
        .await
        .expect("a raise in one process wakes the same signal's waiters in the other");
    // Another signal's waiters stay asleep, and the sender does not wake itself again with its
    // own notification.
    assert!(
        tokio::time::timeout(Duration::from_millis(300), wu.wait())
            .await
            .is_err(),
        "a notification on one channel woke another"
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(300), wa.wait())
            .await
            .is_err(),
        "a process woke itself with its own notification"
    );

    // Many raises while the notifier is busy: at least one wake-up arrives, and it is bounded.
    for _ in 0..1000 {
        b.raise();
    }
    tokio::time::timeout(BOUND, wa.wait())
        .await
        .expect("a burst of raises reaches the other process");

    stop_tx.send(true).expect("the share tasks listen");
    ta.await.expect("the share task ends on stop");
    tb.await.expect("the share task ends on stop");
    other.close().await;
    db.drop_db().await;
}

#[tokio::test]
async fn sqlite_keeps_signals_in_the_process() {
    let db = TestDb::sqlite().await;
    let s = Signal::new("test_outbox");
    assert!(share(&db.pool, vec![s.clone()], std::future::pending()).is_none());
    let mut w = s.waiter();
    s.raise();
    tokio::time::timeout(BOUND, w.wait())
        .await
        .expect("a raise wakes this process's waiters");
    db.drop_db().await;
}
