//! The whole lifecycle of a co-handled suggestion: submission to B → A conversion, re-handling
//! after a dissatisfied rating, an adjustment, extensions. The guards are in `guards.rs`.

mod support;

use banli_domain::ids::*;
use banli_domain::suggestion::*;
use banli_domain::{Actor, DomainError, Role};
use support::*;
use time::macros::date;

#[test]
fn a_co_handled_item_from_submission_to_b_to_a_conversion() {
    let mut w = World::new();
    let (lead, co1, _co2, op) = ready_to_reply(&mut w);
    assert_eq!(w.s().state, SuggestionState::Assigned);
    let a = w.s().assignment(lead).expect("lead");
    assert_eq!(
        a.deadlines.reply.as_ref().map(|d| d.due),
        Some(date!(2020 - 06 - 02))
    );
    assert_eq!(
        a.deadlines.first_contact.as_ref().map(|d| d.due),
        Some(date!(2020 - 03 - 23))
    );
    assert_eq!(
        w.s()
            .assignment(co1)
            .and_then(|a| a.deadlines.co_opinion.as_ref())
            .map(|d| d.due),
        Some(date!(2020 - 04 - 02))
    );

    w.run(
        w.admin(w.lead),
        CommandKind::AcknowledgeOpinion {
            opinion: op,
            on: days(22),
        },
    );
    assert_eq!(
        w.s().assignment(co1).map(|a| a.state),
        Some(AssignmentState::Done)
    );

    let commitment = CommitmentId::new();
    let reply = w.reply(lead, ReplyClass::B, ReplyType::Initial, vec![op], days(40));
    let drafts = vec![CommitmentDraft {
        id: commitment,
        measure: "open the fund".into(),
        division: None,
        target_date: date!(2020 - 12 - 31),
    }];
    let ev = w.run(
        w.admin(w.lead),
        CommandKind::IssueReply {
            approval_chain: Default::default(),
            reply,
            commitments: drafts,
            explanation: None,
        },
    );
    assert_eq!(kinds(&ev), ["ReplyIssued", "CommitmentCreated", "Replied"]);
    assert_eq!(w.s().state, SuggestionState::Replied);
    // 20 working days from 2020-04-11 (a Saturday) across Labour Day 2020 and its two make-up days
    // (checked against chinesecalendar).
    assert_eq!(
        w.s().feedback_due.as_ref().map(|d| d.due),
        Some(date!(2020 - 05 - 11))
    );

    w.run(
        Actor::deputy(w.deputy),
        CommandKind::RecordFeedback {
            feedback: w.feedback(w.deputy, Satisfaction::Satisfied, days(45)),
        },
    );
    let ev = w.run(
        w.office_actor(),
        CommandKind::RecordFeedback {
            feedback: w.feedback(w.co_signer, Satisfaction::BasicallySatisfied, days(46)),
        },
    );
    assert_eq!(
        kinds(&ev),
        ["FeedbackRecorded", "Evaluated", "FollowUpStarted"]
    );
    assert_eq!(w.s().state, SuggestionState::InFollowUp);

    // Not closable while the commitment is open.
    let early = w.reply(
        lead,
        ReplyClass::A,
        ReplyType::Supplementary,
        vec![],
        days(100),
    );
    let err = w
        .try_run(
            w.admin(w.lead),
            CommandKind::IssueReply {
                approval_chain: Default::default(),
                reply: early,
                commitments: vec![],
                explanation: None,
            },
        )
        .expect_err("open");
    assert!(
        matches!(err, DomainError::Precondition { .. })
            && err.to_string().contains("commitments are still open"),
        "{err}"
    );

    w.run(
        Actor::agency(Role::Handler, w.lead),
        CommandKind::ReportProgress {
            commitment,
            note: "fund approved by the province".into(),
            to_deputy: true,
            on: days(120),
        },
    );
    let convert = |w: &mut World, on| {
        w.run(
            w.admin(w.lead),
            CommandKind::ConvertCommitment {
                documents: Vec::new(),
                commitment,
                evidence: "fund regulations No. 12".into(),
                on,
            },
        )
    };
    convert(&mut w, days(180));
    let supplementary = |w: &mut World, on| {
        let sup = w.reply(lead, ReplyClass::A, ReplyType::Supplementary, vec![], on);
        w.run(
            w.admin(w.lead),
            CommandKind::IssueReply {
                approval_chain: Default::default(),
                reply: sup,
                commitments: vec![],
                explanation: None,
            },
        )
    };
    // The unit's supplementary reply asks to close; the item stays in follow-up until the
    // assigning office confirms (重答复轻落实: the unit does not convert B → A on its own word).
    let ev = supplementary(&mut w, days(181));
    assert_eq!(kinds(&ev), ["ReplyIssued", "ClosureRequested"]);
    assert_eq!(w.s().state, SuggestionState::InFollowUp);
    assert_eq!(w.s().current_class(), Some(ReplyClass::B));
    let again = w.reply(
        lead,
        ReplyClass::A,
        ReplyType::Supplementary,
        vec![],
        days(182),
    );
    let err = w
        .try_run(
            w.admin(w.lead),
            CommandKind::IssueReply {
                approval_chain: Default::default(),
                reply: again,
                commitments: vec![],
                explanation: None,
            },
        )
        .expect_err("one request at a time");
    assert_eq!(err.code(), "wrong_state", "{err}");
    let decide = |confirm: bool, reopen: Vec<CommitmentId>, on| CommandKind::DecideClosure {
        confirm,
        reason: if confirm {
            String::new()
        } else {
            "the fund's first batch is not paid out yet".into()
        },
        reopen,
        on,
    };
    // An agency cannot decide; returning needs a reason.
    let err = w
        .try_run(w.admin(w.lead), decide(true, vec![], days(185)))
        .expect_err("the office decides");
    assert_eq!(err.code(), "forbidden", "{err}");
    let err = w
        .try_run(
            w.office_actor(),
            CommandKind::DecideClosure {
                confirm: false,
                reason: " ".into(),
                reopen: vec![],
                on: days(185),
            },
        )
        .expect_err("a reason");
    assert_eq!(err.code(), "invalid_argument", "{err}");
    // Returned: the commitment whose evidence did not hold is open again.
    let ev = w.run(w.office_actor(), decide(false, vec![commitment], days(185)));
    assert_eq!(kinds(&ev), ["ClosureDecided"]);
    assert_eq!(w.s().commitments[0].state, CommitmentState::Open);
    assert_eq!(w.s().state, SuggestionState::InFollowUp);
    let err = w
        .try_run(w.office_actor(), decide(true, vec![], days(186)))
        .expect_err("nothing pending");
    assert_eq!(err.code(), "wrong_state", "{err}");
    convert(&mut w, days(200));
    supplementary(&mut w, days(201));
    let ev = w.run(w.office_actor(), decide(true, vec![], days(205)));
    assert_eq!(kinds(&ev), ["ClosureDecided", "ClassChanged", "Closed"]);
    let err = w
        .try_run(w.office_actor(), decide(true, vec![], days(206)))
        .expect_err("confirmed twice");
    assert_eq!(err.code(), "wrong_state", "{err}");
    let s = w.s();
    assert_eq!(s.state, SuggestionState::Closed);
    assert_eq!(s.current_class(), Some(ReplyClass::A));
    assert!(s.class_history[0].conversion);
    assert_eq!(
        s.class_history[0].on,
        days(205),
        "effective on confirmation"
    );
    assert_eq!(
        s.replies[0].class,
        ReplyClass::B,
        "the original reply is never overwritten"
    );
    // The deputy rates the conversion, once.
    let rate = |deputy| CommandKind::RateClosure {
        deputy,
        level: Satisfaction::Satisfied,
        comment: "the fund is open".into(),
        on: days(210),
    };
    let deputy = w.deputy;
    w.run(Actor::deputy(deputy), rate(deputy));
    let err = w
        .try_run(Actor::deputy(deputy), rate(deputy))
        .expect_err("once");
    assert_eq!(err.code(), "wrong_state", "{err}");
    let err = w
        .try_run(Actor::deputy(w.co_signer), rate(deputy))
        .expect_err("for themself");
    assert_eq!(err.code(), "forbidden", "{err}");
    let s = w.s();
    assert_eq!(s.closures.len(), 2);
    assert_eq!(s.closures[1].ratings.len(), 1);
    assert!(s.closures[1].is_conversion());
    assert_eq!(s.commitments[0].progress.len(), 1);

    // Replaying every event reproduces the state.
    let replayed = Suggestion::replay(s.id, &w.events).expect("starts with submitted");
    assert_eq!(&replayed, s);
    assert_eq!(s.version as usize, w.events.len());
}

#[test]
fn a_dissatisfied_rating_reopens_then_escalates_after_the_last_round() {
    let mut w = World::new();
    let (lead, _, _, op) = ready_to_reply(&mut w);
    let reply = w.reply(lead, ReplyClass::A, ReplyType::Initial, vec![op], days(40));
    w.run(
        w.admin(w.lead),
        CommandKind::IssueReply {
            approval_chain: Default::default(),
            reply,
            commitments: vec![],
            explanation: None,
        },
    );
    w.run(
        Actor::deputy(w.co_signer),
        CommandKind::RecordFeedback {
            feedback: w.feedback(w.co_signer, Satisfaction::Satisfied, days(41)),
        },
    );
    let ev = w.run(
        Actor::deputy(w.deputy),
        CommandKind::RecordFeedback {
            feedback: w.feedback(w.deputy, Satisfaction::Dissatisfied, days(42)),
        },
    );
    assert_eq!(
        kinds(&ev),
        ["FeedbackRecorded", "Evaluated", "ReHandlingOpened"]
    );
    assert_eq!(w.s().state, SuggestionState::ReHandling);
    assert_eq!(
        w.s()
            .assignment(lead)
            .and_then(|a| a.deadlines.reply.as_ref())
            .map(|d| d.due),
        Some(days(42 + 30))
    );

    // A re-handled reply needs the right type.
    let wrong = w.reply(lead, ReplyClass::A, ReplyType::Initial, vec![op], days(50));
    let err = w
        .try_run(
            w.admin(w.lead),
            CommandKind::IssueReply {
                approval_chain: Default::default(),
                reply: wrong,
                commitments: vec![],
                explanation: None,
            },
        )
        .expect_err("type");
    assert!(err.to_string().contains("reply_type"), "{err}");
    let again = w.reply(
        lead,
        ReplyClass::A,
        ReplyType::ReHandled,
        vec![op],
        days(50),
    );
    w.run(
        w.admin(w.lead),
        CommandKind::IssueReply {
            approval_chain: Default::default(),
            reply: again,
            commitments: vec![],
            explanation: None,
        },
    );
    assert_eq!(w.s().state, SuggestionState::Replied);
    w.run(
        Actor::deputy(w.co_signer),
        CommandKind::RecordFeedback {
            feedback: w.feedback(w.co_signer, Satisfaction::Satisfied, days(51)),
        },
    );
    let ev = w.run(
        Actor::deputy(w.deputy),
        CommandKind::RecordFeedback {
            feedback: w.feedback(w.deputy, Satisfaction::Dissatisfied, days(52)),
        },
    );
    assert_eq!(kinds(&ev), ["FeedbackRecorded", "Evaluated", "Escalated"]);
    assert_eq!(w.s().state, SuggestionState::Escalated);
    let ev = w.run(
        w.office_actor(),
        CommandKind::ResolveEscalation {
            outcome: "consultation meeting held on 2020-05-20".into(),
            on: days(80),
        },
    );
    assert_eq!(kinds(&ev), ["EscalationResolved", "Closed"]);
    assert_eq!(w.s().feedback.iter().filter(|f| f.round == 1).count(), 2);
}

#[test]
fn an_accepted_adjustment_supersedes_and_reassigns() {
    let mut w = World::new();
    let (lead, co1, _) = w.assigned(DAY0);
    let ev = w.run(
        w.admin(w.co1),
        CommandKind::RequestAdjustment {
            assignment: co1,
            reason: "outside our remit".into(),
            suggested_agency: Some(w.other),
            on: days(3),
        },
    );
    assert_eq!(kinds(&ev), ["AdjustmentRequested"]);
    let new_id = AssignmentId::new();
    let ev = w.run(
        w.office_actor(),
        CommandKind::DecideAdjustment {
            assignment: co1,
            choice: AdjustmentChoice::Accept {
                agency: w.other,
                role: None,
                new_assignment: new_id,
            },
            on: days(5),
        },
    );
    assert_eq!(kinds(&ev), ["AdjustmentDecided", "Assigned"]);
    assert_eq!(
        w.s().assignment(co1).map(|a| a.state),
        Some(AssignmentState::Superseded)
    );
    let new = w.s().assignment(new_id).expect("new assignment");
    assert_eq!(
        (new.agency, new.role, new.replaces),
        (w.other, UnitRole::Co, Some(co1))
    );
    assert_eq!(new.assigned_on, days(5));
    // The lead's rejected request keeps its clock.
    w.run(
        w.admin(w.lead),
        CommandKind::RequestAdjustment {
            assignment: lead,
            reason: "shared remit".into(),
            suggested_agency: None,
            on: days(4),
        },
    );
    w.run(
        w.office_actor(),
        CommandKind::DecideAdjustment {
            assignment: lead,
            choice: AdjustmentChoice::Reject {
                reason: "lead remit is clear".into(),
            },
            on: days(6),
        },
    );
    let a = w.s().assignment(lead).expect("lead");
    assert_eq!(a.state, AssignmentState::Accepted);
    assert_eq!(
        a.deadlines.reply.as_ref().map(|d| d.due),
        Some(date!(2020 - 06 - 02))
    );
}

#[test]
fn extensions_move_the_reply_date_within_the_cap() {
    let mut w = World::new();
    let (lead, ..) = w.assigned(DAY0);
    let ev = w.run(
        w.admin(w.lead),
        CommandKind::RequestExtension {
            assignment: lead,
            new_due: date!(2020 - 07 - 02),
            reason: "field survey needs a month".into(),
            on: days(70),
        },
    );
    assert_eq!(kinds(&ev), ["ExtensionRequested"]);
    w.run(
        w.office_actor(),
        CommandKind::DecideExtension {
            assignment: lead,
            approve: true,
            on: date!(2020 - 05 - 20),
        },
    );
    let d = w
        .s()
        .assignment(lead)
        .and_then(|a| a.deadlines.reply.clone())
        .expect("reply deadline");
    assert_eq!(d.due, date!(2020 - 07 - 02));
    assert_eq!(
        d.explain(),
        "3 calendar months from assignment on 2020-03-02 → 2020-06-02; extension approved on 2020-05-20: moved from 2020-06-02 to 2020-07-02"
    );
}
