//! The upload flows. Each function is one API call; the handlers in `routes` only parse and
//! answer. Order of writes is chosen so a crash between two steps leaves nothing that the
//! next request or the reaper cannot finish: storage first, then SQL, then the tracker
//! (which can always be rebuilt from storage).

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use sha1::{Digest, Sha1};
use shardrop_engine::{Md5B64, Plan, Sha1B64, Sha1Hex};

use super::dedup::{self, Claim};
use super::repo::{self, UploadRow, ABORTING, COMPLETE, COMPLETING, INSTANT, UPLOADING};
use super::{
    quota, validate, Challenge, CreateUpload, ReportAnswer, SignPart, SignedPart, UploadError, UploadState, UploadView,
};
use crate::app::AppState;
use crate::auth::User;
use crate::db::now_ms;
use crate::files::{self, FileRow, FileView};
use crate::storage::{PartCheck, PartTarget, StorageError, StoredPart};
use crate::tracker::PartRecord;

/// Activity is written to SQL at most this often per upload (each write keeps the reaper
/// off), and at least four times per TTL.
const TOUCH_EVERY_MS: i64 = 30_000;

/// What `POST /uploads` answers.
pub enum Created {
    /// A new upload (201).
    New(UploadView),
    /// An open upload of the same file, to resume (200).
    Resumed(UploadView),
}

/// What an attempt to compose the object ended in.
pub enum Finish {
    Complete(Box<FileRow>),
    /// Another replica holds the completion.
    Completing,
    /// The storage lacks these parts (or forgot the whole upload, which restarts it).
    Missing(Vec<u32>),
}

fn plan_of(u: &UploadRow) -> Plan {
    Plan {
        size: u64::try_from(u.size).unwrap_or(0),
        part_size: u64::try_from(u.part_size).unwrap_or(0),
        part_count: u32::try_from(u.part_count).unwrap_or(0),
    }
}

fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}

/// The caller's upload: another user's is `upload-not-found`, exactly like a missing one.
async fn load(state: &AppState, user: &User, id: &str) -> Result<UploadRow, UploadError> {
    match repo::get(&state.db, id).await? {
        Some(u) if u.state != ABORTING && u.user_id.as_deref() == Some(user.id.as_str()) => Ok(u),
        _ => Err(UploadError::NotFound),
    }
}

/// The upload as it is now, whoever owns it (for flows that already checked).
async fn reload(state: &AppState, id: &str) -> Result<UploadRow, UploadError> {
    match repo::get(&state.db, id).await? {
        Some(u) if u.state != ABORTING => Ok(u),
        _ => Err(UploadError::NotFound),
    }
}

pub async fn create(state: &AppState, user: &User, req: CreateUpload) -> Result<Created, UploadError> {
    validate::name(&req.name)?;
    let content_type = validate::content_type(req.content_type.as_deref())?;
    let sha1 = req.sha1.as_deref().map(Sha1Hex::parse).transpose()?;
    let probe = req.probe.as_deref().map(Sha1Hex::parse).transpose().map_err(UploadError::InvalidProbe)?;
    let max = state.settings.uploads.max_file_size;
    if req.size > max {
        return Err(UploadError::FileTooLarge { size: req.size, max });
    }
    let size = i64::try_from(req.size).map_err(|_| UploadError::FileTooLarge { size: req.size, max })?;
    let now = now_ms();
    if let Some(last_modified) = req.last_modified {
        let alive_since = now - state.ttl_ms();
        if let Some(u) = repo::find_resumable(&state.db, &user.id, &req.name, size, last_modified, alive_since).await? {
            // Same name, size and time but another claimed content: not the same file.
            let same = match &sha1 {
                Some(sha1) => repo::set_sha1(&state.db, &u.id, sha1.as_str()).await?,
                None => true,
            };
            if same {
                if let Some(sha1) = &sha1 {
                    dedup(state, &u, sha1).await?;
                }
                let mut v = view(state, reload(state, &u.id).await?).await?;
                v.dedup_candidate = dedup_candidate(state, user, size, probe.as_ref()).await?;
                return Ok(Created::Resumed(v));
            }
        }
    }
    let plan = Plan::new(req.size, state.settings.uploads.part_size)
        .map_err(|_| UploadError::FileTooLarge { size: req.size, max })?;
    quota::check_start(state, &user.id, size).await?;
    let id = new_id("up");
    let key = format!("objects/{id}");
    // Multipart even for one part: an UploadPart URL dies with its upload, a signed
    // PutObject would not. The empty file is the exception (see `storage::PartTarget`).
    let storage_upload_id = match plan.size {
        0 => None,
        _ => Some(state.store.create_multipart(&key, &content_type).await?),
    };
    let row = UploadRow {
        id: id.clone(),
        name: req.name,
        size,
        content_type,
        last_modified: req.last_modified,
        sha1: sha1.map(|s| s.as_str().to_owned()),
        part_size: i64::try_from(plan.part_size).unwrap_or(i64::MAX),
        part_count: i64::from(plan.part_count),
        storage_key: key,
        storage_upload_id,
        state: UPLOADING.into(),
        file_id: None,
        created_at: now,
        updated_at: now,
        challenge_file: None,
        challenge_offset: None,
        challenge_length: None,
        challenge_nonce: None,
        user_id: Some(user.id.clone()),
    };
    let inserted = repo::insert_within_quota(&state.db, &row, quota::limit(state)).await;
    if !matches!(inserted, Ok(None)) {
        // Leave nothing behind in storage for a row that was never written.
        if let Some(sid) = &row.storage_upload_id {
            let _ = state.store.abort(&row.storage_key, sid).await;
        }
    }
    if let Some(used) = inserted? {
        state.metrics.quota_refusals.inc();
        return Err(quota::exceeded(used, size, quota::limit(state).unwrap_or(0)));
    }
    // A tracker that is down now is rebuilt from storage later; the upload stands.
    if let Err(e) = state.tracker.open(&id, state.ttl()).await {
        tracing::warn!(upload = %id, error = %e, "tracker open failed; it will be rebuilt from storage");
    }
    state.metrics.uploads_started.inc();
    let row = match &row.sha1 {
        Some(sha1) => {
            dedup(state, &row, &Sha1Hex::parse(sha1)?).await?;
            reload(state, &row.id).await?
        }
        None => row,
    };
    let mut v = match row.state.as_str() {
        UPLOADING => view_with_parts(state, &row, Vec::new()).await?,
        _ => view(state, row).await?, // instant: the owner's own content, linked at once
    };
    v.dedup_candidate = dedup_candidate(state, user, size, probe.as_ref()).await?;
    Ok(Created::New(v))
}

/// Acts on a whole-file SHA-1 claim: the uploader's own content links the upload at once
/// (`instant`); other users' content, where the scope allows, sets a challenge whose right
/// answer goes to [`prove`]. See `dedup` for the policy.
async fn dedup(state: &AppState, u: &UploadRow, sha1: &Sha1Hex) -> Result<(), UploadError> {
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
async fn link_instant(state: &AppState, u: &UploadRow, source: &FileRow) -> Result<bool, UploadError> {
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

async fn dedup_candidate(
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

pub async fn sign(state: &AppState, user: &User, id: &str, parts: &[SignPart]) -> Result<Vec<SignedPart>, UploadError> {
    let max = state.settings.uploads.max_sign_batch;
    if parts.is_empty() || parts.len() > max {
        return Err(UploadError::InvalidBatch { max });
    }
    let u = load(state, user, id).await?;
    if u.state != UPLOADING {
        return Err(UploadError::AlreadyComplete);
    }
    let plan = plan_of(&u);
    let md5_required = state.store.part_check() == PartCheck::Md5;
    let checked = parts
        .iter()
        .map(|p| {
            let expected = plan
                .part_len(p.number)
                .ok_or(UploadError::InvalidPartNumber { number: p.number, part_count: plan.part_count })?;
            if expected != p.size {
                return Err(UploadError::InvalidPartSize { number: p.number, expected, got: p.size });
            }
            let sha1 = Sha1B64::parse(&p.sha1)?;
            let md5 = p.md5.as_deref().map(Md5B64::parse).transpose().map_err(UploadError::InvalidMd5)?;
            // An empty length is not signed into an S3 URL: the digests of nothing pin it
            // (the SHA-1 where the storage checks that, the MD5 where it checks only that).
            if p.size == 0 && (sha1 != empty_sha1() || md5.as_ref().is_some_and(|m| *m != empty_md5())) {
                return Err(UploadError::EmptyPartSha1 { number: p.number });
            }
            if md5.is_none() && md5_required {
                return Err(UploadError::Md5Required { number: p.number });
            }
            Ok((p.number, p.size, sha1, md5))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let pins: Vec<(u32, &str)> = checked.iter().map(|(number, _, sha1, _)| (*number, sha1.as_str())).collect();
    if let Some(&number) = repo::pin_parts(&state.db, &u.id, &pins).await?.first() {
        return Err(UploadError::PartSha1Conflict { number });
    }
    let storage_upload = match &u.storage_upload_id {
        Some(sid) => Some(sid.clone()),
        None if plan.size == 0 => None,
        None => Some(to_multipart(state, &u).await?),
    };
    let ttl = Duration::from_secs(state.settings.uploads.sign_ttl_secs);
    let mut signed = Vec::with_capacity(checked.len());
    for (number, size, sha1, md5) in &checked {
        let target = PartTarget {
            key: &u.storage_key,
            upload: storage_upload.as_deref(),
            number: *number,
            size: *size,
            sha1,
            md5: md5.as_ref(),
            content_type: &u.content_type,
        };
        let r = state.store.sign_part(target, ttl).await?;
        signed.push(SignedPart {
            number: *number,
            url: r.url,
            method: r.method,
            headers: r.headers,
            expires_at: r.expires_at,
        });
    }
    state.metrics.parts_signed.inc_by(signed.len() as u64);
    touch(state, &u).await?;
    Ok(signed)
}

pub async fn report(
    state: &AppState,
    user: &User,
    id: &str,
    number: u32,
    etag: &str,
    sha1: &str,
) -> Result<ReportAnswer, UploadError> {
    validate::etag(etag)?;
    let sha1 = Sha1B64::parse(sha1)?;
    let u = load(state, user, id).await?;
    let plan = plan_of(&u);
    if plan.part_range(number).is_none() {
        return Err(UploadError::InvalidPartNumber { number, part_count: plan.part_count });
    }
    match u.state.as_str() {
        COMPLETE | INSTANT => return answer_finished(state, &u).await,
        COMPLETING => {
            return Ok(ReportAnswer {
                parts_done: plan.part_count,
                part_count: plan.part_count,
                state: UploadState::Completing,
                file: None,
            })
        }
        _ => {}
    }
    let record = PartRecord { number, etag: etag.to_owned(), sha1: sha1.as_str().to_owned() };
    let done = match state.tracker.record(id, &record, state.ttl()).await? {
        Some(n) => n,
        None => {
            // The tracker lost this upload: storage knows which parts exist.
            rebuild_from_storage(state, &u).await?;
            state.tracker.record(id, &record, state.ttl()).await?.unwrap_or(0)
        }
    };
    state.metrics.parts_reported.inc();
    touch(state, &u).await?;
    if done < plan.part_count {
        return Ok(ReportAnswer {
            parts_done: done,
            part_count: plan.part_count,
            state: UploadState::Uploading,
            file: None,
        });
    }
    match finish(state, &u).await? {
        Finish::Complete(file) => Ok(ReportAnswer {
            parts_done: plan.part_count,
            part_count: plan.part_count,
            state: UploadState::Complete,
            file: Some(FileView::from(&*file)),
        }),
        Finish::Completing => Ok(ReportAnswer {
            parts_done: done,
            part_count: plan.part_count,
            state: UploadState::Completing,
            file: None,
        }),
        Finish::Missing(missing) => Ok(ReportAnswer {
            parts_done: plan.part_count.saturating_sub(u32::try_from(missing.len()).unwrap_or(u32::MAX)),
            part_count: plan.part_count,
            state: UploadState::Uploading,
            file: None,
        }),
    }
}

/// Explicit, idempotent completion.
pub async fn complete(state: &AppState, user: &User, id: &str, sha1: Option<&str>) -> Result<UploadView, UploadError> {
    let sha1 = sha1.map(Sha1Hex::parse).transpose()?;
    let u = load(state, user, id).await?;
    if let Some(sha1) = &sha1 {
        record_claim(state, &u, sha1).await?;
    }
    if u.state == UPLOADING || u.state == COMPLETING {
        match finish(state, &u).await? {
            Finish::Complete(_) => {}
            Finish::Completing => return Err(UploadError::Completing),
            Finish::Missing(missing) => return Err(UploadError::PartsMissing(missing)),
        }
    }
    view(state, load(state, user, id).await?).await
}

/// Records a whole-file SHA-1 claim on the upload and, if its file already exists, on the
/// file: a claim that contradicts an earlier one (or the verified content) is a conflict.
async fn record_claim(state: &AppState, u: &UploadRow, sha1: &Sha1Hex) -> Result<(), UploadError> {
    if !repo::set_sha1(&state.db, &u.id, sha1.as_str()).await? {
        return Err(UploadError::Sha1Conflict);
    }
    if u.state == COMPLETE {
        let file = finished_file(state, u).await?;
        if !files::repo::set_claim(&state.db, &file.id, sha1.as_str()).await? {
            return Err(UploadError::Sha1Conflict);
        }
    }
    Ok(())
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

pub async fn status(state: &AppState, user: &User, id: &str) -> Result<UploadView, UploadError> {
    let u = load(state, user, id).await?;
    if u.state == COMPLETING && u.updated_at < now_ms() - lease_ms(state) {
        // Its completer died: take the completion over.
        let _ = finish(state, &u).await?;
        return view(state, load(state, user, id).await?).await;
    }
    view(state, u).await
}

pub async fn abort(state: &AppState, user: &User, id: &str) -> Result<(), UploadError> {
    // A report landing between the read and the claim changes `updated_at`: look again.
    for _ in 0..5 {
        let u = load(state, user, id).await?;
        match u.state.as_str() {
            COMPLETE | INSTANT => return Err(UploadError::AlreadyComplete),
            COMPLETING if u.updated_at >= now_ms() - lease_ms(state) => return Err(UploadError::Completing),
            _ => {}
        }
        if repo::transition_if_unchanged(&state.db, id, &u.state, u.updated_at, ABORTING, now_ms()).await? {
            return abort_claimed(state, &u, "client").await;
        }
    }
    Err(UploadError::Completing)
}

/// The SHA-1 of no bytes, in base64: the only content an empty part may be signed for.
fn empty_sha1() -> Sha1B64 {
    Sha1B64::from_digest(&shardrop_engine::hashing::sha1(b""))
}

/// The MD5 of no bytes, in base64.
fn empty_md5() -> Md5B64 {
    Md5B64::from_digest(&shardrop_engine::hashing::md5(b""))
}

/// Gives an upload started as a single PUT (before every upload was multipart) a multipart
/// upload of its own, so that its part URLs die with it like any other's.
async fn to_multipart(state: &AppState, u: &UploadRow) -> Result<String, UploadError> {
    let sid = state.store.create_multipart(&u.storage_key, &u.content_type).await?;
    if repo::set_storage_upload(&state.db, &u.id, &sid).await? {
        return Ok(sid);
    }
    let _ = state.store.abort(&u.storage_key, &sid).await; // another request was first
    reload(state, &u.id).await?.storage_upload_id.ok_or(UploadError::NotFound)
}

/// Drops an upload this caller has moved to `aborting`: storage, tracker, then SQL. An
/// upload that already has its file (a completer wrote the row and died before the state
/// change) is not dropped but finished: its object belongs to the file now.
pub async fn abort_claimed(state: &AppState, u: &UploadRow, reason: &str) -> Result<(), UploadError> {
    if let Some(file) = files::repo::by_upload(&state.db, &u.id).await? {
        tracing::warn!(upload = %u.id, file = %file.id, "an upload with a file row was left unfinished; finishing it");
        // A link to other content (instant) still has its own parts to drop.
        let linked = file.storage_key != u.storage_key;
        if linked {
            drop_parts(state, u).await?;
        }
        repo::finish(&state.db, &u.id, if linked { INSTANT } else { COMPLETE }, &file.id, now_ms()).await?;
        return Err(UploadError::AlreadyComplete);
    }
    drop_parts(state, u).await?;
    repo::delete(&state.db, &u.id).await?;
    state.metrics.uploads_aborted.with_label_values(&[reason]).inc();
    Ok(())
}

async fn drop_parts(state: &AppState, u: &UploadRow) -> Result<(), UploadError> {
    match &u.storage_upload_id {
        Some(sid) => state.store.abort(&u.storage_key, sid).await?,
        // A single PUT's object, unless a file was made of it (never drop a file's bytes).
        None if !files::repo::key_in_use(&state.db, &u.storage_key).await? => {
            state.store.delete(&u.storage_key).await?
        }
        None => {}
    }
    if let Err(e) = state.tracker.forget(&u.id).await {
        tracing::warn!(upload = %u.id, error = %e, "tracker forget failed; its keys expire on their own");
    }
    Ok(())
}

/// Composes the object if this caller wins the claim; exactly one caller does.
pub async fn finish(state: &AppState, u: &UploadRow) -> Result<Finish, UploadError> {
    let started = Instant::now();
    let holder = format!("{}:{}", state.replica, uuid::Uuid::new_v4().simple());
    if !state.tracker.claim_completion(&u.id, &holder, completion_lease(state)).await? {
        return Ok(Finish::Completing);
    }
    let result = finish_claimed(state, u, started).await;
    if !matches!(result, Ok(Finish::Complete(_))) {
        let _ = state.tracker.release_completion(&u.id, &holder).await;
    }
    result
}

async fn finish_claimed(state: &AppState, u: &UploadRow, started: Instant) -> Result<Finish, UploadError> {
    let now = now_ms();
    // The tracker's claim keeps racing replicas apart; SQL decides for good (the tracker
    // may have been flushed between two claims).
    if !repo::transition(&state.db, &u.id, UPLOADING, COMPLETING, now, now - lease_ms(state)).await? {
        let current = reload(state, &u.id).await?;
        if current.state == COMPLETE || current.state == INSTANT {
            let file = finished_file(state, &current).await?;
            return Ok(Finish::Complete(Box::new(file)));
        }
        return Ok(Finish::Completing);
    }
    let t = state.metrics.step("claim", started);
    if let Some(quota) = quota::limit(state) {
        // Before composing: the quota counts files, and other uploads of this user may have
        // become files since this one started.
        let stored = quota::stored_bytes(&state.db, u.user_id.as_deref().unwrap_or_default()).await?;
        if stored.saturating_add(u.size) > quota {
            return refuse_over_quota(state, u, stored, quota).await;
        }
    }
    let composed = compose(state, u, t).await;
    let t = Instant::now();
    if !matches!(composed, Ok(None)) {
        repo::transition(&state.db, &u.id, COMPLETING, UPLOADING, now_ms(), i64::MIN).await?;
        return composed.map(|m| Finish::Missing(m.unwrap_or_default()));
    }
    // Without a claim when `u` was read, the row takes the one made by now (SQL reads it).
    let file = file_of(u, now_ms());
    let Some(file) = files::repo::insert_once(&state.db, &file, quota::limit(state)).await? else {
        // Another upload of this user's finished first and took the room: the composed
        // object goes too, so nothing is left behind.
        state.store.delete(&u.storage_key).await?;
        let stored = quota::stored_bytes(&state.db, u.user_id.as_deref().unwrap_or_default()).await?;
        return refuse_over_quota(state, u, stored, quota::limit(state).unwrap_or(0)).await;
    };
    repo::finish(&state.db, &u.id, COMPLETE, &file.id, now_ms()).await?;
    state.metrics.step("record", t);
    state.metrics.uploads_completed.inc();
    state.metrics.bytes_completed.inc_by(u64::try_from(u.size).unwrap_or(0));
    // While the answer goes: the tracker's keys go, the verification is queued. Neither is
    // lost for good if this process dies first: the keys expire, and the reaper queues a
    // pending file that was never queued.
    let (db, tracker, upload, file_id) = (state.db.clone(), state.tracker.clone(), u.id.clone(), file.id.clone());
    tokio::spawn(async move {
        let (forgot, ()) =
            futures_util::future::join(tracker.forget(&upload), files::verify::queue(&db, &*tracker, &file_id)).await;
        if let Err(e) = forgot {
            tracing::warn!(%upload, error = %e, "tracker forget failed; its keys expire on their own");
        }
    });
    Ok(Finish::Complete(Box::new(file)))
}

/// The file an upload becomes: its name, size, type and owner, its own object, not yet
/// verified.
fn file_of(u: &UploadRow, now: i64) -> FileRow {
    FileRow {
        id: new_id("fi"),
        upload_id: Some(u.id.clone()),
        user_id: u.user_id.clone(),
        name: u.name.clone(),
        size: u.size,
        content_type: u.content_type.clone(),
        sha1: u.sha1.clone(),
        storage_key: u.storage_key.clone(),
        status: files::repo::PENDING.into(),
        created_at: now,
        verified_at: None,
        probe: None,
        verified_etag: None,
    }
}

/// Aborts an upload (held in `completing` by this caller) that would take its owner past
/// the quota: its parts, tracker keys and row go.
async fn refuse_over_quota(state: &AppState, u: &UploadRow, used: i64, quota: i64) -> Result<Finish, UploadError> {
    repo::transition(&state.db, &u.id, COMPLETING, ABORTING, now_ms(), i64::MIN).await?;
    abort_claimed(state, u, "quota").await?;
    state.metrics.quota_refusals.inc();
    Err(quota::exceeded(used, u.size, quota))
}

/// Checks the parts against storage and composes the object. `Ok(None)` when composed,
/// `Ok(Some(missing))` when parts are missing. Times the `check` and `compose` steps from
/// `since`.
async fn compose(state: &AppState, u: &UploadRow, since: Instant) -> Result<Option<Vec<u32>>, UploadError> {
    let plan = plan_of(u);
    let Some(sid) = &u.storage_upload_id else {
        // A single PUT: the object is there, with the planned size, or it is not.
        if state.store.head(&u.storage_key).await? != Some(plan.size) {
            return Ok(Some(vec![1]));
        }
        state.metrics.compositions.inc();
        return Ok(None);
    };
    // The storage's list and the tracker's SHA-1s (for storage that lists none), together.
    let (stored, tracked) =
        futures_util::future::join(state.store.list_parts(&u.storage_key, sid), state.tracker.parts(&u.id)).await;
    let stored = match stored {
        Ok(parts) => parts,
        Err(StorageError::NoSuchUpload) => return after_lost_upload(state, u).await,
        Err(e) => return Err(e.into()),
    };
    let tracked = tracked.ok().flatten().unwrap_or_default();
    let mut parts = Vec::with_capacity(stored.len());
    let mut missing = Vec::new();
    let mut stored = stored.into_iter().peekable();
    for number in 1..=plan.part_count {
        while stored.peek().is_some_and(|p| p.number < number) {
            stored.next();
        }
        match stored.peek() {
            Some(p) if p.number == number && Some(p.size) == plan.part_len(number) => {
                let mut part = p.clone();
                if part.sha1.is_none() {
                    part.sha1 = tracked.get(&number).map(|t| t.sha1.clone());
                }
                parts.push(part);
            }
            _ => missing.push(number),
        }
    }
    if !missing.is_empty() {
        return Ok(Some(missing));
    }
    let t = state.metrics.step("check", since);
    match state.store.complete(&u.storage_key, sid, &parts).await {
        Ok(()) => {
            state.metrics.step("compose", t);
            state.metrics.compositions.inc();
            Ok(None)
        }
        Err(StorageError::NoSuchUpload) => after_lost_upload(state, u).await,
        Err(StorageError::InvalidPart(msg)) => {
            tracing::warn!(upload = %u.id, %msg, "storage refused the part list");
            Ok(Some(Vec::new()))
        }
        Err(e) => Err(e.into()),
    }
}

/// The storage no longer knows the multipart upload. Either a replica composed it and died
/// before writing the file row (the object exists), or the storage purged it (MinIO does
/// after 24 h): then start a fresh multipart upload under the same id, with no parts.
async fn after_lost_upload(state: &AppState, u: &UploadRow) -> Result<Option<Vec<u32>>, UploadError> {
    let plan = plan_of(u);
    if state.store.head(&u.storage_key).await? == Some(plan.size) {
        return Ok(None);
    }
    restart(state, u).await?;
    Ok(Some((1..=plan.part_count).collect()))
}

async fn restart(state: &AppState, u: &UploadRow) -> Result<(), UploadError> {
    tracing::warn!(upload = %u.id, "the storage forgot this multipart upload; starting it again");
    let sid = state.store.create_multipart(&u.storage_key, &u.content_type).await?;
    repo::restart(&state.db, &u.id, &sid, now_ms()).await?;
    state.tracker.rebuild(&u.id, &[], state.ttl()).await?;
    Ok(())
}

/// Refills the tracker from `ListParts`; answers the parts storage holds.
async fn rebuild_from_storage(state: &AppState, u: &UploadRow) -> Result<Vec<u32>, UploadError> {
    let plan = plan_of(u);
    let stored: Vec<StoredPart> = match &u.storage_upload_id {
        Some(sid) => match state.store.list_parts(&u.storage_key, sid).await {
            Ok(parts) => parts,
            Err(StorageError::NoSuchUpload) => {
                restart(state, u).await?;
                return Ok(Vec::new());
            }
            Err(e) => return Err(e.into()),
        },
        None => match state.store.head(&u.storage_key).await? {
            Some(size) if size == plan.size => vec![StoredPart { number: 1, etag: String::new(), size, sha1: None }],
            _ => Vec::new(),
        },
    };
    let records: Vec<PartRecord> = stored
        .iter()
        .filter(|p| plan.part_len(p.number) == Some(p.size))
        .map(|p| PartRecord { number: p.number, etag: p.etag.clone(), sha1: p.sha1.clone().unwrap_or_default() })
        .collect();
    state.tracker.rebuild(&u.id, &records, state.ttl()).await?;
    Ok(records.iter().map(|r| r.number).collect())
}

async fn touch(state: &AppState, u: &UploadRow) -> Result<(), UploadError> {
    let now = now_ms();
    if u.updated_at < now - TOUCH_EVERY_MS.min(state.ttl_ms() / 4) {
        repo::touch(&state.db, &u.id, now).await?;
    }
    Ok(())
}

async fn finished_file(state: &AppState, u: &UploadRow) -> Result<FileRow, UploadError> {
    let file = match &u.file_id {
        Some(fid) => files::repo::get(&state.db, fid).await?,
        None => files::repo::by_upload(&state.db, &u.id).await?,
    };
    // The upload says complete but its file is gone (deleted since): report that plainly.
    file.ok_or(UploadError::NotFound)
}

async fn answer_finished(state: &AppState, u: &UploadRow) -> Result<ReportAnswer, UploadError> {
    let plan = plan_of(u);
    let file = finished_file(state, u).await?;
    let st = if u.state == INSTANT { UploadState::Instant } else { UploadState::Complete };
    Ok(ReportAnswer {
        parts_done: plan.part_count,
        part_count: plan.part_count,
        state: st,
        file: Some(FileView::from(&file)),
    })
}

/// The upload as the API shows it, with its done parts from the tracker (or storage).
async fn view(state: &AppState, u: UploadRow) -> Result<UploadView, UploadError> {
    let parts = match u.state.as_str() {
        UPLOADING | COMPLETING => match state.tracker.parts(&u.id).await? {
            Some(parts) => parts.into_keys().collect(),
            None => rebuild_from_storage(state, &u).await?,
        },
        _ => (1..=plan_of(&u).part_count).collect(),
    };
    view_with_parts(state, &u, parts).await
}

async fn view_with_parts(state: &AppState, u: &UploadRow, parts_done: Vec<u32>) -> Result<UploadView, UploadError> {
    let plan = plan_of(u);
    let (st, file) = match u.state.as_str() {
        COMPLETE => (UploadState::Complete, Some(FileView::from(&finished_file(state, u).await?))),
        INSTANT => (UploadState::Instant, Some(FileView::from(&finished_file(state, u).await?))),
        COMPLETING => (UploadState::Completing, None),
        _ => (UploadState::Uploading, None),
    };
    Ok(UploadView {
        upload_id: u.id.clone(),
        name: u.name.clone(),
        size: plan.size,
        content_type: u.content_type.clone(),
        part_size: plan.part_size,
        part_count: plan.part_count,
        parts_done,
        state: st,
        sha1: u.sha1.clone(),
        expires_at: crate::db::to_time(u.updated_at + state.ttl_ms()),
        file,
        dedup_candidate: false,
        part_check: state.store.part_check(),
        challenge: match (&u.challenge_file, u.challenge_offset, u.challenge_length, &u.challenge_nonce) {
            (Some(_), Some(offset), Some(length), Some(nonce)) if st == UploadState::Uploading => Some(Challenge {
                offset: u64::try_from(offset).unwrap_or(0),
                length: u64::try_from(length).unwrap_or(0),
                nonce: nonce.clone(),
            }),
            _ => None,
        },
    })
}

/// How long one replica may hold an upload's completion before another may take it over.
fn completion_lease(state: &AppState) -> Duration {
    Duration::from_secs(state.settings.uploads.completion_lease_secs)
}

fn lease_ms(state: &AppState) -> i64 {
    i64::try_from(completion_lease(state).as_millis()).unwrap_or(i64::MAX)
}
