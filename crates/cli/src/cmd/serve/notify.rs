//! The notification service in a `banli serve` process, beside the follow-up service: its own
//! database, the follow-up service's directory replica for keys and agencies' names, its
//! consumer of suggestion events and its deliverer.

use anyhow::Result;

use super::{Deps, Process, run_options};

/// Migrates and adds the notification service's API, consumer and deliverer to `process`.
pub(super) async fn build(
    deps: &Deps<'_>,
    process: &mut Process,
    directory: &banli_directory::Directory,
) -> Result<()> {
    let (config, bus) = (deps.config, &deps.bus);
    let pool = deps
        .own_pool(process, "notify.db", &deps.service_db)
        .await?;
    let store = banli_notify::store::Store::new(pool);
    let names: banli_notify::consumer::AgencyNames = {
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
    let (smtp, sms) = config.notify_channels()?;
    let channels = match (&smtp, &sms) {
        (Some(_), Some(_)) => "inbox, e-mail and SMS",
        (Some(_), None) => "inbox and e-mail (no SMS gateway: notify.sms_url)",
        (None, Some(_)) => "inbox and SMS (no SMTP server: notify.smtp_url)",
        (None, None) => "inbox only (set notify.smtp_url and notify.sms_url for e-mail and SMS)",
    };
    let built = banli_notify::service::build(banli_notify::service::Deps {
        store: store.clone(),
        auth: directory.authenticator(),
        names: Some(names),
        smtp,
        sms,
        policy: Default::default(),
    })
    .await?;
    built.add_grpc(&mut process.grpc_routes);
    process.grpc_names.extend(banli_notify::grpc::NAMES);
    let banli_notify::service::Built {
        rest,
        consumer,
        inbox,
        deliverer,
        ..
    } = built;
    process.apis.push(rest);
    process
        .metrics
        .consuming_service("notify", store.db().clone(), vec![inbox]);
    process.tasks.push((
        "notify consumer",
        tokio::spawn(banli_eventlog::runner::run(
            bus.clone(),
            run_options(
                banli_notify::consumer::CONSUMER,
                banli_notify::consumer::FILTER,
            ),
            consumer,
            process
                .metrics
                .consumer(banli_notify::consumer::CONSUMER, &Default::default()),
            deps.stopped(),
        )),
    ));
    process.tasks.push((
        "notify deliverer",
        tokio::spawn(deliverer.run(deps.stopped())),
    ));
    tracing::info!(channels, "notification service ready");
    Ok(())
}
