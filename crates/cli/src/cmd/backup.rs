//! `banli backup` and `banli restore`: the embedded mode's data directory — every SQLite file as
//! of one instant, taken while the server runs, and the key files — with a manifest of sizes,
//! checksums and schema versions. A restore checks everything before it writes anything and
//! never overwrites a file.
//!
//! PostgreSQL is backed up with `pg_dump` (README, "Backup and restore"); the key files are kept
//! the same way there.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use banli_db::Backend;
use banli_db::snapshot::{SnapshotFile, snapshot_sqlite};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::cmd::serve::FIRST_KEY_FILE;
use crate::config::Config;

/// The manifest's name; a backup writes it last, so a directory without it is incomplete.
pub const MANIFEST: &str = "manifest.json";
const FORMAT: &str = "banli-backup/1";
/// How long a backup waits to hold the writers for the instant of the copy.
const LOCK_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    format: String,
    banli_version: String,
    created_at: String,
    /// How long the server's writers were held to take the copy.
    write_pause_ms: f64,
    files: Vec<Entry>,
}

#[derive(Debug, Serialize, Deserialize)]
struct Entry {
    /// The file's name in the backup directory.
    name: String,
    kind: Kind,
    /// For a database: which service's, and its latest migration.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    service: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    migration: Option<i64>,
    bytes: u64,
    sha256: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Kind {
    Database,
    Key,
}

/// A service's database in the embedded mode.
struct Database {
    service: &'static str,
    file: &'static str,
    migrations_table: &'static str,
    latest: fn() -> i64,
}

fn latest(m: sqlx::migrate::Migrator) -> i64 {
    m.iter().map(|m| m.version).max().unwrap_or(0)
}

const DATABASES: [Database; 4] = [
    Database {
        service: "suggestions",
        file: "banli.db",
        migrations_table: banli_suggestions::store::MIGRATIONS_TABLE,
        latest: || latest(banli_suggestions::store::migrator(Backend::Sqlite)),
    },
    Database {
        service: "coordination",
        file: "coordination.db",
        migrations_table: banli_coordination::store::MIGRATIONS_TABLE,
        latest: || latest(banli_coordination::store::migrator(Backend::Sqlite)),
    },
    Database {
        service: "followup",
        file: "followup.db",
        migrations_table: banli_followup::store::MIGRATIONS_TABLE,
        latest: || latest(banli_followup::store::migrator(Backend::Sqlite)),
    },
    Database {
        service: "audit",
        file: "audit.db",
        migrations_table: banli_auditlog::store::MIGRATIONS_TABLE,
        latest: || latest(banli_auditlog::store::migrator(Backend::Sqlite)),
    },
];

/// Where a database lives under this configuration.
fn database_path(config: &Config, db: &Database) -> Result<PathBuf> {
    if db.service == "suggestions" {
        let url = config.database_url();
        let options = sqlx::sqlite::SqliteConnectOptions::from_str(&url)
            .with_context(|| format!("reading the database URL {}", banli_db::redact(&url)))?;
        return Ok(options.get_filename().to_path_buf());
    }
    Ok(config.data_dir.join(db.file))
}

/// The key files under this configuration: (name in the backup, path).
fn key_paths(config: &Config) -> [(&'static str, PathBuf); 4] {
    [
        (banli_auditlog::keys::KEY_FILE, config.audit_key_path()),
        (
            banli_coordination::webhooks::KEY_FILE,
            config.webhook_key_path(),
        ),
        (
            banli_api::consistency::KEY_FILE,
            config.consistency_key_path(),
        ),
        (FIRST_KEY_FILE, config.data_dir.join(FIRST_KEY_FILE)),
    ]
}

fn refuse_postgres(config: &Config, what: &str) -> Result<()> {
    if config.database_url().starts_with("sqlite:") {
        return Ok(());
    }
    bail!(
        "banli {what} handles the embedded mode's SQLite files; on PostgreSQL use pg_dump and pg_restore, and keep the key files beside the dump (README, \"Backup and restore\")"
    )
}

pub async fn backup(config: &Config, to: &Path) -> Result<()> {
    refuse_postgres(config, "backup")?;
    if to.exists()
        && std::fs::read_dir(to)
            .with_context(|| format!("reading {}", to.display()))?
            .next()
            .is_some()
    {
        bail!(
            "{} is not empty: a backup goes into a new or empty directory",
            to.display()
        );
    }
    let mut files = Vec::new();
    let mut dbs = Vec::new();
    for db in &DATABASES {
        let source = database_path(config, db)?;
        if source.is_file() {
            files.push(SnapshotFile {
                source,
                target: to.join(db.file),
                migrations_table: db.migrations_table.to_owned(),
            });
            dbs.push(db);
        } else {
            eprintln!("note: no {} database at {}", db.service, source.display());
        }
    }
    if files.is_empty() {
        bail!(
            "no database in {}: give the data directory of the server (--data-dir or the config's data_dir)",
            config.data_dir.display()
        );
    }
    banli_db::create_private_dir(to).with_context(|| format!("creating {}", to.display()))?;
    let mut written: Vec<PathBuf> = Vec::new();
    let result = async {
        let started = Instant::now();
        let snapshot = snapshot_sqlite(&files, LOCK_TIMEOUT).await?;
        written.extend(files.iter().map(|f| f.target.clone()));
        let mut entries = Vec::new();
        let mut rows = 0;
        for ((f, db), copied) in files.iter().zip(&dbs).zip(&snapshot.files) {
            let (bytes, sha256) = digest(&f.target)?;
            rows += copied.rows;
            entries.push(Entry {
                name: db.file.to_owned(),
                kind: Kind::Database,
                service: Some(db.service.to_owned()),
                migration: copied.migration,
                bytes,
                sha256,
            });
        }
        for (name, path) in key_paths(config) {
            let Ok(bytes) = std::fs::read(&path) else {
                eprintln!("note: no key file at {}", path.display());
                continue;
            };
            let target = to.join(name);
            written.push(target.clone());
            write_new(&target, &bytes, true)?;
            entries.push(Entry {
                name: name.to_owned(),
                kind: Kind::Key,
                service: None,
                migration: None,
                bytes: bytes.len() as u64,
                sha256: hex(&Sha256::digest(&bytes)),
            });
        }
        let manifest = Manifest {
            format: FORMAT.to_owned(),
            banli_version: env!("CARGO_PKG_VERSION").to_owned(),
            created_at: time::OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            write_pause_ms: snapshot.write_pause.as_secs_f64() * 1000.0,
            files: entries,
        };
        let text = serde_json::to_vec_pretty(&manifest)?;
        let target = to.join(MANIFEST);
        written.push(target.clone());
        write_new(&target, &text, false)?;
        sync_dir(to)?;
        let size: u64 = manifest.files.iter().map(|e| e.bytes).sum();
        println!(
            "backed up {} databases ({rows} rows) and {} key files to {} in {:.2} s; {size} bytes; the server's writers were held {:.1} ms",
            snapshot.files.len(),
            manifest.files.len() - snapshot.files.len(),
            to.display(),
            started.elapsed().as_secs_f64(),
            manifest.write_pause_ms
        );
        println!(
            "the backup holds the signing and secrets keys: keep it as private as the data directory"
        );
        anyhow::Ok(())
    }
    .await;
    if result.is_err() {
        for f in &written {
            let _ = std::fs::remove_file(f);
        }
    }
    result
}

pub async fn restore(config: &Config, from: &Path) -> Result<()> {
    refuse_postgres(config, "restore")?;
    let manifest_path = from.join(MANIFEST);
    let text = std::fs::read(&manifest_path).with_context(|| {
        format!(
            "{} is not a complete banli backup: cannot read {} (a backup writes it last)",
            from.display(),
            manifest_path.display()
        )
    })?;
    let manifest: Manifest = serde_json::from_slice(&text)
        .with_context(|| format!("{} is not a banli backup manifest", manifest_path.display()))?;
    if manifest.format != FORMAT {
        bail!(
            "{} is in format `{}`; this banli reads `{FORMAT}`",
            manifest_path.display(),
            manifest.format
        );
    }
    // Everything checked before anything is written.
    let mut plan = Vec::new();
    for e in &manifest.files {
        if e.name.contains('/') || e.name.contains('\\') || e.name.starts_with('.') {
            bail!(
                "{}: the file name `{}` is not a plain name",
                manifest_path.display(),
                e.name
            );
        }
        let source = from.join(&e.name);
        if !source.is_file() {
            bail!(
                "the backup is missing {} (listed in the manifest)",
                source.display()
            );
        }
        let (bytes, sha256) = digest(&source)?;
        if bytes != e.bytes || sha256 != e.sha256 {
            bail!(
                "{} does not match the manifest ({bytes} bytes, sha256 {sha256}; listed {} bytes, sha256 {}): the backup is damaged",
                source.display(),
                e.bytes,
                e.sha256
            );
        }
        let target = match e.kind {
            Kind::Database => {
                let Some(db) = DATABASES
                    .iter()
                    .find(|d| Some(d.service) == e.service.as_deref() && d.file == e.name)
                else {
                    bail!(
                        "{}: `{}` is not a database this banli knows",
                        manifest_path.display(),
                        e.name
                    );
                };
                let known = (db.latest)();
                if let Some(m) = e.migration.filter(|m| *m > known) {
                    bail!(
                        "{} is from a newer schema (migration {m}; this banli {} knows up to {known}): restore it with the banli that wrote it ({}) or newer",
                        source.display(),
                        env!("CARGO_PKG_VERSION"),
                        manifest.banli_version
                    );
                }
                database_path(config, db)?
            }
            Kind::Key => match key_paths(config).into_iter().find(|(n, _)| *n == e.name) {
                Some((_, path)) => path,
                None => bail!(
                    "{}: `{}` is not a key file this banli knows",
                    manifest_path.display(),
                    e.name
                ),
            },
        };
        for existing in [
            target.clone(),
            suffixed(&target, "-wal"),
            suffixed(&target, "-shm"),
        ] {
            if existing.exists() {
                bail!(
                    "{} exists: a restore never overwrites a file; restore into a new data directory (--data-dir)",
                    existing.display()
                );
            }
        }
        plan.push((source, target, e));
    }
    banli_db::create_private_dir(&config.data_dir)
        .with_context(|| format!("creating {}", config.data_dir.display()))?;
    let mut written = Vec::new();
    let result = (|| {
        for (source, target, e) in &plan {
            if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
                banli_db::create_private_dir(dir)
                    .with_context(|| format!("creating {}", dir.display()))?;
            }
            written.push(target.clone());
            copy_checked(source, target, &e.sha256, e.kind == Kind::Key)?;
        }
        for (_, target, _) in &plan {
            if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
                sync_dir(dir)?;
            }
        }
        anyhow::Ok(())
    })();
    if result.is_err() {
        for f in &written {
            let _ = std::fs::remove_file(f);
        }
        return result;
    }
    println!(
        "restored {} files from {} (taken {} by banli {}) into {}",
        plan.len(),
        from.display(),
        manifest.created_at,
        manifest.banli_version,
        config.data_dir.display()
    );
    println!(
        "next: `banli serve --data-dir {0}`; check the audit log against your saved checkpoints with `banli audit verify --data-dir {0} --public-key FILE --trusted-checkpoints DIR`",
        config.data_dir.display()
    );
    Ok(())
}

fn suffixed(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// Size and SHA-256 of a file, read in blocks.
fn digest(path: &Path) -> Result<(u64, String)> {
    hash_into(path, std::io::sink())
}

/// Copies `source` to the new file `target`, checking on the way that it is still the file the
/// manifest describes.
fn copy_checked(source: &Path, target: &Path, sha256: &str, private: bool) -> Result<()> {
    let mut to = create_new(target, private)?;
    let (_, copied) =
        hash_into(source, &mut to).with_context(|| format!("copying to {}", target.display()))?;
    if copied != sha256 {
        bail!("{} changed while it was restored", source.display());
    }
    to.sync_all()
        .with_context(|| format!("writing {}", target.display()))
}

/// Reads `path` in blocks into `sink`: its size and SHA-256.
fn hash_into(path: &Path, mut sink: impl Write) -> Result<(u64, String)> {
    let mut f = std::fs::File::open(path).with_context(|| format!("reading {}", path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = f
            .read(&mut buf)
            .with_context(|| format!("reading {}", path.display()))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
        sink.write_all(&buf[..n])?;
        total += n as u64;
    }
    Ok((total, hex(&h.finalize())))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes a new file (never over an existing one) and makes it durable; owner-only when private.
fn write_new(path: &Path, bytes: &[u8], private: bool) -> Result<()> {
    let mut f = create_new(path, private)?;
    f.write_all(bytes)
        .and_then(|()| f.sync_all())
        .with_context(|| format!("writing {}", path.display()))
}

fn create_new(path: &Path, private: bool) -> Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    if private {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    #[cfg(not(unix))]
    let _ = private;
    options
        .open(path)
        .with_context(|| format!("creating {}", path.display()))
}

fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .with_context(|| format!("syncing {}", dir.display()))
}
