//! `banli.suggestions.v1.SuggestionService`: sessions, deputies, and every suggestion command.

use super::*;

#[tonic::async_trait]
impl SuggestionService for Grpc {
    async fn create_session(
        &self,
        req: Request<pb::CreateSessionRequest>,
    ) -> Result<Response<pb::Session>, Status> {
        let p = self.caller(&req).await?;
        let once = once_of(&req)?.or_field(Some(req.get_ref().idempotency_key.clone()));
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
        let once = once_of(&req)?.or_field(Some(req.get_ref().idempotency_key.clone()));
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

    async fn list_deputies(
        &self,
        req: Request<pb::ListDeputiesRequest>,
    ) -> Result<Response<pb::ListDeputiesResponse>, Status> {
        let p = self.caller(&req).await?;
        let deputies = self
            .app
            .list_deputies(&p)
            .await?
            .into_iter()
            .map(|v| pb::Deputy {
                id: v.id.to_string(),
                name: v.name,
                delegation: v.delegation,
                contact: v.contact,
            })
            .collect();
        Ok(Response::new(pb::ListDeputiesResponse { deputies }))
    }

    async fn submit_suggestion(
        &self,
        req: Request<pb::SubmitSuggestionRequest>,
    ) -> Result<Response<pb::Suggestion>, Status> {
        let p = self.caller(&req).await?;
        let once = once_of(&req)?;
        let r = req.into_inner();
        let once = once.or_field(Some(r.idempotency_key.clone()));
        let body = dto::SubmitSuggestion::try_from(r)?;
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
        self.command(req).await
    }

    async fn review_suggestion(
        &self,
        req: Request<pb::ReviewSuggestionRequest>,
    ) -> Result<Response<pb::Suggestion>, Status> {
        self.command(req).await
    }

    async fn withdraw_suggestion(
        &self,
        req: Request<pb::WithdrawSuggestionRequest>,
    ) -> Result<Response<pb::Suggestion>, Status> {
        self.command(req).await
    }

    async fn assign_suggestion(
        &self,
        req: Request<pb::AssignSuggestionRequest>,
    ) -> Result<Response<pb::Suggestion>, Status> {
        self.command(req).await
    }

    async fn dispatch(
        &self,
        req: Request<pb::DispatchRequest>,
    ) -> Result<Response<pb::Suggestion>, Status> {
        self.command(req).await
    }

    async fn record_communication(
        &self,
        req: Request<pb::RecordCommunicationRequest>,
    ) -> Result<Response<pb::Suggestion>, Status> {
        self.command(req).await
    }

    async fn request_extension(
        &self,
        req: Request<pb::RequestExtensionRequest>,
    ) -> Result<Response<pb::Suggestion>, Status> {
        self.command(req).await
    }

    async fn decide_extension(
        &self,
        req: Request<pb::DecideExtensionRequest>,
    ) -> Result<Response<pb::Suggestion>, Status> {
        self.command(req).await
    }

    async fn issue_reply(
        &self,
        req: Request<pb::IssueReplyRequest>,
    ) -> Result<Response<pb::Suggestion>, Status> {
        self.command(req).await
    }

    async fn report_progress(
        &self,
        req: Request<pb::ReportProgressRequest>,
    ) -> Result<Response<pb::Suggestion>, Status> {
        self.command(req).await
    }

    async fn convert_commitment(
        &self,
        req: Request<pb::ConvertCommitmentRequest>,
    ) -> Result<Response<pb::Suggestion>, Status> {
        self.command(req).await
    }

    async fn decide_closure(
        &self,
        req: Request<pb::DecideClosureRequest>,
    ) -> Result<Response<pb::Suggestion>, Status> {
        self.command(req).await
    }

    async fn rate_closure(
        &self,
        req: Request<pb::RateClosureRequest>,
    ) -> Result<Response<pb::Suggestion>, Status> {
        self.command(req).await
    }

    async fn review_reply(
        &self,
        req: Request<pb::ReviewReplyRequest>,
    ) -> Result<Response<pb::Suggestion>, Status> {
        self.command(req).await
    }

    async fn publish_reply(
        &self,
        req: Request<pb::PublishReplyRequest>,
    ) -> Result<Response<pb::Suggestion>, Status> {
        self.command(req).await
    }

    async fn withdraw_publication(
        &self,
        req: Request<pb::WithdrawPublicationRequest>,
    ) -> Result<Response<pb::Suggestion>, Status> {
        self.command(req).await
    }

    async fn decide_approval_step(
        &self,
        req: Request<pb::DecideApprovalStepRequest>,
    ) -> Result<Response<pb::Suggestion>, Status> {
        self.command(req).await
    }

    async fn get_approval_chain(
        &self,
        req: Request<pb::GetApprovalChainRequest>,
    ) -> Result<Response<pb::ApprovalChain>, Status> {
        let p = self.caller(&req).await?;
        let agency = uuid("agency_id", &req.get_ref().agency_id)?;
        let v = self.app.approval_chain(&p, agency).await?;
        Ok(Response::new(approval_chain(&v)?))
    }

    async fn set_approval_chain(
        &self,
        req: Request<pb::SetApprovalChainRequest>,
    ) -> Result<Response<pb::ApprovalChain>, Status> {
        let p = self.caller(&req).await?;
        let r = req.into_inner();
        let agency = uuid("agency_id", &r.agency_id)?;
        let steps = r
            .steps
            .iter()
            .map(|v| banli_api::grpc::position("steps", *v))
            .collect::<Result<Vec<_>, _>>()?;
        let body = dto::ApprovalChainBody {
            steps,
            key_items_add_head: !r.key_items_without_head,
        };
        let v = self.app.set_approval_chain(&p, agency, body).await?;
        Ok(Response::new(approval_chain(&v)?))
    }

    async fn change_class(
        &self,
        req: Request<pb::ChangeClassRequest>,
    ) -> Result<Response<pb::Suggestion>, Status> {
        self.command(req).await
    }

    async fn record_feedback(
        &self,
        req: Request<pb::RecordFeedbackRequest>,
    ) -> Result<Response<pb::Suggestion>, Status> {
        self.command(req).await
    }

    async fn close_feedback_window(
        &self,
        req: Request<pb::CloseFeedbackWindowRequest>,
    ) -> Result<Response<pb::Suggestion>, Status> {
        self.command(req).await
    }

    async fn resolve_escalation(
        &self,
        req: Request<pb::ResolveEscalationRequest>,
    ) -> Result<Response<pb::Suggestion>, Status> {
        self.command(req).await
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
