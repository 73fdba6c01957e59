//! The `Banli-Consistency` token (gRPC metadata `banli-consistency`): read-your-writes across
//! the services, as a contract.
//!
//! Every successful write answers with a token naming what it committed (each aggregate it
//! changed, at its new version) together with what the request's own token named. A request
//! that carries a token is decided only once the receiving service has applied all of it —
//! at most `consistency_wait_ms`, then a 503 `consistency_timeout` with `Retry-After`. Send the
//! latest token you received (it includes the earlier ones), or several joined with commas.
//!
//! A token is `c1.<positions>.<mac>` (base64url): the positions and an HMAC-SHA256 under the
//! deployment's consistency key, so a made-up token, one edited by hand or one from another
//! deployment is refused at once (400 `bad_consistency_token`) instead of being waited for.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, Request, Response};
use axum::response::IntoResponse;
use banli_eventlog::consistency::{Gate, Position, merge, recording};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;

use crate::error::{AppError, ErrorCode};

/// The header (and gRPC metadata key).
pub const HEADER: &str = "banli-consistency";
/// The most positions one token names; a merged token keeps the newest.
pub const MAX_POSITIONS: usize = 64;
/// The longest header value read.
const MAX_HEADER: usize = 16 * 1024;
/// The key file's name in the data directory.
pub const KEY_FILE: &str = "consistency.key";
/// The default bound on a wait.
pub const DEFAULT_WAIT: Duration = Duration::from_millis(5_000);

const PREFIX: &str = "c1.";
const MAC_LEN: usize = 16;

/// The key that signs tokens: one per deployment, the same file for every process.
#[derive(Clone)]
pub struct TokenKey(ring::hmac::Key);

impl std::fmt::Debug for TokenKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TokenKey(…)")
    }
}

impl TokenKey {
    pub fn from_bytes(bytes: &[u8]) -> TokenKey {
        TokenKey(ring::hmac::Key::new(ring::hmac::HMAC_SHA256, bytes))
    }

    /// A random key for this process only (a server whose tokens no other process reads).
    pub fn ephemeral() -> Result<TokenKey, String> {
        let mut bytes = [0u8; 32];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
            .map_err(|_| "the system's random source failed".to_owned())?;
        Ok(TokenKey::from_bytes(&bytes))
    }

    /// Reads the key file (64 hexadecimal digits), or creates it (mode 0600) when missing.
    pub fn load_or_create(path: &std::path::Path) -> Result<TokenKey, String> {
        use std::io::Write;
        let shown = path.display();
        let parse = |text: &str| -> Result<TokenKey, String> {
            let text = text.trim();
            let bytes: Option<Vec<u8>> = (text.len() == 64)
                .then(|| {
                    (0..32)
                        .map(|i| u8::from_str_radix(&text[2 * i..2 * i + 2], 16).ok())
                        .collect()
                })
                .flatten();
            bytes.map(|b| TokenKey::from_bytes(&b)).ok_or_else(|| {
                format!("{shown} is not a consistency key (64 hexadecimal digits); remove it to have a new one made")
            })
        };
        match std::fs::read_to_string(path) {
            Ok(text) => parse(&text),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let mut bytes = [0u8; 32];
                ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut bytes)
                    .map_err(|_| "the system's random source failed".to_owned())?;
                let text: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
                if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                    banli_db::create_private_dir(dir)
                        .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
                }
                let mut options = std::fs::OpenOptions::new();
                options.write(true).create_new(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    options.mode(0o600);
                }
                match options.open(path) {
                    Ok(mut f) => {
                        f.write_all(format!("{text}\n").as_bytes())
                            .and_then(|_| f.sync_all())
                            .map_err(|e| {
                                format!("cannot write the consistency key {shown}: {e}")
                            })?;
                        parse(&text)
                    }
                    // Another process of this deployment made it first.
                    Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                        std::thread::sleep(Duration::from_millis(50));
                        parse(
                            &std::fs::read_to_string(path).map_err(|e| {
                                format!("cannot read the consistency key {shown}: {e}")
                            })?,
                        )
                    }
                    Err(e) => Err(format!("cannot write the consistency key {shown}: {e}")),
                }
            }
            Err(e) => Err(format!("cannot read the consistency key {shown}: {e}")),
        }
    }

    fn mac(&self, body: &[u8]) -> ring::hmac::Tag {
        let mut ctx = ring::hmac::Context::with_key(&self.0);
        ctx.update(b"banli-consistency-v1\0");
        ctx.update(body);
        ctx.sign()
    }

    /// The token naming `positions` (the newest [`MAX_POSITIONS`]).
    pub fn encode(&self, positions: &[Position]) -> String {
        let skip = positions.len().saturating_sub(MAX_POSITIONS);
        let positions = &positions[skip..];
        let mut body = vec![positions.len() as u8];
        for p in positions {
            put_text(&mut body, &p.aggregate_type);
            match uuid::Uuid::try_parse(&p.aggregate_id) {
                Ok(id) if id.to_string() == p.aggregate_id => {
                    body.push(0);
                    body.extend_from_slice(id.as_bytes());
                }
                _ => {
                    body.push(1);
                    put_text(&mut body, &p.aggregate_id);
                }
            }
            body.extend_from_slice(&p.version.to_be_bytes());
        }
        let tag = self.mac(&body);
        format!(
            "{PREFIX}{}.{}",
            B64.encode(&body),
            B64.encode(&tag.as_ref()[..MAC_LEN])
        )
    }

    /// The positions a header value names: one token or several joined with commas.
    pub fn decode(&self, header: &str) -> Result<Vec<Position>, AppError> {
        let bad = |why: &str| {
            AppError::new(
                ErrorCode::BadConsistencyToken,
                format!(
                    "the {HEADER} header {why}; send the {HEADER} value of an earlier response of this deployment unchanged, or leave the header out"
                ),
            )
        };
        if header.len() > MAX_HEADER {
            return Err(bad("is too long"));
        }
        let mut out = Vec::new();
        let mut tokens = 0;
        for token in header.split(',').map(str::trim).filter(|t| !t.is_empty()) {
            tokens += 1;
            let rest = token
                .strip_prefix(PREFIX)
                .ok_or_else(|| bad("is not a token"))?;
            let (body, mac) = rest.split_once('.').ok_or_else(|| bad("is not a token"))?;
            let body = B64.decode(body).map_err(|_| bad("is not a token"))?;
            let mac = B64.decode(mac).map_err(|_| bad("is not a token"))?;
            let expected = self.mac(&body);
            if mac.len() != MAC_LEN || !constant_time_eq(&mac, &expected.as_ref()[..MAC_LEN]) {
                return Err(bad(
                    "names positions this deployment never produced (a token from another deployment, or edited)",
                ));
            }
            merge(
                &mut out,
                parse_body(&body).ok_or_else(|| bad("is not a token"))?,
            );
        }
        if tokens == 0 {
            return Err(bad("is empty"));
        }
        if out.len() > MAX_POSITIONS {
            return Err(bad("names too many positions; send only the latest token"));
        }
        Ok(out)
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn put_text(out: &mut Vec<u8>, s: &str) {
    let b = &s.as_bytes()[..s.len().min(255)];
    out.push(b.len() as u8);
    out.extend_from_slice(b);
}

fn parse_body(b: &[u8]) -> Option<Vec<Position>> {
    let mut r = b;
    let mut take = |n: usize| -> Option<&[u8]> {
        let (head, tail) = (r.get(..n)?, r.get(n..)?);
        r = tail;
        Some(head)
    };
    let count = take(1)?[0] as usize;
    let mut out = Vec::with_capacity(count);
    for _ in 0..count {
        let n = take(1)?[0] as usize;
        let aggregate_type = std::str::from_utf8(take(n)?).ok()?.to_owned();
        let aggregate_id = match take(1)?[0] {
            0 => uuid::Uuid::from_slice(take(16)?).ok()?.to_string(),
            1 => {
                let n = take(1)?[0] as usize;
                std::str::from_utf8(take(n)?).ok()?.to_owned()
            }
            _ => return None,
        };
        let version = u64::from_be_bytes(take(8)?.try_into().ok()?);
        out.push(Position {
            aggregate_type,
            aggregate_id,
            version,
        });
    }
    take(1).is_none().then_some(out)
}

/// Which gate a request passes: the service that owns its path.
#[derive(Debug, Clone, Default)]
pub struct Gates {
    by_prefix: Vec<(&'static str, Gate)>,
}

impl Gates {
    /// Requests whose path starts with any of `prefixes` (REST paths and gRPC service paths)
    /// wait on `gate`.
    pub fn route(mut self, prefixes: &[&'static str], gate: &Gate) -> Gates {
        for p in prefixes {
            self.by_prefix.push((p, gate.clone()));
        }
        // The longest prefix decides.
        self.by_prefix
            .sort_by_key(|(p, _)| std::cmp::Reverse(p.len()));
        self
    }

    fn gate_for(&self, path: &str) -> Option<&Gate> {
        self.by_prefix
            .iter()
            .find(|(p, _)| path.starts_with(p))
            .map(|(_, g)| g)
    }
}

/// The tower layer, for the REST router and the gRPC server alike.
#[derive(Debug, Clone)]
pub struct ConsistencyLayer {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    key: TokenKey,
    wait: Duration,
    gates: Gates,
}

impl ConsistencyLayer {
    pub fn new(key: TokenKey, wait: Duration, gates: Gates) -> ConsistencyLayer {
        ConsistencyLayer {
            shared: Arc::new(Shared { key, wait, gates }),
        }
    }

    pub fn key(&self) -> &TokenKey {
        &self.shared.key
    }
}

impl<S> tower::Layer<S> for ConsistencyLayer {
    type Service = ConsistencyService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ConsistencyService {
            inner,
            shared: self.shared.clone(),
        }
    }
}

/// See [`ConsistencyLayer`].
#[derive(Debug, Clone)]
pub struct ConsistencyService<S> {
    inner: S,
    shared: Arc<Shared>,
}

/// A response body the layer can answer a refusal with, in its surface's form.
pub trait RefusalBody: Sized {
    fn refusal(e: AppError) -> Response<Self>;
}

impl RefusalBody for axum::body::Body {
    fn refusal(e: AppError) -> Response<Self> {
        let retry = e.code == ErrorCode::ConsistencyTimeout;
        let mut res = crate::http::Problem(e).into_response();
        if retry {
            res.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                HeaderValue::from_static("1"),
            );
        }
        res
    }
}

impl RefusalBody for tonic::body::Body {
    fn refusal(e: AppError) -> Response<Self> {
        let retry = e.code == ErrorCode::ConsistencyTimeout;
        let mut res = tonic::Status::from(e).into_http::<tonic::body::Body>();
        if retry {
            res.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                HeaderValue::from_static("1"),
            );
        }
        res
    }
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, ReqBody, ResBody> tower::Service<Request<ReqBody>> for ConsistencyService<S>
where
    S: tower::Service<Request<ReqBody>, Response = Response<ResBody>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Send + 'static,
    ReqBody: Send + 'static,
    ResBody: RefusalBody + Send + 'static,
{
    type Response = Response<ResBody>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let shared = self.shared.clone();
        Box::pin(async move {
            let asked = match req.headers().get(HEADER) {
                None => None,
                Some(v) => {
                    let text = v.to_str().unwrap_or("\u{0}");
                    match shared.key.decode(text) {
                        Ok(p) => Some(p),
                        Err(e) => return Ok(ResBody::refusal(e)),
                    }
                }
            };
            if let Some(positions) = &asked
                && let Some(gate) = shared.gates.gate_for(req.uri().path())
            {
                let deadline = tokio::time::Instant::now() + shared.wait;
                match gate.wait(positions, deadline).await {
                    Ok(true) => {}
                    Ok(false) => {
                        tracing::info!(path = %req.uri().path(), wait_ms = shared.wait.as_millis() as u64, "a request's consistency token was not reached in time");
                        return Ok(ResBody::refusal(AppError::new(
                            ErrorCode::ConsistencyTimeout,
                            format!(
                                "this service has not yet applied everything the {HEADER} token names (waited {} ms); retry after a second with the same token",
                                shared.wait.as_millis()
                            ),
                        )));
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "checking a consistency token failed");
                        return Ok(ResBody::refusal(AppError::new(
                            ErrorCode::ConsistencyTimeout,
                            format!(
                                "this service cannot check the {HEADER} token now; retry after a second with the same token"
                            ),
                        )));
                    }
                }
            }
            // A REST write always answers with a token; gRPC (every call a POST) only when the
            // call wrote something or carried a token.
            let grpc = req
                .headers()
                .get(axum::http::header::CONTENT_TYPE)
                .is_some_and(|v| v.as_bytes().starts_with(b"application/grpc"));
            let write = !grpc
                && !matches!(
                    *req.method(),
                    axum::http::Method::GET
                        | axum::http::Method::HEAD
                        | axum::http::Method::OPTIONS
                );
            let (res, written) = recording(inner.call(req)).await;
            let mut res = res?;
            let ok = res.status().is_success();
            if ok && (write || asked.is_some() || !written.is_empty()) {
                let mut all = asked.unwrap_or_default();
                merge(&mut all, written);
                if let Ok(v) = HeaderValue::from_str(&shared.key.encode(&all)) {
                    res.headers_mut().insert(HeaderName::from_static(HEADER), v);
                }
            }
            Ok(res)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(b: u8) -> TokenKey {
        TokenKey::from_bytes(&[b; 32])
    }

    #[test]
    fn tokens_round_trip_and_merge() {
        let k = key(1);
        let a = vec![
            Position::new("suggestion", "0192f0c4-7d2e-7c1a-9b3e-0000000000aa", 7),
            Position::new("webhook", "not-a-uuid", 2),
        ];
        let t = k.encode(&a);
        assert!(t.starts_with("c1."));
        assert_eq!(k.decode(&t).expect("own token"), a);
        let b = vec![Position::new(
            "suggestion",
            "0192f0c4-7d2e-7c1a-9b3e-0000000000aa",
            9,
        )];
        let joined = format!("{t}, {}", k.encode(&b));
        let merged = k.decode(&joined).expect("joined tokens");
        assert_eq!(merged[0].version, 9);
        assert_eq!(merged.len(), 2);
    }

    #[test]
    fn foreign_edited_and_malformed_tokens_are_refused() {
        let t = key(1).encode(&[Position::new("suggestion", "x", 1)]);
        for bad in [
            key(2).encode(&[Position::new("suggestion", "x", 1)]),
            t.replacen("c1.", "c2.", 1),
            format!("{t}A"),
            "c1.AAAA.AAAA".to_owned(),
            "garbage".to_owned(),
            ",".to_owned(),
            "x".repeat(MAX_HEADER + 1),
        ] {
            let e = key(1).decode(&bad).expect_err(&bad);
            assert_eq!(e.code, ErrorCode::BadConsistencyToken, "{bad}");
        }
        // A body edited to a higher version no longer matches its MAC.
        let (_, rest) = t.split_at(3);
        let (body, mac) = rest.split_once('.').expect("two parts");
        let mut raw = B64.decode(body).expect("base64");
        let last = raw.len() - 1;
        raw[last] ^= 0x40;
        let edited = format!("c1.{}.{mac}", B64.encode(&raw));
        assert!(key(1).decode(&edited).is_err());
    }

    #[test]
    fn a_token_keeps_the_newest_positions() {
        let many: Vec<Position> = (0..100)
            .map(|i| Position::new("suggestion", &format!("s{i}"), 1))
            .collect();
        let back = key(3).decode(&key(3).encode(&many)).expect("token");
        assert_eq!(back.len(), MAX_POSITIONS);
        assert_eq!(back.last().map(|p| p.aggregate_id.as_str()), Some("s99"));
    }
}
