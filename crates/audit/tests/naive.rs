//! The tree against a naive transcription of RFC 6962 §2.1 (MTH, PATH, PROOF as the RFC writes
//! them, over slices of leaves): every tree size up to 300, every inclusion proof and every
//! consistency proof within it; each proof verifies, and a proof altered in a hash, shortened,
//! lengthened, or checked for another index or another old root, does not.

use std::collections::HashMap;

use banli_audit::{
    Hash, Tree, empty_root, leaf_hash, node_hash, verify_consistency, verify_inclusion,
};
use proptest::prelude::*;

/// The RFC's definitions over `leaves`, with MTH memoised by range (the recursion stays the
/// RFC's; only repeated subtrees are not hashed again).
struct Naive<'a> {
    leaves: &'a [Vec<u8>],
    memo: HashMap<(usize, usize), Hash>,
}

fn k_of(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

impl Naive<'_> {
    fn mth(&mut self, start: usize, end: usize) -> Hash {
        if let Some(h) = self.memo.get(&(start, end)) {
            return *h;
        }
        let h = match end - start {
            0 => empty_root(),
            1 => leaf_hash(&self.leaves[start]),
            n => {
                let k = k_of(n);
                let (l, r) = (self.mth(start, start + k), self.mth(start + k, end));
                node_hash(&l, &r)
            }
        };
        self.memo.insert((start, end), h);
        h
    }

    /// PATH(m, D[start:end]).
    fn path(&mut self, m: usize, start: usize, end: usize) -> Vec<Hash> {
        let n = end - start;
        if n <= 1 {
            return Vec::new();
        }
        let k = k_of(n);
        if m < k {
            let mut p = self.path(m, start, start + k);
            p.push(self.mth(start + k, end));
            p
        } else {
            let mut p = self.path(m - k, start + k, end);
            p.push(self.mth(start, start + k));
            p
        }
    }

    /// SUBPROOF(m, D[start:end], b).
    fn subproof(&mut self, m: usize, start: usize, end: usize, b: bool) -> Vec<Hash> {
        let n = end - start;
        if m == n {
            return if b {
                Vec::new()
            } else {
                vec![self.mth(start, end)]
            };
        }
        let k = k_of(n);
        if m <= k {
            let mut p = self.subproof(m, start, start + k, b);
            p.push(self.mth(start + k, end));
            p
        } else {
            let mut p = self.subproof(m - k, start + k, end, false);
            p.push(self.mth(start, start + k));
            p
        }
    }
}

fn check_all(leaves: &[Vec<u8>], sizes: std::ops::RangeInclusive<usize>) {
    let mut naive = Naive {
        leaves,
        memo: HashMap::new(),
    };
    let mut tree = Tree::new();
    for l in leaves {
        tree.push(leaf_hash(l));
    }
    for n in sizes {
        let root = naive.mth(0, n);
        assert_eq!(tree.root(n as u64), Ok(root), "root of size {n}");
        for m in 0..n {
            let want = naive.path(m, 0, n);
            let got = tree.inclusion_proof(m as u64, n as u64).expect("a proof");
            assert_eq!(got, want, "inclusion {m}@{n}");
            let leaf = leaf_hash(&leaves[m]);
            assert_eq!(
                verify_inclusion(m as u64, n as u64, &leaf, &got, &root),
                Ok(())
            );
            // Another index, an altered hash, a shortened or lengthened path. (The same path may
            // hold for a neighbouring size: the size is bound by the signed checkpoint.)
            if n > 1 {
                let other = (m + 1) % n;
                assert!(verify_inclusion(other as u64, n as u64, &leaf, &got, &root).is_err());
                let mut bad = got.clone();
                bad[m % got.len()][31] ^= 0x80;
                assert!(verify_inclusion(m as u64, n as u64, &leaf, &bad, &root).is_err());
                assert!(
                    verify_inclusion(m as u64, n as u64, &leaf, &got[..got.len() - 1], &root)
                        .is_err()
                );
            }
            let mut longer = got.clone();
            longer.push(root);
            assert!(verify_inclusion(m as u64, n as u64, &leaf, &longer, &root).is_err());
        }
        for m in 1..=n {
            let want = naive.subproof(m, 0, n, true);
            let got = tree.consistency_proof(m as u64, n as u64).expect("a proof");
            assert_eq!(got, want, "consistency {m}→{n}");
            let old = naive.mth(0, m);
            assert_eq!(
                verify_consistency(m as u64, n as u64, &old, &root, &got),
                Ok(()),
                "verify {m}→{n}"
            );
            if !got.is_empty() {
                let mut bad = got.clone();
                bad[m % got.len()][0] ^= 1;
                assert!(verify_consistency(m as u64, n as u64, &old, &root, &bad).is_err());
                assert!(verify_consistency(m as u64, n as u64, &old, &root, &got[1..]).is_err());
            }
            if m > 1 {
                // The proof does not hold for another old size with the same roots.
                assert!(
                    verify_consistency(m as u64 - 1, n as u64, &old, &root, &got).is_err()
                        || naive.mth(0, m - 1) == old
                );
                let earlier = naive.mth(0, m - 1);
                assert!(verify_consistency(m as u64, n as u64, &earlier, &root, &got).is_err());
            }
        }
    }
}

#[test]
fn every_size_up_to_300_and_every_proof_within() {
    let leaves: Vec<Vec<u8>> = (0..300u32)
        .map(|i| format!("record {i}").into_bytes())
        .collect();
    check_all(&leaves, 1..=300);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    #[test]
    fn random_leaves(leaves in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..40), 1..120)) {
        // Distinct leaves: with two equal siblings a path also holds for the other index,
        // which is right (the leaves are the same) but not what the checks of a wrong index
        // expect.
        let leaves: Vec<Vec<u8>> = leaves
            .iter()
            .enumerate()
            .map(|(i, l)| [(i as u32).to_be_bytes().as_slice(), l].concat())
            .collect();
        let n = leaves.len();
        check_all(&leaves, n..=n);
    }
}
