//! Stage plans (阶段安排): per agency and year, stages with end dates, targets and supervision rounds.

use serde::{Deserialize, Serialize};
use time::{Date, Month};

use crate::error::DomainError;
use crate::ids::*;
use crate::profile::RuleProfile;

/// What a stage must achieve.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StageTarget {
    AllSignedFor,
    AllCommunicated,
    AllReplied,
    AllFeedbackIn,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stage {
    pub name: String,
    pub ends_on: Date,
    pub targets: Vec<StageTarget>,
    /// Dates of the supervision rounds within the stage.
    pub supervision_rounds: Vec<Date>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StagePlan {
    pub id: StagePlanId,
    pub agency: AgencyId,
    pub year: i32,
    pub starts_on: Date,
    pub stages: Vec<Stage>,
}

impl StagePlan {
    /// Validates a plan: stages in order inside the year, each with a round inside it.
    pub fn new(
        id: StagePlanId,
        agency: AgencyId,
        year: i32,
        starts_on: Date,
        stages: Vec<Stage>,
    ) -> Result<StagePlan, DomainError> {
        let invalid = |field, reason: String| DomainError::Invalid {
            command: "plan stages",
            field,
            reason,
        };
        if stages.is_empty() {
            return Err(invalid("stages", "a plan has at least one stage".into()));
        }
        if starts_on.year() != year {
            return Err(invalid(
                "starts_on",
                format!("{starts_on} is not in {year}"),
            ));
        }
        let mut prev = starts_on;
        for s in &stages {
            if s.ends_on <= prev {
                return Err(invalid(
                    "stages",
                    format!(
                        "stage `{}` ends on {} — not after {prev}",
                        s.name, s.ends_on
                    ),
                ));
            }
            if s.ends_on.year() != year {
                return Err(invalid(
                    "stages",
                    format!("stage `{}` ends outside {year}", s.name),
                ));
            }
            if s.supervision_rounds.is_empty() {
                return Err(invalid(
                    "supervision_rounds",
                    format!("stage `{}` has no supervision round", s.name),
                ));
            }
            if let Some(r) = s
                .supervision_rounds
                .iter()
                .find(|r| **r <= prev || **r > s.ends_on)
            {
                return Err(invalid(
                    "supervision_rounds",
                    format!("{r} is outside stage `{}` ({prev} – {})", s.name, s.ends_on),
                ));
            }
            prev = s.ends_on;
        }
        Ok(StagePlan {
            id,
            agency,
            year,
            starts_on,
            stages,
        })
    }

    /// Why this plan weakens `issued` (a plan the assigning office issued for the agency), or
    /// `None` when it keeps all of it: every stage of `issued`, by name, ending no later, with
    /// all its targets and supervision rounds. An agency may add to the office's plan (its own
    /// stages, targets and rounds), never take from it.
    pub fn weakens(&self, issued: &StagePlan) -> Option<String> {
        for stage in &issued.stages {
            let Some(kept) = self.stages.iter().find(|s| s.name == stage.name) else {
                return Some(format!("stage `{}` is missing", stage.name));
            };
            if kept.ends_on > stage.ends_on {
                return Some(format!(
                    "stage `{}` would end on {} instead of {}",
                    stage.name, kept.ends_on, stage.ends_on
                ));
            }
            if let Some(t) = stage.targets.iter().find(|t| !kept.targets.contains(t)) {
                return Some(format!(
                    "stage `{}` would lose its target {t:?}",
                    stage.name
                ));
            }
            if let Some(r) = stage
                .supervision_rounds
                .iter()
                .find(|r| !kept.supervision_rounds.contains(r))
            {
                return Some(format!(
                    "stage `{}` would lose its supervision round of {r}",
                    stage.name
                ));
            }
        }
        None
    }

    /// The profile's default: N equal stages from `starts_on` to 30 November, each with its rounds
    /// spread evenly, the targets of the source report (communicate, reply, feedback).
    pub fn default_for(
        id: StagePlanId,
        agency: AgencyId,
        starts_on: Date,
        profile: &RuleProfile,
    ) -> Result<StagePlan, DomainError> {
        let year = starts_on.year();
        let end = Date::from_calendar_date(year, Month::November, 30).map_err(|e| {
            DomainError::Invalid {
                command: "plan stages",
                field: "starts_on",
                reason: e.to_string(),
            }
        })?;
        let n = i64::from(profile.supervision.stages);
        let rounds = i64::from(profile.supervision.rounds_per_stage);
        let total = (end - starts_on).whole_days();
        if total < n * (rounds + 1) {
            return Err(DomainError::Invalid {
                command: "plan stages",
                field: "starts_on",
                reason: format!("{starts_on} leaves too little of {year} for {n} stages"),
            });
        }
        let mut stages = Vec::new();
        let mut from = starts_on;
        for i in 1..=n {
            let ends_on = starts_on + time::Duration::days(total * i / n);
            let len = (ends_on - from).whole_days();
            let supervision_rounds = (1..=rounds)
                .map(|r| from + time::Duration::days(len * r / (rounds + 1)))
                .collect();
            let targets = match i {
                1 => vec![StageTarget::AllSignedFor, StageTarget::AllCommunicated],
                i if i == n => vec![StageTarget::AllFeedbackIn],
                _ => vec![StageTarget::AllReplied],
            };
            stages.push(Stage {
                name: format!("stage {i}"),
                ends_on,
                targets,
                supervision_rounds,
            });
            from = ends_on;
        }
        StagePlan::new(id, agency, year, starts_on, stages)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    fn stage(name: &str, ends_on: Date, targets: Vec<StageTarget>, rounds: Vec<Date>) -> Stage {
        Stage {
            name: name.into(),
            ends_on,
            targets,
            supervision_rounds: rounds,
        }
    }

    #[test]
    fn an_agency_may_add_to_the_offices_plan_but_not_take_from_it() {
        let agency = AgencyId::new();
        let plan = |stages| {
            StagePlan::new(
                StagePlanId::new(),
                agency,
                2020,
                date!(2020 - 03 - 01),
                stages,
            )
            .unwrap_or_else(|e| panic!("{e}"))
        };
        let first = |ends, targets, rounds| vec![stage("first", ends, targets, rounds)];
        let office = plan(first(
            date!(2020 - 06 - 30),
            vec![StageTarget::AllSignedFor],
            vec![date!(2020 - 05 - 01)],
        ));
        let more = plan(vec![
            stage(
                "first",
                date!(2020 - 06 - 15),
                vec![StageTarget::AllSignedFor, StageTarget::AllCommunicated],
                vec![date!(2020 - 04 - 01), date!(2020 - 05 - 01)],
            ),
            stage(
                "own",
                date!(2020 - 09 - 30),
                vec![StageTarget::AllReplied],
                vec![date!(2020 - 08 - 01)],
            ),
        ]);
        assert_eq!(more.weakens(&office), None);
        let cases = [
            (
                first(
                    date!(2020 - 07 - 31),
                    vec![StageTarget::AllSignedFor],
                    vec![date!(2020 - 05 - 01)],
                ),
                "would end",
            ),
            (
                first(
                    date!(2020 - 06 - 30),
                    vec![StageTarget::AllCommunicated],
                    vec![date!(2020 - 05 - 01)],
                ),
                "target",
            ),
            (
                first(
                    date!(2020 - 06 - 30),
                    vec![StageTarget::AllSignedFor],
                    vec![date!(2020 - 05 - 02)],
                ),
                "round",
            ),
            (
                vec![stage(
                    "other",
                    date!(2020 - 06 - 30),
                    vec![StageTarget::AllSignedFor],
                    vec![date!(2020 - 05 - 01)],
                )],
                "missing",
            ),
        ];
        for (stages, why) in cases {
            let weaker = plan(stages);
            let found = weaker.weakens(&office);
            assert!(
                found.as_deref().is_some_and(|w| w.contains(why)),
                "{found:?}"
            );
        }
    }

    #[test]
    fn default_plan_has_three_stages_with_two_rounds_each() {
        let plan = StagePlan::default_for(
            StagePlanId::new(),
            AgencyId::new(),
            date!(2020 - 03 - 01),
            &RuleProfile::hunan(),
        )
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(plan.stages.len(), 3);
        assert!(plan.stages.iter().all(|s| s.supervision_rounds.len() == 2));
        assert_eq!(plan.stages[2].ends_on, date!(2020 - 11 - 30));
    }

    #[test]
    fn stages_out_of_order_are_refused() {
        let stage = |name: &str, ends_on, round| Stage {
            name: name.into(),
            ends_on,
            targets: vec![],
            supervision_rounds: vec![round],
        };
        let err = StagePlan::new(
            StagePlanId::new(),
            AgencyId::new(),
            2020,
            date!(2020 - 03 - 01),
            vec![
                stage("a", date!(2020 - 06 - 01), date!(2020 - 05 - 01)),
                stage("b", date!(2020 - 05 - 01), date!(2020 - 05 - 02)),
            ],
        )
        .expect_err("out of order");
        assert!(
            err.to_string().contains("stage `b` ends on 2020-05-01"),
            "{err}"
        );
    }
}

/// How far one target of a stage is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetProgress {
    pub target: StageTarget,
    pub done: u64,
    pub total: u64,
    /// The items still short of the target.
    pub lagging: Vec<crate::ids::SuggestionId>,
}

/// One unit's (division's) progress; `division` is `None` for assignments not dispatched yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UnitProgress {
    pub division: Option<DivisionId>,
    pub targets: Vec<TargetProgress>,
}

/// A progress circular (进度通报) of one stage: the agency's items of the plan's year against
/// the stage's targets as of a day, overall and per division.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StageProgress {
    pub agency: AgencyId,
    pub year: i32,
    /// 1-based.
    pub stage: usize,
    pub name: String,
    pub ends_on: Date,
    pub as_of: Date,
    pub targets: Vec<TargetProgress>,
    pub units: Vec<UnitProgress>,
}

impl StageProgress {
    /// Items short of any target of the stage.
    pub fn lagging(&self) -> Vec<crate::ids::SuggestionId> {
        let mut all: Vec<_> = self
            .targets
            .iter()
            .flat_map(|t| t.lagging.iter().copied())
            .collect();
        all.sort();
        all.dedup();
        all
    }
}

/// Where one assignment stands on `target` as of `as_of`: `None` when the target does not
/// apply to it (communication and feedback are the responsible units' business).
fn meets(
    s: &crate::suggestion::Suggestion,
    a: &crate::suggestion::Assignment,
    target: StageTarget,
    as_of: Date,
) -> Option<bool> {
    use crate::suggestion::AssignmentState;
    let upto = |d: Date| d <= as_of;
    match target {
        // Signing is read from the state now (it carries no date of its own).
        StageTarget::AllSignedFor => Some(!matches!(
            a.state,
            AssignmentState::PendingSign | AssignmentState::AdjustmentPending
        )),
        StageTarget::AllCommunicated => a.is_responsible().then(|| {
            s.communications
                .iter()
                .any(|c| c.assignment_id == a.id && upto(c.on))
        }),
        StageTarget::AllReplied => Some(if a.is_responsible() {
            s.replies
                .iter()
                .any(|r| r.assignment_id == a.id && upto(r.on))
        } else {
            a.opinion_waived
                || s.opinions
                    .iter()
                    .any(|o| o.assignment_id == a.id && upto(o.on))
        }),
        StageTarget::AllFeedbackIn => a
            .is_responsible()
            .then(|| s.feedback.iter().any(|f| upto(f.on))),
    }
}

/// The progress of stage `stage` (1-based) of `plan` over `suggestions` as of `today` (the
/// stage's end once it is past). `None` when the plan has no such stage.
pub fn stage_progress(
    plan: &StagePlan,
    stage: usize,
    suggestions: &[crate::suggestion::Suggestion],
    today: Date,
) -> Option<StageProgress> {
    let st = plan.stages.get(stage.checked_sub(1)?)?;
    let as_of = today.min(st.ends_on);
    let mine: Vec<(
        &crate::suggestion::Suggestion,
        &crate::suggestion::Assignment,
    )> = suggestions
        .iter()
        .flat_map(|s| s.assignments.iter().map(move |a| (s, a)))
        .filter(|(_, a)| {
            a.agency == plan.agency
                && a.is_active()
                && a.assigned_on.year() == plan.year
                && a.assigned_on <= as_of
        })
        .collect();
    let count = |items: &[(
        &crate::suggestion::Suggestion,
        &crate::suggestion::Assignment,
    )]| {
        st.targets
            .iter()
            .map(|t| {
                let mut p = TargetProgress {
                    target: *t,
                    done: 0,
                    total: 0,
                    lagging: Vec::new(),
                };
                for (s, a) in items {
                    match meets(s, a, *t, as_of) {
                        Some(true) => {
                            p.done += 1;
                            p.total += 1;
                        }
                        Some(false) => {
                            p.total += 1;
                            p.lagging.push(s.id);
                        }
                        None => {}
                    }
                }
                p.lagging.sort();
                p.lagging.dedup();
                p
            })
            .collect::<Vec<_>>()
    };
    let mut divisions: Vec<Option<DivisionId>> = mine
        .iter()
        .map(|(_, a)| a.dispatch.as_ref().map(|d| d.division))
        .collect();
    divisions.sort();
    divisions.dedup();
    let units = divisions
        .into_iter()
        .map(|d| {
            let of: Vec<_> = mine
                .iter()
                .copied()
                .filter(|(_, a)| a.dispatch.as_ref().map(|x| x.division) == d)
                .collect();
            UnitProgress {
                division: d,
                targets: count(&of),
            }
        })
        .collect();
    Some(StageProgress {
        agency: plan.agency,
        year: plan.year,
        stage,
        name: st.name.clone(),
        ends_on: st.ends_on,
        as_of,
        targets: count(&mine),
        units,
    })
}
