//! The write path: SQLite allows one writer at a time, so every write runs on one dedicated
//! thread, in order — writers queue without SQLite's sleep-and-retry busy handler, and a write
//! transaction is never held open while its task waits for a busy runtime to poll it again.
//! PostgreSQL writes run in place.

use std::future::Future;
use std::pin::Pin;

use tokio::sync::{mpsc, oneshot};

use crate::Pool;

type Job = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// The writer thread has stopped (the process is shutting down or the thread failed to start).
#[derive(Debug, Clone, Copy, thiserror::Error)]
#[error("the SQLite writer thread has stopped")]
pub struct WriterStopped;

/// A pool and its write path. Cloning shares both.
#[derive(Debug, Clone)]
pub struct Db {
    pool: Pool,
    writer: Option<Writer>,
}

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

impl Db {
    /// Wraps a pool; on SQLite this starts the writer thread.
    pub fn new(pool: Pool) -> Db {
        let writer = matches!(pool, Pool::Sqlite(_)).then(Writer::spawn);
        Db { pool, writer }
    }

    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Runs a write: on the writer thread for SQLite, in place for PostgreSQL.
    pub async fn write<F, Fut, T, E>(&self, f: F) -> Result<T, E>
    where
        F: FnOnce(Pool) -> Fut + Send + 'static,
        Fut: Future<Output = Result<T, E>> + Send + 'static,
        T: Send + 'static,
        E: From<WriterStopped> + Send + 'static,
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
        writer.jobs.send(job).map_err(|_| WriterStopped)?;
        rx.await.map_err(|_| WriterStopped)?
    }
}
