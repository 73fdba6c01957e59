//! A database written before migration 0005 upgrades with every case's confidentiality taken
//! from its replica, so that auditors' feeds and task lists leave out the confidential items
//! stored before the upgrade too.

use banli_coordination::store::migrator;
use banli_db::testing::{TestDb, exec, flag, migrate_before};

async fn upgrade(db: TestDb) {
    migrate_before(&db.pool, migrator(db.pool.backend()), 5).await;
    let (open, secret) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    let now = match db.pool.backend() {
        banli_db::Backend::Sqlite => "'2020-01-12T00:00:00Z'",
        banli_db::Backend::Postgres => "TIMESTAMPTZ '2020-01-12 00:00:00+00'",
    };
    for (id, confidential) in [(open, false), (secret, true)] {
        // The replica as the old release stored it; a title with a NUL escape must not stop
        // the upgrade.
        let replica = format!(
            r#"{{"id":"{id}","details":{{"title":"a\u0000b","confidential":{confidential}}}}}"#
        );
        exec(
            &db.pool,
            format!("INSERT INTO coordination_cases (suggestion_id, replica_version, replica, version, state, updated_at) VALUES ($1, 1, $2, 0, '{{}}', {now})"),
            &[&id.to_string(), &replica],
        )
        .await;
    }
    banli_coordination::store::Store::new(db.pool.clone())
        .migrate()
        .await
        .expect("the upgrade");
    let confidential = |id: uuid::Uuid| {
        let pool = db.pool.clone();
        async move {
            flag(
                &pool,
                "coordination_cases",
                "confidential",
                "suggestion_id",
                &id.to_string(),
            )
            .await
        }
    };
    assert!(!confidential(open).await);
    assert!(confidential(secret).await);
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
