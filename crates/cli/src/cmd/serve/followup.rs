//! The follow-up service in a `banli serve` process: its directory replica, metrics rows,
//! consumers, timers and supervision notices.

use anyhow::{Context, Result};
use banli_eventlog::consistency::Gate;

use super::{Deps, FOLLOWUP_DIRECTORY, Process, RELAY_IDLE, purge, run_options};

/// What the audit log, which runs beside it, needs of the follow-up service.
pub(super) struct Followup {
    pub store: banli_followup::store::Store,
    pub directory: banli_directory::Directory,
    pub gate: Gate,
}

/// Migrates and adds the follow-up service's APIs, relay, workers and purge to `process`.
pub(super) async fn build(deps: &Deps<'_>, process: &mut Process) -> Result<Followup> {
    let (config, bus, profile, clock) = (deps.config, &deps.bus, &deps.profile, deps.clock);
    let pool = deps
        .own_pool(process, "followup.db", &deps.service_db)
        .await?;
    let fstore = banli_followup::store::Store::new(pool);
    process.signals.extend(fstore.signals());
    let directory =
        banli_directory::Directory::new("followup", FOLLOWUP_DIRECTORY, fstore.db().clone());
    directory
        .migrate()
        .await
        .context("creating the follow-up service's directory replica")?;
    let auth = directory.authenticator();
    process.auth.get_or_insert_with(|| auth.clone());
    process.readiness.get_or_insert_with(|| directory.clone());
    let names: banli_followup::app::AgencyNames = {
        let directory = directory.clone();
        std::sync::Arc::new(move || {
            let directory = directory.clone();
            Box::pin(async move {
                directory
                    .agencies()
                    .await
                    .map(|l| l.into_iter().map(|a| (a.id.to_string(), a.name)).collect())
                    .unwrap_or_default()
            })
        })
    };
    let built = banli_followup::service::build(banli_followup::service::Deps {
        documents: Some(super::suggestions::documents(deps.config).await?),
        store: fstore.clone(),
        bus: bus.clone(),
        profile: profile.clone(),
        clock,
        auth,
        names: Some(names),
    })
    .await?;
    built.add_grpc(&mut process.grpc_routes);
    process.grpc_names.extend(banli_followup::grpc::NAMES);
    let banli_followup::service::Built {
        rest,
        gate,
        inbox,
        relay,
        ..
    } = built;
    process.apis.push(rest);
    process.route(banli_followup::http::PATHS, &gate);
    process.metrics.service(
        "followup",
        fstore.db().clone(),
        fstore.outbox().clone(),
        vec![
            inbox,
            banli_followup::webhook_notices::inbox(),
            directory.inbox().clone(),
        ],
    );
    process.tasks.push((
        "followup directory consumer",
        tokio::spawn(banli_eventlog::runner::run(
            bus.clone(),
            run_options(FOLLOWUP_DIRECTORY, banli_directory::FILTER),
            directory.clone(),
            process
                .metrics
                .consumer(FOLLOWUP_DIRECTORY, &Default::default()),
            deps.stopped(),
        )),
    ));
    process.tasks.push((
        "followup relay",
        tokio::spawn(relay.run(RELAY_IDLE, deps.stopped())),
    ));
    let followup_directory = directory.clone();
    // Overdue deadlines and commitments, dissatisfied ratings and disabled webhooks raise
    // notices in the assigning office's name: the consumers and timers start once the
    // directory holding it has arrived (at once, unless this database is new).
    let started = FollowupWorkers {
        store: fstore.clone(),
        profile: profile.clone(),
        bus: bus.clone(),
        consumer: process
            .metrics
            .consumer(banli_followup::consumer::CONSUMER, gate.applied()),
        webhooks: process
            .metrics
            .consumer(banli_followup::webhook_notices::CONSUMER, gate.applied()),
        demo_loaded: deps.demo_loaded.clone(),
    };
    let (stop, running) = (deps.stopped(), deps.stop.clone());
    process.tasks.push((
        "followup workers",
        tokio::spawn(async move {
            if let Some(office) = directory.wait_for_office(stop).await {
                started.run(office, running).await;
            }
        }),
    ));
    process.tasks.push((
        "followup idempotency purge",
        purge(
            fstore.db().clone(),
            fstore.idempotency_keys().clone(),
            config,
        ),
    ));
    tracing::info!("follow-up service ready");
    Ok(Followup {
        store: fstore,
        directory: followup_directory,
        gate,
    })
}

/// The follow-up service's workers that act in the assigning office's name: its event
/// consumer, the consumer of disabled webhooks, and the timers.
struct FollowupWorkers {
    store: banli_followup::store::Store,
    profile: banli_domain::RuleProfile,
    bus: banli_eventlog::Bus,
    consumer: std::sync::Arc<banli_eventlog::ConsumerStats>,
    webhooks: std::sync::Arc<banli_eventlog::ConsumerStats>,
    demo_loaded: tokio::sync::watch::Receiver<bool>,
}

impl FollowupWorkers {
    async fn run(
        self,
        office: banli_domain::ids::AgencyId,
        rx: tokio::sync::watch::Receiver<bool>,
    ) {
        let stopped = || {
            let mut rx = rx.clone();
            async move {
                let _ = rx.wait_for(|stop| *stop).await;
            }
        };
        tracing::info!(assigning_office = %office, "follow-up workers start");
        let consumer = banli_followup::consumer::EventConsumer::new(
            self.store.clone(),
            self.profile.reminders.clone(),
        )
        .with_office(office);
        let events = banli_eventlog::runner::run(
            self.bus.clone(),
            run_options(
                banli_followup::consumer::CONSUMER,
                banli_followup::consumer::FILTER,
            ),
            consumer,
            self.consumer,
            stopped(),
        );
        // A disabled webhook: a notice to its agency.
        let webhooks = banli_eventlog::runner::run(
            self.bus.clone(),
            run_options(
                banli_followup::webhook_notices::CONSUMER,
                banli_followup::webhook_notices::FILTER,
            ),
            banli_followup::webhook_notices::WebhookConsumer::new(self.store.clone(), office),
            self.webhooks,
            stopped(),
        );
        let firer = banli_followup::fire::AlertFirer::new(self.store.clone()).with_office(office);
        // The profile's last reminder before the day also raises a due-soon notice.
        let firer = match self
            .profile
            .reminders
            .days_before
            .iter()
            .filter(|d| **d > 0)
            .min()
        {
            Some(d) => firer.with_due_soon(*d),
            None => firer,
        }
        .with_targets(self.profile.metrics.clone());
        let timers = banli_timers::run(
            self.store.db().clone(),
            self.store.timers().clone(),
            banli_timers::RunOptions {
                owner: format!("followup-{}", uuid::Uuid::now_v7()),
                batch: 256,
                lease: std::time::Duration::from_secs(60),
                // A safety net: the runner sleeps until the next due time or a schedule signal.
                idle: std::time::Duration::from_secs(60),
            },
            firer,
            std::sync::Arc::new(banli_timers::TimerStats::default()),
            stopped(),
        );
        // The timers wait for the demo to be loaded (its deadlines lie in the past).
        let mut loaded = self.demo_loaded;
        let timers = async move {
            if loaded.wait_for(|done| *done).await.is_ok() {
                timers.await;
            }
        };
        tokio::join!(events, webhooks, timers);
    }
}
