//! The audit tree's in-process figures, each beside the hashing limit measured in the same run:
//! plain SHA-256 over the same leaves (the baseline), the tree built from 1,000,000 records,
//! inclusion and consistency proofs at that size (the server-side work of a proof request),
//! and the whole tree recomputed from the stored leaf hashes (the hashing part of
//! `banli audit verify`).
//!
//! `cargo bench -p banli-audit --bench tree [-- LEAVES]`

use std::hint::black_box;
use std::time::{Duration, Instant};

use banli_audit::{Tree, leaf_hash, verify_consistency, verify_inclusion};
use sha2::{Digest, Sha256};

/// A record of the size a supervision notice's canonical bytes take (~300 B).
fn record(i: u64) -> Vec<u8> {
    let mut r = format!(
        "{{\"type\":\"supervision_notice\",\"index\":{i},\"suggestion_id\":\"0192f0c4-7d2e-7c1a-9b3e-{i:012}\",\
         \"issued_by\":\"assigning_office\",\"to\":\"agency\",\"level\":\"notice\",\"due\":\"2026-12-31\"}}"
    )
    .into_bytes();
    r.resize(300, b' ');
    r
}

/// A small deterministic generator (no dependency for randomness).
struct Lcg(u64);
impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

fn pct(v: &mut [Duration], p: f64) -> f64 {
    v.sort();
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i].as_secs_f64() * 1e6
}

fn main() {
    let n: u64 = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let records: Vec<Vec<u8>> = (0..n).map(record).collect();

    let t = Instant::now();
    for r in &records {
        black_box(Sha256::digest(r));
    }
    let base = t.elapsed();
    println!(
        "baseline  plain SHA-256 over {n} records of 300 B: {:.2} s ({:.0} records/s)",
        base.as_secs_f64(),
        n as f64 / base.as_secs_f64()
    );

    let t = Instant::now();
    let mut tree = Tree::new();
    for r in &records {
        tree.push(leaf_hash(r));
    }
    let built = t.elapsed();
    println!(
        "tree      {n} records hashed and appended: {:.2} s ({:.0} records/s, {:.2}× the baseline's time)",
        built.as_secs_f64(),
        n as f64 / built.as_secs_f64(),
        built.as_secs_f64() / base.as_secs_f64()
    );
    let root = tree.root(n).expect("root");

    let mut rng = Lcg(42);
    let mut lat = Vec::with_capacity(10_000);
    let t = Instant::now();
    for _ in 0..10_000 {
        let (size, index) = {
            let size = n - rng.below(n / 2);
            (size, rng.below(size))
        };
        let s = Instant::now();
        let proof = tree.inclusion_proof(index, size).expect("proof");
        lat.push(s.elapsed());
        if size == n {
            let leaf = tree.leaf(index).expect("leaf");
            assert_eq!(verify_inclusion(index, n, &leaf, &proof, &root), Ok(()));
        }
    }
    let all = t.elapsed();
    println!(
        "inclusion 10,000 proofs at up to {n} leaves: p50 {:.1} µs, p99 {:.1} µs ({:.0} proofs/s on one core, goal p99 ≤ 1 ms)",
        pct(&mut lat, 0.5),
        pct(&mut lat, 0.99),
        10_000.0 / all.as_secs_f64()
    );

    let mut lat = Vec::with_capacity(10_000);
    for _ in 0..10_000 {
        let second = n - rng.below(n / 2);
        let first = 1 + rng.below(second);
        let s = Instant::now();
        let proof = tree.consistency_proof(first, second).expect("proof");
        lat.push(s.elapsed());
        if second == n {
            let old = tree.root(first).expect("old root");
            assert_eq!(verify_consistency(first, n, &old, &root, &proof), Ok(()));
        }
    }
    println!(
        "consistency 10,000 proofs: p50 {:.1} µs, p99 {:.1} µs",
        pct(&mut lat, 0.5),
        pct(&mut lat, 0.99)
    );

    // Recomputing the tree from the stored leaf hashes, as a verifier does.
    let leaves: Vec<_> = (0..n).map(|i| tree.leaf(i).expect("leaf")).collect();
    let t = Instant::now();
    let mut again = Tree::new();
    for l in &leaves {
        again.push(*l);
    }
    assert_eq!(again.root(n), Ok(root));
    let rebuilt = t.elapsed();
    println!(
        "rebuild   the tree recomputed from {n} stored leaf hashes: {:.2} s (the hashing part of `banli audit verify`, goal with storage reads ≤ 5 s)",
        rebuilt.as_secs_f64()
    );
}
