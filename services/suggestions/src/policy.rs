//! Who may see and do what: the one place that decides, tested as a matrix over every endpoint.
//!
//! Coarse rules live here (which roles may call an endpoint, which suggestions a caller is party
//! to); the domain's guards decide the rest (which unit may sign, reply, rate, …).

use banli_domain::Role;
use banli_domain::ids::{AgencyId, DeputyId};
use banli_domain::suggestion::Suggestion;

pub use banli_api::Principal;

use crate::error::AppError;

/// What a caller asks to do, as far as the policy is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Create sessions, deputies, agencies.
    ManageDirectory,
    /// Create a division of `agency`.
    ManageDivisions(AgencyId),
    /// Set the approval chain (内部审批链) of `agency`'s replies.
    ManageApprovalChain(AgencyId),
    /// Read sessions, agencies and divisions.
    ReadDirectory,
    /// Read a deputy's record (including contact details).
    ReadDeputy(DeputyId),
    /// The whole list of deputies (with their contacts): the office and inspectors.
    ListDeputies,
    /// Create, list and revoke API keys.
    ManageKeys,
    /// Submit a suggestion led by this deputy.
    Submit(DeputyId),
    /// Read the suggestions one is party to.
    ListSuggestions,
    /// Use the calendar endpoints.
    UseCalendar,
    /// Change a suggestion one is party to (the domain checks which change).
    ChangeSuggestion,
    /// Recompute every open deadline against the calendar data in force.
    RecomputeDeadlines,
}

/// Which suggestions a caller sees.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Visibility {
    All,
    Agency(AgencyId),
    Deputy(DeputyId),
}

pub fn visibility(p: &Principal) -> Result<Visibility, AppError> {
    match (p.role, p.agency, p.deputy) {
        (Role::AssigningOffice | Role::Auditor, ..) => Ok(Visibility::All),
        (Role::Deputy, _, Some(d)) => Ok(Visibility::Deputy(d)),
        (r, Some(a), _) if r.is_agency_role() => Ok(Visibility::Agency(a)),
        _ => Err(AppError::forbidden(
            "this key is not bound to an agency or a deputy",
        )),
    }
}

/// Whether the caller is party to the suggestion: the office sees everything, auditors every item
/// but the confidential ones (涉密), an agency the items where it holds a live assignment, a
/// deputy the items they lead or co-signed.
pub fn can_see(p: &Principal, s: &Suggestion) -> bool {
    match visibility(p) {
        Ok(Visibility::All) => !s.details.confidential || sees_confidential(p),
        Ok(Visibility::Agency(a)) => s.active_assignments().any(|x| x.agency == a),
        Ok(Visibility::Deputy(d)) => s.deputies().any(|x| x == d),
        Err(_) => false,
    }
}

/// Whether a caller who may see every item sees the confidential ones too (only the office).
pub fn sees_confidential(p: &Principal) -> bool {
    p.role.reads_confidential()
}

/// Allows or refuses an action, with a reason that says what would be allowed.
pub fn allow(p: &Principal, action: Action) -> Result<(), AppError> {
    let ok = match action {
        Action::ManageDirectory | Action::ManageKeys | Action::RecomputeDeadlines => {
            p.role == Role::AssigningOffice
        }
        Action::ManageDivisions(agency) | Action::ManageApprovalChain(agency) => {
            p.role == Role::AssigningOffice
                || (p.role == Role::AgencyAdmin && p.agency == Some(agency))
        }
        Action::ReadDirectory | Action::UseCalendar => true,
        Action::ListDeputies => matches!(p.role, Role::AssigningOffice | Role::Auditor),
        Action::ReadDeputy(d) => match p.role {
            Role::Deputy => p.deputy == Some(d),
            _ => true,
        },
        Action::Submit(lead) => {
            p.role == Role::AssigningOffice || (p.role == Role::Deputy && p.deputy == Some(lead))
        }
        Action::ListSuggestions => visibility(p).is_ok(),
        Action::ChangeSuggestion => p.role != Role::Auditor && visibility(p).is_ok(),
    };
    if ok {
        return Ok(());
    }
    let needs = match action {
        Action::ManageDirectory | Action::ManageKeys | Action::RecomputeDeadlines => {
            "an assigning_office key"
        }
        Action::ManageDivisions(_) | Action::ManageApprovalChain(_) => {
            "an assigning_office key or the agency's own agency_admin key"
        }
        Action::ReadDeputy(_) => "the deputy's own key or a non-deputy key",
        Action::ListDeputies => "an assigning-office or auditor key",
        Action::Submit(_) => "the lead deputy's own key or an assigning_office key",
        Action::ChangeSuggestion => "a key that may act (auditors only read)",
        _ => "a key bound to an agency or deputy",
    };
    Err(AppError::forbidden(format!(
        "this key (role {}) may not do this; it needs {needs}",
        p.role
    )))
}
