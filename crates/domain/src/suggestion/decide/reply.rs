//! The reply gate: who may reply, when, with which class, and the commitments a reply makes.

use super::*;

impl<'a> Ctx<'a> {
    /// A unit's reply: issued at once, or — where the unit has an approval chain — drafted into
    /// it (内部审批), to be issued when the chain completes.
    pub(super) fn issue_reply(
        &self,
        reply: &Reply,
        drafts: &[CommitmentDraft],
        explanation: Option<&str>,
        chain: &ApprovalChain,
    ) -> Result<Vec<SuggestionEvent>> {
        let steps = chain.steps_for(self.s.details.key_supervised);
        if steps.is_empty() {
            self.issue_checked(reply, drafts, explanation, Some(AGENCY_DECIDERS))
        } else {
            self.submit_for_approval(reply, drafts, explanation, steps)
        }
    }

    /// The events of issuing `reply` after every check of the reply gate; `roles` the roles of
    /// the unit that may issue it (`None`: its approval chain just completed).
    pub(super) fn issue_checked(
        &self,
        reply: &Reply,
        drafts: &[CommitmentDraft],
        explanation: Option<&str>,
        roles: Option<&[Role]>,
    ) -> Result<Vec<SuggestionEvent>> {
        let s = self.s;
        let a = self.assignment(reply.assignment_id)?;
        if let Some(roles) = roles {
            self.agency(a, roles)?;
        }
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
        if reply.letter.is_none()
            && self
                .rules
                .profile
                .rules
                .signed_letter_for
                .contains(&reply.reply_type)
        {
            return Err(self.invalid(
                "letter",
                &format!(
                    "is required: a {} reply comes with its signed letter (答复函) under the profile; upload it (POST /v1/documents) and name its sha256",
                    reply.reply_type.as_str()
                ),
            ));
        }
        self.consultations_known(&reply.consultations, Some(a.agency))?;
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
        reply.review = None;
        reply.review_due = if self.rules.profile.rules.office_reviews_replies && !supplementary {
            Some(self.deadline(
                "reply",
                reply.on,
                &self.rules.profile.deadlines.office_review,
                &BTreeMap::new(),
            )?)
        } else {
            None
        };
        if reply.reply_type != ReplyType::Joint {
            reply.countersigned_by.clear();
        }
        reply.publication = None;
        if roles.is_some() {
            // Issued at once: no approval chain signed it off.
            reply.approvals.clear();
        }
        reply.publication_due = if self.publishes(&reply) {
            Some(self.deadline(
                "reply",
                reply.on,
                &self.rules.profile.deadlines.publication,
                &BTreeMap::new(),
            )?)
        } else {
            None
        };
        let on = reply.on;
        let mut events = vec![SuggestionEvent::ReplyIssued(ReplyIssued {
            reply: reply.clone(),
        })];
        events.extend(drafts.iter().map(|c| {
            SuggestionEvent::CommitmentCreated(CommitmentCreated {
                commitment: Commitment {
                    evidence_documents: Vec::new(),
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
                    responsible: None,
                    opinion_id: None,
                },
            })
        }));
        if supplementary {
            if !drafts.is_empty() {
                return Err(self.invalid(
                    "commitments",
                    "a supplementary reply asks to close the follow-up; it promises no new measures",
                ));
            }
            events.push(self.closure_requested(&reply, explanation)?);
            return Ok(events);
        }
        self.replied_if_all(events, on)
    }

    /// `events`, and `Replied` (the feedback window opens on `on`) when after them every
    /// responsible unit's reply stands (issued, and accepted where the office reviews replies).
    pub(super) fn replied_if_all(
        &self,
        mut events: Vec<SuggestionEvent>,
        on: Date,
    ) -> Result<Vec<SuggestionEvent>> {
        let mut after = self.s.clone();
        for e in &events {
            after.apply(e);
        }
        let all_replied = after
            .active_assignments()
            .filter(|x| x.is_responsible())
            .all(|x| x.state == AssignmentState::Replied);
        let handling = matches!(
            after.state,
            SuggestionState::Assigned | SuggestionState::ReHandling
        );
        if all_replied && handling {
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
}
