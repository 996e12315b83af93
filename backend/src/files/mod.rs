//! Stored files: what an upload becomes once its object is composed.
//!
//! A file's SHA-1 starts as the client's claim and becomes the server's own once the
//! verifier has hashed the stored bytes; only verified files serve as dedup targets
//! ("instant upload"), so a claimed hash alone never grants content.

use chrono::{DateTime, Utc};
use serde::Serialize;

pub mod error;
pub mod repo;
pub mod routes;
pub mod shares;
pub mod verify;

pub use error::FileError;
pub use repo::FileRow;

/// A stored file as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct FileView {
    #[schema(example = "fi_5f0c6a0f3e9b4e53a1c2b7d4e8f90a1b")]
    pub file_id: String,
    pub name: String,
    pub size: u64,
    pub content_type: String,
    /// Hex SHA-1 of the content: the client's claim while `verified` is false.
    pub sha1: Option<String>,
    /// True once the server has hashed the stored bytes and they matched.
    pub verified: bool,
    /// `pending` (not yet hashed by the server), `verified`, or `corrupt`.
    pub status: String,
    pub created_at: DateTime<Utc>,
}

impl From<&FileRow> for FileView {
    fn from(f: &FileRow) -> Self {
        Self {
            file_id: f.id.clone(),
            name: f.name.clone(),
            size: u64::try_from(f.size).unwrap_or(0),
            content_type: f.content_type.clone(),
            sha1: f.sha1.clone(),
            verified: f.status == repo::VERIFIED,
            status: f.status.clone(),
            created_at: crate::db::to_time(f.created_at),
        }
    }
}
