//! The NATS permissions shipped in `deploy/nats/nats-server.conf`, on a real `nats-server`
//! started with that file (its TLS block left out, a free port): each service's user can do
//! what banli does — create the stream, publish its own event types, consume — and cannot
//! publish another service's event types.

use std::time::Duration;

use banli_eventlog::{Bus, Envelope, NatsBus, NatsConfig};
use uuid::Uuid;

fn nats_server() -> Option<std::path::PathBuf> {
    [
        "/usr/sbin/nats-server",
        "/usr/bin/nats-server",
        "/usr/local/bin/nats-server",
    ]
    .into_iter()
    .map(std::path::PathBuf::from)
    .find(|p| p.exists())
}

fn envelope(event_type: &str) -> Envelope {
    Envelope {
        event_id: Uuid::now_v7(),
        event_type: event_type.to_owned(),
        aggregate_id: Uuid::now_v7().to_string(),
        aggregate_version: 1,
        payload: b"{}".to_vec(),
    }
}

/// Kills the server when the test ends, however it ends.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn each_service_publishes_only_its_own_event_types() {
    let Some(server) = nats_server() else {
        if banli_db::testing::services_required() {
            panic!("nats-server is required (Debian package nats-server)");
        }
        eprintln!("notice: skipping the NATS permissions test: no nats-server binary");
        return;
    };
    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/nats/nats-server.conf"
    ))
    .expect("deploy/nats/nats-server.conf");
    let dir = std::env::temp_dir().join(format!("banli-nats-perm-{}", Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).expect("dir");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
        .port();
    // The same file without its TLS block (no certificates here), on a free port and a
    // store of its own.
    let start = shipped.find("\ntls {").expect("a tls block");
    let end = start + shipped[start..].find("\n}\n").expect("its end") + 3;
    let config = format!("{}{}", &shipped[..start], &shipped[end..])
        .replace("port: 4222", &format!("port: {port}\nhost: 127.0.0.1"))
        .replace(
            "/data/jetstream",
            &dir.join("js").to_string_lossy().replace('\\', "/"),
        );
    let path = dir.join("nats.conf");
    std::fs::write(&path, config).expect("write config");
    let child = std::process::Command::new(server)
        .arg("-c")
        .arg(&path)
        .env("BANLI_NATS_SUGGESTIONS_PASSWORD", "s-pass")
        .env("BANLI_NATS_COORDINATION_PASSWORD", "c-pass")
        .env("BANLI_NATS_FOLLOWUP_PASSWORD", "f-pass")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("nats-server starts");
    let _running = Running(child);
    let mut up = false;
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        up,
        "nats-server with the shipped configuration did not start"
    );

    let connect = |user: &str, password: &str| {
        NatsBus::connect(NatsConfig {
            ack_wait: Duration::from_secs(1),
            ..NatsConfig::new(&format!("nats://{user}:{password}@127.0.0.1:{port}"))
        })
    };
    // Each user creates (or finds) the stream: what `banli serve` does at start.
    let coordination = connect("coordination", "c-pass")
        .await
        .expect("coordination connects and creates the stream");
    let suggestions = connect("suggestions", "s-pass")
        .await
        .expect("suggestions connects");
    assert!(connect("coordination", "wrong").await.is_err());

    let own = envelope("coordination.opinion_submitted");
    Bus::Nats(Box::new(coordination.clone()))
        .publish(&own)
        .await
        .expect("coordination publishes its own event type");
    let forged = tokio::time::timeout(
        Duration::from_secs(15),
        Bus::Nats(Box::new(coordination.clone())).publish(&envelope("suggestion.assigned")),
    )
    .await;
    assert!(
        !matches!(forged, Ok(Ok(()))),
        "coordination published a suggestion event"
    );
    Bus::Nats(Box::new(suggestions.clone()))
        .publish(&envelope("suggestion.assigned"))
        .await
        .expect("suggestions publishes its own event type");

    // The suggestions service consumes coordination's events with its own user.
    let mut consumer = Bus::Nats(Box::new(suggestions))
        .consumer("suggestions", Some("coordination."))
        .await
        .expect("a consumer");
    let d = consumer
        .next(Duration::from_secs(5))
        .await
        .expect("next")
        .expect("the event arrives");
    assert_eq!(d.envelope.event_id, own.event_id);
    d.ack().await.expect("ack");
    let _ = std::fs::remove_dir_all(dir);
}
