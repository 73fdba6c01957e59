//! 公开答复: the publication of replies — by the assigning office, or by the platform once a
//! reply's publication date passes — with the personal data of individuals removed, and its
//! withdrawal by the office.

use super::*;
use crate::publication::redact;

impl<'a> Ctx<'a> {
    /// Whether a reply is one the profile publishes: not supplementary, on an item that is not
    /// confidential and whose disclosure allows it.
    pub(super) fn publishes(&self, reply: &Reply) -> bool {
        let d = &self.s.details;
        self.rules.profile.rules.publish_replies
            && !d.confidential
            && d.disclosure != Disclosure::None
            && reply.reply_type != ReplyType::Supplementary
    }

    /// Why `reply` cannot be published now, if it cannot.
    fn publishable(&self, reply: &Reply) -> Result<()> {
        let d = &self.s.details;
        if d.confidential {
            return Err(self.invalid(
                "reply",
                "belongs to a confidential item (涉密): its replies are never published",
            ));
        }
        if d.disclosure == Disclosure::None {
            return Err(self.invalid(
                "reply",
                "belongs to an item whose disclosure is `none`: its replies are not published",
            ));
        }
        if reply.reply_type == ReplyType::Supplementary {
            return Err(self.invalid(
                "reply",
                "is a supplementary reply (a closure request): publish the reply it follows",
            ));
        }
        if self.s.state == SuggestionState::Withdrawn {
            return Err(self.wrong_state("a withdrawn item's replies are not published"));
        }
        match (&reply.review_due, &reply.review) {
            (Some(_), None) => Err(DomainError::Precondition {
                command: self.name,
                reason: "the reply awaits the assigning office's review (答复审查)".into(),
            }),
            (_, Some(r)) if !r.accepted => Err(DomainError::WrongState {
                command: self.name,
                entity: "reply",
                state: "returned".into(),
                hint: "a reply returned for re-handling is not published; its successor is".into(),
            }),
            _ => Ok(()),
        }
    }

    fn publication(
        &self,
        reply: &Reply,
        names: &[String],
        on: Date,
        automatic: bool,
    ) -> Publication {
        let s = self.s;
        // Everyone the item names, besides those the command brings (the deputies').
        let mut people: Vec<String> = names.to_vec();
        people.extend(s.replies.iter().map(|r| r.signer.name.clone()));
        people.extend(s.opinions.iter().map(|o| o.signer.name.clone()));
        for a in &s.assignments {
            if let Some(d) = &a.dispatch {
                people.push(d.handler.clone());
                people.push(d.responsible_leader.clone());
                people.extend(d.leading_official.clone());
            }
        }
        for c in &s.communications {
            people.extend(c.participants.iter().cloned());
        }
        for c in &s.consultations {
            people.extend(c.attendees.iter().cloned());
        }
        let (title, n_title) = redact(&s.details.title, &people);
        let (body, n_body) = match s.details.disclosure {
            Disclosure::Full => {
                let (b, n) = redact(&reply.body, &people);
                (Some(b), n)
            }
            _ => (None, 0),
        };
        Publication {
            on,
            automatic,
            title,
            body,
            redactions: n_title + n_body,
            withdrawn: None,
        }
    }

    pub(super) fn publish_reply(
        &self,
        reply_id: ReplyId,
        names: &[String],
        on: Date,
    ) -> Result<Vec<SuggestionEvent>> {
        self.office()?;
        let reply = self
            .s
            .replies
            .iter()
            .find(|r| r.id == reply_id)
            .ok_or_else(|| self.not_found("reply", &reply_id))?;
        self.publishable(reply)?;
        if let Some(p) = reply.publication.as_ref().filter(|p| p.withdrawn.is_none()) {
            return Err(DomainError::WrongState {
                command: self.name,
                entity: "reply",
                state: "published".into(),
                hint: format!("published on {}", format_date(p.on)),
            });
        }
        Ok(vec![SuggestionEvent::ReplyPublished(ReplyPublished {
            reply_id,
            assignment_id: reply.assignment_id,
            publication: self.publication(reply, names, on, false),
        })])
    }

    pub(super) fn withdraw_publication(
        &self,
        reply_id: ReplyId,
        reason: &str,
        on: Date,
    ) -> Result<Vec<SuggestionEvent>> {
        self.office()?;
        let reply = self
            .s
            .replies
            .iter()
            .find(|r| r.id == reply_id)
            .ok_or_else(|| self.not_found("reply", &reply_id))?;
        if reply
            .publication
            .as_ref()
            .is_none_or(|p| p.withdrawn.is_some())
        {
            return Err(DomainError::WrongState {
                command: self.name,
                entity: "reply",
                state: if reply.publication.is_some() {
                    "withdrawn"
                } else {
                    "unpublished"
                }
                .into(),
                hint: "only a published reply is withdrawn".into(),
            });
        }
        if reason.trim().is_empty() {
            return Err(self.invalid("reason", "is required: a withdrawal says why"));
        }
        Ok(vec![SuggestionEvent::PublicationWithdrawn(
            PublicationWithdrawn {
                reply_id,
                reason: reason.to_owned(),
                on,
            },
        )])
    }

    /// Every reply whose publication date passed before `on`, not yet published (a withdrawn
    /// publication stays withdrawn) and publishable now; the others wait or never publish.
    pub(super) fn publish_due_replies(
        &self,
        names: &[String],
        on: Date,
    ) -> Result<Vec<SuggestionEvent>> {
        self.office()?;
        Ok(self
            .s
            .replies
            .iter()
            .filter(|r| r.publication.is_none())
            .filter(|r| r.publication_due.as_ref().is_some_and(|d| d.due < on))
            .filter(|r| self.publishable(r).is_ok())
            .map(|r| {
                SuggestionEvent::ReplyPublished(ReplyPublished {
                    reply_id: r.id,
                    assignment_id: r.assignment_id,
                    publication: self.publication(r, names, on, true),
                })
            })
            .collect())
    }
}
