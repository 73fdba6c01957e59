//! Known-answer vectors (tests/data/rfc6962_vectors.json, copied from the project's shared test
//! data): the hasher, the CT test tree's roots, inclusion and consistency proofs, the RFC's own
//! worked example, and real CT log proofs at depth 22 and 30.

use banli_audit::{
    Hash, ProofError, Tree, empty_root, leaf_hash, node_hash, verify_consistency, verify_inclusion,
};
use serde_json::Value;

fn vectors() -> Value {
    serde_json::from_str(include_str!("data/rfc6962_vectors.json")).expect("the vectors file")
}

fn bytes(v: &Value) -> Vec<u8> {
    let s = v.as_str().expect("a hex string");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

fn hash(v: &Value) -> Hash {
    bytes(v).try_into().expect("32 bytes")
}

fn hashes(v: &Value) -> Vec<Hash> {
    v.as_array().expect("a list").iter().map(hash).collect()
}

fn num(v: &Value) -> u64 {
    v.as_u64().expect("a number")
}

/// The tree over the CT test leaves.
fn ct_tree(v: &Value) -> Tree {
    let mut t = Tree::new();
    for leaf in v["ct_test_leaves"]["leaf_inputs_hex"]
        .as_array()
        .expect("leaves")
    {
        t.push(leaf_hash(&bytes(leaf)));
    }
    t
}

#[test]
fn hasher() {
    let v = vectors();
    let list = v["hasher_vectors"].as_array().expect("hasher vectors");
    assert!(list.len() >= 3);
    for case in list {
        let want = hash(&case["want_hex"]);
        let got = match case["kind"].as_str() {
            Some("empty_root") => empty_root(),
            Some("leaf") => leaf_hash(&bytes(&case["input_hex"])),
            Some("node") => {
                // The vectors hash arbitrary byte strings as children.
                use sha2::{Digest, Sha256};
                let mut h = Sha256::new();
                h.update([1u8]);
                h.update(bytes(&case["left_hex"]));
                h.update(bytes(&case["right_hex"]));
                let out: Hash = h.finalize().into();
                if let (Ok(l), Ok(r)) = (
                    <Hash>::try_from(bytes(&case["left_hex"])),
                    <Hash>::try_from(bytes(&case["right_hex"])),
                ) {
                    assert_eq!(node_hash(&l, &r), out);
                }
                out
            }
            other => panic!("unknown kind {other:?}"),
        };
        assert_eq!(got, want, "{}", case["desc"]);
    }
}

#[test]
fn roots_of_every_size_of_the_ct_test_tree() {
    let v = vectors();
    let t = ct_tree(&v);
    let roots = v["ct_test_leaves"]["roots_by_tree_size"]
        .as_array()
        .expect("roots");
    assert_eq!(roots.len(), 9);
    for r in roots {
        let size = num(&r["tree_size"]);
        assert_eq!(t.root(size), Ok(hash(&r["root_hex"])), "size {size}");
    }
}

#[test]
fn inclusion_proofs() {
    let v = vectors();
    let t = ct_tree(&v);
    let cases = v["inclusion_proofs"].as_array().expect("inclusion proofs");
    assert!(!cases.is_empty());
    for case in cases {
        let (index, size) = (num(&case["leaf_index"]), num(&case["tree_size"]));
        let proof = hashes(&case["proof_hex"]);
        let (leaf, root) = (hash(&case["leaf_hash_hex"]), hash(&case["root_hex"]));
        assert_eq!(t.leaf(index), Some(leaf));
        assert_eq!(
            t.inclusion_proof(index, size).as_ref(),
            Ok(&proof),
            "{index}@{size}"
        );
        assert_eq!(verify_inclusion(index, size, &leaf, &proof, &root), Ok(()));
    }
}

#[test]
fn consistency_proofs() {
    let v = vectors();
    let t = ct_tree(&v);
    let cases = v["consistency_proofs"]
        .as_array()
        .expect("consistency proofs");
    assert!(!cases.is_empty());
    for case in cases {
        let (first, second) = (num(&case["size1"]), num(&case["size2"]));
        let proof = hashes(&case["proof_hex"]);
        let (r1, r2) = (hash(&case["root1_hex"]), hash(&case["root2_hex"]));
        assert_eq!(
            t.consistency_proof(first, second).as_ref(),
            Ok(&proof),
            "{first}→{second}"
        );
        assert_eq!(verify_consistency(first, second, &r1, &r2, &proof), Ok(()));
    }
}

#[test]
fn the_rfc_worked_example() {
    let v = vectors();
    let ex = &v["rfc6962_section_2_1_3_example"];
    let label = |l: &Value| hash(&ex["node_hashes_hex"][l.as_str().expect("label")]);
    let t = ct_tree(&v);
    for p in ex["audit_paths"].as_array().expect("paths") {
        let want: Vec<Hash> = p["path_labels"]
            .as_array()
            .expect("labels")
            .iter()
            .map(label)
            .collect();
        assert_eq!(t.inclusion_proof(num(&p["leaf_index"]), 7), Ok(want));
    }
    for p in ex["consistency_proofs"].as_array().expect("proofs") {
        let want: Vec<Hash> = p["proof_labels"]
            .as_array()
            .expect("labels")
            .iter()
            .map(label)
            .collect();
        assert_eq!(
            t.consistency_proof(num(&p["size1"]), num(&p["size2"])),
            Ok(want)
        );
    }
}

#[test]
fn real_ct_log_proofs() {
    let v = vectors();
    let r = &v["real_log_inclusion_proof"];
    let leaf = leaf_hash(&bytes(&r["merkle_tree_leaf_hex"]));
    assert_eq!(leaf, hash(&r["leaf_hash_hex"]));
    let proof = hashes(&r["audit_path_hex"]);
    let root = hash(&r["root_hash_hex"]);
    let (index, size) = (num(&r["leaf_index"]), num(&r["tree_size"]));
    assert_eq!(proof.len(), 22);
    assert_eq!(verify_inclusion(index, size, &leaf, &proof, &root), Ok(()));
    assert_eq!(
        verify_inclusion(index + 1, size, &leaf, &proof, &root),
        Err(ProofError::RootMismatch)
    );

    let a = &v["real_log_argon2020"];
    let (size, root) = (num(&a["tree_size"]), hash(&a["root_hash_hex"]));
    let inc = &a["inclusion"];
    let leaf = leaf_hash(&bytes(&inc["merkle_tree_leaf_hex"]));
    assert_eq!(leaf, hash(&inc["leaf_hash_hex"]));
    let path = hashes(&inc["audit_path_hex"]);
    assert_eq!(path.len(), 30);
    assert_eq!(
        verify_inclusion(num(&inc["leaf_index"]), size, &leaf, &path, &root),
        Ok(())
    );
    let con = &a["consistency"];
    let proof = hashes(&con["proof_hex"]);
    let (first, old) = (num(&con["size1"]), hash(&con["root1_hex"]));
    assert_eq!(verify_consistency(first, size, &old, &root, &proof), Ok(()));
    let mut flipped = proof.clone();
    flipped[7][0] ^= 1;
    assert_eq!(
        verify_consistency(first, size, &old, &root, &flipped),
        Err(ProofError::RootMismatch)
    );
    assert!(verify_consistency(first, size, &old, &root, &proof[1..]).is_err());
}
