//! Part tracking: which parts of an open upload have been reported, counted fast.
//!
//! The tracker is a counter and a cache, never the truth: storage (`ListParts`) is. When
//! the tracker has lost an upload (Redis flushed or restarted), `record` and `parts` say
//! so with `None`, and the caller rebuilds the upload's entry from storage. Recording is
//! idempotent per part number, so a part reported five times counts once (a plain INCR
//! counter double-counts retries and completes too early). The completion claim lets one
//! caller at a time compose an upload; SQL's state change backs it up.
//!
//! The tracker also carries the verification queue: files whose stored bytes must be
//! hashed. In Redis it is a stream read by one consumer group, so any replica's verifier
//! takes the next file, and a file whose verifier died goes to another once its job has been
//! silent for a while. SQL remembers when each file was queued, so the reaper queues again
//! what a flushed Redis forgot.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;

pub mod error;
pub mod memory;
pub mod redis;

pub use error::TrackerError;

/// A file taken from the verification queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifyJob {
    /// The queue's id for this entry (a stream id in Redis).
    pub id: String,
    pub file: String,
}

/// A part as reported by a client after its PUT succeeded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartRecord {
    pub number: u32,
    pub etag: String,
    /// Base64 SHA-1 of the part.
    pub sha1: String,
}

/// The tracker: one backend (Redis across replicas, memory for one process) serving three
/// concerns, each a trait of its own so a caller names the one it uses.
#[async_trait]
pub trait Tracker: PartCounter + CompletionLease + VerifyQueue + Send + Sync + 'static {
    async fn ping(&self) -> Result<(), TrackerError>;
}

/// Which parts of an open upload have been reported, counted fast, never the truth.
#[async_trait]
pub trait PartCounter: Send + Sync {
    /// Starts tracking an upload with no parts; its entry expires after `ttl` of silence.
    async fn open(&self, upload: &str, ttl: Duration) -> Result<(), TrackerError>;
    /// Records a part (the latest report of a number wins) and answers how many distinct
    /// parts are recorded, or `None` when the tracker no longer knows the upload.
    async fn record(&self, upload: &str, part: &PartRecord, ttl: Duration) -> Result<Option<u32>, TrackerError>;
    /// Every recorded part by number, or `None` when the tracker no longer knows the upload.
    async fn parts(&self, upload: &str) -> Result<Option<BTreeMap<u32, PartRecord>>, TrackerError>;
    /// Replaces the upload's entry with `parts` (a rebuild from storage).
    async fn rebuild(&self, upload: &str, parts: &[PartRecord], ttl: Duration) -> Result<(), TrackerError>;
    /// Drops everything about the upload (its parts and its completion claim).
    async fn forget(&self, upload: &str) -> Result<(), TrackerError>;
}

/// Who composes an upload: one holder at a time, for a lease (SQL's state change backs it).
#[async_trait]
pub trait CompletionLease: Send + Sync {
    /// Claims the right to complete the upload for `lease`: true for one holder at a time.
    async fn claim_completion(&self, upload: &str, holder: &str, lease: Duration) -> Result<bool, TrackerError>;
    /// Gives up a claim (only if `holder` still holds it).
    async fn release_completion(&self, upload: &str, holder: &str) -> Result<(), TrackerError>;
}

/// Files whose stored bytes must be hashed, taken by whichever replica is free.
#[async_trait]
pub trait VerifyQueue: Send + Sync {
    /// Queues a file for verification by whichever replica is free.
    async fn queue_verify(&self, file: &str) -> Result<(), TrackerError>;
    /// The next job for `consumer`: one whose consumer has been silent for `stale` (its
    /// replica died), else a new one, waiting up to `wait` for it.
    async fn next_verify(
        &self,
        consumer: &str,
        stale: Duration,
        wait: Duration,
    ) -> Result<Option<VerifyJob>, TrackerError>;
    /// Says `consumer` still works on `job`, so no one takes it over.
    async fn touch_verify(&self, consumer: &str, job: &VerifyJob) -> Result<(), TrackerError>;
    /// The job is done (or moot): drop it from the queue.
    async fn ack_verify(&self, job: &VerifyJob) -> Result<(), TrackerError>;
}

/// How a part record is kept as one string: `etag` and `sha1` cannot hold a newline.
pub(crate) fn encode(part: &PartRecord) -> String {
    format!("{}\n{}", part.etag, part.sha1)
}

pub(crate) fn decode(number: u32, value: &str) -> Option<PartRecord> {
    let (etag, sha1) = value.split_once('\n')?;
    Some(PartRecord { number, etag: etag.to_owned(), sha1: sha1.to_owned() })
}
