//! `banli`: the command line of the platform.

mod cmd;
mod config;
mod demo;
mod metrics;
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
    /// Run the platform: REST and gRPC on the embedded default (SQLite in the data directory).
    Serve(ServeArgs),
    /// Create or upgrade the database (migrations) and the assigning office.
    Init,
    /// Create, list and revoke API keys.
    #[command(subcommand)]
    Keys(cmd::keys::KeysCommand),
    /// Create, list and reset accounts for people (the web console's users).
    #[command(subcommand)]
    Users(cmd::users::UsersCommand),
    /// The PRC working-day calendar and deadline arithmetic.
    #[command(subcommand)]
    Calendar(cmd::calendar::CalendarCommand),
    /// Show or check rule profiles.
    #[command(subcommand)]
    Profile(cmd::profile::ProfileCommand),
    /// Verify the audit log, or a checkpoint and a proof with only the public key.
    #[command(subcommand)]
    Audit(cmd::audit::AuditCommand),
    /// Copy the data directory while the server runs: every SQLite file as of one instant and
    /// the key files, with a manifest of checksums (embedded mode; PostgreSQL has pg_dump).
    Backup {
        /// A new or empty directory.
        #[arg(long)]
        to: std::path::PathBuf,
    },
    /// Restore a backup into the data directory (--data-dir), after checking every file; never
    /// overwrites a file.
    Restore {
        /// The directory `banli backup` wrote.
        #[arg(long)]
        from: std::path::PathBuf,
    },
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
    if !matches!(cli.command, Command::Serve(_))
        && let Err(e) = telemetry::init(&config.log, None)
    {
        eprintln!("error: {e:#}");
        return ExitCode::FAILURE;
    }
    let result = match cli.command {
        Command::Serve(args) => {
            let mut config = config;
            if let Some(a) = args.http_addr {
                config.http_addr = a;
            }
            if let Some(a) = args.grpc_addr {
                config.grpc_addr = a;
            }
            if args.tls_cert.is_some() || args.tls_key.is_some() || args.tls_client_ca.is_some() {
                config.tls_cert = args.tls_cert.or(config.tls_cert);
                config.tls_key = args.tls_key.or(config.tls_key);
                config.tls_client_ca = args.tls_client_ca.or(config.tls_client_ca);
                if let Err(e) = config.validate() {
                    eprintln!("error: {e:#}");
                    return ExitCode::FAILURE;
                }
            }
            run_async(async {
                let otlp = config.otlp_endpoint.as_ref().map(|e| telemetry::Otlp {
                    endpoint: e.clone(),
                    service: args.service.process_name().to_owned(),
                });
                let telemetry = telemetry::init(&config.log, otlp.as_ref())?;
                let r = cmd::serve::run(&config, args.service, args.demo).await;
                telemetry.shutdown().await;
                r
            })
        }
        Command::Init => run_async(cmd::init::run(&config)),
        Command::Keys(c) => run_async(cmd::keys::run(&config, c)),
        Command::Users(c) => run_async(cmd::users::run(&config, c)),
        Command::Calendar(c) => cmd::calendar::run(&config, c),
        Command::Profile(c) => cmd::profile::run(&config, c),
        Command::Audit(c) => run_async(cmd::audit::run(&config, c)),
        Command::Backup { to } => run_async(cmd::backup::backup(&config, &to)),
        Command::Restore { from } => run_async(cmd::backup::restore(&config, &from)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            match e.downcast_ref::<cmd::audit::AuditFailure>() {
                Some(f) => ExitCode::from(f.exit as u8),
                None => ExitCode::FAILURE,
            }
        }
    }
}

#[derive(Debug, clap::Args)]
struct ServeArgs {
    /// Which service to run: all of them in one process (the default), or one per process
    /// (then with PostgreSQL and --nats-url).
    #[arg(long, env = "BANLI_SERVICE", value_enum, default_value = "all")]
    service: cmd::serve::Service,
    /// REST listen address [default: 127.0.0.1:8080].
    #[arg(long, env = "BANLI_HTTP_ADDR")]
    http_addr: Option<std::net::SocketAddr>,
    /// gRPC listen address [default: 127.0.0.1:50051].
    #[arg(long, env = "BANLI_GRPC_ADDR")]
    grpc_addr: Option<std::net::SocketAddr>,
    /// Serve REST and gRPC over TLS with this certificate chain (PEM; needs --tls-key).
    #[arg(long, env = "BANLI_TLS_CERT")]
    tls_cert: Option<std::path::PathBuf>,
    /// The private key (PEM) of --tls-cert.
    #[arg(long, env = "BANLI_TLS_KEY")]
    tls_key: Option<std::path::PathBuf>,
    /// Require client certificates issued by these CAs (PEM).
    #[arg(long, env = "BANLI_TLS_CLIENT_CA")]
    tls_client_ca: Option<std::path::PathBuf>,
    /// Load the source report's department (湖南省工业和信息化厅, 2018–2020) into an empty store,
    /// through the services' API on a simulated clock, then serve as usual.
    #[arg(long)]
    demo: bool,
}

fn redacted(c: &Config) -> Config {
    let mut c = c.clone();
    c.database_url = c
        .database_url
        .map(|u| config::Secret(banli_db::redact(&u.0)));
    c.nats_url = c.nats_url.map(|u| config::Secret(banli_db::redact(&u.0)));
    c
}

fn run_async<F: std::future::Future<Output = anyhow::Result<()>>>(f: F) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(f)
}
