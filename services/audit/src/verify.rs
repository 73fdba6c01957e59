//! `banli audit verify`: recomputes the tree from every stored leaf and checks every stored
//! checkpoint — its signature, and that the leaves give its root — so that a leaf altered,
//! removed, added or moved, or a checkpoint forged, is found and named.

use banli_audit::{Hash, Tree, Verifier, leaf_hash};

use crate::store::{Store, StoreError};

/// What a clean verification covered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub leaves: u64,
    pub checkpoints: u64,
    pub signed_size: u64,
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
}

#[derive(Debug, thiserror::Error)]
pub enum VerifyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{0}")]
    Found(#[from] Finding),
}

/// Verifies the whole stored log against `verifier` (the log's public key) and `origin`.
pub async fn verify(
    store: &Store,
    verifier: &Verifier,
    origin: &str,
) -> Result<Verified, VerifyError> {
    let mut tree = Tree::new();
    loop {
        let start = tree.size();
        let chunk = store.entries(start, start + 50_000).await?;
        // `entries` is by index range: a gap shows as a shorter, shifted chunk.
        if chunk.is_empty() {
            // Anything stored beyond a gap?
            let rest = store.leaf_hashes(start, 1).await?;
            if let Some((found, _)) = rest.first() {
                return Err(Finding::Missing {
                    index: start,
                    found: *found,
                }
                .into());
            }
            break;
        }
        for e in chunk {
            if e.index != tree.size() {
                return Err(Finding::Missing {
                    index: tree.size(),
                    found: e.index,
                }
                .into());
            }
            let computed = leaf_hash(&e.leaf_input);
            if e.leaf_hash.as_slice() != computed.as_slice() {
                return Err(Finding::LeafAltered { index: e.index }.into());
            }
            tree.push(computed);
        }
    }
    let mut last_good = 0u64;
    let checkpoints = store.checkpoints().await?;
    for c in &checkpoints {
        let bad = |reason: String| Finding::BadCheckpoint {
            size: c.size,
            reason,
        };
        let cp = verifier
            .verify(&c.note, origin)
            .map_err(|e| bad(e.to_string()))?;
        if cp.size != c.size || cp.root.as_slice() != c.root.as_slice() {
            return Err(bad("its stored size or root differs from the signed note".into()).into());
        }
        if cp.size > tree.size() {
            return Err(Finding::Truncated {
                size: cp.size,
                stored: tree.size(),
            }
            .into());
        }
        let root: Hash = tree.root(cp.size).map_err(|e| bad(e.to_string()))?;
        if root != cp.root {
            return Err(Finding::RootMismatch {
                size: cp.size,
                first_bad: last_good,
            }
            .into());
        }
        last_good = cp.size;
    }
    Ok(Verified {
        leaves: tree.size(),
        checkpoints: checkpoints.len() as u64,
        signed_size: last_good,
    })
}
