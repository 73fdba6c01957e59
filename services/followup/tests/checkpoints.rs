//! The audit log's checkpoints as `audit.checkpoint` events in the follow-up outbox, on SQLite
//! and PostgreSQL: the latest at start and each new one after the interval, versions contiguous
//! per log, a size never published twice, the signed note the same text the log serves.

use std::time::Duration;

use banli_audit::{Record, Signer};
use banli_auditlog::{AuditLog, LogOptions};
use banli_db::testing::TestDb;
use banli_db::{Pool, on_pool};
use banli_followup::consumer::EventConsumer;
use banli_followup::store::Store;
use serde_json::{Value, json};

const ORIGIN: &str = "test.banli/audit";

fn record(i: u32) -> Record {
    Record {
        record_type: "supervision_notice".into(),
        source_id: format!("cp-{i}"),
        subject: None,
        occurred_at: "2026-03-02T01:00:00Z".into(),
        actor: json!({"role": "assigning_office", "agency": null, "deputy": null}),
        data: json!({"n": i}),
        personal: None,
    }
}

/// `(version, payload)` of the checkpoint events in the outbox, in order.
async fn events(pool: &Pool) -> Vec<(i64, Value)> {
    let rows: Vec<(i64, String, String, String)> = on_pool!(pool, p => sqlx::query_as(
        "SELECT aggregate_version, payload, aggregate_type, aggregate_id FROM followup_outbox WHERE event_type = 'audit.checkpoint' ORDER BY seq")
        .fetch_all(p)
        .await)
    .expect("outbox");
    rows.into_iter()
        .map(|(v, p, ty, id)| {
            assert_eq!((ty.as_str(), id.as_str()), ("audit_log", ORIGIN));
            (v, serde_json::from_str(&p).expect("json"))
        })
        .collect()
}

async fn wait_for(pool: &Pool, n: usize) -> Vec<(i64, Value)> {
    for _ in 0..200 {
        let e = events(pool).await;
        if e.len() >= n {
            return e;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    events(pool).await
}

async fn publishes_each_new_checkpoint(db: TestDb) {
    let store = Store::new(db.pool.clone());
    let consumer = EventConsumer::new(store.clone(), banli_domain::RuleProfile::hunan().reminders);
    store.migrate(consumer.inbox()).await.expect("migrations");
    let audit = banli_auditlog::store::Store::new(db.pool.clone());
    audit.migrate().await.expect("audit migrations");
    let log = AuditLog::open(
        audit,
        Signer::generate(ORIGIN).expect("key"),
        LogOptions::new(ORIGIN),
    )
    .await
    .expect("log");

    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(banli_followup::checkpoints::run(
        store.clone(),
        log.clone(),
        Duration::from_millis(300),
        async move {
            let _ = stopped.await;
        },
    ));
    // Nothing signed, nothing published.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(events(&db.pool).await.is_empty());

    log.append(vec![record(0), record(1)])
        .await
        .expect("append");
    let first = wait_for(&db.pool, 1).await;
    assert_eq!(first.len(), 1, "{first:?}");
    let (v, e) = &first[0];
    assert_eq!(*v, 1);
    assert_eq!(e["event_type"], "audit.checkpoint");
    assert_eq!(e["aggregate_version"], 1);
    let data = &e["payload"]["data"];
    assert_eq!(data["size"], 2);
    assert_eq!(data["origin"], ORIGIN);
    let signed = log.checkpoint().expect("signed");
    assert_eq!(data["note"].as_str(), Some(signed.note.as_str()));

    // Three more appends within the interval: one event, for the latest size.
    for i in 2..5 {
        log.append(vec![record(i)]).await.expect("append");
    }
    let second = wait_for(&db.pool, 2).await;
    assert_eq!(second.len(), 2, "{second:?}");
    assert_eq!(second[1].0, 2, "versions are contiguous");
    assert_eq!(second[1].1["payload"]["data"]["size"], 5);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        events(&db.pool).await.len(),
        2,
        "no event while the log does not grow"
    );

    // The same size again (a restart publishes the latest at start): not twice.
    let again = store
        .publish_checkpoint(ORIGIN, &log.checkpoint().expect("signed"))
        .await
        .expect("publish");
    assert_eq!(again, None);
    let _ = stop.send(());
    task.await.expect("the task stops");
    db.drop_db().await;
}

#[tokio::test]
async fn checkpoints_become_events_on_sqlite() {
    publishes_each_new_checkpoint(TestDb::sqlite().await).await;
}

#[tokio::test]
async fn checkpoints_become_events_on_postgres() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    publishes_each_new_checkpoint(db).await;
}
