//! Webhooks end to end: an agency's endpoints get its feed as signed POSTs, verified here from
//! the receiver's side; another agency's endpoint gets nothing of it; a failing receiver is
//! retried, logged, disabled with an event in the feed, and loses nothing once re-enabled;
//! a rotated secret overlaps; a replay delivers again with the same delivery ids.

use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::HeaderMap;
use banli_coordination::webhooks::deliver::{Deliverer, Policy};
use banli_coordination::webhooks::sign::verify;
use banli_coordination::webhooks::{SecretKey, load_or_create_key};
use serde_json::{Value, json};

use crate::support::{Api, World};

/// What a receiver got: (signature header, delivery id, event type, body).
type Got = Arc<Mutex<Vec<(String, String, String, Bytes)>>>;

/// A receiver on a local port answering `status`; returns its URL.
async fn receiver(got: Got, status: Arc<AtomicU16>) -> String {
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: HeaderMap, body: Bytes| {
            let (got, status) = (got.clone(), status.clone());
            async move {
                let h = |n: &str| {
                    headers
                        .get(n)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned()
                };
                if let Ok(mut g) = got.lock() {
                    g.push((
                        h("banli-signature"),
                        h("banli-delivery"),
                        h("banli-event"),
                        body,
                    ));
                }
                // 599: a receiver that hangs (longer than the delivery timeout), then fails.
                let code = status.load(Ordering::SeqCst);
                if code == 599 {
                    tokio::time::sleep(Duration::from_secs(3)).await;
                }
                axum::http::StatusCode::from_u16(code.min(500))
                    .unwrap_or(axum::http::StatusCode::OK)
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}/hook")
}

fn now() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp()
}

/// Waits until `done` holds for what the receiver got (at most 20 s).
async fn until(got: &Got, done: impl Fn(&[(String, String, String, Bytes)]) -> bool) {
    for _ in 0..2000 {
        if got.lock().map(|g| done(&g)).unwrap_or(false) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!(
        "the receiver never got what was expected: {:?}",
        got.lock()
            .map(|g| g.iter().map(|x| x.2.clone()).collect::<Vec<_>>())
    );
}

#[tokio::test]
async fn webhooks_deliver_signed_and_survive_failure() {
    let w = World::new(Api::sqlite().await).await;
    let (api, k) = (&w.api, &w.keys);
    let dir = std::env::temp_dir().join(format!("banli-webhook-key-{}", uuid::Uuid::now_v7()));
    let key = Arc::new(load_or_create_key(&dir).unwrap_or_else(|e| panic!("{e}")));
    // The file is 0600 and reads back as the same key.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&dir)
            .expect("key file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let again: SecretKey = load_or_create_key(&dir).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        again
            .open(&key.seal(b"x", "ep").unwrap_or_default(), "ep")
            .as_deref(),
        Ok(&b"x"[..])
    );
    let _ = std::fs::remove_file(&dir);
    drop(key);
    // The server's key (the test API set it at start).
    let key = api.webhook_key.clone();
    let policy = Policy {
        timeout: Duration::from_secs(2),
        first_retry: Duration::from_millis(50),
        max_backoff: Duration::from_millis(200),
        disable_after: Duration::from_millis(1500),
        egress: crate::support::loopback_egress(),
        ..Policy::default()
    };
    let store = api.coordination.store().clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(
        Deliverer::new(store, key, policy)
            .unwrap_or_else(|e| panic!("{e}"))
            .run(async {
                let _ = stopped.await;
            }),
    );

    let (lead_got, lead_status): (Got, _) = (Default::default(), Arc::new(AtomicU16::new(200)));
    let (other_got, other_status): (Got, _) = (Default::default(), Arc::new(AtomicU16::new(200)));
    let lead_url = receiver(lead_got.clone(), lead_status.clone()).await;
    let other_url = receiver(other_got.clone(), other_status).await;
    let (co1_got, co1_status): (Got, _) = (Default::default(), Arc::new(AtomicU16::new(200)));
    let co1_url = receiver(co1_got.clone(), co1_status).await;

    // Bad input first.
    let r = api
        .post(
            "/v1/webhooks",
            &k.lead_admin,
            json!({"url": "ftp://agency.example/hook"}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    let r = api
        .post(
            "/v1/webhooks",
            &k.lead_admin,
            json!({"url": lead_url, "event_types": ["Replied!"]}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    // The egress policy (this server allows 127.0.0.0/8 only, as an operator would for its
    // receivers): internal addresses are refused with their class and the setting named;
    // the public internet needs https.
    for (url, class) in [
        (
            "https://169.254.169.254/latest/meta-data/",
            "cloud metadata",
        ),
        ("https://10.0.0.1/hook", "private"),
        ("http://[::1]:22/", "loopback"),
        ("https://100.64.0.1/hook", "shared (CGNAT)"),
        ("https://[fd00::1]/hook", "unique local"),
        ("https://224.0.0.1/hook", "multicast"),
        ("https://[::ffff:169.254.169.254]/", "cloud metadata"),
    ] {
        let r = api
            .post("/v1/webhooks", &k.lead_admin, json!({"url": url}))
            .await;
        assert_eq!(r.status, 422, "{url}: {}", r.body);
        let detail = r.body["detail"].as_str().unwrap_or_default();
        assert!(
            detail.contains(class) && detail.contains("webhook_allowed_networks"),
            "{url}: {detail}"
        );
    }
    let r = api
        .post(
            "/v1/webhooks",
            &k.lead_admin,
            json!({"url": "http://93.184.216.34/hook"}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    assert!(
        r.body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("https://")),
        "{}",
        r.body
    );
    let r = api
        .post("/v1/webhooks", &k.lead_handler, json!({"url": lead_url}))
        .await;
    assert_eq!(r.status, 403, "{}", r.body);
    let r = api
        .post("/v1/webhooks", &k.deputy, json!({"url": lead_url}))
        .await;
    assert_eq!(r.status, 403, "{}", r.body);

    // The lead's endpoint, from the start of its feed; the secret is shown once.
    let create = json!({"url": lead_url, "after": "start", "description": "OA system"});
    let first = api
        .call(
            axum::http::Method::POST,
            "/v1/webhooks",
            Some(&k.lead_admin),
            Some(create.clone()),
            &[("idempotency-key", "hook-1")],
        )
        .await;
    assert_eq!(first.status, 201, "{}", first.body);
    let secret = first.body["secret"]
        .as_str()
        .expect("secret shown")
        .to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    let id = first.body["id"].as_str().expect("id").to_owned();
    let replayed = api
        .call(
            axum::http::Method::POST,
            "/v1/webhooks",
            Some(&k.lead_admin),
            Some(create),
            &[("idempotency-key", "hook-1")],
        )
        .await;
    assert_eq!(replayed.body["id"], id.as_str(), "{}", replayed.body);
    assert!(
        replayed.body.get("secret").is_none(),
        "a replay never shows the secret: {}",
        replayed.body
    );
    assert_eq!(
        api.get("/v1/webhooks", &k.lead_admin)
            .await
            .body
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    assert_eq!(
        api.get(&format!("/v1/webhooks/{id}"), &k.co1_admin)
            .await
            .status,
        404
    );
    api.ok("/v1/webhooks", &k.other_admin, json!({"url": other_url}))
        .await;

    // A suggestion assigned to the lead (and co1, co2): the lead's receiver gets its events,
    // each signed, in feed order; the other agency's gets nothing.
    api.ok("/v1/webhooks", &k.co1_admin, json!({"url": co1_url}))
        .await;
    let (sid, lead, _, _) = w.assigned("2020-0801").await;
    let feed = api
        .eventually("/v1/feed?limit=1000", &k.lead_admin, |f| {
            f["items"].as_array().is_some_and(|i| i.len() >= 3)
        })
        .await;
    let count = feed["items"].as_array().expect("items").len();
    until(&lead_got, |g| g.len() >= count).await;
    let got = lead_got.lock().expect("lock").clone();
    for (sig, delivery, event, body) in &got {
        assert_eq!(
            verify(sig, secret.as_bytes(), body, now()),
            Ok(()),
            "{event}"
        );
        assert!(verify(sig, b"whsec_guess", body, now()).is_err());
        let item: Value = serde_json::from_slice(body).expect("json body");
        assert_eq!(item["event_id"], delivery.as_str());
        assert_eq!(item["event_type"], event.as_str());
        assert_eq!(item["aggregate_id"], sid.as_str());
    }
    let delivered: Vec<&str> = got.iter().map(|x| x.1.as_str()).collect();
    let fed: Vec<&str> = feed["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|i| i["event_id"].as_str())
        .collect();
    assert_eq!(&fed[..delivered.len()], delivered.as_slice(), "feed order");
    assert!(
        other_got.lock().expect("lock").is_empty(),
        "not party: nothing delivered"
    );

    // The receiver hangs past the timeout: attempts are logged and retried, then the endpoint
    // is disabled with an event in the agency's feed. Meanwhile the co-handler's receiver gets
    // the same events at once: a slow receiver holds only its own endpoint.
    lead_status.store(599, Ordering::SeqCst);
    let before = lead_got.lock().expect("lock").len();
    w.sign_and_dispatch(&sid, &lead, &k.lead_admin).await;
    let t = std::time::Instant::now();
    until(&co1_got, |g| {
        g.iter().any(|x| x.2 == "suggestion.dispatched")
    })
    .await;
    assert!(
        t.elapsed() < Duration::from_millis(1500),
        "the co-handler's delivery waited {:?} behind the hanging receiver",
        t.elapsed()
    );
    let hook = api
        .eventually(&format!("/v1/webhooks/{id}"), &k.lead_admin, |h| {
            h["state"] == "disabled"
        })
        .await;
    assert!(
        hook["disabled_reason"]
            .as_str()
            .is_some_and(|r| r.contains("no answer within")),
        "{hook}"
    );
    assert!(
        lead_got.lock().expect("lock").len() >= before + 2,
        "retried"
    );
    let log = api
        .get(
            &format!("/v1/webhooks/{id}/deliveries?limit=1000"),
            &k.lead_admin,
        )
        .await;
    let log = log.body.as_array().expect("log").clone();
    assert!(
        log.iter().any(|d| d["ok"] == false
            && d["outcome"] == "timeout"
            && d["error"]
                .as_str()
                .is_some_and(|e| e.contains("no answer within"))),
        "{log:?}"
    );
    // Coarse outcomes only: no connection error text, no address reaches the agency.
    for d in &log {
        let text = d.to_string();
        assert!(
            !text.contains("127.0.0.1") && !text.contains("error trying to connect"),
            "{text}"
        );
        assert!(
            ["delivered", "http_status", "timeout"].contains(&d["outcome"].as_str().unwrap_or("")),
            "{text}"
        );
    }
    assert!(log.iter().any(|d| d["ok"] == true), "{log:?}");
    api.eventually("/v1/feed?limit=1000", &k.lead_admin, |f| {
        f["items"]
            .as_array()
            .is_some_and(|i| i.iter().any(|x| x["event_type"] == "webhook.disabled"))
    })
    .await;

    // Re-enabled (with its version) and answering again: nothing was lost.
    lead_status.store(200, Ordering::SeqCst);
    let version = hook["version"].as_u64().expect("version").to_string();
    let stale = api
        .call(
            axum::http::Method::PATCH,
            &format!("/v1/webhooks/{id}"),
            Some(&k.lead_admin),
            Some(json!({"state": "active"})),
            &[("if-match", "\"v1\"")],
        )
        .await;
    assert_eq!(stale.status, 412, "{}", stale.body);
    let r = api
        .call(
            axum::http::Method::PATCH,
            &format!("/v1/webhooks/{id}"),
            Some(&k.lead_admin),
            Some(json!({"state": "active"})),
            &[("if-match", &format!("\"v{version}\""))],
        )
        .await;
    assert_eq!(
        (r.status.as_u16(), r.body["state"].as_str()),
        (200, Some("active")),
        "{}",
        r.body
    );
    until(&lead_got, |g| {
        g.last().is_some_and(|x| x.2 == "webhook.disabled")
    })
    .await;
    let feed = api.get("/v1/feed?limit=1000", &k.lead_admin).await;
    let all: Vec<String> = lead_got
        .lock()
        .expect("lock")
        .iter()
        .map(|x| x.1.clone())
        .collect();
    for item in feed.body["items"].as_array().expect("items") {
        let id = item["event_id"].as_str().expect("id");
        assert!(all.iter().any(|d| d == id), "{id} was delivered");
    }

    // Rotation: deliveries carry both secrets during the overlap.
    let r = api
        .ok(
            &format!("/v1/webhooks/{id}/rotate-secret"),
            &k.lead_admin,
            json!({"overlap_hours": 1}),
        )
        .await;
    let new_secret = r["secret"].as_str().expect("new secret").to_owned();
    assert_ne!(new_secret, secret);
    // Replay from the start: the first event again, with its delivery id.
    let n = lead_got.lock().expect("lock").len();
    api.ok(
        &format!("/v1/webhooks/{id}/replay"),
        &k.lead_admin,
        json!({"after": "start"}),
    )
    .await;
    until(&lead_got, |g| g.len() > n).await;
    let (sig, delivery, _, body) = lead_got.lock().expect("lock")[n].clone();
    assert_eq!(delivery, got[0].1, "a replay keeps the delivery id");
    assert_eq!(sig.matches("v1=").count(), 2, "{sig}");
    assert_eq!(verify(&sig, new_secret.as_bytes(), &body, now()), Ok(()));
    assert_eq!(verify(&sig, secret.as_bytes(), &body, now()), Ok(()));
    let r = api
        .post(
            &format!("/v1/webhooks/{id}/replay"),
            &k.other_admin,
            json!({"after": "start"}),
        )
        .await;
    assert_eq!(r.status, 404, "another agency's key: {}", r.body);
    let r = api
        .post(
            &format!("/v1/webhooks/{id}/replay"),
            &k.lead_admin,
            json!({"after": "nonsense"}),
        )
        .await;
    assert_eq!(r.status, 400, "{}", r.body);
    // One replay per endpoint a minute: the whole feed is not re-sent on demand.
    let r = api
        .post(
            &format!("/v1/webhooks/{id}/replay"),
            &k.lead_admin,
            json!({"after": "start"}),
        )
        .await;
    assert_eq!(r.status, 429, "{}", r.body);
    assert_eq!(r.body["code"], "rate_limited", "{}", r.body);
    // A URL changed to a refused address is refused like a new one.
    let r = api
        .call(
            axum::http::Method::PATCH,
            &format!("/v1/webhooks/{id}"),
            Some(&k.lead_admin),
            Some(json!({"url": "https://169.254.169.254/"})),
            &[],
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);

    assert!(
        other_got.lock().expect("lock").is_empty(),
        "still nothing for the other agency"
    );
    // The log keeps its retention: everything older than "now + 1 ms" goes. First the replay
    // above finishes — it ends with the delivery (same id) that ended the stream before it — and
    // every attempt the receiver saw is in the log (one row per attempt).
    let last = lead_got.lock().expect("lock")[n - 1].1.clone();
    until(&lead_got, |g| g[n..].iter().any(|x| x.1 == last)).await;
    let store = api.coordination.store();
    let received = lead_got.lock().expect("lock").len();
    let mut logged = 0;
    for _ in 0..2000 {
        logged = store
            .webhook_deliveries(&id, 1000)
            .await
            .expect("log")
            .len();
        if logged >= received {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(logged >= received, "{received} received, {logged} logged");
    assert!(
        store
            .purge_webhook_deliveries(banli_coordination::webhooks::now_ms() + 1)
            .await
            .expect("purge")
            > 0
    );
    assert_eq!(
        store.webhook_deliveries(&id, 10).await.expect("log").len(),
        0
    );
    let r = api
        .call(
            axum::http::Method::DELETE,
            &format!("/v1/webhooks/{id}"),
            Some(&k.lead_admin),
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, 204);
    let _ = stop.send(());
    w.api.close().await;
}
