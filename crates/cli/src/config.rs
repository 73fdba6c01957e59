//! Typed configuration, loaded once: defaults → TOML file (`--config`) → `BANLI_*` environment
//! → command-line flags. Unknown keys in the file are refused with the file and the key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where the embedded database, keys and generated secrets live.
    pub data_dir: PathBuf,
    /// `postgres://…` switches the backend; empty means SQLite in `data_dir`.
    pub database_url: Option<Secret>,
    /// `nats://…` carries events between the services over NATS JetStream; empty means the
    /// embedded bus (every service in one process).
    pub nats_url: Option<Secret>,
    /// The JetStream stream holding the events, and the subject prefix it covers
    /// (`<prefix>.>`); change both to run several deployments on one NATS.
    pub nats_stream: String,
    pub nats_subject_prefix: String,
    /// How many days the NATS stream keeps an event (events carry personal data; each service's
    /// own store is the record); 0 keeps them forever.
    pub nats_max_age_days: u32,
    /// This service's NATS user credentials (a `.creds` file: JWT and NKey seed). In
    /// production each service has its own user, allowed to publish only its own subjects
    /// (deploy/nats/). A user and password can also be given in `nats_url`.
    pub nats_credentials: Option<PathBuf>,
    /// CA certificates (PEM) to verify the NATS server with; setting it requires TLS.
    pub nats_tls_ca: Option<PathBuf>,
    /// This process's client certificate and key (PEM) for a NATS server that verifies clients.
    pub nats_tls_cert: Option<PathBuf>,
    pub nats_tls_key: Option<PathBuf>,
    /// Refuse to connect to NATS without TLS.
    pub nats_require_tls: bool,
    pub http_addr: SocketAddr,
    pub grpc_addr: SocketAddr,
    /// A shipped profile name (`hunan`, `national`) or the path of a profile TOML file.
    pub profile: String,
    /// Calendar data replacing the shipped data (a path), if any.
    pub calendar: Option<PathBuf>,
    /// SQLite: every commit of the services' own files reaches the disk before it returns
    /// (`synchronous=FULL`, the default); `false` is WAL's NORMAL, under which a power loss (not
    /// a crash) may lose the last commits — including outbox rows already published to other
    /// services and agencies. The audit log's file is always FULL. No effect on PostgreSQL.
    pub sqlite_durable_commits: bool,
    /// How long an Idempotency-Key and its stored response are kept.
    pub idempotency_retention_hours: u32,
    /// How long an agency's `Reference-Id` and its stored response are kept (its system may
    /// resend a change long after; the store stays bounded).
    pub reference_retention_days: u32,
    /// The audit log's name in its checkpoints and on its key (no spaces or `+`).
    pub audit_origin: String,
    /// At most one `audit.checkpoint` event (the latest signed checkpoint, into every agency's
    /// feed and webhooks) per this many seconds, and none while the log does not grow.
    pub audit_checkpoint_event_secs: u64,
    /// The audit log's Ed25519 signing key file; empty means `audit-signing.key` in the data
    /// directory, generated on first start (mode 0600).
    pub audit_signing_key: Option<PathBuf>,
    /// The key that seals webhook signing secrets (AES-256-GCM); empty means
    /// `webhook-secrets.key` in the data directory, generated on first start (mode 0600). Every
    /// process of one deployment needs the same file.
    pub webhook_key: Option<PathBuf>,
    /// Networks (CIDR) webhook endpoints may point into beyond the public internet, over http
    /// or https: e.g. `["10.20.0.0/16"]` for agencies' receivers on a government network.
    /// Empty (the default): loopback, private, link-local, CGNAT, unique-local, multicast and
    /// metadata addresses are refused and every endpoint needs https.
    pub webhook_allowed_networks: Vec<String>,
    /// The address people reach the web console at (e.g. `https://banli.example.gov.cn`) when
    /// it is not `http://<http_addr>`: set-password links are printed with it, and an `https`
    /// address makes the console's cookies `Secure` behind a TLS-terminating proxy.
    pub public_url: Option<String>,
    /// The addresses of reverse proxies in front of banli: for a request from one of them the
    /// client is the nearest address in `X-Forwarded-For` that is not a proxy (the console's
    /// per-address login limit and its logs). Empty: the connection's own address.
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// Where uploaded documents (signed letters, evidence, minutes) are kept, each once under
    /// its SHA-256; empty means `documents/` in the data directory. Every process of one
    /// deployment that serves documents (suggestions, coordination) needs the same directory
    /// (a shared volume in the distributed mode).
    pub documents_dir: Option<PathBuf>,
    /// The most bytes one uploaded document may have (default 20 MiB); a larger one is refused
    /// (413) before it is stored.
    pub max_document_bytes: u64,
    /// The most bytes one agency (or the office) may upload per hour to one process (429
    /// beyond, with how long to wait); 0: no limit. Default 2 GiB.
    pub document_upload_bytes_per_hour: u64,
    /// The key that signs consistency tokens (`Banli-Consistency`); empty means
    /// `consistency.key` in the data directory, generated on first start (mode 0600). Every
    /// process of one deployment needs the same file.
    pub consistency_key: Option<PathBuf>,
    /// How long a request carrying a consistency token waits for this service to apply what
    /// it names before answering 503 `consistency_timeout` (milliseconds).
    pub consistency_wait_ms: u64,
    /// How long a client has to send a request's headers (HTTP), or its first bytes (gRPC), on
    /// a new connection and between the requests of a kept-alive one; then it is closed.
    pub header_read_timeout_secs: u64,
    /// Connections each of the HTTP and gRPC servers holds at once; beyond, new ones wait.
    /// Keep it below the process's open-file limit.
    pub max_connections: usize,
    /// The longest a gRPC call (or a stream's start) may take; a client's shorter `grpc-timeout`
    /// is honoured too. REST requests have 30 s.
    pub grpc_call_timeout_secs: u64,
    /// gRPC calls in flight on one connection at once; more wait.
    pub grpc_calls_per_connection: usize,
    /// Serve gRPC server reflection (to callers with a valid API key only). `false`: not at all.
    pub grpc_reflection: bool,
    /// The server's certificate chain (PEM): with `tls_key`, REST and gRPC are served over TLS
    /// only. Required in production wherever a client is not on the same machine.
    pub tls_cert: Option<PathBuf>,
    /// The server's private key (PEM) for `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// CA certificates (PEM): with it every client must present a certificate they issued
    /// (the handshake fails otherwise), and keys created with `--client-cert` work only with
    /// their certificate.
    pub tls_client_ca: Option<PathBuf>,
    /// Open gRPC `Watch` streams one API key may hold in this process (1 or more).
    pub watch_streams_per_key: usize,
    /// Open gRPC `Watch` streams this process serves at most (1 or more).
    pub watch_streams_max: usize,
    /// An OpenTelemetry collector's OTLP/gRPC endpoint (e.g. `http://127.0.0.1:4317`): every
    /// request's span, the relay's publish and each consumer's apply of an event go there as
    /// one trace per command. Empty: no traces are exported.
    pub otlp_endpoint: Option<String>,
    pub log: LogConfig,
    /// How deputies hear of their suggestions besides the in-platform inbox.
    pub notify: NotifyConfig,
    /// Keep documents in an S3-compatible bucket instead of `documents_dir` (`[documents_s3]`):
    /// what the distributed deployment needs, where each process runs on its own machine.
    pub documents_s3: Option<DocumentsS3Config>,
}

/// An S3-compatible bucket for the documents (`[documents_s3]`); uploads are received into
/// `documents_dir` while they are checked, then sent.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DocumentsS3Config {
    /// `https://s3.example.gov.cn` or `http://minio:9000`.
    pub endpoint: String,
    pub bucket: String,
    #[serde(default = "default_region")]
    pub region: String,
    /// Prepended to every key, e.g. `banli/`.
    #[serde(default)]
    pub prefix: String,
    pub access_key: Secret,
    pub secret_key: Secret,
}

impl std::fmt::Debug for DocumentsS3Config {
    /// The keys never print.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DocumentsS3Config")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

fn default_region() -> String {
    "us-east-1".to_owned()
}

/// The notification service's channels (`[notify]`). Without `smtp_url` (or `sms_url`), e-mail
/// (or SMS) deliveries are recorded as undeliverable with the reason; the inbox has every
/// message either way.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NotifyConfig {
    /// `smtp://host:587?tls=required` (STARTTLS), `smtps://host:465` (TLS), `smtp://host:25`
    /// (plain, a local relay only); credentials as `smtp://user:password@host…`.
    pub smtp_url: Option<Secret>,
    /// The sender, e.g. `建议办理平台 <banli@example.gov.cn>`.
    pub smtp_from: String,
    /// The SMS gateway's URL: each message is a POST of `sms_template`, signed like a webhook.
    pub sms_url: Option<String>,
    /// The JSON body the gateway takes, with `{{phone}}` and `{{text}}` in its strings.
    pub sms_template: String,
    /// The secret the gateway checks `Banli-Signature` with.
    pub sms_secret: Option<Secret>,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            smtp_url: None,
            smtp_from: "建议办理平台 <banli@localhost>".to_owned(),
            sms_url: None,
            sms_template: banli_notify::deliver::SMS_TEMPLATE.to_owned(),
            sms_secret: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct LogConfig {
    /// `text` or `json`.
    pub format: String,
    /// A tracing filter, e.g. `info` or `banli=debug,sqlx=warn`.
    pub level: String,
}

/// A value that never prints: a database URL may hold a password.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // A URL shows all but its password; any other secret (an SMS gateway's, an object
        // store's key) shows nothing.
        if self.0.contains("://") {
            f.write_str(&banli_db::redact(&self.0))
        } else if self.0.is_empty() {
            f.write_str("\"\"")
        } else {
            f.write_str("***")
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            data_dir: PathBuf::from("./data"),
            database_url: None,
            nats_url: None,
            nats_stream: "BANLI".to_owned(),
            nats_subject_prefix: "banli".to_owned(),
            nats_max_age_days: 30,
            nats_credentials: None,
            nats_tls_ca: None,
            nats_tls_cert: None,
            nats_tls_key: None,
            nats_require_tls: false,
            http_addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            grpc_addr: SocketAddr::from(([127, 0, 0, 1], 50051)),
            profile: "hunan".to_owned(),
            calendar: None,
            sqlite_durable_commits: true,
            idempotency_retention_hours: 24,
            reference_retention_days: 730,
            audit_origin: "banli.local/audit".to_owned(),
            audit_checkpoint_event_secs: 60,
            audit_signing_key: None,
            webhook_key: None,
            webhook_allowed_networks: Vec::new(),
            public_url: None,
            trusted_proxies: Vec::new(),
            documents_dir: None,
            max_document_bytes: banli_documents::DEFAULT_MAX_BYTES,
            document_upload_bytes_per_hour: banli_documents::DEFAULT_HOURLY_BYTES,
            consistency_key: None,
            consistency_wait_ms: 5_000,
            header_read_timeout_secs: 20,
            max_connections: 16_384,
            grpc_call_timeout_secs: 30,
            grpc_calls_per_connection: 64,
            grpc_reflection: true,
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            watch_streams_per_key: 8,
            watch_streams_max: 1_000,
            otlp_endpoint: None,
            log: LogConfig::default(),
            notify: NotifyConfig::default(),
            documents_s3: None,
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: "text".to_owned(),
            level: "info".to_owned(),
        }
    }
}

/// Values given on the command line or in the environment (clap reads both).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct Overrides {
    /// TOML configuration file (see deploy/config/banli.example.toml).
    #[arg(long, env = "BANLI_CONFIG", global = true)]
    pub config: Option<PathBuf>,
    /// Data directory for the embedded database and generated secrets [default: ./data].
    #[arg(long, env = "BANLI_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// Database URL; a postgres:// URL switches the backend [default: SQLite in the data directory].
    #[arg(
        long,
        env = "BANLI_DATABASE_URL",
        global = true,
        hide_env_values = true
    )]
    pub database_url: Option<String>,
    /// NATS JetStream URL for the events between services [default: the embedded bus].
    #[arg(long, env = "BANLI_NATS_URL", global = true, hide_env_values = true)]
    pub nats_url: Option<String>,
    /// Rule profile: hunan, national, or a path to a profile TOML file [default: hunan].
    #[arg(long, env = "BANLI_PROFILE", global = true)]
    pub profile: Option<String>,
}

impl Config {
    /// Loads the layers in order.
    pub fn load(o: &Overrides) -> Result<Config> {
        let mut config = match &o.config {
            Some(path) => Self::from_file(path)?,
            None => Config::default(),
        };
        if let Some(d) = &o.data_dir {
            config.data_dir = d.clone();
        }
        if let Some(u) = o.database_url.as_ref().filter(|u| !u.is_empty()) {
            config.database_url = Some(Secret(u.clone()));
        }
        if let Some(u) = o.nats_url.as_ref().filter(|u| !u.is_empty()) {
            config.nats_url = Some(Secret(u.clone()));
        }
        if let Ok(v) = std::env::var("BANLI_NATS_STREAM") {
            config.nats_stream = v;
        }
        if let Ok(v) = std::env::var("BANLI_NATS_SUBJECT_PREFIX") {
            config.nats_subject_prefix = v;
        }
        if let Ok(v) = std::env::var("BANLI_NATS_MAX_AGE_DAYS") {
            config.nats_max_age_days = v.parse().with_context(|| {
                format!("BANLI_NATS_MAX_AGE_DAYS `{v}` is not a number of days")
            })?;
        }
        if let Ok(v) = std::env::var("BANLI_AUDIT_SIGNING_KEY") {
            config.audit_signing_key = Some(PathBuf::from(v)).filter(|p| !p.as_os_str().is_empty());
        }
        if let Ok(v) = std::env::var("BANLI_WEBHOOK_KEY") {
            config.webhook_key = Some(PathBuf::from(v));
        }
        if let Ok(v) = std::env::var("BANLI_PUBLIC_URL") {
            config.public_url = Some(v).filter(|v| !v.is_empty());
        }
        if let Ok(v) = std::env::var("BANLI_TRUSTED_PROXIES") {
            config.trusted_proxies = v
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| {
                    s.parse().with_context(|| {
                        format!("BANLI_TRUSTED_PROXIES: `{s}` is not an IP address")
                    })
                })
                .collect::<Result<_>>()?;
        }
        if let Ok(v) = std::env::var("BANLI_WEBHOOK_ALLOWED_NETWORKS") {
            config.webhook_allowed_networks = v
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
        }
        if let Ok(v) = std::env::var("BANLI_NOTIFY_SMTP_URL") {
            config.notify.smtp_url = Some(Secret(v)).filter(|s| !s.0.is_empty());
        }
        if let Ok(v) = std::env::var("BANLI_NOTIFY_SMTP_FROM") {
            config.notify.smtp_from = v;
        }
        if let Ok(v) = std::env::var("BANLI_NOTIFY_SMS_URL") {
            config.notify.sms_url = Some(v).filter(|s| !s.is_empty());
        }
        if let Ok(v) = std::env::var("BANLI_NOTIFY_SMS_SECRET") {
            config.notify.sms_secret = Some(Secret(v)).filter(|s| !s.0.is_empty());
        }
        if let Ok(v) = std::env::var("BANLI_DOCUMENTS_DIR") {
            config.documents_dir = Some(PathBuf::from(v)).filter(|p| !p.as_os_str().is_empty());
        }
        if let (Ok(endpoint), Ok(bucket)) = (
            std::env::var("BANLI_DOCUMENTS_S3_ENDPOINT"),
            std::env::var("BANLI_DOCUMENTS_S3_BUCKET"),
        ) && !endpoint.is_empty()
        {
            config.documents_s3 = Some(DocumentsS3Config {
                endpoint,
                bucket,
                region: std::env::var("BANLI_DOCUMENTS_S3_REGION")
                    .unwrap_or_else(|_| default_region()),
                prefix: std::env::var("BANLI_DOCUMENTS_S3_PREFIX").unwrap_or_default(),
                access_key: Secret(
                    std::env::var("BANLI_DOCUMENTS_S3_ACCESS_KEY").unwrap_or_default(),
                ),
                secret_key: Secret(
                    std::env::var("BANLI_DOCUMENTS_S3_SECRET_KEY").unwrap_or_default(),
                ),
            });
        }
        if let Ok(v) = std::env::var("BANLI_DOCUMENT_UPLOAD_BYTES_PER_HOUR") {
            config.document_upload_bytes_per_hour = v.parse().with_context(|| {
                format!("BANLI_DOCUMENT_UPLOAD_BYTES_PER_HOUR `{v}` is not a number of bytes")
            })?;
        }
        if let Ok(v) = std::env::var("BANLI_MAX_DOCUMENT_BYTES") {
            config.max_document_bytes = v.parse().with_context(|| {
                format!("BANLI_MAX_DOCUMENT_BYTES `{v}` is not a number of bytes")
            })?;
        }
        if let Ok(v) = std::env::var("BANLI_CONSISTENCY_KEY") {
            config.consistency_key = Some(PathBuf::from(v));
        }
        if let Ok(v) = std::env::var("BANLI_CONSISTENCY_WAIT_MS") {
            config.consistency_wait_ms = v.parse().with_context(|| {
                format!("BANLI_CONSISTENCY_WAIT_MS `{v}` is not a number of milliseconds")
            })?;
        }
        if let Ok(v) = std::env::var("BANLI_HEADER_READ_TIMEOUT_SECS") {
            config.header_read_timeout_secs = v.parse().with_context(|| {
                format!("BANLI_HEADER_READ_TIMEOUT_SECS `{v}` is not a number of seconds")
            })?;
        }
        if let Ok(v) = std::env::var("BANLI_MAX_CONNECTIONS") {
            config.max_connections = v.parse().with_context(|| {
                format!("BANLI_MAX_CONNECTIONS `{v}` is not a number of connections")
            })?;
        }
        if let Ok(v) = std::env::var("BANLI_GRPC_REFLECTION") {
            config.grpc_reflection = v
                .parse()
                .with_context(|| format!("BANLI_GRPC_REFLECTION `{v}` is not true or false"))?;
        }
        if let Ok(v) = std::env::var("BANLI_NATS_REQUIRE_TLS") {
            config.nats_require_tls = v
                .parse()
                .with_context(|| format!("BANLI_NATS_REQUIRE_TLS `{v}` is not true or false"))?;
        }
        for (var, slot) in [
            ("BANLI_NATS_CREDENTIALS", &mut config.nats_credentials),
            ("BANLI_NATS_TLS_CA", &mut config.nats_tls_ca),
            ("BANLI_NATS_TLS_CERT", &mut config.nats_tls_cert),
            ("BANLI_NATS_TLS_KEY", &mut config.nats_tls_key),
            ("BANLI_TLS_CERT", &mut config.tls_cert),
            ("BANLI_TLS_KEY", &mut config.tls_key),
            ("BANLI_TLS_CLIENT_CA", &mut config.tls_client_ca),
        ] {
            if let Ok(v) = std::env::var(var) {
                *slot = Some(PathBuf::from(v)).filter(|p| !p.as_os_str().is_empty());
            }
        }
        if let Ok(v) = std::env::var("BANLI_WATCH_STREAMS_PER_KEY") {
            config.watch_streams_per_key = v.parse().with_context(|| {
                format!("BANLI_WATCH_STREAMS_PER_KEY `{v}` is not a number of streams")
            })?;
        }
        if let Ok(v) = std::env::var("BANLI_WATCH_STREAMS_MAX") {
            config.watch_streams_max = v.parse().with_context(|| {
                format!("BANLI_WATCH_STREAMS_MAX `{v}` is not a number of streams")
            })?;
        }
        if let Ok(v) = std::env::var("BANLI_SQLITE_DURABLE_COMMITS") {
            config.sqlite_durable_commits = v.parse().with_context(|| {
                format!("BANLI_SQLITE_DURABLE_COMMITS `{v}` is not true or false")
            })?;
        }
        if let Ok(v) = std::env::var("BANLI_AUDIT_CHECKPOINT_EVENT_SECS") {
            config.audit_checkpoint_event_secs = v.parse().with_context(|| {
                format!("BANLI_AUDIT_CHECKPOINT_EVENT_SECS `{v}` is not a number of seconds")
            })?;
        }
        if let Ok(v) = std::env::var("BANLI_OTLP_ENDPOINT") {
            config.otlp_endpoint = Some(v).filter(|v| !v.is_empty());
        }
        if let Some(p) = &o.profile {
            config.profile = p.clone();
        }
        if let Ok(v) = std::env::var("BANLI_LOG_FORMAT") {
            config.log.format = v;
        }
        if let Ok(v) = std::env::var("BANLI_LOG") {
            config.log.level = v;
        }
        config.validate()?;
        Ok(config)
    }

    fn from_file(path: &Path) -> Result<Config> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the configuration file {}", path.display()))?;
        toml::from_str(&text)
            .map_err(|e| anyhow::anyhow!("{}: {}", path.display(), e.to_string().trim_end()))
    }

    pub fn validate(&self) -> Result<()> {
        if !(1..=300).contains(&self.header_read_timeout_secs)
            || !(1..=3600).contains(&self.grpc_call_timeout_secs)
        {
            bail!(
                "header_read_timeout_secs is 1 to 300 and grpc_call_timeout_secs 1 to 3600 (got {} and {})",
                self.header_read_timeout_secs,
                self.grpc_call_timeout_secs
            );
        }
        if self.nats_tls_cert.is_some() != self.nats_tls_key.is_some() {
            bail!("nats_tls_cert and nats_tls_key go together: give both (PEM files) or neither");
        }
        if let Some(u) = &self.public_url
            && !(u.starts_with("https://") || u.starts_with("http://"))
        {
            bail!(
                "public_url `{u}` is the console's address as people reach it: http://… or https://…"
            );
        }
        match (&self.tls_cert, &self.tls_key) {
            (Some(_), None) | (None, Some(_)) => {
                bail!("tls_cert and tls_key go together: give both (PEM files) or neither")
            }
            (None, None) if self.tls_client_ca.is_some() => {
                bail!("tls_client_ca needs TLS: give tls_cert and tls_key too")
            }
            _ => {}
        }
        if let Some(s3) = &self.documents_s3
            && (s3.bucket.is_empty() || s3.access_key.0.is_empty() || s3.secret_key.0.is_empty())
        {
            bail!(
                "documents_s3 needs bucket, access_key and secret_key (or BANLI_DOCUMENTS_S3_BUCKET, _ACCESS_KEY, _SECRET_KEY)"
            );
        }
        if self.max_document_bytes == 0 {
            bail!("max_document_bytes is at least 1 (the default is 20 MiB: 20971520)");
        }
        if self.max_connections == 0 || self.grpc_calls_per_connection == 0 {
            bail!("max_connections and grpc_calls_per_connection are at least 1");
        }
        if self.watch_streams_per_key == 0 || self.watch_streams_max == 0 {
            bail!(
                "watch_streams_per_key and watch_streams_max are at least 1 (got {} and {})",
                self.watch_streams_per_key,
                self.watch_streams_max
            );
        }
        if !(1..=60_000).contains(&self.consistency_wait_ms) {
            bail!(
                "consistency_wait_ms is {}; give 1 to 60000 milliseconds",
                self.consistency_wait_ms
            );
        }
        if let Some(e) = &self.otlp_endpoint
            && !(e.starts_with("http://") || e.starts_with("https://"))
        {
            bail!(
                "otlp_endpoint `{e}` is not an http:// or https:// URL (e.g. http://127.0.0.1:4317, a collector's OTLP/gRPC port)"
            );
        }
        if !(1..=86_400).contains(&self.audit_checkpoint_event_secs) {
            bail!(
                "audit_checkpoint_event_secs must be 1–86400 (seconds between audit.checkpoint events), not {}",
                self.audit_checkpoint_event_secs
            );
        }
        if self.idempotency_retention_hours == 0 {
            bail!("idempotency_retention_hours must be at least 1");
        }
        if u64::from(self.reference_retention_days) * 24
            < u64::from(self.idempotency_retention_hours)
        {
            bail!(
                "reference_retention_days ({} days) must be at least idempotency_retention_hours ({} hours): a Reference-Id is kept at least as long as an Idempotency-Key",
                self.reference_retention_days,
                self.idempotency_retention_hours
            );
        }
        if self.audit_origin.is_empty()
            || self
                .audit_origin
                .chars()
                .any(|c| c.is_whitespace() || c == '+' || c.is_control())
        {
            bail!(
                "audit_origin `{}` must be non-empty, without spaces or `+` (e.g. example.gov.cn/banli/audit)",
                self.audit_origin
            );
        }
        self.webhook_egress()?;
        self.notify_channels()?;
        if !matches!(self.log.format.as_str(), "text" | "json") {
            bail!(
                "log.format must be `text` or `json`, not `{}`",
                self.log.format
            );
        }
        if let Some(url) = &self.database_url {
            let u = &url.0;
            if !(u.starts_with("sqlite:")
                || u.starts_with("postgres:")
                || u.starts_with("postgresql:"))
            {
                bail!(
                    "database_url `{}` is neither sqlite:// nor postgres://",
                    banli_db::redact(u)
                );
            }
        }
        let name_ok = |s: &str| {
            !s.is_empty()
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
        };
        if !name_ok(&self.nats_stream) || !name_ok(&self.nats_subject_prefix) {
            bail!(
                "nats_stream and nats_subject_prefix are letters, digits, `_` and `-` (got `{}` and `{}`)",
                self.nats_stream,
                self.nats_subject_prefix
            );
        }
        if let Some(url) = &self.nats_url
            && !(url.0.starts_with("nats://") || url.0.starts_with("tls://"))
        {
            bail!(
                "nats_url `{}` is not a nats:// URL",
                banli_db::redact(&url.0)
            );
        }
        Ok(())
    }

    /// The audit log's signing key file.
    pub fn audit_key_path(&self) -> PathBuf {
        self.audit_signing_key
            .clone()
            .unwrap_or_else(|| self.data_dir.join(banli_auditlog::keys::KEY_FILE))
    }

    /// The webhook secrets' key file.
    pub fn webhook_key_path(&self) -> PathBuf {
        self.webhook_key
            .clone()
            .unwrap_or_else(|| self.data_dir.join(banli_coordination::webhooks::KEY_FILE))
    }

    /// The connection limits of the HTTP and gRPC servers.
    /// How the processes authenticate to NATS and protect the link.
    pub fn nats_auth(&self) -> banli_eventlog::NatsAuth {
        banli_eventlog::NatsAuth {
            credentials: self.nats_credentials.clone(),
            tls_ca: self.nats_tls_ca.clone(),
            tls_cert: self.nats_tls_cert.clone(),
            tls_key: self.nats_tls_key.clone(),
            require_tls: self.nats_require_tls,
        }
    }

    /// The server's TLS files, if TLS is configured.
    pub fn tls_files(&self) -> Option<banli_api::tls::TlsFiles> {
        Some(banli_api::tls::TlsFiles {
            cert: self.tls_cert.clone()?,
            key: self.tls_key.clone()?,
            client_ca: self.tls_client_ca.clone(),
        })
    }

    pub fn connection_limits(&self) -> banli_api::server::ConnectionLimits {
        banli_api::server::ConnectionLimits {
            header_read_timeout: std::time::Duration::from_secs(self.header_read_timeout_secs),
            max_connections: self.max_connections,
            ..Default::default()
        }
    }

    /// Where people reach the console: `public_url` without a trailing `/`, else
    /// `http://<http_addr>`.
    pub fn console_url(&self) -> String {
        match &self.public_url {
            Some(u) => u.trim_end_matches('/').to_owned(),
            None => format!("http://{}", self.http_addr),
        }
    }

    /// The webhook egress policy of `webhook_allowed_networks`.
    pub fn webhook_egress(&self) -> Result<banli_coordination::webhooks::egress::Egress> {
        let nets = banli_coordination::webhooks::egress::Egress::parse_list(
            &self.webhook_allowed_networks.join(","),
        )
        .map_err(|e| anyhow::anyhow!("webhook_allowed_networks: {e}"))?;
        Ok(banli_coordination::webhooks::egress::Egress::new(nets))
    }

    /// The notification channels of `[notify]`, checked: a bad SMTP URL or sender, an SMS
    /// gateway without its secret or with a template that is not JSON is refused at start.
    pub fn notify_channels(
        &self,
    ) -> Result<(
        Option<banli_notify::deliver::Smtp>,
        Option<banli_notify::deliver::Sms>,
    )> {
        let n = &self.notify;
        let smtp = match &n.smtp_url {
            Some(url) => {
                banli_notify::deliver::check_smtp_url(&url.0)
                    .map_err(|e| anyhow::anyhow!("{}", banli_db::redact(&e.to_string())))?;
                if n.smtp_from.parse::<lettre::message::Mailbox>().is_err() {
                    bail!(
                        "notify.smtp_from `{}` is not a mailbox (e.g. \"建议办理平台 <banli@example.gov.cn>\")",
                        n.smtp_from
                    );
                }
                Some(banli_notify::deliver::Smtp {
                    url: url.0.clone(),
                    from: n.smtp_from.clone(),
                })
            }
            None => None,
        };
        let sms = match &n.sms_url {
            Some(url) => {
                let secret = n.sms_secret.as_ref().filter(|s| !s.0.is_empty()).ok_or_else(|| {
                    anyhow::anyhow!(
                        "notify.sms_url is set without notify.sms_secret: the gateway checks each message's signature with it"
                    )
                })?;
                serde_json::from_str::<serde_json::Value>(&n.sms_template)
                    .map_err(|e| anyhow::anyhow!("notify.sms_template is not JSON: {e}"))?;
                banli_coordination::webhooks::check_url(url)
                    .map_err(|e| anyhow::anyhow!("notify.sms_url: {e}"))?;
                Some(banli_notify::deliver::Sms {
                    url: url.clone(),
                    template: n.sms_template.clone(),
                    secret: secret.0.clone(),
                    egress: self.webhook_egress()?,
                })
            }
            None => None,
        };
        Ok((smtp, sms))
    }

    /// The consistency token key file.
    /// Where uploaded documents are kept.
    pub fn documents_path(&self) -> PathBuf {
        self.documents_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("documents"))
    }

    pub fn consistency_key_path(&self) -> PathBuf {
        self.consistency_key
            .clone()
            .unwrap_or_else(|| self.data_dir.join(banli_api::consistency::KEY_FILE))
    }

    /// The least time between two `audit.checkpoint` events.
    pub fn audit_checkpoint_event_interval(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.audit_checkpoint_event_secs)
    }

    /// How long the NATS stream keeps an event (zero: forever).
    pub fn nats_max_age(&self) -> std::time::Duration {
        std::time::Duration::from_secs(u64::from(self.nats_max_age_days) * 86_400)
    }

    /// The bound on a consistency wait.
    pub fn consistency_wait(&self) -> std::time::Duration {
        std::time::Duration::from_millis(self.consistency_wait_ms)
    }

    /// The database URL in force: the configured one, or SQLite in the data directory.
    pub fn database_url(&self) -> String {
        match &self.database_url {
            Some(u) => u.0.clone(),
            None => banli_db::sqlite_url_in(&self.data_dir),
        }
    }

    /// The rule profile in force.
    pub fn rule_profile(&self) -> Result<banli_domain::RuleProfile> {
        if let Some(p) = banli_domain::RuleProfile::builtin(&self.profile) {
            return Ok(p);
        }
        let path = Path::new(&self.profile);
        let text = std::fs::read_to_string(path).with_context(|| {
            format!(
                "profile `{}` is neither a shipped profile (hunan, national) nor a readable file",
                self.profile
            )
        })?;
        Ok(banli_domain::RuleProfile::from_toml_str(
            &path.display().to_string(),
            &text,
        )?)
    }

    /// The calendar in force: the shipped data, or the configured file.
    pub fn calendar(&self) -> Result<banli_calendar::Calendar> {
        match &self.calendar {
            None => Ok(banli_calendar::Calendar::embedded().clone()),
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .with_context(|| format!("cannot read calendar data {}", path.display()))?;
                Ok(banli_calendar::Calendar::from_toml_str(
                    &path.display().to_string(),
                    &text,
                )?)
            }
        }
    }
}

#[cfg(test)]
mod tests;
