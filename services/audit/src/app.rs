//! The audit log's application layer: who may read and erase (`reader`, `eraser`), and each
//! capability — entries, proofs, openings, erasure — as one function that REST (`http`) and gRPC
//! (`grpc`) both call, with the same bounds and the same errors.

use banli_api::{AppError, ErrorCode, Principal};
use banli_audit::{Hash, ProofError};
use banli_domain::Role;
use base64::Engine;
use base64::engine::general_purpose::STANDARD;

use crate::log::{AuditLog, EraseError, ErasureTarget, LogError, Opening};

/// The most entries one response holds (ask again from the next index for more).
pub const MAX_ENTRIES: u64 = 1000;

pub(crate) fn reader(caller: &Principal) -> Result<(), AppError> {
    match caller.role {
        Role::Auditor | Role::AssigningOffice => Ok(()),
        _ => Err(AppError::forbidden(
            "the audit log's entries and proofs are read by the assigning office and auditors; the checkpoint and the public key are public",
        )),
    }
}

pub(crate) fn bad(param: &str, detail: impl std::fmt::Display) -> AppError {
    AppError::malformed(format!("`{param}`: {detail}"))
}

pub(crate) fn log_error(e: LogError) -> AppError {
    match e {
        LogError::Proof(p) => AppError::malformed(p.to_string()),
        other => AppError::internal(&other),
    }
}

pub(crate) fn hex_prefix(root: &Hash) -> String {
    root.iter().take(8).map(|b| format!("{b:02x}")).collect()
}

pub(crate) fn b64(hashes: &[Hash]) -> Vec<String> {
    hashes.iter().map(|h| STANDARD.encode(h)).collect()
}

/// Leaves `start..=end` within the signed tree, at most [`MAX_ENTRIES`]; bad bounds are a 400
/// naming the parameter.
pub(crate) async fn entries_of(
    log: &AuditLog,
    start: u64,
    end: u64,
) -> Result<Vec<crate::store::Entry>, AppError> {
    if start > end {
        return Err(bad("start", format!("{start} is after end {end}")));
    }
    let signed = log.signed_size();
    if start >= signed {
        return Err(bad(
            "start",
            format!("{start} is not below the signed tree size {signed}"),
        ));
    }
    log.entries(start, end, MAX_ENTRIES)
        .await
        .map_err(log_error)
}

/// The first leaf with this hash below `size`, and its proof; a 404 when there is none.
pub(crate) async fn inclusion_by_hash_of(
    log: &AuditLog,
    hash: &Hash,
    size: u64,
) -> Result<(u64, Vec<Hash>), AppError> {
    log.inclusion_by_hash(hash, size)
        .await
        .map_err(|e| match e {
            LogError::Proof(p) => proof_error(p, "leaf_hash", "tree_size"),
            other => log_error(other),
        })?
        .ok_or_else(|| {
            AppError::not_found(format!("no leaf with that hash in the tree of size {size}"))
        })
}

/// Checks `0 < first ≤ second ≤ signed` and proves it.
pub(crate) fn consistency_of(
    log: &AuditLog,
    first: u64,
    second: u64,
) -> Result<Vec<Hash>, AppError> {
    if first == 0 {
        return Err(bad("first", "must be above 0"));
    }
    if first > second {
        return Err(bad("first", format!("{first} is above second {second}")));
    }
    log.consistency_proof(first, second)
        .map_err(|e| proof_error(e, "first", "second"))
}

pub(crate) fn proof_error(e: ProofError, index_param: &str, size_param: &str) -> AppError {
    match e {
        ProofError::IndexOutOfRange { index, size } => bad(
            index_param,
            format!("{index} is not below the tree size {size}"),
        ),
        ProofError::SizeOutOfRange { size, available } => bad(
            size_param,
            format!("{size} is beyond the signed tree size {available}"),
        ),
        ProofError::BadRange { first, second } => bad(
            index_param,
            format!("needs 0 < first ≤ second (got first {first}, second {second})"),
        ),
        other => AppError::internal(&other),
    }
}

/// The longest erasure reason.
pub const MAX_REASON: usize = 2000;

/// Checks an erasure request: one target, a reason.
pub fn erasure_target(
    subject: Option<String>,
    leaf: Option<u64>,
    reason: &str,
) -> Result<ErasureTarget, AppError> {
    if reason.trim().is_empty() {
        return Err(AppError::invalid(
            "`reason`: say why the data is erased (kept with the erasure's record)",
        ));
    }
    if reason.chars().count() > MAX_REASON {
        return Err(AppError::invalid(format!(
            "`reason`: at most {MAX_REASON} characters"
        )));
    }
    match (subject, leaf) {
        (Some(s), None) if !s.trim().is_empty() && s.len() <= 200 => {
            Ok(ErasureTarget::Subject(s.trim().to_owned()))
        }
        (Some(_), None) => Err(AppError::invalid("`subject`: a deputy's id")),
        (None, Some(i)) => Ok(ErasureTarget::Leaf(i)),
        _ => Err(AppError::invalid(
            "give exactly one of `subject` (a deputy's id) and `leaf` (a leaf index)",
        )),
    }
}

/// Only the assigning office erases.
pub(crate) fn eraser(caller: &Principal) -> Result<(), AppError> {
    match caller.role {
        Role::AssigningOffice => Ok(()),
        _ => Err(AppError::forbidden(
            "only the assigning office erases personal data from the audit log",
        )),
    }
}

/// The erasure's record source id for a client's idempotency key: a retry finds it.
pub(crate) fn erasure_source(caller: &Principal, key: Option<&str>) -> Option<String> {
    key.map(|k| {
        let h = ring::digest::digest(
            &ring::digest::SHA256,
            format!("{}\n{k}", caller.key_id).as_bytes(),
        );
        let hex: String = h
            .as_ref()
            .iter()
            .take(16)
            .map(|b| format!("{b:02x}"))
            .collect();
        format!("erasure-{hex}")
    })
}

pub(crate) fn erase_error(e: EraseError) -> AppError {
    match e {
        EraseError::UnknownSubject(_)
        | EraseError::UnknownLeaf { .. }
        | EraseError::NoPersonalData(_) => AppError::not_found(e.to_string()),
        EraseError::AlreadyErased(_) => AppError::new(ErrorCode::Conflict, e.to_string()),
        EraseError::KeyReused(_) => AppError::new(ErrorCode::IdempotencyKeyReused, e.to_string()),
        EraseError::Log(l) => log_error(l),
    }
}

pub(crate) fn actor_of(caller: &Principal) -> serde_json::Value {
    serde_json::json!({
        "role": caller.role,
        "agency": caller.agency.map(|a| a.0),
        "deputy": null,
        "key": caller.key_id,
    })
}

/// A signed leaf's personal data; 400 outside the signed log, 404 when it has none.
pub(crate) async fn opening_of(log: &AuditLog, index: u64) -> Result<Opening, AppError> {
    log.opening(index)
        .await
        .map_err(|e| match e {
            LogError::Proof(p) => proof_error(p, "index", "index"),
            other => log_error(other),
        })?
        .ok_or_else(|| AppError::not_found(format!("leaf {index} holds no personal data")))
}
