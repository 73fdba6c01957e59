//! gRPC plumbing every service shares: one server for the services of the process, with the
//! standard health service and server reflection, and the caller's bearer key from metadata.

use std::future::Future;

use tokio::net::TcpListener;
use tonic::metadata::MetadataMap;
use tonic::service::RoutesBuilder;

use crate::error::{AppError, ErrorCode};

/// Serves `routes` (the services of this process, by their full names in `names`) plus health
/// and reflection on `listener` until `shutdown` completes.
pub async fn serve(
    routes: RoutesBuilder,
    names: &[&str],
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let key = crate::consistency::TokenKey::ephemeral()?;
    let layer = crate::consistency::ConsistencyLayer::new(
        key,
        crate::consistency::DEFAULT_WAIT,
        crate::consistency::Gates::default(),
    );
    serve_with(routes, names, listener, layer, shutdown).await
}

/// [`serve`] behind `consistency`: requests carrying a token wait on the gate of the service
/// their path belongs to, and every response of a write carries a token.
pub async fn serve_with(
    routes: RoutesBuilder,
    names: &[&str],
    listener: TcpListener,
    consistency: crate::consistency::ConsistencyLayer,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    let (reporter, health) = tonic_health::server::health_reporter();
    for name in names {
        reporter
            .set_service_status(*name, tonic_health::ServingStatus::Serving)
            .await;
    }
    let reflection = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(banli_proto::FILE_DESCRIPTOR_SET)
        .build_v1()?;
    let mut routes = routes;
    routes.add_service(health).add_service(reflection);
    tonic::transport::Server::builder()
        .trace_fn(|req| {
            let span = tracing::info_span!("grpc", otel.name = %req.uri().path(), otel.kind = "server", path = %req.uri().path());
            banli_eventlog::trace::follow(
                &span,
                req.headers().get("traceparent").and_then(|v| v.to_str().ok()),
            );
            span
        })
        .layer(crate::metrics::RequestMetricsLayer::grpc())
        .layer(consistency)
        .add_routes(routes.routes())
        .serve_with_incoming_shutdown(
            tokio_stream::wrappers::TcpListenerStream::new(listener),
            shutdown,
        )
        .await?;
    Ok(())
}

/// The agency's reference id from the `reference-id` metadata, if any.
pub fn reference(metadata: &MetadataMap) -> Result<Option<String>, AppError> {
    match metadata.get(crate::principal::REFERENCE_HEADER) {
        None => Ok(None),
        Some(v) => crate::principal::check_reference(v.to_str().unwrap_or("")).map(Some),
    }
}

/// The API key from `authorization: Bearer <key>`.
pub fn bearer(metadata: &MetadataMap) -> Result<&str, AppError> {
    metadata
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .ok_or_else(|| {
            AppError::new(
                ErrorCode::Unauthenticated,
                "send metadata `authorization: Bearer <api key>`",
            )
        })
}

/// The SHA-256 (hex) of a request's canonical text, for `idempotency_key` replays: the same
/// key with a different request is refused.
pub fn request_hash(text: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A UUID field of a request; a malformed one is a malformed request naming the field.
pub fn uuid(field: &str, s: &str) -> Result<uuid::Uuid, AppError> {
    uuid::Uuid::try_parse(s)
        .map_err(|_| AppError::malformed(format!("{field} `{s}` is not a UUID")))
}

/// An optional UUID field: empty is absent.
pub fn opt_uuid(field: &str, s: &str) -> Result<Option<uuid::Uuid>, AppError> {
    if s.is_empty() {
        Ok(None)
    } else {
        uuid(field, s).map(Some)
    }
}

/// The signer of a letter; both name and position are required.
pub fn signer(
    s: Option<banli_proto::common::v1::Signer>,
) -> Result<banli_domain::suggestion::Signer, AppError> {
    use banli_domain::suggestion::{Signer, SignerPosition};
    use banli_proto::common::v1 as pc;
    let s = s.ok_or_else(|| AppError::malformed("signer is required"))?;
    let position = match pc::SignerPosition::try_from(s.position) {
        Ok(pc::SignerPosition::PrincipalHead) => SignerPosition::PrincipalHead,
        Ok(pc::SignerPosition::AuthorizedLeader) => SignerPosition::AuthorizedLeader,
        Ok(pc::SignerPosition::DivisionHead) => SignerPosition::DivisionHead,
        Ok(pc::SignerPosition::Staff) => SignerPosition::Staff,
        _ => return Err(AppError::malformed("signer.position is required")),
    };
    Ok(Signer {
        name: s.name,
        position,
    })
}
