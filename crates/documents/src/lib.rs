//! Formal documents (公文): a reply letter with the unit's seal (答复函), a co-handling opinion
//! letter (会办意见函), conversion evidence, meeting minutes. Two parts, both free of any
//! service's tables:
//!
//! - [`sniff`]: what a file is, told by its first bytes (PDF, OFD, DOCX, PNG, JPEG, TIFF, GIF),
//!   never by its name — an executable renamed `.pdf` is named for what it is;
//! - [`blob`]: a content-addressed store on the local disk: an upload is streamed to a
//!   temporary file while its SHA-256 is computed, refused as soon as it passes the size limit
//!   or its first bytes are not an allowed type, and only then moved under its hash — so an
//!   interrupted or refused upload leaves nothing, and the same content is kept once.

pub mod access;
pub mod blob;
pub mod http;
pub mod s3;
pub mod sniff;
pub mod testing;

pub use blob::{BlobStore, Claim, PutError, Stored, clean_name, is_sha256};
pub use sniff::{MediaType, sniff};

/// The most bytes one upload may have unless configured (`max_document_bytes`): 20 MiB.
pub const DEFAULT_MAX_BYTES: u64 = 20 * 1024 * 1024;

/// The document store as a service uses it: where the contents are, and the most bytes one
/// upload may have.
#[derive(Debug, Clone)]
pub struct Documents {
    pub store: BlobStore,
    pub max_bytes: u64,
}

/// Who a principal's uploads belong to in the store: `office` for the assigning office,
/// `agency-<id>` for an agency's keys. Deputies and auditors upload nothing.
pub fn owner_of_agency(agency: uuid::Uuid) -> String {
    format!("agency-{}", agency.simple())
}

/// The assigning office's uploads.
pub const OFFICE_OWNER: &str = "office";
