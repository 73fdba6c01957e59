//! Test databases: a fresh SQLite file or a fresh PostgreSQL database per test.
//!
//! PostgreSQL comes from `BANLI_TEST_DATABASE_URL` (default the local server). When it does not
//! answer, a test skips with a printed notice — unless `BANLI_REQUIRE_SERVICES=1`, as in CI,
//! where it fails.

use std::path::PathBuf;

use crate::{ConnectOptions, Pool};

pub const DEFAULT_TEST_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// True when tests must fail rather than skip without their services.
pub fn services_required() -> bool {
    std::env::var("BANLI_REQUIRE_SERVICES")
        .is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}

/// A database that exists for one test.
#[derive(Debug)]
pub struct TestDb {
    pub url: String,
    pub pool: Pool,
    cleanup: Cleanup,
}

#[derive(Debug)]
enum Cleanup {
    Dir(PathBuf),
    Postgres { admin_url: String, name: String },
}

impl TestDb {
    /// A new SQLite file in a temporary directory.
    pub async fn sqlite() -> TestDb {
        TestDb::sqlite_with(&ConnectOptions::default()).await
    }

    /// A new SQLite file in a temporary directory, opened with these options.
    pub async fn sqlite_with(opts: &ConnectOptions) -> TestDb {
        let dir =
            std::env::temp_dir().join(format!("banli-test-{}", uuid::Uuid::now_v7().simple()));
        let url = crate::sqlite_url_in(&dir);
        #[allow(clippy::expect_used)] // a test helper: failing loudly is the point
        let pool = Pool::connect(&url, opts)
            .await
            .expect("a temporary SQLite database opens");
        TestDb {
            url,
            pool,
            cleanup: Cleanup::Dir(dir),
        }
    }

    /// A new, empty PostgreSQL database, or `None` (with a notice) when the server is not there
    /// and services are not required.
    pub async fn postgres() -> Option<TestDb> {
        let admin_url = std::env::var("BANLI_TEST_DATABASE_URL")
            .unwrap_or_else(|_| DEFAULT_TEST_DATABASE_URL.to_owned());
        let admin = match Pool::connect(
            &admin_url,
            &ConnectOptions {
                max_connections: 2,
                ..Default::default()
            },
        )
        .await
        {
            Ok(Pool::Postgres(p)) => p,
            Ok(Pool::Sqlite(_)) => panic!("BANLI_TEST_DATABASE_URL must be a postgres:// URL"),
            Err(e) if services_required() => {
                panic!("PostgreSQL is required (BANLI_REQUIRE_SERVICES=1) but: {e}")
            }
            Err(e) => {
                eprintln!(
                    "notice: skipping a PostgreSQL test: {e} (set BANLI_TEST_DATABASE_URL, or BANLI_REQUIRE_SERVICES=1 to fail instead)"
                );
                return None;
            }
        };
        // Only hex digits: safe to splice into the statement.
        let name = format!("banli_test_{}", uuid::Uuid::now_v7().simple());
        #[allow(clippy::expect_used)]
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
            .execute(&admin)
            .await
            .expect("CREATE DATABASE for a test");
        admin.close().await;
        let url = with_database(&admin_url, &name);
        #[allow(clippy::expect_used)]
        let pool = Pool::connect(
            &url,
            &ConnectOptions {
                max_connections: 5,
                ..Default::default()
            },
        )
        .await
        .expect("the new test database opens");
        Some(TestDb {
            url,
            pool,
            cleanup: Cleanup::Postgres { admin_url, name },
        })
    }

    /// Closes the pool and removes the database.
    pub async fn drop_db(self) {
        self.pool.close().await;
        match self.cleanup {
            Cleanup::Dir(dir) => {
                let _ = std::fs::remove_dir_all(dir);
            }
            Cleanup::Postgres { admin_url, name } => {
                if let Ok(Pool::Postgres(admin)) = Pool::connect(
                    &admin_url,
                    &ConnectOptions {
                        max_connections: 1,
                        ..Default::default()
                    },
                )
                .await
                {
                    let _ = sqlx::query(sqlx::AssertSqlSafe(format!(
                        "DROP DATABASE IF EXISTS {name} WITH (FORCE)"
                    )))
                    .execute(&admin)
                    .await;
                    admin.close().await;
                }
            }
        }
    }
}

/// Replaces the database name of a PostgreSQL URL.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[scheme_end..].find('/') {
        Some(slash) => &base[..scheme_end + slash],
        None => base,
    };
    match query {
        Some(q) => format!("{base}/{name}?{q}"),
        None => format!("{base}/{name}"),
    }
}

/// Runs the migrations of `m` below `version`: the schema an older release left, for an
/// upgrade test to write its rows into before it runs every migration.
pub async fn migrate_before(pool: &Pool, mut m: sqlx::migrate::Migrator, version: i64) {
    m.migrations = std::borrow::Cow::Owned(
        m.migrations
            .iter()
            .filter(|x| x.version < version)
            .cloned()
            .collect(),
    );
    match pool {
        Pool::Sqlite(p) => m.run(p).await,
        Pool::Postgres(p) => m.run(p).await,
    }
    .expect("the migrations of the older release");
}

/// Runs one statement with text parameters (an upgrade test writing rows the way an older
/// release did).
pub async fn exec(pool: &Pool, sql: String, binds: &[&str]) {
    match pool {
        Pool::Sqlite(p) => {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for b in binds {
                q = q.bind(*b);
            }
            q.execute(p).await.map(|_| ())
        }
        Pool::Postgres(p) => {
            let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
            for b in binds {
                q = q.bind(*b);
            }
            q.execute(p).await.map(|_| ())
        }
    }
    .expect("a row of the older release");
}

/// An upgrade test for a service's replica table gaining a `confidential` column at migration
/// `version`: writes an open and a confidential replica the way the older release did
/// (`insert`, with `$1` the suggestion id, `$2` the replica and `NOW_` a timestamp literal; the
/// confidential one's title holds a NUL escape, which must not stop the upgrade), runs
/// `migrate` (every migration) and checks the column of both rows.
pub async fn replicas_keep_confidentiality<F, Fut>(
    db: &TestDb,
    m: sqlx::migrate::Migrator,
    version: i64,
    table: &str,
    insert: &str,
    migrate: F,
) where
    F: FnOnce(Pool) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    migrate_before(&db.pool, m, version).await;
    let now = match db.pool.backend() {
        crate::Backend::Sqlite => "'2020-01-12T00:00:00Z'",
        crate::Backend::Postgres => "TIMESTAMPTZ '2020-01-12 00:00:00+00'",
    };
    let (open, secret) = (uuid::Uuid::now_v7(), uuid::Uuid::now_v7());
    for (id, confidential) in [(open, false), (secret, true)] {
        let replica = format!(
            r#"{{"id":"{id}","details":{{"title":"a\u0000b","confidential":{confidential}}}}}"#
        );
        exec(
            &db.pool,
            insert.replace("NOW_", now),
            &[&id.to_string(), &replica],
        )
        .await;
    }
    migrate(db.pool.clone()).await;
    let sql = format!("SELECT confidential FROM {table} WHERE suggestion_id = $1");
    for (id, expected) in [(open, false), (secret, true)] {
        let (got,): (bool,) = match &db.pool {
            Pool::Sqlite(p) => {
                sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
                    .bind(id.to_string())
                    .fetch_one(p)
                    .await
            }
            Pool::Postgres(p) => {
                sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
                    .bind(id.to_string())
                    .fetch_one(p)
                    .await
            }
        }
        .expect("the row after the upgrade");
        assert_eq!(
            got, expected,
            "{table} {id}: confidential after the upgrade"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn database_name_is_replaced() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/test", "x"),
            "postgres://postgres@127.0.0.1:5432/x"
        );
        assert_eq!(
            with_database("postgres://u@h/test?sslmode=disable", "x"),
            "postgres://u@h/x?sslmode=disable"
        );
        assert_eq!(with_database("postgres://u@h", "x"), "postgres://u@h/x");
    }
}
