//! Instant upload: a claimed whole-file SHA-1 (at start or by `PATCH`) links the upload to
//! stored content, at once for the user's own, after a proof of possession for others'
//! (`dedup` holds the policy; this is the flow).

use shardrop_engine::Sha1Hex;

use super::abort::{abort_claimed, drop_parts};
use super::complete::file_of;
use super::dedup::{self, Claim};
use super::repo::{self, UploadRow};
use super::state::State;
use super::UploadError;
use crate::auth::User;
use crate::db::now_ms;
use crate::files::{self, FileRow};
use crate::quota;
use crate::state::AppState;

/// Acts on a whole-file SHA-1 claim: the uploader's own content links the upload at once
/// (`instant`); other users' content, where the scope allows, sets a challenge whose right
/// answer goes to [`prove`]. See `dedup` for the policy.
pub(super) async fn dedup_claim(state: &AppState, u: &UploadRow, sha1: &Sha1Hex) -> Result<(), UploadError> {
    if u.state != State::Uploading {
        return Ok(());
    }
    match dedup::claim(state, u, sha1).await? {
        Claim::Own(own) => {
            link_instant(state, u, &own).await?;
        }
        Claim::Challenge(c) => {
            repo::set_challenge(&state.db, &u.id, &c.file_id, c.challenge_offset, c.challenge_length, &c.nonce).await?;
        }
        Claim::Nothing => {}
    }
    Ok(())
}

/// Ends the upload as `instant`: a new file of the uploader's, backed by `source`'s stored
/// content, and the upload's own parts dropped. False when it could not (the upload moved
/// on meanwhile, or the content lost its last file and so its object): the upload then goes
/// on as an ordinary one.
pub(super) async fn link_instant(state: &AppState, u: &UploadRow, source: &FileRow) -> Result<bool, UploadError> {
    // On the state alone: a part reported meanwhile must not lose a right answer.
    let now = now_ms();
    if !repo::transition(&state.db, &u.id, State::Uploading, State::Aborting, now, i64::MIN).await? {
        return Ok(false);
    }
    let row = FileRow {
        sha1: source.sha1.clone(),
        storage_key: source.storage_key.clone(),
        status: files::repo::VERIFIED.into(),
        verified_at: Some(now),
        probe: source.probe.clone(),
        verified_etag: source.verified_etag.clone(),
        ..file_of(u, now)
    };
    let Some(file) = files::repo::insert_once(&state.db, &row, quota::limit(state)).await? else {
        // Its size was reserved at the start; only a race of this user's uploads gets here.
        abort_claimed(state, u, "quota").await?;
        state.metrics.quota_refusals.inc();
        let stored = quota::stored_bytes(&state.db, u.user_id.as_deref().unwrap_or_default()).await?;
        return Err(UploadError::quota_exceeded(stored, u.size, quota::limit(state).unwrap_or(0)));
    };
    // The handshake of `files::repo::delete`: were the other files of this content deleted
    // before this row was written, their object may be gone; then this link must not stand.
    if !files::repo::shared_by_others(&state.db, &file).await? {
        files::repo::delete_row(&state.db, &file.id).await?;
        repo::transition(&state.db, &u.id, State::Aborting, State::Uploading, now_ms(), i64::MIN).await?;
        return Ok(false);
    }
    drop_parts(state, u).await?;
    repo::finish(&state.db, &u.id, State::Instant, &file.id, now_ms()).await?;
    state.metrics.uploads_instant.inc();
    Ok(true)
}

pub(super) async fn dedup_candidate(
    state: &AppState,
    user: &User,
    size: i64,
    probe: Option<&Sha1Hex>,
) -> Result<bool, UploadError> {
    Ok(match probe {
        Some(p) => dedup::probe_matches(state, &user.id, size, p).await?,
        None => false,
    })
}
