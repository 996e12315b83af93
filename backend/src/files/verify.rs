//! Verification: hash a file's stored bytes and compare with what the client claimed.
//!
//! Multipart completion yields only a composite checksum, never the plain SHA-1 of the
//! file, so the server reads the object back once, off the request path. Until then the
//! file is `pending` and no dedup target; a mismatch marks it `corrupt` for good. A replica
//! that dies mid-hash leaves the file pending; the reaper hands it to a verifier again.

use futures_util::StreamExt;
use sha1::{Digest, Sha1};
use shardrop_engine::probe::ProbeCollector;

use super::repo::{self, FileRow};
use crate::db::{now_ms, Db};
use crate::storage::{StorageError, Store};

/// Hashes the stored object and records the verdict. Answers the final status.
pub async fn verify(db: &Db, store: &dyn Store, file: &FileRow) -> anyhow::Result<String> {
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
    let status = repo::set_verdict(db, &file.id, &actual, probe.as_str(), size_ok, now_ms()).await?;
    if status == repo::CORRUPT {
        tracing::warn!(file = %file.id, %actual, len, "stored bytes do not match the file's claim");
    }
    Ok(status)
}

/// Runs [`verify`] in the background, logging the outcome.
pub fn spawn(db: Db, store: std::sync::Arc<dyn Store>, file: FileRow) {
    tokio::spawn(async move {
        match verify(&db, store.as_ref(), &file).await {
            Ok(status) => tracing::info!(file = %file.id, %status, "verified"),
            Err(e) if e.downcast_ref::<StorageError>().is_some_and(|e| matches!(e, StorageError::NotFound)) => {
                tracing::warn!(file = %file.id, "object gone before verification")
            }
            Err(e) => tracing::warn!(file = %file.id, error = %e, "verification failed; the reaper will retry"),
        }
    });
}
