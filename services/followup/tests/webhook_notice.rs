//! A webhook endpoint the coordination service disables (its receiver failed for longer than
//! the policy allows) publishes `webhook.disabled`; the follow-up service raises one supervision
//! notice from the assigning office to the agency (trigger `webhook_disabled`), once per event.

use std::sync::Arc;
use std::time::Duration;

use banli_coordination::webhooks::deliver::{Deliverer, Policy};
use banli_coordination::webhooks::{EndpointRow, SecretKey, now_ms};
use banli_db::testing::TestDb;
use banli_domain::ids::AgencyId;
use banli_eventlog::{Envelope, Handled, Handler, Incoming};
use banli_followup::store::Store;
use banli_followup::webhook_notices::WebhookConsumer;

#[tokio::test]
async fn a_disabled_webhook_raises_a_notice_to_its_agency() {
    // The coordination side: an endpoint whose receiver does not answer, given up at once.
    let cdb = TestDb::sqlite().await;
    let cstore = banli_coordination::store::Store::new(cdb.pool.clone());
    cstore.migrate().await.expect("migrations");
    let key = Arc::new(
        SecretKey::generate_text()
            .and_then(|t| SecretKey::parse(&t))
            .expect("key"),
    );
    let agency = AgencyId::new();
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a port")
        .port();
    let id = uuid::Uuid::now_v7().to_string();
    cstore
        .insert_webhook(
            EndpointRow {
                id: id.clone(),
                agency_id: agency.to_string(),
                url: format!("http://127.0.0.1:{closed}/hook"),
                event_types: "[]".into(),
                description: "OA".into(),
                state: "active".into(),
                disabled_reason: None,
                cursor: 0,
                failures: 0,
                failing_since: None,
                next_attempt_at: 0,
                version: 1,
                created_at: now_ms(),
                updated_at: now_ms(),
            },
            uuid::Uuid::now_v7().to_string(),
            key.seal(b"whsec_test", &id).expect("sealed"),
        )
        .await
        .expect("endpoint");
    cstore
        .append_feed(vec![banli_coordination::feed::FeedEntry {
            agency_id: agency,
            event_id: uuid::Uuid::now_v7(),
            event_type: "suggestion.assigned".into(),
            aggregate_type: "suggestion".into(),
            aggregate_id: uuid::Uuid::now_v7().to_string(),
            aggregate_version: 1,
            occurred_at: "2020-03-02T09:00:00Z".into(),
            payload: "{}".into(),
        }])
        .await
        .expect("feed");
    let policy = Policy {
        timeout: Duration::from_secs(1),
        disable_after: Duration::ZERO,
        // The receiver is on loopback, which the egress policy refuses unless allowed.
        egress: banli_coordination::webhooks::egress::Egress::new(
            banli_coordination::webhooks::egress::Egress::parse_list("127.0.0.0/8")
                .expect("a network"),
        ),
        ..Policy::default()
    };
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(
        Deliverer::new(cstore.clone(), key, policy)
            .expect("deliverer")
            .run(async {
                let _ = stopped.await;
            }),
    );
    let mut disabled = None;
    for _ in 0..500 {
        let rows = cstore
            .outbox()
            .pending(cstore.pool(), 100)
            .await
            .expect("outbox");
        if let Some(r) = rows
            .into_iter()
            .find(|r| r.event_type == "webhook.disabled")
        {
            disabled = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = stop.send(());
    let r = disabled.expect("the disable event is in the outbox");
    let endpoint = cstore.webhook(&id).await.expect("read").expect("endpoint");
    assert_eq!(endpoint.state, "disabled");

    // The follow-up side takes the event as the bus delivers it.
    let fdb = TestDb::sqlite().await;
    let fstore = Store::new(fdb.pool.clone());
    let office = AgencyId::new();
    let consumer = WebhookConsumer::new(fstore.clone(), office);
    let events = banli_followup::consumer::EventConsumer::new(
        fstore.clone(),
        banli_domain::RuleProfile::hunan().reminders,
    );
    fstore.migrate(events.inbox()).await.expect("migrations");
    consumer
        .inbox()
        .migrate(fstore.pool())
        .await
        .expect("inbox");
    let incoming = Incoming {
        envelope: Envelope {
            event_id: r.event_id,
            event_type: r.event_type,
            aggregate_id: r.aggregate_id,
            aggregate_version: r.aggregate_version,
            payload: r.payload.into_bytes(),
        },
        attempt: 1,
    };
    let out = consumer
        .handle(std::slice::from_ref(&incoming))
        .await
        .expect("handled");
    assert_eq!(out, vec![Handled::Applied]);
    let again = consumer.handle(&[incoming]).await.expect("handled");
    assert_eq!(again, vec![Handled::Duplicate]);
    let notices = fstore
        .notices(Some(&agency.to_string()), None, 10)
        .await
        .expect("notices");
    assert_eq!(notices.len(), 1, "{notices:?}");
    let n: serde_json::Value = serde_json::from_str(&notices[0].0).expect("json");
    assert_eq!(n["trigger"], "webhook_disabled", "{n}");
    assert_eq!(n["issuer"], office.to_string().as_str());
    assert_eq!(n["target"], agency.to_string().as_str());
    assert!(
        n["body"]
            .as_str()
            .is_some_and(|b| b.contains(&format!("127.0.0.1:{closed}")) && b.contains(&id)),
        "{n}"
    );
}
