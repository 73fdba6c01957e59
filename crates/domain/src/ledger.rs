//! The B-class ledger (B类台账): items replied as "being solved" (or carrying commitments) and
//! followed year after year until each promise is kept and the item becomes A.

use serde::Serialize;
use time::Date;

use crate::ids::{AgencyId, CommitmentId, DivisionId, SessionId, SuggestionId};
use crate::suggestion::{AssignmentState, CommitmentState, ProgressReport, ReplyClass, Suggestion};

/// One commitment as the ledger shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LedgerCommitment {
    pub id: CommitmentId,
    pub measure: String,
    pub owner_agency_id: AgencyId,
    pub division_id: Option<DivisionId>,
    pub target_date: Date,
    /// `open` or `converted`.
    pub state: &'static str,
    /// Open past its target date.
    pub overdue: bool,
    pub progress: Vec<ProgressReport>,
    pub evidence: String,
    pub converted_on: Option<Date>,
}

/// One item of the ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LedgerItem {
    pub suggestion_id: SuggestionId,
    pub session_id: SessionId,
    pub number: String,
    pub title: String,
    /// The year the item was (first) replied.
    pub year: i32,
    /// The class it was first replied with.
    pub first_class: ReplyClass,
    /// The class now.
    pub class: ReplyClass,
    /// The day it was converted to A, once it is.
    pub converted_at: Option<Date>,
    pub key_item: bool,
    pub commitments: Vec<LedgerCommitment>,
}

/// The ledger item of `s` for `agency` (any responsible unit when `None`), if `s` belongs in the
/// ledger: replied by that unit, and class B at some point or carrying commitments.
pub fn ledger_item(s: &Suggestion, agency: Option<AgencyId>, today: Date) -> Option<LedgerItem> {
    let units: Vec<_> = s
        .assignments
        .iter()
        .filter(|a| a.is_responsible() && a.state != AssignmentState::Superseded)
        .filter(|a| agency.is_none_or(|x| x == a.agency))
        .map(|a| a.id)
        .collect();
    let first = s
        .replies
        .iter()
        .filter(|r| units.contains(&r.assignment_id))
        .min_by_key(|r| r.on)?;
    let ever_b = s.replies.iter().any(|r| r.class == ReplyClass::B)
        || s.class_history.iter().any(|c| c.to == ReplyClass::B);
    if !ever_b && s.commitments.is_empty() {
        return None;
    }
    // The class now: the last of the latest day, replies then class changes (a supplementary
    // reply's class counts once the office confirms it, as a class change).
    let class = s
        .replies
        .iter()
        .filter(|r| r.reply_type != crate::suggestion::ReplyType::Supplementary)
        .map(|r| (r.on, r.class))
        .chain(s.class_history.iter().map(|c| (c.on, c.to)))
        .max_by_key(|(on, _)| *on)
        .map_or(first.class, |(_, c)| c);
    let converted_at = s
        .class_history
        .iter()
        .filter(|c| c.conversion && c.to == ReplyClass::A)
        .map(|c| c.on)
        .min();
    Some(LedgerItem {
        suggestion_id: s.id,
        session_id: s.details.session_id,
        number: s.details.number.clone(),
        title: s.details.title.clone(),
        year: first.on.year(),
        first_class: first.class,
        class,
        converted_at,
        key_item: s.details.key_supervised,
        commitments: s
            .commitments
            .iter()
            .map(|c| LedgerCommitment {
                id: c.id,
                measure: c.measure.clone(),
                owner_agency_id: c.owner,
                division_id: c.division,
                target_date: c.target_date,
                state: match c.state {
                    CommitmentState::Open => "open",
                    CommitmentState::Converted => "converted",
                },
                overdue: c.state == CommitmentState::Open && c.target_date < today,
                progress: c.progress.clone(),
                evidence: c.evidence.clone(),
                converted_on: c.converted_on,
            })
            .collect(),
    })
}
