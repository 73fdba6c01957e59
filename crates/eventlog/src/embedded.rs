//! The in-process bus: one ordered log shared by every consumer of the process.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use uuid::Uuid;

use crate::{Ack, Delivery, Envelope};

#[derive(Debug, Default)]
struct State {
    log: Vec<Envelope>,
    seen: HashSet<Uuid>,
    /// Per consumer name: how many events from the start are acknowledged.
    acked: HashMap<String, usize>,
}

/// An in-process bus. Cloning shares it.
#[derive(Debug, Clone, Default)]
pub struct EmbeddedBus {
    state: Arc<Mutex<State>>,
    notify: Arc<Notify>,
}

impl EmbeddedBus {
    pub fn new() -> EmbeddedBus {
        EmbeddedBus::default()
    }

    pub(crate) fn publish(&self, e: &Envelope) {
        if let Ok(mut s) = self.state.lock()
            && s.seen.insert(e.event_id)
        {
            s.log.push(e.clone());
        }
        self.notify.notify_waiters();
    }

    pub(crate) fn consumer(&self, name: &str) -> EmbeddedConsumer {
        let from = self
            .state
            .lock()
            .map(|s| s.acked.get(name).copied().unwrap_or(0))
            .unwrap_or(0);
        EmbeddedConsumer {
            bus: self.clone(),
            name: name.to_owned(),
            next: from,
        }
    }
}

/// A handle on a named consumer of the embedded bus.
#[derive(Debug)]
pub struct EmbeddedConsumer {
    bus: EmbeddedBus,
    name: String,
    next: usize,
}

impl EmbeddedConsumer {
    pub(crate) async fn next(&mut self, wait: Duration) -> Option<Delivery> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let notified = self.bus.notify.notified();
            let found = self
                .bus
                .state
                .lock()
                .ok()
                .and_then(|s| s.log.get(self.next).cloned());
            if let Some(envelope) = found {
                let position = self.next;
                self.next += 1;
                let ack = AckHandle {
                    bus: self.bus.clone(),
                    name: self.name.clone(),
                    position,
                };
                return Some(Delivery {
                    envelope,
                    ack: Ack::Embedded(ack),
                });
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return None;
            }
        }
    }
}

/// Acknowledges one position of one consumer. Acknowledging n acknowledges everything before it:
/// consumers process in order.
#[derive(Debug)]
pub struct AckHandle {
    bus: EmbeddedBus,
    name: String,
    position: usize,
}

impl AckHandle {
    pub(crate) fn ack(self) {
        if let Ok(mut s) = self.bus.state.lock() {
            let acked = s.acked.entry(self.name).or_insert(0);
            *acked = (*acked).max(self.position + 1);
        }
    }
}
