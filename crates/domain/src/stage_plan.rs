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
