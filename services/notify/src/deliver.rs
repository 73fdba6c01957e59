//! The deliverer: claims due deliveries with a lease, sends them — e-mail over SMTP (STARTTLS
//! or TLS as the URL says, pooled connections), SMS as a signed POST to the configured gateway —
//! and records each outcome. A failure is retried with exponential backoff until the policy's
//! attempts are spent (then `failed`); quiet hours defer e-mail and SMS without an attempt. A
//! process that stops mid-delivery leaves its claims to expire: they are sent again then (the
//! message keeps its id, `Message-ID` and `Banli-Delivery`, so a receiver can tell).

use std::sync::Arc;
use std::time::Duration;

use banli_egress::policy::{Egress, Resolver};
use banli_egress::sign::{DELIVERY_HEADER, SIGNATURE_HEADER, signature_header};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use lettre::message::header::ContentType;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use tokio::task::JoinSet;

use crate::store::{Channel, Claimed, Outcome, Store};

/// How deliveries are retried.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The wait after the first failure; doubled after each next one, at most `max_backoff`.
    pub backoff: Duration,
    pub max_backoff: Duration,
    /// Attempts before a delivery is given up (`failed`).
    pub max_attempts: i64,
    /// Deliveries in flight at once.
    pub concurrency: usize,
    /// How long a claim holds before another worker may take the delivery.
    pub lease: Duration,
    /// How often the queue is looked at when nothing wakes the worker.
    pub idle: Duration,
    pub timeout: Duration,
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            backoff: Duration::from_secs(30),
            max_backoff: Duration::from_secs(3600),
            max_attempts: 8,
            concurrency: 32,
            lease: Duration::from_secs(60),
            idle: Duration::from_millis(500),
            timeout: Duration::from_secs(15),
        }
    }
}

/// The e-mail channel: an SMTP URL (`smtp://host:587?tls=required` for STARTTLS,
/// `smtps://host:465` for TLS, `smtp://host:25` plain for a local relay; credentials as
/// `user:password@`) and the sender.
#[derive(Debug, Clone)]
pub struct Smtp {
    pub url: String,
    pub from: String,
}

/// The SMS channel: a gateway URL and the JSON body it takes, with `{{phone}}` and `{{text}}`
/// in its strings; each POST is signed like a webhook (`Banli-Signature`) with `secret`.
#[derive(Debug, Clone)]
pub struct Sms {
    pub url: String,
    pub template: String,
    pub secret: String,
    pub egress: Egress,
}

/// The default SMS body template.
pub const SMS_TEMPLATE: &str = r#"{"to": "{{phone}}", "text": "{{text}}"}"#;

/// Why a channel's configuration was refused.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("notify.smtp_url: {0}")]
    Smtp(String),
    #[error("notify.smtp_from `{0}` is not a mailbox (e.g. \"办理平台 <banli@example.gov.cn>\")")]
    From(String),
    #[error("notify.sms_template: {0}")]
    Template(String),
    #[error("notify.sms_url: {0}")]
    SmsUrl(String),
}

type HttpClient = Client<hyper_rustls::HttpsConnector<HttpConnector<Resolver>>, Full<Bytes>>;

struct Channels {
    smtp: Option<(AsyncSmtpTransport<Tokio1Executor>, lettre::message::Mailbox)>,
    sms: Option<(Sms, serde_json::Value, HttpClient)>,
}

/// The worker of one process.
#[derive(Clone)]
pub struct Deliverer {
    store: Store,
    policy: Policy,
    channels: Arc<Channels>,
}

impl std::fmt::Debug for Deliverer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deliverer").finish_non_exhaustive()
    }
}

/// Checks an SMTP URL without connecting (and without a runtime: nothing is started).
pub fn check_smtp_url(url: &str) -> Result<(), ConfigError> {
    AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
        .map(|_| ())
        .map_err(|e| ConfigError::Smtp(e.to_string()))
}

/// The SMTP transport of a URL, with the policy's timeout (its connection pool runs on the
/// current Tokio runtime).
pub fn smtp_transport(
    url: &str,
    timeout: Duration,
) -> Result<AsyncSmtpTransport<Tokio1Executor>, ConfigError> {
    Ok(AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
        .map_err(|e| ConfigError::Smtp(e.to_string()))?
        .timeout(Some(timeout))
        .build())
}

/// The SMS template's placeholders filled in: every string of the JSON template, with
/// `{{phone}}` and `{{text}}` replaced (JSON-escaped by construction).
pub fn sms_body(template: &serde_json::Value, phone: &str, text: &str) -> serde_json::Value {
    match template {
        serde_json::Value::String(s) => {
            serde_json::Value::String(s.replace("{{phone}}", phone).replace("{{text}}", text))
        }
        serde_json::Value::Array(a) => a.iter().map(|v| sms_body(v, phone, text)).collect(),
        serde_json::Value::Object(o) => o
            .iter()
            .map(|(k, v)| (k.clone(), sms_body(v, phone, text)))
            .collect::<serde_json::Map<_, _>>()
            .into(),
        v => v.clone(),
    }
}

fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

/// Minutes after midnight of `HH:MM`.
fn minutes(hhmm: &str) -> Option<i64> {
    let (h, m) = hhmm.split_once(':')?;
    let (h, m): (i64, i64) = (h.parse().ok()?, m.parse().ok()?);
    ((0..24).contains(&h) && (0..60).contains(&m)).then_some(h * 60 + m)
}

/// Whether `hhmm` is a valid `HH:MM`.
pub fn valid_time(hhmm: &str) -> bool {
    minutes(hhmm).is_some()
}

/// When quiet hours `[from, to)` (China Standard Time, may span midnight) end, if `now_ms` is
/// in them.
pub fn quiet_until(now_ms: i64, from: &str, to: &str) -> Option<i64> {
    let (from, to) = (minutes(from)?, minutes(to)?);
    if from == to {
        return None;
    }
    let cst = now_ms + 8 * 3_600_000;
    let day_ms = 86_400_000;
    let now_min = cst.rem_euclid(day_ms) / 60_000;
    let inside = if from < to {
        (from..to).contains(&now_min)
    } else {
        now_min >= from || now_min < to
    };
    if !inside {
        return None;
    }
    let wait_min = (to - now_min).rem_euclid(24 * 60);
    let start_of_minute = now_ms - cst.rem_euclid(60_000);
    Some(start_of_minute + wait_min * 60_000)
}

impl Deliverer {
    pub fn new(
        store: Store,
        policy: Policy,
        smtp: Option<Smtp>,
        sms: Option<Sms>,
    ) -> Result<Deliverer, ConfigError> {
        let smtp = smtp
            .map(|s| {
                let from = s
                    .from
                    .parse()
                    .map_err(|_| ConfigError::From(s.from.clone()))?;
                Ok::<_, ConfigError>((smtp_transport(&s.url, policy.timeout)?, from))
            })
            .transpose()?;
        let sms = sms
            .map(|s| {
                let template: serde_json::Value = serde_json::from_str(&s.template)
                    .map_err(|e| ConfigError::Template(format!("not JSON: {e}")))?;
                let uri = banli_egress::check_url(&s.url).map_err(ConfigError::SmsUrl)?;
                let _ = uri;
                let mut http = HttpConnector::new_with_resolver(Resolver(s.egress.clone()));
                http.enforce_http(false);
                http.set_connect_timeout(Some(policy.timeout));
                let https = hyper_rustls::HttpsConnectorBuilder::new()
                    .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
                    .map_err(|e| ConfigError::SmsUrl(format!("TLS: {e}")))?
                    .https_or_http()
                    .enable_http1()
                    .wrap_connector(http);
                let client = Client::builder(TokioExecutor::new())
                    .pool_idle_timeout(Duration::from_secs(30))
                    .build(https);
                Ok::<_, ConfigError>((s, template, client))
            })
            .transpose()?;
        Ok(Deliverer {
            store,
            policy,
            channels: Arc::new(Channels { smtp, sms }),
        })
    }

    /// Sends one delivery.
    async fn send(channels: &Channels, timeout: Duration, c: &Claimed) -> Result<(), String> {
        match c.channel {
            Channel::Email => {
                let Some((transport, from)) = &channels.smtp else {
                    return Err("no SMTP server is configured".into());
                };
                let to: lettre::message::Mailbox = c
                    .address
                    .parse()
                    .map_err(|_| format!("`{}` is not an e-mail address", c.address))?;
                let message = Message::builder()
                    .from(from.clone())
                    .to(to)
                    .subject(c.title.clone())
                    .message_id(Some(format!("<{}@banli>", c.notification_id)))
                    .header(ContentType::TEXT_PLAIN)
                    .body(c.body.clone())
                    .map_err(|e| format!("the message cannot be built: {e}"))?;
                transport
                    .send(message)
                    .await
                    .map(|_| ())
                    .map_err(|e| format!("SMTP: {e}"))
            }
            Channel::Sms => {
                let Some((sms, template, client)) = &channels.sms else {
                    return Err("no SMS gateway is configured".into());
                };
                let text = format!("{}：{}", c.title, c.body);
                let body = serde_json::to_vec(&sms_body(template, &c.address, &text))
                    .map_err(|e| e.to_string())?;
                let t = time::OffsetDateTime::now_utc().unix_timestamp();
                let req = hyper::Request::post(&sms.url)
                    .header("content-type", "application/json")
                    .header(
                        SIGNATURE_HEADER,
                        signature_header(&[sms.secret.as_bytes()], t, &body),
                    )
                    .header(DELIVERY_HEADER, &c.notification_id)
                    .body(Full::new(Bytes::from(body)))
                    .map_err(|e| e.to_string())?;
                let resp = tokio::time::timeout(timeout, client.request(req))
                    .await
                    .map_err(|_| "the SMS gateway did not answer in time".to_owned())?
                    .map_err(|e| format!("the SMS gateway could not be reached: {e}"))?;
                let status = resp.status();
                // Read (and drop) the answer, at most 64 KiB: the connection is reused.
                let _ = tokio::time::timeout(
                    timeout,
                    http_body_util::Limited::new(resp.into_body(), 64 * 1024).collect(),
                )
                .await;
                if status.is_success() {
                    Ok(())
                } else {
                    Err(format!("the SMS gateway answered {status}"))
                }
            }
            Channel::Inbox => Ok(()),
        }
    }

    /// One round: claims what is due, sends it, records the outcomes. Returns how many it
    /// handled.
    pub async fn round(&self) -> Result<usize, crate::store::StoreError> {
        let p = &self.policy;
        let now = now_ms();
        // One wave at a time: every claim is sent well within its lease (a send times out after
        // `timeout`), so no other worker takes a delivery still being sent.
        let claimed = self
            .store
            .claim(now, p.lease.as_millis() as i64, p.concurrency as u32)
            .await?;
        if claimed.is_empty() {
            return Ok(0);
        }
        let n = claimed.len();
        let sem = Arc::new(tokio::sync::Semaphore::new(p.concurrency.max(1)));
        let mut set = JoinSet::new();
        for c in claimed {
            let (channels, sem, policy) = (self.channels.clone(), sem.clone(), p.clone());
            set.spawn(async move {
                let _permit = sem.acquire_owned().await;
                if let (Some(from), Some(to)) = (&c.quiet_from, &c.quiet_to)
                    && let Some(until) = quiet_until(now_ms(), from, to)
                {
                    return (c.notification_id, c.channel, Outcome::Deferred { next_at: until });
                }
                let outcome = match Self::send(&channels, policy.timeout, &c).await {
                    Ok(()) => Outcome::Sent { at: now_ms() },
                    Err(error) => {
                        let attempt = c.attempts + 1;
                        let next_at = (attempt < policy.max_attempts).then(|| {
                            let wait = policy
                                .backoff
                                .saturating_mul(1u32 << (attempt - 1).clamp(0, 20) as u32)
                                .min(policy.max_backoff);
                            now_ms() + wait.as_millis() as i64
                        });
                        tracing::warn!(notification = %c.notification_id, channel = c.channel.as_str(), attempt, error = %error,
                            gives_up = next_at.is_none(), "a notification could not be delivered");
                        Outcome::Failed { error, next_at }
                    }
                };
                (c.notification_id, c.channel, outcome)
            });
        }
        let mut outcomes = Vec::with_capacity(n);
        while let Some(r) = set.join_next().await {
            if let Ok(o) = r {
                outcomes.push(o);
            }
        }
        self.store.finish(outcomes).await?;
        Ok(n)
    }

    /// Delivers until `stop` completes.
    pub async fn run(self, stop: impl std::future::Future<Output = ()>) {
        tokio::pin!(stop);
        loop {
            let handled = match self.round().await {
                Ok(n) => n,
                Err(e) => {
                    tracing::error!(error = %e, "the notification queue could not be read; retrying");
                    0
                }
            };
            if handled > 0 {
                continue;
            }
            tokio::select! {
                _ = &mut stop => return,
                _ = self.store.wake().notified() => {}
                _ = tokio::time::sleep(self.policy.idle) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_hours_span_midnight_and_end_at_their_time() {
        // 2026-12-07 23:30 CST = 15:30 UTC.
        let t = time::macros::datetime!(2026-12-07 15:30 UTC).unix_timestamp() * 1000;
        let until = quiet_until(t, "22:00", "07:00").expect("inside");
        assert_eq!(
            until,
            time::macros::datetime!(2026-12-07 23:00 UTC).unix_timestamp() * 1000
        );
        assert_eq!(quiet_until(t, "08:00", "22:00"), None);
        assert_eq!(quiet_until(t, "bad", "07:00"), None);
    }

    #[test]
    fn the_sms_template_is_filled_in_escaped() {
        let t: serde_json::Value = serde_json::from_str(SMS_TEMPLATE).expect("json");
        let b = sms_body(&t, "+8613800000000", "答复已发出 \"A类\"");
        assert_eq!(b["to"], "+8613800000000");
        assert_eq!(b["text"], "答复已发出 \"A类\"");
    }
}
