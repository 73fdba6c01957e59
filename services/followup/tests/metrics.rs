//! The metrics aggregate (one SQL statement over the per-assignment rows) against the formulas
//! computed in memory from the same suggestions (`banli_domain::metrics::Counts::compute`), on
//! SQLite and PostgreSQL: random suggestions with replies, opinions, class changes and
//! conversions, communications, meetings, feedback rounds and superseded assignments, counted
//! for every agency and for all, by role and by year, as of many days.

use banli_db::testing::TestDb;
use banli_domain::ids::*;
use banli_domain::metrics::{Counts, Scope};
use banli_domain::suggestion::*;
use banli_followup::store::{MetricsQuery, Store};
use time::macros::date;
use time::{Date, Duration};

/// A small deterministic generator (xorshift64*), so a failure reproduces.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn day(&mut self, from: Date, span: i64) -> Date {
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

/// A random suggestion whose units are drawn from `agencies`.
fn random_suggestion(rng: &mut Rng, agencies: &[AgencyId], session: SessionId) -> Suggestion {
    let deputies = [DeputyId::new(), DeputyId::new()];
    let received = rng.day(date!(2019 - 01 - 10), 700);
    let details = SuggestionDetails {
        session_id: session,
        number: format!("{}", rng.next()),
        title: "t".into(),
        body: "b".into(),
        category: "c".into(),
        kind: ItemKind::Session,
        lead_deputy: deputies[0],
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
    let roles = [UnitRole::Lead, UnitRole::Co, UnitRole::Separate, UnitRole::Sole];
    for _ in 0..1 + rng.below(4) {
        let role = roles[rng.below(4) as usize];
        let assigned_on = received + Duration::days(rng.below(20) as i64);
        let due = assigned_on + Duration::days(60 + rng.below(60) as i64);
        let id = AssignmentId::new();
        let responsible = role.is_responsible();
        s.assignments.push(Assignment {
            id,
            agency: agencies[rng.below(agencies.len() as u64) as usize],
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
                phase: CommunicationPhase::During,
                method: CommunicationMethod::Visit,
                face_to_face: rng.chance(40),
                deputies: vec![deputies[0]],
                participants: vec![],
                summary: "s".into(),
                on: rng.day(assigned_on, 150),
            });
        }
        if !rng.chance(70) {
            continue;
        }
        let on = rng.day(assigned_on + Duration::days(20), 140);
        if responsible {
            for round in 0..1 + rng.below(2) {
                s.replies.push(Reply {
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
                });
            }
        } else {
            s.opinions.push(CoHandlingOpinion {
                id: OpinionId::new(),
                assignment_id: id,
                document_number: "d".into(),
                body: "b".into(),
                signer: signer(),
                on,
                acknowledged_on: None,
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
    s
}

async fn save_all(store: &Store, suggestions: &[Suggestion]) {
    match store.pool() {
        banli_db::Pool::Sqlite(p) => {
            let mut tx = p.begin().await.expect("tx");
            for s in suggestions {
                banli_followup::store::sqlite::save_facts(&mut tx, s)
                    .await
                    .expect("facts");
            }
            tx.commit().await.expect("commit");
        }
        banli_db::Pool::Postgres(p) => {
            let mut tx = p.begin().await.expect("tx");
            for s in suggestions {
                banli_followup::store::postgres::save_facts(&mut tx, s)
                    .await
                    .expect("facts");
            }
            tx.commit().await.expect("commit");
        }
    }
}

async fn matches_the_formulas(db: TestDb) {
    let store = Store::new(db.pool.clone());
    let consumer = banli_followup::consumer::EventConsumer::new(
        store.clone(),
        banli_domain::RuleProfile::hunan().reminders,
    );
    store.migrate(consumer.inbox()).await.expect("migrations");
    let agencies: Vec<AgencyId> = (0..4).map(|_| AgencyId::new()).collect();
    let sessions = [SessionId::new(), SessionId::new()];
    let mut rng = Rng(0x5EED_1234_ABCD_0001);
    let mut all: Vec<Suggestion> = (0..400)
        .map(|i| random_suggestion(&mut rng, &agencies, sessions[i % 2]))
        .collect();
    save_all(&store, &all).await;
    // Saved twice with changes in between: the rows are replaced, not added to.
    for s in all.iter_mut().step_by(7) {
        s.feedback.clear();
        if let Some(a) = s.assignments.first_mut() {
            a.state = AssignmentState::Superseded;
        }
    }
    save_all(&store, &all).await;

    let mut checked = 0;
    let mut nonzero = Counts::default();
    let days = [
        date!(2019 - 01 - 01),
        date!(2019 - 06 - 30),
        date!(2019 - 12 - 31),
        date!(2020 - 04 - 15),
        date!(2020 - 09 - 01),
        date!(2021 - 03 - 01),
        date!(2023 - 12 - 31),
    ];
    let scopes: Vec<Option<AgencyId>> = std::iter::once(None)
        .chain(agencies.iter().copied().map(Some))
        .collect();
    for as_of in days {
        for agency in &scopes {
            for role in [None, Some(UnitRole::Lead), Some(UnitRole::Co)] {
                for year in [None, Some(2019), Some(2020)] {
                    let scoped: Vec<Suggestion> = all
                        .iter()
                        .map(|s| {
                            let mut s = s.clone();
                            if let Some(y) = year {
                                s.assignments.retain(|a| a.assigned_on.year() == y);
                            }
                            s
                        })
                        .collect();
                    let want = Counts::compute(
                        &scoped,
                        &Scope {
                            agency: *agency,
                            role,
                            as_of: Some(as_of),
                        },
                    );
                    let got = store
                        .counts(&MetricsQuery {
                            as_of,
                            agency: agency.map(|a| a.to_string()),
                            division: None,
                            role: role.map(|r| r.as_str().to_owned()),
                            session: None,
                            year,
                        })
                        .await
                        .expect("counts");
                    assert_eq!(
                        got, want,
                        "as of {as_of}, agency {agency:?}, role {role:?}, year {year:?}"
                    );
                    checked += 1;
                    // Which counts the data exercised at all.
                    macro_rules! seen {
                        ($($f:ident),*) => { $( nonzero.$f = nonzero.$f.max(got.$f); )* };
                    }
                    seen!(
                        lead,
                        co,
                        separate,
                        sole,
                        live,
                        replied,
                        on_time,
                        responsible,
                        communicated,
                        met,
                        replied_responsible,
                        resolved,
                        solved_or_planned,
                        ever_b,
                        converted,
                        feedback_latest,
                        feedback_latest_good,
                        feedback_latest_satisfied,
                        feedback_first,
                        feedback_first_good
                    );
                }
            }
        }
    }
    assert_eq!(checked, 7 * 5 * 3 * 3);
    let zero = Counts::default();
    macro_rules! exercised {
        ($($f:ident),*) => { $( assert!(nonzero.$f > zero.$f, concat!("no case counted ", stringify!($f))); )* };
    }
    exercised!(
        lead,
        co,
        separate,
        sole,
        live,
        replied,
        on_time,
        responsible,
        communicated,
        met,
        replied_responsible,
        resolved,
        solved_or_planned,
        ever_b,
        converted,
        feedback_latest,
        feedback_latest_good,
        feedback_latest_satisfied,
        feedback_first,
        feedback_first_good
    );

    // Narrower scopes: a session and a division count a subset.
    let today = date!(2023 - 12 - 31);
    let whole = store
        .counts(&MetricsQuery {
            as_of: today,
            agency: None,
            division: None,
            role: None,
            session: None,
            year: None,
        })
        .await
        .expect("counts");
    let one_session = store
        .counts(&MetricsQuery {
            as_of: today,
            agency: None,
            division: None,
            role: None,
            session: Some(sessions[0].to_string()),
            year: None,
        })
        .await
        .expect("counts");
    let want_session = Counts::compute(
        all.iter().filter(|s| s.details.session_id == sessions[0]),
        &Scope {
            as_of: Some(today),
            ..Scope::default()
        },
    );
    assert_eq!(one_session, want_session);
    assert!(one_session.live < whole.live && one_session.live > 0);
    let division = all
        .iter()
        .flat_map(|s| &s.assignments)
        .filter(|a| a.state != AssignmentState::Superseded)
        .find_map(|a| a.dispatch.as_ref().map(|d| d.division))
        .expect("a dispatched assignment");
    let one_division = store
        .counts(&MetricsQuery {
            as_of: today,
            agency: None,
            division: Some(division.to_string()),
            role: None,
            session: None,
            year: None,
        })
        .await
        .expect("counts");
    assert_eq!(one_division.live, 1, "one live assignment was dispatched to it");
}

#[tokio::test]
async fn sql_counts_match_the_formulas_on_sqlite() {
    matches_the_formulas(TestDb::sqlite().await).await;
}

#[tokio::test]
async fn sql_counts_match_the_formulas_on_postgres() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    matches_the_formulas(db).await;
}
