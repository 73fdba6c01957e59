//! 内部审批: a unit's drafted reply goes through the unit's approval chain — each step, by a key
//! of the step's position, approves it or returns it to the drafter with a comment — and is
//! issued, under every check of the reply gate again, when the last step approves.

use super::*;

impl<'a> Ctx<'a> {
    /// The draft of `reply` into the unit's approval chain `steps` (checked as its issue would
    /// be, for a drafter of the unit).
    pub(super) fn submit_for_approval(
        &self,
        reply: &Reply,
        drafts: &[CommitmentDraft],
        explanation: Option<&str>,
        steps: Vec<SignerPosition>,
    ) -> Result<Vec<SuggestionEvent>> {
        let a = self.assignment(reply.assignment_id)?;
        self.issue_checked(reply, drafts, explanation, Some(AGENCY_STAFF))?;
        let first_due = self.step_due(reply.on)?;
        let steps = steps
            .into_iter()
            .enumerate()
            .map(|(i, position)| ApprovalStep {
                position,
                due: (i == 0).then(|| first_due.clone()),
                decision: None,
            })
            .collect();
        Ok(vec![SuggestionEvent::ReplySubmittedForApproval(
            ReplySubmittedForApproval {
                assignment_id: a.id,
                approval: Approval {
                    draft: reply.clone(),
                    commitments: drafts.to_vec(),
                    explanation: explanation.map(str::to_owned),
                    steps,
                    submitted_on: reply.on,
                    returns_to: a.state,
                },
            },
        )])
    }

    pub(super) fn decide_approval_step(
        &self,
        assignment: AssignmentId,
        step: u32,
        approve: bool,
        comment: &str,
        on: Date,
    ) -> Result<Vec<SuggestionEvent>> {
        let a = self.assignment(assignment)?;
        self.agency(a, AGENCY_STAFF)?;
        let Some(approval) = a.approval.as_ref() else {
            return Err(DomainError::WrongState {
                command: self.name,
                entity: "assignment",
                state: a.state.to_string(),
                hint: "no drafted reply of this unit awaits its approval chain".into(),
            });
        };
        let i = step as usize;
        let Some(this) = approval.steps.get(i) else {
            return Err(self.not_found("approval step", &step));
        };
        if let Some(d) = &this.decision {
            return Err(DomainError::WrongState {
                command: self.name,
                entity: "approval step",
                state: if d.approved { "approved" } else { "returned" }.into(),
                hint: format!(
                    "step {step} ({}) was decided on {}; a step is decided once",
                    this.position.as_str(),
                    format_date(d.on)
                ),
            });
        }
        let current = approval.current().unwrap_or(approval.steps.len());
        let waiting = &approval.steps[current.min(approval.steps.len() - 1)];
        if i != current {
            return Err(DomainError::WrongState {
                command: self.name,
                entity: "approval step",
                state: "waiting".into(),
                hint: format!(
                    "step {current} ({}) decides first",
                    waiting.position.as_str()
                ),
            });
        }
        if self.cmd.actor.position != Some(this.position) {
            return Err(self.forbidden(&format!(
                "step {step} of the approval chain waits for the unit's {}; this key {}",
                this.position.as_str(),
                match self.cmd.actor.position {
                    Some(p) => format!("is bound to {}", p.as_str()),
                    None => "is bound to no position (create a key with --position)".into(),
                }
            )));
        }
        if !approve && comment.trim().is_empty() {
            return Err(self.invalid(
                "comment",
                "must say what the drafter has to change: a return carries its comment",
            ));
        }
        if on < approval.submitted_on {
            return Err(self.invalid("on", "is before the draft was submitted"));
        }
        let last = i + 1 == approval.steps.len();
        let next_due = if approve && !last {
            Some(self.step_due(on)?)
        } else {
            None
        };
        let decided = SuggestionEvent::ApprovalStepDecided(ApprovalStepDecided {
            assignment_id: a.id,
            step,
            position: this.position,
            decision: StepDecision {
                approved: approve,
                comment: comment.to_owned(),
                on,
            },
            next_due,
        });
        if !approve || !last {
            return Ok(vec![decided]);
        }
        // The chain is complete: the reply is issued today, under every check of the gate
        // again (the item may have moved while the draft was in review).
        let mut approvals = approval.steps.clone();
        if let Some(s) = approvals.last_mut() {
            s.decision = Some(StepDecision {
                approved: true,
                comment: comment.to_owned(),
                on,
            });
        }
        let mut reply = approval.draft.clone();
        reply.on = on;
        reply.approvals = approvals;
        let commitments = approval.commitments.clone();
        let explanation = approval.explanation.clone();
        let mut after = self.s.clone();
        after.apply(&decided);
        let ctx = Ctx {
            s: &after,
            cmd: self.cmd,
            rules: self.rules,
            name: self.name,
        };
        let mut events = vec![decided];
        events.extend(ctx.issue_checked(&reply, &commitments, explanation.as_deref(), None)?);
        Ok(events)
    }

    fn step_due(&self, from: Date) -> Result<Deadline> {
        self.deadline(
            "approval step",
            from,
            &self.rules.profile.deadlines.approval_step,
            &BTreeMap::new(),
        )
    }
}
