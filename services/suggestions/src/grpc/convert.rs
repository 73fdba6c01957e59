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
            })
            .collect(),
        replies: v
            .replies
            .iter()
            .map(|r| pb::Reply {
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
            })
            .collect(),
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
