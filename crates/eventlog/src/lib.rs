//! The event transport (事件总线) every service uses: an **embedded** bus for `banli serve` and
//! **NATS JetStream** for one service per process, behind one interface and one contract suite.
//!
//! Delivery is at least once, in publish order per consumer; a publish carries the event id so
//! that a republished event (after a relay restart) is delivered once (`Nats-Msg-Id` on
//! JetStream, a seen-set on the embedded bus). Effects are made exactly-once by the consumers'
//! inbox, not here.
//!
//! Also here: the outbox relay ([`relay`]) and the consumer inbox ([`inbox`]), each over a table
//! the service owns, the consumer runner ([`runner`]) and the one way a service consumes
//! ([`consume`]).
//!
//! Must never: interpret payloads.

pub mod consistency;
pub mod consume;
mod embedded;
pub mod inbox;
mod nats;
pub mod outbox;
pub mod relay;
pub mod runner;
pub mod trace;

use std::time::Duration;

pub use consume::{Apply, Order, Settled, Step};
pub use embedded::EmbeddedBus;
pub use nats::{MAX_BATCH, NatsAuth, NatsBus, NatsConfig};
pub use runner::{ConsumerStats, Handled, Handler, Incoming};
use uuid::Uuid;

/// One event on the wire.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Envelope {
    pub event_id: Uuid,
    /// e.g. `suggestion.assigned`; the subject is `<prefix>.<event_type>`.
    pub event_type: String,
    pub aggregate_id: String,
    pub aggregate_version: u64,
    pub payload: Vec<u8>,
}

#[derive(Debug, thiserror::Error)]
pub enum BusError {
    #[error(
        "cannot reach the event bus at {url}: {reason}; check that NATS with JetStream is running (nats-server -js)"
    )]
    Connect { url: String, reason: String },
    #[error("the event bus refused the operation: {0}")]
    Bus(String),
    #[error("a message on the bus is not a banli event: {0}")]
    Malformed(String),
}

/// A bus: publish events, read them through named durable consumers.
#[derive(Debug, Clone)]
pub enum Bus {
    Embedded(EmbeddedBus),
    Nats(Box<NatsBus>),
}

impl Bus {
    /// Publishes; returns once the bus has stored the event.
    pub async fn publish(&self, e: &Envelope) -> Result<(), BusError> {
        match self {
            Bus::Embedded(b) => {
                b.publish(e);
                Ok(())
            }
            Bus::Nats(b) => b.publish(e).await,
        }
    }

    /// Publishes events in order; returns once the bus has stored them all.
    pub async fn publish_batch(&self, batch: &[Envelope]) -> Result<(), BusError> {
        match self {
            Bus::Embedded(b) => {
                for e in batch {
                    b.publish(e);
                }
                Ok(())
            }
            Bus::Nats(b) => b.publish_batch(batch).await,
        }
    }

    /// A durable consumer of the event types starting with `filter` (e.g. `"suggestion."`;
    /// `None`: every type): every consumer name sees every such event, in order,
    /// until it acknowledges it; what it has not acknowledged is delivered again to the next
    /// handle of the same name.
    pub async fn consumer(&self, name: &str, filter: Option<&str>) -> Result<Consumer, BusError> {
        match self {
            Bus::Embedded(b) => Ok(Consumer::Embedded(b.consumer(name, filter))),
            Bus::Nats(b) => Ok(Consumer::Nats(Box::new(b.consumer(name, filter).await?))),
        }
    }
}

/// A handle on a durable consumer.
#[derive(Debug)]
pub enum Consumer {
    Embedded(embedded::EmbeddedConsumer),
    Nats(Box<nats::NatsConsumer>),
}

impl Consumer {
    /// The next event, or `None` when nothing arrives within `wait`.
    pub async fn next(&mut self, wait: Duration) -> Result<Option<Delivery>, BusError> {
        Ok(self.next_batch(1, wait).await?.pop())
    }

    /// Up to `max` (at most [`MAX_BATCH`]) events in order, waiting up to `wait` for the first;
    /// empty when nothing arrives. Acknowledging the last acknowledges them all.
    pub async fn next_batch(
        &mut self,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Delivery>, BusError> {
        let max = max.clamp(1, MAX_BATCH);
        match self {
            Consumer::Embedded(c) => Ok(c.next_batch(max, wait).await),
            Consumer::Nats(c) => c.next_batch(max, wait).await,
        }
    }

    /// Hands a batch back unacknowledged: after `delay`, it is delivered again, in order, before
    /// anything newer.
    pub async fn release(&mut self, batch: Vec<Delivery>, delay: Duration) -> Result<(), BusError> {
        let done = vec![false; batch.len()];
        self.settle(batch, &done, delay).await
    }

    /// Settles a handled batch: events marked `done` are acknowledged; the others are handed
    /// back and, after `delay`, delivered again in their order before anything newer (JetStream
    /// delivers its redelivery queue first; the embedded bus rewinds to the first one not done).
    pub async fn settle(
        &mut self,
        batch: Vec<Delivery>,
        done: &[bool],
        delay: Duration,
    ) -> Result<(), BusError> {
        match self {
            Consumer::Embedded(c) => {
                let first_open = done.iter().position(|d| !d).unwrap_or(batch.len());
                let mut batch = batch;
                let rest = batch.split_off(first_open);
                if let Some(last) = batch.pop() {
                    last.ack().await?;
                }
                if let Some(Ack::Embedded(h)) = rest.first().map(|d| &d.ack) {
                    c.rewind(h.position);
                    tokio::time::sleep(delay).await;
                }
                Ok(())
            }
            Consumer::Nats(_) => {
                let mut handed_back = false;
                for (d, ok) in batch.into_iter().zip(done) {
                    if *ok {
                        d.ack().await?;
                    } else if let Ack::Nats(m) = &d.ack {
                        // No server-side delay: delayed redeliveries would come back one by one,
                        // interleaved with newer events, instead of in order ahead of them.
                        nats::nak(m).await?;
                        handed_back = true;
                    }
                }
                if handed_back {
                    tokio::time::sleep(delay).await;
                }
                Ok(())
            }
        }
    }

    /// How many events wait for this consumer (its lag).
    pub async fn pending(&mut self) -> Result<u64, BusError> {
        match self {
            Consumer::Embedded(c) => Ok(c.pending()),
            Consumer::Nats(c) => c.pending().await,
        }
    }
}

/// A delivered event; acknowledge it once its effect is committed.
#[derive(Debug)]
pub struct Delivery {
    pub envelope: Envelope,
    /// 1 on the first delivery, then counting redeliveries.
    pub attempt: u64,
    ack: Ack,
}

#[derive(Debug)]
enum Ack {
    Embedded(embedded::AckHandle),
    Nats(Box<async_nats::jetstream::Message>),
}

impl Delivery {
    pub async fn ack(self) -> Result<(), BusError> {
        match self.ack {
            Ack::Embedded(h) => {
                h.ack();
                Ok(())
            }
            Ack::Nats(m) => m.ack().await.map_err(|e| BusError::Bus(e.to_string())),
        }
    }
}
