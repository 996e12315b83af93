//! Uploads: from "I have a file" to a stored, composed object.
//!
//! The backend plans the parts, starts the storage's multipart upload, signs part URLs in
//! batches, counts reported parts in the tracker, and composes the object exactly once when
//! the set is whole, after checking it against `ListParts` (storage is the source of
//! truth). It never carries file bytes. Any replica may serve any step: all shared state
//! is in SQL, the tracker, and storage.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::files::FileView;
use crate::storage::PartCheck;

pub mod dedup;
pub mod error;
pub mod quota;
pub mod reaper;
pub mod repo;
pub mod routes;
pub mod service;
pub(crate) mod validate;

pub use error::UploadError;

/// `POST /api/v1/uploads`
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateUpload {
    /// The file's name (a relative path for files from a dropped folder): 1 to 1024 bytes
    /// of UTF-8 without control characters or bidirectional controls (U+061C, U+200E,
    /// U+200F, U+202A to U+202E, U+2066 to U+2069), which make a name read as another.
    #[schema(
        example = "holiday.mp4",
        min_length = 1,
        max_length = 1024,
        pattern = r"^[^\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]+$"
    )]
    pub name: String,
    /// Exact size in bytes; the served document gives this server's maximum.
    #[schema(example = 1073741824)]
    #[serde(deserialize_with = "validate::integer")]
    pub size: u64,
    /// MIME type (printable ASCII with a `/`); `application/octet-stream` when absent or empty.
    #[schema(max_length = 255, pattern = r"^([ -~]*/[ -~]*)?$")]
    pub content_type: Option<String>,
    /// Hex SHA-1 of the whole file, when the client already knows it.
    #[schema(pattern = r"^[0-9a-fA-F]{40}$")]
    pub sha1: Option<String>,
    /// The file's modification time (ms since the epoch): with name and size it lets a
    /// client that lost its state resume the upload it started.
    #[serde(default, deserialize_with = "validate::opt_integer")]
    pub last_modified: Option<i64>,
    /// Hex SHA-1 of the file's content probe (three 64 KiB windows: start, middle, end;
    /// the whole file when it is at most 192 KiB). When a verified file has the same size
    /// and probe, the answer says `dedup_candidate`: hash the whole file before sending.
    #[schema(pattern = r"^[0-9a-fA-F]{40}$")]
    pub probe: Option<String>,
}

/// Where an upload stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum UploadState {
    /// Parts are being sent.
    Uploading,
    /// Every part is in; a replica is composing the object.
    Completing,
    /// Composed; `file` is set.
    Complete,
    /// The content was already stored; nothing more needs sending; `file` is set.
    Instant,
}

/// An upload and its done parts.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UploadView {
    #[schema(example = "up_0c7f4b3a9d2e4f61b5a8c3d2e1f0a9b8")]
    pub upload_id: String,
    pub name: String,
    pub size: u64,
    pub content_type: String,
    /// Every part but the last has exactly this many bytes.
    pub part_size: u64,
    /// 1: the whole file is one part (still a multipart upload of the storage's).
    pub part_count: u32,
    /// Numbers of the parts already stored, ascending.
    pub parts_done: Vec<u32>,
    pub state: UploadState,
    /// The whole-file SHA-1 given so far, if any.
    pub sha1: Option<String>,
    /// When the upload is aborted if nothing more happens.
    pub expires_at: DateTime<Utc>,
    /// Set once `state` is `complete` or `instant`.
    pub file: Option<FileView>,
    /// Which digest of each part the storage itself checks: `md5` means the client must
    /// give each part's MD5 when signing, as well as its SHA-1.
    pub part_check: PartCheck,
    /// A verified file has this size and content probe: the content may be stored
    /// already, so hash the whole file and give its SHA-1 (`PATCH`) before sending parts.
    pub dedup_candidate: bool,
    /// The claimed SHA-1 names content that is stored already: prove the client holds it
    /// by giving the SHA-1 of this byte range (`POST /uploads/{id}/proof`); right, the
    /// upload ends as `instant` with nothing more to send.
    pub challenge: Option<Challenge>,
}

/// A byte range of the file, picked at random by the server. The answer is the hex
/// SHA-1 of the nonce's 16 bytes followed by the range's bytes (so it is never the file's
/// own SHA-1, even when the range is the whole file).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Challenge {
    pub offset: u64,
    /// At most 1 MiB.
    pub length: u64,
    /// Hex of 16 random bytes.
    #[schema(pattern = "^[0-9a-f]{32}$")]
    pub nonce: String,
}

/// `POST /api/v1/uploads/{upload_id}/proof`
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProofRequest {
    /// Hex SHA-1 of the challenge's nonce bytes followed by its byte range of the file.
    #[schema(pattern = r"^[0-9a-fA-F]{40}$")]
    pub sha1: String,
}

/// `POST /api/v1/uploads/{upload_id}/parts/sign`
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignRequest {
    /// At least one; the served document gives this server's most per request.
    #[schema(min_items = 1)]
    pub parts: Vec<SignPart>,
}

#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SignPart {
    /// 1-based; at most the upload's `part_count`.
    #[schema(minimum = 1, maximum = 10000)]
    #[serde(deserialize_with = "validate::integer")]
    pub number: u32,
    /// Base64 of the part's raw 20-byte SHA-1 (what S3's `x-amz-checksum-sha1` carries).
    #[schema(example = "2jmj7l5rSw0yVb/vlWAYkK/YBwk=", pattern = r"^[A-Za-z0-9+/]{26}[AEIMQUYcgkosw048]=$")]
    pub sha1: String,
    /// The part's length; must be what the plan gives for that number.
    #[schema(maximum = 5368709120_i64)]
    #[serde(deserialize_with = "validate::integer")]
    pub size: u64,
    /// Base64 of the part's raw 16-byte MD5 (what `Content-MD5` carries). Required when the
    /// upload's `part_check` is `md5`; signed into the URL whenever given.
    #[schema(example = "1B2M2Y8AsgTpgAmY7PhCfg==", pattern = r"^[A-Za-z0-9+/]{21}[AQgw]==$")]
    pub md5: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SignResponse {
    pub parts: Vec<SignedPart>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct SignedPart {
    pub number: u32,
    pub url: String,
    /// `PUT`.
    pub method: String,
    /// Send each exactly as given; the browser adds `content-length` and `host` itself.
    pub headers: std::collections::BTreeMap<String, String>,
    pub expires_at: DateTime<Utc>,
}

/// `PUT /api/v1/uploads/{upload_id}/parts/{number}`
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReportPart {
    /// The `ETag` header of the part PUT's answer, as given.
    #[schema(min_length = 1, max_length = 256, pattern = "^[!-~]+$")]
    pub etag: String,
    /// Base64 SHA-1 of the part, as signed.
    #[schema(pattern = r"^[A-Za-z0-9+/]{26}[AEIMQUYcgkosw048]=$")]
    pub sha1: String,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ReportAnswer {
    /// How many distinct parts are stored so far (the list is in `GET /uploads/{id}`).
    pub parts_done: u32,
    pub part_count: u32,
    pub state: UploadState,
    /// Set when this report completed the upload.
    pub file: Option<FileView>,
}

/// `POST /api/v1/uploads/{upload_id}/complete`
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CompleteRequest {
    /// Hex SHA-1 of the whole file (recommended: the server verifies it from the stored bytes).
    #[schema(pattern = r"^[0-9a-fA-F]{40}$")]
    pub sha1: Option<String>,
}

/// `PATCH /api/v1/uploads/{upload_id}`
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PatchUpload {
    /// Hex SHA-1 of the whole file, once the client has it.
    #[schema(pattern = r"^[0-9a-fA-F]{40}$")]
    pub sha1: String,
}
