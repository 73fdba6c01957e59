//! The audit log in a `banli serve` process, beside the follow-up service: its store, signing
//! key, API and the sequencer (one per log; a replica without the lock stands by).

use anyhow::{Context, Result};
use banli_db::ConnectOptions;

use super::followup::Followup;
use super::{Deps, Process, run_options};

/// Adds the audit log's API and sequencer to `process`; a sequencer failure is sent on `fatal`.
pub(super) async fn build(
    deps: &Deps<'_>,
    process: &mut Process,
    followup: &Followup,
    fatal: tokio::sync::mpsc::Sender<anyhow::Error>,
) -> Result<()> {
    let (config, bus) = (deps.config, &deps.bus);
    let pool = deps
        .own_pool(
            process,
            "audit.db",
            // A signed checkpoint may be published the moment it commits: the commit must
            // survive a power loss, or the log could sign another root at that size.
            &ConnectOptions {
                durable: true,
                ..ConnectOptions::default()
            },
        )
        .await?;
    let astore = banli_auditlog::store::Store::new(pool);
    astore
        .migrate()
        .await
        .context("applying the audit log's migrations")?;
    let signer =
        banli_auditlog::keys::load_or_create(&config.audit_key_path(), &config.audit_origin)?;
    // The audit log runs beside the follow-up service and checks keys against its replica.
    let auth = followup.directory.authenticator();
    // One sequencer per log: the replica holding its lock opens, feeds and signs it; the
    // API of one standing by answers 503 until it takes over.
    let (slot, handle) = banli_auditlog::LogHandle::standby();
    process
        .apis
        .push(banli_auditlog::http::api(handle.clone(), auth.clone()));
    banli_auditlog::grpc::add_services(handle, auth, &mut process.grpc_routes);
    process.grpc_names.extend(banli_auditlog::grpc::NAMES);
    let holder = banli_auditlog::lease::holder_name();
    let mut options = banli_auditlog::LogOptions::new(&config.audit_origin);
    let start = crate::cmd::sequencer::start(&astore, signer, &mut options, &holder).await?;
    let sequencer = crate::cmd::sequencer::Sequencer {
        store: astore,
        options,
        holder,
        slot,
        followup: Some(followup.store.clone()),
        checkpoint_events: config.audit_checkpoint_event_interval(),
        bus: bus.clone(),
        consumer: run_options(
            banli_auditlog::consumer::CONSUMER,
            banli_auditlog::consumer::FILTER,
        ),
        stats: process
            .metrics
            .consumer(banli_auditlog::consumer::CONSUMER, followup.gate.applied()),
    };
    let rx = deps.stop.clone();
    process.tasks.push((
        "audit sequencer",
        tokio::spawn(async move {
            if let Err(e) = sequencer.run(start, rx).await {
                let _ = fatal.send(e).await;
            }
        }),
    ));
    Ok(())
}
