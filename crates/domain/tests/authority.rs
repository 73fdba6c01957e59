//! Guards on who acts and what they send: signers, reply classes, withdrawal, agencies' own
//! assignments, unit role mixes, key items, feedback rounds, class changes, new calendar data.

mod support;

use banli_domain::ids::*;
use banli_domain::suggestion::*;
use banli_domain::{Actor, DomainError, Role};
use support::*;
use time::macros::date;

#[test]
fn the_signer_must_have_authority() {
    let mut w = World::new();
    let (lead, _, _, op) = ready_to_reply(&mut w);
    let mut reply = w.reply(lead, ReplyClass::A, ReplyType::Initial, vec![op], days(30));
    reply.signer.position = SignerPosition::DivisionHead;
    let err = w
        .try_run(
            w.admin(w.lead),
            CommandKind::IssueReply {
                approval_chain: Default::default(),
                reply,
                commitments: vec![],
                explanation: None,
            },
        )
        .expect_err("signer");
    assert!(
        matches!(
            err,
            DomainError::Invalid {
                field: "signer",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn class_b_needs_commitments_and_class_d_needs_the_national_scheme() {
    let mut w = World::new();
    let (lead, _, _, op) = ready_to_reply(&mut w);
    let reply = w.reply(lead, ReplyClass::B, ReplyType::Initial, vec![op], days(30));
    let err = w
        .try_run(
            w.admin(w.lead),
            CommandKind::IssueReply {
                approval_chain: Default::default(),
                reply,
                commitments: vec![],
                explanation: None,
            },
        )
        .expect_err("commitments");
    assert!(
        matches!(
            err,
            DomainError::Invalid {
                field: "commitments",
                ..
            }
        ),
        "{err}"
    );
    let reply = w.reply(lead, ReplyClass::D, ReplyType::Initial, vec![op], days(30));
    let err = w
        .try_run(
            w.admin(w.lead),
            CommandKind::IssueReply {
                approval_chain: Default::default(),
                reply,
                commitments: vec![],
                explanation: None,
            },
        )
        .expect_err("class D");
    assert!(
        err.to_string()
            .contains("D is not a class of the Abc scheme"),
        "{err}"
    );
}

#[test]
fn withdrawal_only_before_closing_and_only_by_the_lead_deputy() {
    let mut w = World::new();
    w.registered(DAY0);
    let err = w
        .try_run(
            Actor::deputy(w.co_signer),
            CommandKind::Withdraw {
                reason: "changed my mind".into(),
                on: days(1),
            },
        )
        .expect_err("co-signer");
    assert_eq!(err.code(), "forbidden");
    w.run(
        Actor::deputy(w.deputy),
        CommandKind::Withdraw {
            reason: "resolved locally".into(),
            on: days(1),
        },
    );
    let err = w
        .try_run(
            Actor::deputy(w.deputy),
            CommandKind::Withdraw {
                reason: "again".into(),
                on: days(2),
            },
        )
        .expect_err("terminal");
    assert_eq!(
        err.to_string(),
        "cannot withdraw while the suggestion is withdrawn (withdrawal is possible only before the item is closed)"
    );
}

#[test]
fn agencies_act_only_on_their_own_assignments_and_never_forward() {
    let mut w = World::new();
    let (lead, ..) = w.assigned(DAY0);
    let err = w
        .try_run(
            w.admin(w.co1),
            CommandKind::SignFor {
                assignment: lead,
                on: days(1),
            },
        )
        .expect_err("wrong agency");
    assert_eq!(err.code(), "forbidden");
    let err = w
        .try_run(
            Actor::agency(Role::Handler, w.lead),
            CommandKind::SignFor {
                assignment: lead,
                on: days(1),
            },
        )
        .expect_err("wrong role");
    assert!(
        err.to_string().starts_with("handler may not sign for"),
        "{err}"
    );
    let units = vec![UnitAssignment {
        assignment_id: AssignmentId::new(),
        agency: w.other,
        role: UnitRole::Co,
    }];
    let err = w
        .try_run(w.admin(w.lead), CommandKind::Assign { units, on: days(1) })
        .expect_err("forwarding");
    assert!(
        err.to_string().contains("only the assigning office"),
        "{err}"
    );
    let err = w
        .try_run(
            w.admin(w.lead),
            CommandKind::SignFor {
                assignment: AssignmentId::new(),
                on: days(1),
            },
        )
        .expect_err("unknown");
    assert_eq!(err.code(), "not_found");
}

#[test]
fn role_mixes_are_checked() {
    let mut w = World::new();
    w.registered(DAY0);
    let unit = |agency, role| UnitAssignment {
        assignment_id: AssignmentId::new(),
        agency,
        role,
    };
    for (units, want) in [
        (vec![unit(w.co1, UnitRole::Co)], "need a lead"),
        (
            vec![unit(w.lead, UnitRole::Lead), unit(w.co1, UnitRole::Lead)],
            "only one lead",
        ),
        (
            vec![unit(w.lead, UnitRole::Sole), unit(w.co1, UnitRole::Co)],
            "alone",
        ),
        (
            vec![
                unit(w.lead, UnitRole::Separate),
                unit(w.co1, UnitRole::Lead),
            ],
            "cannot be mixed",
        ),
        (
            vec![unit(w.lead, UnitRole::Lead), unit(w.lead, UnitRole::Co)],
            "assigned twice",
        ),
    ] {
        let err = w
            .try_run(w.office_actor(), CommandKind::Assign { units, on: DAY0 })
            .expect_err(want);
        assert!(err.to_string().contains(want), "{err}");
    }
}

#[test]
fn key_items_need_a_leading_official() {
    let mut w = World::new();
    let mut details = w.details();
    details.key_supervised = true;
    w.run(w.office_actor(), CommandKind::Submit { details, on: DAY0 });
    w.run(w.office_actor(), CommandKind::StartReview { on: DAY0 });
    w.run(
        w.office_actor(),
        CommandKind::Review {
            decision: ReviewDecision::Accept,
            reason: String::new(),
            on: DAY0,
        },
    );
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
    w.run(
        w.admin(w.lead),
        CommandKind::SignFor {
            assignment: id,
            on: DAY0,
        },
    );
    let dispatch = |lo: Option<String>| CommandKind::Dispatch {
        assignment: id,
        division: DIVISION,
        handler: "Li".into(),
        responsible_leader: "Wang".into(),
        leading_official: lo,
        plan: "plan".into(),
        unit_divisions: vec![DIVISION],
        on: DAY0,
    };
    let mut elsewhere = dispatch(Some("Director Chen".into()));
    if let CommandKind::Dispatch { unit_divisions, .. } = &mut elsewhere {
        unit_divisions.clear();
    }
    let err = w
        .try_run(w.admin(w.lead), elsewhere)
        .expect_err("not the unit's division");
    assert!(
        matches!(
            err,
            DomainError::Invalid {
                field: "division",
                ..
            }
        ),
        "{err}"
    );
    let err = w
        .try_run(w.admin(w.lead), dispatch(None))
        .expect_err("领办");
    assert!(
        matches!(
            err,
            DomainError::Invalid {
                field: "leading_official",
                ..
            }
        ),
        "{err}"
    );
    w.run(w.admin(w.lead), dispatch(Some("Director Chen".into())));
}

#[test]
fn feedback_is_once_per_deputy_per_round_and_the_window_closes_evaluation() {
    let mut w = World::new();
    let (lead, _, _, op) = ready_to_reply(&mut w);
    let reply = w.reply(lead, ReplyClass::A, ReplyType::Initial, vec![op], days(30));
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
        Actor::deputy(w.deputy),
        CommandKind::RecordFeedback {
            feedback: w.feedback(w.deputy, Satisfaction::Satisfied, days(31)),
        },
    );
    let err = w
        .try_run(
            Actor::deputy(w.deputy),
            CommandKind::RecordFeedback {
                feedback: w.feedback(w.deputy, Satisfaction::Dissatisfied, days(32)),
            },
        )
        .expect_err("twice");
    assert!(err.to_string().contains("already given feedback"), "{err}");
    let err = w
        .try_run(
            Actor::deputy(w.deputy),
            CommandKind::RecordFeedback {
                feedback: w.feedback(w.co_signer, Satisfaction::Satisfied, days(32)),
            },
        )
        .expect_err("for another");
    assert_eq!(err.code(), "forbidden");
    let due = w.s().feedback_due.as_ref().map(|d| d.due).expect("due");
    let err = w
        .try_run(
            w.office_actor(),
            CommandKind::CloseFeedbackWindow { on: due },
        )
        .expect_err("open");
    assert!(err.to_string().contains("open until"), "{err}");
    let ev = w.run(
        w.office_actor(),
        CommandKind::CloseFeedbackWindow {
            on: due + time::Duration::DAY,
        },
    );
    assert_eq!(kinds(&ev), ["Evaluated", "Closed"]);
}

#[test]
fn class_changes_keep_the_history() {
    let mut w = World::new();
    let (lead, _, _, op) = ready_to_reply(&mut w);
    let reply = w.reply(lead, ReplyClass::A, ReplyType::Initial, vec![op], days(30));
    w.run(
        w.admin(w.lead),
        CommandKind::IssueReply {
            approval_chain: Default::default(),
            reply,
            commitments: vec![],
            explanation: None,
        },
    );
    let err = w
        .try_run(
            w.admin(w.lead),
            CommandKind::ChangeClass {
                to: ReplyClass::B,
                reason: "x".into(),
                on: days(31),
            },
        )
        .expect_err("office only");
    assert_eq!(err.code(), "forbidden");
    w.run(
        w.office_actor(),
        CommandKind::ChangeClass {
            to: ReplyClass::B,
            reason: "the fund is only planned".into(),
            on: days(31),
        },
    );
    assert_eq!(w.s().current_class(), Some(ReplyClass::B));
    assert_eq!(w.s().replies[0].class, ReplyClass::A);
    assert_eq!(w.s().class_history.len(), 1);
}

#[test]
fn new_calendar_data_moves_open_deadlines_and_records_the_old_date() {
    use banli_calendar::Calendar;
    let mut w = World::new();
    w.registered(date!(2020 - 09 - 25));
    let (sole, extended) = (AssignmentId::new(), AssignmentId::new());
    let units = vec![
        UnitAssignment {
            assignment_id: sole,
            agency: w.lead,
            role: UnitRole::Separate,
        },
        UnitAssignment {
            assignment_id: extended,
            agency: w.co1,
            role: UnitRole::Separate,
        },
    ];
    w.run(
        w.office_actor(),
        CommandKind::Assign {
            units,
            on: date!(2020 - 09 - 29),
        },
    );
    w.run(
        w.admin(w.co1),
        CommandKind::RequestExtension {
            assignment: extended,
            new_due: date!(2021 - 01 - 29),
            reason: "survey".into(),
            on: date!(2020 - 10 - 12),
        },
    );
    w.run(
        w.office_actor(),
        CommandKind::DecideExtension {
            assignment: extended,
            approve: true,
            on: date!(2020 - 10 - 13),
        },
    );
    // Unchanged data: nothing to do.
    assert!(
        w.run(
            w.office_actor(),
            CommandKind::RecomputeDeadlines {
                on: date!(2020 - 09 - 30)
            }
        )
        .is_empty()
    );

    // A corrected notice withdraws the make-up Saturday 2020-10-10.
    let text = include_str!("../../calendar/data/prc-holidays.toml")
        .replace(
            r#"makeup = ["2020-09-27", "2020-10-10"]"#,
            r#"makeup = ["2020-09-27"]"#,
        )
        .replace(r#"version = "2026.1""#, r#"version = "2026.2""#);
    let cal = Calendar::from_toml_str("corrected.toml", &text).unwrap_or_else(|e| panic!("{e}"));
    let rules = banli_domain::Rules {
        profile: &w.profile,
        calendar: &cal,
    };
    let cmd = Command {
        actor: w.office_actor(),
        kind: CommandKind::RecomputeDeadlines {
            on: date!(2020 - 09 - 30),
        },
    };
    let events = decide(w.state.as_ref(), &cmd, &rules).unwrap_or_else(|e| panic!("{e}"));
    let SuggestionEvent::DeadlinesRecomputed(e) = &events[0] else {
        panic!("{events:?}")
    };
    assert_eq!(e.calendar_version, "2026.2");
    // Only the objection windows (5 working days) and first contacts (15) cross 2020-10-10;
    // the approved extension is a fixed date and stays.
    let moved: Vec<_> = e
        .changes
        .iter()
        .map(|c| (c.assignment_id, c.kind, c.old_due, c.deadline.due))
        .collect();
    assert!(
        moved.contains(&(
            Some(sole),
            DeadlineKind::Objection,
            date!(2020 - 10 - 13),
            date!(2020 - 10 - 14)
        )),
        "{moved:?}"
    );
    assert!(
        moved
            .iter()
            .all(|(id, kind, ..)| !(*id == Some(extended) && *kind == DeadlineKind::Reply)),
        "{moved:?}"
    );
    assert!(
        e.changes[0]
            .deadline
            .explain()
            .contains("was 2020-10-13 with 2026.1"),
        "{}",
        e.changes[0].deadline.explain()
    );
    w.state.as_mut().expect("state").apply(&events[0]);
    assert_eq!(
        w.s().assignment(sole).map(|a| a.deadlines.objection.due),
        Some(date!(2020 - 10 - 14))
    );
    assert_eq!(
        w.s()
            .assignment(extended)
            .and_then(|a| a.deadlines.reply.as_ref())
            .map(|d| d.due),
        Some(date!(2021 - 01 - 29))
    );
}
