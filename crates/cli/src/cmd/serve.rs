//! `banli serve`: the whole platform in one process on the embedded default (or PostgreSQL).

use std::net::SocketAddr;
use std::path::Path;

use anyhow::{Context, Result, bail};
use banli_db::{ConnectOptions, Pool};
use banli_domain::Role;
use banli_eventlog::consistency::Gate;
use banli_suggestions::app::{App, Clock};
use banli_suggestions::store::Store;
use tokio::net::TcpListener;

use crate::config::Config;

/// The file the first start writes the assigning office's key to.
pub const FIRST_KEY_FILE: &str = "assigning-office.key";

/// Which services this process runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Service {
    /// Every service, over the embedded event bus (or NATS when --nats-url is set).
    All,
    Suggestions,
    Coordination,
    /// The follow-up tracking service.
    Followup,
}

impl Service {
    fn runs(self, s: Service) -> bool {
        self == Service::All || self == s
    }

    /// The process's name in traces (`service.name`).
    pub fn process_name(self) -> &'static str {
        match self {
            Service::All => "banli",
            Service::Suggestions => "banli-suggestions",
            Service::Coordination => "banli-coordination",
            Service::Followup => "banli-followup",
        }
    }
}

/// A background task and the name it is logged under.
type Task = (&'static str, tokio::task::JoinHandle<()>);

pub async fn run(config: &Config, service: Service, demo: bool) -> Result<()> {
    let url = config.database_url();
    let postgres = !url.starts_with("sqlite:");
    if demo && service != Service::All {
        bail!("--demo loads through every service: run it with --service all (the default)");
    }
    // The demo drives the commands on a simulated clock through 2018–2020, then returns to the
    // system clock.
    let clock = if demo {
        Clock::simulated()
    } else {
        Clock::System
    };
    // The follow-up timers wait for the demo to be loaded (its deadlines lie in the past).
    let (demo_done, demo_loaded) = tokio::sync::watch::channel(!demo);
    if service != Service::All && (!postgres || config.nats_url.is_none()) {
        bail!(
            "--service {service:?} runs one service per process: give it PostgreSQL (--database-url postgres://…) and NATS JetStream (--nats-url nats://…), shared with the other services"
        );
    }
    let bus = match &config.nats_url {
        Some(u) => banli_eventlog::Bus::Nats(Box::new(
            banli_eventlog::NatsBus::connect(banli_eventlog::NatsConfig {
                stream: config.nats_stream.clone(),
                prefix: config.nats_subject_prefix.clone(),
                max_age: config.nats_max_age(),
                auth: config.nats_auth(),
                ..banli_eventlog::NatsConfig::new(&u.0)
            })
            .await?,
        )),
        // The embedded bus keeps each event until both consumers of this process have it.
        None => banli_eventlog::Bus::Embedded(banli_eventlog::EmbeddedBus::new(&[
            banli_suggestions::consumer::CONSUMER,
            banli_coordination::consumer::CONSUMER,
            banli_coordination::notices::CONSUMER,
            banli_coordination::notices::CHECKPOINT_CONSUMER,
            banli_followup::webhook_notices::CONSUMER,
            banli_auditlog::consumer::CONSUMER,
            banli_followup::consumer::CONSUMER,
            COORDINATION_DIRECTORY,
            FOLLOWUP_DIRECTORY,
        ])),
    };
    let (tx, rx) = tokio::sync::watch::channel(false);
    let stopped = |rx: &tokio::sync::watch::Receiver<bool>| {
        let mut rx = rx.clone();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    };
    let profile = config.rule_profile()?;
    let calendar = config.calendar()?;
    let mut tasks: Vec<Task> = Vec::new();
    // A task whose failure must stop the process (the audit log's sequencer losing its lock).
    let (fatal_tx, mut fatal_rx) = tokio::sync::mpsc::channel::<anyhow::Error>(1);
    let mut apis: Vec<(axum::Router, utoipa::openapi::OpenApi)> = Vec::new();
    let mut grpc_routes = tonic::service::RoutesBuilder::default();
    let mut grpc_names: Vec<&'static str> = Vec::new();
    let mut metrics = crate::metrics::Metrics::default();
    let mut pools = Vec::new();
    // What each store raises after its commits: carried between processes on PostgreSQL.
    let mut signals: Vec<banli_db::signal::Signal> = Vec::new();
    // Read-your-writes: each service's gate, by the paths it answers.
    let mut gates = banli_api::consistency::Gates::default();
    // How this process checks API keys outside a service's own API (metrics, reflection): the
    // suggestions service's keys when it runs here, else the first replica of the directory.
    let mut process_auth: Option<banli_api::Authenticator> = None;
    // What the process waits for before it is ready (a service's directory replica).
    let mut readiness: Option<banli_directory::Directory> = None;

    // The suggestions service: it owns the directory and the API keys, and publishes them
    // (`directory.*` events) to the other services' replicas; no service reads its tables.
    // The services' own files: every commit durable when configured (their outboxes hold what
    // is published to other services and agencies); the audit log's always.
    let service_db = ConnectOptions {
        durable: config.sqlite_durable_commits,
        ..ConnectOptions::default()
    };
    let main_pool = Pool::connect(&url, &service_db).await?;
    pools.push(main_pool.clone());
    let store = Store::new(main_pool.clone());
    let suggestions = App::new(store.clone(), profile.clone(), calendar.clone(), clock);
    let mut office_agency = None;
    if service.runs(Service::Suggestions) {
        store
            .migrate()
            .await
            .context("applying the suggestions service's migrations")?;
        let office = super::init::ensure_assigning_office(&store).await?;
        office_agency = Some(office.id);
        if !store.has_keys().await? {
            first_key(&store, &config.data_dir, config.http_addr).await?;
        }
        // Directory rows written before it was published (an upgrade), or by a `banli keys`
        // whose export failed: published now, once.
        let exported = store
            .export_directory()
            .await
            .context("publishing the directory to the other services")?;
        if exported > 0 {
            tracing::info!(
                records = exported,
                "published directory records not yet sent to the other services"
            );
        }
        process_auth = Some({
            let keys = suggestions.clone();
            std::sync::Arc::new(move |token: String| {
                let keys = keys.clone();
                Box::pin(async move { keys.authenticate(&token).await })
            })
        });
        tracing::info!(assigning_office = %office.id, profile = %suggestions.profile().name, "suggestions service ready");
        // Calendar data not recomputed against yet (a newer file, or the first start): every
        // open deadline is recomputed once, in the background, as the assigning office.
        if !store
            .recomputed_against(suggestions.calendar_version())
            .await
            .context("reading which calendar data open deadlines were recomputed against")?
        {
            let (app, actor) = (
                suggestions.clone(),
                banli_domain::Actor::assigning_office(office.id),
            );
            tracing::info!(calendar_version = %app.calendar_version(), "recomputing open deadlines against calendar data not seen before");
            tokio::spawn(async move {
                if let Err(e) = app.recompute_all(&actor).await {
                    tracing::error!(error = %e, "recomputing open deadlines against the calendar data failed; it runs again at the next start, or call POST /v1/calendar/recompute");
                }
            });
        }
        apis.push(banli_suggestions::http::api(
            suggestions.clone(),
            banli_suggestions::http::DEFAULT_BODY_LIMIT,
        ));
        banli_suggestions::grpc::add_services(suggestions.clone(), &mut grpc_routes);
        grpc_names.extend(banli_suggestions::grpc::NAMES);
        let consumer = banli_suggestions::consumer::CoordinationConsumer::new(suggestions.clone());
        consumer
            .migrate()
            .await
            .context("creating the suggestions service's inbox")?;
        metrics.service(
            "suggestions",
            store.db().clone(),
            store.outbox().clone(),
            consumer.inbox().clone(),
        );
        let gate = Gate::new(&["suggestion"]).watch(
            "coordination",
            main_pool.clone(),
            consumer.inbox().clone(),
        );
        gates = gates.route(banli_suggestions::http::PATHS, &gate);
        let stats = metrics.consumer(banli_suggestions::consumer::CONSUMER, gate.applied());
        signals.push(store.outbox().signal().clone());
        tasks.push((
            "suggestions relay",
            tokio::spawn(
                banli_suggestions::relay::relay(&store, bus.clone()).run(RELAY_IDLE, stopped(&rx)),
            ),
        ));
        tasks.push((
            "suggestions consumer",
            tokio::spawn(banli_eventlog::runner::run(
                bus.clone(),
                run_options(
                    banli_suggestions::consumer::CONSUMER,
                    banli_suggestions::consumer::FILTER,
                ),
                consumer,
                stats,
                stopped(&rx),
            )),
        ));
        tasks.push((
            "suggestions idempotency purge",
            purge(store.db().clone(), store.idempotency_keys().clone(), config),
        ));
    }

    if service.runs(Service::Coordination) {
        let pool = if postgres {
            main_pool.clone()
        } else {
            let p = Pool::connect(
                &banli_db::sqlite_url_for(&config.data_dir, "coordination.db"),
                &service_db,
            )
            .await?;
            pools.push(p.clone());
            p
        };
        let cstore = banli_coordination::store::Store::new(pool);
        signals.extend(cstore.signals());
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
        process_auth.get_or_insert_with(|| auth.clone());
        readiness.get_or_insert_with(|| directory.clone());
        tasks.push((
            "coordination directory consumer",
            tokio::spawn(banli_eventlog::runner::run(
                bus.clone(),
                run_options(COORDINATION_DIRECTORY, banli_directory::FILTER),
                directory.clone(),
                metrics.consumer(COORDINATION_DIRECTORY, &Default::default()),
                stopped(&rx),
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
        tasks.push((
            "webhook deliveries",
            tokio::spawn(deliverer.run(stopped(&rx))),
        ));
        apis.push(banli_coordination::http::api(
            coordination.clone(),
            banli_api::http::DEFAULT_BODY_LIMIT,
        ));
        banli_coordination::grpc::add_services(
            coordination.clone(),
            banli_api::http::DEFAULT_BODY_LIMIT,
            &mut grpc_routes,
        );
        grpc_names.extend(banli_coordination::grpc::NAMES);
        let consumer = banli_coordination::consumer::SuggestionConsumer::new(cstore.clone());
        consumer
            .migrate()
            .await
            .context("creating the coordination service's inbox")?;
        metrics.service(
            "coordination",
            cstore.db().clone(),
            cstore.outbox().clone(),
            consumer.inbox().clone(),
        );
        tasks.push((
            "coordination relay",
            tokio::spawn(
                banli_eventlog::relay::Relay::new(
                    cstore.db().clone(),
                    cstore.outbox().clone(),
                    bus.clone(),
                )
                .run(RELAY_IDLE, stopped(&rx)),
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
        gates = gates.route(banli_coordination::http::PATHS, &gate);
        coordination.set_gate(gate.clone(), config.consistency_wait());
        let stats = metrics.consumer(banli_coordination::consumer::CONSUMER, gate.applied());
        let notice_stats = metrics.consumer(banli_coordination::notices::CONSUMER, gate.applied());
        tasks.push((
            "coordination consumer",
            tokio::spawn(banli_eventlog::runner::run(
                bus.clone(),
                run_options(
                    banli_coordination::consumer::CONSUMER,
                    banli_coordination::consumer::FILTER,
                ),
                consumer,
                stats,
                stopped(&rx),
            )),
        ));
        tasks.push((
            "coordination notice consumer",
            tokio::spawn(banli_eventlog::runner::run(
                bus.clone(),
                run_options(
                    banli_coordination::notices::CONSUMER,
                    banli_coordination::notices::FILTER,
                ),
                notices,
                notice_stats,
                stopped(&rx),
            )),
        ));
        let checkpoint_stats = metrics.consumer(
            banli_coordination::notices::CHECKPOINT_CONSUMER,
            gate.applied(),
        );
        tasks.push((
            "coordination checkpoint consumer",
            tokio::spawn(banli_eventlog::runner::run(
                bus.clone(),
                run_options(
                    banli_coordination::notices::CHECKPOINT_CONSUMER,
                    banli_coordination::notices::CHECKPOINT_FILTER,
                ),
                checkpoints,
                checkpoint_stats,
                stopped(&rx),
            )),
        ));
        tasks.push((
            "coordination idempotency purge",
            purge(
                cstore.db().clone(),
                cstore.idempotency_keys().clone(),
                config,
            ),
        ));
    }

    // The follow-up service, and with it the audit log.
    let mut followup_gate: Option<Gate> = None;
    let mut followup_directory: Option<banli_directory::Directory> = None;
    let followup_store = if service.runs(Service::Followup) {
        let pool = if postgres {
            main_pool.clone()
        } else {
            let p = Pool::connect(
                &banli_db::sqlite_url_for(&config.data_dir, "followup.db"),
                &service_db,
            )
            .await?;
            pools.push(p.clone());
            p
        };
        let fstore = banli_followup::store::Store::new(pool);
        signals.extend(fstore.signals());
        let inbox =
            banli_followup::consumer::EventConsumer::new(fstore.clone(), profile.reminders.clone())
                .inbox()
                .clone();
        fstore
            .migrate(&inbox)
            .await
            .context("applying the follow-up service's migrations")?;
        let rebuilt = fstore
            .rebuild_facts()
            .await
            .context("rebuilding the follow-up service's metrics rows")?;
        if rebuilt > 0 {
            tracing::info!(
                suggestions = rebuilt,
                "metrics rows rebuilt from the replicas"
            );
        }
        banli_followup::webhook_notices::inbox()
            .migrate(fstore.pool())
            .await
            .context("creating the follow-up service's webhook inbox")?;
        let directory =
            banli_directory::Directory::new("followup", FOLLOWUP_DIRECTORY, fstore.db().clone());
        directory
            .migrate()
            .await
            .context("creating the follow-up service's directory replica")?;
        let auth = directory.authenticator();
        process_auth.get_or_insert_with(|| auth.clone());
        readiness.get_or_insert_with(|| directory.clone());
        followup_directory = Some(directory.clone());
        tasks.push((
            "followup directory consumer",
            tokio::spawn(banli_eventlog::runner::run(
                bus.clone(),
                run_options(FOLLOWUP_DIRECTORY, banli_directory::FILTER),
                directory.clone(),
                metrics.consumer(FOLLOWUP_DIRECTORY, &Default::default()),
                stopped(&rx),
            )),
        ));
        let fstate = banli_followup::app::AppState {
            store: fstore.clone(),
            auth,
            profile: profile.clone(),
            clock,
            names: Some({
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
            }),
        };
        let gate = Gate::new(&["supervision"])
            .watch("suggestion", fstore.pool().clone(), inbox.clone())
            .watch(
                "webhook",
                fstore.pool().clone(),
                banli_followup::webhook_notices::inbox(),
            );
        gates = gates.route(banli_followup::http::PATHS, &gate);
        followup_gate = Some(gate.clone());
        apis.push(banli_followup::http::api(fstate.clone()));
        banli_followup::grpc::add_services(fstate, &mut grpc_routes);
        grpc_names.extend(banli_followup::grpc::NAMES);
        tasks.push((
            "followup relay",
            tokio::spawn(
                banli_eventlog::relay::Relay::new(
                    fstore.db().clone(),
                    fstore.outbox().clone(),
                    bus.clone(),
                )
                .run(RELAY_IDLE, stopped(&rx)),
            ),
        ));
        // Overdue deadlines and commitments, dissatisfied ratings and disabled webhooks raise
        // notices in the assigning office's name: the consumers and timers start once the
        // directory holding it has arrived (at once, unless this database is new).
        let started = FollowupWorkers {
            store: fstore.clone(),
            profile: profile.clone(),
            bus: bus.clone(),
            consumer: metrics.consumer(banli_followup::consumer::CONSUMER, gate.applied()),
            webhooks: metrics.consumer(banli_followup::webhook_notices::CONSUMER, gate.applied()),
            demo_loaded: demo_loaded.clone(),
        };
        let (stop, running) = (stopped(&rx), rx.clone());
        tasks.push((
            "followup workers",
            tokio::spawn(async move {
                if let Some(office) = directory.wait_for_office(stop).await {
                    started.run(office, running).await;
                }
            }),
        ));
        tasks.push((
            "followup idempotency purge",
            purge(
                fstore.db().clone(),
                fstore.idempotency_keys().clone(),
                config,
            ),
        ));
        tracing::info!("follow-up service ready");
        Some(fstore)
    } else {
        None
    };
    if service.runs(Service::Followup) {
        let pool = if postgres {
            main_pool.clone()
        } else {
            let p = Pool::connect(
                &banli_db::sqlite_url_for(&config.data_dir, "audit.db"),
                // A signed checkpoint may be published the moment it commits: the commit must
                // survive a power loss, or the log could sign another root at that size.
                &ConnectOptions {
                    durable: true,
                    ..ConnectOptions::default()
                },
            )
            .await?;
            pools.push(p.clone());
            p
        };
        let astore = banli_auditlog::store::Store::new(pool);
        astore
            .migrate()
            .await
            .context("applying the audit log's migrations")?;
        let signer =
            banli_auditlog::keys::load_or_create(&config.audit_key_path(), &config.audit_origin)?;
        // The audit log runs beside the follow-up service and checks keys against its replica.
        let auth = followup_directory
            .as_ref()
            .context("the follow-up service runs")?
            .authenticator();
        // One sequencer per log: the replica holding its lock opens, feeds and signs it; the
        // API of one standing by answers 503 until it takes over.
        let (slot, handle) = banli_auditlog::LogHandle::standby();
        apis.push(banli_auditlog::http::api(handle.clone(), auth.clone()));
        banli_auditlog::grpc::add_services(handle, auth, &mut grpc_routes);
        grpc_names.extend(banli_auditlog::grpc::NAMES);
        let holder = banli_auditlog::lease::holder_name();
        let mut options = banli_auditlog::LogOptions::new(&config.audit_origin);
        let start = super::sequencer::start(&astore, signer, &mut options, &holder).await?;
        let sequencer = super::sequencer::Sequencer {
            store: astore,
            options,
            holder,
            slot,
            followup: followup_store.clone(),
            checkpoint_events: config.audit_checkpoint_event_interval(),
            bus: bus.clone(),
            consumer: run_options(
                banli_auditlog::consumer::CONSUMER,
                banli_auditlog::consumer::FILTER,
            ),
            stats: metrics.consumer(
                banli_auditlog::consumer::CONSUMER,
                followup_gate
                    .as_ref()
                    .map_or(&Default::default(), |g| g.applied()),
            ),
        };
        let fatal = fatal_tx.clone();
        let rx = rx.clone();
        tasks.push((
            "audit sequencer",
            tokio::spawn(async move {
                if let Err(e) = sequencer.run(start, rx).await {
                    let _ = fatal.send(e).await;
                }
            }),
        ));
    }

    // Other processes' commits on the same PostgreSQL database wake this one's relays, feed
    // streams, webhook deliveries, timers and audit feed (LISTEN/NOTIFY); nothing polls for them.
    if let Some(t) = banli_db::signal::share(&main_pool, signals, stopped(&rx)) {
        tasks.push(("commit signals", t));
    }

    let http = TcpListener::bind(config.http_addr).await.with_context(|| {
        format!(
            "cannot listen on {} for HTTP (is another banli running? set --http-addr)",
            config.http_addr
        )
    })?;
    let grpc = TcpListener::bind(config.grpc_addr).await.with_context(|| {
        format!(
            "cannot listen on {} for gRPC (set --grpc-addr)",
            config.grpc_addr
        )
    })?;
    let http_addr = http.local_addr()?;
    let grpc_addr = grpc.local_addr()?;
    let (scheme, transport) = match (&config.tls_cert, &config.tls_client_ca) {
        (None, _) => ("http", "plain"),
        (Some(_), None) => ("https", "tls"),
        (Some(_), Some(_)) => ("https", "tls+client-certificates"),
    };
    tracing::info!(%http_addr, %grpc_addr, service = ?service, database = %banli_db::redact(&url), bus = if config.nats_url.is_some() { "nats" } else { "embedded" }, transport, "banli is serving");
    println!(
        "banli serving REST on {scheme}://{http_addr} (API page: {scheme}://{http_addr}/docs) and gRPC on {grpc_addr} ({transport})"
    );

    let mut parts = apis.into_iter();
    let (mut api, mut openapi) = parts.next().context("at least one service runs")?;
    for (a, o) in parts {
        api = api.merge(a);
        openapi.merge(o);
    }
    let consistency = banli_api::consistency::ConsistencyLayer::new(
        banli_api::consistency::TokenKey::load_or_create(&config.consistency_key_path())
            .map_err(|e| anyhow::anyhow!("{e}"))
            .context("set consistency_key to a readable key file shared by every process of this deployment, or let the data directory hold one")?,
        config.consistency_wait(),
        gates,
    );
    let mut api = api.layer(consistency.clone());
    if !service.runs(Service::Suggestions) {
        api = api.merge(health_routes(main_pool.clone(), readiness.clone()));
    }
    let process_auth = process_auth.context("at least one service runs")?;
    // Bounded between scrapes: the exporter's histogram samples are folded every 10 s.
    tasks.push(("metrics histogram purge", tokio::spawn(metrics.upkeep())));
    api = api.merge(metrics.router(process_auth.clone()));
    let router = banli_api::http::finish(api, openapi);
    if demo {
        let office = office_agency.context("the suggestions service runs")?;
        tasks.push((
            "demo loader",
            tokio::spawn(load_demo(
                router.clone(),
                store.clone(),
                office,
                clock,
                config.data_dir.clone(),
                http_addr,
                demo_done,
            )),
        ));
    }
    let limits = config.connection_limits();
    let tls = config
        .tls_files()
        .map(|files| banli_api::tls::ServerTls::load(&files))
        .transpose()
        .map_err(anyhow::Error::msg)?;
    let http_task = tokio::spawn({
        let stop = stopped(&rx);
        let tls = tls.clone();
        async move { banli_api::server::serve(http, router, limits, tls, stop).await }
    });
    let grpc_options = banli_api::grpc::GrpcOptions {
        limits,
        call_timeout: std::time::Duration::from_secs(config.grpc_call_timeout_secs),
        calls_per_connection: config.grpc_calls_per_connection,
        reflection: if config.grpc_reflection {
            banli_api::grpc::Reflection::WithKey(process_auth)
        } else {
            banli_api::grpc::Reflection::Off
        },
        tls,
    };
    let grpc_task = tokio::spawn({
        let stop = stopped(&rx);
        async move {
            banli_api::grpc::serve_with(
                grpc_routes,
                &grpc_names,
                grpc,
                consistency,
                grpc_options,
                stop,
            )
            .await
        }
    });
    let fatal = tokio::select! {
        () = shutdown_signal() => None,
        Some(e) = fatal_rx.recv() => {
            tracing::error!(error = %format!("{e:#}"), "stopping");
            Some(e)
        }
    };
    drop(fatal_tx);
    tracing::info!("shutting down: finishing in-flight requests");
    let _ = tx.send(true);
    http_task
        .await
        .context("HTTP server task")?
        .context("HTTP server")?;
    grpc_task
        .await
        .context("gRPC server task")?
        .map_err(|e| anyhow::anyhow!("gRPC server: {e}"))?;
    for (name, task) in tasks {
        if name.ends_with("purge") {
            task.abort();
        }
        if let Err(e) = task.await
            && !e.is_cancelled()
        {
            tracing::warn!(task = name, error = %e, "a background task failed");
        }
    }
    for p in pools {
        p.close().await;
    }
    tracing::info!("stopped");
    match fatal {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// How often an idle relay looks at its outbox again without a signal: a safety net (commits
/// signal the relay, other processes' through PostgreSQL's LISTEN/NOTIFY), and how soon a key
/// made with `banli keys` beside a running embedded server reaches the other services.
const RELAY_IDLE: std::time::Duration = std::time::Duration::from_secs(1);

/// The durable consumers of the directory replicas.
const COORDINATION_DIRECTORY: &str = "coordination-directory";
const FOLLOWUP_DIRECTORY: &str = "followup-directory";

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

fn run_options(name: &str, filter: &str) -> banli_eventlog::runner::RunOptions {
    banli_eventlog::runner::RunOptions {
        name: name.to_owned(),
        filter: Some(filter.to_owned()),
        // The embedded bus wakes a consumer on publish; NATS long-polls. Either way an idle
        // consumer looks again only this often.
        poll: std::time::Duration::from_secs(5),
        batch: 64,
    }
}

/// Forgets expired idempotency keys and reference ids every ten minutes.
fn purge(
    db: banli_db::Db,
    keys: banli_db::idempotency::IdempotencyKeys,
    config: &Config,
) -> tokio::task::JoinHandle<()> {
    let retention = time::Duration::hours(i64::from(config.idempotency_retention_hours));
    let references = time::Duration::days(i64::from(config.reference_retention_days));
    tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(600));
        loop {
            every.tick().await;
            let now = time::OffsetDateTime::now_utc();
            match keys.purge(&db, now - retention, now - references).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(removed = n, "forgot expired idempotency keys"),
                Err(e) => {
                    tracing::warn!(error = %e, "could not purge expired idempotency keys; will retry")
                }
            }
        }
    })
}

/// `/healthz` and `/readyz` for a process that does not run the suggestions service.
/// `/healthz` and `/readyz` of a process without the suggestions service (which has its own):
/// ready once its database answers and its directory replica holds the directory.
fn health_routes(pool: Pool, directory: Option<banli_directory::Directory>) -> axum::Router {
    axum::Router::new()
        .route("/healthz", axum::routing::get(|| async { "ok" }))
        .route(
            "/readyz",
            axum::routing::get(move || {
                let (pool, directory) = (pool.clone(), directory.clone());
                async move {
                    let unavailable = |detail: String| {
                        banli_api::http::Problem(banli_api::AppError::new(
                            banli_api::ErrorCode::Unavailable,
                            detail,
                        ))
                    };
                    if pool.ping().await.is_err() {
                        return Err(unavailable("the database does not answer".into()));
                    }
                    match directory.map(|d| async move { d.waiting_for().await }) {
                        None => Ok("ready"),
                        Some(waiting) => match waiting.await {
                            Ok(None) => Ok("ready"),
                            Ok(Some(what)) => Err(unavailable(format!(
                                "waiting for {what}: start the suggestions service, or check that its events reach this one"
                            ))),
                            Err(_) => Err(unavailable("the directory replica cannot be read".into())),
                        },
                    }
                }
            }),
        )
}

/// On an empty store: one assigning-office key, written to a file only its owner can read.
/// Loads the demo into an empty store, then returns the clock to the system's and lets the
/// timers run. A failure is logged with what to do; the server keeps serving.
async fn load_demo(
    router: axum::Router,
    store: Store,
    office: banli_domain::ids::AgencyId,
    clock: Clock,
    data_dir: std::path::PathBuf,
    http_addr: SocketAddr,
    done: tokio::sync::watch::Sender<bool>,
) {
    let result: Result<()> = async {
        let (key, token) = store
            .create_key(Role::AssigningOffice, Some(office), None, "demo loader")
            .await?;
        let outcome = async {
            if !crate::demo::store_is_empty(&router, &token).await? {
                tracing::warn!("--demo: the store holds suggestions already; the demo loads only into an empty store (start with an empty --data-dir)");
                return Ok(None);
            }
            let started = std::time::Instant::now();
            tracing::info!("--demo: loading {} on a simulated clock (2018–2020)", crate::demo::DEPARTMENT);
            let loaded = crate::demo::load(router.clone(), clock, token.clone()).await?;
            tracing::info!(suggestions = loaded.suggestions, department_id = %loaded.department_id, seconds = started.elapsed().as_secs_f64(), "--demo: loaded");
            Ok::<_, anyhow::Error>(Some(loaded))
        }
        .await;
        clock.set(None);
        store.revoke_key(key.id).await?;
        if let Some(loaded) = outcome? {
            println!(
                "Demo loaded: {} ({} suggestions). Try:\n  curl -H \"Authorization: Bearer $(cat {key})\" 'http://{http_addr}/v1/metrics?agency_id={id}&year=2020'\n  curl -H \"Authorization: Bearer $(cat {key})\" 'http://{http_addr}/v1/ledger?agency_id={id}'",
                crate::demo::DEPARTMENT,
                loaded.suggestions,
                key = data_dir.join(FIRST_KEY_FILE).display(),
                id = loaded.department_id,
            );
        }
        Ok(())
    }
    .await;
    clock.set(None);
    if let Err(e) = result {
        tracing::error!(error = %format!("{e:#}"), "--demo: loading failed; stop the server, remove the data directory and start again with --demo");
    }
    let _ = done.send(true);
}

async fn first_key(store: &Store, data_dir: &Path, http_addr: SocketAddr) -> Result<()> {
    let office = store
        .list_agencies()
        .await?
        .into_iter()
        .find(|a| a.assigning_office)
        .context("the assigning office exists")?;
    let (key, token) = store
        .create_key(
            Role::AssigningOffice,
            Some(office.id),
            None,
            "created on first start",
        )
        .await?;
    banli_db::create_private_dir(data_dir)
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    let path = data_dir.join(FIRST_KEY_FILE);
    write_private(&path, &format!("{token}\n"))?;
    tracing::info!(key_id = %key.id, file = %path.display(), "created the first assigning-office key");
    println!(
        "First start: an assigning-office API key is in {} (readable only by you).",
        path.display()
    );
    println!(
        "Try:  curl -H \"Authorization: Bearer $(cat {})\" http://{http_addr}/v1/agencies",
        path.display()
    );
    Ok(())
}

fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .with_context(|| format!("cannot write {}", path.display()))?;
    f.write_all(text.as_bytes())?;
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
}
