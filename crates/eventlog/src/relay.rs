//! The outbox relay: publishes committed outbox rows to the bus in order, then marks them.
//!
//! It may die between publishing and marking; the next run publishes the same rows again and the
//! bus delivers each event once (the event id is the de-duplication key), so nothing is lost and
//! nothing is doubled.

use std::time::Duration;

use std::sync::{Arc, Mutex};

use banli_db::Db;
use time::OffsetDateTime;
use uuid::Uuid;

use crate::outbox::{Outbox, OutboxError};
use crate::{Bus, BusError, Envelope};

#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    #[error(transparent)]
    Outbox(#[from] OutboxError),
    #[error(transparent)]
    Bus(#[from] BusError),
}

/// Moves one service's outbox rows to the bus.
///
/// On JetStream a row is marked published once the stream has stored it. On the embedded bus,
/// which lives in memory, a row is marked only once every consumer of the process has
/// acknowledged its event: rows published before a crash and not yet consumed are published
/// again at the next start, and the consumers' inboxes skip what they had already applied.
#[derive(Debug, Clone)]
pub struct Relay {
    db: Db,
    outbox: Outbox,
    bus: Bus,
    batch: u32,
    progress: Arc<Mutex<Progress>>,
}

/// What an embedded relay has put on the bus in this process and not yet marked.
#[derive(Debug, Default)]
struct Progress {
    cursor: i64,
    in_flight: Vec<(Uuid, i64)>,
    /// Sequence numbers below the cursor not seen yet, and since when: on PostgreSQL a row
    /// takes its number when inserted but becomes visible when its transaction commits, so a
    /// row can appear behind rows already published. Numbers of rolled-back transactions never
    /// appear; they are forgotten after [`HOLE_PATIENCE`].
    holes: Vec<(i64, std::time::Instant)>,
}

/// How long a hole in the outbox's sequence is watched for a late commit.
const HOLE_PATIENCE: Duration = Duration::from_secs(60);
/// The most holes watched at once (a larger jump in the sequence is not a late commit).
const MAX_HOLES: usize = 10_000;

impl Relay {
    pub fn new(db: Db, outbox: Outbox, bus: Bus) -> Relay {
        Relay {
            db,
            outbox,
            bus,
            batch: 256,
            progress: Arc::default(),
        }
    }

    /// Publishes one batch; returns how many rows it moved.
    pub async fn run_once(&self) -> Result<usize, RelayError> {
        if let Bus::Embedded(b) = &self.bus {
            return self.run_once_embedded(b).await;
        }
        let rows = self.outbox.pending(self.db.pool(), self.batch).await?;
        let envelopes: Vec<Envelope> = rows
            .iter()
            .map(|r| Envelope {
                event_id: r.event_id,
                event_type: r.event_type.clone(),
                aggregate_id: r.aggregate_id.clone(),
                aggregate_version: r.aggregate_version,
                payload: r.payload.clone().into_bytes(),
            })
            .collect();
        let spans = publish_spans(&self.outbox, &envelopes);
        self.bus.publish_batch(&envelopes).await?;
        drop(spans);
        let seqs: Vec<i64> = rows.iter().map(|r| r.seq).collect();
        if !seqs.is_empty() {
            self.outbox
                .mark_published(&self.db, &seqs, OffsetDateTime::now_utc())
                .await?;
        }
        Ok(rows.len())
    }

    async fn run_once_embedded(&self, bus: &crate::EmbeddedBus) -> Result<usize, RelayError> {
        let (cursor, ids) = {
            let p = self.progress.lock().map_err(|_| poisoned())?;
            (
                p.cursor,
                p.in_flight.iter().map(|(id, _)| *id).collect::<Vec<_>>(),
            )
        };
        let done = bus.take_done(&ids);
        if !done.is_empty() {
            let seqs: Vec<i64> = {
                let p = self.progress.lock().map_err(|_| poisoned())?;
                p.in_flight
                    .iter()
                    .filter(|(id, _)| done.contains(id))
                    .map(|(_, seq)| *seq)
                    .collect()
            };
            self.outbox
                .mark_published(&self.db, &seqs, OffsetDateTime::now_utc())
                .await?;
            let mut p = self.progress.lock().map_err(|_| poisoned())?;
            p.in_flight.retain(|(id, _)| !done.contains(id));
        }
        // Rows committed late behind the cursor first, then the rows after it.
        let holes: Vec<i64> = {
            let mut p = self.progress.lock().map_err(|_| poisoned())?;
            p.holes.retain(|(_, since)| since.elapsed() < HOLE_PATIENCE);
            p.holes.iter().map(|(s, _)| *s).collect()
        };
        let mut rows = self.outbox.pending_in(self.db.pool(), &holes).await?;
        if !rows.is_empty() {
            let mut p = self.progress.lock().map_err(|_| poisoned())?;
            p.holes.retain(|(s, _)| !rows.iter().any(|r| r.seq == *s));
        }
        let late = rows.len();
        rows.extend(
            self.outbox
                .pending_after(self.db.pool(), cursor, self.batch)
                .await?,
        );
        for (i, r) in rows.iter().enumerate() {
            if i >= late {
                let mut p = self.progress.lock().map_err(|_| poisoned())?;
                let now = std::time::Instant::now();
                let gap = (r.seq - p.cursor - 1).max(0) as usize;
                // The first rows after a start are not behind anything this relay saw.
                if p.cursor > 0 && gap > 0 && p.holes.len() + gap <= MAX_HOLES {
                    let from = p.cursor + 1;
                    p.holes.extend((from..r.seq).map(|s| (s, now)));
                }
            }
            let envelope = Envelope {
                event_id: r.event_id,
                event_type: r.event_type.clone(),
                aggregate_id: r.aggregate_id.clone(),
                aggregate_version: r.aggregate_version,
                payload: r.payload.clone().into_bytes(),
            };
            let span = publish_spans(&self.outbox, std::slice::from_ref(&envelope));
            self.bus.publish(&envelope).await?;
            drop(span);
            let mut p = self.progress.lock().map_err(|_| poisoned())?;
            p.in_flight.push((r.event_id, r.seq));
            p.cursor = p.cursor.max(r.seq);
        }
        Ok(rows.len() - late)
    }

    /// Runs until `stop` resolves: drains the outbox, then sleeps until a store signals that
    /// rows were committed — in this process, or in another one on the same PostgreSQL
    /// database when the outbox's signal is shared ([`banli_db::signal::share`]) — and, on the
    /// embedded bus, until the consumers have events the relay can mark published; or `idle`
    /// at most (a safety net: a relay whose signal is shared never needs it).
    pub async fn run(self, idle: Duration, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        let mut written = self.outbox.signal().waiter();
        let embedded = match &self.bus {
            Bus::Embedded(b) => Some(b.clone()),
            Bus::Nats(_) => None,
        };
        loop {
            let (pause, wake) = match self.run_once().await {
                Ok(n) if n as u32 == self.batch => (Duration::ZERO, false),
                Ok(_) => (idle, true),
                Err(e) => {
                    tracing::warn!(error = %e, "the outbox relay failed; it will retry");
                    (idle.min(Duration::from_secs(1)), false)
                }
            };
            let done = async {
                match &embedded {
                    Some(b) => b.wait_done().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                () = &mut stop => return,
                () = tokio::time::sleep(pause) => {}
                () = written.wait(), if wake => {}
                () = done, if wake => {}
            }
        }
    }
}

/// One span per event published, child of the command that wrote it (none when tracing is off).
fn publish_spans(outbox: &Outbox, envelopes: &[Envelope]) -> Vec<tracing::Span> {
    envelopes
        .iter()
        .filter_map(|e| crate::trace::event_span("publish", outbox.table(), e))
        .collect()
}

fn poisoned() -> RelayError {
    RelayError::Bus(BusError::Bus(
        "the relay's state is unusable after a panic".into(),
    ))
}
