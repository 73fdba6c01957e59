//! 公开答复: replies published after the profile's delay (or by the office), redacted, never for
//! confidential items or `none` disclosure, withdrawn by the office with a reason.

mod support;

use banli_domain::ids::*;
use banli_domain::suggestion::*;
use banli_domain::{Actor, DomainError};
use support::*;

/// A sole unit's item replied to on day 20, with `details` changed by `f`.
fn replied(f: impl FnOnce(&mut SuggestionDetails)) -> (World, ReplyId) {
    let mut w = World::new();
    let mut details = w.details();
    details.title = "关于支持王小明等企业数字化改造的建议".into();
    f(&mut details);
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
    let a = AssignmentId::new();
    w.run(
        office,
        CommandKind::Assign {
            units: vec![UnitAssignment {
                assignment_id: a,
                agency: w.lead,
                role: UnitRole::Sole,
            }],
            on: DAY0,
        },
    );
    w.sign_and_dispatch(a, w.lead, days(1));
    w.communicate(a, w.lead, days(2), true);
    let mut reply = w.reply(a, ReplyClass::A, ReplyType::Initial, vec![], days(20));
    reply.body =
        "王小明代表：您的建议收悉。联系人张处长，电话13812345678，邮箱zhang@example.gov.cn。"
            .into();
    let id = reply.id;
    w.run(
        w.admin(w.lead),
        CommandKind::IssueReply {
            reply,
            commitments: vec![],
            explanation: None,
            approval_chain: Default::default(),
        },
    );
    (w, id)
}

fn names() -> Vec<String> {
    vec!["王小明".into()]
}

fn publish(
    w: &mut World,
    id: ReplyId,
    on: time::Date,
) -> Result<Vec<SuggestionEvent>, DomainError> {
    w.try_run(
        w.office_actor(),
        CommandKind::PublishReply {
            reply: id,
            names: names(),
            on,
        },
    )
}

#[test]
fn a_reply_is_published_redacted_when_its_date_passes() {
    let (mut w, id) = replied(|_| {});
    let due = w.s().replies[0]
        .publication_due
        .as_ref()
        .expect("publication due")
        .due;
    assert!(
        due > days(20) + time::Duration::days(20),
        "20 working days: {due}"
    );
    let sweep = |w: &mut World, on| {
        w.try_run(
            w.office_actor(),
            CommandKind::PublishDueReplies { names: names(), on },
        )
        .expect("the sweep")
    };
    assert!(
        sweep(&mut w, due).is_empty(),
        "not before the date has passed"
    );
    let events = sweep(&mut w, due + time::Duration::days(1));
    let [SuggestionEvent::ReplyPublished(p)] = events.as_slice() else {
        panic!("{events:?}")
    };
    assert!(p.publication.automatic);
    let body = p.publication.body.as_deref().expect("full disclosure");
    assert_eq!(
        body,
        "×××代表：您的建议收悉。联系人张处长，电话[电话]，邮箱[邮箱]。"
    );
    assert_eq!(p.publication.title, "关于支持×××等企业数字化改造的建议");
    assert_eq!(p.publication.redactions, 4);
    assert!(
        sweep(&mut w, due + time::Duration::days(2)).is_empty(),
        "once"
    );
    let _ = id;
}

#[test]
fn the_office_publishes_withdraws_and_may_publish_again() {
    let (mut w, id) = replied(|_| {});
    let e = w
        .try_run(
            Actor::agency(banli_domain::Role::AgencyAdmin, w.lead),
            CommandKind::PublishReply {
                reply: id,
                names: names(),
                on: days(21),
            },
        )
        .expect_err("the office publishes");
    assert_eq!(e.code(), "forbidden");
    let e = publish(&mut w, ReplyId::new(), days(21)).expect_err("unknown reply");
    assert_eq!(e.code(), "not_found");
    let events = publish(&mut w, id, days(21)).expect("published");
    assert!(matches!(&events[0], SuggestionEvent::ReplyPublished(p) if !p.publication.automatic));
    let e = publish(&mut w, id, days(22)).expect_err("published already");
    assert_eq!(e.code(), "wrong_state");
    let withdraw = |w: &mut World, reason: &str| {
        w.try_run(
            w.office_actor(),
            CommandKind::WithdrawPublication {
                reply: id,
                reason: reason.into(),
                on: days(23),
            },
        )
    };
    assert_eq!(
        withdraw(&mut w, " ").expect_err("a reason").code(),
        "invalid_argument"
    );
    withdraw(&mut w, "正文含未隐去的企业联系人").expect("withdrawn");
    assert_eq!(
        withdraw(&mut w, "again").expect_err("once").code(),
        "wrong_state"
    );
    let p = w.s().replies[0]
        .publication
        .as_ref()
        .expect("kept in the record");
    assert!(p.withdrawn.is_some());
    // The platform does not publish a withdrawn reply again; the office may.
    let events = w
        .try_run(
            w.office_actor(),
            CommandKind::PublishDueReplies {
                names: names(),
                on: days(200),
            },
        )
        .expect("sweep");
    assert!(events.is_empty());
    publish(&mut w, id, days(201)).expect("published again by the office");
}

#[test]
fn confidential_items_and_none_disclosure_are_never_published_and_summary_withholds_the_text() {
    let (mut w, id) = replied(|d| d.confidential = true);
    assert!(w.s().replies[0].publication_due.is_none());
    let e = publish(&mut w, id, days(21)).expect_err("confidential");
    assert_eq!(e.code(), "invalid_argument");
    assert!(e.to_string().contains("confidential"), "{e}");

    let (mut w, id) = replied(|d| d.disclosure = Disclosure::None);
    assert!(w.s().replies[0].publication_due.is_none());
    assert_eq!(
        publish(&mut w, id, days(21)).expect_err("none").code(),
        "invalid_argument"
    );

    let (mut w, id) = replied(|d| d.disclosure = Disclosure::Summary);
    let events = publish(&mut w, id, days(21)).expect("summary");
    let SuggestionEvent::ReplyPublished(p) = &events[0] else {
        panic!("{events:?}")
    };
    assert!(p.publication.body.is_none(), "the text is withheld");
    assert_eq!(p.publication.title, "关于支持×××等企业数字化改造的建议");
}

#[test]
fn a_profile_without_publication_sets_no_date() {
    let mut w = World::new();
    w.profile.rules.publish_replies = false;
    let (lead, _, _, _) = ready_to_reply(&mut w);
    let _ = lead;
    // (The item is replied to below by the shared helper's lead.)
    let reply = w.reply(
        lead,
        ReplyClass::A,
        ReplyType::Initial,
        w.s().opinions.iter().map(|o| o.id).collect(),
        days(40),
    );
    w.run(
        w.admin(w.lead),
        CommandKind::IssueReply {
            reply,
            commitments: vec![],
            explanation: None,
            approval_chain: Default::default(),
        },
    );
    assert!(w.s().replies[0].publication_due.is_none());
}
