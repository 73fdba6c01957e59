//! A small keep-alive HTTP/1.1 JSON client.

use anyhow::{Context, Result};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

#[derive(Debug, Clone)]
pub struct Http {
    base: String,
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Http {
    pub fn new(base: String) -> Http {
        let client = Client::builder(TokioExecutor::new())
            .pool_max_idle_per_host(64)
            .build_http();
        Http { base, client }
    }

    async fn send(
        &self,
        method: hyper::Method,
        path: &str,
        key: &str,
        body: Option<Value>,
    ) -> Result<(u16, Value)> {
        let mut req = hyper::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base))
            .header("authorization", format!("Bearer {key}"));
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
        let body = res.into_body().collect().await?.to_bytes();
        let v = if body.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&body).unwrap_or(Value::Null)
        };
        Ok((status, v))
    }

    pub async fn post(&self, path: &str, key: &str, body: Value) -> Result<(u16, Value)> {
        self.send(hyper::Method::POST, path, key, Some(body)).await
    }

    pub async fn get(&self, path: &str, key: &str) -> Result<(u16, Value)> {
        self.send(hyper::Method::GET, path, key, None).await
    }
}
