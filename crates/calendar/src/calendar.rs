//! Day queries over validated calendar data.

use std::sync::OnceLock;

use time::{Date, Weekday};

use crate::data::{self, CalendarError, Data, Holiday};

/// What kind of day a date is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DayKind<'a> {
    Workday,
    Weekend,
    /// A day off of a public holiday period.
    Holiday(&'a Holiday),
    /// A Saturday or Sunday that is a working day because of a holiday period.
    MakeupWorkday(&'a Holiday),
}

impl DayKind<'_> {
    pub fn is_workday(self) -> bool {
        matches!(self, DayKind::Workday | DayKind::MakeupWorkday(_))
    }

    /// A short note for people, e.g. "make-up working day, National Day".
    pub fn note(self) -> Option<String> {
        match self {
            DayKind::Workday => None,
            DayKind::Weekend => Some("weekend".to_owned()),
            DayKind::Holiday(h) => Some(format!("public holiday, {}", h.name)),
            DayKind::MakeupWorkday(h) => Some(format!("make-up working day, {}", h.name)),
        }
    }
}

/// Marks per day in the covered range.
const WORK: u8 = 1;
const NONE: u16 = u16::MAX;

/// The PRC working-day calendar over a range of whole years.
///
/// Built once; every query after that is O(1): a per-day table answers "which kind of day",
/// and a list of working-day positions answers "the N-th working day after D".
#[derive(Debug, Clone)]
pub struct Calendar {
    version: String,
    first: Date,
    last: Date,
    holidays: Vec<Holiday>,
    /// Per day: bit 0 = working day.
    flags: Vec<u8>,
    /// Per day: index into `holidays` of the period the day belongs to, or `NONE`.
    period: Vec<u16>,
    /// Per day: how many working days lie strictly before it in the covered range.
    workdays_before: Vec<u32>,
    /// Day offsets of every working day, in order.
    workdays: Vec<u32>,
}

impl Calendar {
    /// The calendar data shipped with this build.
    pub fn embedded() -> &'static Calendar {
        static CAL: OnceLock<Calendar> = OnceLock::new();
        CAL.get_or_init(|| {
            #[allow(clippy::expect_used)] // the shipped file is validated by a unit test
            data::parse(data::EMBEDDED_NAME, data::EMBEDDED)
                .map(Calendar::build)
                .expect("the shipped calendar data is valid (checked by tests)")
        })
    }

    /// Parses and validates calendar data; `file` names it in errors.
    pub fn from_toml_str(file: &str, text: &str) -> Result<Calendar, CalendarError> {
        data::parse(file, text).map(Calendar::build)
    }

    /// The day tables over validated data.
    fn build(data: Data) -> Calendar {
        let Data {
            version,
            first,
            last,
            holidays,
        } = data;
        let len = (last - first).whole_days() as usize + 1;
        let mut flags = vec![0u8; len];
        let mut period = vec![NONE; len];
        for (i, flag) in flags.iter_mut().enumerate() {
            let d = first + time::Duration::days(i as i64);
            if !matches!(d.weekday(), Weekday::Saturday | Weekday::Sunday) {
                *flag = WORK;
            }
        }
        let offset = |d: Date| (d - first).whole_days() as usize;
        for (hi, h) in holidays.iter().enumerate() {
            for o in offset(h.from)..=offset(h.to) {
                flags[o] = 0;
                period[o] = hi as u16;
            }
            for m in &h.makeup {
                flags[offset(*m)] = WORK;
                period[offset(*m)] = hi as u16;
            }
        }
        let mut workdays_before = Vec::with_capacity(len);
        let mut workdays = Vec::new();
        for (i, f) in flags.iter().enumerate() {
            workdays_before.push(workdays.len() as u32);
            if f & WORK != 0 {
                workdays.push(i as u32);
            }
        }
        Calendar {
            version,
            first,
            last,
            holidays,
            flags,
            period,
            workdays_before,
            workdays,
        }
    }

    /// The data version; deadlines remember it so they can be recomputed when it changes.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// First covered day.
    pub fn first_day(&self) -> Date {
        self.first
    }

    /// Last covered day.
    pub fn last_day(&self) -> Date {
        self.last
    }

    pub fn holidays(&self) -> &[Holiday] {
        &self.holidays
    }

    pub fn covers(&self, date: Date) -> bool {
        self.first <= date && date <= self.last
    }

    fn offset(&self, date: Date) -> Option<usize> {
        self.covers(date)
            .then(|| (date - self.first).whole_days() as usize)
    }

    fn date_at(&self, offset: u32) -> Date {
        self.first + time::Duration::days(i64::from(offset))
    }

    /// The kind of day, or `None` outside the covered years.
    pub fn day(&self, date: Date) -> Option<DayKind<'_>> {
        let i = self.offset(date)?;
        let holiday = (self.period[i] != NONE).then(|| &self.holidays[self.period[i] as usize]);
        Some(match (self.flags[i] & WORK != 0, holiday) {
            (true, Some(h)) => DayKind::MakeupWorkday(h),
            (true, None) => DayKind::Workday,
            (false, Some(h)) => DayKind::Holiday(h),
            (false, None) => DayKind::Weekend,
        })
    }

    /// Whether `date` is a working day, or `None` outside the covered years.
    pub fn is_workday(&self, date: Date) -> Option<bool> {
        self.offset(date).map(|i| self.flags[i] & WORK != 0)
    }

    /// The `n`-th working day strictly after `start` (`n = 0` gives `start` itself), or `None`
    /// when the start or the result lies outside the covered years.
    pub fn add_working_days(&self, start: Date, n: u32) -> Option<Date> {
        if n == 0 {
            return self.covers(start).then_some(start);
        }
        let i = self.offset(start)?;
        let before_next = self
            .workdays_before
            .get(i + 1)
            .copied()
            .unwrap_or(self.workdays.len() as u32);
        let k = before_next as usize + n as usize - 1;
        self.workdays.get(k).map(|&o| self.date_at(o))
    }

    /// The working days in `(start, end]`.
    pub fn working_days_between(&self, start: Date, end: Date) -> Option<u32> {
        let (a, b) = (self.offset(start)?, self.offset(end)?);
        if b <= a {
            return Some(0);
        }
        let count = |i: usize| self.workdays_before[i] + u32::from(self.flags[i] & WORK != 0);
        Some(count(b) - count(a))
    }

    /// The holiday periods that touch `[from, to]`.
    pub fn holidays_between(&self, from: Date, to: Date) -> impl Iterator<Item = &Holiday> {
        self.holidays.iter().filter(move |h| {
            h.to >= from && h.from <= to || h.makeup.iter().any(|m| (from..=to).contains(m))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse_date;

    fn d(s: &str) -> Date {
        parse_date(s).unwrap_or_else(|e| panic!("{s}: {e}"))
    }

    #[test]
    fn shipped_data_is_valid_and_covers_2018_to_2026() {
        let cal = Calendar::embedded();
        assert_eq!(cal.first_day(), d("2018-01-01"));
        assert_eq!(cal.last_day(), d("2026-12-31"));
        assert!(
            cal.holidays().len() >= 9 * 7 - 6,
            "every year has its periods"
        );
    }

    #[test]
    fn day_kinds_of_national_day_2020() {
        let cal = Calendar::embedded();
        assert!(
            matches!(cal.day(d("2020-10-01")), Some(DayKind::Holiday(h)) if h.name.contains("National Day"))
        );
        assert!(matches!(
            cal.day(d("2020-10-10")),
            Some(DayKind::MakeupWorkday(_))
        ));
        assert_eq!(cal.day(d("2020-10-11")), Some(DayKind::Weekend));
        assert_eq!(cal.day(d("2020-10-12")), Some(DayKind::Workday));
        assert_eq!(cal.day(d("2027-01-04")), None);
        assert_eq!(cal.day(d("2017-12-29")), None);
    }

    #[test]
    fn working_days_between_counts_the_half_open_range() {
        let cal = Calendar::embedded();
        assert_eq!(
            cal.working_days_between(d("2020-09-29"), d("2020-10-13")),
            Some(5)
        );
        assert_eq!(
            cal.working_days_between(d("2020-10-13"), d("2020-09-29")),
            Some(0)
        );
    }

    #[test]
    fn add_working_days_stops_at_the_end_of_the_data() {
        let cal = Calendar::embedded();
        assert_eq!(
            cal.add_working_days(d("2026-12-30"), 1),
            Some(d("2026-12-31"))
        );
        assert_eq!(cal.add_working_days(d("2026-12-30"), 2), None);
        assert_eq!(cal.add_working_days(d("2017-12-30"), 1), None);
    }
}
