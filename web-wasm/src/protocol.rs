//! The wire protocol of `/api/v1/uploads`: the one definition that the backend serves and
//! the engine (and any Rust client) speaks.
//!
//! Both sides compile against these types, so a field renamed, a state added or an error
//! code changed is a compile error on the other side, not a string that silently stops
//! matching. The backend derives the OpenAPI schemas from them (feature `openapi`); the
//! engine builds without that feature, so the browser's wasm carries none of it.
//!
//! Integers may arrive as `172.0` (JSON Schema counts that as the integer 172, and some
//! encoders write whole numbers so): [`de::integer`] reads both.
//!
//! Over 400 lines on purpose: the whole contract reads in one file, each type with the
//! text the OpenAPI document shows for it.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// `POST /api/v1/uploads`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CreateUpload {
    /// The file's name (a relative path for files from a dropped folder): 1 to 1024 bytes
    /// of UTF-8 without control characters or bidirectional controls (U+061C, U+200E,
    /// U+200F, U+202A to U+202E, U+2066 to U+2069), which make a name read as another.
    #[cfg_attr(
        feature = "openapi",
        schema(
            example = "holiday.mp4",
            min_length = 1,
            max_length = 1024,
            pattern = r"^[^\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]+$"
        )
    )]
    pub name: String,
    /// Exact size in bytes; the served document gives this server's maximum.
    #[cfg_attr(feature = "openapi", schema(example = 1073741824))]
    #[serde(deserialize_with = "de::integer")]
    pub size: u64,
    /// MIME type (printable ASCII with a `/`); `application/octet-stream` when absent or empty.
    #[cfg_attr(feature = "openapi", schema(max_length = 255, pattern = r"^([ -~]*/[ -~]*)?$"))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    /// Hex SHA-1 of the whole file, when the client already knows it.
    #[cfg_attr(feature = "openapi", schema(pattern = r"^[0-9a-fA-F]{40}$"))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha1: Option<String>,
    /// The file's modification time (ms since the epoch): with name and size it lets a
    /// client that lost its state resume the upload it started.
    #[serde(default, deserialize_with = "de::opt_integer", skip_serializing_if = "Option::is_none")]
    pub last_modified: Option<i64>,
    /// Hex SHA-1 of the file's content probe (three 64 KiB windows: start, middle, end;
    /// the whole file when it is at most 192 KiB). When a verified file has the same size
    /// and probe, the answer says `dedup_candidate`: hash the whole file before sending.
    #[cfg_attr(feature = "openapi", schema(pattern = r"^[0-9a-fA-F]{40}$"))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub probe: Option<String>,
    /// For a file of one part: its part to sign in this same request (as
    /// `POST /uploads/{id}/parts/sign` takes it); the URL comes back in `signed`, and the file
    /// is stored in three requests (this one, the PUT, the report). Checked against the plan
    /// before anything is made; a resumed upload signs nothing here.
    #[cfg_attr(feature = "openapi", schema(min_items = 1))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parts: Option<Vec<SignPart>>,
}

/// Where an upload stands, as the API shows it. (The backend's rows have one more state,
/// `aborting`, that no client ever sees: such an upload answers `upload-not-found`.)
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
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

/// Which digest of each part the storage itself checks, so that a part corrupted on the
/// way is refused before it is stored. The backend detects it at start-up, never assumes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum PartCheck {
    /// `x-amz-checksum-sha1` (Garage, AWS, MinIO, Ceph from Squid on, the local store).
    Sha1,
    /// `Content-MD5` (servers that ignore SHA-1 checksums, such as Ceph RGW 16): clients
    /// sign each part with its MD5 as well as its SHA-1.
    Md5,
}

/// A stored file as the API shows it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct FileView {
    #[cfg_attr(feature = "openapi", schema(example = "fi_5f0c6a0f3e9b4e53a1c2b7d4e8f90a1b"))]
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

/// An upload and its done parts.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UploadView {
    #[cfg_attr(feature = "openapi", schema(example = "up_0c7f4b3a9d2e4f61b5a8c3d2e1f0a9b8"))]
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
    /// The URLs of the `parts` that a new upload's `POST /uploads` asked to sign (absent
    /// otherwise: a resumed upload, or one linked to stored content at once).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signed: Option<Vec<SignedPart>>,
}

impl UploadView {
    /// The stored file, when the content turned out to be stored already.
    pub fn instant_file(&self) -> Option<&FileView> {
        self.file.as_ref().filter(|_| self.state == UploadState::Instant)
    }
}

/// An upload in progress, as `GET /uploads` lists it (its parts: `GET /uploads/{id}`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UploadSummary {
    pub upload_id: String,
    pub name: String,
    pub size: u64,
    pub content_type: String,
    pub part_size: u64,
    pub part_count: u32,
    /// `uploading` or `completing`.
    pub state: UploadState,
    /// The whole-file SHA-1 given so far, if any.
    pub sha1: Option<String>,
    /// The file's modification time (ms) given at the start, if any.
    pub last_modified: Option<i64>,
    pub created_at: DateTime<Utc>,
    /// When the upload is aborted if nothing more happens.
    pub expires_at: DateTime<Utc>,
}

/// `GET /api/v1/uploads`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UploadList {
    /// Newest first.
    pub uploads: Vec<UploadSummary>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// A byte range of the file, picked at random by the server. The answer is the hex
/// SHA-1 of the nonce's 16 bytes followed by the range's bytes (so it is never the file's
/// own SHA-1, even when the range is the whole file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Challenge {
    pub offset: u64,
    /// At most 1 MiB.
    pub length: u64,
    /// Hex of 16 random bytes.
    #[cfg_attr(feature = "openapi", schema(pattern = "^[0-9a-f]{32}$"))]
    pub nonce: String,
}

/// `POST /api/v1/uploads/{upload_id}/proof`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ProofRequest {
    /// Hex SHA-1 of the challenge's nonce bytes followed by its byte range of the file.
    #[cfg_attr(feature = "openapi", schema(pattern = r"^[0-9a-fA-F]{40}$"))]
    pub sha1: String,
}

/// `POST /api/v1/uploads/{upload_id}/parts/sign`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SignRequest {
    /// At least one; the served document gives this server's most per request.
    #[cfg_attr(feature = "openapi", schema(min_items = 1))]
    pub parts: Vec<SignPart>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct SignPart {
    /// 1-based; at most the upload's `part_count`.
    #[cfg_attr(feature = "openapi", schema(minimum = 1, maximum = 10000))]
    #[serde(deserialize_with = "de::integer")]
    pub number: u32,
    /// Base64 of the part's raw 20-byte SHA-1 (what S3's `x-amz-checksum-sha1` carries).
    #[cfg_attr(
        feature = "openapi",
        schema(example = "2jmj7l5rSw0yVb/vlWAYkK/YBwk=", pattern = r"^[A-Za-z0-9+/]{26}[AEIMQUYcgkosw048]=$")
    )]
    pub sha1: String,
    /// The part's length; must be what the plan gives for that number.
    #[cfg_attr(feature = "openapi", schema(maximum = 5368709120_i64))]
    #[serde(deserialize_with = "de::integer")]
    pub size: u64,
    /// Base64 of the part's raw 16-byte MD5 (what `Content-MD5` carries). Required when the
    /// upload's `part_check` is `md5`; signed into the URL whenever given.
    #[cfg_attr(
        feature = "openapi",
        schema(example = "1B2M2Y8AsgTpgAmY7PhCfg==", pattern = r"^[A-Za-z0-9+/]{21}[AQgw]==$")
    )]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub md5: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SignResponse {
    pub parts: Vec<SignedPart>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SignedPart {
    pub number: u32,
    pub url: String,
    /// `PUT`.
    pub method: String,
    /// Send each exactly as given; the browser adds `content-length` and `host` itself.
    pub headers: BTreeMap<String, String>,
    pub expires_at: DateTime<Utc>,
}

/// `PUT /api/v1/uploads/{upload_id}/parts/{number}`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct ReportPart {
    /// The `ETag` header of the part PUT's answer, as given.
    #[cfg_attr(feature = "openapi", schema(min_length = 1, max_length = 256, pattern = "^[!-~]+$"))]
    pub etag: String,
    /// Base64 SHA-1 of the part, as signed.
    #[cfg_attr(feature = "openapi", schema(pattern = r"^[A-Za-z0-9+/]{26}[AEIMQUYcgkosw048]=$"))]
    pub sha1: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReportAnswer {
    /// How many distinct parts are stored so far (the list is in `GET /uploads/{id}`).
    pub parts_done: u32,
    pub part_count: u32,
    pub state: UploadState,
    /// Set when this report completed the upload.
    pub file: Option<FileView>,
}

/// `POST /api/v1/uploads/{upload_id}/complete`
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct CompleteRequest {
    /// Hex SHA-1 of the whole file (recommended: the server verifies it from the stored bytes).
    #[cfg_attr(feature = "openapi", schema(pattern = r"^[0-9a-fA-F]{40}$"))]
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sha1: Option<String>,
}

/// `PATCH /api/v1/uploads/{upload_id}`
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(deny_unknown_fields)]
pub struct PatchUpload {
    /// Hex SHA-1 of the whole file, once the client has it.
    #[cfg_attr(feature = "openapi", schema(pattern = r"^[0-9a-fA-F]{40}$"))]
    pub sha1: String,
}

/// The body of every error answer of the API.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// Stable, kebab-case: branch on this.
    #[cfg_attr(feature = "openapi", schema(example = "upload-not-found"))]
    pub code: String,
    /// For people: may change wording between releases.
    pub message: String,
}

macro_rules! codes {
    ($( $(#[doc = $doc:expr])* $name:ident = $code:literal, )*) => {
        /// Every error code the server sends, in `{"code", "message"}`. Clients branch on
        /// these; a test holds this list, the OpenAPI document and `docs/api.md` to each
        /// other, and to the codes the backend really constructs.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Code {
            $( $(#[doc = $doc])* $name, )*
        }

        impl Code {
            pub const ALL: &'static [Code] = &[$(Code::$name,)*];

            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Code::$name => $code,)*
                }
            }

            /// The variant's name as it is written in Rust (`UploadNotFound`).
            pub const fn rust_name(self) -> &'static str {
                match self {
                    $(Code::$name => stringify!($name),)*
                }
            }

            pub fn parse(code: &str) -> Option<Code> {
                Self::ALL.iter().copied().find(|c| c.as_str() == code)
            }
        }
    };
}

codes! {
    // Any route.
    /// The body is not JSON.
    MalformedJson = "malformed-json",
    /// A path segment of the wrong type.
    InvalidPath = "invalid-path",
    /// A query parameter of the wrong type.
    InvalidQuery = "invalid-query",
    /// A field missing, unknown or of the wrong type.
    InvalidField = "invalid-field",
    /// A request body over the route's limit.
    BodyTooLarge = "body-too-large",
    /// A body that is not `application/json`.
    UnsupportedMediaType = "unsupported-media-type",
    /// No such route.
    NotFound = "not-found",
    /// The route exists, the method does not.
    MethodNotAllowed = "method-not-allowed",
    /// Another request the router refused.
    BadRequest = "bad-request",
    /// Over a rate limit; see `Retry-After`.
    RateLimited = "rate-limited",
    /// SQL, Redis or storage did not answer.
    Unavailable = "unavailable",
    /// A fault of ours, logged with its cause.
    Internal = "internal",

    // Accounts.
    Unauthorized = "unauthorized",
    InvalidCredentials = "invalid-credentials",
    SignupClosed = "signup-closed",
    WrongPassword = "wrong-password",
    UsernameTaken = "username-taken",
    InvalidUsername = "invalid-username",
    InvalidPassword = "invalid-password",
    AuthBusy = "auth-busy",

    // Uploads.
    UploadNotFound = "upload-not-found",
    FileTooLarge = "file-too-large",
    QuotaExceeded = "quota-exceeded",
    InvalidName = "invalid-name",
    InvalidContentType = "invalid-content-type",
    InvalidSha1 = "invalid-sha1",
    InvalidProbe = "invalid-probe",
    InvalidMd5 = "invalid-md5",
    Md5Required = "md5-required",
    InvalidPartNumber = "invalid-part-number",
    InvalidPartSize = "invalid-part-size",
    InvalidEtag = "invalid-etag",
    InvalidBatch = "invalid-batch",
    InvalidEmptyPart = "invalid-empty-part",
    /// The upload is complete (or instant): nothing more to send, sign or abort.
    UploadComplete = "upload-complete",
    /// A replica is composing the upload; ask again shortly.
    UploadCompleting = "upload-completing",
    /// The storage lacks parts; the message lists them.
    PartsMissing = "parts-missing",
    Sha1Conflict = "sha1-conflict",
    PartSha1Conflict = "part-sha1-conflict",
    /// No challenge to answer (none asked, or used up).
    NoChallenge = "no-challenge",
    /// The proof of possession does not match the stored bytes.
    ChallengeFailed = "challenge-failed",

    // Files and shares.
    FileNotFound = "file-not-found",
    InvalidLimit = "invalid-limit",
    InvalidCursor = "invalid-cursor",
    InvalidTtl = "invalid-ttl",
    ShareNotFound = "share-not-found",
    ShareExpired = "share-expired",
    ShareRevoked = "share-revoked",
    /// The stored object of a file is missing.
    ObjectNotFound = "object-not-found",

    // The embedded store's part and download URLs (not part of the API document: they
    // answer like S3 does).
    RangeNotSatisfiable = "range-not-satisfiable",
    SignatureInvalid = "signature-invalid",
    RequestExpired = "request-expired",
    BadDigest = "bad-digest",
    SizeMismatch = "size-mismatch",
    IncompleteBody = "incomplete-body",
    BodyTimeout = "body-timeout",
}

impl Code {
    /// Sent only on the embedded store's own URLs, which the OpenAPI document does not
    /// describe (they stand in for S3's).
    pub fn local_store_only(self) -> bool {
        matches!(
            self,
            Code::SignatureInvalid
                | Code::RequestExpired
                | Code::BadDigest
                | Code::SizeMismatch
                | Code::IncompleteBody
                | Code::BodyTimeout
                | Code::RangeNotSatisfiable
        )
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl From<Code> for String {
    fn from(c: Code) -> String {
        c.as_str().to_owned()
    }
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// Why a storage answered a presigned part PUT with an error, as far as a client must tell
/// them apart: a URL that is no longer good is signed again; anything else is retried or
/// reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StorageRefusal {
    /// The URL's signature is no longer accepted: sign the part again. S3 answers `403
    /// AccessDenied` "Request has expired"; Garage answers `400` "Date is too old" (its
    /// check of `X-Amz-Date` against the signature's lifetime); the embedded store answers
    /// `403 request-expired`. A `403` for a bad signature is taken the same way: a fresh
    /// URL is the only cure a client has.
    Expired,
    /// `429`: hold every new PUT for `Retry-After` (2 s when absent), then retry.
    SlowDown,
    /// Worth trying again as it is (a timeout or a fault of the storage's).
    Transient,
    /// Will fail the same way again (a digest mismatch, a wrong size).
    Final,
}

impl StorageRefusal {
    pub fn of(status: u16, body: &str) -> Self {
        match status {
            403 => Self::Expired,
            400 if body.contains("too old") || body.contains("xpired") => Self::Expired,
            429 => Self::SlowDown,
            408 | 500.. => Self::Transient,
            _ => Self::Final,
        }
    }
}

/// Reading whole numbers leniently (see the module's header).
pub mod de {
    use serde::de::{Error as _, Unexpected};
    use serde::{Deserialize, Deserializer};

    /// 2^53 - 1: the largest whole number that a float, and so JavaScript, holds exactly.
    const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

    /// A JSON integer, also when written with a zero fraction (`172.0`).
    pub fn integer<'de, D: Deserializer<'de>, T: TryFrom<i128>>(d: D) -> Result<T, D::Error> {
        let n = serde_json::Number::deserialize(d)?;
        let whole = match (n.as_i64(), n.as_u64(), n.as_f64()) {
            (Some(i), _, _) => Some(i128::from(i)),
            (_, Some(u), _) => Some(i128::from(u)),
            // Only where a float is exact (JavaScript's safe integers): past 2^53 a float names a
            // range of integers, and an integer written out in full was parsed exactly above.
            (_, _, Some(f)) if f.fract() == 0.0 && f.abs() <= MAX_SAFE_INTEGER => Some(f as i128),
            _ => None,
        };
        let unexpected = n.to_string();
        whole
            .and_then(|w| T::try_from(w).ok())
            .ok_or_else(|| D::Error::invalid_value(Unexpected::Other(&unexpected), &"a whole number in range"))
    }

    /// [`integer`] for an optional field (`null` or absent: `None`).
    pub fn opt_integer<'de, D: Deserializer<'de>, T: TryFrom<i128>>(d: D) -> Result<Option<T>, D::Error> {
        #[derive(Deserialize)]
        struct Whole<T: TryFrom<i128>>(#[serde(deserialize_with = "integer")] T);
        Ok(Option::<Whole<T>>::deserialize(d)?.map(|Whole(v)| v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_unique_kebab_case_and_parse_back() {
        let mut seen = std::collections::HashSet::new();
        for c in Code::ALL {
            assert!(seen.insert(c.as_str()), "{c} twice");
            assert!(c.as_str().bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'), "{c}");
            assert_eq!(Code::parse(c.as_str()), Some(*c));
        }
        assert_eq!(Code::parse("nope"), None);
        assert_eq!(serde_json::to_string(&Code::PartsMissing).unwrap(), r#""parts-missing""#);
    }

    #[test]
    fn storage_refusals() {
        assert_eq!(StorageRefusal::of(403, "<Code>AccessDenied</Code>Request has expired"), StorageRefusal::Expired);
        assert_eq!(StorageRefusal::of(400, "<Message>Date is too old</Message>"), StorageRefusal::Expired);
        assert_eq!(StorageRefusal::of(400, "<Code>BadDigest</Code>"), StorageRefusal::Final);
        assert_eq!(StorageRefusal::of(429, ""), StorageRefusal::SlowDown);
        assert_eq!(StorageRefusal::of(503, ""), StorageRefusal::Transient);
        assert_eq!(StorageRefusal::of(408, ""), StorageRefusal::Transient);
    }

    #[test]
    fn requests_serialize_as_the_backend_reads_them() {
        let req = CreateUpload {
            name: "a.bin".into(),
            size: 3,
            content_type: None,
            sha1: None,
            last_modified: Some(7),
            probe: None,
            parts: None,
        };
        assert_eq!(serde_json::to_string(&req).unwrap(), r#"{"name":"a.bin","size":3,"last_modified":7}"#);
        let back: CreateUpload = serde_json::from_str(r#"{"name":"a.bin","size":3.0,"last_modified":7}"#).unwrap();
        assert_eq!((back.size, back.last_modified), (3, Some(7)));
    }
}
