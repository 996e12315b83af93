//! `PATCH /uploads/{id}`: the whole-file SHA-1, once the client knows it; stored content
//! of that SHA-1 links the upload (the user's own) or draws a challenge (others').

use actix_web::{web, HttpResponse};
use shardrop_engine::Sha1Hex;

use super::complete::record_claim;
use super::instant::dedup_claim;
use super::model::*;
use super::{PatchUpload, UploadError, UploadView};
use crate::auth::User;
use crate::error::ErrorBody;
use crate::state::AppState;

/// Records the whole-file SHA-1; if that content is already stored, the answer carries a
/// challenge whose right answer ([`prove`]) ends the upload as `instant`.
pub async fn set_sha1(state: &AppState, user: &User, id: &str, sha1: &str) -> Result<UploadView, UploadError> {
    let sha1 = Sha1Hex::parse(sha1)?;
    let u = load(state, user, id).await?;
    record_claim(state, &u, &sha1).await?;
    dedup_claim(state, &u, &sha1).await?;
    view(state, load(state, user, id).await?).await
}

/// Record the whole-file SHA-1 once known; if that content is stored, the answer carries
/// a `challenge` (see `/proof`).
#[utoipa::path(patch, path = "/api/v1/uploads/{upload_id}", operation_id = "patch_upload", tag = "uploads", request_body = PatchUpload,
    params(("upload_id" = String, Path,)),
    responses(
        (status = 200, body = UploadView),
        (status = 400, description = "`malformed-json`, `invalid-path`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`quota-exceeded`: made instant from the user's own content, past the quota", body = ErrorBody),
        (status = 404, description = "`upload-not-found`", body = ErrorBody),
        (status = 409, description = "`sha1-conflict`", body = ErrorBody),
        (status = 413, description = "`body-too-large`", body = ErrorBody),
        (status = 415, description = "`unsupported-media-type`", body = ErrorBody),
        (status = 422, description = "`invalid-sha1`, `invalid-field`", body = ErrorBody),
))]
pub async fn handler(
    user: User,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Json<PatchUpload>,
) -> Res {
    Ok(HttpResponse::Ok().json(set_sha1(&state, &user, &id, &body.sha1).await?))
}
