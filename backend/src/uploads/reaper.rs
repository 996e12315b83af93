//! The reaper: aborts uploads idle past their TTL, in storage, the tracker and SQL.
//!
//! Every replica runs it. Each candidate is claimed with a conditional UPDATE on the
//! `updated_at` it was seen with, so exactly one replica aborts it, and an upload that got
//! a report meanwhile is left alone. It also queues again the verification of files that
//! have waited far too long (Redis lost the queue), one replica per file, and deletes
//! expired sessions.

use std::time::Duration;

use super::repo::{self, ABORTING, COMPLETE, INSTANT};
use super::service::abort_claimed;
use crate::app::AppState;
use crate::db::now_ms;
use crate::files;

/// Rows looked at per sweep; the next sweep takes the rest.
const BATCH: i64 = 200;
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
    let now = now_ms();
    let mut done = Sweep::default();
    for u in repo::idle(&state.db, now - state.ttl_ms(), now - STUCK_ABORT_MS, BATCH).await? {
        if !repo::transition_if_unchanged(&state.db, &u.id, &u.state, u.updated_at, ABORTING, now).await? {
            continue; // another replica took it, or the client came back
        }
        if u.state == COMPLETE || u.state == INSTANT {
            // The file lives on; only the record of how it arrived goes.
            repo::delete(&state.db, &u.id).await?;
            done.forgotten += 1;
        } else {
            abort_claimed(state, &u, "expired").await.map_err(|e| anyhow::anyhow!("{e}"))?;
            done.aborted += 1;
        }
    }
    for (id, seen) in files::repo::verify_overdue(&state.db, now - STUCK_VERIFY_MS, BATCH).await? {
        if files::repo::claim_requeue(&state.db, &id, seen, now).await? {
            state.tracker.queue_verify(&id).await?;
            done.reverified += 1;
        }
    }
    done.sessions = crate::auth::repo::delete_expired_sessions(&state.db, now).await?;
    Ok(done)
}

/// Sweeps every `interval` until the process ends.
pub fn spawn(state: actix_web::web::Data<AppState>, interval: Duration) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            match sweep(&state).await {
                Ok(s) if s != Sweep::default() => tracing::info!(?s, "reaper sweep"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "reaper sweep failed; next sweep retries"),
            }
        }
    });
}
