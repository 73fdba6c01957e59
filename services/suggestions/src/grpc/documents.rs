//! `DocumentService`: uploads as a client stream, downloads as a server stream, over the same
//! application calls as REST.

use std::pin::Pin;

use banli_domain::document::DocumentRef;
use futures_util::{Stream, StreamExt, TryStreamExt};
use pb::document_service_server::DocumentService;
use tokio::io::AsyncReadExt;
use tokio_util::io::StreamReader;

use super::*;

/// The bytes of one download message.
const CHUNK: usize = 256 * 1024;

type ChunkStream = Pin<Box<dyn Stream<Item = Result<pb::DocumentChunk, Status>> + Send>>;

#[tonic::async_trait]
impl DocumentService for Grpc {
    async fn upload(
        &self,
        req: Request<tonic::Streaming<pb::UploadDocumentChunk>>,
    ) -> Result<Response<pb::Document>, Status> {
        let p = self.caller(&req).await?;
        let mut stream = req.into_inner();
        // The first message may name the file; its bytes are the first bytes.
        let first = match stream.message().await {
            Ok(Some(m)) => m,
            Ok(None) => {
                return Err(AppError::invalid("the file is empty; nothing was stored").into());
            }
            Err(_) => {
                return Err(AppError::malformed(
                    "the upload was interrupted before its end; nothing was stored, send it again",
                )
                .into());
            }
        };
        let name = first.name.clone();
        let rest = stream.map(|m| m.map(|m| bytes::Bytes::from(m.data)));
        let all = futures_util::stream::iter([Ok(bytes::Bytes::from(first.data))])
            .chain(rest)
            .map_err(std::io::Error::other);
        let up = self
            .app
            .upload_document(&p, StreamReader::new(all), &name)
            .await?;
        Ok(Response::new(pb::Document {
            sha256: up.sha256,
            media_type: up.media_type,
            size: up.size,
            name: up.name,
            created: up.created,
        }))
    }

    type DownloadStream = ChunkStream;

    async fn download(
        &self,
        req: Request<pb::DownloadDocumentRequest>,
    ) -> Result<Response<ChunkStream>, Status> {
        let p = self.caller(&req).await?;
        let r = req.into_inner();
        let doc = if r.suggestion_id.is_empty() {
            self.app.own_document(&p, &r.sha256).await?
        } else {
            let id = uuid("suggestion_id", &r.suggestion_id)?;
            self.app.suggestion_document(&p, id, &r.sha256).await?
        };
        let docs = self
            .app
            .documents()
            .ok_or_else(banli_documents::access::unavailable)?;
        let file = docs
            .store
            .open_blob(&doc.sha256)
            .await
            .map_err(|e| AppError::internal(&e))?
            .ok_or_else(|| banli_documents::access::not_found(&doc.sha256))?;
        Ok(Response::new(chunks(doc, file)))
    }
}

/// The document's description, then its bytes.
fn chunks(doc: DocumentRef, file: banli_documents::blob::Reader) -> ChunkStream {
    let head = pb::DocumentChunk {
        document: Some(pb::Document {
            sha256: doc.sha256,
            media_type: doc.media_type,
            size: doc.size,
            name: doc.name,
            created: false,
        }),
        data: Vec::new(),
    };
    let body = futures_util::stream::unfold(Some(file), |file| async move {
        let mut file = file?;
        let mut buf = vec![0u8; CHUNK];
        match file.read(&mut buf).await {
            Ok(0) => None,
            Ok(n) => {
                buf.truncate(n);
                Some((
                    Ok(pb::DocumentChunk {
                        document: None,
                        data: buf,
                    }),
                    Some(file),
                ))
            }
            Err(e) => Some((Err(Status::from(AppError::internal(&e))), None)),
        }
    });
    Box::pin(futures_util::stream::iter([Ok(head)]).chain(body))
}
