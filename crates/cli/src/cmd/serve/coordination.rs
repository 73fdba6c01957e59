//! The coordination service in a `banli serve` process: its directory replica (the port that
//! checks keys), the service itself (`banli_coordination::service::build`), and its background
//! work started with this process's metrics and stop signal.

use anyhow::{Context, Result};

use super::{COORDINATION_DIRECTORY, Deps, Process, RELAY_IDLE, purge, run_options};

/// Adds the coordination service's APIs, consumers, relay, webhook deliveries and purge to
/// `process`.
pub(super) async fn build(deps: &Deps<'_>, process: &mut Process) -> Result<()> {
    let (config, bus) = (deps.config, &deps.bus);
    let pool = deps
        .own_pool(process, "coordination.db", &deps.service_db)
        .await?;
    let cstore = banli_coordination::store::Store::new(pool);
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
    let webhook_key = std::sync::Arc::new(
        banli_coordination::webhooks::load_or_create_key(&config.webhook_key_path())
            .map_err(|e| anyhow::anyhow!("{e}"))
            .context(
                "set webhook_key to a readable key file, or let the data directory hold one",
            )?,
    );
    let egress = config.webhook_egress()?;
    if !egress.allowed_networks().is_empty() {
        tracing::info!(networks = ?egress.allowed_networks().iter().map(ToString::to_string).collect::<Vec<_>>(), "webhook endpoints may point into these networks");
    }
    let built = banli_coordination::service::build(banli_coordination::service::Deps {
        store: cstore.clone(),
        bus: bus.clone(),
        profile: deps.profile.clone(),
        calendar: deps.calendar.clone(),
        clock: deps.clock,
        auth,
        webhook_key,
        egress,
        body_limit: banli_api::http::DEFAULT_BODY_LIMIT,
        documents: super::suggestions::documents(deps.config).await?,
        consistency_wait: config.consistency_wait(),
    })
    .await?;
    process.signals.extend(cstore.signals());
    built
        .app
        .set_stream_limits(config.watch_streams_per_key, config.watch_streams_max);
    built.add_grpc(&mut process.grpc_routes);
    process.grpc_names.extend(banli_coordination::grpc::NAMES);
    let banli_coordination::service::Built {
        rest,
        gate,
        consumer,
        notices,
        checkpoints,
        relay,
        deliverer,
        ..
    } = built;
    process.apis.push(rest);
    process.route(banli_coordination::http::PATHS, &gate);
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
    process.tasks.push((
        "webhook deliveries",
        tokio::spawn(deliverer.run(deps.stopped())),
    ));
    process.tasks.push((
        "coordination relay",
        tokio::spawn(relay.run(RELAY_IDLE, deps.stopped())),
    ));
    let run = |name: &'static str, filter: &'static str, process: &mut Process| {
        (
            run_options(name, filter),
            process.metrics.consumer(name, gate.applied()),
        )
    };
    let (options, stats) = run(
        banli_coordination::consumer::CONSUMER,
        banli_coordination::consumer::FILTER,
        process,
    );
    process.tasks.push((
        "coordination consumer",
        tokio::spawn(banli_eventlog::runner::run(
            bus.clone(),
            options,
            consumer,
            stats,
            deps.stopped(),
        )),
    ));
    let (options, stats) = run(
        banli_coordination::notices::CONSUMER,
        banli_coordination::notices::FILTER,
        process,
    );
    process.tasks.push((
        "coordination notice consumer",
        tokio::spawn(banli_eventlog::runner::run(
            bus.clone(),
            options,
            notices,
            stats,
            deps.stopped(),
        )),
    ));
    let (options, stats) = run(
        banli_coordination::notices::CHECKPOINT_CONSUMER,
        banli_coordination::notices::CHECKPOINT_FILTER,
        process,
    );
    process.tasks.push((
        "coordination checkpoint consumer",
        tokio::spawn(banli_eventlog::runner::run(
            bus.clone(),
            options,
            checkpoints,
            stats,
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
