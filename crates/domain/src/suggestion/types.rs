//! The value types of a suggestion's lifecycle.

use serde::{Deserialize, Serialize};
use time::Date;

use banli_calendar::Deadline;

use crate::document::DocumentRef;
use crate::ids::*;

/// Which body the suggestion was made to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Body {
    /// 人民代表大会: deputies' suggestions.
    Npc,
    /// 政协: members' proposals.
    Cppcc,
}

/// 大会期间 or 闭会期间.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ItemKind {
    Session,
    Recess,
}

/// 单位重难特: a unit's own priority.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Priority {
    #[default]
    Normal,
    Key,
    Difficult,
    Special,
}

/// 公开: how much of the reply is published.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Disclosure {
    #[default]
    Full,
    Summary,
    None,
}

/// What a deputy submitted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SuggestionDetails {
    pub session_id: SessionId,
    /// Unique per session, e.g. `2020-0123`.
    pub number: String,
    pub title: String,
    pub body: String,
    pub category: String,
    pub kind: ItemKind,
    /// 领衔代表.
    pub lead_deputy: DeputyId,
    /// The lead deputy's delegation (代表团) when the suggestion was submitted: statistics by
    /// delegation read it from here.
    #[serde(default)]
    pub delegation: String,
    /// 附议/联名代表.
    pub co_signers: Vec<DeputyId>,
    /// 重点督办.
    pub key_supervised: bool,
    pub priority: Priority,
    pub confidential: bool,
    pub disclosure: Disclosure,
}

/// How a unit takes part (主办 / 会办 / 分办 / 独办).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UnitRole {
    Lead,
    Co,
    Separate,
    Sole,
}

impl UnitRole {
    pub fn as_str(self) -> &'static str {
        match self {
            UnitRole::Lead => "lead",
            UnitRole::Co => "co",
            UnitRole::Separate => "separate",
            UnitRole::Sole => "sole",
        }
    }

    /// Lead, sole and separate units reply to the deputy.
    pub fn is_responsible(self) -> bool {
        self != UnitRole::Co
    }
}

/// The due dates of one assignment, each with its explanation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssignmentDeadlines {
    /// The last day an adjustment may be requested.
    pub objection: Deadline,
    /// First contact with the deputy (responsible units).
    pub first_contact: Option<Deadline>,
    /// The co-handler's opinion to the lead (co-handlers).
    pub co_opinion: Option<Deadline>,
    /// The reply (responsible units), moved by approved extensions and re-handling.
    pub reply: Option<Deadline>,
    /// The latest an extension may move the reply to.
    pub reply_cap: Option<Deadline>,
}

/// Internal dispatch to a division (分办到处室).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Dispatch {
    pub division: DivisionId,
    pub handler: String,
    pub responsible_leader: String,
    /// 领办: the principal leader who personally leads a key item.
    pub leading_official: Option<String>,
    pub plan: String,
    pub on: Date,
}

/// 退回/调整交办 request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdjustmentRequest {
    pub reason: String,
    pub suggested_agency: Option<AgencyId>,
    pub on: Date,
    pub decision: Option<AdjustmentDecision>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum AdjustmentDecision {
    /// The assignment is superseded by one to `agency` (in `role`).
    Accept {
        agency: AgencyId,
        role: UnitRole,
        new_assignment: AssignmentId,
    },
    /// The unit keeps the item; the clock is not reset.
    Reject { reason: String },
    /// Referred to a higher authority; stays pending.
    Escalate { reason: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExtensionRequest {
    pub new_due: Date,
    pub reason: String,
    pub on: Date,
    pub approved: Option<bool>,
}

/// The phase of the handling a communication belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommunicationPhase {
    Before,
    During,
    After,
    Recess,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
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

/// 沟通: one contact between a unit and deputies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Communication {
    pub id: CommunicationId,
    pub assignment_id: AssignmentId,
    pub phase: CommunicationPhase,
    pub method: CommunicationMethod,
    /// A meeting in person (or an approved online meeting): counts for the meeting rate.
    pub face_to_face: bool,
    pub deputies: Vec<DeputyId>,
    pub participants: Vec<String>,
    pub summary: String,
    pub on: Date,
}

/// Who signed a document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Signer {
    pub name: String,
    pub position: SignerPosition,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SignerPosition {
    /// 主要负责人.
    PrincipalHead,
    /// 分管领导 authorised to sign.
    AuthorizedLeader,
    DivisionHead,
    Staff,
}

impl SignerPosition {
    pub fn as_str(self) -> &'static str {
        match self {
            SignerPosition::PrincipalHead => "principal_head",
            SignerPosition::AuthorizedLeader => "authorized_leader",
            SignerPosition::DivisionHead => "division_head",
            SignerPosition::Staff => "staff",
        }
    }
}

impl std::str::FromStr for SignerPosition {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        [
            SignerPosition::PrincipalHead,
            SignerPosition::AuthorizedLeader,
            SignerPosition::DivisionHead,
            SignerPosition::Staff,
        ]
        .into_iter()
        .find(|p| p.as_str() == s)
        .ok_or_else(|| {
            format!("unknown position `{s}`; expected principal_head, authorized_leader, division_head or staff")
        })
    }
}

/// 会办意见: a co-handler's formal opinion letter to the lead unit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoHandlingOpinion {
    pub id: OpinionId,
    pub assignment_id: AssignmentId,
    pub document_number: String,
    pub body: String,
    pub signer: Signer,
    pub on: Date,
    pub acknowledged_on: Option<Date>,
    /// The concrete measures the co-unit takes within its remit: each becomes a commitment of
    /// the co-unit, tracked in the ledger like the lead's.
    #[serde(default)]
    pub measures: Vec<OpinionMeasure>,
    /// Instead of measures: why no measure falls within the co-unit's remit (职责范围内无具体措施).
    #[serde(default)]
    pub no_measure_reason: Option<String>,
    /// The consultations (会商) the opinion rests on.
    #[serde(default)]
    pub consultations: Vec<ConsultationId>,
    /// Neither measures nor a reason: accepted under the profile's `flag` setting and marked.
    #[serde(default)]
    pub flagged: bool,
    /// The signed opinion letter (会办意见函), when uploaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub letter: Option<DocumentRef>,
    /// Other documents the opinion encloses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<DocumentRef>,
}

/// A measure a co-handling unit takes within its remit, stated in its opinion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpinionMeasure {
    /// The id of the commitment it becomes.
    pub id: CommitmentId,
    pub measure: String,
    /// Who is responsible in the co-unit (a division or an official).
    pub responsible: String,
    /// The agency that takes the measure: the co-unit itself (a measure of another agency is
    /// outside the co-unit's assignment and refused). `None` means the co-unit.
    pub agency: Option<AgencyId>,
    pub target_date: Date,
}

/// Whether a co-handling opinion must state measures or say why there are none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpinionSubstance {
    /// Accepted as written.
    Off,
    /// Accepted, and marked `flagged` in the opinion and the metrics.
    #[default]
    Flag,
    /// Refused (422).
    Refuse,
}

/// 会商: a meeting of the units of a suggestion (the lead and co-handlers; deputies optional).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consultation {
    pub id: ConsultationId,
    /// The unit that convened it (the lead unit, or the assigning office).
    pub convened_by: AgencyId,
    /// The units that took part, each with a live assignment on the suggestion.
    pub agencies: Vec<AgencyId>,
    /// The suggestion's deputies who attended, if any.
    pub deputies: Vec<DeputyId>,
    /// Everyone present, by name and post.
    pub attendees: Vec<String>,
    pub subject: String,
    pub minutes: String,
    pub on: Date,
    /// The signed minutes and other papers of the meeting.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub documents: Vec<DocumentRef>,
}

/// 答复类别. `D` exists only in the national four-class scheme.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ReplyClass {
    /// Solved or basically solved.
    A,
    /// Being solved or planned.
    B,
    /// For reference (A/B/C), or planned gradually (A/B/C/D).
    C,
    /// For reference, national scheme only.
    D,
}

impl ReplyClass {
    pub fn as_str(self) -> &'static str {
        match self {
            ReplyClass::A => "A",
            ReplyClass::B => "B",
            ReplyClass::C => "C",
            ReplyClass::D => "D",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReplyType {
    Initial,
    ReHandled,
    Supplementary,
    Joint,
}

impl ReplyType {
    pub fn as_str(self) -> &'static str {
        match self {
            ReplyType::Initial => "initial",
            ReplyType::ReHandled => "re_handled",
            ReplyType::Supplementary => "supplementary",
            ReplyType::Joint => "joint",
        }
    }
}

/// 答复: an immutable reply document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reply {
    pub id: ReplyId,
    pub assignment_id: AssignmentId,
    pub reply_type: ReplyType,
    pub document_number: String,
    pub body: String,
    /// The class the unit proposed; the assigning office may change it later (see class history).
    pub class: ReplyClass,
    pub signer: Signer,
    /// The co-handling opinions the reply is based on.
    pub references: Vec<OpinionId>,
    /// Co-units that countersigned a joint letter.
    pub countersigned_by: Vec<AgencyId>,
    pub round: u32,
    pub on: Date,
    /// The consultations (会商) the reply rests on.
    #[serde(default)]
    pub consultations: Vec<ConsultationId>,
    /// The signed reply letter with the unit's seal (答复函); required for the reply types the
    /// profile lists in `rules.signed_letter_for`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub letter: Option<DocumentRef>,
    /// Other documents the reply encloses.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attachments: Vec<DocumentRef>,
    /// 答复审查: under the profile's `rules.office_reviews_replies`, the last day the assigning
    /// office accepts or returns this reply before the deputies are asked for their rating.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review_due: Option<Deadline>,
    /// The office's decision on it, once made (or the window's lapse).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review: Option<ReplyReview>,
    /// The unit's internal sign-off (内部审批) the reply went through before it was issued, step
    /// by step; empty where the unit has no approval chain.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvals: Vec<ApprovalStep>,
    /// 公开答复: the day the platform publishes the reply, where the profile publishes replies
    /// and the item's disclosure allows it (not for confidential items, `none` disclosure or
    /// supplementary replies).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publication_due: Option<Deadline>,
    /// The reply as published, once published.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub publication: Option<Publication>,
}

/// 公开答复: a reply as the public reads it — the personal data of individuals removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Publication {
    pub on: Date,
    /// Published by the platform as `publication_due` passed (else by the assigning office).
    pub automatic: bool,
    /// The item's title, redacted.
    pub title: String,
    /// The reply's text, redacted; `None` where the item's disclosure is `summary`.
    pub body: Option<String>,
    /// How many names, phone numbers, e-mail addresses and identity numbers were removed.
    pub redactions: u32,
    /// Withdrawn by the assigning office, with its reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub withdrawn: Option<PublicationWithdrawal>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicationWithdrawal {
    pub reason: String,
    pub on: Date,
}

/// 内部审批链: the positions that sign a unit's reply off, in order, after its drafter (拟稿):
/// e.g. the division head (处室负责人), the leader in charge (分管领导), the head (主要负责人).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ApprovalChain {
    pub steps: Vec<SignerPosition>,
    /// Key-supervised items (重点督办) add the unit's principal head as the last step, when the
    /// chain does not end with it already.
    #[serde(default = "yes")]
    pub key_items_add_head: bool,
}

fn yes() -> bool {
    true
}

impl ApprovalChain {
    /// The longest chain accepted.
    pub const MAX_STEPS: usize = 6;

    /// Checks a chain: steps by positions that sign (not `staff`, the drafter), each once, at
    /// most [`Self::MAX_STEPS`].
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        if self.steps.len() > Self::MAX_STEPS {
            return Err((
                "steps",
                format!(
                    "at most {} steps (was {})",
                    Self::MAX_STEPS,
                    self.steps.len()
                ),
            ));
        }
        if self.steps.contains(&SignerPosition::Staff) {
            return Err((
                "steps",
                "`staff` drafts the reply; the steps are the positions that approve it: division_head, authorized_leader, principal_head".into(),
            ));
        }
        for (i, p) in self.steps.iter().enumerate() {
            if self.steps[..i].contains(p) {
                return Err(("steps", format!("{} appears twice", p.as_str())));
            }
        }
        Ok(())
    }

    /// The steps a reply of an item goes through: the chain, and the principal head last for a
    /// key-supervised item (where the chain asks for it). Empty: the reply is issued at once.
    pub fn steps_for(&self, key_supervised: bool) -> Vec<SignerPosition> {
        let mut steps = self.steps.clone();
        if key_supervised
            && self.key_items_add_head
            && !steps.is_empty()
            && steps.last() != Some(&SignerPosition::PrincipalHead)
        {
            steps.retain(|p| *p != SignerPosition::PrincipalHead);
            steps.push(SignerPosition::PrincipalHead);
        }
        steps
    }
}

/// A reply drafted by its unit and waiting for the unit's approval chain: issued when the last
/// step approves, back to the unit when a step returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Approval {
    /// The reply as drafted (issued as it stands, dated the day the chain completes).
    pub draft: Reply,
    /// The measures it promises.
    pub commitments: Vec<super::command::CommitmentDraft>,
    pub explanation: Option<String>,
    pub steps: Vec<ApprovalStep>,
    pub submitted_on: Date,
    /// The assignment's state before the draft went into review: where a return sends it.
    pub returns_to: super::AssignmentState,
}

impl Approval {
    /// The step waiting for a decision (the first undecided one).
    pub fn current(&self) -> Option<usize> {
        self.steps.iter().position(|s| s.decision.is_none())
    }
}

/// One step of an approval chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalStep {
    pub position: SignerPosition,
    /// When the step is owed (set as it becomes the current step).
    pub due: Option<Deadline>,
    pub decision: Option<StepDecision>,
}

/// A step's decision: approved, or returned to the drafter with a comment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepDecision {
    pub approved: bool,
    pub comment: String,
    pub on: Date,
}

/// The assigning office's review of a reply (答复审查): accepted, or returned for re-handling
/// (驳回重办) with its reasons.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyReview {
    pub accepted: bool,
    pub reasons: String,
    pub on: Date,
    /// Accepted because the review window closed without a decision.
    #[serde(default)]
    pub lapsed: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClassChange {
    pub from: ReplyClass,
    pub to: ReplyClass,
    pub reason: String,
    /// True for a B → A conversion after commitments were met.
    pub conversion: bool,
    pub on: Date,
}

/// 满意 / 基本满意 / 不满意.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Satisfaction {
    Satisfied,
    BasicallySatisfied,
    Dissatisfied,
}

impl Satisfaction {
    pub fn as_str(self) -> &'static str {
        match self {
            Satisfaction::Satisfied => "satisfied",
            Satisfaction::BasicallySatisfied => "basically_satisfied",
            Satisfaction::Dissatisfied => "dissatisfied",
        }
    }
}

/// 代表意见: one deputy's rating of a reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Feedback {
    pub deputy: DeputyId,
    pub level: Satisfaction,
    pub handling: Option<Satisfaction>,
    pub result: Option<Satisfaction>,
    pub comment: String,
    /// 0 for the first reply, n for the n-th re-handling round.
    pub round: u32,
    pub on: Date,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommitmentState {
    Open,
    /// Done, with evidence (承诺兑现).
    Converted,
}

/// A progress report on a commitment; append-only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProgressReport {
    pub note: String,
    pub on: Date,
    /// Addressed to the deputies (and delivered to them); an internal note is not, and does not
    /// count as the progress word the deputies are owed.
    #[serde(default = "addressed_by_default")]
    pub to_deputy: bool,
}

fn addressed_by_default() -> bool {
    true
}

/// 承诺事项: a measure promised in a reply, tracked until done.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commitment {
    pub id: CommitmentId,
    pub assignment_id: AssignmentId,
    pub measure: String,
    pub owner: AgencyId,
    pub division: Option<DivisionId>,
    pub target_date: Date,
    pub state: CommitmentState,
    pub progress: Vec<ProgressReport>,
    pub evidence: String,
    /// The documents that prove the conversion (承诺兑现的佐证材料).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub evidence_documents: Vec<DocumentRef>,
    pub converted_on: Option<Date>,
    pub created_on: Date,
    /// Who is responsible in the owner unit, when stated (co-handling measures).
    #[serde(default)]
    pub responsible: Option<String>,
    /// The co-handling opinion that stated it, for a co-unit's measure.
    #[serde(default)]
    pub opinion_id: Option<OpinionId>,
}

impl Commitment {
    /// Converted with evidence by its target date (承诺按期兑现).
    pub fn fulfilled(&self) -> bool {
        self.state == CommitmentState::Converted
            && self.converted_on.is_some_and(|d| d <= self.target_date)
    }
}

/// The owner unit's request to close an item in follow-up: its supplementary reply once every
/// commitment is converted with evidence. The assigning office confirms it (the item closes, a
/// B → A conversion takes effect) or returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClosureRequest {
    pub reply_id: ReplyId,
    pub assignment_id: AssignmentId,
    pub from: ReplyClass,
    pub to: ReplyClass,
    pub explanation: Option<String>,
    pub on: Date,
    pub decision: Option<ClosureDecision>,
    /// The deputies' ratings of a confirmed closure.
    pub ratings: Vec<ClosureRating>,
}

impl ClosureRequest {
    /// A B → A conversion (as opposed to closing in the class already held).
    pub fn is_conversion(&self) -> bool {
        self.to == ReplyClass::A && self.from != ReplyClass::A
    }

    pub fn is_pending(&self) -> bool {
        self.decision.is_none()
    }
}

/// The assigning office's decision on a closure request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClosureDecision {
    pub confirmed: bool,
    pub reason: String,
    /// Returned: the commitments whose evidence did not hold, open again.
    pub reopened: Vec<CommitmentId>,
    pub on: Date,
}

/// A deputy's rating of a confirmed closure (B → A conversion).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClosureRating {
    pub deputy: DeputyId,
    pub level: Satisfaction,
    pub comment: String,
    pub on: Date,
}
