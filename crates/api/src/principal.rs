//! Who is calling.

use banli_domain::ids::{AgencyId, DeputyId};
use banli_domain::{Actor, Role};
use uuid::Uuid;

/// The authenticated caller: an API key and what it is bound to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    pub key_id: Uuid,
    pub role: Role,
    pub agency: Option<AgencyId>,
    pub deputy: Option<DeputyId>,
    /// The agency's own reference for this request (`Reference-Id`; gRPC metadata
    /// `reference-id`): a change with a reference the agency used before is not made again.
    pub reference: Option<String>,
    /// The SHA-256 fingerprint (hex) of the client certificate the key is bound to: the key
    /// is accepted only over a connection that presented it ([`Principal::presented`]).
    pub client_cert: Option<String>,
}

/// The header (gRPC: metadata) that carries an agency's own reference id.
pub const REFERENCE_HEADER: &str = "reference-id";

/// Checks a reference id: 1 to 255 visible ASCII characters.
pub fn check_reference(text: &str) -> Result<String, crate::AppError> {
    if text.is_empty() || text.len() > 255 || !text.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(crate::AppError::malformed(
            "Reference-Id must be 1 to 255 visible ASCII characters (your system's own id for the change)",
        ));
    }
    Ok(text.to_owned())
}

impl Principal {
    /// The same caller with the request's reference id.
    pub fn with_reference(mut self, reference: Option<String>) -> Principal {
        self.reference = reference;
        self
    }

    pub fn actor(&self) -> Actor {
        Actor {
            role: self.role,
            agency: self.agency,
            deputy: self.deputy,
        }
    }
}

/// Resolves a bearer token to a principal. The keys live with the suggestions service; a
/// service in the same process asks its application, a service on its own reads them from the
/// shared database.
pub type Authenticator = std::sync::Arc<
    dyn Fn(
            String,
        ) -> std::pin::Pin<
            Box<dyn std::future::Future<Output = Result<Principal, crate::AppError>> + Send>,
        > + Send
        + Sync,
>;
