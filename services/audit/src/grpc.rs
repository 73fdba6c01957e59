//! gRPC (`banli.audit.v1`): the same reads and erasure as REST. GetCheckpoint and GetPublicKey
//! are public; the others need `authorization: Bearer <key>` of the assigning office or an
//! auditor (Erase: the assigning office).

use banli_api::{AppError, Authenticator, Principal};
use banli_audit::{Hash, Verifier};
use banli_proto::audit::v1 as pb;
use pb::audit_service_server::{AuditService, AuditServiceServer};
use tonic::service::RoutesBuilder;
use tonic::{Request, Response, Status};

use crate::app::{
    actor_of, bad, consistency_of, entries_of, erase_error, eraser, erasure_source, erasure_target,
    inclusion_by_hash_of, opening_of, proof_error, reader,
};
use crate::lease::LogHandle;

/// The full names of this service's gRPC services.
pub const NAMES: [&str; 1] = ["banli.audit.v1.AuditService"];

/// Adds the audit service to `routes`.
pub fn add_services(log: LogHandle, auth: Authenticator, routes: &mut RoutesBuilder) {
    routes.add_service(
        AuditServiceServer::new(Grpc { log, auth }).max_decoding_message_size(16 * 1024),
    );
}

#[derive(Clone)]
pub struct Grpc {
    log: LogHandle,
    auth: Authenticator,
}

impl std::fmt::Debug for Grpc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Grpc")
            .field("log", &self.log)
            .finish_non_exhaustive()
    }
}

impl Grpc {
    pub fn new(log: LogHandle, auth: Authenticator) -> Grpc {
        Grpc { log, auth }
    }

    async fn reader<T>(&self, req: &Request<T>) -> Result<Principal, AppError> {
        let token = banli_api::grpc::bearer(req.metadata())?;
        let p = (self.auth)(token.to_owned())
            .await?
            .presented(banli_api::grpc::client_cert(req.extensions()))?;
        reader(&p)?;
        Ok(p)
    }
}

#[tonic::async_trait]
impl AuditService for Grpc {
    async fn get_checkpoint(
        &self,
        _: Request<pb::GetCheckpointRequest>,
    ) -> Result<Response<pb::Checkpoint>, Status> {
        let s = self.log.get()?.checkpoint().ok_or_else(|| {
            AppError::new(
                banli_api::ErrorCode::Unavailable,
                "the audit log has not signed a checkpoint yet; retry in a moment",
            )
        })?;
        Ok(Response::new(pb::Checkpoint {
            text: s.note,
            tree_size: s.size,
            root_hash: s.root.to_vec(),
        }))
    }

    async fn get_entries(
        &self,
        req: Request<pb::GetEntriesRequest>,
    ) -> Result<Response<pb::GetEntriesResponse>, Status> {
        self.reader(&req).await?;
        let r = req.get_ref();
        let list = entries_of(&self.log.get()?, r.start, r.end).await?;
        Ok(Response::new(pb::GetEntriesResponse {
            entries: list
                .into_iter()
                .map(|e| pb::Entry {
                    index: e.index,
                    leaf_input: e.leaf_input,
                    record_type: e.record_type,
                    recorded_at: e
                        .recorded_at
                        .format(&time::format_description::well_known::Rfc3339)
                        .unwrap_or_default(),
                })
                .collect(),
        }))
    }

    async fn get_inclusion_proof(
        &self,
        req: Request<pb::GetInclusionProofRequest>,
    ) -> Result<Response<pb::InclusionProof>, Status> {
        self.reader(&req).await?;
        let r = req.into_inner();
        let (index, path) = match r.leaf {
            Some(pb::get_inclusion_proof_request::Leaf::Index(index)) => (
                index,
                self.log
                    .get()?
                    .inclusion_proof(index, r.tree_size)
                    .map_err(|e| proof_error(e, "index", "tree_size"))?,
            ),
            Some(pb::get_inclusion_proof_request::Leaf::LeafHash(h)) => {
                let hash: Hash = h
                    .try_into()
                    .map_err(|_| bad("leaf_hash", "is not 32 bytes"))?;
                inclusion_by_hash_of(&self.log.get()?, &hash, r.tree_size).await?
            }
            None => return Err(bad("leaf", "give index or leaf_hash").into()),
        };
        Ok(Response::new(pb::InclusionProof {
            index,
            tree_size: r.tree_size,
            audit_path: path.iter().map(|h| h.to_vec()).collect(),
        }))
    }

    async fn get_consistency_proof(
        &self,
        req: Request<pb::GetConsistencyProofRequest>,
    ) -> Result<Response<pb::ConsistencyProof>, Status> {
        self.reader(&req).await?;
        let r = req.get_ref();
        let proof = consistency_of(&self.log.get()?, r.first, r.second)?;
        Ok(Response::new(pb::ConsistencyProof {
            consistency: proof.iter().map(|h| h.to_vec()).collect(),
        }))
    }

    async fn get_public_key(
        &self,
        _: Request<pb::GetPublicKeyRequest>,
    ) -> Result<Response<pb::PublicKey>, Status> {
        let text = self.log.get()?.public_key();
        let v = Verifier::parse(&text).map_err(|e| AppError::internal(&e))?;
        Ok(Response::new(pb::PublicKey {
            key_name: v.name().to_owned(),
            ed25519: v.public_key().to_vec(),
            note_verifier_key: text,
        }))
    }

    async fn erase(&self, req: Request<pb::EraseRequest>) -> Result<Response<pb::Erasure>, Status> {
        let token = banli_api::grpc::bearer(req.metadata())?;
        let caller = (self.auth)(token.to_owned())
            .await?
            .presented(banli_api::grpc::client_cert(req.extensions()))?;
        eraser(&caller)?;
        let r = req.into_inner();
        let (subject, leaf) = match r.target {
            Some(pb::erase_request::Target::Subject(s)) => (Some(s), None),
            Some(pb::erase_request::Target::Leaf(i)) => (None, Some(i)),
            None => (None, None),
        };
        let target = erasure_target(subject, leaf, &r.reason)?;
        let key = Some(r.idempotency_key.as_str()).filter(|k| !k.is_empty());
        let done = self
            .log
            .get()?
            .erase(
                &target,
                &r.reason,
                actor_of(&caller),
                erasure_source(&caller, key),
            )
            .await
            .map_err(erase_error)?;
        Ok(Response::new(pb::Erasure {
            erased: done.erased,
            record: done.record,
        }))
    }

    async fn get_personal_data(
        &self,
        req: Request<pb::GetPersonalDataRequest>,
    ) -> Result<Response<pb::PersonalData>, Status> {
        self.reader(&req).await?;
        let index = req.get_ref().index;
        let o = opening_of(&self.log.get()?, index).await?;
        Ok(Response::new(pb::PersonalData {
            index,
            salt: o.salt.unwrap_or_default(),
            data: o.data.unwrap_or_default(),
            erased_at: o
                .erased_at
                .and_then(|t| {
                    t.format(&time::format_description::well_known::Rfc3339)
                        .ok()
                })
                .unwrap_or_default(),
        }))
    }
}
