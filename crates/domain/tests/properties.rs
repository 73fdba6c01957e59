//! Property tests: random command sequences never reach a state the tables of `domain.md` do not
//! allow, and replaying the events always gives the same state.

mod support;

use banli_domain::ids::*;
use banli_domain::suggestion::*;
use banli_domain::{Actor, Role};
use proptest::prelude::*;
use support::*;
use time::Date;

/// An abstract step; the concrete command is built from the state at the time.
#[derive(Debug, Clone)]
struct Step {
    action: u8,
    pick: usize,
    variant: u8,
    /// Calendar days that pass before the step.
    advance: u8,
    /// Sometimes act as the wrong party.
    wrong_actor: bool,
    /// Most steps pick the action that moves the item on, so that runs get deep into the
    /// lifecycle; the rest are arbitrary.
    guided: bool,
}

fn step() -> impl Strategy<Value = Step> {
    (
        0u8..29,
        0usize..8,
        0u8..4,
        0u8..12,
        prop::bool::weighted(0.1),
        prop::bool::weighted(0.7),
    )
        .prop_map(
            |(action, pick, variant, advance, wrong_actor, guided)| Step {
                action,
                pick,
                variant,
                advance,
                wrong_actor,
                guided,
            },
        )
}

/// The action (and the assignment or deputy it picks) that moves the item on from here.
fn guide(w: &World, st: &Step) -> Step {
    let mut st = st.clone();
    if !st.guided {
        return st;
    }
    let Some(s) = w.state.as_ref() else {
        st.action = 0;
        return st;
    };
    let lead_deputy = w.deputy;
    let (action, pick) = match s.state {
        SuggestionState::Submitted => (1, st.pick),
        SuggestionState::UnderReview => (2, st.pick),
        SuggestionState::Registered => (4, st.pick),
        SuggestionState::Assigned | SuggestionState::ReHandling => {
            let candidates: Vec<(u8, usize)> = s
                .assignments
                .iter()
                .enumerate()
                .filter_map(|(i, a)| {
                    let talked = s
                        .communications
                        .iter()
                        .any(|c| c.assignment_id == a.id && c.deputies.contains(&lead_deputy));
                    let pending_opinion = s
                        .opinions
                        .iter()
                        .any(|o| o.assignment_id == a.id && o.acknowledged_on.is_none());
                    match a.state {
                        AssignmentState::PendingSign => Some((5, i)),
                        AssignmentState::Accepted => Some((8, i)),
                        AssignmentState::AdjustmentPending => Some((7, i)),
                        AssignmentState::InHandling if a.role == UnitRole::Co => {
                            Some((if st.variant == 3 { 15 } else { 13 }, i))
                        }
                        AssignmentState::OpinionSubmitted if pending_opinion => Some((14, st.pick)),
                        AssignmentState::InHandling | AssignmentState::ReHandling
                            if a.is_responsible() && !talked =>
                        {
                            st.variant &= 2;
                            Some((9, i))
                        }
                        AssignmentState::InHandling | AssignmentState::ReHandling
                            if a.is_responsible() =>
                        {
                            Some((16, i))
                        }
                        // The unit's approval chain (内部审批): the current step decides.
                        AssignmentState::InReview => Some((27, i)),
                        // The office's review, or its lapse.
                        AssignmentState::AwaitingReview => {
                            Some((if st.variant == 2 { 26 } else { 25 }, st.pick))
                        }
                        _ => None,
                    }
                })
                .collect();
            // Replies last: the lead's waits for the co-handlers.
            let next = candidates
                .iter()
                .find(|(a, _)| *a != 16)
                .or(candidates.first())
                .copied();
            next.unwrap_or((st.action, st.pick))
        }
        SuggestionState::Replied => {
            let answered: Vec<DeputyId> = s.round_feedback().map(|f| f.deputy).collect();
            let i = if answered.contains(&w.deputy) { 1 } else { 0 };
            (19, i)
        }
        SuggestionState::Escalated => {
            st.variant = 1;
            (20, st.pick)
        }
        SuggestionState::InFollowUp => match s
            .commitments
            .iter()
            .position(|c| c.state == CommitmentState::Open)
        {
            Some(i) => {
                st.variant = 2 + st.variant % 2;
                (21, i)
            }
            // The office decides a pending closure request, mostly confirming it.
            None if s.pending_closure().is_some() => {
                st.variant = if st.variant == 3 { 2 } else { 0 };
                (22, st.pick)
            }
            None => {
                let i = s
                    .assignments
                    .iter()
                    .position(|a| a.is_responsible() && a.state == AssignmentState::Replied)
                    .unwrap_or(0);
                (16, i)
            }
        },
        _ => (st.action, st.pick),
    };
    st.action = action;
    st.pick = pick;
    st
}

fn class(v: u8) -> ReplyClass {
    [ReplyClass::A, ReplyClass::B, ReplyClass::C, ReplyClass::A][v as usize % 4]
}

fn command(w: &World, st: &Step, on: Date) -> (Actor, CommandKind) {
    let st = &guide(w, st);
    let s = w.state.as_ref();
    let assignments: Vec<Assignment> = s.map(|s| s.assignments.clone()).unwrap_or_default();
    let a = (!assignments.is_empty()).then(|| assignments[st.pick % assignments.len()].clone());
    let a_id = a.as_ref().map_or_else(AssignmentId::new, |a| a.id);
    let agency = a.as_ref().map_or(w.lead, |a| a.agency);
    let unit = if st.wrong_actor { w.other } else { agency };
    let office = if st.wrong_actor {
        w.admin(w.lead)
    } else {
        w.office_actor()
    };
    let admin = Actor::agency(Role::AgencyAdmin, unit);
    let deputies = [w.deputy, w.co_signer];
    let opinions: Vec<OpinionId> = s
        .map(|s| s.opinions.iter().map(|o| o.id).collect())
        .unwrap_or_default();
    let commitments: Vec<CommitmentId> = s
        .map(|s| s.commitments.iter().map(|c| c.id).collect())
        .unwrap_or_default();
    let pick_commitment = commitments
        .get(st.pick % commitments.len().max(1))
        .copied()
        .unwrap_or_default();
    match st.action {
        0 => (
            Actor::deputy(w.deputy),
            CommandKind::Submit {
                details: w.details(),
                on,
            },
        ),
        1 => (office, CommandKind::StartReview { on }),
        2 => {
            let decision = [
                ReviewDecision::Accept,
                ReviewDecision::Accept,
                ReviewDecision::NotAccept,
                ReviewDecision::ConvertToLetter,
            ][st.variant as usize];
            (
                office,
                CommandKind::Review {
                    decision,
                    reason: "reviewed".into(),
                    on,
                },
            )
        }
        3 if st.variant == 0 && st.pick == 0 => (
            Actor::deputy(w.deputy),
            CommandKind::Withdraw {
                reason: "withdrawn".into(),
                on,
            },
        ),
        3 | 4 => {
            let units = match st.variant {
                0 => vec![
                    UnitAssignment {
                        assignment_id: AssignmentId::new(),
                        agency: w.lead,
                        role: UnitRole::Lead,
                    },
                    UnitAssignment {
                        assignment_id: AssignmentId::new(),
                        agency: w.co1,
                        role: UnitRole::Co,
                    },
                ],
                1 => vec![UnitAssignment {
                    assignment_id: AssignmentId::new(),
                    agency: w.lead,
                    role: UnitRole::Sole,
                }],
                2 => vec![
                    UnitAssignment {
                        assignment_id: AssignmentId::new(),
                        agency: w.co1,
                        role: UnitRole::Separate,
                    },
                    UnitAssignment {
                        assignment_id: AssignmentId::new(),
                        agency: w.co2,
                        role: UnitRole::Separate,
                    },
                ],
                _ => vec![UnitAssignment {
                    assignment_id: AssignmentId::new(),
                    agency: w.co2,
                    role: UnitRole::Co,
                }],
            };
            (office, CommandKind::Assign { units, on })
        }
        5 => (
            admin,
            CommandKind::SignFor {
                assignment: a_id,
                on,
            },
        ),
        6 => (
            admin,
            CommandKind::RequestAdjustment {
                assignment: a_id,
                reason: "not ours".into(),
                suggested_agency: None,
                on,
            },
        ),
        7 => {
            let choice = match st.variant {
                0 => AdjustmentChoice::Accept {
                    agency: w.other,
                    role: None,
                    new_assignment: AssignmentId::new(),
                },
                1 => AdjustmentChoice::Escalate {
                    reason: "refer".into(),
                },
                _ => AdjustmentChoice::Reject {
                    reason: "stays".into(),
                },
            };
            (
                office,
                CommandKind::DecideAdjustment {
                    assignment: a_id,
                    choice,
                    on,
                },
            )
        }
        8 => (
            admin,
            CommandKind::Dispatch {
                assignment: a_id,
                division: DIVISION,
                handler: "h".into(),
                responsible_leader: "l".into(),
                leading_official: None,
                plan: "p".into(),
                unit_divisions: vec![DIVISION],
                on,
            },
        ),
        9 | 10 => {
            let communication = Communication {
                id: CommunicationId::new(),
                assignment_id: a_id,
                phase: CommunicationPhase::During,
                method: CommunicationMethod::Visit,
                face_to_face: st.variant.is_multiple_of(2),
                deputies: vec![deputies[st.variant as usize % 2]],
                participants: vec![],
                summary: "met".into(),
                on,
            };
            (
                Actor::agency(Role::Handler, unit),
                CommandKind::RecordCommunication { communication },
            )
        }
        11 => {
            let base = a
                .as_ref()
                .and_then(|a| a.deadlines.reply.as_ref())
                .map_or(on, |d| d.due);
            (
                admin,
                CommandKind::RequestExtension {
                    assignment: a_id,
                    new_due: base + time::Duration::days(10 + 20 * i64::from(st.variant)),
                    reason: "survey".into(),
                    on,
                },
            )
        }
        12 => (
            office,
            CommandKind::DecideExtension {
                assignment: a_id,
                approve: st.variant != 0,
                on,
            },
        ),
        13 => {
            let opinion = CoHandlingOpinion {
                attachments: Vec::new(),
                letter: None,
                id: OpinionId::new(),
                assignment_id: a_id,
                document_number: "会办1号".into(),
                body: "opinion".into(),
                signer: Signer {
                    name: "z".into(),
                    position: SignerPosition::AuthorizedLeader,
                },
                on,
                acknowledged_on: None,
                // Measures, a reason why there are none, or neither (flagged by the profile).
                measures: match st.variant {
                    1 => vec![OpinionMeasure {
                        id: CommitmentId::new(),
                        measure: "provide the data platform".into(),
                        responsible: "data division".into(),
                        agency: None,
                        target_date: on + time::Duration::days(90),
                    }],
                    _ => vec![],
                },
                no_measure_reason: (st.variant == 2).then(|| "outside our remit".into()),
                consultations: vec![],
                flagged: false,
            };
            (admin, CommandKind::SubmitOpinion { opinion })
        }
        14 => {
            let lead = assignments
                .iter()
                .find(|x| x.role == UnitRole::Lead && x.is_active())
                .map_or(w.lead, |x| x.agency);
            let op = opinions
                .get(st.pick % opinions.len().max(1))
                .copied()
                .unwrap_or_default();
            (
                Actor::agency(
                    Role::AgencyAdmin,
                    if st.wrong_actor { w.other } else { lead },
                ),
                CommandKind::AcknowledgeOpinion { opinion: op, on },
            )
        }
        15 => (
            office,
            CommandKind::WaiveOpinion {
                assignment: a_id,
                reason: "waived".into(),
                on,
            },
        ),
        16 | 17 => {
            let state = s.map(|s| s.state);
            let reply_type = match state {
                Some(SuggestionState::ReHandling) => ReplyType::ReHandled,
                Some(SuggestionState::InFollowUp) => ReplyType::Supplementary,
                _ => ReplyType::Initial,
            };
            let class = class(st.variant);
            let reply = w.reply(a_id, class, reply_type, opinions.clone(), on);
            let drafts = if class == ReplyClass::B && reply_type != ReplyType::Supplementary {
                vec![CommitmentDraft {
                    id: CommitmentId::new(),
                    measure: "m".into(),
                    division: None,
                    target_date: on + time::Duration::days(90),
                }]
            } else {
                vec![]
            };
            (
                admin,
                CommandKind::IssueReply {
                    approval_chain: w.chain.clone(),
                    reply,
                    commitments: drafts,
                    explanation: (st.variant == 3).then(|| "explained".into()),
                },
            )
        }
        18 => (
            office,
            CommandKind::ChangeClass {
                to: class(st.variant),
                reason: "re-rated".into(),
                on,
            },
        ),
        19 => {
            let deputy = deputies[st.pick % 2];
            let level = [
                Satisfaction::Satisfied,
                Satisfaction::BasicallySatisfied,
                Satisfaction::Dissatisfied,
                Satisfaction::Dissatisfied,
            ][st.variant as usize];
            let actor = if st.wrong_actor {
                Actor::deputy(deputies[(st.pick + 1) % 2])
            } else {
                Actor::deputy(deputy)
            };
            (
                actor,
                CommandKind::RecordFeedback {
                    feedback: w.feedback(deputy, level, on),
                },
            )
        }
        20 => match st.variant {
            0 => (office, CommandKind::CloseFeedbackWindow { on }),
            _ => (
                office,
                CommandKind::ResolveEscalation {
                    outcome: "explained".into(),
                    on,
                },
            ),
        },
        22 => (
            office,
            CommandKind::DecideClosure {
                confirm: st.variant < 2,
                reason: "the evidence does not show the fund open".into(),
                reopen: if st.variant == 2 {
                    vec![pick_commitment]
                } else {
                    vec![]
                },
                on,
            },
        ),
        23 => {
            let deputy = deputies[st.pick % 2];
            let actor = if st.wrong_actor {
                Actor::deputy(deputies[(st.pick + 1) % 2])
            } else {
                Actor::deputy(deputy)
            };
            (
                actor,
                CommandKind::RateClosure {
                    deputy,
                    level: Satisfaction::Satisfied,
                    comment: String::new(),
                    on,
                },
            )
        }
        24 => {
            let agencies: Vec<AgencyId> = assignments.iter().map(|a| a.agency).collect();
            (
                admin,
                CommandKind::RecordConsultation {
                    consultation: Consultation {
                        documents: Vec::new(),
                        id: ConsultationId::new(),
                        convened_by: unit,
                        agencies,
                        deputies: vec![],
                        attendees: vec!["Director Chen".into()],
                        subject: "the fund".into(),
                        minutes: "agreed who does what".into(),
                        on,
                    },
                },
            )
        }
        25 => {
            let pending: Vec<ReplyId> = s
                .map(|s| {
                    s.replies
                        .iter()
                        .filter(|r| r.review_due.is_some() && r.review.is_none())
                        .map(|r| r.id)
                        .collect()
                })
                .unwrap_or_default();
            let reply = pending
                .get(st.pick % pending.len().max(1))
                .copied()
                .unwrap_or_else(ReplyId::new);
            (
                office,
                CommandKind::ReviewReply {
                    reply,
                    accept: st.variant != 3,
                    reasons: if st.variant == 3 {
                        "the measures are not concrete".into()
                    } else {
                        String::new()
                    },
                    on,
                },
            )
        }
        26 => (office, CommandKind::LapseReplyReviews { on }),
        28 => {
            // 公开答复: the platform's sweep, the office's publication or its withdrawal.
            let replies: Vec<ReplyId> = s
                .map(|s| s.replies.iter().map(|r| r.id).collect())
                .unwrap_or_default();
            let reply = replies
                .get(st.pick % replies.len().max(1))
                .copied()
                .unwrap_or_else(ReplyId::new);
            let kind = match st.variant {
                0 | 1 => CommandKind::PublishDueReplies {
                    names: vec!["Wang".into()],
                    on,
                },
                2 => CommandKind::PublishReply {
                    reply,
                    names: vec!["Wang".into()],
                    on,
                },
                _ => CommandKind::WithdrawPublication {
                    reply,
                    reason: "withdrawn".into(),
                    on,
                },
            };
            (office, kind)
        }
        27 => {
            // The current step of the picked unit's chain, by a key of its position (or of
            // another one, or a stale step, now and then).
            let current = a
                .as_ref()
                .and_then(|a| a.approval.as_ref())
                .and_then(|x| x.current().map(|i| (i, x.steps[i].position)));
            let (i, position) = current.unwrap_or((0, SignerPosition::DivisionHead));
            let position = if st.wrong_actor {
                SignerPosition::AuthorizedLeader
            } else {
                position
            };
            let step = if st.variant == 3 {
                i.saturating_sub(1)
            } else {
                i
            } as u32;
            let mut actor = Actor::agency(Role::Leader, unit);
            actor.position = Some(position);
            (
                actor,
                CommandKind::DecideApprovalStep {
                    assignment: a_id,
                    step,
                    approve: st.variant != 2,
                    comment: if st.variant == 2 {
                        "revise the measures".into()
                    } else {
                        String::new()
                    },
                    on,
                },
            )
        }
        _ => match st.variant {
            0 | 1 => (
                admin,
                CommandKind::ReportProgress {
                    commitment: pick_commitment,
                    note: "progress".into(),
                    to_deputy: st.variant == 0,
                    on,
                },
            ),
            _ => (
                admin,
                CommandKind::ConvertCommitment {
                    documents: Vec::new(),
                    commitment: pick_commitment,
                    evidence: "done".into(),
                    on,
                },
            ),
        },
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn no_command_sequence_leaves_the_tables_and_replay_is_faithful(steps in prop::collection::vec(step(), 1..80)) {
        let mut w = World::new();
        // Half the runs under a profile where the office reviews replies (答复审查).
        w.profile.rules.office_reviews_replies = steps.len() % 2 == 0;
        // A third of the runs with an approval chain (内部审批) for every unit.
        if steps.len() % 3 == 0 {
            w.chain.steps = vec![SignerPosition::DivisionHead, SignerPosition::PrincipalHead];
        }
        let mut today = DAY0;
        for st in &steps {
            today += time::Duration::days(i64::from(st.advance));
            let (actor, kind) = command(&w, st, today);
            let before = w.state.clone();
            let cmd = Command { actor, kind };
            let Ok(events) = decide(before.as_ref(), &cmd, &w.rules()) else { continue };
            // (The platform's sweep of closed review windows may find nothing to do.)
            prop_assert!(
                !events.is_empty()
                    || matches!(cmd.kind, CommandKind::LapseReplyReviews { .. } | CommandKind::PublishDueReplies { .. }),
                "an accepted command produces events"
            );
            let mut current = before.clone();
            for e in &events {
                let prev = current.clone();
                let next = match (current, e) {
                    (None, SuggestionEvent::Submitted(sub)) => Suggestion::new(SuggestionId::new(), sub),
                    (Some(mut s), e) => { s.apply(e); s }
                    (None, e) => { prop_assert!(false, "first event {e:?}"); unreachable!() }
                };
                if let Some(prev) = &prev {
                    if prev.state != next.state {
                        prop_assert!(
                            SuggestionState::allowed_transitions().contains(&(prev.state, next.state)),
                            "suggestion {} -> {} by {}", prev.state, next.state, e.type_name()
                        );
                    }
                    for a in &next.assignments {
                        if let Some(old) = prev.assignment(a.id) {
                            if old.state != a.state {
                                prop_assert!(
                                    AssignmentState::allowed_transitions().contains(&(old.state, a.state)),
                                    "assignment {} -> {} by {}", old.state, a.state, e.type_name()
                                );
                            }
                        } else {
                            prop_assert_eq!(a.state, AssignmentState::PendingSign);
                        }
                    }
                }
                current = Some(next);
            }
            w.state = current;
            w.events.extend(events);
            let s = w.state.as_ref().expect("state after an accepted command");
            prop_assert!(s.active_assignments().filter(|a| a.role == UnitRole::Lead).count() <= 1);
            prop_assert!(s.replies.iter().all(|r| s.assignment(r.assignment_id).is_some_and(|a| a.is_responsible())));
            prop_assert_eq!(s.version as usize, w.events.len());
            // Under a chain, every reply went through all its steps, each approved; in review,
            // a unit's draft waits on exactly one undecided step at a time.
            if !w.chain.steps.is_empty() {
                prop_assert!(s.replies.iter().all(|r| r.approvals.len() >= w.chain.steps.len()
                    && r.approvals.iter().all(|x| x.decision.as_ref().is_some_and(|d| d.approved))));
            }
            // Nothing of a confidential item is published; a published reply stood when it was.
            for r in &s.replies {
                if r.publication.is_some() {
                    prop_assert!(!s.details.confidential && s.details.disclosure != Disclosure::None);
                    prop_assert!(r.reply_type != ReplyType::Supplementary);
                    prop_assert!(r.review.as_ref().is_none_or(|v| v.accepted));
                }
            }
            for a in &s.assignments {
                prop_assert_eq!(a.approval.is_some(), a.state == AssignmentState::InReview);
                if let Some(x) = &a.approval {
                    let current = x.current();
                    prop_assert!(current.is_some());
                    prop_assert!(x.steps.iter().enumerate().all(|(i, st)| (st.decision.is_some()) == (Some(i) < current)));
                }
            }
        }
        if let Some(s) = &w.state {
            let replayed = Suggestion::replay(s.id, &w.events).expect("starts with submitted");
            prop_assert_eq!(&replayed, s);
        }
    }
}

/// The generator must actually explore: over many random runs, every suggestion state and every
/// assignment state is reached. Without this the property above could pass by refusing everything.
#[test]
fn random_runs_reach_every_state() {
    use proptest::strategy::ValueTree;
    use proptest::test_runner::{Config, RngAlgorithm, TestRng, TestRunner};
    use std::collections::HashSet;

    let mut runner = TestRunner::new_with_rng(
        Config::default(),
        TestRng::from_seed(RngAlgorithm::ChaCha, &[7; 32]),
    );
    let mut seen = HashSet::from([SuggestionState::Submitted]);
    let mut seen_assignment = HashSet::new();
    for _ in 0..3000 {
        let steps = prop::collection::vec(step(), 1..80)
            .new_tree(&mut runner)
            .expect("tree")
            .current();
        let mut w = World::new();
        // Half the runs under a profile where the office reviews replies (答复审查).
        w.profile.rules.office_reviews_replies = steps.len() % 2 == 0;
        // A third of the runs with an approval chain (内部审批) for every unit.
        if steps.len() % 3 == 0 {
            w.chain.steps = vec![SignerPosition::DivisionHead, SignerPosition::PrincipalHead];
        }
        let mut today = DAY0;
        for st in &steps {
            today += time::Duration::days(i64::from(st.advance));
            let (actor, kind) = command(&w, st, today);
            let _ = w.try_run(actor, kind);
        }
        // Every state passed through, including those a single command passes (evaluated).
        let mut iter = w.events.iter();
        if let Some(SuggestionEvent::Submitted(first)) = iter.next() {
            let mut s = Suggestion::new(SuggestionId::new(), first);
            for e in iter {
                s.apply(e);
                seen.insert(s.state);
                seen_assignment.extend(s.assignments.iter().map(|a| a.state));
            }
        }
    }
    let all = SuggestionState::allowed_transitions()
        .iter()
        .flat_map(|(a, b)| [*a, *b])
        .collect::<HashSet<_>>();
    let missing: Vec<_> = all.difference(&seen).collect();
    assert!(missing.is_empty(), "never reached: {missing:?}");
    let all = AssignmentState::allowed_transitions()
        .iter()
        .flat_map(|(a, b)| [*a, *b])
        .collect::<HashSet<_>>();
    let missing: Vec<_> = all.difference(&seen_assignment).collect();
    assert!(
        missing.is_empty(),
        "assignment states never reached: {missing:?}"
    );
}
