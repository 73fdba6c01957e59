//! One front door for the three-process tests: a port that sends each request to the process
//! answering its path, by the services' route tables (`http::PATHS`, the longest matching
//! prefix; the rest to the suggestions process) — what the Ingress does in Kubernetes, so a
//! route missing from a table fails these tests as it would fail a deployment.
//!
//! HTTP/1.1, routed by the first request of a connection (the tests' client sends one request
//! per connection). A process that does not answer (killed, not restarted yet) is a 502, as a
//! gateway would answer.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// A running front door; stops when dropped.
pub(crate) struct FrontDoor {
    pub(crate) port: u16,
    stop: Arc<AtomicBool>,
}

/// Route table entries: (a service's prefixes, the port of its process).
pub(crate) type Routes = Vec<(&'static [&'static str], u16)>;

impl FrontDoor {
    /// Listens on a free loopback port; `fallback` answers what no table names (`/`, `/healthz`).
    pub(crate) fn start(routes: Routes, fallback: u16) -> FrontDoor {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the front door");
        let port = listener.local_addr().expect("address").port();
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let routes = Arc::new(routes);
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                if stopped.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(client) = conn else { continue };
                let routes = routes.clone();
                std::thread::spawn(move || forward(client, &routes, fallback));
            }
        });
        FrontDoor { port, stop }
    }
}

impl Drop for FrontDoor {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so that it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// The port answering `path`: the route with the longest prefix of it, else `fallback`.
pub(crate) fn route(routes: &Routes, fallback: u16, path: &str) -> u16 {
    routes
        .iter()
        .flat_map(|(prefixes, port)| prefixes.iter().map(move |p| (*p, *port)))
        .filter(|(p, _)| path.starts_with(p))
        .max_by_key(|(p, _)| p.len())
        .map_or(fallback, |(_, port)| port)
}

fn forward(mut client: TcpStream, routes: &Routes, fallback: u16) {
    let _ = client.set_read_timeout(Some(Duration::from_secs(30)));
    // The request head: enough to read the path.
    let mut head = Vec::new();
    let mut buf = [0u8; 8192];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match client.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if head.len() > 64 * 1024 {
            let _ = client.write_all(
                b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            );
            return;
        }
    }
    let line = head.split(|b| *b == b'\n').next().unwrap_or_default();
    let path = String::from_utf8_lossy(line)
        .split(' ')
        .nth(1)
        .unwrap_or("/")
        .to_owned();
    let port = route(routes, fallback, &path);
    let Ok(mut upstream) = TcpStream::connect(("127.0.0.1", port)) else {
        let _ = client.write_all(
            b"HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
        );
        return;
    };
    if upstream.write_all(&head).is_err() {
        return;
    }
    // The rest of the request (its body) one way, the response the other.
    let (Ok(mut from_client), Ok(mut to_upstream)) = (client.try_clone(), upstream.try_clone())
    else {
        return;
    };
    let up = std::thread::spawn(move || {
        let _ = std::io::copy(&mut from_client, &mut to_upstream);
        let _ = to_upstream.shutdown(Shutdown::Write);
    });
    let _ = std::io::copy(&mut upstream, &mut client);
    let _ = client.shutdown(Shutdown::Both);
    let _ = upstream.shutdown(Shutdown::Both);
    let _ = up.join();
}

#[test]
fn the_front_door_routes_by_the_longest_prefix_of_the_route_tables() {
    let routes: Routes = vec![
        (banli_suggestions::http::PATHS, 1),
        (banli_coordination::http::PATHS, 2),
        (banli_followup::http::PATHS, 3),
    ];
    for (path, port) in [
        ("/v1/suggestions/x/replies", 1),
        ("/v1/coordination/tasks", 2),
        ("/v1/feed?after=0", 2),
        ("/v1/metrics/agencies", 3),
        ("/v1/audit/checkpoint", 3),
        ("/healthz", 9),
        ("/", 9),
    ] {
        assert_eq!(route(&routes, 9, path), port, "{path}");
    }
}
