//! What the coordination API reads and returns, shared by REST and gRPC. Requests refuse unknown
//! fields; views show each caller only what its unit may see.

use banli_api::Principal;
use banli_domain::Role;
use banli_domain::suggestion::{SignerPosition, Suggestion, UnitRole};
use serde::{Deserialize, Serialize};
use time::Date;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::store::{CaseRecord, OwnEvent, Task};

time::serde::format_description!(date_format, Date, "[year]-[month]-[day]");

mod opt_date {
    use serde::{Deserialize, Deserializer, Serializer};
    use time::Date;

    pub fn serialize<S: Serializer>(d: &Option<Date>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::date_format::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Date>, D::Error> {
        #[derive(Deserialize)]
        struct W(#[serde(with = "super::date_format")] Date);
        Option::<W>::deserialize(d).map(|o| o.map(|W(d)| d))
    }
}

/// Who signed a letter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignerBody {
    pub name: String,
    pub position: Position,
}

/// The signer's position.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Position {
    PrincipalHead,
    AuthorizedLeader,
    DivisionHead,
    Staff,
}

impl From<Position> for SignerPosition {
    fn from(p: Position) -> Self {
        match p {
            Position::PrincipalHead => SignerPosition::PrincipalHead,
            Position::AuthorizedLeader => SignerPosition::AuthorizedLeader,
            Position::DivisionHead => SignerPosition::DivisionHead,
            Position::Staff => SignerPosition::Staff,
        }
    }
}

impl From<SignerPosition> for Position {
    fn from(p: SignerPosition) -> Self {
        match p {
            SignerPosition::PrincipalHead => Position::PrincipalHead,
            SignerPosition::AuthorizedLeader => Position::AuthorizedLeader,
            SignerPosition::DivisionHead => Position::DivisionHead,
            SignerPosition::Staff => Position::Staff,
        }
    }
}

/// A unit's role on a suggestion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role4 {
    Lead,
    Co,
    Separate,
    Sole,
}

impl From<Role4> for UnitRole {
    fn from(r: Role4) -> Self {
        match r {
            Role4::Lead => UnitRole::Lead,
            Role4::Co => UnitRole::Co,
            Role4::Separate => UnitRole::Separate,
            Role4::Sole => UnitRole::Sole,
        }
    }
}

/// An empty body: `{}`.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Empty {}

/// 调整申请: the assigned unit asks the assigning office to reassign the item.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdjustmentRequestBody {
    pub reason: String,
    pub suggested_agency_id: Option<Uuid>,
}

/// The assigning office's decision on an adjustment request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Accept,
    Reject,
    Escalate,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AdjustmentDecisionBody {
    pub outcome: Outcome,
    /// Accept: the unit that takes the item over.
    pub agency_id: Option<Uuid>,
    /// Accept: its role (default: the old assignment's).
    pub role: Option<Role4>,
    /// Reject or escalate: why.
    pub reason: Option<String>,
}

/// 会办意见: a co-handler's formal opinion letter to the lead unit.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OpinionBody {
    /// The letter's document number (文号).
    pub document_number: String,
    pub body: String,
    pub signer: SignerBody,
    /// The letter's date (default today; never in the future).
    #[serde(default, with = "opt_date")]
    #[schema(value_type = Option<String>, format = Date)]
    pub on: Option<Date>,
    /// The concrete measures the co-unit takes within its remit, each with who is responsible
    /// and a date after the letter: each becomes the co-unit's commitment in the ledger.
    #[serde(default)]
    pub measures: Vec<MeasureBody>,
    /// Instead of measures: why no measure falls within the co-unit's remit. An opinion with
    /// neither is flagged or refused (422) as the rule profile says (`opinion_substance`).
    pub no_measure_reason: Option<String>,
    /// The consultations (会商) the opinion rests on.
    #[serde(default)]
    pub consultation_ids: Vec<Uuid>,
    /// The SHA-256 of the signed opinion letter (会办意见函) this unit uploaded
    /// (`POST /v1/documents`).
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub letter: Option<String>,
    /// The SHA-256s of other documents this unit uploaded, enclosed with the opinion.
    #[serde(default)]
    pub attachments: Vec<String>,
}

/// A measure of a co-handling opinion.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MeasureBody {
    pub measure: String,
    /// Who is responsible in the co-unit (a division or an official).
    pub responsible: String,
    /// The agency that takes the measure; default the co-unit. Another agency's is refused.
    pub agency_id: Option<Uuid>,
    #[serde(with = "date_format")]
    #[schema(value_type = String, format = Date)]
    pub target_date: Date,
}

/// 会商: a meeting of the units of a suggestion.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsultationBody {
    /// The units that took part (each assigned to the suggestion; the convener is added).
    pub agency_ids: Vec<Uuid>,
    /// The suggestion's deputies who attended, if any.
    #[serde(default)]
    pub deputy_ids: Vec<Uuid>,
    /// Everyone present, by name and post.
    pub attendees: Vec<String>,
    pub subject: String,
    pub minutes: String,
    /// The meeting's date (default today; never in the future).
    #[serde(default, with = "opt_date")]
    #[schema(value_type = Option<String>, format = Date)]
    pub on: Option<Date>,
    /// The SHA-256s of the signed minutes and other papers this unit uploaded
    /// (`POST /v1/documents`).
    #[serde(default)]
    pub documents: Vec<String>,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WaiverBody {
    pub reason: String,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CountersignBody {
    pub signer: SignerBody,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DisagreementBody {
    pub statement: String,
    /// Escalate to the assigning office at once.
    #[serde(default)]
    pub escalate: bool,
}

#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ResolutionBody {
    pub resolution: String,
}

// ---- views ----

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct SignerView {
    pub name: String,
    pub position: Position,
}

/// One unit on the suggestion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct UnitView {
    pub assignment_id: Uuid,
    pub agency_id: Uuid,
    pub role: String,
    pub state: String,
    /// Co-handlers: awaited, submitted, acknowledged or waived; others: not_required.
    pub opinion: String,
    /// The co-handling sub-deadline.
    #[serde(with = "opt_date")]
    #[schema(value_type = Option<String>, format = Date)]
    pub co_opinion_due: Option<Date>,
    #[serde(with = "opt_date")]
    #[schema(value_type = Option<String>, format = Date)]
    pub reply_due: Option<Date>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct OpinionView {
    pub id: Uuid,
    pub assignment_id: Uuid,
    pub document_number: String,
    pub body: String,
    pub signer: SignerView,
    #[serde(with = "date_format")]
    #[schema(value_type = String, format = Date)]
    pub on: Date,
    #[serde(with = "opt_date")]
    #[schema(value_type = Option<String>, format = Date)]
    pub acknowledged_on: Option<Date>,
    pub measures: Vec<MeasureView>,
    pub no_measure_reason: Option<String>,
    pub consultation_ids: Vec<Uuid>,
    /// Neither measures nor a reason why there are none (accepted under the profile's `flag`).
    pub flagged: bool,
}

/// A measure of an opinion: the co-unit's commitment `id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct MeasureView {
    pub id: Uuid,
    pub measure: String,
    pub responsible: String,
    pub agency_id: Uuid,
    #[serde(with = "date_format")]
    #[schema(value_type = String, format = Date)]
    pub target_date: Date,
}

/// 会商: a meeting of the units, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ConsultationView {
    pub id: Uuid,
    pub convened_by: Uuid,
    pub agency_ids: Vec<Uuid>,
    pub deputy_ids: Vec<Uuid>,
    pub attendees: Vec<String>,
    pub subject: String,
    pub minutes: String,
    #[serde(with = "date_format")]
    #[schema(value_type = String, format = Date)]
    pub on: Date,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CountersignatureView {
    pub reply_id: Uuid,
    pub assignment_id: Uuid,
    pub agency_id: Uuid,
    pub signer: SignerView,
    #[serde(with = "date_format")]
    #[schema(value_type = String, format = Date)]
    pub on: Date,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DisagreementView {
    pub id: Uuid,
    pub assignment_id: Uuid,
    pub agency_id: Uuid,
    pub statement: String,
    #[serde(with = "date_format")]
    #[schema(value_type = String, format = Date)]
    pub on: Date,
    #[serde(with = "opt_date")]
    #[schema(value_type = Option<String>, format = Date)]
    pub escalated_on: Option<Date>,
    pub resolution: Option<String>,
    #[serde(with = "opt_date")]
    #[schema(value_type = Option<String>, format = Date)]
    pub resolved_on: Option<Date>,
}

/// A copy of the lead's reply, as delivered to a co-handler.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ReplyCopyView {
    pub reply_id: Uuid,
    pub assignment_id: Uuid,
    pub agency_id: Uuid,
    #[serde(with = "date_format")]
    #[schema(value_type = String, format = Date)]
    pub on: Date,
    pub document_number: String,
    pub class: String,
    pub body: String,
}

/// A command of this service and what the suggestions service made of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CommandView {
    pub event_id: Uuid,
    pub event_type: String,
    /// pending (not yet applied to the suggestion), confirmed, refused (with the reason), final.
    pub status: String,
    pub reason: Option<String>,
}

/// The coordination side of one suggestion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct CaseView {
    pub suggestion_id: Uuid,
    /// The case's version (its ETag), for `If-Match`.
    pub version: u64,
    /// The version of the suggestion this view reflects.
    pub suggestion_version: u64,
    pub suggestion_state: String,
    pub units: Vec<UnitView>,
    pub opinions: Vec<OpinionView>,
    pub countersignatures: Vec<CountersignatureView>,
    pub disagreements: Vec<DisagreementView>,
    pub reply_copies: Vec<ReplyCopyView>,
    pub commands: Vec<CommandView>,
    /// The consultations the caller took part in (all, for the assigning office).
    pub consultations: Vec<ConsultationView>,
}

/// What a caller may see of a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seer {
    /// The assigning office and auditors.
    All,
    /// The lead unit sees every opinion and copy.
    Lead(Uuid),
    /// Another unit sees its own.
    Unit(Uuid),
}

fn seer(p: &Principal, s: &Suggestion) -> Seer {
    match (p.role, p.agency) {
        (Role::AssigningOffice | Role::Auditor, _) => Seer::All,
        (_, Some(a))
            if s.active_assignments()
                .any(|x| x.agency == a && x.role == UnitRole::Lead) =>
        {
            Seer::Lead(a.0)
        }
        (_, Some(a)) => Seer::Unit(a.0),
        _ => Seer::Unit(Uuid::nil()),
    }
}

fn signer(s: &banli_domain::suggestion::Signer) -> SignerView {
    SignerView {
        name: s.name.clone(),
        position: s.position.into(),
    }
}

impl CaseView {
    pub fn new(p: &Principal, r: &CaseRecord, own: &[OwnEvent]) -> CaseView {
        let s = r.view();
        let who = seer(p, &s);
        let mine = |agency: Uuid| match who {
            Seer::All | Seer::Lead(_) => true,
            Seer::Unit(a) => a == agency,
        };
        let agency_of = |assignment: Uuid| {
            s.assignments
                .iter()
                .find(|a| a.id.0 == assignment)
                .map_or(Uuid::nil(), |a| a.agency.0)
        };
        CaseView {
            suggestion_id: s.id.0,
            version: r.case.version,
            suggestion_version: r.replica_version,
            suggestion_state: s.state.as_str().to_owned(),
            units: s
                .assignments
                .iter()
                .filter(|a| a.is_active())
                .map(|a| UnitView {
                    assignment_id: a.id.0,
                    agency_id: a.agency.0,
                    role: a.role.as_str().to_owned(),
                    state: a.state.as_str().to_owned(),
                    opinion: if a.role == UnitRole::Co {
                        if a.opinion_waived {
                            "waived".into()
                        } else {
                            match s.opinions.iter().rev().find(|o| o.assignment_id == a.id) {
                                Some(o) if o.acknowledged_on.is_some() => "acknowledged".into(),
                                Some(_) => "submitted".into(),
                                None => "awaited".into(),
                            }
                        }
                    } else {
                        "not_required".into()
                    },
                    co_opinion_due: a.deadlines.co_opinion.as_ref().map(|d| d.due),
                    reply_due: a.deadlines.reply.as_ref().map(|d| d.due),
                })
                .collect(),
            opinions: s
                .opinions
                .iter()
                .filter(|o| mine(agency_of(o.assignment_id.0)))
                .map(|o| OpinionView {
                    id: o.id.0,
                    assignment_id: o.assignment_id.0,
                    document_number: o.document_number.clone(),
                    body: o.body.clone(),
                    signer: signer(&o.signer),
                    on: o.on,
                    acknowledged_on: o.acknowledged_on,
                    measures: o
                        .measures
                        .iter()
                        .map(|m| MeasureView {
                            id: m.id.0,
                            measure: m.measure.clone(),
                            responsible: m.responsible.clone(),
                            agency_id: m
                                .agency
                                .map_or_else(|| agency_of(o.assignment_id.0), |a| a.0),
                            target_date: m.target_date,
                        })
                        .collect(),
                    no_measure_reason: o.no_measure_reason.clone(),
                    consultation_ids: o.consultations.iter().map(|c| c.0).collect(),
                    flagged: o.flagged,
                })
                .collect(),
            consultations: s
                .consultations
                .iter()
                .filter(|c| match who {
                    Seer::All => true,
                    Seer::Lead(a) | Seer::Unit(a) => c.agencies.iter().any(|x| x.0 == a),
                })
                .map(|c| ConsultationView {
                    id: c.id.0,
                    convened_by: c.convened_by.0,
                    agency_ids: c.agencies.iter().map(|a| a.0).collect(),
                    deputy_ids: c.deputies.iter().map(|d| d.0).collect(),
                    attendees: c.attendees.clone(),
                    subject: c.subject.clone(),
                    minutes: c.minutes.clone(),
                    on: c.on,
                })
                .collect(),
            countersignatures: r
                .case
                .countersignatures
                .iter()
                .map(|c| CountersignatureView {
                    reply_id: c.reply_id.0,
                    assignment_id: c.assignment_id.0,
                    agency_id: c.agency.0,
                    signer: signer(&c.signer),
                    on: c.on,
                })
                .collect(),
            disagreements: r
                .case
                .disagreements
                .iter()
                .filter(|d| mine(d.agency.0))
                .map(|d| DisagreementView {
                    id: d.id.0,
                    assignment_id: d.assignment_id.0,
                    agency_id: d.agency.0,
                    statement: d.statement.clone(),
                    on: d.on,
                    escalated_on: d.escalated_on,
                    resolution: d.resolution.clone(),
                    resolved_on: d.resolved_on,
                })
                .collect(),
            reply_copies: r
                .case
                .copies
                .iter()
                .filter(|c| mine(c.agency.0))
                .filter_map(|c| {
                    let reply = s.replies.iter().find(|x| x.id == c.reply_id)?;
                    Some(ReplyCopyView {
                        reply_id: c.reply_id.0,
                        assignment_id: c.assignment_id.0,
                        agency_id: c.agency.0,
                        on: c.on,
                        document_number: reply.document_number.clone(),
                        class: format!("{:?}", reply.class),
                        body: reply.body.clone(),
                    })
                })
                .collect(),
            commands: own
                .iter()
                .filter(|e| match who {
                    Seer::All => true,
                    Seer::Lead(a) | Seer::Unit(a) => e.actor.agency.is_some_and(|x| x.0 == a),
                })
                .map(|e| CommandView {
                    event_id: e.event_id,
                    event_type: e.event.event_type(),
                    status: e.status.clone(),
                    reason: e.status_reason.clone(),
                })
                .collect(),
        }
    }
}

/// One unit's task on one suggestion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct TaskView {
    pub assignment_id: Uuid,
    pub suggestion_id: Uuid,
    pub agency_id: Uuid,
    pub role: String,
    pub state: String,
    pub opinion: String,
    #[serde(with = "opt_date")]
    #[schema(value_type = Option<String>, format = Date)]
    pub co_opinion_due: Option<Date>,
    #[serde(with = "opt_date")]
    #[schema(value_type = Option<String>, format = Date)]
    pub reply_due: Option<Date>,
    /// Past its due date (co-opinion for co-handlers, reply for the others) and not done.
    pub overdue: bool,
}

impl TaskView {
    pub fn new(t: &Task, today: Date) -> TaskView {
        let due = if t.role == "co" {
            t.co_opinion_due.filter(|_| t.opinion == "awaited")
        } else {
            t.reply_due
                .filter(|_| !matches!(t.state.as_str(), "replied" | "done" | "superseded"))
        };
        TaskView {
            assignment_id: t.assignment_id,
            suggestion_id: t.suggestion_id,
            agency_id: t.agency_id,
            role: t.role.clone(),
            state: t.state.clone(),
            opinion: t.opinion.clone(),
            co_opinion_due: t.co_opinion_due,
            reply_due: t.reply_due,
            overdue: due.is_some_and(|d| d < today),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct TaskPage {
    pub tasks: Vec<TaskView>,
    /// Pass back as `page_token` for the next page; absent on the last.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_page_token: Option<String>,
}
