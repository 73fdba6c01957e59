//! The suggestion (建议) and its assignments (交办): the central aggregate.
//!
//! One aggregate holds a suggestion with everything that decides its lifecycle: the units it is
//! assigned to, their communications, co-handling opinions, replies, feedback, re-handling rounds
//! and commitments. [`decide`] checks a command against the state and the rules and returns the
//! events; [`Suggestion::apply`] folds an event into the state and never fails.

mod command;
mod decide;
mod event;
mod types;

pub use command::*;
pub use decide::decide;
pub use event::*;
pub use types::*;

use serde::{Deserialize, Serialize};

use crate::ids::*;
use banli_calendar::Deadline;
use time::Date;

/// The states of a suggestion (the table "Lifecycle of a suggestion" of `domain.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SuggestionState {
    Submitted,
    UnderReview,
    /// 不予立案: returned to the deputy. Terminal.
    NotAccepted,
    /// 转为来信. Terminal.
    ConvertedToLetter,
    /// 立案.
    Registered,
    Assigned,
    Replied,
    Evaluated,
    /// 重新办理.
    ReHandling,
    Escalated,
    /// B-class or open commitments: tracked until done (跟踪办理).
    InFollowUp,
    Closed,
    /// Withdrawn in writing by the lead deputy. Terminal.
    Withdrawn,
}

impl SuggestionState {
    pub fn as_str(self) -> &'static str {
        match self {
            SuggestionState::Submitted => "submitted",
            SuggestionState::UnderReview => "under_review",
            SuggestionState::NotAccepted => "not_accepted",
            SuggestionState::ConvertedToLetter => "converted_to_letter",
            SuggestionState::Registered => "registered",
            SuggestionState::Assigned => "assigned",
            SuggestionState::Replied => "replied",
            SuggestionState::Evaluated => "evaluated",
            SuggestionState::ReHandling => "re_handling",
            SuggestionState::Escalated => "escalated",
            SuggestionState::InFollowUp => "in_follow_up",
            SuggestionState::Closed => "closed",
            SuggestionState::Withdrawn => "withdrawn",
        }
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            SuggestionState::NotAccepted
                | SuggestionState::ConvertedToLetter
                | SuggestionState::Closed
                | SuggestionState::Withdrawn
        )
    }

    /// The transitions `domain.md` allows, as (from, to) pairs. Property tests hold every reachable
    /// transition to this table.
    pub fn allowed_transitions() -> &'static [(SuggestionState, SuggestionState)] {
        use SuggestionState::*;
        &[
            (Submitted, UnderReview),
            (UnderReview, NotAccepted),
            (UnderReview, ConvertedToLetter),
            (UnderReview, Registered),
            (Submitted, Withdrawn),
            (UnderReview, Withdrawn),
            (Registered, Withdrawn),
            (Assigned, Withdrawn),
            (Replied, Withdrawn),
            (Evaluated, Withdrawn),
            (ReHandling, Withdrawn),
            (Escalated, Withdrawn),
            (InFollowUp, Withdrawn),
            (Registered, Assigned),
            (Assigned, Replied),
            (Replied, Evaluated),
            (Evaluated, ReHandling),
            (ReHandling, Replied),
            (Evaluated, Escalated),
            (Escalated, Evaluated),
            (Evaluated, InFollowUp),
            (InFollowUp, Closed),
            (Evaluated, Closed),
        ]
    }
}

impl std::fmt::Display for SuggestionState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The states of one unit's assignment (the table "Lifecycle of an assignment").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssignmentState {
    /// 待签收.
    PendingSign,
    /// 已签收.
    Accepted,
    /// An adjustment request (退回/调整交办) awaits the assigning office.
    AdjustmentPending,
    /// Replaced by a new assignment after an accepted adjustment. Terminal.
    Superseded,
    /// Dispatched to a division (办理中).
    InHandling,
    /// A co-handler's opinion is sent; done when the lead acknowledges it.
    OpinionSubmitted,
    /// A co-handler whose opinion was acknowledged or waived.
    Done,
    /// 内部审批: a responsible unit's drafted reply goes through the unit's approval chain
    /// (`Assignment::approval` says where it waits); issued when the chain completes.
    InReview,
    /// A responsible unit's reply is issued and awaits the assigning office's review (答复审查,
    /// under the profile's `rules.office_reviews_replies`).
    AwaitingReview,
    /// A responsible unit's reply is issued (and accepted, where the office reviews replies).
    Replied,
    /// Re-handling after a dissatisfied rating.
    ReHandling,
}

impl AssignmentState {
    pub fn as_str(self) -> &'static str {
        match self {
            AssignmentState::PendingSign => "pending_sign",
            AssignmentState::Accepted => "accepted",
            AssignmentState::AdjustmentPending => "adjustment_pending",
            AssignmentState::Superseded => "superseded",
            AssignmentState::InHandling => "in_handling",
            AssignmentState::OpinionSubmitted => "opinion_submitted",
            AssignmentState::Done => "done",
            AssignmentState::InReview => "in_review",
            AssignmentState::AwaitingReview => "awaiting_review",
            AssignmentState::Replied => "replied",
            AssignmentState::ReHandling => "re_handling",
        }
    }

    pub fn allowed_transitions() -> &'static [(AssignmentState, AssignmentState)] {
        use AssignmentState::*;
        &[
            (PendingSign, Accepted),
            (PendingSign, AdjustmentPending),
            (Accepted, AdjustmentPending),
            (AdjustmentPending, Superseded),
            (AdjustmentPending, Accepted),
            (Accepted, InHandling),
            (InHandling, OpinionSubmitted),
            (OpinionSubmitted, Done),
            (InHandling, Done),
            (Accepted, Done),
            (PendingSign, Done),
            (InHandling, Replied),
            (Replied, ReHandling),
            (ReHandling, Replied),
            (InHandling, AwaitingReview),
            (ReHandling, AwaitingReview),
            (AwaitingReview, Replied),
            (AwaitingReview, InHandling),
            (AwaitingReview, ReHandling),
            (InHandling, InReview),
            (ReHandling, InReview),
            (Replied, InReview),
            (InReview, InHandling),
            (InReview, ReHandling),
            (InReview, Replied),
            (InReview, AwaitingReview),
        ]
    }
}

impl std::fmt::Display for AssignmentState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One unit's assignment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Assignment {
    pub id: AssignmentId,
    pub agency: AgencyId,
    pub role: UnitRole,
    pub state: AssignmentState,
    pub assigned_on: Date,
    pub deadlines: AssignmentDeadlines,
    pub dispatch: Option<Dispatch>,
    pub adjustment: Option<AdjustmentRequest>,
    pub extension: Option<ExtensionRequest>,
    pub extensions_granted: u32,
    /// Set when this assignment replaced a superseded one.
    pub replaces: Option<AssignmentId>,
    pub opinion_waived: bool,
    /// The drafted reply waiting for the unit's approval chain (内部审批), while `in_review`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approval: Option<Approval>,
}

impl Assignment {
    /// Lead, sole and separate units reply to the deputy; co-handlers do not.
    pub fn is_responsible(&self) -> bool {
        self.role.is_responsible()
    }

    pub fn is_active(&self) -> bool {
        self.state != AssignmentState::Superseded
    }
}

/// A suggestion with everything its lifecycle depends on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suggestion {
    pub id: SuggestionId,
    /// Events applied so far; the next event gets `version + 1`.
    pub version: u64,
    pub state: SuggestionState,
    pub details: SuggestionDetails,
    pub received_on: Date,
    pub assignments: Vec<Assignment>,
    pub communications: Vec<Communication>,
    pub opinions: Vec<CoHandlingOpinion>,
    pub replies: Vec<Reply>,
    pub class_history: Vec<ClassChange>,
    pub feedback: Vec<Feedback>,
    /// Re-handling rounds opened so far.
    pub rehandling_rounds: u32,
    pub feedback_due: Option<Deadline>,
    pub commitments: Vec<Commitment>,
    pub escalations: u32,
    /// 会商: the units' consultations on the suggestion.
    #[serde(default)]
    pub consultations: Vec<Consultation>,
    /// Closure requests (supplementary replies) with the office's decisions, oldest first.
    #[serde(default)]
    pub closures: Vec<ClosureRequest>,
}

impl Suggestion {
    /// The state right after submission.
    pub fn new(id: SuggestionId, e: &Submitted) -> Suggestion {
        Suggestion {
            id,
            version: 1,
            state: SuggestionState::Submitted,
            details: e.details.clone(),
            received_on: e.on,
            assignments: Vec::new(),
            communications: Vec::new(),
            opinions: Vec::new(),
            replies: Vec::new(),
            class_history: Vec::new(),
            feedback: Vec::new(),
            rehandling_rounds: 0,
            feedback_due: None,
            commitments: Vec::new(),
            escalations: 0,
            consultations: Vec::new(),
            closures: Vec::new(),
        }
    }

    /// Rebuilds a suggestion from its events. Fails only when the first event is not `Submitted`.
    pub fn replay<'a>(
        id: SuggestionId,
        events: impl IntoIterator<Item = &'a SuggestionEvent>,
    ) -> Option<Suggestion> {
        let mut iter = events.into_iter();
        let SuggestionEvent::Submitted(first) = iter.next()? else {
            return None;
        };
        let mut s = Suggestion::new(id, first);
        for e in iter {
            s.apply(e);
        }
        Some(s)
    }

    pub fn assignment(&self, id: AssignmentId) -> Option<&Assignment> {
        self.assignments.iter().find(|a| a.id == id)
    }

    pub(crate) fn assignment_mut(&mut self, id: AssignmentId) -> Option<&mut Assignment> {
        self.assignments.iter_mut().find(|a| a.id == id)
    }

    pub fn active_assignments(&self) -> impl Iterator<Item = &Assignment> {
        self.assignments.iter().filter(|a| a.is_active())
    }

    /// Every deputy who receives the reply and may give feedback: the lead and the co-signers.
    pub fn deputies(&self) -> impl Iterator<Item = DeputyId> + '_ {
        std::iter::once(self.details.lead_deputy).chain(self.details.co_signers.iter().copied())
    }

    /// The class now in force: the last confirmed change, else the latest reply's class. A
    /// supplementary reply's class is a request until the assigning office confirms it (the
    /// confirmation records the change).
    pub fn current_class(&self) -> Option<ReplyClass> {
        self.class_history.last().map(|c| c.to).or_else(|| {
            self.replies
                .iter()
                .rev()
                .find(|r| r.reply_type != ReplyType::Supplementary)
                .map(|r| r.class)
        })
    }

    /// The current re-handling round's feedback (round 0 is the first).
    pub fn round_feedback(&self) -> impl Iterator<Item = &Feedback> {
        let round = self.rehandling_rounds;
        self.feedback.iter().filter(move |f| f.round == round)
    }

    /// The closure request waiting for the assigning office, if any.
    pub fn pending_closure(&self) -> Option<&ClosureRequest> {
        self.closures.last().filter(|c| c.is_pending())
    }

    pub fn open_commitments(&self) -> impl Iterator<Item = &Commitment> {
        self.commitments
            .iter()
            .filter(|c| c.state == CommitmentState::Open)
    }

    /// Whether `reader` may read the co-handling opinion (会办意见) of `assignment`: the one rule
    /// for every representation (the suggestion, its events, the feed, webhooks).
    pub fn opinion_readable(&self, reader: OpinionReader, assignment: AssignmentId) -> bool {
        match reader {
            OpinionReader::All => true,
            OpinionReader::Nobody => false,
            OpinionReader::Agency(a) => self.opinion_readers(assignment).contains(&a),
        }
    }

    /// Whether `reader` may read the drafted reply of `assignment` in its approval chain (内部
    /// 审批): the unit itself and the assigning office (and auditors); not other units, not the
    /// deputies — a draft is internal until issued.
    pub fn draft_readable(&self, reader: OpinionReader, assignment: AssignmentId) -> bool {
        match reader {
            OpinionReader::All => true,
            OpinionReader::Nobody => false,
            OpinionReader::Agency(x) => self.assignment(assignment).is_some_and(|a| a.agency == x),
        }
    }

    /// The agencies that read the opinion of `assignment`: the lead units (an opinion is
    /// addressed to the lead) and the co-handling unit that wrote it. Other co-handlers and the
    /// deputies do not.
    pub fn opinion_readers(&self, assignment: AssignmentId) -> Vec<AgencyId> {
        let mut out: Vec<AgencyId> = self
            .active_assignments()
            .filter(|a| a.role == UnitRole::Lead)
            .map(|a| a.agency)
            .collect();
        if let Some(author) = self.assignments.iter().find(|a| a.id == assignment)
            && !out.contains(&author.agency)
        {
            out.push(author.agency);
        }
        out
    }
}

/// Who reads a suggestion, as far as co-handling opinions go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OpinionReader {
    /// The assigning office and auditors: every opinion.
    All,
    /// An agency: the opinions [`Suggestion::opinion_readers`] gives it.
    Agency(AgencyId),
    /// Deputies, and anyone else: none.
    Nobody,
}

impl Suggestion {
    /// Folds one event into the state. Total: an event is a fact that was already decided.
    pub fn apply(&mut self, event: &SuggestionEvent) {
        self.version += 1;
        use SuggestionEvent as E;
        match event {
            E::Submitted(_) => {}
            E::ReviewStarted(_) => self.state = SuggestionState::UnderReview,
            E::Reviewed(e) => {
                self.state = match e.decision {
                    ReviewDecision::Accept => SuggestionState::Registered,
                    ReviewDecision::NotAccept => SuggestionState::NotAccepted,
                    ReviewDecision::ConvertToLetter => SuggestionState::ConvertedToLetter,
                };
            }
            E::Withdrawn(_) => self.state = SuggestionState::Withdrawn,
            E::Assigned(e) => {
                self.assignments.push(Assignment {
                    id: e.assignment_id,
                    agency: e.agency,
                    role: e.role,
                    state: AssignmentState::PendingSign,
                    assigned_on: e.on,
                    deadlines: e.deadlines.clone(),
                    dispatch: None,
                    adjustment: None,
                    extension: None,
                    extensions_granted: 0,
                    replaces: e.replaces,
                    opinion_waived: false,
                    approval: None,
                });
                if self.state == SuggestionState::Registered {
                    self.state = SuggestionState::Assigned;
                }
            }
            E::SignedFor(e) => {
                self.set_assignment_state(e.assignment_id, AssignmentState::Accepted)
            }
            E::AdjustmentRequested(e) => {
                if let Some(a) = self.assignment_mut(e.assignment_id) {
                    a.adjustment = Some(e.request.clone());
                    a.state = AssignmentState::AdjustmentPending;
                }
            }
            E::AdjustmentDecided(e) => {
                if let Some(a) = self.assignment_mut(e.assignment_id) {
                    if let Some(req) = a.adjustment.as_mut() {
                        req.decision = Some(e.decision.clone());
                    }
                    a.state = match e.decision {
                        AdjustmentDecision::Accept { .. } => AssignmentState::Superseded,
                        AdjustmentDecision::Reject { .. } => AssignmentState::Accepted,
                        AdjustmentDecision::Escalate { .. } => AssignmentState::AdjustmentPending,
                    };
                }
            }
            E::Dispatched(e) => {
                if let Some(a) = self.assignment_mut(e.assignment_id) {
                    a.dispatch = Some(e.dispatch.clone());
                    a.state = AssignmentState::InHandling;
                }
            }
            E::CommunicationRecorded(e) => self.communications.push(e.communication.clone()),
            E::ExtensionRequested(e) => {
                if let Some(a) = self.assignment_mut(e.assignment_id) {
                    a.extension = Some(e.request.clone());
                }
            }
            E::ExtensionDecided(e) => {
                if let Some(a) = self.assignment_mut(e.assignment_id) {
                    if let Some(req) = a.extension.as_mut() {
                        req.approved = Some(e.approved);
                    }
                    if let (true, Some(reply)) = (e.approved, e.new_reply_deadline.as_ref()) {
                        a.deadlines.reply = Some(reply.clone());
                        a.extensions_granted += 1;
                    }
                }
            }
            E::OpinionSubmitted(e) => {
                self.opinions.push(e.opinion.clone());
                self.set_assignment_state(
                    e.opinion.assignment_id,
                    AssignmentState::OpinionSubmitted,
                );
            }
            E::OpinionAcknowledged(e) => {
                if let Some(o) = self.opinions.iter_mut().find(|o| o.id == e.opinion_id) {
                    o.acknowledged_on = Some(e.on);
                    let assignment = o.assignment_id;
                    self.set_assignment_state(assignment, AssignmentState::Done);
                }
            }
            E::OpinionWaived(e) => {
                if let Some(a) = self.assignment_mut(e.assignment_id) {
                    a.opinion_waived = true;
                    a.state = AssignmentState::Done;
                }
            }
            E::ReplyIssued(e) => {
                self.replies.push(e.reply.clone());
                if e.reply.reply_type != ReplyType::Supplementary {
                    let state = if e.reply.review_due.is_some() {
                        AssignmentState::AwaitingReview
                    } else {
                        AssignmentState::Replied
                    };
                    self.set_assignment_state(e.reply.assignment_id, state);
                }
            }
            E::ReplySubmittedForApproval(e) => {
                if let Some(a) = self.assignment_mut(e.assignment_id) {
                    a.approval = Some(e.approval.clone());
                    a.state = AssignmentState::InReview;
                }
            }
            E::ApprovalStepDecided(e) => {
                if let Some(a) = self.assignment_mut(e.assignment_id)
                    && let Some(approval) = a.approval.as_mut()
                {
                    let i = e.step as usize;
                    if let Some(step) = approval.steps.get_mut(i) {
                        step.decision = Some(e.decision.clone());
                    }
                    match (&e.next_due, e.decision.approved) {
                        (Some(due), true) => {
                            if let Some(next) = approval.steps.get_mut(i + 1) {
                                next.due = Some(due.clone());
                            }
                        }
                        // Returned, or the last step approved (the reply's issue follows).
                        _ => {
                            a.state = approval.returns_to;
                            a.approval = None;
                        }
                    }
                }
            }
            E::ReplyPublished(e) => {
                if let Some(r) = self.replies.iter_mut().find(|r| r.id == e.reply_id) {
                    r.publication = Some(e.publication.clone());
                }
            }
            E::PublicationWithdrawn(e) => {
                if let Some(p) = self
                    .replies
                    .iter_mut()
                    .find(|r| r.id == e.reply_id)
                    .and_then(|r| r.publication.as_mut())
                {
                    p.withdrawn = Some(PublicationWithdrawal {
                        reason: e.reason.clone(),
                        on: e.on,
                    });
                }
            }
            E::ReplyReviewed(e) => {
                if let Some(r) = self.replies.iter_mut().find(|r| r.id == e.reply_id) {
                    r.review = Some(e.review.clone());
                }
                let back = if self.state == SuggestionState::ReHandling {
                    AssignmentState::ReHandling
                } else {
                    AssignmentState::InHandling
                };
                if let Some(a) = self.assignment_mut(e.assignment_id) {
                    if e.review.accepted {
                        a.state = AssignmentState::Replied;
                    } else {
                        a.state = back;
                        if let Some(d) = &e.reply_deadline {
                            a.deadlines.reply = Some(d.clone());
                        }
                    }
                }
            }
            E::CommitmentCreated(e) => self.commitments.push(e.commitment.clone()),
            E::Replied(e) => {
                self.state = SuggestionState::Replied;
                self.feedback_due = Some(e.feedback_due.clone());
            }
            E::ClassChanged(e) => self.class_history.push(e.change.clone()),
            E::FeedbackRecorded(e) => self.feedback.push(e.feedback.clone()),
            E::Evaluated(_) => self.state = SuggestionState::Evaluated,
            E::ReHandlingOpened(e) => {
                self.state = SuggestionState::ReHandling;
                self.rehandling_rounds = e.round;
                for (id, deadline) in &e.reply_deadlines {
                    if let Some(a) = self.assignment_mut(*id) {
                        a.state = AssignmentState::ReHandling;
                        a.deadlines.reply = Some(deadline.clone());
                    }
                }
            }
            E::Escalated(_) => {
                self.state = SuggestionState::Escalated;
                self.escalations += 1;
            }
            E::EscalationResolved(_) => self.state = SuggestionState::Evaluated,
            E::FollowUpStarted(_) => self.state = SuggestionState::InFollowUp,
            E::CommitmentProgressed(e) => {
                if let Some(c) = self
                    .commitments
                    .iter_mut()
                    .find(|c| c.id == e.commitment_id)
                {
                    c.progress.push(e.report.clone());
                }
            }
            E::CommitmentConverted(e) => {
                if let Some(c) = self
                    .commitments
                    .iter_mut()
                    .find(|c| c.id == e.commitment_id)
                {
                    c.state = CommitmentState::Converted;
                    c.evidence = e.evidence.clone();
                    c.evidence_documents = e.documents.clone();
                    c.converted_on = Some(e.on);
                }
            }
            E::ClosureRequested(e) => self.closures.push(e.request.clone()),
            E::ClosureDecided(e) => {
                if let Some(c) = self.closures.last_mut() {
                    c.decision = Some(e.decision.clone());
                }
                for id in &e.decision.reopened {
                    if let Some(c) = self.commitments.iter_mut().find(|c| c.id == *id) {
                        c.state = CommitmentState::Open;
                        c.converted_on = None;
                    }
                }
            }
            E::ClosureRated(e) => {
                if let Some(c) = self.closures.last_mut() {
                    c.ratings.push(e.rating.clone());
                }
            }
            E::ConsultationRecorded(e) => self.consultations.push(e.consultation.clone()),
            E::Closed(_) => self.state = SuggestionState::Closed,
            // A record only: the command from the other service changed nothing.
            E::CoordinationRefused(_) => {}
            E::DeadlinesRecomputed(e) => {
                for c in &e.changes {
                    let d = Some(c.deadline.clone());
                    match (
                        c.assignment_id.and_then(|id| self.assignment_mut(id)),
                        c.kind,
                    ) {
                        (None, DeadlineKind::Feedback) => self.feedback_due = d,
                        (Some(a), DeadlineKind::Objection) => {
                            a.deadlines.objection = c.deadline.clone()
                        }
                        (Some(a), DeadlineKind::FirstContact) => a.deadlines.first_contact = d,
                        (Some(a), DeadlineKind::CoOpinion) => a.deadlines.co_opinion = d,
                        (Some(a), DeadlineKind::Reply) => a.deadlines.reply = d,
                        _ => {}
                    }
                }
            }
        }
    }

    fn set_assignment_state(&mut self, id: AssignmentId, state: AssignmentState) {
        if let Some(a) = self.assignment_mut(id) {
            a.state = state;
        }
    }
}
