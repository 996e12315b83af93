//! `POST /uploads/{id}/proof`: the answer to a proof-of-possession challenge, checked
//! against the stored bytes; right, the upload ends as `instant`.

use actix_web::{web, HttpResponse};
use futures_util::StreamExt;
use sha1::{Digest, Sha1};
use shardrop_engine::Sha1Hex;

use super::dedup::{self};
use super::instant::link_instant;
use super::model::*;
use super::repo::{self};
use super::state::State;
use super::{Challenge, ProofRequest, UploadError, UploadView};
use crate::auth::User;
use crate::error::ErrorBody;
use crate::files::{self};
use crate::state::AppState;

/// Checks the answer to the upload's challenge against the stored bytes. Right: the upload
/// ends as `instant`, linked to the stored file, and its parts are dropped. Wrong: refused,
/// the challenge is used up, and the upload goes on as an ordinary one (send the parts).
pub async fn prove(state: &AppState, user: &User, id: &str, answer: &str) -> Result<UploadView, UploadError> {
    let answer = Sha1Hex::parse(answer)?;
    let u = load(state, user, id).await?;
    let Some((file_id, Challenge { offset, length, nonce })) = u.challenge() else {
        return Err(UploadError::NoChallenge);
    };
    if u.state != State::Uploading {
        return Err(UploadError::AlreadyComplete);
    }
    if !repo::take_challenge(&state.db, id, file_id, &nonce).await? {
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
    if !dedup::take(state, owner, content, u.size, &nonce).await? {
        return Err(UploadError::NoChallenge);
    }
    let mut range = state.store.read_range(&file.storage_key, offset, length).await?;
    let mut hasher = Sha1::new();
    hasher.update(hex::decode(&nonce).unwrap_or_default());
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

/// Answer the upload's challenge: the hex SHA-1 of its nonce's bytes followed by its byte
/// range of the file. Right, the
/// upload ends as `instant`, linked to the stored content; wrong, `403 challenge-failed` and
/// the upload goes on as an ordinary one.
#[utoipa::path(post, path = "/api/v1/uploads/{upload_id}/proof", operation_id = "prove_upload", tag = "uploads", request_body = ProofRequest,
    params(("upload_id" = String, Path,)),
    responses(
        (status = 200, description = "Proved: `state` is `instant` and `file` is set", body = UploadView),
        (status = 400, description = "`malformed-json`, `invalid-path`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`challenge-failed`, `quota-exceeded`", body = ErrorBody),
        (status = 404, description = "`upload-not-found`", body = ErrorBody),
        (status = 409, description = "`no-challenge`, `upload-complete`", body = ErrorBody),
        (status = 413, description = "`body-too-large`", body = ErrorBody),
        (status = 415, description = "`unsupported-media-type`", body = ErrorBody),
        (status = 422, description = "`invalid-sha1`, `invalid-field`", body = ErrorBody),
        (status = 429, description = "`rate-limited`: shares the signing limit (`http.sign_rate`); see `Retry-After`", body = ErrorBody),
))]
pub async fn handler(
    user: User,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Json<ProofRequest>,
) -> Res {
    Ok(HttpResponse::Ok().json(prove(&state, &user, &id, &body.sha1).await?))
}
