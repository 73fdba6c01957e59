//! `banli users`: accounts for people (the web console's users) beside API keys for systems.
//! A new account has no password: the command prints a one-time set-password token (and the
//! path of the console's page that takes it), valid for 72 hours.

use anyhow::Result;
use banli_domain::Role;
use banli_domain::suggestion::SignerPosition;
use banli_suggestions::app::{App, Clock};
use clap::Subcommand;
use uuid::Uuid;

use crate::config::Config;

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create a person's account; prints its one-time set-password token.
    Create {
        /// 3 to 64 characters: letters, digits, `.`, `_`, `-` or `@`.
        #[arg(long)]
        username: String,
        /// assigning_office, agency_admin, handler, leader, deputy or auditor.
        #[arg(long)]
        role: Role,
        /// The agency (id or exact name) for agency_admin, handler and leader accounts.
        #[arg(long)]
        agency: Option<String>,
        /// The deputy id for a deputy's account.
        #[arg(long)]
        deputy: Option<Uuid>,
        /// The position the person holds in the agency (the steps of its reply approval chain
        /// they decide): principal_head, authorized_leader, division_head or staff.
        #[arg(long)]
        position: Option<SignerPosition>,
    },
    /// Issue a new one-time set-password token: the old password stops working and a lockout
    /// is lifted.
    ResetPassword {
        #[arg(long)]
        username: String,
    },
    /// List accounts (never their passwords).
    List,
}

pub async fn run(config: &Config, cmd: UsersCommand) -> Result<()> {
    let (pool, store) = super::keys::open_store(config).await?;
    let app = App::new(
        store.clone(),
        config.rule_profile()?,
        config.calendar()?,
        Clock::System,
    );
    let result = match cmd {
        UsersCommand::Create {
            username,
            role,
            agency,
            deputy,
            position,
        } => {
            let agency_id = super::keys::agency_by_id_or_name(&store, agency).await?;
            let (user, token) = app
                .create_user(&username, role, agency_id, deputy, position)
                .await
                .map_err(|e| anyhow::anyhow!("{}", e.detail))?;
            println!("created user {} (role {})", user.username, user.role);
            print_token(&token, &config.console_url());
            Ok(())
        }
        UsersCommand::ResetPassword { username } => {
            let token = app
                .reset_password(&username)
                .await
                .map_err(|e| anyhow::anyhow!("{}", e.detail))?;
            println!("the password of {username} is reset; the old one no longer works");
            print_token(&token, &config.console_url());
            Ok(())
        }
        UsersCommand::List => {
            for u in store.list_users().await? {
                let bound = u
                    .agency_id
                    .map(|a| a.to_string())
                    .or(u.deputy_id.map(|d| d.to_string()))
                    .unwrap_or_else(|| "-".into());
                let state = if u.disabled_at.is_some() {
                    "disabled"
                } else if u.password_hash.is_none() {
                    "password not set"
                } else if u
                    .locked_until
                    .is_some_and(|t| t > time::OffsetDateTime::now_utc())
                {
                    "locked"
                } else {
                    "active"
                };
                println!("{}\t{}\t{bound}\t{state}", u.username, u.role);
            }
            Ok(())
        }
    };
    pool.close().await;
    result
}

fn print_token(token: &str, console: &str) {
    println!(
        "the person sets a password once at {console}/set-password?token={token} ; the token (last line) is valid for 72 hours and shown once:"
    );
    println!("{token}");
}
