//! The log's signing key: generated on first start into the data directory (mode 0600), or
//! read from a file the configuration names.

use std::io::Write;
use std::path::Path;

use banli_audit::Signer;

/// The signing key file's name in the data directory.
pub const KEY_FILE: &str = "audit-signing.key";

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read the audit signing key {path}: {reason}")]
    Read { path: String, reason: String },
    #[error("cannot write the audit signing key {path}: {reason}")]
    Write { path: String, reason: String },
}

/// Reads the signer key at `path`, or creates one named `origin` there (mode 0600) if the file
/// does not exist. A key of another name than `origin` is refused: checkpoints name the log.
pub fn load_or_create(path: &Path, origin: &str) -> Result<Signer, KeyError> {
    let shown = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(text) => {
            let signer = Signer::parse(&text).map_err(|e| KeyError::Read {
                path: shown.clone(),
                reason: e.to_string(),
            })?;
            if signer.name() != origin {
                return Err(KeyError::Read {
                    path: shown,
                    reason: format!(
                        "the key is for the log `{}`, not `{origin}` (set audit_origin to match, or move the key away to start a new log)",
                        signer.name()
                    ),
                });
            }
            Ok(signer)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let signer = Signer::generate(origin).map_err(|e| KeyError::Write {
                path: shown.clone(),
                reason: e.to_string(),
            })?;
            let write = |reason: std::io::Error| KeyError::Write {
                path: shown.clone(),
                reason: reason.to_string(),
            };
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create_new(true);
            #[cfg(unix)]
            {
                use std::os::unix::fs::OpenOptionsExt;
                options.mode(0o600);
            }
            let mut f = match options.open(path) {
                Ok(f) => f,
                // Another process sharing the file (a replica starting at the same moment)
                // created it first: read its key once it is written.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    return read_written(path, origin);
                }
                Err(e) => return Err(write(e)),
            };
            f.write_all(format!("{}\n", signer.to_text()).as_bytes())
                .map_err(write)?;
            f.sync_all().map_err(write)?;
            tracing::info!(path = %shown, public_key = %signer.verifier().to_text(), "generated the audit log's signing key; keep a copy of it and publish the public key");
            Ok(signer)
        }
        Err(e) => Err(KeyError::Read {
            path: shown,
            reason: e.to_string(),
        }),
    }
}

/// Reads a key another process is writing: a few tries while the file is still incomplete.
fn read_written(path: &Path, origin: &str) -> Result<Signer, KeyError> {
    let mut tries = 0;
    loop {
        match load_or_create(path, origin) {
            Err(KeyError::Read { .. }) if tries < 20 => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            other => return other,
        }
    }
}
