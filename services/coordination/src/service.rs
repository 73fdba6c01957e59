//! The coordination service assembled from its parts — what `banli serve` runs and what the API
//! tests run. The process supplies the ports (how keys are checked, the bus, the clock) and
//! starts the background work it is handed, with its own metrics and stop signal.

use std::sync::Arc;
use std::time::Duration;

use banli_api::{Authenticator, Clock};
use banli_calendar::Calendar;
use banli_domain::RuleProfile;
use banli_eventlog::Bus;
use banli_eventlog::consistency::Gate;
use banli_eventlog::relay::Relay;

use crate::app::App;
use crate::consumer::SuggestionConsumer;
use crate::notices::NoticeConsumer;
use crate::store::Store;
use crate::webhooks::SecretKey;
use crate::webhooks::deliver::{Deliverer, Policy};
use crate::webhooks::egress::Egress;

/// What the coordination service needs from the process that runs it.
#[derive(Clone)]
pub struct Deps {
    /// Its store over its own database (a replica beside it shares the store's `Db`).
    pub store: Store,
    pub bus: Bus,
    pub profile: RuleProfile,
    pub calendar: Calendar,
    pub clock: Clock,
    /// Checks API keys: the process's replica of the directory (the API tests: the suggestions
    /// service itself).
    pub auth: Authenticator,
    /// Seals webhook secrets.
    pub webhook_key: Arc<SecretKey>,
    /// Where webhook endpoints may point.
    pub egress: Egress,
    pub body_limit: usize,
    /// The bound on a read-your-writes wait.
    pub consistency_wait: Duration,
    /// The document store (opinion letters, minutes).
    pub documents: banli_documents::Documents,
}

impl std::fmt::Debug for Deps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deps").finish_non_exhaustive()
    }
}

/// The service built and migrated; its background work is handed to the caller to start.
pub struct Built {
    pub app: App,
    pub store: Store,
    /// Its REST routes and their OpenAPI document.
    pub rest: (axum::Router, utoipa::openapi::OpenApi),
    /// The read-your-writes gate of its paths ([`crate::http::PATHS`]): suggestion events and
    /// supervision notices applied here.
    pub gate: Gate,
    /// The consumer of suggestion events ([`crate::consumer::CONSUMER`]).
    pub consumer: SuggestionConsumer,
    /// The consumer of supervision notices ([`crate::notices::CONSUMER`]).
    pub notices: NoticeConsumer,
    /// The consumer of the audit log's checkpoints ([`crate::notices::CHECKPOINT_CONSUMER`]).
    pub checkpoints: NoticeConsumer,
    /// Publishes its outbox to the bus.
    pub relay: Relay,
    /// Delivers webhooks.
    pub deliverer: Deliverer,
    body_limit: usize,
}

impl std::fmt::Debug for Built {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Built").finish_non_exhaustive()
    }
}

impl Built {
    /// Adds its gRPC services to `routes`.
    pub fn add_grpc(&self, routes: &mut tonic::service::RoutesBuilder) {
        crate::grpc::add_services(self.app.clone(), self.body_limit, routes);
    }
}

/// Why the service could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("applying the coordination service's migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("creating the coordination service's {0} inbox: {1}")]
    Inbox(&'static str, sqlx::Error),
    #[error("webhook delivery: {0}")]
    Webhooks(String),
}

/// Migrates its database and builds the service.
pub async fn build(deps: Deps) -> Result<Built, BuildError> {
    let Deps {
        store,
        bus,
        profile,
        calendar,
        clock,
        auth,
        webhook_key,
        egress,
        body_limit,
        consistency_wait,
        documents,
    } = deps;
    store.migrate().await?;
    let app = App::new(store.clone(), profile, calendar, clock, auth);
    app.set_webhook_key(webhook_key.clone());
    app.set_webhook_egress(egress.clone());
    app.set_documents(documents);
    let consumer = SuggestionConsumer::new(store.clone());
    consumer
        .migrate()
        .await
        .map_err(|e| BuildError::Inbox("suggestion events", e))?;
    let notices = NoticeConsumer::new(store.clone());
    notices
        .migrate()
        .await
        .map_err(|e| BuildError::Inbox("notice", e))?;
    let checkpoints = NoticeConsumer::checkpoints(store.clone());
    checkpoints
        .migrate()
        .await
        .map_err(|e| BuildError::Inbox("checkpoint", e))?;
    let gate = Gate::new(&["coordination", "webhook"])
        .watch("suggestion", store.pool().clone(), consumer.inbox().clone())
        .watch("supervision", store.pool().clone(), notices.inbox().clone());
    app.set_gate(gate.clone(), consistency_wait);
    let deliverer = Deliverer::new(
        store.clone(),
        webhook_key,
        Policy {
            egress,
            ..Default::default()
        },
    )
    .map_err(BuildError::Webhooks)?;
    let relay = Relay::new(store.db().clone(), store.outbox().clone(), bus);
    let rest = crate::http::api(app.clone(), body_limit);
    Ok(Built {
        app,
        store,
        rest,
        gate,
        consumer,
        notices,
        checkpoints,
        relay,
        deliverer,
        body_limit,
    })
}
