//! The guards: which command is allowed, for whom, in which state, and what it produces.
//! `decide` dispatches; the commands with more than a few lines of guards live beside it:
//! `lifecycle` (submission, withdrawal, assignment, adjustments, extensions), `reply` (the
//! reply gate and its commitments), `closure` (the office's confirmation of a closure request and
//! the deputies' rating of it), `substance` (co-handling opinions' measures and consultations),
//! `feedback` (ratings, evaluation, recomputed deadlines).

mod approval;
mod closure;
mod feedback;
mod lifecycle;
mod publish;
mod reply;
mod review;
mod substance;

use std::collections::BTreeMap;

use banli_calendar::{Deadline, DurationSpec, format_date};
use time::Date;

use super::*;
use crate::Rules;
use crate::actor::Role;
use crate::error::DomainError;

type Result<T> = std::result::Result<T, DomainError>;

const AGENCY_DECIDERS: &[Role] = &[Role::AgencyAdmin, Role::Leader];
const AGENCY_STAFF: &[Role] = &[Role::AgencyAdmin, Role::Leader, Role::Handler];

/// Decides a command against the current state (`None` before submission).
pub fn decide(
    state: Option<&Suggestion>,
    cmd: &Command,
    rules: &Rules<'_>,
) -> Result<Vec<SuggestionEvent>> {
    let name = cmd.kind.name();
    let Some(s) = state else {
        return match &cmd.kind {
            CommandKind::Submit { details, on } => lifecycle::submit(cmd, details, *on),
            _ => Err(DomainError::NotFound {
                command: name,
                what: "suggestion",
                id: "(not submitted)".into(),
            }),
        };
    };
    let ctx = Ctx {
        s,
        cmd,
        rules,
        name,
    };
    use CommandKind as K;
    match &cmd.kind {
        K::Submit { .. } => Err(ctx.wrong_state("it has been submitted already")),
        K::StartReview { on } => {
            ctx.office()?;
            ctx.in_state(&[SuggestionState::Submitted])?;
            Ok(vec![SuggestionEvent::ReviewStarted(ReviewStarted {
                on: *on,
            })])
        }
        K::Review {
            decision,
            reason,
            on,
        } => {
            ctx.office()?;
            ctx.in_state(&[SuggestionState::UnderReview])?;
            if *decision != ReviewDecision::Accept && reason.trim().is_empty() {
                return Err(ctx.invalid("reason", "is required when a suggestion is not accepted"));
            }
            Ok(vec![SuggestionEvent::Reviewed(Reviewed {
                decision: *decision,
                reason: reason.clone(),
                on: *on,
            })])
        }
        K::Withdraw { reason, on } => ctx.withdraw(reason, *on),
        K::Assign { units, on } => ctx.assign(units, *on),
        K::SignFor { assignment, on } => {
            let a = ctx.assignment(*assignment)?;
            ctx.agency(a, AGENCY_DECIDERS)?;
            ctx.assignment_in(a, &[AssignmentState::PendingSign])?;
            Ok(vec![SuggestionEvent::SignedFor(SignedFor {
                assignment_id: a.id,
                on: *on,
            })])
        }
        K::RequestAdjustment {
            assignment,
            reason,
            suggested_agency,
            on,
        } => {
            let a = ctx.assignment(*assignment)?;
            ctx.agency(a, AGENCY_DECIDERS)?;
            ctx.assignment_in(
                a,
                &[AssignmentState::PendingSign, AssignmentState::Accepted],
            )?;
            if reason.trim().is_empty() {
                return Err(ctx.invalid(
                    "reason",
                    "must say why the item does not belong to this unit",
                ));
            }
            if *on > a.deadlines.objection.due {
                return Err(DomainError::WindowClosed {
                    command: name,
                    closed_on: format_date(a.deadlines.objection.due),
                    trace: a.deadlines.objection.explain(),
                });
            }
            let request = AdjustmentRequest {
                reason: reason.clone(),
                suggested_agency: *suggested_agency,
                on: *on,
                decision: None,
            };
            Ok(vec![SuggestionEvent::AdjustmentRequested(
                AdjustmentRequested {
                    assignment_id: a.id,
                    request,
                },
            )])
        }
        K::DecideAdjustment {
            assignment,
            choice,
            on,
        } => ctx.decide_adjustment(*assignment, choice, *on),
        K::Dispatch {
            assignment,
            division,
            handler,
            responsible_leader,
            leading_official,
            plan,
            unit_divisions,
            on,
        } => {
            let a = ctx.assignment(*assignment)?;
            ctx.agency(a, AGENCY_DECIDERS)?;
            ctx.assignment_in(a, &[AssignmentState::Accepted])?;
            if !unit_divisions.contains(division) {
                return Err(ctx.invalid("division", &format!("{division} is not a division of the assigned unit {}; add it to the directory first", a.agency)));
            }
            if handler.trim().is_empty() || responsible_leader.trim().is_empty() {
                return Err(ctx.invalid("handler", "and the responsible leader are both required"));
            }
            let needs_leader =
                s.details.key_supervised && rules.profile.rules.leading_official_for_key_items;
            if needs_leader
                && leading_official
                    .as_deref()
                    .is_none_or(|l| l.trim().is_empty())
            {
                return Err(ctx.invalid(
                    "leading_official",
                    "is required: this is a key-supervised item (领办)",
                ));
            }
            let dispatch = Dispatch {
                division: *division,
                handler: handler.clone(),
                responsible_leader: responsible_leader.clone(),
                leading_official: leading_official.clone(),
                plan: plan.clone(),
                on: *on,
            };
            Ok(vec![SuggestionEvent::Dispatched(Dispatched {
                assignment_id: a.id,
                dispatch,
            })])
        }
        K::RecordCommunication { communication } => {
            let a = ctx.assignment(communication.assignment_id)?;
            ctx.agency(a, AGENCY_STAFF)?;
            ctx.not_closed()?;
            ctx.assignment_in(
                a,
                &[
                    AssignmentState::Accepted,
                    AssignmentState::InHandling,
                    AssignmentState::OpinionSubmitted,
                    AssignmentState::Done,
                    AssignmentState::Replied,
                    AssignmentState::ReHandling,
                ],
            )?;
            if communication.deputies.is_empty() {
                return Err(ctx.invalid("deputies", "must name at least one deputy contacted"));
            }
            if let Some(d) = communication
                .deputies
                .iter()
                .find(|d| !s.deputies().any(|x| x == **d))
            {
                return Err(ctx.invalid(
                    "deputies",
                    &format!("{d} is not a deputy of this suggestion"),
                ));
            }
            if communication.summary.trim().is_empty() {
                return Err(ctx.invalid("summary", "must not be empty"));
            }
            if communication.on < a.assigned_on {
                return Err(ctx.invalid("on", "is before the assignment"));
            }
            if s.communications.iter().any(|c| c.id == communication.id) {
                return Err(ctx.invalid("id", "is already recorded"));
            }
            Ok(vec![SuggestionEvent::CommunicationRecorded(
                CommunicationRecorded {
                    communication: communication.clone(),
                },
            )])
        }
        K::RequestExtension {
            assignment,
            new_due,
            reason,
            on,
        } => ctx.request_extension(*assignment, *new_due, reason, *on),
        K::DecideExtension {
            assignment,
            approve,
            on,
        } => {
            ctx.office()?;
            let a = ctx.assignment(*assignment)?;
            let Some(req) = a.extension.as_ref().filter(|r| r.approved.is_none()) else {
                return Err(DomainError::Precondition {
                    command: name,
                    reason: "no extension request is pending for this assignment".into(),
                });
            };
            let new_reply_deadline = if *approve {
                let mut d = a
                    .deadlines
                    .reply
                    .clone()
                    .ok_or_else(|| ctx.invalid("assignment", "has no reply deadline"))?;
                d.extend(
                    req.new_due,
                    &format!("extension approved on {}", format_date(*on)),
                );
                Some(d)
            } else {
                None
            };
            Ok(vec![SuggestionEvent::ExtensionDecided(ExtensionDecided {
                assignment_id: a.id,
                approved: *approve,
                new_reply_deadline,
                on: *on,
            })])
        }
        K::SubmitOpinion { opinion } => {
            let a = ctx.assignment(opinion.assignment_id)?;
            ctx.agency(a, AGENCY_STAFF)?;
            if a.role != UnitRole::Co {
                return Err(ctx.invalid(
                    "assignment",
                    "is not a co-handling assignment; only co-handlers send opinions to the lead",
                ));
            }
            ctx.assignment_in(a, &[AssignmentState::InHandling])?;
            if opinion.document_number.trim().is_empty() || opinion.body.trim().is_empty() {
                return Err(ctx.invalid(
                    "document_number",
                    "and the body are required: an opinion is a formal letter",
                ));
            }
            if opinion.signer.name.trim().is_empty() {
                return Err(ctx.invalid("signer", "must be named"));
            }
            ctx.opinion_substance(a, opinion)
        }
        K::AcknowledgeOpinion { opinion, on } => {
            let o = s
                .opinions
                .iter()
                .find(|o| o.id == *opinion)
                .ok_or_else(|| ctx.not_found("opinion", opinion))?;
            let lead = s
                .active_assignments()
                .find(|a| a.role == UnitRole::Lead)
                .ok_or_else(|| ctx.invalid("opinion", "has no lead unit to acknowledge it"))?;
            ctx.agency(lead, AGENCY_STAFF)?;
            if o.acknowledged_on.is_some() {
                return Err(ctx.invalid("opinion", "is acknowledged already"));
            }
            Ok(vec![SuggestionEvent::OpinionAcknowledged(
                OpinionAcknowledged {
                    opinion_id: o.id,
                    on: *on,
                },
            )])
        }
        K::WaiveOpinion {
            assignment,
            reason,
            on,
        } => {
            ctx.office()?;
            let a = ctx.assignment(*assignment)?;
            if a.role != UnitRole::Co {
                return Err(ctx.invalid("assignment", "is not a co-handling assignment"));
            }
            ctx.assignment_in(
                a,
                &[
                    AssignmentState::PendingSign,
                    AssignmentState::Accepted,
                    AssignmentState::InHandling,
                ],
            )?;
            if reason.trim().is_empty() {
                return Err(ctx.invalid("reason", "is required: a waiver is recorded"));
            }
            Ok(vec![SuggestionEvent::OpinionWaived(OpinionWaived {
                assignment_id: a.id,
                reason: reason.clone(),
                on: *on,
            })])
        }
        K::IssueReply {
            reply,
            commitments,
            explanation,
            approval_chain,
        } => ctx.issue_reply(reply, commitments, explanation.as_deref(), approval_chain),
        K::DecideApprovalStep {
            assignment,
            step,
            approve,
            comment,
            on,
        } => ctx.decide_approval_step(*assignment, *step, *approve, comment, *on),
        K::ReviewReply {
            reply,
            accept,
            reasons,
            on,
        } => ctx.review_reply(*reply, *accept, reasons, *on),
        K::LapseReplyReviews { on } => ctx.lapse_reply_reviews(*on),
        K::PublishReply { reply, names, on } => ctx.publish_reply(*reply, names, *on),
        K::WithdrawPublication { reply, reason, on } => {
            ctx.withdraw_publication(*reply, reason, *on)
        }
        K::PublishDueReplies { names, on } => ctx.publish_due_replies(names, *on),
        K::ChangeClass { to, reason, on } => {
            ctx.office()?;
            ctx.in_state(&[
                SuggestionState::Replied,
                SuggestionState::Evaluated,
                SuggestionState::ReHandling,
                SuggestionState::Escalated,
                SuggestionState::InFollowUp,
            ])?;
            let from = s
                .current_class()
                .ok_or_else(|| ctx.invalid("class", "cannot change before a reply"))?;
            ctx.class_allowed(*to)?;
            if from == *to {
                return Err(ctx.invalid("to", &format!("is already the class ({to:?})")));
            }
            if reason.trim().is_empty() {
                return Err(ctx.invalid("reason", "is required for a class change"));
            }
            let change = ClassChange {
                from,
                to: *to,
                reason: reason.clone(),
                conversion: false,
                on: *on,
            };
            Ok(vec![SuggestionEvent::ClassChanged(ClassChanged { change })])
        }
        K::RecordFeedback { feedback } => ctx.record_feedback(feedback),
        K::CloseFeedbackWindow { on } => {
            ctx.office()?;
            ctx.in_state(&[SuggestionState::Replied])?;
            let due = s
                .feedback_due
                .as_ref()
                .map(|d| d.due)
                .ok_or_else(|| ctx.invalid("state", "has no feedback deadline"))?;
            if *on <= due {
                return Err(DomainError::Precondition {
                    command: name,
                    reason: format!(
                        "the feedback window is open until {} and not every deputy has answered",
                        format_date(due)
                    ),
                });
            }
            ctx.evaluate(s, *on)
        }
        K::ResolveEscalation { outcome, on } => {
            ctx.office()?;
            ctx.in_state(&[SuggestionState::Escalated])?;
            if outcome.trim().is_empty() {
                return Err(ctx.invalid("outcome", "must record the consultation or explanation"));
            }
            let mut events = vec![SuggestionEvent::EscalationResolved(EscalationResolved {
                outcome: outcome.clone(),
                on: *on,
            })];
            events.extend(ctx.conclude(s, *on));
            Ok(events)
        }
        K::ReportProgress {
            commitment,
            note,
            to_deputy,
            on,
        } => {
            let c = ctx.open_commitment(*commitment)?;
            if !cmd.actor.acts_for(c.owner, AGENCY_STAFF) {
                return Err(
                    ctx.forbidden("only the unit that owns the commitment reports its progress")
                );
            }
            if note.trim().is_empty() {
                return Err(ctx.invalid("note", "must not be empty"));
            }
            let report = ProgressReport {
                note: note.clone(),
                on: *on,
                to_deputy: *to_deputy,
            };
            Ok(vec![SuggestionEvent::CommitmentProgressed(
                CommitmentProgressed {
                    commitment_id: c.id,
                    report,
                },
            )])
        }
        K::ConvertCommitment {
            commitment,
            evidence,
            documents,
            on,
        } => {
            let c = ctx.open_commitment(*commitment)?;
            if !cmd.actor.acts_for(c.owner, AGENCY_DECIDERS) {
                return Err(
                    ctx.forbidden("only the owner unit's office or leader converts a commitment")
                );
            }
            if evidence.trim().is_empty() {
                return Err(ctx.invalid("evidence", "is required to convert a commitment"));
            }
            Ok(vec![SuggestionEvent::CommitmentConverted(
                CommitmentConverted {
                    commitment_id: c.id,
                    evidence: evidence.clone(),
                    on: *on,
                    documents: documents.clone(),
                },
            )])
        }
        K::DecideClosure {
            confirm,
            reason,
            reopen,
            on,
        } => ctx.decide_closure(*confirm, reason, reopen, *on),
        K::RateClosure {
            deputy,
            level,
            comment,
            on,
        } => ctx.rate_closure(*deputy, *level, comment, *on),
        K::RecordConsultation { consultation } => ctx.record_consultation(consultation),
        K::RecomputeDeadlines { on } => {
            ctx.office()?;
            ctx.recompute_deadlines(*on)
        }
    }
}

struct Ctx<'a> {
    s: &'a Suggestion,
    cmd: &'a Command,
    rules: &'a Rules<'a>,
    name: &'static str,
}

impl<'a> Ctx<'a> {
    fn wrong_state(&self, hint: &str) -> DomainError {
        DomainError::WrongState {
            command: self.name,
            entity: "suggestion",
            state: self.s.state.to_string(),
            hint: hint.to_owned(),
        }
    }

    fn invalid(&self, field: &'static str, reason: &str) -> DomainError {
        DomainError::Invalid {
            command: self.name,
            field,
            reason: reason.to_owned(),
        }
    }

    fn forbidden(&self, reason: &str) -> DomainError {
        DomainError::Forbidden {
            command: self.name,
            role: self.cmd.actor.role.to_string(),
            reason: reason.to_owned(),
        }
    }

    fn not_found(&self, what: &'static str, id: &dyn std::fmt::Display) -> DomainError {
        DomainError::NotFound {
            command: self.name,
            what,
            id: id.to_string(),
        }
    }

    fn office(&self) -> Result<()> {
        if self.cmd.actor.role == Role::AssigningOffice {
            Ok(())
        } else {
            Err(self.forbidden("only the assigning office may do this"))
        }
    }

    fn in_state(&self, allowed: &[SuggestionState]) -> Result<()> {
        if allowed.contains(&self.s.state) {
            Ok(())
        } else {
            let list: Vec<_> = allowed.iter().map(|s| s.as_str()).collect();
            Err(self.wrong_state(&format!("allowed only when {}", list.join(" or "))))
        }
    }

    fn not_closed(&self) -> Result<()> {
        if self.s.state.is_terminal() {
            Err(self.wrong_state("the item is finished"))
        } else {
            Ok(())
        }
    }

    fn assignment(&self, id: AssignmentId) -> Result<&'a Assignment> {
        self.s
            .assignment(id)
            .ok_or_else(|| self.not_found("assignment", &id))
    }

    fn assignment_in(&self, a: &Assignment, allowed: &[AssignmentState]) -> Result<()> {
        if allowed.contains(&a.state) {
            return Ok(());
        }
        let list: Vec<_> = allowed.iter().map(|s| s.as_str()).collect();
        Err(DomainError::WrongState {
            command: self.name,
            entity: "assignment",
            state: a.state.to_string(),
            hint: format!("allowed only when {}", list.join(" or ")),
        })
    }

    /// The actor must work for the assignment's unit in one of `roles`.
    fn agency(&self, a: &Assignment, roles: &[Role]) -> Result<()> {
        if self.cmd.actor.acts_for(a.agency, roles) {
            return Ok(());
        }
        let roles: Vec<_> = roles.iter().map(|r| r.as_str()).collect();
        Err(self.forbidden(&format!(
            "only the assigned unit's {} may do this",
            roles.join(" or ")
        )))
    }

    fn class_allowed(&self, class: ReplyClass) -> Result<()> {
        if self.rules.profile.class_scheme.allows(class) {
            Ok(())
        } else {
            Err(self.invalid(
                "class",
                &format!(
                    "{class:?} is not a class of the {:?} scheme",
                    self.rules.profile.class_scheme
                ),
            ))
        }
    }

    fn deadline(
        &self,
        label: &str,
        start: Date,
        spec: &DurationSpec,
        others: &BTreeMap<String, Date>,
    ) -> Result<Deadline> {
        Deadline::compute(
            self.rules.calendar,
            label,
            start,
            spec,
            self.rules.profile.out_of_range(),
            others,
        )
        .map_err(|e| DomainError::Deadline {
            command: self.name,
            reason: e.to_string(),
        })
    }

    fn open_commitment(&self, id: CommitmentId) -> Result<&'a Commitment> {
        let c = self
            .s
            .commitments
            .iter()
            .find(|c| c.id == id)
            .ok_or_else(|| self.not_found("commitment", &id))?;
        if c.state != CommitmentState::Open {
            return Err(DomainError::WrongState {
                command: self.name,
                entity: "commitment",
                state: "converted".into(),
                hint: String::new(),
            });
        }
        self.not_closed()?;
        Ok(c)
    }
}
