//! One sequencer per log (定序者): of the processes sharing a log (follow-up replicas), the one
//! holding the sequencer lock opens the log, appends, signs and serves it; the others stand by,
//! answer the audit API with 503 (retry: the sequencer answers, or this one takes over) and try
//! for the lock twice a second. The lock is PostgreSQL's advisory lock on a session of its own
//! (SQLite: a file lock), so it ends with its process — a killed sequencer is replaced within a
//! second — and the sequencer checks it every second, stopping the process if it is gone. Holding
//! the lock, a process claims the log with a new epoch; every append checks its epoch in its own
//! transaction, so a process that lost the lock never writes after its successor opened the log.

use std::future::Future;
use std::time::Duration;

use banli_api::{AppError, ErrorCode};
use tokio::sync::watch;

use crate::log::AuditLog;
use crate::store::{Fence, LockAttempts, SequencerLock, Store, StoreError};

/// A name for this process in the lease row (and in the logs of the replicas standing by).
pub fn holder_name() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .filter(|h| !h.is_empty())
        .or_else(|| {
            std::fs::read_to_string("/etc/hostname")
                .ok()
                .map(|h| h.trim().to_owned())
        })
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "localhost".to_owned());
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{host}/{}/{}", std::process::id(), &id[..8])
}

/// The log as this process has it: open once it holds the lease, none while it stands by.
#[derive(Clone, Debug)]
pub struct LogHandle {
    rx: watch::Receiver<Option<AuditLog>>,
}

impl LogHandle {
    /// A log this process already sequences (tests, a single process).
    pub fn ready(log: AuditLog) -> LogHandle {
        LogHandle {
            rx: watch::Sender::new(Some(log)).subscribe(),
        }
    }

    /// A handle without a log yet, and where the log goes once this process holds the lease.
    pub fn standby() -> (watch::Sender<Option<AuditLog>>, LogHandle) {
        let (tx, rx) = watch::channel(None);
        (tx, LogHandle { rx })
    }

    /// The log, or 503 while another replica is the sequencer.
    pub fn get(&self) -> Result<AuditLog, AppError> {
        self.rx.borrow().clone().ok_or_else(|| {
            AppError::new(
                ErrorCode::Unavailable,
                "this replica is standing by for the audit log: another replica is its sequencer and answers for it; retry (this replica takes over within seconds if the sequencer stops)",
            )
        })
    }

    /// Whether this process is the sequencer.
    pub fn is_sequencer(&self) -> bool {
        self.rx.borrow().is_some()
    }
}

/// The sequencer could not go on: this process must stop.
#[derive(Debug, thiserror::Error)]
pub enum LeaseError {
    #[error(
        "another process claimed the audit log's sequencer ({holder}); this process stops so that only one sequencer writes the log"
    )]
    TakenOver { holder: String },
    #[error(
        "the audit log's sequencer lock is gone (its database session did not answer: {0}); another replica may take over, so this process stops; restart it when the database answers"
    )]
    Lost(StoreError),
}

/// How often a standby tries for the lock.
pub const STANDBY_POLL: Duration = Duration::from_millis(500);
/// How often the sequencer checks its lock and claim, and how long a check may take.
pub const CHECK_EVERY: Duration = Duration::from_secs(1);
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);

/// The sequencer's lock and its claim on the log.
#[derive(Debug)]
pub struct Lease {
    pub fence: Fence,
    lock: SequencerLock,
}

/// Takes the lock and claims the log if no other process holds it.
pub async fn try_acquire(store: &Store, holder: &str) -> Result<Option<Lease>, StoreError> {
    try_again(store, holder, &mut LockAttempts::default()).await
}

async fn try_again(
    store: &Store,
    holder: &str,
    attempts: &mut LockAttempts,
) -> Result<Option<Lease>, StoreError> {
    let Some(lock) = store.try_lock_sequencer(attempts).await? else {
        return Ok(None);
    };
    let fence = store.claim_sequencer(&lock, holder).await?;
    Ok(Some(Lease { fence, lock }))
}

/// Waits until this process holds the lock (`None` if `stop` comes first). Says once who the
/// sequencer is, and again when that changes.
pub async fn wait_for(
    store: &Store,
    holder: &str,
    stop: impl Future<Output = ()>,
) -> Result<Option<Lease>, StoreError> {
    tokio::pin!(stop);
    let mut told: Option<String> = None;
    let mut attempts = LockAttempts::default();
    let mut every = tokio::time::interval(STANDBY_POLL);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = &mut stop => return Ok(None),
            _ = every.tick() => {}
        }
        match try_again(store, holder, &mut attempts).await {
            Ok(Some(lease)) => {
                tracing::info!(
                    holder,
                    epoch = lease.fence.epoch,
                    previous = told.as_deref().unwrap_or("none"),
                    "took over as the audit log's sequencer"
                );
                return Ok(Some(lease));
            }
            Ok(None) => {
                if let Ok(Some(h)) = store.sequencer().await
                    && told.as_deref() != Some(h.holder.as_str())
                {
                    tracing::info!(sequencer = %h.holder, epoch = h.epoch, "standing by for the audit log: another replica is its sequencer; this one takes over if that one stops");
                    told = Some(h.holder);
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "could not try for the audit log's sequencer lock; trying again");
            }
        }
    }
}

/// Checks the lock and the claim every second until `stop`, then waits for `finish` (what
/// appends under the claim) and lets the lock go, so that a standby takes over at once. Returns
/// an error as soon as either is lost.
pub async fn keep(
    store: &Store,
    mut lease: Lease,
    stop: impl Future<Output = ()>,
    finish: impl Future<Output = ()>,
) -> Result<(), LeaseError> {
    tokio::pin!(stop);
    let mut every = tokio::time::interval(CHECK_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = &mut stop => break,
            _ = every.tick() => {}
        }
        match tokio::time::timeout(CHECK_TIMEOUT, lease.lock.check()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => return Err(LeaseError::Lost(e)),
            Err(_) => {
                return Err(LeaseError::Lost(StoreError::Corrupt(format!(
                    "no answer within {CHECK_TIMEOUT:?}"
                ))));
            }
        }
        match store.renew_sequencer(&lease.fence).await {
            Ok(true) => {}
            Ok(false) => {
                let holder = store
                    .sequencer()
                    .await
                    .ok()
                    .flatten()
                    .map_or_else(|| "nobody".to_owned(), |h| h.holder);
                return Err(LeaseError::TakenOver { holder });
            }
            // A passing write error (a busy database): the lock still holds, and every append
            // checks the claim itself; the next second tries again.
            Err(e) => {
                tracing::warn!(error = %e, "could not confirm the audit log's sequencer claim; trying again");
            }
        }
    }
    finish.await;
    drop(lease.lock);
    tracing::info!(
        holder = lease.fence.holder,
        "let the audit log's sequencer lock go"
    );
    Ok(())
}
