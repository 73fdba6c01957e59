//! `banli audit`: verify the stored audit log, or a checkpoint and a proof from files with only
//! the public key.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use banli_audit::{Hash, Verifier, leaf_hash, verify_consistency, verify_inclusion};
use banli_db::{ConnectOptions, Pool};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use clap::Subcommand;

use crate::config::Config;

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Recompute every root from the stored leaves and check every stored checkpoint (its
    /// signature, its root, their consistency). Exits non-zero naming the first bad index and
    /// what is wrong. Reads the database of --data-dir (audit.db) or --database-url.
    Verify {
        /// The log's public key file (`<name>+<id>+<key>`, as GET /v1/audit/public-key serves
        /// it) [default: derived from the signing key in the data directory].
        #[arg(long)]
        public_key: Option<PathBuf>,
    },
    /// Check a signed checkpoint and a proof from files, with only the public key: what a
    /// deputy or an inspector runs. Give --leaf-input or --leaf-hash with --inclusion, or
    /// --old-checkpoint with --consistency.
    VerifyProof {
        /// The public key file (GET /v1/audit/public-key).
        #[arg(long)]
        public_key: PathBuf,
        /// The signed checkpoint the proof leads to (GET /v1/audit/checkpoint).
        #[arg(long)]
        checkpoint: PathBuf,
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
        AuditCommand::Verify { public_key } => verify_store(config, public_key.as_deref()).await,
        AuditCommand::VerifyProof {
            public_key,
            checkpoint,
            inclusion,
            leaf_input,
            leaf_hash,
            consistency,
            old_checkpoint,
        } => verify_proof(
            &public_key,
            &checkpoint,
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

async fn verify_store(config: &Config, public_key: Option<&Path>) -> Result<()> {
    let verifier = match public_key {
        Some(p) => verifier_from(p)?,
        None => {
            let path = config.audit_key_path();
            banli_audit::Signer::parse(&read(&path, "the audit signing key")?)
                .with_context(|| format!("{} is not a signing key", path.display()))?
                .verifier()
        }
    };
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
            ..Default::default()
        },
    )
    .await?;
    let store = banli_auditlog::store::Store::new(pool.clone());
    let started = std::time::Instant::now();
    let result = banli_auditlog::verify::verify(&store, &verifier, verifier.name()).await;
    pool.close().await;
    match result {
        Ok(v) => {
            println!(
                "ok: {} leaves, {} checkpoints, signed up to size {}, all consistent ({:.2} s)",
                v.leaves,
                v.checkpoints,
                v.signed_size,
                started.elapsed().as_secs_f64()
            );
            Ok(())
        }
        Err(banli_auditlog::verify::VerifyError::Found(f)) => {
            bail!("the audit log was tampered with: {f}")
        }
        Err(e) => Err(e).context("reading the audit log"),
    }
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
