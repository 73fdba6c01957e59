//! `banli init`: migrations and the assigning office.

use anyhow::{Context, Result};
use banli_db::{ConnectOptions, Pool};
use banli_domain::ids::AgencyId;
use banli_suggestions::store::{Agency, Store};

use crate::config::Config;

pub const ASSIGNING_OFFICE_NAME: &str = "Assigning office";

pub async fn run(config: &Config) -> Result<()> {
    let url = config.database_url();
    let pool = Pool::connect(&url, &ConnectOptions::default()).await?;
    let store = Store::new(pool.clone());
    store
        .migrate()
        .await
        .context("applying the suggestions service's migrations")?;
    let office = ensure_assigning_office(&store).await?;
    println!(
        "database  {} ({:?}), migrations applied",
        banli_db::redact(&url),
        pool.backend()
    );
    println!("assigning office  {} ({})", office.name, office.id);
    pool.close().await;
    Ok(())
}

/// The assigning office exists from the first start.
pub async fn ensure_assigning_office(store: &Store) -> Result<Agency> {
    if let Some(a) = store
        .list_agencies()
        .await?
        .into_iter()
        .find(|a| a.assigning_office)
    {
        return Ok(a);
    }
    let office = Agency {
        id: AgencyId::new(),
        name: ASSIGNING_OFFICE_NAME.to_owned(),
        assigning_office: true,
    };
    store.create_agency(&office).await?;
    tracing::info!(agency_id = %office.id, "created the assigning office");
    Ok(office)
}
