//! Deadline arithmetic: a due date is computed from a start date and a duration, never typed in,
//! and always carries the steps that produced it.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use time::{Date, Month, Weekday};

use crate::calendar::Calendar;
use crate::format_date;

/// A duration as a rule profile names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum DurationSpec {
    /// Calendar days (negative: before the start).
    CalendarDays { days: i32 },
    /// PRC working days: public holidays skipped, make-up working days counted.
    WorkingDays { days: u32 },
    /// Calendar months; a day that does not exist in the target month clamps to its last day.
    CalendarMonths { months: u32 },
    /// A fixed date, whatever the start.
    FixedDate { date: Date },
    /// Another named deadline's due date, then a further duration from it.
    AfterDeadline {
        deadline: String,
        then: Box<DurationSpec>,
    },
}

impl fmt::Display for DurationSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let plural = |n: i64| if n.abs() == 1 { "" } else { "s" };
        match self {
            DurationSpec::CalendarDays { days } => {
                write!(f, "{days} calendar day{}", plural(i64::from(*days)))
            }
            DurationSpec::WorkingDays { days } => {
                write!(f, "{days} working day{}", plural(i64::from(*days)))
            }
            DurationSpec::CalendarMonths { months } => {
                write!(f, "{months} calendar month{}", plural(i64::from(*months)))
            }
            DurationSpec::FixedDate { date } => write!(f, "the fixed date {}", format_date(*date)),
            DurationSpec::AfterDeadline { deadline, then } => {
                write!(f, "{then} after the {deadline} deadline")
            }
        }
    }
}

/// What to do when arithmetic leaves the years the calendar data covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutOfRangePolicy {
    /// Refuse with [`DeadlineError::OutOfRange`].
    #[default]
    Refuse,
    /// Treat days outside the data as Monday–Friday working days and say so in the trace.
    WeekendsOnly,
}

/// One line of a deadline's explanation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceStep {
    pub text: String,
}

impl From<String> for TraceStep {
    fn from(text: String) -> Self {
        TraceStep { text }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeadlineError {
    #[error(
        "{date} is outside the calendar data (covers {first} to {last}, version {version}); \
         load newer calendar data or allow the weekends-only assumption"
    )]
    OutOfRange {
        date: Date,
        first: Date,
        last: Date,
        version: String,
    },
    #[error("the deadline refers to `{0}`, which has not been computed")]
    UnknownDeadline(String),
    #[error("{0} is beyond the supported date range")]
    Overflow(String),
}

/// A computed due date with everything needed to explain and recompute it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deadline {
    /// What starts the clock, e.g. "assignment".
    pub start_label: String,
    pub start: Date,
    pub duration: DurationSpec,
    pub due: Date,
    /// Calendar data version the date was computed with.
    pub calendar_version: String,
    /// True when some day was outside the data and weekends-only was assumed.
    pub assumed_weekends_only: bool,
    pub trace: Vec<TraceStep>,
}

/// The result of recomputing a deadline whose date changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recomputed {
    pub old_due: Date,
    pub deadline: Deadline,
}

struct Ctx<'a> {
    cal: &'a Calendar,
    policy: OutOfRangePolicy,
    others: &'a BTreeMap<String, Date>,
    assumed: bool,
    trace: Vec<TraceStep>,
}

impl Deadline {
    /// Computes a due date. `others` holds already-computed deadlines by name, for
    /// [`DurationSpec::AfterDeadline`].
    pub fn compute(
        cal: &Calendar,
        start_label: &str,
        start: Date,
        duration: &DurationSpec,
        policy: OutOfRangePolicy,
        others: &BTreeMap<String, Date>,
    ) -> Result<Deadline, DeadlineError> {
        let mut ctx = Ctx {
            cal,
            policy,
            others,
            assumed: false,
            trace: Vec::new(),
        };
        let due = ctx.eval(start_label, start, duration, true)?;
        if let Some(note) = cal
            .day(due)
            .filter(|k| !k.is_workday())
            .and_then(|k| k.note())
        {
            ctx.trace.push(
                format!(
                    "note: {} is a rest day ({note}); the profile does not move it",
                    format_date(due)
                )
                .into(),
            );
        }
        Ok(Deadline {
            start_label: start_label.to_owned(),
            start,
            duration: duration.clone(),
            due,
            calendar_version: cal.version().to_owned(),
            assumed_weekends_only: ctx.assumed,
            trace: ctx.trace,
        })
    }

    /// The due date alone, without a trace: the fast path used when re-checking many deadlines.
    pub fn due_date(
        cal: &Calendar,
        start: Date,
        duration: &DurationSpec,
        policy: OutOfRangePolicy,
        others: &BTreeMap<String, Date>,
    ) -> Result<Date, DeadlineError> {
        let mut ctx = Ctx {
            cal,
            policy,
            others,
            assumed: false,
            trace: Vec::new(),
        };
        ctx.eval("", start, duration, false)
    }

    /// Recomputes against (possibly newer) calendar data. `Ok(None)` when the date is unchanged;
    /// otherwise the new deadline with a trace line recording the old date.
    pub fn recompute(
        &self,
        cal: &Calendar,
        policy: OutOfRangePolicy,
        others: &BTreeMap<String, Date>,
    ) -> Result<Option<Recomputed>, DeadlineError> {
        let due = Self::due_date(cal, self.start, &self.duration, policy, others)?;
        if due == self.due {
            return Ok(None);
        }
        let mut deadline = Self::compute(
            cal,
            &self.start_label,
            self.start,
            &self.duration,
            policy,
            others,
        )?;
        deadline.trace.push(
            format!(
                "recomputed with calendar data {} (was {} with {})",
                cal.version(),
                format_date(self.due),
                self.calendar_version
            )
            .into(),
        );
        Ok(Some(Recomputed {
            old_due: self.due,
            deadline,
        }))
    }

    /// Moves the due date by a decision (an approved extension), keeping the history in the trace.
    pub fn extend(&mut self, new_due: Date, reason: &str) {
        self.trace.push(
            format!(
                "{reason}: moved from {} to {}",
                format_date(self.due),
                format_date(new_due)
            )
            .into(),
        );
        self.due = new_due;
        // From now on the date is a decision: new calendar data leaves it alone.
        self.duration = DurationSpec::FixedDate { date: new_due };
    }

    /// The whole explanation on one line.
    pub fn explain(&self) -> String {
        self.trace
            .iter()
            .map(|s| s.text.as_str())
            .collect::<Vec<_>>()
            .join("; ")
    }
}

impl Ctx<'_> {
    fn out_of_range(&self, date: Date) -> DeadlineError {
        DeadlineError::OutOfRange {
            date,
            first: self.cal.first_day(),
            last: self.cal.last_day(),
            version: self.cal.version().to_owned(),
        }
    }

    fn eval(
        &mut self,
        label: &str,
        start: Date,
        spec: &DurationSpec,
        explain: bool,
    ) -> Result<Date, DeadlineError> {
        let due = match spec {
            DurationSpec::CalendarDays { days } => start
                .checked_add(time::Duration::days(i64::from(*days)))
                .ok_or_else(|| DeadlineError::Overflow(format!("{start} + {days} days")))?,
            DurationSpec::CalendarMonths { months } => add_months(start, *months)
                .ok_or_else(|| DeadlineError::Overflow(format!("{start} + {months} months")))?,
            DurationSpec::FixedDate { date } => *date,
            DurationSpec::WorkingDays { days } => {
                return self.working_days(label, start, *days, explain);
            }
            DurationSpec::AfterDeadline { deadline, then } => {
                let base = *self
                    .others
                    .get(deadline)
                    .ok_or_else(|| DeadlineError::UnknownDeadline(deadline.clone()))?;
                if explain {
                    self.trace
                        .push(format!("the {deadline} deadline is {}", format_date(base)).into());
                }
                return self.eval(deadline, base, then, explain);
            }
        };
        if explain {
            let text = match spec {
                DurationSpec::FixedDate { .. } => format!("fixed date → {}", format_date(due)),
                DurationSpec::CalendarMonths { months } => {
                    let clamped = due.day() != start.day();
                    format!(
                        "{spec} from {label} on {} → {}{}",
                        format_date(start),
                        format_date(due),
                        if clamped && *months > 0 {
                            format!(
                                " (day {} does not exist in {}; clamped to the month's last day)",
                                start.day(),
                                due.month()
                            )
                        } else {
                            String::new()
                        }
                    )
                }
                _ => format!(
                    "{spec} from {label} on {} → {}",
                    format_date(start),
                    format_date(due)
                ),
            };
            self.trace.push(text.into());
        }
        Ok(due)
    }

    fn working_days(
        &mut self,
        label: &str,
        start: Date,
        n: u32,
        explain: bool,
    ) -> Result<Date, DeadlineError> {
        let due = match self.cal.add_working_days(start, n) {
            Some(due) => due,
            None if self.policy == OutOfRangePolicy::WeekendsOnly => {
                self.assumed = true;
                self.slow_working_days(start, n)?
            }
            None => {
                let beyond = if self.cal.covers(start) {
                    self.cal.last_day() + time::Duration::DAY
                } else {
                    start
                };
                return Err(self.out_of_range(beyond));
            }
        };
        if explain {
            let mut text = format!(
                "{n} working day{} from {label} on {} → {}",
                if n == 1 { "" } else { "s" },
                format_date(start),
                format_date(due)
            );
            let mut notes = Vec::new();
            let (from, to) = (start + time::Duration::DAY, due);
            for h in self.cal.holidays_between(from, to) {
                if h.to >= from && h.from <= to {
                    notes.push(format!(
                        "skipped {} {}–{}",
                        h.name,
                        format_date(h.from.max(from)),
                        format_date(h.to.min(to))
                    ));
                }
                for m in h.makeup.iter().filter(|m| (from..=to).contains(*m)) {
                    notes.push(format!(
                        "counted the make-up working day {} ({})",
                        format_date(*m),
                        h.name
                    ));
                }
            }
            if self.assumed {
                notes.push(format!(
                    "days after {} are beyond the calendar data ({}): weekends only assumed",
                    format_date(self.cal.last_day()),
                    self.cal.version()
                ));
            }
            if !notes.is_empty() {
                text.push_str(" (");
                text.push_str(&notes.join("; "));
                text.push(')');
            }
            self.trace.push(text.into());
        }
        Ok(due)
    }

    /// Day-by-day stepping, used only when part of the range is outside the data.
    fn slow_working_days(&self, start: Date, n: u32) -> Result<Date, DeadlineError> {
        let mut d = start;
        let mut left = n;
        while left > 0 {
            d = d
                .next_day()
                .ok_or_else(|| DeadlineError::Overflow(format!("{start} + {n} working days")))?;
            let work = match self.cal.day(d) {
                Some(kind) => kind.is_workday(),
                None => !matches!(d.weekday(), Weekday::Saturday | Weekday::Sunday),
            };
            if work {
                left -= 1;
            }
        }
        Ok(d)
    }
}

/// Adds calendar months, clamping the day to the target month's length (31 Jan + 1 month = 28/29 Feb).
pub fn add_months(start: Date, months: u32) -> Option<Date> {
    let total =
        i64::from(start.year()) * 12 + i64::from(u8::from(start.month()) - 1) + i64::from(months);
    let year = i32::try_from(total.div_euclid(12)).ok()?;
    let month = Month::try_from(u8::try_from(total.rem_euclid(12) + 1).ok()?).ok()?;
    let day = start.day().min(month.length(year));
    Date::from_calendar_date(year, month, day).ok()
}
