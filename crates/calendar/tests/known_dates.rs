//! Known dates checked against the shipped data, and bad calendar files refused at load.

use std::collections::BTreeMap;

use banli_calendar::{
    Calendar, Deadline, DeadlineError, DurationSpec, OutOfRangePolicy, parse_date,
};
use time::Date;

fn d(s: &str) -> Date {
    parse_date(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn compute(start: &str, spec: DurationSpec) -> Deadline {
    Deadline::compute(
        Calendar::embedded(),
        "assignment",
        d(start),
        &spec,
        OutOfRangePolicy::Refuse,
        &BTreeMap::new(),
    )
    .unwrap_or_else(|e| panic!("{start} + {spec:?}: {e}"))
}

#[test]
fn five_working_days_across_national_day_and_mid_autumn_2020() {
    let dl = compute("2020-09-29", DurationSpec::WorkingDays { days: 5 });
    assert_eq!(dl.due, d("2020-10-13"));
    let text = dl.explain();
    assert!(
        text.contains("5 working days from assignment on 2020-09-29 → 2020-10-13"),
        "{text}"
    );
    assert!(
        text.contains("skipped National Day and Mid-Autumn Festival 2020-10-01–2020-10-08"),
        "{text}"
    );
    assert!(
        text.contains("counted the make-up working day 2020-10-10"),
        "{text}"
    );
    assert!(!dl.assumed_weekends_only);
}

#[test]
fn three_calendar_months_from_30_november_2020_clamps_to_28_february() {
    let dl = compute("2020-11-30", DurationSpec::CalendarMonths { months: 3 });
    assert_eq!(dl.due, d("2021-02-28"));
    assert!(dl.explain().contains("clamped"), "{}", dl.explain());
}

#[test]
fn thirty_first_january_plus_one_month_is_the_last_of_february() {
    assert_eq!(
        compute("2020-01-31", DurationSpec::CalendarMonths { months: 1 }).due,
        d("2020-02-29")
    );
    assert_eq!(
        compute("2021-01-31", DurationSpec::CalendarMonths { months: 1 }).due,
        d("2021-02-28")
    );
    assert_eq!(
        compute("2020-03-02", DurationSpec::CalendarMonths { months: 3 }).due,
        d("2020-06-02")
    );
}

#[test]
fn twenty_working_days_across_spring_festival_2024_with_both_make_up_sundays() {
    let dl = compute("2024-02-01", DurationSpec::WorkingDays { days: 20 });
    assert_eq!(dl.due, d("2024-03-05"));
    let text = dl.explain();
    assert!(
        text.contains("counted the make-up working day 2024-02-04"),
        "{text}"
    );
    assert!(
        text.contains("counted the make-up working day 2024-02-18"),
        "{text}"
    );
    assert!(
        text.contains("skipped Spring Festival 2024-02-10–2024-02-17"),
        "{text}"
    );
}

#[test]
fn first_contact_fifteen_working_days_from_assignment() {
    assert_eq!(
        compute("2020-03-02", DurationSpec::WorkingDays { days: 15 }).due,
        d("2020-03-23")
    );
}

#[test]
fn fixed_and_relative_deadlines() {
    let cal = Calendar::embedded();
    let reply = compute("2020-03-02", DurationSpec::CalendarMonths { months: 3 });
    let others = BTreeMap::from([("reply".to_owned(), reply.due)]);
    let spec = DurationSpec::AfterDeadline {
        deadline: "reply".into(),
        then: Box::new(DurationSpec::CalendarDays { days: -10 }),
    };
    let co = Deadline::compute(
        cal,
        "assignment",
        d("2020-03-02"),
        &spec,
        OutOfRangePolicy::Refuse,
        &others,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(co.due, d("2020-05-23"));
    assert!(
        co.explain().starts_with("the reply deadline is 2020-06-02"),
        "{}",
        co.explain()
    );
    // A calendar-day result on a rest day is kept, and the trace says so.
    assert!(
        co.explain().contains("is a rest day (weekend)"),
        "{}",
        co.explain()
    );

    let fixed = compute(
        "2020-03-02",
        DurationSpec::FixedDate {
            date: d("2020-04-30"),
        },
    );
    assert_eq!(fixed.due, d("2020-04-30"));

    let missing = Deadline::compute(
        cal,
        "x",
        d("2020-03-02"),
        &spec,
        OutOfRangePolicy::Refuse,
        &BTreeMap::new(),
    );
    assert_eq!(missing, Err(DeadlineError::UnknownDeadline("reply".into())));
}

#[test]
fn outside_the_data_is_an_error_or_an_explicit_assumption() {
    let cal = Calendar::embedded();
    let spec = DurationSpec::WorkingDays { days: 10 };
    let err = Deadline::compute(
        cal,
        "reply",
        d("2026-12-28"),
        &spec,
        OutOfRangePolicy::Refuse,
        &BTreeMap::new(),
    )
    .expect_err("2027 is not covered");
    assert!(
        matches!(err, DeadlineError::OutOfRange { date, .. } if date == d("2027-01-01")),
        "{err}"
    );
    assert!(
        err.to_string().contains("load newer calendar data"),
        "{err}"
    );

    let dl = Deadline::compute(
        cal,
        "reply",
        d("2026-12-28"),
        &spec,
        OutOfRangePolicy::WeekendsOnly,
        &BTreeMap::new(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    // 12-29, 12-30, 12-31, then Mon–Fri of 2027 as if there were no holidays.
    assert_eq!(dl.due, d("2027-01-11"));
    assert!(dl.assumed_weekends_only);
    assert!(
        dl.explain().contains("weekends only assumed"),
        "{}",
        dl.explain()
    );
}

#[test]
fn recompute_reports_the_old_and_new_date_when_the_data_changes() {
    let old = compute("2020-09-29", DurationSpec::WorkingDays { days: 5 });
    // The same data with the 2020 make-up Saturday removed: one working day fewer that week.
    let text = include_str!("../data/prc-holidays.toml")
        .replace(
            r#"makeup = ["2020-09-27", "2020-10-10"]"#,
            r#"makeup = ["2020-09-27"]"#,
        )
        .replace(r#"version = "2026.1""#, r#"version = "test.2""#);
    let changed = Calendar::from_toml_str("changed.toml", &text).unwrap_or_else(|e| panic!("{e}"));
    let r = old
        .recompute(&changed, OutOfRangePolicy::Refuse, &BTreeMap::new())
        .unwrap_or_else(|e| panic!("{e}"))
        .expect("the date moves");
    assert_eq!(r.old_due, d("2020-10-13"));
    assert_eq!(r.deadline.due, d("2020-10-14"));
    assert_eq!(r.deadline.calendar_version, "test.2");
    assert!(
        r.deadline.explain().contains("was 2020-10-13 with 2026.1"),
        "{}",
        r.deadline.explain()
    );
    // Unchanged data leaves it alone.
    assert_eq!(
        old.recompute(
            Calendar::embedded(),
            OutOfRangePolicy::Refuse,
            &BTreeMap::new()
        ),
        Ok(None)
    );
}

#[test]
fn extension_keeps_the_history() {
    let mut dl = compute("2020-03-02", DurationSpec::CalendarMonths { months: 3 });
    dl.extend(d("2020-07-02"), "extension approved on 2020-05-20");
    assert_eq!(dl.due, d("2020-07-02"));
    assert_eq!(
        dl.explain(),
        "3 calendar months from assignment on 2020-03-02 → 2020-06-02; \
         extension approved on 2020-05-20: moved from 2020-06-02 to 2020-07-02"
    );
}

const BASE: &str =
    "version = \"t\"\nfirst_year = 2020\nlast_year = 2020\n[sources]\nn = \"notice\"\n";

fn refused(body: &str) -> String {
    match Calendar::from_toml_str("bad.toml", &format!("{BASE}{body}")) {
        Ok(_) => panic!("accepted: {body}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn bad_calendar_files_are_refused_with_file_key_and_reason() {
    let e = refused(
        "[[period]]\nname=\"X\"\nname_zh=\"X\"\noff=[\"2020-10-01\",\"2020-10-03\"]\nsource=\"n\"\ncolour=\"red\"\n",
    );
    assert!(e.starts_with("bad.toml:") && e.contains("colour"), "{e}");

    let e = refused(
        "[[period]]\nname=\"X\"\nname_zh=\"X\"\noff=[\"2020-10-01\",\"2020-10-03\"]\nmakeup=[\"2020-10-09\"]\nsource=\"n\"\n",
    );
    assert!(
        e.contains("period[0].makeup") && e.contains("must be a Saturday or Sunday"),
        "{e}"
    );

    let e = refused(
        "[[period]]\nname=\"A\"\nname_zh=\"A\"\noff=[\"2020-10-01\",\"2020-10-05\"]\nsource=\"n\"\n\
         [[period]]\nname=\"B\"\nname_zh=\"B\"\noff=[\"2020-10-04\",\"2020-10-08\"]\nsource=\"n\"\n",
    );
    assert!(e.contains("overlap"), "{e}");

    let e = refused(
        "[[period]]\nname=\"X\"\nname_zh=\"X\"\noff=[\"2020-10-05\",\"2020-10-01\"]\nsource=\"n\"\n",
    );
    assert!(
        e.contains("period[0].off") && e.contains("before it starts"),
        "{e}"
    );

    let e = refused(
        "[[period]]\nname=\"X\"\nname_zh=\"X\"\noff=[\"2020-13-01\",\"2020-10-01\"]\nsource=\"n\"\n",
    );
    assert!(e.contains("not a YYYY-MM-DD date"), "{e}");

    let e = refused(
        "[[period]]\nname=\"X\"\nname_zh=\"X\"\noff=[\"2021-10-01\",\"2021-10-02\"]\nsource=\"n\"\n",
    );
    assert!(e.contains("outside the covered years"), "{e}");

    let e = refused(
        "[[period]]\nname=\"X\"\nname_zh=\"X\"\noff=[\"2020-10-01\",\"2020-10-02\"]\nsource=\"unknown\"\n",
    );
    assert!(e.contains("not listed under [sources]"), "{e}");
}
