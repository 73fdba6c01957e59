//! The API's request and response bodies, shared by REST (JSON) and gRPC (converted at the edge).
//!
//! Requests refuse unknown fields. Domain enums are read and written in `snake_case` (`lead`,
//! `in_handling`, …); their allowed values are listed in each field's schema.

use banli_calendar::{Deadline, DurationSpec, format_date};
use banli_domain::directory::{Agency, Deputy, Division, Session};
use banli_domain::ids::*;
use banli_domain::suggestion::*;
use serde::{Deserialize, Serialize};
use time::Date;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::store::{ApiKey, SuggestionSummary};

/// A due date with its explanation.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeadlineView {
    /// The due date.
    pub due: Date,
    pub start: Date,
    /// What starts the clock, e.g. `assignment`.
    pub start_label: String,
    /// The rule, e.g. `3 calendar months`.
    pub duration: String,
    pub calendar_version: String,
    /// True when part of the range lies outside the calendar data and weekends only were assumed.
    pub assumed_weekends_only: bool,
    /// How the date was computed, step by step.
    pub trace: Vec<String>,
    /// The whole trace on one line.
    pub explanation: String,
}

impl From<&Deadline> for DeadlineView {
    fn from(d: &Deadline) -> Self {
        DeadlineView {
            due: d.due,
            start: d.start,
            start_label: d.start_label.clone(),
            duration: d.duration.to_string(),
            calendar_version: d.calendar_version.clone(),
            assumed_weekends_only: d.assumed_weekends_only,
            trace: d.trace.iter().map(|s| s.text.clone()).collect(),
            explanation: d.explain(),
        }
    }
}

fn name<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AssignmentDeadlinesView {
    pub objection: DeadlineView,
    pub first_contact: Option<DeadlineView>,
    pub co_opinion: Option<DeadlineView>,
    pub reply: Option<DeadlineView>,
    pub reply_cap: Option<DeadlineView>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DispatchView {
    pub division_id: Uuid,
    pub handler: String,
    pub responsible_leader: String,
    pub leading_official: Option<String>,
    pub plan: String,
    pub on: Date,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RequestView {
    pub on: Date,
    pub reason: String,
    /// For extensions: the requested due date.
    pub new_due: Option<Date>,
    /// `pending`, `approved`/`rejected` (extensions), or `accept`/`reject`/`escalate` (adjustments).
    pub status: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AssignmentView {
    pub id: Uuid,
    pub agency_id: Uuid,
    /// `lead`, `co`, `separate` or `sole`.
    pub role: String,
    /// `pending_sign`, `accepted`, `adjustment_pending`, `superseded`, `in_handling`,
    /// `opinion_submitted`, `done`, `replied` or `re_handling`.
    pub state: String,
    pub assigned_on: Date,
    pub deadlines: AssignmentDeadlinesView,
    /// True when the reply (or co-opinion) is past due and not in.
    pub overdue: bool,
    pub dispatch: Option<DispatchView>,
    pub adjustment: Option<RequestView>,
    pub extension: Option<RequestView>,
    pub extensions_granted: u32,
    pub replaces: Option<Uuid>,
    pub opinion_waived: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CommunicationView {
    pub id: Uuid,
    pub assignment_id: Uuid,
    /// `before`, `during`, `after` or `recess`.
    pub phase: String,
    /// `visit`, `phone`, `letter`, `symposium`, `field_research`, `questionnaire`,
    /// `online_meeting` or `face_to_face_reply`.
    pub method: String,
    pub face_to_face: bool,
    pub deputy_ids: Vec<Uuid>,
    pub participants: Vec<String>,
    pub summary: String,
    pub on: Date,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SignerView {
    pub name: String,
    /// `principal_head`, `authorized_leader`, `division_head` or `staff`.
    pub position: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OpinionView {
    pub id: Uuid,
    pub assignment_id: Uuid,
    pub document_number: String,
    pub body: String,
    pub signer: SignerView,
    pub on: Date,
    pub acknowledged_on: Option<Date>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReplyView {
    pub id: Uuid,
    pub assignment_id: Uuid,
    /// `initial`, `re_handled`, `supplementary` or `joint`.
    pub reply_type: String,
    pub document_number: String,
    pub body: String,
    /// The class the unit proposed: `A`, `B`, `C` (or `D` in the national scheme).
    pub class: String,
    pub signer: SignerView,
    pub opinion_ids: Vec<Uuid>,
    pub countersigned_by: Vec<Uuid>,
    pub round: u32,
    pub on: Date,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ClassChangeView {
    pub from: String,
    pub to: String,
    pub reason: String,
    pub conversion: bool,
    pub on: Date,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FeedbackView {
    pub deputy_id: Uuid,
    /// `satisfied`, `basically_satisfied` or `dissatisfied`.
    pub level: String,
    pub handling: Option<String>,
    pub result: Option<String>,
    pub comment: String,
    pub round: u32,
    pub on: Date,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ProgressView {
    pub note: String,
    pub on: Date,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CommitmentView {
    pub id: Uuid,
    pub assignment_id: Uuid,
    pub measure: String,
    pub owner_agency_id: Uuid,
    pub division_id: Option<Uuid>,
    pub target_date: Date,
    /// `open` or `converted`.
    pub state: String,
    pub progress: Vec<ProgressView>,
    pub evidence: String,
    pub converted_on: Option<Date>,
}

/// A suggestion with everything its handling has produced.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SuggestionView {
    pub id: Uuid,
    /// Send it back as `If-Match` (REST) or `expected_version` (gRPC) with a change.
    pub version: u64,
    /// `submitted`, `under_review`, `not_accepted`, `converted_to_letter`, `registered`,
    /// `assigned`, `replied`, `evaluated`, `re_handling`, `escalated`, `in_follow_up`, `closed`
    /// or `withdrawn`.
    pub state: String,
    pub session_id: Uuid,
    pub number: String,
    pub title: String,
    pub body: String,
    pub category: String,
    /// `session` or `recess`.
    pub kind: String,
    pub lead_deputy_id: Uuid,
    pub co_signer_ids: Vec<Uuid>,
    pub key_supervised: bool,
    /// `normal`, `key`, `difficult` or `special`.
    pub priority: String,
    pub confidential: bool,
    /// `full`, `summary` or `none`.
    pub disclosure: String,
    pub received_on: Date,
    pub current_class: Option<String>,
    pub assignments: Vec<AssignmentView>,
    pub communications: Vec<CommunicationView>,
    pub opinions: Vec<OpinionView>,
    pub replies: Vec<ReplyView>,
    pub class_history: Vec<ClassChangeView>,
    pub feedback: Vec<FeedbackView>,
    pub feedback_deadline: Option<DeadlineView>,
    pub rehandling_rounds: u32,
    pub commitments: Vec<CommitmentView>,
}

fn signer(s: &Signer) -> SignerView {
    SignerView {
        name: s.name.clone(),
        position: name(&s.position),
    }
}

impl SuggestionView {
    /// The view for `reader` as of `today`: co-handling opinions it may not read are left out
    /// (see [`Suggestion::opinion_readable`]).
    pub fn for_reader(
        s: &Suggestion,
        today: Date,
        reader: banli_domain::suggestion::OpinionReader,
    ) -> SuggestionView {
        let mut v = SuggestionView::new(s, today);
        v.opinions.retain(|o| {
            s.opinion_readable(reader, banli_domain::ids::AssignmentId(o.assignment_id))
        });
        v
    }

    /// The whole view as of `today` (for the overdue flags).
    pub fn new(s: &Suggestion, today: Date) -> SuggestionView {
        let d = &s.details;
        SuggestionView {
            id: s.id.0,
            version: s.version,
            state: s.state.as_str().to_owned(),
            session_id: d.session_id.0,
            number: d.number.clone(),
            title: d.title.clone(),
            body: d.body.clone(),
            category: d.category.clone(),
            kind: name(&d.kind),
            lead_deputy_id: d.lead_deputy.0,
            co_signer_ids: d.co_signers.iter().map(|x| x.0).collect(),
            key_supervised: d.key_supervised,
            priority: name(&d.priority),
            confidential: d.confidential,
            disclosure: name(&d.disclosure),
            received_on: s.received_on,
            current_class: s.current_class().map(|c| name(&c)),
            assignments: s.assignments.iter().map(|a| assignment(a, today)).collect(),
            communications: s
                .communications
                .iter()
                .map(|c| CommunicationView {
                    id: c.id.0,
                    assignment_id: c.assignment_id.0,
                    phase: name(&c.phase),
                    method: name(&c.method),
                    face_to_face: c.face_to_face,
                    deputy_ids: c.deputies.iter().map(|x| x.0).collect(),
                    participants: c.participants.clone(),
                    summary: c.summary.clone(),
                    on: c.on,
                })
                .collect(),
            opinions: s
                .opinions
                .iter()
                .map(|o| OpinionView {
                    id: o.id.0,
                    assignment_id: o.assignment_id.0,
                    document_number: o.document_number.clone(),
                    body: o.body.clone(),
                    signer: signer(&o.signer),
                    on: o.on,
                    acknowledged_on: o.acknowledged_on,
                })
                .collect(),
            replies: s
                .replies
                .iter()
                .map(|r| ReplyView {
                    id: r.id.0,
                    assignment_id: r.assignment_id.0,
                    reply_type: name(&r.reply_type),
                    document_number: r.document_number.clone(),
                    body: r.body.clone(),
                    class: name(&r.class),
                    signer: signer(&r.signer),
                    opinion_ids: r.references.iter().map(|x| x.0).collect(),
                    countersigned_by: r.countersigned_by.iter().map(|x| x.0).collect(),
                    round: r.round,
                    on: r.on,
                })
                .collect(),
            class_history: s
                .class_history
                .iter()
                .map(|c| ClassChangeView {
                    from: name(&c.from),
                    to: name(&c.to),
                    reason: c.reason.clone(),
                    conversion: c.conversion,
                    on: c.on,
                })
                .collect(),
            feedback: s
                .feedback
                .iter()
                .map(|f| FeedbackView {
                    deputy_id: f.deputy.0,
                    level: name(&f.level),
                    handling: f.handling.as_ref().map(name),
                    result: f.result.as_ref().map(name),
                    comment: f.comment.clone(),
                    round: f.round,
                    on: f.on,
                })
                .collect(),
            feedback_deadline: s.feedback_due.as_ref().map(DeadlineView::from),
            rehandling_rounds: s.rehandling_rounds,
            commitments: s
                .commitments
                .iter()
                .map(|c| CommitmentView {
                    id: c.id.0,
                    assignment_id: c.assignment_id.0,
                    measure: c.measure.clone(),
                    owner_agency_id: c.owner.0,
                    division_id: c.division.map(|x| x.0),
                    target_date: c.target_date,
                    state: name(&c.state),
                    progress: c
                        .progress
                        .iter()
                        .map(|p| ProgressView {
                            note: p.note.clone(),
                            on: p.on,
                        })
                        .collect(),
                    evidence: c.evidence.clone(),
                    converted_on: c.converted_on,
                })
                .collect(),
        }
    }
}

fn assignment(a: &Assignment, today: Date) -> AssignmentView {
    let open = matches!(
        a.state,
        AssignmentState::PendingSign
            | AssignmentState::Accepted
            | AssignmentState::AdjustmentPending
            | AssignmentState::InHandling
            | AssignmentState::ReHandling
    );
    let due = a
        .deadlines
        .reply
        .as_ref()
        .or(a.deadlines.co_opinion.as_ref())
        .map(|d| d.due);
    AssignmentView {
        id: a.id.0,
        agency_id: a.agency.0,
        role: a.role.as_str().to_owned(),
        state: a.state.as_str().to_owned(),
        assigned_on: a.assigned_on,
        deadlines: AssignmentDeadlinesView {
            objection: (&a.deadlines.objection).into(),
            first_contact: a.deadlines.first_contact.as_ref().map(Into::into),
            co_opinion: a.deadlines.co_opinion.as_ref().map(Into::into),
            reply: a.deadlines.reply.as_ref().map(Into::into),
            reply_cap: a.deadlines.reply_cap.as_ref().map(Into::into),
        },
        overdue: open && due.is_some_and(|d| d < today),
        dispatch: a.dispatch.as_ref().map(|d| DispatchView {
            division_id: d.division.0,
            handler: d.handler.clone(),
            responsible_leader: d.responsible_leader.clone(),
            leading_official: d.leading_official.clone(),
            plan: d.plan.clone(),
            on: d.on,
        }),
        adjustment: a.adjustment.as_ref().map(|r| RequestView {
            on: r.on,
            reason: r.reason.clone(),
            new_due: None,
            status: match &r.decision {
                None => "pending".into(),
                Some(AdjustmentDecision::Accept { .. }) => "accept".into(),
                Some(AdjustmentDecision::Reject { .. }) => "reject".into(),
                Some(AdjustmentDecision::Escalate { .. }) => "escalate".into(),
            },
        }),
        extension: a.extension.as_ref().map(|r| RequestView {
            on: r.on,
            reason: r.reason.clone(),
            new_due: Some(r.new_due),
            status: match r.approved {
                None => "pending".into(),
                Some(true) => "approved".into(),
                Some(false) => "rejected".into(),
            },
        }),
        extensions_granted: a.extensions_granted,
        replaces: a.replaces.map(|x| x.0),
        opinion_waived: a.opinion_waived,
    }
}

/// One row of a list.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SuggestionSummaryView {
    pub id: Uuid,
    pub version: u64,
    pub session_id: Uuid,
    pub number: String,
    pub state: String,
    pub title: String,
    pub key_supervised: bool,
}

impl From<SuggestionSummary> for SuggestionSummaryView {
    fn from(s: SuggestionSummary) -> Self {
        SuggestionSummaryView {
            id: s.id.0,
            version: s.version,
            session_id: s.session_id.0,
            number: s.number,
            state: s.state,
            title: s.title,
            key_supervised: s.key_supervised,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SuggestionPage {
    pub items: Vec<SuggestionSummaryView>,
    /// Pass as `page_token` for the next page; absent on the last page.
    pub next_page_token: Option<String>,
}

// ---- directory ----

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

// ---- suggestion commands ----

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SubmitSuggestion {
    pub session_id: Uuid,
    /// Unique per session, e.g. `2020-0123`.
    #[schema(min_length = 1, pattern = r"\S")]
    pub number: String,
    #[schema(min_length = 1, pattern = r"\S")]
    pub title: String,
    #[schema(min_length = 1, pattern = r"\S")]
    pub body: String,
    #[serde(default)]
    pub category: String,
    /// `session` or `recess`; by default from the session's dates and the date received.
    #[schema(value_type = Option<doc::ItemKind>)]
    pub kind: Option<ItemKind>,
    pub lead_deputy_id: Uuid,
    #[serde(default)]
    pub co_signer_ids: Vec<Uuid>,
    #[serde(default)]
    pub key_supervised: bool,
    /// `normal` (default), `key`, `difficult` or `special`.
    #[serde(default)]
    #[schema(value_type = doc::Priority)]
    pub priority: Priority,
    #[serde(default)]
    pub confidential: bool,
    /// `full` (default), `summary` or `none`.
    #[serde(default)]
    #[schema(value_type = doc::Disclosure)]
    pub disclosure: Disclosure,
    /// The date received; default today.
    pub received_on: Option<Date>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Review {
    /// `accept`, `not_accept` or `convert_to_letter`.
    #[schema(value_type = doc::ReviewDecision)]
    pub decision: ReviewDecision,
    #[serde(default)]
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reason {
    #[schema(min_length = 1, pattern = r"\S")]
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UnitToAssign {
    pub agency_id: Uuid,
    /// `lead`, `co`, `separate` or `sole`.
    #[schema(value_type = doc::UnitRole)]
    pub role: UnitRole,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Assign {
    pub units: Vec<UnitToAssign>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DispatchBody {
    pub division_id: Uuid,
    #[schema(min_length = 1, pattern = r"\S")]
    pub handler: String,
    #[schema(min_length = 1, pattern = r"\S")]
    pub responsible_leader: String,
    /// 领办: required for key-supervised items.
    pub leading_official: Option<String>,
    #[serde(default)]
    pub plan: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommunicationBody {
    pub assignment_id: Uuid,
    #[schema(value_type = doc::CommunicationPhase)]
    pub phase: CommunicationPhase,
    #[schema(value_type = doc::CommunicationMethod)]
    pub method: CommunicationMethod,
    #[serde(default)]
    pub face_to_face: bool,
    pub deputy_ids: Vec<Uuid>,
    #[serde(default)]
    pub participants: Vec<String>,
    #[schema(min_length = 1, pattern = r"\S")]
    pub summary: String,
    /// Default today.
    pub on: Option<Date>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ExtensionRequestBody {
    pub new_due: Date,
    #[schema(min_length = 1, pattern = r"\S")]
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Decision {
    pub approve: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignerBody {
    #[schema(min_length = 1, pattern = r"\S")]
    pub name: String,
    /// `principal_head`, `authorized_leader`, `division_head` or `staff`.
    #[schema(value_type = doc::SignerPosition)]
    pub position: SignerPosition,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommitmentBody {
    #[schema(min_length = 1, pattern = r"\S")]
    pub measure: String,
    pub division_id: Option<Uuid>,
    pub target_date: Date,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplyBody {
    pub assignment_id: Uuid,
    /// `initial` (default; `re_handled` in a re-handling round, `supplementary` in follow-up), or
    /// `joint`.
    #[schema(value_type = Option<doc::ReplyType>)]
    pub reply_type: Option<ReplyType>,
    #[schema(min_length = 1, pattern = r"\S")]
    pub document_number: String,
    #[schema(min_length = 1, pattern = r"\S")]
    pub body: String,
    /// `A`, `B`, `C` (or `D` in the national scheme).
    #[schema(value_type = doc::ReplyClass)]
    pub class: ReplyClass,
    pub signer: SignerBody,
    /// The co-handling opinions the reply is based on (all of them, for a lead unit).
    #[serde(default)]
    pub opinion_ids: Vec<Uuid>,
    #[serde(default)]
    pub countersigned_by: Vec<Uuid>,
    /// Required for the classes that carry commitments (B by default).
    #[serde(default)]
    pub commitments: Vec<CommitmentBody>,
    /// Why a supplementary reply does not reach class A.
    pub explanation: Option<String>,
    pub on: Option<Date>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClassChangeBody {
    #[schema(value_type = doc::ReplyClass)]
    pub to: ReplyClass,
    #[schema(min_length = 1, pattern = r"\S")]
    pub reason: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FeedbackBody {
    /// Default: the caller's own deputy id (deputy keys).
    pub deputy_id: Option<Uuid>,
    #[schema(value_type = doc::Satisfaction)]
    pub level: Satisfaction,
    #[schema(value_type = Option<doc::Satisfaction>)]
    pub handling: Option<Satisfaction>,
    #[schema(value_type = Option<doc::Satisfaction>)]
    pub result: Option<Satisfaction>,
    #[serde(default)]
    pub comment: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OutcomeBody {
    #[schema(min_length = 1, pattern = r"\S")]
    pub outcome: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProgressBody {
    #[schema(min_length = 1, pattern = r"\S")]
    pub note: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EvidenceBody {
    #[schema(min_length = 1, pattern = r"\S")]
    pub evidence: String,
}

/// Ids in paths and bodies are plain UUIDs; these wrap them into domain ids.
pub fn sid(u: Uuid) -> SuggestionId {
    SuggestionId(u)
}

pub fn date_text(d: Date) -> String {
    format_date(d)
}

/// Enumerations as the API spells them, for the OpenAPI document only: the domain's own types do
/// the (de)serialising, and a test keeps these lists equal to theirs.
#[allow(dead_code)]
pub mod doc {
    use utoipa::ToSchema;

    #[derive(Debug, ToSchema)]
    #[schema(rename_all = "snake_case")]
    pub enum Body {
        Npc,
        Cppcc,
    }

    #[derive(Debug, ToSchema)]
    #[schema(rename_all = "snake_case")]
    pub enum Role {
        AssigningOffice,
        AgencyAdmin,
        Handler,
        Leader,
        Deputy,
        Auditor,
    }

    #[derive(Debug, ToSchema)]
    #[schema(rename_all = "snake_case")]
    pub enum ItemKind {
        Session,
        Recess,
    }

    #[derive(Debug, ToSchema)]
    #[schema(rename_all = "snake_case")]
    pub enum Priority {
        Normal,
        Key,
        Difficult,
        Special,
    }

    #[derive(Debug, ToSchema)]
    #[schema(rename_all = "snake_case")]
    pub enum Disclosure {
        Full,
        Summary,
        None,
    }

    #[derive(Debug, ToSchema)]
    #[schema(rename_all = "snake_case")]
    pub enum ReviewDecision {
        Accept,
        NotAccept,
        ConvertToLetter,
    }

    #[derive(Debug, ToSchema)]
    #[schema(rename_all = "snake_case")]
    pub enum UnitRole {
        Lead,
        Co,
        Separate,
        Sole,
    }

    #[derive(Debug, ToSchema)]
    #[schema(rename_all = "snake_case")]
    pub enum CommunicationPhase {
        Before,
        During,
        After,
        Recess,
    }

    #[derive(Debug, ToSchema)]
    #[schema(rename_all = "snake_case")]
    pub enum CommunicationMethod {
        Visit,
        Phone,
        Letter,
        Symposium,
        FieldResearch,
        Questionnaire,
        OnlineMeeting,
        FaceToFaceReply,
    }

    #[derive(Debug, ToSchema)]
    #[schema(rename_all = "snake_case")]
    pub enum SignerPosition {
        PrincipalHead,
        AuthorizedLeader,
        DivisionHead,
        Staff,
    }

    #[derive(Debug, ToSchema)]
    #[schema(rename_all = "snake_case")]
    pub enum ReplyType {
        Initial,
        ReHandled,
        Supplementary,
        Joint,
    }

    #[derive(Debug, ToSchema)]
    pub enum ReplyClass {
        A,
        B,
        C,
        D,
    }

    #[derive(Debug, ToSchema)]
    #[schema(rename_all = "snake_case")]
    pub enum Satisfaction {
        Satisfied,
        BasicallySatisfied,
        Dissatisfied,
    }

    #[cfg(test)]
    mod tests {
        use banli_domain::suggestion as d;
        use serde::Serialize;
        use utoipa::PartialSchema;

        fn documented<T: PartialSchema>() -> Vec<String> {
            let v = serde_json::to_value(T::schema()).unwrap_or_default();
            v["enum"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(|x| x.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default()
        }

        fn spelled<T: Serialize>(values: &[T]) -> Vec<String> {
            values
                .iter()
                .map(|v| {
                    serde_json::to_value(v)
                        .ok()
                        .and_then(|j| j.as_str().map(str::to_owned))
                        .unwrap_or_default()
                })
                .collect()
        }

        #[test]
        fn the_document_lists_exactly_the_values_the_api_reads() {
            assert_eq!(
                documented::<super::Body>(),
                spelled(&[d::Body::Npc, d::Body::Cppcc])
            );
            assert_eq!(
                documented::<super::Role>(),
                banli_domain::Role::ALL
                    .map(|r| r.as_str().to_owned())
                    .to_vec()
            );
            assert_eq!(
                documented::<super::ItemKind>(),
                spelled(&[d::ItemKind::Session, d::ItemKind::Recess])
            );
            assert_eq!(
                documented::<super::Priority>(),
                spelled(&[
                    d::Priority::Normal,
                    d::Priority::Key,
                    d::Priority::Difficult,
                    d::Priority::Special
                ])
            );
            assert_eq!(
                documented::<super::Disclosure>(),
                spelled(&[
                    d::Disclosure::Full,
                    d::Disclosure::Summary,
                    d::Disclosure::None
                ])
            );
            assert_eq!(
                documented::<super::ReviewDecision>(),
                spelled(&[
                    d::ReviewDecision::Accept,
                    d::ReviewDecision::NotAccept,
                    d::ReviewDecision::ConvertToLetter
                ])
            );
            assert_eq!(
                documented::<super::UnitRole>(),
                spelled(&[
                    d::UnitRole::Lead,
                    d::UnitRole::Co,
                    d::UnitRole::Separate,
                    d::UnitRole::Sole
                ])
            );
            assert_eq!(
                documented::<super::CommunicationPhase>(),
                spelled(&[
                    d::CommunicationPhase::Before,
                    d::CommunicationPhase::During,
                    d::CommunicationPhase::After,
                    d::CommunicationPhase::Recess
                ])
            );
            use d::CommunicationMethod as M;
            assert_eq!(
                documented::<super::CommunicationMethod>(),
                spelled(&[
                    M::Visit,
                    M::Phone,
                    M::Letter,
                    M::Symposium,
                    M::FieldResearch,
                    M::Questionnaire,
                    M::OnlineMeeting,
                    M::FaceToFaceReply
                ])
            );
            use d::SignerPosition as S;
            assert_eq!(
                documented::<super::SignerPosition>(),
                spelled(&[
                    S::PrincipalHead,
                    S::AuthorizedLeader,
                    S::DivisionHead,
                    S::Staff
                ])
            );
            assert_eq!(
                documented::<super::ReplyType>(),
                spelled(&[
                    d::ReplyType::Initial,
                    d::ReplyType::ReHandled,
                    d::ReplyType::Supplementary,
                    d::ReplyType::Joint
                ])
            );
            assert_eq!(
                documented::<super::ReplyClass>(),
                spelled(&[
                    d::ReplyClass::A,
                    d::ReplyClass::B,
                    d::ReplyClass::C,
                    d::ReplyClass::D
                ])
            );
            assert_eq!(
                documented::<super::Satisfaction>(),
                spelled(&[
                    d::Satisfaction::Satisfied,
                    d::Satisfaction::BasicallySatisfied,
                    d::Satisfaction::Dissatisfied
                ])
            );
        }
    }
}
