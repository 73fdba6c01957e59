//! Proto messages to domain values and views to proto messages: enums by number, dates as text.

use super::*;

pub(super) fn date(field: &str, s: &str) -> Result<Date, AppError> {
    banli_calendar::parse_date(s)
        .map_err(|_| AppError::malformed(format!("{field} `{s}` is not a YYYY-MM-DD date")))
}

pub(super) fn opt_date(field: &str, s: &str) -> Result<Option<Date>, AppError> {
    if s.is_empty() {
        Ok(None)
    } else {
        date(field, s).map(Some)
    }
}

pub(super) fn text(d: Date) -> String {
    dto::date_text(d)
}

pub(super) fn role(v: i32) -> Result<UnitRole, AppError> {
    match pc::UnitRole::try_from(v) {
        Ok(pc::UnitRole::Lead) => Ok(UnitRole::Lead),
        Ok(pc::UnitRole::Co) => Ok(UnitRole::Co),
        Ok(pc::UnitRole::Separate) => Ok(UnitRole::Separate),
        Ok(pc::UnitRole::Sole) => Ok(UnitRole::Sole),
        _ => Err(AppError::malformed(
            "role must be LEAD, CO, SEPARATE or SOLE",
        )),
    }
}

pub(super) fn role_to(r: UnitRole) -> i32 {
    (match r {
        UnitRole::Lead => pc::UnitRole::Lead,
        UnitRole::Co => pc::UnitRole::Co,
        UnitRole::Separate => pc::UnitRole::Separate,
        UnitRole::Sole => pc::UnitRole::Sole,
    }) as i32
}

pub(super) fn class(v: i32) -> Result<ReplyClass, AppError> {
    match pc::ReplyClass::try_from(v) {
        Ok(pc::ReplyClass::A) => Ok(ReplyClass::A),
        Ok(pc::ReplyClass::B) => Ok(ReplyClass::B),
        Ok(pc::ReplyClass::C) => Ok(ReplyClass::C),
        Ok(pc::ReplyClass::D) => Ok(ReplyClass::D),
        _ => Err(AppError::malformed("class must be A, B, C or D")),
    }
}

pub(super) fn class_to(c: ReplyClass) -> i32 {
    (match c {
        ReplyClass::A => pc::ReplyClass::A,
        ReplyClass::B => pc::ReplyClass::B,
        ReplyClass::C => pc::ReplyClass::C,
        ReplyClass::D => pc::ReplyClass::D,
    }) as i32
}

fn reply_type_to(t: ReplyType) -> i32 {
    (match t {
        ReplyType::Initial => pc::ReplyType::Initial,
        ReplyType::ReHandled => pc::ReplyType::ReHandled,
        ReplyType::Supplementary => pc::ReplyType::Supplementary,
        ReplyType::Joint => pc::ReplyType::Joint,
    }) as i32
}

fn position_to(p: SignerPosition) -> i32 {
    (match p {
        SignerPosition::PrincipalHead => pc::SignerPosition::PrincipalHead,
        SignerPosition::AuthorizedLeader => pc::SignerPosition::AuthorizedLeader,
        SignerPosition::DivisionHead => pc::SignerPosition::DivisionHead,
        SignerPosition::Staff => pc::SignerPosition::Staff,
    }) as i32
}

pub(super) fn satisfaction(v: i32) -> Result<Option<Satisfaction>, AppError> {
    match pc::Satisfaction::try_from(v) {
        Ok(pc::Satisfaction::Unspecified) => Ok(None),
        Ok(pc::Satisfaction::Satisfied) => Ok(Some(Satisfaction::Satisfied)),
        Ok(pc::Satisfaction::BasicallySatisfied) => Ok(Some(Satisfaction::BasicallySatisfied)),
        Ok(pc::Satisfaction::Dissatisfied) => Ok(Some(Satisfaction::Dissatisfied)),
        Err(_) => Err(AppError::malformed("unknown satisfaction level")),
    }
}

pub(super) fn deadline(d: &DeadlineView) -> pc::Deadline {
    pc::Deadline {
        due: text(d.due),
        start: text(d.start),
        start_label: d.start_label.clone(),
        duration: d.duration.clone(),
        calendar_version: d.calendar_version.clone(),
        assumed_weekends_only: d.assumed_weekends_only,
        trace: d.trace.clone(),
    }
}

pub(super) fn suggestion(v: &SuggestionView) -> pb::Suggestion {
    pb::Suggestion {
        id: v.id.to_string(),
        version: v.version,
        state: v.state.clone(),
        session_id: v.session_id.to_string(),
        number: v.number.clone(),
        title: v.title.clone(),
        body: v.body.clone(),
        category: v.category.clone(),
        recess_item: v.kind == ItemKind::Recess,
        lead_deputy_id: v.lead_deputy_id.to_string(),
        co_signer_ids: v.co_signer_ids.iter().map(Uuid::to_string).collect(),
        key_supervised: v.key_supervised,
        assignments: v
            .assignments
            .iter()
            .map(|a| pb::Assignment {
                id: a.id.to_string(),
                agency_id: a.agency_id.to_string(),
                role: role_to(a.role),
                state: a.state.clone(),
                assigned_on: text(a.assigned_on),
                objection_deadline: Some(deadline(&a.deadlines.objection)),
                first_contact_deadline: a.deadlines.first_contact.as_ref().map(deadline),
                co_opinion_deadline: a.deadlines.co_opinion.as_ref().map(deadline),
                reply_deadline: a.deadlines.reply.as_ref().map(deadline),
                replaces_assignment_id: a.replaces.map(|r| r.to_string()).unwrap_or_default(),
                approval: a.approval.as_ref().map(|x| pb::Approval {
                    current_step: x.current_step.unwrap_or_default(),
                    waiting_for: x
                        .waiting_for
                        .as_deref()
                        .and_then(|w| w.parse().ok())
                        .map(position_to)
                        .unwrap_or_default(),
                    submitted_on: text(x.submitted_on),
                    steps: x.steps.iter().map(approval_step).collect(),
                    draft: x.draft.as_ref().map(reply),
                }),
            })
            .collect(),
        replies: v.replies.iter().map(reply).collect(),
        current_class: v.current_class.map(class_to).unwrap_or_default(),
        feedback_deadline: v.feedback_deadline.as_ref().map(deadline),
        rehandling_rounds: v.rehandling_rounds,
        confidential: v.confidential,
        commitments: v
            .commitments
            .iter()
            .map(|c| pb::Commitment {
                id: c.id.to_string(),
                assignment_id: c.assignment_id.to_string(),
                measure: c.measure.clone(),
                owner_agency_id: c.owner_agency_id.to_string(),
                division_id: c.division_id.map(|d| d.to_string()).unwrap_or_default(),
                target_date: text(c.target_date),
                state: c.state.clone(),
                progress: c
                    .progress
                    .iter()
                    .map(|p| pb::CommitmentProgress {
                        note: p.note.clone(),
                        on: text(p.on),
                        notify_deputy: p.notify_deputy,
                    })
                    .collect(),
                evidence: c.evidence.clone(),
                converted_on: c.converted_on.map(text).unwrap_or_default(),
                responsible: c.responsible.clone().unwrap_or_default(),
                opinion_id: c.opinion_id.map(|o| o.to_string()).unwrap_or_default(),
                evidence_documents: c.evidence_documents.iter().map(document).collect(),
            })
            .collect(),
        closure_state: v
            .closure
            .as_ref()
            .map(|c| c.state.clone())
            .unwrap_or_default(),
    }
}

pub(super) fn session(v: &dto::SessionView) -> pb::Session {
    pb::Session {
        id: v.id.to_string(),
        body: v.body.clone(),
        term: v.term,
        number: v.number,
        opens_on: text(v.opens_on),
        closes_on: text(v.closes_on),
        name: v.name.clone(),
    }
}

/// A document a record refers to.
pub(super) fn document(d: &dto::DocumentView) -> pb::Document {
    pb::Document {
        sha256: d.sha256.clone(),
        media_type: d.media_type.clone(),
        size: d.size,
        name: d.name.clone(),
        created: false,
    }
}

fn reply(r: &dto::ReplyView) -> pb::Reply {
    pb::Reply {
        id: r.id.to_string(),
        assignment_id: r.assignment_id.to_string(),
        reply_type: reply_type_to(r.reply_type),
        document_number: r.document_number.clone(),
        body: r.body.clone(),
        class: class_to(r.class),
        signer: Some(pc::Signer {
            name: r.signer.name.clone(),
            position: position_to(r.signer.position),
        }),
        opinion_ids: r.opinion_ids.iter().map(Uuid::to_string).collect(),
        on: text(r.on),
        consultation_ids: r.consultation_ids.iter().map(Uuid::to_string).collect(),
        letter: r.letter.as_ref().map(document),
        attachments: r.attachments.iter().map(document).collect(),
        review_deadline: r.review_deadline.as_ref().map(deadline),
        review_state: r.review_state.clone().unwrap_or_default(),
        review_reasons: r.review_reasons.clone().unwrap_or_default(),
        approvals: r.approvals.iter().map(approval_step).collect(),
        publication_due: r.publication_due.map(text).unwrap_or_default(),
        published_on: r
            .publication
            .as_ref()
            .map(|p| text(p.published_on))
            .unwrap_or_default(),
        publication_withdrawn_on: r
            .publication
            .as_ref()
            .and_then(|p| p.withdrawn_on.map(text))
            .unwrap_or_default(),
        publication_withdrawn_reason: r
            .publication
            .as_ref()
            .and_then(|p| p.withdrawn_reason.clone())
            .unwrap_or_default(),
    }
}

fn approval_step(st: &dto::ApprovalStepView) -> pb::ApprovalStep {
    pb::ApprovalStep {
        position: st.position.parse().map(position_to).unwrap_or_default(),
        due: st.due.as_ref().map(deadline),
        overdue: st.overdue,
        decision: st.decision.clone().unwrap_or_default(),
        comment: st.comment.clone().unwrap_or_default(),
        decided_on: st.decided_on.map(text).unwrap_or_default(),
    }
}

pub(super) fn approval_chain(v: &dto::ApprovalChainView) -> Result<pb::ApprovalChain, AppError> {
    let positions = |names: &[String]| -> Result<Vec<i32>, AppError> {
        names
            .iter()
            .map(|n| {
                n.parse::<SignerPosition>()
                    .map(position_to)
                    .map_err(|e| AppError::internal(&e))
            })
            .collect()
    };
    Ok(pb::ApprovalChain {
        agency_id: v.agency_id.to_string(),
        steps: positions(&v.steps)?,
        key_items_add_head: v.key_items_add_head,
        key_item_steps: positions(&v.key_item_steps)?,
    })
}

pub(super) fn public_reply(v: &crate::app::PublicReplyView) -> pb::PublicReply {
    pb::PublicReply {
        id: v.id.to_string(),
        suggestion_id: v.suggestion_id.to_string(),
        number: v.number.clone(),
        title: v.title.clone(),
        agency_id: v.agency_id.to_string(),
        agency: v.agency.clone().unwrap_or_default(),
        class: match v.class.as_str() {
            "A" => class_to(ReplyClass::A),
            "B" => class_to(ReplyClass::B),
            "C" => class_to(ReplyClass::C),
            "D" => class_to(ReplyClass::D),
            _ => 0,
        },
        reply_type: v.reply_type.clone(),
        document_number: v.document_number.clone(),
        replied_on: text(v.replied_on),
        published_on: text(v.published_on),
        body: v.body.clone().unwrap_or_default(),
        disclosure: v.disclosure.clone(),
        href: v.href.clone(),
    }
}
