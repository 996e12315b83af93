//! Why a part PUT or a download through the local store's routes was refused.
//!
//! The variants mirror S3's answers (`SignatureDoesNotMatch`, `Request has expired`,
//! `IncompleteBody`, `BadDigest`, `NoSuchUpload`); `local_http` maps each to a stable
//! code and status.

use super::signing::AccessError;
use crate::storage::StorageError;

/// Why a part PUT or a download was refused.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    #[error(transparent)]
    Access(#[from] AccessError),
    #[error("{0}")]
    SizeMismatch(String),
    #[error("the body ended before all its bytes arrived: {0}")]
    IncompleteBody(String),
    #[error("the part's bytes do not hash to the SHA-1 signed into its URL")]
    BadDigest,
    #[error("the storage has no such multipart upload")]
    UploadNotFound,
    #[error(transparent)]
    Storage(StorageError),
}

impl From<StorageError> for LocalError {
    fn from(e: StorageError) -> Self {
        match e {
            StorageError::NoSuchUpload => Self::UploadNotFound,
            e => Self::Storage(e),
        }
    }
}

impl From<std::io::Error> for LocalError {
    fn from(e: std::io::Error) -> Self {
        Self::Storage(StorageError::Other(e.to_string()))
    }
}
