//! HTTP handlers for `/api/v1/uploads`: parse, call the service, answer.

use actix_web::{web, HttpResponse};

use super::service::{self, Created};
use super::{
    CompleteRequest, CreateUpload, PatchUpload, ProofRequest, ReportAnswer, ReportPart, SignRequest, SignResponse,
    UploadView,
};
use crate::app::AppState;
use crate::auth::User;
use crate::error::{ApiError, ErrorBody, Object};

type Res = Result<HttpResponse, ApiError>;

/// Start an upload, or resume an open one of the same file. A `sha1` that names stored
/// content gets a `challenge`: answer it (`/proof`) and nothing needs sending.
#[utoipa::path(post, path = "/api/v1/uploads", operation_id = "create_upload", tag = "uploads", request_body = CreateUpload, responses(
    (status = 201, description = "A new upload and its plan", body = UploadView),
    (status = 200, description = "An open upload of the same file, to resume", body = UploadView),
    (status = 400, description = "`malformed-json`", body = ErrorBody),
    (status = 401, description = "`unauthorized`", body = ErrorBody),
    (status = 403, description = "`quota-exceeded`", body = ErrorBody),
    (status = 413, description = "`file-too-large`, `body-too-large`", body = ErrorBody),
    (status = 415, description = "`unsupported-media-type`", body = ErrorBody),
    (status = 422, description = "`invalid-name`, `invalid-sha1`, `invalid-probe`, `invalid-content-type`, `invalid-field`", body = ErrorBody),
))]
pub async fn create(user: User, state: web::Data<AppState>, body: web::Json<CreateUpload>) -> Res {
    Ok(match service::create(&state, &user, body.into_inner()).await? {
        Created::New(v) => HttpResponse::Created().json(v),
        Created::Resumed(v) => HttpResponse::Ok().json(v),
    })
}

/// The upload's state and done parts (rebuilt from storage if the tracker lost them).
#[utoipa::path(get, path = "/api/v1/uploads/{upload_id}", operation_id = "get_upload", tag = "uploads",
    params(("upload_id" = String, Path, description = "From `POST /uploads`")),
    responses(
        (status = 200, body = UploadView),
        (status = 400, description = "`invalid-path`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`upload-not-found`", body = ErrorBody),
))]
pub async fn get(user: User, state: web::Data<AppState>, id: web::Path<String>) -> Res {
    Ok(HttpResponse::Ok().json(service::status(&state, &user, &id).await?))
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
pub async fn patch(user: User, state: web::Data<AppState>, id: web::Path<String>, body: web::Json<PatchUpload>) -> Res {
    Ok(HttpResponse::Ok().json(service::set_sha1(&state, &user, &id, &body.sha1).await?))
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
pub async fn prove(
    user: User,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Json<ProofRequest>,
) -> Res {
    Ok(HttpResponse::Ok().json(service::prove(&state, &user, &id, &body.sha1).await?))
}

/// Abort: the parts go from storage, the tracker and SQL.
#[utoipa::path(delete, path = "/api/v1/uploads/{upload_id}", operation_id = "abort_upload", tag = "uploads",
    params(("upload_id" = String, Path,)),
    responses(
        (status = 204, description = "Aborted"),
        (status = 400, description = "`invalid-path`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`upload-not-found`", body = ErrorBody),
        (status = 409, description = "`upload-complete` (delete the file instead), `upload-completing`", body = ErrorBody),
))]
pub async fn delete(user: User, state: web::Data<AppState>, id: web::Path<String>) -> Res {
    service::abort(&state, &user, &id).await?;
    Ok(HttpResponse::NoContent().finish())
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
pub async fn sign(user: User, state: web::Data<AppState>, id: web::Path<String>, body: web::Json<SignRequest>) -> Res {
    let parts = service::sign(&state, &user, &id, &body.parts).await?;
    Ok(HttpResponse::Ok().json(SignResponse { parts }))
}

/// Report a stored part. Idempotent; the report that makes the set whole composes the file.
#[utoipa::path(put, path = "/api/v1/uploads/{upload_id}/parts/{number}", operation_id = "report_part", tag = "uploads", request_body = ReportPart,
    params(
        ("upload_id" = String, Path,),
        ("number" = u32, Path, description = "1-based part number", minimum = 1, maximum = 10000),
    ),
    responses(
        (status = 200, body = ReportAnswer),
        (status = 400, description = "`malformed-json`, `invalid-path`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 403, description = "`quota-exceeded`: the upload would pass the quota; it was aborted", body = ErrorBody),
        (status = 404, description = "`upload-not-found`", body = ErrorBody),
        (status = 413, description = "`body-too-large`", body = ErrorBody),
        (status = 415, description = "`unsupported-media-type`", body = ErrorBody),
        (status = 422, description = "`invalid-part-number`, `invalid-etag`, `invalid-sha1`, `invalid-field`", body = ErrorBody),
))]
pub async fn report(
    user: User,
    state: web::Data<AppState>,
    path: web::Path<(String, u32)>,
    body: web::Json<ReportPart>,
) -> Res {
    let (id, number) = path.into_inner();
    Ok(HttpResponse::Ok().json(service::report(&state, &user, &id, number, &body.etag, &body.sha1).await?))
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
pub async fn complete(
    user: User,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Json<Object<CompleteRequest>>,
) -> Res {
    let sha1 = body.into_inner().0.sha1;
    Ok(HttpResponse::Ok().json(service::complete(&state, &user, &id, sha1.as_deref()).await?))
}
