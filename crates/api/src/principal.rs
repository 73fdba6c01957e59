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
}

impl Principal {
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
