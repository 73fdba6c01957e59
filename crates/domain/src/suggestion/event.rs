//! Events: the facts a decision produced. Only ever added to, never changed in place.

use serde::{Deserialize, Serialize};
use time::Date;

use banli_calendar::Deadline;

use super::types::*;
use crate::ids::*;

macro_rules! events {
    ($($(#[$doc:meta])* $name:ident { $($(#[$fmeta:meta])* $field:ident : $ty:ty),* $(,)? })*) => {
        $(
            $(#[$doc])*
            #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
            pub struct $name { $($(#[$fmeta])* pub $field: $ty),* }
        )*

        /// Every event of a suggestion's lifecycle.
        // Events are built once and then serialised or applied; boxing the large one buys nothing.
        #[allow(clippy::large_enum_variant)]
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(tag = "type", content = "data", rename_all = "snake_case")]
        pub enum SuggestionEvent { $($name($name)),* }

        impl SuggestionEvent {
            /// Every variant's name (`CamelCase`), in declaration order.
            pub const VARIANTS: &'static [&'static str] = &[$(stringify!($name)),*];

            /// The variant's name (`CamelCase`); on the wire it is [`Self::event_type`].
            pub fn type_name(&self) -> &'static str {
                match self { $(SuggestionEvent::$name(_) => stringify!($name)),* }
            }
        }
    };
}

events! {
    /// 提交: a suggestion was submitted (or registered on a deputy's behalf).
    Submitted { details: SuggestionDetails, on: Date }
    ReviewStarted { on: Date }
    /// 审查: accepted (立案), not accepted, or converted to a letter.
    Reviewed { decision: ReviewDecision, reason: String, on: Date }
    /// 撤回: withdrawn in writing by the lead deputy.
    Withdrawn { reason: String, on: Date }
    /// 交办: assigned to one unit.
    Assigned {
        assignment_id: AssignmentId,
        agency: AgencyId,
        role: UnitRole,
        deadlines: AssignmentDeadlines,
        replaces: Option<AssignmentId>,
        on: Date,
    }
    /// 签收.
    SignedFor { assignment_id: AssignmentId, on: Date }
    AdjustmentRequested { assignment_id: AssignmentId, request: AdjustmentRequest }
    AdjustmentDecided { assignment_id: AssignmentId, decision: AdjustmentDecision, on: Date }
    /// 分办: dispatched to a division.
    Dispatched { assignment_id: AssignmentId, dispatch: Dispatch }
    CommunicationRecorded { communication: Communication }
    ExtensionRequested { assignment_id: AssignmentId, request: ExtensionRequest }
    ExtensionDecided {
        assignment_id: AssignmentId,
        approved: bool,
        new_reply_deadline: Option<Deadline>,
        on: Date,
    }
    OpinionSubmitted { opinion: CoHandlingOpinion }
    OpinionAcknowledged { opinion_id: OpinionId, on: Date }
    /// The assigning office waived a co-handler's opinion.
    OpinionWaived { assignment_id: AssignmentId, reason: String, on: Date }
    ReplyIssued { reply: Reply }
    /// 内部审批: a unit's drafted reply went into its approval chain (the first step's due date
    /// set); the reply is issued when the last step approves.
    ReplySubmittedForApproval { assignment_id: AssignmentId, approval: Approval }
    /// A step of a unit's approval chain approved the draft (the next step's due date set, or
    /// the reply issued after it) or returned it to the drafter with a comment.
    ApprovalStepDecided {
        assignment_id: AssignmentId,
        step: u32,
        position: SignerPosition,
        decision: StepDecision,
        next_due: Option<Deadline>,
    }
    /// 答复审查: the assigning office accepted a reply, or returned it for re-handling (驳回重办)
    /// with the unit's new reply deadline; `review.lapsed`: accepted as the window closed.
    ReplyReviewed {
        reply_id: ReplyId,
        assignment_id: AssignmentId,
        review: ReplyReview,
        reply_deadline: Option<Deadline>,
    }
    /// 公开答复: a reply was published (redacted), by the office or as its publication date
    /// passed.
    ReplyPublished { reply_id: ReplyId, assignment_id: AssignmentId, publication: Publication }
    /// The assigning office withdrew a published reply, with its reason.
    PublicationWithdrawn { reply_id: ReplyId, reason: String, on: Date }
    /// Every responsible unit has replied; the feedback window opens.
    Replied { feedback_due: Deadline, on: Date }
    ClassChanged { change: ClassChange }
    FeedbackRecorded { feedback: Feedback }
    /// All feedback is in, or the window elapsed.
    Evaluated { dissatisfied: u32, returned: u32, on: Date }
    /// 重新办理: a new round with new reply deadlines for the responsible units.
    ReHandlingOpened { round: u32, reply_deadlines: Vec<(AssignmentId, Deadline)>, on: Date }
    /// Still dissatisfied after the last round: consultation meeting or special explanation.
    Escalated { reason: String, on: Date }
    EscalationResolved { outcome: String, on: Date }
    /// B-class (or open commitments): tracked until done.
    FollowUpStarted { on: Date }
    CommitmentCreated { commitment: Commitment }
    CommitmentProgressed { commitment_id: CommitmentId, report: ProgressReport }
    CommitmentConverted {
        commitment_id: CommitmentId,
        evidence: String,
        on: Date,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        documents: Vec<crate::document::DocumentRef>,
    }
    /// The owner unit asks to close the item (its supplementary reply); the office decides.
    ClosureRequested { request: ClosureRequest }
    /// The assigning office confirmed (closing follows) or returned the closure request.
    ClosureDecided { decision: ClosureDecision }
    /// A deputy rated a confirmed closure.
    ClosureRated { rating: ClosureRating }
    /// 会商: the units met on the suggestion.
    ConsultationRecorded { consultation: Consultation }
    Closed { on: Date }
    /// A command the coordination service accepted against its (older) view was refused here:
    /// the suggestion had moved on. Recorded so that nothing is dropped silently.
    CoordinationRefused { source_event: uuid::Uuid, command: String, reason: String, on: Date }
    /// Open deadlines moved because the calendar data changed.
    DeadlinesRecomputed { calendar_version: String, changes: Vec<DeadlineChange>, on: Date }
}

/// The schema version of suggestion event payloads this code writes and reads: the one
/// declaration (the store writes it, consumers refuse newer ones).
pub const SCHEMA_VERSION: u32 = 1;

impl SuggestionEvent {
    /// The event type on the wire: `suggestion.<snake_case name>`, e.g. `suggestion.reply_issued`.
    pub fn event_type(&self) -> String {
        crate::wire::event_type("suggestion", self.type_name())
    }

    /// Every suggestion event type on the wire.
    pub fn event_types() -> Vec<String> {
        Self::VARIANTS
            .iter()
            .map(|v| crate::wire::event_type("suggestion", v))
            .collect()
    }
}

/// Which deadline of a suggestion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeadlineKind {
    Objection,
    FirstContact,
    CoOpinion,
    Reply,
    Feedback,
}

impl DeadlineKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DeadlineKind::Objection => "objection",
            DeadlineKind::FirstContact => "first_contact",
            DeadlineKind::CoOpinion => "co_opinion",
            DeadlineKind::Reply => "reply",
            DeadlineKind::Feedback => "feedback",
        }
    }
}

/// One recomputed deadline, with the date it had before.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadlineChange {
    /// `None` for the suggestion's own deadlines (feedback).
    pub assignment_id: Option<AssignmentId>,
    pub kind: DeadlineKind,
    pub old_due: Date,
    pub deadline: Deadline,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReviewDecision {
    Accept,
    NotAccept,
    ConvertToLetter,
}
