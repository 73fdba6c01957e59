//! The follow-up service assembled from its parts — what `banli serve` runs. The process
//! supplies the ports (the bus, the clock, how keys are checked, where agencies' names come
//! from) and starts the background work it is handed; the workers acting in the assigning
//! office's name (the event consumer, timers) start once the process knows that office.

use banli_api::{Authenticator, Clock};
use banli_domain::RuleProfile;
use banli_eventlog::Bus;
use banli_eventlog::consistency::Gate;
use banli_eventlog::relay::Relay;

use crate::app::{AgencyNames, AppState};
use crate::store::{Store, StoreError};

/// What the follow-up service needs from the process that runs it.
#[derive(Clone)]
pub struct Deps {
    /// Its store over its own database (a replica beside it shares the store's `Db`).
    pub store: Store,
    pub bus: Bus,
    pub profile: RuleProfile,
    pub clock: Clock,
    /// Checks API keys: the process's replica of the directory.
    pub auth: Authenticator,
    /// Agencies' names for reports (the directory replica); without it, ids.
    pub names: Option<AgencyNames>,
    /// The document store the suggestions service writes (documents of notices' responses).
    pub documents: Option<banli_documents::Documents>,
}

impl std::fmt::Debug for Deps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deps").finish_non_exhaustive()
    }
}

/// The service built and migrated; its background work is handed to the caller to start.
pub struct Built {
    /// The application layer, as REST and gRPC call it.
    pub state: AppState,
    /// Its REST routes and their OpenAPI document.
    pub rest: (axum::Router, utoipa::openapi::OpenApi),
    /// The read-your-writes gate of its paths ([`crate::http::PATHS`]): suggestion events and
    /// disabled webhooks applied here.
    pub gate: Gate,
    /// The inbox of its consumer of suggestion events ([`crate::consumer::CONSUMER`]).
    pub inbox: banli_eventlog::inbox::Inbox,
    /// Publishes its outbox (supervision notices) to the bus.
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
        crate::grpc::add_services(self.state.clone(), routes);
    }
}

/// Why the service could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("applying the follow-up service's migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("rebuilding the follow-up service's metrics rows: {0}")]
    Facts(#[from] StoreError),
    #[error("creating the follow-up service's webhook inbox: {0}")]
    Inbox(sqlx::Error),
}

/// Migrates its database, brings its metrics rows up to date, and builds the service.
pub async fn build(deps: Deps) -> Result<Built, BuildError> {
    let Deps {
        store,
        bus,
        profile,
        clock,
        auth,
        names,
        documents,
    } = deps;
    let inbox = crate::consumer::EventConsumer::new(store.clone(), profile.reminders.clone())
        .inbox()
        .clone();
    store.migrate(&inbox).await?;
    let rebuilt = store.rebuild_facts().await?;
    if rebuilt > 0 {
        tracing::info!(
            suggestions = rebuilt,
            "metrics rows rebuilt from the replicas"
        );
    }
    crate::webhook_notices::inbox()
        .migrate(store.pool())
        .await
        .map_err(BuildError::Inbox)?;
    let gate = Gate::new(&["supervision"])
        .watch("suggestion", store.pool().clone(), inbox.clone())
        .watch(
            "webhook",
            store.pool().clone(),
            crate::webhook_notices::inbox(),
        );
    let state = AppState {
        store: store.clone(),
        auth,
        profile,
        clock,
        names,
        documents,
    };
    let rest = crate::http::api(state.clone());
    let relay = Relay::new(store.db().clone(), store.outbox().clone(), bus);
    Ok(Built {
        state,
        rest,
        gate,
        inbox,
        relay,
    })
}
