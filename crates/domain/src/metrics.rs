//! The metric formulas of `domain.md` (办复率, 按期办复率, 沟通率, 见面率, 满意率, …).
//!
//! Every figure keeps its numerator, denominator and definition version, and is computed from
//! the data as of a date: nothing dated after `as_of` counts.

use serde::{Deserialize, Serialize};
use time::Date;

use crate::ids::AgencyId;
use crate::suggestion::{
    AssignmentState, ReplyClass, Satisfaction, Suggestion, SuggestionState, UnitRole,
};

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
    fn new(numerator: usize, denominator: usize, definition: &str) -> Rate {
        Rate {
            numerator: numerator as u64,
            denominator: denominator as u64,
            definition_version: DEFINITION_VERSION.to_owned(),
            definition: definition.to_owned(),
        }
    }

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
}

/// Extracts the facts of every assignment of `s` that falls in `scope`.
pub fn facts(s: &Suggestion, scope: &Scope) -> Vec<AssignmentFacts> {
    let upto = |d: Date| scope.as_of.is_none_or(|a| d <= a);
    if matches!(s.state, SuggestionState::Withdrawn) && scope.as_of.is_none() {
        return Vec::new();
    }
    let classes: Vec<(Date, ReplyClass)> = s
        .replies
        .iter()
        .filter(|r| upto(r.on))
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
                    .filter(|r| r.assignment_id == a.id && upto(r.on))
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
            let effective_due = if a.is_responsible() {
                a.deadlines.reply.as_ref().map(|d| d.due)
            } else {
                a.deadlines.co_opinion.as_ref().map(|d| d.due)
            };
            AssignmentFacts {
                agency: a.agency,
                role: a.role,
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
}

impl Report {
    pub fn compute<'a>(
        suggestions: impl IntoIterator<Item = &'a Suggestion>,
        scope: &Scope,
    ) -> Report {
        let mut all = Vec::new();
        let mut fb = Vec::new();
        for s in suggestions {
            let f = facts(s, scope);
            if !f.is_empty() {
                fb.extend(feedback(s, scope.as_of));
            }
            all.extend(f);
        }
        let live: Vec<&AssignmentFacts> = all.iter().filter(|f| !f.superseded).collect();
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
        Report {
            lead: count_role(UnitRole::Lead),
            co: count_role(UnitRole::Co),
            separate: count_role(UnitRole::Separate),
            sole: count_role(UnitRole::Sole),
            reply_rate: Rate::new(
                live.iter().filter(|f| f.replied_on.is_some()).count(),
                live.len(),
                "assignments replied (lead/sole/separate: reply issued; co: opinion submitted) / assignments not superseded",
            ),
            on_time_rate: Rate::new(
                live.iter()
                    .filter(
                        |f| matches!((f.replied_on, f.effective_due), (Some(r), Some(d)) if r <= d),
                    )
                    .count(),
                live.len(),
                "assignments replied by the effective due date (after approved extensions) / assignments not superseded",
            ),
            communication_rate: Rate::new(
                responsible
                    .iter()
                    .filter(|f| f.communicated_before_first_reply)
                    .count(),
                responsible.len(),
                "responsible assignments with a communication before the first reply / responsible assignments",
            ),
            meeting_rate: Rate::new(
                responsible.iter().filter(|f| f.met_face_to_face).count(),
                responsible.len(),
                "responsible assignments with a face-to-face (or approved online) meeting / responsible assignments",
            ),
            satisfaction_broad: Rate::new(
                latest.iter().filter(|(l, _, _)| good(l)).count(),
                latest.len(),
                "final-round feedback satisfied or basically satisfied / feedback returned",
            ),
            satisfaction_strict: Rate::new(
                latest
                    .iter()
                    .filter(|(l, _, _)| *l == Satisfaction::Satisfied)
                    .count(),
                latest.len(),
                "final-round feedback satisfied / feedback returned",
            ),
            satisfaction_first_round: Rate::new(
                first.iter().filter(|(l, _, _)| good(l)).count(),
                first.len(),
                "first-round feedback satisfied or basically satisfied / first-round feedback returned",
            ),
            resolution_rate: Rate::new(
                replied
                    .iter()
                    .filter(|f| f.class == Some(ReplyClass::A))
                    .count(),
                replied.len(),
                "replied responsible assignments whose item is class A / replied responsible assignments",
            ),
            solved_or_planned_rate: Rate::new(
                replied
                    .iter()
                    .filter(|f| matches!(f.class, Some(ReplyClass::A | ReplyClass::B)))
                    .count(),
                replied.len(),
                "replied responsible assignments whose item is class A or B / replied responsible assignments",
            ),
            b_to_a_conversion: Rate::new(
                responsible
                    .iter()
                    .filter(|f| f.ever_class_b && f.converted_to_a)
                    .count(),
                responsible.iter().filter(|f| f.ever_class_b).count(),
                "responsible assignments of class-B items converted to A / responsible assignments of class-B items",
            ),
        }
    }
}
