//! Runs a durable consumer: batches in order to a [`Handler`] that commits each event's effect
//! together with its inbox entry, then acknowledges. A crash anywhere in between means the batch
//! is delivered again and the inbox turns every already-applied event into a no-op.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::{Bus, Consumer, Envelope, MAX_BATCH};

/// What became of one delivered event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handled {
    /// Its effect was committed now.
    Applied,
    /// Its effect had been committed before (a redelivery).
    Duplicate,
    /// Set aside, with the reason recorded, for an operator: an unknown type, a newer schema
    /// version, a payload that cannot be read, an event whose predecessor never came.
    Parked,
}

/// Applies a batch of events, in order, and records each in the inbox in the same transaction
/// as its effect. An `Err` means nothing of the batch was committed; it is delivered again.
pub trait Handler: Send + Sync + 'static {
    fn handle(
        &self,
        batch: &[Envelope],
    ) -> impl Future<Output = Result<Vec<Handled>, String>> + Send;
}

/// Counters a consumer exports as metrics.
#[derive(Debug, Default)]
pub struct ConsumerStats {
    pub applied: AtomicU64,
    pub duplicates: AtomicU64,
    pub parked: AtomicU64,
    /// Batches that failed and were handed back.
    pub failures: AtomicU64,
    /// Events waiting for this consumer, as last read from the bus.
    pub lag: AtomicU64,
}

impl ConsumerStats {
    fn count(&self, outcomes: &[Handled]) {
        for o in outcomes {
            let c = match o {
                Handled::Applied => &self.applied,
                Handled::Duplicate => &self.duplicates,
                Handled::Parked => &self.parked,
            };
            c.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// How a consumer runs.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// The durable consumer's name (one per consuming service).
    pub name: String,
    /// The event type prefix, e.g. `suggestion.`; `None`: every event.
    pub filter: Option<String>,
    /// How long a poll waits for the first event of a batch.
    pub poll: Duration,
}

/// Consumes until `stop` resolves. Never returns early: a bus or handler failure is logged,
/// counted and retried with a growing pause (at most 5 s).
pub async fn run<H: Handler>(
    bus: Bus,
    options: RunOptions,
    handler: H,
    stats: Arc<ConsumerStats>,
    stop: impl Future<Output = ()>,
) {
    tokio::pin!(stop);
    let mut consumer: Option<Consumer> = None;
    let mut backoff = Duration::from_millis(50);
    let mut lag_read = Instant::now() - Duration::from_secs(10);
    loop {
        let c = match &mut consumer {
            Some(c) => c,
            None => match bus.consumer(&options.name, options.filter.as_deref()).await {
                Ok(c) => consumer.insert(c),
                Err(e) => {
                    tracing::warn!(consumer = %options.name, error = %e, "cannot open the consumer; retrying");
                    if pause(&mut stop, &mut backoff).await {
                        return;
                    }
                    continue;
                }
            },
        };
        let batch = tokio::select! {
            () = &mut stop => return,
            b = c.next_batch(MAX_BATCH, options.poll) => b,
        };
        let batch = match batch {
            Ok(b) => b,
            Err(e) => {
                tracing::warn!(consumer = %options.name, error = %e, "reading from the bus failed; reconnecting");
                consumer = None;
                if pause(&mut stop, &mut backoff).await {
                    return;
                }
                continue;
            }
        };
        if lag_read.elapsed() >= Duration::from_secs(1) || batch.is_empty() {
            if let Ok(n) = c.pending().await {
                stats.lag.store(n, Ordering::Relaxed);
            }
            lag_read = Instant::now();
        }
        if batch.is_empty() {
            continue;
        }
        let envelopes: Vec<Envelope> = batch.iter().map(|d| d.envelope.clone()).collect();
        match handler.handle(&envelopes).await {
            Ok(outcomes) => {
                stats.count(&outcomes);
                backoff = Duration::from_millis(50);
                if let Some(last) = batch.into_iter().next_back()
                    && let Err(e) = last.ack().await
                {
                    // The effects are committed; a redelivery is a no-op through the inbox.
                    tracing::warn!(consumer = %options.name, error = %e, "acknowledging failed; the batch will be delivered again and skipped");
                }
            }
            Err(e) => {
                stats.failures.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(consumer = %options.name, error = %e, events = envelopes.len(), "applying a batch failed; it will be delivered again");
                if c.release(batch, backoff).await.is_err() {
                    consumer = None;
                }
                backoff = (backoff * 2).min(Duration::from_secs(5));
            }
        }
    }
}

/// Sleeps for `backoff` (doubling it) unless `stop` comes first; true when stopped.
async fn pause(
    stop: &mut std::pin::Pin<&mut impl Future<Output = ()>>,
    backoff: &mut Duration,
) -> bool {
    let d = *backoff;
    *backoff = (*backoff * 2).min(Duration::from_secs(5));
    tokio::select! {
        () = stop.as_mut() => true,
        () = tokio::time::sleep(d) => false,
    }
}
