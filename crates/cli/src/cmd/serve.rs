//! `banli serve`: the whole platform in one process on the embedded default (or PostgreSQL).

use std::net::SocketAddr;
use std::path::Path;

use anyhow::{Context, Result};
use banli_db::{ConnectOptions, Pool};
use banli_domain::Role;
use banli_suggestions::app::{App, Clock};
use banli_suggestions::store::Store;
use tokio::net::TcpListener;

use crate::config::Config;

/// The file the first start writes the assigning office's key to.
pub const FIRST_KEY_FILE: &str = "assigning-office.key";

pub async fn run(config: &Config) -> Result<()> {
    let url = config.database_url();
    let pool = Pool::connect(&url, &ConnectOptions::default()).await?;
    let store = Store::new(pool.clone());
    store
        .migrate()
        .await
        .context("applying the suggestions service's migrations")?;
    let office = super::init::ensure_assigning_office(&store).await?;
    if !store.has_keys().await? {
        first_key(&store, &config.data_dir, config.http_addr).await?;
    }
    let app = App::new(
        store,
        config.rule_profile()?,
        config.calendar()?,
        Clock::System,
    );

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
    tracing::info!(%http_addr, %grpc_addr, database = %banli_db::redact(&url), assigning_office = %office.id, profile = %app.profile().name, "banli is serving");
    println!(
        "banli serving REST on http://{http_addr} (API page: http://{http_addr}/docs) and gRPC on {grpc_addr}"
    );

    let retention = time::Duration::hours(i64::from(config.idempotency_retention_hours));
    let purge_store = app.store().clone();
    let purge = tokio::spawn(async move {
        let mut every = tokio::time::interval(std::time::Duration::from_secs(600));
        loop {
            every.tick().await;
            match purge_store
                .purge_idempotency(time::OffsetDateTime::now_utc() - retention)
                .await
            {
                Ok(0) => {}
                Ok(n) => tracing::info!(removed = n, "forgot expired idempotency keys"),
                Err(e) => {
                    tracing::warn!(error = %e, "could not purge expired idempotency keys; will retry")
                }
            }
        }
    });

    let shutdown = shutdown_signal();
    let (tx, rx) = tokio::sync::watch::channel(false);
    // The embedded event bus: the outbox relay moves committed events onto it. The other
    // services subscribe to it as they join this process.
    let bus = banli_eventlog::Bus::Embedded(banli_eventlog::EmbeddedBus::new(&[]));
    let mut relay_rx = rx.clone();
    let relay = tokio::spawn(banli_suggestions::relay::relay(app.store(), bus).run(
        std::time::Duration::from_millis(50),
        async move {
            let _ = relay_rx.wait_for(|stop| *stop).await;
        },
    ));
    let router =
        banli_suggestions::http::router(app.clone(), banli_suggestions::http::DEFAULT_BODY_LIMIT);
    let mut http_rx = rx.clone();
    let http_task = tokio::spawn(async move {
        axum::serve(http, router)
            .with_graceful_shutdown(async move {
                let _ = http_rx.wait_for(|stop| *stop).await;
            })
            .await
    });
    let mut grpc_rx = rx;
    let grpc_task = tokio::spawn(banli_suggestions::grpc::serve(app, grpc, async move {
        let _ = grpc_rx.wait_for(|stop| *stop).await;
    }));
    shutdown.await;
    tracing::info!("shutting down: finishing in-flight requests");
    purge.abort();
    let _ = tx.send(true);
    http_task
        .await
        .context("HTTP server task")?
        .context("HTTP server")?;
    let _ = relay.await;
    grpc_task
        .await
        .context("gRPC server task")?
        .map_err(|e| anyhow::anyhow!("gRPC server: {e}"))?;
    pool.close().await;
    tracing::info!("stopped");
    Ok(())
}

/// On an empty store: one assigning-office key, written to a file only its owner can read.
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
