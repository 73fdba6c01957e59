//! Rows for every agency's feed (the audit log's checkpoints) on SQLite and PostgreSQL: each
//! agency's page, end and webhook claim see them in order with its own rows; one row serves all.

use banli_coordination::feed::{EVERY_AGENCY, FeedEntry, FeedRow};
use banli_coordination::store::Store;
use banli_coordination::webhooks::EndpointRow;
use banli_db::testing::TestDb;
use banli_domain::ids::AgencyId;
use uuid::Uuid;

fn row(agency: AgencyId, n: u64) -> FeedEntry {
    FeedEntry {
        agency_id: agency,
        event_id: Uuid::now_v7(),
        event_type: if agency == EVERY_AGENCY {
            "audit.checkpoint".into()
        } else {
            "suggestion.assigned".into()
        },
        aggregate_type: "x".into(),
        aggregate_id: format!("a{n}"),
        aggregate_version: n,
        occurred_at: "2026-12-06T00:00:00Z".into(),
        payload: format!("{{\"n\":{n}}}"),
    }
}

fn endpoint(agency: AgencyId) -> EndpointRow {
    EndpointRow {
        id: Uuid::now_v7().to_string(),
        agency_id: agency.to_string(),
        url: "https://example.invalid/hook".into(),
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

fn versions(rows: &[FeedRow]) -> Vec<i64> {
    rows.iter().map(|r| r.aggregate_version).collect()
}

#[test]
fn the_shared_id_is_the_one_the_queries_write_out() {
    assert_eq!(
        EVERY_AGENCY.to_string(),
        "00000000-0000-0000-0000-000000000000"
    );
}

async fn every_agency_rows(db: TestDb) {
    let store = Store::new(db.pool.clone());
    store.migrate().await.expect("migrations");
    let (a, b, quiet) = (AgencyId::new(), AgencyId::new(), AgencyId::new());
    for e in [row(a, 1), row(EVERY_AGENCY, 2), row(a, 3), row(b, 4)] {
        store.append_feed(vec![e]).await.expect("append");
    }
    assert_eq!(
        versions(&store.feed(a, 0, 10, false).await.expect("a")),
        [1, 2, 3]
    );
    assert_eq!(
        versions(&store.feed(b, 0, 10, false).await.expect("b")),
        [2, 4]
    );
    assert_eq!(
        versions(&store.feed(quiet, 0, 10, false).await.expect("q")),
        [2]
    );
    // Pages of one: the order holds across the two kinds of rows.
    let first = store.feed(a, 0, 1, false).await.expect("page");
    assert_eq!(versions(&first), [1]);
    let second = store.feed(a, first[0].seq, 1, false).await.expect("page");
    assert_eq!(versions(&second), [2]);
    let third = store.feed(a, second[0].seq, 1, false).await.expect("page");
    assert_eq!(versions(&third), [3]);
    // The end of a feed counts the shared rows.
    assert_eq!(store.feed_end(quiet).await.expect("end"), second[0].seq);
    assert_eq!(store.feed_end(a).await.expect("end"), third[0].seq);
    // A webhook of an agency with no rows of its own is due for the shared one.
    let hook = endpoint(quiet);
    store
        .insert_webhook(hook.clone(), "s1".into(), "sealed".into())
        .await
        .expect("webhook");
    let claimed = store
        .claim_webhooks("test", 1, 2, 10, &[])
        .await
        .expect("claim");
    assert_eq!(
        claimed.iter().map(|e| e.id.as_str()).collect::<Vec<_>>(),
        [hook.id.as_str()]
    );
    db.drop_db().await;
}

#[tokio::test]
async fn rows_for_every_agency_on_sqlite() {
    every_agency_rows(TestDb::sqlite().await).await;
}

#[tokio::test]
async fn rows_for_every_agency_on_postgres() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    every_agency_rows(db).await;
}
