//! `banli audit verify`: recomputes the tree from every stored leaf and checks every stored
//! checkpoint and the seal — their signatures, and that the leaves give their roots — and each
//! checkpoint the caller trusts from elsewhere (a witness copy), so that a leaf altered,
//! removed, added or moved, a checkpoint forged, or the log cut back together with its own
//! checkpoints, is found and named.
//!
//! It reads while the log may be appended to: the checkpoints first (they cover only leaves
//! stored before them), then the leaves, then the seal again (it covers every leaf the
//! sequencer stored before it), so that a concurrent append is never mistaken for tampering.

use banli_audit::{Checkpoint, Hash, Tree, Verifier, leaf_hash, verify_consistency};
use tokio::sync::mpsc;

use crate::store::{Store, StoreError, StoredCheckpoint};

/// What a clean verification covered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub leaves: u64,
    pub checkpoints: u64,
    pub signed_size: u64,
    /// The trusted checkpoints the log was found consistent with.
    pub trusted: u64,
}

/// A checkpoint held outside the database (its signature already checked with the public
/// key), and where it came from, to name it in a finding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trusted {
    pub source: String,
    pub checkpoint: Checkpoint,
}

/// The first thing found wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Finding {
    #[error("leaf {index} is missing (the next stored leaf is {found})")]
    Missing { index: u64, found: u64 },
    #[error(
        "leaf {index}: its stored hash is not the hash of its stored bytes (the leaf was altered)"
    )]
    LeafAltered { index: u64 },
    #[error(
        "checkpoint at size {size}: the stored leaves do not give its root; the first bad leaf is at index {first_bad} or later, below {size} (a leaf in that range was altered, removed or moved)"
    )]
    RootMismatch { size: u64, first_bad: u64 },
    #[error("checkpoint at size {size}: {reason}")]
    BadCheckpoint { size: u64, reason: String },
    #[error(
        "checkpoint at size {size} covers more leaves than are stored ({stored}): leaves from index {stored} were removed"
    )]
    Truncated { size: u64, stored: u64 },
    #[error(
        "leaf {index} is stored but no signature of the log covers it ({stored} leaves stored, {index} signed): it was not written by the log's sequencer; set it aside with `banli audit quarantine --from {index} --reason TEXT`"
    )]
    Unsigned { index: u64, stored: u64 },
    #[error(
        "the trusted checkpoint {name} is at size {size}, but only {stored} leaves are stored: the log was cut back (leaves from index {stored} were removed)"
    )]
    ShorterThanTrusted {
        name: String,
        size: u64,
        stored: u64,
    },
    #[error(
        "the stored log differs from the trusted checkpoint {name}: its leaves do not give that checkpoint's root at size {size}"
    )]
    DiffersFromTrusted { name: String, size: u64 },
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Found(#[from] Finding),
}

/// How many leaves are read at a time; the next chunk is read while this one is hashed.
const CHUNK: u64 = 50_000;

/// Verifies the whole stored log against `verifier` (the log's public key) and `origin`, and
/// against each trusted checkpoint.
pub async fn verify(
    store: &Store,
    verifier: &Verifier,
    origin: &str,
    trusted: &[Trusted],
) -> Result<Verified, VerifyError> {
    let checkpoints = store.checkpoints().await?;
    let tree = read_tree(store).await?;
    let mut last_good = 0u64;
    for c in &checkpoints {
        check_signed(c, &tree, verifier, origin, last_good)?;
        last_good = c.size;
    }
    // The seal, read after the leaves: everything the sequencer had stored is under it. Leaves
    // it covers that were stored after the read above are read now.
    let mut tree = tree;
    let mut covered = last_good;
    if let Some(seal) = store.seal().await? {
        while tree.size() < seal.size {
            let chunk = store
                .leaf_inputs(tree.size(), seal.size.min(tree.size() + CHUNK))
                .await?;
            if chunk.is_empty() {
                break;
            }
            let hashes = hash_all(&chunk);
            push_chunk(&mut tree, &chunk, hashes)?;
        }
        check_signed(&seal, &tree, verifier, origin, last_good)?;
        covered = covered.max(seal.size);
    }
    if tree.size() > covered {
        return Err(Finding::Unsigned {
            index: covered,
            stored: tree.size(),
        }
        .into());
    }
    let latest = tree.size();
    for t in trusted {
        let size = t.checkpoint.size;
        if size > latest {
            return Err(Finding::ShorterThanTrusted {
                name: t.source.clone(),
                size,
                stored: latest,
            }
            .into());
        }
        let differs = || Finding::DiffersFromTrusted {
            name: t.source.clone(),
            size,
        };
        if tree.root(size).ok() != Some(t.checkpoint.root) {
            return Err(differs().into());
        }
        // And the proof a witness would ask for: from its checkpoint to the latest tree.
        let latest_root = tree.root(latest).map_err(|_| differs())?;
        let proof = tree
            .consistency_proof(size, latest)
            .map_err(|_| differs())?;
        verify_consistency(size, latest, &t.checkpoint.root, &latest_root, &proof)
            .map_err(|_| differs())?;
    }
    Ok(Verified {
        leaves: tree.size(),
        checkpoints: checkpoints.len() as u64,
        signed_size: last_good,
        trusted: trusted.len() as u64,
    })
}

/// A stored signed note (checkpoint or seal): its signature, that it says what its row says,
/// and that the leaves give its root.
fn check_signed(
    c: &StoredCheckpoint,
    tree: &Tree,
    verifier: &Verifier,
    origin: &str,
    last_good: u64,
) -> Result<(), Finding> {
    let bad = |reason: String| Finding::BadCheckpoint {
        size: c.size,
        reason,
    };
    let cp = verifier
        .verify(&c.note, origin)
        .map_err(|e| bad(e.to_string()))?;
    if cp.size != c.size || cp.root.as_slice() != c.root.as_slice() {
        return Err(bad(
            "its stored size or root differs from the signed note".into()
        ));
    }
    if cp.size > tree.size() {
        return Err(Finding::Truncated {
            size: cp.size,
            stored: tree.size(),
        });
    }
    let root: Hash = tree.root(cp.size).map_err(|e| bad(e.to_string()))?;
    if root != cp.root {
        return Err(Finding::RootMismatch {
            size: cp.size,
            first_bad: last_good.min(cp.size),
        });
    }
    Ok(())
}

type Chunk = Vec<(u64, Vec<u8>, Vec<u8>)>;

/// Reads every leaf in chunks — two chunks are read at once (on two connections) while the one
/// before them is hashed, on every core — and rebuilds the tree from the recomputed hashes.
/// A missing index, or a stored hash that is not the hash of the stored bytes, is a finding.
pub async fn read_tree(store: &Store) -> Result<Tree, VerifyError> {
    let (tx, mut rx) = mpsc::channel::<Result<Chunk, StoreError>>(2);
    let reader = {
        let store = store.clone();
        tokio::spawn(async move {
            let fetch = |start: u64| {
                let store = store.clone();
                tokio::spawn(async move { store.leaf_inputs(start, start + CHUNK).await })
            };
            let mut inflight = std::collections::VecDeque::from([fetch(0), fetch(CHUNK)]);
            let mut next = 2 * CHUNK;
            while let Some(h) = inflight.pop_front() {
                let chunk = match h.await {
                    Ok(c) => c,
                    Err(e) => Err(StoreError::Corrupt(format!("a leaf reader stopped: {e}"))),
                };
                let done = !matches!(&chunk, Ok(c) if !c.is_empty());
                if tx.send(chunk).await.is_err() || done {
                    for h in inflight {
                        h.abort();
                    }
                    return;
                }
                inflight.push_back(fetch(next));
                next += CHUNK;
            }
        })
    };
    let mut tree = Tree::new();
    while let Some(chunk) = rx.recv().await {
        let chunk = chunk?;
        if chunk.is_empty() {
            break;
        }
        let hashes = hash_all(&chunk);
        if let Err(f) = push_chunk(&mut tree, &chunk, hashes) {
            reader.abort();
            return Err(f.into());
        }
    }
    // Reading stops at the first empty range: anything stored beyond it is after a gap.
    if let Some((found, _)) = store.leaf_hashes(tree.size(), 1).await?.first() {
        return Err(Finding::Missing {
            index: tree.size(),
            found: *found,
        }
        .into());
    }
    Ok(tree)
}

/// Adds a chunk's leaves to the tree, checking that indices follow on and that each stored
/// hash is the recomputed one.
fn push_chunk(tree: &mut Tree, chunk: &Chunk, hashes: Vec<Hash>) -> Result<(), Finding> {
    for ((index, _, stored), computed) in chunk.iter().zip(hashes) {
        if *index != tree.size() {
            return Err(Finding::Missing {
                index: tree.size(),
                found: *index,
            });
        }
        if stored.as_slice() != computed.as_slice() {
            return Err(Finding::LeafAltered { index: *index });
        }
        tree.push(computed);
    }
    Ok(())
}

/// The leaf hashes of a chunk, computed on every available core.
fn hash_all(chunk: &Chunk) -> Vec<Hash> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    if threads < 2 || chunk.len() < 1024 {
        return chunk.iter().map(|(_, input, _)| leaf_hash(input)).collect();
    }
    let per = chunk.len().div_ceil(threads);
    let hashes = std::thread::scope(|s| {
        let parts: Vec<_> = chunk
            .chunks(per)
            .map(|part| {
                s.spawn(move || {
                    part.iter()
                        .map(|(_, input, _)| leaf_hash(input))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        let mut all = Vec::with_capacity(chunk.len());
        for p in parts {
            all.extend(p.join().unwrap_or_default());
        }
        all
    });
    if hashes.len() != chunk.len() {
        // A hashing thread died: hash here instead, never skip a leaf.
        return chunk.iter().map(|(_, input, _)| leaf_hash(input)).collect();
    }
    hashes
}
