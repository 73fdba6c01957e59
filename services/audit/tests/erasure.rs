//! Erasure, on SQLite and PostgreSQL: a deputy's personal data (and a leaf's) erased from the
//! side table, the erasure recorded as a leaf whose reason is itself erasable text, every proof
//! and `verify` intact; an unknown subject or leaf, or data erased already, refused; a retry
//! with the same idempotency key answered with the first erasure. Then the same through REST and
//! gRPC: the assigning office only, 404 / 409 / 422, and the opening of a commitment.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use banli_api::{AppError, Authenticator, ErrorCode, Principal};
use banli_audit::{Record, Signer, verify_inclusion};
use banli_auditlog::store::Store;
use banli_auditlog::verify::verify;
use banli_auditlog::{AuditLog, EraseError, ErasureTarget, LogOptions};
use banli_db::testing::TestDb;
use banli_domain::Role;
use banli_proto::audit::v1 as pb;
use http_body_util::BodyExt;
use pb::audit_service_server::AuditService;
use serde_json::{Value, json};
use tower::ServiceExt;

const ORIGIN: &str = "banli.test/audit";

/// Feedback from `deputy` (personal: the comment), or a record without personal data.
fn feedback(i: u64, deputy: Option<&str>) -> Record {
    match deputy {
        Some(d) => Record {
            record_type: "feedback".into(),
            source_id: format!("e-{i}"),
            subject: Some("s-1".into()),
            occurred_at: "2026-03-02T01:00:00Z".into(),
            actor: json!({"role": "deputy", "deputy": d}),
            data: json!({"feedback": {"deputy": d, "level": "dissatisfied"}}),
            personal: Some(json!({"/feedback/comment": format!("comment {i} by {d}")})),
        },
        None => Record {
            record_type: "assignment".into(),
            source_id: format!("e-{i}"),
            subject: Some("s-1".into()),
            occurred_at: "2026-03-02T01:00:00Z".into(),
            actor: json!({"role": "assigning_office"}),
            data: json!({"assignment": {"role": "lead"}}),
            personal: None,
        },
    }
}

async fn open(db: &TestDb) -> (AuditLog, Signer) {
    let store = Store::new(db.pool.clone());
    store.migrate().await.expect("migrations");
    let signer = Signer::generate(ORIGIN).expect("key");
    let log = AuditLog::open(
        store,
        Signer::parse(&signer.to_text()).expect("same key"),
        LogOptions {
            checkpoint_interval: Duration::from_millis(20),
            ..LogOptions::new(ORIGIN)
        },
    )
    .await
    .expect("open");
    // Leaves 0–2: d-1's; 3–4: d-2's; 5: no personal data.
    let records = vec![
        feedback(0, Some("d-1")),
        feedback(1, Some("d-1")),
        feedback(2, Some("d-1")),
        feedback(3, Some("d-2")),
        feedback(4, Some("d-2")),
        feedback(5, None),
    ];
    log.append(records).await.expect("append");
    signed(&log, 6).await;
    (log, signer)
}

async fn signed(log: &AuditLog, size: u64) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while log.signed_size() < size {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no checkpoint at {size}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn sha_hex(salt: &[u8], data: &str) -> String {
    let mut bytes = salt.to_vec();
    bytes.extend_from_slice(data.as_bytes());
    ring::digest::digest(&ring::digest::SHA256, &bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn leaf_json(log: &AuditLog, index: u64) -> Value {
    let e = log
        .entries(index, index, 1)
        .await
        .expect("entries")
        .pop()
        .expect("entry");
    serde_json::from_slice(&e.leaf_input).expect("canonical JSON")
}

async fn scenario(db: TestDb) {
    let (log, signer) = open(&db).await;
    let office = json!({"role": "assigning_office"});

    // While kept, the data opens the leaf's commitment.
    let o = log.opening(3).await.expect("read").expect("personal data");
    let leaf = leaf_json(&log, 3).await;
    assert_eq!(
        leaf["personal_commitment"].as_str(),
        Some(
            sha_hex(
                o.salt.as_deref().expect("salt"),
                o.data.as_deref().expect("data")
            )
            .as_str()
        )
    );
    assert!(!leaf.to_string().contains("comment 3"), "{leaf}");

    // A deputy's data, everywhere: recorded first, then erased.
    let e = log
        .erase(
            &ErasureTarget::Subject("d-1".into()),
            "the deputy asked (personal information protection law art. 47)",
            office.clone(),
            None,
        )
        .await
        .expect("erase");
    assert_eq!(
        (e.erased.clone(), e.record, e.repeated),
        (vec![0, 1, 2], 6, false)
    );
    signed(&log, 7).await;
    for i in 0..3 {
        let o = log.opening(i).await.expect("read").expect("row");
        assert_eq!((o.salt, o.data), (None, None), "leaf {i}");
        assert!(o.erased_at.is_some());
    }
    assert!(
        log.opening(3)
            .await
            .expect("read")
            .expect("row")
            .data
            .is_some(),
        "another deputy's data stays"
    );
    let record = leaf_json(&log, 6).await;
    assert_eq!(record["record_type"], "erasure");
    assert_eq!(record["data"]["erased"], json!([0, 1, 2]));
    assert_eq!(record["data"]["data_subject"], "d-1");
    assert!(
        !record.to_string().contains("asked"),
        "the reason is committed to, not in the leaf: {record}"
    );
    let reason = log.opening(6).await.expect("read").expect("the reason");
    assert!(reason.data.expect("kept").contains("asked"));

    // Refused: erased already, unknown subject, no personal data, outside the log.
    let err = |r: Result<_, EraseError>| r.expect_err("refused");
    assert!(matches!(
        err(log
            .erase(
                &ErasureTarget::Subject("d-1".into()),
                "again",
                office.clone(),
                None
            )
            .await),
        EraseError::AlreadyErased(_)
    ));
    assert!(matches!(
        err(log
            .erase(
                &ErasureTarget::Subject("d-9".into()),
                "who",
                office.clone(),
                None
            )
            .await),
        EraseError::UnknownSubject(_)
    ));
    assert!(matches!(
        err(log
            .erase(&ErasureTarget::Leaf(5), "none", office.clone(), None)
            .await),
        EraseError::NoPersonalData(5)
    ));
    assert!(matches!(
        err(log
            .erase(&ErasureTarget::Leaf(99), "far", office.clone(), None)
            .await),
        EraseError::UnknownLeaf { index: 99, .. }
    ));

    // One leaf, with a retry-safe source id: the repeat answers with the first erasure; the
    // same key for another target is refused.
    let first = log
        .erase(
            &ErasureTarget::Leaf(3),
            "one comment",
            office.clone(),
            Some("erasure-key-1".into()),
        )
        .await
        .expect("erase");
    assert_eq!((first.erased.clone(), first.record), (vec![3], 7));
    let again = log
        .erase(
            &ErasureTarget::Leaf(3),
            "one comment",
            office.clone(),
            Some("erasure-key-1".into()),
        )
        .await
        .expect("a repeat");
    assert_eq!(
        (again.erased, again.record, again.repeated),
        (vec![3], 7, true)
    );
    assert!(matches!(
        err(log
            .erase(
                &ErasureTarget::Leaf(4),
                "other",
                office.clone(),
                Some("erasure-key-1".into())
            )
            .await),
        EraseError::KeyReused(7)
    ));
    signed(&log, 8).await;

    // The log is whole: verify, and an erased leaf's inclusion proof.
    let ok = verify(log.store(), &signer.verifier(), ORIGIN, &[])
        .await
        .expect("the log verifies after erasure");
    assert_eq!((ok.leaves, ok.signed_size), (8, 8));
    let cp = log.checkpoint().expect("signed");
    let proof = log.inclusion_proof(0, cp.size).expect("proof");
    let e0 = log
        .entries(0, 0, 1)
        .await
        .expect("entry")
        .pop()
        .expect("leaf");
    assert_eq!(
        verify_inclusion(
            0,
            cp.size,
            &banli_audit::leaf_hash(&e0.leaf_input),
            &proof,
            &cp.root
        ),
        Ok(())
    );
    db.drop_db().await;
}

#[tokio::test]
async fn on_sqlite() {
    scenario(TestDb::sqlite().await).await;
}

#[tokio::test]
async fn on_postgres() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    scenario(db).await;
}

fn auth() -> Authenticator {
    Arc::new(|token: String| {
        Box::pin(async move {
            let role = match token.as_str() {
                "office" => Role::AssigningOffice,
                "auditor" => Role::Auditor,
                "agency" => Role::AgencyAdmin,
                _ => return Err(AppError::new(ErrorCode::Unauthenticated, "unknown key")),
            };
            Ok(Principal {
                position: None,
                key_id: uuid::Uuid::nil(),
                role,
                agency: None,
                deputy: None,
                reference: None,
                client_cert: None,
            })
        })
    })
}

async fn call(
    router: &axum::Router,
    method: &str,
    path: &str,
    key: &str,
    body: Option<(&str, Option<&str>)>,
) -> (StatusCode, Value) {
    let mut req = Request::builder()
        .method(method)
        .uri(path)
        .header("authorization", format!("Bearer {key}"));
    let body = match body {
        Some((b, idem)) => {
            req = req.header("content-type", "application/json");
            if let Some(k) = idem {
                req = req.header("idempotency-key", k);
            }
            Body::from(b.to_owned())
        }
        None => Body::empty(),
    };
    let res = router
        .clone()
        .oneshot(req.body(body).expect("request"))
        .await
        .expect("response");
    let status = res.status();
    let bytes = res.into_body().collect().await.expect("body").to_bytes();
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

#[tokio::test]
async fn through_rest_and_grpc() {
    let db = TestDb::sqlite().await;
    let (log, _) = open(&db).await;
    let handle = banli_auditlog::LogHandle::ready(log.clone());
    let (api, openapi) = banli_auditlog::http::api(handle.clone(), auth());
    let router = banli_api::http::finish(api, openapi);
    let post = |body: &'static str, key: &'static str, idem: Option<&'static str>| {
        let router = router.clone();
        async move {
            call(
                &router,
                "POST",
                "/v1/audit/erasures",
                key,
                Some((body, idem)),
            )
            .await
        }
    };

    // Only the assigning office erases; bad bodies are 422 / 400 and change nothing.
    let (status, v) = post(r#"{"subject":"d-1","reason":"asked"}"#, "auditor", None).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{v}");
    let (status, v) = post(r#"{"subject":"d-1","leaf":1,"reason":"x"}"#, "office", None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (status, v) = post(r#"{"subject":"d-1","reason":"  "}"#, "office", None).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{v}");
    let (status, v) = post(r#"{"subject":"d-1""#, "office", None).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    let (status, v) = post(
        r#"{"subject":"d-1","reason":"x","extra":1}"#,
        "office",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
    assert_eq!(log.signed_size(), 6, "nothing recorded");

    // Erase, retry with the key (the same answer), repeat without (409), unknown (404).
    let (status, v) = post(
        r#"{"subject":"d-1","reason":"asked"}"#,
        "office",
        Some("k-1"),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(v, json!({"erased": [0, 1, 2], "record": 6}));
    let (status, again) = post(
        r#"{"subject":"d-1","reason":"asked"}"#,
        "office",
        Some("k-1"),
    )
    .await;
    assert_eq!((status, again), (StatusCode::CREATED, v));
    let (status, v) = post(r#"{"subject":"d-1","reason":"asked"}"#, "office", None).await;
    assert_eq!(status, StatusCode::CONFLICT, "{v}");
    let (status, v) = post(r#"{"subject":"d-9","reason":"asked"}"#, "office", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{v}");
    let (status, v) = post(r#"{"leaf":5,"reason":"asked"}"#, "office", None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{v}");
    signed(&log, 7).await;

    // The opening: kept data, an erased leaf, none, outside the log, a deputy's key.
    let (status, v) = call(
        &router,
        "GET",
        "/v1/audit/entries/3/personal",
        "auditor",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert!(
        v["data"].as_str().expect("data").contains("comment 3"),
        "{v}"
    );
    let (status, v) = call(
        &router,
        "GET",
        "/v1/audit/entries/0/personal",
        "auditor",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(
        (v["data"].clone(), v["salt"].clone()),
        (Value::Null, Value::Null)
    );
    assert!(v["erased_at"].is_string(), "{v}");
    let (status, _) = call(
        &router,
        "GET",
        "/v1/audit/entries/5/personal",
        "auditor",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = call(
        &router,
        "GET",
        "/v1/audit/entries/70/personal",
        "auditor",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = call(
        &router,
        "GET",
        "/v1/audit/entries/3/personal",
        "agency",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // gRPC: the same.
    let grpc = banli_auditlog::grpc::Grpc::new(handle, auth());
    let req = |target: pb::erase_request::Target, key: &str, idem: &str| {
        let mut r = tonic::Request::new(pb::EraseRequest {
            target: Some(target),
            reason: "asked".into(),
            idempotency_key: idem.into(),
        });
        r.metadata_mut().insert(
            "authorization",
            format!("Bearer {key}").parse().expect("ascii"),
        );
        r
    };
    let denied = grpc
        .erase(req(pb::erase_request::Target::Leaf(3), "auditor", ""))
        .await
        .expect_err("not the office");
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);
    let done = grpc
        .erase(req(pb::erase_request::Target::Leaf(3), "office", "g-1"))
        .await
        .expect("erased")
        .into_inner();
    assert_eq!((done.erased.clone(), done.record), (vec![3], 7));
    let repeat = grpc
        .erase(req(pb::erase_request::Target::Leaf(3), "office", "g-1"))
        .await
        .expect("a retry")
        .into_inner();
    assert_eq!(repeat, done);
    let conflict = grpc
        .erase(req(pb::erase_request::Target::Leaf(3), "office", ""))
        .await
        .expect_err("erased already");
    assert_eq!(conflict.code(), tonic::Code::Aborted);
    let missing = grpc
        .erase(req(
            pb::erase_request::Target::Subject("d-9".into()),
            "office",
            "",
        ))
        .await
        .expect_err("unknown");
    assert_eq!(missing.code(), tonic::Code::NotFound);
    db.drop_db().await;
}
