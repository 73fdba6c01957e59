//! Request metrics (请求指标) for REST and gRPC, through the `metrics` facade: a count per route,
//! method and status, and a duration histogram per route and method. Whatever recorder the
//! process installed receives them (`banli serve` renders them on `GET /metrics`); without one
//! they cost next to nothing.
//!
//! Labels are bounded: the route is the matched template (`/v1/suggestions/{id}`) or the gRPC
//! method's path; a request that matched no route is `unmatched`, never its raw path.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use axum::extract::MatchedPath;
use axum::http::{Request, Response};

/// Requests handled, by transport, route, method and status (HTTP status or gRPC code).
pub const REQUESTS: &str = "banli_requests_total";
/// Seconds from the request's arrival to its response's head, by transport, route and method.
pub const DURATION: &str = "banli_request_duration_seconds";
/// The histogram's upper bounds, in seconds.
pub const DURATION_BUCKETS: [f64; 14] = [
    0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0,
];

/// Counts and times every request of the service it wraps.
#[derive(Debug, Clone, Copy)]
pub struct RequestMetricsLayer {
    grpc: bool,
}

impl RequestMetricsLayer {
    /// For an axum router (apply with `Router::layer`, so that the matched route is known).
    pub fn http() -> RequestMetricsLayer {
        RequestMetricsLayer { grpc: false }
    }

    /// For a tonic server.
    pub fn grpc() -> RequestMetricsLayer {
        RequestMetricsLayer { grpc: true }
    }
}

impl<S> tower::Layer<S> for RequestMetricsLayer {
    type Service = RequestMetrics<S>;

    fn layer(&self, inner: S) -> RequestMetrics<S> {
        RequestMetrics {
            inner,
            grpc: self.grpc,
        }
    }
}

/// The service [`RequestMetricsLayer`] makes.
#[derive(Debug, Clone)]
pub struct RequestMetrics<S> {
    inner: S,
    grpc: bool,
}

impl<S, B, R> tower::Service<Request<B>> for RequestMetrics<S>
where
    S: tower::Service<Request<B>, Response = Response<R>>,
    S::Future: Send + 'static,
{
    type Response = Response<R>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Response<R>, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<B>) -> Self::Future {
        let start = Instant::now();
        let grpc = self.grpc;
        let method = if grpc {
            "POST".to_owned()
        } else {
            req.method().as_str().to_owned()
        };
        let route = if grpc {
            Some(req.uri().path().to_owned())
        } else {
            req.extensions()
                .get::<MatchedPath>()
                .map(|m| m.as_str().to_owned())
        };
        let fut = self.inner.call(req);
        Box::pin(async move {
            let res = fut.await;
            let status = match &res {
                Ok(r) if grpc => r
                    .headers()
                    .get("grpc-status")
                    .and_then(|v| v.to_str().ok())
                    .unwrap_or("0")
                    .to_owned(),
                Ok(r) => r.status().as_str().to_owned(),
                Err(_) => "error".to_owned(),
            };
            // gRPC code 12: no such method; its path is the caller's, not a route.
            let route = match route {
                Some(r) if !(grpc && status == "12") => r,
                _ => "unmatched".to_owned(),
            };
            let transport = if grpc { "grpc" } else { "http" };
            metrics::counter!(REQUESTS, "transport" => transport, "route" => route.clone(), "method" => method.clone(), "status" => status).increment(1);
            metrics::histogram!(DURATION, "transport" => transport, "route" => route, "method" => method)
                .record(start.elapsed().as_secs_f64());
            res
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tower::{Layer, Service, ServiceExt};

    fn grpc_answering(code: Option<&'static str>) -> impl Fn(&str) {
        move |path: &str| {
            let inner = tower::service_fn(move |_req: Request<()>| async move {
                let mut res = Response::new(());
                if let Some(c) = code {
                    res.headers_mut()
                        .insert("grpc-status", c.parse().expect("value"));
                }
                Ok::<_, std::convert::Infallible>(res)
            });
            let mut svc = RequestMetricsLayer::grpc().layer(inner);
            let req = Request::builder().uri(path).body(()).expect("request");
            tokio::runtime::Builder::new_current_thread()
                .build()
                .expect("runtime")
                .block_on(async { svc.ready().await.expect("ready").call(req).await })
                .expect("answered");
        }
    }

    #[test]
    fn grpc_requests_are_counted_by_method_and_code_and_unknown_paths_are_unmatched() {
        let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        metrics::with_local_recorder(&recorder, || {
            grpc_answering(None)("/banli.suggestions.v1.Suggestions/Get");
            grpc_answering(Some("5"))("/banli.suggestions.v1.Suggestions/Get");
            grpc_answering(Some("12"))("/made.up.Service/Anything");
        });
        let text = handle.render();
        for line in [
            r#"banli_requests_total{transport="grpc",route="/banli.suggestions.v1.Suggestions/Get",method="POST",status="0"} 1"#,
            r#"banli_requests_total{transport="grpc",route="/banli.suggestions.v1.Suggestions/Get",method="POST",status="5"} 1"#,
            r#"banli_requests_total{transport="grpc",route="unmatched",method="POST",status="12"} 1"#,
        ] {
            assert!(text.contains(line), "{line} in {text}");
        }
        assert!(!text.contains("made.up"), "{text}");
    }
}
