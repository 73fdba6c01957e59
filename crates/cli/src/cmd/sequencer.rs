//! The audit log in a follow-up process: opened, fed and signed only by the replica holding its
//! sequencer lock ([`banli_auditlog::lease`]); the others stand by and take over when it stops.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use banli_audit::Signer;
use banli_auditlog::lease::Lease;
use banli_auditlog::store::Store;
use banli_auditlog::{AuditLog, LogOptions, lease};
use tokio::sync::watch;

/// How this process starts with the log.
pub enum Start {
    /// It took the sequencer lock at start and opened the log.
    Opened(Lease, AuditLog),
    /// Another replica holds the lock: wait for it.
    Standby(Signer),
}

/// What the sequencer runs once it holds the lease.
pub struct Sequencer {
    pub store: Store,
    pub options: LogOptions,
    pub holder: String,
    /// Where the API finds the log once this process sequences it.
    pub slot: watch::Sender<Option<AuditLog>>,
    /// The follow-up service's store, when it runs here: its audit feed and checkpoint events.
    pub followup: Option<banli_followup::store::Store>,
    pub checkpoint_events: Duration,
    pub bus: banli_eventlog::Bus,
    pub consumer: banli_eventlog::runner::RunOptions,
    pub stats: Arc<banli_eventlog::runner::ConsumerStats>,
}

fn stopped(rx: &watch::Receiver<bool>) -> impl Future<Output = ()> + Send + 'static {
    let mut rx = rx.clone();
    async move {
        let _ = rx.wait_for(|stop| *stop).await;
    }
}

/// Takes the sequencer lock if it is free; with it, opens the log (an error here stops the
/// start).
pub async fn start(
    store: &Store,
    signer: Signer,
    options: &mut LogOptions,
    holder: &str,
) -> Result<Start> {
    match lease::try_acquire(store, holder)
        .await
        .context("taking the audit log's sequencer lock")?
    {
        Some(lease) => {
            options.fence = Some(lease.fence.clone());
            let log = open(store, signer, options, &lease).await?;
            Ok(Start::Opened(lease, log))
        }
        None => {
            let h = store.sequencer().await.ok().flatten();
            tracing::info!(
                sequencer = h.as_ref().map_or("?", |h| h.holder.as_str()),
                "another replica is the audit log's sequencer: this one stands by (its audit API answers 503) and takes over when that one stops"
            );
            Ok(Start::Standby(signer))
        }
    }
}

async fn open(
    store: &Store,
    signer: Signer,
    options: &LogOptions,
    lease: &Lease,
) -> Result<AuditLog> {
    match AuditLog::open(store.clone(), signer, options.clone()).await {
        Ok(log) => {
            tracing::info!(origin = %log.origin(), signed_size = log.signed_size(), public_key = %log.public_key(), sequencer = lease.fence.holder, epoch = lease.fence.epoch, "audit log ready: this process is its sequencer");
            Ok(log)
        }
        // The lock goes with the process.
        Err(e) => Err(e).context("opening the audit log"),
    }
}

impl Sequencer {
    /// Runs until `rx` says stop (then lets the lock go) or the lock is lost (an error:
    /// the process must stop).
    pub async fn run(self, start: Start, rx: watch::Receiver<bool>) -> Result<()> {
        let (lease, log) = match start {
            Start::Opened(lease, log) => (lease, log),
            Start::Standby(signer) => {
                let Some(lease) = lease::wait_for(&self.store, &self.holder, stopped(&rx))
                    .await
                    .context("waiting for the audit log's sequencer lock")?
                else {
                    return Ok(());
                };
                let options = LogOptions {
                    fence: Some(lease.fence.clone()),
                    ..self.options.clone()
                };
                let log = open(&self.store, signer, &options, &lease).await?;
                (lease, log)
            }
        };
        let mut appenders = Vec::new();
        if let Some(fstore) = &self.followup {
            appenders.push(tokio::spawn(banli_followup::audit_feed::run(
                fstore.clone(),
                log.clone(),
                stopped(&rx),
            )));
            // Its checkpoints to every agency's feed, the witnesses outside this database.
            appenders.push(tokio::spawn(banli_followup::checkpoints::run(
                fstore.clone(),
                log.clone(),
                self.checkpoint_events,
                stopped(&rx),
            )));
        }
        let consumer = banli_auditlog::consumer::EventConsumer::new(log.clone());
        consumer
            .migrate()
            .await
            .context("creating the audit log's parked-event table")?;
        appenders.push(tokio::spawn(banli_eventlog::runner::run(
            self.bus.clone(),
            self.consumer.clone(),
            consumer,
            self.stats.clone(),
            stopped(&rx),
        )));
        self.slot.send_replace(Some(log));
        let finish = async move {
            for t in appenders {
                let _ = t.await;
            }
        };
        lease::keep(&self.store, lease, stopped(&rx), finish)
            .await
            .map_err(anyhow::Error::from)
    }
}
