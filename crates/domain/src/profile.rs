//! Rule profiles (办理规则): every deadline and switch of the rules, loaded from TOML.
//!
//! Two profiles ship: `hunan` (the default, A/B/C) and `national` (A/B/C/D). A file with an
//! unknown key or an impossible value is refused with the file, the key and the reason.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use banli_calendar::{DurationSpec, OutOfRangePolicy};

use crate::suggestion::{OpinionSubstance, ReplyClass, ReplyType, SignerPosition};

/// The reply classification scheme (答复分类).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClassScheme {
    /// A solved / B being solved / C for reference.
    Abc,
    /// The national four-class scheme: A / B / C / D.
    Abcd,
}

impl ClassScheme {
    pub fn allows(self, class: ReplyClass) -> bool {
        !(self == ClassScheme::Abc && class == ReplyClass::D)
    }
}

/// Named deadlines, each a duration from its start event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Deadlines {
    /// A recess item is assigned within this of receipt.
    pub recess_assignment: DurationSpec,
    /// 异议期: a unit may contest its assignment within this of the assignment.
    pub objection_window: DurationSpec,
    /// The assigning office answers an objection within this.
    pub objection_answer: DurationSpec,
    /// First contact with the deputy, from the assignment.
    pub first_contact: DurationSpec,
    /// A co-handler's opinion to the lead, from the assignment.
    pub co_opinion: DurationSpec,
    /// The reply, from the assignment.
    pub reply: DurationSpec,
    /// The latest a reply may be extended to, from the assignment.
    pub reply_cap: DurationSpec,
    /// The deputy returns feedback, from the reply.
    pub feedback: DurationSpec,
    /// A re-handled reply, from the re-handling decision.
    pub rehandling_reply: DurationSpec,
    /// The reply is published, from the reply.
    pub publication: DurationSpec,
    /// 答复审查: the assigning office accepts or returns a reply within this of the reply
    /// (when `rules.office_reviews_replies`).
    #[serde(default = "five_working_days")]
    pub office_review: DurationSpec,
    /// A returned reply is issued again within this of its return.
    #[serde(default = "fifteen_working_days")]
    pub returned_reply: DurationSpec,
    /// 内部审批: each step of a unit's approval chain decides within this of the draft reaching
    /// it; a step past it shows in the follow-up lists (overdue) like any deadline.
    #[serde(default = "three_working_days")]
    pub approval_step: DurationSpec,
}

fn three_working_days() -> DurationSpec {
    DurationSpec::WorkingDays { days: 3 }
}

fn five_working_days() -> DurationSpec {
    DurationSpec::WorkingDays { days: 5 }
}

fn fifteen_working_days() -> DurationSpec {
    DurationSpec::WorkingDays { days: 15 }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Switches {
    /// 先沟通后答复: no reply before a communication with the lead deputy is recorded.
    pub communicate_before_reply: bool,
    /// Re-handling rounds before a still-dissatisfied item escalates.
    pub rehandling_rounds: u32,
    /// Approved extensions per assignment.
    pub max_extensions: u32,
    /// Who may sign a reply.
    pub reply_signers: Vec<SignerPosition>,
    /// Reply classes that must carry commitments.
    pub commitment_classes: Vec<ReplyClass>,
    /// Key-supervised items need a leading official (领办) at dispatch.
    pub leading_official_for_key_items: bool,
    /// Deadlines that leave the calendar data: refuse, or assume weekends only (and say so).
    pub outside_calendar: OutOfRangePolicy,
    /// A co-handling opinion with neither measures within the co-unit's remit nor a reason why
    /// there are none (会办意见简单拼凑): `off` accepts it, `flag` accepts and marks it, `refuse`
    /// answers 422.
    #[serde(default)]
    pub opinion_substance: OpinionSubstance,
    /// The reply types that must come with their signed letter (答复函, with the unit's seal) as
    /// an uploaded document: `initial`, `re_handled`, `supplementary`, `joint`. Empty: a letter
    /// is optional.
    #[serde(default)]
    pub signed_letter_for: Vec<ReplyType>,
    /// 答复审查: the assigning office reviews each reply (but a supplementary one, which its
    /// closure review covers) within `deadlines.office_review`, accepting it or returning it for
    /// re-handling (驳回重办, a new reply due within `deadlines.returned_reply`), before the
    /// deputies are asked for their rating; a reply not decided on in time is accepted.
    #[serde(default)]
    pub office_reviews_replies: bool,
    /// 公开答复: replies are published (redacted) `deadlines.publication` after they are issued,
    /// where the item is not confidential and its disclosure is not `none`.
    #[serde(default = "yes")]
    pub publish_replies: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reminders {
    /// Calendar days before a due date on which reminders go out (0 = on the day).
    pub days_before: Vec<u32>,
    /// Calendar days after a due date on which a reminder goes out.
    pub days_after: Vec<u32>,
    /// Past due by more than this many calendar days is "very late".
    pub very_late_after_days: u32,
    /// The owner of an open commitment tells the deputy how it progresses at least this often
    /// (calendar months; also in recess): a reminder goes out when it has not. 0: no reminder.
    #[serde(default = "three")]
    pub progress_notice_months: u32,
    /// A progress word still owed this many calendar days after it was due raises a
    /// supervision notice to the owner unit (trigger `progress_overdue`).
    #[serde(default = "ten")]
    pub progress_grace_days: u32,
}

fn three() -> u32 {
    3
}

fn ten() -> u32 {
    10
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SupervisionDefaults {
    pub stages: u32,
    pub rounds_per_stage: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricRules {
    /// No ranking is published, and no rate judged against a target, from fewer items than this.
    pub min_items_for_ranking: u32,
    /// Minimum rates in percent by API name (`on_time_rate = 100`), checked at the end of each
    /// stage of an agency's stage plan: a rate under its target raises a supervision notice
    /// (trigger `metric_below_target`). See [`crate::targets`].
    #[serde(default)]
    pub targets: BTreeMap<String, u32>,
}

/// A complete rule profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleProfile {
    pub name: String,
    #[serde(default)]
    pub description: String,
    pub class_scheme: ClassScheme,
    pub deadlines: Deadlines,
    pub rules: Switches,
    pub reminders: Reminders,
    pub supervision: SupervisionDefaults,
    pub metrics: MetricRules,
}

/// Why a profile file was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}: {key}: {reason}")]
pub struct ProfileError {
    pub file: String,
    pub key: String,
    pub reason: String,
}

const HUNAN: &str = include_str!("../profiles/hunan.toml");
const NATIONAL: &str = include_str!("../profiles/national.toml");

impl RuleProfile {
    /// The default profile.
    pub fn hunan() -> RuleProfile {
        #[allow(clippy::expect_used)] // shipped files, validated by tests
        RuleProfile::from_toml_str("profiles/hunan.toml", HUNAN)
            .expect("the shipped hunan profile is valid")
    }

    /// The national four-class variant.
    pub fn national() -> RuleProfile {
        #[allow(clippy::expect_used)] // shipped files, validated by tests
        RuleProfile::from_toml_str("profiles/national.toml", NATIONAL)
            .expect("the shipped national profile is valid")
    }

    /// A shipped profile by name.
    pub fn builtin(name: &str) -> Option<RuleProfile> {
        match name {
            "hunan" => Some(Self::hunan()),
            "national" => Some(Self::national()),
            _ => None,
        }
    }

    /// Parses and validates a profile; `file` names it in errors.
    pub fn from_toml_str(file: &str, text: &str) -> Result<RuleProfile, ProfileError> {
        let err = |key: &str, reason: String| ProfileError {
            file: file.to_owned(),
            key: key.to_owned(),
            reason,
        };
        let profile: RuleProfile = toml::from_str(text).map_err(|e| {
            let reason = e.message().to_owned();
            let location = e
                .span()
                .map(|s| {
                    let line = text[..s.start.min(text.len())].lines().count().max(1);
                    format!("line {line}")
                })
                .unwrap_or_else(|| "(document)".to_owned());
            err(&location, reason)
        })?;
        profile
            .validate()
            .map_err(|(key, reason)| err(&key, reason))?;
        Ok(profile)
    }

    fn validate(&self) -> Result<(), (String, String)> {
        if self.name.trim().is_empty() {
            return Err(("name".into(), "must not be empty".into()));
        }
        let d = &self.deadlines;
        for (key, spec) in [
            ("recess_assignment", &d.recess_assignment),
            ("objection_window", &d.objection_window),
            ("objection_answer", &d.objection_answer),
            ("first_contact", &d.first_contact),
            ("co_opinion", &d.co_opinion),
            ("reply", &d.reply),
            ("reply_cap", &d.reply_cap),
            ("feedback", &d.feedback),
            ("rehandling_reply", &d.rehandling_reply),
            ("publication", &d.publication),
            ("office_review", &d.office_review),
            ("returned_reply", &d.returned_reply),
            ("approval_step", &d.approval_step),
        ] {
            let positive = match spec {
                DurationSpec::CalendarDays { days } => *days > 0,
                DurationSpec::WorkingDays { days } => *days > 0,
                DurationSpec::CalendarMonths { months } => *months > 0,
                DurationSpec::FixedDate { .. } => true,
                DurationSpec::AfterDeadline { .. } => false,
            };
            if !positive {
                return Err((
                    format!("deadlines.{key}"),
                    format!("`{spec}` is not a positive duration from the start event"),
                ));
            }
        }
        if let (
            DurationSpec::CalendarMonths { months: reply },
            DurationSpec::CalendarMonths { months: cap },
        ) = (&d.reply, &d.reply_cap)
            && cap < reply
        {
            return Err((
                "deadlines.reply_cap".into(),
                format!("{cap} months is shorter than the reply deadline of {reply} months"),
            ));
        }
        if self.rules.reply_signers.is_empty() {
            return Err((
                "rules.reply_signers".into(),
                "at least one position must be allowed to sign".into(),
            ));
        }
        if let Some(c) = self
            .rules
            .commitment_classes
            .iter()
            .find(|c| !self.class_scheme.allows(**c))
        {
            return Err((
                "rules.commitment_classes".into(),
                format!("class {c:?} is not in the {:?} scheme", self.class_scheme),
            ));
        }
        if self.rules.commitment_classes.contains(&ReplyClass::A) {
            return Err((
                "rules.commitment_classes".into(),
                "class A means solved; it cannot require commitments".into(),
            ));
        }
        if self.supervision.stages == 0 || self.supervision.stages > 12 {
            return Err((
                "supervision.stages".into(),
                format!("{} is not between 1 and 12", self.supervision.stages),
            ));
        }
        if self.supervision.rounds_per_stage == 0 || self.supervision.rounds_per_stage > 10 {
            return Err((
                "supervision.rounds_per_stage".into(),
                format!(
                    "{} is not between 1 and 10",
                    self.supervision.rounds_per_stage
                ),
            ));
        }
        for (rate, percent) in &self.metrics.targets {
            if !crate::metrics::RATES.iter().any(|(n, _)| n == rate) {
                return Err((
                    format!("metrics.targets.{rate}"),
                    format!(
                        "unknown rate; expected one of {}",
                        crate::metrics::RATES.map(|(n, _)| n).join(", ")
                    ),
                ));
            }
            if rate == "returned_rate" {
                return Err((
                    format!("metrics.targets.{rate}"),
                    "returned_rate falls as the work improves: a target is a minimum, so it takes none".into(),
                ));
            }
            if *percent == 0 || *percent > 100 {
                return Err((
                    format!("metrics.targets.{rate}"),
                    format!("{percent} is not a percentage between 1 and 100"),
                ));
            }
        }
        if self.reminders.very_late_after_days == 0 {
            return Err((
                "reminders.very_late_after_days".into(),
                "must be at least 1".into(),
            ));
        }
        Ok(())
    }

    /// The calendar policy as the deadline arithmetic takes it.
    pub fn out_of_range(&self) -> OutOfRangePolicy {
        self.rules.outside_calendar
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_profiles_load() {
        let h = RuleProfile::hunan();
        assert_eq!(h.class_scheme, ClassScheme::Abc);
        assert_eq!(
            h.deadlines.reply,
            DurationSpec::CalendarMonths { months: 3 }
        );
        assert_eq!(h.rules.rehandling_rounds, 1);
        let n = RuleProfile::national();
        assert_eq!(n.class_scheme, ClassScheme::Abcd);
        assert_eq!(
            n.rules.commitment_classes,
            vec![ReplyClass::B, ReplyClass::C]
        );
        assert!(RuleProfile::builtin("nowhere").is_none());
    }

    fn refused(from: &str, to: &str) -> String {
        let text = HUNAN.replacen(from, to, 1);
        assert_ne!(text, HUNAN, "the replacement must change the file");
        match RuleProfile::from_toml_str("custom.toml", &text) {
            Ok(_) => panic!("accepted {to}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn bad_profiles_are_refused_with_file_key_and_reason() {
        let e = refused(
            "rehandling_rounds = 1",
            "rehandling_rounds = 1\nrehandeling = 2",
        );
        assert!(
            e.starts_with("custom.toml: line ") && e.contains("unknown field `rehandeling`"),
            "{e}"
        );

        let e = refused("days = 15 }", "days = -15 }");
        assert!(
            e.starts_with("custom.toml: line 11") && e.contains("-15"),
            "{e}"
        );

        let e = refused(
            "objection_answer = { kind = \"calendar_days\", days = 7 }",
            "objection_answer = { kind = \"calendar_days\", days = -7 }",
        );
        assert!(
            e.contains("deadlines.objection_answer") && e.contains("not a positive duration"),
            "{e}"
        );

        let e = refused(
            "reply_cap = { kind = \"calendar_months\", months = 6 }",
            "reply_cap = { kind = \"calendar_months\", months = 2 }",
        );
        assert!(
            e.contains("deadlines.reply_cap") && e.contains("shorter"),
            "{e}"
        );

        let e = refused(
            "commitment_classes = [\"B\"]",
            "commitment_classes = [\"D\"]",
        );
        assert!(e.contains("rules.commitment_classes"), "{e}");

        let e = refused(
            "office_review = { kind = \"working_days\", days = 5 }",
            "office_review = { kind = \"working_days\", days = 0 }",
        );
        assert!(e.contains("deadlines.office_review"), "{e}");

        let e = refused(
            "targets = { on_time_rate = 100",
            "targets = { returned_rate = 10, on_time_rate = 100",
        );
        assert!(
            e.contains("metrics.targets.returned_rate") && e.contains("takes none"),
            "{e}"
        );

        let e = refused("stages = 3", "stages = 0");
        assert!(e.contains("supervision.stages"), "{e}");

        let e = refused(
            "kind = \"working_days\", days = 5 }",
            "kind = \"fortnights\", days = 5 }",
        );
        assert!(e.contains("fortnights"), "{e}");

        let e = refused("on_time_rate = 100,", "on_time_rate = 120,");
        assert!(
            e.contains("metrics.targets.on_time_rate") && e.contains("between 1 and 100"),
            "{e}"
        );
        let e = refused("on_time_rate = 100,", "on_tme_rate = 100,");
        assert!(
            e.contains("metrics.targets.on_tme_rate") && e.contains("unknown rate"),
            "{e}"
        );
    }
}
