//! NATS JetStream: one stream over `<prefix>.>`, `Nats-Msg-Id` = event id for de-duplication,
//! one durable pull consumer per consuming service.

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, consumer, stream};
use futures_util::StreamExt;
use uuid::Uuid;

use crate::{Ack, BusError, Delivery, Envelope};

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
}

impl NatsConfig {
    pub fn new(url: &str) -> NatsConfig {
        NatsConfig {
            url: url.to_owned(),
            stream: "BANLI".into(),
            prefix: "banli".into(),
            ack_wait: Duration::from_secs(30),
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

impl NatsBus {
    /// Connects and makes sure the stream exists.
    pub async fn connect(config: NatsConfig) -> Result<NatsBus, BusError> {
        let connect_err = |e: &dyn std::fmt::Display| BusError::Connect {
            url: config.url.clone(),
            reason: e.to_string(),
        };
        let client = async_nats::ConnectOptions::new()
            .connection_timeout(Duration::from_secs(5))
            .connect(&config.url)
            .await
            .map_err(|e| connect_err(&e))?;
        let js = jetstream::new(client);
        let stream = js
            .get_or_create_stream(stream::Config {
                name: config.stream.clone(),
                subjects: vec![format!("{}.>", config.prefix)],
                duplicate_window: Duration::from_secs(120),
                ..Default::default()
            })
            .await
            .map_err(|e| connect_err(&e))?;
        Ok(NatsBus { js, stream, config })
    }

    /// Removes the stream (tests clean up after themselves).
    pub async fn delete_stream(&self) {
        if let Err(e) = self.js.delete_stream(&self.config.stream).await {
            tracing::warn!(error = %e, stream = %self.config.stream, "could not delete the stream");
        }
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

    pub(crate) async fn consumer(&self, name: &str) -> Result<NatsConsumer, BusError> {
        let consumer = self
            .stream
            .get_or_create_consumer(
                name,
                consumer::pull::Config {
                    durable_name: Some(name.to_owned()),
                    ack_policy: consumer::AckPolicy::Explicit,
                    ack_wait: self.config.ack_wait,
                    // In order: one event in flight per consumer.
                    max_ack_pending: 1,
                    ..Default::default()
                },
            )
            .await
            .map_err(|e| BusError::Bus(e.to_string()))?;
        Ok(NatsConsumer { consumer })
    }
}

/// A handle on a durable pull consumer.
#[derive(Debug)]
pub struct NatsConsumer {
    consumer: consumer::Consumer<consumer::pull::Config>,
}

impl NatsConsumer {
    pub(crate) async fn next(&mut self, wait: Duration) -> Result<Option<Delivery>, BusError> {
        let mut batch = self
            .consumer
            .fetch()
            .max_messages(1)
            .expires(wait)
            .messages()
            .await
            .map_err(|e| BusError::Bus(e.to_string()))?;
        let Some(message) = batch.next().await else {
            return Ok(None);
        };
        let message = message.map_err(|e| BusError::Bus(e.to_string()))?;
        let header = |name: &str| {
            message
                .headers
                .as_ref()
                .and_then(|h| h.get(name))
                .map(|v| v.as_str().to_owned())
        };
        let event_id = header("Nats-Msg-Id")
            .and_then(|v| Uuid::try_parse(&v).ok())
            .ok_or_else(|| BusError::Malformed(format!("no event id on {}", message.subject)))?;
        let envelope = Envelope {
            event_id,
            event_type: header(EVENT_TYPE).unwrap_or_default(),
            aggregate_id: header(AGGREGATE_ID).unwrap_or_default(),
            aggregate_version: header(AGGREGATE_VERSION)
                .and_then(|v| v.parse().ok())
                .unwrap_or_default(),
            payload: message.payload.to_vec(),
        };
        Ok(Some(Delivery {
            envelope,
            ack: Ack::Nats(Box::new(message)),
        }))
    }
}
