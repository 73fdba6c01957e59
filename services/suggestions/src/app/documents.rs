//! Documents: uploads into the document store as the caller's, and downloads authorized
//! exactly like the record that attaches them.

use banli_documents::Documents;
use banli_documents::access::{self, Uploaded};
use banli_domain::document::DocumentRef;

use super::*;

impl App {
    /// Gives the service its document store (once; later calls change nothing).
    pub fn set_documents(&self, documents: Documents) {
        let _ = self.inner.documents.set(documents);
    }

    /// The document store, when the service has one.
    pub fn documents(&self) -> Option<&Documents> {
        self.inner.documents.get()
    }

    fn document_store(&self) -> Result<&Documents, AppError> {
        self.documents().ok_or_else(access::unavailable)
    }

    /// Streams an upload into the store as the caller's.
    pub async fn upload_document<R: tokio::io::AsyncRead + Unpin>(
        &self,
        p: &Principal,
        body: R,
        name: &str,
    ) -> Result<Uploaded, AppError> {
        access::upload(self.document_store()?, p, body, name).await
    }

    /// One of the caller's own uploads (attached anywhere or not yet).
    pub async fn own_document(&self, p: &Principal, sha256: &str) -> Result<DocumentRef, AppError> {
        access::own(self.document_store()?, p, sha256).await
    }

    /// A document attached to a suggestion's record, for a caller who reads that record: the
    /// same view the caller reads (opinions and consultations it may not read are not in it)
    /// must show the document, else 404.
    pub async fn suggestion_document(
        &self,
        p: &Principal,
        id: Uuid,
        sha256: &str,
    ) -> Result<DocumentRef, AppError> {
        let view = self.get(p, id).await?;
        view.documents()
            .find(|d| d.sha256 == sha256)
            .map(|d| DocumentRef {
                sha256: d.sha256.clone(),
                media_type: d.media_type.clone(),
                size: d.size,
                name: d.name.clone(),
            })
            .ok_or_else(|| access::not_found(sha256))
    }
}
