//! `GET /metrics`: Prometheus text for the event log of each service in this process — the
//! outbox (rows not yet published, age of the oldest) and the consumer (lag on the bus, events
//! applied, duplicates skipped, events parked, batches retried). Needs an assigning_office or
//! auditor key, like every other endpoint.

use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::Ordering;

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
    outbox: Outbox,
    inbox: Inbox,
    stats: Arc<ConsumerStats>,
}

/// The event-log figures of the services in this process.
#[derive(Clone, Default)]
pub struct Metrics {
    sources: Vec<Source>,
}

impl Metrics {
    /// Registers a service; returns the counters its consumer updates.
    pub fn service(
        &mut self,
        service: &'static str,
        db: Db,
        outbox: Outbox,
        inbox: Inbox,
    ) -> Arc<ConsumerStats> {
        let stats = Arc::new(ConsumerStats::default());
        self.sources.push(Source {
            service,
            db,
            outbox,
            inbox,
            stats: stats.clone(),
        });
        stats
    }

    /// The Prometheus text.
    pub async fn render(&self) -> String {
        let mut out = String::new();
        let mut family = |name: &str, kind: &str, help: &str, rows: Vec<(&str, u64)>| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (service, v) in rows {
                let _ = writeln!(out, "{name}{{service=\"{service}\"}} {v}");
            }
        };
        let mut unpublished = Vec::new();
        let mut oldest = Vec::new();
        let mut parked = Vec::new();
        for s in &self.sources {
            let lag = s.outbox.lag(s.db.pool()).await.unwrap_or_default();
            unpublished.push((s.service, lag.unpublished));
            oldest.push((s.service, lag.oldest_age_seconds));
            parked.push((
                s.service,
                s.inbox.parked_count(s.db.pool()).await.unwrap_or(0),
            ));
        }
        let stat = |f: fn(&ConsumerStats) -> u64| {
            self.sources
                .iter()
                .map(|s| (s.service, f(&s.stats)))
                .collect::<Vec<_>>()
        };
        family(
            "banli_outbox_unpublished",
            "gauge",
            "Outbox rows not yet on the bus.",
            unpublished,
        );
        family(
            "banli_outbox_oldest_unpublished_seconds",
            "gauge",
            "Age of the oldest outbox row not yet on the bus.",
            oldest,
        );
        family(
            "banli_consumer_lag",
            "gauge",
            "Events on the bus not yet handled by this service's consumer.",
            stat(|s| s.lag.load(Ordering::Relaxed)),
        );
        family(
            "banli_consumer_applied_total",
            "counter",
            "Events whose effect the consumer committed.",
            stat(|s| s.applied.load(Ordering::Relaxed)),
        );
        family(
            "banli_consumer_duplicates_total",
            "counter",
            "Redelivered events skipped through the inbox.",
            stat(|s| s.duplicates.load(Ordering::Relaxed)),
        );
        family(
            "banli_consumer_deferred_total",
            "counter",
            "Events handed back to wait for an earlier version of their aggregate.",
            stat(|s| s.deferred.load(Ordering::Relaxed)),
        );
        family(
            "banli_consumer_failed_batches_total",
            "counter",
            "Batches that failed and were delivered again.",
            stat(|s| s.failures.load(Ordering::Relaxed)),
        );
        family(
            "banli_consumer_parked",
            "gauge",
            "Events parked for an operator (GET /v1/coordination/parked-events).",
            parked,
        );
        out
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
