//! The log: the in-memory tree over the stored leaves, the sequencer that appends records in
//! batches and signs checkpoints, and the reads (entries and proofs) bounded by the latest
//! signed tree size.
//!
//! One sequencer writes a log: appends queue on a channel; the sequencer takes what has queued
//! (up to `max_batch` records), stores the leaves in one transaction — with a signed checkpoint
//! when `checkpoint_interval` has passed since the last — and answers each caller once its
//! records are durable. Leaves not yet under a checkpoint get one at the latest
//! `checkpoint_interval` later.

use std::sync::{Arc, RwLock};
use std::time::Duration;

use banli_audit::{Checkpoint, Hash, ProofError, Record, Signer, Tree, Verifier, leaf_hash};
use time::OffsetDateTime;
use tokio::sync::{mpsc, oneshot, watch};

use crate::store::{Entry, Fence, NewLeaf, Store, StoreError, StoredCheckpoint};

/// How the log runs.
#[derive(Debug, Clone)]
pub struct LogOptions {
    /// The log's name in its checkpoints (and the key's name).
    pub origin: String,
    /// The longest a stored record waits for a signed checkpoint.
    pub checkpoint_interval: Duration,
    /// The most records stored in one transaction.
    pub max_batch: usize,
    /// This process's claim as the log's sequencer (see [`crate::lease`]): every write checks it
    /// in its transaction. `None` for a log only this process can open (tests, tools).
    pub fence: Option<Fence>,
}

impl LogOptions {
    pub fn new(origin: &str) -> LogOptions {
        LogOptions {
            origin: origin.to_owned(),
            checkpoint_interval: Duration::from_millis(200),
            max_batch: 4096,
            fence: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LogError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Proof(#[from] ProofError),
    #[error("the stored log does not match its latest checkpoint ({0}); run `banli audit verify`")]
    Inconsistent(String),
    #[error(
        "leaf {index} is stored, but no signature of this log covers it (the log signed {index} leaves; {stored} are stored): something other than the log's sequencer wrote it. The log does not start. See it with `banli audit verify`; set the leaves from {index} on aside with `banli audit quarantine --from {index} --reason TEXT`"
    )]
    Unsigned { index: u64, stored: u64 },
    #[error("the log's sequencer has stopped")]
    Stopped,
}

/// What an erasure takes out of the log's side table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErasureTarget {
    /// Every leaf whose personal data concerns this deputy.
    Subject(String),
    /// One leaf.
    Leaf(u64),
}

/// What an erasure did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Erasure {
    /// The leaves whose personal data and salt were erased.
    pub erased: Vec<u64>,
    /// The leaf that records the erasure.
    pub record: u64,
    /// A repeat of an earlier request (same source id): this is what that one did.
    pub repeated: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum EraseError {
    #[error("no leaf of the signed log holds personal data of `{0}`")]
    UnknownSubject(String),
    #[error("leaf {index} is not in the signed log (its size is {size})")]
    UnknownLeaf { index: u64, size: u64 },
    #[error("leaf {0} holds no personal data")]
    NoPersonalData(u64),
    #[error("the personal data of {0} is erased already")]
    AlreadyErased(String),
    #[error(
        "this Idempotency-Key was used for another erasure (leaf {0}); use a new key for a new erasure"
    )]
    KeyReused(u64),
    #[error(transparent)]
    Log(#[from] LogError),
}

/// What became of an appended record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    pub index: u64,
    /// The record's source id was in the log already; `index` is the earlier leaf.
    pub duplicate: bool,
}

/// The latest signed checkpoint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signed {
    pub size: u64,
    pub root: Hash,
    pub note: String,
    pub signed_at: OffsetDateTime,
}

struct Job {
    records: Vec<Record>,
    reply: oneshot::Sender<Result<Vec<Appended>, String>>,
}

struct Inner {
    store: Store,
    tree: RwLock<Tree>,
    /// The latest signed checkpoint; [`AuditLog::subscribe`] waits for the next.
    signed: watch::Sender<Option<Signed>>,
    verifier: Verifier,
    options: LogOptions,
    jobs: mpsc::UnboundedSender<Job>,
}

/// The audit log (审计日志).
#[derive(Clone)]
pub struct AuditLog {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog")
            .field("origin", &self.inner.options.origin)
            .finish_non_exhaustive()
    }
}

/// A leaf's personal data as kept beside it: the salt and the canonical JSON that the leaf's
/// `personal_commitment` is `hex(SHA-256(salt ‖ data))` of, or when it was erased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opening {
    pub index: u64,
    pub salt: Option<Vec<u8>>,
    pub data: Option<String>,
    pub erased_at: Option<OffsetDateTime>,
}

/// The erasure recorded at leaf `index`, if it was of the same target.
async fn earlier_erasure(
    store: &Store,
    index: u64,
    target: &ErasureTarget,
) -> Result<Erasure, EraseError> {
    let entry = store
        .entries(index, index + 1)
        .await
        .map_err(LogError::from)?
        .into_iter()
        .next()
        .ok_or(EraseError::KeyReused(index))?;
    let leaf: serde_json::Value =
        serde_json::from_slice(&entry.leaf_input).map_err(|_| EraseError::KeyReused(index))?;
    let data = &leaf["data"];
    let same = match target {
        ErasureTarget::Subject(s) => data["data_subject"].as_str() == Some(s.as_str()),
        ErasureTarget::Leaf(i) => data["leaf"].as_u64() == Some(*i),
    };
    if entry.record_type != "erasure" || !same {
        return Err(EraseError::KeyReused(index));
    }
    let erased = data["erased"]
        .as_array()
        .map(|a| a.iter().filter_map(serde_json::Value::as_u64).collect())
        .unwrap_or_default();
    Ok(Erasure {
        erased,
        record: index,
        repeated: true,
    })
}

/// Rebuilds the tree from the stored leaves' bytes (as `verify` reads them): each leaf hash
/// is recomputed, and a stored hash that differs, or a missing index, stops the load.
async fn load_tree(store: &Store) -> Result<Tree, LogError> {
    crate::verify::read_tree(store).await.map_err(|e| match e {
        crate::verify::VerifyError::Store(s) => LogError::Store(s),
        crate::verify::VerifyError::Found(f) => LogError::Inconsistent(f.to_string()),
    })
}

impl AuditLog {
    /// Rebuilds the tree from the stored leaves, checks it against the latest checkpoint and
    /// starts the sequencer.
    pub async fn open(
        store: Store,
        signer: Signer,
        options: LogOptions,
    ) -> Result<AuditLog, LogError> {
        let tree = load_tree(&store).await?;
        let verifier = signer.verifier();
        let latest = store.latest_checkpoint().await?;
        // Every stored leaf must be under the log's own signature: the seal the sequencer
        // rewrites with each append, or a published checkpoint (a log stored before seals).
        let sealed = match store.seal().await? {
            Some(c) => {
                let cp = verifier.verify(&c.note, &options.origin).map_err(|e| {
                    LogError::Inconsistent(format!("its seal at size {}: {e}", c.size))
                })?;
                if cp.size != c.size || tree.root(cp.size).ok() != Some(cp.root) {
                    return Err(LogError::Inconsistent(format!(
                        "the leaves do not give the root the log signed at size {}",
                        c.size
                    )));
                }
                cp.size
            }
            None => 0,
        };
        let signed = match latest {
            // A new log signs its empty tree, so that there is always a checkpoint to read.
            None if tree.size() == 0 => {
                let root = banli_audit::empty_root();
                let note = signer.sign(&Checkpoint {
                    origin: options.origin.clone(),
                    size: 0,
                    root,
                });
                let signed_at = OffsetDateTime::now_utc();
                let c = StoredCheckpoint {
                    size: 0,
                    root: root.to_vec(),
                    note: note.clone(),
                    signed_at,
                };
                store
                    .append(Vec::new(), Some(c.clone()), Some(c), options.fence.as_ref())
                    .await?;
                Some(Signed {
                    size: 0,
                    root,
                    note,
                    signed_at,
                })
            }
            None => None,
            Some(c) => {
                let cp = verifier
                    .verify(&c.note, &options.origin)
                    .map_err(|e| LogError::Inconsistent(e.to_string()))?;
                if tree.root(cp.size).ok() != Some(cp.root) {
                    return Err(LogError::Inconsistent(format!(
                        "the leaves do not give the root of the checkpoint at size {}",
                        cp.size
                    )));
                }
                Some(Signed {
                    size: cp.size,
                    root: cp.root,
                    note: c.note,
                    signed_at: c.signed_at,
                })
            }
        };
        let covered = sealed.max(signed.as_ref().map_or(0, |s| s.size));
        if tree.size() > covered {
            return Err(LogError::Unsigned {
                index: covered,
                stored: tree.size(),
            });
        }
        let (jobs, rx) = mpsc::unbounded_channel();
        let inner = Arc::new(Inner {
            store,
            tree: RwLock::new(tree),
            signed: watch::Sender::new(signed),
            verifier,
            options,
            jobs,
        });
        tokio::spawn(sequencer(inner.clone(), signer, rx));
        Ok(AuditLog { inner })
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn origin(&self) -> &str {
        &self.inner.options.origin
    }

    /// The public key, as a verifier key (`<name>+<id>+<key>`).
    pub fn public_key(&self) -> String {
        self.inner.verifier.to_text()
    }

    /// Appends records; answers once they are stored (and at the latest `checkpoint_interval`
    /// later they are under a signed checkpoint). A record whose source id is in the log
    /// already is not appended again.
    pub async fn append(&self, records: Vec<Record>) -> Result<Vec<Appended>, LogError> {
        if records.is_empty() {
            return Ok(Vec::new());
        }
        let (reply, rx) = oneshot::channel();
        self.inner
            .jobs
            .send(Job { records, reply })
            .map_err(|_| LogError::Stopped)?;
        rx.await
            .map_err(|_| LogError::Stopped)?
            .map_err(|e| LogError::Store(StoreError::Corrupt(e)))
    }

    /// Erases personal data — a deputy's everywhere, or one leaf's — after recording the
    /// erasure itself as a leaf (who, what, and the reason, the reason kept as erasable text).
    /// The tree, every proof and `verify` are untouched: leaves hold only commitments.
    ///
    /// `source_id` (from a client's idempotency key) makes a retry safe: a repeat of it answers
    /// with the first erasure, read back from its leaf.
    pub async fn erase(
        &self,
        target: &ErasureTarget,
        reason: &str,
        actor: serde_json::Value,
        source_id: Option<String>,
    ) -> Result<Erasure, EraseError> {
        let size = self.signed_size();
        let store = &self.inner.store;
        if let Some(id) = &source_id
            && let Some((_, index)) = store
                .known_sources(std::slice::from_ref(id))
                .await
                .map_err(LogError::from)?
                .first()
        {
            return earlier_erasure(store, *index, target).await;
        }
        let pending: Vec<u64> = match target {
            ErasureTarget::Leaf(index) => {
                if *index >= size {
                    return Err(EraseError::UnknownLeaf {
                        index: *index,
                        size,
                    });
                }
                match store.personal(*index).await.map_err(LogError::from)? {
                    None => return Err(EraseError::NoPersonalData(*index)),
                    Some(p) if p.erased_at.is_some() => {
                        return Err(EraseError::AlreadyErased(format!("leaf {index}")));
                    }
                    Some(_) => vec![*index],
                }
            }
            ErasureTarget::Subject(subject) => {
                let leaves = store
                    .subject_leaves(subject, size)
                    .await
                    .map_err(LogError::from)?;
                if leaves.is_empty() {
                    return Err(EraseError::UnknownSubject(subject.clone()));
                }
                let pending: Vec<u64> = leaves
                    .into_iter()
                    .filter(|(_, erased)| !erased)
                    .map(|(i, _)| i)
                    .collect();
                if pending.is_empty() {
                    return Err(EraseError::AlreadyErased(format!("`{subject}`")));
                }
                pending
            }
        };
        let (subject, leaf) = match target {
            ErasureTarget::Subject(s) => {
                (serde_json::Value::from(s.clone()), serde_json::Value::Null)
            }
            ErasureTarget::Leaf(i) => (serde_json::Value::Null, serde_json::Value::from(*i)),
        };
        let record = Record {
            record_type: "erasure".into(),
            source_id: source_id.unwrap_or_else(|| format!("erasure-{}", uuid::Uuid::now_v7())),
            subject: None,
            occurred_at: OffsetDateTime::now_utc()
                .format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default(),
            actor,
            data: serde_json::json!({"erased": pending, "data_subject": subject, "leaf": leaf}),
            personal: Some(serde_json::json!({"/reason": reason})),
        };
        let appended = self.append(vec![record]).await?;
        let record = appended.first().map_or(0, |a| a.index);
        let erased = store
            .erase_personal(&pending)
            .await
            .map_err(LogError::from)?;
        tracing::info!(record, erased = ?erased, "erased personal data from the audit log's side table");
        Ok(Erasure {
            erased,
            record,
            repeated: false,
        })
    }

    /// A signed leaf's personal data, to check against its commitment (`None`: it has none).
    pub async fn opening(&self, index: u64) -> Result<Option<Opening>, LogError> {
        self.check_size(index.saturating_add(1))?;
        Ok(self.inner.store.personal(index).await?.map(|p| Opening {
            index,
            salt: p.salt,
            data: p.data,
            erased_at: p.erased_at,
        }))
    }

    /// The latest signed checkpoint.
    pub fn checkpoint(&self) -> Option<Signed> {
        self.inner.signed.borrow().clone()
    }

    /// The latest signed checkpoint, and each one signed from now on.
    pub fn subscribe(&self) -> watch::Receiver<Option<Signed>> {
        self.inner.signed.subscribe()
    }

    /// The size proofs may be asked for: the latest signed size.
    pub fn signed_size(&self) -> u64 {
        self.checkpoint().map_or(0, |s| s.size)
    }

    fn check_size(&self, size: u64) -> Result<(), ProofError> {
        let signed = self.signed_size();
        if size > signed {
            return Err(ProofError::SizeOutOfRange {
                size,
                available: signed,
            });
        }
        Ok(())
    }

    /// Leaves `[start, end]` (inclusive, as RFC 6962 get-entries), at most `limit`, within the
    /// signed tree.
    pub async fn entries(&self, start: u64, end: u64, limit: u64) -> Result<Vec<Entry>, LogError> {
        let signed = self.signed_size();
        if start >= signed {
            return Err(ProofError::IndexOutOfRange {
                index: start,
                size: signed,
            }
            .into());
        }
        let end = end.min(signed - 1).min(start + limit - 1);
        Ok(self.inner.store.entries(start, end + 1).await?)
    }

    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, ProofError> {
        self.check_size(size)?;
        self.tree()?.inclusion_proof(index, size)
    }

    /// The first leaf with this hash, and its proof (the index is looked up in storage, not
    /// by scanning the tree).
    pub async fn inclusion_by_hash(
        &self,
        hash: &Hash,
        size: u64,
    ) -> Result<Option<(u64, Vec<Hash>)>, LogError> {
        self.check_size(size)?;
        match self.inner.store.index_of(hash, size).await? {
            Some(index) => Ok(Some((index, self.inclusion_proof(index, size)?))),
            None => Ok(None),
        }
    }

    pub fn consistency_proof(&self, first: u64, second: u64) -> Result<Vec<Hash>, ProofError> {
        self.check_size(second)?;
        self.tree()?.consistency_proof(first, second)
    }

    fn tree(&self) -> Result<std::sync::RwLockReadGuard<'_, Tree>, ProofError> {
        // A poisoned lock means a panic while appending in memory: nothing can be proven.
        self.inner
            .tree
            .read()
            .map_err(|_| ProofError::SizeOutOfRange {
                size: 0,
                available: 0,
            })
    }
}

async fn sequencer(inner: Arc<Inner>, signer: Signer, mut rx: mpsc::UnboundedReceiver<Job>) {
    let interval = inner.options.checkpoint_interval;
    let mut last_signed = tokio::time::Instant::now() - interval;
    loop {
        let unsigned = {
            let size = inner.tree.read().map_or(0, |t| t.size());
            let signed = inner.signed.borrow().as_ref().map(|s| s.size);
            size > 0 && signed != Some(size)
        };
        let job = tokio::select! {
            job = rx.recv() => match job {
                Some(j) => Some(j),
                None => return,
            },
            () = tokio::time::sleep_until(last_signed + interval), if unsigned => None,
        };
        let mut jobs = Vec::new();
        if let Some(j) = job {
            let mut count = j.records.len();
            jobs.push(j);
            while count < inner.options.max_batch {
                match rx.try_recv() {
                    Ok(j) => {
                        count += j.records.len();
                        jobs.push(j);
                    }
                    Err(_) => break,
                }
            }
        }
        let sign = last_signed.elapsed() >= interval;
        match write(&inner, &signer, &jobs, sign).await {
            Ok(answers) => {
                if sign {
                    last_signed = tokio::time::Instant::now();
                }
                for (job, answer) in jobs.into_iter().zip(answers) {
                    let _ = job.reply.send(Ok(answer));
                }
            }
            Err(StoreError::Fenced) => {
                // Another replica is the sequencer now: this one writes nothing more (its lock
                // keeper stops the process).
                tracing::error!(
                    "another process claimed the audit log's sequencer; this process stops appending"
                );
                for job in jobs {
                    let _ = job.reply.send(Err(StoreError::Fenced.to_string()));
                }
                return;
            }
            Err(e) => {
                tracing::error!(error = %e, "the audit log could not store a batch; the callers are told and may retry");
                for job in jobs {
                    let _ = job.reply.send(Err(e.to_string()));
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Stores one batch (and a checkpoint when `sign`); the tree grows only if it is stored.
async fn write(
    inner: &Inner,
    signer: &Signer,
    jobs: &[Job],
    sign: bool,
) -> Result<Vec<Vec<Appended>>, StoreError> {
    let ids: Vec<String> = jobs
        .iter()
        .flat_map(|j| j.records.iter().map(|r| r.source_id.clone()))
        .collect();
    let mut known: std::collections::HashMap<String, u64> =
        inner.store.known_sources(&ids).await?.into_iter().collect();
    let (old_size, mut leaves, mut answers) = {
        let tree = inner.tree.read().map_err(|_| poisoned())?;
        (tree.size(), Vec::new(), Vec::with_capacity(jobs.len()))
    };
    for job in jobs {
        let mut answer = Vec::with_capacity(job.records.len());
        for r in &job.records {
            if let Some(&index) = known.get(&r.source_id) {
                answer.push(Appended {
                    index,
                    duplicate: true,
                });
                continue;
            }
            let index = old_size + leaves.len() as u64;
            let salt = match r.personal {
                Some(_) => random_salt()?,
                None => [0u8; 32],
            };
            let leaf_input = r.leaf_input(&salt);
            leaves.push(NewLeaf {
                index,
                leaf_hash: leaf_hash(&leaf_input),
                leaf_input,
                record_type: r.record_type.clone(),
                source_id: r.source_id.clone(),
                personal: r
                    .personal
                    .as_ref()
                    .map(|p| (salt, banli_audit::canonical(p))),
                subjects: if r.personal.is_some() {
                    r.data_subjects()
                } else {
                    Vec::new()
                },
            });
            known.insert(r.source_id.clone(), index);
            answer.push(Appended {
                index,
                duplicate: false,
            });
        }
        answers.push(answer);
    }
    if leaves.is_empty() && !sign {
        return Ok(answers);
    }
    let (seal, checkpoint) = {
        let mut tree = inner.tree.write().map_err(|_| poisoned())?;
        for l in &leaves {
            tree.push(l.leaf_hash);
        }
        let size = tree.size();
        let signed = inner.signed.borrow().as_ref().map(|s| s.size);
        let publish = sign && size > 0 && signed != Some(size);
        if leaves.is_empty() && !publish {
            (None, None)
        } else {
            // The leaves go in under the log's signature (the seal); the same signed note is
            // published as a checkpoint when one is due.
            let root = match tree.root(size) {
                Ok(r) => r,
                Err(e) => {
                    tree.truncate(old_size);
                    return Err(StoreError::Corrupt(e.to_string()));
                }
            };
            let note = signer.sign(&Checkpoint {
                origin: inner.options.origin.clone(),
                size,
                root,
            });
            let c = StoredCheckpoint {
                size,
                root: root.to_vec(),
                note,
                signed_at: OffsetDateTime::now_utc(),
            };
            let seal = (!leaves.is_empty()).then(|| c.clone());
            (seal, publish.then_some(c))
        }
    };
    if seal.is_none() && checkpoint.is_none() {
        return Ok(answers);
    }
    if let Err(e) = inner
        .store
        .append(
            leaves,
            seal,
            checkpoint.clone(),
            inner.options.fence.as_ref(),
        )
        .await
    {
        if let Ok(mut tree) = inner.tree.write() {
            tree.truncate(old_size);
        }
        return Err(e);
    }
    if let Some(c) = checkpoint {
        let mut root = [0u8; 32];
        root.copy_from_slice(&c.root);
        inner.signed.send_replace(Some(Signed {
            size: c.size,
            root,
            note: c.note,
            signed_at: c.signed_at,
        }));
    }
    Ok(answers)
}

fn random_salt() -> Result<[u8; 32], StoreError> {
    let mut salt = [0u8; 32];
    ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut salt)
        .map_err(|_| StoreError::Corrupt("no randomness for a salt".into()))?;
    Ok(salt)
}

fn poisoned() -> StoreError {
    StoreError::Corrupt("the in-memory tree is unusable after a panic".into())
}
