//! What a suggestion shows: its assignments, communications, opinions, replies, ratings and commitments, each deadline with its explanation.

use super::*;

/// A due date with its explanation.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DeadlineView {
    /// The due date.
    pub due: Date,
    pub start: Date,
    /// What starts the clock, e.g. `assignment`.
    pub start_label: String,
    /// The rule, e.g. `3 calendar months`.
    pub duration: String,
    pub calendar_version: String,
    /// True when part of the range lies outside the calendar data and weekends only were assumed.
    pub assumed_weekends_only: bool,
    /// How the date was computed, step by step.
    pub trace: Vec<String>,
    /// The whole trace on one line.
    pub explanation: String,
}

impl From<&Deadline> for DeadlineView {
    fn from(d: &Deadline) -> Self {
        DeadlineView {
            due: d.due,
            start: d.start,
            start_label: d.start_label.clone(),
            duration: d.duration.to_string(),
            calendar_version: d.calendar_version.clone(),
            assumed_weekends_only: d.assumed_weekends_only,
            trace: d.trace.iter().map(|s| s.text.clone()).collect(),
            explanation: d.explain(),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AssignmentDeadlinesView {
    pub objection: DeadlineView,
    pub first_contact: Option<DeadlineView>,
    pub co_opinion: Option<DeadlineView>,
    pub reply: Option<DeadlineView>,
    pub reply_cap: Option<DeadlineView>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DispatchView {
    pub division_id: Uuid,
    pub handler: String,
    pub responsible_leader: String,
    pub leading_official: Option<String>,
    pub plan: String,
    pub on: Date,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct RequestView {
    pub on: Date,
    pub reason: String,
    /// For extensions: the requested due date.
    pub new_due: Option<Date>,
    /// `pending`, `approved`/`rejected` (extensions), or `accept`/`reject`/`escalate` (adjustments).
    pub status: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct AssignmentView {
    pub id: Uuid,
    pub agency_id: Uuid,
    /// `lead`, `co`, `separate` or `sole`.
    #[schema(value_type = doc::UnitRole)]
    pub role: UnitRole,
    /// `pending_sign`, `accepted`, `adjustment_pending`, `superseded`, `in_handling`,
    /// `opinion_submitted`, `done`, `replied` or `re_handling`.
    pub state: String,
    pub assigned_on: Date,
    pub deadlines: AssignmentDeadlinesView,
    /// True when the reply (or co-opinion) is past due and not in.
    pub overdue: bool,
    pub dispatch: Option<DispatchView>,
    pub adjustment: Option<RequestView>,
    pub extension: Option<RequestView>,
    pub extensions_granted: u32,
    pub replaces: Option<Uuid>,
    pub opinion_waived: bool,
    /// While `in_review`: where the unit's drafted reply waits in its approval chain.
    pub approval: Option<ApprovalView>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CommunicationView {
    pub id: Uuid,
    pub assignment_id: Uuid,
    /// `before`, `during`, `after` or `recess`.
    pub phase: String,
    /// `visit`, `phone`, `letter`, `symposium`, `field_research`, `questionnaire`,
    /// `online_meeting` or `face_to_face_reply`.
    pub method: String,
    pub face_to_face: bool,
    pub deputy_ids: Vec<Uuid>,
    pub participants: Vec<String>,
    pub summary: String,
    pub on: Date,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SignerView {
    pub name: String,
    /// `principal_head`, `authorized_leader`, `division_head` or `staff`.
    #[schema(value_type = doc::SignerPosition)]
    pub position: SignerPosition,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct OpinionView {
    pub id: Uuid,
    pub assignment_id: Uuid,
    pub document_number: String,
    pub body: String,
    pub signer: SignerView,
    pub on: Date,
    pub acknowledged_on: Option<Date>,
    /// The measures the co-unit takes within its remit; each is its commitment `id`.
    pub measures: Vec<MeasureView>,
    /// Why no measure falls within the co-unit's remit, instead of measures.
    pub no_measure_reason: Option<String>,
    pub consultation_ids: Vec<Uuid>,
    /// Neither measures nor a reason (accepted under the profile's `opinion_substance = "flag"`).
    pub flagged: bool,
    /// The signed opinion letter (会办意见函).
    pub letter: Option<DocumentView>,
    pub attachments: Vec<DocumentView>,
}

/// A document attached to a record: download it from `href` (authorized like the record).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct DocumentView {
    /// SHA-256 of the content: what the audit record of the act that attached it holds.
    pub sha256: String,
    /// The type told by the content: `application/pdf`, `application/ofd`,
    /// `application/vnd.openxmlformats-officedocument.wordprocessingml.document`, `image/png`,
    /// `image/jpeg`, `image/tiff` or `image/gif`.
    pub media_type: String,
    pub size: u64,
    pub name: String,
    pub href: String,
}

impl DocumentView {
    pub fn of(suggestion: Uuid, d: &banli_domain::document::DocumentRef) -> DocumentView {
        DocumentView {
            sha256: d.sha256.clone(),
            media_type: d.media_type.clone(),
            size: d.size,
            name: d.name.clone(),
            href: format!("/v1/suggestions/{suggestion}/documents/{}", d.sha256),
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct MeasureView {
    pub id: Uuid,
    pub measure: String,
    pub responsible: String,
    pub target_date: Date,
}

/// 会商: a meeting of the units of the suggestion.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ConsultationView {
    pub id: Uuid,
    pub convened_by: Uuid,
    pub agency_ids: Vec<Uuid>,
    pub deputy_ids: Vec<Uuid>,
    pub attendees: Vec<String>,
    pub subject: String,
    pub minutes: String,
    pub on: Date,
    pub documents: Vec<DocumentView>,
}

/// The latest closure request (the supplementary reply once every commitment is converted) and
/// the assigning office's decision.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ClosureView {
    /// `pending` (waiting for the assigning office), `confirmed` or `returned`.
    pub state: String,
    pub reply_id: Uuid,
    pub from: String,
    pub to: String,
    /// A B → A conversion.
    pub conversion: bool,
    pub explanation: Option<String>,
    pub requested_on: Date,
    /// The office's reason (required to return).
    pub reason: Option<String>,
    pub decided_on: Option<Date>,
    /// Returned: the commitments open again.
    pub reopened_commitment_ids: Vec<Uuid>,
    /// The deputies' ratings of a confirmed closure.
    pub ratings: Vec<ClosureRatingView>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ClosureRatingView {
    pub deputy_id: Uuid,
    /// `satisfied`, `basically_satisfied` or `dissatisfied`.
    pub level: String,
    pub comment: String,
    pub on: Date,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ReplyView {
    pub id: Uuid,
    pub assignment_id: Uuid,
    /// `initial`, `re_handled`, `supplementary` or `joint`.
    #[schema(value_type = doc::ReplyType)]
    pub reply_type: ReplyType,
    pub document_number: String,
    pub body: String,
    /// The class the unit proposed: `A`, `B`, `C` (or `D` in the national scheme).
    #[schema(value_type = doc::ReplyClass)]
    pub class: ReplyClass,
    pub signer: SignerView,
    pub opinion_ids: Vec<Uuid>,
    pub countersigned_by: Vec<Uuid>,
    pub round: u32,
    pub on: Date,
    pub consultation_ids: Vec<Uuid>,
    /// The signed reply letter (答复函).
    pub letter: Option<DocumentView>,
    pub attachments: Vec<DocumentView>,
    /// 答复审查, where the office reviews replies: `pending` until `review_deadline`,
    /// `accepted` or `returned` (驳回重办); absent otherwise.
    pub review_state: Option<String>,
    pub review_deadline: Option<DeadlineView>,
    /// Why the office returned it (or that the window lapsed).
    pub review_reasons: Option<String>,
    pub reviewed_on: Option<Date>,
    /// The unit's internal sign-off (内部审批) the reply went through, step by step; empty where
    /// the unit has no approval chain.
    pub approvals: Vec<ApprovalStepView>,
    /// 公开答复: the day the platform publishes the reply (absent: it is not published — a
    /// confidential item, `none` disclosure, a supplementary reply, or publication off).
    pub publication_due: Option<Date>,
    /// The publication, once published (and its withdrawal).
    pub publication: Option<PublicationView>,
}

/// A reply's publication (公开答复).
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct PublicationView {
    pub published_on: Date,
    /// Published by the platform as its date passed (else by the assigning office).
    pub automatic: bool,
    /// How many names, phone numbers, e-mail addresses and identity numbers were removed.
    pub redactions: u32,
    pub withdrawn_on: Option<Date>,
    pub withdrawn_reason: Option<String>,
}

/// 内部审批: a unit's drafted reply in its approval chain.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ApprovalView {
    /// The step waiting for a decision: decide it with this `step`.
    pub current_step: Option<u32>,
    /// The position the draft waits for: `division_head`, `authorized_leader` or
    /// `principal_head`.
    pub waiting_for: Option<String>,
    pub submitted_on: Date,
    pub steps: Vec<ApprovalStepView>,
    /// The drafted reply, for the unit itself and the assigning office (absent for others).
    pub draft: Option<ReplyView>,
}

/// One step of an approval chain.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ApprovalStepView {
    pub position: String,
    /// When the step is owed (set once it is the current step).
    pub due: Option<DeadlineView>,
    /// The current step, past its due date.
    pub overdue: bool,
    /// `approved`, `returned`, or absent while undecided.
    pub decision: Option<String>,
    pub comment: Option<String>,
    pub decided_on: Option<Date>,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ClassChangeView {
    pub from: String,
    pub to: String,
    pub reason: String,
    pub conversion: bool,
    pub on: Date,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct FeedbackView {
    pub deputy_id: Uuid,
    /// `satisfied`, `basically_satisfied` or `dissatisfied`.
    pub level: String,
    pub handling: Option<String>,
    pub result: Option<String>,
    pub comment: String,
    pub round: u32,
    pub on: Date,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct ProgressView {
    pub note: String,
    pub on: Date,
    /// Addressed to the deputies (false: an internal note).
    pub notify_deputy: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CommitmentView {
    pub id: Uuid,
    pub assignment_id: Uuid,
    pub measure: String,
    pub owner_agency_id: Uuid,
    pub division_id: Option<Uuid>,
    pub target_date: Date,
    /// `open` or `converted`.
    pub state: String,
    pub progress: Vec<ProgressView>,
    pub evidence: String,
    /// The documents that prove the conversion.
    pub evidence_documents: Vec<DocumentView>,
    pub converted_on: Option<Date>,
    /// Who is responsible in the owner unit, when stated (a co-handling measure).
    pub responsible: Option<String>,
    /// The co-handling opinion that stated it.
    pub opinion_id: Option<Uuid>,
}

/// A suggestion with everything its handling has produced.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SuggestionView {
    pub id: Uuid,
    /// Send it back as `If-Match` (REST) or `expected_version` (gRPC) with a change.
    pub version: u64,
    /// `submitted`, `under_review`, `not_accepted`, `converted_to_letter`, `registered`,
    /// `assigned`, `replied`, `evaluated`, `re_handling`, `escalated`, `in_follow_up`, `closed`
    /// or `withdrawn`.
    pub state: String,
    pub session_id: Uuid,
    pub number: String,
    pub title: String,
    pub body: String,
    pub category: String,
    /// `session` or `recess`.
    #[schema(value_type = doc::ItemKind)]
    pub kind: ItemKind,
    pub lead_deputy_id: Uuid,
    /// The lead deputy's delegation (代表团) when the suggestion was submitted.
    pub delegation: String,
    pub co_signer_ids: Vec<Uuid>,
    pub key_supervised: bool,
    /// `normal`, `key`, `difficult` or `special`.
    pub priority: String,
    pub confidential: bool,
    /// `full`, `summary` or `none`.
    pub disclosure: String,
    pub received_on: Date,
    #[schema(value_type = Option<doc::ReplyClass>)]
    pub current_class: Option<ReplyClass>,
    pub assignments: Vec<AssignmentView>,
    pub communications: Vec<CommunicationView>,
    pub opinions: Vec<OpinionView>,
    pub replies: Vec<ReplyView>,
    pub class_history: Vec<ClassChangeView>,
    pub feedback: Vec<FeedbackView>,
    pub feedback_deadline: Option<DeadlineView>,
    pub rehandling_rounds: u32,
    pub commitments: Vec<CommitmentView>,
    /// The consultations among the units (the reader's own, for an agency; none for deputies).
    pub consultations: Vec<ConsultationView>,
    pub closure: Option<ClosureView>,
}

fn signer(s: &Signer) -> SignerView {
    SignerView {
        name: s.name.clone(),
        position: s.position,
    }
}

fn docs(s: &Suggestion, d: &[banli_domain::document::DocumentRef]) -> Vec<DocumentView> {
    d.iter().map(|d| DocumentView::of(s.id.0, d)).collect()
}

impl SuggestionView {
    /// Every document this view shows (what its reader may download).
    pub fn documents(&self) -> impl Iterator<Item = &DocumentView> {
        let replies = self
            .replies
            .iter()
            .flat_map(|r| r.letter.iter().chain(&r.attachments));
        let opinions = self
            .opinions
            .iter()
            .flat_map(|o| o.letter.iter().chain(&o.attachments));
        let evidence = self.commitments.iter().flat_map(|c| &c.evidence_documents);
        let minutes = self.consultations.iter().flat_map(|c| &c.documents);
        replies.chain(opinions).chain(evidence).chain(minutes)
    }

    /// The view for `reader` as of `today`: co-handling opinions it may not read are left out
    /// (see [`Suggestion::opinion_readable`]).
    pub fn for_reader(
        s: &Suggestion,
        today: Date,
        reader: banli_domain::suggestion::OpinionReader,
    ) -> SuggestionView {
        let mut v = SuggestionView::new(s, today);
        v.opinions.retain(|o| {
            s.opinion_readable(reader, banli_domain::ids::AssignmentId(o.assignment_id))
        });
        // A drafted reply is the unit's internal paper until issued: for the unit and the office.
        for (a, view) in s.assignments.iter().zip(v.assignments.iter_mut()) {
            if let Some(x) = view.approval.as_mut()
                && !s.draft_readable(reader, a.id)
            {
                x.draft = None;
            }
        }
        v.consultations.retain(|c| match reader {
            banli_domain::suggestion::OpinionReader::All => true,
            banli_domain::suggestion::OpinionReader::Agency(a) => c.agency_ids.contains(&a.0),
            banli_domain::suggestion::OpinionReader::Nobody => false,
        });
        v
    }

    /// The whole view as of `today` (for the overdue flags).
    pub fn new(s: &Suggestion, today: Date) -> SuggestionView {
        let d = &s.details;
        SuggestionView {
            id: s.id.0,
            version: s.version,
            state: s.state.as_str().to_owned(),
            session_id: d.session_id.0,
            number: d.number.clone(),
            title: d.title.clone(),
            body: d.body.clone(),
            category: d.category.clone(),
            kind: d.kind,
            lead_deputy_id: d.lead_deputy.0,
            delegation: d.delegation.clone(),
            co_signer_ids: d.co_signers.iter().map(|x| x.0).collect(),
            key_supervised: d.key_supervised,
            priority: name(&d.priority),
            confidential: d.confidential,
            disclosure: name(&d.disclosure),
            received_on: s.received_on,
            current_class: s.current_class(),
            assignments: s
                .assignments
                .iter()
                .map(|a| assignment(s, a, today))
                .collect(),
            communications: s
                .communications
                .iter()
                .map(|c| CommunicationView {
                    id: c.id.0,
                    assignment_id: c.assignment_id.0,
                    phase: name(&c.phase),
                    method: name(&c.method),
                    face_to_face: c.face_to_face,
                    deputy_ids: c.deputies.iter().map(|x| x.0).collect(),
                    participants: c.participants.clone(),
                    summary: c.summary.clone(),
                    on: c.on,
                })
                .collect(),
            opinions: s
                .opinions
                .iter()
                .map(|o| OpinionView {
                    id: o.id.0,
                    assignment_id: o.assignment_id.0,
                    document_number: o.document_number.clone(),
                    body: o.body.clone(),
                    signer: signer(&o.signer),
                    on: o.on,
                    acknowledged_on: o.acknowledged_on,
                    measures: o
                        .measures
                        .iter()
                        .map(|m| MeasureView {
                            id: m.id.0,
                            measure: m.measure.clone(),
                            responsible: m.responsible.clone(),
                            target_date: m.target_date,
                        })
                        .collect(),
                    no_measure_reason: o.no_measure_reason.clone(),
                    consultation_ids: o.consultations.iter().map(|c| c.0).collect(),
                    flagged: o.flagged,
                    letter: o.letter.as_ref().map(|d| DocumentView::of(s.id.0, d)),
                    attachments: docs(s, &o.attachments),
                })
                .collect(),
            replies: s.replies.iter().map(|r| reply_view(s, r)).collect(),
            class_history: s
                .class_history
                .iter()
                .map(|c| ClassChangeView {
                    from: name(&c.from),
                    to: name(&c.to),
                    reason: c.reason.clone(),
                    conversion: c.conversion,
                    on: c.on,
                })
                .collect(),
            feedback: s
                .feedback
                .iter()
                .map(|f| FeedbackView {
                    deputy_id: f.deputy.0,
                    level: name(&f.level),
                    handling: f.handling.as_ref().map(name),
                    result: f.result.as_ref().map(name),
                    comment: f.comment.clone(),
                    round: f.round,
                    on: f.on,
                })
                .collect(),
            feedback_deadline: s.feedback_due.as_ref().map(DeadlineView::from),
            rehandling_rounds: s.rehandling_rounds,
            commitments: s
                .commitments
                .iter()
                .map(|c| CommitmentView {
                    id: c.id.0,
                    assignment_id: c.assignment_id.0,
                    measure: c.measure.clone(),
                    owner_agency_id: c.owner.0,
                    division_id: c.division.map(|x| x.0),
                    target_date: c.target_date,
                    state: name(&c.state),
                    progress: c
                        .progress
                        .iter()
                        .map(|p| ProgressView {
                            note: p.note.clone(),
                            on: p.on,
                            notify_deputy: p.to_deputy,
                        })
                        .collect(),
                    evidence: c.evidence.clone(),
                    evidence_documents: docs(s, &c.evidence_documents),
                    converted_on: c.converted_on,
                    responsible: c.responsible.clone(),
                    opinion_id: c.opinion_id.map(|o| o.0),
                })
                .collect(),
            consultations: s
                .consultations
                .iter()
                .map(|c| ConsultationView {
                    id: c.id.0,
                    convened_by: c.convened_by.0,
                    agency_ids: c.agencies.iter().map(|a| a.0).collect(),
                    deputy_ids: c.deputies.iter().map(|d| d.0).collect(),
                    attendees: c.attendees.clone(),
                    subject: c.subject.clone(),
                    minutes: c.minutes.clone(),
                    on: c.on,
                    documents: docs(s, &c.documents),
                })
                .collect(),
            closure: s.closures.last().map(|c| ClosureView {
                state: match &c.decision {
                    None => "pending",
                    Some(d) if d.confirmed => "confirmed",
                    Some(_) => "returned",
                }
                .to_owned(),
                reply_id: c.reply_id.0,
                from: name(&c.from),
                to: name(&c.to),
                conversion: c.is_conversion(),
                explanation: c.explanation.clone(),
                requested_on: c.on,
                reason: c
                    .decision
                    .as_ref()
                    .map(|d| d.reason.clone())
                    .filter(|r| !r.is_empty()),
                decided_on: c.decision.as_ref().map(|d| d.on),
                reopened_commitment_ids: c
                    .decision
                    .as_ref()
                    .map(|d| d.reopened.iter().map(|x| x.0).collect())
                    .unwrap_or_default(),
                ratings: c
                    .ratings
                    .iter()
                    .map(|r| ClosureRatingView {
                        deputy_id: r.deputy.0,
                        level: name(&r.level),
                        comment: r.comment.clone(),
                        on: r.on,
                    })
                    .collect(),
            }),
        }
    }
}

fn assignment(s: &Suggestion, a: &Assignment, today: Date) -> AssignmentView {
    let open = matches!(
        a.state,
        AssignmentState::PendingSign
            | AssignmentState::Accepted
            | AssignmentState::AdjustmentPending
            | AssignmentState::InHandling
            | AssignmentState::InReview
            | AssignmentState::ReHandling
    );
    let due = a
        .deadlines
        .reply
        .as_ref()
        .or(a.deadlines.co_opinion.as_ref())
        .map(|d| d.due);
    AssignmentView {
        id: a.id.0,
        agency_id: a.agency.0,
        role: a.role,
        state: a.state.as_str().to_owned(),
        assigned_on: a.assigned_on,
        deadlines: AssignmentDeadlinesView {
            objection: (&a.deadlines.objection).into(),
            first_contact: a.deadlines.first_contact.as_ref().map(Into::into),
            co_opinion: a.deadlines.co_opinion.as_ref().map(Into::into),
            reply: a.deadlines.reply.as_ref().map(Into::into),
            reply_cap: a.deadlines.reply_cap.as_ref().map(Into::into),
        },
        overdue: open && due.is_some_and(|d| d < today),
        dispatch: a.dispatch.as_ref().map(|d| DispatchView {
            division_id: d.division.0,
            handler: d.handler.clone(),
            responsible_leader: d.responsible_leader.clone(),
            leading_official: d.leading_official.clone(),
            plan: d.plan.clone(),
            on: d.on,
        }),
        adjustment: a.adjustment.as_ref().map(|r| RequestView {
            on: r.on,
            reason: r.reason.clone(),
            new_due: None,
            status: match &r.decision {
                None => "pending".into(),
                Some(AdjustmentDecision::Accept { .. }) => "accept".into(),
                Some(AdjustmentDecision::Reject { .. }) => "reject".into(),
                Some(AdjustmentDecision::Escalate { .. }) => "escalate".into(),
            },
        }),
        extension: a.extension.as_ref().map(|r| RequestView {
            on: r.on,
            reason: r.reason.clone(),
            new_due: Some(r.new_due),
            status: match r.approved {
                None => "pending".into(),
                Some(true) => "approved".into(),
                Some(false) => "rejected".into(),
            },
        }),
        extensions_granted: a.extensions_granted,
        replaces: a.replaces.map(|x| x.0),
        opinion_waived: a.opinion_waived,
        approval: a.approval.as_ref().map(|x| {
            let current = x.current();
            ApprovalView {
                current_step: current.map(|i| i as u32),
                waiting_for: current.map(|i| x.steps[i].position.as_str().to_owned()),
                submitted_on: x.submitted_on,
                steps: x
                    .steps
                    .iter()
                    .enumerate()
                    .map(|(i, st)| step_view(st, (current == Some(i)).then_some(today)))
                    .collect(),
                draft: Some(reply_view(s, &x.draft)),
            }
        }),
    }
}

/// A step's view; `today` for the current step (its overdue flag).
fn step_view(st: &ApprovalStep, today: Option<Date>) -> ApprovalStepView {
    ApprovalStepView {
        position: st.position.as_str().to_owned(),
        due: st.due.as_ref().map(DeadlineView::from),
        overdue: match (today, &st.due) {
            (Some(t), Some(d)) => d.due < t,
            _ => false,
        },
        decision: st
            .decision
            .as_ref()
            .map(|d| if d.approved { "approved" } else { "returned" }.to_owned()),
        comment: st.decision.as_ref().map(|d| d.comment.clone()),
        decided_on: st.decision.as_ref().map(|d| d.on),
    }
}

/// One row of a list.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SuggestionSummaryView {
    pub id: Uuid,
    pub version: u64,
    pub session_id: Uuid,
    pub number: String,
    pub state: String,
    pub title: String,
    pub key_supervised: bool,
}

impl From<SuggestionSummary> for SuggestionSummaryView {
    fn from(s: SuggestionSummary) -> Self {
        SuggestionSummaryView {
            id: s.id.0,
            version: s.version,
            session_id: s.session_id.0,
            number: s.number,
            state: s.state,
            title: s.title,
            key_supervised: s.key_supervised,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SuggestionPage {
    pub items: Vec<SuggestionSummaryView>,
    /// Pass as `page_token` for the next page; absent on the last page.
    pub next_page_token: Option<String>,
}

fn reply_view(s: &Suggestion, r: &Reply) -> ReplyView {
    ReplyView {
        id: r.id.0,
        assignment_id: r.assignment_id.0,
        reply_type: r.reply_type,
        document_number: r.document_number.clone(),
        body: r.body.clone(),
        class: r.class,
        signer: signer(&r.signer),
        opinion_ids: r.references.iter().map(|x| x.0).collect(),
        countersigned_by: r.countersigned_by.iter().map(|x| x.0).collect(),
        round: r.round,
        on: r.on,
        consultation_ids: r.consultations.iter().map(|c| c.0).collect(),
        letter: r.letter.as_ref().map(|d| DocumentView::of(s.id.0, d)),
        attachments: docs(s, &r.attachments),
        review_state: match (&r.review_due, &r.review) {
            (None, _) => None,
            (Some(_), None) => Some("pending".to_owned()),
            (Some(_), Some(v)) if v.accepted => Some("accepted".to_owned()),
            (Some(_), Some(_)) => Some("returned".to_owned()),
        },
        review_deadline: r.review_due.as_ref().map(DeadlineView::from),
        review_reasons: r.review.as_ref().map(|v| v.reasons.clone()),
        reviewed_on: r.review.as_ref().map(|v| v.on),
        approvals: r.approvals.iter().map(|x| step_view(x, None)).collect(),
        publication_due: r.publication_due.as_ref().map(|d| d.due),
        publication: r.publication.as_ref().map(|p| PublicationView {
            published_on: p.on,
            automatic: p.automatic,
            redactions: p.redactions,
            withdrawn_on: p.withdrawn.as_ref().map(|w| w.on),
            withdrawn_reason: p.withdrawn.as_ref().map(|w| w.reason.clone()),
        }),
    }
}
