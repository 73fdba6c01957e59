//! The sequencer's lock and lease: one process feeds and signs a log; a standby takes over when
//! the lock is released, fenced by an epoch every append checks.

use super::*;

/// A holder's claim as the log's sequencer: every append checks, in its transaction, that the
/// `audit_sequencer` row still names this holder at this epoch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fence {
    pub holder: String,
    pub epoch: i64,
}

/// Who the sequencer is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LeaseHolder {
    pub holder: String,
    pub epoch: i64,
    /// Milliseconds since it last confirmed it.
    pub since_renewed_ms: i64,
}

/// The advisory lock's key on PostgreSQL (`banli` `audit`).
const SEQUENCER_LOCK_KEY: i64 = 0x0062_616e_6c69_6175;

/// A standby's tries for the sequencer lock: on PostgreSQL the session it tries on.
#[derive(Debug, Default)]
pub struct LockAttempts {
    session: Option<Box<sqlx::PgConnection>>,
}

/// The sequencer lock, held until dropped.
#[derive(Debug)]
pub struct SequencerLock(LockInner);

#[derive(Debug)]
enum LockInner {
    Postgres(Box<sqlx::PgConnection>),
    File(
        #[expect(
            dead_code,
            reason = "held, not read: the lock lasts while the file is open"
        )]
        std::fs::File,
    ),
    Memory,
}

impl SequencerLock {
    /// Whether the lock is still held: on PostgreSQL, whether its session still answers (the
    /// server releases the lock when the session ends).
    pub async fn check(&mut self) -> Result<(), StoreError> {
        match &mut self.0 {
            LockInner::Postgres(conn) => {
                sqlx::query("SELECT 1").execute(&mut **conn).await?;
                Ok(())
            }
            LockInner::File(_) | LockInner::Memory => Ok(()),
        }
    }
}

/// The database's clock in milliseconds since 1970: one clock for every replica.
const PG_NOW_MS: &str = "(extract(epoch FROM clock_timestamp()) * 1000)::bigint";
const SQLITE_NOW_MS: &str = "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)";

fn now_ms(backend: banli_db::Backend) -> &'static str {
    match backend {
        banli_db::Backend::Postgres => PG_NOW_MS,
        banli_db::Backend::Sqlite => SQLITE_NOW_MS,
    }
}

impl Store {
    /// Takes the sequencer lock if no other process holds it: on PostgreSQL an advisory lock
    /// on a connection of its own (released by the server when that session ends, a killed
    /// process's at once; its keepalives end a vanished machine's within seconds), on SQLite a
    /// lock on the file `<database>.sequencer` (released by the system when the process ends).
    ///
    /// `attempts` keeps a standby's PostgreSQL session between tries (no new connection each
    /// time); a session that fails is dropped and the next try opens another.
    pub async fn try_lock_sequencer(
        &self,
        attempts: &mut LockAttempts,
    ) -> Result<Option<SequencerLock>, StoreError> {
        match self.pool() {
            Pool::Postgres(p) => {
                let mut conn = match attempts.session.take() {
                    Some(c) => c,
                    None => {
                        let mut c = Box::new(p.acquire().await?.detach());
                        for sql in [
                            "SET tcp_keepalives_idle = 5",
                            "SET tcp_keepalives_interval = 2",
                            "SET tcp_keepalives_count = 3",
                        ] {
                            sqlx::query(sql).execute(&mut *c).await?;
                        }
                        c
                    }
                };
                let (locked,): (bool,) = sqlx::query_as("SELECT pg_try_advisory_lock($1)")
                    .bind(SEQUENCER_LOCK_KEY)
                    .fetch_one(&mut *conn)
                    .await?;
                if locked {
                    Ok(Some(SequencerLock(LockInner::Postgres(conn))))
                } else {
                    attempts.session = Some(conn);
                    Ok(None)
                }
            }
            Pool::Sqlite(p) => {
                let opts = p.connect_options();
                let file = opts.get_filename();
                let name = file.to_string_lossy();
                if name.starts_with("file:") || name == ":memory:" {
                    // An in-memory database: no other process can open it.
                    return Ok(Some(SequencerLock(LockInner::Memory)));
                }
                let mut path = file.as_os_str().to_owned();
                path.push(".sequencer");
                let f = std::fs::OpenOptions::new()
                    .create(true)
                    .truncate(false)
                    .write(true)
                    .open(&path)
                    .map_err(|e| {
                        StoreError::Corrupt(format!(
                            "cannot open the sequencer lock file {}: {e}",
                            std::path::Path::new(&path).display()
                        ))
                    })?;
                match f.try_lock() {
                    Ok(()) => Ok(Some(SequencerLock(LockInner::File(f)))),
                    Err(std::fs::TryLockError::WouldBlock) => Ok(None),
                    Err(std::fs::TryLockError::Error(e)) => Err(StoreError::Corrupt(format!(
                        "cannot lock the sequencer lock file: {e}"
                    ))),
                }
            }
        }
    }

    /// Makes the lock's holder the sequencer: a new epoch, which fences off every earlier
    /// holder's appends. Only with the sequencer lock held.
    pub async fn claim_sequencer(
        &self,
        _lock: &SequencerLock,
        holder: &str,
    ) -> Result<Fence, StoreError> {
        let now = now_ms(self.pool().backend());
        let sql = format!(
            "INSERT INTO audit_sequencer (id, holder, epoch, renewed_ms) VALUES (1, $1, 1, {now}) \
             ON CONFLICT (id) DO UPDATE SET holder = excluded.holder, epoch = audit_sequencer.epoch + 1, renewed_ms = excluded.renewed_ms \
             RETURNING epoch"
        );
        let holder = holder.to_owned();
        self.db
            .write(move |pool| async move {
                let (epoch,): (i64,) = on_pool!(&pool, p => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
                    .bind(&holder)
                    .fetch_one(p)
                    .await)?;
                Ok::<_, StoreError>(Fence { holder, epoch })
            })
            .await
    }

    /// Confirms that the row still names this holder at this epoch; `false` when it does not.
    pub async fn renew_sequencer(&self, fence: &Fence) -> Result<bool, StoreError> {
        let now = now_ms(self.pool().backend());
        let sql = format!(
            "UPDATE audit_sequencer SET renewed_ms = {now} WHERE id = 1 AND holder = $1 AND epoch = $2"
        );
        let fence = fence.clone();
        self.db
            .write(move |pool| async move {
                let n = on_pool!(&pool, p => sqlx::query(sqlx::AssertSqlSafe(sql.clone()))
                    .bind(&fence.holder)
                    .bind(fence.epoch)
                    .execute(p)
                    .await
                    .map(|r| r.rows_affected()))?;
                Ok::<bool, StoreError>(n == 1)
            })
            .await
    }

    /// Who the sequencer is.
    pub async fn sequencer(&self) -> Result<Option<LeaseHolder>, StoreError> {
        let now = now_ms(self.pool().backend());
        let sql =
            format!("SELECT holder, epoch, {now} - renewed_ms FROM audit_sequencer WHERE id = 1");
        let row: Option<(String, i64, i64)> = on_pool!(self.pool(), p => sqlx::query_as(sqlx::AssertSqlSafe(sql.clone()))
            .fetch_optional(p)
            .await)?;
        Ok(row.map(|(holder, epoch, since_renewed_ms)| LeaseHolder {
            holder,
            epoch,
            since_renewed_ms,
        }))
    }
}
