//! A database written before migration 0005 upgrades with every case's confidentiality taken
//! from its replica, so that auditors' feeds and task lists leave out the confidential items
//! stored before the upgrade too.

use banli_coordination::store::{Store, migrator};
use banli_db::testing::{TestDb, replicas_keep_confidentiality};

async fn upgrade(db: TestDb) {
    replicas_keep_confidentiality(
        &db,
        migrator(db.pool.backend()),
        5,
        "coordination_cases",
        "INSERT INTO coordination_cases (suggestion_id, replica_version, replica, version, state, updated_at) VALUES ($1, 1, $2, 0, '{}', NOW_)",
        |pool| async move { Store::new(pool).migrate().await.expect("the upgrade") },
    )
    .await;
}

#[tokio::test]
async fn cases_keep_their_confidentiality_across_the_upgrade_on_sqlite() {
    upgrade(TestDb::sqlite().await).await;
}

#[tokio::test]
async fn cases_keep_their_confidentiality_across_the_upgrade_on_postgres() {
    if let Some(db) = TestDb::postgres().await {
        upgrade(db).await;
    }
}
