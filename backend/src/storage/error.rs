//! Storage errors: what the control plane must tell apart, and everything else.

use actix_web::http::StatusCode;

use crate::error::{ApiError, Code};

#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    /// The storage no longer knows this multipart upload (completed, aborted, or purged,
    /// as MinIO does after 24 h).
    #[error("the storage has no such multipart upload")]
    NoSuchUpload,
    #[error("no such object")]
    NotFound,
    /// Complete named a part the storage does not hold, or with another ETag.
    #[error("a part listed for completion is not stored: {0}")]
    InvalidPart(String),
    /// The storage is unreachable or answered with a fault.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    #[error("storage: {0}")]
    Other(String),
}

impl From<StorageError> for ApiError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::NotFound => {
                ApiError::new(StatusCode::NOT_FOUND, Code::ObjectNotFound, "the stored object is missing")
            }
            StorageError::Unavailable(_) => ApiError::unavailable("storage unavailable", &e),
            _ => ApiError::internal("storage error", &e),
        }
    }
}

impl From<std::io::Error> for StorageError {
    fn from(e: std::io::Error) -> Self {
        if e.kind() == std::io::ErrorKind::NotFound {
            StorageError::NotFound
        } else {
            StorageError::Other(e.to_string())
        }
    }
}
