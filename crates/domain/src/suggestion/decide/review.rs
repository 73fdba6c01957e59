//! 答复审查: the assigning office's review of a reply before the deputies are asked for their
//! rating — accepted, or returned for re-handling (驳回重办) with reasons and a new reply
//! deadline; a reply not decided on within the profile's window is accepted by the platform.

use super::*;

impl<'a> Ctx<'a> {
    pub(super) fn review_reply(
        &self,
        reply_id: ReplyId,
        accept: bool,
        reasons: &str,
        on: Date,
    ) -> Result<Vec<SuggestionEvent>> {
        self.office()?;
        self.in_state(&[SuggestionState::Assigned, SuggestionState::ReHandling])?;
        let s = self.s;
        let reply = s
            .replies
            .iter()
            .find(|r| r.id == reply_id)
            .ok_or_else(|| self.not_found("reply", &reply_id))?;
        let a = self.assignment(reply.assignment_id)?;
        let Some(due) = &reply.review_due else {
            return Err(DomainError::WrongState {
                command: self.name,
                entity: "reply",
                state: "not under review".into(),
                hint: "only replies issued while the profile has the office review them (rules.office_reviews_replies) await a review".into(),
            });
        };
        if reply.review.is_some() || a.state != AssignmentState::AwaitingReview {
            return Err(DomainError::WrongState {
                command: self.name,
                entity: "reply",
                state: "reviewed".into(),
                hint: "this reply has been decided on already".into(),
            });
        }
        if on > due.due {
            return Err(DomainError::WindowClosed {
                command: self.name,
                closed_on: format_date(due.due),
                trace: due.explain(),
            });
        }
        if !accept && reasons.trim().is_empty() {
            return Err(self.invalid(
                "reasons",
                "must say what the unit has to handle again before it replies anew",
            ));
        }
        let review = ReplyReview {
            accepted: accept,
            reasons: reasons.to_owned(),
            on,
            lapsed: false,
        };
        self.reviewed(reply, a, review)
    }

    pub(super) fn lapse_reply_reviews(&self, on: Date) -> Result<Vec<SuggestionEvent>> {
        self.office()?;
        let s = self.s;
        // Only an item still being handled waits for reviews (a withdrawn one does not).
        if !matches!(
            s.state,
            SuggestionState::Assigned | SuggestionState::ReHandling
        ) {
            return Ok(Vec::new());
        }
        let mut events = Vec::new();
        for reply in &s.replies {
            let (Some(due), None) = (&reply.review_due, &reply.review) else {
                continue;
            };
            let Ok(a) = self.assignment(reply.assignment_id) else {
                continue;
            };
            if due.due >= on || a.state != AssignmentState::AwaitingReview {
                continue;
            }
            let review = ReplyReview {
                accepted: true,
                reasons: format!(
                    "accepted as the review window closed on {} without a decision",
                    format_date(due.due)
                ),
                on: due.due,
                lapsed: true,
            };
            events.push(SuggestionEvent::ReplyReviewed(ReplyReviewed {
                reply_id: reply.id,
                assignment_id: a.id,
                review,
                reply_deadline: None,
            }));
        }
        if events.is_empty() {
            return Ok(events);
        }
        self.replied_if_all(events, on)
    }

    fn reviewed(
        &self,
        reply: &Reply,
        a: &Assignment,
        review: ReplyReview,
    ) -> Result<Vec<SuggestionEvent>> {
        let on = review.on;
        if review.accepted {
            let events = vec![SuggestionEvent::ReplyReviewed(ReplyReviewed {
                reply_id: reply.id,
                assignment_id: a.id,
                review,
                reply_deadline: None,
            })];
            return self.replied_if_all(events, on);
        }
        let deadline = self.deadline(
            "return",
            on,
            &self.rules.profile.deadlines.returned_reply,
            &BTreeMap::new(),
        )?;
        Ok(vec![SuggestionEvent::ReplyReviewed(ReplyReviewed {
            reply_id: reply.id,
            assignment_id: a.id,
            review,
            reply_deadline: Some(deadline),
        })])
    }
}
