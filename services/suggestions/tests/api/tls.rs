//! TLS and client certificates over real local ports: REST and gRPC served over TLS; with a
//! client CA, no handshake without a valid certificate of that CA (unknown, expired, none);
//! a key bound to a certificate works with it only (401 / UNAUTHENTICATED
//! `certificate_mismatch` otherwise), an unbound key with any valid certificate.

use std::net::SocketAddr;
use std::sync::Arc;

use banli_api::test_pki::{Identity, TestPki, connect};
use banli_api::tls::ServerTls;
use banli_proto::suggestions::v1 as pb;
use http_body_util::{BodyExt, Empty};
use hyper::body::Bytes;
use pb::suggestion_service_client::SuggestionServiceClient;
use serde_json::{Value, json};
use tonic::Code;

use crate::support::{Api, World};

fn pki() -> TestPki {
    TestPki::new(&std::env::temp_dir().join(format!("banli-tls-test-{}", uuid::Uuid::new_v4())))
}

/// REST and gRPC servers over TLS for the world's application; dropped, they stop.
struct Servers {
    http: SocketAddr,
    grpc: SocketAddr,
    _stop: tokio::sync::watch::Sender<()>,
}

async fn serve(w: &World, tls: ServerTls) -> Servers {
    let (stop, stopped) = tokio::sync::watch::channel(());
    let http = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let grpc = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addrs = (
        http.local_addr().expect("addr"),
        grpc.local_addr().expect("addr"),
    );
    let until = |mut rx: tokio::sync::watch::Receiver<()>| async move {
        let _ = rx.changed().await;
    };
    tokio::spawn(banli_api::server::serve(
        http,
        w.api.router.clone(),
        banli_api::server::ConnectionLimits::default(),
        Some(tls.clone()),
        until(stopped.clone()),
    ));
    let mut routes = tonic::service::RoutesBuilder::default();
    banli_suggestions::grpc::add_services(w.api.app.clone(), &mut routes);
    let consistency = banli_api::consistency::ConsistencyLayer::new(
        banli_api::consistency::TokenKey::ephemeral().expect("a key"),
        std::time::Duration::from_secs(1),
        banli_api::consistency::Gates::default(),
    );
    tokio::spawn(banli_api::grpc::serve_with(
        routes,
        &[],
        grpc,
        consistency,
        banli_api::grpc::GrpcOptions {
            tls: Some(tls),
            ..Default::default()
        },
        until(stopped),
    ));
    Servers {
        http: addrs.0,
        grpc: addrs.1,
        _stop: stop,
    }
}

/// GET `path` over HTTPS as `identity` (or none) with `key`: the status and JSON body, or the
/// connection's failure.
async fn get(
    pki: &TestPki,
    addr: SocketAddr,
    identity: Option<&Identity>,
    path: &str,
    key: &str,
) -> Result<(u16, Value), String> {
    let tls = connect(addr, pki.client_config(identity, &[b"http/1.1"]))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(tls))
            .await
            .map_err(|e| format!("http: {e}"))?;
    tokio::spawn(conn);
    let req = hyper::Request::get(path)
        .header("host", "localhost")
        .header("authorization", format!("Bearer {key}"))
        .body(Empty::<Bytes>::new())
        .expect("request");
    let resp = sender
        .send_request(req)
        .await
        .map_err(|e| format!("request: {e}"))?;
    let status = resp.status().as_u16();
    let body = resp
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("body: {e}"))?
        .to_bytes();
    Ok((status, serde_json::from_slice(&body).unwrap_or(Value::Null)))
}

async fn grpc_client(
    pki: &TestPki,
    addr: SocketAddr,
    identity: Option<&Identity>,
) -> Result<SuggestionServiceClient<tonic::transport::Channel>, String> {
    let config: Arc<rustls::ClientConfig> = pki.client_config(identity, &[b"h2"]);
    let channel = tonic::transport::Endpoint::from_static("http://localhost")
        .connect_with_connector(tower::service_fn(move |_| {
            let config = config.clone();
            async move {
                connect(addr, config)
                    .await
                    .map(hyper_util::rt::TokioIo::new)
            }
        }))
        .await
        .map_err(|e| format!("connect: {e}"))?;
    Ok(SuggestionServiceClient::new(channel))
}

async fn grpc_get(
    client: &mut SuggestionServiceClient<tonic::transport::Channel>,
    id: &str,
    key: &str,
) -> Result<String, tonic::Status> {
    let mut req = tonic::Request::new(pb::GetSuggestionRequest { id: id.to_owned() });
    req.metadata_mut().insert(
        "authorization",
        format!("Bearer {key}").parse().expect("metadata"),
    );
    Ok(client.get_suggestion(req).await?.into_inner().id)
}

#[tokio::test]
async fn tls_without_client_certificates_serves_rest_and_grpc() {
    let w = World::new(Api::sqlite().await).await;
    let pki = pki();
    let tls = ServerTls::load(&pki.server_files(false)).expect("server TLS");
    assert!(!tls.requires_client_certs());
    let s = serve(&w, tls).await;
    let (status, body) = get(&pki, s.http, None, "/v1/agencies", &w.keys.office)
        .await
        .expect("served over TLS");
    assert_eq!(status, 200, "{body}");
    // Plain HTTP to the TLS port gets no HTTP answer.
    let plain = reqwest_plain(s.http).await;
    assert!(!plain.starts_with("HTTP/1.1 200"), "{plain}");

    let submitted = w.submit("2020-0901").await;
    let id = submitted["id"].as_str().expect("id");
    let mut client = grpc_client(&pki, s.grpc, None)
        .await
        .expect("gRPC over TLS");
    assert_eq!(
        grpc_get(&mut client, id, &w.keys.office)
            .await
            .expect("get"),
        id
    );
}

/// What a plain-text request to `addr` reads back (nothing, or TLS alert bytes).
async fn reqwest_plain(addr: SocketAddr) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let _ = s
        .write_all(b"GET /v1/agencies HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), s.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test]
async fn client_certificates_are_required_and_bind_keys() {
    let w = World::new(Api::sqlite().await).await;
    let pki = pki();
    let tls = ServerTls::load(&pki.server_files(true)).expect("server TLS");
    assert!(tls.requires_client_certs());
    let s = serve(&w, tls).await;
    let agency_system = pki.client("lead agency system");
    let other_system = pki.client("another agency system");

    // A key bound to the agency system's certificate, through the admin API.
    let created = w
        .api
        .ok(
            "/v1/admin/keys",
            &w.keys.office,
            json!({ "role": "handler", "agency_id": w.lead, "label": "lead system",
                    "client_cert_sha256": agency_system.fingerprint.to_uppercase() }),
        )
        .await;
    assert_eq!(
        created["key"]["client_cert_sha256"].as_str(),
        Some(agency_system.fingerprint.as_str())
    );
    let bound = created["token"].as_str().expect("token").to_owned();
    // A malformed fingerprint is a 422 that says what to give.
    let bad = w
        .api
        .post(
            "/v1/admin/keys",
            &w.keys.office,
            json!({ "role": "handler", "agency_id": w.lead, "client_cert_sha256": "abc" }),
        )
        .await;
    assert_eq!(bad.status, 422, "{}", bad.body);
    assert!(bad.body["detail"].as_str().unwrap_or("").contains("64 hex"));

    // With its certificate, the bound key works; the office's unbound key works with any
    // certificate of the CA.
    let path = "/v1/agencies";
    let (status, body) = get(&pki, s.http, Some(&agency_system), path, &bound)
        .await
        .expect("served");
    assert_eq!(status, 200, "{body}");
    let (status, _) = get(&pki, s.http, Some(&other_system), path, &w.keys.office)
        .await
        .expect("served");
    assert_eq!(status, 200);

    // With another valid certificate: 401 certificate_mismatch, no detail of either.
    let (status, body) = get(&pki, s.http, Some(&other_system), path, &bound)
        .await
        .expect("served");
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["code"], "certificate_mismatch", "{body}");
    assert!(
        !body.to_string().contains(&agency_system.fingerprint)
            && !body.to_string().contains(&other_system.fingerprint),
        "{body}"
    );

    // No certificate, an expired one, one from an unknown CA: no handshake, no answer.
    let expired = pki.expired_client("expired system");
    let stranger = TestPki::stranger("unknown system");
    for (what, identity) in [
        ("no certificate", None),
        ("an expired certificate", Some(&expired)),
        ("a certificate of an unknown CA", Some(&stranger)),
    ] {
        let r = get(&pki, s.http, identity, path, &w.keys.office).await;
        assert!(r.is_err(), "served with {what}: {r:?}");
    }

    // gRPC: the same binding.
    let submitted = w.submit("2020-0902").await;
    let id = submitted["id"].as_str().expect("id");
    let mut client = grpc_client(&pki, s.grpc, Some(&agency_system))
        .await
        .expect("gRPC over TLS");
    // The handler of the lead agency may read a suggestion assigned to it or not; what matters
    // is that the key is accepted (not UNAUTHENTICATED).
    let r = grpc_get(&mut client, id, &bound).await;
    assert!(
        !matches!(&r, Err(e) if e.code() == Code::Unauthenticated),
        "{r:?}"
    );
    let mut other = grpc_client(&pki, s.grpc, Some(&other_system))
        .await
        .expect("gRPC over TLS");
    let e = grpc_get(&mut other, id, &bound)
        .await
        .expect_err("another certificate");
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
    assert!(e.message().contains("another client certificate"), "{e:?}");
    assert_eq!(
        grpc_get(&mut other, id, &w.keys.office)
            .await
            .expect("office"),
        id
    );
    for identity in [None, Some(&expired), Some(&stranger)] {
        let r = match grpc_client(&pki, s.grpc, identity).await {
            Err(e) => Err(e),
            Ok(mut c) => grpc_get(&mut c, id, &w.keys.office)
                .await
                .map_err(|e| e.to_string()),
        };
        assert!(r.is_err(), "gRPC served without a valid certificate: {r:?}");
    }

    // A key bound to a certificate is refused over a connection without TLS client
    // authentication (here: in-process, no certificate at all).
    let r = w.api.get(path, &bound).await;
    assert_eq!(r.status, 401);
    assert_eq!(r.body["code"], "certificate_mismatch");
}

#[tokio::test]
async fn bad_tls_files_are_refused_with_what_to_fix() {
    let pki = pki();
    let mut files = pki.server_files(false);
    files.key = files.cert.clone();
    let e = ServerTls::load(&files).expect_err("a certificate is no key");
    assert!(e.contains("tls_key"), "{e}");
    let mut files = pki.server_files(true);
    files.client_ca = Some(files.key.clone());
    let e = ServerTls::load(&files).expect_err("a key is no CA");
    assert!(e.contains("tls_client_ca"), "{e}");
    let mut files = pki.server_files(false);
    files.cert = std::path::PathBuf::from("/nonexistent/server.pem");
    let e = ServerTls::load(&files).expect_err("missing file");
    assert!(e.contains("tls_cert"), "{e}");
}
