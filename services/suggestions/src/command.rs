//! Commands on a suggestion as data (one per client request kind). Either transport builds one
//! at its edge — REST from the JSON body (serde), gRPC from the request message (`TryFrom` in
//! `grpc::commands`) — and [`App::command`](crate::app::App::command) runs it for both: the
//! authorization, the idempotency key or `Reference-Id`, `If-Match` / `expected_version`, the
//! domain command built here against the current state (defaults and date checks in one place),
//! decide, commit.

use banli_domain::document::DocumentRef;
use banli_domain::ids::*;
use banli_domain::suggestion::*;
use time::Date;
use uuid::Uuid;

use crate::dto::*;
use crate::error::AppError;
use crate::policy::Principal;

banli_domain::command_enum! {
/// A client's command on one suggestion, as received (before the state is known).
#[derive(Debug, Clone)]
pub enum SuggestionCommand {
    StartReview {},
    Review { body: Review },
    Withdraw { body: Reason },
    Assign { body: Assign },
    Dispatch { assignment_id: Uuid, body: DispatchBody },
    RecordCommunication { body: CommunicationBody },
    RequestExtension { assignment_id: Uuid, body: ExtensionRequestBody },
    DecideExtension { assignment_id: Uuid, body: Decision },
    IssueReply { body: ReplyBody },
    DecideApprovalStep { assignment_id: Uuid, body: ApprovalDecisionBody },
    ReviewReply { reply_id: Uuid, body: ReplyReviewBody },
    PublishReply { reply_id: Uuid, body: PublishBody },
    WithdrawPublication { reply_id: Uuid, body: Reason },
    ChangeClass { body: ClassChangeBody },
    RecordFeedback { body: FeedbackBody },
    CloseFeedbackWindow {},
    ResolveEscalation { body: OutcomeBody },
    ReportProgress { commitment_id: Uuid, body: ProgressBody },
    ConvertCommitment { commitment_id: Uuid, body: EvidenceBody },
    DecideClosure { body: ClosureDecisionBody },
    RateClosure { body: ClosureRatingBody },
}
}

/// The domain commands no [`SuggestionCommand`] builds, and where they come from instead. With
/// the commands built from a `SuggestionCommand`, these are every `CommandKind` exactly once (a
/// test checks it): a new domain command has to be given a transport or named here.
pub const NOT_FROM_SUGGESTION_COMMANDS: [(&str, &str); 11] = [
    (
        "Submit",
        "its own call on both transports (POST /v1/suggestions, SubmitSuggestion)",
    ),
    ("SignFor", "mirrored from the coordination service"),
    (
        "RequestAdjustment",
        "mirrored from the coordination service",
    ),
    ("DecideAdjustment", "mirrored from the coordination service"),
    ("SubmitOpinion", "mirrored from the coordination service"),
    (
        "AcknowledgeOpinion",
        "mirrored from the coordination service",
    ),
    ("WaiveOpinion", "mirrored from the coordination service"),
    (
        "RecordConsultation",
        "mirrored from the coordination service",
    ),
    (
        "PublishDueReplies",
        "the suggestions service's sweeper, as replies' publication dates pass",
    ),
    (
        "LapseReplyReviews",
        "the suggestions service's review sweeper, as the review windows close",
    ),
    (
        "RecomputeDeadlines",
        "the calendar's recompute call and the platform after new calendar data",
    ),
];

/// Which request a command answers, and how a retry is recognised.
#[derive(Debug, Clone)]
pub struct Target {
    pub suggestion_id: Uuid,
    /// `If-Match` (REST) or a non-zero `expected_version` (gRPC).
    pub expected_version: Option<u64>,
    pub once: Once,
}

pub use banli_api::Once;

impl SuggestionCommand {
    /// The REST route that carries this command (`POST`), as in the OpenAPI document.
    pub fn rest_path(&self) -> &'static str {
        match self {
            Self::StartReview {} => "/v1/suggestions/{id}/start-review",
            Self::Review { .. } => "/v1/suggestions/{id}/review",
            Self::Withdraw { .. } => "/v1/suggestions/{id}/withdraw",
            Self::Assign { .. } => "/v1/suggestions/{id}/assignments",
            Self::Dispatch { .. } => "/v1/suggestions/{id}/assignments/{assignment_id}/dispatch",
            Self::RecordCommunication { .. } => "/v1/suggestions/{id}/communications",
            Self::RequestExtension { .. } => {
                "/v1/suggestions/{id}/assignments/{assignment_id}/extension-request"
            }
            Self::DecideExtension { .. } => {
                "/v1/suggestions/{id}/assignments/{assignment_id}/extension-decision"
            }
            Self::IssueReply { .. } => "/v1/suggestions/{id}/replies",
            Self::DecideApprovalStep { .. } => {
                "/v1/suggestions/{id}/assignments/{assignment_id}/approval"
            }
            Self::ReviewReply { .. } => "/v1/suggestions/{id}/replies/{reply_id}/review",
            Self::PublishReply { .. } => "/v1/suggestions/{id}/replies/{reply_id}/publish",
            Self::WithdrawPublication { .. } => {
                "/v1/suggestions/{id}/replies/{reply_id}/publication/withdraw"
            }
            Self::ChangeClass { .. } => "/v1/suggestions/{id}/class",
            Self::RecordFeedback { .. } => "/v1/suggestions/{id}/feedback",
            Self::CloseFeedbackWindow {} => "/v1/suggestions/{id}/feedback-window/close",
            Self::ResolveEscalation { .. } => "/v1/suggestions/{id}/escalation/resolve",
            Self::ReportProgress { .. } => {
                "/v1/suggestions/{id}/commitments/{commitment_id}/progress"
            }
            Self::ConvertCommitment { .. } => {
                "/v1/suggestions/{id}/commitments/{commitment_id}/convert"
            }
            Self::DecideClosure { .. } => "/v1/suggestions/{id}/closure/decision",
            Self::RateClosure { .. } => "/v1/suggestions/{id}/closure/ratings",
        }
    }

    /// The assignment whose unit's divisions the domain needs to check this command against
    /// (a dispatch names one of them).
    pub fn needs_divisions_of(&self) -> Option<AssignmentId> {
        match self {
            Self::Dispatch { assignment_id, .. } => Some(AssignmentId(*assignment_id)),
            _ => None,
        }
    }

    /// The assignment whose unit's approval chain (内部审批) the domain needs: a reply goes
    /// through it.
    pub fn needs_chain_of(&self) -> Option<AssignmentId> {
        match self {
            Self::IssueReply { body } => Some(AssignmentId(body.assignment_id)),
            _ => None,
        }
    }

    /// Whether the command needs the names of the item's deputies (to keep them out of a
    /// published reply).
    pub fn needs_deputy_names(&self) -> bool {
        matches!(self, Self::PublishReply { .. })
    }

    /// The documents (SHA-256s) the command attaches: each must be one the caller uploaded.
    pub fn documents(&self) -> Vec<&str> {
        match self {
            Self::IssueReply { body } => body
                .letter
                .iter()
                .chain(&body.attachments)
                .map(String::as_str)
                .collect(),
            Self::ConvertCommitment { body, .. } => {
                body.documents.iter().map(String::as_str).collect()
            }
            _ => Vec::new(),
        }
    }

    /// The domain command, against the current state `s` on `today`: the one place where a
    /// transport's request becomes a `CommandKind` (defaults, dates in the future refused).
    /// `looked_up` holds what the app read for it: the divisions of
    /// [`Self::needs_divisions_of`]'s unit, the approval chain of [`Self::needs_chain_of`]'s, the
    /// documents of [`Self::documents`] (each empty otherwise).
    pub fn into_kind(
        self,
        s: &Suggestion,
        today: Date,
        p: &Principal,
        looked_up: LookedUp,
    ) -> Result<CommandKind, AppError> {
        let LookedUp {
            unit_divisions,
            approval_chain,
            attached,
            deputy_names,
        } = looked_up;
        let docs = &attached;
        Ok(match self {
            Self::StartReview {} => CommandKind::StartReview { on: today },
            Self::Review { body } => CommandKind::Review {
                decision: body.decision,
                reason: body.reason,
                on: today,
            },
            Self::Withdraw { body } => CommandKind::Withdraw {
                reason: body.reason,
                on: today,
            },
            Self::Assign { body } => CommandKind::Assign {
                units: body
                    .units
                    .into_iter()
                    .map(|u| UnitAssignment {
                        assignment_id: AssignmentId::new(),
                        agency: AgencyId(u.agency_id),
                        role: u.role,
                    })
                    .collect(),
                on: today,
            },
            Self::Dispatch {
                assignment_id,
                body,
            } => CommandKind::Dispatch {
                assignment: AssignmentId(assignment_id),
                division: DivisionId(body.division_id),
                handler: body.handler,
                responsible_leader: body.responsible_leader,
                leading_official: body.leading_official,
                plan: body.plan,
                unit_divisions,
                on: today,
            },
            Self::RecordCommunication { body } => CommandKind::RecordCommunication {
                communication: Communication {
                    id: CommunicationId::new(),
                    assignment_id: AssignmentId(body.assignment_id),
                    phase: body.phase,
                    method: body.method,
                    face_to_face: body.face_to_face,
                    deputies: body.deputy_ids.into_iter().map(DeputyId).collect(),
                    participants: body.participants,
                    summary: body.summary,
                    on: not_future(body.on, today, "a communication")?,
                },
            },
            Self::RequestExtension {
                assignment_id,
                body,
            } => CommandKind::RequestExtension {
                assignment: AssignmentId(assignment_id),
                new_due: body.new_due,
                reason: body.reason,
                on: today,
            },
            Self::DecideExtension {
                assignment_id,
                body,
            } => CommandKind::DecideExtension {
                assignment: AssignmentId(assignment_id),
                approve: body.approve,
                on: today,
            },
            Self::IssueReply { body } => CommandKind::IssueReply {
                approval_chain,
                reply: Reply {
                    publication: None,
                    publication_due: None,
                    approvals: Vec::new(),
                    review: None,
                    review_due: None,
                    id: ReplyId::new(),
                    assignment_id: AssignmentId(body.assignment_id),
                    reply_type: body.reply_type.unwrap_or(match s.state {
                        SuggestionState::ReHandling => ReplyType::ReHandled,
                        SuggestionState::InFollowUp => ReplyType::Supplementary,
                        _ => ReplyType::Initial,
                    }),
                    document_number: body.document_number,
                    body: body.body,
                    class: body.class,
                    signer: Signer {
                        name: body.signer.name,
                        position: body.signer.position,
                    },
                    references: body.opinion_ids.into_iter().map(OpinionId).collect(),
                    countersigned_by: body.countersigned_by.into_iter().map(AgencyId).collect(),
                    round: 0,
                    on: not_future(body.on, today, "a reply")?,
                    consultations: body
                        .consultation_ids
                        .into_iter()
                        .map(ConsultationId)
                        .collect(),
                    letter: body.letter.as_deref().map(|h| docs.get(h)).transpose()?,
                    attachments: docs.all(&body.attachments)?,
                },
                commitments: body
                    .commitments
                    .into_iter()
                    .map(|c| CommitmentDraft {
                        id: CommitmentId::new(),
                        measure: c.measure,
                        division: c.division_id.map(DivisionId),
                        target_date: c.target_date,
                    })
                    .collect(),
                explanation: body.explanation,
            },
            Self::DecideApprovalStep {
                assignment_id,
                body,
            } => CommandKind::DecideApprovalStep {
                assignment: AssignmentId(assignment_id),
                step: body.step,
                approve: body.approve,
                comment: body.comment,
                on: today,
            },
            Self::PublishReply { reply_id, body: _ } => CommandKind::PublishReply {
                reply: ReplyId(reply_id),
                names: deputy_names,
                on: today,
            },
            Self::WithdrawPublication { reply_id, body } => CommandKind::WithdrawPublication {
                reply: ReplyId(reply_id),
                reason: body.reason,
                on: today,
            },
            Self::ReviewReply { reply_id, body } => CommandKind::ReviewReply {
                reply: ReplyId(reply_id),
                accept: body.accept,
                reasons: body.reasons,
                on: today,
            },
            Self::ChangeClass { body } => CommandKind::ChangeClass {
                to: body.to,
                reason: body.reason,
                on: today,
            },
            Self::RecordFeedback { body } => CommandKind::RecordFeedback {
                feedback: Feedback {
                    deputy: body.deputy_id.map(DeputyId).or(p.deputy).ok_or_else(|| {
                        AppError::invalid(
                            "deputy_id is required (only a deputy's own key may leave it out)",
                        )
                    })?,
                    level: body.level,
                    handling: body.handling,
                    result: body.result,
                    comment: body.comment,
                    round: 0,
                    on: today,
                },
            },
            Self::CloseFeedbackWindow {} => CommandKind::CloseFeedbackWindow { on: today },
            Self::ResolveEscalation { body } => CommandKind::ResolveEscalation {
                outcome: body.outcome,
                on: today,
            },
            Self::ReportProgress {
                commitment_id,
                body,
            } => CommandKind::ReportProgress {
                commitment: CommitmentId(commitment_id),
                note: body.note,
                to_deputy: body.notify_deputy,
                on: today,
            },
            Self::ConvertCommitment {
                commitment_id,
                body,
            } => CommandKind::ConvertCommitment {
                commitment: CommitmentId(commitment_id),
                evidence: body.evidence,
                documents: docs.all(&body.documents)?,
                on: today,
            },
            Self::DecideClosure { body } => CommandKind::DecideClosure {
                confirm: body.confirm,
                reason: body.reason,
                reopen: body
                    .reopen_commitment_ids
                    .into_iter()
                    .map(CommitmentId)
                    .collect(),
                on: today,
            },
            Self::RateClosure { body } => CommandKind::RateClosure {
                deputy: body.deputy_id.map(DeputyId).or(p.deputy).ok_or_else(|| {
                    AppError::invalid(
                        "deputy_id is required (only a deputy's own key may leave it out)",
                    )
                })?,
                level: body.level,
                comment: body.comment,
                on: today,
            },
        })
    }
}

/// What the app reads for a command before building it (see [`SuggestionCommand::into_kind`]).
#[derive(Debug, Clone, Default)]
pub struct LookedUp {
    pub unit_divisions: Vec<DivisionId>,
    pub approval_chain: ApprovalChain,
    pub attached: Attached,
    /// The names of the item's deputies (lead and co-signers), from the directory.
    pub deputy_names: Vec<String>,
}

/// The documents a command attaches, resolved against the caller's uploads.
#[derive(Debug, Clone, Default)]
pub struct Attached(pub Vec<DocumentRef>);

impl Attached {
    fn get(&self, sha256: &str) -> Result<DocumentRef, AppError> {
        banli_documents::access::pick(&self.0, sha256)
    }

    fn all(&self, hashes: &[String]) -> Result<Vec<DocumentRef>, AppError> {
        banli_documents::access::pick_all(&self.0, hashes)
    }
}

/// `on`, default today; a date after today is refused.
fn not_future(on: Option<Date>, today: Date, what: &str) -> Result<Date, AppError> {
    let on = on.unwrap_or(today);
    if on > today {
        return Err(AppError::invalid(format!(
            "{what} cannot be dated in the future"
        )));
    }
    Ok(on)
}
