//! `POST /uploads/{id}/parts/sign`: presigned part URLs. Each part's SHA-1 is pinned the
//! first time it is signed, and signed into its URL with its exact length, so the storage
//! refuses other bytes and no second URL can exist for other bytes.

use std::time::Duration;

use actix_web::{web, HttpResponse};
use shardrop_engine::{Md5B64, Plan, Sha1B64};

use super::model::*;
use super::repo::{self, UploadRow};
use super::state::State;
use super::{SignPart, SignRequest, SignResponse, SignedPart, UploadError};
use crate::auth::User;
use crate::error::ErrorBody;
use crate::state::AppState;
use crate::storage::{PartCheck, PartTarget};

pub async fn sign(state: &AppState, user: &User, id: &str, parts: &[SignPart]) -> Result<Vec<SignedPart>, UploadError> {
    let u = load(state, user, id).await?;
    if u.state != State::Uploading {
        return Err(UploadError::AlreadyComplete);
    }
    let checked = check(state, &u.plan(), parts)?;
    sign_checked(state, &u, &checked).await
}

/// A part to sign, its digests parsed.
pub(super) struct Checked {
    number: u32,
    size: u64,
    sha1: Sha1B64,
    md5: Option<Md5B64>,
}

/// Checks a batch of parts against the plan and the storage's part check, before anything
/// is written (`create` checks the parts it is asked to sign before it makes the upload).
pub(super) fn check(state: &AppState, plan: &Plan, parts: &[SignPart]) -> Result<Vec<Checked>, UploadError> {
    let max = state.settings.uploads.max_sign_batch;
    if parts.is_empty() || parts.len() > max {
        return Err(UploadError::InvalidBatch { max });
    }
    let md5_required = state.store.part_check() == PartCheck::Md5;
    parts
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
            Ok(Checked { number: p.number, size: p.size, sha1, md5 })
        })
        .collect()
}

/// Pins and signs checked parts of an open upload.
pub(super) async fn sign_checked(
    state: &AppState,
    u: &UploadRow,
    checked: &[Checked],
) -> Result<Vec<SignedPart>, UploadError> {
    let plan = u.plan();
    let pins: Vec<(u32, &str)> = checked.iter().map(|c| (c.number, c.sha1.as_str())).collect();
    if let Some(&number) = repo::pin_parts(&state.db, &u.id, &pins).await?.first() {
        return Err(UploadError::PartSha1Conflict { number });
    }
    let storage_upload = match &u.storage_upload_id {
        Some(sid) => Some(sid.clone()),
        None if plan.size == 0 => None,
        None => Some(to_multipart(state, u).await?),
    };
    let ttl = Duration::from_secs(state.settings.uploads.sign_ttl_secs);
    let mut signed = Vec::with_capacity(checked.len());
    for c in checked {
        let target = PartTarget {
            key: &u.storage_key,
            upload: storage_upload.as_deref(),
            number: c.number,
            size: c.size,
            sha1: &c.sha1,
            md5: c.md5.as_ref(),
            content_type: &u.content_type,
        };
        let r = state.store.sign_part(target, ttl).await?;
        signed.push(SignedPart {
            number: c.number,
            url: r.url,
            method: r.method,
            headers: r.headers,
            expires_at: r.expires_at,
        });
    }
    state.metrics.parts_signed.inc_by(signed.len() as u64);
    touch(state, u).await?;
    Ok(signed)
}

/// The SHA-1 of no bytes, in base64: the only content an empty part may be signed for.
pub(super) fn empty_sha1() -> Sha1B64 {
    Sha1B64::from_digest(&shardrop_engine::hashing::sha1(b""))
}

/// The MD5 of no bytes, in base64.
pub(super) fn empty_md5() -> Md5B64 {
    Md5B64::from_digest(&shardrop_engine::hashing::md5(b""))
}

/// Gives an upload started as a single PUT (before every upload was multipart) a multipart
/// upload of its own, so that its part URLs die with it like any other's.
pub(super) async fn to_multipart(state: &AppState, u: &UploadRow) -> Result<String, UploadError> {
    let sid = state.store.create_multipart(&u.storage_key, &u.content_type).await?;
    if repo::set_storage_upload(&state.db, &u.id, &sid).await? {
        return Ok(sid);
    }
    let _ = state.store.abort(&u.storage_key, &sid).await; // another request was first
    reload(state, &u.id).await?.storage_upload_id.ok_or(UploadError::NotFound)
}

/// Presigned PUT URLs for a batch of parts, each bound to its SHA-1 and length.
#[utoipa::path(post, path = "/api/v1/uploads/{upload_id}/parts/sign", operation_id = "sign_parts", tag = "uploads", request_body = SignRequest,
    params(("upload_id" = String, Path,)),
    responses(
        (status = 200, body = SignResponse),
        (status = 400, description = "`malformed-json`, `invalid-path`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`upload-not-found`", body = ErrorBody),
        (status = 409, description = "`upload-complete`, `part-sha1-conflict` (the part was signed before for another SHA-1)", body = ErrorBody),
        (status = 413, description = "`body-too-large`", body = ErrorBody),
        (status = 415, description = "`unsupported-media-type`", body = ErrorBody),
        (status = 422, description = "`invalid-part-number`, `invalid-part-size`, `invalid-sha1`, `invalid-md5`, `md5-required`, `invalid-empty-part`, `invalid-batch`, `invalid-field`", body = ErrorBody),
        (status = 429, description = "`rate-limited`: over `http.sign_rate`; see `Retry-After`", body = ErrorBody),
))]
pub async fn handler(
    user: User,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Json<SignRequest>,
) -> Res {
    let parts = sign(&state, &user, &id, &body.parts).await?;
    Ok(HttpResponse::Ok().json(SignResponse { parts }))
}
