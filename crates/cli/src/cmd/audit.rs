//! `banli audit`: verify the stored audit log, or a checkpoint and a proof from files with only
//! the public key.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use banli_audit::{Hash, Verifier, leaf_hash, verify_consistency, verify_inclusion};
use banli_db::{ConnectOptions, Pool};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use clap::Subcommand;

use banli_auditlog::verify::{Finding, Trusted, VerifyError};

use crate::config::Config;

/// How `banli audit` ends, beside success (0) and other errors (1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// The stored log was tampered with (or a witness copy shows the log forked).
    Tampered = 3,
    /// A trusted checkpoint given to check against is unusable: unreadable, badly signed, or
    /// of another log.
    BadTrusted = 4,
}

/// An error that ends `banli audit` with its own exit code.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct AuditFailure {
    pub exit: Exit,
    pub message: String,
}

fn fail(exit: Exit, message: String) -> anyhow::Error {
    AuditFailure { exit, message }.into()
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recompute every root from the stored leaves and check every stored checkpoint and the
    /// seal (their signatures, their roots), and the log's consistency with each trusted
    /// checkpoint. Reads the database of --data-dir (audit.db) or --database-url. Exit codes:
    /// 0 consistent, 3 tampered (the first bad index and what is wrong), 4 a trusted
    /// checkpoint is unusable (the file and why), 1 anything else.
    Verify {
        /// The log's public key file (`<name>+<id>+<key>`, as GET /v1/audit/public-key serves
        /// it). Never taken from the signing key beside the database it checks.
        #[arg(
            long,
            required_unless_present = "public_key_url",
            conflicts_with = "public_key_url"
        )]
        public_key: Option<PathBuf>,
        /// Fetch the public key from this URL instead (e.g.
        /// https://banli.example/v1/audit/public-key): only where you trust that server.
        #[arg(long)]
        public_key_url: Option<String>,
        /// A checkpoint kept outside the database (`banli audit checkpoint --save`, or an
        /// agency's copy of an `audit.checkpoint` event); the log must extend it. Repeatable.
        #[arg(long = "trusted-checkpoint")]
        trusted_checkpoint: Vec<PathBuf>,
        /// Every `*.checkpoint` file in this directory, as --trusted-checkpoint.
        #[arg(long)]
        trusted_checkpoints: Option<PathBuf>,
    },
    /// Keep a witness copy: fetch the log's latest signed checkpoint from a running server and
    /// save it in DIR (one file per tree size, never overwritten) — one cron line. Sends
    /// If-None-Match, so an unchanged checkpoint costs nothing. Exit code 3 when the server
    /// signed a different checkpoint for a size already saved (the log forked).
    Checkpoint {
        /// The server's base URL, e.g. http://127.0.0.1:8080.
        #[arg(long)]
        url: String,
        /// Where witness copies are kept.
        #[arg(long)]
        save: PathBuf,
        /// Check the signature with this public key before saving.
        #[arg(long)]
        public_key: Option<PathBuf>,
    },
    /// Set aside stored leaves that no signature of the log covers (what `verify` reports as
    /// "not written by the log's sequencer"): they move to `audit_quarantine`, and the log
    /// starts again. Run it with the server stopped (it takes the sequencer lock, and is refused
    /// while a follow-up process holds it); it refuses any leaf the log signed.
    Quarantine {
        /// The first leaf to set aside, as `verify` named it.
        #[arg(long)]
        from: u64,
        /// Why, kept beside the leaves.
        #[arg(long)]
        reason: String,
        /// The log's public key file, to check that the leaves are really unsigned.
        #[arg(long)]
        public_key: PathBuf,
    },
    /// Erase personal data from the log — a deputy's in every leaf that concerns them, or one
    /// leaf's — recording the erasure as a leaf of its own; proofs and `verify` stay intact.
    /// Runs with the follow-up service stopped (it takes the sequencer lock and signs with the
    /// log's key); while a server runs, use POST /v1/audit/erasures. Exit code 1 with the
    /// reason for an unknown subject or leaf, or data erased already.
    Erase {
        /// A deputy's id.
        #[arg(long, conflicts_with = "leaf", required_unless_present = "leaf")]
        subject: Option<String>,
        /// One leaf's index.
        #[arg(long)]
        leaf: Option<u64>,
        /// Why (kept, as erasable text, with the erasure's record).
        #[arg(long)]
        reason: String,
    },
    /// Generate a new signing key for the log (named by audit_origin) into FILE, mode 0600 —
    /// e.g. for a Kubernetes Secret that every follow-up replica mounts — and print its public
    /// key. Never overwrites a file.
    NewKey {
        /// Where to write the key.
        #[arg(long)]
        to: PathBuf,
    },
    /// Check a signed checkpoint and a proof from files, with only the public key: what a
    /// deputy or an inspector runs. Give --leaf-input or --leaf-hash with --inclusion, or
    /// --old-checkpoint with --consistency.
    VerifyProof {
        /// The public key file (GET /v1/audit/public-key).
        #[arg(long)]
        public_key: PathBuf,
        /// The signed checkpoint the proof leads to (GET /v1/audit/checkpoint).
        #[arg(long, required_unless_present = "bundle")]
        checkpoint: Option<PathBuf>,
        /// A proof bundle as the console's inspector page downloads it: the checkpoint, the
        /// inclusion proof at its size and the entry's bytes, in one JSON file.
        #[arg(long, conflicts_with_all = ["checkpoint", "inclusion", "leaf_input", "leaf_hash", "consistency", "old_checkpoint"])]
        bundle: Option<PathBuf>,
        /// An inclusion proof as served (GET /v1/audit/proofs/inclusion), JSON.
        #[arg(long, requires = "checkpoint")]
        inclusion: Option<PathBuf>,
        /// The leaf's exact bytes (a file), for --inclusion.
        #[arg(long)]
        leaf_input: Option<PathBuf>,
        /// The leaf hash (base64), for --inclusion.
        #[arg(long)]
        leaf_hash: Option<String>,
        /// A consistency proof as served (GET /v1/audit/proofs/consistency), JSON.
        #[arg(long)]
        consistency: Option<PathBuf>,
        /// The older signed checkpoint, for --consistency.
        #[arg(long)]
        old_checkpoint: Option<PathBuf>,
    },
}

pub async fn run(config: &Config, cmd: AuditCommand) -> Result<()> {
    match cmd {
        AuditCommand::Verify {
            public_key,
            public_key_url,
            trusted_checkpoint,
            trusted_checkpoints,
        } => {
            let verifier = match (public_key, public_key_url) {
                (Some(p), _) => verifier_from(&p)?,
                (None, Some(url)) => {
                    let (status, _, body) = http_get(&url, None).await?;
                    if status != 200 {
                        bail!(
                            "{url} answered {status}; give the public key file with --public-key"
                        );
                    }
                    Verifier::parse(String::from_utf8_lossy(&body).trim())
                        .with_context(|| format!("{url} did not serve a verifier key"))?
                }
                (None, None) => bail!("give --public-key FILE (or --public-key-url URL)"),
            };
            let mut files = trusted_checkpoint;
            if let Some(dir) = trusted_checkpoints {
                files.extend(checkpoint_files(&dir)?);
            }
            let trusted = files
                .iter()
                .map(|f| trusted_from(f, &verifier))
                .collect::<Result<Vec<_>>>()?;
            verify_store(config, &verifier, &trusted).await
        }
        AuditCommand::Checkpoint {
            url,
            save,
            public_key,
        } => save_checkpoint(&url, &save, public_key.as_deref()).await,
        AuditCommand::Quarantine {
            from,
            reason,
            public_key,
        } => quarantine(config, from, &reason, &verifier_from(&public_key)?).await,
        AuditCommand::Erase {
            subject,
            leaf,
            reason,
        } => erase(config, subject, leaf, &reason).await,
        AuditCommand::NewKey { to } => {
            if to.exists() {
                bail!("{} exists: a key is never overwritten", to.display());
            }
            let signer = banli_auditlog::keys::load_or_create(&to, &config.audit_origin)?;
            println!("{}", signer.verifier().to_text());
            eprintln!(
                "wrote the signing key of the log `{}` to {} (0600); the line above is its public key",
                config.audit_origin,
                to.display()
            );
            Ok(())
        }
        AuditCommand::VerifyProof {
            bundle: Some(bundle),
            public_key,
            ..
        } => verify_bundle(&public_key, &bundle),
        AuditCommand::VerifyProof {
            public_key,
            checkpoint,
            inclusion,
            leaf_input,
            leaf_hash,
            consistency,
            old_checkpoint,
            bundle: None,
        } => verify_proof(
            &public_key,
            &checkpoint.context("give --checkpoint (or --bundle)")?,
            inclusion.as_deref(),
            leaf_input.as_deref(),
            leaf_hash.as_deref(),
            consistency.as_deref(),
            old_checkpoint.as_deref(),
        ),
    }
}

fn read(path: &Path, what: &str) -> Result<String> {
    std::fs::read_to_string(path).with_context(|| format!("cannot read {what} {}", path.display()))
}

fn verifier_from(path: &Path) -> Result<Verifier> {
    Verifier::parse(&read(path, "the public key")?)
        .with_context(|| format!("{} is not a verifier key", path.display()))
}

/// The `*.checkpoint` files of a directory, in name order.
fn checkpoint_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read the directory {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "checkpoint"))
        .collect();
    files.sort();
    if files.is_empty() {
        return Err(fail(
            Exit::BadTrusted,
            format!("{} holds no *.checkpoint file", dir.display()),
        ));
    }
    Ok(files)
}

/// A trusted checkpoint file, its signature checked: an unusable one ends with exit code 4.
fn trusted_from(path: &Path, verifier: &Verifier) -> Result<Trusted> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        fail(
            Exit::BadTrusted,
            format!(
                "the trusted checkpoint {}: cannot read it: {e}",
                path.display()
            ),
        )
    })?;
    let checkpoint = verifier.verify(&text, verifier.name()).map_err(|e| {
        fail(
            Exit::BadTrusted,
            format!(
                "the trusted checkpoint {} is unusable: {e} (is it a checkpoint of this log, signed by this key?)",
                path.display()
            ),
        )
    })?;
    Ok(Trusted {
        source: path.display().to_string(),
        checkpoint,
    })
}

async fn open_store(config: &Config) -> Result<(Pool, banli_auditlog::store::Store)> {
    let url = match &config.database_url {
        Some(u) => u.0.clone(),
        None => {
            let file = config.data_dir.join("audit.db");
            if !file.exists() {
                bail!(
                    "no audit log at {} (run `banli serve` first, or give --data-dir or --database-url)",
                    file.display()
                );
            }
            banli_db::sqlite_url_for(&config.data_dir, "audit.db")
        }
    };
    let pool = Pool::connect(
        &url,
        &ConnectOptions {
            max_connections: 2,
            // As `banli serve` writes it: every commit survives a power loss.
            durable: true,
            ..Default::default()
        },
    )
    .await?;
    let store = banli_auditlog::store::Store::new(pool.clone());
    Ok((pool, store))
}

async fn verify_store(config: &Config, verifier: &Verifier, trusted: &[Trusted]) -> Result<()> {
    let (pool, store) = open_store(config).await?;
    let started = std::time::Instant::now();
    let result = banli_auditlog::verify::verify(&store, verifier, verifier.name(), trusted).await;
    pool.close().await;
    match result {
        Ok(v) => {
            println!(
                "ok: {} leaves, {} checkpoints, signed up to size {}, all consistent; consistent with {} trusted checkpoints ({:.2} s)",
                v.leaves,
                v.checkpoints,
                v.signed_size,
                v.trusted,
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
        Err(VerifyError::Found(f)) => Err(fail(
            Exit::Tampered,
            format!("the audit log was tampered with: {f}"),
        )),
        Err(e) => Err(e).context("reading the audit log"),
    }
}

async fn quarantine(config: &Config, from: u64, reason: &str, verifier: &Verifier) -> Result<()> {
    if reason.trim().is_empty() {
        bail!("give a --reason: it is kept beside the leaves set aside");
    }
    let (pool, store) = open_store(config).await?;
    let result = async {
        // No sequencer may run meanwhile: hold its lock (and fence off any earlier holder).
        let _lease = sequencer_lock(
            &store,
            "banli audit quarantine",
            "stop every follow-up process first",
        )
        .await?;
        match banli_auditlog::verify::verify(&store, verifier, verifier.name(), &[]).await {
            Err(VerifyError::Found(Finding::Unsigned { index, stored })) if index == from => {
                let moved = store.quarantine(from, reason).await?;
                println!(
                    "set aside {moved} leaves ({from}..{stored}) in audit_quarantine; the log can start again"
                );
                Ok(())
            }
            Err(VerifyError::Found(Finding::Unsigned { index, .. })) => bail!(
                "the first leaf no signature covers is {index}, not {from}: give --from {index}"
            ),
            Err(VerifyError::Found(f)) => Err(fail(
                Exit::Tampered,
                format!("refused: the log has another problem, which setting leaves aside does not mend: {f}"),
            )),
            Err(e) => Err(e).context("reading the audit log"),
            Ok(v) => bail!(
                "refused: every stored leaf ({}) is under the log's signature; nothing to set aside",
                v.leaves
            ),
        }
    }
    .await;
    pool.close().await;
    result
}

/// The audit log's sequencer lock for a command that writes the log; refused, saying `instead`,
/// while a follow-up process holds it.
async fn sequencer_lock(
    store: &banli_auditlog::store::Store,
    command: &str,
    instead: &str,
) -> Result<banli_auditlog::lease::Lease> {
    match banli_auditlog::lease::try_acquire(store, command)
        .await
        .context("taking the audit log's sequencer lock")?
    {
        Some(lease) => Ok(lease),
        None => {
            let holder = store.sequencer().await.ok().flatten().map(|h| h.holder);
            bail!(
                "refused: a follow-up process is the audit log's sequencer ({}); {instead}",
                holder.as_deref().unwrap_or("?")
            )
        }
    }
}

async fn erase(
    config: &Config,
    subject: Option<String>,
    leaf: Option<u64>,
    reason: &str,
) -> Result<()> {
    let target = banli_auditlog::http::erasure_target(subject, leaf, reason)
        .map_err(|e| anyhow::anyhow!("{}", e.detail))?;
    let (pool, store) = open_store(config).await?;
    let result = async {
        let lease = sequencer_lock(
            &store,
            "banli audit erase",
            "erase through it with POST /v1/audit/erasures (an assigning-office key), or stop every follow-up process and run this again",
        )
        .await?;
        let signer =
            banli_auditlog::keys::load_or_create(&config.audit_key_path(), &config.audit_origin)?;
        let log = banli_auditlog::AuditLog::open(
            store.clone(),
            signer,
            banli_auditlog::LogOptions {
                fence: Some(lease.fence.clone()),
                ..banli_auditlog::LogOptions::new(&config.audit_origin)
            },
        )
        .await
        .context("opening the audit log")?;
        let done = log
            .erase(
                &target,
                reason,
                serde_json::json!({"role": "operator", "via": "banli audit erase"}),
                None,
            )
            .await
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        // The erasure's record under a signed checkpoint before the lock goes.
        let start = std::time::Instant::now();
        while log.signed_size() <= done.record {
            if start.elapsed() > std::time::Duration::from_secs(10) {
                bail!("the erasure's record {} was not signed within 10 s", done.record);
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        println!(
            "erased the personal data of {} leaves ({:?}); the erasure is leaf {}",
            done.erased.len(),
            done.erased,
            done.record
        );
        drop(log);
        drop(lease);
        Ok(())
    }
    .await;
    pool.close().await;
    result
}

/// GET with an optional If-None-Match: the status, the ETag and the body (at most 64 KiB).
async fn http_get(url: &str, etag: Option<&str>) -> Result<(u16, Option<String>, Vec<u8>)> {
    use http_body_util::{BodyExt, Empty, Limited};
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_webpki_roots(rustls::crypto::ring::default_provider())
        .context("TLS")?
        .https_or_http()
        .enable_http1()
        .build();
    let client: Client<_, Empty<hyper::body::Bytes>> =
        Client::builder(TokioExecutor::new()).build(https);
    let mut req = hyper::Request::get(url);
    if let Some(tag) = etag {
        req = req.header(hyper::header::IF_NONE_MATCH, tag);
    }
    let req = req
        .body(Empty::new())
        .with_context(|| format!("{url} is not a URL"))?;
    let resp = tokio::time::timeout(std::time::Duration::from_secs(30), client.request(req))
        .await
        .with_context(|| format!("{url} did not answer within 30 s"))?
        .with_context(|| format!("cannot reach {url}"))?;
    let status = resp.status().as_u16();
    let tag = resp
        .headers()
        .get(hyper::header::ETAG)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = Limited::new(resp.into_body(), 64 * 1024)
        .collect()
        .await
        .map_err(|e| anyhow::anyhow!("reading the answer of {url}: {e}"))?
        .to_bytes()
        .to_vec();
    Ok((status, tag, body))
}

/// `banli audit checkpoint --save DIR`.
async fn save_checkpoint(base: &str, dir: &Path, public_key: Option<&Path>) -> Result<()> {
    let verifier = public_key.map(verifier_from).transpose()?;
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let url = format!("{}/v1/audit/checkpoint", base.trim_end_matches('/'));
    let etag_file = dir.join("latest.etag");
    let etag = std::fs::read_to_string(&etag_file).ok();
    let (status, tag, body) = http_get(&url, etag.as_deref().map(str::trim)).await?;
    if status == 304 {
        println!("unchanged: the latest checkpoint is saved already");
        return Ok(());
    }
    if status != 200 {
        bail!("{url} answered {status}");
    }
    let note = String::from_utf8(body).context("the checkpoint is not text")?;
    let checkpoint = match &verifier {
        Some(v) => v
            .verify(&note, v.name())
            .with_context(|| format!("the checkpoint from {url} does not verify"))?,
        None => {
            let body = note.split_once("\n\n").map(|(b, _)| format!("{b}\n"));
            banli_audit::Checkpoint::parse_body(body.as_deref().unwrap_or(""))
                .map_err(|e| anyhow::anyhow!("{url} did not serve a checkpoint: {e}"))?
        }
    };
    let file = dir.join(format!("{:020}.checkpoint", checkpoint.size));
    match std::fs::read_to_string(&file) {
        Ok(saved) if saved == note => {
            println!("unchanged: size {} is saved already", checkpoint.size)
        }
        Ok(_) => {
            return Err(fail(
                Exit::Tampered,
                format!(
                    "the server signed another checkpoint for size {} than the one saved in {}: the log forked",
                    checkpoint.size,
                    file.display()
                ),
            ));
        }
        Err(_) => {
            let tmp = dir.join(format!(".{:020}.tmp", checkpoint.size));
            std::fs::write(&tmp, &note)
                .and_then(|()| std::fs::rename(&tmp, &file))
                .with_context(|| format!("cannot write {}", file.display()))?;
            println!("saved {} (size {})", file.display(), checkpoint.size);
        }
    }
    if let Some(tag) = tag {
        std::fs::write(&etag_file, tag)
            .with_context(|| format!("cannot write {}", etag_file.display()))?;
    }
    Ok(())
}

/// Checks a proof bundle: its checkpoint is signed by the key, and its entry is in the tree
/// the checkpoint signs.
fn verify_bundle(public_key: &Path, bundle: &Path) -> Result<()> {
    let verifier = verifier_from(public_key)?;
    let b: serde_json::Value = serde_json::from_str(&read(bundle, "the proof bundle")?)
        .context("the proof bundle is not JSON")?;
    let cp = verifier
        .verify(
            b["checkpoint"]
                .as_str()
                .context("the bundle has no `checkpoint`")?,
            verifier.name(),
        )
        .context("the checkpoint does not verify")?;
    let proof = &b["inclusion"];
    let index = proof["index"]
        .as_u64()
        .context("the bundle's proof has no `index`")?;
    let size = proof["tree_size"]
        .as_u64()
        .context("the bundle's proof has no `tree_size`")?;
    if size != cp.size {
        bail!(
            "the proof is for tree size {size}, the checkpoint for {}",
            cp.size
        );
    }
    let leaf = STANDARD
        .decode(
            b["leaf_input"]
                .as_str()
                .context("the bundle has no `leaf_input`")?,
        )
        .context("`leaf_input` is not base64")?;
    verify_inclusion(
        index,
        size,
        &leaf_hash(&leaf),
        &hashes(proof, "audit_path")?,
        &cp.root,
    )
    .context("the inclusion proof does not verify")?;
    println!(
        "ok: leaf {index} is in the log `{}` at tree size {size}",
        cp.origin
    );
    Ok(())
}

fn hashes(v: &serde_json::Value, field: &str) -> Result<Vec<Hash>> {
    v.get(field)
        .and_then(|x| x.as_array())
        .with_context(|| format!("the proof has no `{field}` list"))?
        .iter()
        .map(|h| {
            h.as_str()
                .and_then(|s| STANDARD.decode(s).ok())
                .and_then(|b| <Hash>::try_from(b).ok())
                .with_context(|| format!("`{field}` holds something that is not a base64 hash"))
        })
        .collect()
}

fn verify_proof(
    public_key: &Path,
    checkpoint: &Path,
    inclusion: Option<&Path>,
    leaf_input: Option<&Path>,
    leaf_hash_b64: Option<&str>,
    consistency: Option<&Path>,
    old_checkpoint: Option<&Path>,
) -> Result<()> {
    let verifier = verifier_from(public_key)?;
    let cp = verifier
        .verify(&read(checkpoint, "the checkpoint")?, verifier.name())
        .context("the checkpoint does not verify")?;
    match (inclusion, consistency) {
        (Some(path), None) => {
            let proof: serde_json::Value = serde_json::from_str(&read(path, "the proof")?)
                .context("the inclusion proof is not JSON")?;
            let index = proof
                .get("index")
                .and_then(|v| v.as_u64())
                .context("the proof has no `index`")?;
            let size = proof
                .get("tree_size")
                .and_then(|v| v.as_u64())
                .context("the proof has no `tree_size`")?;
            if size != cp.size {
                bail!(
                    "the proof is for tree size {size}, the checkpoint for {}; ask for the proof at the checkpoint's size",
                    cp.size
                );
            }
            let leaf = match (leaf_input, leaf_hash_b64) {
                (Some(p), None) => leaf_hash(
                    &std::fs::read(p)
                        .with_context(|| format!("cannot read the leaf {}", p.display()))?,
                ),
                (None, Some(h)) => STANDARD
                    .decode(h)
                    .ok()
                    .and_then(|b| <Hash>::try_from(b).ok())
                    .context("--leaf-hash is not a base64 hash")?,
                _ => bail!("give exactly one of --leaf-input and --leaf-hash with --inclusion"),
            };
            verify_inclusion(index, size, &leaf, &hashes(&proof, "audit_path")?, &cp.root)
                .context("the inclusion proof does not verify")?;
            println!(
                "ok: leaf {index} is in the log `{}` at tree size {size}",
                cp.origin
            );
            Ok(())
        }
        (None, Some(path)) => {
            let old = old_checkpoint.context("give --old-checkpoint with --consistency")?;
            let old = verifier
                .verify(&read(old, "the old checkpoint")?, verifier.name())
                .context("the old checkpoint does not verify")?;
            let proof: serde_json::Value = serde_json::from_str(&read(path, "the proof")?)
                .context("the consistency proof is not JSON")?;
            verify_consistency(
                old.size,
                cp.size,
                &old.root,
                &cp.root,
                &hashes(&proof, "consistency")?,
            )
            .context("the consistency proof does not verify")?;
            println!(
                "ok: the log `{}` at size {} extends its tree of size {}",
                cp.origin, cp.size, old.size
            );
            Ok(())
        }
        (None, None) => {
            println!(
                "ok: the checkpoint of `{}` at size {} is signed by the key",
                cp.origin, cp.size
            );
            Ok(())
        }
        (Some(_), Some(_)) => bail!("give --inclusion or --consistency, not both"),
    }
}
