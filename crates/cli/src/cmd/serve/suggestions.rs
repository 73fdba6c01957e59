//! The suggestions service in a `banli serve` process: it owns the directory and the API keys
//! and publishes them (`directory.*` events) to the other services' replicas.

use std::net::SocketAddr;
use std::path::Path;

use anyhow::{Context, Result};
use banli_domain::Role;
use banli_domain::ids::AgencyId;
use banli_suggestions::app::Clock;
use banli_suggestions::store::Store;

use super::{
    Deps, FIRST_KEY_FILE, FIRST_USER, FIRST_USER_FILE, Process, RELAY_IDLE, purge, run_options,
};

/// What the rest of the process needs of the suggestions service.
pub(super) struct Suggestions {
    pub store: Store,
    /// The application the web console signs people in with.
    pub app: banli_suggestions::app::App,
    /// The assigning office's agency.
    pub office: AgencyId,
}

/// The document store the configuration names (created when missing).
pub(super) async fn documents(
    config: &crate::config::Config,
) -> Result<banli_documents::Documents> {
    let dir = config.documents_path();
    let store = match &config.documents_s3 {
        None => banli_documents::BlobStore::open(&dir).await.with_context(|| {
            format!(
                "opening the document store at {} (documents_dir); check that it exists and is writable",
                dir.display()
            )
        })?,
        Some(s3) => {
            let client = banli_documents::s3::S3::new(banli_documents::s3::S3Config {
                endpoint: s3.endpoint.clone(),
                bucket: s3.bucket.clone(),
                region: s3.region.clone(),
                prefix: s3.prefix.clone(),
                access_key: s3.access_key.0.clone(),
                secret_key: s3.secret_key.0.clone(),
            })?;
            banli_documents::BlobStore::s3(&dir, client)
                .await
                .with_context(|| {
                    format!(
                        "opening the document bucket {} at {} ([documents_s3]); check the endpoint, the bucket and the keys",
                        s3.bucket, s3.endpoint
                    )
                })?
        }
    };
    tracing::info!(location = %store.location(), max_bytes = config.max_document_bytes, "document store open");
    Ok(banli_documents::Documents::new(
        store,
        config.max_document_bytes,
        config.document_upload_bytes_per_hour,
    ))
}

/// Migrates, makes the first key, publishes the directory, and adds the service's APIs,
/// relay, consumer and purge to `process`.
pub(super) async fn build(deps: &Deps<'_>, process: &mut Process) -> Result<Suggestions> {
    let (config, bus) = (deps.config, &deps.bus);
    let store = Store::new(deps.main_pool.clone());
    let built = banli_suggestions::service::build(banli_suggestions::service::Deps {
        store: store.clone(),
        bus: bus.clone(),
        profile: deps.profile.clone(),
        calendar: deps.calendar.clone(),
        clock: deps.clock,
        body_limit: banli_suggestions::http::DEFAULT_BODY_LIMIT,
        documents: documents(config).await?,
    })
    .await?;
    let suggestions = built.app.clone();
    let suggestions_app = built.app.clone();
    let office = crate::cmd::init::ensure_assigning_office(&store).await?;
    if !store.has_keys().await? {
        first_key(
            &store,
            &config.data_dir,
            config.http_addr,
            &config.console_url(),
        )
        .await?;
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
    process.auth = Some(suggestions.authenticator());
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
    process.tasks.push((
        "suggestions review sweeper",
        tokio::spawn(suggestions.clone().review_sweeper(
            banli_domain::Actor::assigning_office(office.id),
            std::time::Duration::from_secs(60),
            deps.stopped(),
        )),
    ));
    built.add_grpc(&mut process.grpc_routes);
    process.grpc_names.extend(banli_suggestions::grpc::NAMES);
    let banli_suggestions::service::Built {
        rest,
        gate,
        consumer,
        relay,
        ..
    } = built;
    process.apis.push(rest);
    process.metrics.service(
        "suggestions",
        store.db().clone(),
        store.outbox().clone(),
        vec![consumer.inbox().clone()],
    );
    process.route(banli_suggestions::http::PATHS, &gate);
    let stats = process
        .metrics
        .consumer(banli_suggestions::consumer::CONSUMER, gate.applied());
    process.signals.push(store.outbox().signal().clone());
    process.tasks.push((
        "suggestions relay",
        tokio::spawn(relay.run(RELAY_IDLE, deps.stopped())),
    ));
    process.tasks.push((
        "suggestions consumer",
        tokio::spawn(banli_eventlog::runner::run(
            bus.clone(),
            run_options(
                banli_suggestions::consumer::CONSUMER,
                banli_suggestions::consumer::FILTER,
            ),
            consumer,
            stats,
            deps.stopped(),
        )),
    ));
    process.tasks.push((
        "suggestions idempotency purge",
        purge(store.db().clone(), store.idempotency_keys().clone(), config),
    ));
    Ok(Suggestions {
        store,
        app: suggestions_app,
        office: office.id,
    })
}

/// Loads the demo into an empty store, then returns the clock to the system's and lets the
/// timers run. A failure is logged with what to do; the server keeps serving.
pub(super) async fn load_demo(
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

/// On an empty store: one assigning-office key, written to a file only its owner can read.
async fn first_key(
    store: &Store,
    data_dir: &Path,
    http_addr: SocketAddr,
    console: &str,
) -> Result<()> {
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
    // And an account for the office's people, with its one-time set-password token beside it.
    let (secret, hash) = banli_suggestions::app::users::new_setup_token();
    let user = store
        .create_user(
            FIRST_USER,
            Role::AssigningOffice,
            Some(office.id),
            None,
            None,
            &hash,
            time::OffsetDateTime::now_utc() + banli_suggestions::app::SETUP_TTL,
        )
        .await?;
    let user_path = data_dir.join(FIRST_USER_FILE);
    write_private(
        &user_path,
        &format!(
            "username: {FIRST_USER}\nset the password at: {console}/set-password?token={secret}\none-time set-password token (72 hours; `banli users reset-password --username {FIRST_USER}` issues a new one):\n{secret}\n"
        ),
    )?;
    tracing::info!(user_id = %user.id, file = %user_path.display(), "created the first assigning-office user");
    println!(
        "First start: an assigning-office API key is in {} (readable only by you).",
        path.display()
    );
    println!(
        "Try:  curl -H \"Authorization: Bearer $(cat {})\" http://{http_addr}/v1/agencies",
        path.display()
    );
    println!(
        "The web console is at {console}/ — the office account's one-time set-password link is in {}.",
        user_path.display()
    );
    Ok(())
}

pub(super) fn write_private(path: &Path, text: &str) -> Result<()> {
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
