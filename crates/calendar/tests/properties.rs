//! Property tests of the deadline arithmetic.

use std::collections::BTreeMap;

use banli_calendar::{Calendar, Deadline, DurationSpec, OutOfRangePolicy};
use proptest::prelude::*;
use time::{Date, Duration};

fn covered_date() -> impl Strategy<Value = Date> {
    let cal = Calendar::embedded();
    let span = (cal.last_day() - cal.first_day()).whole_days();
    (0..span - 400).prop_map(move |o| cal.first_day() + Duration::days(o))
}

proptest! {
    #[test]
    fn adding_working_days_lands_on_a_working_day(start in covered_date(), n in 1u32..200) {
        let cal = Calendar::embedded();
        let due = cal.add_working_days(start, n).expect("within the data");
        prop_assert_eq!(cal.is_workday(due), Some(true));
        prop_assert!(due > start);
        prop_assert_eq!(cal.working_days_between(start, due), Some(n));
    }

    #[test]
    fn adding_working_days_is_monotonic(start in covered_date(), n in 0u32..200) {
        let cal = Calendar::embedded();
        let a = cal.add_working_days(start, n).expect("within the data");
        let b = cal.add_working_days(start, n + 1).expect("within the data");
        prop_assert!(b > a);
    }

    #[test]
    fn fast_path_matches_day_by_day_stepping(start in covered_date(), n in 0u32..60) {
        let cal = Calendar::embedded();
        let mut d = start;
        let mut left = n;
        while left > 0 {
            d = d.next_day().expect("valid");
            if cal.is_workday(d) == Some(true) { left -= 1; }
        }
        prop_assert_eq!(cal.add_working_days(start, n), Some(d));
    }

    #[test]
    fn month_arithmetic_clamps_and_never_overshoots(start in covered_date(), months in 0u32..24) {
        let spec = DurationSpec::CalendarMonths { months };
        let due = Deadline::due_date(Calendar::embedded(), start, &spec, OutOfRangePolicy::WeekendsOnly, &BTreeMap::new())
            .expect("month arithmetic never fails in range");
        let month_index = |d: Date| d.year() * 12 + i32::from(u8::from(d.month()));
        prop_assert_eq!(month_index(due) - month_index(start), months as i32);
        prop_assert!(due.day() == start.day() || due.day() == due.month().length(due.year()));
        prop_assert!(due.day() <= start.day());
    }
}
