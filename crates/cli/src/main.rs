//! `banli`: the command line of the platform.

mod cmd;
mod config;
mod telemetry;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::{Config, Overrides};

#[derive(Debug, Parser)]
#[command(
    name = "banli",
    version,
    about = "banli (办理): handling deputies' suggestions",
    propagate_version = true
)]
struct Cli {
    #[command(flatten)]
    overrides: Overrides,
    /// Print the effective configuration (secrets redacted) and exit.
    #[arg(long, global = true)]
    dump_config: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Create or upgrade the database (migrations) and the assigning office.
    Init,
    /// The PRC working-day calendar and deadline arithmetic.
    #[command(subcommand)]
    Calendar(cmd::calendar::CalendarCommand),
    /// Show or check rule profiles.
    #[command(subcommand)]
    Profile(cmd::profile::ProfileCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::load(&cli.overrides) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e:#}");
            return ExitCode::from(2);
        }
    };
    if cli.dump_config {
        return match toml::to_string_pretty(&redacted(&config)) {
            Ok(text) => {
                print!("{text}");
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        };
    }
    telemetry::init(&config.log);
    let result = match cli.command {
        Command::Init => run_async(cmd::init::run(&config)),
        Command::Calendar(c) => cmd::calendar::run(&config, c),
        Command::Profile(c) => cmd::profile::run(&config, c),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn redacted(c: &Config) -> Config {
    let mut c = c.clone();
    c.database_url = c
        .database_url
        .map(|u| config::Secret(banli_db::redact(&u.0)));
    c
}

fn run_async<F: std::future::Future<Output = anyhow::Result<()>>>(f: F) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(f)
}
