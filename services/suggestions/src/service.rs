//! The suggestions service assembled from its parts — what `banli serve` runs and what the API
//! tests run. The process supplies the ports (the bus, the clock) and starts the background work
//! it is handed, with its own metrics and stop signal.

use banli_calendar::Calendar;
use banli_domain::RuleProfile;
use banli_eventlog::Bus;
use banli_eventlog::consistency::Gate;
use banli_eventlog::relay::Relay;

use crate::app::{App, Clock};
use crate::consumer::CoordinationConsumer;
use crate::store::Store;

/// What the suggestions service needs from the process that runs it.
#[derive(Clone)]
pub struct Deps {
    /// Its store over its own database.
    pub store: Store,
    pub bus: Bus,
    pub profile: RuleProfile,
    pub calendar: Calendar,
    pub clock: Clock,
    pub body_limit: usize,
    /// The document store (uploads, signed letters, evidence).
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
    /// Its REST routes and their OpenAPI document.
    pub rest: (axum::Router, utoipa::openapi::OpenApi),
    /// The read-your-writes gate of its paths ([`crate::http::PATHS`]): the coordination
    /// service's events applied here.
    pub gate: Gate,
    /// The consumer of the coordination service's events ([`crate::consumer::CONSUMER`]).
    pub consumer: CoordinationConsumer,
    /// Publishes its outbox (suggestion and directory events) to the bus.
    pub relay: Relay,
}

impl std::fmt::Debug for Built {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Built").finish_non_exhaustive()
    }
}

impl Built {
    /// Adds its gRPC services to `routes`.
    pub fn add_grpc(&self, routes: &mut tonic::service::RoutesBuilder) {
        crate::grpc::add_services(self.app.clone(), routes);
    }
}

/// Why the service could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("applying the suggestions service's migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("creating the suggestions service's inbox: {0}")]
    Inbox(sqlx::Error),
}

/// Migrates its database and builds the service.
pub async fn build(deps: Deps) -> Result<Built, BuildError> {
    let Deps {
        store,
        bus,
        profile,
        calendar,
        clock,
        body_limit,
        documents,
    } = deps;
    store.migrate().await?;
    let app = App::new(store.clone(), profile, calendar, clock);
    app.set_documents(documents);
    let consumer = CoordinationConsumer::new(app.clone());
    consumer.migrate().await.map_err(BuildError::Inbox)?;
    let gate = Gate::new(&["suggestion"]).watch(
        "coordination",
        store.pool().clone(),
        consumer.inbox().clone(),
    );
    let relay = crate::relay::relay(&store, bus);
    let rest = crate::http::api(app.clone(), body_limit);
    Ok(Built {
        app,
        rest,
        gate,
        consumer,
        relay,
    })
}
