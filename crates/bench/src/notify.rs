//! Notifications to deputies: e-mail deliveries to a local SMTP server (a sink speaking the
//! protocol) and SMS deliveries to a local HTTP gateway, through the notification service's
//! queue and deliverer — the sustained rate with N deliveries waiting, and commit → delivered
//! at a paced 50/s — beside plain SMTP sends of the same messages from the same client
//! (pooled, same concurrency) to the same sink, in the same run. Nothing is retried by the
//! bench: every delivery not `sent` at the end is counted and printed.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use banli_db::testing::TestDb;
use banli_notify::deliver::{Deliverer, Policy, SMS_TEMPLATE, Sms, Smtp, smtp_transport};
use banli_notify::store::{Channel, NewDelivery, NewNotification, Store};
use lettre::AsyncTransport;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

use crate::Backend;

const CONCURRENCY: usize = 32;

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// An SMTP sink on loopback counting the messages it accepted.
async fn smtp_sink(accepted: Arc<AtomicU64>) -> Result<u16> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let accepted = accepted.clone();
            tokio::spawn(async move {
                let (r, mut w) = socket.into_split();
                let mut lines = BufReader::new(r).lines();
                if w.write_all(b"220 sink ESMTP\r\n").await.is_err() {
                    return;
                }
                while let Ok(Some(line)) = lines.next_line().await {
                    let upper = line.to_ascii_uppercase();
                    let reply: &[u8] = if upper.starts_with("EHLO") {
                        b"250-sink\r\n250-PIPELINING\r\n250 8BITMIME\r\n"
                    } else if upper == "DATA" {
                        if w.write_all(b"354 go ahead\r\n").await.is_err() {
                            return;
                        }
                        while let Ok(Some(l)) = lines.next_line().await {
                            if l == "." {
                                break;
                            }
                        }
                        accepted.fetch_add(1, Ordering::Relaxed);
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
    Ok(port)
}

/// An SMS gateway on loopback counting the POSTs it accepted.
async fn gateway(accepted: Arc<AtomicU64>) -> Result<u16> {
    let app = axum::Router::new().route(
        "/sms",
        axum::routing::post(move |_body: axum::body::Bytes| {
            let accepted = accepted.clone();
            async move {
                accepted.fetch_add(1, Ordering::Relaxed);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(port)
}

fn now_ms() -> i64 {
    (time::OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64
}

fn note(k: u64, channel: Channel) -> NewNotification {
    let id = uuid::Uuid::now_v7().to_string();
    NewNotification {
        id: id.clone(),
        source_event: id,
        recipient: banli_notify::store::Recipient::Deputy(format!("deputy-{}", k % 500)),
        suggestion_id: format!("suggestion-{}", k % 5_000),
        kind: "replied".into(),
        language: "zh".into(),
        title: format!("【建议办理】2020-{k:04}号已答复"),
        body: "湖南省工业和信息化厅已对您的建议作出书面答复（湘工信函〔2020〕12号，A类（已解决或基本解决））。请登录平台查阅答复，并对办理情况提出意见。".into(),
        created_at: now_ms(),
        deliveries: vec![NewDelivery {
            channel,
            state: "pending",
            address: Some(match channel {
                Channel::Sms => format!("+86138{:08}", k % 100_000_000),
                _ => format!("deputy{}@example.cn", k % 500),
            }),
            last_error: None,
            quiet_from: None,
            quiet_to: None,
        }],
    }
}

async fn sent(store: &Store) -> Result<(u64, u64)> {
    let rows: Vec<(String, i64)> = banli_db::on_pool!(store.pool(), p => sqlx::query_as(
        "SELECT state, COUNT(*) FROM notify_deliveries GROUP BY state")
        .fetch_all(p)
        .await)?;
    let get = |s: &str| {
        rows.iter()
            .find(|(x, _)| x == s)
            .map_or(0, |(_, n)| *n as u64)
    };
    Ok((get("sent"), get("failed")))
}

pub async fn run(backend: Backend, count: u64) -> Result<()> {
    println!(
        "\n== notifications on {backend:?}: {count} deliveries per channel, {CONCURRENCY} in flight"
    );
    let (smtp_count, sms_count) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
    let smtp_port = smtp_sink(smtp_count.clone()).await?;
    let sms_port = gateway(sms_count.clone()).await?;
    let url = format!("smtp://127.0.0.1:{smtp_port}");
    let from = "建议办理平台 <banli@example.gov.cn>";

    // Baseline: the same messages straight from the same client, no queue.
    let transport = smtp_transport(&url, Duration::from_secs(15))?;
    let started = Instant::now();
    let next = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..CONCURRENCY {
        let (transport, next, errors) = (transport.clone(), next.clone(), errors.clone());
        tasks.spawn(async move {
            loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                if k >= count {
                    return;
                }
                let n = note(k, Channel::Email);
                let m = lettre::Message::builder()
                    .from(from.parse().expect("a mailbox"))
                    .to(n.deliveries[0]
                        .address
                        .clone()
                        .unwrap_or_default()
                        .parse()
                        .expect("an address"))
                    .subject(n.title)
                    .message_id(Some(format!("<{}@banli>", n.id)))
                    .header(lettre::message::header::ContentType::TEXT_PLAIN)
                    .body(n.body)
                    .expect("a message");
                if transport.send(m).await.is_err() {
                    errors.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    let base = count as f64 / started.elapsed().as_secs_f64();
    let base_errors = errors.load(Ordering::Relaxed);

    let db = match backend {
        Backend::Sqlite => TestDb::sqlite().await,
        Backend::Postgres => TestDb::postgres().await.context("PostgreSQL is needed")?,
    };
    let store = Store::new(db.pool.clone());
    store
        .migrate(&banli_eventlog::inbox::Inbox::new("notify", "notify"))
        .await?;
    let loopback = banli_coordination::webhooks::egress::Egress::new(
        banli_coordination::webhooks::egress::Egress::parse_list("127.0.0.0/8")
            .map_err(|e| anyhow::anyhow!(e))?,
    );
    let policy = Policy {
        concurrency: CONCURRENCY,
        idle: Duration::from_millis(200),
        ..Policy::default()
    };
    let deliverer = Deliverer::new(
        store.clone(),
        policy,
        Some(Smtp {
            url: url.clone(),
            from: from.into(),
        }),
        Some(Sms {
            url: format!("http://127.0.0.1:{sms_port}/sms"),
            template: SMS_TEMPLATE.into(),
            secret: "bench-secret".into(),
            egress: loopback,
        }),
    )?;

    println!("{:<62} {:>10} {:>8}", "", "per s", "refused");
    println!(
        "{:<62} {:>10.0} {:>8}",
        "baseline: plain SMTP sends, same client, same sink", base, base_errors
    );
    let mut total = 0u64;
    for (label, channel, counter) in [
        (
            "e-mail deliveries through the queue (SMTP sink)",
            Channel::Email,
            &smtp_count,
        ),
        (
            "SMS deliveries through the queue (HTTP gateway, signed)",
            Channel::Sms,
            &sms_count,
        ),
    ] {
        let mut k = 0;
        while k < count {
            let chunk: Vec<NewNotification> = (k..(k + 2_000).min(count))
                .map(|i| note(i, channel))
                .collect();
            k += chunk.len() as u64;
            store.queue(chunk).await?;
        }
        total += count;
        let before = counter.load(Ordering::Relaxed);
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let worker = tokio::spawn(deliverer.clone().run(async {
            let _ = stop_rx.await;
        }));
        let started = Instant::now();
        loop {
            let (done, failed) = sent(&store).await?;
            if done + failed >= total || started.elapsed() > Duration::from_secs(300) {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let secs = started.elapsed().as_secs_f64();
        let _ = stop_tx.send(());
        let _ = worker.await;
        let (done, failed) = sent(&store).await?;
        let got = counter.load(Ordering::Relaxed) - before;
        println!(
            "{label:<62} {:>10.0} {:>8}",
            count as f64 / secs,
            total - done.min(total) + failed
        );
        ensure!(got == count, "{label}: the receiver got {got} of {count}");
    }

    // Commit → delivered at a paced 50/s for 10 s.
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let worker = tokio::spawn(deliverer.clone().run(async {
        let _ = stop_rx.await;
    }));
    let paced = 500u64;
    let mut tick = tokio::time::interval(Duration::from_millis(20));
    let mut ids = Vec::with_capacity(paced as usize);
    for k in 0..paced {
        tick.tick().await;
        let n = note(1_000_000 + k, Channel::Email);
        ids.push(n.id.clone());
        store.queue(vec![n]).await?;
    }
    total += paced;
    let started = Instant::now();
    while sent(&store).await?.0 < total && started.elapsed() < Duration::from_secs(60) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let _ = stop_tx.send(());
    let _ = worker.await;
    let rows: Vec<(i64, Option<i64>)> = banli_db::on_pool!(store.pool(), p => sqlx::query_as(
        "SELECT created_at, sent_at FROM notify_deliveries WHERE created_at >= (SELECT MIN(created_at) FROM notify_deliveries WHERE notification_id = $1)")
        .bind(&ids[0])
        .fetch_all(p)
        .await)?;
    let mut ms: Vec<f64> = rows
        .iter()
        .filter_map(|(c, s)| s.map(|s| (s - c) as f64))
        .collect();
    let missing = rows.len() - ms.len();
    ensure!(!ms.is_empty(), "nothing was delivered at 50/s");
    println!(
        "commit → delivered at 50/s (e-mail): p50 {:.0} ms, p99 {:.0} ms, {} of {} not delivered",
        pct(&mut ms, 0.5),
        pct(&mut ms, 0.99),
        missing,
        rows.len()
    );
    println!(
        "goal: >= 500 deliveries/s to each of the SMTP sink and the gateway; commit → delivered p99 <= 1 s at 50/s"
    );
    Ok(())
}
