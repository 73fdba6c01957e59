//! Commands: what an actor asks for. Dates come with the command; the domain reads no clock.

use serde::{Deserialize, Serialize};
use time::Date;

use super::event::ReviewDecision;
use super::types::*;
use crate::actor::Actor;
use crate::ids::*;

/// A command with its actor.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    pub actor: Actor,
    pub kind: CommandKind,
}

/// A unit to assign.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct UnitAssignment {
    pub assignment_id: AssignmentId,
    pub agency: AgencyId,
    pub role: UnitRole,
}

/// How the assigning office decides an adjustment request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum AdjustmentChoice {
    /// Reassign to `agency`; `role` defaults to the old assignment's role.
    Accept {
        agency: AgencyId,
        role: Option<UnitRole>,
        new_assignment: AssignmentId,
    },
    Reject {
        reason: String,
    },
    Escalate {
        reason: String,
    },
}

/// A commitment promised in a reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitmentDraft {
    pub id: CommitmentId,
    pub measure: String,
    pub division: Option<DivisionId>,
    pub target_date: Date,
}

command_enum! {
// A command is built once and decided; boxing the reply (the large variant) buys nothing.
#[allow(clippy::large_enum_variant)]
/// What a command asks for. The suggestions service's transports build the client commands
/// (`SuggestionCommand` there); the coordination service's are mirrored in; the rest are the
/// platform's own (`RecomputeDeadlines`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommandKind {
    Submit {
        details: SuggestionDetails,
        on: Date,
    },
    StartReview {
        on: Date,
    },
    Review {
        decision: ReviewDecision,
        reason: String,
        on: Date,
    },
    Withdraw {
        reason: String,
        on: Date,
    },
    Assign {
        units: Vec<UnitAssignment>,
        on: Date,
    },
    SignFor {
        assignment: AssignmentId,
        on: Date,
    },
    RequestAdjustment {
        assignment: AssignmentId,
        reason: String,
        suggested_agency: Option<AgencyId>,
        on: Date,
    },
    DecideAdjustment {
        assignment: AssignmentId,
        choice: AdjustmentChoice,
        on: Date,
    },
    Dispatch {
        assignment: AssignmentId,
        division: DivisionId,
        handler: String,
        responsible_leader: String,
        leading_official: Option<String>,
        plan: String,
        /// The divisions the assigned unit has, from the directory: `division` must be one.
        unit_divisions: Vec<DivisionId>,
        on: Date,
    },
    RecordCommunication {
        communication: Communication,
    },
    RequestExtension {
        assignment: AssignmentId,
        new_due: Date,
        reason: String,
        on: Date,
    },
    DecideExtension {
        assignment: AssignmentId,
        approve: bool,
        on: Date,
    },
    SubmitOpinion {
        opinion: CoHandlingOpinion,
    },
    AcknowledgeOpinion {
        opinion: OpinionId,
        on: Date,
    },
    WaiveOpinion {
        assignment: AssignmentId,
        reason: String,
        on: Date,
    },
    IssueReply {
        reply: Reply,
        commitments: Vec<CommitmentDraft>,
        explanation: Option<String>,
        /// The replying unit's approval chain, from the directory: with steps, the reply goes
        /// into review (内部审批) and is issued when the chain completes.
        approval_chain: ApprovalChain,
    },
    /// A step of the unit's approval chain approves its drafted reply or returns it. `step`
    /// is the step decided (0 first): a second decision on a step is refused.
    DecideApprovalStep {
        assignment: AssignmentId,
        step: u32,
        approve: bool,
        comment: String,
        on: Date,
    },
    /// 答复审查: the assigning office accepts a reply awaiting its review, or returns it for
    /// re-handling with its reasons.
    ReviewReply {
        reply: ReplyId,
        accept: bool,
        reasons: String,
        on: Date,
    },
    /// The platform accepts every reply whose review window closed before `on` without a
    /// decision.
    LapseReplyReviews {
        on: Date,
    },
    /// 公开答复: the assigning office publishes a reply now. `names`: the people whose names
    /// the published text must not carry beyond those the item records (the deputies', from
    /// the directory).
    PublishReply {
        reply: ReplyId,
        names: Vec<String>,
        on: Date,
    },
    /// The assigning office withdraws a published reply.
    WithdrawPublication {
        reply: ReplyId,
        reason: String,
        on: Date,
    },
    /// The platform publishes every reply whose publication date has passed.
    PublishDueReplies {
        names: Vec<String>,
        on: Date,
    },
    ChangeClass {
        to: ReplyClass,
        reason: String,
        on: Date,
    },
    RecordFeedback {
        feedback: Feedback,
    },
    CloseFeedbackWindow {
        on: Date,
    },
    ResolveEscalation {
        outcome: String,
        on: Date,
    },
    ReportProgress {
        commitment: CommitmentId,
        note: String,
        /// Addressed to the deputies (the default); `false` for an internal note.
        to_deputy: bool,
        on: Date,
    },
    ConvertCommitment {
        commitment: CommitmentId,
        evidence: String,
        /// The documents that prove it (already in the document store).
        documents: Vec<crate::document::DocumentRef>,
        on: Date,
    },
    /// The assigning office confirms the pending closure request (the item closes) or returns
    /// it, reopening the commitments whose evidence did not hold.
    DecideClosure {
        confirm: bool,
        reason: String,
        reopen: Vec<CommitmentId>,
        on: Date,
    },
    /// A deputy rates a confirmed closure (B → A conversion).
    RateClosure {
        deputy: DeputyId,
        level: Satisfaction,
        comment: String,
        on: Date,
    },
    /// 会商: the lead unit (or the office) records a meeting of the units.
    RecordConsultation {
        consultation: Consultation,
    },
    /// Recompute open deadlines against the calendar in the rules (after new calendar data).
    RecomputeDeadlines {
        on: Date,
    },
}
}

impl CommandKind {
    /// The command's name in error messages.
    pub fn name(&self) -> &'static str {
        match self {
            CommandKind::Submit { .. } => "submit",
            CommandKind::StartReview { .. } => "start review",
            CommandKind::Review { .. } => "review",
            CommandKind::Withdraw { .. } => "withdraw",
            CommandKind::Assign { .. } => "assign",
            CommandKind::SignFor { .. } => "sign for",
            CommandKind::RequestAdjustment { .. } => "request an adjustment",
            CommandKind::DecideAdjustment { .. } => "decide an adjustment",
            CommandKind::Dispatch { .. } => "dispatch",
            CommandKind::RecordCommunication { .. } => "record a communication",
            CommandKind::RequestExtension { .. } => "request an extension",
            CommandKind::DecideExtension { .. } => "decide an extension",
            CommandKind::SubmitOpinion { .. } => "submit a co-handling opinion",
            CommandKind::AcknowledgeOpinion { .. } => "acknowledge an opinion",
            CommandKind::WaiveOpinion { .. } => "waive an opinion",
            CommandKind::IssueReply { .. } => "issue a reply",
            CommandKind::DecideApprovalStep { .. } => "decide an approval step",
            CommandKind::ReviewReply { .. } => "review a reply",
            CommandKind::LapseReplyReviews { .. } => "accept replies whose review window closed",
            CommandKind::PublishReply { .. } => "publish a reply",
            CommandKind::WithdrawPublication { .. } => "withdraw a publication",
            CommandKind::PublishDueReplies { .. } => "publish the replies due",
            CommandKind::ChangeClass { .. } => "change the class",
            CommandKind::RecordFeedback { .. } => "record feedback",
            CommandKind::CloseFeedbackWindow { .. } => "close the feedback window",
            CommandKind::ResolveEscalation { .. } => "resolve the escalation",
            CommandKind::ReportProgress { .. } => "report progress",
            CommandKind::ConvertCommitment { .. } => "convert a commitment",
            CommandKind::DecideClosure { .. } => "decide a closure request",
            CommandKind::RateClosure { .. } => "rate the closure",
            CommandKind::RecordConsultation { .. } => "record a consultation",
            CommandKind::RecomputeDeadlines { .. } => "recompute deadlines",
        }
    }
}
