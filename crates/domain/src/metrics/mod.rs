//! The metric formulas of `domain.md` (办复率, 按期办复率, 沟通率, 见面率, 满意率, …).
//!
//! Every figure keeps its numerator, denominator and definition version, and is computed from
//! the data as of a date: nothing dated after `as_of` counts.

use serde::{Deserialize, Serialize};
use time::Date;

use crate::ids::{AgencyId, AssignmentId, CommitmentId, DeputyId, DivisionId, SessionId};
use crate::suggestion::{
    AssignmentState, CommunicationPhase, ReplyClass, ReplyType, Satisfaction, Suggestion,
    SuggestionState, UnitRole,
};

mod rows;

pub use rows::*;

/// The version of the definitions below. Bump it when a formula changes.
pub const DEFINITION_VERSION: &str = "2026.1";

/// One rate: `numerator / denominator`, with what it means.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rate {
    pub numerator: u64,
    pub denominator: u64,
    pub definition_version: String,
    pub definition: String,
}

impl Rate {
    /// `None` when there is nothing to divide by.
    pub fn value(&self) -> Option<f64> {
        (self.denominator > 0).then(|| self.numerator as f64 / self.denominator as f64)
    }
}

/// Which assignments count.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Scope {
    pub agency: Option<AgencyId>,
    pub role: Option<UnitRole>,
    /// Only data dated on or before this day counts.
    pub as_of: Option<Date>,
}

/// The facts of one assignment that the formulas read, as of a date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AssignmentFacts {
    pub agency: AgencyId,
    pub role: UnitRole,
    pub assigned_on: Date,
    pub superseded: bool,
    /// Reply issued (responsible units) or opinion submitted (co-handlers).
    pub replied_on: Option<Date>,
    /// The due date after approved extensions (reply, or co-opinion for co-handlers).
    pub effective_due: Option<Date>,
    pub communicated_before_first_reply: bool,
    pub met_face_to_face: bool,
    /// The suggestion's class as of the date, for responsible units that replied.
    pub class: Option<ReplyClass>,
    pub ever_class_b: bool,
    pub converted_to_a: bool,
    /// A communication dated after the first reply (reporting back, 答复后沟通).
    pub communicated_after_reply: bool,
    /// A communication in the recess phase (闭会期间沟通).
    pub communicated_in_recess: bool,
    /// Commitments of this assignment whose target date has passed (as of the date; every
    /// commitment without a date).
    pub commitments_due: u64,
    /// Of those, converted by their target date (承诺兑现).
    pub commitments_fulfilled: u64,
    /// 答复审查: the assigning office reviewed this unit's first reply (as of the date).
    pub reviewed: bool,
    /// ... and returned it for re-handling (驳回重办).
    pub returned: bool,
}

/// The first review of an assignment's replies: its date and whether it returned the reply.
fn first_review(s: &Suggestion, a: AssignmentId) -> Option<(Date, bool)> {
    s.replies
        .iter()
        .filter(|r| r.assignment_id == a)
        .filter_map(|r| r.review.as_ref().map(|v| (v.on, !v.accepted)))
        .min_by_key(|(on, _)| *on)
}

/// Whether the assigning office returned this reply for re-handling: such a reply is not the
/// unit's reply (its reply is the first one the office did not return).
fn returned(r: &crate::suggestion::Reply) -> bool {
    r.review.as_ref().is_some_and(|v| !v.accepted)
}

/// Extracts the facts of every assignment of `s` that falls in `scope`.
pub fn facts(s: &Suggestion, scope: &Scope) -> Vec<AssignmentFacts> {
    let upto = |d: Date| scope.as_of.is_none_or(|a| d <= a);
    if matches!(s.state, SuggestionState::Withdrawn) && scope.as_of.is_none() {
        return Vec::new();
    }
    // A supplementary reply's class takes effect when the office confirms it (a class change).
    let classes: Vec<(Date, ReplyClass)> = s
        .replies
        .iter()
        .filter(|r| upto(r.on) && r.reply_type != ReplyType::Supplementary)
        .map(|r| (r.on, r.class))
        .chain(
            s.class_history
                .iter()
                .filter(|c| upto(c.on))
                .map(|c| (c.on, c.to)),
        )
        .collect();
    let current = classes.iter().max_by_key(|(d, _)| *d).map(|(_, c)| *c);
    let ever_b = classes.iter().any(|(_, c)| *c == ReplyClass::B);
    let converted = s
        .class_history
        .iter()
        .any(|c| upto(c.on) && c.conversion && c.to == ReplyClass::A);
    s.assignments
        .iter()
        .filter(|a| upto(a.assigned_on))
        .filter(|a| {
            scope.agency.is_none_or(|x| x == a.agency) && scope.role.is_none_or(|r| r == a.role)
        })
        .map(|a| {
            let replied_on = if a.is_responsible() {
                s.replies
                    .iter()
                    .filter(|r| r.assignment_id == a.id && upto(r.on) && !returned(r))
                    .map(|r| r.on)
                    .min()
            } else {
                s.opinions
                    .iter()
                    .filter(|o| o.assignment_id == a.id && upto(o.on))
                    .map(|o| o.on)
                    .min()
            };
            let comms = s
                .communications
                .iter()
                .filter(|c| c.assignment_id == a.id && upto(c.on));
            let communicated = comms.clone().any(|c| replied_on.is_none_or(|r| c.on <= r));
            let due: Vec<_> = s
                .commitments
                .iter()
                .filter(|c| c.assignment_id == a.id)
                .filter(|c| scope.as_of.is_none_or(|d| c.target_date <= d))
                .collect();
            let effective_due = if a.is_responsible() {
                a.deadlines.reply.as_ref().map(|d| d.due)
            } else {
                a.deadlines.co_opinion.as_ref().map(|d| d.due)
            };
            let review = first_review(s, a.id).filter(|(on, _)| upto(*on));
            AssignmentFacts {
                agency: a.agency,
                role: a.role,
                assigned_on: a.assigned_on,
                superseded: a.state == AssignmentState::Superseded,
                replied_on,
                effective_due,
                communicated_before_first_reply: communicated,
                met_face_to_face: comms.clone().any(|c| c.face_to_face),
                class: if a.is_responsible() && replied_on.is_some() {
                    current
                } else {
                    None
                },
                ever_class_b: a.is_responsible() && ever_b,
                converted_to_a: a.is_responsible() && converted,
                communicated_after_reply: replied_on
                    .is_some_and(|r| comms.clone().any(|c| c.on > r)),
                communicated_in_recess: comms
                    .clone()
                    .any(|c| c.phase == CommunicationPhase::Recess),
                commitments_due: due.len() as u64,
                commitments_fulfilled: due.iter().filter(|c| c.fulfilled()).count() as u64,
                reviewed: review.is_some(),
                returned: review.is_some_and(|(_, returned)| returned),
            }
        })
        .collect()
}

/// Feedback facts: (level, round, is the deputy's latest round).
pub fn feedback(s: &Suggestion, as_of: Option<Date>) -> Vec<(Satisfaction, u32, bool)> {
    let upto = |d: Date| as_of.is_none_or(|a| d <= a);
    let given: Vec<_> = s.feedback.iter().filter(|f| upto(f.on)).collect();
    given
        .iter()
        .map(|f| {
            let latest = !given
                .iter()
                .any(|g| g.deputy == f.deputy && g.round > f.round);
            (f.level, f.round, latest)
        })
        .collect()
}

/// All the rates of `domain.md` over a set of suggestions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    pub lead: u64,
    pub co: u64,
    pub separate: u64,
    pub sole: u64,
    pub reply_rate: Rate,
    pub on_time_rate: Rate,
    pub communication_rate: Rate,
    pub meeting_rate: Rate,
    pub satisfaction_broad: Rate,
    pub satisfaction_strict: Rate,
    pub satisfaction_first_round: Rate,
    pub resolution_rate: Rate,
    pub solved_or_planned_rate: Rate,
    pub b_to_a_conversion: Rate,
    pub implementation_rate: Rate,
    pub post_reply_communication_rate: Rate,
    pub recess_communication_rate: Rate,
    pub returned_rate: Rate,
}

/// The counts every rate is made of; [`Report::from_counts`] turns them into rates. The
/// follow-up service aggregates them in SQL, [`Report::compute`] from replicas: both give the
/// same figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub lead: u64,
    pub co: u64,
    pub separate: u64,
    pub sole: u64,
    /// Assignments not superseded.
    pub live: u64,
    pub replied: u64,
    pub on_time: u64,
    /// Live lead, sole and separate assignments.
    pub responsible: u64,
    pub communicated: u64,
    pub met: u64,
    pub replied_responsible: u64,
    pub resolved: u64,
    pub solved_or_planned: u64,
    pub ever_b: u64,
    pub converted: u64,
    /// Replied responsible assignments with a communication after the first reply.
    pub communicated_after_reply: u64,
    /// Responsible assignments with a communication in the recess phase.
    pub communicated_in_recess: u64,
    /// Final-round feedback (each deputy's latest round).
    pub feedback_latest: u64,
    pub feedback_latest_good: u64,
    pub feedback_latest_satisfied: u64,
    pub feedback_first: u64,
    pub feedback_first_good: u64,
    /// Commitments of live assignments whose target date has passed.
    pub commitments_due: u64,
    /// Of those, converted by their target date.
    pub commitments_fulfilled: u64,
    /// Live responsible assignments whose first reply the assigning office reviewed.
    pub reviewed: u64,
    /// Of those, the ones it returned for re-handling.
    pub returned: u64,
}

impl Report {
    /// The rates of `c`, each with its definition.
    pub fn from_counts(c: &Counts) -> Report {
        let rate = |n: u64, d: u64, def: &str| Rate {
            numerator: n,
            denominator: d,
            definition_version: DEFINITION_VERSION.to_owned(),
            definition: def.to_owned(),
        };
        Report {
            lead: c.lead,
            co: c.co,
            separate: c.separate,
            sole: c.sole,
            reply_rate: rate(
                c.replied,
                c.live,
                "assignments replied (lead/sole/separate: reply issued; co: opinion submitted) / assignments not superseded",
            ),
            on_time_rate: rate(
                c.on_time,
                c.live,
                "assignments replied by the effective due date (after approved extensions) / assignments not superseded",
            ),
            communication_rate: rate(
                c.communicated,
                c.responsible,
                "responsible assignments with a communication before the first reply / responsible assignments",
            ),
            meeting_rate: rate(
                c.met,
                c.responsible,
                "responsible assignments with a face-to-face (or approved online) meeting / responsible assignments",
            ),
            satisfaction_broad: rate(
                c.feedback_latest_good,
                c.feedback_latest,
                "final-round feedback satisfied or basically satisfied / feedback returned",
            ),
            satisfaction_strict: rate(
                c.feedback_latest_satisfied,
                c.feedback_latest,
                "final-round feedback satisfied / feedback returned",
            ),
            satisfaction_first_round: rate(
                c.feedback_first_good,
                c.feedback_first,
                "first-round feedback satisfied or basically satisfied / first-round feedback returned",
            ),
            resolution_rate: rate(
                c.resolved,
                c.replied_responsible,
                "replied responsible assignments whose item is class A / replied responsible assignments",
            ),
            solved_or_planned_rate: rate(
                c.solved_or_planned,
                c.replied_responsible,
                "replied responsible assignments whose item is class A or B / replied responsible assignments",
            ),
            b_to_a_conversion: rate(
                c.converted,
                c.ever_b,
                "responsible assignments of class-B items converted to A / responsible assignments of class-B items",
            ),
            implementation_rate: rate(
                c.commitments_fulfilled,
                c.commitments_due,
                "commitments converted with evidence by their target date / commitments whose target date has passed",
            ),
            post_reply_communication_rate: rate(
                c.communicated_after_reply,
                c.replied_responsible,
                "replied responsible assignments with a communication after the first reply / replied responsible assignments",
            ),
            recess_communication_rate: rate(
                c.communicated_in_recess,
                c.responsible,
                "responsible assignments with a communication in the recess phase / responsible assignments",
            ),
            returned_rate: rate(
                c.returned,
                c.reviewed,
                "responsible assignments whose first reply the assigning office returned for re-handling / responsible assignments whose first reply it reviewed (lower is better)",
            ),
        }
    }

    /// The report over replicas, computed in memory (the reference for the SQL aggregate).
    pub fn compute<'a>(
        suggestions: impl IntoIterator<Item = &'a Suggestion>,
        scope: &Scope,
    ) -> Report {
        Report::from_counts(&Counts::compute(suggestions, scope))
    }
}

impl std::ops::AddAssign for Counts {
    fn add_assign(&mut self, other: Counts) {
        let mut sum = [0i64; COUNTS];
        for ((s, a), b) in sum.iter_mut().zip(self.to_array()).zip(other.to_array()) {
            *s = (a + b) as i64;
        }
        *self = Counts::from_array(sum);
    }
}

/// Every rate's name in the API (`/v1/metrics`), and its name in reports.
pub const RATES: [(&str, &str); 14] = [
    ("reply_rate", "办复率 reply rate"),
    ("on_time_rate", "按期办复率 on-time rate"),
    ("communication_rate", "沟通率 communication rate"),
    ("meeting_rate", "见面率 meeting rate"),
    ("satisfaction_rate_broad", "满意率 satisfaction (broad)"),
    ("satisfaction_rate_strict", "满意率 satisfaction (strict)"),
    (
        "satisfaction_rate_first_round",
        "首轮满意率 first-round satisfaction",
    ),
    ("resolution_rate", "解决率 resolution rate"),
    (
        "solved_or_planned_rate",
        "解决和列入计划率 solved or planned",
    ),
    ("b_to_a_conversion", "B转A率 B → A conversion"),
    ("implementation_rate", "落实率 implementation rate"),
    (
        "post_reply_communication_rate",
        "答复后沟通率 communication after the reply",
    ),
    (
        "recess_communication_rate",
        "闭会期间沟通率 communication in recess",
    ),
    ("returned_rate", "答复退回率 replies returned"),
];

/// The name of a rate in reports, e.g. `按期办复率 on-time rate`, from its API name.
pub fn label(rate: &str) -> &'static str {
    RATES
        .iter()
        .find(|(n, _)| *n == rate)
        .map_or("", |(_, l)| l)
}

impl Report {
    /// Every rate with its API name, in the order of [`RATES`].
    pub fn named(&self) -> [(&'static str, &Rate); 14] {
        [
            (RATES[0].0, &self.reply_rate),
            (RATES[1].0, &self.on_time_rate),
            (RATES[2].0, &self.communication_rate),
            (RATES[3].0, &self.meeting_rate),
            (RATES[4].0, &self.satisfaction_broad),
            (RATES[5].0, &self.satisfaction_strict),
            (RATES[6].0, &self.satisfaction_first_round),
            (RATES[7].0, &self.resolution_rate),
            (RATES[8].0, &self.solved_or_planned_rate),
            (RATES[9].0, &self.b_to_a_conversion),
            (RATES[10].0, &self.implementation_rate),
            (RATES[11].0, &self.post_reply_communication_rate),
            (RATES[12].0, &self.recess_communication_rate),
            (RATES[13].0, &self.returned_rate),
        ]
    }

    /// A rate by its API name.
    pub fn rate(&self, name: &str) -> Option<&Rate> {
        self.named()
            .into_iter()
            .find(|(n, _)| *n == name)
            .map(|(_, r)| r)
    }
}

impl Counts {
    pub fn compute<'a>(
        suggestions: impl IntoIterator<Item = &'a Suggestion>,
        scope: &Scope,
    ) -> Counts {
        let mut all = Vec::new();
        let mut fb = Vec::new();
        for s in suggestions {
            let f = facts(s, scope);
            if !f.is_empty() {
                fb.extend(feedback(s, scope.as_of));
            }
            all.extend(f);
        }
        Counts::of_facts(all.iter(), &fb)
    }

    /// The counts of some assignments' facts and the feedback of their suggestions.
    pub fn of_facts<'a>(
        facts: impl IntoIterator<Item = &'a AssignmentFacts>,
        fb: &[(Satisfaction, u32, bool)],
    ) -> Counts {
        let all: Vec<&AssignmentFacts> = facts.into_iter().collect();
        let live: Vec<&AssignmentFacts> = all.iter().copied().filter(|f| !f.superseded).collect();
        let responsible: Vec<&&AssignmentFacts> =
            live.iter().filter(|f| f.role.is_responsible()).collect();
        let replied: Vec<&&&AssignmentFacts> = responsible
            .iter()
            .filter(|f| f.replied_on.is_some())
            .collect();
        let count_role = |r: UnitRole| live.iter().filter(|f| f.role == r).count() as u64;
        let latest: Vec<_> = fb.iter().filter(|(_, _, latest)| *latest).collect();
        let first: Vec<_> = fb.iter().filter(|(_, round, _)| *round == 0).collect();
        let good = |l: &Satisfaction| {
            matches!(
                l,
                Satisfaction::Satisfied | Satisfaction::BasicallySatisfied
            )
        };
        let n = |x: usize| x as u64;
        Counts {
            lead: count_role(UnitRole::Lead),
            co: count_role(UnitRole::Co),
            separate: count_role(UnitRole::Separate),
            sole: count_role(UnitRole::Sole),
            live: n(live.len()),
            replied: n(live.iter().filter(|f| f.replied_on.is_some()).count()),
            on_time: n(live
                .iter()
                .filter(|f| matches!((f.replied_on, f.effective_due), (Some(r), Some(d)) if r <= d))
                .count()),
            responsible: n(responsible.len()),
            communicated: n(responsible
                .iter()
                .filter(|f| f.communicated_before_first_reply)
                .count()),
            met: n(responsible.iter().filter(|f| f.met_face_to_face).count()),
            replied_responsible: n(replied.len()),
            resolved: n(replied
                .iter()
                .filter(|f| f.class == Some(ReplyClass::A))
                .count()),
            solved_or_planned: n(replied
                .iter()
                .filter(|f| matches!(f.class, Some(ReplyClass::A | ReplyClass::B)))
                .count()),
            ever_b: n(responsible.iter().filter(|f| f.ever_class_b).count()),
            converted: n(responsible
                .iter()
                .filter(|f| f.ever_class_b && f.converted_to_a)
                .count()),
            communicated_after_reply: n(replied
                .iter()
                .filter(|f| f.communicated_after_reply)
                .count()),
            communicated_in_recess: n(responsible
                .iter()
                .filter(|f| f.communicated_in_recess)
                .count()),
            commitments_due: live.iter().map(|f| f.commitments_due).sum(),
            commitments_fulfilled: live.iter().map(|f| f.commitments_fulfilled).sum(),
            feedback_latest: n(latest.len()),
            feedback_latest_good: n(latest.iter().filter(|(l, _, _)| good(l)).count()),
            feedback_latest_satisfied: n(latest
                .iter()
                .filter(|(l, _, _)| *l == Satisfaction::Satisfied)
                .count()),
            feedback_first: n(first.len()),
            feedback_first_good: n(first.iter().filter(|(l, _, _)| good(l)).count()),
            reviewed: n(responsible.iter().filter(|f| f.reviewed).count()),
            returned: n(responsible.iter().filter(|f| f.returned).count()),
        }
    }
}
