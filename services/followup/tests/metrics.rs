//! The metrics (summed per-day counts, and one SQL aggregate over the per-assignment rows) against the formulas
//! computed in memory from the same suggestions (`banli_domain::metrics::Counts::compute`), on
//! SQLite and PostgreSQL: random suggestions with replies, opinions, class changes and
//! conversions, communications, meetings, feedback rounds and superseded assignments, counted
//! for every agency and for all, by role and by year, as of many days.

use banli_db::testing::TestDb;
use banli_domain::ids::*;
use banli_domain::metrics::{Counts, Scope};
use banli_domain::suggestion::*;
use banli_followup::store::{MetricsQuery, Store};
use banli_followup::synthetic::{Rng, random_suggestion};
use time::macros::date;

/// Changed one by one as the consumer writes them (from the version stored before).
async fn save_changed(store: &Store, before: &[Suggestion], suggestions: &[Suggestion]) {
    match store.pool() {
        banli_db::Pool::Sqlite(p) => {
            let mut tx = p.begin().await.expect("tx");
            for (old, s) in before.iter().zip(suggestions) {
                banli_followup::store::sqlite::save_facts(&mut tx, Some(old), s)
                    .await
                    .expect("facts");
            }
            tx.commit().await.expect("commit");
        }
        banli_db::Pool::Postgres(p) => {
            let mut tx = p.begin().await.expect("tx");
            for (old, s) in before.iter().zip(suggestions) {
                banli_followup::store::postgres::save_facts(&mut tx, Some(old), s)
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
        .map(|i| {
            random_suggestion(
                &mut rng,
                &agencies,
                |r: &mut Rng| r.below(4) as usize,
                sessions[i % 2],
            )
        })
        .collect();
    // Imported in bulk (as a rebuild does), then changed one by one as the consumer writes:
    // the rows are replaced and the per-day counts move by the difference.
    store.import_facts(all.clone()).await.expect("import");
    let before = all.clone();
    for (i, s) in all.iter_mut().enumerate() {
        match i % 5 {
            0 => s.feedback.clear(),
            1 => {
                if let Some(a) = s.assignments.first_mut() {
                    a.state = AssignmentState::Superseded;
                }
            }
            2 => {
                if let Some(r) = s.replies.first_mut() {
                    r.on += time::Duration::days(9);
                }
            }
            // Recategorised: the per-day counts leave the old category for the new.
            3 => s.details.category = "财政金融".into(),
            _ => {}
        }
    }
    save_changed(&store, &before, &all).await;

    let mut checked = 0;
    // The largest value each count reached: every one must have been exercised.
    let mut largest = [0u64; banli_domain::metrics::COUNTS];
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
                    let query = MetricsQuery {
                        as_of,
                        agency: agency.map(|a| a.to_string()),
                        division: None,
                        role: role.map(|r| r.as_str().to_owned()),
                        session: None,
                        category: None,
                        deputy: None,
                        topic: None,
                        delegation: None,
                        year,
                    };
                    let got = store.counts(&query).await.expect("counts");
                    assert_eq!(
                        got, want,
                        "per-day counts as of {as_of}, agency {agency:?}, role {role:?}, year {year:?}"
                    );
                    let rows = store.counts_from_rows(&query).await.expect("counts");
                    assert_eq!(
                        rows, want,
                        "per-assignment rows as of {as_of}, agency {agency:?}, role {role:?}, year {year:?}"
                    );
                    checked += 1;
                    for (m, v) in largest.iter_mut().zip(got.to_array()) {
                        *m = (*m).max(v);
                    }
                }
            }
        }
    }
    assert_eq!(checked, 7 * 5 * 3 * 3);

    // A category or a delegation, with any agency and year: the per-day counts of the facet
    // (summed days) and the rows, as the formulas count the facet's items.
    let mut faceted = 0;
    for as_of in [
        date!(2019 - 06 - 30),
        date!(2020 - 09 - 01),
        date!(2023 - 12 - 31),
    ] {
        for agency in &scopes {
            for year in [None, Some(2020)] {
                for (category, delegation) in [
                    (Some("财政金融"), None),
                    (Some(banli_followup::synthetic::CATEGORIES[1]), None),
                    (None, Some("长沙市代表团")),
                    (None, Some("no such delegation")),
                ] {
                    let scoped: Vec<Suggestion> = all
                        .iter()
                        .filter(|s| category.is_none_or(|c| s.details.category == c))
                        .filter(|s| delegation.is_none_or(|d| s.details.delegation == d))
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
                            role: None,
                            as_of: Some(as_of),
                        },
                    );
                    let query = MetricsQuery {
                        as_of,
                        agency: agency.map(|a| a.to_string()),
                        division: None,
                        role: None,
                        session: None,
                        category: category.map(str::to_owned),
                        deputy: None,
                        topic: None,
                        delegation: delegation.map(str::to_owned),
                        year,
                    };
                    let got = store.counts(&query).await.expect("counts");
                    assert_eq!(
                        got, want,
                        "per-day counts of {category:?}/{delegation:?} as of {as_of}, agency {agency:?}, year {year:?}"
                    );
                    let rows = store.counts_from_rows(&query).await.expect("counts");
                    assert_eq!(
                        rows, want,
                        "rows of {category:?}/{delegation:?} as of {as_of}, agency {agency:?}, year {year:?}"
                    );
                    if got.live > 0 {
                        faceted += 1;
                    }
                }
            }
        }
    }
    assert!(faceted > 40, "facet cases with items: {faceted}");
    // The groups a breakdown lists: every category and delegation the items have (read from
    // the per-day counts' keys), and the lead deputies, within an agency and year too.
    use banli_followup::store::GroupColumn;
    for (by, of) in [
        (
            GroupColumn::Category,
            (|s: &Suggestion| s.details.category.clone()) as fn(&Suggestion) -> String,
        ),
        (GroupColumn::Delegation, |s: &Suggestion| {
            s.details.delegation.clone()
        }),
        (GroupColumn::Deputy, |s: &Suggestion| {
            s.details.lead_deputy.to_string()
        }),
    ] {
        for (agency, year) in [(None, None), (Some(agencies[0]), Some(2020))] {
            let mut want: Vec<String> = all
                .iter()
                .filter(|s| {
                    s.assignments.iter().any(|a| {
                        agency.is_none_or(|x| a.agency == x)
                            && year.is_none_or(|y| a.assigned_on.year() == y)
                    })
                })
                .map(of)
                .collect();
            want.sort();
            want.dedup();
            let got = store
                .group_values(by, agency.map(|a| a.to_string()).as_deref(), year, 1000)
                .await
                .expect("groups");
            // A value every item left (recategorised) may stay among the keys, never one
            // no item had.
            for w in &want {
                assert!(
                    got.contains(w),
                    "{by:?} {agency:?} {year:?}: {w} not in {got:?}"
                );
            }
            assert!(got.len() <= want.len() + 12, "{by:?}: {got:?}");
            assert!(!got.is_empty());
        }
    }
    assert!(
        largest.iter().all(|m| *m > 0),
        "a count no case exercised (in Counts order): {largest:?}"
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
            category: None,
            deputy: None,
            topic: None,
            delegation: None,
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
            category: None,
            deputy: None,
            topic: None,
            delegation: None,
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
            category: None,
            deputy: None,
            topic: None,
            delegation: None,
            year: None,
        })
        .await
        .expect("counts");
    assert_eq!(
        one_division.live, 1,
        "one live assignment was dispatched to it"
    );
    // A category and a lead deputy: the rows of their items, as the formulas count them.
    let scoped = |category: Option<&str>, deputy: Option<DeputyId>| MetricsQuery {
        as_of: today,
        agency: None,
        division: None,
        role: None,
        session: None,
        category: category.map(str::to_owned),
        deputy: deputy.map(|d| d.to_string()),
        topic: None,
        delegation: None,
        year: None,
    };
    let everything = Scope {
        as_of: Some(today),
        ..Scope::default()
    };
    let finance = store
        .counts(&scoped(Some("财政金融"), None))
        .await
        .expect("counts");
    let want = Counts::compute(
        all.iter().filter(|s| s.details.category == "财政金融"),
        &everything,
    );
    assert_eq!(finance, want);
    assert!(finance.live > 0 && finance.live < whole.live);
    assert!(finance.commitments_due > 0, "{finance:?}");
    let deputy = all[7].details.lead_deputy;
    let theirs = store
        .counts(&scoped(None, Some(deputy)))
        .await
        .expect("counts");
    let want = Counts::compute(
        all.iter().filter(|s| s.details.lead_deputy == deputy),
        &everything,
    );
    assert_eq!(theirs, want);
    let changsha = store
        .counts(&MetricsQuery {
            delegation: Some("长沙市代表团".into()),
            ..scoped(None, None)
        })
        .await
        .expect("counts");
    let want = Counts::compute(
        all.iter()
            .filter(|s| s.details.delegation == "长沙市代表团"),
        &everything,
    );
    assert_eq!(changsha, want);
    assert!(changsha.live > 0 && changsha.live < whole.live);
    assert_eq!(
        store
            .counts(&scoped(Some("no such category"), None))
            .await
            .expect("counts"),
        Counts::default()
    );
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
