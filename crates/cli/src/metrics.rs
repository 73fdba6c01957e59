//! `GET /metrics`: Prometheus text from the `metrics` facade's Prometheus exporter — the
//! request metrics of REST and gRPC (`banli_requests_total`, `banli_request_duration_seconds`),
//! every consumer's figures as the runner records them (`banli_consumer_*`), and, read at each
//! scrape, each service's outbox (rows not yet published, age of the oldest) and parked events.
//! Needs an assigning_office or auditor key, like every other endpoint.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use banli_api::http::Problem;
use banli_api::{AppError, ErrorCode, Principal};
use banli_db::Db;
use banli_domain::Role;
use banli_eventlog::ConsumerStats;
use banli_eventlog::inbox::Inbox;
use banli_eventlog::outbox::Outbox;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

/// Resolves a bearer token (the suggestions service's keys).
pub type Auth = Arc<
    dyn Fn(String) -> std::pin::Pin<Box<dyn Future<Output = Result<Principal, AppError>> + Send>>
        + Send
        + Sync,
>;

#[derive(Clone)]
struct Source {
    service: &'static str,
    db: Db,
    /// None for a service that publishes nothing.
    outbox: Option<Outbox>,
    /// Every inbox of the service's consumers (its directory replica's too).
    inboxes: Vec<Inbox>,
}

/// The process's recorder, installed once (the `metrics` facade has one per process).
fn recorder() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let buckets = |b: PrometheusBuilder, name: &str, values: &[f64]| {
            b.set_buckets_for_metric(Matcher::Full(name.to_owned()), values)
                .expect("the bucket lists are not empty")
        };
        let b = buckets(
            PrometheusBuilder::new(),
            banli_api::metrics::DURATION,
            &banli_api::metrics::DURATION_BUCKETS,
        );
        let b = buckets(
            b,
            "banli_consumer_lag_milliseconds",
            &banli_eventlog::runner::LAG_BUCKETS_MS,
        );
        let recorder = b.build_recorder();
        let handle = recorder.handle();
        if metrics::set_global_recorder(recorder).is_err() {
            tracing::warn!(
                "a metrics recorder was installed before banli's; /metrics may be empty"
            );
        }
        describe();
        handle
    })
}

fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        banli_api::metrics::REQUESTS,
        "Requests handled, by transport, route, method and status (HTTP status or gRPC code)."
    );
    describe_histogram!(
        banli_api::metrics::DURATION,
        Unit::Seconds,
        "Request arrival to response head, by transport, route and method."
    );
    describe_gauge!(
        "banli_outbox_unpublished",
        "Outbox rows not yet on the bus."
    );
    describe_gauge!(
        "banli_outbox_oldest_unpublished_seconds",
        Unit::Seconds,
        "Age of the oldest outbox row not yet on the bus."
    );
    describe_gauge!(
        "banli_consumer_parked",
        "Events parked for an operator (GET /v1/coordination/parked-events)."
    );
    describe_gauge!(
        "banli_consumer_lag",
        "Events on the bus not yet handled by the consumer."
    );
    describe_gauge!(
        "banli_consumer_last_lag_milliseconds",
        Unit::Milliseconds,
        "Commit at the source to effect committed here, for the last event handled."
    );
    describe_histogram!(
        "banli_consumer_lag_milliseconds",
        Unit::Milliseconds,
        "Commit at the source to effect committed by the consumer, per event."
    );
    describe_counter!(
        "banli_consumer_applied_total",
        "Events whose effect the consumer committed."
    );
    describe_counter!(
        "banli_consumer_duplicates_total",
        "Redelivered events skipped through the inbox."
    );
    describe_counter!(
        "banli_consumer_deferred_total",
        "Events handed back to wait for an earlier version of their aggregate."
    );
    describe_counter!("banli_consumer_parked_total", "Events the consumer parked.");
    describe_counter!(
        "banli_consumer_failed_batches_total",
        "Batches that failed and were delivered again."
    );
    describe_counter!(
        "banli_consumer_batches_total",
        "Batches handled (each in one transaction)."
    );
}

/// The event-log figures of the services in this process.
#[derive(Clone)]
pub struct Metrics {
    sources: Vec<Source>,
    handle: PrometheusHandle,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            sources: Vec::new(),
            handle: recorder().clone(),
        }
    }
}

impl Metrics {
    /// Registers a service: its outbox and the events parked in any of its consumers' inboxes
    /// are read at each scrape.
    pub fn service(&mut self, service: &'static str, db: Db, outbox: Outbox, inboxes: Vec<Inbox>) {
        self.sources.push(Source {
            service,
            db,
            outbox: Some(outbox),
            inboxes,
        });
    }

    /// Registers a service that publishes nothing: the events parked in its consumers' inboxes.
    pub fn consuming_service(&mut self, service: &'static str, db: Db, inboxes: Vec<Inbox>) {
        self.sources.push(Source {
            service,
            db,
            outbox: None,
            inboxes,
        });
    }

    /// Registers a consumer (its durable name); returns the counters it updates, whose
    /// committed batches also signal `applied` (its service's consistency gate). Its figures
    /// are on `/metrics` from now on, at zero until it handles something.
    pub fn consumer(
        &mut self,
        name: &'static str,
        applied: &banli_eventlog::consistency::Applied,
    ) -> Arc<ConsumerStats> {
        for counter in [
            "banli_consumer_applied_total",
            "banli_consumer_duplicates_total",
            "banli_consumer_deferred_total",
            "banli_consumer_parked_total",
            "banli_consumer_failed_batches_total",
            "banli_consumer_batches_total",
        ] {
            metrics::counter!(counter, "consumer" => name).absolute(0);
        }
        metrics::gauge!("banli_consumer_lag", "consumer" => name).set(0.0);
        let _ = metrics::histogram!("banli_consumer_lag_milliseconds", "consumer" => name);
        Arc::new(ConsumerStats::signalling(applied))
    }

    /// Keeps the recorder's histograms bounded between scrapes; runs until the process ends.
    pub fn upkeep(&self) -> impl Future<Output = ()> + Send + 'static {
        let handle = self.handle.clone();
        async move {
            let mut tick = tokio::time::interval(Duration::from_secs(10));
            loop {
                tick.tick().await;
                handle.run_upkeep();
            }
        }
    }

    /// The Prometheus text.
    pub async fn render(&self) -> String {
        for s in &self.sources {
            if let Some(outbox) = &s.outbox {
                let lag = outbox.lag(s.db.pool()).await.unwrap_or_default();
                metrics::gauge!("banli_outbox_unpublished", "service" => s.service)
                    .set(lag.unpublished as f64);
                metrics::gauge!("banli_outbox_oldest_unpublished_seconds", "service" => s.service)
                    .set(lag.oldest_age_seconds as f64);
            }
            let mut parked = 0;
            for inbox in &s.inboxes {
                parked += inbox.parked_count(s.db.pool()).await.unwrap_or(0);
            }
            metrics::gauge!("banli_consumer_parked", "service" => s.service).set(parked as f64);
        }
        self.handle.render()
    }

    /// `GET /metrics`.
    pub fn router(self, auth: Auth) -> Router {
        Router::new().route(
            "/metrics",
            axum::routing::get(move |headers: HeaderMap| {
                let (metrics, auth) = (self.clone(), auth.clone());
                async move {
                    let token = headers
                        .get(axum::http::header::AUTHORIZATION)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.strip_prefix("Bearer "))
                        .map(str::trim)
                        .ok_or_else(|| {
                            Problem(AppError::new(
                                ErrorCode::Unauthenticated,
                                "send `Authorization: Bearer <api key>` (an assigning_office or auditor key)",
                            ))
                        })?;
                    let p = auth(token.to_owned()).await.map_err(Problem)?;
                    if !matches!(p.role, Role::AssigningOffice | Role::Auditor) {
                        return Err(Problem(AppError::forbidden(
                            "metrics are for assigning_office and auditor keys",
                        )));
                    }
                    let body = metrics.render().await;
                    Ok::<Response, Problem>(
                        (
                            [(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")],
                            body,
                        )
                            .into_response(),
                    )
                }
            }),
        )
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    /// The metric names a Prometheus expression reads (`banli_…`), without the histogram
    /// series suffixes.
    fn names_in(expr: &str) -> BTreeSet<String> {
        let mut out = BTreeSet::new();
        let mut rest = expr;
        while let Some(i) = rest.find("banli_") {
            let tail = &rest[i..];
            let end = tail
                .find(|c: char| !(c.is_ascii_lowercase() || c == '_'))
                .unwrap_or(tail.len());
            let name = &tail[..end];
            let base = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| name.strip_suffix(s))
                .unwrap_or(name);
            out.insert(base.to_owned());
            rest = &tail[end..];
        }
        out
    }

    #[test]
    fn the_dashboard_reads_only_metrics_that_exist_and_shows_all_of_them() {
        let text = include_str!("../../../deploy/grafana/banli.json");
        let dashboard: serde_json::Value = serde_json::from_str(text).expect("valid JSON");
        let mut used = BTreeSet::new();
        for panel in dashboard["panels"].as_array().expect("panels") {
            for target in panel["targets"].as_array().into_iter().flatten() {
                used.extend(names_in(target["expr"].as_str().expect("expr")));
            }
        }
        // Every name this process describes is what it exports.
        let source = include_str!("metrics.rs");
        let mut described = BTreeSet::new();
        for (_, after) in source
            .match_indices("describe_")
            .map(|(i, _)| source.split_at(i))
        {
            let Some((kind, args)) = after.split_once("!(") else {
                continue;
            };
            if !matches!(
                kind,
                "describe_counter" | "describe_gauge" | "describe_histogram"
            ) {
                continue;
            }
            let name = match args.split(',').next().unwrap_or("").trim() {
                "banli_api::metrics::REQUESTS" => banli_api::metrics::REQUESTS,
                "banli_api::metrics::DURATION" => banli_api::metrics::DURATION,
                quoted => quoted.trim_matches('"'),
            };
            described.insert(name.to_owned());
        }
        assert!(described.len() >= 10, "{described:?}");
        let unknown: Vec<_> = used.difference(&described).collect();
        assert!(
            unknown.is_empty(),
            "the dashboard reads {unknown:?}, which nothing exports"
        );
        let unshown: Vec<_> = described.difference(&used).collect();
        assert!(unshown.is_empty(), "no panel shows {unshown:?}");
    }
}
