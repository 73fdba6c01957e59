//! A database written before migration 0005 upgrades without losing anyone's items: the
//! deputies of every suggestion (its lead deputy and co-signers) and its confidentiality are
//! backfilled from the stored rows and submitted events, and lists see them at once.

use banli_db::testing::{TestDb, migrate_before};
use banli_domain::ids::DeputyId;
use banli_suggestions::store::{ListFilter, Store, migrator};

/// Runs the migrations before 0005, writes two suggestions the way the old write path did
/// (one confidential, with a co-signer), then runs every migration.
async fn upgrade(db: TestDb) {
    migrate_before(&db.pool, migrator(db.pool.backend()), 5).await;
    let session = uuid::Uuid::now_v7().to_string();
    let (lead, co) = (DeputyId::new(), DeputyId::new());
    let (open, secret) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    let exec = |sql: String, binds: Vec<String>| {
        let pool = db.pool.clone();
        async move {
            let binds: Vec<&str> = binds.iter().map(String::as_str).collect();
            banli_db::testing::exec(&pool, sql, &binds).await;
        }
    };
    let now = match db.pool.backend() {
        banli_db::Backend::Sqlite => "'2020-01-12T00:00:00Z'",
        banli_db::Backend::Postgres => "TIMESTAMPTZ '2020-01-12 00:00:00+00'",
    };
    exec(
        "INSERT INTO sessions (id, body, term, number, name, opens_on, closes_on, created_at) VALUES ($1, 'npc', 13, 3, 's', '2020-01-10', '2020-01-16', NOW_)".replace("NOW_", now),
        vec![session.clone()],
    )
    .await;
    for (id, number, co_signers, confidential) in [
        (open, "2020-0001", String::new(), false),
        (secret, "2020-0002", format!("\"{co}\""), true),
    ] {
        exec(
            format!("INSERT INTO suggestions (id, session_id, number, state, version, title, lead_deputy_id, key_supervised, updated_at) VALUES ($1, $2, $3, 'submitted', 1, 't', $4, FALSE, {now})"),
            vec![id.to_string(), session.clone(), number.into(), lead.to_string()],
        )
        .await;
        let payload = format!(
            r#"{{"type":"submitted","data":{{"details":{{"session_id":"{session}","number":"{number}","title":"t","body":"b","category":"","kind":"session","lead_deputy":"{lead}","co_signers":[{co_signers}],"key_supervised":false,"priority":"normal","confidential":{confidential},"disclosure":"full"}},"on":"2020-01-12"}}}}"#
        );
        exec(
            format!("INSERT INTO suggestion_events (suggestion_id, version, event_id, event_type, payload, actor, occurred_at) VALUES ($1, 1, $2, 'suggestion.submitted', $3, '{{}}', {now})"),
            vec![id.to_string(), uuid::Uuid::now_v7().to_string(), payload],
        )
        .await;
    }
    let store = Store::new(db.pool.clone());
    store.migrate().await.expect("the upgrade");
    let list = |filter: ListFilter| {
        let store = store.clone();
        async move {
            store
                .list(&ListFilter {
                    limit: 100,
                    ..filter
                })
                .await
                .expect("list")
                .into_iter()
                .map(|s| s.id.0)
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(
        list(ListFilter {
            deputy_id: Some(lead),
            ..Default::default()
        })
        .await,
        [open, secret]
    );
    assert_eq!(
        list(ListFilter {
            deputy_id: Some(co),
            ..Default::default()
        })
        .await,
        [secret]
    );
    assert_eq!(
        list(ListFilter {
            without_confidential: true,
            ..Default::default()
        })
        .await,
        [open]
    );
    db.drop_db().await;
}

#[tokio::test]
async fn an_old_sqlite_database_upgrades() {
    upgrade(TestDb::sqlite().await).await;
}

#[tokio::test]
async fn an_old_postgres_database_upgrades() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    upgrade(db).await;
}
