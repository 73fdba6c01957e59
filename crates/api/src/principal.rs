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
