//! Timers fire once: three replicas racing over the same table, one of them killed with claims
//! in hand (its timers are taken over when the lease runs out), timers moved and cancelled
//! while pending — on SQLite and PostgreSQL.

use std::sync::Arc;
use std::time::Duration;

use banli_db::testing::TestDb;
use banli_db::{Db, Pool, on_pool};
use banli_timers::{Claimed, RunOptions, TimerHandler, TimerStats, Timers, run};
use time::OffsetDateTime;

/// Inserts one effect row per timer and completes it in the same transaction.
struct Effects {
    db: Db,
    timers: Timers,
}

impl TimerHandler for Effects {
    async fn fire(&self, owner: &str, timers: &[Claimed]) -> Result<Vec<bool>, String> {
        let mut out = Vec::new();
        for t in timers {
            let fired = match self.db.pool() {
                Pool::Sqlite(p) => {
                    let mut tx = p.begin().await.map_err(|e| e.to_string())?;
                    sqlx::query("INSERT INTO effects (timer_key, owner) VALUES ($1, $2)")
                        .bind(&t.key)
                        .bind(owner)
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| e.to_string())?;
                    let ok = banli_timers::sqlite::complete(
                        &self.timers,
                        &mut tx,
                        &t.key,
                        owner,
                        OffsetDateTime::now_utc(),
                    )
                    .await
                    .map_err(|e| e.to_string())?;
                    if ok {
                        tx.commit().await.map_err(|e| e.to_string())?;
                    }
                    ok
                }
                Pool::Postgres(p) => {
                    let mut tx = p.begin().await.map_err(|e| e.to_string())?;
                    sqlx::query("INSERT INTO effects (timer_key, owner) VALUES ($1, $2)")
                        .bind(&t.key)
                        .bind(owner)
                        .execute(&mut *tx)
                        .await
                        .map_err(|e| e.to_string())?;
                    let ok = banli_timers::postgres::complete(
                        &self.timers,
                        &mut tx,
                        &t.key,
                        owner,
                        OffsetDateTime::now_utc(),
                    )
                    .await
                    .map_err(|e| e.to_string())?;
                    if ok {
                        tx.commit().await.map_err(|e| e.to_string())?;
                    }
                    ok
                }
            };
            out.push(fired);
        }
        Ok(out)
    }
}

/// Claims and never fires: a replica that dies with its claims.
struct Dies;

impl TimerHandler for Dies {
    async fn fire(&self, _: &str, _: &[Claimed]) -> Result<Vec<bool>, String> {
        std::future::pending().await
    }
}

async fn scenario(tdb: TestDb) {
    on_pool!(&tdb.pool, p => sqlx::query("CREATE TABLE effects (timer_key TEXT NOT NULL, owner TEXT NOT NULL)").execute(p).await.map(|_| ()))
        .expect("effects table");
    let db = Db::new(tdb.pool.clone());
    let timers = Timers::new("test_timers");
    timers.migrate(db.pool()).await.expect("table");
    let now = OffsetDateTime::now_utc();
    // 300 timers over the next 1.5 s; one far away, moved to now; one cancelled.
    let mut batch: Vec<(String, OffsetDateTime, String)> = (0..300)
        .map(|i| {
            (
                format!("t-{i}"),
                now + Duration::from_millis(i * 5),
                format!("{{\"i\":{i}}}"),
            )
        })
        .collect();
    batch.push(("moved".into(), now + Duration::from_secs(3600), "{}".into()));
    batch.push((
        "cancelled".into(),
        now + Duration::from_millis(500),
        "{}".into(),
    ));
    timers.schedule(&db, batch).await.expect("schedule");
    timers
        .schedule(
            &db,
            vec![(
                "moved".into(),
                now + Duration::from_millis(700),
                "{}".into(),
            )],
        )
        .await
        .expect("move");
    let moved = timers
        .get(db.pool(), "moved")
        .await
        .expect("read")
        .expect("there");
    assert_eq!(
        moved.previous_due_at.map(|t| t.unix_timestamp()),
        Some((now + Duration::from_secs(3600)).unix_timestamp())
    );
    match db.pool() {
        Pool::Sqlite(p) => {
            let mut c = p.acquire().await.expect("conn");
            assert!(
                banli_timers::sqlite::cancel(&timers, &mut c, "cancelled")
                    .await
                    .expect("cancel")
            );
        }
        Pool::Postgres(p) => {
            let mut c = p.acquire().await.expect("conn");
            assert!(
                banli_timers::postgres::cancel(&timers, &mut c, "cancelled")
                    .await
                    .expect("cancel")
            );
        }
    }

    let options = |owner: &str| RunOptions {
        owner: owner.into(),
        batch: 7,
        lease: Duration::from_millis(800),
        idle: Duration::from_millis(200),
    };
    // The doomed replica claims first and dies with its claims.
    let dying = tokio::spawn(run(
        db.clone(),
        timers.clone(),
        options("doomed"),
        Dies,
        Arc::default(),
        std::future::pending(),
    ));
    tokio::time::sleep(Duration::from_millis(100)).await;
    dying.abort();
    let stats = Arc::new(TimerStats::default());
    let replicas: Vec<_> = ["a", "b", "c"]
        .iter()
        .map(|o| {
            tokio::spawn(run(
                db.clone(),
                timers.clone(),
                options(o),
                Effects {
                    db: db.clone(),
                    timers: timers.clone(),
                },
                stats.clone(),
                std::future::pending(),
            ))
        })
        .collect();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let pending = timers.pending(db.pool()).await.expect("count");
        if pending == 0 {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{pending} timers never fired"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    for r in replicas {
        r.abort();
    }
    let rows: Vec<(String, i64)> = on_pool!(db.pool(), p => sqlx::query_as(
        "SELECT timer_key, COUNT(*) FROM effects GROUP BY timer_key").fetch_all(p).await)
    .expect("effects");
    assert_eq!(rows.len(), 301, "every timer but the cancelled one fired");
    assert!(
        rows.iter().all(|(_, n)| *n == 1),
        "each exactly once: {rows:?}"
    );
    assert!(!rows.iter().any(|(k, _)| k == "cancelled"));
    let owners: Vec<(String,)> = on_pool!(db.pool(), p => sqlx::query_as(
        "SELECT DISTINCT owner FROM effects").fetch_all(p).await)
    .expect("owners");
    assert!(
        owners.len() >= 2,
        "the replicas shared the work: {owners:?}"
    );
    assert!(!owners.iter().any(|(o,)| o == "doomed"));
    let fired = timers
        .get(db.pool(), "t-0")
        .await
        .expect("read")
        .expect("there");
    assert_eq!(fired.state, "fired");
}

#[tokio::test]
async fn fire_once_on_sqlite() {
    scenario(TestDb::sqlite().await).await;
}

#[tokio::test]
async fn fire_once_on_postgres() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    scenario(db).await;
}
