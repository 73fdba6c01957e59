//! The HTTP server every `banli serve` process runs: connections are accepted up to a limit,
//! a client has a bounded time to send a request's headers (on a new connection and between
//! the requests of a kept-alive one), and a shutdown finishes the requests in flight.
//!
//! `axum::serve` has neither limit: a client that opens connections and sends nothing, or half a
//! request, held them open for as long as it liked.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tower::ServiceExt;

use crate::tls::{ClientCert, ServerTls};

/// How the server treats its connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// How long a client has to send a request's headers: from the connection's start, and
    /// between the requests of a kept-alive connection (then it is closed).
    pub header_read_timeout: Duration,
    /// Connections open at once; beyond it the server accepts no more until one closes (they
    /// wait in the listen backlog).
    pub max_connections: usize,
    /// How long a shutdown waits for requests in flight.
    pub drain: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> ConnectionLimits {
        ConnectionLimits {
            header_read_timeout: Duration::from_secs(20),
            max_connections: 16_384,
            drain: Duration::from_secs(30),
        }
    }
}

/// Serves `router` on `listener` until `shutdown` completes, then lets the requests in flight
/// finish (at most `limits.drain`). With `tls`, every connection is TLS (the handshake within
/// the header-read timeout) and a client certificate's fingerprint goes into each request's
/// extensions as [`ClientCert`].
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    tls: Option<ServerTls>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let graceful = GracefulShutdown::new();
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    builder
        .http2()
        .timer(TokioTimer::new())
        .keep_alive_interval(Some(Duration::from_secs(30)))
        .keep_alive_timeout(Duration::from_secs(10))
        .max_concurrent_streams(256);
    let builder = Arc::new(builder);
    tokio::pin!(shutdown);
    let mut acceptor = Acceptor::new(listener, limits, "HTTP");
    while let Some((stream, permit)) = acceptor.next(&mut shutdown).await {
        let (builder, router, watcher) = (builder.clone(), router.clone(), graceful.watcher());
        let first_byte = limits.header_read_timeout;
        let tls = tls.as_ref().map(|t| t.http.clone());
        let peer = stream.peer_addr().ok().map(PeerAddr);
        tokio::spawn(async move {
            // The protocol is told by the first bytes, before HTTP/1's header timeout runs: a
            // connection that sends nothing is closed after the same time.
            if !sends_within(&stream, first_byte).await {
                drop(permit);
                return;
            }
            // A connection that ends in error (a client gone, a header timeout) concerns only
            // itself.
            match tls {
                None => {
                    let service = TowerToHyperService::new(router.map_request(
                        move |mut req: axum::extract::Request<hyper::body::Incoming>| {
                            if let Some(peer) = peer {
                                req.extensions_mut().insert(peer);
                            }
                            req
                        },
                    ));
                    let conn = builder
                        .serve_connection_with_upgrades(TokioIo::new(stream), service)
                        .into_owned();
                    let _ = watcher.watch(conn).await;
                }
                Some(acceptor) => {
                    let Some((stream, cert)) = handshake(&acceptor, stream, first_byte).await
                    else {
                        drop(permit);
                        return;
                    };
                    let service = TowerToHyperService::new(router.map_request(
                        move |mut req: axum::extract::Request<hyper::body::Incoming>| {
                            if let Some(cert) = &cert {
                                req.extensions_mut().insert(cert.clone());
                            }
                            if let Some(peer) = peer {
                                req.extensions_mut().insert(peer);
                            }
                            req
                        },
                    ));
                    let conn = builder
                        .serve_connection_with_upgrades(TokioIo::new(stream), service)
                        .into_owned();
                    let _ = watcher.watch(conn).await;
                }
            }
            drop(permit);
        });
    }
    drop(acceptor);
    if tokio::time::timeout(limits.drain, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(
            drain_secs = limits.drain.as_secs(),
            "HTTP requests still in flight after the drain time are cut off"
        );
    }
    Ok(())
}

/// The address of the connection a request came on (a request extension): the client's, or a
/// reverse proxy's in front of banli.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerAddr(pub std::net::SocketAddr);

/// A TLS handshake within `within`, and the fingerprint of the client's certificate if it
/// presented one. A failed handshake (an unknown, expired or missing client certificate, a
/// client that is not speaking TLS) concerns only its connection: logged at debug.
pub(crate) async fn handshake(
    acceptor: &tokio_rustls::TlsAcceptor,
    stream: tokio::net::TcpStream,
    within: Duration,
) -> Option<(
    tokio_rustls::server::TlsStream<tokio::net::TcpStream>,
    Option<ClientCert>,
)> {
    match tokio::time::timeout(within, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => {
            let cert = tls
                .get_ref()
                .1
                .peer_certificates()
                .and_then(|c| c.first())
                .map(|c| ClientCert(crate::tls::fingerprint(c)));
            Some((tls, cert))
        }
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "TLS handshake failed");
            None
        }
        Err(_) => {
            tracing::debug!("TLS handshake not finished within the header-read timeout");
            None
        }
    }
}

/// Accepts a listener's connections, each holding a place under `max_connections` until it is
/// dropped: at the limit, new connections wait in the listen backlog (logged once).
pub(crate) struct Acceptor {
    listener: TcpListener,
    permits: Arc<Semaphore>,
    max: usize,
    at_limit: bool,
    what: &'static str,
}

impl Acceptor {
    pub(crate) fn new(
        listener: TcpListener,
        limits: ConnectionLimits,
        what: &'static str,
    ) -> Acceptor {
        Acceptor {
            listener,
            permits: Arc::new(Semaphore::new(limits.max_connections.max(1))),
            max: limits.max_connections,
            at_limit: false,
            what,
        }
    }

    /// The next connection and its place; `None` once `stop` completes.
    pub(crate) async fn next(
        &mut self,
        stop: &mut (impl Future<Output = ()> + Unpin),
    ) -> Option<(tokio::net::TcpStream, tokio::sync::OwnedSemaphorePermit)> {
        let permit = match self.permits.clone().try_acquire_owned() {
            Ok(p) => {
                self.at_limit = false;
                p
            }
            Err(_) => {
                if !self.at_limit {
                    self.at_limit = true;
                    tracing::warn!(
                        server = self.what,
                        max_connections = self.max,
                        "the server holds its most connections; new ones wait until one closes (raise max_connections, or look for a client holding idle connections)"
                    );
                }
                tokio::select! {
                    p = self.permits.clone().acquire_owned() => p.ok()?,
                    () = &mut *stop => return None,
                }
            }
        };
        loop {
            tokio::select! {
                r = self.listener.accept() => match r {
                    Ok((stream, _)) => {
                        let _ = stream.set_nodelay(true);
                        return Some((stream, permit));
                    }
                    Err(e) => {
                        // Out of file descriptors, mostly: wait a little rather than spin.
                        tracing::warn!(server = self.what, error = %e, "accepting a connection failed; retrying");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                },
                () = &mut *stop => return None,
            }
        }
    }
}

/// Whether a new connection sends its first bytes within `within` (the protocol is told by
/// them, before any header timeout of the protocol runs).
pub(crate) async fn sends_within(stream: &tokio::net::TcpStream, within: Duration) -> bool {
    let mut probe = [0u8; 1];
    matches!(
        tokio::time::timeout(within, stream.peek(&mut probe)).await,
        Ok(Ok(1..))
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    async fn started(
        limits: ConnectionLimits,
    ) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let router = Router::new().route("/", axum::routing::get(|| async { "ok" }));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(serve(listener, router, limits, None, async {
            let _ = stopped.await;
        }));
        (addr, stop)
    }

    async fn get(addr: std::net::SocketAddr) -> String {
        let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
        s.write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .await
            .expect("write");
        let mut out = String::new();
        let _ = s.read_to_string(&mut out).await;
        out
    }

    #[tokio::test]
    async fn a_half_sent_request_is_closed_after_the_header_timeout() {
        let (addr, _stop) = started(ConnectionLimits {
            header_read_timeout: Duration::from_millis(300),
            ..ConnectionLimits::default()
        })
        .await;
        let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
        s.write_all(b"GET / HTTP/1.1\r\nhost: x\r\n")
            .await
            .expect("half");
        let mut buf = [0u8; 1024];
        let n = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
            .await
            .expect("closed by the server within the timeout");
        // Closed (maybe after a 408): nothing more comes.
        let text = String::from_utf8_lossy(&buf[..n.unwrap_or(0)]).into_owned();
        assert!(text.is_empty() || text.contains("408"), "{text}");
        // An idle connection that never sends is closed too.
        let mut idle = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let n = tokio::time::timeout(Duration::from_secs(5), idle.read(&mut buf))
            .await
            .expect("an idle connection is closed");
        assert!(matches!(n, Ok(0) | Err(_)) || String::from_utf8_lossy(&buf).contains("408"));
        // A whole request is answered.
        assert!(get(addr).await.contains("200 OK"));
    }

    #[tokio::test]
    async fn connections_beyond_the_limit_wait_for_a_free_one() {
        let (addr, _stop) = started(ConnectionLimits {
            header_read_timeout: Duration::from_secs(1),
            max_connections: 2,
            ..ConnectionLimits::default()
        })
        .await;
        let hold1 = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let hold2 = tokio::net::TcpStream::connect(addr).await.expect("connect");
        tokio::time::sleep(Duration::from_millis(100)).await;
        // A third is not served while two are held...
        let third = tokio::time::timeout(Duration::from_millis(400), get(addr)).await;
        assert!(third.is_err(), "served beyond the limit: {third:?}");
        // ...and is once one closes.
        drop((hold1, hold2));
        let answered = tokio::time::timeout(Duration::from_secs(5), get(addr))
            .await
            .expect("served once a connection closed");
        assert!(answered.contains("200 OK"), "{answered}");
    }
}
