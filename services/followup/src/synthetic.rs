//! Synthetic suggestions for tests and benchmarks: random but reproducible (a seeded
//! generator), built as replicas are (the structures the events build), never through rows.

use banli_domain::ids::*;
use banli_domain::suggestion::*;
use time::macros::date;
use time::{Date, Duration};

/// The categories (分类) synthetic suggestions are spread over, evenly by the day received.
pub const CATEGORIES: [&str; 12] = [
    "经济发展",
    "财政金融",
    "教育",
    "医疗卫生",
    "交通",
    "农业农村",
    "生态环境",
    "社会保障",
    "城乡建设",
    "科技",
    "文化旅游",
    "政法",
];

/// The delegations (代表团) of the synthetic suggestions' lead deputies.
pub const DELEGATIONS: [&str; 14] = [
    "长沙市代表团",
    "株洲市代表团",
    "湘潭市代表团",
    "衡阳市代表团",
    "邵阳市代表团",
    "岳阳市代表团",
    "常德市代表团",
    "张家界市代表团",
    "益阳市代表团",
    "郴州市代表团",
    "永州市代表团",
    "怀化市代表团",
    "娄底市代表团",
    "湘西自治州代表团",
];

/// A small deterministic generator (xorshift64*), so a failure reproduces.
#[derive(Debug, Clone)]
pub struct Rng(pub u64);

impl Rng {
    pub fn next_u64(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    pub fn day(&mut self, from: Date, span: i64) -> Date {
        from + Duration::days(self.below(span as u64) as i64)
    }
}

fn signer() -> Signer {
    Signer {
        name: "Head".into(),
        position: SignerPosition::PrincipalHead,
    }
}

fn deadline(due: Date) -> banli_calendar::Deadline {
    banli_calendar::Deadline {
        start_label: "assignment".into(),
        start: due - Duration::days(90),
        duration: banli_calendar::DurationSpec::CalendarDays { days: 90 },
        due,
        calendar_version: "test".into(),
        assumed_weekends_only: false,
        trace: vec![],
    }
}

/// A random suggestion received in 2019–2020 whose units are drawn from `agencies`: 1 to 4
/// assignments (a tenth superseded), communications and meetings, replies and opinions, class
/// changes and conversions, feedback rounds from two deputies.
pub fn random_suggestion(
    rng: &mut Rng,
    agencies: &[AgencyId],
    pick: impl Fn(&mut Rng) -> usize,
    session: SessionId,
) -> Suggestion {
    let deputies = [DeputyId::new(), DeputyId::new()];
    let received = rng.day(date!(2019 - 01 - 10), 700);
    let details = SuggestionDetails {
        session_id: session,
        number: format!("{}", rng.next_u64()),
        title: "t".into(),
        body: "b".into(),
        category: CATEGORIES[received.ordinal() as usize % CATEGORIES.len()].into(),
        kind: ItemKind::Session,
        lead_deputy: deputies[0],
        // Fourteen delegations, by the day received (no new draw).
        delegation: DELEGATIONS[received.ordinal() as usize % DELEGATIONS.len()].into(),
        co_signers: vec![deputies[1]],
        key_supervised: rng.chance(10),
        priority: Priority::Normal,
        confidential: false,
        disclosure: Disclosure::Full,
    };
    let mut s = Suggestion::new(
        SuggestionId::new(),
        &Submitted {
            details,
            on: received,
        },
    );
    let roles = [
        UnitRole::Lead,
        UnitRole::Co,
        UnitRole::Separate,
        UnitRole::Sole,
    ];
    for _ in 0..1 + rng.below(4) {
        let role = roles[rng.below(4) as usize];
        let assigned_on = received + Duration::days(rng.below(20) as i64);
        let due = assigned_on + Duration::days(60 + rng.below(60) as i64);
        let id = AssignmentId::new();
        let responsible = role.is_responsible();
        s.assignments.push(Assignment {
            approval: None,
            id,
            agency: agencies[pick(rng)],
            role,
            state: if rng.chance(10) {
                AssignmentState::Superseded
            } else {
                AssignmentState::InHandling
            },
            assigned_on,
            deadlines: AssignmentDeadlines {
                objection: deadline(assigned_on + Duration::days(5)),
                first_contact: responsible.then(|| deadline(assigned_on + Duration::days(30))),
                co_opinion: (!responsible).then(|| deadline(due - Duration::days(30))),
                reply: responsible.then(|| deadline(due)),
                reply_cap: None,
            },
            dispatch: rng.chance(50).then(|| Dispatch {
                division: DivisionId::new(),
                handler: "h".into(),
                responsible_leader: "l".into(),
                leading_official: rng.chance(10).then(|| "Director".into()),
                plan: "p".into(),
                on: assigned_on,
            }),
            adjustment: None,
            extension: None,
            extensions_granted: 0,
            replaces: None,
            opinion_waived: false,
        });
        for _ in 0..rng.below(3) {
            s.communications.push(Communication {
                id: CommunicationId::new(),
                assignment_id: id,
                // A quarter in the recess phase (from the data drawn, not a new draw: the
                // rest of the sequence stays as it was).
                phase: CommunicationPhase::During,
                method: CommunicationMethod::Visit,
                face_to_face: rng.chance(40),
                deputies: vec![deputies[0]],
                participants: vec![],
                summary: "s".into(),
                on: rng.day(assigned_on, 150),
            });
            if let Some(c) = s.communications.last_mut()
                && c.on.ordinal() % 4 == 0
            {
                c.phase = CommunicationPhase::Recess;
            }
        }
        if !rng.chance(70) {
            continue;
        }
        let on = rng.day(assigned_on + Duration::days(20), 140);
        if responsible {
            for round in 0..1 + rng.below(2) {
                s.replies.push(Reply {
                    publication: None,
                    publication_due: None,
                    approvals: Vec::new(),
                    review: None,
                    review_due: None,
                    attachments: Vec::new(),
                    letter: None,
                    id: ReplyId::new(),
                    assignment_id: id,
                    reply_type: ReplyType::Initial,
                    document_number: "d".into(),
                    body: "b".into(),
                    class: [ReplyClass::A, ReplyClass::B, ReplyClass::C][rng.below(3) as usize],
                    signer: signer(),
                    references: vec![],
                    countersigned_by: vec![],
                    round: round as u32,
                    on: on + Duration::days(round as i64 * rng.below(40) as i64),
                    consultations: vec![],
                });
            }
            // 答复审查 on a third of the first replies, a half of those returned (from the data
            // drawn, not a new draw: the rest of the sequence stays as it was).
            let k = on.ordinal() as i64;
            if k % 3 == 0
                && let Some(first) = s.replies.iter_mut().find(|r| r.assignment_id == id)
            {
                let review_on = on + Duration::days(k % 5);
                first.review_due = Some(deadline(on + Duration::days(7)));
                first.review = Some(ReplyReview {
                    accepted: k % 2 == 1,
                    reasons: "r".into(),
                    on: review_on,
                    lapsed: false,
                });
            }
        } else {
            s.opinions.push(CoHandlingOpinion {
                attachments: Vec::new(),
                letter: None,
                id: OpinionId::new(),
                assignment_id: id,
                document_number: "d".into(),
                body: "b".into(),
                signer: signer(),
                on,
                acknowledged_on: None,
                measures: vec![],
                no_measure_reason: None,
                consultations: vec![],
                flagged: false,
            });
        }
    }
    if let Some(first) = s.replies.iter().map(|r| r.on).min() {
        for _ in 0..rng.below(3) {
            let to = [ReplyClass::A, ReplyClass::B, ReplyClass::C][rng.below(3) as usize];
            s.class_history.push(ClassChange {
                from: ReplyClass::B,
                to,
                reason: "r".into(),
                conversion: to == ReplyClass::A && rng.chance(60),
                // Now and then on the very day of a reply: the later entry wins.
                on: if rng.chance(15) {
                    first
                } else {
                    rng.day(first, 500)
                },
            });
        }
        for deputy in deputies {
            let mut on = rng.day(first, 60);
            for round in 0..rng.below(3) {
                s.feedback.push(Feedback {
                    deputy,
                    level: [
                        Satisfaction::Satisfied,
                        Satisfaction::BasicallySatisfied,
                        Satisfaction::Dissatisfied,
                    ][rng.below(3) as usize],
                    handling: None,
                    result: None,
                    comment: String::new(),
                    round: round as u32,
                    on,
                });
                on += Duration::days(rng.below(90) as i64);
            }
        }
    }
    // Commitments on some replies: due from their target date, some converted in time, some
    // late, some still open.
    let replied: Vec<(AssignmentId, AgencyId, Date)> = s
        .replies
        .iter()
        .filter_map(|r| {
            let a = s.assignment(r.assignment_id)?;
            Some((a.id, a.agency, r.on))
        })
        .collect();
    for (assignment, owner, on) in replied {
        if !rng.chance(40) {
            continue;
        }
        for _ in 0..1 + rng.below(2) {
            let target = on + Duration::days(30 + rng.below(400) as i64);
            let converted = rng
                .chance(60)
                .then(|| target + Duration::days(rng.below(120) as i64 - 60));
            s.commitments.push(Commitment {
                evidence_documents: Vec::new(),
                id: CommitmentId::new(),
                assignment_id: assignment,
                measure: "m".into(),
                owner,
                division: None,
                target_date: target,
                state: if converted.is_some() {
                    CommitmentState::Converted
                } else {
                    CommitmentState::Open
                },
                progress: vec![],
                evidence: String::new(),
                converted_on: converted,
                created_on: on,
                responsible: None,
                opinion_id: None,
            });
        }
    }
    s
}
