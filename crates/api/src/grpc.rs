//! gRPC plumbing every service shares: one server for the services of the process, with the
//! standard health service and server reflection (for holders of a key), connection limits and
//! call deadlines, and the caller's bearer key from metadata.

use std::future::Future;

use tokio::net::TcpListener;
use tonic::metadata::MetadataMap;
use tonic::service::RoutesBuilder;

use crate::error::{AppError, ErrorCode};

/// Who may use server reflection (the list of services and their descriptors).
#[derive(Clone, Default)]
pub enum Reflection {
    /// Not served.
    #[default]
    Off,
    /// Served to callers with a valid API key (`authorization: Bearer <key>`; grpcurl sends its
    /// `-H` headers with reflection requests too).
    WithKey(crate::Authenticator),
}

impl std::fmt::Debug for Reflection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Reflection::Off => "Off",
            Reflection::WithKey(_) => "WithKey",
        })
    }
}

/// How a gRPC server treats its connections and calls.
#[derive(Debug, Clone)]
pub struct GrpcOptions {
    /// Connections at once, and the time a new one has to send its first bytes.
    pub limits: crate::server::ConnectionLimits,
    /// The longest a unary call (or a stream's start) may take; a client's shorter
    /// `grpc-timeout` is honoured too.
    pub call_timeout: std::time::Duration,
    /// Calls in flight on one connection at once; more wait.
    pub calls_per_connection: usize,
    pub reflection: Reflection,
    /// TLS for every connection (ALPN h2), with client certificates if it requires them.
    pub tls: Option<crate::tls::ServerTls>,
}

impl Default for GrpcOptions {
    fn default() -> GrpcOptions {
        GrpcOptions {
            limits: crate::server::ConnectionLimits::default(),
            call_timeout: std::time::Duration::from_secs(30),
            calls_per_connection: 64,
            reflection: Reflection::Off,
            tls: None,
        }
    }
}

/// Serves `routes` (the services of this process, by their full names in `names`) plus health
/// and, to holders of a key `auth` accepts, reflection on `listener` until `shutdown` completes.
pub async fn serve(
    routes: RoutesBuilder,
    names: &[&str],
    listener: TcpListener,
    auth: crate::Authenticator,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let key = crate::consistency::TokenKey::ephemeral()?;
    let layer = crate::consistency::ConsistencyLayer::new(
        key,
        crate::consistency::DEFAULT_WAIT,
        crate::consistency::Gates::default(),
    );
    let options = GrpcOptions {
        reflection: Reflection::WithKey(auth),
        ..GrpcOptions::default()
    };
    serve_with(routes, names, listener, layer, options, shutdown).await
}

/// [`serve`] behind `consistency`: requests carrying a token wait on the gate of the service
/// their path belongs to, and every response of a write carries a token.
pub async fn serve_with(
    routes: RoutesBuilder,
    names: &[&str],
    listener: TcpListener,
    consistency: crate::consistency::ConsistencyLayer,
    options: GrpcOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let (reporter, health) = tonic_health::server::health_reporter();
    for name in names {
        reporter
            .set_service_status(*name, tonic_health::ServingStatus::Serving)
            .await;
    }
    let mut routes = routes;
    routes.add_service(health);
    if let Reflection::WithKey(auth) = &options.reflection {
        let reflection = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(banli_proto::FILE_DESCRIPTOR_SET)
            .build_v1()?;
        routes.add_service(KeyRequired {
            inner: reflection,
            auth: auth.clone(),
        });
    }
    let incoming = limited_incoming(listener, options.limits, options.tls.clone());
    tonic::transport::Server::builder()
        // The server's bound is the longest any call may take (a document upload); the
        // others are held to `call_timeout` by `CallTimeLimit`. A client's shorter
        // `grpc-timeout` is honoured by both.
        .timeout(options.call_timeout.max(LONG_CALL_LIMIT))
        .concurrency_limit_per_connection(options.calls_per_connection.max(1))
        .max_concurrent_streams(256)
        .http2_keepalive_interval(Some(std::time::Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(std::time::Duration::from_secs(10)))
        .tcp_nodelay(true)
        .trace_fn(|req| {
            let span = tracing::info_span!("grpc", otel.name = %req.uri().path(), otel.kind = "server", path = %req.uri().path());
            banli_eventlog::trace::follow(
                &span,
                req.headers().get("traceparent").and_then(|v| v.to_str().ok()),
            );
            span
        })
        .layer(crate::metrics::RequestMetricsLayer::grpc())
        .layer(CallTimeLimitLayer {
            limit: options.call_timeout,
        })
        .layer(consistency)
        .add_routes(routes.routes())
        .serve_with_incoming_shutdown(incoming, shutdown)
        .await?;
    Ok(())
}

/// The calls that may take [`LONG_CALL_LIMIT`]: a document streamed up over a slow line.
pub const LONG_CALLS: &[&str] = &["/banli.suggestions.v1.DocumentService/Upload"];

/// How long a call of [`LONG_CALLS`] may take.
pub const LONG_CALL_LIMIT: std::time::Duration = std::time::Duration::from_secs(600);

/// Holds every call but [`LONG_CALLS`] to `limit` (a stream's start, as tonic's own timeout):
/// past it the call is answered `DEADLINE_EXCEEDED`.
#[derive(Debug, Clone, Copy)]
struct CallTimeLimitLayer {
    limit: std::time::Duration,
}

impl<S> tower::Layer<S> for CallTimeLimitLayer {
    type Service = CallTimeLimit<S>;

    fn layer(&self, inner: S) -> CallTimeLimit<S> {
        CallTimeLimit {
            inner,
            limit: self.limit,
        }
    }
}

#[derive(Debug, Clone)]
struct CallTimeLimit<S> {
    inner: S,
    limit: std::time::Duration,
}

impl<S, B, R> tower::Service<axum::http::Request<B>> for CallTimeLimit<S>
where
    S: tower::Service<axum::http::Request<B>, Response = axum::http::Response<R>>,
    S::Future: Send + 'static,
    R: Default + Send + 'static,
{
    type Response = axum::http::Response<R>;
    type Error = S::Error;
    type Future =
        std::pin::Pin<Box<dyn Future<Output = Result<axum::http::Response<R>, S::Error>> + Send>>;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: axum::http::Request<B>) -> Self::Future {
        let long = LONG_CALLS.contains(&req.uri().path());
        let limit = self.limit;
        let call = self.inner.call(req);
        Box::pin(async move {
            if long {
                return call.await;
            }
            match tokio::time::timeout(limit, call).await {
                Ok(res) => res,
                Err(_) => Ok(tonic::Status::deadline_exceeded(format!(
                    "the call took longer than {} s (grpc_call_timeout_secs) and was stopped",
                    limit.as_secs()
                ))
                .into_http()),
            }
        })
    }
}

/// A connection holding its place under the connection limit until it closes.
struct Limited {
    io: Io,
    peer: PeerInfo,
    _permit: tokio::sync::OwnedSemaphorePermit,
}

enum Io {
    Plain(tokio::net::TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<tokio::net::TcpStream>>),
}

/// Who is at the other end of a gRPC call's connection; tonic puts it into every request's
/// extensions ([`client_cert`] reads it).
#[derive(Debug, Clone)]
pub struct PeerInfo {
    pub remote_addr: Option<std::net::SocketAddr>,
    pub client_cert: Option<crate::tls::ClientCert>,
}

/// The client certificate the call's connection presented, if any.
pub fn client_cert(extensions: &tonic::Extensions) -> Option<&crate::tls::ClientCert> {
    extensions
        .get::<PeerInfo>()
        .and_then(|p| p.client_cert.as_ref())
}

impl tonic::transport::server::Connected for Limited {
    type ConnectInfo = PeerInfo;

    fn connect_info(&self) -> Self::ConnectInfo {
        self.peer.clone()
    }
}

macro_rules! on_io {
    ($self:ident, $s:ident => $e:expr) => {
        match &mut $self.io {
            Io::Plain($s) => {
                let $s = std::pin::Pin::new($s);
                $e
            }
            Io::Tls($s) => {
                let $s = std::pin::Pin::new($s.as_mut());
                $e
            }
        }
    };
}

impl tokio::io::AsyncRead for Limited {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        on_io!(self, s => s.poll_read(cx, buf))
    }
}

impl tokio::io::AsyncWrite for Limited {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        on_io!(self, s => s.poll_write(cx, buf))
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        on_io!(self, s => s.poll_flush(cx))
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        on_io!(self, s => s.poll_shutdown(cx))
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        on_io!(self, s => s.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        match &self.io {
            Io::Plain(s) => s.is_write_vectored(),
            Io::Tls(s) => s.is_write_vectored(),
        }
    }
}

/// The connections of `listener`, at most `limits.max_connections` at once, each passed on only
/// once it has sent its first bytes within `limits.header_read_timeout` (HTTP/2 has no header
/// timeout of its own before its preface) and, with `tls`, finished its handshake in that time.
fn limited_incoming(
    listener: TcpListener,
    limits: crate::server::ConnectionLimits,
    tls: Option<crate::tls::ServerTls>,
) -> tokio_stream::wrappers::ReceiverStream<std::io::Result<Limited>> {
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(async move {
        let mut acceptor = crate::server::Acceptor::new(listener, limits, "gRPC");
        let closed = tx.closed();
        tokio::pin!(closed);
        while let Some((stream, permit)) = acceptor.next(&mut closed).await {
            let tx = tx.clone();
            let tls = tls.as_ref().map(|t| t.grpc.clone());
            tokio::spawn(async move {
                if !crate::server::sends_within(&stream, limits.header_read_timeout).await {
                    return;
                }
                let remote_addr = stream.peer_addr().ok();
                let (io, client_cert) = match tls {
                    None => (Io::Plain(stream), None),
                    Some(acceptor) => {
                        match crate::server::handshake(
                            &acceptor,
                            stream,
                            limits.header_read_timeout,
                        )
                        .await
                        {
                            Some((s, cert)) => (Io::Tls(Box::new(s)), cert),
                            None => return,
                        }
                    }
                };
                let _ = tx
                    .send(Ok(Limited {
                        io,
                        peer: PeerInfo {
                            remote_addr,
                            client_cert,
                        },
                        _permit: permit,
                    }))
                    .await;
            });
        }
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

/// A service (reflection) served only to callers with a valid API key.
#[derive(Clone)]
struct KeyRequired<S> {
    inner: S,
    auth: crate::Authenticator,
}

impl<S: tonic::server::NamedService> tonic::server::NamedService for KeyRequired<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> tonic::codegen::Service<tonic::codegen::http::Request<tonic::body::Body>> for KeyRequired<S>
where
    S: tonic::codegen::Service<
            tonic::codegen::http::Request<tonic::body::Body>,
            Response = tonic::codegen::http::Response<tonic::body::Body>,
            Error = std::convert::Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = tonic::codegen::http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = std::pin::Pin<
        Box<dyn Future<Output = Result<Self::Response, std::convert::Infallible>> + Send>,
    >;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), std::convert::Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: tonic::codegen::http::Request<tonic::body::Body>) -> Self::Future {
        // The clone that was made ready is the one called.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let auth = self.auth.clone();
        Box::pin(async move {
            let token = req
                .headers()
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| {
                    v.strip_prefix("Bearer ")
                        .or_else(|| v.strip_prefix("bearer "))
                })
                .map(|t| t.trim().to_owned());
            let cert = req
                .extensions()
                .get::<PeerInfo>()
                .and_then(|p| p.client_cert.clone());
            let allowed = match token {
                Some(t) => auth(t)
                    .await
                    .and_then(|p| p.presented(cert.as_ref()))
                    .is_ok(),
                None => false,
            };
            if !allowed {
                return Ok(tonic::Status::unauthenticated(
                    "server reflection needs a valid API key: send `authorization: Bearer <key>` (grpcurl: -H)",
                )
                .into_http());
            }
            inner.call(req).await
        })
    }
}

/// The agency's reference id from the `reference-id` metadata, if any.
pub fn reference(metadata: &MetadataMap) -> Result<Option<String>, AppError> {
    match metadata.get(crate::principal::REFERENCE_HEADER) {
        None => Ok(None),
        Some(v) => crate::principal::check_reference(v.to_str().unwrap_or("")).map(Some),
    }
}

/// The `idempotency-key` metadata, if any: the gRPC form of REST's `Idempotency-Key` header,
/// kept in the same store under the same rules.
pub fn idempotency_key(metadata: &MetadataMap) -> Result<Option<String>, AppError> {
    match metadata.get("idempotency-key") {
        None => Ok(None),
        Some(v) => v
            .to_str()
            .map(|s| Some(s.to_owned()))
            .map_err(|_| AppError::malformed("idempotency-key must be visible ASCII")),
    }
}

/// The API key from `authorization: Bearer <key>`.
pub fn bearer(metadata: &MetadataMap) -> Result<&str, AppError> {
    metadata
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .ok_or_else(|| {
            AppError::new(
                ErrorCode::Unauthenticated,
                "send metadata `authorization: Bearer <api key>`",
            )
        })
}

/// A command's idempotency key: the request's own `idempotency_key` field when set, else the
/// `idempotency-key` metadata (see [`idempotency_key`]).
pub fn command_key(field: &str, metadata: Option<String>) -> Option<String> {
    Some(field.to_owned())
        .filter(|k| !k.is_empty())
        .or(metadata)
}

/// The SHA-256 (hex) of a request's canonical text, for `idempotency_key` replays: the same
/// key with a different request is refused.
pub fn request_hash(text: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A UUID field of a request; a malformed one is a malformed request naming the field.
pub fn uuid(field: &str, s: &str) -> Result<uuid::Uuid, AppError> {
    uuid::Uuid::try_parse(s)
        .map_err(|_| AppError::malformed(format!("{field} `{s}` is not a UUID")))
}

/// An optional UUID field: empty is absent.
pub fn opt_uuid(field: &str, s: &str) -> Result<Option<uuid::Uuid>, AppError> {
    if s.is_empty() {
        Ok(None)
    } else {
        uuid(field, s).map(Some)
    }
}

/// A position (SignerPosition by number); UNSPECIFIED and unknown numbers are refused.
pub fn position(field: &str, v: i32) -> Result<banli_domain::suggestion::SignerPosition, AppError> {
    use banli_domain::suggestion::SignerPosition;
    use banli_proto::common::v1 as pc;
    match pc::SignerPosition::try_from(v) {
        Ok(pc::SignerPosition::PrincipalHead) => Ok(SignerPosition::PrincipalHead),
        Ok(pc::SignerPosition::AuthorizedLeader) => Ok(SignerPosition::AuthorizedLeader),
        Ok(pc::SignerPosition::DivisionHead) => Ok(SignerPosition::DivisionHead),
        Ok(pc::SignerPosition::Staff) => Ok(SignerPosition::Staff),
        _ => Err(AppError::malformed(format!(
            "{field} must be PRINCIPAL_HEAD, AUTHORIZED_LEADER, DIVISION_HEAD or STAFF"
        ))),
    }
}

/// The signer of a letter; both name and position are required.
pub fn signer(
    s: Option<banli_proto::common::v1::Signer>,
) -> Result<banli_domain::suggestion::Signer, AppError> {
    use banli_domain::suggestion::{Signer, SignerPosition};
    use banli_proto::common::v1 as pc;
    let s = s.ok_or_else(|| AppError::malformed("signer is required"))?;
    let position = match pc::SignerPosition::try_from(s.position) {
        Ok(pc::SignerPosition::PrincipalHead) => SignerPosition::PrincipalHead,
        Ok(pc::SignerPosition::AuthorizedLeader) => SignerPosition::AuthorizedLeader,
        Ok(pc::SignerPosition::DivisionHead) => SignerPosition::DivisionHead,
        Ok(pc::SignerPosition::Staff) => SignerPosition::Staff,
        _ => return Err(AppError::malformed("signer.position is required")),
    };
    Ok(Signer {
        name: s.name,
        position,
    })
}
