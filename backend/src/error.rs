//! One typed path from any error to what a client sees: an HTTP status and a JSON body
//! `{"code": "kebab-case", "message": "…"}`.
//!
//! Each domain (uploads, files, storage, tracker) has its own error enum that names its
//! stable code and status and converts into [`ApiError`]. Causes a client cannot act on
//! (a database down, a storage fault) are logged here and answered with a generic message,
//! so internals never leak into responses. The codes are the API contract: a unit test
//! fixes the exact JSON.

use actix_web::body::BoxBody;
use actix_web::dev::ServiceResponse;
use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
use actix_web::http::{header, StatusCode};
use actix_web::middleware::ErrorHandlerResponse;
use actix_web::{HttpRequest, HttpResponse, ResponseError};

pub use shardrop_engine::protocol::{Code, ErrorBody};

/// An error on its way to the client.
#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: Code,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, code: Code, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into() }
    }

    pub fn bad_request(code: Code, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// A fault of ours or of a backing service: logged in full, answered in general.
    pub fn internal(context: &str, cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(%cause, "{context}");
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, Code::Internal, "internal error; it has been logged")
    }

    /// A backing service (database, Redis, storage) did not answer.
    pub fn unavailable(context: &str, cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(%cause, "{context}");
        Self::new(StatusCode::SERVICE_UNAVAILABLE, Code::Unavailable, "a backing service is unavailable; retry later")
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse<BoxBody> {
        let mut resp = HttpResponse::build(self.status);
        if self.status == StatusCode::SERVICE_UNAVAILABLE || self.status == StatusCode::TOO_MANY_REQUESTS {
            resp.insert_header((header::RETRY_AFTER, "1"));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            // RFC 6750 (3): a 401 names the scheme to authenticate with.
            resp.insert_header((header::WWW_AUTHENTICATE, "Bearer realm=\"shardrop\""));
        }
        resp.json(ErrorBody { code: self.code.into(), message: self.message.clone() })
    }
}

impl From<sqlx::Error> for ApiError {
    fn from(e: sqlx::Error) -> Self {
        match e {
            sqlx::Error::PoolTimedOut | sqlx::Error::Io(_) | sqlx::Error::PoolClosed => {
                Self::unavailable("database unavailable", &e)
            }
            _ => Self::internal("database error", &e),
        }
    }
}

/// A JSON body that cannot be read: 400 for bad syntax, 422 for a wrong shape, 413 when
/// too large, 415 for another content type.
pub fn json_error(err: JsonPayloadError, _req: &HttpRequest) -> actix_web::Error {
    let e = match &err {
        JsonPayloadError::OverflowKnownLength { .. } | JsonPayloadError::Overflow { .. } => ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            Code::BodyTooLarge,
            "the request body is larger than this route accepts",
        ),
        JsonPayloadError::ContentType => ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Code::UnsupportedMediaType,
            "send the body as application/json",
        ),
        JsonPayloadError::Deserialize(de) if de.is_data() => {
            ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, Code::InvalidField, de.to_string())
        }
        JsonPayloadError::Deserialize(de) => ApiError::bad_request(Code::MalformedJson, de.to_string()),
        other => ApiError::bad_request(Code::MalformedJson, other.to_string()),
    };
    e.into()
}

/// A JSON body that must be an object. Serde also reads a struct from an array of its
/// fields, so a struct whose fields are all optional would take `[]`; no route takes that.
pub struct Object<T>(pub T);

impl<'de, T: serde::de::DeserializeOwned> serde::Deserialize<'de> for Object<T> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let map = serde_json::Map::<String, serde_json::Value>::deserialize(d)?;
        serde_json::from_value(serde_json::Value::Object(map)).map(Object).map_err(serde::de::Error::custom)
    }
}

/// A path segment of the wrong type (say, a part number that is not a number).
pub fn path_error(err: PathError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::bad_request(Code::InvalidPath, err.to_string()).into()
}

pub fn query_error(err: QueryPayloadError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::bad_request(Code::InvalidQuery, err.to_string()).into()
}

/// Gives the router's own bare errors (no route, wrong method) the same JSON shape, and a
/// 405 its `Allow` header: `allow` names the methods a route pattern takes (the route
/// table's, passed in so errors need not know the routes).
pub fn bare_error_to_json<B>(
    res: ServiceResponse<B>,
    allow: fn(&str) -> Option<&'static str>,
) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let is_json = res
        .response()
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if is_json {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let status = res.status();
    let (code, message) = match status {
        StatusCode::NOT_FOUND => (Code::NotFound, "no such route".to_owned()),
        StatusCode::METHOD_NOT_ALLOWED => (Code::MethodNotAllowed, "this route does not take that method".to_owned()),
        StatusCode::PAYLOAD_TOO_LARGE => (Code::BodyTooLarge, "the request body is too large".to_owned()),
        s if s.is_server_error() => (Code::Internal, "internal error; it has been logged".to_owned()),
        s => (Code::BadRequest, s.canonical_reason().unwrap_or("bad request").to_owned()),
    };
    let (req, _) = res.into_parts();
    let mut resp = HttpResponse::build(status);
    if status == StatusCode::METHOD_NOT_ALLOWED {
        // RFC 9110 (15.5.6): a 405 names the methods the resource does take.
        if let Some(allow) = req.match_pattern().and_then(|p| allow(&p)) {
            resp.insert_header((header::ALLOW, allow));
        }
    }
    let body = resp.json(ErrorBody { code: code.into(), message });
    Ok(ErrorHandlerResponse::Response(ServiceResponse::new(req, body).map_into_right_body()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::body::MessageBody;

    #[test]
    fn error_body_is_the_contract() {
        let resp =
            ApiError::new(StatusCode::NOT_FOUND, Code::UploadNotFound, "no upload with that id").error_response();
        assert_eq!(resp.status(), StatusCode::NOT_FOUND);
        assert_eq!(resp.headers().get(header::CONTENT_TYPE).unwrap(), "application/json");
        let body = resp.into_body().try_into_bytes().unwrap();
        assert_eq!(&body[..], br#"{"code":"upload-not-found","message":"no upload with that id"}"#);
    }

    #[test]
    fn internal_errors_do_not_leak_causes() {
        let e = ApiError::internal("x", &"password=hunter2 at db:5432");
        assert_eq!(e.status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(!e.message.contains("hunter2"));
    }
}
