//! Deliveries against real receivers started here: an SMTP server (a minimal sink speaking the
//! protocol over TCP) and an HTTP SMS gateway. Sent once, signed, retried with backoff while the
//! receiver fails (across a restart of the deliverer), given up after the policy's attempts,
//! undeliverable without an address — on SQLite and PostgreSQL.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use banli_db::testing::TestDb;
use banli_notify::deliver::{Deliverer, Policy, SMS_TEMPLATE, Sms, Smtp};
use banli_notify::store::{Channel, NewDelivery, NewNotification, Recipient, Store};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::sync::Mutex;

/// What the SMTP sink received: (MAIL FROM, RCPT TO, the message).
type Mails = Arc<Mutex<Vec<(String, String, String)>>>;

/// An SMTP sink on 127.0.0.1: accepts every message, or answers 451 to MAIL while `fail` is set.
async fn smtp_sink(mails: Mails, fail: Arc<AtomicBool>) -> u16 {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        loop {
            let Ok((socket, _)) = listener.accept().await else {
                return;
            };
            let (mails, fail) = (mails.clone(), fail.clone());
            tokio::spawn(async move {
                let (r, mut w) = socket.into_split();
                let mut lines = BufReader::new(r).lines();
                let _ = w.write_all(b"220 sink ESMTP\r\n").await;
                let (mut from, mut to) = (String::new(), String::new());
                while let Ok(Some(line)) = lines.next_line().await {
                    let upper = line.to_ascii_uppercase();
                    let reply: &[u8] = if upper.starts_with("EHLO") || upper.starts_with("HELO") {
                        b"250-sink\r\n250 8BITMIME\r\n"
                    } else if upper.starts_with("MAIL FROM:") {
                        if fail.load(Ordering::SeqCst) {
                            b"451 try again later\r\n"
                        } else {
                            from = line[10..].trim().to_owned();
                            b"250 ok\r\n"
                        }
                    } else if upper.starts_with("RCPT TO:") {
                        to = line[8..].trim().to_owned();
                        b"250 ok\r\n"
                    } else if upper == "DATA" {
                        let _ = w.write_all(b"354 go ahead\r\n").await;
                        let mut data = String::new();
                        while let Ok(Some(l)) = lines.next_line().await {
                            if l == "." {
                                break;
                            }
                            data.push_str(&l);
                            data.push('\n');
                        }
                        mails.lock().await.push((from.clone(), to.clone(), data));
                        b"250 queued\r\n"
                    } else if upper == "QUIT" {
                        let _ = w.write_all(b"221 bye\r\n").await;
                        return;
                    } else {
                        b"250 ok\r\n"
                    };
                    if w.write_all(reply).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    port
}

type Texts = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

async fn gateway(texts: Texts, status: Arc<AtomicU16>) -> u16 {
    async fn hook(
        State((texts, status)): State<(Texts, Arc<AtomicU16>)>,
        headers: HeaderMap,
        body: Bytes,
    ) -> axum::http::StatusCode {
        let code = status.load(Ordering::SeqCst);
        if code == 200 {
            texts.lock().await.push((headers, body));
        }
        axum::http::StatusCode::from_u16(code).unwrap_or(axum::http::StatusCode::OK)
    }
    let app = axum::Router::new()
        .route("/sms", axum::routing::post(hook))
        .with_state((texts, status));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let port = listener.local_addr().expect("addr").port();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    port
}

fn note(deputy: &str, email: Option<&str>, phone: Option<&str>) -> NewNotification {
    let id = uuid::Uuid::now_v7().to_string();
    let delivery = |channel, address: Option<&str>| NewDelivery {
        channel,
        state: if address.is_some() {
            "pending"
        } else {
            "undeliverable"
        },
        address: address.map(str::to_owned),
        last_error: address
            .is_none()
            .then(|| "the deputy has no address".to_owned()),
        quiet_from: None,
        quiet_to: None,
    };
    NewNotification {
        id: id.clone(),
        source_event: id,
        recipient: Recipient::Deputy(deputy.to_owned()),
        suggestion_id: uuid::Uuid::now_v7().to_string(),
        kind: "replied".into(),
        language: "zh".into(),
        title: "【建议办理】2020-0123号已答复".into(),
        body: "省工业和信息化厅已对您的建议作出书面答复。".into(),
        created_at: (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64,
        deliveries: vec![
            delivery(Channel::Email, email),
            delivery(Channel::Sms, phone),
        ],
    }
}

fn policy() -> Policy {
    Policy {
        backoff: Duration::from_millis(200),
        max_backoff: Duration::from_secs(1),
        max_attempts: 4,
        concurrency: 8,
        lease: Duration::from_secs(5),
        idle: Duration::from_millis(20),
        timeout: Duration::from_secs(5),
    }
}

async fn rounds_until(
    d: &Deliverer,
    store: &Store,
    done: impl Fn(&[banli_notify::store::DeliveryRow]) -> bool,
) {
    for _ in 0..400 {
        d.round().await.expect("round");
        let rows = store.deliveries(None, None, None, 500).await.expect("rows");
        if done(&rows) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{:?}", store.deliveries(None, None, None, 500).await);
}

async fn deliveries(db: TestDb) {
    let store = Store::new(db.pool.clone());
    store
        .migrate(&banli_eventlog::inbox::Inbox::new("notify", "notify"))
        .await
        .expect("migrate");
    let (mails, fail) = (Mails::default(), Arc::new(AtomicBool::new(false)));
    let smtp_port = smtp_sink(mails.clone(), fail.clone()).await;
    let (texts, status) = (Texts::default(), Arc::new(AtomicU16::new(200)));
    let sms_port = gateway(texts.clone(), status.clone()).await;
    let loopback = banli_egress::policy::Egress::new(
        banli_egress::policy::Egress::parse_list("127.0.0.0/8").expect("cidr"),
    );
    let make = || {
        Deliverer::new(
            store.clone(),
            policy(),
            Some(Smtp {
                url: format!("smtp://127.0.0.1:{smtp_port}"),
                from: "办理平台 <banli@example.gov.cn>".into(),
            }),
            Some(Sms {
                url: format!("http://127.0.0.1:{sms_port}/sms"),
                template: SMS_TEMPLATE.into(),
                secret: "sms-secret".into(),
                egress: loopback.clone(),
            }),
        )
        .expect("deliverer")
    };
    let d = make();
    // One deputy with both addresses, one with neither: the second's are undeliverable.
    let n = note("deputy-1", Some("liu@example.cn"), Some("+8613800000000"));
    let bare = note("deputy-2", None, None);
    assert_eq!(
        store
            .queue(vec![n.clone(), bare.clone()])
            .await
            .expect("queue"),
        2
    );
    rounds_until(&d, &store, |rows| {
        rows.iter().filter(|r| r.state == "sent").count() == 2
    })
    .await;
    let rows = store
        .deliveries(Some(&Recipient::Deputy("deputy-2".into())), None, None, 10)
        .await
        .expect("rows");
    assert!(
        rows.iter().all(|r| r.state == "undeliverable"
            && r.last_error.as_deref() == Some("the deputy has no address")),
        "{rows:?}"
    );
    {
        let m = mails.lock().await;
        assert_eq!(m.len(), 1, "{m:?}");
        assert_eq!(m[0].1, "<liu@example.cn>");
        assert!(m[0].2.contains(&format!("<{}@banli>", n.id)), "{}", m[0].2);
        // The Chinese subject is encoded (RFC 2047), not sent raw.
        assert!(m[0].2.contains("Subject: =?utf-8?"), "{}", m[0].2);
        let t = texts.lock().await;
        assert_eq!(t.len(), 1);
        let body: serde_json::Value = serde_json::from_slice(&t[0].1).expect("json");
        assert_eq!(body["to"], "+8613800000000");
        assert!(
            body["text"].as_str().unwrap_or_default().contains("已答复"),
            "{body}"
        );
        let sig = t[0]
            .0
            .get("banli-signature")
            .and_then(|v| v.to_str().ok())
            .expect("signed");
        let now = time::OffsetDateTime::now_utc().unix_timestamp();
        banli_egress::sign::verify(sig, b"sms-secret", &t[0].1, now).expect("a valid signature");
        assert!(
            banli_egress::sign::verify(sig, b"another secret", &t[0].1, now).is_err(),
            "{sig}"
        );
    }
    // Sent is sent: more rounds send nothing again.
    for _ in 0..3 {
        d.round().await.expect("round");
    }
    assert_eq!(mails.lock().await.len(), 1);
    assert_eq!(texts.lock().await.len(), 1);

    // The receivers fail: retried with backoff, the error recorded; a new deliverer (a restart)
    // picks the retries up; once they recover, each is sent once.
    fail.store(true, Ordering::SeqCst);
    status.store(503, Ordering::SeqCst);
    let again = note("deputy-1", Some("liu@example.cn"), Some("+8613800000000"));
    store.queue(vec![again.clone()]).await.expect("queue");
    rounds_until(&d, &store, |rows| {
        rows.iter()
            .filter(|r| r.notification_id == again.id)
            .all(|r| r.attempts >= 2 && r.state == "pending")
    })
    .await;
    let rows = store
        .deliveries(None, None, Some("pending"), 10)
        .await
        .expect("rows");
    assert!(
        rows.iter()
            .any(|r| r.last_error.as_deref().is_some_and(|e| e.contains("451"))),
        "{rows:?}"
    );
    assert!(
        rows.iter()
            .any(|r| r.last_error.as_deref().is_some_and(|e| e.contains("503"))),
        "{rows:?}"
    );
    drop(d);
    fail.store(false, Ordering::SeqCst);
    status.store(200, Ordering::SeqCst);
    let restarted = make();
    rounds_until(&restarted, &store, |rows| {
        rows.iter()
            .filter(|r| r.notification_id == again.id)
            .all(|r| r.state == "sent")
    })
    .await;
    assert_eq!(mails.lock().await.len(), 2);
    assert_eq!(texts.lock().await.len(), 2);

    // A receiver that never recovers: given up after the policy's attempts.
    status.store(500, Ordering::SeqCst);
    let doomed = note("deputy-3", None, Some("+8613900000000"));
    store.queue(vec![doomed.clone()]).await.expect("queue");
    rounds_until(&restarted, &store, |rows| {
        rows.iter()
            .any(|r| r.notification_id == doomed.id && r.channel == "sms" && r.state == "failed")
    })
    .await;
    let rows = store
        .deliveries(
            Some(&Recipient::Deputy("deputy-3".into())),
            None,
            Some("failed"),
            10,
        )
        .await
        .expect("rows");
    assert_eq!(rows[0].attempts, 4, "{rows:?}");
}

#[tokio::test]
async fn deliveries_on_sqlite() {
    deliveries(TestDb::sqlite().await).await;
}

#[tokio::test]
async fn deliveries_on_postgres() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    deliveries(db).await;
}
