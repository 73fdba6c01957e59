//! Metric formulas over real lifecycles, and the supervision notice ladder.

mod support;

use banli_domain::ids::*;
use banli_domain::metrics::{Report, Scope};
use banli_domain::suggestion::*;
use banli_domain::supervision::{
    self, Level, NoticeCommand, NoticeState, SupervisionNotice, Trigger,
};
use banli_domain::{Actor, DomainError, Role};
use support::*;
use time::macros::date;

/// One co-handled item: lead replies on day `reply_day` (class A), co1 gives an opinion, co2 is waived.
fn replied_item(reply_day: i64, face_to_face: bool) -> World {
    let mut w = World::new();
    let (lead, co1, co2) = w.assigned(DAY0);
    w.sign_and_dispatch(lead, w.lead, days(1));
    w.sign_and_dispatch(co1, w.co1, days(1));
    w.communicate(lead, w.lead, days(5), face_to_face);
    let op = w.opinion(co1, w.co1, days(10));
    w.run(
        w.office_actor(),
        CommandKind::WaiveOpinion {
            assignment: co2,
            reason: "n/a".into(),
            on: days(11),
        },
    );
    let reply = w.reply(
        lead,
        ReplyClass::A,
        ReplyType::Initial,
        vec![op],
        days(reply_day),
    );
    w.run(
        w.admin(w.lead),
        CommandKind::IssueReply {
            approval_chain: Default::default(),
            reply,
            commitments: vec![],
            explanation: None,
        },
    );
    w
}

#[test]
fn rates_come_from_the_data_with_numerator_and_denominator() {
    let on_time = replied_item(40, true);
    let late = replied_item(120, false); // reply due 2020-06-02; day 120 is 2020-06-30
    let report = Report::compute([on_time.s(), late.s()], &Scope::default());
    assert_eq!((report.lead, report.co), (2, 4));
    // 2 lead replies + 2 co opinions in; 2 waived co-handlers never replied.
    assert_eq!(
        (report.reply_rate.numerator, report.reply_rate.denominator),
        (4, 6)
    );
    assert_eq!(
        (
            report.on_time_rate.numerator,
            report.on_time_rate.denominator
        ),
        (3, 6)
    );
    assert_eq!(
        (
            report.communication_rate.numerator,
            report.communication_rate.denominator
        ),
        (2, 2)
    );
    assert_eq!(
        (
            report.meeting_rate.numerator,
            report.meeting_rate.denominator
        ),
        (1, 2)
    );
    assert_eq!(report.meeting_rate.value(), Some(0.5));
    assert_eq!(
        (
            report.resolution_rate.numerator,
            report.resolution_rate.denominator
        ),
        (2, 2)
    );
    assert_eq!(report.satisfaction_broad.denominator, 0);
    assert_eq!(report.satisfaction_broad.value(), None);
    assert_eq!(
        report.reply_rate.definition_version,
        banli_domain::metrics::DEFINITION_VERSION
    );

    // As of before the late reply, it does not count as replied.
    let before = Report::compute(
        [late.s()],
        &Scope {
            as_of: Some(date!(2020 - 06 - 01)),
            ..Scope::default()
        },
    );
    assert_eq!(
        (before.reply_rate.numerator, before.reply_rate.denominator),
        (1, 3)
    );
    // Scoped to the lead agency of one item.
    let lead_only = Report::compute(
        [on_time.s(), late.s()],
        &Scope {
            agency: Some(on_time.lead),
            ..Scope::default()
        },
    );
    assert_eq!(
        (
            lead_only.lead,
            lead_only.co,
            lead_only.reply_rate.denominator
        ),
        (1, 0, 1)
    );
}

#[test]
fn satisfaction_counts_each_deputys_final_round() {
    let mut w = replied_item(40, true);
    w.run(
        Actor::deputy(w.deputy),
        CommandKind::RecordFeedback {
            feedback: w.feedback(w.deputy, Satisfaction::Dissatisfied, days(41)),
        },
    );
    w.run(
        Actor::deputy(w.co_signer),
        CommandKind::RecordFeedback {
            feedback: w.feedback(w.co_signer, Satisfaction::Satisfied, days(41)),
        },
    );
    let lead = w.s().assignments[0].id;
    w.communicate(lead, w.lead, days(45), true);
    let op = w.s().opinions[0].id;
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
    w.run(
        Actor::deputy(w.deputy),
        CommandKind::RecordFeedback {
            feedback: w.feedback(w.deputy, Satisfaction::BasicallySatisfied, days(51)),
        },
    );
    w.run(
        Actor::deputy(w.co_signer),
        CommandKind::RecordFeedback {
            feedback: w.feedback(w.co_signer, Satisfaction::Satisfied, days(51)),
        },
    );
    assert_eq!(w.s().state, SuggestionState::Closed);
    let r = Report::compute([w.s()], &Scope::default());
    assert_eq!(
        (
            r.satisfaction_broad.numerator,
            r.satisfaction_broad.denominator
        ),
        (2, 2)
    );
    assert_eq!(
        (
            r.satisfaction_strict.numerator,
            r.satisfaction_strict.denominator
        ),
        (1, 2)
    );
    assert_eq!(
        (
            r.satisfaction_first_round.numerator,
            r.satisfaction_first_round.denominator
        ),
        (1, 2)
    );
}

fn notice(issuer: AgencyId, target: AgencyId) -> SupervisionNotice {
    SupervisionNotice {
        response_documents: Vec::new(),
        id: NoticeId::new(),
        issuer,
        target,
        suggestions: vec![SuggestionId::new()],
        level: Level::Reminder,
        trigger: Trigger::Overdue,
        body: "The reply is overdue; reply within 5 days.".into(),
        issued_on: date!(2020 - 06 - 03),
        response_due: date!(2020 - 06 - 08),
        state: NoticeState::Issued,
        acknowledged_on: None,
        response: None,
        answered_on: None,
        answered_late: false,
        escalated_to: None,
    }
}

#[test]
fn a_notice_is_acknowledged_answered_or_escalated_up_the_ladder() {
    let (office, unit) = (AgencyId::new(), AgencyId::new());
    let office_actor = Actor::assigning_office(office);
    let n = notice(office, unit);
    let ev = supervision::decide(None, &office_actor, &NoticeCommand::Issue(n.clone()))
        .unwrap_or_else(|e| panic!("{e}"));
    let mut state = n.clone();
    state.apply(&ev[0]);

    let err = supervision::decide(
        None,
        &Actor::agency(Role::AgencyAdmin, unit),
        &NoticeCommand::Issue(notice(unit, AgencyId::new())),
    )
    .expect_err("foreign");
    assert_eq!(err.code(), "forbidden");
    let err = supervision::decide(
        Some(&state),
        &Actor::agency(Role::AgencyAdmin, AgencyId::new()),
        &NoticeCommand::Acknowledge {
            on: date!(2020 - 06 - 04),
        },
    )
    .expect_err("wrong unit");
    assert_eq!(err.code(), "forbidden");

    let ev = supervision::decide(
        Some(&state),
        &Actor::agency(Role::Handler, unit),
        &NoticeCommand::Acknowledge {
            on: date!(2020 - 06 - 04),
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    state.apply(&ev[0]);
    assert_eq!(state.state, NoticeState::Acknowledged);

    let err = supervision::decide(
        Some(&state),
        &office_actor,
        &NoticeCommand::Escalate {
            next: NoticeId::new(),
            on: date!(2020 - 06 - 08),
        },
    )
    .expect_err("not yet due");
    assert!(matches!(err, DomainError::Precondition { .. }), "{err}");
    let next = NoticeId::new();
    let ev = supervision::decide(
        Some(&state),
        &office_actor,
        &NoticeCommand::Escalate {
            next,
            on: date!(2020 - 06 - 09),
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    state.apply(&ev[0]);
    assert_eq!(state.state, NoticeState::Escalated);
    let up = state
        .escalated(next, date!(2020 - 06 - 09))
        .expect("a next level");
    assert_eq!(
        (up.level, up.trigger, up.response_due),
        (Level::Notice, Trigger::Escalation, date!(2020 - 06 - 14))
    );

    // An answer after escalation is recorded as late, not refused; the notice stays escalated.
    let ev = supervision::decide(
        Some(&state),
        &Actor::agency(Role::Leader, unit),
        &NoticeCommand::Answer {
            documents: Vec::new(),
            response: "late".into(),
            on: date!(2020 - 06 - 10),
        },
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        matches!(ev[0], supervision::NoticeEvent::Answered { late: true, .. }),
        "{ev:?}"
    );
    state.apply(&ev[0]);
    assert_eq!(state.state, NoticeState::Escalated);
    assert!(state.answered_late);
    assert_eq!(state.response.as_deref(), Some("late"));
    assert_eq!(Level::AssessmentDeduction.next(), None);
}
