//! Each agency's event feed (REST `/v1/feed`, gRPC `ListFeed` and `Watch`): only the events of
//! suggestions it is party to, also around an assignment superseded by an adjustment; stable
//! order, resumable cursors, bad and foreign cursors refused.

use serde_json::{Value, json};

use crate::support::{Api, World};

/// Every item of `key`'s feed, page by page (`limit` per page).
async fn all(api: &Api, key: &str, query: &str, limit: u32) -> Vec<Value> {
    let mut items = Vec::new();
    let mut after = String::new();
    loop {
        let r = api
            .get(&format!("/v1/feed?limit={limit}&after={after}{query}"), key)
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let page = r.body["items"].as_array().expect("items").clone();
        after = r.body["next_cursor"].as_str().expect("cursor").to_owned();
        if page.is_empty() {
            return items;
        }
        items.extend(page);
    }
}

fn types(items: &[Value]) -> Vec<&str> {
    items
        .iter()
        .map(|i| i["event_type"].as_str().unwrap_or_default())
        .collect()
}

#[tokio::test]
async fn each_agency_feeds_only_what_it_is_party_to() {
    let w = World::new(Api::sqlite().await).await;
    let (api, k) = (&w.api, &w.keys);
    let (id, lead, co1, _) = w.assigned("2020-0701").await;
    api.eventually("/v1/feed", &k.co1_admin, |f| {
        f["items"]
            .as_array()
            .is_some_and(|i| i.iter().any(|x| x["event_type"] == "suggestion.assigned"))
    })
    .await;
    // Not party to anything: an empty feed.
    let r = api.get("/v1/feed", &k.other_admin).await;
    assert_eq!(r.body["items"], json!([]), "{}", r.body);

    // co1 hands its assignment over to `other`; then the lead signs for and dispatches.
    api.ok(
        &format!("/v1/coordination/assignments/{co1}/adjustment-request"),
        &k.co1_admin,
        json!({"reason": "not ours", "suggested_agency_id": w.other}),
    )
    .await;
    api.eventually(&format!("/v1/suggestions/{id}"), &k.office, |s| {
        s["assignments"].as_array().is_some_and(|a| {
            a.iter()
                .any(|x| x["id"] == co1.as_str() && x["state"] == "adjustment_pending")
        })
    })
    .await;
    api.ok(
        &format!("/v1/coordination/assignments/{co1}/adjustment-decision"),
        &k.office,
        json!({"outcome": "accept", "agency_id": w.other}),
    )
    .await;
    api.eventually(&format!("/v1/suggestions/{id}"), &k.office, |s| {
        s["assignments"].as_array().is_some_and(|a| {
            a.iter()
                .any(|x| x["id"] == co1.as_str() && x["state"] == "superseded")
        })
    })
    .await;
    w.sign_and_dispatch(&id, &lead, &k.lead_admin).await;
    api.eventually("/v1/feed?limit=1000", &k.other_admin, |f| {
        f["items"]
            .as_array()
            .is_some_and(|i| i.iter().any(|x| x["event_type"] == "suggestion.dispatched"))
    })
    .await;

    let lead_feed = all(api, &k.lead_admin, "", 3).await;
    let co1_feed = all(api, &k.co1_admin, "", 1000).await;
    let other_feed = all(api, &k.other_admin, "", 2).await;
    // The lead sees every event from the assignment on, in version order, each once.
    let versions: Vec<u64> = lead_feed
        .iter()
        .map(|i| i["aggregate_version"].as_u64().expect("version"))
        .collect();
    assert!(versions.windows(2).all(|v| v[0] < v[1]), "{versions:?}");
    assert_eq!(types(&lead_feed)[0], "suggestion.assigned");
    assert!(types(&lead_feed).contains(&"suggestion.dispatched"));
    for i in lead_feed.iter().chain(&co1_feed).chain(&other_feed) {
        assert_eq!(i["aggregate_type"], "suggestion");
        assert_eq!(i["aggregate_id"], id.as_str());
        assert!(i["payload"].is_object(), "{i}");
        assert!(
            i["occurred_at"].as_str().is_some_and(|t| t.len() >= 20),
            "{i}"
        );
    }
    // co1: up to the event that superseded its assignment, nothing after.
    let last = co1_feed.last().expect("co1 has events");
    let superseded_at = last["aggregate_version"].as_u64().expect("version");
    assert!(
        last["payload"].to_string().contains(co1.as_str()),
        "the last event names the superseded assignment: {last}"
    );
    assert!(
        !types(&co1_feed).contains(&"suggestion.dispatched"),
        "{co1_feed:?}"
    );
    assert!(
        lead_feed
            .iter()
            .any(|i| i["aggregate_version"].as_u64() > Some(superseded_at)),
        "the lead has later events"
    );
    // other: from its own assignment on (the next event, which names the one it replaces).
    assert_eq!(
        (
            other_feed[0]["event_type"].as_str(),
            other_feed[0]["aggregate_version"].as_u64(),
            other_feed[0]["payload"]["data"]["replaces"].as_str()
        ),
        (
            Some("suggestion.assigned"),
            Some(superseded_at + 1),
            Some(co1.as_str())
        ),
        "{other_feed:?}"
    );
    assert!(types(&other_feed).contains(&"suggestion.dispatched"));

    // The office reads any agency's feed, the same items.
    let office_view = all(api, &k.office, &format!("&agency_id={}", w.lead), 1000).await;
    assert_eq!(types(&office_view), types(&lead_feed));

    // Resuming from any cursor gives exactly the rest.
    let cursor = lead_feed[1]["cursor"].as_str().expect("cursor");
    let r = api
        .get(
            &format!("/v1/feed?after={cursor}&limit=1000"),
            &k.lead_admin,
        )
        .await;
    assert_eq!(
        r.body["items"].as_array().expect("items").as_slice(),
        &lead_feed[2..]
    );
    // `now`: nothing yet, and the cursor to follow from.
    let r = api.get("/v1/feed?after=now", &k.lead_admin).await;
    assert_eq!(
        (r.body["items"].clone(), r.body["next_cursor"].clone()),
        (json!([]), lead_feed.last().expect("last")["cursor"].clone())
    );

    // Bad input.
    let problem = |r: &crate::support::Response, status: u16, needle: &str| {
        assert_eq!(r.status.as_u16(), status, "{}", r.body);
        assert!(
            r.body["detail"]
                .as_str()
                .is_some_and(|d| d.contains(needle)),
            "{}",
            r.body
        );
    };
    problem(
        &api.get("/v1/feed?after=zz", &k.lead_admin).await,
        400,
        "not a feed cursor",
    );
    problem(
        &api.get(&format!("/v1/feed?after={cursor}"), &k.other_admin)
            .await,
        400,
        "another agency's feed",
    );
    problem(
        &api.get("/v1/feed?limit=0", &k.lead_admin).await,
        400,
        "limit",
    );
    problem(
        &api.get("/v1/feed?limit=5000", &k.lead_admin).await,
        400,
        "limit",
    );
    problem(&api.get("/v1/feed", &k.office).await, 400, "agency_id");
    problem(
        &api.get(&format!("/v1/feed?agency_id={}", w.lead), &k.other_admin)
            .await,
        403,
        "own agency",
    );
    problem(&api.get("/v1/feed", &k.deputy).await, 403, "agency");
    let r = api
        .call(axum::http::Method::GET, "/v1/feed", None, None, &[])
        .await;
    assert_eq!(r.status, 401);
    w.api.close().await;
}

fn authed<T>(msg: T, key: &str) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    r.metadata_mut().insert(
        "authorization",
        format!("Bearer {key}").parse().expect("metadata"),
    );
    r
}

/// gRPC: `ListFeed` pages as REST does; `Watch` sends the stored events and then new ones as
/// they are written, and never another agency's.
#[tokio::test]
async fn watch_streams_the_feed() {
    use banli_proto::coordination::v1 as pb;
    use pb::coordination_service_client::CoordinationServiceClient;
    use tokio_stream::StreamExt;

    let w = World::new(Api::sqlite().await).await;
    let (api, k) = (&w.api, &w.keys);
    let (id, lead, _, _) = w.assigned("2020-0702").await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(banli_coordination::grpc::serve(
        api.coordination.clone(),
        1 << 20,
        listener,
        async {
            let _ = stopped.await;
        },
    ));
    let mut client = CoordinationServiceClient::connect(format!("http://{addr}"))
        .await
        .expect("connects");
    let rest = api
        .eventually("/v1/feed", &k.lead_admin, |f| {
            f["items"].as_array().is_some_and(|i| !i.is_empty())
        })
        .await;
    let stored = rest["items"].as_array().expect("items").len();
    let page = client
        .list_feed(authed(pb::ListFeedRequest::default(), &k.lead_admin))
        .await
        .expect("list")
        .into_inner();
    assert!(page.events.len() >= stored);
    assert_eq!(
        page.events[0].cursor,
        rest["items"][0]["cursor"].as_str().expect("cursor")
    );

    let mut lead_stream = client
        .watch(authed(pb::WatchRequest::default(), &k.lead_admin))
        .await
        .expect("watch")
        .into_inner();
    let mut other_stream = client
        .watch(authed(pb::WatchRequest::default(), &k.other_admin))
        .await
        .expect("watch")
        .into_inner();
    let first = lead_stream.next().await.expect("an event").expect("ok");
    assert_eq!(first.event_type, "suggestion.assigned");
    // A new event reaches the open stream.
    w.sign_and_dispatch(&id, &lead, &k.lead_admin).await;
    let mut seen = vec![first];
    while !seen.iter().any(|e| e.event_type == "suggestion.dispatched") {
        let e = tokio::time::timeout(std::time::Duration::from_secs(10), lead_stream.next())
            .await
            .expect("the new event arrives")
            .expect("open")
            .expect("ok");
        seen.push(e);
    }
    let versions: Vec<u64> = seen.iter().map(|e| e.aggregate_version).collect();
    assert!(versions.windows(2).all(|v| v[0] < v[1]), "{versions:?}");
    assert!(seen.iter().all(|e| e.aggregate_id == id));
    // The other agency's stream stays silent.
    assert!(
        tokio::time::timeout(std::time::Duration::from_millis(700), other_stream.next())
            .await
            .is_err(),
        "nothing for an agency that is not party"
    );
    // A foreign cursor is refused before the stream starts.
    let err = client
        .watch(authed(
            pb::WatchRequest {
                after: seen[0].cursor.clone(),
                agency_id: String::new(),
            },
            &k.other_admin,
        ))
        .await
        .expect_err("refused");
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    let _ = stop.send(());
    w.api.close().await;
}

/// gRPC `WebhookService`: the same rules as REST — an agency_admin creates (the secret shown
/// once; a replay of the idempotency key answers without it), others are refused, bad URLs
/// and stale versions too.
#[tokio::test]
async fn webhooks_over_grpc() {
    use banli_proto::coordination::v1 as pb;
    use pb::webhook_service_client::WebhookServiceClient;

    let w = World::new(Api::sqlite().await).await;
    let k = &w.keys;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(banli_coordination::grpc::serve(
        w.api.coordination.clone(),
        1 << 20,
        listener,
        async {
            let _ = stopped.await;
        },
    ));
    let mut client = WebhookServiceClient::connect(format!("http://{addr}"))
        .await
        .expect("connects");
    let create = |key: &str| pb::CreateWebhookRequest {
        // On loopback, which this test server's egress policy allows (a name would be resolved
        // and this machine resolves none).
        url: "https://127.0.0.1:9/banli".into(),
        event_types: vec!["suggestion.replied".into()],
        description: "OA".into(),
        after: String::new(),
        change: Some(pb::Change {
            expected_version: 0,
            idempotency_key: format!("create-{key}"),
        }),
    };
    let first = client
        .create_webhook(authed(create(&k.lead_admin), &k.lead_admin))
        .await
        .expect("created")
        .into_inner();
    assert!(first.secret.starts_with("whsec_"), "{first:?}");
    assert_eq!(first.event_types, vec!["suggestion.replied".to_owned()]);
    let again = client
        .create_webhook(authed(create(&k.lead_admin), &k.lead_admin))
        .await
        .expect("replayed")
        .into_inner();
    assert_eq!(
        (again.id.as_str(), again.secret.as_str()),
        (first.id.as_str(), "")
    );
    // The agency's own reference id in metadata: a repeat is a no-op, from any of its keys.
    let with_ref = |key: &str| {
        let mut r = authed(
            pb::CreateWebhookRequest {
                change: None,
                ..create(key)
            },
            key,
        );
        r.metadata_mut()
            .insert("reference-id", "OA-HOOK-1".parse().expect("metadata"));
        r
    };
    let a = client
        .create_webhook(with_ref(&k.lead_admin))
        .await
        .expect("created")
        .into_inner();
    let b = client
        .create_webhook(with_ref(&k.lead_admin))
        .await
        .expect("no-op")
        .into_inner();
    assert_eq!(a.id, b.id);
    assert_ne!(a.id, first.id);
    let err = client
        .create_webhook(authed(create(&k.lead_handler), &k.lead_handler))
        .await
        .expect_err("a handler key");
    assert_eq!(err.code(), tonic::Code::PermissionDenied, "{err:?}");
    let mut bad = create(&k.lead_admin);
    bad.url = "ftp://oa.agency.example/".into();
    bad.change = None;
    let err = client
        .create_webhook(authed(bad, &k.lead_admin))
        .await
        .expect_err("ftp");
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    let mut metadata = create(&k.lead_admin);
    metadata.url = "https://169.254.169.254/latest/".into();
    metadata.change = None;
    let err = client
        .create_webhook(authed(metadata, &k.lead_admin))
        .await
        .expect_err("the metadata address");
    assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    assert!(err.message().contains("cloud metadata"), "{err:?}");
    let err = client
        .update_webhook(authed(
            pb::UpdateWebhookRequest {
                id: first.id.clone(),
                state: "disabled".into(),
                change: Some(pb::Change {
                    expected_version: first.version + 5,
                    idempotency_key: String::new(),
                }),
                ..Default::default()
            },
            &k.lead_admin,
        ))
        .await
        .expect_err("stale");
    assert_eq!(err.code(), tonic::Code::FailedPrecondition, "{err:?}");
    let paused = client
        .update_webhook(authed(
            pb::UpdateWebhookRequest {
                id: first.id.clone(),
                state: "disabled".into(),
                change: Some(pb::Change {
                    expected_version: first.version,
                    idempotency_key: String::new(),
                }),
                ..Default::default()
            },
            &k.lead_admin,
        ))
        .await
        .expect("paused")
        .into_inner();
    assert_eq!(
        (paused.state.as_str(), paused.version),
        ("disabled", first.version + 1)
    );
    let err = client
        .get_webhook(authed(
            pb::GetWebhookRequest {
                id: first.id.clone(),
            },
            &k.co1_admin,
        ))
        .await
        .expect_err("another agency");
    assert_eq!(err.code(), tonic::Code::NotFound, "{err:?}");
    let list = client
        .list_webhook_deliveries(authed(
            pb::ListWebhookDeliveriesRequest {
                id: first.id.clone(),
                limit: 10,
            },
            &k.lead_admin,
        ))
        .await
        .expect("log")
        .into_inner();
    assert!(list.deliveries.is_empty());
    let _ = stop.send(());
    w.api.close().await;
}

/// A revoked key's open `Watch` streams end within 2 s with UNAUTHENTICATED; a key and a server
/// hold at most their limit of streams, and a closed stream gives its place back.
#[tokio::test]
async fn a_revoked_key_ends_its_streams_and_streams_are_limited() {
    use banli_proto::coordination::v1 as pb;
    use pb::coordination_service_client::CoordinationServiceClient;
    use tokio_stream::StreamExt;

    let w = World::new(Api::sqlite().await).await;
    let api = &w.api;
    api.coordination.set_stream_limits(2, 3);
    let created = api
        .ok(
            "/v1/admin/keys",
            &api.office,
            json!({"role": "agency_admin", "agency_id": w.lead, "label": "OA stream"}),
        )
        .await;
    let (key_id, key) = (
        created["key"]["id"].as_str().expect("id").to_owned(),
        created["token"].as_str().expect("token").to_owned(),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(banli_coordination::grpc::serve(
        api.coordination.clone(),
        1 << 20,
        listener,
        async {
            let _ = stopped.await;
        },
    ));
    let mut client = CoordinationServiceClient::connect(format!("http://{addr}"))
        .await
        .expect("connects");
    let watch = |key: &str| authed(pb::WatchRequest::default(), key);
    let mut first = client
        .watch(watch(&key))
        .await
        .expect("a first stream")
        .into_inner();
    let second = client
        .watch(watch(&key))
        .await
        .expect("a second stream")
        .into_inner();
    let err = client
        .watch(watch(&key))
        .await
        .expect_err("a key's third stream");
    assert_eq!(err.code(), tonic::Code::ResourceExhausted, "{err:?}");
    assert!(err.message().contains("watch_streams_per_key"), "{err:?}");
    // Another key: the server's third stream, then its limit.
    let _other = client
        .watch(watch(&w.keys.other_admin))
        .await
        .expect("another key's stream")
        .into_inner();
    let err = client
        .watch(watch(&w.keys.co1_admin))
        .await
        .expect_err("the server's fourth stream");
    assert_eq!(err.code(), tonic::Code::ResourceExhausted, "{err:?}");
    assert!(err.message().contains("watch_streams_max"), "{err:?}");
    // A closed stream gives its place back (the server notices the reset).
    drop(second);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let third = loop {
        match client.watch(watch(&key)).await {
            Ok(s) => break s.into_inner(),
            Err(e) => {
                assert_eq!(e.code(), tonic::Code::ResourceExhausted, "{e:?}");
                assert!(
                    std::time::Instant::now() < deadline,
                    "the closed stream's place was not given back"
                );
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    };

    // Revoked: both open streams of the key end within 2 s, with UNAUTHENTICATED.
    let r = api
        .call(
            axum::http::Method::DELETE,
            &format!("/v1/admin/keys/{key_id}"),
            Some(&api.office),
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let revoked = std::time::Instant::now();
    let mut third = third;
    for stream in [&mut first, &mut third] {
        let ended = tokio::time::timeout(std::time::Duration::from_secs(2), async {
            loop {
                match stream.next().await {
                    Some(Ok(_)) => continue,
                    Some(Err(status)) => break Some(status),
                    None => break None,
                }
            }
        })
        .await
        .expect("the stream ends within 2 s of the revocation")
        .expect("with a status");
        assert_eq!(ended.code(), tonic::Code::Unauthenticated, "{ended:?}");
    }
    assert!(revoked.elapsed() < std::time::Duration::from_secs(2));
    // Nothing more on the ended stream, and the key opens no new one.
    assert!(first.next().await.is_none());
    let err = client.watch(watch(&key)).await.expect_err("revoked");
    assert_eq!(err.code(), tonic::Code::Unauthenticated, "{err:?}");
    let _ = stop.send(());
    w.api.close().await;
}
