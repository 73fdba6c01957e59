//! A database written before migration 0009 upgrades with every case's confidentiality taken
//! from its replica, so that auditors' deadline lists, ledgers, reports and exports leave out the
//! confidential items stored before the upgrade too.

use banli_db::testing::{TestDb, replicas_keep_confidentiality};
use banli_followup::consumer::EventConsumer;
use banli_followup::store::{Store, migrator};

async fn upgrade(db: TestDb) {
    replicas_keep_confidentiality(
        &db,
        migrator(db.pool.backend()),
        9,
        "followup_cases",
        "INSERT INTO followup_cases (suggestion_id, replica_version, replica, updated_at) VALUES ($1, 1, $2, NOW_)",
        |pool| async move {
            let store = Store::new(pool);
            let consumer = EventConsumer::new(
                store.clone(),
                banli_domain::RuleProfile::hunan().reminders,
            );
            store.migrate(consumer.inbox()).await.expect("the upgrade");
        },
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
