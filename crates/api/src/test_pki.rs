//! A throwaway certificate authority for tests and benches (feature `test-pki`): a CA, a server
//! certificate for `localhost` and 127.0.0.1, client certificates (valid, expired, or from an
//! unknown CA), the files the server reads and the rustls client configurations that connect.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName};

use crate::tls::TlsFiles;

/// A client's certificate and key.
#[derive(Debug, Clone)]
pub struct Identity {
    pub cert: CertificateDer<'static>,
    key: Vec<u8>,
    /// The SHA-256 fingerprint a key is bound to.
    pub fingerprint: String,
    pub cert_pem: String,
}

/// The CA and the files of one test's server.
pub struct TestPki {
    dir: PathBuf,
    issuer: Issuer<'static, KeyPair>,
    ca: CertificateDer<'static>,
}

impl std::fmt::Debug for TestPki {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestPki").field("dir", &self.dir).finish()
    }
}

impl TestPki {
    /// A new CA and server certificate, written under `dir` (created).
    pub fn new(dir: &Path) -> TestPki {
        std::fs::create_dir_all(dir).expect("a directory for the test PKI");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params
            .distinguished_name
            .push(DnType::CommonName, "banli test CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().expect("CA key");
        let ca = params.self_signed(&key).expect("CA certificate");
        let pki = TestPki {
            dir: dir.to_owned(),
            issuer: Issuer::new(params, key),
            ca: ca.der().clone(),
        };
        std::fs::write(dir.join("ca.pem"), ca.pem()).expect("write ca.pem");
        let mut server =
            CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
                .expect("server params");
        server.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let key = KeyPair::generate().expect("server key");
        let cert = server.signed_by(&key, &pki.issuer).expect("server cert");
        std::fs::write(dir.join("server.pem"), cert.pem()).expect("write server.pem");
        std::fs::write(dir.join("server.key"), key.serialize_pem()).expect("write server.key");
        pki
    }

    /// The server's files; with `client_certs`, clients must present one issued by this CA.
    pub fn server_files(&self, client_certs: bool) -> TlsFiles {
        TlsFiles {
            cert: self.dir.join("server.pem"),
            key: self.dir.join("server.key"),
            client_ca: client_certs.then(|| self.dir.join("ca.pem")),
        }
    }

    /// A client certificate for `name`, issued by this CA and valid now.
    pub fn client(&self, name: &str) -> Identity {
        self.issue(name, false)
    }

    /// A client certificate issued by this CA that expired yesterday.
    pub fn expired_client(&self, name: &str) -> Identity {
        self.issue(name, true)
    }

    /// A self-signed client certificate (from no CA the server knows).
    pub fn stranger(name: &str) -> Identity {
        let params = client_params(name, false);
        let key = KeyPair::generate().expect("client key");
        let cert = params.self_signed(&key).expect("self-signed client");
        identity(cert, &key)
    }

    fn issue(&self, name: &str, expired: bool) -> Identity {
        let params = client_params(name, expired);
        let key = KeyPair::generate().expect("client key");
        let cert = params.signed_by(&key, &self.issuer).expect("client cert");
        identity(cert, &key)
    }

    /// A client configuration trusting this CA, presenting `identity` if given, offering ALPN
    /// `alpn` (e.g. `[b"h2"]` for gRPC, `[b"http/1.1"]`).
    pub fn client_config(
        &self,
        identity: Option<&Identity>,
        alpn: &[&[u8]],
    ) -> Arc<rustls::ClientConfig> {
        let mut roots = rustls::RootCertStore::empty();
        roots.add(self.ca.clone()).expect("CA into roots");
        let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_protocol_versions(rustls::DEFAULT_VERSIONS)
        .expect("versions")
        .with_root_certificates(roots);
        let mut config = match identity {
            None => builder.with_no_client_auth(),
            Some(id) => builder
                .with_client_auth_cert(
                    vec![id.cert.clone()],
                    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(id.key.clone())),
                )
                .expect("client identity"),
        };
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Arc::new(config)
    }
}

fn client_params(name: &str, expired: bool) -> CertificateParams {
    let mut params = CertificateParams::new(Vec::<String>::new()).expect("client params");
    params.distinguished_name.push(DnType::CommonName, name);
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    if expired {
        let now = time::OffsetDateTime::now_utc();
        params.not_before = now - time::Duration::days(30);
        params.not_after = now - time::Duration::days(1);
    }
    params
}

fn identity(cert: rcgen::Certificate, key: &KeyPair) -> Identity {
    Identity {
        fingerprint: crate::tls::fingerprint(cert.der()),
        cert_pem: cert.pem(),
        cert: cert.der().clone(),
        key: key.serialize_der(),
    }
}

/// A TLS connection to `addr` as `localhost` with `config`.
pub async fn connect(
    addr: std::net::SocketAddr,
    config: Arc<rustls::ClientConfig>,
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    tcp.set_nodelay(true)?;
    let name = ServerName::try_from("localhost").expect("a server name");
    tokio_rustls::TlsConnector::from(config)
        .connect(name, tcp)
        .await
}
