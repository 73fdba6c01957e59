//! A small keep-alive HTTP/1.1 JSON client.

use anyhow::{Context, Result};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde::Deserialize;
use serde_json::Value;

/// The few fields the load tool reads from a response; the rest is skipped, as a real client
/// would, so that the tool's own parsing takes little of the machine the server runs on.
#[derive(Debug, Default, Deserialize)]
pub struct Brief {
    #[serde(default)]
    pub id: String,
    #[serde(default)]
    pub state: String,
    #[serde(default)]
    pub token: String,
    #[serde(default)]
    pub assignments: Vec<BriefAssignment>,
    #[serde(default)]
    pub items: Vec<serde::de::IgnoredAny>,
    #[serde(default)]
    pub next_cursor: String,
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub detail: String,
}

#[derive(Debug, Default, Deserialize)]
pub struct BriefAssignment {
    pub id: String,
    pub agency_id: String,
}

#[derive(Debug, Clone)]
pub struct Http {
    base: String,
    /// Paths that go elsewhere than `base` (the three-process mode), by prefix.
    routes: std::sync::Arc<Vec<(&'static str, String)>>,
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
}

impl Http {
    pub fn new(base: String) -> Http {
        let plain = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(rustls::RootCertStore::empty())
        .with_no_client_auth();
        Http::with_tls(base, plain)
    }

    /// A client for `https://` bases with `tls` (plain `http://` bases work too).
    pub fn with_tls(base: String, tls: rustls::ClientConfig) -> Http {
        let mut http = HttpConnector::new();
        http.enforce_http(false);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(64)
            .build(connector);
        Http {
            base,
            routes: Default::default(),
            client,
        }
    }

    /// Sends the paths starting with each prefix to its server instead.
    pub fn routed(mut self, routes: Vec<(&'static str, String)>) -> Http {
        self.routes = std::sync::Arc::new(routes);
        self
    }

    /// Every server this client talks to.
    pub fn bases(&self) -> Vec<String> {
        let mut all = vec![self.base.clone()];
        for (_, b) in self.routes.iter() {
            if !all.contains(b) {
                all.push(b.clone());
            }
        }
        all
    }

    fn url(&self, path: &str) -> String {
        let base = self
            .routes
            .iter()
            .find(|(p, _)| path.starts_with(p))
            .map_or(&self.base, |(_, b)| b);
        format!("{base}{path}")
    }

    async fn send(
        &self,
        method: hyper::Method,
        path: &str,
        key: &str,
        body: Option<Value>,
        token: Option<&str>,
    ) -> Result<(u16, Brief, Option<String>)> {
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(self.url(path))
            .header("authorization", format!("Bearer {key}"));
        if let Some(t) = token {
            req = req.header("banli-consistency", t);
        }
        let bytes = match body {
            Some(b) => {
                req = req.header("content-type", "application/json");
                Bytes::from(b.to_string())
            }
            None => Bytes::new(),
        };
        let res = self
            .client
            .request(req.body(Full::new(bytes))?)
            .await
            .with_context(|| format!("request to {path}"))?;
        let status = res.status().as_u16();
        let token = res
            .headers()
            .get("banli-consistency")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = res.into_body().collect().await?.to_bytes();
        let v = if body.is_empty() {
            Brief::default()
        } else {
            serde_json::from_slice(&body).unwrap_or_default()
        };
        Ok((status, v, token))
    }

    pub async fn post(&self, path: &str, key: &str, body: Value) -> Result<(u16, Brief)> {
        let (status, v, _) = self
            .send(hyper::Method::POST, path, key, Some(body), None)
            .await?;
        Ok((status, v))
    }

    /// A POST carrying the consistency token of an earlier response; answers with the
    /// response's token too.
    pub async fn post_after(
        &self,
        path: &str,
        key: &str,
        body: Value,
        token: Option<&str>,
    ) -> Result<(u16, Brief, Option<String>)> {
        self.send(hyper::Method::POST, path, key, Some(body), token)
            .await
    }

    /// A GET to `base` whose body is text (e.g. `/metrics`); a non-2xx status is an error.
    pub async fn get_text(&self, base: &str, path: &str, key: &str) -> Result<String> {
        let req = hyper::Request::builder()
            .method(hyper::Method::GET)
            .uri(format!("{base}{path}"))
            .header("authorization", format!("Bearer {key}"))
            .body(Full::new(Bytes::new()))?;
        let res = self.client.request(req).await?;
        let status = res.status();
        let body = res.into_body().collect().await?.to_bytes();
        anyhow::ensure!(status.is_success(), "GET {path}: {status}");
        Ok(String::from_utf8_lossy(&body).into_owned())
    }

    /// Any request with its own headers and body: the status, the response headers and the
    /// body as bytes (the web console's pages and forms).
    pub async fn raw(
        &self,
        method: hyper::Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<(&str, String)>,
    ) -> Result<(u16, hyper::HeaderMap, Bytes)> {
        let mut req = hyper::Request::builder().method(method).uri(self.url(path));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let bytes = match body {
            Some((content_type, b)) => {
                req = req.header("content-type", content_type);
                Bytes::from(b)
            }
            None => Bytes::new(),
        };
        let res = self
            .client
            .request(req.body(Full::new(bytes))?)
            .await
            .with_context(|| format!("request to {path}"))?;
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let body = res.into_body().collect().await?.to_bytes();
        Ok((status, headers, body))
    }

    pub async fn get(&self, path: &str, key: &str) -> Result<(u16, Brief)> {
        let (status, v, _) = self.send(hyper::Method::GET, path, key, None, None).await?;
        Ok((status, v))
    }
}
