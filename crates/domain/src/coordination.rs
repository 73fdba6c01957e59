//! Coordination (协办): the exchange between the units of one suggestion — sign-for (签收),
//! adjustment requests (调整申请), co-handling opinions (会办意见) and their waivers,
//! consultations among the units (会商),
//! countersign of a joint reply (会签), disagreements (分歧) and their escalation, and the copies
//! of the lead's reply sent to the co-handlers (抄送).
//!
//! The coordination service decides these commands against its replica of the suggestion (built
//! from the suggestions service's events) and publishes [`CoordinationEvent`]s. The commands that
//! change the suggestion itself (sign-for, adjustments, opinions, waivers) are mirrored: the
//! suggestions service applies the same command, through the same guards, when it consumes the
//! event — so the reply gate there learns that every opinion is in or waived.

use serde::{Deserialize, Serialize};
use time::Date;

use crate::Rules;
use crate::actor::{Actor, Role};
use crate::error::DomainError;
use crate::ids::*;
use crate::suggestion::{
    AdjustmentChoice, AssignmentState, CoHandlingOpinion, Command, CommandKind, Consultation,
    ReplyType, Signer, Suggestion, SuggestionEvent, SuggestionState, UnitRole, decide,
};

/// The schema version of coordination event payloads this code writes and reads.
pub const SCHEMA_VERSION: u32 = 1;

/// A disagreement between units, recorded and, when escalated, decided by the assigning office.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Disagreement {
    pub id: DisagreementId,
    pub assignment_id: AssignmentId,
    pub agency: AgencyId,
    pub statement: String,
    pub escalated_on: Option<Date>,
    pub resolution: Option<String>,
    pub resolved_on: Option<Date>,
    pub on: Date,
}

/// A co-unit's countersignature on the lead's joint reply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Countersignature {
    pub reply_id: ReplyId,
    pub assignment_id: AssignmentId,
    pub agency: AgencyId,
    pub signer: Signer,
    pub on: Date,
}

/// A copy of the lead's reply delivered to a co-handler.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplyCopy {
    pub reply_id: ReplyId,
    pub assignment_id: AssignmentId,
    pub agency: AgencyId,
    pub on: Date,
}

command_enum! {
/// What a unit or the assigning office asks of the coordination service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CoordinationCommand {
    SignFor {
        assignment: AssignmentId,
        on: Date,
    },
    RequestAdjustment {
        assignment: AssignmentId,
        reason: String,
        suggested_agency: Option<AgencyId>,
        on: Date,
    },
    DecideAdjustment {
        assignment: AssignmentId,
        choice: AdjustmentChoice,
        on: Date,
    },
    SubmitOpinion {
        opinion: CoHandlingOpinion,
    },
    AcknowledgeOpinion {
        opinion: OpinionId,
        on: Date,
    },
    WaiveOpinion {
        assignment: AssignmentId,
        reason: String,
        on: Date,
    },
    Countersign {
        reply: ReplyId,
        signer: Signer,
        on: Date,
    },
    RecordDisagreement {
        id: DisagreementId,
        assignment: AssignmentId,
        statement: String,
        escalate: bool,
        on: Date,
    },
    EscalateDisagreement {
        id: DisagreementId,
        on: Date,
    },
    ResolveDisagreement {
        id: DisagreementId,
        resolution: String,
        on: Date,
    },
    RecordConsultation {
        consultation: Consultation,
    },
}
}

impl CoordinationCommand {
    pub fn name(&self) -> &'static str {
        match self {
            Self::SignFor { .. } => "sign for",
            Self::RequestAdjustment { .. } => "request an adjustment",
            Self::DecideAdjustment { .. } => "decide an adjustment",
            Self::SubmitOpinion { .. } => "submit a co-handling opinion",
            Self::AcknowledgeOpinion { .. } => "acknowledge an opinion",
            Self::WaiveOpinion { .. } => "waive an opinion",
            Self::Countersign { .. } => "countersign the reply",
            Self::RecordDisagreement { .. } => "record a disagreement",
            Self::EscalateDisagreement { .. } => "escalate a disagreement",
            Self::ResolveDisagreement { .. } => "resolve a disagreement",
            Self::RecordConsultation { .. } => "record a consultation",
        }
    }

    /// The suggestion command this mirrors, if it changes the suggestion.
    pub fn mirrored(&self) -> Option<CommandKind> {
        Some(match self.clone() {
            Self::SignFor { assignment, on } => CommandKind::SignFor { assignment, on },
            Self::RequestAdjustment {
                assignment,
                reason,
                suggested_agency,
                on,
            } => CommandKind::RequestAdjustment {
                assignment,
                reason,
                suggested_agency,
                on,
            },
            Self::DecideAdjustment {
                assignment,
                choice,
                on,
            } => CommandKind::DecideAdjustment {
                assignment,
                choice,
                on,
            },
            Self::SubmitOpinion { opinion } => CommandKind::SubmitOpinion { opinion },
            Self::RecordConsultation { consultation } => {
                CommandKind::RecordConsultation { consultation }
            }
            Self::AcknowledgeOpinion { opinion, on } => {
                CommandKind::AcknowledgeOpinion { opinion, on }
            }
            Self::WaiveOpinion {
                assignment,
                reason,
                on,
            } => CommandKind::WaiveOpinion {
                assignment,
                reason,
                on,
            },
            _ => return None,
        })
    }
}

published_events! {
    /// The facts of coordination, published as `coordination.<snake_case name>`.
    pub enum CoordinationEvent in "coordination" {
    SignedFor {
        assignment_id: AssignmentId,
        on: Date,
    },
    AdjustmentRequested {
        assignment_id: AssignmentId,
        reason: String,
        suggested_agency: Option<AgencyId>,
        on: Date,
    },
    AdjustmentDecided {
        assignment_id: AssignmentId,
        choice: AdjustmentChoice,
        on: Date,
    },
    OpinionSubmitted {
        opinion: CoHandlingOpinion,
    },
    OpinionAcknowledged {
        opinion_id: OpinionId,
        on: Date,
    },
    OpinionWaived {
        assignment_id: AssignmentId,
        reason: String,
        on: Date,
    },
    ReplyCountersigned {
        countersignature: Countersignature,
    },
    DisagreementRecorded {
        disagreement: Disagreement,
    },
    DisagreementEscalated {
        id: DisagreementId,
        on: Date,
    },
    DisagreementResolved {
        id: DisagreementId,
        resolution: String,
        on: Date,
    },
    /// The lead's reply was copied to a co-handler.
    ReplyCopied {
        copy: ReplyCopy,
    },
    /// 会商: the units met on the suggestion.
    ConsultationRecorded {
        consultation: Consultation,
    },
    }
}

impl CoordinationEvent {
    /// The suggestion command the suggestions service applies for this event, if any.
    pub fn mirrored(&self) -> Option<CommandKind> {
        Some(match self.clone() {
            Self::SignedFor { assignment_id, on } => CommandKind::SignFor {
                assignment: assignment_id,
                on,
            },
            Self::AdjustmentRequested {
                assignment_id,
                reason,
                suggested_agency,
                on,
            } => CommandKind::RequestAdjustment {
                assignment: assignment_id,
                reason,
                suggested_agency,
                on,
            },
            Self::AdjustmentDecided {
                assignment_id,
                choice,
                on,
            } => CommandKind::DecideAdjustment {
                assignment: assignment_id,
                choice,
                on,
            },
            Self::OpinionSubmitted { opinion } => CommandKind::SubmitOpinion { opinion },
            Self::ConsultationRecorded { consultation } => {
                CommandKind::RecordConsultation { consultation }
            }
            Self::OpinionAcknowledged { opinion_id, on } => CommandKind::AcknowledgeOpinion {
                opinion: opinion_id,
                on,
            },
            Self::OpinionWaived {
                assignment_id,
                reason,
                on,
            } => CommandKind::WaiveOpinion {
                assignment: assignment_id,
                reason,
                on,
            },
            _ => return None,
        })
    }
}

/// The coordination side of one suggestion.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoordinationCase {
    /// Coordination events so far.
    pub version: u64,
    pub countersignatures: Vec<Countersignature>,
    pub disagreements: Vec<Disagreement>,
    pub copies: Vec<ReplyCopy>,
}

impl CoordinationCase {
    pub fn apply(&mut self, e: &CoordinationEvent) {
        self.version += 1;
        match e {
            CoordinationEvent::ReplyCountersigned { countersignature } => {
                self.countersignatures.push(countersignature.clone());
            }
            CoordinationEvent::DisagreementRecorded { disagreement } => {
                self.disagreements.push(disagreement.clone());
            }
            CoordinationEvent::DisagreementEscalated { id, on } => {
                if let Some(d) = self.disagreements.iter_mut().find(|d| d.id == *id) {
                    d.escalated_on = Some(*on);
                }
            }
            CoordinationEvent::DisagreementResolved { id, resolution, on } => {
                if let Some(d) = self.disagreements.iter_mut().find(|d| d.id == *id) {
                    d.resolution = Some(resolution.clone());
                    d.resolved_on = Some(*on);
                }
            }
            CoordinationEvent::ReplyCopied { copy } => self.copies.push(copy.clone()),
            _ => {}
        }
    }
}

/// What a decided command produces: the coordination events, and for a mirrored command the
/// suggestion events the suggestions service will record when it applies it (applied to the
/// replica until that service confirms them).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub events: Vec<CoordinationEvent>,
    pub effects: Vec<SuggestionEvent>,
}

/// Decides a coordination command against the replica of the suggestion (with the effects of
/// commands not yet confirmed applied) and the coordination case.
pub fn decide_coordination(
    suggestion: &Suggestion,
    case: &CoordinationCase,
    actor: &Actor,
    cmd: &CoordinationCommand,
    rules: &Rules<'_>,
) -> Result<Decision, DomainError> {
    let name = cmd.name();
    if let Some(kind) = cmd.mirrored() {
        let effects = decide(
            Some(suggestion),
            &Command {
                actor: actor.clone(),
                kind,
            },
            rules,
        )?;
        let event = match cmd.clone() {
            CoordinationCommand::SignFor { assignment, on } => CoordinationEvent::SignedFor {
                assignment_id: assignment,
                on,
            },
            CoordinationCommand::RequestAdjustment {
                assignment,
                reason,
                suggested_agency,
                on,
            } => CoordinationEvent::AdjustmentRequested {
                assignment_id: assignment,
                reason,
                suggested_agency,
                on,
            },
            CoordinationCommand::DecideAdjustment {
                assignment,
                choice,
                on,
            } => CoordinationEvent::AdjustmentDecided {
                assignment_id: assignment,
                choice,
                on,
            },
            // The guards complete these (the opinion's flag, the convener, trimmed text): the
            // event carries what the suggestion will record.
            CoordinationCommand::SubmitOpinion { opinion } => {
                let recorded = effects.iter().find_map(|e| match e {
                    SuggestionEvent::OpinionSubmitted(r) => Some(r.opinion.clone()),
                    _ => None,
                });
                CoordinationEvent::OpinionSubmitted {
                    opinion: recorded.unwrap_or(opinion),
                }
            }
            CoordinationCommand::RecordConsultation { consultation } => {
                let recorded = effects.iter().find_map(|e| match e {
                    SuggestionEvent::ConsultationRecorded(r) => Some(r.consultation.clone()),
                    _ => None,
                });
                CoordinationEvent::ConsultationRecorded {
                    consultation: recorded.unwrap_or(consultation),
                }
            }
            CoordinationCommand::AcknowledgeOpinion { opinion, on } => {
                CoordinationEvent::OpinionAcknowledged {
                    opinion_id: opinion,
                    on,
                }
            }
            CoordinationCommand::WaiveOpinion {
                assignment,
                reason,
                on,
            } => CoordinationEvent::OpinionWaived {
                assignment_id: assignment,
                reason,
                on,
            },
            _ => unreachable_mirror(name)?,
        };
        return Ok(Decision {
            events: vec![event],
            effects,
        });
    }
    let forbidden = |reason: &str| DomainError::Forbidden {
        command: name,
        role: actor.role.to_string(),
        reason: reason.to_owned(),
    };
    let invalid = |field: &'static str, reason: &str| DomainError::Invalid {
        command: name,
        field,
        reason: reason.to_owned(),
    };
    let own_unit = |roles: &[UnitRole]| {
        suggestion
            .active_assignments()
            .find(|a| Some(a.agency) == actor.agency && roles.contains(&a.role))
    };
    let events = match cmd {
        CoordinationCommand::Countersign { reply, signer, on } => {
            let r = suggestion
                .replies
                .iter()
                .find(|r| r.id == *reply)
                .ok_or_else(|| DomainError::NotFound {
                    command: name,
                    what: "reply",
                    id: reply.to_string(),
                })?;
            if r.reply_type != ReplyType::Joint {
                return Err(invalid(
                    "reply",
                    "is not a joint reply; only a joint reply is countersigned by the co-units",
                ));
            }
            let unit = own_unit(&[UnitRole::Co])
                .filter(|_| actor.role.is_agency_role() && actor.role != Role::Handler)
                .ok_or_else(|| {
                    forbidden(
                        "only a co-handling unit's admin or leader countersigns a joint reply",
                    )
                })?;
            if case
                .countersignatures
                .iter()
                .any(|c| c.reply_id == *reply && c.agency == unit.agency)
            {
                return Err(invalid("reply", "is countersigned by this unit already"));
            }
            if signer.name.trim().is_empty() {
                return Err(invalid("signer", "must be named"));
            }
            vec![CoordinationEvent::ReplyCountersigned {
                countersignature: Countersignature {
                    reply_id: *reply,
                    assignment_id: unit.id,
                    agency: unit.agency,
                    signer: signer.clone(),
                    on: *on,
                },
            }]
        }
        CoordinationCommand::RecordDisagreement {
            id,
            assignment,
            statement,
            escalate,
            on,
        } => {
            let a = suggestion
                .assignment(*assignment)
                .filter(|a| a.is_active())
                .ok_or_else(|| DomainError::NotFound {
                    command: name,
                    what: "assignment",
                    id: assignment.to_string(),
                })?;
            if Some(a.agency) != actor.agency || !actor.role.is_agency_role() {
                return Err(forbidden(
                    "a disagreement is recorded by the unit that holds the assignment",
                ));
            }
            if suggestion.state.is_terminal() || suggestion.state == SuggestionState::Closed {
                return Err(DomainError::WrongState {
                    command: name,
                    entity: "suggestion",
                    state: suggestion.state.as_str().to_owned(),
                    hint: String::new(),
                });
            }
            if statement.trim().is_empty() {
                return Err(invalid("statement", "is required"));
            }
            if case.disagreements.iter().any(|d| d.id == *id) {
                return Err(invalid("id", "exists already"));
            }
            let mut out = vec![CoordinationEvent::DisagreementRecorded {
                disagreement: Disagreement {
                    id: *id,
                    assignment_id: a.id,
                    agency: a.agency,
                    statement: statement.clone(),
                    escalated_on: None,
                    resolution: None,
                    resolved_on: None,
                    on: *on,
                },
            }];
            if *escalate {
                out.push(CoordinationEvent::DisagreementEscalated { id: *id, on: *on });
            }
            out
        }
        CoordinationCommand::EscalateDisagreement { id, on } => {
            let d = find_disagreement(case, *id, name)?;
            if Some(d.agency) != actor.agency && actor.role != Role::AssigningOffice {
                return Err(forbidden(
                    "the unit that recorded it, or the assigning office, escalates a disagreement",
                ));
            }
            if d.escalated_on.is_some() || d.resolved_on.is_some() {
                return Err(DomainError::WrongState {
                    command: name,
                    entity: "disagreement",
                    state: if d.resolved_on.is_some() {
                        "resolved".into()
                    } else {
                        "escalated".into()
                    },
                    hint: String::new(),
                });
            }
            vec![CoordinationEvent::DisagreementEscalated { id: *id, on: *on }]
        }
        CoordinationCommand::ResolveDisagreement { id, resolution, on } => {
            let d = find_disagreement(case, *id, name)?;
            if actor.role != Role::AssigningOffice {
                return Err(forbidden("the assigning office decides a disagreement"));
            }
            if d.resolved_on.is_some() {
                return Err(DomainError::WrongState {
                    command: name,
                    entity: "disagreement",
                    state: "resolved".into(),
                    hint: String::new(),
                });
            }
            if resolution.trim().is_empty() {
                return Err(invalid("resolution", "is required"));
            }
            vec![CoordinationEvent::DisagreementResolved {
                id: *id,
                resolution: resolution.clone(),
                on: *on,
            }]
        }
        _ => unreachable_mirror(name)?,
    };
    Ok(Decision {
        events,
        effects: Vec::new(),
    })
}

fn unreachable_mirror<T>(name: &'static str) -> Result<T, DomainError> {
    Err(DomainError::Invalid {
        command: name,
        field: "command",
        reason: "is not handled here".into(),
    })
}

fn find_disagreement<'a>(
    case: &'a CoordinationCase,
    id: DisagreementId,
    name: &'static str,
) -> Result<&'a Disagreement, DomainError> {
    case.disagreements
        .iter()
        .find(|d| d.id == id)
        .ok_or_else(|| DomainError::NotFound {
            command: name,
            what: "disagreement",
            id: id.to_string(),
        })
}

/// The agencies whose feed (事件订阅) holds an event of a suggestion: those with a live
/// assignment before or after it. An agency assigned by the event gets it; an agency whose
/// assignment it supersedes gets it too (and nothing after); the others never see it.
pub fn feed_parties(before: Option<&Suggestion>, after: &Suggestion) -> Vec<AgencyId> {
    let mut out: Vec<AgencyId> = before
        .into_iter()
        .flat_map(|s| s.active_assignments())
        .chain(after.active_assignments())
        .map(|a| a.agency)
        .collect();
    out.sort();
    out.dedup();
    out
}

/// The copies owed when the suggestions service records `event`: a reply by the lead unit goes
/// to every active co-handler not copied yet.
pub fn copies_for(
    suggestion: &Suggestion,
    case: &CoordinationCase,
    event: &SuggestionEvent,
) -> Vec<CoordinationEvent> {
    let SuggestionEvent::ReplyIssued(issued) = event else {
        return Vec::new();
    };
    let reply = &issued.reply;
    let by_lead = suggestion
        .assignment(reply.assignment_id)
        .is_some_and(|a| a.role == UnitRole::Lead);
    if !by_lead {
        return Vec::new();
    }
    suggestion
        .active_assignments()
        .filter(|a| a.role == UnitRole::Co && a.state != AssignmentState::Superseded)
        .filter(|a| {
            !case
                .copies
                .iter()
                .any(|c| c.reply_id == reply.id && c.assignment_id == a.id)
        })
        .map(|a| CoordinationEvent::ReplyCopied {
            copy: ReplyCopy {
                reply_id: reply.id,
                assignment_id: a.id,
                agency: a.agency,
                on: reply.on,
            },
        })
        .collect()
}
