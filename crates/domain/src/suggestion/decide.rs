//! The guards: which command is allowed, for whom, in which state, and what it produces.

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
            CommandKind::Submit { details, on } => submit(cmd, details, *on),
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
            let mut opinion = opinion.clone();
            opinion.acknowledged_on = None;
            Ok(vec![SuggestionEvent::OpinionSubmitted(OpinionSubmitted {
                opinion,
            })])
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
        } => ctx.issue_reply(reply, commitments, explanation.as_deref()),
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
                },
            )])
        }
        K::RecomputeDeadlines { on } => {
            ctx.office()?;
            ctx.recompute_deadlines(*on)
        }
    }
}

fn submit(cmd: &Command, details: &SuggestionDetails, on: Date) -> Result<Vec<SuggestionEvent>> {
    let name = cmd.kind.name();
    let invalid = |field, reason: &str| DomainError::Invalid {
        command: name,
        field,
        reason: reason.to_owned(),
    };
    match cmd.actor.role {
        Role::AssigningOffice => {}
        Role::Deputy if cmd.actor.deputy == Some(details.lead_deputy) => {}
        role => {
            return Err(DomainError::Forbidden {
                command: name,
                role: role.to_string(),
                reason: "a suggestion is submitted by its lead deputy or registered by the assigning office".into(),
            });
        }
    }
    if details.number.trim().is_empty() {
        return Err(invalid("number", "must not be empty"));
    }
    if details.title.trim().is_empty() {
        return Err(invalid("title", "must not be empty"));
    }
    if details.body.trim().is_empty() {
        return Err(invalid("body", "must not be empty"));
    }
    if details.co_signers.contains(&details.lead_deputy) {
        return Err(invalid("co_signers", "must not include the lead deputy"));
    }
    let mut seen = details.co_signers.clone();
    seen.sort();
    seen.dedup();
    if seen.len() != details.co_signers.len() {
        return Err(invalid("co_signers", "lists a deputy twice"));
    }
    Ok(vec![SuggestionEvent::Submitted(Submitted {
        details: details.clone(),
        on,
    })])
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

    fn withdraw(&self, reason: &str, on: Date) -> Result<Vec<SuggestionEvent>> {
        let actor = &self.cmd.actor;
        let lead = self.s.details.lead_deputy;
        if !(actor.role == Role::AssigningOffice
            || actor.role == Role::Deputy && actor.deputy == Some(lead))
        {
            return Err(self.forbidden("only the lead deputy (or the assigning office recording the written request) may withdraw"));
        }
        if self.s.state.is_terminal() {
            return Err(self.wrong_state("withdrawal is possible only before the item is closed"));
        }
        if reason.trim().is_empty() {
            return Err(self.invalid("reason", "is required: a withdrawal is made in writing"));
        }
        Ok(vec![SuggestionEvent::Withdrawn(Withdrawn {
            reason: reason.to_owned(),
            on,
        })])
    }

    fn assign(&self, units: &[UnitAssignment], on: Date) -> Result<Vec<SuggestionEvent>> {
        self.office()?;
        self.in_state(&[SuggestionState::Registered, SuggestionState::Assigned])?;
        if units.is_empty() {
            return Err(self.invalid("units", "must name at least one unit"));
        }
        let mut all: Vec<(AgencyId, UnitRole)> = self
            .s
            .active_assignments()
            .map(|a| (a.agency, a.role))
            .collect();
        for u in units {
            if all.iter().any(|(agency, _)| *agency == u.agency) {
                return Err(self.invalid("units", &format!("unit {} is assigned twice", u.agency)));
            }
            if self.s.assignment(u.assignment_id).is_some() {
                return Err(self.invalid(
                    "units",
                    &format!("assignment id {} exists already", u.assignment_id),
                ));
            }
            all.push((u.agency, u.role));
        }
        check_role_mix(&all).map_err(|reason| self.invalid("units", &reason))?;
        units
            .iter()
            .map(|u| self.assigned_event(u.assignment_id, u.agency, u.role, None, on))
            .collect()
    }

    fn assigned_event(
        &self,
        id: AssignmentId,
        agency: AgencyId,
        role: UnitRole,
        replaces: Option<AssignmentId>,
        on: Date,
    ) -> Result<SuggestionEvent> {
        let d = &self.rules.profile.deadlines;
        let none = BTreeMap::new();
        let responsible = role.is_responsible();
        let deadlines = AssignmentDeadlines {
            objection: self.deadline("assignment", on, &d.objection_window, &none)?,
            first_contact: responsible
                .then(|| self.deadline("assignment", on, &d.first_contact, &none))
                .transpose()?,
            co_opinion: (!responsible)
                .then(|| self.deadline("assignment", on, &d.co_opinion, &none))
                .transpose()?,
            reply: responsible
                .then(|| self.deadline("assignment", on, &d.reply, &none))
                .transpose()?,
            reply_cap: responsible
                .then(|| self.deadline("assignment", on, &d.reply_cap, &none))
                .transpose()?,
        };
        Ok(SuggestionEvent::Assigned(Assigned {
            assignment_id: id,
            agency,
            role,
            deadlines,
            replaces,
            on,
        }))
    }

    fn decide_adjustment(
        &self,
        id: AssignmentId,
        choice: &AdjustmentChoice,
        on: Date,
    ) -> Result<Vec<SuggestionEvent>> {
        self.office()?;
        let a = self.assignment(id)?;
        self.assignment_in(a, &[AssignmentState::AdjustmentPending])?;
        let decision = match choice {
            AdjustmentChoice::Reject { reason } | AdjustmentChoice::Escalate { reason }
                if reason.trim().is_empty() =>
            {
                return Err(self.invalid("reason", "is required"));
            }
            AdjustmentChoice::Reject { reason } => AdjustmentDecision::Reject {
                reason: reason.clone(),
            },
            AdjustmentChoice::Escalate { reason } => AdjustmentDecision::Escalate {
                reason: reason.clone(),
            },
            AdjustmentChoice::Accept {
                agency,
                role,
                new_assignment,
            } => AdjustmentDecision::Accept {
                agency: *agency,
                role: role.unwrap_or(a.role),
                new_assignment: *new_assignment,
            },
        };
        let mut events = vec![SuggestionEvent::AdjustmentDecided(AdjustmentDecided {
            assignment_id: id,
            decision: decision.clone(),
            on,
        })];
        if let AdjustmentDecision::Accept {
            agency,
            role,
            new_assignment,
        } = decision
        {
            let mut all: Vec<(AgencyId, UnitRole)> = self
                .s
                .active_assignments()
                .filter(|x| x.id != id)
                .map(|x| (x.agency, x.role))
                .collect();
            if all.iter().any(|(x, _)| *x == agency) {
                return Err(self.invalid(
                    "agency",
                    &format!("unit {agency} is already assigned to this item"),
                ));
            }
            if self.s.assignment(new_assignment).is_some() {
                return Err(self.invalid("new_assignment", "exists already"));
            }
            all.push((agency, role));
            check_role_mix(&all).map_err(|reason| self.invalid("role", &reason))?;
            events.push(self.assigned_event(new_assignment, agency, role, Some(id), on)?);
        }
        Ok(events)
    }

    fn request_extension(
        &self,
        id: AssignmentId,
        new_due: Date,
        reason: &str,
        on: Date,
    ) -> Result<Vec<SuggestionEvent>> {
        let a = self.assignment(id)?;
        self.agency(a, AGENCY_DECIDERS)?;
        self.not_closed()?;
        self.assignment_in(
            a,
            &[
                AssignmentState::PendingSign,
                AssignmentState::Accepted,
                AssignmentState::InHandling,
                AssignmentState::ReHandling,
            ],
        )?;
        let (Some(reply), Some(cap)) = (a.deadlines.reply.as_ref(), a.deadlines.reply_cap.as_ref())
        else {
            return Err(self.invalid(
                "assignment",
                "has no reply deadline to extend (co-handlers follow the lead's)",
            ));
        };
        if a.extension.as_ref().is_some_and(|r| r.approved.is_none()) {
            return Err(DomainError::Precondition {
                command: self.name,
                reason: "an extension request is already pending".into(),
            });
        }
        let max = self.rules.profile.rules.max_extensions;
        if a.extensions_granted >= max {
            return Err(DomainError::LimitReached {
                command: self.name,
                reason: format!("{max} extension(s) already granted, the profile's maximum"),
            });
        }
        if reason.trim().is_empty() {
            return Err(self.invalid("reason", "is required"));
        }
        if new_due <= reply.due {
            return Err(self.invalid(
                "new_due",
                &format!(
                    "must be after the current due date {}",
                    format_date(reply.due)
                ),
            ));
        }
        if new_due > cap.due {
            return Err(DomainError::LimitReached {
                command: self.name,
                reason: format!(
                    "{} is past the latest allowed reply date {} ({})",
                    format_date(new_due),
                    format_date(cap.due),
                    cap.explain()
                ),
            });
        }
        let request = ExtensionRequest {
            new_due,
            reason: reason.to_owned(),
            on,
            approved: None,
        };
        Ok(vec![SuggestionEvent::ExtensionRequested(
            ExtensionRequested {
                assignment_id: id,
                request,
            },
        )])
    }

    fn issue_reply(
        &self,
        reply: &Reply,
        drafts: &[CommitmentDraft],
        explanation: Option<&str>,
    ) -> Result<Vec<SuggestionEvent>> {
        let s = self.s;
        let a = self.assignment(reply.assignment_id)?;
        self.agency(a, AGENCY_DECIDERS)?;
        if !a.is_responsible() {
            return Err(self.invalid("assignment", "is a co-handling assignment: co-handlers send an opinion to the lead and receive a copy of its reply"));
        }
        let expected = match s.state {
            SuggestionState::Assigned => {
                self.assignment_in(a, &[AssignmentState::InHandling])?;
                &[ReplyType::Initial, ReplyType::Joint][..]
            }
            SuggestionState::ReHandling => {
                self.assignment_in(a, &[AssignmentState::ReHandling])?;
                &[ReplyType::ReHandled][..]
            }
            SuggestionState::InFollowUp => {
                self.assignment_in(a, &[AssignmentState::Replied])?;
                &[ReplyType::Supplementary][..]
            }
            _ => {
                return Err(self.wrong_state(
                    "a reply is issued while the item is assigned, re-handled or in follow-up",
                ));
            }
        };
        if !expected.contains(&reply.reply_type) {
            return Err(self.invalid(
                "reply_type",
                &format!(
                    "{:?} does not fit a suggestion that is {}",
                    reply.reply_type, s.state
                ),
            ));
        }
        self.class_allowed(reply.class)?;
        if reply.document_number.trim().is_empty() || reply.body.trim().is_empty() {
            return Err(self.invalid("document_number", "and the body are required"));
        }
        if !self
            .rules
            .profile
            .rules
            .reply_signers
            .contains(&reply.signer.position)
            || reply.signer.name.trim().is_empty()
        {
            return Err(self.invalid(
                "signer",
                &format!(
                    "must be named and be one of {:?} under the profile (was {:?})",
                    self.rules.profile.rules.reply_signers, reply.signer.position
                ),
            ));
        }
        if s.replies.iter().any(|r| r.id == reply.id) {
            return Err(self.invalid("id", "is already issued"));
        }
        let supplementary = reply.reply_type == ReplyType::Supplementary;
        if !supplementary && self.rules.profile.rules.communicate_before_reply {
            let lead = s.details.lead_deputy;
            let contacted = s
                .communications
                .iter()
                .any(|c| c.assignment_id == a.id && c.deputies.contains(&lead) && c.on <= reply.on);
            if !contacted {
                return Err(DomainError::Precondition {
                    command: self.name,
                    reason: "no communication with the lead deputy is recorded for this unit (先沟通后答复)".into(),
                });
            }
        }
        if a.role == UnitRole::Lead && !supplementary {
            let co: Vec<&Assignment> = s
                .active_assignments()
                .filter(|x| x.role == UnitRole::Co)
                .collect();
            let pending: Vec<String> = co
                .iter()
                .filter(|x| {
                    !matches!(
                        x.state,
                        AssignmentState::OpinionSubmitted | AssignmentState::Done
                    )
                })
                .map(|x| x.agency.to_string())
                .collect();
            if !pending.is_empty() {
                return Err(DomainError::Precondition {
                    command: self.name,
                    reason: format!(
                        "co-handling opinions are still missing from {} (submit them or have the assigning office waive them)",
                        pending.join(", ")
                    ),
                });
            }
            let missing: Vec<String> = s
                .opinions
                .iter()
                .filter(|o| {
                    co.iter().any(|x| x.id == o.assignment_id) && !reply.references.contains(&o.id)
                })
                .map(|o| o.document_number.clone())
                .collect();
            if !missing.is_empty() {
                return Err(self.invalid(
                    "references",
                    &format!(
                        "must reference every co-handling opinion; missing {}",
                        missing.join(", ")
                    ),
                ));
            }
            if reply.reply_type == ReplyType::Joint {
                let mut want: Vec<AgencyId> = co
                    .iter()
                    .filter(|x| !x.opinion_waived)
                    .map(|x| x.agency)
                    .collect();
                let mut got = reply.countersigned_by.clone();
                want.sort();
                got.sort();
                if want != got {
                    return Err(self.invalid(
                        "countersigned_by",
                        "a joint reply is countersigned by every co-handling unit",
                    ));
                }
            }
        }
        let needs_commitments = !supplementary
            && self
                .rules
                .profile
                .rules
                .commitment_classes
                .contains(&reply.class);
        if needs_commitments && drafts.is_empty() {
            return Err(self.invalid(
                "commitments",
                &format!(
                    "a class {:?} reply must list the measures it promises, with target dates",
                    reply.class
                ),
            ));
        }
        for c in drafts {
            if c.measure.trim().is_empty() {
                return Err(self.invalid("commitments", "each commitment needs a measure"));
            }
            if c.target_date <= reply.on {
                return Err(self.invalid(
                    "commitments",
                    "each commitment's target date must be after the reply",
                ));
            }
            if s.commitments.iter().any(|x| x.id == c.id) {
                return Err(self.invalid("commitments", "a commitment id exists already"));
            }
        }
        let mut reply = reply.clone();
        reply.round = s.rehandling_rounds;
        if reply.reply_type != ReplyType::Joint {
            reply.countersigned_by.clear();
        }
        let on = reply.on;
        let mut events = vec![SuggestionEvent::ReplyIssued(ReplyIssued {
            reply: reply.clone(),
        })];
        events.extend(drafts.iter().map(|c| {
            SuggestionEvent::CommitmentCreated(CommitmentCreated {
                commitment: Commitment {
                    id: c.id,
                    assignment_id: a.id,
                    measure: c.measure.clone(),
                    owner: a.agency,
                    division: c.division,
                    target_date: c.target_date,
                    state: CommitmentState::Open,
                    progress: Vec::new(),
                    evidence: String::new(),
                    converted_on: None,
                    created_on: on,
                },
            })
        }));
        if supplementary {
            if s.open_commitments().next().is_some() {
                return Err(DomainError::Precondition {
                    command: self.name,
                    reason: "commitments are still open: convert each with evidence before the supplementary reply".into(),
                });
            }
            let from = s.current_class().unwrap_or(reply.class);
            if reply.class != ReplyClass::A && explanation.is_none_or(|e| e.trim().is_empty()) {
                return Err(self.invalid(
                    "explanation",
                    "is required when the supplementary reply does not reach class A",
                ));
            }
            if from != reply.class {
                let change = ClassChange {
                    from,
                    to: reply.class,
                    reason: explanation.unwrap_or("commitments fulfilled").to_owned(),
                    conversion: reply.class == ReplyClass::A,
                    on,
                };
                events.push(SuggestionEvent::ClassChanged(ClassChanged { change }));
            }
            events.push(SuggestionEvent::Closed(Closed { on }));
            return Ok(events);
        }
        let mut after = s.clone();
        for e in &events {
            after.apply(e);
        }
        let all_replied = after
            .active_assignments()
            .filter(|x| x.is_responsible())
            .all(|x| x.state == AssignmentState::Replied);
        if all_replied {
            let feedback_due = self.deadline(
                "reply",
                on,
                &self.rules.profile.deadlines.feedback,
                &BTreeMap::new(),
            )?;
            events.push(SuggestionEvent::Replied(Replied { feedback_due, on }));
        }
        Ok(events)
    }

    fn record_feedback(&self, f: &Feedback) -> Result<Vec<SuggestionEvent>> {
        let actor = &self.cmd.actor;
        if !(actor.role == Role::AssigningOffice
            || actor.role == Role::Deputy && actor.deputy == Some(f.deputy))
        {
            return Err(self.forbidden("a deputy rates a reply for themself (or the assigning office records a returned form)"));
        }
        self.in_state(&[SuggestionState::Replied])?;
        if !self.s.deputies().any(|d| d == f.deputy) {
            return Err(self.invalid("deputy", "is not a deputy of this suggestion"));
        }
        if self.s.round_feedback().any(|x| x.deputy == f.deputy) {
            return Err(self.invalid("deputy", "has already given feedback on this round's reply"));
        }
        let mut feedback = f.clone();
        feedback.round = self.s.rehandling_rounds;
        let mut events = vec![SuggestionEvent::FeedbackRecorded(FeedbackRecorded {
            feedback,
        })];
        let mut after = self.s.clone();
        after.apply(&events[0]);
        let answered = after.round_feedback().count();
        if answered == after.deputies().count() {
            events.extend(self.evaluate(&after, f.on)?);
        }
        Ok(events)
    }

    /// Evaluated, then what follows from the round's feedback.
    fn evaluate(&self, s: &Suggestion, on: Date) -> Result<Vec<SuggestionEvent>> {
        let dissatisfied = s
            .round_feedback()
            .filter(|f| f.level == Satisfaction::Dissatisfied)
            .count() as u32;
        let returned = s.round_feedback().count() as u32;
        let mut events = vec![SuggestionEvent::Evaluated(Evaluated {
            dissatisfied,
            returned,
            on,
        })];
        if dissatisfied == 0 {
            events.extend(self.conclude(s, on));
        } else if s.rehandling_rounds < self.rules.profile.rules.rehandling_rounds {
            let spec = &self.rules.profile.deadlines.rehandling_reply;
            let reply_deadlines = s
                .active_assignments()
                .filter(|a| a.is_responsible())
                .map(|a| {
                    Ok((
                        a.id,
                        self.deadline("re-handling", on, spec, &BTreeMap::new())?,
                    ))
                })
                .collect::<Result<Vec<_>>>()?;
            events.push(SuggestionEvent::ReHandlingOpened(ReHandlingOpened {
                round: s.rehandling_rounds + 1,
                reply_deadlines,
                on,
            }));
        } else {
            let reason = format!(
                "{dissatisfied} deputy(ies) still dissatisfied after {} re-handling round(s)",
                s.rehandling_rounds
            );
            events.push(SuggestionEvent::Escalated(Escalated { reason, on }));
        }
        Ok(events)
    }

    /// Open deadlines recomputed against the rules' calendar; no events when nothing moves.
    fn recompute_deadlines(&self, on: Date) -> Result<Vec<SuggestionEvent>> {
        if self.s.state.is_terminal() {
            return Ok(Vec::new());
        }
        let policy = self.rules.profile.out_of_range();
        let none = BTreeMap::new();
        let mut changes = Vec::new();
        let mut check = |assignment_id, kind, d: &Deadline| -> Result<()> {
            let moved = d
                .recompute(self.rules.calendar, policy, &none)
                .map_err(|e| DomainError::Deadline {
                    command: self.name,
                    reason: e.to_string(),
                })?;
            if let Some(r) = moved {
                changes.push(DeadlineChange {
                    assignment_id,
                    kind,
                    old_due: r.old_due,
                    deadline: r.deadline,
                });
            }
            Ok(())
        };
        let talked = |a: &Assignment| {
            self.s
                .communications
                .iter()
                .any(|c| c.assignment_id == a.id)
        };
        for a in self.s.active_assignments() {
            use AssignmentState as A;
            let id = Some(a.id);
            if matches!(a.state, A::PendingSign | A::Accepted) {
                check(id, DeadlineKind::Objection, &a.deadlines.objection)?;
            }
            if let Some(d) = a.deadlines.first_contact.as_ref().filter(|_| !talked(a)) {
                check(id, DeadlineKind::FirstContact, d)?;
            }
            if let Some(d) = a
                .deadlines
                .co_opinion
                .as_ref()
                .filter(|_| matches!(a.state, A::PendingSign | A::Accepted | A::InHandling))
            {
                check(id, DeadlineKind::CoOpinion, d)?;
            }
            if let Some(d) = a
                .deadlines
                .reply
                .as_ref()
                .filter(|_| !matches!(a.state, A::Replied | A::Done))
            {
                check(id, DeadlineKind::Reply, d)?;
            }
        }
        if let Some(d) = self
            .s
            .feedback_due
            .as_ref()
            .filter(|_| self.s.state == SuggestionState::Replied)
        {
            check(None, DeadlineKind::Feedback, d)?;
        }
        if changes.is_empty() {
            return Ok(Vec::new());
        }
        let calendar_version = self.rules.calendar.version().to_owned();
        Ok(vec![SuggestionEvent::DeadlinesRecomputed(
            DeadlinesRecomputed {
                calendar_version,
                changes,
                on,
            },
        )])
    }

    /// From evaluated: into follow-up when commitments are open or the class calls for it, else closed.
    fn conclude(&self, s: &Suggestion, on: Date) -> Vec<SuggestionEvent> {
        let tracked_class = s
            .current_class()
            .is_some_and(|c| self.rules.profile.rules.commitment_classes.contains(&c));
        if tracked_class || s.open_commitments().next().is_some() {
            vec![SuggestionEvent::FollowUpStarted(FollowUpStarted { on })]
        } else {
            vec![SuggestionEvent::Closed(Closed { on })]
        }
    }
}

/// The units of one suggestion: one lead with any co-handlers, one sole unit, or separate units.
fn check_role_mix(all: &[(AgencyId, UnitRole)]) -> std::result::Result<(), String> {
    let count = |r: UnitRole| all.iter().filter(|(_, x)| *x == r).count();
    let (lead, co, sole, separate) = (
        count(UnitRole::Lead),
        count(UnitRole::Co),
        count(UnitRole::Sole),
        count(UnitRole::Separate),
    );
    if lead > 1 {
        return Err("there can be only one lead unit (主办)".into());
    }
    if sole > 0 && all.len() > 1 {
        return Err("a sole unit (独办) handles the item alone".into());
    }
    if separate > 0 && (lead > 0 || co > 0) {
        return Err("separate units (分办) cannot be mixed with lead or co-handling units".into());
    }
    if co > 0 && lead == 0 {
        return Err("co-handling units (会办) need a lead unit (主办)".into());
    }
    Ok(())
}
