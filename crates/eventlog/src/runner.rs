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
    /// Not applied yet: an earlier version of its aggregate has not been applied. Delivered
    /// again later; after [`GAP_PATIENCE`] attempts the handler parks it instead.
    Deferred,
}

impl Handled {
    /// Its name in logs and traces.
    pub fn as_str(self) -> &'static str {
        match self {
            Handled::Applied => "applied",
            Handled::Duplicate => "duplicate",
            Handled::Parked => "parked",
            Handled::Deferred => "deferred",
        }
    }
}

/// How many deliveries an event waiting for its predecessor gets before it is parked. With the
/// pause between them (growing to 500 ms) that is about 45 s: longer than JetStream's
/// acknowledgement wait, after which events held by a consumer that died come back.
pub const GAP_PATIENCE: u64 = 100;

/// A delivered event and how many times it has been delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Incoming {
    pub envelope: Envelope,
    pub attempt: u64,
}

/// Applies a batch of events, in order, and records each in the inbox in the same transaction
/// as its effect; returns one outcome per event. An `Err` means nothing of the batch was
/// committed; it is delivered again.
pub trait Handler: Send + Sync + 'static {
    fn handle(
        &self,
        batch: &[Incoming],
    ) -> impl Future<Output = Result<Vec<Handled>, String>> + Send;
}

impl<T: Handler> Handler for Arc<T> {
    fn handle(
        &self,
        batch: &[Incoming],
    ) -> impl Future<Output = Result<Vec<Handled>, String>> + Send {
        T::handle(self, batch)
    }
}

/// A consumer's counters, read in process (tests, the bench); the same figures go to the
/// `metrics` facade under `banli_consumer_*{consumer="<name>"}` as they change.
#[derive(Debug, Default)]
pub struct ConsumerStats {
    pub applied: AtomicU64,
    pub duplicates: AtomicU64,
    pub parked: AtomicU64,
    pub deferred: AtomicU64,
    /// Batches that failed and were handed back.
    pub failures: AtomicU64,
    /// Batches handled.
    pub batches: AtomicU64,
    /// Events waiting for this consumer, as last read from the bus.
    pub lag: AtomicU64,
    /// Bumped after every committed batch: requests waiting for a consistency token re-check.
    pub signal: crate::consistency::Applied,
}

/// Upper bounds of the consumer lag histogram (`banli_consumer_lag_milliseconds`).
pub const LAG_BUCKETS_MS: [f64; 13] = [
    1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1_000.0, 2_000.0, 5_000.0, 10_000.0,
];

impl ConsumerStats {
    /// Notes how long ago the events of a handled batch were committed at their source.
    fn count_lag(&self, consumer: &str, batch: &[Incoming]) {
        let now = time::OffsetDateTime::now_utc();
        let histogram = metrics::histogram!("banli_consumer_lag_milliseconds", "consumer" => consumer.to_owned());
        let mut last = None;
        for i in batch {
            let Some(at) = occurred_at(&i.envelope.payload) else {
                continue;
            };
            let ms = (now - at).whole_milliseconds().max(0) as f64;
            histogram.record(ms);
            last = Some(ms);
        }
        if let Some(ms) = last {
            metrics::gauge!("banli_consumer_last_lag_milliseconds", "consumer" => consumer.to_owned())
                .set(ms);
        }
    }

    /// Notes the events waiting for the consumer on the bus.
    fn set_lag(&self, consumer: &str, n: u64) {
        self.lag.store(n, Ordering::Relaxed);
        metrics::gauge!("banli_consumer_lag", "consumer" => consumer.to_owned()).set(n as f64);
    }

    /// Notes a batch that failed and was handed back.
    fn count_failure(&self, consumer: &str) {
        self.failures.fetch_add(1, Ordering::Relaxed);
        metrics::counter!("banli_consumer_failed_batches_total", "consumer" => consumer.to_owned())
            .increment(1);
    }
}

/// The commit time an envelope carries (`occurred_at`), if it is readable.
fn occurred_at(payload: &[u8]) -> Option<time::OffsetDateTime> {
    #[derive(serde::Deserialize)]
    struct At {
        #[serde(with = "time::serde::rfc3339")]
        occurred_at: time::OffsetDateTime,
    }
    serde_json::from_slice::<At>(payload)
        .ok()
        .map(|a| a.occurred_at)
}

impl ConsumerStats {
    /// Statistics whose committed batches signal `applied` (a service's gate).
    pub fn signalling(applied: &crate::consistency::Applied) -> ConsumerStats {
        ConsumerStats {
            signal: applied.clone(),
            ..ConsumerStats::default()
        }
    }

    /// Notes a committed batch and what became of each of its events.
    fn count(&self, consumer: &str, outcomes: &[Handled]) {
        let mut n = [0u64; 4];
        for o in outcomes {
            let (c, i) = match o {
                Handled::Applied => (&self.applied, 0),
                Handled::Duplicate => (&self.duplicates, 1),
                Handled::Parked => (&self.parked, 2),
                Handled::Deferred => (&self.deferred, 3),
            };
            c.fetch_add(1, Ordering::Relaxed);
            n[i] += 1;
        }
        self.batches.fetch_add(1, Ordering::Relaxed);
        for (name, n) in [
            ("banli_consumer_applied_total", n[0]),
            ("banli_consumer_duplicates_total", n[1]),
            ("banli_consumer_parked_total", n[2]),
            ("banli_consumer_deferred_total", n[3]),
            ("banli_consumer_batches_total", 1),
        ] {
            metrics::counter!(name, "consumer" => consumer.to_owned()).increment(n);
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
    /// The most events handled in one transaction (at most [`MAX_BATCH`]).
    pub batch: usize,
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
            b = c.next_batch(options.batch.min(MAX_BATCH), options.poll) => b,
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
                stats.set_lag(&options.name, n);
            }
            lag_read = Instant::now();
        }
        if batch.is_empty() {
            continue;
        }
        let incoming: Vec<Incoming> = batch
            .iter()
            .map(|d| Incoming {
                envelope: d.envelope.clone(),
                attempt: d.attempt,
            })
            .collect();
        let spans: Vec<Option<tracing::Span>> = incoming
            .iter()
            .map(|i| crate::trace::event_span("apply", &options.name, &i.envelope))
            .collect();
        let handled = handler.handle(&incoming).await;
        for (i, span) in spans.iter().enumerate() {
            if let Some(span) = span {
                let outcome = match &handled {
                    Ok(o) => o.get(i).map_or("missing", |o| o.as_str()),
                    Err(_) => "failed",
                };
                span.record("banli.outcome", outcome);
            }
        }
        drop(spans);
        match handled {
            Ok(outcomes) => {
                stats.signal.note(
                    &options.name,
                    incoming
                        .iter()
                        .zip(&outcomes)
                        .filter(|(_, o)| matches!(o, Handled::Applied | Handled::Duplicate))
                        .map(|(i, _)| {
                            let e = &i.envelope;
                            (
                                crate::inbox::aggregate_type(e).to_owned(),
                                e.aggregate_id.clone(),
                                e.aggregate_version,
                            )
                        }),
                );
                stats.signal.bump();
                stats.count(&options.name, &outcomes);
                stats.count_lag(&options.name, &incoming);
                backoff = Duration::from_millis(50);
                let done: Vec<bool> = (0..batch.len())
                    .map(|i| outcomes.get(i).is_some_and(|o| *o != Handled::Deferred))
                    .collect();
                let attempts = incoming.iter().map(|i| i.attempt).max().unwrap_or(1);
                let delay = (Duration::from_millis(10) * attempts.min(50) as u32)
                    .min(Duration::from_millis(500));
                if let Err(e) = c.settle(batch, &done, delay).await {
                    // The effects are committed; a redelivery is a no-op through the inbox.
                    tracing::warn!(consumer = %options.name, error = %e, "acknowledging failed; the events will be delivered again and skipped");
                    consumer = None;
                }
            }
            Err(e) => {
                stats.count_failure(&options.name);
                tracing::warn!(consumer = %options.name, error = %e, events = incoming.len(), "applying a batch failed; it will be delivered again");
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
