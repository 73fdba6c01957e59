//! The audit log's REST and gRPC surface: who may read what, proofs that verify against the
//! served checkpoint, and bad parameters answered with a 400 that names them.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode};
use banli_api::{AppError, Authenticator, ErrorCode, Principal};
use banli_audit::{Record, Signer, Verifier, leaf_hash, verify_consistency, verify_inclusion};
use banli_auditlog::store::Store;
use banli_auditlog::{AuditLog, LogOptions};
use banli_db::testing::TestDb;
use banli_domain::Role;
use banli_proto::audit::v1 as pb;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use http_body_util::BodyExt;
use pb::audit_service_server::AuditService;
use serde_json::{Value, json};
use tower::ServiceExt;

const ORIGIN: &str = "banli.test/audit";

fn auth() -> Authenticator {
    Arc::new(|token: String| {
        Box::pin(async move {
            let role = match token.as_str() {
                "office" => Role::AssigningOffice,
                "auditor" => Role::Auditor,
                "agency" => Role::AgencyAdmin,
                "deputy" => Role::Deputy,
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

async fn log_with(n: u64) -> (TestDb, AuditLog, Verifier) {
    let db = TestDb::sqlite().await;
    let store = Store::new(db.pool.clone());
    store.migrate().await.expect("migrations");
    let signer = Signer::generate(ORIGIN).expect("key");
    let verifier = signer.verifier();
    let log = AuditLog::open(
        store,
        signer,
        LogOptions {
            checkpoint_interval: Duration::from_millis(20),
            ..LogOptions::new(ORIGIN)
        },
    )
    .await
    .expect("open");
    let records: Vec<Record> = (0..n)
        .map(|i| Record {
            record_type: "supervision_notice".into(),
            source_id: format!("n-{i}"),
            subject: None,
            occurred_at: "2026-03-02T01:00:00Z".into(),
            actor: json!({"role": "assigning_office"}),
            data: json!({"i": i}),
            personal: None,
        })
        .collect();
    log.append(records).await.expect("append");
    for _ in 0..500 {
        if log.signed_size() == n {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(log.signed_size(), n);
    (db, log, verifier)
}

async fn get(router: &axum::Router, path: &str, key: Option<&str>) -> (StatusCode, String) {
    let mut req = Request::get(path);
    if let Some(k) = key {
        req = req.header("authorization", format!("Bearer {k}"));
    }
    let res = router
        .clone()
        .oneshot(req.body(Body::empty()).expect("request"))
        .await
        .expect("response");
    let status = res.status();
    let body = res.into_body().collect().await.expect("body").to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

fn json_of(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or(Value::Null)
}

fn hashes(v: &Value) -> Vec<[u8; 32]> {
    v.as_array()
        .expect("list")
        .iter()
        .map(|h| {
            STANDARD
                .decode(h.as_str().expect("text"))
                .expect("base64")
                .try_into()
                .expect("32 bytes")
        })
        .collect()
}

#[tokio::test]
async fn rest() {
    let (_db, log, verifier) = log_with(37).await;
    let (api, openapi) =
        banli_auditlog::http::api(banli_auditlog::LogHandle::ready(log.clone()), auth());
    let router = banli_api::http::finish(api, openapi);

    // Public: the checkpoint and the key; the key read from the API verifies the checkpoint.
    let (status, note) = get(&router, "/v1/audit/checkpoint", None).await;
    assert_eq!(status, StatusCode::OK);
    let (status, key) = get(&router, "/v1/audit/public-key", None).await;
    assert_eq!(status, StatusCode::OK);
    let served = Verifier::parse(&key).expect("a verifier key");
    assert_eq!(served, verifier);
    let cp = served.verify(&note, ORIGIN).expect("signed");
    assert_eq!(cp.size, 37);
    // A witness polls with the ETag: 304 while the log has not grown.
    let tagged = |tag: String| {
        let router = router.clone();
        async move {
            let req = Request::get("/v1/audit/checkpoint")
                .header("if-none-match", tag)
                .body(Body::empty())
                .expect("request");
            let res = router.oneshot(req).await.expect("response");
            let etag = res
                .headers()
                .get("etag")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            (res.status(), etag)
        }
    };
    let (status, etag) = tagged("\"nothing\"".into()).await;
    assert_eq!(status, StatusCode::OK);
    let etag = etag.expect("an ETag");
    assert!(etag.starts_with("\"37-"), "{etag}");
    assert_eq!(tagged(etag.clone()).await.0, StatusCode::NOT_MODIFIED);
    assert_eq!(
        tagged(format!("\"x\", W/{etag}")).await.0,
        StatusCode::NOT_MODIFIED
    );

    // Entries and proofs: the office and auditors only.
    let path = "/v1/audit/entries?start=0&end=99";
    assert_eq!(get(&router, path, None).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(
        get(&router, path, Some("nobody")).await.0,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        get(&router, path, Some("agency")).await.0,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        get(&router, path, Some("deputy")).await.0,
        StatusCode::FORBIDDEN
    );
    let (status, body) = get(&router, path, Some("auditor")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let entries = json_of(&body)["entries"]
        .as_array()
        .cloned()
        .expect("entries");
    assert_eq!(entries.len(), 37, "clipped to the signed size");
    let leaf = |i: usize| {
        leaf_hash(
            &STANDARD
                .decode(entries[i]["leaf_input"].as_str().expect("leaf"))
                .expect("base64"),
        )
    };

    // Inclusion by index and by hash; both verify against the served checkpoint.
    let (status, body) = get(
        &router,
        "/v1/audit/proofs/inclusion?index=5&tree_size=37",
        Some("office"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let v = json_of(&body);
    assert_eq!(
        verify_inclusion(5, 37, &leaf(5), &hashes(&v["audit_path"]), &cp.root),
        Ok(())
    );
    let h = url_encode(&STANDARD.encode(leaf(20)));
    let (status, body) = get(
        &router,
        &format!("/v1/audit/proofs/inclusion?leaf_hash={h}&tree_size=37"),
        Some("office"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let v = json_of(&body);
    assert_eq!(v["index"], 20);
    assert_eq!(
        verify_inclusion(20, 37, &leaf(20), &hashes(&v["audit_path"]), &cp.root),
        Ok(())
    );
    let (status, body) = get(
        &router,
        "/v1/audit/proofs/consistency?first=10&second=37",
        Some("auditor"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let old = log.store().checkpoints().await.expect("checkpoints");
    assert!(!old.is_empty());
    let first_root = {
        let mut t = banli_audit::Tree::new();
        for i in 0..10 {
            t.push(leaf(i));
        }
        t.root(10).expect("root")
    };
    assert_eq!(
        verify_consistency(
            10,
            37,
            &first_root,
            &cp.root,
            &hashes(&json_of(&body)["consistency"])
        ),
        Ok(())
    );

    // Bad parameters: a 400 that names the parameter; unknown hashes a 404.
    for (path, param) in [
        ("/v1/audit/entries?start=5&end=2", "start"),
        ("/v1/audit/entries?start=37&end=40", "start"),
        ("/v1/audit/entries?start=x&end=2", "start"),
        ("/v1/audit/entries?start=0", "end"),
        ("/v1/audit/entries?start=0&end=1&extra=1", "extra"),
        ("/v1/audit/proofs/inclusion?index=37&tree_size=37", "index"),
        (
            "/v1/audit/proofs/inclusion?index=0&tree_size=38",
            "tree_size",
        ),
        ("/v1/audit/proofs/inclusion?index=0", "tree_size"),
        ("/v1/audit/proofs/inclusion?tree_size=5", "index"),
        (
            "/v1/audit/proofs/inclusion?index=1&leaf_hash=AAAA&tree_size=5",
            "index",
        ),
        (
            "/v1/audit/proofs/inclusion?leaf_hash=not-base64!&tree_size=5",
            "leaf_hash",
        ),
        (
            "/v1/audit/proofs/inclusion?leaf_hash=AAAA&tree_size=5",
            "leaf_hash",
        ),
        ("/v1/audit/proofs/consistency?first=0&second=5", "first"),
        ("/v1/audit/proofs/consistency?first=6&second=5", "first"),
        ("/v1/audit/proofs/consistency?first=1&second=38", "second"),
        ("/v1/audit/proofs/consistency?first=-1&second=5", "first"),
    ] {
        let (status, body) = get(&router, path, Some("auditor")).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{path}: {body}");
        let detail = json_of(&body)["detail"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(detail.contains(param), "{path}: {detail}");
    }
    let unknown = url_encode(&STANDARD.encode([9u8; 32]));
    let (status, _) = get(
        &router,
        &format!("/v1/audit/proofs/inclusion?leaf_hash={unknown}&tree_size=37"),
        Some("auditor"),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

fn url_encode(s: &str) -> String {
    s.replace('+', "%2B")
        .replace('/', "%2F")
        .replace('=', "%3D")
}

fn with_key<T>(msg: T, key: Option<&str>) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    if let Some(k) = key {
        r.metadata_mut().insert(
            "authorization",
            format!("Bearer {k}").parse().expect("metadata"),
        );
    }
    r
}

#[tokio::test]
async fn grpc() {
    let (_db, log, verifier) = log_with(12).await;
    let mut routes = tonic::service::RoutesBuilder::default();
    banli_auditlog::grpc::add_services(
        banli_auditlog::LogHandle::ready(log.clone()),
        auth(),
        &mut routes,
    );
    // The service itself, called as tonic calls it.
    let svc = grpc_service(log.clone());
    let cp = svc
        .get_checkpoint(with_key(pb::GetCheckpointRequest {}, None))
        .await
        .expect("public")
        .into_inner();
    assert_eq!(cp.tree_size, 12);
    assert_eq!(
        verifier
            .verify(&cp.text, ORIGIN)
            .expect("signed")
            .root
            .to_vec(),
        cp.root_hash
    );
    let key = svc
        .get_public_key(with_key(pb::GetPublicKeyRequest {}, None))
        .await
        .expect("public")
        .into_inner();
    assert_eq!(key.note_verifier_key, verifier.to_text());
    assert_eq!(key.ed25519.len(), 32);

    let ask = |index: u64, size: u64| pb::GetInclusionProofRequest {
        leaf: Some(pb::get_inclusion_proof_request::Leaf::Index(index)),
        tree_size: size,
    };
    let err = svc
        .get_inclusion_proof(with_key(ask(1, 12), None))
        .await
        .expect_err("a key is needed");
    assert_eq!(err.code(), tonic::Code::Unauthenticated);
    let err = svc
        .get_inclusion_proof(with_key(ask(1, 12), Some("agency")))
        .await
        .expect_err("not for agencies");
    assert_eq!(err.code(), tonic::Code::PermissionDenied);
    let err = svc
        .get_inclusion_proof(with_key(ask(1, 13), Some("auditor")))
        .await
        .expect_err("beyond the signed size");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    assert!(err.message().contains("tree_size"), "{}", err.message());
    let proof = svc
        .get_inclusion_proof(with_key(ask(3, 12), Some("auditor")))
        .await
        .expect("proof")
        .into_inner();
    let entries = svc
        .get_entries(with_key(
            pb::GetEntriesRequest { start: 3, end: 3 },
            Some("office"),
        ))
        .await
        .expect("entries")
        .into_inner();
    let leaf = leaf_hash(&entries.entries[0].leaf_input);
    let path: Vec<[u8; 32]> = proof
        .audit_path
        .iter()
        .map(|h| h.clone().try_into().expect("32 bytes"))
        .collect();
    let root: [u8; 32] = cp.root_hash.try_into().expect("32 bytes");
    assert_eq!(verify_inclusion(3, 12, &leaf, &path, &root), Ok(()));
    let err = svc
        .get_consistency_proof(with_key(
            pb::GetConsistencyProofRequest {
                first: 0,
                second: 4,
            },
            Some("auditor"),
        ))
        .await
        .expect_err("first is 0");
    assert_eq!(err.code(), tonic::Code::InvalidArgument);
    let err = svc
        .get_inclusion_proof(with_key(
            pb::GetInclusionProofRequest {
                leaf: Some(pb::get_inclusion_proof_request::Leaf::LeafHash(vec![
                    1, 2, 3,
                ])),
                tree_size: 12,
            },
            Some("auditor"),
        ))
        .await
        .expect_err("not a hash");
    assert!(err.message().contains("leaf_hash"));
}

fn grpc_service(log: AuditLog) -> impl AuditService {
    banli_auditlog::grpc::Grpc::new(banli_auditlog::LogHandle::ready(log), auth())
}
