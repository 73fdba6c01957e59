//! One storage contract, run on SQLite and on PostgreSQL (a fresh database per test).

use banli_calendar::Calendar;
use banli_db::testing::TestDb;
use banli_domain::ids::*;
use banli_domain::suggestion::*;
use banli_domain::{Actor, RuleProfile, Rules};
use banli_suggestions::store::{
    Agency, Deputy, Division, ListFilter, NewEvent, Session, Store, StoreError,
};
use time::OffsetDateTime;
use time::macros::date;

#[path = "store_contract/keys.rs"]
mod keys;

use keys::keys_and_deputies;

struct Fixture {
    store: Store,
    office: AgencyId,
    lead: AgencyId,
    session: SessionId,
    deputy: DeputyId,
}

async fn fixture(db: &TestDb) -> Fixture {
    let store = Store::new(db.pool.clone());
    store.migrate().await.expect("migrations apply");
    store.migrate().await.expect("migrations are idempotent");
    let f = Fixture {
        store,
        office: AgencyId::new(),
        lead: AgencyId::new(),
        session: SessionId::new(),
        deputy: DeputyId::new(),
    };
    f.store
        .create_agency(&Agency {
            id: f.office,
            name: "Liaison office".into(),
            assigning_office: true,
        })
        .await
        .expect("office");
    f.store
        .create_agency(&Agency {
            id: f.lead,
            name: "Department of Industry".into(),
            assigning_office: false,
        })
        .await
        .expect("agency");
    f.store
        .create_session(&Session {
            id: f.session,
            body: Body::Npc,
            term: 13,
            number: 3,
            name: "13th PC, 3rd session".into(),
            opens_on: date!(2020 - 01 - 10),
            closes_on: date!(2020 - 01 - 16),
        })
        .await
        .expect("session");
    f.store
        .create_deputy(&Deputy {
            id: f.deputy,
            name: "Deputy Liu".into(),
            delegation: "Changsha".into(),
            contact: "+86 731 0000".into(),
        })
        .await
        .expect("deputy");
    f
}

/// Runs commands through the domain and appends their events, like the application layer will.
async fn run(
    f: &Fixture,
    state: &mut Option<Suggestion>,
    actor: Actor,
    kind: CommandKind,
) -> Result<(), StoreError> {
    let profile = RuleProfile::hunan();
    let rules = Rules {
        profile: &profile,
        calendar: Calendar::embedded(),
    };
    let cmd = Command {
        actor: actor.clone(),
        kind,
    };
    let events = decide(state.as_ref(), &cmd, &rules).unwrap_or_else(|e| panic!("{e}"));
    let mut next = state.clone();
    for e in &events {
        match (&mut next, e) {
            (None, SuggestionEvent::Submitted(sub)) => {
                next = Some(Suggestion::new(SuggestionId::new(), sub))
            }
            (Some(s), e) => s.apply(e),
            (None, _) => panic!("first event must be Submitted"),
        }
    }
    let after = next.expect("a state");
    let new: Vec<NewEvent> = events
        .into_iter()
        .map(|e| NewEvent::new(e, actor.clone(), OffsetDateTime::now_utc()))
        .collect();
    f.store.append(state.as_ref(), &after, &new).await?;
    *state = Some(after);
    Ok(())
}

/// Submitted, reviewed, accepted and assigned to the fixture's agency in `role`, on 2020-03-02.
async fn assigned(f: &Fixture, office: &Actor, number: &str, role: UnitRole) -> Suggestion {
    let mut s = None;
    let steps = [
        CommandKind::Submit {
            details: details(f, number),
            on: date!(2020 - 01 - 12),
        },
        CommandKind::StartReview {
            on: date!(2020 - 01 - 20),
        },
        CommandKind::Review {
            decision: ReviewDecision::Accept,
            reason: String::new(),
            on: date!(2020 - 01 - 21),
        },
        CommandKind::Assign {
            units: vec![UnitAssignment {
                assignment_id: AssignmentId::new(),
                agency: f.lead,
                role,
            }],
            on: date!(2020 - 03 - 02),
        },
    ];
    for step in steps {
        let name = step.name();
        run(f, &mut s, office.clone(), step)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    s.expect("a state")
}

fn details(f: &Fixture, number: &str) -> SuggestionDetails {
    SuggestionDetails {
        session_id: f.session,
        number: number.into(),
        title: "Digital upgrades for small manufacturers".into(),
        body: "…".into(),
        category: "industry".into(),
        kind: ItemKind::Session,
        lead_deputy: f.deputy,
        delegation: "长沙市代表团".into(),
        co_signers: vec![],
        key_supervised: number.ends_with('1'),
        priority: Priority::Normal,
        confidential: false,
        disclosure: Disclosure::Full,
    }
}

async fn contract(db: TestDb) {
    let f = fixture(&db).await;
    let office = Actor::assigning_office(f.office);

    // Directory: duplicates and unknown references are refused, nothing else changes.
    let dup = f
        .store
        .create_agency(&Agency {
            id: AgencyId::new(),
            name: "Department of Industry".into(),
            assigning_office: false,
        })
        .await;
    assert!(
        matches!(dup, Err(StoreError::AlreadyExists(ref w)) if w == "agency"),
        "{dup:?}"
    );
    // The directory goes out through the outbox, one event per agency written; the refused
    // duplicate published nothing.
    let directory = f.store.pending_outbox(100).await.expect("outbox");
    assert_eq!(
        directory
            .iter()
            .map(|r| (r.event_type.as_str(), r.aggregate_id.clone()))
            .collect::<Vec<_>>(),
        [
            ("directory.agency_registered", f.office.to_string()),
            ("directory.agency_registered", f.lead.to_string()),
        ]
    );
    let seqs: Vec<i64> = directory.iter().map(|r| r.seq).collect();
    f.store
        .mark_published(&seqs, OffsetDateTime::now_utc())
        .await
        .expect("mark");
    let orphan = f
        .store
        .create_division(&Division {
            id: DivisionId::new(),
            agency_id: AgencyId::new(),
            name: "x".into(),
        })
        .await;
    assert!(matches!(orphan, Err(StoreError::NotFound(_))), "{orphan:?}");
    f.store
        .create_division(&Division {
            id: DivisionId::new(),
            agency_id: f.lead,
            name: "SME division".into(),
        })
        .await
        .expect("division");
    assert_eq!(
        f.store
            .list_divisions(f.lead)
            .await
            .expect("divisions")
            .len(),
        1
    );
    assert_eq!(f.store.list_agencies().await.expect("agencies").len(), 2);
    assert_eq!(
        f.store.get_session(f.session).await.expect("session").term,
        13
    );
    assert!(matches!(
        f.store.get_session(SessionId::new()).await,
        Err(StoreError::NotFound(_))
    ));
    assert_eq!(
        f.store.get_deputy(f.deputy).await.expect("deputy").contact,
        "+86 731 0000"
    );

    // A suggestion through submission, review and assignment.
    let s1 = assigned(&f, &office, "2020-0001", UnitRole::Sole).await;
    let loaded = f.store.load(s1.id).await.expect("load").expect("exists");
    assert_eq!(loaded, s1, "the stored state is the state");
    let events = f.store.events(s1.id).await.expect("events");
    assert_eq!(
        Suggestion::replay(s1.id, &events).as_ref(),
        Some(&s1),
        "the stored events replay to the state"
    );
    assert!(
        f.store
            .load(SuggestionId::new())
            .await
            .expect("load")
            .is_none()
    );

    // The outbox holds one row per event, in order, until published.
    let pending = f.store.pending_outbox(100).await.expect("outbox");
    assert_eq!(pending.len(), 4);
    assert_eq!(
        pending
            .iter()
            .map(|r| r.aggregate_version)
            .collect::<Vec<_>>(),
        [1, 2, 3, 4]
    );
    assert_eq!(pending[3].event_type, "suggestion.assigned");
    let envelope: serde_json::Value =
        serde_json::from_str(&pending[0].payload).expect("json envelope");
    assert_eq!(envelope["event_type"], "suggestion.submitted");
    assert_eq!(envelope["payload"]["type"], "submitted");
    f.store
        .mark_published(&[pending[0].seq, pending[1].seq], OffsetDateTime::now_utc())
        .await
        .expect("mark");
    assert_eq!(f.store.pending_outbox(100).await.expect("outbox").len(), 2);

    // A stale version is a conflict and writes nothing.
    let mut stale = s1.clone();
    stale.version = 3;
    let ev = NewEvent::new(
        SuggestionEvent::Withdrawn(Withdrawn {
            reason: "x".into(),
            on: date!(2020 - 03 - 03),
        }),
        office.clone(),
        OffsetDateTime::now_utc(),
    );
    let mut after = stale.clone();
    after.apply(&ev.event);
    let err = f
        .store
        .append(Some(&stale), &after, &[ev])
        .await
        .expect_err("stale");
    assert!(
        matches!(
            err,
            StoreError::Conflict {
                expected: 3,
                actual: 4
            }
        ),
        "{err:?}"
    );
    assert_eq!(f.store.events(s1.id).await.expect("events").len(), 4);
    assert_eq!(f.store.pending_outbox(100).await.expect("outbox").len(), 2);

    // Two writers racing from the same version: exactly one wins.
    let mk = |reason: &str| {
        let e = NewEvent::new(
            SuggestionEvent::Withdrawn(Withdrawn {
                reason: reason.into(),
                on: date!(2020 - 03 - 04),
            }),
            office.clone(),
            OffsetDateTime::now_utc(),
        );
        let mut a = s1.clone();
        a.apply(&e.event);
        (a, e)
    };
    let (a1, e1) = mk("first");
    let (a2, e2) = mk("second");
    let (r1, r2) = tokio::join!(
        f.store.append(Some(&s1), &a1, std::slice::from_ref(&e1)),
        f.store.append(Some(&s1), &a2, std::slice::from_ref(&e2))
    );
    assert!(
        r1.is_ok() != r2.is_ok(),
        "exactly one append wins: {r1:?} {r2:?}"
    );
    assert_eq!(f.store.events(s1.id).await.expect("events").len(), 5);
    assert_eq!(
        f.store
            .load(s1.id)
            .await
            .expect("load")
            .expect("exists")
            .state,
        SuggestionState::Withdrawn
    );

    // A number already used in the session is refused, and nothing of it is written.
    let mut dup = None;
    let err = run(
        &f,
        &mut dup,
        office.clone(),
        CommandKind::Submit {
            details: details(&f, "2020-0001"),
            on: date!(2020 - 01 - 12),
        },
    )
    .await
    .expect_err("duplicate number");
    assert!(
        matches!(err, StoreError::AlreadyExists(ref w) if w.contains("2020-0001")),
        "{err:?}"
    );
    assert_eq!(f.store.pending_outbox(100).await.expect("outbox").len(), 3);
    // An unknown session is a not-found, not a database error.
    let mut orphan = None;
    let mut d = details(&f, "2020-0099");
    d.session_id = SessionId::new();
    let err = run(
        &f,
        &mut orphan,
        office.clone(),
        CommandKind::Submit {
            details: d,
            on: date!(2020 - 01 - 12),
        },
    )
    .await
    .expect_err("unknown session");
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");

    // Lists: filters and cursor pagination.
    let mut ids = vec![s1.id];
    for n in 2..=5 {
        let mut s = None;
        run(
            &f,
            &mut s,
            office.clone(),
            CommandKind::Submit {
                details: details(&f, &format!("2020-000{n}")),
                on: date!(2020 - 01 - 12),
            },
        )
        .await
        .expect("submit");
        ids.push(s.expect("state").id);
    }
    let all = f
        .store
        .list(&ListFilter {
            limit: 100,
            ..Default::default()
        })
        .await
        .expect("list");
    assert_eq!(all.iter().map(|s| s.id).collect::<Vec<_>>(), ids);
    let page1 = f
        .store
        .list(&ListFilter {
            limit: 2,
            ..Default::default()
        })
        .await
        .expect("page 1");
    let page2 = f
        .store
        .list(&ListFilter {
            limit: 2,
            after: page1.last().map(|s| s.id),
            ..Default::default()
        })
        .await
        .expect("page 2");
    assert_eq!(page2.iter().map(|s| s.id).collect::<Vec<_>>(), ids[2..4]);
    let by_state = f
        .store
        .list(&ListFilter {
            state: Some("submitted".into()),
            limit: 100,
            ..Default::default()
        })
        .await
        .expect("by state");
    assert_eq!(by_state.len(), 4);
    let by_agency = f
        .store
        .list(&ListFilter {
            agency_id: Some(f.lead),
            limit: 100,
            ..Default::default()
        })
        .await
        .expect("by agency");
    assert_eq!(by_agency.iter().map(|s| s.id).collect::<Vec<_>>(), [s1.id]);
    let other = f
        .store
        .list(&ListFilter {
            agency_id: Some(AgencyId::new()),
            limit: 100,
            ..Default::default()
        })
        .await
        .expect("none");
    assert!(other.is_empty());
    let key = f
        .store
        .list(&ListFilter {
            key_only: true,
            limit: 100,
            ..Default::default()
        })
        .await
        .expect("key");
    assert_eq!(
        key.iter().map(|s| s.number.as_str()).collect::<Vec<_>>(),
        ["2020-0001"]
    );
    let role = f
        .store
        .list(&ListFilter {
            role: Some(UnitRole::Lead),
            limit: 100,
            ..Default::default()
        })
        .await
        .expect("role");
    assert!(role.is_empty(), "s1 is assigned to a sole unit");
    // Overdue: an open assignment past its reply date (2020-06-02) of an item still being handled;
    // the withdrawn item is not overdue.
    let s6 = assigned(&f, &office, "2020-0006", UnitRole::Lead).await;
    let overdue = f
        .store
        .list(&ListFilter {
            overdue_on: Some(date!(2020 - 06 - 03)),
            limit: 100,
            ..Default::default()
        })
        .await
        .expect("overdue");
    assert_eq!(overdue.iter().map(|s| s.id).collect::<Vec<_>>(), [s6.id]);
    let not_yet = f
        .store
        .list(&ListFilter {
            overdue_on: Some(date!(2020 - 06 - 02)),
            limit: 100,
            ..Default::default()
        })
        .await
        .expect("not yet");
    assert!(not_yet.is_empty());
    let role = f
        .store
        .list(&ListFilter {
            role: Some(UnitRole::Lead),
            agency_id: Some(f.lead),
            limit: 100,
            ..Default::default()
        })
        .await
        .expect("role");
    assert_eq!(role.iter().map(|s| s.id).collect::<Vec<_>>(), [s6.id]);

    keys_and_deputies(&f, &office).await;
    db.drop_db().await;
}

#[tokio::test]
async fn store_contract_on_sqlite() {
    contract(TestDb::sqlite().await).await;
}

#[tokio::test]
async fn store_contract_on_postgres() {
    let Some(db) = TestDb::postgres().await else {
        return;
    };
    contract(db).await;
}
