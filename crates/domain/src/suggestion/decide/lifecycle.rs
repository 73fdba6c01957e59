//! Submission, withdrawal, assignment, adjustments and extensions.

use super::*;

pub(super) fn submit(
    cmd: &Command,
    details: &SuggestionDetails,
    on: Date,
) -> Result<Vec<SuggestionEvent>> {
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

/// The units of one suggestion: one lead with any co-handlers, one sole unit, or separate units.
pub(super) fn check_role_mix(all: &[(AgencyId, UnitRole)]) -> std::result::Result<(), String> {
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

impl<'a> Ctx<'a> {
    pub(super) fn withdraw(&self, reason: &str, on: Date) -> Result<Vec<SuggestionEvent>> {
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

    pub(super) fn assign(
        &self,
        units: &[UnitAssignment],
        on: Date,
    ) -> Result<Vec<SuggestionEvent>> {
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

    pub(super) fn assigned_event(
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

    pub(super) fn decide_adjustment(
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

    pub(super) fn request_extension(
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
}
