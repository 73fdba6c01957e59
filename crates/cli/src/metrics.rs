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
}

/// The event-log figures of the services in this process.
#[derive(Clone, Default)]
pub struct Metrics {
    sources: Vec<Source>,
    /// Every consumer of this process by its durable name.
    consumers: Vec<(&'static str, Arc<ConsumerStats>)>,
}

impl Metrics {
    /// Registers a service; returns the counters its consumer updates.
    pub fn service(&mut self, service: &'static str, db: Db, outbox: Outbox, inbox: Inbox) {
        self.sources.push(Source {
            service,
            db,
            outbox,
            inbox,
        });
    }

    /// Registers a consumer (its durable name); returns the counters it updates, whose
    /// committed batches also signal `applied` (its service's consistency gate).
    pub fn consumer(
        &mut self,
        name: &'static str,
        applied: &banli_eventlog::consistency::Applied,
    ) -> Arc<ConsumerStats> {
        let stats = Arc::new(ConsumerStats::signalling(applied));
        self.consumers.push((name, stats.clone()));
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
        let consumers = &self.consumers;
        let mut per_consumer =
            |name: &str, kind: &str, help: &str, f: fn(&ConsumerStats) -> u64| {
                let _ = writeln!(out, "# HELP {name} {help}");
                let _ = writeln!(out, "# TYPE {name} {kind}");
                for (consumer, s) in consumers {
                    let _ = writeln!(out, "{name}{{consumer=\"{consumer}\"}} {}", f(s));
                }
            };
        per_consumer(
            "banli_consumer_lag",
            "gauge",
            "Events on the bus not yet handled by the consumer.",
            |s| s.lag.load(Ordering::Relaxed),
        );
        per_consumer(
            "banli_consumer_last_lag_milliseconds",
            "gauge",
            "Commit at the source to effect committed here, for the last event handled.",
            |s| s.last_lag_ms.load(Ordering::Relaxed),
        );
        per_consumer(
            "banli_consumer_applied_total",
            "counter",
            "Events whose effect the consumer committed.",
            |s| s.applied.load(Ordering::Relaxed),
        );
        per_consumer(
            "banli_consumer_duplicates_total",
            "counter",
            "Redelivered events skipped through the inbox.",
            |s| s.duplicates.load(Ordering::Relaxed),
        );
        per_consumer(
            "banli_consumer_deferred_total",
            "counter",
            "Events handed back to wait for an earlier version of their aggregate.",
            |s| s.deferred.load(Ordering::Relaxed),
        );
        per_consumer(
            "banli_consumer_failed_batches_total",
            "counter",
            "Batches that failed and were delivered again.",
            |s| s.failures.load(Ordering::Relaxed),
        );
        per_consumer(
            "banli_consumer_batches_total",
            "counter",
            "Batches handled (each in one transaction).",
            |s| s.batches.load(Ordering::Relaxed),
        );
        let name = "banli_consumer_lag_milliseconds";
        let _ = writeln!(
            out,
            "# HELP {name} Commit at the source to effect committed by the consumer, per event."
        );
        let _ = writeln!(out, "# TYPE {name} histogram");
        for (consumer, s) in consumers {
            let mut cumulative = 0;
            for (i, slot) in s.lag_ms.iter().enumerate() {
                cumulative += slot.load(Ordering::Relaxed);
                let le = banli_eventlog::runner::LAG_BUCKETS_MS
                    .get(i)
                    .map_or_else(|| "+Inf".to_owned(), u64::to_string);
                let _ = writeln!(
                    out,
                    "{name}_bucket{{consumer=\"{consumer}\",le=\"{le}\"}} {cumulative}"
                );
            }
            let _ = writeln!(out, "{name}_count{{consumer=\"{consumer}\"}} {cumulative}");
        }
        let mut family = |name: &str, kind: &str, help: &str, rows: Vec<(&str, u64)>| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for (service, v) in rows {
                let _ = writeln!(out, "{name}{{service=\"{service}\"}} {v}");
            }
        };
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
