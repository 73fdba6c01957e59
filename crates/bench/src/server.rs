//! Starts `banli serve` (the binary next to this one) as a separate process.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use banli_db::testing::TestDb;
use tokio::process::{Child, Command};

pub struct Server {
    child: Child,
    /// In the three-process mode: the coordination and follow-up processes.
    others: Vec<Child>,
    /// Where each service's paths go (three-process mode), by path prefix.
    pub routes: Vec<(&'static str, String)>,
    /// The NATS stream and subject prefix of the three-process mode, deleted at the end.
    nats: Option<(String, String, String)>,
    dir: PathBuf,
    pub http_url: String,
    /// `127.0.0.1:<port>` of the (first) process's gRPC server.
    pub grpc_addr: std::net::SocketAddr,
    pub database_url: String,
    pub office_key: String,
    pg: Option<TestDb>,
    /// In the three-process mode: the coordination and follow-up services' own databases.
    other_dbs: Vec<TestDb>,
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

async fn wait_listening(port: u16) -> Result<()> {
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("banli serve did not listen on {port} within 10 s")
}

/// Waits until `GET /readyz` answers 200 (a service has its directory).
async fn wait_ready(port: u16) -> Result<()> {
    for _ in 0..400 {
        if let Ok(mut s) = tokio::net::TcpStream::connect(("127.0.0.1", port)).await {
            use tokio::io::{AsyncReadExt, AsyncWriteExt};
            s.write_all(b"GET /readyz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .await?;
            let mut head = [0u8; 12];
            if s.read_exact(&mut head).await.is_ok() && head.ends_with(b"200") {
                return Ok(());
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    bail!("banli serve on {port} was not ready within 20 s (does the directory reach it?)")
}

pub fn banli_binary() -> Result<PathBuf> {
    let mut p = std::env::current_exe()?;
    p.pop();
    let bin = p.join("banli");
    if !bin.exists() {
        bail!(
            "{} is missing: build it with `cargo build --release -p banli -p banli-bench`",
            bin.display()
        );
    }
    Ok(bin)
}

/// `banli serve` on `http`/`grpc` with its data directory in `dir`, on `database_url`; its
/// output discarded, its log (`BANLI_LOG`, default warn) on the bench's stderr.
fn serve_command(
    dir: &std::path::Path,
    database_url: &str,
    http: u16,
    grpc: u16,
) -> Result<Command> {
    let mut cmd = Command::new(banli_binary()?);
    cmd.args([
        "serve",
        "--http-addr",
        &format!("127.0.0.1:{http}"),
        "--grpc-addr",
        &format!("127.0.0.1:{grpc}"),
    ])
    .arg("--data-dir")
    .arg(dir.join("data"))
    .args(["--database-url", database_url])
    .env(
        "BANLI_LOG",
        std::env::var("BANLI_LOG").unwrap_or_else(|_| "warn".into()),
    )
    .stdout(Stdio::null())
    .stderr(Stdio::inherit())
    .kill_on_drop(true);
    Ok(cmd)
}

impl Server {
    pub async fn sqlite() -> Result<Server> {
        Server::start(None).await
    }

    pub async fn postgres() -> Result<Server> {
        let db = TestDb::postgres()
            .await
            .context("PostgreSQL is needed (BANLI_TEST_DATABASE_URL, default the local server)")?;
        Server::start(Some(db)).await
    }

    async fn start(pg: Option<TestDb>) -> Result<Server> {
        Server::start_with(pg, &[], &[]).await
    }

    /// On SQLite with `extra` arguments and `env` for `banli serve`.
    pub async fn sqlite_with_env(extra: &[&str], env: &[(&str, String)]) -> Result<Server> {
        Server::start_with(None, extra, env).await
    }

    /// On SQLite with `extra` arguments to `banli serve`.
    pub async fn sqlite_with(extra: &[&str]) -> Result<Server> {
        Server::start_with(None, extra, &[]).await
    }

    /// On SQLite in `dir` (its data directory `dir/data`), which may hold data already.
    pub async fn sqlite_in(dir: PathBuf) -> Result<Server> {
        Server::start_in(dir, None, &[], &[]).await
    }

    async fn start_with(
        pg: Option<TestDb>,
        extra: &[&str],
        env: &[(&str, String)],
    ) -> Result<Server> {
        let dir =
            std::env::temp_dir().join(format!("banli-bench-{}", uuid::Uuid::now_v7().simple()));
        Server::start_in(dir, pg, extra, env).await
    }

    async fn start_in(
        dir: PathBuf,
        pg: Option<TestDb>,
        extra: &[&str],
        env: &[(&str, String)],
    ) -> Result<Server> {
        std::fs::create_dir_all(&dir)?;
        let (http, grpc) = (free_port()?, free_port()?);
        let database_url = match &pg {
            Some(db) => db.url.clone(),
            None => banli_db::sqlite_url_in(&dir.join("data")),
        };
        let child = serve_command(&dir, &database_url, http, grpc)?
            .args(extra)
            .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
            .spawn()
            .context("starting banli serve")?;
        let key_file = dir.join("data").join("assigning-office.key");
        for _ in 0..200 {
            if let Ok(k) = std::fs::read_to_string(&key_file)
                && tokio::net::TcpStream::connect(("127.0.0.1", http))
                    .await
                    .is_ok()
            {
                return Ok(Server {
                    child,
                    others: Vec::new(),
                    routes: Vec::new(),
                    nats: None,
                    dir,
                    http_url: format!("http://127.0.0.1:{http}"),
                    grpc_addr: std::net::SocketAddr::from(([127, 0, 0, 1], grpc)),
                    database_url,
                    office_key: k.trim().to_owned(),
                    pg,
                    other_dbs: Vec::new(),
                });
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!("banli serve did not come up within 10 s")
    }

    /// The server's process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Every process of the server (one, or three in the three-process mode).
    pub fn pids(&self) -> Vec<u32> {
        std::iter::once(&self.child)
            .chain(&self.others)
            .filter_map(Child::id)
            .collect()
    }

    /// The three services as processes (`banli serve --service …`), each on a PostgreSQL
    /// database of its own, over NATS JetStream (a stream of their own), sharing one data
    /// directory and so one consistency key. Each command goes to the process of the service
    /// that owns it. Ready when each has the directory (its `/readyz` answers 200).
    pub async fn distributed() -> Result<Server> {
        let mut server = Server::postgres_with(&["--service", "suggestions"]).await?;
        for (service, paths) in [
            ("coordination", banli_coordination::http::PATHS),
            ("followup", banli_followup::http::PATHS),
        ] {
            let (http, grpc) = (free_port()?, free_port()?);
            let db = TestDb::postgres().await.context("PostgreSQL is needed")?;
            let mut cmd = server.command_on(&db.url, http, grpc)?;
            server.other_dbs.push(db);
            let child = cmd
                .args(["--service", service])
                .spawn()
                .with_context(|| format!("starting banli serve --service {service}"))?;
            server.others.push(child);
            let url = format!("http://127.0.0.1:{http}");
            wait_listening(http).await?;
            wait_ready(http).await?;
            for p in paths.iter().filter(|p| p.starts_with("/v1/")) {
                server.routes.push((p, url.clone()));
            }
        }
        Ok(server)
    }

    async fn postgres_with(service: &[&str]) -> Result<Server> {
        let db = TestDb::postgres()
            .await
            .context("PostgreSQL is needed (BANLI_TEST_DATABASE_URL, default the local server)")?;
        let nats = std::env::var("BANLI_TEST_NATS_URL")
            .unwrap_or_else(|_| "nats://127.0.0.1:4222".to_owned());
        let unique = uuid::Uuid::now_v7().simple().to_string();
        let (stream, prefix) = (
            format!("BANLI_BENCH_{unique}"),
            format!("banlibench{unique}"),
        );
        let env = [
            ("BANLI_NATS_URL", nats.clone()),
            ("BANLI_NATS_STREAM", stream.clone()),
            ("BANLI_NATS_SUBJECT_PREFIX", prefix.clone()),
        ];
        let mut server = Server::start_with(Some(db), service, &env).await?;
        server.nats = Some((nats, stream, prefix));
        Ok(server)
    }

    /// `banli serve` on `http`/`grpc` in this server's data directory and on its bus, on
    /// `database_url`.
    fn command_on(&self, database_url: &str, http: u16, grpc: u16) -> Result<Command> {
        let mut cmd = serve_command(&self.dir, database_url, http, grpc)?;
        if let Some((nats, stream, prefix)) = &self.nats {
            cmd.env("BANLI_NATS_URL", nats)
                .env("BANLI_NATS_STREAM", stream)
                .env("BANLI_NATS_SUBJECT_PREFIX", prefix);
        }
        Ok(cmd)
    }

    /// Resident set size of the server process, in KiB.
    /// The bench's directory for this server (its data directory is `data/` in it).
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }

    pub fn rss_kib(&self) -> Result<u64> {
        rss_kib_of(self.child.id().context("the server is running")?)
    }

    pub async fn stop(mut self) -> Result<()> {
        if let Some(pid) = self.child.id() {
            // SIGTERM: the graceful path.
            let _ = std::process::Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .status();
        }
        let _ = tokio::time::timeout(Duration::from_secs(10), self.child.wait()).await;
        let _ = self.child.kill().await;
        for mut c in self.others.drain(..) {
            let _ = c.kill().await;
        }
        if let Some((url, stream, prefix)) = self.nats.take()
            && let Ok(bus) = banli_eventlog::NatsBus::connect(banli_eventlog::NatsConfig {
                stream,
                prefix,
                ..banli_eventlog::NatsConfig::new(&url)
            })
            .await
        {
            bus.delete_stream().await;
        }
        if let Some(db) = self.pg.take() {
            db.drop_db().await;
        }
        for db in self.other_dbs.drain(..) {
            db.drop_db().await;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        Ok(())
    }
}

/// Resident set size of process `pid`, in KiB.
pub fn rss_kib_of(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .context("VmRSS in /proc/<pid>/status")
}
