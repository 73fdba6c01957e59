//! 答复审查: the assigning office accepts a reply or returns it for re-handling before the
//! deputies are asked for their rating; a reply not decided on within the window is accepted.

mod support;

use banli_domain::DomainError;
use banli_domain::ids::*;
use banli_domain::metrics::{Scope, facts};
use banli_domain::suggestion::*;
use support::*;

/// A sole unit's item, signed for, dispatched and discussed with the deputy, under a profile
/// where the office reviews replies.
fn world() -> (World, AssignmentId) {
    let mut w = World::new();
    w.profile.rules.office_reviews_replies = true;
    w.registered(DAY0);
    let id = AssignmentId::new();
    w.run(
        w.office_actor(),
        CommandKind::Assign {
            units: vec![UnitAssignment {
                assignment_id: id,
                agency: w.lead,
                role: UnitRole::Sole,
            }],
            on: DAY0,
        },
    );
    w.sign_and_dispatch(id, w.lead, days(1));
    w.communicate(id, w.lead, days(2), true);
    (w, id)
}

fn issue(w: &mut World, a: AssignmentId, on: time::Date) -> ReplyId {
    let reply = w.reply(a, ReplyClass::A, ReplyType::Initial, vec![], on);
    let id = reply.id;
    let events = w.run(
        w.admin(w.lead),
        CommandKind::IssueReply {
            approval_chain: Default::default(),
            reply,
            commitments: vec![],
            explanation: None,
        },
    );
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, SuggestionEvent::Replied(_))),
        "the deputies wait for the office's review"
    );
    id
}

fn review(
    w: &mut World,
    reply: ReplyId,
    accept: bool,
    reasons: &str,
    on: time::Date,
) -> Result<Vec<SuggestionEvent>, DomainError> {
    w.try_run(
        w.office_actor(),
        CommandKind::ReviewReply {
            reply,
            accept,
            reasons: reasons.into(),
            on,
        },
    )
}

#[test]
fn a_returned_reply_is_handled_again_and_an_accepted_one_opens_the_feedback_window() {
    let (mut w, a) = world();
    // 2020-03-20 (Friday) + 5 working days = 2020-03-27.
    let first = issue(&mut w, a, days(18));
    let s = w.s();
    assert_eq!(
        s.assignment(a).map(|x| x.state),
        Some(AssignmentState::AwaitingReview)
    );
    assert_eq!(s.state, SuggestionState::Assigned);
    let due = s.replies[0].review_due.clone().expect("a review deadline");
    assert_eq!(due.due, time::macros::date!(2020 - 03 - 27));

    // Only the office decides; a return says why.
    let err = w
        .try_run(
            w.admin(w.lead),
            CommandKind::ReviewReply {
                reply: first,
                accept: true,
                reasons: String::new(),
                on: days(19),
            },
        )
        .expect_err("the unit cannot accept its own reply");
    assert_eq!(err.code(), "forbidden");
    assert_eq!(
        review(&mut w, first, false, " ", days(19))
            .expect_err("no reasons")
            .code(),
        "invalid_argument"
    );
    let events = review(
        &mut w,
        first,
        false,
        "the measures are not concrete",
        days(19),
    )
    .expect("returned");
    let SuggestionEvent::ReplyReviewed(r) = &events[0] else {
        panic!("{events:?}")
    };
    // 15 working days from 2020-03-21 (a Saturday), the Qingming holiday (04-06) skipped.
    let new_due = r.reply_deadline.as_ref().expect("a new reply deadline").due;
    assert_eq!(new_due, time::macros::date!(2020 - 04 - 13));
    let s = w.s();
    assert_eq!(
        s.assignment(a).map(|x| x.state),
        Some(AssignmentState::InHandling)
    );
    assert_eq!(
        s.assignment(a)
            .and_then(|x| x.deadlines.reply.as_ref())
            .map(|d| d.due),
        Some(new_due)
    );
    assert_eq!(
        review(&mut w, first, true, "", days(20))
            .expect_err("decided")
            .code(),
        "wrong_state"
    );

    // The returned reply is not the unit's reply: the metrics wait for the one that stands.
    let f = facts(w.s(), &Scope::default());
    assert_eq!(f[0].replied_on, None);

    let second = issue(&mut w, a, days(25));
    let events = review(&mut w, second, true, "", days(26)).expect("accepted");
    let Some(SuggestionEvent::Replied(replied)) = events.last() else {
        panic!("{events:?}")
    };
    assert_eq!(
        replied.on,
        days(26),
        "the feedback window opens on the acceptance"
    );
    let s = w.s();
    assert_eq!(s.state, SuggestionState::Replied);
    assert_eq!(
        s.assignment(a).map(|x| x.state),
        Some(AssignmentState::Replied)
    );
    assert_eq!(facts(s, &Scope::default())[0].replied_on, Some(days(25)));
}

#[test]
fn the_review_window_closes_and_the_platform_accepts_what_was_not_decided() {
    let (mut w, a) = world();
    let reply = issue(&mut w, a, days(18));
    let due = w.s().replies[0].review_due.clone().expect("due").due;
    let err =
        review(&mut w, reply, false, "late", due + time::Duration::days(1)).expect_err("closed");
    assert_eq!(err.code(), "window_closed");
    // On the last day nothing lapses; the day after, the reply is accepted.
    let none = w
        .try_run(w.office_actor(), CommandKind::LapseReplyReviews { on: due })
        .expect("runs");
    assert!(none.is_empty());
    let events = w
        .try_run(
            w.office_actor(),
            CommandKind::LapseReplyReviews {
                on: due + time::Duration::days(1),
            },
        )
        .expect("runs");
    let SuggestionEvent::ReplyReviewed(r) = &events[0] else {
        panic!("{events:?}")
    };
    assert!(r.review.accepted && r.review.lapsed);
    assert!(matches!(events.last(), Some(SuggestionEvent::Replied(_))));
    assert_eq!(w.s().state, SuggestionState::Replied);
    // Nothing is left to lapse.
    let again = w
        .try_run(
            w.office_actor(),
            CommandKind::LapseReplyReviews {
                on: due + time::Duration::days(9),
            },
        )
        .expect("runs");
    assert!(again.is_empty());
}

#[test]
fn without_the_profile_switch_a_reply_stands_at_once() {
    let (mut w, a) = world();
    w.profile.rules.office_reviews_replies = false;
    let reply = w.reply(a, ReplyClass::A, ReplyType::Initial, vec![], days(18));
    let id = reply.id;
    let events = w.run(
        w.admin(w.lead),
        CommandKind::IssueReply {
            approval_chain: Default::default(),
            reply,
            commitments: vec![],
            explanation: None,
        },
    );
    assert!(matches!(events.last(), Some(SuggestionEvent::Replied(_))));
    assert_eq!(
        review(&mut w, id, true, "", days(19))
            .expect_err("no review")
            .code(),
        "wrong_state"
    );
}

#[test]
fn a_withdrawn_item_takes_no_review_and_nothing_lapses() {
    let (mut w, a) = world();
    let reply = issue(&mut w, a, days(18));
    w.run(
        w.office_actor(),
        CommandKind::Withdraw {
            reason: "the deputy withdrew it in writing".into(),
            on: days(19),
        },
    );
    assert_eq!(
        review(&mut w, reply, true, "", days(19))
            .expect_err("withdrawn")
            .code(),
        "wrong_state"
    );
    let none = w
        .try_run(
            w.office_actor(),
            CommandKind::LapseReplyReviews { on: days(40) },
        )
        .expect("runs");
    assert!(none.is_empty());
    assert_eq!(w.s().state, SuggestionState::Withdrawn);
}
