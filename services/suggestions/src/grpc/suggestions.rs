//! `banli.suggestions.v1.SuggestionService`: sessions, deputies, and every suggestion command.

use super::*;

#[tonic::async_trait]
impl SuggestionService for Grpc {
    async fn create_session(
        &self,
        req: Request<pb::CreateSessionRequest>,
    ) -> Result<Response<pb::Session>, Status> {
        let p = self.caller(&req).await?;
        let once = once_of(&req)?.or_field(&req.get_ref().idempotency_key);
        let s = req
            .into_inner()
            .session
            .ok_or_else(|| AppError::malformed("session is required"))?;
        let body = match s.body.as_str() {
            "npc" => Body::Npc,
            "cppcc" => Body::Cppcc,
            other => {
                return Err(
                    AppError::malformed(format!("body `{other}` is not npc or cppcc")).into(),
                );
            }
        };
        let r = dto::CreateSession {
            body,
            term: s.term,
            number: s.number,
            name: s.name,
            opens_on: date("opens_on", &s.opens_on)?,
            closes_on: date("closes_on", &s.closes_on)?,
        };
        let app = self.app.clone();
        let v: dto::SessionView = self
            .once(&p, once, 201, || async { app.create_session(&p, r).await })
            .await?;
        Ok(Response::new(session(&v)))
    }

    async fn list_sessions(
        &self,
        req: Request<pb::ListSessionsRequest>,
    ) -> Result<Response<pb::ListSessionsResponse>, Status> {
        let p = self.caller(&req).await?;
        let sessions = self
            .app
            .list_sessions(&p)
            .await?
            .iter()
            .map(session)
            .collect();
        Ok(Response::new(pb::ListSessionsResponse {
            sessions,
            next_page_token: String::new(),
        }))
    }

    async fn create_deputy(
        &self,
        req: Request<pb::CreateDeputyRequest>,
    ) -> Result<Response<pb::Deputy>, Status> {
        let p = self.caller(&req).await?;
        let once = once_of(&req)?.or_field(&req.get_ref().idempotency_key);
        let d = req
            .into_inner()
            .deputy
            .ok_or_else(|| AppError::malformed("deputy is required"))?;
        let app = self.app.clone();
        let v: dto::DeputyView = self
            .once(&p, once, 201, || async {
                app.create_deputy(
                    &p,
                    dto::CreateDeputy {
                        name: d.name,
                        delegation: d.delegation,
                        contact: d.contact,
                    },
                )
                .await
            })
            .await?;
        Ok(Response::new(pb::Deputy {
            id: v.id.to_string(),
            name: v.name,
            delegation: v.delegation,
            contact: v.contact,
        }))
    }

    async fn get_deputy(
        &self,
        req: Request<pb::GetDeputyRequest>,
    ) -> Result<Response<pb::Deputy>, Status> {
        let p = self.caller(&req).await?;
        let v = self
            .app
            .get_deputy(&p, uuid("id", &req.get_ref().id)?)
            .await?;
        Ok(Response::new(pb::Deputy {
            id: v.id.to_string(),
            name: v.name,
            delegation: v.delegation,
            contact: v.contact,
        }))
    }

    async fn submit_suggestion(
        &self,
        req: Request<pb::SubmitSuggestionRequest>,
    ) -> Result<Response<pb::Suggestion>, Status> {
        let p = self.caller(&req).await?;
        let once = once_of(&req)?;
        let r = req.into_inner();
        let co_signer_ids = r
            .co_signer_ids
            .iter()
            .map(|s| uuid("co_signer_ids", s))
            .collect::<Result<Vec<_>, _>>()?;
        let body = dto::SubmitSuggestion {
            session_id: uuid("session_id", &r.session_id)?,
            number: r.number,
            title: r.title,
            body: r.body,
            category: r.category,
            kind: Some(if r.recess_item {
                ItemKind::Recess
            } else {
                ItemKind::Session
            }),
            lead_deputy_id: uuid("lead_deputy_id", &r.lead_deputy_id)?,
            co_signer_ids,
            key_supervised: r.key_supervised,
            priority: Priority::Normal,
            confidential: r.confidential,
            disclosure: Disclosure::Full,
            received_on: None,
        };
        let once = once.or_field(&r.idempotency_key);
        let app = self.app.clone();
        let v: SuggestionView = self
            .once(&p, once, 201, || async { app.submit(&p, body).await })
            .await?;
        Ok(Response::new(suggestion(&v)))
    }

    async fn start_review(
        &self,
        req: Request<pb::StartReviewRequest>,
    ) -> Result<Response<pb::Suggestion>, Status> {
        let p = self.caller(&req).await?;
        let once = once_of(&req)?;
        let r = req.into_inner();
        self.command(
            &p,
            once,
            &r.suggestion_id,
            r.expected_version,
            |_, today| Ok(CommandKind::StartReview { on: today }),
        )
        .await
    }

    async fn review_suggestion(
        &self,
        req: Request<pb::ReviewSuggestionRequest>,
    ) -> Result<Response<pb::Suggestion>, Status> {
        let p = self.caller(&req).await?;
        let once = once_of(&req)?;
        let r = req.into_inner();
        let decision = match pb::review_suggestion_request::Decision::try_from(r.decision) {
            Ok(pb::review_suggestion_request::Decision::Accept) => ReviewDecision::Accept,
            Ok(pb::review_suggestion_request::Decision::NotAccept) => ReviewDecision::NotAccept,
            Ok(pb::review_suggestion_request::Decision::ConvertToLetter) => {
                ReviewDecision::ConvertToLetter
            }
            _ => return Err(AppError::malformed("decision is required").into()),
        };
        self.command(
            &p,
            once,
            &r.suggestion_id,
            r.expected_version,
            |_, today| {
                Ok(CommandKind::Review {
                    decision,
                    reason: r.reason,
                    on: today,
                })
            },
        )
        .await
    }

    async fn withdraw_suggestion(
        &self,
        req: Request<pb::WithdrawSuggestionRequest>,
    ) -> Result<Response<pb::Suggestion>, Status> {
        let p = self.caller(&req).await?;
        let once = once_of(&req)?;
        let r = req.into_inner();
        self.command(
            &p,
            once,
            &r.suggestion_id,
            r.expected_version,
            |_, today| {
                Ok(CommandKind::Withdraw {
                    reason: r.reason,
                    on: today,
                })
            },
        )
        .await
    }

    async fn assign_suggestion(
        &self,
        req: Request<pb::AssignSuggestionRequest>,
    ) -> Result<Response<pb::Suggestion>, Status> {
        let p = self.caller(&req).await?;
        let once = once_of(&req)?;
        let r = req.into_inner();
        let once = once.or_field(&r.idempotency_key);
        let units = r
            .units
            .iter()
            .map(|u| {
                Ok(UnitAssignment {
                    assignment_id: AssignmentId::new(),
                    agency: AgencyId(uuid("agency_id", &u.agency_id)?),
                    role: role(u.role)?,
                })
            })
            .collect::<Result<Vec<_>, AppError>>()?;
        self.command(
            &p,
            once,
            &r.suggestion_id,
            r.expected_version,
            |_, today| Ok(CommandKind::Assign { units, on: today }),
        )
        .await
    }

    async fn dispatch(
        &self,
        req: Request<pb::DispatchRequest>,
    ) -> Result<Response<pb::Suggestion>, Status> {
        let p = self.caller(&req).await?;
        let once = once_of(&req)?;
        let r = req.into_inner();
        let assignment = AssignmentId(uuid("assignment_id", &r.assignment_id)?);
        let division = DivisionId(uuid("division_id", &r.division_id)?);
        let unit_divisions = self
            .app
            .unit_divisions(&p, uuid("suggestion_id", &r.suggestion_id)?, assignment.0)
            .await?;
        self.command(
            &p,
            once,
            &r.suggestion_id,
            r.expected_version,
            |_, today| {
                Ok(CommandKind::Dispatch {
                    assignment,
                    division,
                    handler: r.handler,
                    responsible_leader: r.responsible_leader,
                    leading_official: (!r.leading_official.is_empty())
                        .then_some(r.leading_official),
                    plan: r.plan,
                    unit_divisions,
                    on: today,
                })
            },
        )
        .await
    }

    async fn record_communication(
        &self,
        req: Request<pb::RecordCommunicationRequest>,
    ) -> Result<Response<pb::Suggestion>, Status> {
        let p = self.caller(&req).await?;
        let once = once_of(&req)?;
        let r = req.into_inner();
        let once = once.or_field(&r.idempotency_key);
        let parse = |field: &str, v: &str| -> Result<serde_json::Value, AppError> {
            if v.is_empty() {
                return Err(AppError::malformed(format!("{field} is required")));
            }
            Ok(serde_json::Value::String(v.to_owned()))
        };
        let phase: CommunicationPhase = serde_json::from_value(parse("phase", &r.phase)?)
            .map_err(|_| AppError::malformed("phase must be before, during, after or recess"))?;
        let method: CommunicationMethod = serde_json::from_value(parse("method", &r.method)?)
            .map_err(|_| AppError::malformed("unknown communication method"))?;
        let deputies = r
            .deputy_ids
            .iter()
            .map(|d| uuid("deputy_ids", d).map(DeputyId))
            .collect::<Result<Vec<_>, _>>()?;
        let assignment_id = AssignmentId(uuid("assignment_id", &r.assignment_id)?);
        let on = opt_date("on", &r.on)?;
        self.command(
            &p,
            once,
            &r.suggestion_id,
            r.expected_version,
            |_, today| {
                Ok(CommandKind::RecordCommunication {
                    communication: Communication {
                        id: CommunicationId::new(),
                        assignment_id,
                        phase,
                        method,
                        face_to_face: r.face_to_face,
                        deputies,
                        participants: r.participants,
                        summary: r.summary,
                        on: on.unwrap_or(today),
                    },
                })
            },
        )
        .await
    }

    async fn request_extension(
        &self,
        req: Request<pb::RequestExtensionRequest>,
    ) -> Result<Response<pb::Suggestion>, Status> {
        let p = self.caller(&req).await?;
        let once = once_of(&req)?;
        let r = req.into_inner();
        let assignment = AssignmentId(uuid("assignment_id", &r.assignment_id)?);
        let new_due = date("new_due", &r.new_due)?;
        self.command(
            &p,
            once,
            &r.suggestion_id,
            r.expected_version,
            |_, today| {
                Ok(CommandKind::RequestExtension {
                    assignment,
                    new_due,
                    reason: r.reason,
                    on: today,
                })
            },
        )
        .await
    }

    async fn decide_extension(
        &self,
        req: Request<pb::DecideExtensionRequest>,
    ) -> Result<Response<pb::Suggestion>, Status> {
        let p = self.caller(&req).await?;
        let once = once_of(&req)?;
        let r = req.into_inner();
        let assignment = AssignmentId(uuid("assignment_id", &r.assignment_id)?);
        self.command(
            &p,
            once,
            &r.suggestion_id,
            r.expected_version,
            |_, today| {
                Ok(CommandKind::DecideExtension {
                    assignment,
                    approve: r.approve,
                    on: today,
                })
            },
        )
        .await
    }

    async fn issue_reply(
        &self,
        req: Request<pb::IssueReplyRequest>,
    ) -> Result<Response<pb::Suggestion>, Status> {
        let p = self.caller(&req).await?;
        let once = once_of(&req)?;
        let r = req.into_inner();
        let once = once.or_field(&r.idempotency_key);
        let assignment_id = AssignmentId(uuid("assignment_id", &r.assignment_id)?);
        let class = class(r.class)?;
        let signer = signer(r.signer)?;
        let references = r
            .opinion_ids
            .iter()
            .map(|o| uuid("opinion_ids", o).map(OpinionId))
            .collect::<Result<Vec<_>, _>>()?;
        let countersigned_by = r
            .countersigned_by
            .iter()
            .map(|a| uuid("countersigned_by", a).map(AgencyId))
            .collect::<Result<Vec<_>, _>>()?;
        let commitments = r
            .commitments
            .iter()
            .map(|c| {
                Ok(CommitmentDraft {
                    id: CommitmentId::new(),
                    measure: c.measure.clone(),
                    division: opt_uuid("division_id", &c.division_id)?.map(DivisionId),
                    target_date: date("target_date", &c.target_date)?,
                })
            })
            .collect::<Result<Vec<_>, AppError>>()?;
        let reply_type = match pc::ReplyType::try_from(r.reply_type) {
            Ok(pc::ReplyType::Initial) => Some(ReplyType::Initial),
            Ok(pc::ReplyType::ReHandled) => Some(ReplyType::ReHandled),
            Ok(pc::ReplyType::Supplementary) => Some(ReplyType::Supplementary),
            Ok(pc::ReplyType::Joint) => Some(ReplyType::Joint),
            _ => None,
        };
        self.command(
            &p,
            once,
            &r.suggestion_id,
            r.expected_version,
            |s, today| {
                let reply_type = reply_type.unwrap_or(match s.state {
                    SuggestionState::ReHandling => ReplyType::ReHandled,
                    SuggestionState::InFollowUp => ReplyType::Supplementary,
                    _ => ReplyType::Initial,
                });
                Ok(CommandKind::IssueReply {
                    reply: Reply {
                        id: ReplyId::new(),
                        assignment_id,
                        reply_type,
                        document_number: r.document_number,
                        body: r.body,
                        class,
                        signer,
                        references,
                        countersigned_by,
                        round: 0,
                        on: today,
                    },
                    commitments,
                    explanation: (!r.explanation.is_empty()).then_some(r.explanation),
                })
            },
        )
        .await
    }

    async fn report_progress(
        &self,
        req: Request<pb::ReportProgressRequest>,
    ) -> Result<Response<pb::Suggestion>, Status> {
        let p = self.caller(&req).await?;
        let once = once_of(&req)?;
        let r = req.into_inner();
        let commitment = CommitmentId(uuid("commitment_id", &r.commitment_id)?);
        self.command(
            &p,
            once,
            &r.suggestion_id,
            r.expected_version,
            |_, today| {
                Ok(CommandKind::ReportProgress {
                    commitment,
                    note: r.note,
                    on: today,
                })
            },
        )
        .await
    }

    async fn convert_commitment(
        &self,
        req: Request<pb::ConvertCommitmentRequest>,
    ) -> Result<Response<pb::Suggestion>, Status> {
        let p = self.caller(&req).await?;
        let once = once_of(&req)?;
        let r = req.into_inner();
        let commitment = CommitmentId(uuid("commitment_id", &r.commitment_id)?);
        self.command(
            &p,
            once,
            &r.suggestion_id,
            r.expected_version,
            |_, today| {
                Ok(CommandKind::ConvertCommitment {
                    commitment,
                    evidence: r.evidence,
                    on: today,
                })
            },
        )
        .await
    }

    async fn change_class(
        &self,
        req: Request<pb::ChangeClassRequest>,
    ) -> Result<Response<pb::Suggestion>, Status> {
        let p = self.caller(&req).await?;
        let once = once_of(&req)?;
        let r = req.into_inner();
        let to = class(r.to)?;
        self.command(
            &p,
            once,
            &r.suggestion_id,
            r.expected_version,
            |_, today| {
                Ok(CommandKind::ChangeClass {
                    to,
                    reason: r.reason,
                    on: today,
                })
            },
        )
        .await
    }

    async fn record_feedback(
        &self,
        req: Request<pb::RecordFeedbackRequest>,
    ) -> Result<Response<pb::Suggestion>, Status> {
        let p = self.caller(&req).await?;
        let once = once_of(&req)?;
        let r = req.into_inner();
        let deputy = opt_uuid("deputy_id", &r.deputy_id)?
            .map(DeputyId)
            .or(p.deputy)
            .ok_or_else(|| AppError::invalid("deputy_id is required"))?;
        let level =
            satisfaction(r.level)?.ok_or_else(|| AppError::malformed("level is required"))?;
        let (handling, result) = (satisfaction(r.handling)?, satisfaction(r.result)?);
        self.command(
            &p,
            once,
            &r.suggestion_id,
            r.expected_version,
            |_, today| {
                Ok(CommandKind::RecordFeedback {
                    feedback: Feedback {
                        deputy,
                        level,
                        handling,
                        result,
                        comment: r.comment,
                        round: 0,
                        on: today,
                    },
                })
            },
        )
        .await
    }

    async fn close_feedback_window(
        &self,
        req: Request<pb::CloseFeedbackWindowRequest>,
    ) -> Result<Response<pb::Suggestion>, Status> {
        let p = self.caller(&req).await?;
        let once = once_of(&req)?;
        let r = req.into_inner();
        self.command(
            &p,
            once,
            &r.suggestion_id,
            r.expected_version,
            |_, today| Ok(CommandKind::CloseFeedbackWindow { on: today }),
        )
        .await
    }

    async fn resolve_escalation(
        &self,
        req: Request<pb::ResolveEscalationRequest>,
    ) -> Result<Response<pb::Suggestion>, Status> {
        let p = self.caller(&req).await?;
        let once = once_of(&req)?;
        let r = req.into_inner();
        self.command(
            &p,
            once,
            &r.suggestion_id,
            r.expected_version,
            |_, today| {
                Ok(CommandKind::ResolveEscalation {
                    outcome: r.outcome,
                    on: today,
                })
            },
        )
        .await
    }

    async fn get_suggestion(
        &self,
        req: Request<pb::GetSuggestionRequest>,
    ) -> Result<Response<pb::Suggestion>, Status> {
        let p = self.caller(&req).await?;
        let v = self.app.get(&p, uuid("id", &req.get_ref().id)?).await?;
        Ok(Response::new(suggestion(&v)))
    }

    async fn list_suggestions(
        &self,
        req: Request<pb::ListSuggestionsRequest>,
    ) -> Result<Response<pb::ListSuggestionsResponse>, Status> {
        let p = self.caller(&req).await?;
        let r = req.into_inner();
        let page = r.page.unwrap_or_default();
        if page.page_size > crate::app::MAX_PAGE {
            return Err(AppError::malformed("page_size must be at most 200").into());
        }
        let filter = ListFilter {
            session_id: opt_uuid("session_id", &r.session_id)?.map(SessionId),
            state: (!r.state.is_empty()).then_some(r.state),
            agency_id: opt_uuid("agency_id", &r.agency_id)?.map(AgencyId),
            role: if r.role == 0 {
                None
            } else {
                Some(role(r.role)?)
            },
            overdue_on: r.overdue_only.then(|| self.app.today()),
            key_only: r.key_only,
            after: None,
            limit: page.page_size,
            ..Default::default()
        };
        let result = self
            .app
            .list(
                &p,
                filter,
                (!page.page_token.is_empty()).then_some(page.page_token.as_str()),
            )
            .await?;
        let mut suggestions = Vec::with_capacity(result.items.len());
        for item in &result.items {
            suggestions.push(suggestion(&self.app.get(&p, item.id).await?));
        }
        Ok(Response::new(pb::ListSuggestionsResponse {
            suggestions,
            next_page_token: result.next_page_token.unwrap_or_default(),
        }))
    }
}
