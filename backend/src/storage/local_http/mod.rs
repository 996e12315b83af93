//! The HTTP face of [`LocalStore`]: the routes its signed URLs point at, standing in for an
//! S3 server's presigned `UploadPart`/`PutObject` and `GetObject`.
//!
//! Each request is checked in the order S3 checks it: signature, then expiry, then the
//! declared length, then (while streaming, never buffering) the real length and SHA-1.
//! A body that goes silent for longer than [`BodyTimeout`] is given up with `408` (as S3
//! answers `RequestTimeout`): a stalled sender holds no socket or temp file for long.
//! Downloads are served from the API's own origin, so they carry `attachment`,
//! `nosniff` and a sandbox CSP: a stored HTML file can never run as this site.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix_web::body::SizedStream;
use actix_web::error::PayloadError;
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{ConnectionType, Method, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use bytes::Bytes;
use futures_util::stream::{LocalBoxStream, Stream, StreamExt};
use serde::de::DeserializeOwned;

use super::local::{
    AccessError, LocalError, LocalStore, ObjectQuery, PartQuery, CHECKSUM_HEADER, OBJECTS_PATH, PARTS_PATH,
};
use crate::error::{ApiError, Code};

/// Registers the part PUT and download routes; they need `web::Data<LocalStore>`, and take
/// `web::Data<BodyTimeout>` when given (otherwise its default).
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
                Code::SignatureInvalid,
                "The request signature we calculated does not match the signature you provided",
            ),
            LocalError::Access(AccessError::Expired) => {
                ApiError::new(StatusCode::FORBIDDEN, Code::RequestExpired, "Request has expired")
            }
            LocalError::SizeMismatch(m) => ApiError::bad_request(Code::SizeMismatch, m),
            LocalError::IncompleteBody(cause) => {
                tracing::debug!(%cause, "a part's body ended early");
                ApiError::bad_request(Code::IncompleteBody, "the body ended before all its bytes arrived")
            }
            LocalError::BadDigest => ApiError::bad_request(Code::BadDigest, e.to_string()),
            LocalError::UploadNotFound => ApiError::new(StatusCode::NOT_FOUND, Code::UploadNotFound, e.to_string()),
            LocalError::Storage(e) => e.into(),
        }
    }
}

fn parse_query<T: DeserializeOwned>(req: &HttpRequest) -> Result<T, ApiError> {
    web::Query::<T>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .map_err(|e| ApiError::bad_request(Code::InvalidQuery, e.to_string()))
}

/// Longest wait for the next bytes of a part's body (`storage.local.body_timeout_secs`);
/// `None`: no limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyTimeout(pub Option<Duration>);

impl BodyTimeout {
    /// From the setting, where 0 means no limit.
    pub fn from_secs(secs: u64) -> Self {
        Self((secs > 0).then(|| Duration::from_secs(secs)))
    }
}

impl Default for BodyTimeout {
    fn default() -> Self {
        Self::from_secs(crate::config::LocalStoreSettings::default().body_timeout_secs)
    }
}

/// Why a part's body stopped short.
#[derive(Debug, thiserror::Error)]
enum BodyError {
    #[error(transparent)]
    Payload(#[from] PayloadError),
    #[error("no bytes of the body arrived for {0:?}")]
    Idle(Duration),
}

/// `body`, failing with [`BodyError::Idle`] when its next bytes take longer than `timeout`.
/// The flag answers whether that is how it ended (the store sees only that the body broke).
fn idle_limited<S>(
    body: S,
    timeout: BodyTimeout,
) -> (LocalBoxStream<'static, Result<Bytes, BodyError>>, Arc<AtomicBool>)
where
    S: Stream<Item = Result<Bytes, PayloadError>> + Unpin + 'static,
{
    let idled = Arc::new(AtomicBool::new(false));
    let Some(limit) = timeout.0 else { return (body.map(|c| c.map_err(BodyError::from)).boxed_local(), idled) };
    let flag = idled.clone();
    let stream = futures_util::stream::unfold((body, flag), move |(mut body, flag)| async move {
        match tokio::time::timeout(limit, body.next()).await {
            Ok(next) => next.map(|chunk| (chunk.map_err(BodyError::from), (body, flag))),
            Err(_) => {
                flag.store(true, Ordering::Relaxed);
                Some((Err(BodyError::Idle(limit)), (body, flag)))
            }
        }
    });
    (stream.boxed_local(), idled)
}

/// `408 body-timeout`, closing the connection: what is left of the body is not read.
fn body_timed_out(timeout: BodyTimeout) -> HttpResponse {
    let secs = timeout.0.unwrap_or_default().as_secs_f64();
    let message = format!("no bytes of the body arrived for {secs} s; nothing was stored, send the part again");
    let mut resp = ApiError::new(StatusCode::REQUEST_TIMEOUT, Code::BodyTimeout, message).error_response();
    resp.head_mut().set_connection_type(ConnectionType::Close);
    resp
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
    let timeout = req.app_data::<web::Data<BodyTimeout>>().map_or_else(BodyTimeout::default, |t| *t.get_ref());
    let (body, idled) = idle_limited(body, timeout);
    let part = match store.put_part(&grant, body).await {
        Ok(part) => part,
        // The temp file went with the failed put; the socket goes with this answer.
        Err(e) if idled.load(Ordering::Relaxed) => {
            tracing::debug!(cause = %e, key = %signed.key, "a part PUT went silent; given up");
            return Ok(body_timed_out(timeout));
        }
        Err(e) => return Err(e.into()),
    };
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
        .ok_or_else(|| ApiError::new(StatusCode::NOT_FOUND, Code::ObjectNotFound, "the stored object is missing"))?;
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
        Code::RangeNotSatisfiable,
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
