//! NATS JetStream: one stream over `<prefix>.>`, `Nats-Msg-Id` = event id for de-duplication,
//! one durable pull consumer per consuming service.

use std::path::PathBuf;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, consumer, stream};
use futures_util::StreamExt;
use uuid::Uuid;

use crate::{Ack, BusError, Delivery, Envelope};

/// The user and password (or the token) in a NATS URL's first server, percent-decoded.
fn url_credentials(url: &str) -> Option<(String, Option<String>)> {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    let first = rest.split([',', '/']).next()?;
    let (userinfo, _) = first.rsplit_once('@')?;
    let decode = |s: &str| {
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok());
            match (bytes[i], hex) {
                (b'%', Some(b)) => {
                    out.push(b);
                    i += 3;
                }
                (b, _) => {
                    out.push(b);
                    i += 1;
                }
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    };
    Some(match userinfo.split_once(':') {
        Some((user, password)) => (decode(user), Some(decode(password))),
        None => (decode(userinfo), None),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn credentials_come_from_the_url() {
        use super::url_credentials as c;
        assert_eq!(c("nats://127.0.0.1:4222"), None);
        assert_eq!(
            c("nats://coordination:p%40ss@nats:4222"),
            Some(("coordination".into(), Some("p@ss".into())))
        );
        assert_eq!(c("tls://s3cret@nats:4222"), Some(("s3cret".into(), None)));
        assert_eq!(
            c("nats://u:p@a:4222,nats://b:4222"),
            Some(("u".into(), Some("p".into())))
        );
    }
}

/// Where and how to reach JetStream.
#[derive(Debug, Clone)]
pub struct NatsConfig {
    pub url: String,
    /// The stream's name, e.g. `BANLI`.
    pub stream: String,
    /// Subjects are `<prefix>.<event type>`; the stream holds `<prefix>.>`.
    pub prefix: String,
    /// How long JetStream waits for an acknowledgement before delivering again.
    pub ack_wait: Duration,
    /// How long the stream keeps an event (they carry personal data; the services' own stores
    /// are the record). Zero: forever.
    pub max_age: Duration,
    /// How this process proves itself to NATS and protects the link.
    pub auth: NatsAuth,
}

/// How a process authenticates to NATS and protects the link. A user and password or a token
/// can also be given in the URL (`nats://user:password@host:4222`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NatsAuth {
    /// A `.creds` file (the user's JWT and NKey seed) for this service's NATS user, whose
    /// permissions name the subjects it may publish (deploy/nats/).
    pub credentials: Option<PathBuf>,
    /// CA certificates (PEM) the NATS server's certificate is verified with; implies TLS.
    pub tls_ca: Option<PathBuf>,
    /// This process's client certificate and key (PEM), for a server that verifies clients.
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Refuse to connect without TLS.
    pub require_tls: bool,
}

impl NatsConfig {
    pub fn new(url: &str) -> NatsConfig {
        NatsConfig {
            url: url.to_owned(),
            stream: "BANLI".into(),
            prefix: "banli".into(),
            ack_wait: Duration::from_secs(10),
            max_age: Duration::from_secs(30 * 86_400),
            auth: NatsAuth::default(),
        }
    }
}

#[derive(Debug, Clone)]
pub struct NatsBus {
    js: jetstream::Context,
    stream: stream::Stream,
    config: NatsConfig,
}

const AGGREGATE_ID: &str = "Banli-Aggregate-Id";
const AGGREGATE_VERSION: &str = "Banli-Aggregate-Version";
const EVENT_TYPE: &str = "Banli-Event-Type";

/// The most events a consumer takes (and has unacknowledged) at once.
pub const MAX_BATCH: usize = 256;

impl NatsBus {
    /// Connects and makes sure the stream exists.
    pub async fn connect(config: NatsConfig) -> Result<NatsBus, BusError> {
        let connect_err = |e: &dyn std::fmt::Display| BusError::Connect {
            url: banli_db::redact(&config.url),
            reason: e.to_string(),
        };
        let auth = &config.auth;
        let mut options =
            async_nats::ConnectOptions::new().connection_timeout(Duration::from_secs(5));
        // The client takes no credentials from the URL itself.
        match url_credentials(&config.url) {
            Some((user, Some(password))) => options = options.user_and_password(user, password),
            Some((token, None)) => options = options.token(token),
            None => {}
        }
        if let Some(creds) = &auth.credentials {
            options = options.credentials_file(creds).await.map_err(|e| {
                connect_err(&format!(
                    "the NATS credentials file {} could not be read ({e}); give the .creds file of this service's NATS user",
                    creds.display()
                ))
            })?;
        }
        if let Some(ca) = &auth.tls_ca {
            options = options.add_root_certificates(ca.clone()).require_tls(true);
        }
        match (&auth.tls_cert, &auth.tls_key) {
            (Some(cert), Some(key)) => {
                options = options
                    .add_client_certificate(cert.clone(), key.clone())
                    .require_tls(true);
            }
            (None, None) => {}
            _ => {
                return Err(connect_err(
                    &"nats_tls_cert and nats_tls_key go together: give both or neither",
                ));
            }
        }
        if auth.require_tls {
            options = options.require_tls(true);
        }
        let client = options
            .connect(&config.url)
            .await
            .map_err(|e| connect_err(&e))?;
        let js = jetstream::new(client);
        // Created, or brought to this configuration (the retention may have changed).
        js.create_or_update_stream(stream::Config {
            name: config.stream.clone(),
            subjects: vec![format!("{}.>", config.prefix)],
            duplicate_window: Duration::from_secs(120),
            max_age: config.max_age,
            ..Default::default()
        })
        .await
        .map_err(|e| connect_err(&e))?;
        let stream = js
            .get_stream(&config.stream)
            .await
            .map_err(|e| connect_err(&e))?;
        Ok(NatsBus { js, stream, config })
    }

    /// How long the stream keeps an event, as the server has it.
    pub async fn max_age(&self) -> Result<Duration, BusError> {
        let mut stream = self.stream.clone();
        let info = stream.info().await.map_err(|e| BusError::Connect {
            url: self.config.url.clone(),
            reason: e.to_string(),
        })?;
        Ok(info.config.max_age)
    }

    /// Removes the stream (tests clean up after themselves).
    pub async fn delete_stream(&self) {
        if let Err(e) = self.js.delete_stream(&self.config.stream).await {
            tracing::warn!(error = %e, stream = %self.config.stream, "could not delete the stream");
        }
    }

    /// Publishes a batch: every message is sent, then every acknowledgement awaited. One
    /// connection keeps the order; a failure leaves the rest for the relay's next run (the
    /// stream drops what it already stored, by event id).
    pub(crate) async fn publish_batch(&self, batch: &[Envelope]) -> Result<(), BusError> {
        let mut acks = Vec::with_capacity(batch.len());
        for e in batch {
            let mut headers = HeaderMap::new();
            headers.insert("Nats-Msg-Id", e.event_id.to_string().as_str());
            headers.insert(AGGREGATE_ID, e.aggregate_id.as_str());
            headers.insert(AGGREGATE_VERSION, e.aggregate_version.to_string().as_str());
            headers.insert(EVENT_TYPE, e.event_type.as_str());
            let subject = format!("{}.{}", self.config.prefix, e.event_type);
            acks.push(
                self.js
                    .publish_with_headers(subject, headers, e.payload.clone().into())
                    .await
                    .map_err(|err| BusError::Bus(err.to_string()))?,
            );
        }
        for ack in acks {
            ack.await.map_err(|err| BusError::Bus(err.to_string()))?;
        }
        Ok(())
    }

    pub(crate) async fn publish(&self, e: &Envelope) -> Result<(), BusError> {
        let mut headers = HeaderMap::new();
        headers.insert("Nats-Msg-Id", e.event_id.to_string().as_str());
        headers.insert(AGGREGATE_ID, e.aggregate_id.as_str());
        headers.insert(AGGREGATE_VERSION, e.aggregate_version.to_string().as_str());
        headers.insert(EVENT_TYPE, e.event_type.as_str());
        let subject = format!("{}.{}", self.config.prefix, e.event_type);
        let ack = self
            .js
            .publish_with_headers(subject, headers, e.payload.clone().into())
            .await
            .map_err(|err| BusError::Bus(err.to_string()))?;
        ack.await.map_err(|err| BusError::Bus(err.to_string()))?;
        Ok(())
    }

    pub(crate) async fn consumer(
        &self,
        name: &str,
        filter: Option<&str>,
    ) -> Result<NatsConsumer, BusError> {
        let filter_subject = filter
            .map(|f| format!("{}.{}>", self.config.prefix, f))
            .unwrap_or_default();
        let consumer = self
            .stream
            .get_or_create_consumer(
                name,
                consumer::pull::Config {
                    durable_name: Some(name.to_owned()),
                    // Each event is acknowledged on its own: an event whose predecessor is not
                    // applied yet is handed back while later events of other aggregates go on.
                    ack_policy: consumer::AckPolicy::Explicit,
                    ack_wait: self.config.ack_wait,
                    max_ack_pending: MAX_BATCH as i64,
                    filter_subject,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| BusError::Bus(e.to_string()))?;
        Ok(NatsConsumer {
            consumer,
            prefix: format!("{}.", self.config.prefix),
        })
    }
}

/// How long past its expiry a pull request's replies are awaited: a reply lost with a dropped
/// connection would otherwise hold the consumer until the client noticed.
const REPLY_MARGIN: Duration = Duration::from_secs(5);

/// A handle on a durable pull consumer.
#[derive(Debug)]
pub struct NatsConsumer {
    consumer: consumer::Consumer<consumer::pull::Config>,
    /// `<prefix>.`: what a subject starts with before the event type.
    prefix: String,
}

impl NatsConsumer {
    /// Up to `max` events: what is already waiting, in one request; when nothing is, waits up
    /// to `wait` for one event and then takes what arrived with it. A batch is as large as the
    /// lag, and a quiet consumer answers as soon as an event comes.
    pub(crate) async fn next_batch(
        &mut self,
        max: usize,
        wait: Duration,
    ) -> Result<Vec<Delivery>, BusError> {
        let max = max.min(MAX_BATCH);
        let mut out = self.waiting(max).await?;
        if !out.is_empty() {
            return Ok(out);
        }
        let mut one = self
            .consumer
            .batch()
            .max_messages(1)
            .expires(wait)
            .messages()
            .await
            .map_err(|e| BusError::Bus(e.to_string()))?;
        // A reply lost with a dropped connection must not hold the consumer: past the request's
        // own expiry (and a margin) the batch ends with what came.
        let deadline = tokio::time::Instant::now() + wait + REPLY_MARGIN;
        while let Ok(Some(m)) = tokio::time::timeout_at(deadline, one.next()).await {
            out.push(delivery(
                m.map_err(|e| BusError::Bus(e.to_string()))?,
                &self.prefix,
            ));
        }
        if out.is_empty() || max == 1 {
            return Ok(out);
        }
        out.extend(self.waiting(max - 1).await?);
        Ok(out)
    }

    /// The events already waiting, up to `max`, without waiting for more.
    async fn waiting(&mut self, max: usize) -> Result<Vec<Delivery>, BusError> {
        let mut batch = self
            .consumer
            .fetch()
            .max_messages(max)
            .messages()
            .await
            .map_err(|e| BusError::Bus(e.to_string()))?;
        let mut out = Vec::new();
        let deadline = tokio::time::Instant::now() + REPLY_MARGIN;
        while let Ok(Some(m)) = tokio::time::timeout_at(deadline, batch.next()).await {
            out.push(delivery(
                m.map_err(|e| BusError::Bus(e.to_string()))?,
                &self.prefix,
            ));
        }
        Ok(out)
    }

    /// Events not yet delivered to this consumer plus those delivered but not acknowledged.
    pub(crate) async fn pending(&mut self) -> Result<u64, BusError> {
        let info = self
            .consumer
            .info()
            .await
            .map_err(|e| BusError::Bus(e.to_string()))?;
        Ok(info.num_pending + info.num_ack_pending as u64)
    }
}

/// Asks JetStream to deliver a message again (from its redelivery queue, ahead of new ones).
pub(crate) async fn nak(m: &async_nats::jetstream::Message) -> Result<(), BusError> {
    m.ack_with(async_nats::jetstream::AckKind::Nak(None))
        .await
        .map_err(|e| BusError::Bus(e.to_string()))
}

/// An event as delivered. Its type is the one its subject names: NATS permissions decide who
/// may publish on which subjects, so a message whose `Banli-Event-Type` header claims another
/// type than its subject (a publisher dressing its event up as another service's) is not
/// ours — it is delivered with the nil id, for the consumer to park and report.
fn delivery(message: async_nats::jetstream::Message, prefix: &str) -> Delivery {
    {
        let header = |name: &str| {
            message
                .headers
                .as_ref()
                .and_then(|h| h.get(name))
                .map(|v| v.as_str().to_owned())
        };
        // A message without an event id is not ours: it is delivered with the nil id, for the
        // consumer to park and report rather than block on.
        let on_subject = message
            .subject
            .as_str()
            .strip_prefix(prefix)
            .map(str::to_owned);
        let claimed = header(EVENT_TYPE);
        let matches = on_subject.is_some() && claimed == on_subject;
        if !matches {
            tracing::warn!(
                subject = message.subject.as_str(),
                claimed_type = claimed.as_deref().unwrap_or(""),
                "an event's type does not match the subject it was published on; it is parked (check the NATS permissions of the publishers)"
            );
        }
        let event_id = header("Nats-Msg-Id")
            .and_then(|v| Uuid::try_parse(&v).ok())
            .filter(|_| matches)
            .unwrap_or(Uuid::nil());
        let envelope = Envelope {
            event_id,
            event_type: on_subject.unwrap_or_default(),
            aggregate_id: header(AGGREGATE_ID).unwrap_or_default(),
            aggregate_version: header(AGGREGATE_VERSION)
                .and_then(|v| v.parse().ok())
                .unwrap_or_default(),
            payload: message.payload.to_vec(),
        };
        let attempt = message.info().map_or(1, |i| i.delivered.max(1) as u64);
        Delivery {
            envelope,
            attempt,
            ack: Ack::Nats(Box::new(message)),
        }
    }
}
