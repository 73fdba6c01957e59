//! Follow-up (跟踪督办) of due dates: which deadlines of a suggestion are still owed, and the
//! reminders and overdue flags each one gets under the rule profile.

use time::{Date, Duration};

use crate::ids::{AgencyId, AssignmentId};
use crate::profile::Reminders;
use crate::suggestion::{AssignmentState, Suggestion};

/// A due date a unit still owes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DeadlineKind {
    /// First contact with the deputy (responsible units).
    FirstContact,
    /// The co-handler's opinion to the lead.
    CoOpinion,
    /// The reply to the deputy (responsible units), as moved by extensions and re-handling.
    Reply,
    /// 内部审批: the current step of the unit's approval chain on its drafted reply.
    ApprovalStep,
}

impl DeadlineKind {
    pub fn as_str(self) -> &'static str {
        match self {
            DeadlineKind::FirstContact => "first_contact",
            DeadlineKind::CoOpinion => "co_opinion",
            DeadlineKind::Reply => "reply",
            DeadlineKind::ApprovalStep => "approval_step",
        }
    }

    pub fn parse(s: &str) -> Option<DeadlineKind> {
        match s {
            "first_contact" => Some(DeadlineKind::FirstContact),
            "co_opinion" => Some(DeadlineKind::CoOpinion),
            "reply" => Some(DeadlineKind::Reply),
            "approval_step" => Some(DeadlineKind::ApprovalStep),
            _ => None,
        }
    }
}

/// One deadline of one assignment, and whether it is met.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackedDeadline {
    pub assignment_id: AssignmentId,
    pub agency: AgencyId,
    pub kind: DeadlineKind,
    pub due: Date,
    /// Met (the contact, opinion or reply is in; a waived opinion counts).
    pub met: bool,
}

/// Every deadline the live assignments of `s` carry, met or not (superseded assignments owe
/// nothing).
pub fn deadlines_of(s: &Suggestion) -> Vec<TrackedDeadline> {
    let mut out = Vec::new();
    for a in &s.assignments {
        if a.state == AssignmentState::Superseded {
            continue;
        }
        let mut push = |kind, due: Option<Date>, met: bool| {
            if let Some(due) = due {
                out.push(TrackedDeadline {
                    assignment_id: a.id,
                    agency: a.agency,
                    kind,
                    due,
                    met,
                });
            }
        };
        let contacted = s.communications.iter().any(|c| c.assignment_id == a.id);
        let opinion = a.opinion_waived || s.opinions.iter().any(|o| o.assignment_id == a.id);
        // The latest reply of this unit answers the current round.
        let replied = s.replies.iter().any(|r| r.assignment_id == a.id) && s.rehandling_rounds == 0
            || a.state == AssignmentState::Replied
            // A supplementary reply's draft in review: the unit had replied.
            || a
                .approval
                .as_ref()
                .is_some_and(|x| x.returns_to == AssignmentState::Replied);
        push(
            DeadlineKind::FirstContact,
            a.deadlines.first_contact.as_ref().map(|d| d.due),
            contacted,
        );
        push(
            DeadlineKind::CoOpinion,
            a.deadlines.co_opinion.as_ref().map(|d| d.due),
            opinion,
        );
        push(
            DeadlineKind::Reply,
            a.deadlines.reply.as_ref().map(|d| d.due),
            replied,
        );
        // The step the draft waits on; the row stays (met) once the chain is done or returned.
        let step_due = a
            .approval
            .as_ref()
            .and_then(|x| x.current().and_then(|i| x.steps[i].due.as_ref()))
            .map(|d| d.due);
        push(DeadlineKind::ApprovalStep, step_due, false);
    }
    out
}

/// What a timer of a deadline does when it fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Alert {
    /// A reminder `days` before the due date (0: on it).
    Before(u32),
    /// A reminder `days` after the due date; the first one flags the deadline late.
    After(u32),
    /// Past due by more than the profile's very-late threshold.
    VeryLate,
}

impl Alert {
    /// A stable name, part of the timer's key.
    pub fn key(self) -> String {
        match self {
            Alert::Before(d) => format!("before-{d}"),
            Alert::After(d) => format!("after-{d}"),
            Alert::VeryLate => "very-late".into(),
        }
    }

    /// `reminder`, `late` or `very_late`.
    pub fn level(self) -> &'static str {
        match self {
            Alert::Before(_) => "reminder",
            Alert::After(_) => "late",
            Alert::VeryLate => "very_late",
        }
    }
}

/// The alerts of a deadline due on `due` and the day each goes out. "Late" starts the day after
/// the due date even when the profile sends no reminder then; "very late" the day after the
/// threshold.
pub fn alerts(due: Date, r: &Reminders) -> Vec<(Alert, Date)> {
    let mut out: Vec<(Alert, Date)> = r
        .days_before
        .iter()
        .map(|d| (Alert::Before(*d), due - Duration::days(i64::from(*d))))
        .collect();
    let mut after: Vec<u32> = r.days_after.iter().copied().filter(|d| *d > 0).collect();
    if !after.contains(&1) {
        after.push(1);
    }
    out.extend(
        after
            .into_iter()
            .map(|d| (Alert::After(d), due + Duration::days(i64::from(d)))),
    );
    out.push((
        Alert::VeryLate,
        due + Duration::days(i64::from(r.very_late_after_days) + 1),
    ));
    out.sort_by_key(|(_, day)| *day);
    out.dedup();
    out
}

/// How late a deadline is on `today`: `None` (not yet due, or met), `late`, `very_late`.
pub fn lateness(d: &TrackedDeadline, today: Date, r: &Reminders) -> Option<&'static str> {
    if d.met || today <= d.due {
        return None;
    }
    if (today - d.due).whole_days() > i64::from(r.very_late_after_days) {
        Some("very_late")
    } else {
        Some("late")
    }
}

/// When the owner of an open commitment next owes the deputy word of its progress (承诺事项进展
/// 通报, also in recess): `progress_notice_months` after the latest of the commitment's
/// creation, its last progress report and the owner's last communication with the deputies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProgressDue {
    pub commitment: crate::ids::CommitmentId,
    pub agency: AgencyId,
    pub assignment: AssignmentId,
    pub due: Date,
}

pub fn progress_notices_due(s: &crate::suggestion::Suggestion, r: &Reminders) -> Vec<ProgressDue> {
    if r.progress_notice_months == 0 {
        return Vec::new();
    }
    s.open_commitments()
        .filter_map(|c| {
            let last = c
                .progress
                .iter()
                .filter(|p| p.to_deputy)
                .map(|p| p.on)
                .chain(
                    s.communications
                        .iter()
                        .filter(|m| m.assignment_id == c.assignment_id && m.on >= c.created_on)
                        .map(|m| m.on),
                )
                .chain(std::iter::once(c.created_on))
                .max()?;
            Some(ProgressDue {
                commitment: c.id,
                agency: c.owner,
                assignment: c.assignment_id,
                due: banli_calendar::add_months(last, r.progress_notice_months)?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    fn profile() -> Reminders {
        Reminders {
            days_before: vec![15, 5, 0],
            days_after: vec![1],
            very_late_after_days: 30,
            progress_notice_months: 3,
            progress_grace_days: 10,
        }
    }

    #[test]
    fn alerts_follow_the_profile() {
        let a = alerts(date!(2020 - 06 - 02), &profile());
        assert_eq!(
            a,
            vec![
                (Alert::Before(15), date!(2020 - 05 - 18)),
                (Alert::Before(5), date!(2020 - 05 - 28)),
                (Alert::Before(0), date!(2020 - 06 - 02)),
                (Alert::After(1), date!(2020 - 06 - 03)),
                (Alert::VeryLate, date!(2020 - 07 - 03)),
            ]
        );
        // No reminder after the due date in the profile: the late flag still comes.
        let quiet = Reminders {
            days_after: Vec::new(),
            ..profile()
        };
        assert!(
            alerts(date!(2020 - 06 - 02), &quiet)
                .contains(&(Alert::After(1), date!(2020 - 06 - 03)))
        );
    }

    #[test]
    fn lateness_has_two_tiers() {
        let d = TrackedDeadline {
            assignment_id: AssignmentId::new(),
            agency: AgencyId::new(),
            kind: DeadlineKind::Reply,
            due: date!(2020 - 06 - 02),
            met: false,
        };
        let r = profile();
        assert_eq!(lateness(&d, date!(2020 - 06 - 02), &r), None);
        assert_eq!(lateness(&d, date!(2020 - 06 - 03), &r), Some("late"));
        assert_eq!(lateness(&d, date!(2020 - 07 - 02), &r), Some("late"));
        assert_eq!(lateness(&d, date!(2020 - 07 - 03), &r), Some("very_late"));
        let met = TrackedDeadline { met: true, ..d };
        assert_eq!(lateness(&met, date!(2020 - 09 - 01), &r), None);
    }
}
