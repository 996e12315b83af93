//! Composing the file, exactly once across replicas: the tracker's claim keeps racing
//! replicas apart, SQL decides for good; the parts are checked against `ListParts` first.

use std::time::{Duration, Instant};

use actix_web::{web, HttpResponse};
use shardrop_engine::Sha1Hex;

use super::abort::abort_claimed;
use super::model::*;
use super::repo::{self, UploadRow};
use super::state::State;
use super::{CompleteRequest, UploadError, UploadView};
use crate::auth::User;
use crate::db::now_ms;
use crate::error::{ErrorBody, Object};
use crate::files::{self, FileRow};
use crate::quota;
use crate::state::AppState;
use crate::storage::StorageError;

/// Explicit, idempotent completion.
pub async fn complete(state: &AppState, user: &User, id: &str, sha1: Option<&str>) -> Result<UploadView, UploadError> {
    let sha1 = sha1.map(Sha1Hex::parse).transpose()?;
    let u = load(state, user, id).await?;
    if let Some(sha1) = &sha1 {
        record_claim(state, &u, sha1).await?;
    }
    if u.state.is_open() {
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
pub(super) async fn record_claim(state: &AppState, u: &UploadRow, sha1: &Sha1Hex) -> Result<(), UploadError> {
    if !repo::set_sha1(&state.db, &u.id, sha1.as_str()).await? {
        return Err(UploadError::Sha1Conflict);
    }
    if u.state == State::Complete {
        let file = finished_file(state, u).await?;
        if !files::repo::set_claim(&state.db, &file.id, sha1.as_str()).await? {
            return Err(UploadError::Sha1Conflict);
        }
    }
    Ok(())
}

/// What an attempt to compose the object ended in.
pub enum Finish {
    Complete(Box<FileRow>),
    /// Another replica holds the completion.
    Completing,
    /// The storage lacks these parts (or forgot the whole upload, which restarts it).
    Missing(Vec<u32>),
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

pub(super) async fn finish_claimed(state: &AppState, u: &UploadRow, started: Instant) -> Result<Finish, UploadError> {
    let now = now_ms();
    // The tracker's claim keeps racing replicas apart; SQL decides for good (the tracker
    // may have been flushed between two claims).
    if !repo::transition(&state.db, &u.id, State::Uploading, State::Completing, now, now - lease_ms(state)).await? {
        let current = reload(state, &u.id).await?;
        if current.state.is_finished() {
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
    if !matches!(composed, Ok(Composed::Done)) {
        repo::transition(&state.db, &u.id, State::Completing, State::Uploading, now_ms(), i64::MIN).await?;
        return composed.map(|c| match c {
            Composed::Missing(missing) => Finish::Missing(missing),
            // A refused part list answers as parts missing, none named (the log says why).
            Composed::Done | Composed::Refused => Finish::Missing(Vec::new()),
        });
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
    repo::finish(&state.db, &u.id, State::Complete, &file.id, now_ms()).await?;
    state.metrics.step("record", t);
    state.metrics.uploads_completed.inc();
    state.metrics.bytes_completed.inc_by(u.size_bytes());
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
pub(super) fn file_of(u: &UploadRow, now: i64) -> FileRow {
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
pub(super) async fn refuse_over_quota(
    state: &AppState,
    u: &UploadRow,
    used: i64,
    quota: i64,
) -> Result<Finish, UploadError> {
    repo::transition(&state.db, &u.id, State::Completing, State::Aborting, now_ms(), i64::MIN).await?;
    abort_claimed(state, u, "quota").await?;
    state.metrics.quota_refusals.inc();
    Err(UploadError::quota_exceeded(used, u.size, quota))
}

/// What checking and composing the parts ended in.
pub(super) enum Composed {
    /// The object is whole.
    Done,
    /// The storage lacks these parts (or forgot the upload, which starts it again).
    Missing(Vec<u32>),
    /// The storage refused the part list (logged): the parts go back to uploading.
    Refused,
}

/// Checks the parts against storage and composes the object. Times the `check` and
/// `compose` steps from `since`.
/// `since`.
pub(super) async fn compose(state: &AppState, u: &UploadRow, since: Instant) -> Result<Composed, UploadError> {
    let plan = u.plan();
    let Some(sid) = &u.storage_upload_id else {
        // A single PUT: the object is there, with the planned size, or it is not.
        if state.store.head(&u.storage_key).await? != Some(plan.size) {
            return Ok(Composed::Missing(vec![1]));
        }
        state.metrics.compositions.inc();
        return Ok(Composed::Done);
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
        return Ok(Composed::Missing(missing));
    }
    let t = state.metrics.step("check", since);
    match state.store.complete(&u.storage_key, sid, &parts).await {
        Ok(()) => {
            state.metrics.step("compose", t);
            state.metrics.compositions.inc();
            Ok(Composed::Done)
        }
        Err(StorageError::NoSuchUpload) => after_lost_upload(state, u).await,
        Err(StorageError::InvalidPart(msg)) => {
            tracing::warn!(upload = %u.id, %msg, "storage refused the part list");
            Ok(Composed::Refused)
        }
        Err(e) => Err(e.into()),
    }
}

/// The storage no longer knows the multipart upload. Either a replica composed it and died
/// before writing the file row (the object exists), or the storage purged it (MinIO does
/// after 24 h): then start a fresh multipart upload under the same id, with no parts.
pub(super) async fn after_lost_upload(state: &AppState, u: &UploadRow) -> Result<Composed, UploadError> {
    let plan = u.plan();
    if state.store.head(&u.storage_key).await? == Some(plan.size) {
        return Ok(Composed::Done);
    }
    restart(state, u).await?;
    Ok(Composed::Missing((1..=plan.part_count).collect()))
}

/// How long one replica may hold an upload's completion before another may take it over.
pub(super) fn completion_lease(state: &AppState) -> Duration {
    Duration::from_secs(state.settings.uploads.completion_lease_secs)
}

pub(super) fn lease_ms(state: &AppState) -> i64 {
    i64::try_from(completion_lease(state).as_millis()).unwrap_or(i64::MAX)
}

/// Compose the file now (idempotent). The parts are checked against the storage first.
#[utoipa::path(post, path = "/api/v1/uploads/{upload_id}/complete", operation_id = "complete_upload", tag = "uploads", request_body = CompleteRequest,
    params(("upload_id" = String, Path,)),
    responses(
        (status = 200, description = "Complete; `file` is set", body = UploadView),
        (status = 400, description = "`malformed-json`, `invalid-path`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`quota-exceeded`: the upload would pass the quota; it was aborted", body = ErrorBody),
        (status = 404, description = "`upload-not-found`", body = ErrorBody),
        (status = 409, description = "`parts-missing` (the message lists them), `upload-completing`, `sha1-conflict`", body = ErrorBody),
        (status = 413, description = "`body-too-large`", body = ErrorBody),
        (status = 415, description = "`unsupported-media-type`", body = ErrorBody),
        (status = 422, description = "`invalid-sha1`, `invalid-field`", body = ErrorBody),
))]
pub async fn handler(
    user: User,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Json<Object<CompleteRequest>>,
) -> Res {
    let sha1 = body.into_inner().0.sha1;
    Ok(HttpResponse::Ok().json(complete(&state, &user, &id, sha1.as_deref()).await?))
}
