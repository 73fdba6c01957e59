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

/// The most bytes one owner may upload to one process per hour unless configured
/// (`document_upload_bytes_per_hour`): 2 GiB.
pub const DEFAULT_HOURLY_BYTES: u64 = 2 * 1024 * 1024 * 1024;

/// The document store as a service uses it: where the contents are, the most bytes one upload
/// may have, and how much one owner may upload per hour.
#[derive(Debug, Clone)]
pub struct Documents {
    pub store: BlobStore,
    pub max_bytes: u64,
    /// The uploads of each owner this hour (a hostile or broken system must not fill the disk).
    pub quota: std::sync::Arc<Quota>,
}

impl Documents {
    /// `hourly_bytes`: the most bytes one owner may upload per hour (0: no limit).
    pub fn new(store: BlobStore, max_bytes: u64, hourly_bytes: u64) -> Documents {
        Documents {
            store,
            max_bytes,
            quota: std::sync::Arc::new(Quota::new(hourly_bytes)),
        }
    }
}

/// Bytes uploaded per owner in the current hour (a fixed window per owner, in this process).
#[derive(Debug)]
pub struct Quota {
    hourly_bytes: u64,
    used: std::sync::Mutex<std::collections::HashMap<String, (std::time::Instant, u64)>>,
}

/// The length of a quota window.
const HOUR: std::time::Duration = std::time::Duration::from_secs(3600);

impl Quota {
    pub fn new(hourly_bytes: u64) -> Quota {
        Quota {
            hourly_bytes,
            used: Default::default(),
        }
    }

    /// `Err(seconds until the owner may upload again)` when the owner has used this hour's bytes.
    pub fn check(&self, owner: &str) -> Result<(), u64> {
        if self.hourly_bytes == 0 {
            return Ok(());
        }
        let used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        match used.get(owner) {
            Some((start, bytes)) if start.elapsed() < HOUR && *bytes >= self.hourly_bytes => {
                Err(HOUR.saturating_sub(start.elapsed()).as_secs().max(1))
            }
            _ => Ok(()),
        }
    }

    /// Counts `bytes` received from `owner`.
    pub fn add(&self, owner: &str, bytes: u64) {
        let mut used = self.used.lock().unwrap_or_else(|e| e.into_inner());
        let now = std::time::Instant::now();
        let entry = used.entry(owner.to_owned()).or_insert((now, 0));
        if entry.0.elapsed() >= HOUR {
            *entry = (now, 0);
        }
        entry.1 = entry.1.saturating_add(bytes);
        // Owners are agencies: few; a window long past is dropped when seen again.
        if used.len() > 10_000 {
            used.retain(|_, (start, _)| start.elapsed() < HOUR);
        }
    }

    pub fn hourly_bytes(&self) -> u64 {
        self.hourly_bytes
    }
}

/// Who a principal's uploads belong to in the store: `office` for the assigning office,
/// `agency-<id>` for an agency's keys. Deputies and auditors upload nothing.
pub fn owner_of_agency(agency: uuid::Uuid) -> String {
    format!("agency-{}", agency.simple())
}

/// The assigning office's uploads.
pub const OFFICE_OWNER: &str = "office";
