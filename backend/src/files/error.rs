//! What can go wrong with a stored file.

use actix_web::http::StatusCode;

use crate::error::{ApiError, Code};
use crate::storage::StorageError;

#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("no file with that id")]
    NotFound,
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

impl From<FileError> for ApiError {
    fn from(e: FileError) -> Self {
        match e {
            FileError::NotFound => ApiError::new(StatusCode::NOT_FOUND, Code::FileNotFound, e.to_string()),
            FileError::Storage(e) => e.into(),
            FileError::Db(e) => e.into(),
        }
    }
}
