//! Uploads and downloads over HTTP, for every service's REST routes.
//!
//! An upload is `multipart/form-data` (the file in a part named `file`, or the first part with a
//! file name) or the file itself as the body (any other content type; its name in `?name=`). The
//! body is streamed into the store, never held in memory: a `Content-Length` over the limit is
//! refused before a byte is read, a body that passes it as soon as it does.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use banli_api::Principal;
use banli_api::error::{AppError, ErrorCode};
use banli_domain::document::DocumentRef;
use base64::Engine;
use futures_util::TryStreamExt;
use tokio_util::io::{ReaderStream, StreamReader};

use crate::Documents;
use crate::access::{self, Uploaded};

/// Room for a multipart body's boundaries and headers beside the file.
const MULTIPART_OVERHEAD: u64 = 64 * 1024;

/// Reads an upload from `req` into the store as the caller's.
pub async fn upload(docs: &Documents, p: &Principal, req: Request) -> Result<Uploaded, AppError> {
    access::owner(p)?;
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let content_type = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_owned();
    let query_name = name_in_query(req.uri().query().unwrap_or(""));
    let too_large = |limit: u64| {
        AppError::new(
            ErrorCode::PayloadTooLarge,
            format!(
                "the document is larger than {limit} bytes (max_document_bytes); refused before it was read, nothing was stored"
            ),
        )
    };
    if content_type
        .to_ascii_lowercase()
        .starts_with("multipart/form-data")
    {
        if declared.is_some_and(|n| n > docs.max_bytes + MULTIPART_OVERHEAD) {
            return Err(too_large(docs.max_bytes));
        }
        let boundary = multer::parse_boundary(&content_type).map_err(|_| {
            AppError::malformed("the multipart/form-data content type has no boundary")
        })?;
        let constraints = multer::Constraints::new()
            .size_limit(multer::SizeLimit::new().whole_stream(docs.max_bytes + MULTIPART_OVERHEAD));
        let mut form = multer::Multipart::with_constraints(
            req.into_body().into_data_stream(),
            boundary,
            constraints,
        );
        loop {
            let field = form
                .next_field()
                .await
                .map_err(multipart_error)?
                .ok_or_else(|| {
                    AppError::malformed(
                        "the form has no file: send it in a part named `file` (with a filename)",
                    )
                })?;
            if field.name() != Some("file") && field.file_name().is_none() {
                continue;
            }
            let name = query_name
                .clone()
                .or_else(|| field.file_name().map(str::to_owned))
                .unwrap_or_default();
            let reader = StreamReader::new(field.map_err(std::io::Error::other));
            return access::upload(docs, p, reader, &name).await;
        }
    }
    if declared.is_some_and(|n| n > docs.max_bytes) {
        return Err(too_large(docs.max_bytes));
    }
    let reader = StreamReader::new(
        req.into_body()
            .into_data_stream()
            .map_err(std::io::Error::other),
    );
    access::upload(docs, p, reader, &query_name.unwrap_or_default()).await
}

fn multipart_error(e: multer::Error) -> AppError {
    match e {
        multer::Error::StreamSizeExceeded { .. } | multer::Error::FieldSizeExceeded { .. } => {
            AppError::new(
                ErrorCode::PayloadTooLarge,
                "the form is larger than max_document_bytes allows; nothing was stored",
            )
        }
        multer::Error::StreamReadFailed(_) => AppError::malformed(
            "the upload was interrupted before its end; nothing was stored, send it again",
        ),
        other => AppError::malformed(format!(
            "the multipart/form-data body cannot be read: {other}"
        )),
    }
}

/// `name=` of a query string, percent-decoded.
fn name_in_query(query: &str) -> Option<String> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == "name").then(|| percent_decode(v))
    })
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' if i + 2 < bytes.len() => match u8::from_str_radix(&s[i + 1..i + 3], 16) {
                Ok(b) => {
                    out.push(b);
                    i += 2;
                }
                Err(_) => out.push(b'%'),
            },
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The answer to a refused upload: its problem document, with `Retry-After` when the owner has
/// used this hour's bytes.
pub fn refused(docs: &Documents, p: &Principal, e: AppError) -> Response {
    let wait = (e.code == ErrorCode::RateLimited)
        .then(|| access::owner(p).ok())
        .flatten()
        .and_then(|owner| docs.quota.check(&owner).err());
    let mut res = banli_api::http::Problem(e).into_response();
    if let Some(seconds) = wait {
        res.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    res
}

/// The answer to a successful upload: 201 when the caller had not uploaded it before, else 200.
pub fn uploaded_response(u: &Uploaded) -> Response {
    let status = if u.created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    (status, axum::Json(u)).into_response()
}

/// Streams a stored document: its type as told by its content, its name, its hash as
/// `Repr-Digest` (RFC 9530) and `ETag`; 404 when the store has lost it.
pub async fn download(docs: &Documents, doc: &DocumentRef) -> Result<Response, AppError> {
    let file = docs
        .store
        .open_blob(&doc.sha256)
        .await
        .map_err(|e| AppError::internal(&e))?
        .ok_or_else(|| {
            tracing::warn!(sha256 = %doc.sha256, "a referenced document is missing from the store");
            access::not_found(&doc.sha256)
        })?;
    let mut res = Response::new(Body::from_stream(ReaderStream::with_capacity(
        file,
        256 * 1024,
    )));
    let h = res.headers_mut();
    if let Ok(v) = HeaderValue::from_str(&doc.media_type) {
        h.insert(header::CONTENT_TYPE, v);
    }
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(doc.size));
    if let Ok(v) = HeaderValue::from_str(&content_disposition(&doc.name)) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", doc.sha256)) {
        h.insert(header::ETAG, v);
    }
    if let Some(raw) = hex(&doc.sha256) {
        let b64 = base64::engine::general_purpose::STANDARD.encode(raw);
        if let Ok(v) = HeaderValue::from_str(&format!("sha-256=:{b64}:")) {
            h.insert("repr-digest", v);
        }
    }
    Ok(res)
}

fn hex(s: &str) -> Option<Vec<u8>> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(s.get(i..i + 2)?, 16).ok())
        .collect()
}

/// `attachment` with an ASCII fallback name and the UTF-8 name (RFC 6266 / RFC 8187).
fn content_disposition(name: &str) -> String {
    let ascii: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_graphic() && c != '"' && c != '\\' && c != '%' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let encoded: String = name
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    format!("attachment; filename=\"{ascii}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_decoded_and_sent_back_safely() {
        assert_eq!(
            name_in_query("x=1&name=%E7%AD%94%E5%A4%8D%E5%87%BD+1.pdf"),
            Some("答复函 1.pdf".to_owned())
        );
        assert_eq!(name_in_query("name=50%"), Some("50%".to_owned()));
        assert_eq!(name_in_query("other=a"), None);
        assert_eq!(
            content_disposition("答复函 \"1\".pdf"),
            "attachment; filename=\"_____1_.pdf\"; filename*=UTF-8''%E7%AD%94%E5%A4%8D%E5%87%BD%20%221%22.pdf"
        );
    }
}
