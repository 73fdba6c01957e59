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

use super::egress::{Egress, EgressError, Resolver};
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

/// What came of one attempt, as an agency sees it: coarse, never the internal error text (the
/// delivery log would otherwise tell an agency how internal hosts answer). The operator's log
/// keeps the detail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A 2xx answer.
    Delivered(u16),
    /// Any other answer (a 3xx too: redirects are not followed).
    HttpStatus(u16),
    /// No answer within the policy's timeout.
    Timeout,
    /// No connection: refused, reset, unreachable, or the name did not resolve.
    Refused,
    /// The TLS handshake failed (the receiver's certificate, or its TLS setup).
    TlsError,
    /// The URL's addresses are not allowed by the egress policy.
    NotAllowed,
    /// No signing secret could be opened with the service's webhook key.
    NoSecret,
}

impl Outcome {
    /// The code stored in the delivery log (absent for a delivered attempt).
    pub fn code(self) -> Option<&'static str> {
        match self {
            Outcome::Delivered(_) => None,
            Outcome::HttpStatus(_) => Some("http_status"),
            Outcome::Timeout => Some("timeout"),
            Outcome::Refused => Some("refused"),
            Outcome::TlsError => Some("tls_error"),
            Outcome::NotAllowed => Some("not_allowed"),
            Outcome::NoSecret => Some("no_secret"),
        }
    }

    pub fn status(self) -> Option<u16> {
        match self {
            Outcome::Delivered(s) | Outcome::HttpStatus(s) => Some(s),
            _ => None,
        }
    }

    /// What an agency reads for a stored code (and status): what happened and what to check.
    pub fn describe(code: &str, status: Option<u16>) -> String {
        match code {
            "http_status" => format!(
                "the receiver answered {}",
                status.map_or_else(|| "without a 2xx status".to_owned(), |s| s.to_string())
            ),
            "timeout" => "no answer within the delivery timeout".to_owned(),
            "refused" => {
                "the receiver could not be reached (no connection, or its name did not resolve)"
                    .to_owned()
            }
            "tls_error" => {
                "the TLS handshake with the receiver failed; check its certificate".to_owned()
            }
            "not_allowed" => {
                "the URL's address is not allowed by this server's webhook egress policy".to_owned()
            }
            "no_secret" => {
                "no signing secret can be opened; rotate the endpoint's secret".to_owned()
            }
            _ => "the attempt failed".to_owned(),
        }
    }

    /// The coarse outcome of a request that got no answer.
    fn of_error(e: &(dyn std::error::Error + 'static)) -> Outcome {
        let mut next = Some(e);
        while let Some(err) = next {
            if err
                .downcast_ref::<EgressError>()
                .is_some_and(|e| !matches!(e, EgressError::Unresolvable))
            {
                return Outcome::NotAllowed;
            }
            if err.downcast_ref::<rustls::Error>().is_some() {
                return Outcome::TlsError;
            }
            if let Some(io) = err.downcast_ref::<std::io::Error>() {
                if io.get_ref().is_some_and(|i| i.is::<rustls::Error>())
                    || io.kind() == std::io::ErrorKind::InvalidData
                {
                    return Outcome::TlsError;
                }
                if io.kind() == std::io::ErrorKind::TimedOut {
                    return Outcome::Timeout;
                }
            }
            next = err.source();
        }
        Outcome::Refused
    }
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
    /// Endpoints of one agency delivered at once: an agency's fair share of `concurrency`, so
    /// one agency's slow receivers cannot hold every worker.
    pub per_agency: usize,
    /// Where deliveries may connect.
    pub egress: Egress,
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
            per_agency: 8,
            egress: Egress::default(),
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

type HttpClient = Client<hyper_rustls::HttpsConnector<HttpConnector<Resolver>>, Full<Bytes>>;

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
        // Every name is resolved and checked by the egress policy as the connection is made.
        let mut http = HttpConnector::new_with_resolver(Resolver(policy.egress.clone()));
        http.enforce_http(false);
        http.set_connect_timeout(Some(policy.timeout));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
            .map_err(|e| format!("TLS for webhooks: {e}"))?
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
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
        // The agency of each running task: the count of an agency's running deliveries is its
        // share of the workers in use.
        let mut running: JoinSet<()> = JoinSet::new();
        let mut tasks: std::collections::HashMap<tokio::task::Id, String> = Default::default();
        let mut per_agency: std::collections::HashMap<String, usize> = Default::default();
        let share = self.policy.per_agency.max(1);
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
                // Agencies at their share are left out of the claim.
                let full: Vec<String> = per_agency
                    .iter()
                    .filter(|(_, n)| **n >= share)
                    .map(|(a, _)| a.clone())
                    .collect();
                match self
                    .store
                    .claim_webhooks(&self.owner, now, until, room as u32, &full)
                    .await
                {
                    Ok(claimed) => {
                        // A claim succeeds only for an endpoint no task holds: a task keeps its
                        // lease until its last write, and stops well before the lease ends.
                        for ep in claimed {
                            let n = per_agency.entry(ep.agency_id.clone()).or_default();
                            if *n >= share {
                                // Beyond the agency's share within this claim: given back,
                                // claimed again when one of its deliveries ends.
                                if let Err(e) =
                                    self.store.release_webhook(&ep.id, &self.owner).await
                                {
                                    tracing::warn!(endpoint = %ep.id, error = %e, "releasing a webhook endpoint failed; its lease expires");
                                }
                                continue;
                            }
                            *n += 1;
                            let me = self.clone();
                            let agency = ep.agency_id.clone();
                            let task = running.spawn(async move {
                                let id = ep.id.clone();
                                if let Err(e) = me.deliver(ep).await {
                                    tracing::error!(endpoint = %id, error = %e, "webhook delivery stopped on a storage error; the lease expires and it is retried");
                                }
                            });
                            tasks.insert(task.id(), agency);
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
                Some(done) = running.join_next_with_id() => {
                    let id = match done {
                        Ok((id, ())) => id,
                        Err(e) => e.id(),
                    };
                    if let Some(agency) = tasks.remove(&id)
                        && let Some(n) = per_agency.get_mut(&agency)
                    {
                        *n = n.saturating_sub(1);
                        if *n == 0 {
                            per_agency.remove(&agency);
                        }
                    }
                }
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
            .feed(agency, ep.cursor, self.policy.batch, false)
            .await?;
        let mut secrets = Vec::new();
        for s in self.store.webhook_secrets(&ep.id, now_ms()).await? {
            match self.key.open(&s, &ep.id) {
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
            let item = row.item(agency).map_err(StoreError::Corrupt)?;
            let body = serde_json::to_vec(&item)
                .map_err(|e| StoreError::Corrupt(format!("a feed item: {e}")))?;
            let started = Instant::now();
            let outcome = if secrets.is_empty() {
                Outcome::NoSecret
            } else {
                self.post(&ep.id, &ep.url, &secrets, &event_id, &event_type, body)
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
                status: outcome.status().map(i32::from),
                error: outcome.code().map(str::to_owned),
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
            tracing::warn!(endpoint = %ep.id, url = %ep.url, failures, outcome = attempt.error.as_deref().unwrap_or(""), disabled = give_up, "a webhook delivery failed; it is retried with backoff");
            let disable = give_up.then(|| {
                let reason = format!(
                    "disabled after {failures} failed attempts over {} hours; the last: {}",
                    (at - since) / 3_600_000,
                    Outcome::describe(attempt.error.as_deref().unwrap_or(""), outcome.status())
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

    /// POSTs one signed delivery, to a target the egress policy allows; what came of it. The
    /// detail of a failure goes to the operator's log only.
    async fn post(
        &self,
        endpoint: &str,
        url: &str,
        secrets: &[Vec<u8>],
        event_id: &str,
        event_type: &str,
        body: Vec<u8>,
    ) -> Outcome {
        let uri: hyper::Uri = match url.parse() {
            Ok(u) => u,
            Err(_) => return Outcome::NotAllowed,
        };
        // The URL as a whole (an address literal, `http` only to allowed networks); a name is
        // checked again by the resolver the connection goes through.
        match self.policy.egress.check_target(&uri).await {
            Ok(_) => {}
            Err(EgressError::Unresolvable) => {
                tracing::warn!(endpoint, url, "a webhook receiver's name does not resolve");
                return Outcome::Refused;
            }
            Err(e) => {
                tracing::warn!(endpoint, url, error = %e, "a webhook delivery refused by the egress policy");
                return Outcome::NotAllowed;
            }
        }
        let t = time::OffsetDateTime::now_utc().unix_timestamp();
        let refs: Vec<&[u8]> = secrets.iter().map(Vec::as_slice).collect();
        let signature = signature_header(&refs, t, &body);
        let req = match hyper::Request::post(uri)
            .header("content-type", "application/json")
            .header("user-agent", "banli-webhooks/1")
            .header(SIGNATURE_HEADER, signature)
            .header(DELIVERY_HEADER, event_id)
            .header(EVENT_HEADER, event_type)
            .body(Full::new(Bytes::from(body)))
        {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(endpoint, error = %e, "a webhook request cannot be built");
                return Outcome::NotAllowed;
            }
        };
        match tokio::time::timeout(self.policy.timeout, self.client.request(req)).await {
            Err(_) => Outcome::Timeout,
            Ok(Err(e)) => {
                let outcome = Outcome::of_error(&e);
                tracing::warn!(endpoint, url, error = %e, source = ?std::error::Error::source(&e), ?outcome, "a webhook receiver could not be reached");
                outcome
            }
            Ok(Ok(res)) => {
                let status = res.status().as_u16();
                // Read (and drop) the answer so the connection can be reused — at most
                // MAX_RESPONSE_BYTES of it: a receiver answering without end holds no memory.
                drain(res.into_body(), MAX_RESPONSE_BYTES, self.policy.timeout).await;
                if (200..300).contains(&status) {
                    Outcome::Delivered(status)
                } else {
                    Outcome::HttpStatus(status)
                }
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
