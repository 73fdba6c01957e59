//! gRPC (`banli.suggestions.v1`): the same application layer as REST, with the standard health
//! service and server reflection. Every call needs the `authorization: Bearer <key>` metadata.
//!
//! Here: the server and what every call shares (authentication, idempotency); `commands` (each
//! request message `TryFrom` into a command), `convert` (proto ↔ domain and views),
//! `suggestions` (`SuggestionService`), `calendar` (`CalendarService`).

use std::future::Future;

use banli_api::grpc::{opt_uuid, signer, uuid};
use banli_calendar::DurationSpec;
use banli_domain::ids::*;
use banli_domain::suggestion::*;
use banli_proto::common::v1 as pc;
use banli_proto::suggestions::v1 as pb;
use pb::calendar_service_server::{CalendarService, CalendarServiceServer};
use pb::suggestion_service_server::{SuggestionService, SuggestionServiceServer};
use time::Date;
use tokio::net::TcpListener;
use tonic::service::RoutesBuilder;
use tonic::{Request, Response, Status};
use uuid::Uuid;

use crate::app::App;
use crate::command::{Once, Target};
use crate::dto::{self, DeadlineView, SuggestionView};
use crate::error::AppError;
use crate::policy::Principal;
use crate::store::ListFilter;

mod calendar;
mod commands;
mod convert;
mod documents;
mod suggestions;

use convert::*;

/// The full names of this service's gRPC services.
pub const NAMES: [&str; 4] = [
    "banli.suggestions.v1.SuggestionService",
    "banli.suggestions.v1.CalendarService",
    "banli.suggestions.v1.DocumentService",
    "banli.suggestions.v1.PublicService",
];

/// Adds this service's gRPC services to `routes`.
pub fn add_services(app: App, routes: &mut RoutesBuilder) {
    let grpc = Grpc { app };
    routes
        .add_service(
            SuggestionServiceServer::new(grpc.clone())
                .max_decoding_message_size(crate::http::DEFAULT_BODY_LIMIT),
        )
        .add_service(
            CalendarServiceServer::new(grpc.clone())
                .max_decoding_message_size(crate::http::DEFAULT_BODY_LIMIT),
        )
        .add_service(pb::public_service_server::PublicServiceServer::new(
            grpc.clone(),
        ))
        .add_service(
            pb::document_service_server::DocumentServiceServer::new(grpc)
                .max_decoding_message_size(UPLOAD_MESSAGE_LIMIT),
        );
}

/// The most bytes one upload message may carry (the whole upload is limited by
/// `max_document_bytes`).
pub const UPLOAD_MESSAGE_LIMIT: usize = 4 * 1024 * 1024;

/// Serves this service alone on `listener` until `shutdown` completes.
pub async fn serve(
    app: App,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let mut routes = RoutesBuilder::default();
    let auth = app.authenticator();
    add_services(app, &mut routes);
    banli_api::grpc::serve(routes, &NAMES, listener, auth, shutdown).await
}

/// The gRPC services over the application layer.
#[derive(Debug, Clone)]
pub struct Grpc {
    app: App,
}

impl Grpc {
    pub fn new(app: App) -> Grpc {
        Grpc { app }
    }

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

    /// A command on a suggestion: the request converted at the edge, then the application's
    /// one command path (idempotency, version, decide, commit) as for REST.
    async fn command<T>(&self, req: Request<T>) -> Result<Response<pb::Suggestion>, Status>
    where
        T: std::fmt::Debug,
        commands::Addressed: TryFrom<T, Error = AppError>,
    {
        let p = self.caller(&req).await?;
        let once = once_of(&req)?;
        let a = commands::Addressed::try_from(req.into_inner())?;
        let target = Target {
            suggestion_id: a.suggestion_id,
            expected_version: a.expected_version,
            once: once.or_field(a.idempotency_key),
        };
        let (_, json) = self.app.command(&p, target, a.command).await?;
        let view: SuggestionView =
            serde_json::from_str(&json).map_err(|e| AppError::internal(&e))?;
        Ok(Response::new(suggestion(&view)))
    }

    /// Runs `run` through the idempotency store, as REST does for every POST: the first answer
    /// (or refusal) is kept and a retry with the same key gets it again; the same key with
    /// another request is INVALID_ARGUMENT (`idempotency_key_reused`).
    async fn once<V, F, Fut>(
        &self,
        p: &Principal,
        once: Once,
        status: u16,
        run: F,
    ) -> Result<V, Status>
    where
        V: serde::Serialize + serde::de::DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<V, AppError>>,
    {
        let (_, json) = self
            .app
            .idempotent(p, once.key.as_deref(), &once.hash, || async move {
                let v = run().await?;
                Ok((
                    status,
                    serde_json::to_string(&v).map_err(|e| AppError::internal(&e))?,
                ))
            })
            .await?;
        Ok(serde_json::from_str(&json).map_err(|e| AppError::internal(&e))?)
    }
}

/// The idempotency key and hash of a command's request (the message's type and content).
fn once_of<T: std::fmt::Debug>(req: &Request<T>) -> Result<Once, Status> {
    Ok(Once {
        key: banli_api::grpc::idempotency_key(req.metadata())?,
        hash: banli_api::grpc::request_hash(&format!(
            "{}:{:?}",
            std::any::type_name::<T>(),
            req.get_ref()
        )),
    })
}

/// 公开答复: the public pages over gRPC — no key, like `GET /v1/public/replies`.
#[tonic::async_trait]
impl pb::public_service_server::PublicService for Grpc {
    async fn list_public_replies(
        &self,
        req: Request<pb::ListPublicRepliesRequest>,
    ) -> Result<Response<pb::ListPublicRepliesResponse>, Status> {
        let r = req.into_inner();
        let agency = banli_api::grpc::opt_uuid("agency_id", &r.agency_id)?;
        let token = (!r.page_token.is_empty()).then_some(r.page_token.as_str());
        let size = (r.page_size != 0).then_some(r.page_size);
        let page = self.app.public_replies(token, agency, size).await?;
        Ok(Response::new(pb::ListPublicRepliesResponse {
            items: page.items.iter().map(convert::public_reply).collect(),
            next_page_token: page.next_page_token.unwrap_or_default(),
        }))
    }

    async fn get_public_reply(
        &self,
        req: Request<pb::GetPublicReplyRequest>,
    ) -> Result<Response<pb::PublicReply>, Status> {
        let id = banli_api::grpc::uuid("id", &req.get_ref().id)?;
        let v = self.app.public_reply(id).await?;
        Ok(Response::new(convert::public_reply(&v)))
    }
}
