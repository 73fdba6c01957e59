//! `banli serve`: the whole platform in one process on the embedded default (or PostgreSQL).

use anyhow::{Context, Result, bail};
use banli_db::{ConnectOptions, Pool};
use banli_eventlog::consistency::Gate;
use banli_suggestions::app::Clock;
use tokio::net::TcpListener;

use crate::config::Config;

/// The file the first start writes the assigning office's key to.
pub const FIRST_KEY_FILE: &str = "assigning-office.key";
/// The first start's account for the office's people, and the file with its one-time
/// set-password token (readable only by its owner).
pub const FIRST_USER: &str = "office";
pub const FIRST_USER_FILE: &str = "assigning-office.user";

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

mod audit;
mod coordination;
mod followup;
mod notify;
mod suggestions;

/// What the process gives each service it runs.
struct Deps<'a> {
    config: &'a Config,
    /// Every service on one PostgreSQL server (each its own database or the same one); else each
    /// service has its own SQLite file in the data directory.
    postgres: bool,
    /// The process's database: the suggestions service's, and every service's on PostgreSQL.
    main_pool: Pool,
    service_db: ConnectOptions,
    bus: banli_eventlog::Bus,
    profile: banli_domain::RuleProfile,
    calendar: banli_calendar::Calendar,
    clock: Clock,
    stop: tokio::sync::watch::Receiver<bool>,
    /// Whether the demo is loaded (or none is loading): the follow-up timers wait for it.
    demo_loaded: tokio::sync::watch::Receiver<bool>,
}

impl Deps<'_> {
    /// A service's own database: the process's on PostgreSQL, else its own SQLite file `file`
    /// in the data directory (kept open in `process` until it stops).
    async fn own_pool(
        &self,
        process: &mut Process,
        file: &str,
        options: &ConnectOptions,
    ) -> Result<Pool> {
        if self.postgres {
            return Ok(self.main_pool.clone());
        }
        let p = Pool::connect(
            &banli_db::sqlite_url_for(&self.config.data_dir, file),
            options,
        )
        .await?;
        process.pools.push(p.clone());
        Ok(p)
    }

    /// Completes when the process stops.
    fn stopped(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.stop.clone();
        async move {
            let _ = rx.wait_for(|stop| *stop).await;
        }
    }
}

/// What the services running in this process add to it: their APIs, background tasks, pools,
/// commit signals, read-your-writes gates and metrics, and how the process checks keys and
/// readiness outside the services' own APIs.
#[derive(Default)]
struct Process {
    apis: Vec<(axum::Router, utoipa::openapi::OpenApi)>,
    grpc_routes: tonic::service::RoutesBuilder,
    grpc_names: Vec<&'static str>,
    tasks: Vec<Task>,
    pools: Vec<Pool>,
    /// What each store raises after its commits: carried between processes on PostgreSQL.
    signals: Vec<banli_db::signal::Signal>,
    /// Read-your-writes: each service's gate, by the paths it answers.
    gates: banli_api::consistency::Gates,
    metrics: crate::metrics::Metrics,
    /// How this process checks API keys outside a service's own API (metrics, reflection): the
    /// suggestions service's keys when it runs here, else the first replica of the directory.
    auth: Option<banli_api::Authenticator>,
    /// What the process waits for before it is ready (a service's directory replica).
    readiness: Option<banli_directory::Directory>,
}

impl Process {
    /// Sends requests under `prefixes` through `gate`.
    fn route(&mut self, prefixes: &[&'static str], gate: &Gate) {
        self.gates = std::mem::take(&mut self.gates).route(prefixes, gate);
    }
}

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
    // Keys (webhook secrets, audit signing, consistency tokens) and the embedded databases live
    // in the data directory, in every mode: made here (0700) when it does not exist yet.
    banli_db::create_private_dir(&config.data_dir).with_context(|| {
        format!(
            "cannot create the data directory {} (set --data-dir to a writable place)",
            config.data_dir.display()
        )
    })?;
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
            banli_notify::consumer::CONSUMER,
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
    // A task whose failure must stop the process (the audit log's sequencer losing its lock).
    let (fatal_tx, mut fatal_rx) = tokio::sync::mpsc::channel::<anyhow::Error>(1);
    // The services' own files: every commit durable when configured (their outboxes hold what
    // is published to other services and agencies); the audit log's always.
    let service_db = ConnectOptions {
        durable: config.sqlite_durable_commits,
        ..ConnectOptions::default()
    };
    let main_pool = Pool::connect(&url, &service_db).await?;
    let deps = Deps {
        config,
        postgres,
        main_pool: main_pool.clone(),
        service_db,
        bus,
        profile: config.rule_profile()?,
        calendar: config.calendar()?,
        clock,
        stop: rx.clone(),
        demo_loaded,
    };
    let mut process = Process::default();
    process.pools.push(main_pool.clone());

    // Each service builds itself into the process; no service reads another's tables.
    let suggestions = if service.runs(Service::Suggestions) {
        Some(suggestions::build(&deps, &mut process).await?)
    } else {
        None
    };
    if service.runs(Service::Coordination) {
        coordination::build(&deps, &mut process).await?;
    }
    if service.runs(Service::Followup) {
        // The follow-up service, and with it the audit log.
        let followup = followup::build(&deps, &mut process).await?;
        notify::build(&deps, &mut process, &followup.directory).await?;
        audit::build(&deps, &mut process, &followup, fatal_tx.clone()).await?;
    }
    let Process {
        apis,
        grpc_routes,
        grpc_names,
        mut tasks,
        pools,
        signals,
        gates,
        metrics,
        auth: process_auth,
        readiness,
    } = process;

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
    let api_router = banli_api::http::finish(api, openapi);
    let limits = config.connection_limits();
    let tls = config
        .tls_files()
        .map(|files| banli_api::tls::ServerTls::load(&files))
        .transpose()
        .map_err(anyhow::Error::msg)?;
    // The web console, where the suggestions service (and its accounts) runs: its pages call
    // this process's API in-process as the signed-in person.
    let router = match &suggestions {
        Some(s) => banli_console::mount(
            api_router.clone(),
            s.app.clone(),
            banli_console::ConsoleOptions {
                secure_cookies: tls.is_some()
                    || config
                        .public_url
                        .as_deref()
                        .is_some_and(|u| u.starts_with("https://")),
                trusted_proxies: config.trusted_proxies.clone(),
            },
        ),
        None => api_router.clone(),
    };
    if demo {
        let s = suggestions.context("the suggestions service runs")?;
        tasks.push((
            "demo loader",
            tokio::spawn(suggestions::load_demo(
                api_router.clone(),
                s.store,
                s.office,
                clock,
                config.data_dir.clone(),
                http_addr,
                demo_done,
            )),
        ));
    }
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
