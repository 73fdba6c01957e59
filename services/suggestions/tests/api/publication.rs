//! 公开答复 through REST and gRPC: the office publishes a reply (redacted) or the sweeper does as
//! its date passes; the public pages answer without a key; withdrawal takes a reply off them;
//! confidential items and `none` disclosure are refused (422). On SQLite and PostgreSQL (where
//! the publication rows join the append's transaction).

use banli_db::testing::TestDb;
use banli_domain::{Actor, RuleProfile};
use banli_proto::suggestions::v1 as pb;
use serde_json::{Value, json};

use crate::support::{Api, World};

/// An item of `extra` (confidential, disclosure), replied to by its sole unit on 2020-03-02;
/// returns (suggestion, reply).
async fn replied(w: &World, number: &str, extra: Value) -> (String, String) {
    let (api, k) = (&w.api, &w.keys);
    let mut body = json!({"session_id": w.session, "number": number, "title": "关于支持Deputy Liu所在县中小企业的建议", "body": "A fund.", "lead_deputy_id": w.deputy, "co_signer_ids": [w.co_signer]});
    for (k, v) in extra.as_object().expect("object") {
        body[k] = v.clone();
    }
    let s = api.ok("/v1/suggestions", &k.deputy, body).await;
    let (id, a) = w.ready_sole(&s, "2020-03-02").await;
    let s = api
        .ok(
            &format!("/v1/suggestions/{id}/replies"),
            &k.lead_admin,
            json!({"assignment_id": a, "document_number": "答复〔2020〕11号", "body": "Deputy Liu：资金已安排。<b>联系人</b>电话13812345678，邮箱liu@example.gov.cn。", "class": "A", "signer": {"name": "Director Chen", "position": "principal_head"}, "on": "2020-03-02"}),
        )
        .await;
    let reply = s["replies"][0]["id"].as_str().expect("reply").to_owned();
    (id, reply)
}

async fn public(api: &Api, path: &str) -> (u16, axum::http::HeaderMap, Vec<u8>) {
    let req = axum::http::Request::get(path)
        .body(axum::body::Body::empty())
        .expect("request");
    let (status, headers, body) = api.bytes(req).await;
    (status.as_u16(), headers, body)
}

async fn publication_round(w: World) {
    let (api, k) = (&w.api, &w.keys);
    let (id, reply) = replied(&w, "2020-0601", json!({})).await;
    let s = api
        .get(&format!("/v1/suggestions/{id}"), &k.office)
        .await
        .body;
    assert!(s["replies"][0]["publication_due"].is_string(), "{s}");
    assert!(s["replies"][0]["publication"].is_null());

    let publish = format!("/v1/suggestions/{id}/replies/{reply}/publish");
    let r = api.post(&publish, &k.lead_admin, json!({})).await;
    assert_eq!(r.status, 403, "the office publishes: {}", r.body);
    let s = api.ok(&publish, &k.office, json!({})).await;
    assert_eq!(s["replies"][0]["publication"]["automatic"], false, "{s}");
    assert_eq!(s["replies"][0]["publication"]["redactions"], 4, "{s}");
    let r = api.post(&publish, &k.office, json!({})).await;
    assert_eq!(r.status, 409, "published already: {}", r.body);

    // The public pages: no key.
    let (status, _, body) = public(api, "/v1/public/replies").await;
    assert_eq!(status, 200);
    let page: Value = serde_json::from_slice(&body).expect("json");
    let item = &page["items"][0];
    assert_eq!(item["id"], reply.as_str());
    assert_eq!(item["title"], "关于支持×××所在县中小企业的建议");
    let text = item["body"].as_str().expect("full disclosure");
    assert_eq!(
        text,
        "×××：资金已安排。<b>联系人</b>电话[电话]，邮箱[邮箱]。"
    );
    assert!(item["agency"].is_string(), "{item}");
    let (status, headers, body) =
        public(api, &format!("/v1/public/replies/{reply}/document")).await;
    assert_eq!(status, 200);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap_or("")
            .starts_with("text/html")
    );
    let html = String::from_utf8(body).expect("utf-8");
    assert!(
        html.contains("&lt;b&gt;联系人&lt;/b&gt;"),
        "escaped: {html}"
    );
    assert!(
        !html.contains("13812345678") && !html.contains("Deputy Liu"),
        "{html}"
    );
    let (status, headers, body) = public(api, "/v1/public/feed.atom").await;
    assert_eq!(status, 200);
    assert!(
        headers["content-type"]
            .to_str()
            .unwrap_or("")
            .starts_with("application/atom+xml")
    );
    let feed = String::from_utf8(body).expect("utf-8");
    assert!(
        feed.contains(&format!("<id>urn:uuid:{reply}</id>")),
        "{feed}"
    );
    for bad in [
        "/v1/public/replies?page_token=nonsense",
        "/v1/public/replies?page_size=0",
        "/v1/public/replies?page_size=101",
        "/v1/public/replies?bogus=1",
    ] {
        let (status, _, body) = public(api, bad).await;
        assert_eq!(status, 400, "{bad}: {}", String::from_utf8_lossy(&body));
    }

    // Confidential items and `none` disclosure: never; `summary`: the record without the text.
    let (cid, creply) = replied(&w, "2020-0602", json!({"confidential": true})).await;
    let r = api
        .post(
            &format!("/v1/suggestions/{cid}/replies/{creply}/publish"),
            &k.office,
            json!({}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    let (nid, nreply) = replied(&w, "2020-0603", json!({"disclosure": "none"})).await;
    let r = api
        .post(
            &format!("/v1/suggestions/{nid}/replies/{nreply}/publish"),
            &k.office,
            json!({}),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.body);
    let (sid, sreply) = replied(&w, "2020-0604", json!({"disclosure": "summary"})).await;
    api.ok(
        &format!("/v1/suggestions/{sid}/replies/{sreply}/publish"),
        &k.office,
        json!({}),
    )
    .await;
    let (_, _, body) = public(api, &format!("/v1/public/replies/{sreply}")).await;
    let summary: Value = serde_json::from_slice(&body).expect("json");
    assert!(summary["body"].is_null(), "{summary}");
    assert_eq!(summary["disclosure"], "summary");

    // Paging: two published, one a page.
    let (_, _, body) = public(api, "/v1/public/replies?page_size=1").await;
    let first: Value = serde_json::from_slice(&body).expect("json");
    let token = first["next_page_token"]
        .as_str()
        .expect("a next page")
        .to_owned();
    let (_, _, body) = public(
        api,
        &format!("/v1/public/replies?page_size=1&page_token={token}"),
    )
    .await;
    let second: Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(second["items"].as_array().map(Vec::len), Some(1));
    assert_ne!(first["items"][0]["id"], second["items"][0]["id"]);
    assert!(second["next_page_token"].is_null(), "{second}");

    // Withdrawn: off the public pages, kept in the record.
    let withdraw = format!("/v1/suggestions/{id}/replies/{reply}/publication/withdraw");
    let r = api.post(&withdraw, &k.office, json!({"reason": ""})).await;
    assert_eq!(r.status.as_u16() / 100, 4, "{}", r.body);
    let s = api
        .ok(
            &withdraw,
            &k.office,
            json!({"reason": "正文含未隐去的联系人"}),
        )
        .await;
    assert_eq!(
        s["replies"][0]["publication"]["withdrawn_reason"],
        "正文含未隐去的联系人"
    );
    let (status, _, _) = public(api, &format!("/v1/public/replies/{reply}")).await;
    assert_eq!(status, 404);
    let (_, _, body) = public(api, "/v1/public/replies").await;
    let page: Value = serde_json::from_slice(&body).expect("json");
    assert!(
        page["items"]
            .as_array()
            .expect("items")
            .iter()
            .all(|i| i["id"] != reply.as_str()),
        "{page}"
    );

    // The sweeper, a year on: the other items' replies are published (not the confidential, the
    // `none`, nor the withdrawn one).
    let later = banli_suggestions::app::App::new(
        api.app.store().clone(),
        RuleProfile::hunan(),
        banli_calendar::Calendar::embedded().clone(),
        banli_suggestions::app::Clock::Fixed(time::macros::date!(2021 - 03 - 02)),
    );
    let (_, later_reply) = replied(&w, "2020-0605", json!({})).await;
    let office = Actor::assigning_office(
        api.app
            .store()
            .list_agencies()
            .await
            .expect("agencies")
            .into_iter()
            .find(|a| a.assigning_office)
            .expect("office")
            .id,
    );
    let changed = later.publish_due_replies(&office).await.expect("sweep");
    assert_eq!(
        changed, 1,
        "only the unpublished reply of a publishable item"
    );
    let (status, _, body) = public(api, &format!("/v1/public/replies/{later_reply}")).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(later.publish_due_replies(&office).await.expect("again"), 0);
    for hidden in [&creply, &nreply, &reply] {
        let (status, _, _) = public(api, &format!("/v1/public/replies/{hidden}")).await;
        assert_eq!(status, 404, "{hidden}");
    }
}

#[tokio::test]
async fn replies_are_published_redacted_and_withdrawn_on_sqlite() {
    publication_round(World::new(Api::sqlite().await).await).await;
}

#[tokio::test]
async fn replies_are_published_redacted_and_withdrawn_on_postgres() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    publication_round(World::new(Api::on(db, 1 << 20).await).await).await;
}

#[tokio::test]
async fn grpc_reads_the_public_pages_without_a_key() {
    let w = World::new(Api::sqlite().await).await;
    let (api, k) = (&w.api, &w.keys);
    let (id, reply) = replied(&w, "2020-0611", json!({})).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(banli_suggestions::grpc::serve(
        api.app.clone(),
        listener,
        async {
            let _ = rx.await;
        },
    ));
    let channel = tonic::transport::Endpoint::from_shared(url)
        .expect("url")
        .connect()
        .await
        .expect("connects");
    let mut c = pb::suggestion_service_client::SuggestionServiceClient::new(channel.clone());
    let mut req = tonic::Request::new(pb::PublishReplyRequest {
        suggestion_id: id.clone(),
        reply_id: reply.clone(),
        ..Default::default()
    });
    req.metadata_mut().insert(
        "authorization",
        format!("Bearer {}", k.office).parse().expect("metadata"),
    );
    let s = c.publish_reply(req).await.expect("published").into_inner();
    assert!(!s.replies[0].published_on.is_empty());
    let mut p = pb::public_service_client::PublicServiceClient::new(channel);
    let page = p
        .list_public_replies(pb::ListPublicRepliesRequest::default())
        .await
        .expect("no key needed")
        .into_inner();
    assert_eq!(page.items.len(), 1);
    assert!(!page.items[0].body.contains("13812345678"));
    let one = p
        .get_public_reply(pb::GetPublicReplyRequest { id: reply.clone() })
        .await
        .expect("one")
        .into_inner();
    assert_eq!(one, page.items[0]);
    let err = p
        .get_public_reply(pb::GetPublicReplyRequest {
            id: uuid::Uuid::now_v7().to_string(),
        })
        .await
        .expect_err("unknown");
    assert_eq!(err.code(), tonic::Code::NotFound);
    let _ = tx.send(());
}
