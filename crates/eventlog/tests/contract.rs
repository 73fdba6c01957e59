//! One contract, run on the embedded bus and on NATS JetStream (`BANLI_TEST_NATS_URL`, default
//! the local server; skipped with a notice when it does not answer, unless
//! `BANLI_REQUIRE_SERVICES=1`).

use std::time::Duration;

use banli_eventlog::{Bus, EmbeddedBus, Envelope, NatsBus, NatsConfig};
use uuid::Uuid;

fn event(aggregate: &str, version: u64) -> Envelope {
    Envelope {
        event_id: Uuid::now_v7(),
        event_type: "suggestion.assigned".into(),
        aggregate_id: aggregate.into(),
        aggregate_version: version,
        payload: format!("{{\"v\":{version}}}").into_bytes(),
    }
}

const WAIT: Duration = Duration::from_millis(500);

async fn contract(bus: Bus, redelivery: Duration) {
    let agg = Uuid::now_v7().to_string();
    let events: Vec<Envelope> = (1..=5).map(|v| event(&agg, v)).collect();
    for e in &events {
        bus.publish(e).await.expect("publish");
    }
    // A republished event (a relay that restarted) is delivered once.
    bus.publish(&events[2]).await.expect("republish");

    // In order, everything, once.
    let mut a = bus.consumer("coordination", None).await.expect("consumer");
    for e in &events[..3] {
        let d = a.next(WAIT).await.expect("next").expect("an event");
        assert_eq!(&d.envelope, e);
        d.ack().await.expect("ack");
    }
    // The fourth is delivered but not acknowledged: the consumer dies.
    let d = a.next(WAIT).await.expect("next").expect("an event");
    assert_eq!(d.envelope.aggregate_version, 4);
    drop(d);
    drop(a);

    // A new handle of the same consumer gets the unacknowledged event again, then the rest.
    tokio::time::sleep(redelivery).await;
    let mut a = bus.consumer("coordination", None).await.expect("consumer");
    let mut seen = Vec::new();
    while let Some(d) = a.next(WAIT).await.expect("next") {
        seen.push(d.envelope.aggregate_version);
        d.ack().await.expect("ack");
    }
    assert_eq!(
        seen,
        [4, 5],
        "redelivered in order, nothing lost, nothing doubled"
    );

    // Another consumer has its own position and sees everything.
    let mut b = bus.consumer("followup", None).await.expect("consumer");
    let mut all = Vec::new();
    while let Some(d) = b.next(WAIT).await.expect("next") {
        all.push(d.envelope.aggregate_version);
        d.ack().await.expect("ack");
    }
    assert_eq!(all, [1, 2, 3, 4, 5]);

    // Events published later reach a waiting consumer.
    let later = event(&agg, 6);
    let waiting = tokio::spawn(async move {
        let d = a
            .next(Duration::from_secs(5))
            .await
            .expect("next")
            .expect("the late event");
        let v = d.envelope.aggregate_version;
        d.ack().await.expect("ack");
        v
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    bus.publish(&later).await.expect("publish");
    assert_eq!(waiting.await.expect("task"), 6);
}

/// Batches, filters and handing a batch back.
async fn batches(bus: Bus) {
    let agg = Uuid::now_v7().to_string();
    let mut mixed = Vec::new();
    for v in 1..=6u64 {
        let mut e = event(&agg, v);
        if v % 2 == 0 {
            e.event_type = "coordination.opinion_submitted".into();
        }
        bus.publish(&e).await.expect("publish");
        mixed.push(e);
    }
    // A filtered consumer reads only its types, in order, a batch at a time.
    let mut c = bus
        .consumer("batcher", Some("coordination."))
        .await
        .expect("consumer");
    let batch = c.next_batch(10, WAIT).await.expect("batch");
    let versions: Vec<u64> = batch.iter().map(|d| d.envelope.aggregate_version).collect();
    assert_eq!(versions, [2, 4, 6]);
    // Handed back, the batch comes again, whole and in order.
    c.release(batch, Duration::from_millis(100))
        .await
        .expect("release");
    let mut again = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while again.len() < 3 && tokio::time::Instant::now() < deadline {
        for d in c.next_batch(10, WAIT).await.expect("batch") {
            again.push(d);
        }
    }
    let versions: Vec<u64> = again.iter().map(|d| d.envelope.aggregate_version).collect();
    assert_eq!(versions, [2, 4, 6], "released events are delivered again");
    // Settled, the batch is gone: a new handle has nothing left.
    c.settle(again, &[true, true, true], Duration::ZERO)
        .await
        .expect("settle");
    drop(c);
    let mut c = bus
        .consumer("batcher", Some("coordination."))
        .await
        .expect("consumer");
    assert!(
        c.next(Duration::from_millis(1500))
            .await
            .expect("next")
            .is_none(),
        "nothing is delivered twice after the batch was acknowledged"
    );
    assert_eq!(c.pending().await.expect("pending"), 0);
}

#[tokio::test]
async fn batches_on_the_embedded_bus() {
    batches(Bus::Embedded(EmbeddedBus::new(&["batcher"]))).await;
}

#[tokio::test]
async fn contract_on_the_embedded_bus() {
    let bus = EmbeddedBus::new(&["coordination", "followup"]);
    contract(Bus::Embedded(bus.clone()), Duration::ZERO).await;
    // Events both declared consumers acknowledged are gone; the late one waits for followup.
    assert_eq!(bus.retained(), 1);
}

#[tokio::test]
async fn the_embedded_bus_keeps_only_what_a_declared_consumer_still_needs() {
    let bus = EmbeddedBus::new(&["coordination"]);
    let b = Bus::Embedded(bus.clone());
    for v in 1..=3 {
        b.publish(&event("a", v)).await.expect("publish");
    }
    assert_eq!(bus.retained(), 3);
    let mut c = b.consumer("coordination", None).await.expect("consumer");
    let d = c.next(WAIT).await.expect("next").expect("event");
    d.ack().await.expect("ack");
    assert_eq!(bus.retained(), 2);
    // With no declared consumer nothing is retained: the outbox is the record.
    let none = EmbeddedBus::new(&[]);
    for v in 1..=1000 {
        Bus::Embedded(none.clone())
            .publish(&event("b", v))
            .await
            .expect("publish");
    }
    assert_eq!(none.retained(), 0);
}

#[tokio::test]
async fn contract_on_nats_jetstream() {
    let url =
        std::env::var("BANLI_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let unique = Uuid::now_v7().simple().to_string();
    let config = NatsConfig {
        url: url.clone(),
        stream: format!("BANLI_TEST_{unique}"),
        prefix: format!("banlitest{unique}"),
        ack_wait: Duration::from_secs(1),
        max_age: Duration::from_secs(3600),
        auth: Default::default(),
    };
    let bus = match NatsBus::connect(config).await {
        Ok(b) => b,
        Err(e) if std::env::var("BANLI_REQUIRE_SERVICES").is_ok_and(|v| v == "1") => {
            panic!("NATS is required: {e}")
        }
        Err(e) => {
            eprintln!("notice: skipping the NATS contract test: {e}");
            return;
        }
    };
    // The stream keeps events as long as configured, also when it existed before with another
    // retention.
    assert_eq!(
        bus.max_age().await.expect("info"),
        Duration::from_secs(3600)
    );
    let shorter = NatsBus::connect(NatsConfig {
        url: url.clone(),
        stream: format!("BANLI_TEST_{unique}"),
        prefix: format!("banlitest{unique}"),
        ack_wait: Duration::from_secs(1),
        max_age: Duration::from_secs(600),
        auth: Default::default(),
    })
    .await
    .expect("the same stream again");
    assert_eq!(bus.max_age().await.expect("info"), Duration::from_secs(600));
    drop(shorter);
    contract(
        Bus::Nats(Box::new(bus.clone())),
        Duration::from_millis(1200),
    )
    .await;
    batches(Bus::Nats(Box::new(bus.clone()))).await;
    spoofed_types_are_not_delivered_as_ours(&bus, &url, &format!("banlitest{unique}")).await;
    bus.delete_stream().await;
}

/// A publisher allowed one subject cannot pass its event off as another type: the subject
/// names the type, and a message whose header claims another is delivered with the nil id
/// (the consumer parks it) under its subject's type.
async fn spoofed_types_are_not_delivered_as_ours(bus: &NatsBus, url: &str, prefix: &str) {
    let client = async_nats::connect(url).await.expect("a raw NATS client");
    let js = async_nats::jetstream::new(client);
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", Uuid::now_v7().to_string().as_str());
    headers.insert("Banli-Event-Type", "suggestion.assigned");
    headers.insert("Banli-Aggregate-Id", "s-1");
    headers.insert("Banli-Aggregate-Version", "1");
    js.publish_with_headers(format!("{prefix}.spoofcheck.noted"), headers, "{}".into())
        .await
        .expect("publish")
        .await
        .expect("stored");
    let mut consumer = Bus::Nats(Box::new(bus.clone()))
        .consumer("spoofcheck", Some("spoofcheck."))
        .await
        .expect("consumer");
    let d = consumer
        .next(Duration::from_secs(5))
        .await
        .expect("next")
        .expect("the message is delivered");
    assert_eq!(d.envelope.event_type, "spoofcheck.noted");
    assert!(d.envelope.event_id.is_nil(), "{:?}", d.envelope);
    d.ack().await.expect("ack");
}
