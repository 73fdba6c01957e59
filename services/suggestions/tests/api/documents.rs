//! Documents: uploads checked by content and size, stored once, attached only by the agency that
//! uploaded them, downloaded only by those who read the record that attaches them; a reply of
//! the profile's kinds needs its signed letter; gRPC streams both ways.

use axum::body::Body;
use axum::http::{Method, Request};
use banli_domain::RuleProfile;
use banli_domain::suggestion::ReplyType;
use banli_testkit::{Options, Response};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use crate::support::{Api, World};

/// The most bytes one upload may have in these tests.
const LIMIT: u64 = 256 * 1024;

fn pdf(len: usize, seed: u8) -> Vec<u8> {
    let mut v = b"%PDF-1.7\n".to_vec();
    v.extend((0..len.saturating_sub(9)).map(|i| (i as u8).wrapping_mul(31) ^ seed));
    v
}

fn hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn world() -> World {
    let mut profile = RuleProfile::hunan();
    profile.rules.signed_letter_for = vec![ReplyType::Initial, ReplyType::ReHandled];
    let api = Api::with(
        banli_db::testing::TestDb::sqlite().await,
        1024 * 1024,
        Options {
            profile: Some(profile),
            max_document_bytes: LIMIT,
            ..Options::default()
        },
    )
    .await;
    World::new(api).await
}

/// The file itself as the body.
async fn upload(api: &Api, key: &str, name: &str, bytes: Vec<u8>, content_type: &str) -> Response {
    let req = Request::builder()
        .method(Method::POST)
        .uri(format!("/v1/documents?name={name}"))
        .header("authorization", format!("Bearer {key}"))
        .header("content-type", content_type)
        .body(Body::from(bytes))
        .expect("request");
    api.raw(req).await
}

/// The file in a `multipart/form-data` part named `file`.
async fn upload_form(api: &Api, key: &str, file_name: &str, bytes: &[u8]) -> Response {
    let boundary = "banli-test-boundary-7d3f";
    let mut body = Vec::new();
    body.extend_from_slice(
        format!("--{boundary}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nsigned\r\n")
            .as_bytes(),
    );
    body.extend_from_slice(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\nContent-Type: application/pdf\r\n\r\n").as_bytes());
    body.extend_from_slice(bytes);
    body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    let req = Request::builder()
        .method(Method::POST)
        .uri("/v1/documents")
        .header("authorization", format!("Bearer {key}"))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(Body::from(body))
        .expect("request");
    api.raw(req).await
}

async fn download(api: &Api, path: &str, key: &str) -> (u16, axum::http::HeaderMap, Vec<u8>) {
    let req = Request::builder()
        .uri(path)
        .header("authorization", format!("Bearer {key}"))
        .body(Body::empty())
        .expect("request");
    let (status, headers, bytes) = api.bytes(req).await;
    (status.as_u16(), headers, bytes)
}

#[tokio::test]
async fn uploads_are_checked_by_content_and_size_and_stored_once() {
    let w = world().await;
    let (api, k) = (&w.api, &w.keys);
    let letter = pdf(100_000, 1);
    let r = upload(
        api,
        &k.lead_admin,
        "%E7%AD%94%E5%A4%8D%E5%87%BD.pdf",
        letter.clone(),
        "application/pdf",
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(r.body["sha256"], hex(&letter));
    assert_eq!(r.body["media_type"], "application/pdf");
    assert_eq!(r.body["size"], 100_000);
    assert_eq!(r.body["name"], "答复函.pdf");
    // The same content again: stored once, answered 200.
    let again = upload(
        api,
        &k.lead_handler,
        "x.pdf",
        letter.clone(),
        "application/octet-stream",
    )
    .await;
    assert_eq!(
        (again.status.as_u16(), &again.body["created"]),
        (200, &json!(false))
    );
    // Multipart, by another agency.
    let opinion = pdf(50_000, 2);
    let m = upload_form(api, &k.co1_admin, "会办意见函.pdf", &opinion).await;
    assert_eq!(m.status, 201, "{}", m.body);
    assert_eq!(
        (m.body["sha256"].as_str(), m.body["name"].as_str()),
        (Some(hex(&opinion).as_str()), Some("会办意见函.pdf"))
    );

    // An executable renamed .pdf: 415 naming what it is; nothing stored.
    let mut exe = b"MZ\x90\x00\x03\x00\x00\x00".to_vec();
    exe.resize(4096, 0);
    let r = upload(
        api,
        &k.lead_admin,
        "reply.pdf",
        exe.clone(),
        "application/pdf",
    )
    .await;
    assert_eq!(
        (r.status.as_u16(), r.code()),
        (415, "unsupported_media_type"),
        "{}",
        r.body
    );
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("application/x-msdownload"),
        "{}",
        r.body
    );
    let (status, ..) = download(api, &format!("/v1/documents/{}", hex(&exe)), &k.lead_admin).await;
    assert_eq!(status, 404);
    // Over the limit, declared or streamed: 413, nothing stored.
    let big = pdf(LIMIT as usize + 1, 3);
    let r = upload(
        api,
        &k.lead_admin,
        "big.pdf",
        big.clone(),
        "application/pdf",
    )
    .await;
    assert_eq!(
        (r.status.as_u16(), r.code()),
        (413, "payload_too_large"),
        "{}",
        r.body
    );
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        big.chunks(10_000).map(|c| Ok(c.to_vec())).collect();
    let req = Request::builder()
        .method(Method::POST)
        .uri("/v1/documents")
        .header("authorization", format!("Bearer {}", k.lead_admin))
        .header("content-type", "application/pdf")
        .body(Body::from_stream(futures_util::stream::iter(chunks)))
        .expect("request");
    let r = api.raw(req).await;
    assert_eq!(
        (r.status.as_u16(), r.code()),
        (413, "payload_too_large"),
        "{}",
        r.body
    );
    let r = upload_form(api, &k.lead_admin, "big.pdf", &big).await;
    assert_eq!(r.status, 413, "{}", r.body);
    let (status, ..) = download(api, &format!("/v1/documents/{}", hex(&big)), &k.lead_admin).await;
    assert_eq!(status, 404);
    // Empty; no file in the form; deputies and auditors upload nothing.
    let r = upload(api, &k.lead_admin, "e.pdf", Vec::new(), "application/pdf").await;
    assert_eq!(r.status, 422, "{}", r.body);
    let req = Request::builder()
        .method(Method::POST)
        .uri("/v1/documents")
        .header("authorization", format!("Bearer {}", k.lead_admin))
        .header("content-type", "multipart/form-data; boundary=b")
        .body(Body::from(
            "--b\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nx\r\n--b--\r\n",
        ))
        .expect("request");
    let r = api.raw(req).await;
    assert_eq!(
        (r.status.as_u16(), r.code()),
        (400, "malformed_request"),
        "{}",
        r.body
    );
    for key in [&k.deputy, &k.auditor] {
        let r = upload(api, key, "a.pdf", letter.clone(), "application/pdf").await;
        assert_eq!(r.status, 403, "{}", r.body);
    }
    let r = upload(api, "not-a-key", "a.pdf", letter.clone(), "application/pdf").await;
    assert_eq!(r.status, 401);

    // The uploader's agency reads its own upload back, byte for byte; nobody else does.
    let (status, headers, bytes) = download(
        api,
        &format!("/v1/documents/{}", hex(&letter)),
        &k.lead_handler,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(bytes, letter);
    assert_eq!(headers["content-type"], "application/pdf");
    assert!(
        headers["repr-digest"]
            .to_str()
            .unwrap_or_default()
            .starts_with("sha-256=:")
    );
    assert!(
        headers["content-disposition"]
            .to_str()
            .unwrap_or_default()
            .contains("filename*=UTF-8''")
    );
    for key in [&k.co1_admin, &k.other_admin, &k.deputy] {
        let (status, ..) = download(api, &format!("/v1/documents/{}", hex(&letter)), key).await;
        assert_eq!(status, 404);
    }
    let (status, ..) = download(api, "/v1/documents/..%2F..%2Fetc%2Fpasswd", &k.lead_admin).await;
    assert!(status == 404 || status == 422 || status == 400, "{status}");
    w.api.close().await;
}

#[tokio::test]
async fn a_signed_letter_is_attached_by_its_uploader_and_read_like_its_record() {
    let w = world().await;
    let (api, k) = (&w.api, &w.keys);
    let (id, lead, co1, co2) = w.assigned("2020-0301").await;
    w.sign_and_dispatch(&id, &lead, &k.lead_admin).await;
    w.sign_and_dispatch(&id, &co1, &k.co1_admin).await;
    api.ok(&format!("/v1/suggestions/{id}/communications"), &k.lead_admin, json!({"assignment_id": lead, "phase": "during", "method": "visit", "face_to_face": true, "deputy_ids": [w.deputy], "summary": "scope"})).await;

    // The co-handler's opinion with its letter (its own upload; another agency's is 404).
    let opinion_letter = pdf(30_000, 4);
    let sha_o = upload_form(api, &k.co1_admin, "会办意见函.pdf", &opinion_letter)
        .await
        .body["sha256"]
        .as_str()
        .expect("sha")
        .to_owned();
    let letter = pdf(60_000, 5);
    let sha_r = upload(
        api,
        &k.lead_admin,
        "答复函.pdf",
        letter.clone(),
        "application/pdf",
    )
    .await
    .body["sha256"]
        .as_str()
        .expect("sha")
        .to_owned();
    let opinion = json!({"document_number": "会办〔2020〕3号", "body": "We agree.", "signer": {"name": "Zhao", "position": "authorized_leader"}, "no_measure_reason": "none within our remit"});
    let mut foreign = opinion.clone();
    foreign["letter"] = json!(sha_r);
    let r = api
        .post(
            &format!("/v1/coordination/assignments/{co1}/opinions"),
            &k.co1_admin,
            foreign,
        )
        .await;
    assert_eq!(
        (r.status.as_u16(), r.code()),
        (404, "not_found"),
        "{}",
        r.body
    );
    let mut own = opinion;
    own["letter"] = json!(sha_o);
    let c = api
        .ok(
            &format!("/v1/coordination/assignments/{co1}/opinions"),
            &k.co1_admin,
            own,
        )
        .await;
    let opinion_id = c["opinions"][0]["id"].as_str().expect("opinion").to_owned();
    api.ok(
        &format!("/v1/coordination/assignments/{co2}/waiver"),
        &k.office,
        json!({"reason": "not within the remit"}),
    )
    .await;
    api.eventually(&format!("/v1/suggestions/{id}"), &k.office, |s| {
        s["opinions"].as_array().is_some_and(|o| o.len() == 1)
            && s["assignments"].as_array().is_some_and(|a| {
                a.iter()
                    .any(|x| x["id"] == co2.as_str() && x["state"] == "done")
            })
    })
    .await;

    // The profile asks for the signed letter of an initial reply.
    let reply = json!({"assignment_id": lead, "document_number": "答复〔2020〕7号", "body": "The fund opens in 2021.", "class": "A", "signer": {"name": "Director Chen", "position": "principal_head"}, "opinion_ids": [opinion_id]});
    let r = api
        .post(
            &format!("/v1/suggestions/{id}/replies"),
            &k.lead_admin,
            reply.clone(),
        )
        .await;
    assert_eq!(
        (r.status.as_u16(), r.code()),
        (422, "invalid_argument"),
        "{}",
        r.body
    );
    assert!(
        r.body["detail"]
            .as_str()
            .unwrap_or_default()
            .contains("letter"),
        "{}",
        r.body
    );
    // Another agency's upload, a hash never uploaded, a malformed one: refused, nothing written.
    for (sha, status) in [
        (sha_o.clone(), 404),
        ("0".repeat(64), 404),
        ("xyz".to_owned(), 422),
    ] {
        let mut r2 = reply.clone();
        r2["letter"] = json!(sha);
        let r = api
            .post(&format!("/v1/suggestions/{id}/replies"), &k.lead_admin, r2)
            .await;
        assert_eq!(r.status.as_u16(), status, "{}", r.body);
    }
    let mut with_letter = reply;
    with_letter["letter"] = json!(sha_r);
    with_letter["attachments"] = json!([sha_r]);
    let s = api
        .ok(
            &format!("/v1/suggestions/{id}/replies"),
            &k.lead_admin,
            with_letter,
        )
        .await;
    let view_letter: &Value = &s["replies"][0]["letter"];
    assert_eq!(view_letter["sha256"], sha_r.as_str());
    assert_eq!(view_letter["name"], "答复函.pdf");
    let href = view_letter["href"].as_str().expect("href").to_owned();
    assert_eq!(href, format!("/v1/suggestions/{id}/documents/{sha_r}"));

    // The reply's letter: the deputies, the office, auditors and the units of the item read
    // it; an agency or deputy not party to it gets the same 404 as for nothing.
    for key in [
        &k.deputy,
        &k.co_signer,
        &k.office,
        &k.auditor,
        &k.lead_handler,
        &k.co1_admin,
    ] {
        let (status, headers, bytes) = download(api, &href, key).await;
        assert_eq!(status, 200, "{key}");
        assert_eq!(bytes, letter);
        assert_eq!(headers["etag"], format!("\"{sha_r}\"").as_str());
    }
    for key in [&k.other_admin, &k.other_deputy] {
        let (status, ..) = download(api, &href, key).await;
        assert_eq!(status, 404);
    }
    // The opinion's letter: the lead and the office read it; deputies do not read opinions.
    let opinion_href = format!("/v1/suggestions/{id}/documents/{sha_o}");
    for (key, want) in [
        (&k.lead_admin, 200),
        (&k.co1_admin, 200),
        (&k.office, 200),
        (&k.deputy, 404),
        (&k.other_admin, 404),
    ] {
        let (status, _, bytes) = download(api, &opinion_href, key).await;
        assert_eq!(status, want, "{key}");
        if want == 200 {
            assert_eq!(bytes, opinion_letter);
        }
    }
    // The event the audit log records carries the letter's hash.
    let events = api
        .get(&format!("/v1/suggestions/{id}/events"), &k.auditor)
        .await;
    let issued = events
        .body
        .as_array()
        .expect("events")
        .iter()
        .find(|e| e["type"] == "suggestion.reply_issued")
        .expect("reply issued")
        .to_string();
    assert!(issued.contains(&sha_r), "{issued}");
    w.api.close().await;
}

#[tokio::test]
async fn an_agency_that_has_uploaded_its_hourly_bytes_waits_and_others_do_not() {
    let api = Api::with(
        banli_db::testing::TestDb::sqlite().await,
        1024 * 1024,
        Options {
            document_upload_bytes_per_hour: 150_000,
            ..Options::default()
        },
    )
    .await;
    let w = World::new(api).await;
    let (api, k) = (&w.api, &w.keys);
    for seed in [10, 11] {
        let r = upload(
            api,
            &k.lead_admin,
            "a.pdf",
            pdf(100_000, seed),
            "application/pdf",
        )
        .await;
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let r = upload(
        api,
        &k.lead_handler,
        "c.pdf",
        pdf(100_000, 12),
        "application/pdf",
    )
    .await;
    assert_eq!(
        (r.status.as_u16(), r.code()),
        (429, "rate_limited"),
        "{}",
        r.body
    );
    let wait: u64 = r.headers["retry-after"]
        .to_str()
        .ok()
        .and_then(|v| v.parse().ok())
        .expect("Retry-After");
    assert!((1..=3600).contains(&wait), "{wait}");
    // Another agency has its own hour.
    let r = upload(
        api,
        &k.co1_admin,
        "d.pdf",
        pdf(100_000, 13),
        "application/pdf",
    )
    .await;
    assert_eq!(r.status, 201, "{}", r.body);
    w.api.close().await;
}
