//! The outbox relay: every committed event reaches the bus once, in order, even when the relay
//! dies between publishing and marking, on SQLite and PostgreSQL, embedded bus and NATS.

use std::time::Duration;

use banli_calendar::Calendar;
use banli_db::testing::TestDb;
use banli_domain::directory::Agency;
use banli_domain::ids::AgencyId;
use banli_domain::{Role, RuleProfile};
use banli_eventlog::{Bus, EmbeddedBus, NatsBus, NatsConfig};
use banli_suggestions::app::{App, Clock};
use banli_suggestions::dto::CreateDeputy;
use banli_suggestions::policy::Principal;
use banli_suggestions::relay::relay;
use banli_suggestions::store::Store;
use time::macros::date;

async fn scenario(db: TestDb, bus: Bus) {
    let store = Store::new(db.pool.clone());
    store.migrate().await.expect("migrate");
    let office = Agency {
        id: AgencyId::new(),
        name: "Office".into(),
        assigning_office: true,
    };
    store.create_agency(&office).await.expect("office");
    // The directory goes out through the same outbox (for the other services' replicas);
    // this test follows the suggestions' events.
    let directory = store.pending_outbox(10).await.expect("outbox");
    assert_eq!(
        directory
            .iter()
            .map(|r| r.event_type.as_str())
            .collect::<Vec<_>>(),
        ["directory.agency_registered"]
    );
    store
        .mark_published(&[directory[0].seq], time::OffsetDateTime::now_utc())
        .await
        .expect("mark");
    let app = App::new(
        store.clone(),
        RuleProfile::hunan(),
        Calendar::embedded().clone(),
        Clock::Fixed(date!(2020 - 03 - 02)),
    );
    let p = Principal {
        position: None,
        key_id: uuid::Uuid::now_v7(),
        role: Role::AssigningOffice,
        agency: Some(office.id),
        deputy: None,
        reference: None,
        client_cert: None,
    };
    let session = app
        .create_session(&p, serde_json::from_value(serde_json::json!({"body":"npc","term":13,"number":3,"name":"s","opens_on":"2020-01-10","closes_on":"2020-01-16"})).expect("body"))
        .await
        .expect("session");
    let deputy = app
        .create_deputy(
            &p,
            CreateDeputy {
                name: "D".into(),
                delegation: "X".into(),
                contact: String::new(),
            },
        )
        .await
        .expect("deputy");
    let mut ids = Vec::new();
    for n in 0..3 {
        let body = serde_json::json!({"session_id": session.id, "number": format!("2020-{n}"), "title": "t", "body": "b", "lead_deputy_id": deputy.id});
        let s = app
            .submit(&p, serde_json::from_value(body).expect("body"))
            .await
            .expect("submit");
        ids.push(s.id);
        let target = banli_suggestions::command::Target {
            suggestion_id: s.id,
            expected_version: None,
            once: banli_suggestions::command::Once {
                key: None,
                hash: String::new(),
            },
        };
        app.command(
            &p,
            target,
            banli_suggestions::command::SuggestionCommand::StartReview {},
        )
        .await
        .expect("review");
    }
    let relay = relay(&store, bus.clone());
    // A relay that published a batch and died before marking it: the rows are still pending.
    let pending = store.pending_outbox(100).await.expect("outbox");
    assert_eq!(pending.len(), 6);
    for r in &pending[..4] {
        bus.publish(&banli_eventlog::Envelope {
            event_id: r.event_id,
            event_type: r.event_type.clone(),
            aggregate_id: r.aggregate_id.clone(),
            aggregate_version: r.aggregate_version,
            payload: r.payload.clone().into_bytes(),
        })
        .await
        .expect("publish");
    }
    // The next relay run publishes everything again (the bus drops what it had).
    assert_eq!(relay.run_once().await.expect("relay"), 6);
    assert_eq!(relay.run_once().await.expect("relay"), 0);

    let mut consumer = bus.consumer("test", None).await.expect("consumer");
    let mut got = Vec::new();
    while let Some(d) = consumer
        .next(Duration::from_millis(500))
        .await
        .expect("next")
    {
        got.push((
            d.envelope.aggregate_id.clone(),
            d.envelope.aggregate_version,
            d.envelope.event_type.clone(),
        ));
        d.ack().await.expect("ack");
    }
    let want: Vec<_> = ids
        .iter()
        .flat_map(|id| {
            [
                (id.to_string(), 1, "suggestion.submitted".to_owned()),
                (id.to_string(), 2, "suggestion.review_started".to_owned()),
            ]
        })
        .collect();
    // Everything is marked published once consumed (at once on JetStream; on the embedded bus,
    // which lives in memory, only after the consumers acknowledged it).
    relay.run_once().await.expect("relay");
    assert!(store.pending_outbox(100).await.expect("outbox").is_empty());
    let mut sorted = got.clone();
    sorted.sort();
    let mut want_sorted = want.clone();
    want_sorted.sort();
    assert_eq!(
        sorted, want_sorted,
        "every event once: nothing lost, nothing doubled"
    );
    for id in &ids {
        let versions: Vec<u64> = got
            .iter()
            .filter(|g| g.0 == id.to_string())
            .map(|g| g.1)
            .collect();
        assert_eq!(versions, [1, 2], "per-aggregate order");
    }
    db.drop_db().await;
}

#[tokio::test]
async fn relay_on_sqlite_and_the_embedded_bus() {
    scenario(
        TestDb::sqlite().await,
        Bus::Embedded(EmbeddedBus::new(&["test"])),
    )
    .await;
}

#[tokio::test]
async fn relay_on_postgres_and_nats() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    let url =
        std::env::var("BANLI_TEST_NATS_URL").unwrap_or_else(|_| "nats://127.0.0.1:4222".into());
    let unique = uuid::Uuid::now_v7().simple().to_string();
    let config = NatsConfig {
        url,
        stream: format!("BANLI_TEST_{unique}"),
        prefix: format!("banlitest{unique}"),
        ack_wait: Duration::from_secs(1),
        max_age: Duration::from_secs(3600),
        auth: Default::default(),
    };
    let bus = match NatsBus::connect(config).await {
        Ok(b) => b,
        Err(e) if banli_db::testing::services_required() => panic!("NATS is required: {e}"),
        Err(e) => {
            eprintln!("notice: skipping the NATS relay test: {e}");
            db.drop_db().await;
            return;
        }
    };
    scenario(db, Bus::Nats(Box::new(bus.clone()))).await;
    bus.delete_stream().await;
}
