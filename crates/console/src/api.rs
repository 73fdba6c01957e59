//! The platform's own REST API, called in-process as the signed-in person: the request carries
//! their principal as a [`Delegated`] extension (no token on the wire), passes through the same
//! layers, read-your-writes gates and handlers as any client's, and its answer — or its problem
//! document — is what the page shows.

use axum::body::Body;
use axum::http::{Method, Request};
use banli_api::http::Delegated;
use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

use crate::Console;
use crate::session::Viewer;

/// What the API answered.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub body: Value,
    /// The read-your-writes token of a change (`Banli-Consistency`), for the next page.
    pub consistency: Option<String>,
}

/// A refusal, as its problem document says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub status: u16,
    pub code: String,
    pub detail: String,
}

impl Answer {
    pub fn ok(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The answer's body, or the refusal it is.
    pub fn into_result(self) -> Result<Value, Refusal> {
        if self.ok() {
            return Ok(self.body);
        }
        Err(Refusal {
            status: self.status,
            code: self.body["code"]
                .as_str()
                .unwrap_or("unavailable")
                .to_owned(),
            detail: self.body["detail"]
                .as_str()
                .unwrap_or("the service did not answer")
                .to_owned(),
        })
    }
}

/// How a change is sent.
#[derive(Debug, Clone, Default)]
pub struct Send {
    /// `Idempotency-Key`: the form's own, so that a form sent twice changes once.
    pub idempotency_key: Option<String>,
    /// `If-Match`: the version of the item the page showed.
    pub if_match: Option<u64>,
}

impl Console {
    /// Calls the API as `viewer`; `consistency` is a token of a change made just before.
    pub async fn call(
        &self,
        viewer: &Viewer,
        method: Method,
        path: &str,
        body: Option<&Value>,
        send: &Send,
        consistency: Option<&str>,
    ) -> Answer {
        let mut req = Request::builder().method(method).uri(path);
        if body.is_some() {
            req = req.header("content-type", "application/json");
        }
        if let Some(k) = &send.idempotency_key {
            req = req.header("idempotency-key", k);
        }
        if let Some(v) = send.if_match {
            req = req.header("if-match", format!("\"v{v}\""));
        }
        if let Some(c) = consistency {
            req = req.header(banli_api::consistency::HEADER, c);
        }
        let req = req
            .extension(Delegated(viewer.principal().clone()))
            .body(body.map_or_else(Body::empty, |b| Body::from(b.to_string())));
        let unavailable = |detail: &str| Answer {
            status: 503,
            body: serde_json::json!({"code": "unavailable", "detail": detail}),
            consistency: None,
        };
        let Ok(req) = req else {
            return unavailable("the request could not be formed");
        };
        let Ok(res) = self.api().oneshot(req).await;
        let status = res.status().as_u16();
        let consistency = res
            .headers()
            .get(banli_api::consistency::HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let Ok(bytes) = res.into_body().collect().await.map(|b| b.to_bytes()) else {
            return unavailable("the answer could not be read");
        };
        Answer {
            status,
            // JSON, or the text of a text answer (the audit log's signed checkpoint).
            body: serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned())),
            consistency,
        }
    }

    /// GETs `path` as `viewer`.
    pub async fn get(
        &self,
        viewer: &Viewer,
        path: &str,
        consistency: Option<&str>,
    ) -> Result<Value, Refusal> {
        self.call(
            viewer,
            Method::GET,
            path,
            None,
            &Send::default(),
            consistency,
        )
        .await
        .into_result()
    }
}
