//! A content-addressed store: each content once, under its SHA-256 — on the local disk (the
//! embedded deployment's data directory: `<root>/<first two hex digits>/<SHA-256 hex>`), or in
//! an S3-compatible bucket (the distributed deployment: `blobs/<2 hex>/<SHA-256 hex>`), with
//! who uploaded what beside it (`owners/<2 hex>/<SHA-256 hex>/<owner>`).
//!
//! An upload is streamed: its bytes go to a temporary file under `<root>/tmp` while the hash is
//! computed, and the upload is refused — the temporary file removed — as soon as it passes the
//! limit, once its first bytes are not an allowed type, or when the stream fails. Only a whole,
//! allowed upload is synced and renamed under its hash (an existing file of that hash is the
//! same content: the new copy is dropped).

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};

use crate::sniff::{MediaType, SNIFF_BYTES, sniff};

/// A stored document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    /// SHA-256 of the content, lowercase hex.
    pub sha256: String,
    pub size: u64,
    pub media_type: MediaType,
    /// False when the same content was stored before (this upload added nothing).
    pub new: bool,
}

/// Who uploaded a content, and as what: one per (content, owner).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Claim {
    pub media_type: MediaType,
    pub size: u64,
    /// The file name the owner gave, cleaned ([`clean_name`]).
    pub name: String,
}

/// The most characters of a file name kept.
pub const MAX_NAME_CHARS: usize = 120;

/// A file name fit to show and to send back in `Content-Disposition`: the last path segment,
/// without control characters, quotes or separators, at most [`MAX_NAME_CHARS`]; `document`
/// when nothing is left.
pub fn clean_name(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or_default();
    let cleaned: String = last
        .chars()
        .filter(|c| !c.is_control() && !matches!(c, '"' | ';' | '\\' | '/'))
        .take(MAX_NAME_CHARS)
        .collect();
    let cleaned = cleaned.trim().trim_start_matches('.').trim();
    if cleaned.is_empty() {
        "document".to_owned()
    } else {
        cleaned.to_owned()
    }
}

/// Why an upload was not stored (nothing of it is kept).
#[derive(Debug, thiserror::Error)]
pub enum PutError {
    #[error("the file is larger than {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("the file is {}, not a PDF, OFD, DOCX or image", .0.as_str())]
    NotAllowed(MediaType),
    #[error("the file is empty")]
    Empty,
    /// The upload's stream failed (the client went away): nothing is stored.
    #[error("the upload was interrupted: {0}")]
    Interrupted(std::io::Error),
    /// The disk failed.
    #[error("the document store failed: {0}")]
    Io(std::io::Error),
}

/// The store.
#[derive(Debug, Clone)]
pub struct BlobStore {
    /// The local directory: the contents themselves (local), or only the uploads being
    /// received (S3).
    root: PathBuf,
    s3: Option<std::sync::Arc<crate::s3::S3>>,
}

/// A stored content's bytes, as they are read.
pub type Reader = std::pin::Pin<Box<dyn AsyncRead + Send>>;

/// A temporary file removed on drop unless it was kept.
struct Temp {
    path: PathBuf,
    keep: bool,
}

impl Drop for Temp {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// An upload that sends no byte for this long is cut off (a client trickling a body must not
/// hold a connection and a temporary file for ever).
pub const IDLE: std::time::Duration = std::time::Duration::from_secs(30);

/// Whether `s` is a SHA-256 as this store names files (64 lowercase hex digits).
pub fn is_sha256(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

impl BlobStore {
    /// A store under `root` (created, with its `tmp` directory, when missing). Temporary files
    /// a crashed process left behind are removed.
    pub async fn open(root: impl Into<PathBuf>) -> std::io::Result<BlobStore> {
        let root = root.into();
        let tmp = root.join("tmp");
        tokio::fs::create_dir_all(&tmp).await?;
        let mut left = tokio::fs::read_dir(&tmp).await?;
        while let Some(e) = left.next_entry().await? {
            let _ = tokio::fs::remove_file(e.path()).await;
        }
        Ok(BlobStore { root, s3: None })
    }

    /// A store in an S3-compatible bucket; uploads are received into `staging` (a local
    /// directory) while they are hashed and checked, then sent. Checks that the bucket answers.
    pub async fn s3(
        staging: impl Into<PathBuf>,
        client: crate::s3::S3,
    ) -> std::io::Result<BlobStore> {
        let mut store = BlobStore::open(staging).await?;
        client.check_bucket().await?;
        store.s3 = Some(std::sync::Arc::new(client));
        Ok(store)
    }

    /// Where the contents are, for logs: a directory or `s3://bucket/prefix`.
    pub fn location(&self) -> String {
        match &self.s3 {
            Some(c) => format!("s3://{}/{}", c.config().bucket, c.config().prefix),
            None => self.root.display().to_string(),
        }
    }

    fn blob_key(sha256: &str) -> String {
        format!("blobs/{}/{sha256}", &sha256[..2])
    }

    fn claim_key(sha256: &str, owner: &str) -> String {
        format!("owners/{}/{sha256}/{owner}", &sha256[..2])
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Where the content of `sha256` is (or would be) kept; `None` for a name that is not a
    /// SHA-256 (never a path outside the store).
    pub fn path_of(&self, sha256: &str) -> Option<PathBuf> {
        is_sha256(sha256).then(|| self.root.join(&sha256[..2]).join(sha256))
    }

    /// Whether the content of `sha256` is stored.
    pub async fn contains(&self, sha256: &str) -> std::io::Result<bool> {
        if !is_sha256(sha256) {
            return Ok(false);
        }
        match &self.s3 {
            Some(c) => c.exists(&Self::blob_key(sha256)).await,
            None => match self.path_of(sha256) {
                Some(p) => tokio::fs::try_exists(p).await,
                None => Ok(false),
            },
        }
    }

    /// Opens a stored content for reading.
    pub async fn open_blob(&self, sha256: &str) -> std::io::Result<Option<Reader>> {
        if !is_sha256(sha256) {
            return Ok(None);
        }
        if let Some(c) = &self.s3 {
            return c.get(&Self::blob_key(sha256)).await;
        }
        let Some(p) = self.path_of(sha256) else {
            return Ok(None);
        };
        match tokio::fs::File::open(p).await {
            Ok(f) => Ok(Some(Box::pin(f))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Records that `owner` uploaded the content of `stored` under `name`: what lets that owner
    /// (and nobody else) attach it to a record. Written whole or not at all.
    pub async fn claim(&self, stored: &Stored, owner: &str, name: &str) -> std::io::Result<()> {
        let path = self.claim_path(&stored.sha256, owner)?;
        let body = format!(
            "{}\n{}\n{}",
            stored.media_type.as_str(),
            stored.size,
            clean_name(name)
        );
        if let Some(c) = &self.s3 {
            return c
                .put_bytes(&Self::claim_key(&stored.sha256, owner), body.into_bytes())
                .await;
        }
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir).await?;
        }
        let temp = self.temp();
        tokio::fs::write(&temp.path, body).await?;
        tokio::fs::rename(&temp.path, &path).await?;
        let mut temp = temp;
        temp.keep = true;
        Ok(())
    }

    /// What `owner` uploaded as `sha256`, if it did.
    pub async fn claimed(&self, sha256: &str, owner: &str) -> std::io::Result<Option<Claim>> {
        let Ok(path) = self.claim_path(sha256, owner) else {
            return Ok(None);
        };
        let text = match &self.s3 {
            Some(c) => match c.get(&Self::claim_key(sha256, owner)).await? {
                Some(mut r) => {
                    let mut t = String::new();
                    r.read_to_string(&mut t).await?;
                    t
                }
                None => return Ok(None),
            },
            None => match tokio::fs::read_to_string(&path).await {
                Ok(t) => t,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
                Err(e) => return Err(e),
            },
        };
        let mut lines = text.splitn(3, '\n');
        let (Some(media), Some(size), Some(name)) = (lines.next(), lines.next(), lines.next())
        else {
            return Err(std::io::Error::other(format!(
                "the claim {} is damaged",
                path.display()
            )));
        };
        Ok(Some(Claim {
            media_type: MediaType::parse(media).unwrap_or(MediaType::Other("unknown")),
            size: size.parse().map_err(std::io::Error::other)?,
            name: name.to_owned(),
        }))
    }

    /// A new temporary file's name under `tmp`, removed on drop unless kept.
    fn temp(&self) -> Temp {
        Temp {
            path: self
                .root
                .join("tmp")
                .join(uuid::Uuid::now_v7().simple().to_string()),
            keep: false,
        }
    }

    fn claim_path(&self, sha256: &str, owner: &str) -> std::io::Result<PathBuf> {
        let owner_ok = !owner.is_empty()
            && owner.len() <= 64
            && owner
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        if !is_sha256(sha256) || !owner_ok {
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidInput,
                "not a SHA-256 and an owner",
            ));
        }
        Ok(self
            .root
            .join("owners")
            .join(&sha256[..2])
            .join(sha256)
            .join(owner))
    }

    /// Streams `body` in: at most `limit` bytes, an allowed type by its first bytes.
    pub async fn put<R: AsyncRead + Unpin>(
        &self,
        mut body: R,
        limit: u64,
    ) -> Result<Stored, PutError> {
        let temp = self.temp();
        let mut file = tokio::fs::File::create(&temp.path)
            .await
            .map_err(PutError::Io)?;
        let mut hasher = Sha256::new();
        let mut head: Vec<u8> = Vec::with_capacity(SNIFF_BYTES);
        let mut media: Option<MediaType> = None;
        let mut size: u64 = 0;
        let mut buf = vec![0u8; 256 * 1024];
        loop {
            let n = tokio::time::timeout(IDLE, body.read(&mut buf))
                .await
                .map_err(|_| {
                    PutError::Interrupted(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "no byte arrived for 30 s",
                    ))
                })?
                .map_err(PutError::Interrupted)?;
            if n == 0 {
                break;
            }
            size += n as u64;
            if size > limit {
                return Err(PutError::TooLarge { limit });
            }
            let chunk = &buf[..n];
            if media.is_none() {
                let take = (SNIFF_BYTES - head.len()).min(n);
                head.extend_from_slice(&chunk[..take]);
                if head.len() == SNIFF_BYTES {
                    let m = sniff(&head);
                    if !m.allowed() {
                        return Err(PutError::NotAllowed(m));
                    }
                    media = Some(m);
                }
            }
            hasher.update(chunk);
            file.write_all(chunk).await.map_err(PutError::Io)?;
        }
        if size == 0 {
            return Err(PutError::Empty);
        }
        let media = match media {
            Some(m) => m,
            None => {
                let m = sniff(&head);
                if !m.allowed() {
                    return Err(PutError::NotAllowed(m));
                }
                m
            }
        };
        file.sync_all().await.map_err(PutError::Io)?;
        drop(file);
        let sha256: String = hasher
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        if let Some(c) = &self.s3 {
            let key = Self::blob_key(&sha256);
            let new = !c.exists(&key).await.map_err(PutError::Io)?;
            if new {
                c.put_file(&key, &temp.path, size, &sha256)
                    .await
                    .map_err(PutError::Io)?;
            }
            return Ok(Stored {
                sha256,
                size,
                media_type: media,
                new,
            });
        }
        let dest = self
            .path_of(&sha256)
            .ok_or_else(|| PutError::Io(std::io::Error::other("a hash that is not hex")))?;
        if tokio::fs::try_exists(&dest).await.map_err(PutError::Io)? {
            return Ok(Stored {
                sha256,
                size,
                media_type: media,
                new: false,
            });
        }
        if let Some(dir) = dest.parent() {
            tokio::fs::create_dir_all(dir).await.map_err(PutError::Io)?;
        }
        tokio::fs::rename(&temp.path, &dest)
            .await
            .map_err(PutError::Io)?;
        let mut temp = temp;
        temp.keep = true;
        Ok(Stored {
            sha256,
            size,
            media_type: media,
            new: true,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pdf(len: usize) -> Vec<u8> {
        let mut v = b"%PDF-1.7\n".to_vec();
        v.resize(len, b'x');
        v
    }

    async fn files(dir: &Path) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let mut stack = vec![dir.to_path_buf()];
        while let Some(d) = stack.pop() {
            let mut rd = tokio::fs::read_dir(&d).await.expect("dir");
            while let Some(e) = rd.next_entry().await.expect("entry") {
                if e.file_type().await.expect("type").is_dir() {
                    stack.push(e.path());
                } else {
                    out.push(e.path());
                }
            }
        }
        out
    }

    fn dir() -> PathBuf {
        std::env::temp_dir().join(format!("banli-blobs-{}", uuid::Uuid::now_v7().simple()))
    }

    #[tokio::test(start_paused = true)]
    async fn an_upload_that_stalls_is_cut_off_and_leaves_nothing() {
        use tokio::io::AsyncWriteExt;
        let root = dir();
        let store = BlobStore::open(&root).await.expect("open");
        let (mut client, server) = tokio::io::duplex(1024);
        client.write_all(&pdf(1000)).await.expect("the first bytes");
        // The client keeps the connection open and sends nothing more.
        let r = store.put(server, 1 << 20).await;
        assert!(
            matches!(&r, Err(PutError::Interrupted(e)) if e.kind() == std::io::ErrorKind::TimedOut),
            "{r:?}"
        );
        drop(client);
        assert!(files(&root).await.is_empty(), "nothing kept");
    }

    #[tokio::test]
    async fn only_the_owner_that_uploaded_a_content_holds_its_claim() {
        let store = BlobStore::open(dir()).await.expect("open");
        let a = store.put(&pdf(5_000)[..], 1 << 20).await.expect("stored");
        store
            .claim(&a, "agency-1", "../../etc/答复函\u{7}.pdf")
            .await
            .expect("claimed");
        let c = store
            .claimed(&a.sha256, "agency-1")
            .await
            .expect("read")
            .expect("there");
        assert_eq!(
            (c.media_type, c.size, c.name.as_str()),
            (MediaType::Pdf, 5_000, "答复函.pdf")
        );
        assert_eq!(
            store.claimed(&a.sha256, "agency-2").await.expect("read"),
            None
        );
        assert_eq!(store.claimed("../x", "agency-1").await.expect("read"), None);
        assert_eq!(store.claimed(&a.sha256, "../x").await.expect("read"), None);
        assert!(store.claim(&a, "a/b", "x").await.is_err());
        assert_eq!(clean_name(" ..  "), "document");
        assert_eq!(clean_name("C:\\letters\\a\"b;.pdf"), "ab.pdf");
    }

    #[tokio::test]
    async fn a_document_is_stored_once_under_its_hash() {
        let root = dir();
        let store = BlobStore::open(&root).await.expect("open");
        let body = pdf(700_000);
        let a = store.put(&body[..], 1 << 20).await.expect("stored");
        let want: String = Sha256::digest(&body)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            (a.sha256.as_str(), a.size, a.media_type, a.new),
            (want.as_str(), 700_000, MediaType::Pdf, true)
        );
        let again = store.put(&body[..], 1 << 20).await.expect("stored");
        assert!(!again.new);
        assert_eq!(files(&root).await.len(), 1, "one file, no temporary left");
        let mut back = Vec::new();
        store
            .open_blob(&a.sha256)
            .await
            .expect("read")
            .expect("there")
            .read_to_end(&mut back)
            .await
            .expect("bytes");
        assert_eq!(back, body);
        assert!(store.contains(&a.sha256).await.expect("asked"));
        // Names that are not hashes never reach the disk.
        assert!(store.path_of("../../etc/passwd").is_none());
        assert!(
            store
                .open_blob(&"A".repeat(64))
                .await
                .expect("read")
                .is_none()
        );
        let _ = tokio::fs::remove_dir_all(&root).await;
    }

    /// A reader that yields `data` then fails, as a client going away mid-upload.
    struct Broken<'a>(&'a [u8]);

    impl AsyncRead for Broken<'_> {
        fn poll_read(
            mut self: std::pin::Pin<&mut Self>,
            _: &mut std::task::Context<'_>,
            buf: &mut tokio::io::ReadBuf<'_>,
        ) -> std::task::Poll<std::io::Result<()>> {
            if self.0.is_empty() {
                return std::task::Poll::Ready(Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "the client went away",
                )));
            }
            let n = self.0.len().min(buf.remaining());
            buf.put_slice(&self.0[..n]);
            self.0 = &self.0[n..];
            std::task::Poll::Ready(Ok(()))
        }
    }

    #[tokio::test]
    async fn a_refused_or_interrupted_upload_leaves_nothing() {
        let root = dir();
        let store = BlobStore::open(&root).await.expect("open");
        let big = pdf(3 << 20);
        assert!(matches!(
            store.put(&big[..], 2 << 20).await,
            Err(PutError::TooLarge { limit }) if limit == 2 << 20
        ));
        let mut exe = b"MZ\x90\0".to_vec();
        exe.resize(200_000, 0);
        match store.put(&exe[..], 1 << 20).await {
            Err(PutError::NotAllowed(m)) => assert_eq!(m.as_str(), "application/x-msdownload"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            store.put(&b"plain"[..], 1 << 20).await,
            Err(PutError::NotAllowed(_))
        ));
        assert!(matches!(
            store.put(&b""[..], 1 << 20).await,
            Err(PutError::Empty)
        ));
        let half = pdf(500_000);
        assert!(matches!(
            store.put(Broken(&half), 1 << 20).await,
            Err(PutError::Interrupted(_))
        ));
        assert!(files(&root).await.is_empty(), "{:?}", files(&root).await);
        let _ = tokio::fs::remove_dir_all(&root).await;
    }
}
