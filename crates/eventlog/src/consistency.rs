//! Read-your-writes across services (一致性令牌): what a write committed, and the gate a service
//! passes a request through once it has applied what the request's token names.
//!
//! A store calls [`note_written`] after committing events to its outbox; the API layer runs each
//! request inside [`recording`] and turns the positions it collected into the response's token.
//! A service's [`Gate`] knows which aggregate types it owns (their writes are visible at once)
//! and which it learns of through a consumer (a position is reached once that consumer's inbox
//! holds the aggregate at that version or later). Consumers bump the gate's [`Applied`] signal
//! after each committed batch, so a waiting request re-checks at once instead of polling.
//!
//! Must never: decide what a token looks like on the wire (that is the API's) or read another
//! service's tables.

use std::cell::RefCell;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use banli_db::Pool;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::inbox::Inbox;

/// One aggregate at one version: what a write produced, or what a token asks to have applied.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Position {
    /// `suggestion`, `coordination`, `supervision`, `webhook`, …
    pub aggregate_type: String,
    pub aggregate_id: String,
    pub version: u64,
}

impl Position {
    pub fn new(aggregate_type: &str, aggregate_id: &str, version: u64) -> Position {
        Position {
            aggregate_type: aggregate_type.to_owned(),
            aggregate_id: aggregate_id.to_owned(),
            version,
        }
    }
}

/// Merges `more` into `into`, keeping the highest version per aggregate; order: first seen.
pub fn merge(into: &mut Vec<Position>, more: impl IntoIterator<Item = Position>) {
    for p in more {
        match into
            .iter_mut()
            .find(|x| x.aggregate_type == p.aggregate_type && x.aggregate_id == p.aggregate_id)
        {
            Some(x) => x.version = x.version.max(p.version),
            None => into.push(p),
        }
    }
}

tokio::task_local! {
    static WRITTEN: RefCell<Vec<Position>>;
}

/// Records that the current request committed `aggregate_type`/`aggregate_id` up to `version`.
/// Outside [`recording`] (a consumer, a timer) it does nothing.
pub fn note_written(aggregate_type: &str, aggregate_id: &str, version: u64) {
    let _ = WRITTEN.try_with(|w| {
        merge(
            &mut w.borrow_mut(),
            [Position::new(aggregate_type, aggregate_id, version)],
        );
    });
}

/// Runs `f`, returning what it noted with [`note_written`].
pub async fn recording<F: Future>(f: F) -> (F::Output, Vec<Position>) {
    WRITTEN
        .scope(RefCell::new(Vec::new()), async move {
            let out = f.await;
            let written = WRITTEN.with(|w| std::mem::take(&mut *w.borrow_mut()));
            (out, written)
        })
        .await
}

/// The signal a consumer gives after each committed batch, with the positions it committed.
/// Cloning shares it.
///
/// The positions are a bounded in-memory copy of what this process's consumers wrote to their
/// inboxes: a waiting request checks them on every signal without a query. The inbox stays the
/// truth — a position missing here (another replica applied it, the process restarted, the
/// copy was cleared) is looked up there.
#[derive(Debug, Clone)]
pub struct Applied {
    signal: Arc<watch::Sender<u64>>,
    reached: Arc<Mutex<HashMap<Key, u64>>>,
}

/// (consumer, aggregate type, aggregate id)
type Key = (String, String, String);

/// How many positions the in-memory copy holds before it starts again from empty.
const REMEMBERED: usize = 100_000;

impl Default for Applied {
    fn default() -> Self {
        Applied {
            signal: Arc::new(watch::channel(0).0),
            reached: Arc::default(),
        }
    }
}

impl Applied {
    /// A batch was committed.
    pub fn bump(&self) {
        self.signal.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Notes that `consumer`'s inbox now holds these aggregates at (at least) these versions;
    /// call after the batch is committed, before [`Applied::bump`].
    pub fn note(&self, consumer: &str, positions: impl IntoIterator<Item = (String, String, u64)>) {
        let Ok(mut m) = self.reached.lock() else {
            return;
        };
        for (t, id, v) in positions {
            if m.len() >= REMEMBERED {
                m.clear();
            }
            let at = m.entry((consumer.to_owned(), t, id)).or_insert(0);
            *at = (*at).max(v);
        }
    }

    /// The version `consumer` is known (in memory) to have reached for an aggregate.
    fn known(&self, consumer: &str, aggregate_type: &str, aggregate_id: &str) -> Option<u64> {
        let m = self.reached.lock().ok()?;
        m.get(&(
            consumer.to_owned(),
            aggregate_type.to_owned(),
            aggregate_id.to_owned(),
        ))
        .copied()
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.signal.subscribe()
    }
}

/// How a service learns of one aggregate type: a consumer's inbox in its database.
#[derive(Debug, Clone)]
struct Watched {
    aggregate_type: &'static str,
    pool: Pool,
    inbox: Inbox,
}

/// What a service waits on before deciding a request that carries a token.
#[derive(Debug, Clone)]
pub struct Gate {
    own: Vec<&'static str>,
    watched: Vec<Watched>,
    applied: Applied,
    waiting: Arc<Waiting>,
}

/// The requests waiting at a gate, and the one read of the inboxes they share: however many
/// wait, the inboxes are read by one refresh at a time, for every position waited on, so that
/// waiting never multiplies the load on the database that the wait is for.
#[derive(Debug, Default)]
struct Waiting {
    /// (aggregate type, aggregate id) waited on → how many waiting requests name it.
    wanted: Mutex<HashMap<(String, String), usize>>,
    /// The number of the last refresh started.
    started: std::sync::atomic::AtomicU64,
    /// The number of the last refresh completed; held while one runs.
    done: tokio::sync::Mutex<u64>,
}

/// A request's positions in [`Waiting::wanted`], for as long as it waits.
struct Registered<'a> {
    waiting: &'a Waiting,
    keys: Vec<(String, String)>,
}

impl<'a> Registered<'a> {
    fn new(waiting: &'a Waiting, keys: Vec<(String, String)>) -> Registered<'a> {
        if let Ok(mut m) = waiting.wanted.lock() {
            for k in &keys {
                *m.entry(k.clone()).or_insert(0) += 1;
            }
        }
        Registered { waiting, keys }
    }
}

impl Drop for Registered<'_> {
    fn drop(&mut self) {
        if let Ok(mut m) = self.waiting.wanted.lock() {
            for k in &self.keys {
                if let Some(n) = m.get_mut(k) {
                    *n -= 1;
                    if *n == 0 {
                        m.remove(k);
                    }
                }
            }
        }
    }
}

/// How often a waiting request looks again without a signal: another replica of the service
/// may have applied the event (only while a request waits; nothing runs when none does).
const RECHECK: Duration = Duration::from_millis(25);

impl Gate {
    /// A gate for a service that owns the aggregate types `own` (its own writes need no wait).
    pub fn new(own: &[&'static str]) -> Gate {
        Gate {
            own: own.to_vec(),
            watched: Vec::new(),
            applied: Applied::default(),
            waiting: Arc::default(),
        }
    }

    /// Positions of `aggregate_type` are reached once `inbox` (in `pool`) holds them.
    pub fn watch(mut self, aggregate_type: &'static str, pool: Pool, inbox: Inbox) -> Gate {
        self.watched.push(Watched {
            aggregate_type,
            pool,
            inbox,
        });
        self
    }

    /// How many times waiting requests have read the inboxes (one refresh serves them all).
    pub fn refreshes(&self) -> u64 {
        self.waiting
            .started
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The signal the service's consumers bump after each committed batch.
    pub fn applied(&self) -> &Applied {
        &self.applied
    }

    /// Whether this service has applied `p`: own types and types it never consumes at once,
    /// the rest once this process's note of its consumers' inboxes holds it (see
    /// [`Gate::refresh`] for what the note learns from the inboxes).
    fn reached(&self, p: &Position) -> bool {
        if self.own.contains(&p.aggregate_type.as_str()) {
            return true;
        }
        self.watched
            .iter()
            .filter(|w| w.aggregate_type == p.aggregate_type)
            .all(|w| {
                self.applied
                    .known(w.inbox.consumer(), &p.aggregate_type, &p.aggregate_id)
                    .unwrap_or(0)
                    >= p.version
            })
    }

    /// Reads the inboxes for every position any request waits on, in one query per inbox, into
    /// the in-memory note, and wakes the waiters — unless a refresh that started after `since`
    /// (a value of [`Waiting::started`]) has completed meanwhile: then its answer stands.
    async fn refresh(&self, since: u64) -> Result<(), sqlx::Error> {
        use std::sync::atomic::Ordering::SeqCst;
        let mut done = self.waiting.done.lock().await;
        if *done > since {
            return Ok(());
        }
        let number = self.waiting.started.fetch_add(1, SeqCst) + 1;
        let keys: Vec<(String, String)> = match self.waiting.wanted.lock() {
            Ok(m) => m.keys().cloned().collect(),
            Err(_) => Vec::new(),
        };
        for w in &self.watched {
            let mine: Vec<(String, String)> = keys
                .iter()
                .filter(|(t, _)| t == w.aggregate_type)
                .cloned()
                .collect();
            if mine.is_empty() {
                continue;
            }
            let rows = w.inbox.positions_on(&w.pool, &mine).await?;
            self.applied.note(w.inbox.consumer(), rows);
        }
        *done = number;
        drop(done);
        self.applied.bump();
        Ok(())
    }

    /// Waits until every position is reached, or `deadline`; true when reached. What this
    /// process's consumers apply is seen at once (their signal); the inboxes are read when the
    /// wait begins and after each quiet [`RECHECK`] (another replica may have applied the
    /// events, or this process restarted since), by one shared refresh for all waiters.
    pub async fn wait(
        &self,
        positions: &[Position],
        deadline: Instant,
    ) -> Result<bool, sqlx::Error> {
        use std::sync::atomic::Ordering::SeqCst;
        if positions.iter().all(|p| self.reached(p)) {
            return Ok(true);
        }
        let mut signal = self.applied.subscribe();
        let keys = positions
            .iter()
            .filter(|p| !self.own.contains(&p.aggregate_type.as_str()))
            .map(|p| (p.aggregate_type.clone(), p.aggregate_id.clone()))
            .collect();
        let _registered = Registered::new(&self.waiting, keys);
        let mut since = self.waiting.started.load(SeqCst);
        let mut ask_inbox = true;
        loop {
            if ask_inbox {
                self.refresh(since).await?;
            }
            signal.borrow_and_update();
            if positions.iter().all(|p| self.reached(p)) {
                return Ok(true);
            }
            let now = Instant::now();
            if now >= deadline {
                return Ok(false);
            }
            // A signal: check memory; a quiet RECHECK: ask the inboxes.
            since = self.waiting.started.load(SeqCst);
            ask_inbox = tokio::time::timeout_at(deadline.min(now + RECHECK), signal.changed())
                .await
                .is_err();
        }
    }

    /// Calls `find` now and again after each batch a consumer of this service commits (and at
    /// least every 25 ms), until it finds something or `deadline` passes.
    pub async fn wait_for<T, E, F, Fut>(
        &self,
        deadline: Instant,
        mut find: F,
    ) -> Result<Option<T>, E>
    where
        F: FnMut() -> Fut,
        Fut: Future<Output = Result<Option<T>, E>>,
    {
        let mut signal = self.applied.subscribe();
        loop {
            signal.borrow_and_update();
            if let Some(found) = find().await? {
                return Ok(Some(found));
            }
            if !pause(&mut signal, deadline).await {
                return Ok(None);
            }
        }
    }
}

/// Waits for the next signal (at most [`RECHECK`]); false once `deadline` has passed.
async fn pause(signal: &mut watch::Receiver<u64>, deadline: Instant) -> bool {
    let now = Instant::now();
    if now >= deadline {
        return false;
    }
    let _ = tokio::time::timeout_at(deadline.min(now + RECHECK), signal.changed()).await;
    true
}
