//! Database connections: one URL picks the backend once — SQLite (the embedded default, a file
//! in WAL mode) or PostgreSQL — and every adapter matches on [`Pool`] with [`on_pool!`] so that
//! each backend's code is type-checked against its own driver.
//!
//! Must never: hold a service's SQL. Adapters own their SQL and migrations; this crate only
//! connects, serialises SQLite writes, keeps the one piece of infrastructure every API shares
//! (idempotency keys, in each service's own table), and gives tests a fresh database.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use sqlx::{PgPool, SqlitePool};

pub mod idempotency;
pub mod signal;
pub mod snapshot;
pub mod testing;
mod writer;

pub use writer::{Db, WriterStopped};

pub use sqlx;

/// A connection pool on one of the two backends.
#[derive(Debug, Clone)]
pub enum Pool {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Which backend a pool talks to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Runs the same body against whichever backend the pool is, with `$p` bound to the typed pool.
#[macro_export]
macro_rules! on_pool {
    ($pool:expr, $p:ident => $body:expr) => {
        match $pool {
            $crate::Pool::Sqlite($p) => $body,
            $crate::Pool::Postgres($p) => $body,
        }
    };
}

#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error(
        "unsupported database URL scheme in `{0}`: use sqlite://PATH (embedded) or postgres://USER@HOST/DB"
    )]
    Scheme(String),
    #[error("cannot create the data directory {path}: {source}")]
    DataDir {
        path: String,
        source: std::io::Error,
    },
    #[error(
        "cannot open the database ({backend:?}): {source}. Check the URL, that the server is running and that the user may connect"
    )]
    Open {
        backend: Backend,
        source: sqlx::Error,
    },
}

/// Connection settings beyond the URL.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    pub max_connections: u32,
    pub acquire_timeout: Duration,
    /// SQLite: every commit reaches the disk before it returns (`synchronous=FULL`), for a
    /// database whose lost commit would contradict something already published (the audit
    /// log's signed checkpoints). Otherwise WAL's `synchronous=NORMAL`: a power loss may lose
    /// the last commits, never corrupt. No effect on PostgreSQL, which is durable on commit.
    pub durable: bool,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        ConnectOptions {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(10),
            durable: false,
        }
    }
}

impl Pool {
    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), sqlx::Error> {
        on_pool!(self, p => sqlx::query("SELECT 1").execute(p).await.map(|_| ()))
    }

    pub fn backend(&self) -> Backend {
        match self {
            Pool::Sqlite(_) => Backend::Sqlite,
            Pool::Postgres(_) => Backend::Postgres,
        }
    }

    /// Connects by URL: `sqlite://path/to/file.db` (created if missing, WAL) or `postgres://…`.
    pub async fn connect(url: &str, opts: &ConnectOptions) -> Result<Pool, ConnectError> {
        if url.starts_with("sqlite:") {
            let open = |source| ConnectError::Open {
                backend: Backend::Sqlite,
                source,
            };
            let options = SqliteConnectOptions::from_str(url)
                .map_err(open)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(if opts.durable {
                    SqliteSynchronous::Full
                } else {
                    SqliteSynchronous::Normal
                })
                .foreign_keys(true)
                .busy_timeout(Duration::from_secs(5));
            let file = options.get_filename();
            if let Some(dir) = file
                .parent()
                .filter(|d| !d.as_os_str().is_empty() && !is_memory(file))
            {
                create_private_dir(dir).map_err(|source| ConnectError::DataDir {
                    path: dir.display().to_string(),
                    source,
                })?;
            }
            // A local file does not drop connections: no ping before each acquire.
            let pool = SqlitePoolOptions::new()
                .test_before_acquire(false)
                .max_connections(opts.max_connections)
                .acquire_timeout(opts.acquire_timeout)
                .connect_with(options)
                .await
                .map_err(open)?;
            Ok(Pool::Sqlite(pool))
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let open = |source| ConnectError::Open {
                backend: Backend::Postgres,
                source,
            };
            let options = PgConnectOptions::from_str(url).map_err(open)?;
            let pool = PgPoolOptions::new()
                .max_connections(opts.max_connections)
                .acquire_timeout(opts.acquire_timeout)
                .connect_with(options)
                .await
                .map_err(open)?;
            Ok(Pool::Postgres(pool))
        } else {
            Err(ConnectError::Scheme(redact(url)))
        }
    }

    pub async fn close(&self) {
        on_pool!(self, p => p.close().await)
    }
}

/// Creates the data directory readable only by its owner: it holds the database and secrets.
pub fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    if dir.exists() {
        return Ok(());
    }
    std::fs::create_dir_all(dir)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(())
}

fn is_memory(path: &Path) -> bool {
    path.as_os_str() == ":memory:"
}

/// The SQLite URL of the database file in a data directory.
pub fn sqlite_url_in(data_dir: &Path) -> String {
    sqlite_url_for(data_dir, "banli.db")
}

/// The SQLite URL of `file` in the data directory (each service of the embedded mode has its
/// own file).
pub fn sqlite_url_for(data_dir: &Path, file: &str) -> String {
    format!("sqlite://{}", data_dir.join(file).display())
}

/// The URL with any password replaced, for logs and errors.
/// Whether a database error is PostgreSQL refusing a NUL character (U+0000) in text (SQLSTATE
/// 22021, or 22P05 from its JSON functions): bad input, not a failure of the server.
pub fn is_nul_in_text(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if matches!(d.code().as_deref(), Some("22021" | "22P05")))
}

pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            let userinfo = &url[scheme_end + 3..at];
            match userinfo.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme_end + 3], &url[at..]),
                None => url.to_owned(),
            }
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_never_reach_logs() {
        assert_eq!(
            redact("postgres://app:s3cret@db:5432/banli"),
            "postgres://app:***@db:5432/banli"
        );
        assert_eq!(redact("postgres://app@db/banli"), "postgres://app@db/banli");
        assert_eq!(redact("sqlite://data/banli.db"), "sqlite://data/banli.db");
    }

    #[tokio::test]
    async fn unknown_schemes_are_refused_with_what_to_do() {
        let err = Pool::connect("mysql://root:pw@localhost/x", &ConnectOptions::default())
            .await
            .expect_err("mysql");
        let text = err.to_string();
        assert!(
            text.contains("use sqlite://PATH") && !text.contains("pw@"),
            "{text}"
        );
    }

    #[tokio::test]
    async fn sqlite_creates_its_directory_and_uses_wal() {
        let dir = std::env::temp_dir().join(format!("banli-db-test-{}", uuid::Uuid::now_v7()));
        let pool = Pool::connect(
            &sqlite_url_in(&dir.join("nested")),
            &ConnectOptions::default(),
        )
        .await
        .expect("opens");
        let Pool::Sqlite(p) = &pool else {
            panic!("sqlite")
        };
        let mode: (String,) = sqlx::query_as("PRAGMA journal_mode")
            .fetch_one(p)
            .await
            .expect("pragma");
        assert_eq!(mode.0, "wal");
        pool.close().await;
        std::fs::remove_dir_all(&dir).expect("cleanup");
    }
}
