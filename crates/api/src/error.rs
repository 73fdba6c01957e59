//! The one error type of every service's API: a stable code that maps to both an HTTP status and a gRPC code.
//! Internal error text never reaches a client; it is logged once, here, with the request's id.

use banli_domain::DomainError;

/// Stable, machine-readable error codes. Clients match on these, never on the text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request cannot be read: bad JSON, a missing or unknown field, a bad id or date.
    MalformedRequest,
    /// No valid API key.
    Unauthenticated,
    /// The key's role may not do this.
    Forbidden,
    /// Nothing with that id exists for this caller.
    NotFound,
    /// The command is not allowed in the current state.
    WrongState,
    /// A rule's precondition is not met yet (the reply gate, pending opinions, …).
    FailedPrecondition,
    /// A time window has closed.
    WindowClosed,
    /// A profile limit is reached.
    LimitReached,
    /// It exists already (a number, a name).
    AlreadyExists,
    /// Someone else changed it first; read it again and retry.
    Conflict,
    /// `If-Match` named an older version.
    StaleVersion,
    /// The body is larger than the limit.
    PayloadTooLarge,
    /// The request is well-formed but a value is not acceptable.
    InvalidArgument,
    /// The `Idempotency-Key` was used with a different request.
    IdempotencyKeyReused,
    /// A request with this `Idempotency-Key` is still running.
    IdempotencyKeyInProgress,
    /// The media type is not JSON.
    UnsupportedMediaType,
    /// The route exists, but not with this method.
    MethodNotAllowed,
    /// The server failed; the request id identifies it in the logs.
    Internal,
    /// The server is starting or shutting down.
    Unavailable,
    /// The `Banli-Consistency` header is not a token this deployment issued.
    BadConsistencyToken,
    /// The service has not applied what the `Banli-Consistency` token names within the wait.
    ConsistencyTimeout,
    /// Too many of these requests in a short time; the detail says when to try again.
    RateLimited,
    /// The API key is bound to a client certificate and the connection did not present it.
    CertificateMismatch,
}

impl ErrorCode {
    pub const ALL: [ErrorCode; 23] = [
        ErrorCode::MalformedRequest,
        ErrorCode::Unauthenticated,
        ErrorCode::Forbidden,
        ErrorCode::NotFound,
        ErrorCode::WrongState,
        ErrorCode::FailedPrecondition,
        ErrorCode::WindowClosed,
        ErrorCode::LimitReached,
        ErrorCode::AlreadyExists,
        ErrorCode::Conflict,
        ErrorCode::StaleVersion,
        ErrorCode::PayloadTooLarge,
        ErrorCode::InvalidArgument,
        ErrorCode::IdempotencyKeyReused,
        ErrorCode::IdempotencyKeyInProgress,
        ErrorCode::UnsupportedMediaType,
        ErrorCode::MethodNotAllowed,
        ErrorCode::Internal,
        ErrorCode::Unavailable,
        ErrorCode::BadConsistencyToken,
        ErrorCode::ConsistencyTimeout,
        ErrorCode::RateLimited,
        ErrorCode::CertificateMismatch,
    ];

    pub fn parse(s: &str) -> Option<ErrorCode> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::MalformedRequest => "malformed_request",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::WrongState => "wrong_state",
            ErrorCode::FailedPrecondition => "failed_precondition",
            ErrorCode::WindowClosed => "window_closed",
            ErrorCode::LimitReached => "limit_reached",
            ErrorCode::AlreadyExists => "already_exists",
            ErrorCode::Conflict => "conflict",
            ErrorCode::StaleVersion => "stale_version",
            ErrorCode::PayloadTooLarge => "payload_too_large",
            ErrorCode::InvalidArgument => "invalid_argument",
            ErrorCode::IdempotencyKeyReused => "idempotency_key_reused",
            ErrorCode::IdempotencyKeyInProgress => "idempotency_key_in_progress",
            ErrorCode::UnsupportedMediaType => "unsupported_media_type",
            ErrorCode::MethodNotAllowed => "method_not_allowed",
            ErrorCode::Internal => "internal",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::BadConsistencyToken => "bad_consistency_token",
            ErrorCode::ConsistencyTimeout => "consistency_timeout",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::CertificateMismatch => "certificate_mismatch",
        }
    }

    pub fn http_status(self) -> u16 {
        match self {
            ErrorCode::MalformedRequest | ErrorCode::BadConsistencyToken => 400,
            ErrorCode::Unauthenticated | ErrorCode::CertificateMismatch => 401,
            ErrorCode::Forbidden => 403,
            ErrorCode::NotFound => 404,
            ErrorCode::WrongState
            | ErrorCode::FailedPrecondition
            | ErrorCode::WindowClosed
            | ErrorCode::LimitReached
            | ErrorCode::AlreadyExists
            | ErrorCode::Conflict
            | ErrorCode::IdempotencyKeyInProgress => 409,
            ErrorCode::StaleVersion => 412,
            ErrorCode::PayloadTooLarge => 413,
            ErrorCode::MethodNotAllowed => 405,
            ErrorCode::UnsupportedMediaType => 415,
            ErrorCode::InvalidArgument | ErrorCode::IdempotencyKeyReused => 422,
            ErrorCode::Internal => 500,
            ErrorCode::Unavailable | ErrorCode::ConsistencyTimeout => 503,
            ErrorCode::RateLimited => 429,
        }
    }

    pub fn grpc_code(self) -> tonic::Code {
        use tonic::Code;
        match self {
            ErrorCode::MalformedRequest
            | ErrorCode::InvalidArgument
            | ErrorCode::IdempotencyKeyReused
            | ErrorCode::UnsupportedMediaType
            | ErrorCode::BadConsistencyToken => Code::InvalidArgument,
            ErrorCode::Unauthenticated | ErrorCode::CertificateMismatch => Code::Unauthenticated,
            ErrorCode::MethodNotAllowed => Code::Unimplemented,
            ErrorCode::Forbidden => Code::PermissionDenied,
            ErrorCode::NotFound => Code::NotFound,
            ErrorCode::WrongState
            | ErrorCode::FailedPrecondition
            | ErrorCode::WindowClosed
            | ErrorCode::StaleVersion => Code::FailedPrecondition,
            ErrorCode::LimitReached | ErrorCode::PayloadTooLarge | ErrorCode::RateLimited => {
                Code::ResourceExhausted
            }
            ErrorCode::AlreadyExists => Code::AlreadyExists,
            ErrorCode::Conflict | ErrorCode::IdempotencyKeyInProgress => Code::Aborted,
            ErrorCode::Internal => Code::Internal,
            ErrorCode::Unavailable | ErrorCode::ConsistencyTimeout => Code::Unavailable,
        }
    }

    /// A short title for problem documents.
    pub fn title(self) -> &'static str {
        match self {
            ErrorCode::MalformedRequest => "The request could not be read",
            ErrorCode::Unauthenticated => "A valid API key is required",
            ErrorCode::Forbidden => "Not allowed for this key",
            ErrorCode::NotFound => "Not found",
            ErrorCode::WrongState => "Not allowed in the current state",
            ErrorCode::FailedPrecondition => "A precondition is not met",
            ErrorCode::WindowClosed => "The time window has closed",
            ErrorCode::LimitReached => "A limit is reached",
            ErrorCode::AlreadyExists => "Already exists",
            ErrorCode::Conflict => "Changed by someone else",
            ErrorCode::StaleVersion => "The version is out of date",
            ErrorCode::PayloadTooLarge => "The body is too large",
            ErrorCode::InvalidArgument => "A value is not acceptable",
            ErrorCode::IdempotencyKeyReused => "The Idempotency-Key was used for another request",
            ErrorCode::IdempotencyKeyInProgress => {
                "A request with this Idempotency-Key is still running"
            }
            ErrorCode::UnsupportedMediaType => "The body must be JSON",
            ErrorCode::MethodNotAllowed => "Method not allowed",
            ErrorCode::Internal => "Internal error",
            ErrorCode::Unavailable => "Unavailable",
            ErrorCode::BadConsistencyToken => "The consistency token is not valid",
            ErrorCode::ConsistencyTimeout => "Not caught up with the consistency token yet",
            ErrorCode::RateLimited => "Too many requests; try again later",
            ErrorCode::CertificateMismatch => "The API key is bound to another client certificate",
        }
    }
}

/// An error for a client: a code and a detail that says what to fix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppError {
    pub code: ErrorCode,
    pub detail: String,
}

impl AppError {
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> AppError {
        AppError {
            code,
            detail: detail.into(),
        }
    }

    pub fn malformed(detail: impl Into<String>) -> AppError {
        AppError::new(ErrorCode::MalformedRequest, detail)
    }

    pub fn invalid(detail: impl Into<String>) -> AppError {
        AppError::new(ErrorCode::InvalidArgument, detail)
    }

    /// A text holding the NUL character (U+0000): no store keeps it (PostgreSQL refuses it in
    /// text), so it is refused before anything is written.
    pub fn nul_in_text() -> AppError {
        AppError::invalid(
            "a text holds the NUL character (\\u0000), which cannot be stored; remove it and send again",
        )
    }

    pub fn forbidden(detail: impl Into<String>) -> AppError {
        AppError::new(ErrorCode::Forbidden, detail)
    }

    pub fn not_found(detail: impl Into<String>) -> AppError {
        AppError::new(ErrorCode::NotFound, detail)
    }

    /// An internal failure: logged here with its cause, reported to the client without it.
    pub fn internal(cause: &dyn std::fmt::Display) -> AppError {
        tracing::error!(error = %cause, "internal error");
        AppError::new(
            ErrorCode::Internal,
            "the server failed to handle the request; quote the request id when reporting it",
        )
    }
}

impl std::fmt::Display for AppError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.as_str(), self.detail)
    }
}

impl From<AppError> for tonic::Status {
    fn from(e: AppError) -> Self {
        let mut s = tonic::Status::new(e.code.grpc_code(), e.detail);
        if let Ok(v) = e.code.as_str().parse() {
            s.metadata_mut().insert("banli-error-code", v);
        }
        s
    }
}

impl From<DomainError> for AppError {
    fn from(e: DomainError) -> Self {
        let code = match &e {
            DomainError::WrongState { .. } => ErrorCode::WrongState,
            DomainError::Forbidden { .. } => ErrorCode::Forbidden,
            DomainError::NotFound { .. } => ErrorCode::NotFound,
            DomainError::Invalid { .. } => ErrorCode::InvalidArgument,
            DomainError::Precondition { .. } => ErrorCode::FailedPrecondition,
            DomainError::WindowClosed { .. } => ErrorCode::WindowClosed,
            DomainError::LimitReached { .. } => ErrorCode::LimitReached,
            DomainError::Deadline { .. } => ErrorCode::InvalidArgument,
        };
        AppError::new(code, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_do_not_leak_their_cause() {
        let e = AppError::internal(&"snapshot of 0190 has secret=xyz");
        assert_eq!(e.code, ErrorCode::Internal);
        assert!(!e.detail.contains("xyz"));
    }

    #[test]
    fn every_code_has_a_client_status_and_a_grpc_code() {
        for c in ErrorCode::ALL {
            assert_eq!(ErrorCode::parse(c.as_str()), Some(c));
            assert!((400..600).contains(&c.http_status()));
            assert_ne!(c.grpc_code(), tonic::Code::Ok);
            assert!(!c.title().is_empty() && !c.as_str().is_empty());
        }
    }
}
