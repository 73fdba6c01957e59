//! What a deputy is told, and when: the suggestion events that concern the deputies become
//! messages in Chinese (the default) and English. Pure: the consumer keeps a [`Subject`] per
//! suggestion (what the wording needs) and writes what [`messages`] returns.

use std::collections::BTreeMap;

use banli_domain::ids::*;
use banli_domain::suggestion::{
    AdjustmentDecision, ReplyClass, ReplyType, Satisfaction, SuggestionEvent, UnitRole,
};
use serde::{Deserialize, Serialize};

/// What the service keeps of a suggestion to word its messages.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Subject {
    pub number: String,
    pub title: String,
    /// The lead deputy first, then the co-signers: every one hears.
    pub deputies: Vec<DeputyId>,
    pub units: BTreeMap<AssignmentId, (AgencyId, UnitRole)>,
    pub commitments: BTreeMap<CommitmentId, (AgencyId, String)>,
    /// The class of the last closure request: (from, to).
    pub closure: Option<(ReplyClass, ReplyClass)>,
    /// The assignment that made the last closure request.
    #[serde(default)]
    pub closure_by: Option<AssignmentId>,
    /// Replies issued for the assigning office's review (答复审查): the deputies hear of one
    /// once it is accepted. (Assignment, document number, class.)
    #[serde(default)]
    pub reviewed_replies: BTreeMap<ReplyId, (AssignmentId, String, ReplyClass)>,
}

impl Subject {
    /// Folds an event in; true when the subject changed (and is written back).
    pub fn apply(&mut self, e: &SuggestionEvent) -> bool {
        use SuggestionEvent as E;
        match e {
            E::Submitted(s) => {
                self.number = s.details.number.clone();
                self.title = s.details.title.clone();
                self.deputies = std::iter::once(s.details.lead_deputy)
                    .chain(s.details.co_signers.iter().copied())
                    .collect();
            }
            E::Assigned(a) => {
                self.units.insert(a.assignment_id, (a.agency, a.role));
            }
            E::AdjustmentDecided(a) => {
                if let AdjustmentDecision::Accept { .. } = a.decision {
                    self.units.remove(&a.assignment_id);
                } else {
                    return false;
                }
            }
            E::CommitmentCreated(c) => {
                self.commitments.insert(
                    c.commitment.id,
                    (c.commitment.owner, c.commitment.measure.clone()),
                );
            }
            E::ClosureRequested(c) => {
                self.closure = Some((c.request.from, c.request.to));
                self.closure_by = Some(c.request.assignment_id);
            }
            E::ReplyIssued(r) if r.reply.review_due.is_some() => {
                self.reviewed_replies.insert(
                    r.reply.id,
                    (
                        r.reply.assignment_id,
                        r.reply.document_number.clone(),
                        r.reply.class,
                    ),
                );
            }
            _ => return false,
        }
        true
    }
}

/// One message, in the deputy's language.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// `assigned`, `extension_approved`, `replied`, `re_handling`, `progress`, `closed`.
    pub kind: &'static str,
    pub zh: (String, String),
    pub en: (String, String),
}

impl Message {
    /// The title and body in `language` (`zh`, the default, or `en`).
    pub fn text(&self, language: &str) -> &(String, String) {
        if language == "en" { &self.en } else { &self.zh }
    }
}

/// The reply's due date of an assignment, or nothing (a co-unit has none).
fn reply_due(a: &banli_domain::suggestion::Assigned) -> String {
    a.deadlines
        .reply
        .as_ref()
        .map(|d| d.due.to_string())
        .unwrap_or_default()
}

fn role_zh(r: UnitRole) -> &'static str {
    match r {
        UnitRole::Lead => "主办",
        UnitRole::Co => "会办",
        UnitRole::Separate => "分办",
        UnitRole::Sole => "独办",
    }
}

fn class_zh(c: ReplyClass) -> &'static str {
    match c {
        ReplyClass::A => "A类（已解决或基本解决）",
        ReplyClass::B => "B类（正在解决或列入计划解决）",
        ReplyClass::C => "C类（留作参考）",
        ReplyClass::D => "D类（留作参考）",
    }
}

/// The messages `e` gives every deputy of the suggestion, with `name` giving agencies' names.
pub fn messages(
    s: &Subject,
    e: &SuggestionEvent,
    name: &dyn Fn(AgencyId) -> String,
) -> Vec<Message> {
    use SuggestionEvent as E;
    let item_zh = format!("您的建议《{}》（{}号）", s.title, s.number);
    let item_en = format!(
        "Your suggestion \u{201c}{}\u{201d} (No. {})",
        s.title, s.number
    );
    let unit = |a: &AssignmentId| s.units.get(a).copied();
    let one = |kind, zh_title: String, zh: String, en_title: String, en: String| {
        vec![Message {
            kind,
            zh: (format!("【建议办理】{zh_title}"), zh),
            en: (format!("[Suggestion] {en_title}"), en),
        }]
    };
    let replied = |agency: String, number: &str, class: ReplyClass| {
        one(
            "replied",
            format!("{}号已答复", s.number),
            format!(
                "{agency}已对{item_zh}作出书面答复（{number}，{}）。请登录平台查阅答复，并对办理情况提出意见。",
                class_zh(class)
            ),
            format!("No. {} answered", s.number),
            format!(
                "{agency} has replied in writing to {item_en} ({number}, class {}). Please read the reply and rate the handling.",
                class.as_str()
            ),
        )
    };
    match e {
        E::Assigned(a) => {
            let due = reply_due(a);
            let agency = name(a.agency);
            let (zh_due, en_due) = if due.is_empty() {
                (String::from("。"), String::from("."))
            } else {
                (
                    format!("，答复期限为{due}。"),
                    format!("; the reply is due by {due}."),
                )
            };
            one(
                "assigned",
                format!("{}号已交办", s.number),
                format!("{item_zh}已交由{agency}{}{zh_due}", role_zh(a.role)),
                format!("No. {} assigned", s.number),
                format!(
                    "{item_en} is assigned to {agency} ({}){en_due}",
                    a.role.as_str()
                ),
            )
        }
        E::ExtensionDecided(x) if x.approved => {
            let Some((agency, _)) = unit(&x.assignment_id) else {
                return Vec::new();
            };
            let due = x
                .new_reply_deadline
                .as_ref()
                .map(|d| d.due.to_string())
                .unwrap_or_default();
            let agency = name(agency);
            one(
                "extension_approved",
                format!("{}号答复期限延长", s.number),
                format!("经交办机关批准，{agency}对{item_zh}的答复期限延长至{due}。"),
                format!("No. {}: reply date extended", s.number),
                format!(
                    "The assigning office approved {agency}'s request: the reply to {item_en} is now due by {due}."
                ),
            )
        }
        // Where the office reviews replies, the deputies hear of a reply once it is accepted.
        E::ReplyIssued(r)
            if r.reply.reply_type != ReplyType::Supplementary && r.reply.review_due.is_none() =>
        {
            let Some((agency, _)) = unit(&r.reply.assignment_id) else {
                return Vec::new();
            };
            replied(name(agency), &r.reply.document_number, r.reply.class)
        }
        E::ReplyReviewed(r) if r.review.accepted => {
            let Some((assignment, number, class)) = s.reviewed_replies.get(&r.reply_id) else {
                return Vec::new();
            };
            let Some((agency, _)) = unit(assignment) else {
                return Vec::new();
            };
            replied(name(agency), number, *class)
        }
        E::ReHandlingOpened(r) => {
            let due = r
                .reply_deadlines
                .iter()
                .map(|(_, d)| d.due)
                .max()
                .map(|d| d.to_string())
                .unwrap_or_default();
            one(
                "re_handling",
                format!("{}号重新办理", s.number),
                format!(
                    "根据您的意见，{item_zh}将重新办理（第{}轮），新的答复期限为{due}。",
                    r.round
                ),
                format!("No. {} handled again", s.number),
                format!(
                    "Following your rating, {item_en} is handled again (round {}); the new reply is due by {due}.",
                    r.round
                ),
            )
        }
        E::CommitmentProgressed(p) if p.report.to_deputy => {
            let Some((agency, measure)) = s.commitments.get(&p.commitment_id) else {
                return Vec::new();
            };
            let agency = name(*agency);
            one(
                "progress",
                format!("{}号承诺事项进展", s.number),
                format!(
                    "{agency}就{item_zh}中承诺的“{measure}”通报进展（{}）：{}",
                    p.report.on, p.report.note
                ),
                format!("No. {}: progress on a commitment", s.number),
                format!(
                    "{agency} reports progress ({}) on \u{201c}{measure}\u{201d}, promised in reply to {item_en}: {}",
                    p.report.on, p.report.note
                ),
            )
        }
        E::ClosureDecided(d) if d.decision.confirmed => {
            let conversion = s
                .closure
                .is_some_and(|(from, to)| to == ReplyClass::A && from != ReplyClass::A);
            if conversion {
                one(
                    "closed",
                    format!("{}号承诺事项已落实", s.number),
                    format!(
                        "{item_zh}的承诺事项已全部落实，经交办机关确认，办理结果由B类转为A类（已解决），办理完结。欢迎您对落实情况作出评价。"
                    ),
                    format!("No. {}: commitments fulfilled", s.number),
                    format!(
                        "Every commitment made on {item_en} is fulfilled; the assigning office confirmed it, and the item is now class A (solved) and closed. You may rate how it was done."
                    ),
                )
            } else {
                one(
                    "closed",
                    format!("{}号办理完结", s.number),
                    format!("经交办机关确认，{item_zh}的跟踪办理已完结。"),
                    format!("No. {} closed", s.number),
                    format!(
                        "The assigning office confirmed that the follow-up of {item_en} is complete."
                    ),
                )
            }
        }
        _ => Vec::new(),
    }
}

fn satisfaction_zh(l: Satisfaction) -> &'static str {
    match l {
        Satisfaction::Satisfied => "满意",
        Satisfaction::BasicallySatisfied => "基本满意",
        Satisfaction::Dissatisfied => "不满意",
    }
}

/// The messages `e` gives units' contacts (联络员): each with the agency it is for. A unit hears
/// what it must do or what was decided on its work — an item assigned to it, its extension
/// request decided, its reply returned by the office (驳回重办), a deputy's rating of its reply,
/// re-handling, its closure request decided.
pub fn unit_messages(
    s: &Subject,
    e: &SuggestionEvent,
    name: &dyn Fn(AgencyId) -> String,
) -> Vec<(AgencyId, Message)> {
    use SuggestionEvent as E;
    let item_zh = format!("《{}》（{}号）", s.title, s.number);
    let item_en = format!("\u{201c}{}\u{201d} (No. {})", s.title, s.number);
    let msg = |kind, zh_title: String, zh: String, en_title: String, en: String| Message {
        kind,
        zh: (format!("【建议办理】{zh_title}"), zh),
        en: (format!("[Suggestion] {en_title}"), en),
    };
    let responsible = || {
        let mut v: Vec<AgencyId> = s
            .units
            .values()
            .filter(|(_, r)| *r != UnitRole::Co)
            .map(|(a, _)| *a)
            .collect();
        v.sort();
        v.dedup();
        v
    };
    match e {
        E::Assigned(a) => {
            let due = reply_due(a);
            let role = role_zh(a.role);
            vec![(
                a.agency,
                msg(
                    "unit_assigned",
                    format!("新交办建议{}号（{role}）", s.number),
                    format!(
                        "建议{item_zh}已交由{}{role}，答复期限为{due}。请及时签收并与代表联系。",
                        name(a.agency)
                    ),
                    format!("No. {} assigned to your unit ({})", s.number, a.role.as_str()),
                    format!(
                        "Suggestion {item_en} is assigned to {} ({}); the reply is due by {due}. Please sign for it and contact the deputy.",
                        name(a.agency),
                        a.role.as_str()
                    ),
                ),
            )]
        }
        E::ExtensionDecided(x) => {
            let Some((agency, _)) = s.units.get(&x.assignment_id).copied() else {
                return Vec::new();
            };
            let m = match (&x.new_reply_deadline, x.approved) {
                (Some(d), true) => msg(
                    "unit_extension_decided",
                    format!("{}号延期申请已批准", s.number),
                    format!("交办机关批准了建议{item_zh}的延期申请，答复期限延长至{}。", d.due),
                    format!("No. {}: extension approved", s.number),
                    format!(
                        "The assigning office approved the extension for {item_en}: the reply is now due by {}.",
                        d.due
                    ),
                ),
                _ => msg(
                    "unit_extension_decided",
                    format!("{}号延期申请未获批准", s.number),
                    format!("交办机关未批准建议{item_zh}的延期申请，请按原期限答复。"),
                    format!("No. {}: extension refused", s.number),
                    format!(
                        "The assigning office refused the extension for {item_en}: the reply is due as before."
                    ),
                ),
            };
            vec![(agency, m)]
        }
        E::FeedbackRecorded(f) => {
            let level = f.feedback.level;
            let comment = f.feedback.comment.trim();
            let (zh_comment, en_comment) = if comment.is_empty() {
                (String::new(), String::new())
            } else {
                (format!("意见：{comment}"), format!(" Comment: {comment}"))
            };
            responsible()
                .into_iter()
                .map(|a| {
                    (
                        a,
                        msg(
                            "unit_rated",
                            format!("代表对{}号答复的评价：{}", s.number, satisfaction_zh(level)),
                            format!(
                                "代表对建议{item_zh}的答复评价为“{}”。{zh_comment}",
                                satisfaction_zh(level)
                            ),
                            format!("No. {} rated {}", s.number, level.as_str()),
                            format!(
                                "A deputy rated the reply to {item_en}: {}.{en_comment}",
                                level.as_str()
                            ),
                        ),
                    )
                })
                .collect()
        }
        E::ReplyReviewed(r) if !r.review.accepted => {
            let Some((agency, _)) = s.units.get(&r.assignment_id).copied() else {
                return Vec::new();
            };
            let due = r
                .reply_deadline
                .as_ref()
                .map(|d| d.due.to_string())
                .unwrap_or_default();
            let reasons = r.review.reasons.trim();
            vec![(
                agency,
                msg(
                    "unit_reply_returned",
                    format!("{}号答复被退回重办", s.number),
                    format!(
                        "交办机关审查后退回了建议{item_zh}的答复，请重新办理后再行答复，新的答复期限为{due}。退回理由：{reasons}"
                    ),
                    format!("No. {}: reply returned", s.number),
                    format!(
                        "The assigning office returned the reply to {item_en}: handle it again and reply anew by {due}. Reasons: {reasons}"
                    ),
                ),
            )]
        }
        E::ReHandlingOpened(r) => r
            .reply_deadlines
            .iter()
            .filter_map(|(aid, d)| {
                let (agency, _) = s.units.get(aid).copied()?;
                Some((
                    agency,
                    msg(
                        "unit_re_handling",
                        format!("{}号重新办理", s.number),
                        format!(
                            "代表对建议{item_zh}的答复不满意，请重新办理（第{}轮），新的答复期限为{}。",
                            r.round, d.due
                        ),
                        format!("No. {} to be handled again", s.number),
                        format!(
                            "The deputy was dissatisfied with the reply to {item_en}: handle it again (round {}); the new reply is due by {}.",
                            r.round, d.due
                        ),
                    ),
                ))
            })
            .collect(),
        E::ClosureDecided(d) => {
            let Some((agency, _)) = s.closure_by.and_then(|a| s.units.get(&a).copied()) else {
                return Vec::new();
            };
            let m = if d.decision.confirmed {
                msg(
                    "unit_closure_decided",
                    format!("{}号办结申请已确认", s.number),
                    format!("交办机关确认了建议{item_zh}的办结申请，跟踪办理完结。"),
                    format!("No. {}: closure confirmed", s.number),
                    format!(
                        "The assigning office confirmed the closure of {item_en}; its follow-up is complete."
                    ),
                )
            } else {
                msg(
                    "unit_closure_decided",
                    format!("{}号办结申请被退回", s.number),
                    format!(
                        "交办机关退回了建议{item_zh}的办结申请：{}。被退回的承诺事项请继续落实。",
                        d.decision.reason
                    ),
                    format!("No. {}: closure returned", s.number),
                    format!(
                        "The assigning office returned the closure request for {item_en}: {}. The commitments named are open again.",
                        d.decision.reason
                    ),
                )
            };
            vec![(agency, m)]
        }
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use banli_domain::suggestion::*;
    use time::macros::date;

    #[test]
    fn progress_to_the_deputy_is_told_an_internal_note_is_not() {
        let mut s = Subject {
            number: "2020-0123".into(),
            title: "中小企业融资".into(),
            deputies: vec![DeputyId::new()],
            ..Subject::default()
        };
        let owner = AgencyId::new();
        let id = CommitmentId::new();
        s.commitments.insert(id, (owner, "设立担保基金".into()));
        let report = |to_deputy| {
            SuggestionEvent::CommitmentProgressed(CommitmentProgressed {
                commitment_id: id,
                report: ProgressReport {
                    note: "基金已完成设立审批".into(),
                    on: date!(2020 - 08 - 15),
                    to_deputy,
                },
            })
        };
        let name = |_| "省财政厅".to_owned();
        let m = messages(&s, &report(true), &name);
        assert_eq!(m.len(), 1);
        assert!(
            m[0].zh.1.contains("设立担保基金") && m[0].zh.1.contains("省财政厅"),
            "{m:?}"
        );
        assert!(m[0].text("en").1.contains("progress"), "{m:?}");
        assert!(messages(&s, &report(false), &name).is_empty());
    }

    #[test]
    fn units_hear_what_asks_something_of_them_and_co_units_no_ratings() {
        let (lead, co) = (AgencyId::new(), AgencyId::new());
        let (la, ca) = (AssignmentId::new(), AssignmentId::new());
        let mut s = Subject {
            number: "2020-0123".into(),
            title: "中小企业融资".into(),
            deputies: vec![DeputyId::new()],
            ..Subject::default()
        };
        s.units.insert(la, (lead, UnitRole::Lead));
        s.units.insert(ca, (co, UnitRole::Co));
        let name = |_| "省财政厅".to_owned();
        let rated = SuggestionEvent::FeedbackRecorded(FeedbackRecorded {
            feedback: Feedback {
                deputy: s.deputies[0],
                level: Satisfaction::Dissatisfied,
                handling: None,
                result: None,
                comment: "措施不具体".into(),
                round: 0,
                on: date!(2020 - 07 - 01),
            },
        });
        let got = unit_messages(&s, &rated, &name);
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(got[0].0, lead);
        assert!(got[0].1.zh.1.contains("不满意") && got[0].1.zh.1.contains("措施不具体"));
        // A rating says nothing to the deputies themselves.
        assert!(messages(&s, &rated, &name).is_empty());
        let due = |d: time::Date| {
            serde_json::from_value(serde_json::json!({
                "start_label": "re-handling",
                "start": "2020-07-02",
                "duration": {"kind": "calendar_days", "days": 30},
                "due": d.to_string(),
                "calendar_version": "test",
                "assumed_weekends_only": false,
                "trace": []
            }))
            .expect("a deadline")
        };
        let again = SuggestionEvent::ReHandlingOpened(ReHandlingOpened {
            round: 1,
            reply_deadlines: vec![(la, due(date!(2020 - 08 - 01)))],
            on: date!(2020 - 07 - 02),
        });
        let got = unit_messages(&s, &again, &name);
        assert_eq!(got.len(), 1);
        assert_eq!((got[0].0, got[0].1.kind), (lead, "unit_re_handling"));
        assert!(got[0].1.zh.1.contains("2020-08-01"), "{got:?}");
        // A closure decision goes to the unit that asked.
        s.apply(&SuggestionEvent::ClosureRequested(ClosureRequested {
            request: ClosureRequest {
                reply_id: ReplyId::new(),
                assignment_id: la,
                from: ReplyClass::B,
                to: ReplyClass::A,
                explanation: None,
                on: date!(2021 - 03 - 01),
                decision: None,
                ratings: Vec::new(),
            },
        }));
        let returned = SuggestionEvent::ClosureDecided(ClosureDecided {
            decision: ClosureDecision {
                confirmed: false,
                reason: "佐证材料不足".into(),
                reopened: Vec::new(),
                on: date!(2021 - 03 - 05),
            },
        });
        let got = unit_messages(&s, &returned, &name);
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, lead);
        assert!(got[0].1.zh.1.contains("佐证材料不足"), "{got:?}");
        // The deputies hear only of a confirmed closure.
        assert!(messages(&s, &returned, &name).is_empty());
    }
}
