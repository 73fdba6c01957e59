//! Who is acting. Every command carries its actor; the guards decide what that actor may do.

use serde::{Deserialize, Serialize};

use crate::ids::{AgencyId, DeputyId};
use crate::suggestion::SignerPosition;

/// The role an API key is bound to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// 交办机关: registers, assigns, decides objections and extensions, supervises.
    AssigningOffice,
    /// An agency's office (厅办公室): signs for, dispatches, requests adjustments and extensions.
    AgencyAdmin,
    /// A division's handler (承办人): records communication, drafts opinions and replies.
    Handler,
    /// A leader (领导) of an agency: approves and signs.
    Leader,
    /// 代表: submits, gives feedback.
    Deputy,
    /// Reads and verifies; never changes anything.
    Auditor,
}

impl Role {
    pub const ALL: [Role; 6] = [
        Role::AssigningOffice,
        Role::AgencyAdmin,
        Role::Handler,
        Role::Leader,
        Role::Deputy,
        Role::Auditor,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::AssigningOffice => "assigning_office",
            Role::AgencyAdmin => "agency_admin",
            Role::Handler => "handler",
            Role::Leader => "leader",
            Role::Deputy => "deputy",
            Role::Auditor => "auditor",
        }
    }

    /// Roles that act for one agency.
    pub fn is_agency_role(self) -> bool {
        matches!(self, Role::AgencyAdmin | Role::Handler | Role::Leader)
    }

    /// Whether a role that reads every item (the assigning office, auditors) reads the
    /// confidential ones (涉密) too: only the office does. A confidential item is for the
    /// office, the agencies assigned to it and its deputies.
    pub fn reads_confidential(self) -> bool {
        self == Role::AssigningOffice
    }

    /// Whether the lists, feeds and exports this role reads across agencies leave out the
    /// confidential items: a role that reads every agency's rows without being party to them
    /// (auditors). An agency's rows are of its own items; the office reads everything.
    pub fn lists_without_confidential(self) -> bool {
        !self.is_agency_role() && !self.reads_confidential()
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                format!(
                    "unknown role `{s}`; expected one of {}",
                    Role::ALL.map(Role::as_str).join(", ")
                )
            })
    }
}

/// The principal behind a command: a role, and the agency or deputy it acts for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    pub role: Role,
    /// Set for agency roles (and for the assigning office, its own agency id).
    pub agency: Option<AgencyId>,
    /// Set for the deputy role.
    pub deputy: Option<DeputyId>,
    /// The position the key holds in its agency, for the steps of an approval chain (内部审批):
    /// a step is decided only by a key of the step's position.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<SignerPosition>,
}

impl Actor {
    pub fn assigning_office(agency: AgencyId) -> Actor {
        Actor {
            role: Role::AssigningOffice,
            agency: Some(agency),
            deputy: None,
            position: None,
        }
    }

    pub fn agency(role: Role, agency: AgencyId) -> Actor {
        Actor {
            role,
            agency: Some(agency),
            deputy: None,
            position: None,
        }
    }

    pub fn deputy(deputy: DeputyId) -> Actor {
        Actor {
            role: Role::Deputy,
            agency: None,
            deputy: Some(deputy),
            position: None,
        }
    }

    /// True when this actor works for `agency` in one of `roles`.
    pub fn acts_for(&self, agency: AgencyId, roles: &[Role]) -> bool {
        self.agency == Some(agency) && roles.contains(&self.role)
    }
}
