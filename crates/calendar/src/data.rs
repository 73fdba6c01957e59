//! Loading and validating calendar data files.

use std::collections::BTreeMap;

use serde::Deserialize;
use time::{Date, Weekday};

use crate::parse_date;

/// One holiday period (节假日) as announced, with the weekend days it turns into working days.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holiday {
    pub name: String,
    pub name_zh: String,
    /// First day off (inclusive).
    pub from: Date,
    /// Last day off (inclusive).
    pub to: Date,
    /// Make-up working days (调休上班), always a Saturday or Sunday.
    pub makeup: Vec<Date>,
    /// The notice that announced it.
    pub source: String,
}

/// Validated calendar data: the covered range (whole years) and its holiday periods.
#[derive(Debug, Clone)]
pub(crate) struct Data {
    pub version: String,
    pub first: Date,
    pub last: Date,
    pub holidays: Vec<Holiday>,
}

/// Why a calendar file was refused. Every variant names the file and the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CalendarError {
    #[error("{file}: not valid calendar TOML: {reason}")]
    Syntax { file: String, reason: String },
    #[error("{file}: key `{key}`: {reason}")]
    Invalid {
        file: String,
        key: String,
        reason: String,
    },
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawCalendar {
    version: String,
    first_year: i32,
    last_year: i32,
    #[serde(default)]
    sources: BTreeMap<String, String>,
    #[serde(default)]
    period: Vec<RawPeriod>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPeriod {
    name: String,
    name_zh: String,
    off: [String; 2],
    #[serde(default)]
    makeup: Vec<String>,
    source: String,
}

/// The calendar data that ships with banli.
pub(crate) const EMBEDDED_NAME: &str = "crates/calendar/data/prc-holidays.toml";
pub(crate) const EMBEDDED: &str = include_str!("../data/prc-holidays.toml");

pub(crate) fn parse(file: &str, text: &str) -> Result<Data, CalendarError> {
    let raw: RawCalendar = toml::from_str(text).map_err(|e| CalendarError::Syntax {
        file: file.to_owned(),
        reason: e.to_string().trim_end().to_owned(),
    })?;
    let invalid = |key: String, reason: String| CalendarError::Invalid {
        file: file.to_owned(),
        key,
        reason,
    };
    if raw.version.trim().is_empty() {
        return Err(invalid("version".into(), "must not be empty".into()));
    }
    if !(1949..=9999).contains(&raw.first_year) || raw.last_year < raw.first_year {
        return Err(invalid(
            "first_year".into(),
            format!(
                "the covered years {}..={} are not a valid range",
                raw.first_year, raw.last_year
            ),
        ));
    }
    let first = Date::from_ordinal_date(raw.first_year, 1)
        .map_err(|e| invalid("first_year".into(), e.to_string()))?;
    let last = Date::from_calendar_date(raw.last_year, time::Month::December, 31)
        .map_err(|e| invalid("last_year".into(), e.to_string()))?;

    let mut holidays = Vec::with_capacity(raw.period.len());
    for (i, p) in raw.period.iter().enumerate() {
        let key = |k: &str| format!("period[{i}].{k} ({})", p.name);
        let date = |k: &str, s: &str| {
            parse_date(s)
                .map_err(|e| invalid(key(k), format!("`{s}` is not a YYYY-MM-DD date: {e}")))
        };
        if p.name.trim().is_empty() || p.name_zh.trim().is_empty() {
            return Err(invalid(key("name"), "must not be empty".into()));
        }
        let from = date("off", &p.off[0])?;
        let to = date("off", &p.off[1])?;
        if to < from {
            return Err(invalid(
                key("off"),
                format!("ends {} before it starts {}", p.off[1], p.off[0]),
            ));
        }
        if (to - from).whole_days() > 31 {
            return Err(invalid(
                key("off"),
                "a holiday period longer than a month is not plausible".into(),
            ));
        }
        let mut makeup = Vec::with_capacity(p.makeup.len());
        for s in &p.makeup {
            let d = date("makeup", s)?;
            if !matches!(d.weekday(), Weekday::Saturday | Weekday::Sunday) {
                return Err(invalid(
                    key("makeup"),
                    format!(
                        "{s} is a {} — a make-up working day must be a Saturday or Sunday",
                        d.weekday()
                    ),
                ));
            }
            if (from..=to).contains(&d) {
                return Err(invalid(
                    key("makeup"),
                    format!("{s} lies inside the period's own days off"),
                ));
            }
            makeup.push(d);
        }
        for d in [from, to].into_iter().chain(makeup.iter().copied()) {
            if d < first || d > last {
                return Err(invalid(
                    key("off"),
                    format!(
                        "{d} is outside the covered years {}..={}",
                        raw.first_year, raw.last_year
                    ),
                ));
            }
        }
        if !raw.sources.contains_key(&p.source) {
            return Err(invalid(
                key("source"),
                format!("`{}` is not listed under [sources]", p.source),
            ));
        }
        holidays.push(Holiday {
            name: p.name.clone(),
            name_zh: p.name_zh.clone(),
            from,
            to,
            makeup,
            source: raw.sources[&p.source].clone(),
        });
    }
    holidays.sort_by_key(|h| h.from);
    for pair in holidays.windows(2) {
        let (a, b) = (&pair[0], &pair[1]);
        if b.from <= a.to {
            return Err(invalid(
                format!("period ({})", b.name),
                format!(
                    "its days off {}..{} overlap those of {} ({}..{})",
                    b.from, b.to, a.name, a.from, a.to
                ),
            ));
        }
    }
    let mut seen = BTreeMap::new();
    for h in &holidays {
        for d in &h.makeup {
            if let Some(other) = seen.insert(*d, h.name.clone()) {
                return Err(invalid(
                    format!("period ({}).makeup", h.name),
                    format!("{d} is already a make-up day of {other}"),
                ));
            }
            if holidays.iter().any(|o| (o.from..=o.to).contains(d)) {
                return Err(invalid(
                    format!("period ({}).makeup", h.name),
                    format!("{d} is a day off of another period"),
                ));
            }
        }
    }
    Ok(Data {
        version: raw.version,
        first,
        last,
        holidays,
    })
}
