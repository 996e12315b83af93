//! Verification: hash a file's stored bytes and compare with what the client claimed.
//!
//! Multipart completion yields only a composite checksum, never the plain SHA-1 of the
//! file, so the server reads the object back once, off the request path. Until then the
//! file is `pending` and no dedup target; a mismatch marks it `corrupt` for good.
//!
//! The work goes through the tracker's verification queue (a Redis Stream consumer group
//! when there are several replicas): the replica that completes an upload queues its file,
//! and each replica runs one verifier that takes the next job. A verifier says every few
//! seconds that it still works on its job; a job silent for [`STALE`] (its replica died) goes
//! to the next verifier that asks. If Redis loses the queue, the reaper queues again what
//! SQL says is overdue.

use std::time::Duration;

use actix_web::web;
use futures_util::StreamExt;
use sha1::{Digest, Sha1};
use shardrop_engine::probe::ProbeCollector;

use super::repo::{self, FileRow};
use crate::db::{now_ms, Db};
use crate::state::AppState;
use crate::storage::{StorageError, Store};
use crate::tracker::{Tracker, VerifyJob};

/// A job whose verifier has been silent this long lost it: another verifier takes it.
pub const STALE: Duration = Duration::from_secs(30);
/// How often a working verifier says it still works.
const HEARTBEAT: Duration = Duration::from_secs(10);
/// How long one ask for a job waits.
const WAIT: Duration = Duration::from_secs(2);

/// Hashes the stored object and records the verdict. Answers the final status.
pub async fn verify(db: &Db, store: &dyn Store, file: &FileRow) -> anyhow::Result<String> {
    // The ETag before and after the read pins what was read: a write in between makes the
    // read count for nothing (the job is retried), so the recorded ETag is of these bytes.
    let before = store.stat(&file.storage_key).await?.ok_or(StorageError::NotFound)?;
    let mut stream = store.read(&file.storage_key).await?;
    let mut hashers = (Sha1::new(), ProbeCollector::new(u64::try_from(file.size).unwrap_or(0)));
    let mut len: u64 = 0;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk?;
        let offset = len;
        len += chunk.len() as u64;
        // Hashing 8 MiB takes ~10 ms: off the async workers so requests never wait on it.
        hashers = tokio::task::spawn_blocking(move || {
            hashers.0.update(&chunk);
            hashers.1.feed(offset, &chunk);
            hashers
        })
        .await?;
    }
    let actual = hex::encode(hashers.0.finalize());
    let probe = hashers.1.finish();
    let size_ok = i64::try_from(len).is_ok_and(|l| l == file.size);
    let after = store.stat(&file.storage_key).await?.ok_or(StorageError::NotFound)?;
    if after.etag != before.etag {
        anyhow::bail!("the object was written while it was read ({} then {})", before.etag, after.etag);
    }
    let verdict = repo::Verdict { actual: &actual, probe: probe.as_str(), size_ok, etag: &before.etag };
    let status = repo::set_verdict(db, &file.id, &verdict, now_ms()).await?;
    if status == repo::CORRUPT {
        tracing::warn!(file = %file.id, %actual, len, "stored bytes do not match the file's claim");
    }
    Ok(status)
}

/// Puts a file on the verification queue. A failure is logged, not returned: the file is
/// on record as pending, and the reaper queues it again.
pub async fn queue(db: &Db, tracker: &dyn Tracker, file_id: &str) {
    // Both at once: each is a round trip, and either may fail without harm to the other.
    let (marked, queued) =
        futures_util::future::join(repo::mark_queued(db, file_id, now_ms()), tracker.queue_verify(file_id)).await;
    if let Err(e) = marked {
        tracing::warn!(file = %file_id, error = %e, "could not note the file as queued");
    }
    if let Err(e) = queued {
        tracing::warn!(file = %file_id, error = %e, "could not queue the file's verification; the reaper will");
    }
}

/// This replica's verifier: takes jobs from the queue until the process ends.
pub fn spawn_worker(state: web::Data<AppState>) {
    tokio::spawn(async move {
        loop {
            match state.tracker.next_verify(&state.replica, STALE, WAIT).await {
                Ok(Some(job)) => work(&state, &job).await,
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(error = %e, "verification queue unavailable; trying again");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
            }
        }
    });
}

async fn work(state: &AppState, job: &VerifyJob) {
    let file = match repo::get(&state.db, &job.file).await {
        Ok(Some(f)) if f.status == repo::PENDING => f,
        // Verified meanwhile (a job queued twice), or deleted: nothing to do.
        Ok(_) => return ack(state, job).await,
        // Left in the queue: it goes to a verifier again once it is stale.
        Err(e) => return tracing::warn!(file = %job.file, error = %e, "could not load the file to verify"),
    };
    let verifying = verify(&state.db, state.store.as_ref(), &file);
    tokio::pin!(verifying);
    let mut beat = tokio::time::interval(HEARTBEAT);
    beat.tick().await; // the first tick is immediate
    let outcome = loop {
        tokio::select! {
            r = &mut verifying => break r,
            _ = beat.tick() => {
                if let Err(e) = state.tracker.touch_verify(&state.replica, job).await {
                    tracing::warn!(file = %file.id, error = %e, "could not keep the verification job");
                }
                // A slow read is alive, not lost: the reaper leaves it alone.
                if let Err(e) = repo::mark_queued(&state.db, &file.id, now_ms()).await {
                    tracing::warn!(file = %file.id, error = %e, "could not note the verification as alive");
                }
            }
        }
    };
    match outcome {
        Ok(status) => {
            tracing::info!(file = %file.id, %status, "verified");
            ack(state, job).await;
        }
        Err(e) if e.downcast_ref::<StorageError>().is_some_and(|e| matches!(e, StorageError::NotFound)) => {
            tracing::warn!(file = %file.id, "object gone before verification");
            ack(state, job).await;
        }
        Err(e) => tracing::warn!(file = %file.id, error = %e, "verification failed; the job is retried once stale"),
    }
}

async fn ack(state: &AppState, job: &VerifyJob) {
    if let Err(e) = state.tracker.ack_verify(job).await {
        tracing::warn!(file = %job.file, error = %e, "could not acknowledge the verification job");
    }
}
