//! For tests: an S3-compatible server to run the store against — `BANLI_TEST_S3_ENDPOINT`, or
//! moto's server (`python3 -m moto.server`, which `.ci/run` installs) started on a free port and
//! stopped when dropped.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running S3-compatible server.
#[derive(Debug)]
pub struct S3Server {
    pub endpoint: String,
    child: Option<Child>,
}

impl Drop for S3Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl S3Server {
    /// The server, or `None` when there is none to start.
    pub fn start() -> Option<S3Server> {
        if let Ok(e) = std::env::var("BANLI_TEST_S3_ENDPOINT") {
            return Some(S3Server {
                endpoint: e,
                child: None,
            });
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .ok()?
            .local_addr()
            .ok()?
            .port();
        let child = Command::new("python3")
            .args([
                "-m",
                "moto.server",
                "-H",
                "127.0.0.1",
                "-p",
                &port.to_string(),
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .ok()?;
        let mut server = S3Server {
            endpoint: format!("http://127.0.0.1:{port}"),
            child: Some(child),
        };
        let start = Instant::now();
        while start.elapsed() < Duration::from_secs(20) {
            if let Some(c) = server.child.as_mut()
                && let Ok(Some(_)) = c.try_wait()
            {
                return None; // it exited: moto is not installed
            }
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(server);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        None
    }

    /// A configuration for a fresh bucket on this server (moto takes any keys).
    pub fn config(&self, prefix: &str) -> crate::s3::S3Config {
        crate::s3::S3Config {
            endpoint: self.endpoint.clone(),
            bucket: format!("banli-test-{}", uuid::Uuid::now_v7().simple()),
            region: "us-east-1".into(),
            prefix: prefix.into(),
            access_key: "test".into(),
            secret_key: "test".into(),
        }
    }
}

/// Whether a missing server fails the test (`BANLI_REQUIRE_SERVICES=1`) instead of skipping it.
pub fn required() -> bool {
    std::env::var("BANLI_REQUIRE_SERVICES").is_ok_and(|v| v == "1")
}
