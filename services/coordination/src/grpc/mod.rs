//! gRPC (`banli.coordination.v1`): the same application layer as REST. Every call needs the
//! `authorization: Bearer <key>` metadata.

use std::future::Future;

use banli_api::grpc::{opt_uuid, uuid};
use banli_api::{AppError, Principal};
use banli_proto::common::v1 as pc;
use banli_proto::coordination::v1 as pb;
use pb::coordination_service_server::{CoordinationService, CoordinationServiceServer};
use time::Date;
use tokio::net::TcpListener;
use tonic::service::RoutesBuilder;
use tonic::{Request, Response, Status};

mod commands;

use crate::app::{App, TaskQuery};
use crate::dto::{CaseView, Position, SignerView};

/// The full names of this service's gRPC services.
pub const NAMES: [&str; 2] = [
    "banli.coordination.v1.CoordinationService",
    "banli.coordination.v1.WebhookService",
];

/// Adds this service's gRPC service to `routes`.
pub fn add_services(app: App, body_limit: usize, routes: &mut RoutesBuilder) {
    routes.add_service(
        CoordinationServiceServer::new(Grpc { app: app.clone() })
            .max_decoding_message_size(body_limit),
    );
    routes.add_service(
        pb::webhook_service_server::WebhookServiceServer::new(Grpc { app })
            .max_decoding_message_size(body_limit),
    );
}

/// Serves this service alone on `listener` until `shutdown` completes.
pub async fn serve(
    app: App,
    body_limit: usize,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mut routes = RoutesBuilder::default();
    add_services(app.clone(), body_limit, &mut routes);
    let auth: banli_api::Authenticator = std::sync::Arc::new(move |token: String| {
        let app = app.clone();
        Box::pin(async move { app.authenticate(&token).await })
    });
    banli_api::grpc::serve(routes, &NAMES, listener, auth, shutdown).await
}

#[derive(Debug, Clone)]
pub struct Grpc {
    app: App,
}

fn date_text(d: Option<Date>) -> String {
    d.map(banli_calendar::format_date).unwrap_or_default()
}

fn feed_event(i: crate::feed::FeedItem) -> pb::FeedEvent {
    pb::FeedEvent {
        cursor: i.cursor,
        event_id: i.event_id,
        event_type: i.event_type,
        aggregate_type: i.aggregate_type,
        aggregate_id: i.aggregate_id,
        aggregate_version: i.aggregate_version,
        occurred_at: i.occurred_at,
        payload_json: i.payload.get().to_owned(),
    }
}

fn signer_out(s: &SignerView) -> pc::Signer {
    let position = match s.position {
        Position::PrincipalHead => pc::SignerPosition::PrincipalHead,
        Position::AuthorizedLeader => pc::SignerPosition::AuthorizedLeader,
        Position::DivisionHead => pc::SignerPosition::DivisionHead,
        Position::Staff => pc::SignerPosition::Staff,
    };
    pc::Signer {
        name: s.name.clone(),
        position: position as i32,
    }
}

fn case_out(v: &CaseView) -> pb::Case {
    pb::Case {
        suggestion_id: v.suggestion_id.to_string(),
        version: v.version,
        suggestion_version: v.suggestion_version,
        suggestion_state: v.suggestion_state.clone(),
        units: v
            .units
            .iter()
            .map(|u| pb::Unit {
                assignment_id: u.assignment_id.to_string(),
                agency_id: u.agency_id.to_string(),
                role: u.role.clone(),
                state: u.state.clone(),
                opinion: u.opinion.clone(),
                co_opinion_due: date_text(u.co_opinion_due),
                reply_due: date_text(u.reply_due),
            })
            .collect(),
        opinions: v
            .opinions
            .iter()
            .map(|o| pb::Opinion {
                id: o.id.to_string(),
                assignment_id: o.assignment_id.to_string(),
                document_number: o.document_number.clone(),
                body: o.body.clone(),
                signer: Some(signer_out(&o.signer)),
                on: date_text(Some(o.on)),
                acknowledged_on: date_text(o.acknowledged_on),
                measures: o
                    .measures
                    .iter()
                    .map(|m| pb::OpinionMeasure {
                        id: m.id.to_string(),
                        measure: m.measure.clone(),
                        responsible: m.responsible.clone(),
                        agency_id: m.agency_id.to_string(),
                        target_date: date_text(Some(m.target_date)),
                    })
                    .collect(),
                no_measure_reason: o.no_measure_reason.clone().unwrap_or_default(),
                consultation_ids: o.consultation_ids.iter().map(|c| c.to_string()).collect(),
                flagged: o.flagged,
            })
            .collect(),
        countersignatures: v
            .countersignatures
            .iter()
            .map(|c| pb::Countersignature {
                reply_id: c.reply_id.to_string(),
                assignment_id: c.assignment_id.to_string(),
                agency_id: c.agency_id.to_string(),
                signer: Some(signer_out(&c.signer)),
                on: date_text(Some(c.on)),
            })
            .collect(),
        disagreements: v
            .disagreements
            .iter()
            .map(|d| pb::Disagreement {
                id: d.id.to_string(),
                assignment_id: d.assignment_id.to_string(),
                agency_id: d.agency_id.to_string(),
                statement: d.statement.clone(),
                on: date_text(Some(d.on)),
                escalated_on: date_text(d.escalated_on),
                resolution: d.resolution.clone().unwrap_or_default(),
                resolved_on: date_text(d.resolved_on),
            })
            .collect(),
        reply_copies: v
            .reply_copies
            .iter()
            .map(|c| pb::ReplyCopy {
                reply_id: c.reply_id.to_string(),
                assignment_id: c.assignment_id.to_string(),
                agency_id: c.agency_id.to_string(),
                on: date_text(Some(c.on)),
                document_number: c.document_number.clone(),
                class: c.class.clone(),
                body: c.body.clone(),
            })
            .collect(),
        commands: v
            .commands
            .iter()
            .map(|c| pb::CommandStatus {
                event_id: c.event_id.to_string(),
                event_type: c.event_type.clone(),
                status: c.status.clone(),
                reason: c.reason.clone().unwrap_or_default(),
            })
            .collect(),
        consultations: v
            .consultations
            .iter()
            .map(|c| pb::Consultation {
                id: c.id.to_string(),
                convened_by: c.convened_by.to_string(),
                agency_ids: c.agency_ids.iter().map(|a| a.to_string()).collect(),
                deputy_ids: c.deputy_ids.iter().map(|d| d.to_string()).collect(),
                attendees: c.attendees.clone(),
                subject: c.subject.clone(),
                minutes: c.minutes.clone(),
                on: date_text(Some(c.on)),
            })
            .collect(),
    }
}

impl Grpc {
    async fn caller<T>(&self, req: &Request<T>) -> Result<Principal, Status> {
        let token = banli_api::grpc::bearer(req.metadata())?;
        let reference = banli_api::grpc::reference(req.metadata())?;
        Ok(self
            .app
            .authenticate(token)
            .await?
            .presented(banli_api::grpc::client_cert(req.extensions()))?
            .with_reference(reference))
    }

    /// A command: the request converted at the edge, then the application's one command path
    /// (idempotency, version, decide, commit) as for REST. A retry is recognised by its key and
    /// the command it carries (not the version or the key themselves).
    async fn command<T>(&self, req: Request<T>) -> Result<Response<pb::Case>, Status>
    where
        commands::Addressed: TryFrom<T, Error = AppError>,
    {
        let p = self.caller(&req).await?;
        let meta = banli_api::grpc::idempotency_key(req.metadata())?;
        let a = commands::Addressed::try_from(req.into_inner())?;
        let once = banli_api::Once {
            key: meta,
            hash: banli_api::grpc::request_hash(&format!("{:?}", a.command)),
        }
        .or_field(a.idempotency_key);
        let (_, body) = self
            .app
            .command(&p, a.expected_version, once, a.command)
            .await?;
        let view: CaseView = serde_json::from_str(&body).map_err(|e| AppError::internal(&e))?;
        Ok(Response::new(case_out(&view)))
    }
}

#[tonic::async_trait]
impl CoordinationService for Grpc {
    async fn get_case(
        &self,
        req: Request<pb::GetCaseRequest>,
    ) -> Result<Response<pb::Case>, Status> {
        let p = self.caller(&req).await?;
        let id = uuid("suggestion_id", &req.get_ref().suggestion_id)?;
        Ok(Response::new(case_out(&self.app.case(&p, id).await?)))
    }

    async fn list_feed(
        &self,
        req: Request<pb::ListFeedRequest>,
    ) -> Result<Response<pb::ListFeedResponse>, Status> {
        let p = self.caller(&req).await?;
        let r = req.into_inner();
        let page = self
            .app
            .feed(
                &p,
                opt_uuid("agency_id", &r.agency_id)?,
                Some(&r.after),
                (r.limit > 0).then_some(r.limit),
            )
            .await?;
        Ok(Response::new(pb::ListFeedResponse {
            events: page.items.into_iter().map(feed_event).collect(),
            next_cursor: page.next_cursor,
        }))
    }

    type WatchStream = crate::streams::Guarded<
        tokio_stream::wrappers::ReceiverStream<Result<pb::FeedEvent, Status>>,
    >;

    async fn watch(
        &self,
        req: Request<pb::WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let p = self.caller(&req).await?;
        let token = banli_api::grpc::bearer(req.metadata())?.to_owned();
        let r = req.into_inner();
        let agency = crate::feed::feed_of(&p, opt_uuid("agency_id", &r.agency_id)?)?;
        let mut cursor = self.app.feed_cursor(agency, Some(&r.after)).await?;
        let permit = self.app.stream_limits().acquire(p.key_id)?;
        // The key is authenticated again every second: revoked, the stream ends.
        let (mut end_tx, end_rx) = tokio::sync::oneshot::channel::<Status>();
        let app = self.app.clone();
        let key_id = p.key_id;
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = tokio::time::sleep(crate::streams::RECHECK) => {}
                    () = end_tx.closed() => return,
                }
                match app.authenticate(&token).await {
                    Err(e) if e.code == banli_api::ErrorCode::Unauthenticated => {
                        tracing::info!(key_id = %key_id, "a Watch stream's key was revoked; the stream ends");
                        let _ = end_tx.send(Status::unauthenticated(
                            "this stream's API key was revoked; it ends — use a valid key",
                        ));
                        return;
                    }
                    // A passing failure to check (the key store unreachable) keeps the stream:
                    // it is checked again in a second.
                    _ => {}
                }
            }
        });
        let (tx, rx) = tokio::sync::mpsc::channel(256);
        let store = self.app.store().clone();
        let hide = crate::feed::hides_confidential(&p);
        let mut written = store.feed_watch();
        // One task per stream: a slow client fills its own channel and waits there, never the
        // consumer or the other streams.
        tokio::spawn(async move {
            loop {
                let rows = match store.feed(agency, cursor.seq, 500, hide).await {
                    Ok(rows) => rows,
                    Err(e) => {
                        tracing::error!(error = %e, agency = %agency, "a feed stream cannot read the feed; it ends");
                        let _ = tx
                            .send(Err(Status::unavailable(
                                "the feed cannot be read now; reconnect with your last cursor",
                            )))
                            .await;
                        return;
                    }
                };
                let full = rows.len() == 500;
                for row in rows {
                    let seq = row.seq;
                    let item = match row.item(agency) {
                        Ok(i) => i,
                        Err(e) => {
                            tracing::error!(error = %e, seq, "a feed row cannot be read; it is skipped");
                            cursor.seq = seq;
                            continue;
                        }
                    };
                    if tx.send(Ok(feed_event(item))).await.is_err() {
                        return;
                    }
                    cursor.seq = seq;
                }
                if full {
                    continue;
                }
                // Caught up: wait for a commit of feed rows, in this process or (on PostgreSQL)
                // in another one; nothing polls.
                tokio::select! {
                    () = written.wait() => {}
                    () = tx.closed() => return,
                }
            }
        });
        Ok(Response::new(crate::streams::Guarded::new(
            tokio_stream::wrappers::ReceiverStream::new(rx),
            end_rx,
            permit,
        )))
    }

    async fn list_tasks(
        &self,
        req: Request<pb::ListTasksRequest>,
    ) -> Result<Response<pb::ListTasksResponse>, Status> {
        let p = self.caller(&req).await?;
        let r = req.into_inner();
        let page = r.page.unwrap_or_default();
        let out = self
            .app
            .tasks(
                &p,
                TaskQuery {
                    agency_id: opt_uuid("agency_id", &r.agency_id)?,
                    role: commands::unit_role("role", r.role)?,
                    page_token: (!page.page_token.is_empty()).then_some(page.page_token),
                    limit: (page.page_size > 0).then_some(page.page_size),
                },
            )
            .await?;
        Ok(Response::new(pb::ListTasksResponse {
            tasks: out
                .tasks
                .iter()
                .map(|t| pb::Task {
                    assignment_id: t.assignment_id.to_string(),
                    suggestion_id: t.suggestion_id.to_string(),
                    agency_id: t.agency_id.to_string(),
                    role: t.role.clone(),
                    state: t.state.clone(),
                    opinion: t.opinion.clone(),
                    co_opinion_due: date_text(t.co_opinion_due),
                    reply_due: date_text(t.reply_due),
                    overdue: t.overdue,
                })
                .collect(),
            next_page_token: out.next_page_token.unwrap_or_default(),
        }))
    }

    async fn sign_for(
        &self,
        req: Request<pb::SignForRequest>,
    ) -> Result<Response<pb::Case>, Status> {
        self.command(req).await
    }

    async fn request_adjustment(
        &self,
        req: Request<pb::RequestAdjustmentRequest>,
    ) -> Result<Response<pb::Case>, Status> {
        self.command(req).await
    }

    async fn decide_adjustment(
        &self,
        req: Request<pb::DecideAdjustmentRequest>,
    ) -> Result<Response<pb::Case>, Status> {
        self.command(req).await
    }

    async fn submit_opinion(
        &self,
        req: Request<pb::SubmitOpinionRequest>,
    ) -> Result<Response<pb::Case>, Status> {
        self.command(req).await
    }

    async fn acknowledge_opinion(
        &self,
        req: Request<pb::AcknowledgeOpinionRequest>,
    ) -> Result<Response<pb::Case>, Status> {
        self.command(req).await
    }

    async fn waive_opinion(
        &self,
        req: Request<pb::WaiveOpinionRequest>,
    ) -> Result<Response<pb::Case>, Status> {
        self.command(req).await
    }

    async fn countersign(
        &self,
        req: Request<pb::CountersignRequest>,
    ) -> Result<Response<pb::Case>, Status> {
        self.command(req).await
    }

    async fn record_disagreement(
        &self,
        req: Request<pb::RecordDisagreementRequest>,
    ) -> Result<Response<pb::Case>, Status> {
        self.command(req).await
    }

    async fn escalate_disagreement(
        &self,
        req: Request<pb::EscalateDisagreementRequest>,
    ) -> Result<Response<pb::Case>, Status> {
        self.command(req).await
    }

    async fn resolve_disagreement(
        &self,
        req: Request<pb::ResolveDisagreementRequest>,
    ) -> Result<Response<pb::Case>, Status> {
        self.command(req).await
    }

    async fn record_consultation(
        &self,
        req: Request<pb::RecordConsultationRequest>,
    ) -> Result<Response<pb::Case>, Status> {
        self.command(req).await
    }
}

fn webhook_out(v: crate::webhooks::WebhookView) -> pb::Webhook {
    pb::Webhook {
        id: v.id,
        agency_id: v.agency_id,
        url: v.url,
        event_types: v.event_types,
        description: v.description,
        state: v.state,
        disabled_reason: v.disabled_reason.unwrap_or_default(),
        cursor: v.cursor,
        failures: v.failures,
        next_attempt_at: v.next_attempt_at.unwrap_or_default(),
        version: v.version,
        secret: v.secret.unwrap_or_default(),
    }
}

impl Grpc {
    /// A webhook change through the idempotency store; `request` identifies the request.
    async fn webhook_change<F, Fut>(
        &self,
        p: &Principal,
        change: Option<pb::Change>,
        request: String,
        run: F,
    ) -> Result<Response<pb::Webhook>, Status>
    where
        F: FnOnce(Option<u64>) -> Fut,
        Fut: Future<Output = Result<crate::webhooks::WebhookView, AppError>>,
    {
        let change = change.unwrap_or_default();
        let expected = (change.expected_version > 0).then_some(change.expected_version);
        let key = Some(change.idempotency_key).filter(|k| !k.is_empty());
        let hash = banli_api::grpc::request_hash(&request);
        let (_, v) = self
            .app
            .idempotent_webhook(p, key.as_deref(), &hash, 200, || run(expected))
            .await?;
        Ok(Response::new(webhook_out(v)))
    }
}

#[tonic::async_trait]
impl pb::webhook_service_server::WebhookService for Grpc {
    async fn create_webhook(
        &self,
        req: Request<pb::CreateWebhookRequest>,
    ) -> Result<Response<pb::Webhook>, Status> {
        let p = self.caller(&req).await?;
        let meta = banli_api::grpc::idempotency_key(req.metadata())?;
        let r = req.into_inner();
        let request = format!(
            "create_webhook {:?} {:?} {:?} {:?}",
            r.url, r.event_types, r.description, r.after
        );
        let body = crate::webhooks::CreateWebhook {
            url: r.url,
            event_types: r.event_types,
            description: r.description,
            after: (!r.after.is_empty()).then_some(r.after),
        };
        self.webhook_change(&p, merged(r.change, meta), request, |_| {
            self.app.create_webhook(&p, body)
        })
        .await
    }

    async fn list_webhooks(
        &self,
        req: Request<pb::ListWebhooksRequest>,
    ) -> Result<Response<pb::ListWebhooksResponse>, Status> {
        let p = self.caller(&req).await?;
        let agency = opt_uuid("agency_id", &req.get_ref().agency_id)?;
        let list = self.app.list_webhooks(&p, agency).await?;
        Ok(Response::new(pb::ListWebhooksResponse {
            webhooks: list.into_iter().map(webhook_out).collect(),
        }))
    }

    async fn get_webhook(
        &self,
        req: Request<pb::GetWebhookRequest>,
    ) -> Result<Response<pb::Webhook>, Status> {
        let p = self.caller(&req).await?;
        let id = uuid("id", &req.get_ref().id)?;
        Ok(Response::new(webhook_out(
            self.app.get_webhook(&p, id).await?,
        )))
    }

    async fn update_webhook(
        &self,
        req: Request<pb::UpdateWebhookRequest>,
    ) -> Result<Response<pb::Webhook>, Status> {
        let p = self.caller(&req).await?;
        let meta = banli_api::grpc::idempotency_key(req.metadata())?;
        let r = req.into_inner();
        let id = uuid("id", &r.id)?;
        let request = format!(
            "update_webhook {id} {:?} {} {:?} {:?} {:?}",
            r.url, r.set_event_types, r.event_types, r.description, r.state
        );
        let body = crate::webhooks::UpdateWebhook {
            url: r.url,
            event_types: r.set_event_types.then_some(r.event_types),
            description: r.description,
            state: (!r.state.is_empty()).then_some(r.state),
        };
        self.webhook_change(&p, merged(r.change, meta), request, |expected| {
            self.app.update_webhook(&p, id, expected, body)
        })
        .await
    }

    async fn delete_webhook(
        &self,
        req: Request<pb::GetWebhookRequest>,
    ) -> Result<Response<pb::DeleteWebhookResponse>, Status> {
        let p = self.caller(&req).await?;
        let id = uuid("id", &req.get_ref().id)?;
        self.app.delete_webhook(&p, id).await?;
        Ok(Response::new(pb::DeleteWebhookResponse {}))
    }

    async fn rotate_webhook_secret(
        &self,
        req: Request<pb::RotateWebhookSecretRequest>,
    ) -> Result<Response<pb::Webhook>, Status> {
        let p = self.caller(&req).await?;
        let meta = banli_api::grpc::idempotency_key(req.metadata())?;
        let r = req.into_inner();
        let id = uuid("id", &r.id)?;
        let request = format!("rotate_webhook_secret {id} {:?}", r.overlap_hours);
        let body = crate::webhooks::RotateSecret {
            overlap_hours: r.overlap_hours,
        };
        self.webhook_change(&p, merged(r.change, meta), request, |expected| {
            self.app.rotate_webhook_secret(&p, id, expected, body)
        })
        .await
    }

    async fn replay_webhook(
        &self,
        req: Request<pb::ReplayWebhookRequest>,
    ) -> Result<Response<pb::Webhook>, Status> {
        let p = self.caller(&req).await?;
        let meta = banli_api::grpc::idempotency_key(req.metadata())?;
        let r = req.into_inner();
        let id = uuid("id", &r.id)?;
        let request = format!("replay_webhook {id} {:?}", r.after);
        let body = crate::webhooks::ReplayWebhook { after: r.after };
        self.webhook_change(&p, merged(r.change, meta), request, |expected| {
            self.app.replay_webhook(&p, id, expected, body)
        })
        .await
    }

    async fn list_webhook_deliveries(
        &self,
        req: Request<pb::ListWebhookDeliveriesRequest>,
    ) -> Result<Response<pb::ListWebhookDeliveriesResponse>, Status> {
        let p = self.caller(&req).await?;
        let r = req.into_inner();
        let id = uuid("id", &r.id)?;
        let list = self
            .app
            .webhook_deliveries(&p, id, (r.limit > 0).then_some(r.limit))
            .await?;
        Ok(Response::new(pb::ListWebhookDeliveriesResponse {
            deliveries: list
                .into_iter()
                .map(|d| pb::WebhookDelivery {
                    id: d.id,
                    event_id: d.event_id,
                    event_type: d.event_type,
                    cursor: d.cursor,
                    attempt: d.attempt,
                    status: d.status.map(u32::from).unwrap_or(0),
                    error: d.error.unwrap_or_default(),
                    outcome: d.outcome,
                    duration_ms: d.duration_ms,
                    at: d.at,
                    ok: d.ok,
                })
                .collect(),
        }))
    }
}

/// A request's `Change` with the `idempotency-key` metadata as its key when the field is empty.
fn merged(change: Option<pb::Change>, meta: Option<String>) -> Option<pb::Change> {
    let mut c = change.unwrap_or_default();
    c.idempotency_key = banli_api::grpc::command_key(&c.idempotency_key, meta).unwrap_or_default();
    Some(c)
}
