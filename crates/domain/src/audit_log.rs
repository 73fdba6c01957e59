//! What the audit log publishes (审计日志): its signed checkpoints, which the coordination
//! service puts into every agency's feed — witnesses outside the platform's database.

use serde::{Deserialize, Serialize};

/// The schema version of [`AuditLogEvent`] payloads.
pub const SCHEMA_VERSION: u32 = 1;

/// The aggregate type: one aggregate per log (its id is the log's origin).
pub const AGGREGATE_TYPE: &str = "audit_log";

published_events! {
    /// The audit log's events, published as `audit.<snake_case name>`.
    pub enum AuditLogEvent in "audit" {
        /// A signed checkpoint: `note` is exactly what `GET /v1/audit/checkpoint` serves (keep it
        /// for `banli audit verify --trusted-checkpoint`); the other fields repeat what it says.
        Checkpoint {
            origin: String,
            size: u64,
            /// Base64 of the Merkle tree's root hash.
            root_hash: String,
            /// RFC 3339.
            signed_at: String,
            note: String,
        },
    }
}
