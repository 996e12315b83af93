//! `POST /uploads`: a new upload, or the open one of the same file to resume. The part plan,
//! the storage's multipart upload, the row (inside the quota, atomically), the tracker, and
//! what a claimed SHA-1 or probe already gets.

use actix_web::{web, HttpResponse};
use shardrop_engine::{Plan, Sha1Hex};

use super::instant::{dedup_candidate, dedup_claim};
use super::model::*;
use super::repo::{self, UploadRow};
use super::state::State;
use super::{sign, validate, CreateUpload, UploadError, UploadView};
use crate::auth::User;
use crate::db::now_ms;
use crate::error::ErrorBody;
use crate::quota;
use crate::state::AppState;

/// What `POST /uploads` answers.
pub enum Created {
    /// A new upload (201).
    New(UploadView),
    /// An open upload of the same file, to resume (200).
    Resumed(UploadView),
}

pub async fn create(state: &AppState, user: &User, mut req: CreateUpload) -> Result<Created, UploadError> {
    validate::name(&req.name)?;
    let parts = req.parts.take();
    let content_type = validate::content_type(req.content_type.as_deref())?;
    let sha1 = req.sha1.as_deref().map(Sha1Hex::parse).transpose()?;
    let probe = req.probe.as_deref().map(Sha1Hex::parse).transpose().map_err(UploadError::InvalidProbe)?;
    let max = state.settings.uploads.max_file_size;
    if req.size > max {
        return Err(UploadError::FileTooLarge { size: req.size, max });
    }
    let size = i64::try_from(req.size).map_err(|_| UploadError::FileTooLarge { size: req.size, max })?;
    let plan = Plan::new(req.size, state.settings.uploads.part_size)
        .map_err(|_| UploadError::FileTooLarge { size: req.size, max })?;
    // Parts to sign in this request are checked before anything is made, against the plan
    // the new upload gets. Only a file of one part may ask: each start then costs a new
    // upload (and its quota) per URL, where signing in a loop meets the signing rate limit.
    let to_sign = match &parts {
        Some(_) if plan.part_count != 1 => return Err(UploadError::PartsAtStart),
        Some(parts) => Some(sign::check(state, &plan, parts)?),
        None => None,
    };
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
                    dedup_claim(state, &u, sha1).await?;
                }
                // A resumed upload signs nothing at the start (resuming is free, so it would
                // sign URLs past the rate limit): its parts go to the sign route.
                let mut v = view(state, reload(state, &u.id).await?).await?;
                v.dedup_candidate = dedup_candidate(state, user, size, probe.as_ref()).await?;
                return Ok(Created::Resumed(v));
            }
        }
    }
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
        state: State::Uploading,
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
        return Err(UploadError::quota_exceeded(used, size, quota::limit(state).unwrap_or(0)));
    }
    // A tracker that is down now is rebuilt from storage later; the upload stands.
    if let Err(e) = state.tracker.open(&id, state.ttl()).await {
        tracing::warn!(upload = %id, error = %e, "tracker open failed; it will be rebuilt from storage");
    }
    state.metrics.uploads_started.inc();
    let row = match &row.sha1 {
        Some(sha1) => {
            dedup_claim(state, &row, &Sha1Hex::parse(sha1)?).await?;
            reload(state, &row.id).await?
        }
        None => row,
    };
    let signed = match to_sign {
        // An upload linked at once to stored content needs no URL.
        Some(checked) if row.state == State::Uploading => Some(sign::sign_checked(state, &row, &checked).await?),
        _ => None,
    };
    let mut v = match row.state {
        State::Uploading => view_with_parts(state, &row, Vec::new()).await?,
        _ => view(state, row).await?, // instant: the owner's own content, linked at once
    };
    v.dedup_candidate = dedup_candidate(state, user, size, probe.as_ref()).await?;
    v.signed = signed;
    Ok(Created::New(v))
}

/// Start an upload, or resume an open one of the same file. A `sha1` that names stored
/// content gets a `challenge`: answer it (`/proof`) and nothing needs sending. A file of one
/// part may have its part signed in the same request (`parts` in, `signed` out), so it is
/// stored in three requests: this one, its PUT, and its report.
#[utoipa::path(post, path = "/api/v1/uploads", operation_id = "create_upload", tag = "uploads", request_body = CreateUpload, responses(
    (status = 201, description = "A new upload and its plan", body = UploadView),
    (status = 200, description = "An open upload of the same file, to resume", body = UploadView),
    (status = 400, description = "`malformed-json`", body = ErrorBody),
    (status = 401, description = "`unauthorized`", body = ErrorBody),
    (status = 403, description = "`quota-exceeded`", body = ErrorBody),
    (status = 409, description = "`part-sha1-conflict` (resuming an upload whose part was signed for another SHA-1)", body = ErrorBody),
    (status = 413, description = "`file-too-large`, `body-too-large`", body = ErrorBody),
    (status = 415, description = "`unsupported-media-type`", body = ErrorBody),
    (status = 422, description = "`invalid-name`, `invalid-sha1`, `invalid-probe`, `invalid-content-type`, `invalid-field`; for `parts`: `invalid-part-number`, `invalid-part-size`, `invalid-md5`, `md5-required`, `invalid-empty-part`, `invalid-batch` (also: `parts` for a file of more than one part)", body = ErrorBody),
))]
pub async fn handler(user: User, state: web::Data<AppState>, body: web::Json<CreateUpload>) -> Res {
    Ok(match create(&state, &user, body.into_inner()).await? {
        Created::New(v) => HttpResponse::Created().json(v),
        Created::Resumed(v) => HttpResponse::Ok().json(v),
    })
}
