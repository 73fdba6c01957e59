//! On PostgreSQL an outbox row takes its sequence number when it is inserted but becomes visible
//! when its transaction commits: a row can appear behind rows the relay already published. The
//! embedded relay must still publish it (it used to skip it for good, and the consumers then
//! waited for a version that never came).

use std::time::Duration;

use banli_db::Pool;
use banli_db::testing::TestDb;
use banli_eventlog::{Bus, EmbeddedBus};
use uuid::Uuid;

#[tokio::test]
async fn a_row_committed_behind_the_relays_cursor_is_published() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let Pool::Postgres(pg) = &db.pool else {
        panic!("a PostgreSQL pool");
    };
    sqlx::query(
        "CREATE TABLE late_outbox (seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY, event_id TEXT NOT NULL UNIQUE, \
         event_type TEXT NOT NULL, aggregate_type TEXT NOT NULL, aggregate_id TEXT NOT NULL, aggregate_version BIGINT NOT NULL, \
         payload TEXT NOT NULL, occurred_at TIMESTAMPTZ NOT NULL, published_at TIMESTAMPTZ)",
    )
    .execute(pg)
    .await
    .expect("table");
    let insert = "INSERT INTO late_outbox (event_id, event_type, aggregate_type, aggregate_id, aggregate_version, payload, occurred_at) \
                  VALUES ($1, 'late.x', 'late', $2, 1, '{}', now())";
    let bus = EmbeddedBus::new(&["reader"]);
    let relay = banli_eventlog::relay::Relay::new(
        banli_db::Db::new(db.pool.clone()),
        banli_eventlog::outbox::Outbox::new("late_outbox"),
        Bus::Embedded(bus.clone()),
    );
    let mut consumer = Bus::Embedded(bus.clone())
        .consumer("reader", None)
        .await
        .expect("consumer");
    let mut seen = Vec::new();
    let mut read = async |seen: &mut Vec<String>| {
        for d in consumer
            .next_batch(100, Duration::from_millis(50))
            .await
            .expect("read")
        {
            seen.push(d.envelope.aggregate_id.clone());
            d.ack().await.expect("ack");
        }
    };
    // One row first, so the relay has a cursor.
    sqlx::query(insert)
        .bind(Uuid::now_v7().to_string())
        .bind("first")
        .execute(pg)
        .await
        .expect("first");
    relay.run_once().await.expect("relay");
    // A takes the next number and stays open; B takes the one after and commits.
    let mut a = pg.begin().await.expect("tx");
    sqlx::query(insert)
        .bind(Uuid::now_v7().to_string())
        .bind("late")
        .execute(&mut *a)
        .await
        .expect("late");
    sqlx::query(insert)
        .bind(Uuid::now_v7().to_string())
        .bind("early")
        .execute(pg)
        .await
        .expect("early");
    relay.run_once().await.expect("relay");
    read(&mut seen).await;
    assert_eq!(seen, ["first", "early"]);
    a.commit().await.expect("commit");
    relay.run_once().await.expect("relay");
    read(&mut seen).await;
    assert_eq!(
        seen,
        ["first", "early", "late"],
        "the late row is published"
    );
    // Every row is marked published once the consumer has it.
    relay.run_once().await.expect("relay");
    let (open,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM late_outbox WHERE published_at IS NULL")
            .fetch_one(pg)
            .await
            .expect("count");
    assert_eq!(open, 0);
    db.drop_db().await;
}
