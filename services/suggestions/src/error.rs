//! The API error type (shared by every service, in `banli-api`) and how this service's storage
//! errors map onto it.

pub use banli_api::error::{AppError, ErrorCode};

use crate::store::StoreError;

/// Storage errors as API errors; anything unexpected is internal (logged, not shown).
impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => AppError::not_found(format!("{what} not found")),
            StoreError::AlreadyExists(what) => {
                AppError::new(ErrorCode::AlreadyExists, format!("{what} already exists"))
            }
            StoreError::Conflict { expected, actual } => AppError::new(
                ErrorCode::Conflict,
                format!(
                    "changed by another request (version {actual}, this request was based on {expected}); read it again and retry"
                ),
            ),
            StoreError::Database(e) if banli_db::is_nul_in_text(&e) => AppError::nul_in_text(),
            other => AppError::internal(&other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_do_not_leak_their_cause() {
        let e: AppError = StoreError::Corrupt("snapshot of 0190 has secret=xyz".into()).into();
        assert_eq!(e.code, ErrorCode::Internal);
        assert!(!e.detail.contains("xyz"));
    }
}
