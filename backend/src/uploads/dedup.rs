//! Instant upload: when may a claimed SHA-1 link an upload to content already stored.
//!
//! A hash alone never grants content, and it should tell the claimant as little as possible.
//! So: a user's own verified content links at once; other users' content only with
//! `dedup.scope = all`, and only after a proof of possession (the SHA-1 of a nonce and a
//! byte range the server picks). The range is drawn once per user and content and stays
//! the same until it is answered or `challenge_ttl_secs` pass, so redrawing (a new upload,
//! a new claim) cannot move it onto bytes the claimant happens to know; a failed proof locks
//! that content for the user for `fail_lockout_secs`; and a user draws at most
//! `claims_per_hour` challenges for other users' content. Whatever the scope, a link first
//! checks that the stored object is still the one the verifier read (its ETag): an object
//! written since is no dedup target, and its files are marked corrupt.
//!
//! The trade-off of `all` (a claimant learns that someone stores a file whose hash they
//! know) is written up in docs/security.md.

use shardrop_engine::Sha1Hex;
use sqlx::FromRow;

use super::repo::UploadRow;
use super::UploadError;
use crate::app::AppState;
use crate::config::DedupScope;
use crate::db::{now_ms, Db};
use crate::files::{self, FileRow};

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
    let Some(file) = files::repo::find_verified(&state.db, sha1.as_str(), u.size).await? else {
        return Ok(Claim::Nothing);
    };
    if !intact(state, &file).await? {
        return Ok(Claim::Nothing);
    }
    let now = now_ms();
    let d = &state.settings.dedup;
    let ttl_ms = secs_ms(d.challenge_ttl_secs);
    let lockout_ms = secs_ms(d.fail_lockout_secs);
    // A claim past its life goes; a failed one stays for its lockout.
    sqlx::query(
        "DELETE FROM dedup_claims WHERE user_id = $1 AND sha1 = $2 AND size = $3 \
         AND ((failed_at IS NULL AND created_at < $4) OR failed_at < $5)",
    )
    .bind(owner)
    .bind(sha1.as_str())
    .bind(u.size)
    .bind(now - ttl_ms)
    .bind(now - lockout_ms)
    .execute(&state.db)
    .await?;
    if let Some(failed) = failed_at(&state.db, owner, sha1, u.size).await? {
        tracing::info!(upload = %u.id, failed, "claim refused: a proof of this content failed recently");
        state.metrics.dedup_refusals.with_label_values(&["locked"]).inc();
        return Ok(Claim::Nothing);
    }
    if let Some(c) = current(&state.db, owner, sha1, u.size).await? {
        return Ok(Claim::Challenge(Challenge { file_id: file.id, ..c }));
    }
    let (recent,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM dedup_claims WHERE user_id = $1 AND created_at >= $2")
        .bind(owner)
        .bind(now - HOUR_MS)
        .fetch_one(&state.db)
        .await?;
    if recent >= i64::from(d.claims_per_hour) {
        state.metrics.dedup_refusals.with_label_values(&["rate"]).inc();
        return Ok(Claim::Nothing);
    }
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
    Ok(match current(&state.db, owner, sha1, u.size).await? {
        Some(c) => Claim::Challenge(Challenge { file_id: file.id, ..c }),
        None => Claim::Nothing, // failed or expired in the instant between
    })
}

/// The user's open (unanswered, not failed) challenge for this content.
async fn current(db: &Db, user: &str, sha1: &Sha1Hex, size: i64) -> Result<Option<Challenge>, sqlx::Error> {
    sqlx::query_as(
        "SELECT file_id, challenge_offset, challenge_length, nonce FROM dedup_claims \
         WHERE user_id = $1 AND sha1 = $2 AND size = $3 AND failed_at IS NULL",
    )
    .bind(user)
    .bind(sha1.as_str())
    .bind(size)
    .fetch_optional(db)
    .await
}

async fn failed_at(db: &Db, user: &str, sha1: &Sha1Hex, size: i64) -> Result<Option<i64>, sqlx::Error> {
    let row: Option<(Option<i64>,)> =
        sqlx::query_as("SELECT failed_at FROM dedup_claims WHERE user_id = $1 AND sha1 = $2 AND size = $3")
            .bind(user)
            .bind(sha1.as_str())
            .bind(size)
            .fetch_optional(db)
            .await?;
    Ok(row.and_then(|(f,)| f))
}

/// Records how the user's proof for this content went: a right answer ends the claim (the
/// user now holds a file of it), a wrong one locks the content for them.
pub async fn answered(db: &Db, user: &str, sha1: &str, size: i64, right: bool) -> Result<(), sqlx::Error> {
    let sql = if right {
        "DELETE FROM dedup_claims WHERE user_id = $1 AND sha1 = $2 AND size = $3"
    } else {
        "UPDATE dedup_claims SET failed_at = $4 WHERE user_id = $1 AND sha1 = $2 AND size = $3"
    };
    sqlx::query(sql).bind(user).bind(sha1).bind(size).bind(now_ms()).execute(db).await?;
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
    if !same {
        tracing::error!(
            file = %file.id, key = %file.storage_key, verified = ?file.verified_etag, now = ?stat.map(|s| s.etag),
            "a verified object is not what was verified: its files are marked corrupt"
        );
        files::repo::mark_changed(&state.db, &file.storage_key).await?;
        state.metrics.dedup_refusals.with_label_values(&["changed"]).inc();
    }
    Ok(same)
}

/// Whether a probe hint may be given: only for content the scope lets the user link to.
pub async fn probe_matches(state: &AppState, user: &str, size: i64, probe: &Sha1Hex) -> Result<bool, UploadError> {
    let owner = (state.settings.dedup.scope == DedupScope::User).then_some(user);
    Ok(files::repo::probe_matches(&state.db, size, probe.as_str(), owner).await?)
}

fn secs_ms(secs: u64) -> i64 {
    i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX / 2)
}
