//! 内部审批 in the follow-up lists: the step a unit's drafted reply waits on is a deadline of
//! the unit — in the overdue list once past its due date, met once the step is decided.

use banli_domain::Actor;
use banli_domain::ids::{DivisionId, SuggestionId};
use banli_domain::suggestion::*;
use banli_suggestions::store::NewEvent;

use crate::support::*;

/// Decides `kind` as `actor` on the stored suggestion and appends its events.
async fn run(
    store: &banli_suggestions::store::Store,
    id: SuggestionId,
    actor: Actor,
    kind: CommandKind,
) {
    let s = store.load(id).await.expect("load").expect("the suggestion");
    let profile = RuleProfile::hunan();
    let rules = banli_domain::Rules {
        profile: &profile,
        calendar: Calendar::embedded(),
    };
    let cmd = Command { actor, kind };
    let events = decide(Some(&s), &cmd, &rules).expect("decided");
    let mut after = s.clone();
    for e in &events {
        after.apply(e);
    }
    let now = time::OffsetDateTime::now_utc();
    let new: Vec<NewEvent> = events
        .into_iter()
        .map(|e| NewEvent::new(e, cmd.actor.clone(), now))
        .collect();
    store
        .append(Some(&s), &after, &new)
        .await
        .expect("appended");
}

#[tokio::test]
async fn an_approval_step_past_due_is_overdue_and_met_once_decided() {
    let w = world(false).await;
    let id = SuggestionId(w.id.parse().expect("id"));
    let lead = AgencyId(w.lead.parse().expect("agency"));
    let a = AssignmentId(
        w.assigned["assignments"][0]["id"]
            .as_str()
            .expect("assignment")
            .parse()
            .expect("uuid"),
    );
    let admin = Actor::agency(Role::AgencyAdmin, lead);
    let on = date!(2020 - 03 - 02);
    let division = DivisionId::new();
    run(
        &w.store,
        id,
        admin.clone(),
        CommandKind::SignFor { assignment: a, on },
    )
    .await;
    run(
        &w.store,
        id,
        admin.clone(),
        CommandKind::Dispatch {
            assignment: a,
            division,
            handler: "Li".into(),
            responsible_leader: "Wang".into(),
            leading_official: None,
            plan: String::new(),
            unit_divisions: vec![division],
            on,
        },
    )
    .await;
    let s = w.store.load(id).await.expect("load").expect("s");
    run(
        &w.store,
        id,
        admin.clone(),
        CommandKind::RecordCommunication {
            communication: Communication {
                id: banli_domain::ids::CommunicationId::new(),
                assignment_id: a,
                phase: CommunicationPhase::During,
                method: CommunicationMethod::Visit,
                face_to_face: true,
                deputies: vec![s.details.lead_deputy],
                participants: vec![],
                summary: "scope".into(),
                on,
            },
        },
    )
    .await;
    let reply = Reply {
        id: banli_domain::ids::ReplyId::new(),
        assignment_id: a,
        reply_type: ReplyType::Initial,
        document_number: "答复〔2020〕1号".into(),
        body: "答复如下。".into(),
        class: ReplyClass::A,
        signer: Signer {
            name: "厅长".into(),
            position: SignerPosition::PrincipalHead,
        },
        references: vec![],
        countersigned_by: vec![],
        round: 0,
        on,
        consultations: vec![],
        letter: None,
        attachments: vec![],
        review_due: None,
        review: None,
        approvals: vec![],
        publication_due: None,
        publication: None,
    };
    run(
        &w.store,
        id,
        Actor::agency(Role::Handler, lead),
        CommandKind::IssueReply {
            reply,
            commitments: vec![],
            explanation: None,
            approval_chain: ApprovalChain {
                steps: vec![SignerPosition::DivisionHead],
                key_items_add_head: true,
            },
        },
    )
    .await;

    // The follow-up service consumes the events: the step is a deadline of the unit.
    let fdb = TestDb::sqlite().await;
    let store = Store::new(fdb.pool.clone());
    let profile = RuleProfile::hunan();
    let consumer = EventConsumer::new(store.clone(), profile.reminders.clone());
    store.migrate(consumer.inbox()).await.expect("migrations");
    consumer
        .handle(&events(&w.store).await)
        .await
        .expect("handled");
    let aid = a.to_string();
    let (due, _, met) = store
        .deadline(&aid, "approval_step")
        .await
        .expect("read")
        .expect("the step's deadline");
    assert!(!met);
    assert!(due > on);

    let (api, _) = banli_followup::http::api(banli_followup::app::AppState {
        documents: None,
        store: store.clone(),
        auth: test_auth(),
        profile: profile.clone(),
        clock: Clock::Fixed(due + time::Duration::days(2)),
        names: None,
    });
    let (status, v) = call(
        &api,
        "GET",
        &format!("/v1/followup/overdue?agency_id={}", w.lead),
        &format!("agency:{}", w.lead),
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert!(
        v["items"]
            .as_array()
            .is_some_and(|i| i.iter().any(|x| x["kind"] == "approval_step")),
        "the step past due is overdue: {v}"
    );

    // Decided: the step's deadline is met and leaves the list.
    let mut head = Actor::agency(Role::Leader, lead);
    head.position = Some(SignerPosition::DivisionHead);
    run(
        &w.store,
        id,
        head,
        CommandKind::DecideApprovalStep {
            assignment: a,
            step: 0,
            approve: true,
            comment: String::new(),
            on,
        },
    )
    .await;
    consumer
        .handle(&events(&w.store).await)
        .await
        .expect("handled");
    let (_, _, met) = store
        .deadline(&aid, "approval_step")
        .await
        .expect("read")
        .expect("kept");
    assert!(met, "decided: met");
    let (_, v) = call(
        &api,
        "GET",
        &format!("/v1/followup/overdue?agency_id={}", w.lead),
        &format!("agency:{}", w.lead),
        None,
    )
    .await;
    assert!(
        !v["items"]
            .as_array()
            .is_some_and(|i| i.iter().any(|x| x["kind"] == "approval_step")),
        "{v}"
    );
}
