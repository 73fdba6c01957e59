//! TLS for the REST and gRPC servers (rustls): the server's certificate chain and key, and —
//! with a client CA — client certificates required at the handshake, whose SHA-256
//! fingerprint an API key can be bound to (`banli keys create … --client-cert FILE`), so that
//! an agency system's key works only over a connection that presents its certificate.
//!
//! An unknown, expired or otherwise invalid client certificate fails the handshake; a valid one
//! that is not the key's is a 401 `certificate_mismatch` (gRPC UNAUTHENTICATED).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use sha2::{Digest, Sha256};

use crate::Principal;
use crate::error::{AppError, ErrorCode};

/// Where the server's TLS material is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, PEM, leaf first.
    pub cert: PathBuf,
    /// The private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// With it, every client must present a certificate issued by one of these CAs (PEM).
    pub client_ca: Option<PathBuf>,
}

/// The TLS side of the REST and gRPC servers of a process.
#[derive(Clone)]
pub struct ServerTls {
    /// ALPN h2 and http/1.1.
    pub(crate) http: tokio_rustls::TlsAcceptor,
    /// ALPN h2 only.
    pub(crate) grpc: tokio_rustls::TlsAcceptor,
    client_certs: bool,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls")
            .field("client_certs", &self.client_certs)
            .finish_non_exhaustive()
    }
}

/// The client certificate a connection presented: the SHA-256 of its DER encoding, lowercase
/// hex. Put into each request's extensions by the server; no client can set it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientCert(pub String);

impl ServerTls {
    /// Reads the files; an error says which file and what is wrong with it.
    pub fn load(files: &TlsFiles) -> Result<ServerTls, String> {
        let certs = read_certs(&files.cert, "tls_cert")?;
        let key = PrivateKeyDer::from_pem_file(&files.key).map_err(|e| {
            format!(
                "tls_key `{}`: no private key could be read ({e}); give a PEM file with a PKCS#8, PKCS#1 or SEC1 key",
                files.key.display()
            )
        })?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(rustls::DEFAULT_VERSIONS)
            .map_err(|e| format!("TLS: {e}"))?;
        let builder = match &files.client_ca {
            None => builder.with_no_client_auth(),
            Some(path) => {
                let mut roots = rustls::RootCertStore::empty();
                for cert in read_certs(path, "tls_client_ca")? {
                    roots.add(cert).map_err(|e| {
                        format!(
                            "tls_client_ca `{}`: a certificate is not a usable CA ({e})",
                            path.display()
                        )
                    })?;
                }
                let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
                    Arc::new(roots),
                    provider,
                )
                .build()
                .map_err(|e| format!("tls_client_ca `{}`: {e}", path.display()))?;
                builder.with_client_cert_verifier(verifier)
            }
        };
        let config = builder.with_single_cert(certs, key).map_err(|e| {
            format!(
                "tls_cert `{}` and tls_key `{}` do not go together ({e}); the key must be the certificate's",
                files.cert.display(),
                files.key.display()
            )
        })?;
        let mut http = config.clone();
        http.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let mut grpc = config;
        grpc.alpn_protocols = vec![b"h2".to_vec()];
        Ok(ServerTls {
            http: tokio_rustls::TlsAcceptor::from(Arc::new(http)),
            grpc: tokio_rustls::TlsAcceptor::from(Arc::new(grpc)),
            client_certs: files.client_ca.is_some(),
        })
    }

    /// Whether clients must present a certificate.
    pub fn requires_client_certs(&self) -> bool {
        self.client_certs
    }
}

fn read_certs(path: &Path, setting: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{setting} `{}`: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!(
            "{setting} `{}` holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
            path.display()
        ));
    }
    Ok(certs)
}

/// The SHA-256 fingerprint of a DER certificate, lowercase hex.
pub fn fingerprint(der: &[u8]) -> String {
    Sha256::digest(der)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The fingerprint of the first certificate of a PEM file, or a SHA-256 fingerprint written
/// out (64 hex digits, colons allowed, as `openssl x509 -fingerprint -sha256` prints it).
pub fn fingerprint_of(file_or_hex: &str) -> Result<String, String> {
    let hex: String = file_or_hex
        .trim()
        .trim_start_matches("sha256 Fingerprint=")
        .chars()
        .filter(|c| *c != ':')
        .collect();
    if hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
        return Ok(hex.to_ascii_lowercase());
    }
    let certs = read_certs(Path::new(file_or_hex), "--client-cert")?;
    Ok(fingerprint(&certs[0]))
}

impl Principal {
    /// The caller, if its key is not bound to a certificate or the connection presented the
    /// one it is bound to; otherwise a 401 `certificate_mismatch`.
    pub fn presented(self, cert: Option<&ClientCert>) -> Result<Principal, AppError> {
        match (&self.client_cert, cert) {
            (None, _) => Ok(self),
            // A fingerprint of a public certificate: nothing secret to time.
            (Some(bound), Some(ClientCert(seen))) if bound == seen => Ok(self),
            (Some(_), None) => Err(AppError::new(
                ErrorCode::CertificateMismatch,
                "this API key works only over TLS with the client certificate it is bound to; connect with that certificate",
            )),
            (Some(_), Some(_)) => Err(AppError::new(
                ErrorCode::CertificateMismatch,
                "this API key is bound to another client certificate; connect with the certificate the key was created for",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(bound: Option<&str>) -> Principal {
        Principal {
            position: None,
            key_id: uuid::Uuid::nil(),
            role: banli_domain::Role::Handler,
            agency: None,
            deputy: None,
            reference: None,
            client_cert: bound.map(str::to_owned),
        }
    }

    #[test]
    fn a_bound_key_needs_its_certificate() {
        let fp = "ab".repeat(32);
        let other = ClientCert("cd".repeat(32));
        assert!(principal(None).presented(None).is_ok());
        assert!(principal(None).presented(Some(&other)).is_ok());
        assert!(
            principal(Some(&fp))
                .presented(Some(&ClientCert(fp.clone())))
                .is_ok()
        );
        for seen in [None, Some(&other)] {
            let e = principal(Some(&fp)).presented(seen).expect_err("refused");
            assert_eq!(e.code, ErrorCode::CertificateMismatch);
            assert_eq!(e.code.http_status(), 401);
        }
    }

    #[test]
    fn fingerprints_are_read_from_files_or_text() {
        let cert =
            rcgen::generate_simple_self_signed(vec!["agency.example".into()]).expect("test setup");
        let dir = std::env::temp_dir().join(format!("banli-tls-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).expect("test setup");
        let path = dir.join("c.pem");
        std::fs::write(&path, cert.cert.pem()).expect("test setup");
        let fp = fingerprint_of(path.to_str().expect("test setup")).expect("test setup");
        assert_eq!(fp, fingerprint(cert.cert.der()));
        let colons: Vec<String> = fp
            .as_bytes()
            .chunks(2)
            .map(|c| String::from_utf8_lossy(c).to_ascii_uppercase())
            .collect();
        assert_eq!(fingerprint_of(&colons.join(":")).expect("test setup"), fp);
        let err = fingerprint_of(dir.join("missing.pem").to_str().expect("test setup"))
            .expect_err("refused");
        assert!(err.contains("--client-cert"), "{err}");
        std::fs::write(&path, "not a certificate").expect("test setup");
        assert!(fingerprint_of(path.to_str().expect("test setup")).is_err());
        let _ = std::fs::remove_dir_all(dir);
    }
}
