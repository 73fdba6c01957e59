//! `banli keys`: create, list and revoke API keys against the configured database.

use anyhow::{Result, bail};
use banli_db::{ConnectOptions, Pool};
use banli_domain::Role;
use banli_domain::suggestion::SignerPosition;
use banli_suggestions::app::{App, Clock};
use banli_suggestions::store::Store;
use clap::Subcommand;
use uuid::Uuid;

use crate::config::Config;

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Create a key; the token is printed once, as the last line.
    Create {
        /// assigning_office, agency_admin, handler, leader, deputy or auditor.
        #[arg(long)]
        role: Role,
        /// The agency (id or exact name) for agency_admin, handler and leader keys.
        #[arg(long)]
        agency: Option<String>,
        /// The deputy id for deputy keys.
        #[arg(long)]
        deputy: Option<Uuid>,
        /// A note for whom the key is.
        #[arg(long, default_value = "")]
        label: String,
        /// Bind the key to a client certificate: a PEM file (its first certificate) or the
        /// certificate's SHA-256 fingerprint in hex. The key then works only over TLS with that
        /// certificate (the server needs `tls_client_ca`).
        #[arg(long, value_name = "FILE|SHA256")]
        client_cert: Option<String>,
        /// The position the key's holder has in the agency, for its reply approval chain
        /// (内部审批): division_head, authorized_leader or principal_head (staff drafts).
        #[arg(long)]
        position: Option<SignerPosition>,
    },
    /// List keys (never their tokens).
    List,
    /// Revoke a key at once.
    Revoke { id: Uuid },
}

pub async fn run(config: &Config, cmd: KeysCommand) -> Result<()> {
    let (pool, store) = open_store(config).await?;
    let result = match cmd {
        KeysCommand::Create {
            role,
            agency,
            deputy,
            label,
            client_cert,
            position,
        } => {
            let client_cert = client_cert
                .as_deref()
                .map(banli_api::tls::fingerprint_of)
                .transpose()
                .map_err(anyhow::Error::msg)?;
            let agency_id = agency_by_id_or_name(&store, agency).await?;
            let app = App::new(
                store.clone(),
                config.rule_profile()?,
                config.calendar()?,
                Clock::System,
            );
            let (agency_id, deputy_id) = app
                .key_binding(role, agency_id, deputy)
                .await
                .map_err(|e| anyhow::anyhow!("{}", e.detail))?;
            App::key_position(role, position).map_err(|e| anyhow::anyhow!("{}", e.detail))?;
            let (key, token) = store
                .create_bound_key(role, agency_id, deputy_id, &label, client_cert, position)
                .await?;
            println!(
                "created key {} (role {}{})",
                key.id,
                key.role,
                agency_id
                    .map(|a| format!(", agency {a}"))
                    .or(deputy_id.map(|d| format!(", deputy {d}")))
                    .unwrap_or_default()
            );
            if let Some(p) = key.position {
                println!("holding the position {} in its agency", p.as_str());
            }
            if let Some(fp) = &key.client_cert {
                println!("bound to the client certificate with SHA-256 {fp}");
            }
            // The running relay publishes the key to the other services' replicas now.
            banli_db::signal::notify_once(store.pool(), store.outbox().signal()).await;
            println!("the token below is shown once; keep it secret:");
            println!("{token}");
            Ok(())
        }
        KeysCommand::List => {
            for k in store.list_keys().await? {
                let bound = k
                    .agency_id
                    .map(|a| a.to_string())
                    .or(k.deputy_id.map(|d| d.to_string()))
                    .unwrap_or_else(|| "-".into());
                let status = if k.revoked_at.is_some() {
                    "revoked"
                } else {
                    "active"
                };
                let cert = if k.client_cert.is_some() {
                    "cert-bound"
                } else {
                    "-"
                };
                println!(
                    "{}  {:<16}  {:<36}  {:<7}  {:<10}  {}",
                    k.id, k.role, bound, status, cert, k.label
                );
            }
            Ok(())
        }
        KeysCommand::Revoke { id } => {
            let k = store.revoke_key(id).await?;
            banli_db::signal::notify_once(store.pool(), store.outbox().signal()).await;
            println!("revoked key {} ({})", k.id, k.role);
            Ok(())
        }
    };
    pool.close().await;
    result
}

/// The suggestions service's store for a command-line tool: connected (two connections),
/// migrated, with the assigning office.
pub(crate) async fn open_store(config: &Config) -> Result<(Pool, Store)> {
    let pool = Pool::connect(
        &config.database_url(),
        &ConnectOptions {
            max_connections: 2,
            ..Default::default()
        },
    )
    .await?;
    let store = Store::new(pool.clone());
    store.migrate().await?;
    super::init::ensure_assigning_office(&store).await?;
    Ok((pool, store))
}

/// An agency given on the command line by its id or its exact name.
pub(crate) async fn agency_by_id_or_name(
    store: &Store,
    agency: Option<String>,
) -> Result<Option<Uuid>> {
    let Some(a) = agency else {
        return Ok(None);
    };
    if let Ok(id) = Uuid::try_parse(&a) {
        return Ok(Some(id));
    }
    match store
        .list_agencies()
        .await?
        .into_iter()
        .find(|x| x.name == a)
    {
        Some(found) => Ok(Some(found.id.0)),
        None => bail!("no agency is named `{a}`; `banli` lists agencies at GET /v1/agencies"),
    }
}
