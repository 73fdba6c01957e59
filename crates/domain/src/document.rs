//! Formal documents (公文) attached to records: a signed reply letter (答复函), a co-handling
//! opinion letter (会办意见函), conversion evidence, consultation minutes.
//!
//! A record names a document by the SHA-256 of its content, so the audit record of the act that
//! attaches it proves which bytes were sent: an inspector hashes the letter they hold and finds
//! that hash in the verified record. The bytes themselves live in the document store, outside
//! the domain.

use serde::{Deserialize, Serialize};

/// A document as a record refers to it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DocumentRef {
    /// SHA-256 of the content, 64 lowercase hex digits.
    pub sha256: String,
    /// The type told by the content (`application/pdf`, `application/ofd`, …), never by a name.
    pub media_type: String,
    /// Bytes.
    pub size: u64,
    /// The file name the uploader gave (for downloads; not part of the proof).
    pub name: String,
}

impl DocumentRef {
    /// Whether `sha256` is written as this platform writes hashes (64 lowercase hex digits).
    pub fn is_sha256(sha256: &str) -> bool {
        sha256.len() == 64
            && sha256
                .bytes()
                .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    }
}
