//! Open `Watch` streams (订阅流): how many a key and a server may hold, and their end when their
//! key is revoked.
//!
//! Each stream holds a [`StreamPermit`] from the server's [`StreamLimits`]: at most `per_key` per
//! API key and `total` per process, so one agency's system (or a leaked key) cannot hold every
//! connection a server has. Every second a stream's key is authenticated again; once it is
//! revoked the stream ends with `UNAUTHENTICATED` — in every process, since each checks the
//! shared key store.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use banli_api::{AppError, ErrorCode};
use tokio_stream::Stream;
use tonic::Status;
use uuid::Uuid;

/// How often an open stream's key is authenticated again.
pub const RECHECK: Duration = Duration::from_secs(1);

/// The stream limits of one process.
#[derive(Debug)]
pub struct StreamLimits {
    per_key: usize,
    total: usize,
    open: Mutex<(usize, HashMap<Uuid, usize>)>,
}

impl Default for StreamLimits {
    fn default() -> StreamLimits {
        StreamLimits::new(8, 1000)
    }
}

impl StreamLimits {
    pub fn new(per_key: usize, total: usize) -> StreamLimits {
        StreamLimits {
            per_key: per_key.max(1),
            total: total.max(1),
            open: Mutex::new((0, HashMap::new())),
        }
    }

    /// Streams open now: (all, of `key`).
    pub fn open(&self, key: Uuid) -> (usize, usize) {
        self.open
            .lock()
            .map(|o| (o.0, o.1.get(&key).copied().unwrap_or(0)))
            .unwrap_or((0, 0))
    }

    /// A permit for one more stream of `key`, or `limit_reached` saying which limit.
    pub fn acquire(self: &Arc<Self>, key: Uuid) -> Result<StreamPermit, AppError> {
        let mut open = self
            .open
            .lock()
            .map_err(|_| AppError::internal(&"the stream limits' lock is poisoned"))?;
        let of_key = open.1.get(&key).copied().unwrap_or(0);
        if of_key >= self.per_key {
            return Err(AppError::new(
                ErrorCode::LimitReached,
                format!(
                    "this key has {of_key} open Watch streams, the most a key may hold \
                     (watch_streams_per_key); close one, or resume from its last cursor"
                ),
            ));
        }
        if open.0 >= self.total {
            return Err(AppError::new(
                ErrorCode::LimitReached,
                format!(
                    "this server has {} open Watch streams, its most (watch_streams_max); \
                     retry later, or read the feed in pages",
                    open.0
                ),
            ));
        }
        open.0 += 1;
        *open.1.entry(key).or_default() += 1;
        Ok(StreamPermit {
            limits: self.clone(),
            key,
        })
    }
}

/// One open stream's place in the limits, given back when the stream is dropped.
#[derive(Debug)]
pub struct StreamPermit {
    limits: Arc<StreamLimits>,
    key: Uuid,
}

impl Drop for StreamPermit {
    fn drop(&mut self) {
        if let Ok(mut open) = self.limits.open.lock() {
            open.0 = open.0.saturating_sub(1);
            if let Some(n) = open.1.get_mut(&self.key) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    open.1.remove(&self.key);
                }
            }
        }
    }
}

/// A stream of items that ends, after one last error, when `end` fires (its key was revoked),
/// and holds its permit while it lives.
pub struct Guarded<S> {
    inner: S,
    end: Option<tokio::sync::oneshot::Receiver<Status>>,
    ended: bool,
    _permit: StreamPermit,
}

impl<S> std::fmt::Debug for Guarded<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guarded")
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

impl<S> Guarded<S> {
    pub fn new(
        inner: S,
        end: tokio::sync::oneshot::Receiver<Status>,
        permit: StreamPermit,
    ) -> Guarded<S> {
        Guarded {
            inner,
            end: Some(end),
            ended: false,
            _permit: permit,
        }
    }
}

impl<S, T> Stream for Guarded<S>
where
    S: Stream<Item = Result<T, Status>> + Unpin,
{
    type Item = Result<T, Status>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.ended {
            return Poll::Ready(None);
        }
        if let Some(end) = this.end.as_mut()
            && let Poll::Ready(r) = Pin::new(end).poll(cx)
        {
            this.end = None;
            if let Ok(status) = r {
                this.ended = true;
                return Poll::Ready(Some(Err(status)));
            }
        }
        Pin::new(&mut this.inner).poll_next(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_per_key_and_per_server_and_permits_give_back() {
        let limits = Arc::new(StreamLimits::new(2, 3));
        let (a, b) = (Uuid::now_v7(), Uuid::now_v7());
        let a1 = limits.acquire(a).expect("a1");
        let a2 = limits.acquire(a).expect("a2");
        let e = limits.acquire(a).expect_err("a key's third");
        assert!(e.detail.contains("watch_streams_per_key"), "{e:?}");
        assert_eq!(e.code, ErrorCode::LimitReached);
        let b1 = limits.acquire(b).expect("b1");
        let e = limits
            .acquire(Uuid::now_v7())
            .expect_err("the server's fourth");
        assert!(e.detail.contains("watch_streams_max"), "{e:?}");
        assert_eq!(limits.open(a), (3, 2));
        drop(a1);
        assert_eq!(limits.open(a), (2, 1));
        let _a3 = limits.acquire(a).expect("room again");
        drop((a2, b1));
        assert_eq!(limits.open(b), (1, 0));
    }
}
