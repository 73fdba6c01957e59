//! The PRC working-day calendar (工作日历) and deadline arithmetic.
//!
//! Owns: the shipped holiday data (`data/prc-holidays.toml`), its validation, day queries, and
//! every duration kind a rule profile can name (calendar days, working days, calendar months,
//! fixed dates, offsets from another deadline), each result carrying a trace a person can read.
//!
//! Must never: guess about a day outside the data. A date beyond the covered years is either an
//! error or, when the caller asks for it, an explicit "weekends only" assumption in the trace.
//! Pure: no I/O besides parsing text the caller hands in (the shipped data is compiled in).

mod calendar;
mod data;
mod deadline;

pub use calendar::{Calendar, DayKind};
pub use data::{CalendarError, Holiday};
pub use deadline::{
    Deadline, DeadlineError, DurationSpec, OutOfRangePolicy, Recomputed, TraceStep, add_months,
};

/// Dates are plain calendar dates; times of day never enter deadline arithmetic.
pub use time::Date;

/// Parses `YYYY-MM-DD`.
pub fn parse_date(text: &str) -> Result<Date, time::error::Parse> {
    Date::parse(text, DATE_FORMAT)
}

/// Formats as `YYYY-MM-DD`.
pub fn format_date(date: Date) -> String {
    // The format has only numeric components, so formatting cannot fail for any valid date.
    date.format(DATE_FORMAT)
        .unwrap_or_else(|_| date.to_string())
}

const DATE_FORMAT: &[time::format_description::BorrowedFormatItem<'static>] =
    time::macros::format_description!("[year]-[month]-[day]");
