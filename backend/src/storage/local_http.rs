//! The HTTP face of [`LocalStore`]: the routes its signed URLs point at, standing in for an
//! S3 server's presigned `UploadPart`/`PutObject` and `GetObject`.
//!
//! Each request is checked in the order S3 checks it: signature, then expiry, then the
//! declared length, then (while streaming, never buffering) the real length and SHA-1.
//! Downloads are served from the API's own origin, so they carry `attachment`,
//! `nosniff` and a sandbox CSP: a stored HTML file can never run as this site.

use actix_web::body::SizedStream;
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use bytes::Bytes;
use serde::de::DeserializeOwned;

use super::local::{
    AccessError, LocalError, LocalStore, ObjectQuery, PartQuery, CHECKSUM_HEADER, OBJECTS_PATH, PARTS_PATH,
};
use crate::error::ApiError;

/// Registers the part PUT and download routes; they need `web::Data<LocalStore>`.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(PARTS_PATH, web::put().to(put_part))
        .route(OBJECTS_PATH, web::get().to(get_object))
        .route(OBJECTS_PATH, web::head().to(get_object));
}

impl From<LocalError> for ApiError {
    fn from(e: LocalError) -> Self {
        match e {
            LocalError::Access(AccessError::SignatureInvalid) => ApiError::new(
                StatusCode::FORBIDDEN,
                "signature-invalid",
                "The request signature we calculated does not match the signature you provided",
            ),
            LocalError::Access(AccessError::Expired) => {
                ApiError::new(StatusCode::FORBIDDEN, "request-expired", "Request has expired")
            }
            LocalError::SizeMismatch(m) => ApiError::bad_request("size-mismatch", m),
            LocalError::IncompleteBody(cause) => {
                tracing::debug!(%cause, "a part's body ended early");
                ApiError::bad_request("incomplete-body", "the body ended before all its bytes arrived")
            }
            LocalError::BadDigest => ApiError::bad_request("bad-digest", e.to_string()),
            LocalError::UploadNotFound => ApiError::new(StatusCode::NOT_FOUND, "upload-not-found", e.to_string()),
            LocalError::Storage(e) => e.into(),
        }
    }
}

fn parse_query<T: DeserializeOwned>(req: &HttpRequest) -> Result<T, ApiError> {
    web::Query::<T>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .map_err(|e| ApiError::bad_request("invalid-query", e.to_string()))
}

/// `PUT /api/v1/local/parts?key&upload&part&size&sha1&type&expires&sig`
async fn put_part(
    req: HttpRequest,
    store: web::Data<LocalStore>,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let grant = store.verify_part(parse_query::<PartQuery>(&req)?).map_err(LocalError::from)?;
    let signed = grant.query();
    if let Some(sent) = req.headers().get(CHECKSUM_HEADER) {
        if sent.as_bytes() != signed.sha1.as_bytes() {
            return Err(LocalError::Access(AccessError::SignatureInvalid).into());
        }
    }
    // Without Content-Length (chunked, HTTP/2) the byte count while streaming decides alone.
    if let Some(declared) = req.headers().get(header::CONTENT_LENGTH) {
        let declared = declared.to_str().ok().and_then(|v| v.parse::<u64>().ok());
        if declared != Some(signed.size) {
            let m = format!("Content-Length must be the {} bytes signed into the URL", signed.size);
            return Err(LocalError::SizeMismatch(m).into());
        }
    }
    let part = store.put_part(&grant, body).await?;
    let mut resp = HttpResponse::Ok();
    resp.insert_header((header::ETAG, part.etag))
        .insert_header((header::ACCESS_CONTROL_EXPOSE_HEADERS, "ETag, x-amz-checksum-sha1"));
    if let Some(sha1) = part.sha1 {
        resp.insert_header((CHECKSUM_HEADER, sha1));
    }
    Ok(resp.finish())
}

/// What a `Range` header asks of an object of a known size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// No usable range: serve everything with 200.
    Full,
    /// Bytes `start..=end`, both inside the object.
    Partial { start: u64, end: u64 },
    /// A well-formed range that misses the object: 416.
    Unsatisfiable,
}

/// Parses a single-range `Range` header (`bytes=a-b`, `bytes=a-`, `bytes=-n`). Multiple
/// ranges and anything malformed give [`ByteRange::Full`], as many servers do.
pub fn parse_range(header: &str, size: u64) -> ByteRange {
    let Some((unit, spec)) = header.split_once('=') else { return ByteRange::Full };
    if !unit.trim().eq_ignore_ascii_case("bytes") || spec.contains(',') {
        return ByteRange::Full;
    }
    let Some((first, last)) = spec.trim().split_once('-') else { return ByteRange::Full };
    let number = |s: &str| if s.bytes().all(|b| b.is_ascii_digit()) { s.parse::<u64>().ok() } else { None };
    match (first.trim(), last.trim()) {
        ("", "") => ByteRange::Full,
        ("", suffix) => match number(suffix) {
            None => ByteRange::Full,
            Some(0) => ByteRange::Unsatisfiable,
            Some(_) if size == 0 => ByteRange::Unsatisfiable,
            Some(n) => ByteRange::Partial { start: size - n.min(size), end: size - 1 },
        },
        (first, last) => {
            let Some(start) = number(first) else { return ByteRange::Full };
            let end = match last {
                "" => u64::MAX,
                last => match number(last) {
                    Some(end) if end >= start => end,
                    _ => return ByteRange::Full,
                },
            };
            if start >= size {
                ByteRange::Unsatisfiable
            } else {
                ByteRange::Partial { start, end: end.min(size - 1) }
            }
        }
    }
}

/// `GET`/`HEAD /api/v1/local/objects?key&name&type&expires&sig`
async fn get_object(req: HttpRequest, store: web::Data<LocalStore>) -> Result<HttpResponse, ApiError> {
    let grant = store.verify_object(parse_query::<ObjectQuery>(&req)?).map_err(LocalError::from)?;
    let q = grant.query();
    let object = store
        .object(&q.key)
        .await?
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, "object-not-found", "the stored object is missing"))?;
    let size = object.size();
    let range = req
        .headers()
        .get(header::RANGE)
        .and_then(|v| v.to_str().ok())
        .map_or(ByteRange::Full, |h| parse_range(h, size));
    let (status, start, len) = match range {
        ByteRange::Full => (StatusCode::OK, 0, size),
        ByteRange::Partial { start, end } => (StatusCode::PARTIAL_CONTENT, start, end - start + 1),
        ByteRange::Unsatisfiable => return Ok(unsatisfiable(size)),
    };
    let content_type =
        HeaderValue::from_str(&q.content_type).unwrap_or(HeaderValue::from_static("application/octet-stream"));
    let mut resp = HttpResponse::build(status);
    resp.insert_header((header::CONTENT_TYPE, content_type))
        .insert_header((header::CONTENT_DISPOSITION, super::content_disposition(&q.name)))
        .insert_header((header::ACCEPT_RANGES, "bytes"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::CONTENT_SECURITY_POLICY, "sandbox"))
        .insert_header((header::CACHE_CONTROL, "private, no-store"));
    if status == StatusCode::PARTIAL_CONTENT {
        resp.insert_header((header::CONTENT_RANGE, format!("bytes {start}-{}/{size}", start + len - 1)));
    }
    if req.method() == Method::HEAD {
        // The encoder sends no body for HEAD but takes Content-Length from the body's size.
        let nothing = futures_util::stream::empty::<Result<Bytes, std::io::Error>>();
        return Ok(resp.body(SizedStream::new(len, nothing)));
    }
    Ok(resp.body(SizedStream::new(len, object.stream(start, len))))
}

fn unsatisfiable(size: u64) -> HttpResponse {
    let e = ApiError::new(
        StatusCode::RANGE_NOT_SATISFIABLE,
        "range-not-satisfiable",
        format!("the range is outside the object's {size} bytes"),
    );
    let mut resp = e.error_response();
    if let Ok(v) = HeaderValue::from_str(&format!("bytes */{size}")) {
        resp.headers_mut().insert(header::CONTENT_RANGE, v);
    }
    resp
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod wire_tests;
