//! The coordination service in a `banli serve` process: its directory replica, webhooks,
//! consumers of suggestion events, supervision notices and audit checkpoints.

use anyhow::{Context, Result};
use banli_eventlog::consistency::Gate;

use super::{COORDINATION_DIRECTORY, Deps, Process, RELAY_IDLE, purge, run_options};

/// Adds the coordination service's APIs, consumers, relay, webhook deliveries and purge to
/// `process`.
pub(super) async fn build(deps: &Deps<'_>, process: &mut Process) -> Result<()> {
    let (config, bus, profile, calendar, clock) = (
        deps.config,
        &deps.bus,
        &deps.profile,
        &deps.calendar,
        deps.clock,
    );
    let pool = deps
        .own_pool(process, "coordination.db", &deps.service_db)
        .await?;
    let cstore = banli_coordination::store::Store::new(pool);
    process.signals.extend(cstore.signals());
    cstore
        .migrate()
        .await
        .context("applying the coordination service's migrations")?;
    let directory = banli_directory::Directory::new(
        "coordination",
        COORDINATION_DIRECTORY,
        cstore.db().clone(),
    );
    directory
        .migrate()
        .await
        .context("creating the coordination service's directory replica")?;
    let auth = directory.authenticator();
    process.auth.get_or_insert_with(|| auth.clone());
    process.readiness.get_or_insert_with(|| directory.clone());
    process.tasks.push((
        "coordination directory consumer",
        tokio::spawn(banli_eventlog::runner::run(
            bus.clone(),
            run_options(COORDINATION_DIRECTORY, banli_directory::FILTER),
            directory.clone(),
            process
                .metrics
                .consumer(COORDINATION_DIRECTORY, &Default::default()),
            deps.stopped(),
        )),
    ));
    let coordination = banli_coordination::app::App::new(
        cstore.clone(),
        profile.clone(),
        calendar.clone(),
        clock,
        auth,
    );
    // Webhooks: the key that seals their secrets, and the delivery worker.
    let webhook_key = std::sync::Arc::new(
        banli_coordination::webhooks::load_or_create_key(&config.webhook_key_path())
            .map_err(|e| anyhow::anyhow!("{e}"))
            .context(
                "set webhook_key to a readable key file, or let the data directory hold one",
            )?,
    );
    coordination.set_webhook_key(webhook_key.clone());
    coordination.set_stream_limits(config.watch_streams_per_key, config.watch_streams_max);
    let egress = config.webhook_egress()?;
    if !egress.allowed_networks().is_empty() {
        tracing::info!(networks = ?egress.allowed_networks().iter().map(ToString::to_string).collect::<Vec<_>>(), "webhook endpoints may point into these networks");
    }
    coordination.set_webhook_egress(egress.clone());
    let deliverer = banli_coordination::webhooks::deliver::Deliverer::new(
        cstore.clone(),
        webhook_key,
        banli_coordination::webhooks::deliver::Policy {
            egress,
            ..Default::default()
        },
    )
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    process.tasks.push((
        "webhook deliveries",
        tokio::spawn(deliverer.run(deps.stopped())),
    ));
    process.apis.push(banli_coordination::http::api(
        coordination.clone(),
        banli_api::http::DEFAULT_BODY_LIMIT,
    ));
    banli_coordination::grpc::add_services(
        coordination.clone(),
        banli_api::http::DEFAULT_BODY_LIMIT,
        &mut process.grpc_routes,
    );
    process.grpc_names.extend(banli_coordination::grpc::NAMES);
    let consumer = banli_coordination::consumer::SuggestionConsumer::new(cstore.clone());
    consumer
        .migrate()
        .await
        .context("creating the coordination service's inbox")?;
    process.tasks.push((
        "coordination relay",
        tokio::spawn(
            banli_eventlog::relay::Relay::new(
                cstore.db().clone(),
                cstore.outbox().clone(),
                bus.clone(),
            )
            .run(RELAY_IDLE, deps.stopped()),
        ),
    ));
    // Supervision notices from the follow-up service into the notified agencies' feeds.
    let notices = banli_coordination::notices::NoticeConsumer::new(cstore.clone());
    notices
        .migrate()
        .await
        .context("creating the coordination service's notice inbox")?;
    // The audit log's checkpoints into every agency's feed.
    let checkpoints = banli_coordination::notices::NoticeConsumer::checkpoints(cstore.clone());
    checkpoints
        .migrate()
        .await
        .context("creating the coordination service's checkpoint inbox")?;
    process.metrics.service(
        "coordination",
        cstore.db().clone(),
        cstore.outbox().clone(),
        vec![
            consumer.inbox().clone(),
            notices.inbox().clone(),
            checkpoints.inbox().clone(),
            directory.inbox().clone(),
        ],
    );
    let gate = Gate::new(&["coordination", "webhook"])
        .watch(
            "suggestion",
            cstore.pool().clone(),
            consumer.inbox().clone(),
        )
        .watch(
            "supervision",
            cstore.pool().clone(),
            notices.inbox().clone(),
        );
    process.route(banli_coordination::http::PATHS, &gate);
    coordination.set_gate(gate.clone(), config.consistency_wait());
    let stats = process
        .metrics
        .consumer(banli_coordination::consumer::CONSUMER, gate.applied());
    let notice_stats = process
        .metrics
        .consumer(banli_coordination::notices::CONSUMER, gate.applied());
    process.tasks.push((
        "coordination consumer",
        tokio::spawn(banli_eventlog::runner::run(
            bus.clone(),
            run_options(
                banli_coordination::consumer::CONSUMER,
                banli_coordination::consumer::FILTER,
            ),
            consumer,
            stats,
            deps.stopped(),
        )),
    ));
    process.tasks.push((
        "coordination notice consumer",
        tokio::spawn(banli_eventlog::runner::run(
            bus.clone(),
            run_options(
                banli_coordination::notices::CONSUMER,
                banli_coordination::notices::FILTER,
            ),
            notices,
            notice_stats,
            deps.stopped(),
        )),
    ));
    let checkpoint_stats = process.metrics.consumer(
        banli_coordination::notices::CHECKPOINT_CONSUMER,
        gate.applied(),
    );
    process.tasks.push((
        "coordination checkpoint consumer",
        tokio::spawn(banli_eventlog::runner::run(
            bus.clone(),
            run_options(
                banli_coordination::notices::CHECKPOINT_CONSUMER,
                banli_coordination::notices::CHECKPOINT_FILTER,
            ),
            checkpoints,
            checkpoint_stats,
            deps.stopped(),
        )),
    ));
    process.tasks.push((
        "coordination idempotency purge",
        purge(
            cstore.db().clone(),
            cstore.idempotency_keys().clone(),
            config,
        ),
    ));
    Ok(())
}
