//! The whole lifecycle of a co-handled suggestion, and every guard refusing.

mod support;

use banli_domain::ids::*;
use banli_domain::suggestion::*;
use banli_domain::{Actor, DomainError, Role};
use support::*;
use time::macros::date;

fn kinds(events: &[SuggestionEvent]) -> Vec<&'static str> {
    events.iter().map(|e| e.type_name()).collect()
}

/// Runs a co-handled item up to the lead's reply being possible.
fn ready_to_reply(w: &mut World) -> (AssignmentId, AssignmentId, AssignmentId, OpinionId) {
    let (lead, co1, co2) = w.assigned(DAY0);
    w.sign_and_dispatch(lead, w.lead, days(1));
    w.sign_and_dispatch(co1, w.co1, days(2));
    w.communicate(lead, w.lead, days(10), true);
    let op = w.opinion(co1, w.co1, days(20));
    w.run(
        w.office_actor(),
        CommandKind::WaiveOpinion {
            assignment: co2,
            reason: "no relevant remit".into(),
            on: days(21),
        },
    );
    (lead, co1, co2, op)
}

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
            on: days(120),
        },
    );
    w.run(
        w.admin(w.lead),
        CommandKind::ConvertCommitment {
            commitment,
            evidence: "fund regulations No. 12".into(),
            on: days(180),
        },
    );
    let sup = w.reply(
        lead,
        ReplyClass::A,
        ReplyType::Supplementary,
        vec![],
        days(181),
    );
    let ev = w.run(
        w.admin(w.lead),
        CommandKind::IssueReply {
            reply: sup,
            commitments: vec![],
            explanation: None,
        },
    );
    assert_eq!(kinds(&ev), ["ReplyIssued", "ClassChanged", "Closed"]);
    let s = w.s();
    assert_eq!(s.state, SuggestionState::Closed);
    assert_eq!(s.current_class(), Some(ReplyClass::A));
    assert!(s.class_history[0].conversion);
    assert_eq!(
        s.replies[0].class,
        ReplyClass::B,
        "the original reply is never overwritten"
    );
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

// ---- every guard refuses, naming the state and the command ----

#[test]
fn commands_in_the_wrong_state_name_state_and_command() {
    let mut w = World::new();
    let err = w
        .try_run(w.office_actor(), CommandKind::StartReview { on: DAY0 })
        .expect_err("not submitted");
    assert!(matches!(err, DomainError::NotFound { .. }), "{err}");
    let details = w.details();
    w.run(
        Actor::deputy(w.deputy),
        CommandKind::Submit { details, on: DAY0 },
    );
    let units = vec![UnitAssignment {
        assignment_id: AssignmentId::new(),
        agency: w.lead,
        role: UnitRole::Sole,
    }];
    let err = w
        .try_run(w.office_actor(), CommandKind::Assign { units, on: DAY0 })
        .expect_err("not registered");
    assert_eq!(
        err.to_string(),
        "cannot assign while the suggestion is submitted (allowed only when registered or assigned)"
    );
    assert_eq!(err.code(), "wrong_state");
    let err = w
        .try_run(
            w.office_actor(),
            CommandKind::Review {
                decision: ReviewDecision::Accept,
                reason: String::new(),
                on: DAY0,
            },
        )
        .expect_err("review first");
    assert!(
        err.to_string()
            .starts_with("cannot review while the suggestion is submitted"),
        "{err}"
    );
}

#[test]
fn the_reply_gate_needs_a_communication_with_the_lead_deputy() {
    let mut w = World::new();
    let (lead, ..) = {
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
        (id,)
    };
    w.sign_and_dispatch(lead, w.lead, days(1));
    let reply = w.reply(lead, ReplyClass::A, ReplyType::Initial, vec![], days(30));
    let err = w
        .try_run(
            w.admin(w.lead),
            CommandKind::IssueReply {
                reply: reply.clone(),
                commitments: vec![],
                explanation: None,
            },
        )
        .expect_err("gate");
    assert_eq!(err.code(), "failed_precondition");
    assert!(
        err.to_string().contains("issue a reply") && err.to_string().contains("先沟通后答复"),
        "{err}"
    );
    // A contact with only the co-signer does not open the gate.
    let communication = Communication {
        id: CommunicationId::new(),
        assignment_id: lead,
        phase: CommunicationPhase::During,
        method: CommunicationMethod::Phone,
        face_to_face: false,
        deputies: vec![w.co_signer],
        participants: vec![],
        summary: "call".into(),
        on: days(5),
    };
    w.run(
        Actor::agency(Role::Handler, w.lead),
        CommandKind::RecordCommunication { communication },
    );
    assert!(
        w.try_run(
            w.admin(w.lead),
            CommandKind::IssueReply {
                reply: reply.clone(),
                commitments: vec![],
                explanation: None
            }
        )
        .is_err()
    );
    w.communicate(lead, w.lead, days(6), false);
    w.run(
        w.admin(w.lead),
        CommandKind::IssueReply {
            reply,
            commitments: vec![],
            explanation: None,
        },
    );
    // With the profile switch off the gate is gone.
    let mut w2 = World::new();
    w2.profile.rules.communicate_before_reply = false;
    w2.registered(DAY0);
    let id = AssignmentId::new();
    w2.run(
        w2.office_actor(),
        CommandKind::Assign {
            units: vec![UnitAssignment {
                assignment_id: id,
                agency: w2.lead,
                role: UnitRole::Sole,
            }],
            on: DAY0,
        },
    );
    w2.sign_and_dispatch(id, w2.lead, days(1));
    let reply = w2.reply(id, ReplyClass::A, ReplyType::Initial, vec![], days(30));
    w2.run(
        w2.admin(w2.lead),
        CommandKind::IssueReply {
            reply,
            commitments: vec![],
            explanation: None,
        },
    );
}

#[test]
fn the_lead_waits_for_every_co_opinion_and_references_them() {
    let mut w = World::new();
    let (lead, co1, co2) = w.assigned(DAY0);
    w.sign_and_dispatch(lead, w.lead, days(1));
    w.sign_and_dispatch(co1, w.co1, days(1));
    w.communicate(lead, w.lead, days(3), false);
    let op = w.opinion(co1, w.co1, days(10));
    let reply = w.reply(lead, ReplyClass::A, ReplyType::Initial, vec![op], days(30));
    let err = w
        .try_run(
            w.admin(w.lead),
            CommandKind::IssueReply {
                reply: reply.clone(),
                commitments: vec![],
                explanation: None,
            },
        )
        .expect_err("co2 pending");
    assert!(
        err.to_string().contains(&w.co2.to_string()) && err.to_string().contains("waive"),
        "{err}"
    );
    w.run(
        w.office_actor(),
        CommandKind::WaiveOpinion {
            assignment: co2,
            reason: "not relevant".into(),
            on: days(20),
        },
    );
    let unreferenced = w.reply(lead, ReplyClass::A, ReplyType::Initial, vec![], days(30));
    let err = w
        .try_run(
            w.admin(w.lead),
            CommandKind::IssueReply {
                reply: unreferenced,
                commitments: vec![],
                explanation: None,
            },
        )
        .expect_err("references");
    assert!(
        matches!(
            err,
            DomainError::Invalid {
                field: "references",
                ..
            }
        ),
        "{err}"
    );
    // Co-handlers never reply to the deputy.
    let co_reply = w.reply(co1, ReplyClass::A, ReplyType::Initial, vec![], days(30));
    let err = w
        .try_run(
            w.admin(w.co1),
            CommandKind::IssueReply {
                reply: co_reply,
                commitments: vec![],
                explanation: None,
            },
        )
        .expect_err("co");
    assert!(
        err.to_string().contains("co-handlers send an opinion"),
        "{err}"
    );
    w.run(
        w.admin(w.lead),
        CommandKind::IssueReply {
            reply,
            commitments: vec![],
            explanation: None,
        },
    );
}

#[test]
fn a_joint_reply_is_countersigned_by_every_co_unit() {
    let mut w = World::new();
    let (lead, co1, co2) = w.assigned(DAY0);
    w.sign_and_dispatch(lead, w.lead, days(1));
    w.sign_and_dispatch(co1, w.co1, days(1));
    w.sign_and_dispatch(co2, w.co2, days(1));
    w.communicate(lead, w.lead, days(3), false);
    let o1 = w.opinion(co1, w.co1, days(10));
    let o2 = w.opinion(co2, w.co2, days(11));
    let mut joint = w.reply(
        lead,
        ReplyClass::A,
        ReplyType::Joint,
        vec![o1, o2],
        days(30),
    );
    joint.countersigned_by = vec![w.co1];
    let err = w
        .try_run(
            w.admin(w.lead),
            CommandKind::IssueReply {
                reply: joint.clone(),
                commitments: vec![],
                explanation: None,
            },
        )
        .expect_err("countersign");
    assert!(
        matches!(
            err,
            DomainError::Invalid {
                field: "countersigned_by",
                ..
            }
        ),
        "{err}"
    );
    joint.countersigned_by = vec![w.co2, w.co1];
    w.run(
        w.admin(w.lead),
        CommandKind::IssueReply {
            reply: joint,
            commitments: vec![],
            explanation: None,
        },
    );
}

#[test]
fn the_objection_window_closes_with_its_trace() {
    let mut w = World::new();
    let (_, co1, _) = w.assigned(DAY0);
    // 5 working days from 2020-03-02 → 2020-03-09; a request on the 10th is late.
    let err = w
        .try_run(
            w.admin(w.co1),
            CommandKind::RequestAdjustment {
                assignment: co1,
                reason: "not ours".into(),
                suggested_agency: None,
                on: date!(2020 - 03 - 10),
            },
        )
        .expect_err("late");
    assert_eq!(err.code(), "window_closed");
    assert_eq!(
        err.to_string(),
        "cannot request an adjustment: the window closed on 2020-03-09 (5 working days from assignment on 2020-03-02 → 2020-03-09)"
    );
}

#[test]
fn the_extension_cap_and_count_are_enforced() {
    let mut w = World::new();
    let (lead, ..) = w.assigned(DAY0);
    let err = w
        .try_run(
            w.admin(w.lead),
            CommandKind::RequestExtension {
                assignment: lead,
                new_due: date!(2020 - 09 - 03),
                reason: "long survey".into(),
                on: days(60),
            },
        )
        .expect_err("cap");
    assert_eq!(err.code(), "limit_reached");
    assert!(
        err.to_string()
            .contains("latest allowed reply date 2020-09-02"),
        "{err}"
    );
    w.run(
        w.admin(w.lead),
        CommandKind::RequestExtension {
            assignment: lead,
            new_due: date!(2020 - 09 - 02),
            reason: "long survey".into(),
            on: days(60),
        },
    );
    let err = w
        .try_run(
            w.admin(w.lead),
            CommandKind::RequestExtension {
                assignment: lead,
                new_due: date!(2020 - 08 - 02),
                reason: "again".into(),
                on: days(61),
            },
        )
        .expect_err("pending");
    assert!(err.to_string().contains("already pending"), "{err}");
    w.run(
        w.office_actor(),
        CommandKind::DecideExtension {
            assignment: lead,
            approve: true,
            on: days(62),
        },
    );
    let err = w
        .try_run(
            w.admin(w.lead),
            CommandKind::RequestExtension {
                assignment: lead,
                new_due: date!(2020 - 09 - 02),
                reason: "again".into(),
                on: days(63),
            },
        )
        .expect_err("count");
    assert!(
        err.to_string().contains("1 extension(s) already granted"),
        "{err}"
    );
}

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
