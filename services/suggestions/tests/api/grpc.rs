//! gRPC over a real local port: health, reflection, the same rules and error codes as REST.

use banli_proto::suggestions::v1 as pb;
use pb::suggestion_service_client::SuggestionServiceClient;
use serde_json::json;
use tonic::Code;
use tonic::metadata::MetadataValue;

use crate::support::{Api, World};

async fn start(w: &World) -> (String, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(banli_suggestions::grpc::serve(
        w.api.app.clone(),
        listener,
        async {
            let _ = rx.await;
        },
    ));
    (format!("http://{addr}"), tx)
}

fn authed<T>(msg: T, key: &str) -> tonic::Request<T> {
    let mut r = tonic::Request::new(msg);
    let v: MetadataValue<_> = format!("Bearer {key}").parse().expect("metadata");
    r.metadata_mut().insert("authorization", v);
    r
}

#[tokio::test]
async fn grpc_serves_the_same_rules() {
    let w = World::new(Api::sqlite().await).await;
    let (url, stop) = start(&w).await;
    let channel = tonic::transport::Endpoint::from_shared(url)
        .expect("url")
        .connect()
        .await
        .expect("connects");

    let mut health = tonic_health::pb::health_client::HealthClient::new(channel.clone());
    let h = health
        .check(tonic_health::pb::HealthCheckRequest {
            service: "banli.suggestions.v1.SuggestionService".into(),
        })
        .await
        .expect("health");
    assert_eq!(
        h.into_inner().status,
        tonic_health::pb::health_check_response::ServingStatus::Serving as i32
    );

    let mut client = SuggestionServiceClient::new(channel);
    let err = client
        .get_suggestion(pb::GetSuggestionRequest {
            id: uuid::Uuid::now_v7().to_string(),
        })
        .await
        .expect_err("no key");
    assert_eq!(err.code(), Code::Unauthenticated);

    // The deputies' list: the office (and auditors), as over REST.
    let deputies = client
        .list_deputies(authed(pb::ListDeputiesRequest {}, &w.keys.office))
        .await
        .expect("the office lists the deputies")
        .into_inner()
        .deputies;
    assert!(deputies.iter().any(|d| d.id == w.deputy), "{deputies:?}");
    let err = client
        .list_deputies(authed(pb::ListDeputiesRequest {}, &w.keys.lead_admin))
        .await
        .expect_err("an agency's key");
    assert_eq!(err.code(), Code::PermissionDenied);

    let submit = pb::SubmitSuggestionRequest {
        session_id: w.session.clone(),
        number: "2020-0700".into(),
        title: "t".into(),
        body: "b".into(),
        lead_deputy_id: w.deputy.clone(),
        idempotency_key: "g1".into(),
        ..Default::default()
    };
    let s = client
        .submit_suggestion(authed(submit.clone(), &w.keys.deputy))
        .await
        .expect("submit")
        .into_inner();
    assert_eq!((s.state.as_str(), s.version), ("submitted", 1));
    let replay = client
        .submit_suggestion(authed(submit, &w.keys.deputy))
        .await
        .expect("replay")
        .into_inner();
    assert_eq!(
        replay.id, s.id,
        "the idempotency key replays the first answer"
    );

    let err = client
        .get_suggestion(authed(
            pb::GetSuggestionRequest { id: s.id.clone() },
            &w.keys.other_deputy,
        ))
        .await
        .expect_err("not party");
    assert_eq!(err.code(), Code::NotFound);
    assert_eq!(
        err.metadata()
            .get("banli-error-code")
            .and_then(|v| v.to_str().ok()),
        Some("not_found")
    );
    let err = client
        .get_suggestion(authed(
            pb::GetSuggestionRequest { id: "nope".into() },
            &w.keys.office,
        ))
        .await
        .expect_err("bad id");
    assert_eq!(err.code(), Code::InvalidArgument);

    let err = client
        .review_suggestion(authed(
            pb::ReviewSuggestionRequest {
                suggestion_id: s.id.clone(),
                decision: 1,
                ..Default::default()
            },
            &w.keys.office,
        ))
        .await
        .expect_err("wrong state");
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(
        err.message()
            .contains("cannot review while the suggestion is submitted"),
        "{}",
        err.message()
    );
    let ok = client
        .start_review(authed(
            pb::StartReviewRequest {
                suggestion_id: s.id.clone(),
                expected_version: 1,
            },
            &w.keys.office,
        ))
        .await
        .expect("start");
    assert_eq!(ok.into_inner().state, "under_review");
    let stale = client
        .start_review(authed(
            pb::StartReviewRequest {
                suggestion_id: s.id.clone(),
                expected_version: 1,
            },
            &w.keys.office,
        ))
        .await
        .expect_err("stale");
    assert_eq!(stale.code(), Code::FailedPrecondition);

    // What gRPC wrote, REST reads.
    let r = w
        .api
        .get(&format!("/v1/suggestions/{}", s.id), &w.keys.office)
        .await;
    assert_eq!(r.body["state"], json!("under_review"));
    let _ = stop.send(());
    w.api.close().await;
}

#[tokio::test]
async fn reflection_lists_the_services() {
    use tokio_stream::StreamExt;
    use tonic_reflection::pb::v1::server_reflection_client::ServerReflectionClient;
    use tonic_reflection::pb::v1::{
        ServerReflectionRequest, server_reflection_request::MessageRequest,
        server_reflection_response::MessageResponse,
    };
    let w = World::new(Api::sqlite().await).await;
    let (url, stop) = start(&w).await;
    let channel = tonic::transport::Endpoint::from_shared(url)
        .expect("url")
        .connect()
        .await
        .expect("connects");
    let mut client = ServerReflectionClient::new(channel);
    let req = ServerReflectionRequest {
        host: String::new(),
        message_request: Some(MessageRequest::ListServices(String::new())),
    };
    // Without a valid key, reflection answers nothing.
    for key in [None, Some("banli_0000_not-a-key")] {
        let mut r = tonic::Request::new(tokio_stream::iter(vec![req.clone()]));
        if let Some(k) = key {
            r.metadata_mut().insert(
                "authorization",
                format!("Bearer {k}").parse().expect("metadata"),
            );
        }
        let err = client
            .server_reflection_info(r)
            .await
            .expect_err("reflection without a key");
        assert_eq!(err.code(), tonic::Code::Unauthenticated, "{err:?}");
    }
    let mut r = tonic::Request::new(tokio_stream::iter(vec![req]));
    r.metadata_mut().insert(
        "authorization",
        format!("Bearer {}", w.keys.deputy)
            .parse()
            .expect("metadata"),
    );
    let mut stream = client
        .server_reflection_info(r)
        .await
        .expect("reflection")
        .into_inner();
    let Some(Ok(resp)) = stream.next().await else {
        panic!("no reflection answer")
    };
    let Some(MessageResponse::ListServicesResponse(list)) = resp.message_response else {
        panic!("unexpected answer")
    };
    let names: Vec<_> = list.service.into_iter().map(|s| s.name).collect();
    assert!(
        names.contains(&"banli.suggestions.v1.SuggestionService".to_owned()),
        "{names:?}"
    );
    let _ = stop.send(());
    w.api.close().await;
}

/// Every gRPC command is as safe to retry as REST: the same idempotency key (the request's
/// field, or the `idempotency-key` metadata) answers as the first time with one effect, the
/// same key with another request is INVALID_ARGUMENT, and an agency's `reference-id` makes a
/// repeat a no-op.
#[tokio::test]
async fn grpc_commands_are_safe_to_retry() {
    let w = World::new(Api::sqlite().await).await;
    let k = &w.keys;
    let (url, stop) = start(&w).await;
    let mut c = SuggestionServiceClient::connect(url)
        .await
        .expect("connects");

    // CreateDeputy with the field, twice: one deputy, the same answer.
    let deputy = |name: &str| pb::CreateDeputyRequest {
        deputy: Some(pb::Deputy {
            id: String::new(),
            name: name.into(),
            delegation: "Changsha".into(),
            contact: String::new(),
        }),
        idempotency_key: "deputy-1".into(),
    };
    let a = c
        .create_deputy(authed(deputy("Wang Wu"), &k.office))
        .await
        .expect("created")
        .into_inner();
    let b = c
        .create_deputy(authed(deputy("Wang Wu"), &k.office))
        .await
        .expect("replayed")
        .into_inner();
    assert_eq!(a, b);
    let err = c
        .create_deputy(authed(deputy("Zhao Liu"), &k.office))
        .await
        .expect_err("the key with another request");
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(err.message().contains("deputy-1"), "{err:?}");

    // StartReview with the metadata key, twice: one transition, the same answer.
    let id = w.submit("2026-G001").await["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let review = |key: Option<&str>| {
        let mut r = authed(
            pb::StartReviewRequest {
                suggestion_id: id.clone(),
                expected_version: 0,
            },
            &k.office,
        );
        if let Some(key) = key {
            r.metadata_mut()
                .insert("idempotency-key", key.parse().expect("metadata"));
        }
        r
    };
    let first = c
        .start_review(review(Some("review-1")))
        .await
        .expect("started")
        .into_inner();
    let again = c
        .start_review(review(Some("review-1")))
        .await
        .expect("replayed")
        .into_inner();
    assert_eq!(first, again);
    // It happened once: a second start without the key is refused by the state.
    let err = c
        .start_review(review(None))
        .await
        .expect_err("started already");
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    let now = w.api.get(&format!("/v1/suggestions/{id}"), &k.office).await;
    assert_eq!(now.body["version"].as_u64(), Some(first.version));

    // RecordCommunication under the lead agency's reference id, twice: one communication.
    let (id, lead, _, _) = w.assigned("2026-G002").await;
    w.sign_and_dispatch(&id, &lead, &k.lead_admin).await;
    let record = || {
        let mut r = authed(
            pb::RecordCommunicationRequest {
                suggestion_id: id.clone(),
                assignment_id: lead.clone(),
                phase: "during".into(),
                method: "phone".into(),
                deputy_ids: vec![w.deputy.clone()],
                summary: "called from the OA system".into(),
                ..Default::default()
            },
            &k.lead_admin,
        );
        r.metadata_mut()
            .insert("reference-id", "OA-COMM-7".parse().expect("metadata"));
        r
    };
    let x = c
        .record_communication(record())
        .await
        .expect("recorded")
        .into_inner();
    let y = c
        .record_communication(record())
        .await
        .expect("a no-op")
        .into_inner();
    assert_eq!(x, y);
    let view = w
        .api
        .get(&format!("/v1/suggestions/{id}"), &k.lead_admin)
        .await;
    assert_eq!(
        view.body["communications"].as_array().map(Vec::len),
        Some(1),
        "{}",
        view.body
    );
    let _ = stop.send(());
    w.api.close().await;
}

#[tokio::test]
async fn documents_stream_up_and_down_over_grpc() {
    use pb::document_service_client::DocumentServiceClient;
    use sha2::Digest;
    let w = World::new(Api::sqlite().await).await;
    let (url, stop) = start(&w).await;
    let channel = tonic::transport::Endpoint::from_shared(url)
        .expect("url")
        .connect()
        .await
        .expect("connects");
    let mut client = DocumentServiceClient::new(channel);
    let mut letter = b"%PDF-1.7\n".to_vec();
    letter.extend((0..700_000u32).map(|i| (i % 251) as u8));
    let chunks: Vec<pb::UploadDocumentChunk> = letter
        .chunks(256 * 1024)
        .enumerate()
        .map(|(i, c)| pb::UploadDocumentChunk {
            name: if i == 0 {
                "答复函.pdf".into()
            } else {
                String::new()
            },
            data: c.to_vec(),
        })
        .collect();
    let up = client
        .upload(authed(
            tokio_stream::iter(chunks.clone()),
            &w.keys.lead_admin,
        ))
        .await
        .expect("uploaded")
        .into_inner();
    let want: String = sha2::Sha256::digest(&letter)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    assert_eq!(
        (
            up.sha256.as_str(),
            up.media_type.as_str(),
            up.size,
            up.name.as_str(),
            up.created
        ),
        (
            want.as_str(),
            "application/pdf",
            letter.len() as u64,
            "答复函.pdf",
            true
        )
    );
    // An executable: refused, naming what it is; a deputy may not upload.
    let mut exe = b"MZ".to_vec();
    exe.resize(2048, 0);
    let err = client
        .upload(authed(
            tokio_stream::iter(vec![pb::UploadDocumentChunk {
                name: "a.pdf".into(),
                data: exe,
            }]),
            &w.keys.lead_admin,
        ))
        .await
        .expect_err("refused");
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(
        err.message().contains("application/x-msdownload"),
        "{}",
        err.message()
    );
    let err = client
        .upload(authed(tokio_stream::iter(chunks), &w.keys.deputy))
        .await
        .expect_err("refused");
    assert_eq!(err.code(), Code::PermissionDenied);
    // Down again, byte for byte; another agency gets NOT_FOUND.
    let mut stream = client
        .download(authed(
            pb::DownloadDocumentRequest {
                sha256: want.clone(),
                suggestion_id: String::new(),
            },
            &w.keys.lead_handler,
        ))
        .await
        .expect("download")
        .into_inner();
    let head = stream.message().await.expect("first").expect("a message");
    assert_eq!(head.document.map(|d| d.sha256), Some(want.clone()));
    let mut back = head.data;
    while let Some(m) = stream.message().await.expect("chunk") {
        back.extend(m.data);
    }
    assert_eq!(back, letter);
    let err = client
        .download(authed(
            pb::DownloadDocumentRequest {
                sha256: want,
                suggestion_id: String::new(),
            },
            &w.keys.other_admin,
        ))
        .await
        .expect_err("not found");
    assert_eq!(err.code(), Code::NotFound);
    let _ = stop.send(());
    w.api.close().await;
}

/// Calls are held to the server's call limit, but a document streamed up over a slow line may
/// take longer than that.
#[tokio::test]
async fn an_upload_may_outlast_the_call_limit() {
    use pb::document_service_client::DocumentServiceClient;
    let w = World::new(Api::sqlite().await).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    let mut routes = tonic::service::RoutesBuilder::default();
    banli_suggestions::grpc::add_services(w.api.app.clone(), &mut routes);
    let layer = banli_api::consistency::ConsistencyLayer::new(
        banli_api::consistency::TokenKey::ephemeral().expect("a key"),
        banli_api::consistency::DEFAULT_WAIT,
        banli_api::consistency::Gates::default(),
    );
    let options = banli_api::grpc::GrpcOptions {
        call_timeout: std::time::Duration::from_secs(1),
        ..banli_api::grpc::GrpcOptions::default()
    };
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(banli_api::grpc::serve_with(
        routes,
        &banli_suggestions::grpc::NAMES,
        listener,
        layer,
        options,
        async {
            let _ = rx.await;
        },
    ));
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("url")
        .connect()
        .await
        .expect("connects");
    let mut client = DocumentServiceClient::new(channel);
    // Five pieces, 600 ms apart: 2.4 s, beyond the 1 s call limit.
    let mut letter = b"%PDF-1.7\n".to_vec();
    letter.resize(50_000, b'x');
    let pieces: Vec<Vec<u8>> = letter.chunks(10_000).map(<[u8]>::to_vec).collect();
    let slow = tokio_stream::StreamExt::throttle(
        tokio_stream::iter(pieces.into_iter().map(|data| pb::UploadDocumentChunk {
            name: "slow.pdf".into(),
            data,
        })),
        std::time::Duration::from_millis(600),
    );
    let start = std::time::Instant::now();
    let up = client
        .upload(authed(slow, &w.keys.lead_admin))
        .await
        .expect("the upload outlasts the call limit")
        .into_inner();
    assert!(start.elapsed() > std::time::Duration::from_secs(2));
    assert_eq!(up.size, 50_000);
    let _ = tx.send(());
    w.api.close().await;
}
