//! Storage of the suggestions service on SQLite and PostgreSQL.
//!
//! A suggestion is stored as its current state (JSON) plus every event, appended under an
//! expected version in one transaction with the outbox rows that carry the events to other
//! services. Runtime queries only (no compile-time database); each backend has its own migrations.

mod directory;
mod idempotency;
mod keys;
mod rows;
mod suggestions;

pub use banli_domain::directory::{Agency, Deputy, Division, Session};
pub use idempotency::Idempotency;
pub use keys::ApiKey;
pub use suggestions::{
    InboxEntry, ListFilter, NewEvent, OutboxRow, SCHEMA_VERSION, SuggestionSummary, event_type,
};

use std::future::Future;
use std::pin::Pin;

use banli_db::{Pool, on_pool};
use tokio::sync::{mpsc, oneshot};

/// What can go wrong at the storage edge, in terms the application can act on.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0} not found")]
    NotFound(String),
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// Someone else changed the aggregate first.
    #[error("version conflict: expected version {expected}, the stored version is {actual}")]
    Conflict { expected: u64, actual: u64 },
    #[error("stored data could not be read: {0}")]
    Corrupt(String),
    #[error("database error: {0}")]
    Database(#[source] sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(e: sqlx::Error) -> Self {
        StoreError::Database(e)
    }
}

/// Maps a unique violation to `AlreadyExists(what)`, anything else to `Database`.
pub(crate) fn unique_as(what: &str) -> impl FnOnce(sqlx::Error) -> StoreError + '_ {
    move |e| match &e {
        sqlx::Error::Database(db) if db.is_unique_violation() => {
            StoreError::AlreadyExists(what.to_owned())
        }
        _ => StoreError::Database(e),
    }
}

/// The suggestions service's store.
#[derive(Debug, Clone)]
pub struct Store {
    pool: Pool,
    /// SQLite allows one writer at a time. Every write runs on one dedicated thread, in order:
    /// writers queue without SQLite's sleep-and-retry busy handler, and a write transaction is
    /// never held open while its task waits for a busy runtime to poll it again.
    writer: Option<Writer>,
}

type Job = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

#[derive(Debug, Clone)]
struct Writer {
    jobs: mpsc::UnboundedSender<Job>,
}

impl Writer {
    fn spawn() -> Writer {
        let (jobs, mut rx) = mpsc::unbounded_channel::<Job>();
        let spawned = std::thread::Builder::new().name("banli-sqlite-writer".into()).spawn(move || {
            let rt = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                Ok(rt) => rt,
                Err(e) => {
                    tracing::error!(error = %e, "the SQLite writer thread could not start a runtime");
                    return;
                }
            };
            rt.block_on(async move {
                while let Some(job) = rx.recv().await {
                    job().await;
                }
            });
        });
        if let Err(e) = spawned {
            tracing::error!(error = %e, "the SQLite writer thread could not start");
        }
        Writer { jobs }
    }
}

impl Store {
    pub fn new(pool: Pool) -> Store {
        let writer = matches!(pool, Pool::Sqlite(_)).then(Writer::spawn);
        Store { pool, writer }
    }

    /// Runs a write: on the writer thread for SQLite, in place for PostgreSQL.
    pub(crate) async fn write<F, Fut, T>(&self, f: F) -> Result<T, StoreError>
    where
        F: FnOnce(Pool) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, StoreError>> + Send + 'static,
        T: Send + 'static,
    {
        let pool = self.pool.clone();
        let Some(writer) = &self.writer else {
            return f(pool).await;
        };
        let (tx, rx) = oneshot::channel();
        let job: Job = Box::new(move || {
            Box::pin(async move {
                let _ = tx.send(f(pool).await);
            })
        });
        writer
            .jobs
            .send(job)
            .map_err(|_| StoreError::Corrupt("the SQLite writer thread has stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Corrupt("the SQLite writer thread dropped a write".into()))?
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Applies this service's migrations (idempotent). The migrations table is the service's own,
    /// so several services can share one SQLite file in the embedded mode.
    pub async fn migrate(&self) -> Result<(), sqlx::migrate::MigrateError> {
        match &self.pool {
            Pool::Sqlite(p) => {
                let mut m = sqlx::migrate!("./migrations/sqlite");
                m.dangerous_set_table_name("_migrations_suggestions");
                m.run(p).await
            }
            Pool::Postgres(p) => {
                let mut m = sqlx::migrate!("./migrations/postgres");
                m.dangerous_set_table_name("_migrations_suggestions");
                m.run(p).await
            }
        }
    }

    /// Checks that the database answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        on_pool!(&self.pool, p => sqlx::query("SELECT 1").execute(p).await.map(|_| ()).map_err(StoreError::from))
    }
}
