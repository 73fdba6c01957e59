//! The documents as every service's API uses them: whose uploads a caller's are, an upload's
//! refusals as API errors, the documents a command attaches resolved against the caller's own
//! uploads, and downloads.
//!
//! Who may attach a document: only the owner that uploaded it (an agency's keys share their
//! agency's uploads; the assigning office has its own). A hash the caller did not upload is
//! answered exactly like one that does not exist (404), so a foreign agency's documents cannot
//! be probed for.

use banli_api::Principal;
use banli_api::error::{AppError, ErrorCode};
use banli_domain::Role;
use banli_domain::document::DocumentRef;
use tokio::io::AsyncRead;

use crate::blob::{PutError, Stored, is_sha256};
use crate::{Documents, OFFICE_OWNER, owner_of_agency};

/// Who the caller's uploads belong to; deputies and auditors upload nothing (403).
pub fn owner(p: &Principal) -> Result<String, AppError> {
    match (p.role, p.agency) {
        (Role::AssigningOffice, _) => Ok(OFFICE_OWNER.to_owned()),
        (r, Some(a)) if r.is_agency_role() => Ok(owner_of_agency(a.0)),
        _ => Err(AppError::forbidden(format!(
            "this key (role {}) may not upload documents; the assigning office and agencies' keys may",
            p.role
        ))),
    }
}

/// An upload's refusal as the API answers it; nothing of a refused upload is stored.
pub fn put_error(e: PutError) -> AppError {
    match e {
        PutError::TooLarge { limit } => AppError::new(
            ErrorCode::PayloadTooLarge,
            format!(
                "the document is larger than {limit} bytes (max_document_bytes); nothing was stored"
            ),
        ),
        PutError::NotAllowed(m) => AppError::new(
            ErrorCode::UnsupportedMediaType,
            format!(
                "the file's content is {}, not a PDF, OFD, DOCX, PNG, JPEG, TIFF or GIF (the type is told by the content, not the name); nothing was stored",
                m.as_str()
            ),
        ),
        PutError::Empty => AppError::invalid("the file is empty; nothing was stored"),
        PutError::Interrupted(_) => AppError::malformed(
            "the upload was interrupted before its end; nothing was stored, send it again",
        ),
        PutError::Io(e) => AppError::internal(&e),
    }
}

/// What an upload answers.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct Uploaded {
    /// SHA-256 of the content: name it (`letter`, `attachments`, `documents`) in the record
    /// that attaches it.
    pub sha256: String,
    /// The type told by the content.
    pub media_type: String,
    pub size: u64,
    pub name: String,
    /// False when the caller had uploaded the same content before (nothing new was stored).
    pub created: bool,
}

/// Streams an upload into the store as the caller's: refused as soon as it passes the limit or
/// shows a type that is not allowed, or when the caller may not upload.
pub async fn upload<R: AsyncRead + Unpin>(
    docs: &Documents,
    p: &Principal,
    body: R,
    name: &str,
) -> Result<Uploaded, AppError> {
    let owner = owner(p)?;
    if let Err(seconds) = docs.quota.check(&owner) {
        return Err(AppError::new(
            ErrorCode::RateLimited,
            format!(
                "this agency has uploaded {} bytes in the last hour, the most this deployment takes (document_upload_bytes_per_hour); try again in {} minutes",
                docs.quota.hourly_bytes(),
                seconds.div_ceil(60)
            ),
        ));
    }
    let stored: Stored = docs
        .store
        .put(body, docs.max_bytes)
        .await
        .map_err(put_error)?;
    docs.quota.add(&owner, stored.size);
    let had = docs
        .store
        .claimed(&stored.sha256, &owner)
        .await
        .map_err(|e| AppError::internal(&e))?;
    let name = crate::blob::clean_name(name);
    if had.as_ref().is_none_or(|c| c.name != name) {
        docs.store
            .claim(&stored, &owner, &name)
            .await
            .map_err(|e| AppError::internal(&e))?;
    }
    tracing::info!(
        sha256 = %stored.sha256,
        size = stored.size,
        media_type = stored.media_type.as_str(),
        owner = %owner,
        new_content = stored.new,
        "document stored"
    );
    Ok(Uploaded {
        sha256: stored.sha256,
        media_type: stored.media_type.as_str().to_owned(),
        size: stored.size,
        name,
        created: had.is_none(),
    })
}

/// The caller's own upload of `sha256`, as a record refers to it; 404 for anything else (a
/// malformed hash, one never uploaded, another owner's).
pub async fn own(docs: &Documents, p: &Principal, sha256: &str) -> Result<DocumentRef, AppError> {
    let owner = owner(p).map_err(|_| not_found(sha256))?;
    if !is_sha256(sha256) {
        return Err(AppError::invalid(format!(
            "`{sha256}` is not a SHA-256 (64 lowercase hex digits, as POST /v1/documents answered)"
        )));
    }
    let claim = docs
        .store
        .claimed(sha256, &owner)
        .await
        .map_err(|e| AppError::internal(&e))?
        .ok_or_else(|| not_found(sha256))?;
    Ok(DocumentRef {
        sha256: sha256.to_owned(),
        media_type: claim.media_type.as_str().to_owned(),
        size: claim.size,
        name: claim.name,
    })
}

/// Every hash in `hashes` resolved as [`own`], once each.
pub async fn resolve(
    docs: Option<&Documents>,
    p: &Principal,
    hashes: &[&str],
) -> Result<Vec<DocumentRef>, AppError> {
    if hashes.is_empty() {
        return Ok(Vec::new());
    }
    let docs = docs.ok_or_else(unavailable)?;
    let mut out: Vec<DocumentRef> = Vec::new();
    for h in hashes {
        if out.iter().any(|d| d.sha256 == *h) {
            continue;
        }
        out.push(own(docs, p, h).await?);
    }
    Ok(out)
}

/// The document `sha256` among `resolved` (what [`resolve`] gave for a command), 404 otherwise.
pub fn pick(resolved: &[DocumentRef], sha256: &str) -> Result<DocumentRef, AppError> {
    resolved
        .iter()
        .find(|d| d.sha256 == sha256)
        .cloned()
        .ok_or_else(|| not_found(sha256))
}

/// Every document of `hashes` among `resolved`, once each, in order.
pub fn pick_all(resolved: &[DocumentRef], hashes: &[String]) -> Result<Vec<DocumentRef>, AppError> {
    let mut out: Vec<DocumentRef> = Vec::new();
    for h in hashes {
        let d = pick(resolved, h)?;
        if !out.contains(&d) {
            out.push(d);
        }
    }
    Ok(out)
}

/// The answer for a document the caller may not see or that does not exist.
pub fn not_found(sha256: &str) -> AppError {
    let shown: String = sha256.chars().take(64).collect();
    AppError::not_found(format!(
        "document {shown} not found among what this key may read; upload it first (POST /v1/documents) or check the hash"
    ))
}

/// The answer when the process runs without a document store.
pub fn unavailable() -> AppError {
    AppError::new(
        ErrorCode::Unavailable,
        "this service runs without a document store; configure `data_dir` (or the object store) and restart",
    )
}
