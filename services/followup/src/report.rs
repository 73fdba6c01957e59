//! The annual handling report of an agency (年度建议办理工作报告): the counts and every rate as of
//! the year's end (or today, during the year), the key items led by principal leaders, the
//! B-class ledger of earlier years, what is overdue and what is unresolved, and the supervision
//! it received — as JSON and as Markdown, all from the data.

use banli_domain::ids::AgencyId;
use banli_domain::ledger::{LedgerItem, ledger_item};
use banli_domain::metrics::{Rate, Report};
use banli_domain::suggestion::{ReplyClass, Suggestion};
use serde::Serialize;
use time::Date;

use crate::store::{DeadlineRow, MetricsQuery, Store, StoreError};

/// A key item led by a principal leader (领办).
#[derive(Debug, Clone, Serialize)]
pub struct KeyItem {
    pub suggestion_id: String,
    pub number: String,
    pub title: String,
    pub leading_official: String,
    pub replied_on: Option<Date>,
    pub class: Option<ReplyClass>,
}

/// Supervision notices the agency received in the year.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Supervision {
    pub notices: u64,
    pub answered: u64,
    pub answered_late: u64,
    pub escalated: u64,
}

/// The report.
#[derive(Debug, Clone, Serialize)]
pub struct AnnualReport {
    pub agency_id: String,
    pub agency_name: String,
    pub year: i32,
    /// The figures are as of this day: the year's last day, or today during the year.
    pub as_of: Date,
    pub metrics: Report,
    pub key_items: Vec<KeyItem>,
    /// B-class items of earlier years and what became of them.
    pub ledger_of_earlier_years: Vec<LedgerItem>,
    /// Deadlines of the agency past due and not met, as of today.
    pub overdue: Vec<DeadlineRow>,
    /// Items of the ledger (any year up to this one) not yet class A or with an open commitment.
    pub unresolved: Vec<LedgerItem>,
    pub supervision: Supervision,
    /// 延伸办理: the topics (共性问题) the agency owns or holds items of, and how far they are.
    pub systemic: Vec<SystemicTopic>,
}

/// A topic in the annual report.
#[derive(Debug, Clone, Serialize)]
pub struct SystemicTopic {
    pub topic_id: String,
    pub title: String,
    /// The items linked (of every agency, every year).
    pub items: u64,
    /// Of those, the agency's.
    pub items_of_agency: u64,
    pub closed: u64,
    pub commitments: u64,
    pub commitments_due: u64,
    pub commitments_fulfilled: u64,
    pub commitments_open: u64,
}

fn unresolved(i: &LedgerItem) -> bool {
    i.class != ReplyClass::A || i.commitments.iter().any(|c| c.state == "open")
}

/// Builds the report of `agency` for `year`; its lists leave out confidential items when
/// `hide_confidential` (its figures count every item).
pub async fn build(
    store: &Store,
    agency: &str,
    agency_name: String,
    year: i32,
    today: Date,
    hide_confidential: bool,
) -> Result<AnnualReport, StoreError> {
    let shown = |s: &Suggestion| !(hide_confidential && s.details.confidential);
    let year_end = Date::from_calendar_date(year, time::Month::December, 31).unwrap_or(today);
    let as_of = year_end.min(today);
    let counts = store
        .counts(&MetricsQuery {
            as_of,
            agency: Some(agency.to_owned()),
            division: None,
            role: None,
            session: None,
            category: None,
            deputy: None,
            topic: None,
            delegation: None,
            year: Some(year),
        })
        .await?;
    let wanted = agency.parse().ok().map(AgencyId);
    let mut key_items = Vec::new();
    for s in store
        .led_by_principal(agency, year)
        .await?
        .into_iter()
        .filter(shown)
    {
        for a in s
            .assignments
            .iter()
            .filter(|a| Some(a.agency) == wanted && a.assigned_on.year() == year)
        {
            let Some(official) = a.dispatch.as_ref().and_then(|d| d.leading_official.clone())
            else {
                continue;
            };
            let replied_on = s
                .replies
                .iter()
                .filter(|r| r.assignment_id == a.id)
                .map(|r| r.on)
                .min();
            key_items.push(KeyItem {
                suggestion_id: s.id.to_string(),
                number: s.details.number.clone(),
                title: s.details.title.clone(),
                leading_official: official,
                replied_on,
                class: current_class(&s),
            });
        }
    }
    key_items.sort_by(|a, b| a.number.cmp(&b.number));
    let mut ledger: Vec<LedgerItem> = store
        .ledger_replicas(Some(agency))
        .await?
        .iter()
        .filter(|s| shown(s))
        .filter_map(|s| ledger_item(s, wanted, today))
        .filter(|i| i.year <= year)
        .collect();
    ledger.sort_by(|a, b| (a.year, &a.number).cmp(&(b.year, &b.number)));
    let overdue = store
        .open_deadlines(
            Some(agency),
            None,
            today - time::Duration::days(1),
            crate::store::MAX_ROWS,
            hide_confidential,
        )
        .await?;
    let mut supervision = Supervision::default();
    for (json, _) in store.notices(Some(agency), None, 10_000).await? {
        let n: banli_domain::supervision::SupervisionNotice = serde_json::from_str(&json)
            .map_err(|e| StoreError::Corrupt(format!("a notice: {e}")))?;
        if n.target.to_string() != agency || n.issued_on.year() != year {
            continue;
        }
        supervision.notices += 1;
        match n.state {
            banli_domain::supervision::NoticeState::Answered => supervision.answered += 1,
            banli_domain::supervision::NoticeState::Escalated => supervision.escalated += 1,
            _ => {}
        }
        if n.answered_late {
            supervision.answered_late += 1;
        }
    }
    let mut systemic = Vec::new();
    for t in store.topics_of_agency(agency).await? {
        let mut x = SystemicTopic {
            topic_id: t.id.clone(),
            title: t.title.clone(),
            items: 0,
            items_of_agency: 0,
            closed: 0,
            commitments: 0,
            commitments_due: 0,
            commitments_fulfilled: 0,
            commitments_open: 0,
        };
        for (s, _) in store.topic_items(&t.id).await? {
            x.items += 1;
            x.items_of_agency += u64::from(s.assignments.iter().any(|a| Some(a.agency) == wanted));
            x.closed += u64::from(s.state == banli_domain::suggestion::SuggestionState::Closed);
            for c in &s.commitments {
                x.commitments += 1;
                if c.target_date <= as_of {
                    x.commitments_due += 1;
                    x.commitments_fulfilled += u64::from(c.fulfilled());
                }
                x.commitments_open +=
                    u64::from(c.state == banli_domain::suggestion::CommitmentState::Open);
            }
        }
        systemic.push(x);
    }
    Ok(AnnualReport {
        agency_id: agency.to_owned(),
        agency_name,
        year,
        as_of,
        metrics: Report::from_counts(&counts),
        key_items,
        ledger_of_earlier_years: ledger.iter().filter(|i| i.year < year).cloned().collect(),
        overdue,
        unresolved: ledger.into_iter().filter(unresolved).collect(),
        supervision,
        systemic,
    })
}

fn current_class(s: &Suggestion) -> Option<ReplyClass> {
    s.replies
        .iter()
        .filter(|r| r.reply_type != banli_domain::suggestion::ReplyType::Supplementary)
        .map(|r| (r.on, r.class))
        .chain(s.class_history.iter().map(|c| (c.on, c.to)))
        .max_by_key(|(on, _)| *on)
        .map(|(_, c)| c)
}

fn percent(r: &Rate) -> String {
    match r.value() {
        Some(v) => format!("{:.1}%", v * 100.0),
        None => "—".to_owned(),
    }
}

/// Markdown table cells: no pipes or line breaks inside.
fn cell(s: &str) -> String {
    s.replace('|', "｜").replace(['\n', '\r'], " ")
}

/// The report as Markdown.
pub fn markdown(r: &AnnualReport) -> String {
    let m = &r.metrics;
    let mut out = format!(
        "# {name} {year}年人大代表建议办理工作报告\n\n*Annual handling report, figures as of {as_of}, computed from the data (definitions {version}).*\n\n",
        name = cell(&r.agency_name),
        year = r.year,
        as_of = r.as_of,
        version = banli_domain::metrics::DEFINITION_VERSION,
    );
    out.push_str(&format!(
        "## 一、办理情况\n\n{year}年共承办建议 **{total}** 件，其中主办 {lead} 件、会办 {co} 件、分办 {sep} 件、独办 {sole} 件。\n\n",
        year = r.year,
        total = m.lead + m.co + m.separate + m.sole,
        lead = m.lead,
        co = m.co,
        sep = m.separate,
        sole = m.sole,
    ));
    out.push_str("| 指标 (rate) | 分子 | 分母 | 比率 | 口径 |\n|---|---:|---:|---:|---|\n");
    for (name, rate) in m.named().into_iter().filter(|(n, _)| {
        !matches!(
            *n,
            "satisfaction_rate_first_round" | "solved_or_planned_rate"
        )
    }) {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            banli_domain::metrics::label(name),
            rate.numerator,
            rate.denominator,
            percent(rate),
            cell(&rate.definition)
        ));
    }
    out.push_str("\n## 二、主要领导领办的重点建议\n\n");
    if r.key_items.is_empty() {
        out.push_str("本年度无主要领导领办件。\n");
    } else {
        out.push_str(&format!(
            "主要领导领办 {} 件：\n\n| 编号 | 标题 | 领办领导 | 答复日期 | 类别 |\n|---|---|---|---|---|\n",
            r.key_items.len()
        ));
        for k in &r.key_items {
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} |\n",
                cell(&k.number),
                cell(&k.title),
                cell(&k.leading_official),
                k.replied_on
                    .map(|d| d.to_string())
                    .unwrap_or_else(|| "未答复".into()),
                k.class.map_or("—", ReplyClass::as_str),
            ));
        }
    }
    out.push_str("\n## 三、往年B类建议跟踪办理台账\n\n");
    if r.ledger_of_earlier_years.is_empty() {
        out.push_str("无往年B类建议。\n");
    } else {
        let converted = r
            .ledger_of_earlier_years
            .iter()
            .filter(|i| i.class == ReplyClass::A)
            .count();
        out.push_str(&format!(
            "往年B类建议 {} 件，已转为A类 {} 件。\n\n| 年度 | 编号 | 标题 | 初次类别 | 现类别 | 转A日期 | 承诺事项 |\n|---|---|---|---|---|---|---|\n",
            r.ledger_of_earlier_years.len(),
            converted
        ));
        for i in &r.ledger_of_earlier_years {
            let done = i
                .commitments
                .iter()
                .filter(|c| c.state == "converted")
                .count();
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {}/{} 已兑现 |\n",
                i.year,
                cell(&i.number),
                cell(&i.title),
                i.first_class.as_str(),
                i.class.as_str(),
                i.converted_at.map(|d| d.to_string()).unwrap_or_default(),
                done,
                i.commitments.len()
            ));
        }
    }
    out.push_str("\n## 四、逾期与未解决事项\n\n");
    // A class-A item whose promised measures are still open is being implemented (落实中),
    // not unresolved: listed apart, with what is open and by when.
    let (in_progress, unresolved): (Vec<&LedgerItem>, Vec<&LedgerItem>) =
        r.unresolved.iter().partition(|i| i.class == ReplyClass::A);
    if r.overdue.is_empty() && unresolved.is_empty() {
        out.push_str("无逾期事项，无未解决的B类建议。\n");
    } else {
        for d in &r.overdue {
            out.push_str(&format!(
                "- 逾期：建议 {} 的{}期限 {}\n",
                d.suggestion_id, d.kind, d.due
            ));
        }
        for i in &unresolved {
            out.push_str(&format!(
                "- 未解决：{} {}（{}年，现为{}类）\n",
                cell(&i.number),
                cell(&i.title),
                i.year,
                i.class.as_str()
            ));
        }
    }
    for i in &in_progress {
        let open: Vec<&banli_domain::ledger::LedgerCommitment> =
            i.commitments.iter().filter(|c| c.state == "open").collect();
        let latest = open.iter().map(|c| c.target_date).max();
        out.push_str(&format!(
            "- 落实中：{} {}（{}年，A类；承诺事项 {} 项未兑现{}）\n",
            cell(&i.number),
            cell(&i.title),
            i.year,
            open.len(),
            latest.map_or(String::new(), |d| format!("，目标日期至 {d}"))
        ));
    }
    let s = &r.supervision;
    out.push_str(&format!(
        "\n## 五、督办情况\n\n收到督办通知 {} 件，已书面回复 {} 件（逾期回复 {} 件），升级督办 {} 件。\n",
        s.notices, s.answered, s.answered_late, s.escalated
    ));
    out.push_str("\n## 六、延伸办理（共性问题跟踪）\n\n");
    if r.systemic.is_empty() {
        out.push_str("本单位无跟踪中的共性问题。\n");
    } else {
        out.push_str(
            "| 共性问题 | 关联建议 | 其中本单位 | 已办结 | 承诺事项 | 到期 | 按期兑现 | 未兑现 |\n|---|---:|---:|---:|---:|---:|---:|---:|\n",
        );
        for t in &r.systemic {
            out.push_str(&format!(
                "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
                cell(&t.title),
                t.items,
                t.items_of_agency,
                t.closed,
                t.commitments,
                t.commitments_due,
                t.commitments_fulfilled,
                t.commitments_open
            ));
        }
    }
    out
}
