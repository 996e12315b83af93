//! HTTP handlers for `/api/v1/uploads`: parse, call the service, answer.

use actix_web::{web, HttpResponse};

use super::service::{self, Created};
use super::{
    CompleteRequest, CreateUpload, InstantView, PatchUpload, ReportAnswer, ReportPart, SignRequest, SignResponse,
    UploadState, UploadView,
};
use crate::app::AppState;
use crate::error::{ApiError, ErrorBody};

type Res = Result<HttpResponse, ApiError>;

/// Start an upload, resume an open one of the same file, or finish at once when the
/// content is already stored.
#[utoipa::path(post, path = "/api/v1/uploads", tag = "uploads", request_body = CreateUpload, responses(
    (status = 201, description = "A new upload and its plan", body = UploadView),
    (status = 200, description = "An open upload of the same file to resume (an UploadView), or `{state: instant, file}`", body = InstantView),
    (status = 413, description = "`file-too-large`", body = ErrorBody),
    (status = 422, description = "`invalid-name`, `invalid-sha1`, `invalid-content-type`, `invalid-field`", body = ErrorBody),
))]
pub async fn create(state: web::Data<AppState>, body: web::Json<CreateUpload>) -> Res {
    Ok(match service::create(&state, body.into_inner()).await? {
        Created::New(v) => HttpResponse::Created().json(v),
        Created::Resumed(v) => HttpResponse::Ok().json(v),
        Created::Instant(file) => HttpResponse::Ok().json(InstantView { state: UploadState::Instant, file }),
    })
}

/// The upload's state and done parts (rebuilt from storage if the tracker lost them).
#[utoipa::path(get, path = "/api/v1/uploads/{upload_id}", tag = "uploads",
    params(("upload_id" = String, Path, description = "From `POST /uploads`")),
    responses(
        (status = 200, body = UploadView),
        (status = 404, description = "`upload-not-found`", body = ErrorBody),
))]
pub async fn get(state: web::Data<AppState>, id: web::Path<String>) -> Res {
    Ok(HttpResponse::Ok().json(service::status(&state, &id).await?))
}

/// Record the whole-file SHA-1 once known; answers `instant` if that content is stored.
#[utoipa::path(patch, path = "/api/v1/uploads/{upload_id}", tag = "uploads", request_body = PatchUpload,
    params(("upload_id" = String, Path,)),
    responses(
        (status = 200, body = UploadView),
        (status = 404, description = "`upload-not-found`", body = ErrorBody),
        (status = 409, description = "`sha1-conflict`", body = ErrorBody),
        (status = 422, description = "`invalid-sha1`", body = ErrorBody),
))]
pub async fn patch(state: web::Data<AppState>, id: web::Path<String>, body: web::Json<PatchUpload>) -> Res {
    Ok(HttpResponse::Ok().json(service::set_sha1(&state, &id, &body.sha1).await?))
}

/// Abort: the parts go from storage, the tracker and SQL.
#[utoipa::path(delete, path = "/api/v1/uploads/{upload_id}", tag = "uploads",
    params(("upload_id" = String, Path,)),
    responses(
        (status = 204, description = "Aborted"),
        (status = 404, description = "`upload-not-found`", body = ErrorBody),
        (status = 409, description = "`upload-complete` (delete the file instead), `upload-completing`", body = ErrorBody),
))]
pub async fn delete(state: web::Data<AppState>, id: web::Path<String>) -> Res {
    service::abort(&state, &id).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// Presigned PUT URLs for a batch of parts, each bound to its SHA-1 and length.
#[utoipa::path(post, path = "/api/v1/uploads/{upload_id}/parts/sign", tag = "uploads", request_body = SignRequest,
    params(("upload_id" = String, Path,)),
    responses(
        (status = 200, body = SignResponse),
        (status = 404, description = "`upload-not-found`", body = ErrorBody),
        (status = 409, description = "`upload-complete`", body = ErrorBody),
        (status = 422, description = "`invalid-part-number`, `invalid-part-size`, `invalid-sha1`, `invalid-batch`", body = ErrorBody),
))]
pub async fn sign(state: web::Data<AppState>, id: web::Path<String>, body: web::Json<SignRequest>) -> Res {
    let parts = service::sign(&state, &id, &body.parts).await?;
    Ok(HttpResponse::Ok().json(SignResponse { parts }))
}

/// Report a stored part. Idempotent; the report that makes the set whole composes the file.
#[utoipa::path(put, path = "/api/v1/uploads/{upload_id}/parts/{number}", tag = "uploads", request_body = ReportPart,
    params(("upload_id" = String, Path,), ("number" = u32, Path, description = "1-based part number")),
    responses(
        (status = 200, body = ReportAnswer),
        (status = 404, description = "`upload-not-found`", body = ErrorBody),
        (status = 422, description = "`invalid-part-number`, `invalid-etag`, `invalid-sha1`", body = ErrorBody),
))]
pub async fn report(state: web::Data<AppState>, path: web::Path<(String, u32)>, body: web::Json<ReportPart>) -> Res {
    let (id, number) = path.into_inner();
    Ok(HttpResponse::Ok().json(service::report(&state, &id, number, &body.etag, &body.sha1).await?))
}

/// Compose the file now (idempotent). The parts are checked against the storage first.
#[utoipa::path(post, path = "/api/v1/uploads/{upload_id}/complete", tag = "uploads", request_body = CompleteRequest,
    params(("upload_id" = String, Path,)),
    responses(
        (status = 200, description = "Complete; `file` is set", body = UploadView),
        (status = 404, description = "`upload-not-found`", body = ErrorBody),
        (status = 409, description = "`parts-missing` (the message lists them), `upload-completing`, `sha1-conflict`", body = ErrorBody),
        (status = 422, description = "`invalid-sha1`", body = ErrorBody),
))]
pub async fn complete(state: web::Data<AppState>, id: web::Path<String>, body: web::Json<CompleteRequest>) -> Res {
    let sha1 = body.into_inner().sha1;
    Ok(HttpResponse::Ok().json(service::complete(&state, &id, sha1.as_deref()).await?))
}
