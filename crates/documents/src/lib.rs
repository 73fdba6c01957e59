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

pub mod blob;
pub mod sniff;

pub use blob::{BlobStore, PutError, Stored};
pub use sniff::{MediaType, sniff};
