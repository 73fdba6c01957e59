//! The delivery worker: claims due endpoints (a lease, so replicas never deliver one endpoint at
//! once), posts each feed item after the endpoint's cursor in order, signed, and moves the
//! cursor on each 2xx. A failure (no answer within the timeout, or any other status) is logged,
//! the endpoint waits with exponential backoff and jitter, and one failing for longer than the
//! policy allows is disabled with a `webhook.disabled` event in its agency's feed. Endpoints are
//! delivered concurrently, so a slow or failing receiver holds only its own slot.

use std::sync::Arc;
use std::time::{Duration, Instant};

use banli_domain::ids::AgencyId;
use http_body_util::Full;
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::task::JoinSet;

use super::sign::{DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, signature_header};
use super::store::{DeliveryRow, EndpointRow};
use super::{SecretKey, now_ms, random_bytes};
use crate::feed::FeedEntry;
use crate::store::{Store, StoreError};

/// The most of a receiver's answer read (and dropped). Beyond it nothing more is read and the
/// connection is not reused: an agency's receiver answering with gigabytes costs this much.
pub const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// Reads a receiver's answer to its end — at most `limit` bytes, for at most `within` — and
/// drops it; `true` when it ended in time within the limit (the connection may be reused).
pub async fn drain<B>(body: B, limit: usize, within: Duration) -> bool
where
    B: hyper::body::Body,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let limited = http_body_util::Limited::new(body, limit);
    matches!(
        tokio::time::timeout(within, http_body_util::BodyExt::collect(limited)).await,
        Ok(Ok(_))
    )
}

/// How deliveries are retried and when an endpoint is given up.
#[derive(Debug, Clone)]
pub struct Policy {
    /// How long a receiver has to answer.
    pub timeout: Duration,
    /// The wait after the first failure; it doubles with each further one.
    pub first_retry: Duration,
    pub max_backoff: Duration,
    /// An endpoint failing for this long is disabled (at least 24 hours in production).
    pub disable_after: Duration,
    /// Items per claim of an endpoint.
    pub batch: u32,
    /// Endpoints delivered at once.
    pub concurrency: usize,
    /// How long a claim holds an endpoint.
    pub lease: Duration,
    /// How long the delivery log keeps an attempt.
    pub log_retention: Duration,
}

impl Default for Policy {
    fn default() -> Policy {
        Policy {
            timeout: Duration::from_secs(10),
            first_retry: Duration::from_secs(10),
            max_backoff: Duration::from_secs(3600),
            disable_after: Duration::from_secs(72 * 3600),
            batch: 100,
            concurrency: 64,
            lease: Duration::from_secs(120),
            log_retention: Duration::from_secs(30 * 24 * 3600),
        }
    }
}

impl Policy {
    /// The wait after `failures` consecutive failures, `jitter` in [0, 1): the doubled delay,
    /// capped, times 0.5 to 1.5.
    pub fn backoff(&self, failures: u32, jitter: f64) -> Duration {
        let doubled = self
            .first_retry
            .saturating_mul(1u32 << failures.saturating_sub(1).min(20));
        doubled.min(self.max_backoff).mul_f64(0.5 + jitter)
    }
}

type HttpClient = Client<hyper_rustls::HttpsConnector<HttpConnector>, Full<Bytes>>;

/// The worker of one process.
#[derive(Debug, Clone)]
pub struct Deliverer {
    store: Store,
    key: Arc<SecretKey>,
    policy: Policy,
    owner: String,
    client: HttpClient,
}

fn jitter() -> f64 {
    let b = random_bytes::<8>().unwrap_or([0x80; 8]);
    (u64::from_le_bytes(b) >> 11) as f64 / (1u64 << 53) as f64
}

impl Deliverer {
    pub fn new(store: Store, key: Arc<SecretKey>, policy: Policy) -> Result<Deliverer, String> {
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
            .map_err(|e| format!("TLS for webhooks: {e}"))?
            .https_or_http()
            .enable_http1()
            .build();
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(https);
        Ok(Deliverer {
            store,
            key,
            policy,
            owner: format!("webhooks-{}", uuid::Uuid::now_v7()),
            client,
        })
    }

    /// Delivers until `stop` completes.
    pub async fn run(self, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        let mut written = self.store.feed_watch();
        let mut running: JoinSet<()> = JoinSet::new();
        let mut purged: Option<Instant> = None;
        loop {
            // Hourly: the delivery log keeps the policy's retention.
            if purged.is_none_or(|t| t.elapsed() > Duration::from_secs(3600)) {
                purged = Some(Instant::now());
                let before = now_ms() - self.policy.log_retention.as_millis() as i64;
                match self.store.purge_webhook_deliveries(before).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(removed = n, "webhook delivery log purged"),
                    Err(e) => {
                        tracing::warn!(error = %e, "purging the webhook delivery log failed; retried in an hour")
                    }
                }
            }
            let room = self.policy.concurrency.saturating_sub(running.len());
            if room > 0 {
                let now = now_ms();
                let until = now + self.policy.lease.as_millis() as i64;
                match self
                    .store
                    .claim_webhooks(&self.owner, now, until, room as u32)
                    .await
                {
                    Ok(claimed) => {
                        // A claim succeeds only for an endpoint no task holds: a task keeps its
                        // lease until its last write, and stops well before the lease ends.
                        for ep in claimed {
                            let me = self.clone();
                            running.spawn(async move {
                                let id = ep.id.clone();
                                if let Err(e) = me.deliver(ep).await {
                                    tracing::error!(endpoint = %id, error = %e, "webhook delivery stopped on a storage error; the lease expires and it is retried");
                                }
                            });
                        }
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "claiming webhook endpoints failed; retrying")
                    }
                }
            }
            tokio::select! {
                _ = &mut stop => break,
                () = written.wait() => {}
                Some(_) = running.join_next() => {}
                // Retries fall due on their own (after `first_retry` at the soonest): look for
                // them that often, every 2 s at most.
                _ = tokio::time::sleep(self.policy.first_retry.min(Duration::from_secs(2))) => {}
            }
        }
        running.abort_all();
    }

    /// One claimed endpoint: its items after the cursor, in order, until one fails.
    async fn deliver(&self, ep: EndpointRow) -> Result<(), StoreError> {
        let agency = AgencyId(
            ep.agency_id
                .parse()
                .map_err(|_| StoreError::Corrupt("a webhook's agency id".into()))?,
        );
        let types = ep.types();
        let rows = self
            .store
            .feed(agency, ep.cursor, self.policy.batch)
            .await?;
        let mut secrets = Vec::new();
        for s in self.store.webhook_secrets(&ep.id, now_ms()).await? {
            match self.key.open(&s) {
                Ok(plain) => secrets.push(plain),
                Err(e) => {
                    tracing::error!(endpoint = %ep.id, error = %e, "a webhook secret cannot be opened")
                }
            }
        }
        let claimed_at = Instant::now();
        for row in rows {
            // Give the endpoint back well before the lease ends (a slow receiver): the next
            // claim goes on from the cursor.
            if claimed_at.elapsed() + self.policy.timeout > self.policy.lease / 2 {
                break;
            }
            let seq = row.seq;
            if !types.is_empty() && !types.contains(&row.event_type) {
                if !self
                    .store
                    .webhook_delivered(&ep.id, &self.owner, seq, None)
                    .await?
                {
                    return Ok(());
                }
                continue;
            }
            let (event_id, event_type) = (row.event_id.clone(), row.event_type.clone());
            let item = row.item(agency)?;
            let body = serde_json::to_vec(&item)
                .map_err(|e| StoreError::Corrupt(format!("a feed item: {e}")))?;
            let started = Instant::now();
            let outcome = if secrets.is_empty() {
                Err("no signing secret can be opened with this service's webhook key; rotate the secret".to_owned())
            } else {
                self.post(&ep.url, &secrets, &event_id, &event_type, body)
                    .await
            };
            let at = now_ms();
            let attempt = DeliveryRow {
                id: uuid::Uuid::now_v7().to_string(),
                endpoint_id: ep.id.clone(),
                event_id,
                event_type,
                seq,
                attempt: ep.failures + 1,
                status: outcome.as_ref().ok().map(|s| i32::from(*s)),
                error: match &outcome {
                    Ok(s) if (200..300).contains(s) => None,
                    Ok(s) => Some(format!("the receiver answered {s}")),
                    Err(e) => Some(e.clone()),
                },
                duration_ms: started.elapsed().as_millis() as i64,
                at,
            };
            if attempt.error.is_none() {
                if !self
                    .store
                    .webhook_delivered(&ep.id, &self.owner, seq, Some(attempt))
                    .await?
                {
                    return Ok(());
                }
                continue;
            }
            let failures = (ep.failures + 1).max(1) as u32;
            let since = ep.failing_since.unwrap_or(at);
            let next = at + self.policy.backoff(failures, jitter()).as_millis() as i64;
            let give_up = at - since >= self.policy.disable_after.as_millis() as i64;
            tracing::warn!(endpoint = %ep.id, url = %ep.url, failures, error = attempt.error.as_deref().unwrap_or(""), disabled = give_up, "a webhook delivery failed; it is retried with backoff");
            let disable = give_up.then(|| {
                let reason = format!(
                    "disabled after {failures} failed attempts over {} hours; the last: {}",
                    (at - since) / 3_600_000,
                    attempt.error.as_deref().unwrap_or("")
                );
                let payload = serde_json::json!({
                    "type": "disabled",
                    "data": {"endpoint_id": ep.id, "url": ep.url, "reason": reason, "failures": failures,
                             "failing_since": super::rfc3339(since)},
                });
                (
                    reason,
                    FeedEntry {
                        agency_id: agency,
                        event_id: uuid::Uuid::now_v7(),
                        event_type: "webhook.disabled".into(),
                        aggregate_type: "webhook".into(),
                        aggregate_id: ep.id.clone(),
                        aggregate_version: (ep.version + 1).max(1) as u64,
                        occurred_at: super::rfc3339(at),
                        payload: payload.to_string(),
                    },
                )
            });
            self.store
                .webhook_failed(&ep.id, &self.owner, attempt, next, disable)
                .await?;
            return Ok(());
        }
        self.store.release_webhook(&ep.id, &self.owner).await
    }

    /// POSTs one signed delivery; the receiver's status, or why there was none.
    async fn post(
        &self,
        url: &str,
        secrets: &[Vec<u8>],
        event_id: &str,
        event_type: &str,
        body: Vec<u8>,
    ) -> Result<u16, String> {
        let t = time::OffsetDateTime::now_utc().unix_timestamp();
        let refs: Vec<&[u8]> = secrets.iter().map(Vec::as_slice).collect();
        let signature = signature_header(&refs, t, &body);
        let req = hyper::Request::post(url)
            .header("content-type", "application/json")
            .header("user-agent", "banli-webhooks/1")
            .header(SIGNATURE_HEADER, signature)
            .header(DELIVERY_HEADER, event_id)
            .header(EVENT_HEADER, event_type)
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| format!("the request cannot be built: {e}"))?;
        match tokio::time::timeout(self.policy.timeout, self.client.request(req)).await {
            Err(_) => Err(format!(
                "no answer within {} s",
                self.policy.timeout.as_secs_f64()
            )),
            Ok(Err(e)) => Err(format!("cannot reach the receiver: {e}")),
            Ok(Ok(res)) => {
                let status = res.status().as_u16();
                // Read (and drop) the answer so the connection can be reused — at most
                // MAX_RESPONSE_BYTES of it: a receiver answering without end holds no memory.
                drain(res.into_body(), MAX_RESPONSE_BYTES, self.policy.timeout).await;
                Ok(status)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::pin::Pin;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Context, Poll};

    /// A receiver's answer that never ends, counting what was read of it.
    struct Endless(Arc<AtomicUsize>);

    impl hyper::body::Body for Endless {
        type Data = Bytes;
        type Error = std::convert::Infallible;

        fn poll_frame(
            self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
            const CHUNK: usize = 16 * 1024;
            self.0.fetch_add(CHUNK, Ordering::SeqCst);
            Poll::Ready(Some(Ok(hyper::body::Frame::data(Bytes::from_static(
                &[b'x'; CHUNK],
            )))))
        }
    }

    #[tokio::test]
    async fn an_endless_answer_is_read_only_up_to_the_cap() {
        let read = Arc::new(AtomicUsize::new(0));
        let whole = drain(
            Endless(read.clone()),
            MAX_RESPONSE_BYTES,
            Duration::from_secs(30),
        )
        .await;
        assert!(!whole, "an endless answer is not read to its end");
        let n = read.load(Ordering::SeqCst);
        assert!(
            n <= MAX_RESPONSE_BYTES + 16 * 1024,
            "{n} bytes read of an endless answer"
        );
        // A short answer is read whole (the connection stays reusable).
        assert!(
            drain(
                http_body_util::Full::new(Bytes::from_static(b"ok")),
                MAX_RESPONSE_BYTES,
                Duration::from_secs(1)
            )
            .await
        );
    }

    #[test]
    fn backoff_doubles_with_jitter_and_a_cap() {
        let p = Policy::default();
        assert_eq!(p.backoff(1, 0.5), Duration::from_secs(10));
        assert_eq!(p.backoff(2, 0.5), Duration::from_secs(20));
        assert_eq!(p.backoff(4, 0.5), Duration::from_secs(80));
        assert_eq!(p.backoff(30, 0.5), Duration::from_secs(3600));
        assert_eq!(p.backoff(1, 0.0), Duration::from_secs(5));
        assert!(p.backoff(1, 0.999) < Duration::from_secs(15));
        // Retried for at least 24 hours before an endpoint is given up.
        assert!(p.disable_after >= Duration::from_secs(24 * 3600));
    }
}
