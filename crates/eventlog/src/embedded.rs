//! The in-process bus: one ordered log shared by the consumers of the process.
//!
//! The outbox is the durable record; this bus only carries events from the relay to the
//! consumers running in the same process. It keeps an event until every declared consumer has
//! acknowledged it, and remembers event ids for a bounded de-duplication window (like
//! JetStream's), so memory stays flat however long the process runs.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use uuid::Uuid;

use crate::{Ack, Delivery, Envelope};

/// How many recent event ids are remembered to drop republished events.
pub const DEDUPE_WINDOW: usize = 100_000;

#[derive(Debug, Default)]
struct State {
    /// Retained events; `log[0]` is at absolute position `start`.
    log: VecDeque<Envelope>,
    start: usize,
    seen: HashSet<Uuid>,
    seen_order: VecDeque<Uuid>,
    /// Per consumer name: the absolute position up to which it has acknowledged.
    acked: HashMap<String, usize>,
    /// Consumers whose acknowledgement events wait for.
    declared: Vec<String>,
    /// Events every declared consumer has acknowledged, until their relay claims them.
    done: HashSet<Uuid>,
}

impl State {
    fn end(&self) -> usize {
        self.start + self.log.len()
    }

    /// Drops the events every declared consumer has acknowledged; true when any was.
    fn trim(&mut self) -> bool {
        let before = self.start;
        let keep_from = self
            .declared
            .iter()
            .map(|n| self.acked.get(n).copied().unwrap_or(0))
            .min()
            .unwrap_or(self.end());
        while self.start < keep_from {
            let Some(e) = self.log.pop_front() else {
                break;
            };
            self.done.insert(e.event_id);
            self.start += 1;
        }
        self.start > before
    }
}

/// An in-process bus. Cloning shares it.
#[derive(Debug, Clone, Default)]
pub struct EmbeddedBus {
    state: Arc<Mutex<State>>,
    notify: Arc<Notify>,
    /// Given when events become done (every declared consumer has them): the relay marks
    /// their outbox rows then, instead of looking every few milliseconds.
    done_notify: Arc<Notify>,
}

impl EmbeddedBus {
    /// A bus whose events wait for the acknowledgement of each of `consumers`. A consumer not
    /// declared here reads from the oldest event still retained.
    pub fn new(consumers: &[&str]) -> EmbeddedBus {
        let state = State {
            declared: consumers.iter().map(|c| (*c).to_owned()).collect(),
            ..State::default()
        };
        EmbeddedBus {
            state: Arc::new(Mutex::new(state)),
            notify: Arc::new(Notify::new()),
            done_notify: Arc::new(Notify::new()),
        }
    }

    pub(crate) fn publish(&self, e: &Envelope) {
        if let Ok(mut s) = self.state.lock()
            && s.seen.insert(e.event_id)
        {
            s.seen_order.push_back(e.event_id);
            if s.seen_order.len() > DEDUPE_WINDOW
                && let Some(old) = s.seen_order.pop_front()
            {
                s.seen.remove(&old);
            }
            s.log.push_back(e.clone());
            if s.trim() {
                self.done_notify.notify_one();
            }
        }
        self.notify.notify_waiters();
    }

    pub(crate) fn consumer(&self, name: &str, filter: Option<&str>) -> EmbeddedConsumer {
        let from = self
            .state
            .lock()
            .map(|s| s.acked.get(name).copied().unwrap_or(0).max(s.start))
            .unwrap_or(0);
        EmbeddedConsumer {
            bus: self.clone(),
            name: name.to_owned(),
            filter: filter.map(str::to_owned),
            next: from,
            attempts: HashMap::new(),
        }
    }

    /// Which of `ids` every declared consumer has acknowledged; they are forgotten here. The
    /// relay marks their outbox rows published only then: the bus lives in memory, so an event
    /// published but not yet consumed when the process dies is published again at the next
    /// start, and the consumers' inboxes skip what they had applied.
    pub fn take_done(&self, ids: &[Uuid]) -> Vec<Uuid> {
        let Ok(mut s) = self.state.lock() else {
            return Vec::new();
        };
        ids.iter().filter(|id| s.done.remove(id)).copied().collect()
    }

    /// Waits until events have become done since the last call (see [`EmbeddedBus::take_done`]).
    pub async fn wait_done(&self) {
        self.done_notify.notified().await;
    }

    /// Events retained in memory (for metrics and tests).
    pub fn retained(&self) -> usize {
        self.state.lock().map(|s| s.log.len()).unwrap_or(0)
    }
}

/// A handle on a named consumer of the embedded bus.
#[derive(Debug)]
pub struct EmbeddedConsumer {
    bus: EmbeddedBus,
    name: String,
    /// The event type prefix this consumer reads; `None`: all.
    filter: Option<String>,
    next: usize,
    /// Deliveries per position not yet acknowledged.
    attempts: HashMap<usize, u64>,
}

impl EmbeddedConsumer {
    fn wants(&self, e: &Envelope) -> bool {
        self.filter
            .as_deref()
            .is_none_or(|f| e.event_type.starts_with(f))
    }

    /// Up to `max` events in order, waiting up to `wait` for the first.
    pub(crate) async fn next_batch(&mut self, max: usize, wait: Duration) -> Vec<Delivery> {
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            let notified = self.bus.notify.notified();
            let mut out = Vec::new();
            if let Ok(mut s) = self.bus.state.lock() {
                let mut at = self.next.max(s.start);
                while out.len() < max {
                    let Some(e) = s.log.get(at - s.start) else {
                        break;
                    };
                    if self.wants(e) {
                        let ack = AckHandle {
                            bus: self.bus.clone(),
                            name: self.name.clone(),
                            position: at,
                            through: at,
                        };
                        let attempt = self.attempts.entry(at).or_insert(0);
                        *attempt += 1;
                        out.push(Delivery {
                            envelope: e.clone(),
                            attempt: *attempt,
                            ack: Ack::Embedded(ack),
                        });
                    } else if out.is_empty() && s.acked.get(&self.name).copied().unwrap_or(0) >= at
                    {
                        // Nothing of ours is in flight: a filtered-out event counts as read.
                        s.acked.insert(self.name.clone(), at + 1);
                    }
                    at += 1;
                }
                self.next = at;
                let acked = s.acked.get(&self.name).copied().unwrap_or(0);
                self.attempts.retain(|p, _| *p >= acked);
                // Filtered-out events after the last delivery are acknowledged with it.
                if let Some(Delivery {
                    ack: Ack::Embedded(h),
                    ..
                }) = out.last_mut()
                {
                    h.through = at - 1;
                }
                if s.trim() {
                    self.bus.done_notify.notify_one();
                }
            }
            if !out.is_empty() {
                return out;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return out;
            }
        }
    }

    /// Delivers `position` and everything after it again.
    pub(crate) fn rewind(&mut self, position: usize) {
        self.next = self.next.min(position);
    }

    /// Events after this consumer's acknowledged position (filtered-out ones included).
    pub(crate) fn pending(&self) -> u64 {
        self.bus
            .state
            .lock()
            .map(|s| (s.end() - s.acked.get(&self.name).copied().unwrap_or(0).max(s.start)) as u64)
            .unwrap_or(0)
    }
}

/// Acknowledges one position of one consumer. Acknowledging n acknowledges everything before it:
/// consumers process in order.
#[derive(Debug)]
pub struct AckHandle {
    bus: EmbeddedBus,
    name: String,
    pub(crate) position: usize,
    through: usize,
}

impl AckHandle {
    pub(crate) fn ack(self) {
        if let Ok(mut s) = self.bus.state.lock() {
            let acked = s.acked.entry(self.name).or_insert(0);
            *acked = (*acked).max(self.through + 1);
            if s.trim() {
                self.bus.done_notify.notify_one();
            }
        }
    }
}
