//! S3-compatible object storage for the distributed deployment: every process that serves
//! documents reads and writes the same bucket. Path-style requests (`<endpoint>/<bucket>/<key>`)
//! signed with AWS Signature Version 4, the payload hash being the content's own SHA-256 (the
//! store knows it before it sends a byte), so the object store checks what it received.
//!
//! Only what the document store needs: put an object from a file or from bytes, get one as a
//! stream, ask whether one exists, and create the bucket.

use std::path::Path;
use std::pin::Pin;
use std::time::Duration;

use bytes::Bytes;
use futures_util::TryStreamExt;
use http_body_util::{BodyExt, Full, StreamBody, combinators::BoxBody};
use hyper::body::Frame;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use ring::hmac;
use sha2::{Digest, Sha256};
use tokio::io::AsyncRead;

/// Where the objects are and who may touch them.
#[derive(Clone, PartialEq, Eq)]
pub struct S3Config {
    /// `http(s)://host[:port]` of the S3-compatible service (MinIO, Ceph RGW, a cloud's).
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
    /// Prepended to every key (e.g. `banli/`), so one bucket can hold several deployments.
    pub prefix: String,
    pub access_key: String,
    pub secret_key: String,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

type Body = BoxBody<Bytes, std::io::Error>;

/// A client of one bucket.
#[derive(Clone)]
pub struct S3 {
    config: S3Config,
    client: Client<hyper_rustls::HttpsConnector<HttpConnector>, Body>,
}

impl std::fmt::Debug for S3 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3").field("config", &self.config).finish()
    }
}

/// The SHA-256 of no bytes.
const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// A stored object's bytes, as they arrive.
pub type ObjectReader = Pin<Box<dyn AsyncRead + Send>>;

fn io(what: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::other(what.to_string())
}

impl S3 {
    pub fn new(config: S3Config) -> std::io::Result<S3> {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        http.set_connect_timeout(Some(Duration::from_secs(10)));
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
            .map_err(io)?
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(https);
        Ok(S3 { config, client })
    }

    pub fn config(&self) -> &S3Config {
        &self.config
    }

    fn path(&self, key: &str) -> String {
        let key = format!("{}{key}", self.config.prefix);
        let encoded: Vec<String> = key.split('/').map(uri_encode).collect();
        format!("/{}/{}", uri_encode(&self.config.bucket), encoded.join("/"))
    }

    async fn send(
        &self,
        method: hyper::Method,
        path: &str,
        payload_sha256: &str,
        length: Option<u64>,
        body: Body,
    ) -> std::io::Result<hyper::Response<hyper::body::Incoming>> {
        let uri: hyper::Uri = format!("{}{path}", self.config.endpoint.trim_end_matches('/'))
            .parse()
            .map_err(io)?;
        let host = uri
            .authority()
            .map(|a| a.as_str().to_owned())
            .ok_or_else(|| io("the S3 endpoint has no host"))?;
        let now = time::OffsetDateTime::now_utc();
        let amz_date = amz_date(now);
        let headers = vec![
            ("host".to_owned(), host),
            ("x-amz-content-sha256".to_owned(), payload_sha256.to_owned()),
            ("x-amz-date".to_owned(), amz_date.clone()),
        ];
        let authorization = authorization(
            &self.config,
            method.as_str(),
            path,
            "",
            &headers,
            payload_sha256,
            &amz_date,
        );
        let mut req = hyper::Request::builder().method(method).uri(uri);
        for (k, v) in &headers {
            if k != "host" {
                req = req.header(k.as_str(), v.as_str());
            }
        }
        req = req.header("authorization", authorization);
        if let Some(n) = length {
            req = req.header("content-length", n);
        }
        let req = req.body(body).map_err(io)?;
        tokio::time::timeout(Duration::from_secs(300), self.client.request(req))
            .await
            .map_err(|_| io("the object store did not answer within 300 s"))?
            .map_err(io)
    }

    async fn refused(res: hyper::Response<hyper::body::Incoming>, what: &str) -> std::io::Error {
        let status = res.status();
        let body = res
            .into_body()
            .collect()
            .await
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        let text = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
        io(format!(
            "the object store answered {status} to {what}: {text}"
        ))
    }

    /// Creates the bucket (an existing one of this owner is fine).
    pub async fn create_bucket(&self) -> std::io::Result<()> {
        let path = format!("/{}", uri_encode(&self.config.bucket));
        let res = self
            .send(hyper::Method::PUT, &path, EMPTY_SHA256, Some(0), empty())
            .await?;
        if res.status().is_success() || res.status() == hyper::StatusCode::CONFLICT {
            return Ok(());
        }
        Err(Self::refused(res, "creating the bucket").await)
    }

    /// Checks that the bucket exists and the keys may use it.
    pub async fn check_bucket(&self) -> std::io::Result<()> {
        let path = format!("/{}", uri_encode(&self.config.bucket));
        let res = self
            .send(hyper::Method::HEAD, &path, EMPTY_SHA256, None, empty())
            .await?;
        match res.status() {
            s if s.is_success() => Ok(()),
            hyper::StatusCode::NOT_FOUND => Err(io(format!(
                "the bucket `{}` does not exist at {}; create it (or name another)",
                self.config.bucket, self.config.endpoint
            ))),
            hyper::StatusCode::FORBIDDEN => Err(io(format!(
                "the object store refuses these keys for the bucket `{}`; check access_key and secret_key",
                self.config.bucket
            ))),
            _ => Err(Self::refused(res, "a HEAD of the bucket").await),
        }
    }

    /// Whether the object exists.
    pub async fn exists(&self, key: &str) -> std::io::Result<bool> {
        let res = self
            .send(
                hyper::Method::HEAD,
                &self.path(key),
                EMPTY_SHA256,
                None,
                empty(),
            )
            .await?;
        match res.status() {
            s if s.is_success() => Ok(true),
            hyper::StatusCode::NOT_FOUND => Ok(false),
            _ => Err(Self::refused(res, "a HEAD").await),
        }
    }

    /// Stores `bytes` under `key`.
    pub async fn put_bytes(&self, key: &str, bytes: Vec<u8>) -> std::io::Result<()> {
        let sha: String = hex(&Sha256::digest(&bytes));
        let len = bytes.len() as u64;
        let body = Full::new(Bytes::from(bytes))
            .map_err(|never| match never {})
            .boxed();
        self.put(key, &sha, len, body).await
    }

    /// Stores the file at `path` (`size` bytes whose SHA-256 is `sha256`) under `key`, streamed.
    pub async fn put_file(
        &self,
        key: &str,
        path: &Path,
        size: u64,
        sha256: &str,
    ) -> std::io::Result<()> {
        let file = tokio::fs::File::open(path).await?;
        let stream =
            tokio_util::io::ReaderStream::with_capacity(file, 256 * 1024).map_ok(Frame::data);
        self.put(key, sha256, size, BodyExt::boxed(StreamBody::new(stream)))
            .await
    }

    /// A PUT of `len` bytes whose SHA-256 is `sha256`.
    async fn put(&self, key: &str, sha256: &str, len: u64, body: Body) -> std::io::Result<()> {
        let res = self
            .send(hyper::Method::PUT, &self.path(key), sha256, Some(len), body)
            .await?;
        if res.status().is_success() {
            return Ok(());
        }
        Err(Self::refused(res, "a PUT").await)
    }

    /// The object's bytes as they arrive; `None` when there is none.
    pub async fn get(&self, key: &str) -> std::io::Result<Option<ObjectReader>> {
        let res = self
            .send(
                hyper::Method::GET,
                &self.path(key),
                EMPTY_SHA256,
                None,
                empty(),
            )
            .await?;
        match res.status() {
            s if s.is_success() => {
                let stream = res
                    .into_body()
                    .into_data_stream()
                    .map_err(std::io::Error::other);
                Ok(Some(Box::pin(tokio_util::io::StreamReader::new(stream))))
            }
            hyper::StatusCode::NOT_FOUND => Ok(None),
            _ => Err(Self::refused(res, "a GET").await),
        }
    }
}

fn empty() -> Body {
    Full::new(Bytes::new())
        .map_err(|never| match never {})
        .boxed()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// RFC 3986 unreserved characters kept, everything else percent-encoded (SigV4's rule).
fn uri_encode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

fn amz_date(t: time::OffsetDateTime) -> String {
    format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

fn hmac_sha256(key: &[u8], data: &str) -> Vec<u8> {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data.as_bytes())
        .as_ref()
        .to_vec()
}

/// The `Authorization` header of a request (SigV4, service `s3`). `headers` are the signed
/// headers, names in lowercase.
fn authorization(
    c: &S3Config,
    method: &str,
    path: &str,
    query: &str,
    headers: &[(String, String)],
    payload_sha256: &str,
    amz_date: &str,
) -> String {
    let mut sorted: Vec<&(String, String)> = headers.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    let canonical_headers: String = sorted
        .iter()
        .map(|(k, v)| format!("{k}:{}\n", v.trim()))
        .collect();
    let signed: Vec<&str> = sorted.iter().map(|(k, _)| k.as_str()).collect();
    let signed = signed.join(";");
    let canonical =
        format!("{method}\n{path}\n{query}\n{canonical_headers}\n{signed}\n{payload_sha256}");
    let day = &amz_date[..8];
    let scope = format!("{day}/{}/s3/aws4_request", c.region);
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex(&Sha256::digest(canonical.as_bytes()))
    );
    let k_date = hmac_sha256(format!("AWS4{}", c.secret_key).as_bytes(), day);
    let k_region = hmac_sha256(&k_date, &c.region);
    let k_service = hmac_sha256(&k_region, "s3");
    let k_signing = hmac_sha256(&k_service, "aws4_request");
    let signature = hex(&hmac_sha256(&k_signing, &to_sign));
    format!(
        "AWS4-HMAC-SHA256 Credential={}/{scope},SignedHeaders={signed},Signature={signature}",
        c.access_key
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The "GET Object" example of AWS's Signature Version 4 documentation for S3.
    #[test]
    fn signs_the_published_example() {
        let c = S3Config {
            endpoint: "https://examplebucket.s3.amazonaws.com".into(),
            bucket: "examplebucket".into(),
            region: "us-east-1".into(),
            prefix: String::new(),
            access_key: "AKIAIOSFODNN7EXAMPLE".into(),
            secret_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
        };
        let headers = vec![
            (
                "host".to_owned(),
                "examplebucket.s3.amazonaws.com".to_owned(),
            ),
            ("range".to_owned(), "bytes=0-9".to_owned()),
            ("x-amz-content-sha256".to_owned(), EMPTY_SHA256.to_owned()),
            ("x-amz-date".to_owned(), "20130524T000000Z".to_owned()),
        ];
        let a = authorization(
            &c,
            "GET",
            "/test.txt",
            "",
            &headers,
            EMPTY_SHA256,
            "20130524T000000Z",
        );
        assert_eq!(
            a,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
        assert_eq!(
            amz_date(time::macros::datetime!(2013-05-24 0:00 UTC)),
            "20130524T000000Z"
        );
        assert_eq!(uri_encode("a b/ü"), "a%20b%2F%C3%BC");
    }
}
