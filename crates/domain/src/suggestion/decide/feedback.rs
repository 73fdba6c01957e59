//! Deputies' ratings, the evaluation that follows, and deadlines recomputed from new calendar data.

use super::*;

impl<'a> Ctx<'a> {
    pub(super) fn record_feedback(&self, f: &Feedback) -> Result<Vec<SuggestionEvent>> {
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
    pub(super) fn evaluate(&self, s: &Suggestion, on: Date) -> Result<Vec<SuggestionEvent>> {
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
    pub(super) fn recompute_deadlines(&self, on: Date) -> Result<Vec<SuggestionEvent>> {
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
    pub(super) fn conclude(&self, s: &Suggestion, on: Date) -> Vec<SuggestionEvent> {
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
