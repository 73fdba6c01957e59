//! 内部审批: a unit's reply goes through its approval chain — each step decided by a key of the
//! step's position — and is issued only when the chain completes; a return sends the draft back.

mod support;

use banli_domain::ids::*;
use banli_domain::suggestion::*;
use banli_domain::{Actor, DomainError, Role};
use support::*;

/// A sole unit's item, ready to reply, whose unit signs replies off division head → head.
fn world(key_supervised: bool) -> (World, AssignmentId) {
    let mut w = World::new();
    w.chain = ApprovalChain {
        steps: vec![
            SignerPosition::DivisionHead,
            SignerPosition::AuthorizedLeader,
        ],
        key_items_add_head: true,
    };
    let mut details = w.details();
    details.key_supervised = key_supervised;
    let office = w.office_actor();
    w.run(
        Actor::deputy(w.deputy),
        CommandKind::Submit { details, on: DAY0 },
    );
    w.run(office.clone(), CommandKind::StartReview { on: DAY0 });
    w.run(
        office.clone(),
        CommandKind::Review {
            decision: ReviewDecision::Accept,
            reason: String::new(),
            on: DAY0,
        },
    );
    let id = AssignmentId::new();
    w.run(
        office,
        CommandKind::Assign {
            units: vec![UnitAssignment {
                assignment_id: id,
                agency: w.lead,
                role: UnitRole::Sole,
            }],
            on: DAY0,
        },
    );
    let dispatch = CommandKind::Dispatch {
        assignment: id,
        division: DIVISION,
        handler: "handler".into(),
        responsible_leader: "leader".into(),
        leading_official: Some("principal".into()),
        plan: "plan".into(),
        unit_divisions: vec![DIVISION],
        on: days(1),
    };
    w.run(
        w.admin(w.lead),
        CommandKind::SignFor {
            assignment: id,
            on: days(1),
        },
    );
    w.run(w.admin(w.lead), dispatch);
    w.communicate(id, w.lead, days(2), true);
    (w, id)
}

fn draft(
    w: &mut World,
    a: AssignmentId,
    on: time::Date,
) -> Result<Vec<SuggestionEvent>, DomainError> {
    let reply = w.reply(a, ReplyClass::A, ReplyType::Initial, vec![], on);
    let chain = w.chain.clone();
    w.try_run(
        // A handler drafts: with a chain, the unit's staff submit the draft.
        Actor::agency(Role::Handler, w.lead),
        CommandKind::IssueReply {
            reply,
            commitments: vec![],
            explanation: None,
            approval_chain: chain,
        },
    )
}

fn holder(agency: AgencyId, position: Option<SignerPosition>) -> Actor {
    let mut a = Actor::agency(Role::Leader, agency);
    a.position = position;
    a
}

fn decide_step(
    w: &mut World,
    actor: Actor,
    a: AssignmentId,
    step: u32,
    approve: bool,
    comment: &str,
    on: time::Date,
) -> Result<Vec<SuggestionEvent>, DomainError> {
    w.try_run(
        actor,
        CommandKind::DecideApprovalStep {
            assignment: a,
            step,
            approve,
            comment: comment.into(),
            on,
        },
    )
}

#[test]
fn a_reply_is_issued_only_when_the_chain_completes() {
    let (mut w, a) = world(false);
    let events = draft(&mut w, a, days(20)).expect("drafted");
    assert_eq!(kinds(&events), ["ReplySubmittedForApproval"]);
    let s = w.s();
    assert!(s.replies.is_empty(), "nothing is issued yet");
    assert_eq!(s.state, SuggestionState::Assigned);
    let x = s.assignment(a).expect("assignment");
    assert_eq!(x.state, AssignmentState::InReview);
    let approval = x.approval.as_ref().expect("in review");
    assert_eq!(approval.current(), Some(0));
    assert_eq!(approval.steps.len(), 2);
    let first_due = approval.steps[0].due.as_ref().expect("first step due").due;
    assert!(first_due > days(20));
    assert!(approval.steps[1].due.is_none());

    // A second draft while one is in review: the assignment is not in handling.
    let again = draft(&mut w, a, days(20)).expect_err("one draft at a time");
    assert_eq!(again.code(), "wrong_state");

    let lead = w.lead;
    // The step owed shows with the unit's deadlines (the follow-up lists and their reminders).
    let owed: Vec<_> = banli_domain::followup::deadlines_of(w.s())
        .into_iter()
        .filter(|d| d.kind == banli_domain::followup::DeadlineKind::ApprovalStep)
        .map(|d| (d.due, d.met))
        .collect();
    assert_eq!(owed, [(first_due, false)]);
    let events = decide_step(
        &mut w,
        holder(lead, Some(SignerPosition::DivisionHead)),
        a,
        0,
        true,
        "",
        days(21),
    )
    .expect("step 0");
    assert_eq!(kinds(&events), ["ApprovalStepDecided"]);
    let x = w.s().assignment(a).expect("a");
    let approval = x.approval.as_ref().expect("still in review");
    assert_eq!(approval.current(), Some(1));
    assert!(
        approval.steps[1].due.is_some(),
        "the next step's due date is set"
    );

    let events = decide_step(
        &mut w,
        holder(lead, Some(SignerPosition::AuthorizedLeader)),
        a,
        1,
        true,
        "同意",
        days(22),
    )
    .expect("step 1");
    assert_eq!(
        kinds(&events),
        ["ApprovalStepDecided", "ReplyIssued", "Replied"]
    );
    let s = w.s();
    assert_eq!(s.state, SuggestionState::Replied);
    let x = s.assignment(a).expect("a");
    assert_eq!(x.state, AssignmentState::Replied);
    assert!(x.approval.is_none());
    assert!(
        !banli_domain::followup::deadlines_of(s)
            .iter()
            .any(|d| d.kind == banli_domain::followup::DeadlineKind::ApprovalStep),
        "no step is owed once the chain completed"
    );
    let reply = &s.replies[0];
    assert_eq!(reply.on, days(22), "issued the day the chain completed");
    let decided: Vec<_> = reply
        .approvals
        .iter()
        .map(|st| {
            (
                st.position,
                st.decision.as_ref().map(|d| (d.approved, d.on)),
            )
        })
        .collect();
    assert_eq!(
        decided,
        [
            (SignerPosition::DivisionHead, Some((true, days(21)))),
            (SignerPosition::AuthorizedLeader, Some((true, days(22)))),
        ]
    );
}

#[test]
fn only_the_current_steps_position_decides_and_only_once() {
    let (mut w, a) = world(false);
    draft(&mut w, a, days(20)).expect("drafted");
    let lead = w.lead;
    let other = w.other;
    // No position, another position, another agency: 403.
    for actor in [
        holder(lead, None),
        holder(lead, Some(SignerPosition::AuthorizedLeader)),
        holder(other, Some(SignerPosition::DivisionHead)),
        Actor::assigning_office(w.office),
        Actor::deputy(w.deputy),
    ] {
        let e = decide_step(&mut w, actor.clone(), a, 0, true, "", days(21)).expect_err("refused");
        assert_eq!(e.code(), "forbidden", "{actor:?}: {e}");
    }
    // A later step before its turn: 409.
    let e = decide_step(
        &mut w,
        holder(lead, Some(SignerPosition::AuthorizedLeader)),
        a,
        1,
        true,
        "",
        days(21),
    )
    .expect_err("not yet");
    assert_eq!(e.code(), "wrong_state");
    // A step that does not exist: 404.
    let e = decide_step(
        &mut w,
        holder(lead, Some(SignerPosition::DivisionHead)),
        a,
        7,
        true,
        "",
        days(21),
    )
    .expect_err("no step 7");
    assert_eq!(e.code(), "not_found");
    decide_step(
        &mut w,
        holder(lead, Some(SignerPosition::DivisionHead)),
        a,
        0,
        true,
        "",
        days(21),
    )
    .expect("step 0");
    // A second decision on step 0, even by its own position: 409, and nothing changes.
    let before = w.s().clone();
    let e = decide_step(
        &mut w,
        holder(lead, Some(SignerPosition::DivisionHead)),
        a,
        0,
        false,
        "no",
        days(21),
    )
    .expect_err("decided already");
    assert_eq!(e.code(), "wrong_state");
    assert!(e.to_string().contains("decided on"), "{e}");
    assert_eq!(w.s(), &before);
}

#[test]
fn a_return_sends_the_draft_back_with_its_comment() {
    let (mut w, a) = world(false);
    draft(&mut w, a, days(20)).expect("drafted");
    let lead = w.lead;
    let e = decide_step(
        &mut w,
        holder(lead, Some(SignerPosition::DivisionHead)),
        a,
        0,
        false,
        "  ",
        days(21),
    )
    .expect_err("a return says why");
    assert_eq!(e.code(), "invalid_argument");
    let events = decide_step(
        &mut w,
        holder(lead, Some(SignerPosition::DivisionHead)),
        a,
        0,
        false,
        "措施不具体",
        days(21),
    )
    .expect("returned");
    let SuggestionEvent::ApprovalStepDecided(d) = &events[0] else {
        panic!("{events:?}")
    };
    assert!(!d.decision.approved);
    assert_eq!(d.decision.comment, "措施不具体");
    let x = w.s().assignment(a).expect("a");
    assert_eq!(x.state, AssignmentState::InHandling);
    assert!(x.approval.is_none());
    assert!(w.s().replies.is_empty());
    // Redrafted, it starts the chain again from the first step.
    draft(&mut w, a, days(23)).expect("redrafted");
    let x = w.s().assignment(a).expect("a");
    assert_eq!(x.approval.as_ref().and_then(|x| x.current()), Some(0));
}

#[test]
fn key_items_add_the_principal_head_and_the_gate_is_checked_again() {
    let (mut w, a) = world(true);
    draft(&mut w, a, days(20)).expect("drafted");
    let steps: Vec<_> = w
        .s()
        .assignment(a)
        .expect("a")
        .approval
        .as_ref()
        .expect("x")
        .steps
        .iter()
        .map(|s| s.position)
        .collect();
    assert_eq!(
        steps,
        [
            SignerPosition::DivisionHead,
            SignerPosition::AuthorizedLeader,
            SignerPosition::PrincipalHead
        ]
    );
    let lead = w.lead;
    decide_step(
        &mut w,
        holder(lead, Some(SignerPosition::DivisionHead)),
        a,
        0,
        true,
        "",
        days(21),
    )
    .expect("0");
    decide_step(
        &mut w,
        holder(lead, Some(SignerPosition::AuthorizedLeader)),
        a,
        1,
        true,
        "",
        days(22),
    )
    .expect("1");
    // The deputy withdraws while the draft waits for the head: the last approval issues
    // nothing, and the refusal says why.
    w.run(
        Actor::deputy(w.deputy),
        CommandKind::Withdraw {
            reason: "resolved otherwise".into(),
            on: days(23),
        },
    );
    let before = w.s().clone();
    let e = decide_step(
        &mut w,
        holder(lead, Some(SignerPosition::PrincipalHead)),
        a,
        2,
        true,
        "",
        days(24),
    )
    .expect_err("the item is withdrawn");
    assert_eq!(e.code(), "wrong_state");
    assert_eq!(w.s(), &before);
}

#[test]
fn chains_are_checked() {
    let bad = [
        vec![SignerPosition::Staff],
        vec![SignerPosition::DivisionHead, SignerPosition::DivisionHead],
        vec![SignerPosition::DivisionHead; 7],
    ];
    for steps in bad {
        let c = ApprovalChain {
            steps,
            key_items_add_head: true,
        };
        assert!(c.validate().is_err(), "{c:?}");
    }
    let ok = ApprovalChain {
        steps: vec![SignerPosition::PrincipalHead, SignerPosition::DivisionHead],
        key_items_add_head: true,
    };
    ok.validate().expect("valid");
    // The head moves last for a key item; an empty chain stays empty.
    assert_eq!(
        ok.steps_for(true),
        [SignerPosition::DivisionHead, SignerPosition::PrincipalHead]
    );
    assert_eq!(ok.steps_for(false), ok.steps);
    assert!(ApprovalChain::default().steps_for(true).is_empty());
}
