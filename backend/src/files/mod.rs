//! Stored files: what an upload becomes once its object is composed.
//!
//! A file's SHA-1 starts as the client's claim and becomes the server's own once the
//! verifier has hashed the stored bytes; only verified files serve as dedup targets
//! ("instant upload"), so a claimed hash alone never grants content.

pub mod error;
pub mod repo;
pub mod routes;
pub mod shares;
pub mod verify;

pub use error::FileError;
pub use repo::FileRow;

pub use shardrop_engine::protocol::FileView;

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
