//! Object storage behind one narrow trait: the few S3 calls the control plane really makes.
//!
//! Two implementations: [`s3::S3Store`] for any S3-compatible server (Garage, Ceph RGW,
//! MinIO, AWS), and [`local::LocalStore`], the embedded default, which keeps parts as files
//! and is PUT to through this server at HMAC-signed URLs. Both refuse a part whose bytes do
//! not match the SHA-1 and length signed into its URL, so integrity never rests on the
//! client reporting honestly. Storage is the source of truth for which parts exist.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::stream::BoxStream;
use shardrop_engine::{Md5B64, Sha1B64};

pub mod error;
pub mod local;
pub mod local_http;
pub mod s3;

pub use error::StorageError;

/// One part of an upload that a client will PUT.
#[derive(Debug, Clone, Copy)]
pub struct PartTarget<'a> {
    /// The object's key (the store adds its own prefix).
    pub key: &'a str,
    /// The storage's multipart upload id. Every upload is multipart, even of one part:
    /// an `UploadPart` URL dies when its upload is completed or aborted, whereas a signed
    /// `PutObject` could overwrite a stored, verified object until it expires. The one
    /// exception is the empty file (S3 servers such as Garage refuse an empty part): `None`,
    /// a single PUT signed for the SHA-1 of no bytes, which can only ever write the same
    /// empty object again (and an empty object left by a late PUT is an orphan the sweep
    /// removes). Stores refuse `None` for anything but an empty part 1.
    pub upload: Option<&'a str>,
    /// 1-based part number.
    pub number: u32,
    /// Exact length in bytes; signed, so the storage refuses any other length.
    pub size: u64,
    /// SHA-1 of the part; signed, so the storage refuses other bytes.
    pub sha1: &'a Sha1B64,
    /// MD5 of the part, when the client gave it; signed as `Content-MD5`.
    pub md5: Option<&'a Md5B64>,
    /// Content type of the object.
    pub content_type: &'a str,
}

pub use shardrop_engine::protocol::PartCheck;

/// A request a client can make without credentials.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct SignedRequest {
    pub url: String,
    /// Always `PUT` for parts.
    pub method: String,
    /// Headers the client must send exactly as given (the browser adds `content-length`
    /// and `host` itself).
    pub headers: BTreeMap<String, String>,
    pub expires_at: DateTime<Utc>,
}

/// A part as the storage holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPart {
    pub number: u32,
    pub etag: String,
    pub size: u64,
    /// Base64 SHA-1, where the storage reports it.
    pub sha1: Option<String>,
}

/// What the storage says of a stored object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectStat {
    pub size: u64,
    /// Changes whenever the object is written again: the verifier records the one it read,
    /// and a link to the object first checks it still holds.
    pub etag: String,
}

/// An object found by [`Store::list_objects`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedObject {
    /// The key as the control plane names it (without the store's own prefix).
    pub key: String,
    pub modified: DateTime<Utc>,
}

/// How a download should be named and for how long its URL holds.
#[derive(Debug, Clone, Copy)]
pub struct DownloadTarget<'a> {
    pub key: &'a str,
    pub file_name: &'a str,
    pub content_type: &'a str,
    pub ttl: Duration,
}

/// The storage calls the control plane needs, and no more.
#[async_trait::async_trait]
pub trait Store: Send + Sync + 'static {
    /// Makes the storage ready at start-up (bucket CORS and lifecycle, folders).
    async fn prepare(&self) -> Result<(), StorageError>;
    /// Which part digest this storage enforces (known once `prepare` has run).
    fn part_check(&self) -> PartCheck {
        PartCheck::Sha1
    }
    /// Cheap reachability check for `/readyz`.
    async fn ping(&self) -> Result<(), StorageError>;
    /// Starts a multipart upload with SHA-1 part checksums; returns the storage's upload id.
    async fn create_multipart(&self, key: &str, content_type: &str) -> Result<String, StorageError>;
    /// Signs the PUT of one part, binding its SHA-1 and length into the signature.
    async fn sign_part(&self, part: PartTarget<'_>, ttl: Duration) -> Result<SignedRequest, StorageError>;
    /// Every part the storage holds for an upload, in number order (all pages).
    /// An upload the storage no longer knows is [`StorageError::NoSuchUpload`].
    async fn list_parts(&self, key: &str, upload: &str) -> Result<Vec<StoredPart>, StorageError>;
    /// Composes the object from exactly `parts` (which must all exist).
    async fn complete(&self, key: &str, upload: &str, parts: &[StoredPart]) -> Result<(), StorageError>;
    /// Drops an unfinished upload and its parts. Aborting an unknown upload is not an error.
    async fn abort(&self, key: &str, upload: &str) -> Result<(), StorageError>;
    /// Size and ETag of a stored object, or `None` when there is none.
    async fn stat(&self, key: &str) -> Result<Option<ObjectStat>, StorageError>;
    /// The size of a stored object, or `None` when there is none.
    async fn head(&self, key: &str) -> Result<Option<u64>, StorageError> {
        Ok(self.stat(key).await?.map(|s| s.size))
    }
    /// Every object whose key starts with `prefix`, all pages (the orphan sweep's view).
    async fn list_objects(&self, prefix: &str) -> Result<Vec<ListedObject>, StorageError>;
    /// Deletes an object. Deleting a missing object is not an error.
    async fn delete(&self, key: &str) -> Result<(), StorageError>;
    /// A short-lived URL that downloads the object (Range works).
    async fn sign_download(&self, target: DownloadTarget<'_>) -> Result<String, StorageError>;
    /// Streams the object's bytes (used to verify a file's SHA-1 from what is stored).
    async fn read(&self, key: &str) -> Result<BoxStream<'static, Result<Bytes, StorageError>>, StorageError>;
    /// Streams `len` bytes of the object from `offset` (a proof-of-possession range).
    async fn read_range(
        &self,
        key: &str,
        offset: u64,
        len: u64,
    ) -> Result<BoxStream<'static, Result<Bytes, StorageError>>, StorageError>;
}

/// `Content-Disposition` for a download: `attachment` with an ASCII fallback and the full
/// name in RFC 5987 form, so any Unicode name, quote or slash is safe.
pub fn content_disposition(file_name: &str) -> String {
    use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
    let fallback: String = file_name
        .chars()
        .map(|c| if c.is_ascii_graphic() && !matches!(c, '"' | '\\' | '/' | ';' | '%') || c == ' ' { c } else { '_' })
        .collect();
    let encoded = utf8_percent_encode(file_name, NON_ALPHANUMERIC);
    format!("attachment; filename=\"{fallback}\"; filename*=UTF-8''{encoded}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_disposition_is_safe_for_any_name() {
        assert_eq!(
            content_disposition("a \"b\"/c;ü.txt"),
            "attachment; filename=\"a _b__c__.txt\"; filename*=UTF-8''a%20%22b%22%2Fc%3B%C3%BC%2Etxt"
        );
        assert!(!content_disposition("x\r\nSet-Cookie: y").contains('\n'));
    }
}
