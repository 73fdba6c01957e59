//! The outbox relay: publishes committed outbox rows to the bus in order, then marks them.
//!
//! It may die between publishing and marking; the next run publishes the same rows again and the
//! bus delivers each event once (the event id is the de-duplication key), so nothing is lost and
//! nothing is doubled.

use std::time::Duration;

use banli_db::Db;
use time::OffsetDateTime;

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
#[derive(Debug, Clone)]
pub struct Relay {
    db: Db,
    outbox: Outbox,
    bus: Bus,
    batch: u32,
}

impl Relay {
    pub fn new(db: Db, outbox: Outbox, bus: Bus) -> Relay {
        Relay {
            db,
            outbox,
            bus,
            batch: 256,
        }
    }

    /// Publishes one batch; returns how many rows it moved.
    pub async fn run_once(&self) -> Result<usize, RelayError> {
        let rows = self.outbox.pending(self.db.pool(), self.batch).await?;
        for r in &rows {
            let envelope = Envelope {
                event_id: r.event_id,
                event_type: r.event_type.clone(),
                aggregate_id: r.aggregate_id.clone(),
                aggregate_version: r.aggregate_version,
                payload: r.payload.clone().into_bytes(),
            };
            self.bus.publish(&envelope).await?;
        }
        let seqs: Vec<i64> = rows.iter().map(|r| r.seq).collect();
        if !seqs.is_empty() {
            self.outbox
                .mark_published(&self.db, &seqs, OffsetDateTime::now_utc())
                .await?;
        }
        Ok(rows.len())
    }

    /// Runs until `stop` resolves: drains the outbox, then looks again every `idle`.
    pub async fn run(self, idle: Duration, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            let pause = match self.run_once().await {
                Ok(n) if n as u32 == self.batch => Duration::ZERO,
                Ok(_) => idle,
                Err(e) => {
                    tracing::warn!(error = %e, "the outbox relay failed; it will retry");
                    idle * 10
                }
            };
            tokio::select! {
                () = &mut stop => return,
                () = tokio::time::sleep(pause) => {}
            }
        }
    }
}
