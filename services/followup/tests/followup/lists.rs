//! Lists per division, and deadlines moved by newer calendar data.

use crate::support::*;

/// Overdue and due-soon lists per division: a deadline carries its assignment's division once
/// the assignment is dispatched; another division's list does not show it.
#[tokio::test]
async fn lists_per_division() {
    use banli_domain::suggestion::{Dispatch, Suggestion};

    let Followed {
        w,
        _db,
        store,
        profile,
        ..
    } = followed(true).await;
    let mut s: Suggestion = store
        .replicas(None)
        .await
        .expect("replicas")
        .pop()
        .expect("the replica");
    let division = banli_domain::ids::DivisionId::new();
    let lead = s
        .assignments
        .iter_mut()
        .find(|a| a.agency.to_string() == w.lead)
        .expect("the lead");
    lead.dispatch = Some(Dispatch {
        division,
        handler: "Li".into(),
        responsible_leader: "Wang".into(),
        leading_official: None,
        plan: String::new(),
        on: date!(2020 - 03 - 03),
    });
    let banli_db::Pool::Sqlite(p) = store.pool() else {
        panic!("SQLite")
    };
    let mut tx = p.begin().await.expect("tx");
    banli_followup::store::sqlite::save_fact_rows_many(&mut tx, &[&s])
        .await
        .expect("rows");
    tx.commit().await.expect("commit");

    let (api, _) = banli_followup::http::api(banli_followup::app::AppState {
        documents: None,
        store: store.clone(),
        auth: test_auth(),
        profile: profile.clone(),
        clock: Clock::Fixed(date!(2020 - 12 - 01)),
        names: None,
    });
    let lead_key = format!("agency:{}", w.lead);
    let (status, v) = call(
        &api,
        "GET",
        &format!(
            "/v1/followup/overdue?agency_id={}&division_id={division}",
            w.lead
        ),
        &lead_key,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    let items = v["items"].as_array().expect("items");
    let kinds: Vec<&str> = items.iter().filter_map(|i| i["kind"].as_str()).collect();
    assert!(
        kinds.contains(&"reply") && kinds.contains(&"first_contact"),
        "{v}"
    );
    assert!(
        items
            .iter()
            .all(|i| i["division_id"] == division.to_string().as_str()),
        "{v}"
    );
    let (status, v) = call(
        &api,
        "GET",
        &format!(
            "/v1/followup/overdue?agency_id={}&division_id={}",
            w.lead,
            banli_domain::ids::DivisionId::new()
        ),
        &lead_key,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{v}");
    assert_eq!(v["items"].as_array().map(Vec::len), Some(0), "{v}");
    // Without the division: the co-handler's opinion deadline (no division) is in the office's
    // list too.
    let (_, v) = call(
        &api,
        "GET",
        "/v1/followup/overdue",
        &format!("office:{}", w.office_agency.id),
        None,
    )
    .await;
    assert!(
        v["items"].as_array().is_some_and(|i| i
            .iter()
            .any(|x| x["kind"] == "co_opinion" && x["division_id"].is_null())),
        "{v}"
    );
    let (status, v) = call(
        &api,
        "GET",
        &format!(
            "/v1/followup/due-soon?agency_id={}&division_id=not-a-uuid",
            w.lead
        ),
        &lead_key,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{v}");
}

/// Newer calendar data loaded into the suggestions service moves a tracked deadline: the
/// follow-up service keeps the new date and the old one, and its alerts follow the new date.
#[tokio::test]
async fn newer_calendar_data_moves_tracked_deadlines() {
    let f = followed(false).await;
    let lead = f.w.assigned["assignments"]
        .as_array()
        .expect("assignments")
        .iter()
        .find(|a| a["agency_id"] == f.w.lead.as_str())
        .expect("lead")["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let (due, ..) = f
        .store
        .deadline(&lead, "first_contact")
        .await
        .expect("read")
        .expect("tracked");
    assert_eq!(due, date!(2020 - 03 - 23));

    // 5 and 6 March 2020 become days off: 15 working days from 2 March end on the 25th.
    let text = include_str!("../../../../crates/calendar/data/prc-holidays.toml")
        .replace(r#"version = "2026.1""#, r#"version = "2026.1-test""#)
        + "\n[[period]]\nname = \"Test closure\"\nname_zh = \"测试\"\noff = [\"2020-03-05\", \"2020-03-06\"]\nmakeup = []\nsource = \"notice-2020\"\n";
    let cal = Calendar::from_toml_str("corrected.toml", &text).unwrap_or_else(|e| panic!("{e}"));
    let app = App::new(
        f.w.store.clone(),
        RuleProfile::hunan(),
        cal,
        Clock::Fixed(date!(2020 - 03 - 03)),
    );
    let r = app
        .recompute_all(&banli_domain::Actor::assigning_office(f.w.office_agency.id))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(r.suggestions_moved, 1);
    let out = f
        .consumer
        .handle(&events(&f.w.store).await)
        .await
        .expect("handled");
    assert!(out.contains(&Handled::Applied), "{out:?}");
    let (due, previous, met) = f
        .store
        .deadline(&lead, "first_contact")
        .await
        .expect("read")
        .expect("tracked");
    assert_eq!(
        (due, previous, met),
        (date!(2020 - 03 - 25), Some(date!(2020 - 03 - 23)), false)
    );
    let timer = |key: String| {
        let store = f.store.clone();
        async move {
            store
                .timers()
                .get(store.pool(), &key)
                .await
                .expect("read")
                .map(|t| t.state)
        }
    };
    assert_eq!(
        timer(format!("{lead}:first_contact:2020-03-25:after-1")).await,
        Some("pending".to_owned())
    );
    assert_eq!(
        timer(format!("{lead}:first_contact:2020-03-23:after-1")).await,
        Some("cancelled".to_owned())
    );
}
