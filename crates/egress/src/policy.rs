//! The egress policy (出站策略): where an agency's webhook endpoint, or the SMS gateway, may make
//! this server connect.
//!
//! An endpoint URL's host is resolved and every address it resolves to is checked — when the
//! endpoint is created or changed, and again at each delivery, by the resolver the delivery
//! client connects through (so a name that re-resolves to an internal address after the check
//! still reaches nothing: the connection goes only to a checked address). Loopback, private,
//! link-local (with the cloud metadata address), shared (CGNAT), unique-local, multicast,
//! documentation and reserved addresses are refused unless the operator allows a network with
//! `webhook_allowed_networks`; `http://` is accepted only when every address is in such a
//! network, everything else needs `https://`. Redirects are never followed (a 3xx is a failed
//! delivery), so a public receiver cannot bounce a delivery inward.

use std::future::Future;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::client::legacy::connect::dns::Name;

/// The setting (and environment variable) that allows networks; named in every refusal.
pub const SETTING: &str = "`webhook_allowed_networks` (env BANLI_WEBHOOK_ALLOWED_NETWORKS)";

/// How long a host name has to resolve.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(5);

/// A network in CIDR notation (`10.1.0.0/16`, `fd00::/8`; a bare address is one host).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Network {
    addr: IpAddr,
    prefix: u8,
}

impl FromStr for Network {
    type Err = String;

    fn from_str(s: &str) -> Result<Network, String> {
        let s = s.trim();
        let bad = || format!("`{s}` is not a network: give CIDR notation, e.g. `10.20.0.0/16`");
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| bad())?;
        let bits = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => bits,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= bits)
                .ok_or_else(bad)?,
        };
        Ok(Network { addr, prefix })
    }
}

impl std::fmt::Display for Network {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

fn bits_match(a: u128, b: u128, prefix: u8, width: u8) -> bool {
    if prefix == 0 {
        return true;
    }
    let shift = u32::from(width - prefix);
    (a >> shift) == (b >> shift)
}

impl Network {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => bits_match(
                u128::from(u32::from(n)),
                u128::from(u32::from(a)),
                self.prefix,
                32,
            ),
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                bits_match(u128::from(n), u128::from(a), self.prefix, 128)
            }
            _ => false,
        }
    }
}

/// Why an address is refused: its class, as a refusal names it.
pub fn refused_class(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_class(v4),
        IpAddr::V6(v6) => v6_class(v6),
    }
}

fn in4(ip: Ipv4Addr, net: [u8; 4], prefix: u8) -> bool {
    bits_match(
        u128::from(u32::from(ip)),
        u128::from(u32::from(Ipv4Addr::from(net))),
        prefix,
        32,
    )
}

fn v4_class(ip: Ipv4Addr) -> Option<&'static str> {
    let table: [([u8; 4], u8, &'static str); 16] = [
        ([169, 254, 169, 254], 32, "cloud metadata"),
        ([0, 0, 0, 0], 8, "unspecified (this network)"),
        ([127, 0, 0, 0], 8, "loopback"),
        ([10, 0, 0, 0], 8, "private"),
        ([172, 16, 0, 0], 12, "private"),
        ([192, 168, 0, 0], 16, "private"),
        ([100, 64, 0, 0], 10, "shared (CGNAT)"),
        ([169, 254, 0, 0], 16, "link-local"),
        ([192, 0, 0, 0], 24, "reserved (IETF protocol assignments)"),
        ([192, 0, 2, 0], 24, "documentation"),
        ([198, 51, 100, 0], 24, "documentation"),
        ([203, 0, 113, 0], 24, "documentation"),
        ([198, 18, 0, 0], 15, "reserved (benchmarking)"),
        ([224, 0, 0, 0], 4, "multicast"),
        ([255, 255, 255, 255], 32, "broadcast"),
        ([240, 0, 0, 0], 4, "reserved"),
    ];
    table
        .iter()
        .find(|(net, prefix, _)| in4(ip, *net, *prefix))
        .map(|(_, _, class)| *class)
}

fn v6_class(ip: Ipv6Addr) -> Option<&'static str> {
    let v = u128::from(ip);
    let within = |net: u128, prefix: u8| bits_match(v, net, prefix, 128);
    // Forms that carry an IPv4 address are judged by it.
    if within(0xffff_0000_0000, 96) || within(0x0064_ff9b_u128 << 96, 96) {
        return v4_class(Ipv4Addr::from(v as u32));
    }
    if within(0x2002_u128 << 112, 16) {
        // 6to4: the IPv4 address in bits 16..48.
        return v4_class(Ipv4Addr::from((v >> 80) as u32));
    }
    let table: [(u128, u8, &'static str); 12] = [
        (0, 128, "unspecified"),
        (1, 128, "loopback"),
        (0, 96, "reserved (IPv4-compatible)"),
        (0x0064_ff9b_0001_u128 << 80, 48, "private (local-use NAT64)"),
        (0x0100_u128 << 112, 64, "reserved (discard)"),
        (0x2001_0db8_u128 << 96, 32, "documentation"),
        (
            0x2001_u128 << 112,
            23,
            "reserved (IETF protocol assignments)",
        ),
        (0xfd00_0ec2_u128 << 96 | 0x254, 128, "cloud metadata"),
        (0xfc_u128 << 120, 7, "unique local"),
        (0xfe80_u128 << 112, 10, "link-local"),
        (0xfec0_u128 << 112, 10, "private (site-local)"),
        (0xff_u128 << 120, 8, "multicast"),
    ];
    table
        .iter()
        .find(|(net, prefix, _)| within(*net, *prefix))
        .map(|(_, _, class)| *class)
}

/// Why a host cannot be delivered to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EgressError {
    /// The host resolves to an address of a refused class.
    Refused { class: &'static str },
    /// The host does not resolve (or not in time).
    Unresolvable,
    /// `http://` to an address the operator has not allowed.
    PlainHttp,
}

impl std::fmt::Display for EgressError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EgressError::Refused { class } => write!(
                f,
                "the host resolves to a {class} address; webhooks reach public addresses only \
                 unless the operator allows the network with {SETTING}"
            ),
            EgressError::Unresolvable => f.write_str("the host does not resolve"),
            EgressError::PlainHttp => write!(
                f,
                "a webhook to the public internet needs https://; http:// is only for networks \
                 allowed with {SETTING}"
            ),
        }
    }
}

impl std::error::Error for EgressError {}

/// The policy: the networks the operator allows beyond the public internet.
#[derive(Debug, Clone, Default)]
pub struct Egress {
    allowed: Arc<Vec<Network>>,
}

impl Egress {
    pub fn new(allowed: Vec<Network>) -> Egress {
        Egress {
            allowed: Arc::new(allowed),
        }
    }

    /// A comma-separated list of networks, as the setting holds it.
    pub fn parse_list(text: &str) -> Result<Vec<Network>, String> {
        text.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(Network::from_str)
            .collect()
    }

    pub fn allowed_networks(&self) -> &[Network] {
        &self.allowed
    }

    /// Whether the operator allows this address explicitly.
    pub fn allows(&self, ip: IpAddr) -> bool {
        let mapped = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4),
            IpAddr::V4(_) => None,
        };
        self.allowed
            .iter()
            .any(|n| n.contains(ip) || mapped.is_some_and(|m| n.contains(m)))
    }

    /// Checks one address.
    pub fn check(&self, ip: IpAddr) -> Result<(), EgressError> {
        match refused_class(ip) {
            Some(class) if !self.allows(ip) => Err(EgressError::Refused { class }),
            _ => Ok(()),
        }
    }

    /// Resolves `host` and checks every address: all of them, or the first refusal (a name
    /// with one internal address among public ones is refused whole).
    pub async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, EgressError> {
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
            Ok(ip) => vec![SocketAddr::new(ip, port)],
            Err(_) => {
                match tokio::time::timeout(RESOLVE_TIMEOUT, tokio::net::lookup_host((host, port)))
                    .await
                {
                    Ok(Ok(a)) => a.collect(),
                    _ => return Err(EgressError::Unresolvable),
                }
            }
        };
        if addrs.is_empty() {
            return Err(EgressError::Unresolvable);
        }
        for a in &addrs {
            self.check(a.ip())?;
        }
        Ok(addrs)
    }

    /// Checks a target before anything is sent to it: its addresses, and `https` unless every
    /// address is allowed explicitly.
    pub async fn check_target(&self, uri: &hyper::Uri) -> Result<Vec<SocketAddr>, EgressError> {
        let host = uri.host().unwrap_or_default();
        let https = uri.scheme_str() == Some("https");
        let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
        let addrs = self.resolve(host, port).await?;
        if !https && !addrs.iter().all(|a| self.allows(a.ip())) {
            return Err(EgressError::PlainHttp);
        }
        Ok(addrs)
    }

    /// Checks an endpoint URL before it is stored: its form ([`crate::check_url`]) and its
    /// target ([`Egress::check_target`]). The error says what to change.
    pub async fn check_url(&self, url: &str) -> Result<hyper::Uri, String> {
        let uri = crate::check_url(url)?;
        self.check_target(&uri).await.map_err(|e| match e {
            EgressError::Unresolvable => format!(
                "`{}` does not resolve; give a host name with a public address",
                uri.host().unwrap_or_default()
            ),
            e => format!("`{url}`: {e}"),
        })?;
        Ok(uri)
    }
}

/// The resolver the delivery client connects through: each name resolved and checked at
/// connect time, so the connection goes to the address that was checked.
#[derive(Debug, Clone)]
pub struct Resolver(pub Egress);

impl tower_service::Service<Name> for Resolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = EgressError;
    type Future =
        Pin<Box<dyn Future<Output = Result<std::vec::IntoIter<SocketAddr>, EgressError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), EgressError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let egress = self.0.clone();
        Box::pin(async move {
            // The connector sets the URL's port on each address.
            egress.resolve(name.as_str(), 0).await.map(Vec::into_iter)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn internal_addresses_are_refused_by_class() {
        let cases = [
            ("127.0.0.1", "loopback"),
            ("127.255.0.9", "loopback"),
            ("10.0.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            ("100.64.0.1", "shared (CGNAT)"),
            ("169.254.169.254", "cloud metadata"),
            ("169.254.0.7", "link-local"),
            ("0.0.0.0", "unspecified (this network)"),
            ("224.0.0.1", "multicast"),
            ("255.255.255.255", "broadcast"),
            ("240.0.0.1", "reserved"),
            ("192.0.2.10", "documentation"),
            ("::1", "loopback"),
            ("::", "unspecified"),
            ("fd12:3456::1", "unique local"),
            ("fd00:ec2::254", "cloud metadata"),
            ("fe80::1", "link-local"),
            ("ff02::1", "multicast"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:169.254.169.254", "cloud metadata"),
            ("64:ff9b::a00:1", "private"),
            ("2002:7f00:1::", "loopback"),
            ("2001:db8::1", "documentation"),
        ];
        let strict = Egress::default();
        for (addr, class) in cases {
            assert_eq!(refused_class(ip(addr)), Some(class), "{addr}");
            assert_eq!(
                strict.check(ip(addr)),
                Err(EgressError::Refused { class }),
                "{addr}"
            );
        }
        for public in [
            "93.184.216.34",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert_eq!(refused_class(ip(public)), None, "{public}");
            assert!(strict.check(ip(public)).is_ok(), "{public}");
        }
    }

    #[test]
    fn allowed_networks_open_exactly_their_addresses() {
        let nets = Egress::parse_list(" 127.0.0.0/8, 10.20.0.0/16 ,fd00::/8,").unwrap_or_default();
        assert_eq!(nets.len(), 3);
        let e = Egress::new(nets);
        assert!(e.check(ip("127.0.0.1")).is_ok());
        assert!(e.check(ip("::ffff:127.0.0.1")).is_ok());
        assert!(e.check(ip("10.20.3.4")).is_ok());
        assert!(e.check(ip("fd00::5")).is_ok());
        assert!(e.check(ip("10.21.0.1")).is_err());
        assert!(e.check(ip("169.254.169.254")).is_err());
        assert!(e.check(ip("::1")).is_err());
        for bad in [
            "10.0.0.0/33",
            "fd00::/129",
            "example.org/8",
            "10.0.0/8",
            "/8",
        ] {
            assert!(Egress::parse_list(bad).is_err(), "{bad}");
        }
        assert_eq!(
            "10.0.0.0/8".parse::<Network>().map(|n| n.to_string()),
            Ok("10.0.0.0/8".to_owned())
        );
        assert!(
            "0.0.0.0/0"
                .parse::<Network>()
                .is_ok_and(|n| n.contains(ip("8.8.8.8")))
        );
    }

    #[tokio::test]
    async fn urls_are_checked_by_address_and_scheme() {
        let strict = Egress::default();
        for (url, says) in [
            ("http://127.0.0.1:9000/hook", "loopback"),
            ("https://127.0.0.1:9000/hook", "loopback"),
            ("https://[::1]:22/", "loopback"),
            ("https://169.254.169.254/latest/meta-data", "cloud metadata"),
            ("https://10.0.0.1/", "private"),
            ("https://localhost/", "loopback"),
        ] {
            let e = strict.check_url(url).await.err().unwrap_or_default();
            assert!(e.contains(says) && e.contains(SETTING), "{url}: {e}");
        }
        // Public addresses need https.
        let e = strict
            .check_url("http://93.184.216.34/hook")
            .await
            .err()
            .unwrap_or_default();
        assert!(e.contains("https://"), "{e}");
        assert!(strict.check_url("https://93.184.216.34/hook").await.is_ok());
        // An allowed network may use http.
        let local = Egress::new(Egress::parse_list("127.0.0.0/8").unwrap_or_default());
        assert!(local.check_url("http://127.0.0.1:9000/hook").await.is_ok());
        assert!(local.check_url("https://[::1]:22/").await.is_err());
        // A name that does not resolve.
        let e = strict
            .check_url("https://no-such-host.invalid/")
            .await
            .err()
            .unwrap_or_default();
        assert!(e.contains("does not resolve"), "{e}");
    }
}
