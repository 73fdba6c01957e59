//! The verifiable audit log (审计日志): an append-only RFC 6962 Merkle tree over supervision
//! notices and accountability events, with inclusion and consistency proofs and checkpoints
//! signed with Ed25519 in the C2SP signed-note format, so that anyone holding the log's public
//! key can check that a record is in the log and that the log was only ever appended to.
//!
//! This crate is pure: hashing, proofs, checkpoints and keys. Storage, the sequencer and the
//! API live with the service that serves the log.

pub mod checkpoint;
pub mod merkle;
pub mod record;

pub use checkpoint::{Checkpoint, CheckpointError, Signer, Verifier};
pub use merkle::{
    Hash, ProofError, Tree, empty_root, leaf_hash, node_hash, verify_consistency, verify_inclusion,
};
pub use record::{PERSONAL_FIELDS, Record, canonical, split_personal};
