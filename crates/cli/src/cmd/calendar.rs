//! `banli calendar`: days and deadlines from the command line.

use std::collections::BTreeMap;

use anyhow::{Result, bail};
use banli_calendar::{Date, Deadline, DurationSpec, OutOfRangePolicy, format_date, parse_date};
use clap::Subcommand;

use crate::config::Config;

#[derive(Debug, Subcommand)]
pub enum CalendarCommand {
    /// List days with whether each is a working day, e.g. `--from 2020-09-26 --to 2020-10-11`.
    Days {
        #[arg(long, value_parser = date)]
        from: Date,
        #[arg(long, value_parser = date)]
        to: Date,
    },
    /// Compute a due date with its explanation, e.g. `--start 2020-09-29 --working-days 5`.
    Deadline {
        #[arg(long, value_parser = date)]
        start: Date,
        #[arg(long, group = "duration")]
        working_days: Option<u32>,
        #[arg(long, group = "duration", allow_hyphen_values = true)]
        calendar_days: Option<i32>,
        #[arg(long, group = "duration")]
        months: Option<u32>,
        #[arg(long, group = "duration", value_parser = date)]
        fixed: Option<Date>,
        /// Outside the calendar data, assume weekends only (and say so) instead of refusing.
        #[arg(long)]
        weekends_only: bool,
    },
}

fn date(s: &str) -> Result<Date, String> {
    parse_date(s).map_err(|e| format!("`{s}` is not a YYYY-MM-DD date: {e}"))
}

pub fn run(config: &Config, cmd: CalendarCommand) -> Result<()> {
    let cal = config.calendar()?;
    match cmd {
        CalendarCommand::Days { from, to } => {
            if to < from {
                bail!(
                    "--to {} is before --from {}",
                    format_date(to),
                    format_date(from)
                );
            }
            if (to - from).whole_days() > 3660 {
                bail!("at most ten years at a time");
            }
            let mut d = from;
            while d <= to {
                match cal.day(d) {
                    Some(kind) => {
                        let work = if kind.is_workday() {
                            "working day"
                        } else {
                            "rest day"
                        };
                        println!(
                            "{}  {:<3}  {work:<11}  {}",
                            format_date(d),
                            weekday(d),
                            kind.note().unwrap_or_default()
                        );
                    }
                    None => println!(
                        "{}  {:<3}  unknown      outside the calendar data ({})",
                        format_date(d),
                        weekday(d),
                        cal.version()
                    ),
                }
                let Some(next) = d.next_day() else { break };
                d = next;
            }
            Ok(())
        }
        CalendarCommand::Deadline {
            start,
            working_days,
            calendar_days,
            months,
            fixed,
            weekends_only,
        } => {
            let spec = match (working_days, calendar_days, months, fixed) {
                (Some(days), ..) => DurationSpec::WorkingDays { days },
                (_, Some(days), ..) => DurationSpec::CalendarDays { days },
                (_, _, Some(months), _) => DurationSpec::CalendarMonths { months },
                (.., Some(date)) => DurationSpec::FixedDate { date },
                _ => bail!("give one of --working-days, --calendar-days, --months or --fixed"),
            };
            let policy = if weekends_only {
                OutOfRangePolicy::WeekendsOnly
            } else {
                OutOfRangePolicy::Refuse
            };
            let d = Deadline::compute(&cal, "start", start, &spec, policy, &BTreeMap::new())?;
            println!("{}", format_date(d.due));
            for step in &d.trace {
                println!("  {}", step.text);
            }
            Ok(())
        }
    }
}

fn weekday(d: Date) -> &'static str {
    match d.weekday() {
        time::Weekday::Monday => "Mon",
        time::Weekday::Tuesday => "Tue",
        time::Weekday::Wednesday => "Wed",
        time::Weekday::Thursday => "Thu",
        time::Weekday::Friday => "Fri",
        time::Weekday::Saturday => "Sat",
        time::Weekday::Sunday => "Sun",
    }
}
