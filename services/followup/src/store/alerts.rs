//! Timer keys, and the alerts, commitment timers and progress reminders a suggestion schedules.

use super::*;

/// The key of the reminder for a commitment's next progress word.
pub fn progress_key(p: &ProgressDue) -> String {
    format!("progress:{}:{}", p.commitment, p.due)
}

/// The key of the timer that raises a notice when that word is still owed after the grace period.
pub fn progress_overdue_key(p: &ProgressDue) -> String {
    format!("progress-overdue:{}:{}", p.commitment, p.due)
}

/// A commitment's timer key.
pub fn commitment_key(id: banli_domain::ids::CommitmentId) -> String {
    format!("commitment:{id}")
}

/// The business day's morning (09:00, UTC+8) on which an alert dated `day` goes out.
pub fn fire_time(day: Date) -> OffsetDateTime {
    let cst = UtcOffset::from_hms(8, 0, 0).unwrap_or(UtcOffset::UTC);
    day.with_hms(9, 0, 0)
        .map(|t| t.assume_offset(cst))
        .unwrap_or_else(|_| day.midnight().assume_utc())
}

/// A timer's key: one per deadline, due date and alert. A deadline that moves gets new timers
/// (its old ones are cancelled, or stay fired), so the alerts of the new date go out too.
pub fn timer_key(assignment_id: &str, kind: DeadlineKind, due: Date, alert: Alert) -> String {
    format!("{assignment_id}:{}:{due}:{}", kind.as_str(), alert.key())
}

/// The key the first release gave a timer (without the due date); still cancelled, so that
/// timers scheduled before the upgrade do not fire for a deadline that moved or was met.
pub(super) fn legacy_timer_key(assignment_id: &str, kind: DeadlineKind, alert: Alert) -> String {
    format!("{assignment_id}:{}:{}", kind.as_str(), alert.key())
}

/// The timers a deadline's alerts need: `(key, fire at, payload)`.
pub fn timers_for(
    suggestion_id: &str,
    d: &TrackedDeadline,
    r: &Reminders,
) -> Vec<(String, OffsetDateTime, String)> {
    let aid = d.assignment_id.to_string();
    alerts(d.due, r)
        .into_iter()
        .map(|(alert, day)| {
            let payload = AlertPayload {
                suggestion_id: suggestion_id.to_owned(),
                assignment_id: aid.clone(),
                agency_id: d.agency.to_string(),
                kind: d.kind.as_str().to_owned(),
                due: d.due,
                alert: alert.key(),
                level: alert.level().to_owned(),
            };
            (
                timer_key(&aid, d.kind, d.due, alert),
                fire_time(day),
                serde_json::to_string(&payload).unwrap_or_default(),
            )
        })
        .collect()
}

/// What an event changed of a replica, as far as its tracked rows go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Changed {
    /// The assignments (and with them the units party to the suggestion).
    pub units: bool,
    /// The deadlines (due dates, met flags, which deadlines there are).
    pub deadlines: bool,
}

impl Changed {
    /// Everything: a replica stored for the first time, or rebuilt.
    pub const ALL: Changed = Changed {
        units: true,
        deadlines: true,
    };
}

/// Adds what `s` changed of the per-day counts since `old` to `days` (they are sums: a batch
/// writes them once, with `add_days`); true when the suggestion's per-assignment fact rows
/// must be rewritten (`save_fact_rows_many`). Most events change no fact a metrics table holds (a
/// communication's text, a review step): then its rows stay as they are.
pub fn fact_changes(old: Option<&Suggestion>, s: &Suggestion, days: &mut DaySums) -> bool {
    // The counts are a function of the facts the rows hold (the per-day sums and the SQL
    // aggregate over the rows are checked against each other): same facts, no change of any
    // day, and the per-day changes are not worked out.
    let same_facts = old.is_some_and(|o| SuggestionFacts::of(o) == SuggestionFacts::of(s));
    if !same_facts {
        for (key, day, change) in day_changes_diff(old, s) {
            let at = days.entry((key, day)).or_insert([0; COUNTS]);
            for (x, v) in at.iter_mut().zip(change) {
                *x += v;
            }
        }
    }
    let keys = |x: &Suggestion| {
        banli_domain::followup::deadlines_of(x)
            .into_iter()
            .map(|d| (d.assignment_id, d.kind))
            .collect::<Vec<_>>()
    };
    !(same_facts && old.is_some_and(|o| keys(o) == keys(s)))
}

/// Keeps a timer per commitment: due the day after its target date while it is open,
/// cancelled once it is converted (a timer that fired stays fired).
pub fn sync_commitments_into(ops: &mut Ops, s: &Suggestion) {
    for k in &s.commitments {
        let key = commitment_key(k.id);
        match k.state {
            banli_domain::suggestion::CommitmentState::Open => {
                let payload = CommitmentPayload {
                    commitment: CommitmentRef {
                        suggestion_id: s.id.to_string(),
                        commitment_id: k.id.to_string(),
                        agency_id: k.owner.to_string(),
                        target_date: k.target_date,
                    },
                };
                let at = fire_time(k.target_date + time::Duration::days(1));
                ops.schedule(
                    &key,
                    at,
                    &serde_json::to_string(&payload).unwrap_or_default(),
                );
            }
            banli_domain::suggestion::CommitmentState::Converted => {
                ops.cancel(&key);
            }
        }
    }
}

/// Keeps a reminder per open commitment for the progress word its owner next owes the deputy:
/// moved when progress is reported or the deputy contacted, gone when the commitment is
/// converted.
pub fn sync_progress_into(
    ops: &mut Ops,
    before: Option<&Suggestion>,
    s: &Suggestion,
    reminders: &Reminders,
) {
    let now = progress_notices_due(s, reminders);
    for old in before
        .map(|b| progress_notices_due(b, reminders))
        .unwrap_or_default()
    {
        if !now.contains(&old) {
            ops.cancel(&progress_key(&old));
            ops.cancel(&progress_overdue_key(&old));
        }
    }
    for p in &now {
        let payload = |alert: String, level: &str| AlertPayload {
            suggestion_id: s.id.to_string(),
            assignment_id: p.assignment.to_string(),
            agency_id: p.agency.to_string(),
            kind: "progress_notice".into(),
            due: p.due,
            alert,
            level: level.into(),
        };
        ops.schedule(
            &progress_key(p),
            fire_time(p.due),
            &serde_json::to_string(&payload(format!("commitment-{}", p.commitment), "reminder"))
                .unwrap_or_default(),
        );
        let grace = time::Duration::days(i64::from(reminders.progress_grace_days));
        ops.schedule(
            &progress_overdue_key(p),
            fire_time(p.due + grace),
            &serde_json::to_string(&payload(
                format!("{PROGRESS_OVERDUE}{}", p.commitment),
                "late",
            ))
            .unwrap_or_default(),
        );
    }
}

/// The alert name (before the commitment id) of a progress word past its grace period.
pub const PROGRESS_OVERDUE: &str = "overdue-commitment-";

/// Cancels the alerts of a deadline's date that have not gone out.
pub(super) fn cancel_alerts(
    ops: &mut Ops,
    aid: &str,
    kind: DeadlineKind,
    due: Date,
    reminders: &Reminders,
) {
    for (alert, _) in alerts(due, reminders) {
        ops.cancel(&timer_key(aid, kind, due, alert));
        ops.cancel(&legacy_timer_key(aid, kind, alert));
    }
}
