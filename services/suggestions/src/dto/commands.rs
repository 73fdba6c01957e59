//! The bodies of the suggestion commands.

use super::*;

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
    /// The consultations (会商) among the units the reply rests on.
    #[serde(default)]
    pub consultation_ids: Vec<Uuid>,
    /// The SHA-256 of the signed reply letter (答复函) this unit uploaded (`POST /v1/documents`);
    /// required for the reply types the profile lists in `rules.signed_letter_for`.
    #[schema(pattern = "^[0-9a-f]{64}$")]
    pub letter: Option<String>,
    /// The SHA-256s of other documents this unit uploaded, enclosed with the reply.
    #[serde(default)]
    pub attachments: Vec<String>,
}

/// 答复审查: the assigning office's decision on a reply awaiting its review.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplyReviewBody {
    /// `true` accepts the reply (the deputies are asked for their rating once every reply of
    /// the item stands); `false` returns it for re-handling (驳回重办).
    pub accept: bool,
    /// Required to return: what the unit has to handle again.
    #[serde(default)]
    pub reasons: String,
}

/// 公开答复: publish a reply now (no fields).
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PublishBody {}

/// 内部审批: a step of the unit's approval chain decides the unit's drafted reply.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalDecisionBody {
    /// The step decided (0 is the first; the assignment's `approval.current_step`): a second
    /// decision on a step is refused (409).
    pub step: u32,
    /// `true` approves (the last step's approval issues the reply); `false` returns the draft
    /// to its drafter.
    pub approve: bool,
    /// Required to return: what the drafter has to change.
    #[serde(default)]
    pub comment: String,
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
    /// Addressed to the deputies and delivered to them (default true). `false` records an
    /// internal note: it does not count as the progress word the deputies are owed.
    #[serde(default = "yes")]
    #[schema(default = true)]
    pub notify_deputy: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClosureDecisionBody {
    /// `true` confirms the closure request (the item closes, a B → A conversion takes effect);
    /// `false` returns it to the unit.
    pub confirm: bool,
    /// Required to return: what the unit must still show.
    #[serde(default)]
    pub reason: String,
    /// Returning: the converted commitments whose evidence did not hold, open again.
    #[serde(default)]
    pub reopen_commitment_ids: Vec<Uuid>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClosureRatingBody {
    /// Default: the caller's own deputy id (deputy keys).
    pub deputy_id: Option<Uuid>,
    #[schema(value_type = doc::Satisfaction)]
    pub level: Satisfaction,
    #[serde(default)]
    pub comment: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct EvidenceBody {
    #[schema(min_length = 1, pattern = r"\S")]
    pub evidence: String,
    /// The SHA-256s of documents this unit uploaded that prove it (`POST /v1/documents`).
    #[serde(default)]
    pub documents: Vec<String>,
}
