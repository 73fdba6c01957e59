//! Co-handling with substance: an opinion states the measures the co-unit takes within its remit
//! (each becomes its commitment) or why there are none, and the units' consultations (会商) are
//! recorded and referenced.

use super::*;

impl<'a> Ctx<'a> {
    /// The opinion's measures and references checked; the opinion and the commitments its
    /// measures become.
    pub(super) fn opinion_substance(
        &self,
        a: &Assignment,
        opinion: &CoHandlingOpinion,
    ) -> Result<Vec<SuggestionEvent>> {
        let s = self.s;
        let reason = opinion
            .no_measure_reason
            .as_deref()
            .map(str::trim)
            .filter(|r| !r.is_empty());
        if reason.is_some() && !opinion.measures.is_empty() {
            return Err(self.invalid(
                "no_measure_reason",
                "contradicts the measures listed: state measures, or why there are none, not both",
            ));
        }
        for m in &opinion.measures {
            let named = |why: &str| {
                self.invalid(
                    "measures",
                    &format!("measure \u{201c}{}\u{201d} {why}", m.measure.trim()),
                )
            };
            if m.measure.trim().is_empty() {
                return Err(self.invalid("measures", "each measure must say what is done"));
            }
            if m.responsible.trim().is_empty() {
                return Err(named("needs who is responsible in the co-unit"));
            }
            if m.agency.is_some_and(|x| x != a.agency) {
                return Err(named(
                    "is outside the co-unit's assignment: an opinion states the co-unit's own measures",
                ));
            }
            if m.target_date <= opinion.on {
                return Err(named(&format!(
                    "is dated {}, not after the opinion ({})",
                    format_date(m.target_date),
                    format_date(opinion.on)
                )));
            }
            let dup_in_opinion = opinion.measures.iter().filter(|x| x.id == m.id).count() > 1;
            if dup_in_opinion || s.commitments.iter().any(|c| c.id == m.id) {
                return Err(named("has an id that exists already"));
            }
        }
        self.consultations_known(&opinion.consultations, Some(a.agency))?;
        let bare = opinion.measures.is_empty() && reason.is_none();
        if bare && self.rules.profile.rules.opinion_substance == OpinionSubstance::Refuse {
            return Err(self.invalid(
                "measures",
                "are missing: the opinion must state concrete measures within the co-unit's remit (each with who is responsible and a date) or, in no_measure_reason, why there are none",
            ));
        }
        let mut opinion = opinion.clone();
        opinion.acknowledged_on = None;
        opinion.no_measure_reason = reason.map(str::to_owned);
        opinion.flagged =
            bare && self.rules.profile.rules.opinion_substance == OpinionSubstance::Flag;
        let commitments = opinion.measures.iter().map(|m| {
            SuggestionEvent::CommitmentCreated(CommitmentCreated {
                commitment: Commitment {
                    evidence_documents: Vec::new(),
                    id: m.id,
                    assignment_id: a.id,
                    measure: m.measure.trim().to_owned(),
                    owner: a.agency,
                    division: None,
                    target_date: m.target_date,
                    state: CommitmentState::Open,
                    progress: Vec::new(),
                    evidence: String::new(),
                    converted_on: None,
                    created_on: opinion.on,
                    responsible: Some(m.responsible.trim().to_owned()),
                    opinion_id: Some(opinion.id),
                },
            })
        });
        let commitments: Vec<SuggestionEvent> = commitments.collect();
        let mut events = vec![SuggestionEvent::OpinionSubmitted(OpinionSubmitted {
            opinion,
        })];
        events.extend(commitments);
        Ok(events)
    }

    /// Every referenced consultation exists (and, with `party`, that unit took part).
    pub(super) fn consultations_known(
        &self,
        ids: &[ConsultationId],
        party: Option<AgencyId>,
    ) -> Result<()> {
        for id in ids {
            let c = self
                .s
                .consultations
                .iter()
                .find(|c| c.id == *id)
                .ok_or_else(|| self.not_found("consultation", id))?;
            if party.is_some_and(|p| !c.agencies.contains(&p)) {
                return Err(self.invalid(
                    "consultations",
                    &format!("{id}: the unit did not take part in that consultation"),
                ));
            }
        }
        Ok(())
    }

    /// 会商: convened by the lead unit (or the assigning office), among units assigned to the
    /// suggestion, with minutes.
    pub(super) fn record_consultation(&self, c: &Consultation) -> Result<Vec<SuggestionEvent>> {
        let s = self.s;
        let actor = &self.cmd.actor;
        let convener = if actor.role == Role::AssigningOffice {
            actor.agency
        } else {
            s.active_assignments()
                .find(|a| a.is_responsible() && actor.acts_for(a.agency, AGENCY_STAFF))
                .map(|a| a.agency)
        };
        let Some(convener) = convener else {
            return Err(self.forbidden(
                "a consultation is convened by a unit that replies on the suggestion (the lead) or by the assigning office",
            ));
        };
        self.in_state(&[
            SuggestionState::Assigned,
            SuggestionState::Replied,
            SuggestionState::Evaluated,
            SuggestionState::ReHandling,
            SuggestionState::Escalated,
            SuggestionState::InFollowUp,
        ])?;
        if s.consultations.iter().any(|x| x.id == c.id) {
            return Err(self.invalid("id", "exists already"));
        }
        let mut agencies = c.agencies.clone();
        if actor.role != Role::AssigningOffice && !agencies.contains(&convener) {
            agencies.insert(0, convener);
        }
        let mut seen = std::collections::BTreeSet::new();
        agencies.retain(|x| seen.insert(*x));
        for x in &agencies {
            if !s.active_assignments().any(|a| a.agency == *x) {
                return Err(self.not_found("assigned unit", x));
            }
        }
        if agencies.len() < 2 {
            return Err(self.invalid(
                "agency_ids",
                "must name at least two units of the suggestion: a consultation is among units",
            ));
        }
        if let Some(d) = c.deputies.iter().find(|d| !s.deputies().any(|x| x == **d)) {
            return Err(self.invalid(
                "deputy_ids",
                &format!("{d} is not a deputy of this suggestion"),
            ));
        }
        if c.attendees.iter().all(|x| x.trim().is_empty()) {
            return Err(self.invalid("attendees", "must name who took part"));
        }
        if c.subject.trim().is_empty() || c.minutes.trim().is_empty() {
            return Err(self.invalid(
                "minutes",
                "and the subject are required: a consultation is recorded with its minutes",
            ));
        }
        let mut consultation = c.clone();
        consultation.convened_by = convener;
        consultation.agencies = agencies;
        consultation.attendees.retain(|x| !x.trim().is_empty());
        Ok(vec![SuggestionEvent::ConsultationRecorded(
            ConsultationRecorded { consultation },
        )])
    }
}
