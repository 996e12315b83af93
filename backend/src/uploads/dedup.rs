//! Instant upload: when may a claimed SHA-1 link an upload to content already stored.
//!
//! A hash alone never grants content, and it should tell the claimant as little as possible.
//! So: a user's own verified content links at once; other users' content only with
//! `dedup.scope = all`, and only after a proof of possession (the SHA-1 of a nonce and a
//! byte range the server picks). The range is drawn once per user and content and stays
//! the same until it is answered or `challenge_ttl_secs` pass, so redrawing (a new upload,
//! a new claim) cannot move it onto bytes the claimant happens to know; it gets one answer,
//! whichever upload gives it; a failed or expired challenge locks that content for the user
//! for `fail_lockout_secs`; and each look at other users' content (a claim or a probe, hit
//! or miss) counts against the user's `claims_per_hour`. Whatever the scope, a link first
//! checks that the stored object is still the one the verifier read (its ETag): an object
//! written since is no dedup target, and its files are marked corrupt.
//!
//! The trade-off of `all` (a claimant learns that someone stores a file whose hash they
//! know) is written up in docs/security.md.

use shardrop_engine::Sha1Hex;
use sqlx::FromRow;

use super::repo::UploadRow;
use super::UploadError;
use crate::config::DedupScope;
use crate::db::{now_ms, Db};
use crate::files::{self, FileRow};
use crate::state::AppState;

/// Most bytes a proof-of-possession range covers (the client reads and hashes them).
const CHALLENGE_MAX: i64 = 1024 * 1024;
const HOUR_MS: i64 = 3_600_000;

/// What a claim of stored content gets.
pub enum Claim {
    /// The uploader's own verified content: link at once.
    Own(Box<FileRow>),
    /// Another user's: answer this challenge first.
    Challenge(Challenge),
    /// Nothing: send the file (no such content, scope `user`, locked out, or over the rate).
    Nothing,
}

#[derive(Debug, Clone, FromRow)]
pub struct Challenge {
    pub file_id: String,
    pub challenge_offset: i64,
    pub challenge_length: i64,
    pub nonce: String,
}

/// Decides what claiming `sha1` for upload `u` gets.
pub async fn claim(state: &AppState, u: &UploadRow, sha1: &Sha1Hex) -> Result<Claim, UploadError> {
    let owner = u.user_id.as_deref().unwrap_or_default();
    if let Some(own) = files::repo::find_verified_owned(&state.db, sha1.as_str(), u.size, owner).await? {
        if intact(state, &own).await? {
            return Ok(Claim::Own(Box::new(own)));
        }
    }
    if state.settings.dedup.scope != DedupScope::All {
        return Ok(Claim::Nothing);
    }
    let now = now_ms();
    let d = &state.settings.dedup;
    let (ttl_ms, lockout_ms) = (secs_ms(d.challenge_ttl_secs), secs_ms(d.fail_lockout_secs));
    // A claim is locked from its failure, or from its expiry unanswered (so waiting out a
    // challenge does not redraw it any sooner), until the lockout has passed.
    sqlx::query(
        "DELETE FROM dedup_claims WHERE user_id = $1 AND sha1 = $2 AND size = $3 \
         AND COALESCE(failed_at, created_at + $4) < $5",
    )
    .bind(owner)
    .bind(sha1.as_str())
    .bind(u.size)
    .bind(ttl_ms)
    .bind(now - lockout_ms)
    .execute(&state.db)
    .await?;
    if let Some(row) = claim_row(&state.db, owner, sha1, u.size).await? {
        if row.failed_at.is_some() || row.created_at < now - ttl_ms {
            tracing::info!(upload = %u.id, "claim refused: this content's challenge failed or expired recently");
            state.metrics.dedup_refusals.with_label_values(&["locked"]).inc();
            return Ok(Claim::Nothing);
        }
        // The same open challenge, whichever upload asks.
        return Ok(match live_file(state, sha1, u.size).await? {
            Some(file) => Claim::Challenge(Challenge { file_id: file.id, ..row.challenge }),
            None => Claim::Nothing,
        });
    }
    // A new look at other users' content, hit or miss, is charged: misses are the oracle.
    if !charge(state, owner, now).await? {
        return Ok(Claim::Nothing);
    }
    let Some(file) = live_file(state, sha1, u.size).await? else { return Ok(Claim::Nothing) };
    let length = u.size.min(CHALLENGE_MAX);
    let offset = rand::Rng::gen_range(&mut rand::thread_rng(), 0..=u.size - length);
    let nonce = hex::encode(rand::random::<[u8; 16]>());
    // Two claims at once: the first row wins, and both answer with it.
    sqlx::query(
        "INSERT INTO dedup_claims (user_id, sha1, size, file_id, challenge_offset, challenge_length, nonce, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (user_id, sha1, size) DO NOTHING",
    )
    .bind(owner)
    .bind(sha1.as_str())
    .bind(u.size)
    .bind(&file.id)
    .bind(offset)
    .bind(length)
    .bind(&nonce)
    .bind(now)
    .execute(&state.db)
    .await?;
    Ok(match claim_row(&state.db, owner, sha1, u.size).await? {
        Some(row) if row.failed_at.is_none() => Claim::Challenge(Challenge { file_id: file.id, ..row.challenge }),
        _ => Claim::Nothing,
    })
}

/// A verified file of this content whose object is still what was verified.
async fn live_file(state: &AppState, sha1: &Sha1Hex, size: i64) -> Result<Option<FileRow>, UploadError> {
    match files::repo::find_verified(&state.db, sha1.as_str(), size).await? {
        Some(file) if intact(state, &file).await? => Ok(Some(file)),
        _ => Ok(None),
    }
}

/// Counts one look at other users' content against the user's `dedup.claims_per_hour`;
/// false (and nothing counted) when none is left this hour.
async fn charge(state: &AppState, user: &str, now: i64) -> Result<bool, sqlx::Error> {
    // Under a lock on the user's row (PostgreSQL holds it to the commit; SQLite has one
    // writer), as the quota does: looks sent side by side take turns, so exactly the rate
    // fits. (Written first and counted after, racing looks could all see each other and
    // all be refused, leaving the hour unspent.)
    let mut tx = state.db.begin().await?;
    sqlx::query("UPDATE users SET username = username WHERE id = $1").bind(user).execute(&mut *tx).await?;
    sqlx::query("DELETE FROM dedup_attempts WHERE user_id = $1 AND at < $2")
        .bind(user)
        .bind(now - HOUR_MS)
        .execute(&mut *tx)
        .await?;
    let (looks,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM dedup_attempts WHERE user_id = $1").bind(user).fetch_one(&mut *tx).await?;
    if looks >= i64::from(state.settings.dedup.claims_per_hour) {
        tx.commit().await?;
        state.metrics.dedup_refusals.with_label_values(&["rate"]).inc();
        return Ok(false);
    }
    sqlx::query("INSERT INTO dedup_attempts (id, user_id, at) VALUES ($1, $2, $3)")
        .bind(hex::encode(rand::random::<[u8; 16]>()))
        .bind(user)
        .bind(now)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(true)
}

#[derive(Debug, FromRow)]
struct ClaimRow {
    #[sqlx(flatten)]
    challenge: Challenge,
    created_at: i64,
    failed_at: Option<i64>,
}

async fn claim_row(db: &Db, user: &str, sha1: &Sha1Hex, size: i64) -> Result<Option<ClaimRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT file_id, challenge_offset, challenge_length, nonce, created_at, failed_at FROM dedup_claims \
         WHERE user_id = $1 AND sha1 = $2 AND size = $3",
    )
    .bind(user)
    .bind(sha1.as_str())
    .bind(size)
    .fetch_optional(db)
    .await
}

/// Takes the user's one answer to their open challenge for this content (`nonce`): true for
/// exactly one caller, while the challenge lives. The claim is marked failed until [`passed`]
/// says otherwise, so however many uploads carry the same challenge, it is answered once.
pub async fn take(state: &AppState, user: &str, sha1: &str, size: i64, nonce: &str) -> Result<bool, sqlx::Error> {
    let now = now_ms();
    let r = sqlx::query(
        "UPDATE dedup_claims SET failed_at = $5 WHERE user_id = $1 AND sha1 = $2 AND size = $3 AND nonce = $4 \
         AND failed_at IS NULL AND created_at >= $6",
    )
    .bind(user)
    .bind(sha1)
    .bind(size)
    .bind(nonce)
    .bind(now)
    .bind(now - secs_ms(state.settings.dedup.challenge_ttl_secs))
    .execute(&state.db)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// A right answer ends the claim: the user now holds a file of this content.
pub async fn passed(db: &Db, user: &str, sha1: &str, size: i64) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM dedup_claims WHERE user_id = $1 AND sha1 = $2 AND size = $3")
        .bind(user)
        .bind(sha1)
        .bind(size)
        .execute(db)
        .await?;
    Ok(())
}

/// Whether `file`'s stored object is still the one the verifier read. One that changed is
/// no dedup target again: its files are marked corrupt.
pub async fn intact(state: &AppState, file: &FileRow) -> Result<bool, UploadError> {
    let stat = state.store.stat(&file.storage_key).await?;
    let same = match (&stat, &file.verified_etag) {
        (Some(s), Some(verified)) => &s.etag == verified,
        _ => false,
    };
    match &stat {
        // Gone, or being replaced this instant (the local store renames): no link, no verdict.
        None => tracing::warn!(file = %file.id, key = %file.storage_key, "a verified file's object is missing"),
        Some(now) if !same => {
            tracing::error!(
                file = %file.id, key = %file.storage_key, verified = ?file.verified_etag, now = %now.etag,
                "a verified object is not what was verified: its files are marked corrupt"
            );
            files::repo::mark_changed(&state.db, &file.storage_key).await?;
            state.metrics.dedup_refusals.with_label_values(&["changed"]).inc();
        }
        Some(_) => {}
    }
    Ok(same)
}

/// Whether a probe hint may be given: for the user's own content always; for other users'
/// only where the scope allows, and charged like a claim (for a file of up to 192 KiB the
/// probe is its whole content's hash, so a free probe would be the oracle again).
pub async fn probe_matches(state: &AppState, user: &str, size: i64, probe: &Sha1Hex) -> Result<bool, UploadError> {
    if files::repo::probe_matches(&state.db, size, probe.as_str(), Some(user)).await? {
        return Ok(true);
    }
    if state.settings.dedup.scope != DedupScope::All || !charge(state, user, now_ms()).await? {
        return Ok(false);
    }
    Ok(files::repo::probe_matches(&state.db, size, probe.as_str(), None).await?)
}

fn secs_ms(secs: u64) -> i64 {
    i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX / 2)
}
