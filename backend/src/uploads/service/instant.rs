//! Instant upload: a claimed whole-file SHA-1 (at start or by `PATCH`) links the upload to
//! stored content, at once for the user's own, after a proof of possession for others'
//! (`dedup` holds the policy; this is the flow).

use super::*;

/// Acts on a whole-file SHA-1 claim: the uploader's own content links the upload at once
/// (`instant`); other users' content, where the scope allows, sets a challenge whose right
/// answer goes to [`prove`]. See `dedup` for the policy.
pub(super) async fn dedup(state: &AppState, u: &UploadRow, sha1: &Sha1Hex) -> Result<(), UploadError> {
    if u.state != UPLOADING {
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

/// Checks the answer to the upload's challenge against the stored bytes. Right: the upload
/// ends as `instant`, linked to the stored file, and its parts are dropped. Wrong: refused,
/// the challenge is used up, and the upload goes on as an ordinary one (send the parts).
pub async fn prove(state: &AppState, user: &User, id: &str, answer: &str) -> Result<UploadView, UploadError> {
    let answer = Sha1Hex::parse(answer)?;
    let u = load(state, user, id).await?;
    let (Some(file_id), Some(offset), Some(length), Some(nonce)) =
        (&u.challenge_file, u.challenge_offset, u.challenge_length, &u.challenge_nonce)
    else {
        return Err(UploadError::NoChallenge);
    };
    if u.state != UPLOADING {
        return Err(UploadError::AlreadyComplete);
    }
    if !repo::take_challenge(&state.db, id, file_id, nonce).await? {
        return Err(UploadError::NoChallenge); // another answer used it first
    }
    let file = match files::repo::get(&state.db, file_id).await? {
        Some(f) if f.status == files::repo::VERIFIED => f,
        _ => return Err(UploadError::NoChallenge), // the stored file went meanwhile
    };
    if !dedup::intact(state, &file).await? {
        return Err(UploadError::NoChallenge); // its object changed: no dedup target
    }
    // The user's claim of this content gets one answer, whichever of their uploads gives it.
    let owner = u.user_id.as_deref().unwrap_or_default();
    let content = file.sha1.as_deref().unwrap_or_default();
    if !dedup::take(state, owner, content, u.size, nonce).await? {
        return Err(UploadError::NoChallenge);
    }
    let mut range = state
        .store
        .read_range(&file.storage_key, u64::try_from(offset).unwrap_or(0), u64::try_from(length).unwrap_or(0))
        .await?;
    let mut hasher = Sha1::new();
    hasher.update(hex::decode(nonce).unwrap_or_default());
    while let Some(chunk) = range.next().await {
        hasher.update(&chunk?);
    }
    let right = Sha1Hex::from_digest(&hasher.finalize().into()) == answer;
    if right {
        dedup::passed(&state.db, owner, content, u.size).await?;
    } else {
        state.metrics.challenges_failed.inc();
        tracing::warn!(upload = %id, file = %file.id, "proof of possession failed");
        return Err(UploadError::ChallengeFailed);
    }
    link_instant(state, &u, &file).await?;
    view(state, load(state, user, id).await?).await
}

/// Ends the upload as `instant`: a new file of the uploader's, backed by `source`'s stored
/// content, and the upload's own parts dropped. False when it could not (the upload moved
/// on meanwhile, or the content lost its last file and so its object): the upload then goes
/// on as an ordinary one.
pub(super) async fn link_instant(state: &AppState, u: &UploadRow, source: &FileRow) -> Result<bool, UploadError> {
    // On the state alone: a part reported meanwhile must not lose a right answer.
    let now = now_ms();
    if !repo::transition(&state.db, &u.id, UPLOADING, ABORTING, now, i64::MIN).await? {
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
        return Err(quota::exceeded(stored, u.size, quota::limit(state).unwrap_or(0)));
    };
    // The handshake of `files::repo::delete`: were the other files of this content deleted
    // before this row was written, their object may be gone; then this link must not stand.
    if !files::repo::shared_by_others(&state.db, &file).await? {
        files::repo::delete_row(&state.db, &file.id).await?;
        repo::transition(&state.db, &u.id, ABORTING, UPLOADING, now_ms(), i64::MIN).await?;
        return Ok(false);
    }
    drop_parts(state, u).await?;
    repo::finish(&state.db, &u.id, INSTANT, &file.id, now_ms()).await?;
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

/// Records the whole-file SHA-1; if that content is already stored, the answer carries a
/// challenge whose right answer ([`prove`]) ends the upload as `instant`.
pub async fn set_sha1(state: &AppState, user: &User, id: &str, sha1: &str) -> Result<UploadView, UploadError> {
    let sha1 = Sha1Hex::parse(sha1)?;
    let u = load(state, user, id).await?;
    record_claim(state, &u, &sha1).await?;
    dedup(state, &u, &sha1).await?;
    view(state, load(state, user, id).await?).await
}
