//! Coordination decided against a suggestion: mirrored commands produce the same suggestion
//! events the suggestions service will record; countersign only of a joint reply and only by a
//! co-unit's admin or leader, once; disagreements recorded by their unit, escalated, decided by
//! the office; the lead's reply copied to every co-handler once.

mod support;

use banli_domain::coordination::*;
use banli_domain::ids::*;
use banli_domain::suggestion::*;
use banli_domain::{Actor, DomainError, Role};
use support::*;

fn decide(
    w: &World,
    case: &CoordinationCase,
    actor: &Actor,
    cmd: CoordinationCommand,
) -> Result<Decision, DomainError> {
    decide_coordination(w.s(), case, actor, &cmd, &w.rules())
}

fn signer() -> Signer {
    Signer {
        name: "Deputy Director Zhao".into(),
        position: SignerPosition::AuthorizedLeader,
    }
}

#[test]
fn a_mirrored_command_yields_the_suggestion_events_it_will_cause() {
    let mut w = World::new();
    let (lead, _, _) = w.assigned(DAY0);
    let case = CoordinationCase::default();
    let d = decide(
        &w,
        &case,
        &w.admin(w.lead),
        CoordinationCommand::SignFor {
            assignment: lead,
            on: days(1),
        },
    )
    .expect("the lead signs for");
    assert_eq!(
        d.events,
        vec![CoordinationEvent::SignedFor {
            assignment_id: lead,
            on: days(1)
        }]
    );
    assert!(
        matches!(d.effects.as_slice(), [SuggestionEvent::SignedFor(s)] if s.assignment_id == lead)
    );
    // The event names the same command the suggestions service applies.
    assert_eq!(
        d.events[0].mirrored(),
        Some(CommandKind::SignFor {
            assignment: lead,
            on: days(1)
        })
    );
    // Another unit's admin: refused by the suggestion's own guard.
    let err = decide(
        &w,
        &case,
        &w.admin(w.co1),
        CoordinationCommand::SignFor {
            assignment: lead,
            on: days(1),
        },
    )
    .expect_err("not its assignment");
    assert!(matches!(err, DomainError::Forbidden { .. }), "{err}");
}

#[test]
fn countersign_is_for_a_joint_reply_by_a_co_unit_once() {
    let mut w = World::new();
    let (lead, co1, co2) = w.assigned(DAY0);
    for (a, agency) in [(lead, w.lead), (co1, w.co1), (co2, w.co2)] {
        w.sign_and_dispatch(a, agency, days(1));
    }
    w.communicate(lead, w.lead, days(2), true);
    let o1 = w.opinion(co1, w.co1, days(3));
    let o2 = w.opinion(co2, w.co2, days(3));
    let mut reply = w.reply(lead, ReplyClass::A, ReplyType::Joint, vec![o1, o2], days(5));
    // The lead names the co-units on the joint letter; each confirms its own countersignature.
    reply.countersigned_by = vec![w.co1, w.co2];
    let reply_id = reply.id;
    w.run(
        w.admin(w.lead),
        CommandKind::IssueReply {
            approval_chain: Default::default(),
            reply,
            commitments: vec![],
            explanation: None,
        },
    );
    let mut case = CoordinationCase::default();
    let sign = |r: ReplyId| CoordinationCommand::Countersign {
        reply: r,
        signer: signer(),
        on: days(6),
    };
    // The lead is not a co-unit; a handler may not sign for its unit.
    assert!(matches!(
        decide(&w, &case, &w.admin(w.lead), sign(reply_id)),
        Err(DomainError::Forbidden { .. })
    ));
    let handler = Actor::agency(Role::Handler, w.co1);
    assert!(matches!(
        decide(&w, &case, &handler, sign(reply_id)),
        Err(DomainError::Forbidden { .. })
    ));
    assert!(matches!(
        decide(&w, &case, &w.admin(w.co1), sign(ReplyId::new())),
        Err(DomainError::NotFound { .. })
    ));
    let d = decide(&w, &case, &w.admin(w.co1), sign(reply_id)).expect("co1 countersigns");
    for e in &d.events {
        case.apply(e);
    }
    assert_eq!(case.countersignatures.len(), 1);
    assert_eq!(case.countersignatures[0].agency, w.co1);
    // Once per unit.
    assert!(matches!(
        decide(&w, &case, &w.admin(w.co1), sign(reply_id)),
        Err(DomainError::Invalid { .. })
    ));
    // The copies: one per co-handler, once.
    let issued = w
        .events
        .iter()
        .rev()
        .find(|e| matches!(e, SuggestionEvent::ReplyIssued(_)))
        .expect("issued")
        .clone();
    let copies = copies_for(w.s(), &case, &issued);
    assert_eq!(copies.len(), 2);
    for c in &copies {
        case.apply(c);
    }
    assert!(copies_for(w.s(), &case, &issued).is_empty(), "copied once");
}

#[test]
fn a_plain_reply_is_not_countersigned_and_only_the_lead_reply_is_copied() {
    let mut w = World::new();
    let (lead, co1, co2) = w.assigned(DAY0);
    for (a, agency) in [(lead, w.lead), (co1, w.co1), (co2, w.co2)] {
        w.sign_and_dispatch(a, agency, days(1));
    }
    w.communicate(lead, w.lead, days(2), true);
    let o1 = w.opinion(co1, w.co1, days(3));
    let o2 = w.opinion(co2, w.co2, days(3));
    let reply = w.reply(
        lead,
        ReplyClass::A,
        ReplyType::Initial,
        vec![o1, o2],
        days(5),
    );
    let reply_id = reply.id;
    w.run(
        w.admin(w.lead),
        CommandKind::IssueReply {
            approval_chain: Default::default(),
            reply,
            commitments: vec![],
            explanation: None,
        },
    );
    let case = CoordinationCase::default();
    let err = decide(
        &w,
        &case,
        &w.admin(w.co1),
        CoordinationCommand::Countersign {
            reply: reply_id,
            signer: signer(),
            on: days(6),
        },
    )
    .expect_err("not joint");
    assert!(matches!(err, DomainError::Invalid { .. }), "{err}");
    // Events other than a reply copy nothing.
    let other = SuggestionEvent::Closed(Closed { on: days(7) });
    assert!(copies_for(w.s(), &case, &other).is_empty());
}

#[test]
fn disagreements_are_recorded_by_their_unit_escalated_and_decided_by_the_office() {
    let mut w = World::new();
    let (_, co1, _) = w.assigned(DAY0);
    let mut case = CoordinationCase::default();
    let id = DisagreementId::new();
    let record = |statement: &str| CoordinationCommand::RecordDisagreement {
        id,
        assignment: co1,
        statement: statement.into(),
        escalate: false,
        on: days(2),
    };
    assert!(matches!(
        decide(&w, &case, &w.admin(w.lead), record("x")),
        Err(DomainError::Forbidden { .. })
    ));
    assert!(matches!(
        decide(&w, &case, &w.admin(w.co1), record(" ")),
        Err(DomainError::Invalid { .. })
    ));
    for e in decide(
        &w,
        &case,
        &w.admin(w.co1),
        record("the plan leaves out the fund"),
    )
    .expect("recorded")
    .events
    {
        case.apply(&e);
    }
    let escalate = CoordinationCommand::EscalateDisagreement { id, on: days(3) };
    assert!(matches!(
        decide(&w, &case, &w.admin(w.other), escalate.clone()),
        Err(DomainError::Forbidden { .. })
    ));
    for e in decide(&w, &case, &w.admin(w.co1), escalate.clone())
        .expect("escalated")
        .events
    {
        case.apply(&e);
    }
    assert_eq!(case.disagreements[0].escalated_on, Some(days(3)));
    assert!(matches!(
        decide(&w, &case, &w.admin(w.co1), escalate),
        Err(DomainError::WrongState { .. })
    ));
    let resolve = CoordinationCommand::ResolveDisagreement {
        id,
        resolution: "the lead adds the fund".into(),
        on: days(4),
    };
    assert!(matches!(
        decide(&w, &case, &w.admin(w.co1), resolve.clone()),
        Err(DomainError::Forbidden { .. })
    ));
    for e in decide(&w, &case, &w.office_actor(), resolve.clone())
        .expect("resolved")
        .events
    {
        case.apply(&e);
    }
    assert_eq!(case.disagreements[0].resolved_on, Some(days(4)));
    assert!(matches!(
        decide(&w, &case, &w.office_actor(), resolve),
        Err(DomainError::WrongState { .. })
    ));
    assert_eq!(case.version, 3);
}
