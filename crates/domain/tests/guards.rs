//! Every guard of the suggestion lifecycle refuses, naming the state and the command: states,
//! the reply gate, co-opinions, countersignatures, the objection window, extensions. Who may
//! act and what a reply must carry are in `authority.rs`.

mod support;

use banli_domain::ids::*;
use banli_domain::suggestion::*;
use banli_domain::{Actor, DomainError, Role};
use support::*;
use time::macros::date;

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
                approval_chain: Default::default(),
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
                approval_chain: Default::default(),
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
            approval_chain: Default::default(),
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
            approval_chain: Default::default(),
            reply,
            commitments: vec![],
            explanation: None,
        },
    );
}

#[test]
fn a_reply_of_the_profiles_kinds_comes_with_its_signed_letter() {
    let mut w = World::new();
    w.profile.rules.signed_letter_for = vec![ReplyType::Initial];
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
    w.communicate(id, w.lead, days(2), false);
    let mut reply = w.reply(id, ReplyClass::A, ReplyType::Initial, vec![], days(30));
    let err = w
        .try_run(
            w.admin(w.lead),
            CommandKind::IssueReply {
                approval_chain: Default::default(),
                reply: reply.clone(),
                commitments: vec![],
                explanation: None,
            },
        )
        .expect_err("no letter");
    assert_eq!(err.code(), "invalid_argument");
    assert!(
        err.to_string().contains("letter") && err.to_string().contains("答复函"),
        "{err}"
    );
    let letter = banli_domain::document::DocumentRef {
        sha256: "ab".repeat(32),
        media_type: "application/pdf".into(),
        size: 1234,
        name: "答复函.pdf".into(),
    };
    reply.letter = Some(letter.clone());
    w.run(
        w.admin(w.lead),
        CommandKind::IssueReply {
            approval_chain: Default::default(),
            reply,
            commitments: vec![],
            explanation: None,
        },
    );
    assert_eq!(w.s().replies[0].letter.as_ref(), Some(&letter));
    // The reply event carries the hash (what the audit record proves).
    let issued = w
        .events
        .iter()
        .find(|e| matches!(e, SuggestionEvent::ReplyIssued(_)))
        .expect("reply issued");
    let json = serde_json::to_string(issued).expect("json");
    assert!(json.contains(&"ab".repeat(32)), "{json}");
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
                approval_chain: Default::default(),
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
                approval_chain: Default::default(),
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
                approval_chain: Default::default(),
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
            approval_chain: Default::default(),
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
                approval_chain: Default::default(),
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
            approval_chain: Default::default(),
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

/// 会办意见简单拼凑: an opinion with neither measures nor a reason is flagged or refused as the
/// profile says; measures become the co-unit's commitments; a consultation is among units.
#[test]
fn co_handling_opinions_carry_substance_under_the_profile() {
    use banli_domain::suggestion::OpinionSubstance;

    let bare = |_: &World, a: AssignmentId, on| CoHandlingOpinion {
        attachments: Vec::new(),
        letter: None,
        id: OpinionId::new(),
        assignment_id: a,
        document_number: "会办〔2020〕1号".into(),
        body: "同意主办单位意见，并在职责范围内予以支持。".into(),
        signer: Signer {
            name: "Zhao".into(),
            position: SignerPosition::AuthorizedLeader,
        },
        on,
        acknowledged_on: None,
        measures: vec![],
        no_measure_reason: None,
        consultations: vec![],
        flagged: false,
    };
    for (setting, accepted, flagged) in [
        (OpinionSubstance::Off, true, false),
        (OpinionSubstance::Flag, true, true),
        (OpinionSubstance::Refuse, false, false),
    ] {
        let mut w = World::new();
        w.profile.rules.opinion_substance = setting;
        let (_, co1, _) = w.assigned(days(0));
        w.sign_and_dispatch(co1, w.co1, days(1));
        let o = bare(&w, co1, days(5));
        let r = w.try_run(w.admin(w.co1), CommandKind::SubmitOpinion { opinion: o });
        match r {
            Ok(_) => {
                assert!(accepted, "{setting:?} accepted a bare opinion");
                assert_eq!(w.s().opinions[0].flagged, flagged, "{setting:?}");
            }
            Err(e) => {
                assert!(!accepted, "{setting:?}: {e}");
                assert_eq!(e.code(), "invalid_argument");
                assert!(e.to_string().contains("no_measure_reason"), "{e}");
            }
        }
    }

    let mut w = World::new();
    w.profile.rules.opinion_substance = OpinionSubstance::Refuse;
    let (lead, co1, co2) = w.assigned(days(0));
    w.sign_and_dispatch(lead, w.lead, days(1));
    w.sign_and_dispatch(co1, w.co1, days(1));
    w.sign_and_dispatch(co2, w.co2, days(1));
    // A consultation: convened by the lead (a co-unit may not), among units of the item.
    let meeting = |agencies: Vec<AgencyId>| Consultation {
        documents: Vec::new(),
        id: ConsultationId::new(),
        convened_by: AgencyId::new(),
        agencies,
        deputies: vec![],
        attendees: vec!["陈处长".into()],
        subject: "融资".into(),
        minutes: "明确分工".into(),
        on: days(3),
    };
    let err = w
        .try_run(
            w.admin(w.co1),
            CommandKind::RecordConsultation {
                consultation: meeting(vec![w.lead]),
            },
        )
        .expect_err("a co-unit does not convene");
    assert_eq!(err.code(), "forbidden", "{err}");
    let err = w
        .try_run(
            w.admin(w.lead),
            CommandKind::RecordConsultation {
                consultation: meeting(vec![w.other]),
            },
        )
        .expect_err("a unit not on the item");
    assert_eq!(err.code(), "not_found", "{err}");
    let c = meeting(vec![w.co1, w.co2]);
    let cid = c.id;
    w.run(
        w.admin(w.lead),
        CommandKind::RecordConsultation { consultation: c },
    );
    let recorded = &w.s().consultations[0];
    assert_eq!(recorded.convened_by, w.lead, "the convener from the caller");
    assert_eq!(recorded.agencies, vec![w.lead, w.co1, w.co2]);

    // Measures: each the co-unit's commitment; a past date or another agency names the measure.
    let measure = |text: &str, agency: Option<AgencyId>, target| OpinionMeasure {
        id: CommitmentId::new(),
        measure: text.into(),
        responsible: "信用处".into(),
        agency,
        target_date: target,
    };
    let with = |w: &World, measures: Vec<OpinionMeasure>| CoHandlingOpinion {
        measures,
        consultations: vec![cid],
        ..bare(w, co1, days(5))
    };
    for (m, why) in [
        (
            measure("开放数据接口", Some(w.lead), days(90)),
            "outside the co-unit's assignment",
        ),
        (
            measure("开放数据接口", None, days(5)),
            "not after the opinion",
        ),
    ] {
        let err = w
            .try_run(
                w.admin(w.co1),
                CommandKind::SubmitOpinion {
                    opinion: with(&w, vec![m]),
                },
            )
            .expect_err(why);
        assert!(
            err.to_string().contains("开放数据接口") && err.to_string().contains(why),
            "{err}"
        );
    }
    let m = measure("开放数据接口", Some(w.co1), days(90));
    let mid = m.id;
    let ev = w.run(
        w.admin(w.co1),
        CommandKind::SubmitOpinion {
            opinion: with(&w, vec![m]),
        },
    );
    assert_eq!(kinds(&ev), ["OpinionSubmitted", "CommitmentCreated"]);
    let k = &w.s().commitments[0];
    assert_eq!((k.id, k.owner, k.assignment_id), (mid, w.co1, co1));
    assert_eq!(k.responsible.as_deref(), Some("信用处"));
    assert!(!w.s().opinions[0].flagged);
    // A reason instead of measures is substance too.
    let reasoned = CoHandlingOpinion {
        no_measure_reason: Some("融资担保不在我厅职责范围".into()),
        ..bare(&w, co2, days(6))
    };
    w.run(
        w.admin(w.co2),
        CommandKind::SubmitOpinion { opinion: reasoned },
    );
    assert_eq!(w.s().opinions.len(), 2);
}
