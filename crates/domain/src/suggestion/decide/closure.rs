//! Closing an item in follow-up: the owner unit requests it with its supplementary reply once
//! every commitment is converted with evidence; the assigning office confirms it (the class
//! change takes effect, the item closes) or returns it; the deputies may rate a confirmed closure.

use super::*;

impl<'a> Ctx<'a> {
    /// The supplementary reply's request: the class it reaches and why, for the office to decide.
    pub(super) fn closure_requested(
        &self,
        reply: &Reply,
        explanation: Option<&str>,
    ) -> Result<SuggestionEvent> {
        let s = self.s;
        if s.pending_closure().is_some() {
            return Err(self.wrong_state(
                "a closure request is waiting for the assigning office: it confirms or returns it first",
            ));
        }
        if s.open_commitments().next().is_some() {
            return Err(DomainError::Precondition {
                command: self.name,
                reason: "commitments are still open: convert each with evidence before the supplementary reply".into(),
            });
        }
        let explanation = explanation.map(str::trim).filter(|e| !e.is_empty());
        if reply.class != ReplyClass::A && explanation.is_none() {
            return Err(self.invalid(
                "explanation",
                "is required when the supplementary reply does not reach class A",
            ));
        }
        Ok(SuggestionEvent::ClosureRequested(ClosureRequested {
            request: ClosureRequest {
                reply_id: reply.id,
                assignment_id: reply.assignment_id,
                from: s.current_class().unwrap_or(reply.class),
                to: reply.class,
                explanation: explanation.map(str::to_owned),
                on: reply.on,
                decision: None,
                ratings: Vec::new(),
            },
        }))
    }

    pub(super) fn decide_closure(
        &self,
        confirm: bool,
        reason: &str,
        reopen: &[CommitmentId],
        on: Date,
    ) -> Result<Vec<SuggestionEvent>> {
        let s = self.s;
        self.office()?;
        let request = match s.closures.last() {
            Some(r) if r.is_pending() => r,
            Some(_) => {
                return Err(DomainError::WrongState {
                    command: self.name,
                    entity: "closure request",
                    state: "decided".into(),
                    hint: "the last request is confirmed or returned already".into(),
                });
            }
            None => return Err(self.not_found("closure request", &"(none requested)")),
        };
        self.in_state(&[SuggestionState::InFollowUp])?;
        if on < request.on {
            return Err(self.invalid("on", "is before the request"));
        }
        if confirm {
            if !reopen.is_empty() {
                return Err(self.invalid("reopen", "applies to a returned request only"));
            }
            let decision = ClosureDecision {
                confirmed: true,
                reason: reason.trim().to_owned(),
                reopened: Vec::new(),
                on,
            };
            let mut events = vec![SuggestionEvent::ClosureDecided(ClosureDecided { decision })];
            if request.from != request.to {
                let change = ClassChange {
                    from: request.from,
                    to: request.to,
                    reason: request
                        .explanation
                        .clone()
                        .unwrap_or_else(|| "commitments fulfilled".to_owned()),
                    conversion: request.to == ReplyClass::A,
                    on,
                };
                events.push(SuggestionEvent::ClassChanged(ClassChanged { change }));
            }
            events.push(SuggestionEvent::Closed(Closed { on }));
            return Ok(events);
        }
        if reason.trim().is_empty() {
            return Err(self.invalid(
                "reason",
                "is required to return a closure request: the unit needs to know what is missing",
            ));
        }
        for id in reopen {
            let c = s
                .commitments
                .iter()
                .find(|c| c.id == *id)
                .ok_or_else(|| self.not_found("commitment", id))?;
            if c.state != CommitmentState::Converted {
                return Err(self.invalid(
                    "reopen",
                    &format!("commitment \u{201c}{}\u{201d} is not converted", c.measure),
                ));
            }
        }
        let mut reopened = reopen.to_vec();
        reopened.sort();
        reopened.dedup();
        Ok(vec![SuggestionEvent::ClosureDecided(ClosureDecided {
            decision: ClosureDecision {
                confirmed: false,
                reason: reason.trim().to_owned(),
                reopened,
                on,
            },
        })])
    }

    pub(super) fn rate_closure(
        &self,
        deputy: DeputyId,
        level: Satisfaction,
        comment: &str,
        on: Date,
    ) -> Result<Vec<SuggestionEvent>> {
        let actor = &self.cmd.actor;
        if !(actor.role == Role::AssigningOffice
            || actor.role == Role::Deputy && actor.deputy == Some(deputy))
        {
            return Err(self.forbidden(
                "a deputy rates a closure for themself (or the assigning office records a returned form)",
            ));
        }
        let confirmed = self
            .s
            .closures
            .last()
            .filter(|c| c.decision.as_ref().is_some_and(|d| d.confirmed))
            .ok_or_else(|| {
                self.wrong_state("a closure is rated once the assigning office has confirmed it")
            })?;
        if !self.s.deputies().any(|d| d == deputy) {
            return Err(self.invalid("deputy", "is not a deputy of this suggestion"));
        }
        if confirmed.ratings.iter().any(|r| r.deputy == deputy) {
            return Err(DomainError::WrongState {
                command: self.name,
                entity: "closure",
                state: "rated".into(),
                hint: "this deputy has rated it already".into(),
            });
        }
        Ok(vec![SuggestionEvent::ClosureRated(ClosureRated {
            rating: ClosureRating {
                deputy,
                level,
                comment: comment.trim().to_owned(),
                on,
            },
        })])
    }
}
