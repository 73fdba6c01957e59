//! The audit log service (审计日志): stores records — supervision notices, acknowledgements and
//! responses, and the events that decide accountability — as leaves of an RFC 6962 Merkle tree,
//! signs checkpoints with Ed25519, serves entries, proofs, the checkpoint and the public key,
//! and verifies the stored log end to end.
//!
//! Library first: `banli serve` mounts it; the follow-up service will host it.

pub mod app;
pub mod consumer;
pub mod grpc;
pub mod http;
pub mod keys;
pub mod lease;
pub mod log;
pub mod store;
pub mod verify;

pub use lease::LogHandle;
pub use log::{
    Appended, AuditLog, EraseError, Erasure, ErasureTarget, LogError, LogOptions, Opening, Signed,
};
