//! Sessions, deputies, agencies, divisions, API keys and the calendar.

use super::*;

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateSession {
    /// `npc` or `cppcc`.
    #[schema(value_type = doc::Body)]
    pub body: Body,
    #[schema(minimum = 1, maximum = 99)]
    pub term: u32,
    #[schema(minimum = 1, maximum = 99)]
    pub number: u32,
    #[schema(min_length = 1, pattern = r"\S")]
    pub name: String,
    pub opens_on: Date,
    pub closes_on: Date,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SessionView {
    pub id: Uuid,
    pub body: String,
    pub term: u32,
    pub number: u32,
    pub name: String,
    pub opens_on: Date,
    pub closes_on: Date,
}

impl From<&Session> for SessionView {
    fn from(s: &Session) -> Self {
        SessionView {
            id: s.id.0,
            body: name(&s.body),
            term: s.term,
            number: s.number,
            name: s.name.clone(),
            opens_on: s.opens_on,
            closes_on: s.closes_on,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDeputy {
    #[schema(min_length = 1, pattern = r"\S")]
    pub name: String,
    #[schema(min_length = 1, pattern = r"\S")]
    pub delegation: String,
    /// Personal data: shown to the office, the deputy and agencies, never written to events.
    #[serde(default)]
    pub contact: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeputyView {
    pub id: Uuid,
    pub name: String,
    pub delegation: String,
    pub contact: String,
}

impl From<&Deputy> for DeputyView {
    fn from(d: &Deputy) -> Self {
        DeputyView {
            id: d.id.0,
            name: d.name.clone(),
            delegation: d.delegation.clone(),
            contact: d.contact.clone(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateAgency {
    #[schema(min_length = 1, pattern = r"\S")]
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AgencyView {
    pub id: Uuid,
    pub name: String,
    pub assigning_office: bool,
}

impl From<&Agency> for AgencyView {
    fn from(a: &Agency) -> Self {
        AgencyView {
            id: a.id.0,
            name: a.name.clone(),
            assigning_office: a.assigning_office,
        }
    }
}

/// 内部审批链: the positions that sign an agency's drafted replies off, in order.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalChainBody {
    /// In order, after the drafter: `division_head`, `authorized_leader`, `principal_head`
    /// (each at most once). Empty: replies are issued at once.
    #[schema(value_type = Vec<doc::SignerPosition>)]
    pub steps: Vec<banli_domain::suggestion::SignerPosition>,
    /// Key-supervised items (重点督办) add the principal head as the last step (default true).
    #[serde(default = "yes")]
    pub key_items_add_head: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ApprovalChainView {
    pub agency_id: Uuid,
    pub steps: Vec<String>,
    pub key_items_add_head: bool,
    /// The steps a key-supervised item's reply goes through.
    pub key_item_steps: Vec<String>,
}

impl ApprovalChainView {
    pub fn of(agency: Uuid, c: &banli_domain::suggestion::ApprovalChain) -> Self {
        let names = |v: Vec<banli_domain::suggestion::SignerPosition>| {
            v.into_iter().map(|p| p.as_str().to_owned()).collect()
        };
        ApprovalChainView {
            agency_id: agency,
            steps: names(c.steps.clone()),
            key_items_add_head: c.key_items_add_head,
            key_item_steps: names(c.steps_for(true)),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateDivision {
    #[schema(min_length = 1, pattern = r"\S")]
    pub name: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DivisionView {
    pub id: Uuid,
    pub agency_id: Uuid,
    pub name: String,
}

impl From<&Division> for DivisionView {
    fn from(d: &Division) -> Self {
        DivisionView {
            id: d.id.0,
            agency_id: d.agency_id.0,
            name: d.name.clone(),
        }
    }
}

// ---- keys ----

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    /// `assigning_office`, `agency_admin`, `handler`, `leader`, `deputy` or `auditor`.
    #[schema(value_type = doc::Role)]
    pub role: banli_domain::Role,
    /// Required for agency roles.
    pub agency_id: Option<Uuid>,
    /// Required for the deputy role.
    pub deputy_id: Option<Uuid>,
    #[serde(default)]
    pub label: String,
    /// Bind the key to a client certificate: its SHA-256 fingerprint (64 hex digits, colons
    /// allowed). The key then works only over TLS with that certificate.
    #[serde(default)]
    pub client_cert_sha256: Option<String>,
    /// The position the key's holder has in the agency, for the agency's reply approval chain
    /// (内部审批): `division_head`, `authorized_leader`, `principal_head` or `staff`.
    #[serde(default)]
    #[schema(value_type = Option<doc::SignerPosition>)]
    pub position: Option<banli_domain::suggestion::SignerPosition>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct KeyView {
    pub id: Uuid,
    pub role: String,
    pub agency_id: Option<Uuid>,
    pub deputy_id: Option<Uuid>,
    pub label: String,
    pub created_at: String,
    pub revoked_at: Option<String>,
    /// The SHA-256 fingerprint of the client certificate the key is bound to, if any.
    pub client_cert_sha256: Option<String>,
    /// The position the key holds in its agency (approval chain steps), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position: Option<String>,
}

impl From<&ApiKey> for KeyView {
    fn from(k: &ApiKey) -> Self {
        let ts = |t: time::OffsetDateTime| {
            t.format(&time::format_description::well_known::Rfc3339)
                .unwrap_or_default()
        };
        KeyView {
            id: k.id,
            role: k.role.as_str().to_owned(),
            agency_id: k.agency_id.map(|a| a.0),
            deputy_id: k.deputy_id.map(|d| d.0),
            label: k.label.clone(),
            created_at: ts(k.created_at),
            revoked_at: k.revoked_at.map(ts),
            client_cert_sha256: k.client_cert.clone(),
            position: k.position.map(|p| p.as_str().to_owned()),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CreatedKey {
    pub key: KeyView,
    /// The bearer token. Shown once: store it now.
    pub token: String,
}

// ---- calendar ----

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CalendarDay {
    pub date: Date,
    pub workday: bool,
    /// e.g. `make-up working day, National Day`; absent on ordinary working days.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CalendarDays {
    pub days: Vec<CalendarDay>,
    pub calendar_version: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeadlineRequest {
    pub start: Date,
    /// `{"kind":"working_days","days":5}`, `{"kind":"calendar_days","days":-10}`,
    /// `{"kind":"calendar_months","months":3}` or `{"kind":"fixed_date","date":"2020-06-30"}`.
    #[schema(value_type = doc::Duration)]
    pub duration: DurationSpec,
    /// Outside the calendar data, assume weekends only (said in the trace) instead of refusing.
    #[serde(default)]
    pub allow_weekends_only: bool,
}

/// One open deadline moved by newer calendar data.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MovedDeadline {
    pub suggestion_id: Uuid,
    /// Absent for the suggestion's own deadline (feedback).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub assignment_id: Option<Uuid>,
    /// `objection`, `first_contact`, `co_opinion`, `reply` or `feedback`.
    pub kind: String,
    pub old_due: Date,
    pub new_due: Date,
}

/// A recomputation of every open deadline against the calendar data in force.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Recomputation {
    pub calendar_version: String,
    /// Suggestions still in handling that were examined.
    pub examined: u64,
    /// Suggestions with at least one moved deadline (each got a `deadlines_recomputed` event).
    pub suggestions_moved: u64,
    /// Deadlines moved, in all.
    pub deadlines_moved: u64,
    /// The moved deadlines, the first 1,000 of them.
    pub moved: Vec<MovedDeadline>,
}
