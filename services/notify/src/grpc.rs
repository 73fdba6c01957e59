//! gRPC (`banli.notify.v1`): the same capabilities as REST, through the same functions.

use banli_api::grpc::opt_uuid;
use banli_api::{AppError, Principal};
use banli_proto::notify::v1 as pb;
use pb::notify_service_server::{NotifyService, NotifyServiceServer};
use tonic::service::RoutesBuilder;
use tonic::{Request, Response, Status};

use crate::app::{AppState, Named, PreferencesBody};
use crate::store::{Channel, DeliveryRow, InboxItem};

/// The full names of this service's gRPC services.
pub const NAMES: [&str; 1] = ["banli.notify.v1.NotifyService"];

pub fn add_services(state: AppState, routes: &mut RoutesBuilder) {
    routes
        .add_service(NotifyServiceServer::new(Grpc { state }).max_decoding_message_size(8 * 1024));
}

#[derive(Clone)]
pub struct Grpc {
    state: AppState,
}

impl std::fmt::Debug for Grpc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Grpc").finish_non_exhaustive()
    }
}

fn message(m: InboxItem) -> pb::InboxMessage {
    pb::InboxMessage {
        id: m.id,
        suggestion_id: m.suggestion_id,
        kind: m.kind,
        language: m.language,
        title: m.title,
        body: m.body,
        created_at: m.created_at,
        read_at: m.read_at.unwrap_or_default(),
    }
}

fn delivery(d: DeliveryRow) -> pb::Delivery {
    pb::Delivery {
        notification_id: d.notification_id,
        channel: d.channel,
        deputy_id: d.deputy_id.unwrap_or_default(),
        agency_id: d.agency_id.unwrap_or_default(),
        suggestion_id: d.suggestion_id,
        state: d.state,
        address: d.address.unwrap_or_default(),
        attempts: d.attempts,
        last_error: d.last_error.unwrap_or_default(),
        next_at: d.next_at,
        sent_at: d.sent_at.unwrap_or_default(),
        created_at: d.created_at,
    }
}

fn prefs_out(named: Named, p: PreferencesBody) -> pb::Preferences {
    let (deputy_id, agency_id) = match named {
        Named::Deputy(d) => (d.to_string(), String::new()),
        Named::Agency(a) => (String::new(), a.to_string()),
    };
    pb::Preferences {
        deputy_id,
        agency_id,
        email: p.email.unwrap_or_default(),
        phone: p.phone.unwrap_or_default(),
        channels: p.channels.iter().map(|c| c.as_str().to_owned()).collect(),
        quiet_from: p.quiet_from.unwrap_or_default(),
        quiet_to: p.quiet_to.unwrap_or_default(),
        language: p.language,
    }
}

/// Exactly one of a deputy and an agency, by id.
fn named(deputy: &str, agency: &str) -> Result<Named, AppError> {
    match (
        opt_uuid("deputy_id", deputy)?,
        opt_uuid("agency_id", agency)?,
    ) {
        (Some(d), None) => Ok(Named::Deputy(d)),
        (None, Some(a)) => Ok(Named::Agency(a)),
        _ => Err(AppError::malformed(
            "exactly one of `deputy_id` and `agency_id` is required",
        )),
    }
}

fn text(s: String) -> Option<String> {
    (!s.trim().is_empty()).then_some(s)
}

fn limit(n: u32) -> Option<u32> {
    (n != 0).then_some(n)
}

impl Grpc {
    async fn caller<T>(&self, req: &Request<T>) -> Result<Principal, AppError> {
        let token = banli_api::grpc::bearer(req.metadata())?;
        (self.state.auth)(token.to_owned())
            .await?
            .presented(banli_api::grpc::client_cert(req.extensions()))
    }
}

#[tonic::async_trait]
impl NotifyService for Grpc {
    async fn list_inbox(
        &self,
        req: Request<pb::ListInboxRequest>,
    ) -> Result<Response<pb::ListInboxResponse>, Status> {
        let p = self.caller(&req).await?;
        let r = req.into_inner();
        let items = crate::app::inbox_of(
            &self.state,
            &p,
            opt_uuid("deputy_id", &r.deputy_id)?,
            opt_uuid("agency_id", &r.agency_id)?,
            r.unread_only,
            limit(r.limit),
        )
        .await?;
        Ok(Response::new(pb::ListInboxResponse {
            messages: items.into_iter().map(message).collect(),
        }))
    }

    async fn mark_read(
        &self,
        req: Request<pb::MarkReadRequest>,
    ) -> Result<Response<pb::InboxMessage>, Status> {
        let p = self.caller(&req).await?;
        let id = banli_api::grpc::uuid("id", &req.into_inner().id)?;
        let m = crate::app::mark_read(&self.state, &p, id).await?;
        Ok(Response::new(message(m)))
    }

    async fn get_preferences(
        &self,
        req: Request<pb::GetPreferencesRequest>,
    ) -> Result<Response<pb::Preferences>, Status> {
        let p = self.caller(&req).await?;
        let r = req.into_inner();
        let who = named(&r.deputy_id, &r.agency_id)?;
        let prefs = crate::app::preferences_of(&self.state, &p, who).await?;
        Ok(Response::new(prefs_out(who, prefs)))
    }

    async fn set_preferences(
        &self,
        req: Request<pb::SetPreferencesRequest>,
    ) -> Result<Response<pb::Preferences>, Status> {
        let p = self.caller(&req).await?;
        let r = req
            .into_inner()
            .preferences
            .ok_or_else(|| AppError::malformed("`preferences` is required"))?;
        let who = named(&r.deputy_id, &r.agency_id)?;
        let channels = r
            .channels
            .iter()
            .map(|c| {
                Channel::parse(c).ok_or_else(|| {
                    AppError::malformed(format!("`channels`: `{c}` is not email, sms or inbox"))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        let body = PreferencesBody {
            email: text(r.email),
            phone: text(r.phone),
            channels,
            quiet_from: text(r.quiet_from),
            quiet_to: text(r.quiet_to),
            language: text(r.language).unwrap_or_else(|| "zh".into()),
        };
        let prefs = crate::app::set_preferences(&self.state, &p, who, body).await?;
        Ok(Response::new(prefs_out(who, prefs)))
    }

    async fn list_deliveries(
        &self,
        req: Request<pb::ListDeliveriesRequest>,
    ) -> Result<Response<pb::ListDeliveriesResponse>, Status> {
        let p = self.caller(&req).await?;
        let r = req.into_inner();
        let items = crate::app::deliveries_of(
            &self.state,
            &p,
            opt_uuid("deputy_id", &r.deputy_id)?,
            opt_uuid("agency_id", &r.agency_id)?,
            opt_uuid("suggestion_id", &r.suggestion_id)?,
            text(r.state),
            limit(r.limit),
        )
        .await?;
        Ok(Response::new(pb::ListDeliveriesResponse {
            deliveries: items.into_iter().map(delivery).collect(),
        }))
    }
}
