//! The notification service assembled from its parts — what `banli serve` runs beside the
//! follow-up service. The process supplies the ports (its own database, how keys are checked,
//! agencies' names, the channels) and starts the consumer and the deliverer it is handed.

use banli_api::Authenticator;
use banli_eventlog::inbox::Inbox;

use crate::app::AppState;
use crate::consumer::{AgencyNames, Available, EventConsumer};
use crate::deliver::{ConfigError, Deliverer, Policy, Sms, Smtp};
use crate::store::Store;

#[derive(Clone)]
pub struct Deps {
    pub store: Store,
    pub auth: Authenticator,
    pub names: Option<AgencyNames>,
    /// E-mail, if an SMTP server is configured.
    pub smtp: Option<Smtp>,
    /// SMS, if a gateway is configured.
    pub sms: Option<Sms>,
    pub policy: Policy,
}

impl std::fmt::Debug for Deps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deps").finish_non_exhaustive()
    }
}

/// The service built and migrated; its consumer and deliverer are for the caller to start.
pub struct Built {
    pub state: AppState,
    pub rest: (axum::Router, utoipa::openapi::OpenApi),
    pub consumer: EventConsumer,
    pub inbox: Inbox,
    pub deliverer: Deliverer,
}

impl std::fmt::Debug for Built {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Built").finish_non_exhaustive()
    }
}

impl Built {
    pub fn add_grpc(&self, routes: &mut tonic::service::RoutesBuilder) {
        crate::grpc::add_services(self.state.clone(), routes);
    }
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("applying the notification service's migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error(transparent)]
    Config(#[from] ConfigError),
}

pub async fn build(deps: Deps) -> Result<Built, BuildError> {
    let Deps {
        store,
        auth,
        names,
        smtp,
        sms,
        policy,
    } = deps;
    let available = Available {
        email: smtp.is_some(),
        sms: sms.is_some(),
    };
    let consumer = EventConsumer::new(store.clone(), available, names);
    let inbox = consumer.inbox().clone();
    store.migrate(&inbox).await?;
    let deliverer = Deliverer::new(store.clone(), policy, smtp, sms)?;
    let state = AppState {
        store: store.clone(),
        auth,
    };
    let rest = crate::http::api(state.clone());
    Ok(Built {
        state,
        rest,
        consumer,
        inbox,
        deliverer,
    })
}
