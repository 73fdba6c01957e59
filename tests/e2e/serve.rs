//! `banli serve` as a user runs it: first start, the key file, REST, graceful SIGTERM, restart.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::banli_binary;

pub(crate) fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// A plain HTTP/1.1 request; returns (status, body).
pub(crate) fn http(
    port: u16,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<&str>,
) -> (u16, String) {
    let (status, _, body) = http_with(port, method, path, key, body, &[]);
    (status, body)
}

/// [`http`] with extra request headers; returns (status, response header lines, body).
pub(crate) fn http_with(
    port: u16,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: Option<&str>,
    headers: &[(&str, &str)],
) -> (u16, String, String) {
    // Status 0: nothing listens (yet).
    let Ok(mut s) = TcpStream::connect(("127.0.0.1", port)) else {
        return (0, String::new(), String::new());
    };
    s.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut req = format!("{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n");
    if let Some(k) = key {
        req.push_str(&format!("Authorization: Bearer {k}\r\n"));
    }
    for (name, value) in headers {
        req.push_str(&format!("{name}: {value}\r\n"));
    }
    if let Some(b) = body {
        req.push_str(&format!(
            "Content-Type: application/json\r\nContent-Length: {}\r\n",
            b.len()
        ));
    }
    req.push_str("\r\n");
    req.push_str(body.unwrap_or_default());
    if s.write_all(req.as_bytes()).is_err() {
        return (0, String::new(), String::new());
    }
    let mut out = String::new();
    if s.read_to_string(&mut out).is_err() {
        return (0, String::new(), out);
    }
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or(0);
    let (head, body) = out.split_once("\r\n\r\n").unwrap_or((out.as_str(), ""));
    (status, head.to_owned(), body.to_owned())
}

pub(crate) struct Serve {
    child: Child,
    pub(crate) http: u16,
    pub(crate) grpc: u16,
}

fn serve(dir: &std::path::Path) -> Serve {
    serve_with(dir, &[])
}

/// `banli serve` in `dir` with extra arguments, once it listens.
pub(crate) fn serve_with(dir: &std::path::Path, extra: &[&str]) -> Serve {
    let (http_port, grpc_port) = (free_port(), free_port());
    let child = Command::new(banli_binary())
        .args([
            "serve",
            "--http-addr",
            &format!("127.0.0.1:{http_port}"),
            "--grpc-addr",
            &format!("127.0.0.1:{grpc_port}"),
        ])
        .args(extra)
        .current_dir(dir)
        .env_remove("BANLI_DATABASE_URL")
        .env_remove("BANLI_DATA_DIR")
        .env("BANLI_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(dir.join("serve.log"))
                .map_or_else(|_| Stdio::null(), Stdio::from),
        )
        .spawn()
        .expect("banli serve starts");
    let start = Instant::now();
    while TcpStream::connect(("127.0.0.1", http_port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "banli serve did not listen within 20 s"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    Serve {
        child,
        http: http_port,
        grpc: grpc_port,
    }
}

/// `banli serve` in a fresh directory (`banli-<tag>-<uuid>` under the temporary directory),
/// with `config` (TOML) as its config file unless empty, and extra arguments: (directory, server,
/// the office key its first start wrote).
pub(crate) fn serve_fresh(
    tag: &str,
    config: &str,
    extra: &[&str],
) -> (std::path::PathBuf, Serve, String) {
    let dir = std::env::temp_dir().join(format!("banli-{tag}-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&dir).expect("dir");
    let file = dir.join("banli.toml");
    let mut args: Vec<&str> = Vec::new();
    if !config.is_empty() {
        std::fs::write(&file, config).expect("config");
        args.extend(["--config", file.to_str().expect("a path")]);
    }
    args.extend_from_slice(extra);
    let server = serve_with(&dir, &args);
    let office = std::fs::read_to_string(dir.join("data/assigning-office.key"))
        .expect("the office key")
        .trim()
        .to_owned();
    (dir, server, office)
}

/// [`serve_fresh`] with a config that allows webhooks to loopback (where the tests' receivers
/// listen; the egress policy refuses it otherwise).
pub(crate) fn serve_for_webhooks(tag: &str) -> (std::path::PathBuf, Serve, String) {
    serve_fresh(tag, "webhook_allowed_networks = [\"127.0.0.0/8\"]\n", &[])
}

impl Serve {
    /// A gRPC channel to the server.
    pub(crate) async fn channel(&self) -> tonic::transport::Channel {
        tonic::transport::Channel::from_shared(format!("http://127.0.0.1:{}", self.grpc))
            .expect("a URI")
            .connect()
            .await
            .expect("the gRPC server answers")
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        // A failed assertion must not leave a server running.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) fn terminate(mut s: Serve) -> std::process::ExitStatus {
    let status = Command::new("kill")
        .arg("-TERM")
        .arg(s.child.id().to_string())
        .status()
        .expect("kill runs");
    assert!(status.success());
    let start = Instant::now();
    loop {
        if let Some(status) = s.child.try_wait().expect("wait") {
            return status;
        }
        assert!(
            start.elapsed() < Duration::from_secs(15),
            "banli serve did not stop within 15 s of SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn serve_starts_answers_and_stops_gracefully() {
    let dir = std::env::temp_dir().join(format!("banli-serve-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&dir).expect("dir");
    let s = serve(&dir);
    let key_file = dir.join("data/assigning-office.key");
    let key = std::fs::read_to_string(&key_file)
        .expect("the first start writes the key")
        .trim()
        .to_owned();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file)
            .expect("meta")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "the key file is readable only by its owner");
        // The office's first account: its one-time set-password token, as private as the key.
        let user_file = dir.join("data/assigning-office.user");
        let text = std::fs::read_to_string(&user_file).expect("the first start writes the user");
        assert!(text.starts_with("username: office\n"), "{text}");
        let mode = std::fs::metadata(&user_file)
            .expect("meta")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(mode, 0o600, "the user file is readable only by its owner");
        let dir_mode = std::fs::metadata(dir.join("data"))
            .expect("meta")
            .permissions()
            .mode()
            & 0o777;
        assert_eq!(dir_mode, 0o700, "the data directory is private");
    }
    assert_eq!(http(s.http, "GET", "/healthz", None, None).0, 200);
    assert_eq!(http(s.http, "GET", "/readyz", None, None).0, 200);
    let (status, body) = http(s.http, "GET", "/v1/agencies", Some(&key), None);
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("\"assigning_office\":true"), "{body}");
    let (status, body) = http(s.http, "GET", "/v1/agencies", None, None);
    assert_eq!(status, 401, "{body}");
    let (status, body) = http(
        s.http,
        "POST",
        "/v1/agencies",
        Some(&key),
        Some(r#"{"name":"Department of Industry"}"#),
    );
    assert_eq!(status, 201, "{body}");
    let (status, doc) = http(s.http, "GET", "/openapi.json", None, None);
    assert_eq!(status, 200);
    let doc: serde_json::Value = serde_json::from_str(&doc).expect("the OpenAPI document is JSON");
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "{}",
        doc["openapi"]
    );
    assert!(doc["paths"]["/v1/suggestions/{id}/replies"]["post"].is_object());
    assert!(doc["components"]["securitySchemes"]["bearer"].is_object());

    let status = terminate(s);
    assert!(
        status.success(),
        "SIGTERM ends banli serve cleanly: {status:?}"
    );

    // A restart keeps the data and does not mint another key.
    let s = serve(&dir);
    assert_eq!(std::fs::read_to_string(&key_file).expect("key").trim(), key);
    let (status, body) = http(s.http, "GET", "/v1/agencies", Some(&key), None);
    assert_eq!(status, 200);
    assert!(body.contains("Department of Industry"), "{body}");
    assert!(terminate(s).success());
    std::fs::remove_dir_all(&dir).expect("cleanup");
}
