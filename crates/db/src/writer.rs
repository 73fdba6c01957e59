//! The write path: SQLite allows one writer at a time, so every write runs on one dedicated
//! thread, in order — writers queue without SQLite's sleep-and-retry busy handler, and a write
//! transaction is never held open while its task waits for a busy runtime to poll it again.
//! PostgreSQL writes run in place.

use std::future::Future;
use std::pin::Pin;

use tokio::sync::{mpsc, oneshot};

use crate::Pool;

type Plain = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()> + Send>> + Send>;

/// Reports a grouped job's result once its group is committed (or not).
type Completion = Box<dyn FnOnce(Result<(), String>) + Send>;

/// A grouped job: runs inside the group's transaction (in its own savepoint) and says whether
/// it succeeded, with what to do once the group is committed.
type Grouped = Box<
    dyn for<'c> FnOnce(
            &'c mut sqlx::SqliteConnection,
        ) -> Pin<Box<dyn Future<Output = (bool, Completion)> + Send + 'c>>
        + Send,
>;

enum Job {
    Plain(Plain),
    Grouped(Grouped),
}

/// The most grouped writes one transaction takes.
const GROUP: usize = 64;

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

#[derive(Clone)]
struct Writer {
    jobs: mpsc::UnboundedSender<Job>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Writer")
    }
}

/// Runs grouped jobs in one transaction, a savepoint each (one statement a job); returns their completions and
/// whether the transaction committed.
async fn run_group(
    pool: &sqlx::SqlitePool,
    mut group: Vec<Grouped>,
) -> (Vec<Completion>, Result<(), String>) {
    use sqlx::Connection;
    let mut done = Vec::with_capacity(group.len());
    let mut conn = match pool.acquire().await {
        Ok(c) => c,
        Err(e) => return (done, Err(e.to_string())),
    };
    let mut tx = match conn.begin().await {
        Ok(tx) => tx,
        Err(e) => return (done, Err(e.to_string())),
    };
    if group.len() == 1 {
        // Alone in its transaction: no savepoint needed; a failure rolls the whole back.
        let Some(job) = group.pop() else {
            return (done, Ok(()));
        };
        let (ok, completion) = job(&mut tx).await;
        done.push(completion);
        if !ok {
            // The job reports its own error; dropping the transaction rolls it back.
            let _ = tx.rollback().await;
            return (done, Ok(()));
        }
        return (done, tx.commit().await.map_err(|e| e.to_string()));
    }
    // One round trip to SQLite's connection thread a job (every statement costs one): a
    // savepoint before the first job; after a job that succeeded, its release and the next
    // job's savepoint in one call; a failed job rolls back to its savepoint, which stays open
    // and empty for the next. COMMIT commits the last savepoint with the transaction.
    let mut jobs = group.into_iter().peekable();
    if let Err(e) = sqlx::query("SAVEPOINT banli_write").execute(&mut *tx).await {
        return (done, Err(e.to_string()));
    }
    while let Some(job) = jobs.next() {
        let (ok, completion) = job(&mut tx).await;
        done.push(completion);
        let next = if !ok {
            Some("ROLLBACK TO SAVEPOINT banli_write")
        } else if jobs.peek().is_some() {
            Some("RELEASE SAVEPOINT banli_write; SAVEPOINT banli_write")
        } else {
            None
        };
        if let Some(sql) = next
            && let Err(e) = sqlx::raw_sql(sql).execute(&mut *tx).await
        {
            return (done, Err(e.to_string()));
        }
    }
    let committed = tx.commit().await.map_err(|e| e.to_string());
    (done, committed)
}

impl Writer {
    fn spawn(pool: Option<sqlx::SqlitePool>) -> Writer {
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
                let mut next = None;
                loop {
                    let job = match next.take() {
                        Some(j) => j,
                        None => match rx.recv().await {
                            Some(j) => j,
                            None => break,
                        },
                    };
                    match job {
                        Job::Plain(job) => job().await,
                        Job::Grouped(first) => {
                            // Everything already queued behind it joins the same transaction.
                            let mut group = vec![first];
                            while group.len() < GROUP {
                                match rx.try_recv() {
                                    Ok(Job::Grouped(g)) => group.push(g),
                                    Ok(other) => {
                                        next = Some(other);
                                        break;
                                    }
                                    Err(_) => break,
                                }
                            }
                            let Some(pool) = &pool else {
                                continue;
                            };
                            let (done, committed) = run_group(pool, group).await;
                            for c in done {
                                c(committed.clone());
                            }
                        }
                    }
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
        let writer = match &pool {
            Pool::Sqlite(p) => Some(Writer::spawn(Some(p.clone()))),
            Pool::Postgres(_) => None,
        };
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
        let job: Plain = Box::new(move || {
            Box::pin(async move {
                let _ = tx.send(f(pool).await);
            })
        });
        writer
            .jobs
            .send(Job::Plain(job))
            .map_err(|_| WriterStopped)?;
        rx.await.map_err(|_| WriterStopped)?
    }

    /// A SQLite write that may share its transaction with the writes queued with it (group
    /// commit: one commit for many small writes). `f` runs in its own savepoint: when it fails,
    /// only its changes are undone. Its result is reported once the group is committed; when the
    /// commit fails, every write of the group gets the error. `None` on PostgreSQL: run the
    /// write with [`Db::write`] there.
    pub async fn write_grouped<F, T, E>(&self, f: F) -> Option<Result<T, E>>
    where
        F: for<'c> FnOnce(
                &'c mut sqlx::SqliteConnection,
            ) -> Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'c>>
            + Send
            + 'static,
        T: Send + 'static,
        E: From<WriterStopped> + From<sqlx::Error> + Send + 'static,
    {
        let writer = self.writer.as_ref()?;
        let (tx, rx) = oneshot::channel::<Result<T, E>>();
        let job: Grouped = Box::new(move |c| {
            Box::pin(async move {
                let result = f(c).await;
                let ok = result.is_ok();
                let completion: Completion = Box::new(move |committed| {
                    let _ = tx.send(match committed {
                        Ok(()) => result,
                        Err(e) => Err(E::from(sqlx::Error::Protocol(format!(
                            "the group commit failed: {e}"
                        )))),
                    });
                });
                (ok, completion)
            })
        });
        if writer.jobs.send(Job::Grouped(job)).is_err() {
            return Some(Err(WriterStopped.into()));
        }
        Some(rx.await.unwrap_or_else(|_| Err(WriterStopped.into())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::TestDb;

    #[derive(Debug)]
    enum E {
        Db,
        Stopped,
    }
    impl From<sqlx::Error> for E {
        fn from(_: sqlx::Error) -> Self {
            E::Db
        }
    }
    impl From<WriterStopped> for E {
        fn from(_: WriterStopped) -> Self {
            E::Stopped
        }
    }

    #[tokio::test]
    async fn grouped_writes_share_a_commit_and_a_failure_undoes_only_its_own() {
        let t = TestDb::sqlite().await;
        let Pool::Sqlite(p) = &t.pool else {
            panic!("sqlite")
        };
        sqlx::query("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT)")
            .execute(p)
            .await
            .expect("table");
        let db = Db::new(t.pool.clone());
        let mut handles = Vec::new();
        for k in 0..50i64 {
            let db = db.clone();
            handles.push(tokio::spawn(async move {
                db.write_grouped(move |c: &mut sqlx::SqliteConnection| {
                    Box::pin(async move {
                        sqlx::query("INSERT INTO t (k, v) VALUES ($1, 'a')")
                            .bind(k * 2)
                            .execute(&mut *c)
                            .await?;
                        // Two of every five writes fail after their first statement, one after
                        // the other: only they are undone.
                        let dup = if k % 5 < 2 { k * 2 } else { k * 2 + 1 };
                        sqlx::query("INSERT INTO t (k, v) VALUES ($1, 'b')")
                            .bind(dup)
                            .execute(&mut *c)
                            .await?;
                        Ok::<_, E>(k)
                    })
                })
                .await
                .expect("a SQLite writer")
            }));
        }
        let mut failed = 0;
        for h in handles {
            match h.await.expect("task") {
                Ok(_) => {}
                Err(E::Db) => failed += 1,
                Err(E::Stopped) => panic!("the writer stopped"),
            }
        }
        assert_eq!(failed, 20);
        let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM t")
            .fetch_one(p)
            .await
            .expect("count");
        assert_eq!(
            n, 60,
            "30 writes of two rows each; the 20 failed ones left nothing"
        );
        t.drop_db().await;
    }
}
