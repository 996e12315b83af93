//! The reaper: aborts uploads idle past their TTL, in storage, the tracker and SQL.
//!
//! Every replica runs it. Each candidate is claimed with a conditional UPDATE on the
//! `updated_at` it was seen with, so exactly one replica aborts it, and an upload that got
//! a report meanwhile is left alone. It also queues again the verification of files that
//! have waited far too long (Redis lost the queue), one replica per file, and deletes
//! expired sessions. A sweep works through batches until nothing is left or its time
//! (`reaper.max_sweep_secs`) is up, so a backlog of any size drains.
//!
//! Less often (`reaper.orphan_interval_secs`) it sweeps for orphans: objects under the
//! upload prefix that no upload or file row accounts for and older than the upload TTL
//! (a crash between storage and SQL, or bytes a stale URL wrote). Deleting one is safe on
//! every replica at once: an object is only ever made for a row that exists until a file
//! row takes it over, and deleting twice is not an error.

use std::time::{Duration, Instant};

use super::abort::abort_claimed;
use super::repo;
use super::state::State;
use super::UploadError;
use crate::db::now_ms;
use crate::files;
use crate::state::AppState;

/// Rows taken per batch; a sweep takes batches until none is full or its time is up.
const BATCH: i64 = 200;
/// Where every upload's object lives (`objects/<upload id>`).
const OBJECTS_PREFIX: &str = "objects/";
/// An abort that has not finished after this long was left by a dead replica.
const STUCK_ABORT_MS: i64 = 60_000;
/// A file still unverified this long after it was queued (plus its reading time) lost its
/// job: a dead verifier's job is taken over after `verify::STALE`, so only a Redis that
/// lost the queue leaves a file this long.
const STUCK_VERIFY_MS: i64 = 60_000;

/// What one sweep did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Sweep {
    pub aborted: usize,
    pub forgotten: usize,
    pub reverified: usize,
    /// Expired sessions deleted.
    pub sessions: u64,
}

/// One pass. Safe to run on every replica at once.
pub async fn sweep(state: &AppState) -> anyhow::Result<Sweep> {
    let deadline = Instant::now() + Duration::from_secs(state.settings.reaper.max_sweep_secs);
    let mut done = Sweep::default();
    loop {
        let now = now_ms();
        let idle = repo::idle(&state.db, now - state.ttl_ms(), now - STUCK_ABORT_MS, BATCH).await?;
        let full = idle.len() as i64 == BATCH;
        for u in idle {
            if !repo::transition_if_unchanged(&state.db, &u.id, u.state, u.updated_at, State::Aborting, now).await? {
                continue; // another replica took it, or the client came back
            }
            if u.state.is_finished() {
                // The file lives on; only the record of how it arrived goes.
                repo::delete(&state.db, &u.id).await?;
                done.forgotten += 1;
                continue;
            }
            match abort_claimed(state, &u, "expired").await {
                Ok(()) => done.aborted += 1,
                // Its completer wrote the file and died: finished now, kept until forgotten.
                Err(UploadError::AlreadyComplete) => {}
                // One upload the storage cannot drop now must not stop the rest of the sweep.
                Err(e) => {
                    tracing::warn!(upload = %u.id, error = %e, "could not abort an idle upload; next sweep retries")
                }
            }
        }
        if !full || Instant::now() >= deadline {
            break;
        }
    }
    loop {
        let now = now_ms();
        let overdue = files::repo::verify_overdue(&state.db, now - STUCK_VERIFY_MS, BATCH).await?;
        let full = overdue.len() as i64 == BATCH;
        for (id, seen) in overdue {
            if files::repo::claim_requeue(&state.db, &id, seen, now).await? {
                state.tracker.queue_verify(&id).await?;
                done.reverified += 1;
            }
        }
        if !full || Instant::now() >= deadline {
            break;
        }
    }
    done.sessions = crate::auth::repo::delete_expired_sessions(&state.db, now_ms()).await?;
    Ok(done)
}

/// Deletes stored objects under the upload prefix that no upload or file row accounts
/// for and that are older than the upload TTL; answers how many went.
pub async fn sweep_orphans(state: &AppState) -> anyhow::Result<usize> {
    let old_before = chrono::Utc::now() - chrono::Duration::milliseconds(state.ttl_ms());
    let deadline = Instant::now() + Duration::from_secs(state.settings.reaper.max_sweep_secs);
    let mut deleted = 0;
    for object in state.store.list_objects(OBJECTS_PREFIX).await? {
        if Instant::now() >= deadline {
            break; // the next sweep goes on
        }
        if object.modified >= old_before {
            continue;
        }
        // Uploads first: while an upload completes, its row exists until a file row does.
        if repo::key_in_use(&state.db, &object.key).await? || files::repo::key_in_use(&state.db, &object.key).await? {
            continue;
        }
        tracing::warn!(key = %object.key, modified = %object.modified, "deleting an object no row accounts for");
        state.store.delete(&object.key).await?;
        state.metrics.orphans_deleted.inc();
        deleted += 1;
    }
    Ok(deleted)
}

/// Sweeps every `interval` until the process ends.
pub fn spawn(state: actix_web::web::Data<AppState>, interval: Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let orphan_every = Duration::from_secs(state.settings.reaper.orphan_interval_secs);
        // Not at start-up: replicas restarted together would all list the bucket at once.
        let mut orphans_swept = Some(Instant::now());
        loop {
            tick.tick().await;
            match sweep(&state).await {
                Ok(s) if s != Sweep::default() => tracing::info!(?s, "reaper sweep"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "reaper sweep failed; next sweep retries"),
            }
            let due = !orphan_every.is_zero() && orphans_swept.is_none_or(|at| at.elapsed() >= orphan_every);
            if due {
                orphans_swept = Some(Instant::now());
                match sweep_orphans(&state).await {
                    Ok(0) => {}
                    Ok(n) => tracing::info!(deleted = n, "orphan sweep"),
                    Err(e) => tracing::warn!(error = %e, "orphan sweep failed; the next one retries"),
                }
            }
        }
    });
}
