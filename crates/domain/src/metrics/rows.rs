//! The stored forms of the metrics: one row of dated facts per assignment (the counts as of any
//! day are one aggregate over rows) and the daily sums a change of a suggestion moves.

use super::*;

/// One assignment's row in a metrics table: every fact a formula reads, with its date, so that
/// the counts as of any day are one aggregate over rows (dated facts compared with the day).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FactRow {
    pub assignment_id: AssignmentId,
    pub agency: AgencyId,
    pub division: Option<DivisionId>,
    pub role: UnitRole,
    pub assigned_on: Date,
    pub superseded: bool,
    /// The first reply (responsible units) or opinion (co-handlers).
    pub replied_on: Option<Date>,
    pub effective_due: Option<Date>,
    pub first_contact_on: Option<Date>,
    pub first_meeting_on: Option<Date>,
    /// 领办: a principal leader leads this assignment.
    pub led_by_principal: bool,
    /// The first communication after the first reply.
    pub after_reply_contact_on: Option<Date>,
    /// The first communication in the recess phase.
    pub recess_contact_on: Option<Date>,
    /// 答复审查: the day the assigning office first reviewed this unit's reply, and whether it
    /// returned it.
    pub first_review_on: Option<Date>,
    pub first_review_returned: bool,
}

/// One commitment of an assignment: due from its target date on; `fulfilled` when converted by
/// that date.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitmentRow {
    pub id: CommitmentId,
    pub assignment_id: AssignmentId,
    pub target_date: Date,
    pub fulfilled: bool,
}

/// A class the item had from a day on: replies and class changes in the order they count (the
/// later of two on one day wins).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClassRow {
    pub seq: u32,
    pub on: Date,
    pub class: ReplyClass,
}

/// One deputy's feedback of one round; `superseded_on` is the first day a later round of the same
/// deputy was given (from then on it is not the final round).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeedbackRow {
    pub deputy: DeputyId,
    pub round: u32,
    pub level: Satisfaction,
    pub on: Date,
    pub superseded_on: Option<Date>,
}

/// Everything of one suggestion a metrics table holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SuggestionFacts {
    pub session: SessionId,
    pub category: String,
    pub lead_deputy: DeputyId,
    pub delegation: String,
    pub key_item: bool,
    /// The class now, and the day it took effect.
    pub class_now: Option<(ReplyClass, Date)>,
    pub first_b_on: Option<Date>,
    /// The first B → A conversion.
    pub converted_on: Option<Date>,
    pub classes: Vec<ClassRow>,
    pub assignments: Vec<FactRow>,
    pub feedback: Vec<FeedbackRow>,
    pub withdrawn: bool,
    pub has_commitments: bool,
    pub commitments: Vec<CommitmentRow>,
}

impl SuggestionFacts {
    pub fn of(s: &Suggestion) -> SuggestionFacts {
        let classes: Vec<ClassRow> = s
            .replies
            .iter()
            .filter(|r| r.reply_type != ReplyType::Supplementary)
            .map(|r| (r.on, r.class))
            .chain(s.class_history.iter().map(|c| (c.on, c.to)))
            .enumerate()
            .map(|(i, (on, class))| ClassRow {
                seq: i as u32,
                on,
                class,
            })
            .collect();
        // The last of the latest day, as `facts` takes it.
        let class_now = classes.iter().max_by_key(|c| c.on).map(|c| (c.class, c.on));
        let first_b_on = classes
            .iter()
            .filter(|c| c.class == ReplyClass::B)
            .map(|c| c.on)
            .min();
        let converted_on = s
            .class_history
            .iter()
            .filter(|c| c.conversion && c.to == ReplyClass::A)
            .map(|c| c.on)
            .min();
        let assignments = s
            .assignments
            .iter()
            .map(|a| {
                let replied_on = if a.is_responsible() {
                    s.replies
                        .iter()
                        .filter(|r| r.assignment_id == a.id && !super::returned(r))
                        .map(|r| r.on)
                        .min()
                } else {
                    s.opinions
                        .iter()
                        .filter(|o| o.assignment_id == a.id)
                        .map(|o| o.on)
                        .min()
                };
                let comms = s.communications.iter().filter(|c| c.assignment_id == a.id);
                let review = super::first_review(s, a.id);
                FactRow {
                    assignment_id: a.id,
                    agency: a.agency,
                    division: a.dispatch.as_ref().map(|d| d.division),
                    role: a.role,
                    assigned_on: a.assigned_on,
                    superseded: a.state == AssignmentState::Superseded,
                    replied_on,
                    effective_due: if a.is_responsible() {
                        a.deadlines.reply.as_ref().map(|d| d.due)
                    } else {
                        a.deadlines.co_opinion.as_ref().map(|d| d.due)
                    },
                    first_contact_on: comms.clone().map(|c| c.on).min(),
                    first_meeting_on: comms.clone().filter(|c| c.face_to_face).map(|c| c.on).min(),
                    led_by_principal: a
                        .dispatch
                        .as_ref()
                        .is_some_and(|d| d.leading_official.is_some()),
                    after_reply_contact_on: replied_on
                        .and_then(|r| comms.clone().map(|c| c.on).filter(|on| *on > r).min()),
                    recess_contact_on: comms
                        .filter(|c| c.phase == CommunicationPhase::Recess)
                        .map(|c| c.on)
                        .min(),
                    first_review_on: review.map(|(on, _)| on),
                    first_review_returned: review.is_some_and(|(_, r)| r),
                }
            })
            .collect();
        let feedback = s
            .feedback
            .iter()
            .map(|f| FeedbackRow {
                deputy: f.deputy,
                round: f.round,
                level: f.level,
                on: f.on,
                superseded_on: s
                    .feedback
                    .iter()
                    .filter(|g| g.deputy == f.deputy && g.round > f.round)
                    .map(|g| g.on)
                    .min(),
            })
            .collect();
        SuggestionFacts {
            session: s.details.session_id,
            category: s.details.category.clone(),
            lead_deputy: s.details.lead_deputy,
            delegation: s.details.delegation.clone(),
            key_item: s.details.key_supervised,
            class_now,
            first_b_on,
            converted_on,
            classes,
            assignments,
            feedback,
            withdrawn: matches!(s.state, SuggestionState::Withdrawn),
            has_commitments: !s.commitments.is_empty(),
            commitments: s
                .commitments
                .iter()
                .map(|c| CommitmentRow {
                    id: c.id,
                    assignment_id: c.assignment_id,
                    target_date: c.target_date,
                    fulfilled: c.fulfilled(),
                })
                .collect(),
        }
    }
}

/// How many counts [`Counts`] holds; [`Counts::to_array`] orders them as the struct does.
pub const COUNTS: usize = 26;

impl Counts {
    pub fn to_array(&self) -> [u64; COUNTS] {
        [
            self.lead,
            self.co,
            self.separate,
            self.sole,
            self.live,
            self.replied,
            self.on_time,
            self.responsible,
            self.communicated,
            self.met,
            self.replied_responsible,
            self.resolved,
            self.solved_or_planned,
            self.ever_b,
            self.converted,
            self.communicated_after_reply,
            self.communicated_in_recess,
            self.feedback_latest,
            self.feedback_latest_good,
            self.feedback_latest_satisfied,
            self.feedback_first,
            self.feedback_first_good,
            self.commitments_due,
            self.commitments_fulfilled,
            self.reviewed,
            self.returned,
        ]
    }

    /// Sums below zero (never from consistent data) read as zero.
    pub fn from_array(v: [i64; COUNTS]) -> Counts {
        let g = |i: usize| v[i].max(0) as u64;
        Counts {
            lead: g(0),
            co: g(1),
            separate: g(2),
            sole: g(3),
            live: g(4),
            replied: g(5),
            on_time: g(6),
            responsible: g(7),
            communicated: g(8),
            met: g(9),
            replied_responsible: g(10),
            resolved: g(11),
            solved_or_planned: g(12),
            ever_b: g(13),
            converted: g(14),
            communicated_after_reply: g(15),
            communicated_in_recess: g(16),
            feedback_latest: g(17),
            feedback_latest_good: g(18),
            feedback_latest_satisfied: g(19),
            feedback_first: g(20),
            feedback_first_good: g(21),
            commitments_due: g(22),
            commitments_fulfilled: g(23),
            reviewed: g(24),
            returned: g(25),
        }
    }
}

/// A slice of the counts kept per day: one agency or every agency (`None`), one year of
/// assignment or every year, one role or every role, and optionally only the items of one
/// category or delegation ([`Facet`]; kept with every role only).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct DayKey {
    pub agency: Option<AgencyId>,
    pub year: Option<i32>,
    pub role: Option<UnitRole>,
    pub facet: Option<Facet>,
}

/// A property of the whole item by which the per-day counts are also kept, so that a metrics
/// query scoped by it sums days instead of aggregating assignments.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Facet {
    /// 分类: the item's category.
    Category(String),
    /// 代表团: the lead deputy's delegation when the item was submitted.
    Delegation(String),
}

impl Facet {
    /// The facets of an item: its category and its delegation, each when it has one.
    pub fn of(s: &Suggestion) -> Vec<Facet> {
        let mut out = Vec::with_capacity(2);
        if !s.details.category.is_empty() {
            out.push(Facet::Category(s.details.category.clone()));
        }
        if !s.details.delegation.is_empty() {
            out.push(Facet::Delegation(s.details.delegation.clone()));
        }
        out
    }

    /// The facet's kind as stored (`category`, `delegation`).
    pub fn kind(&self) -> &'static str {
        match self {
            Facet::Category(_) => "category",
            Facet::Delegation(_) => "delegation",
        }
    }

    /// The facet's value.
    pub fn value(&self) -> &str {
        match self {
            Facet::Category(v) | Facet::Delegation(v) => v,
        }
    }
}

/// How one suggestion's contribution to each slice's counts changes, day by day.
///
/// The counts as of a day are a step function of the day: every fact enters by comparing its
/// date with the day, so they change only on the dates the suggestion carries. Evaluating the
/// formulas ([`Counts::compute`], the reference) on each of those dates and keeping the
/// differences gives changes whose sum over the days up to `as_of` is exactly the counts as of
/// `as_of` — a sum over days instead of over assignments, whatever the number of assignments.
pub fn day_changes(s: &Suggestion) -> Vec<(DayKey, Date, [i64; COUNTS])> {
    let mut days: Vec<Date> = s
        .assignments
        .iter()
        .map(|a| a.assigned_on)
        .chain(s.replies.iter().map(|r| r.on))
        .chain(
            s.replies
                .iter()
                .filter_map(|r| r.review.as_ref().map(|v| v.on)),
        )
        .chain(s.opinions.iter().map(|o| o.on))
        .chain(s.communications.iter().map(|c| c.on))
        .chain(s.class_history.iter().map(|c| c.on))
        .chain(s.feedback.iter().map(|f| f.on))
        .chain(s.commitments.iter().map(|c| c.target_date))
        .collect();
    days.sort_unstable();
    days.dedup();
    let mut keys = std::collections::BTreeSet::new();
    for a in &s.assignments {
        for agency in [Some(a.agency), None] {
            for year in [Some(a.assigned_on.year()), None] {
                for role in [Some(a.role), None] {
                    keys.insert(DayKey {
                        agency,
                        year,
                        role,
                        facet: None,
                    });
                }
            }
        }
    }
    let keys: Vec<DayKey> = keys.into_iter().collect();
    let mut before = vec![[0u64; COUNTS]; keys.len()];
    let mut out = Vec::new();
    for &day in &days {
        // The facts as of the day once; each slice counts its assignments among them, and the
        // feedback when it has any (as `Counts::compute` over the slice does).
        let scope = Scope {
            as_of: Some(day),
            ..Scope::default()
        };
        let all = facts(s, &scope);
        let fb = feedback(s, Some(day));
        for (key, before) in keys.iter().zip(before.iter_mut()) {
            let mine: Vec<&AssignmentFacts> = all
                .iter()
                .filter(|f| {
                    key.agency.is_none_or(|x| x == f.agency)
                        && key.role.is_none_or(|r| r == f.role)
                        && key.year.is_none_or(|y| y == f.assigned_on.year())
                })
                .collect();
            let none: [(Satisfaction, u32, bool); 0] = [];
            let now = Counts::of_facts(
                mine.iter().copied(),
                if mine.is_empty() { &none } else { &fb },
            )
            .to_array();
            if now != *before {
                let mut change = [0i64; COUNTS];
                for ((c, n), b) in change.iter_mut().zip(now).zip(*before) {
                    *c = n as i64 - b as i64;
                }
                out.push((key.clone(), day, change));
                *before = now;
            }
        }
    }
    // A category or delegation belongs to the whole item: every assignment of a slice is in the
    // facet, so a faceted slice moves exactly as the same slice without the facet.
    let facets = Facet::of(s);
    if !facets.is_empty() {
        let faceted: Vec<_> = out
            .iter()
            .filter(|(k, _, _)| k.role.is_none())
            .flat_map(|(k, d, c)| {
                facets.iter().map(move |f| {
                    (
                        DayKey {
                            facet: Some(f.clone()),
                            ..k.clone()
                        },
                        *d,
                        *c,
                    )
                })
            })
            .collect();
        out.extend(faceted);
    }
    out
}

/// What to add to the stored per-day counts when a suggestion goes from `old` (`None`: not
/// stored before) to `new`: the changes that differ, summed by slice and day.
pub fn day_changes_diff(
    old: Option<&Suggestion>,
    new: &Suggestion,
) -> Vec<(DayKey, Date, [i64; COUNTS])> {
    let mut sum: std::collections::BTreeMap<(DayKey, Date), [i64; COUNTS]> =
        std::collections::BTreeMap::new();
    for (k, d, c) in day_changes(new) {
        let e = sum.entry((k, d)).or_insert([0; COUNTS]);
        for (e, c) in e.iter_mut().zip(c) {
            *e += c;
        }
    }
    if let Some(old) = old {
        for (k, d, c) in day_changes(old) {
            let e = sum.entry((k, d)).or_insert([0; COUNTS]);
            for (e, c) in e.iter_mut().zip(c) {
                *e -= c;
            }
        }
    }
    sum.into_iter()
        .filter(|(_, c)| c.iter().any(|x| *x != 0))
        .map(|((k, d), c)| (k, d, c))
        .collect()
}
