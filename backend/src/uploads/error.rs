//! What can go wrong with an upload, each with its stable code and status.

use actix_web::http::StatusCode;
use shardrop_engine::hashing::DigestError;

use crate::error::{ApiError, Code};
use crate::storage::StorageError;
use crate::tracker::TrackerError;

#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error("no upload with that id")]
    NotFound,
    #[error("the file is {size} bytes; this server accepts at most {max}")]
    FileTooLarge { size: u64, max: u64 },
    #[error("this upload of {size} bytes would pass your quota of {quota} bytes ({used} in use)")]
    QuotaExceeded { used: u64, size: u64, quota: u64 },
    #[error("name: {0}")]
    InvalidName(&'static str),
    #[error("name: must not contain the bidirectional control U+{:04X} (it reorders how the name reads)", u32::from(*.0))]
    BidiControlInName(char),
    #[error("content_type must be a MIME type such as application/octet-stream (at most 255 characters)")]
    InvalidContentType,
    #[error("sha1: {0}")]
    InvalidSha1(#[from] DigestError),
    #[error("probe: {0}")]
    InvalidProbe(DigestError),
    #[error("md5: {0}")]
    InvalidMd5(DigestError),
    #[error("part {number}: this storage checks parts by Content-MD5, so sign each part with its `md5` too (the upload's `part_check` is `md5`)")]
    Md5Required { number: u32 },
    #[error("part number {number} is outside this upload's parts 1..={part_count}")]
    InvalidPartNumber { number: u32, part_count: u32 },
    #[error("part {number} must be {expected} bytes, not {got}")]
    InvalidPartSize { number: u32, expected: u64, got: u64 },
    #[error("etag must be the ETag header the storage answered (1 to 256 visible ASCII characters)")]
    InvalidEtag,
    #[error("sign between 1 and {max} parts in one request")]
    InvalidBatch { max: usize },
    #[error("parts may be signed at the start only for a file of one part; sign the others with /parts/sign")]
    PartsAtStart,
    #[error("the upload is already complete")]
    AlreadyComplete,
    #[error("the upload is being completed; ask again shortly")]
    Completing,
    #[error("the storage does not hold every part yet; missing: {}", summarize(.0))]
    PartsMissing(Vec<u32>),
    #[error("a different SHA-1 was already given for this upload")]
    Sha1Conflict,
    #[error("part {number} was already signed for other bytes (another SHA-1); a part's content cannot change: start a new upload if the file changed")]
    PartSha1Conflict { number: u32 },
    #[error("part {number} is empty: its sha1 must be the SHA-1 of no bytes (2jmj7l5rSw0yVb/vlWAYkK/YBwk=), and its md5, if given, the MD5 of no bytes (1B2M2Y8AsgTpgAmY7PhCfg==)")]
    EmptyPartSha1 { number: u32 },
    #[error("this upload has no challenge to answer (none was asked, or it was answered already)")]
    NoChallenge,
    #[error("the answer does not match the stored bytes: send the file's parts instead")]
    ChallengeFailed,
    #[error(transparent)]
    Storage(#[from] StorageError),
    #[error(transparent)]
    Tracker(#[from] TrackerError),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

impl UploadError {
    /// Over the quota: `used` bytes in use, `size` more asked, `quota` allowed.
    pub fn quota_exceeded(used: i64, size: i64, quota: i64) -> Self {
        let u = |n: i64| u64::try_from(n).unwrap_or(0);
        UploadError::QuotaExceeded { used: u(used), size: u(size), quota: u(quota) }
    }
}

fn summarize(numbers: &[u32]) -> String {
    const SHOWN: usize = 20;
    let mut s = numbers.iter().take(SHOWN).map(u32::to_string).collect::<Vec<_>>().join(", ");
    if numbers.len() > SHOWN {
        s.push_str(&format!(" and {} more", numbers.len() - SHOWN));
    }
    s
}

impl From<UploadError> for ApiError {
    fn from(e: UploadError) -> Self {
        use StatusCode as S;
        let (status, code) = match e {
            UploadError::Storage(inner) => return inner.into(),
            UploadError::Tracker(inner) => return inner.into(),
            UploadError::Db(inner) => return inner.into(),
            UploadError::NotFound => (S::NOT_FOUND, Code::UploadNotFound),
            UploadError::FileTooLarge { .. } => (S::PAYLOAD_TOO_LARGE, Code::FileTooLarge),
            UploadError::QuotaExceeded { .. } => (S::FORBIDDEN, Code::QuotaExceeded),
            UploadError::InvalidName(_) | UploadError::BidiControlInName(_) => {
                (S::UNPROCESSABLE_ENTITY, Code::InvalidName)
            }
            UploadError::InvalidContentType => (S::UNPROCESSABLE_ENTITY, Code::InvalidContentType),
            UploadError::InvalidSha1(_) => (S::UNPROCESSABLE_ENTITY, Code::InvalidSha1),
            UploadError::InvalidProbe(_) => (S::UNPROCESSABLE_ENTITY, Code::InvalidProbe),
            UploadError::InvalidMd5(_) => (S::UNPROCESSABLE_ENTITY, Code::InvalidMd5),
            UploadError::Md5Required { .. } => (S::UNPROCESSABLE_ENTITY, Code::Md5Required),
            UploadError::InvalidPartNumber { .. } => (S::UNPROCESSABLE_ENTITY, Code::InvalidPartNumber),
            UploadError::InvalidPartSize { .. } => (S::UNPROCESSABLE_ENTITY, Code::InvalidPartSize),
            UploadError::InvalidEtag => (S::UNPROCESSABLE_ENTITY, Code::InvalidEtag),
            UploadError::InvalidBatch { .. } | UploadError::PartsAtStart => {
                (S::UNPROCESSABLE_ENTITY, Code::InvalidBatch)
            }
            UploadError::AlreadyComplete => (S::CONFLICT, Code::UploadComplete),
            UploadError::Completing => (S::CONFLICT, Code::UploadCompleting),
            UploadError::PartsMissing(_) => (S::CONFLICT, Code::PartsMissing),
            UploadError::Sha1Conflict => (S::CONFLICT, Code::Sha1Conflict),
            UploadError::PartSha1Conflict { .. } => (S::CONFLICT, Code::PartSha1Conflict),
            UploadError::EmptyPartSha1 { .. } => (S::UNPROCESSABLE_ENTITY, Code::InvalidEmptyPart),
            UploadError::NoChallenge => (S::CONFLICT, Code::NoChallenge),
            UploadError::ChallengeFailed => (S::FORBIDDEN, Code::ChallengeFailed),
        };
        ApiError::new(status, code, e.to_string())
    }
}
