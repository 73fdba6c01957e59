//! Metric targets (指标目标): the profile's minimum rates, and an agency's rates under them, each
//! with the items that keep it down — what the `metric_below_target` supervision trigger reads.

use std::collections::BTreeMap;

use time::Date;

use crate::ids::{AgencyId, SuggestionId};
use crate::metrics::{Counts, Rate, Report, Scope, facts, feedback, label};
use crate::suggestion::Suggestion;

/// Rates whose denominator holds every (responsible) assignment from the day it is assigned:
/// they rise through the year as the work gets done, so a target on them is judged only once
/// the year's work is due (from the last stage's end). The others divide what is done (replies,
/// returned feedback, B-class items) and are judged at every check.
pub fn judged_at_year_end_only(rate: &str) -> bool {
    matches!(
        rate,
        "reply_rate"
            | "on_time_rate"
            | "communication_rate"
            | "meeting_rate"
            | "post_reply_communication_rate"
            | "recess_communication_rate"
    )
}

/// A rate under its target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Shortfall {
    /// The rate's API name, e.g. `on_time_rate`.
    pub rate: &'static str,
    pub value: Rate,
    pub target_percent: u32,
    /// The items whose assignments are counted in the denominator but not in the numerator.
    pub items: Vec<SuggestionId>,
}

/// What a check found: the agency's report over its assignments of `year` as of the day, and the
/// rates under their targets.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub report: Report,
    pub shortfalls: Vec<Shortfall>,
}

/// Checks `agency`'s assignments of `year` in `items` as of `as_of` against `targets` (percent
/// per rate name). Rates over fewer than `min_items` are not judged; rates of
/// [`judged_at_year_end_only`] only when `year_due`.
pub fn check(
    items: &[Suggestion],
    agency: AgencyId,
    year: i32,
    as_of: Date,
    targets: &BTreeMap<String, u32>,
    min_items: u64,
    year_due: bool,
) -> Check {
    let scope = Scope {
        agency: Some(agency),
        role: None,
        as_of: Some(as_of),
    };
    let mut total = Counts::default();
    let mut each = Vec::new();
    for s in items {
        let f: Vec<_> = facts(s, &scope)
            .into_iter()
            .filter(|f| f.assigned_on.year() == year)
            .collect();
        if f.is_empty() {
            continue;
        }
        let c = Counts::of_facts(f.iter(), &feedback(s, Some(as_of)));
        total += c;
        each.push((s.id, Report::from_counts(&c)));
    }
    let report = Report::from_counts(&total);
    let mut shortfalls = Vec::new();
    for (name, rate) in report.named() {
        let Some(&target) = targets.get(name) else {
            continue;
        };
        if (judged_at_year_end_only(name) && !year_due) || rate.denominator < min_items.max(1) {
            continue;
        }
        if rate.numerator * 100 >= u64::from(target) * rate.denominator {
            continue;
        }
        let mut ids: Vec<SuggestionId> = each
            .iter()
            .filter(|(_, r)| r.rate(name).is_some_and(|x| x.numerator < x.denominator))
            .map(|(id, _)| *id)
            .collect();
        ids.sort();
        ids.dedup();
        shortfalls.push(Shortfall {
            rate: name,
            value: rate.clone(),
            target_percent: target,
            items: ids,
        });
    }
    Check { report, shortfalls }
}

/// A notice's text for the rates under target, e.g.
/// `截至2020-06-30，以下指标未达目标：按期办复率 on-time rate 90.0%（9/10，目标100%）。…`
pub fn notice_body(as_of: Date, shortfalls: &[Shortfall]) -> String {
    let parts: Vec<String> = shortfalls
        .iter()
        .map(|s| {
            format!(
                "{} {:.1}%（{}/{}，目标{}%）",
                label(s.rate),
                s.value.value().unwrap_or(0.0) * 100.0,
                s.value.numerator,
                s.value.denominator,
                s.target_percent
            )
        })
        .collect();
    format!(
        "截至{as_of}，以下指标未达目标：{}。请分析原因，于7日内书面报告整改措施。",
        parts.join("；")
    )
}
