//! The store's unit tests: deadline rows, timers and facts.

use super::*;
use banli_domain::ids::{AgencyId, AssignmentId};
use time::macros::{date, datetime};

fn deadline(a: AssignmentId, agency: AgencyId, due: Date, met: bool) -> TrackedDeadline {
    TrackedDeadline {
        assignment_id: a,
        agency,
        kind: DeadlineKind::Reply,
        due,
        met,
    }
}

/// A batch's events move the rows in memory as each event's own writes would have: the
/// previous due date is the one just before the last move, a deadline no live assignment
/// carries is met, and each changed row is written once.
#[test]
fn a_batch_moves_deadline_rows_as_its_events_would_one_by_one() {
    let reminders = banli_domain::profile::RuleProfile::national().reminders;
    let now = datetime!(2020-03-01 0:00 UTC);
    let (a, b, agency) = (AssignmentId::new(), AssignmentId::new(), AgencyId::new());
    let stored = vec![(
        "s".to_string(),
        a.to_string(),
        "reply".to_string(),
        agency.to_string(),
        date!(2020 - 05 - 01),
        None,
        false,
    )];
    let mut rows = DeadlineRows::read(&["s".to_string(), "t".to_string()], stored);
    let mut ops = Ops::default();
    let units = [agency.to_string()];
    // An extension, then a second one in the same batch.
    for due in [date!(2020 - 05 - 15), date!(2020 - 06 - 01)] {
        let now_due = [deadline(a, agency, due, false)];
        rows.track(
            &mut ops,
            "s",
            &units,
            &now_due,
            Changed::ALL,
            &reminders,
            now,
        );
    }
    // Then the assignment is superseded by another one.
    let after = [deadline(b, agency, date!(2020 - 06 - 10), false)];
    rows.track(&mut ops, "s", &units, &after, Changed::ALL, &reminders, now);
    // A suggestion the batch did not move writes nothing.
    rows.track(
        &mut ops,
        "t",
        &[],
        &[],
        Changed {
            units: false,
            deadlines: false,
        },
        &reminders,
        now,
    );

    let (units_out, mut changed) = rows.take_changes();
    changed.sort_by(|x, y| x.1.cmp(&y.1).then(x.4.cmp(&y.4)));
    assert_eq!(units_out, vec![(agency.to_string(), "s".to_string())]);
    let by = |id: AssignmentId| changed.iter().find(|r| r.1 == id.to_string()).cloned();
    let moved = by(a).expect("the moved row");
    assert_eq!(
        (moved.4, moved.5, moved.6),
        (date!(2020 - 06 - 01), Some(date!(2020 - 05 - 15)), true),
        "due, previous due (the one before the last move), met (superseded)"
    );
    let new = by(b).expect("the new row");
    assert_eq!((new.4, new.5, new.6), (date!(2020 - 06 - 10), None, false));
    assert_eq!(changed.len(), 2, "each changed row once: {changed:?}");
    // Written: nothing is left to write.
    let (u, c) = rows.take_changes();
    assert!(u.is_empty() && c.is_empty());
}
