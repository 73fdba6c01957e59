//! Commit signals: "rows were committed to this table" for the tasks that wait on it — the
//! relay on its outbox, feed streams and webhook delivery on the feed, a timer runner on its
//! timers — in this process at once, and, on PostgreSQL, in every other process on the same
//! database through `LISTEN`/`NOTIFY` (a replica of the same service, another host), so that no
//! one polls to find another process's writes.
//!
//! A process that starts listening says hello on each channel and the others answer: a signal
//! sends `NOTIFY`s only once another process listens on its channel (a lone process, or one
//! whose tables no other process shares, sends none).
//!
//! A writer calls [`Signal::raise`] after its commit. Raises made while the previous `NOTIFY`
//! is on its way, or within [`SPACING`] after it, are coalesced into one more (a waiter only needs to know that something
//! changed since it last looked; it then reads the table). A process ignores its own
//! notifications (it has already woken its waiters). When the listening connection is lost and
//! comes back, every signal is raised locally once: a notification sent in between is gone, so
//! waiters look again.
//!
//! On SQLite a database file belongs to one process: signals stay in the process.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use sqlx::postgres::PgListener;
use tokio::sync::{Notify, watch};

use crate::Pool;

/// The shortest time between two `NOTIFY`s of one signal: raises in between wait for it and
/// go as one. Bounds the cost under load to 100 statements a second per signal, and adds at most
/// this much to another process's wake-up.
pub const SPACING: Duration = Duration::from_millis(10);

/// One table's "rows were committed" signal.
#[derive(Debug, Clone)]
pub struct Signal(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    /// The PostgreSQL channel: `banli_` and the name.
    channel: String,
    /// Bumped on every commit seen, here or (when shared) in another process.
    seen: watch::Sender<u64>,
    /// Raises in this process not yet told to the other processes.
    outgoing: Notify,
    /// Whether another process listens on this channel (it said so): until one does, a raise
    /// sends nothing to the database.
    peers: AtomicBool,
}

impl Signal {
    /// `name` is a fixed identifier (lowercase letters and underscores), never input: usually
    /// the table the signal is about.
    pub fn new(name: &'static str) -> Signal {
        assert!(
            name.bytes().all(|b| b.is_ascii_lowercase() || b == b'_'),
            "a signal's name is lowercase letters and underscores"
        );
        Signal(Arc::new(Inner {
            channel: format!("banli_{name}"),
            seen: watch::channel(0).0,
            outgoing: Notify::new(),
            peers: AtomicBool::new(false),
        }))
    }

    /// The `LISTEN`/`NOTIFY` channel this signal travels on between processes.
    pub fn channel(&self) -> &str {
        &self.0.channel
    }

    /// Tells every waiter, here and (when shared) in the other processes, that rows were
    /// committed. Call after the commit; never blocks.
    pub fn raise(&self) {
        self.bump();
        if self.0.peers.load(Ordering::Relaxed) {
            self.0.outgoing.notify_one();
        }
    }

    /// Wakes this process's waiters only.
    fn bump(&self) {
        self.0.seen.send_modify(|n| *n = n.wrapping_add(1));
    }

    /// Whether another process listening on this signal's channel has made itself known.
    pub fn has_peers(&self) -> bool {
        self.0.peers.load(Ordering::Relaxed)
    }

    /// A waiter that returns from [`Waiter::wait`] once the signal was raised since the
    /// waiter was made or last returned.
    pub fn waiter(&self) -> Waiter {
        Waiter(self.0.seen.subscribe())
    }
}

/// Waits for a [`Signal`]; raises while the holder is busy are kept (at most one wake-up).
#[derive(Debug)]
pub struct Waiter(watch::Receiver<u64>);

impl Waiter {
    /// Returns once the signal was raised since the last return (at once if it already was).
    /// Never returns otherwise: the signal lives as long as a waiter holds it.
    pub async fn wait(&mut self) {
        if self.0.changed().await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}

/// Carries `signals` between the processes that share `pool`'s PostgreSQL database, until
/// `stop` resolves: one listening connection, and one `NOTIFY` at a time per signal. Returns
/// `None` on SQLite (nothing to carry: one process per database file).
pub fn share(
    pool: &Pool,
    signals: Vec<Signal>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> Option<tokio::task::JoinHandle<()>> {
    let Pool::Postgres(pg) = pool else {
        return None;
    };
    let pg = pg.clone();
    Some(tokio::spawn(async move {
        // Notifications this process sent carry its instance id and are ignored on the way back.
        let me = uuid::Uuid::now_v7().to_string();
        let mut tasks = tokio::task::JoinSet::new();
        for s in signals.clone() {
            let (pg, me) = (pg.clone(), me.clone());
            tasks.spawn(async move {
                loop {
                    s.0.outgoing.notified().await;
                    if let Err(e) = sqlx::query("SELECT pg_notify($1, $2)")
                        .bind(&s.0.channel)
                        .bind(&me)
                        .execute(&pg)
                        .await
                    {
                        tracing::warn!(channel = %s.0.channel, error = %e, "telling other processes of a commit failed; they find it when their next signal or reconnection comes");
                        tokio::time::sleep(Duration::from_millis(200)).await;
                    }
                    // Under load every commit raises: one NOTIFY per spacing carries them all
                    // (a waiter reads the table, not the notification), and keeps the pool's
                    // connections for the writes.
                    tokio::time::sleep(SPACING).await;
                }
            });
        }
        tokio::select! {
            () = stop => {}
            () = listen(&pg, &signals, &me) => {}
        }
        tasks.abort_all();
    }))
}

/// Wakes the processes listening on `signal`'s channel from a process that does not share
/// signals (a command-line tool that wrote to a running deployment's database). Best effort:
/// the waiters' safety-net looks find the rows anyway. Nothing to do on SQLite.
pub async fn notify_once(pool: &Pool, signal: &Signal) {
    if let Pool::Postgres(pg) = pool {
        say(pg, signal, "outside").await;
    }
}

/// A process that starts listening says so on each channel; the others answer.
const HELLO: &str = "hello:";
const HERE: &str = "here:";

/// Sends `payload` on `signal`'s channel (best effort: a hello is said again at the next
/// reconnection, and the safety-net looks of the waiters cover the time in between).
async fn say(pg: &sqlx::PgPool, signal: &Signal, payload: &str) {
    if let Err(e) = sqlx::query("SELECT pg_notify($1, $2)")
        .bind(signal.channel())
        .bind(payload)
        .execute(pg)
        .await
    {
        tracing::warn!(channel = %signal.channel(), error = %e, "cannot announce this process to the others listening");
    }
}

/// Listens on every signal's channel and wakes this process's waiters; never returns.
async fn listen(pg: &sqlx::PgPool, signals: &[Signal], me: &str) {
    let channels: Vec<&str> = signals.iter().map(|s| s.channel()).collect();
    let mut listener: Option<PgListener> = None;
    loop {
        let l = match &mut listener {
            Some(l) => l,
            None => {
                let connected = async {
                    let mut l = PgListener::connect_with(pg).await?;
                    l.listen_all(channels.iter().copied()).await?;
                    Ok::<_, sqlx::Error>(l)
                }
                .await;
                match connected {
                    Ok(l) => {
                        tracing::debug!(channels = ?channels, "listening for other processes' commits");
                        // Anything sent while this process was not listening is gone: look again.
                        for s in signals {
                            s.bump();
                            // Whoever else listens answers, and so learns of this process.
                            say(pg, s, &format!("{HELLO}{me}")).await;
                        }
                        listener.insert(l)
                    }
                    Err(_) if pg.is_closed() => return std::future::pending().await,
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot listen for other processes' commits; retrying in 1 s (their writes are found when this process writes or restarts)");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        continue;
                    }
                }
            }
        };
        match l.try_recv().await {
            Ok(Some(n)) => {
                let Some(s) = signals.iter().find(|s| s.channel() == n.channel()) else {
                    continue;
                };
                let payload = n.payload();
                if payload.ends_with(me) {
                    continue;
                }
                // Another process listens on this channel: from now on raises tell it.
                // Commits it made before it knew of this one were not announced: look once.
                s.0.peers.store(true, Ordering::Relaxed);
                s.bump();
                if payload.starts_with(HELLO) {
                    say(pg, s, &format!("{HERE}{me}")).await;
                }
            }
            // The connection was lost; try_recv has reconnected and listens again.
            Ok(None) => {
                for s in signals {
                    s.bump();
                    say(pg, s, &format!("{HELLO}{me}")).await;
                }
            }
            Err(_) if pg.is_closed() => return std::future::pending().await,
            Err(e) => {
                tracing::warn!(error = %e, "listening for other processes' commits failed; reconnecting in 1 s");
                listener = None;
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_raise_while_busy_wakes_the_next_wait_once() {
        let s = Signal::new("t");
        let mut w = s.waiter();
        s.raise();
        s.raise();
        // Kept: returns at once.
        tokio::time::timeout(Duration::from_secs(5), w.wait())
            .await
            .expect("a raise before the wait wakes it");
        // Both raises were one wake-up.
        assert!(!w.0.has_changed().expect("the signal lives"));
    }

    #[test]
    #[should_panic(expected = "lowercase")]
    fn a_name_is_an_identifier() {
        let _ = Signal::new("x; DROP");
    }
}
