//! Starts `banli serve` (the binary next to this one) as a separate process.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use banli_db::testing::TestDb;
use tokio::process::{Child, Command};

pub struct Server {
    child: Child,
    dir: PathBuf,
    pub http_url: String,
    pub database_url: String,
    pub office_key: String,
    pg: Option<TestDb>,
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn banli_binary() -> Result<PathBuf> {
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
        let dir =
            std::env::temp_dir().join(format!("banli-bench-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&dir)?;
        let (http, grpc) = (free_port()?, free_port()?);
        let database_url = match &pg {
            Some(db) => db.url.clone(),
            None => banli_db::sqlite_url_in(&dir.join("data")),
        };
        let child = Command::new(banli_binary()?)
            .args([
                "serve",
                "--http-addr",
                &format!("127.0.0.1:{http}"),
                "--grpc-addr",
                &format!("127.0.0.1:{grpc}"),
            ])
            .arg("--data-dir")
            .arg(dir.join("data"))
            .args(["--database-url", &database_url])
            .env("BANLI_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
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
                    dir,
                    http_url: format!("http://127.0.0.1:{http}"),
                    database_url,
                    office_key: k.trim().to_owned(),
                    pg,
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

    /// Resident set size of the server process, in KiB.
    pub fn rss_kib(&self) -> Result<u64> {
        let pid = self.child.id().context("the server is running")?;
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .context("VmRSS in /proc/<pid>/status")
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
        if let Some(db) = self.pg.take() {
            db.drop_db().await;
        }
        let _ = std::fs::remove_dir_all(&self.dir);
        Ok(())
    }
}
