//! Share links: an expiring, revocable token that lets someone without an account
//! download one file. The token is 32 random bytes (base64url) shown once; SQL keeps only
//! its SHA-256, so a leaked database yields no working link. Following a link checks
//! expiry and revocation on every use, then redirects to a presigned GET that lives
//! `uploads.download_ttl_secs`, so a revoked link stops working at once.

use actix_web::{http::header, web, HttpResponse};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use sqlx::FromRow;

use super::{repo, FileError};
use crate::auth::User;
use crate::db::{now_ms, to_time, Db};
use crate::error::{ApiError, Code, ErrorBody, Object};
use crate::state::AppState;

/// A link lives a day unless asked otherwise, and 30 days at most.
const DEFAULT_TTL_SECS: u64 = 24 * 3600;
const MAX_TTL_SECS: u64 = 30 * 24 * 3600;

/// `POST /api/v1/files/{file_id}/shares`
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateShare {
    /// Seconds the link works: 1 to 2592000 (30 days); a day when absent.
    #[schema(minimum = 1, maximum = 2592000)]
    #[serde(default, deserialize_with = "shardrop_engine::protocol::de::opt_integer")]
    pub ttl_secs: Option<u64>,
}

/// A share link, as its maker sees it once.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct ShareView {
    pub share_id: String,
    pub file_id: String,
    /// The secret part of the link; only ever shown here.
    pub token: String,
    /// The link to give out (`GET` it to download).
    #[schema(example = "/api/v1/shares/3q2-7wEAAAB…")]
    pub url: String,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, FromRow)]
struct ShareRow {
    id: String,
    file_id: String,
    expires_at: i64,
    revoked_at: Option<i64>,
}

fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Make a share link for a file.
#[utoipa::path(post, path = "/api/v1/files/{file_id}/shares", operation_id = "create_share", tag = "files",
    params(("file_id" = String, Path,)), request_body = CreateShare, responses(
    (status = 201, body = ShareView),
    (status = 400, description = "`malformed-json`, `invalid-path`", body = ErrorBody),
    (status = 401, description = "`unauthorized`", body = ErrorBody),
    (status = 404, description = "`file-not-found`", body = ErrorBody),
    (status = 413, description = "`body-too-large`", body = ErrorBody),
    (status = 415, description = "`unsupported-media-type`", body = ErrorBody),
    (status = 422, description = "`invalid-ttl`, `invalid-field`", body = ErrorBody),
))]
pub async fn create(
    user: User,
    state: web::Data<AppState>,
    id: web::Path<String>,
    body: web::Json<Object<CreateShare>>,
) -> Res {
    let ttl = body.into_inner().0.ttl_secs.unwrap_or(DEFAULT_TTL_SECS);
    if !(1..=MAX_TTL_SECS).contains(&ttl) {
        return Err(ApiError::new(
            actix_web::http::StatusCode::UNPROCESSABLE_ENTITY,
            Code::InvalidTtl,
            format!("ttl_secs must be between 1 and {MAX_TTL_SECS}"),
        ));
    }
    let file = super::routes::load(&state, &user, &id).await?;
    let token = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    let share_id = format!("sh_{}", uuid::Uuid::new_v4().simple());
    let now = now_ms();
    let expires_at = now + i64::try_from(ttl * 1000).unwrap_or(i64::MAX);
    sqlx::query(
        "INSERT INTO shares (id, file_id, token_hash, expires_at, revoked_at, created_at) \
         VALUES ($1, $2, $3, $4, NULL, $5)",
    )
    .bind(&share_id)
    .bind(&file.id)
    .bind(token_hash(&token))
    .bind(expires_at)
    .bind(now)
    .execute(&state.db)
    .await
    .map_err(FileError::from)?;
    Ok(HttpResponse::Created().json(ShareView {
        share_id,
        file_id: file.id,
        url: format!("/api/v1/shares/{token}"),
        token,
        expires_at: to_time(expires_at),
    }))
}

/// Revoke a share link: it stops working at once.
#[utoipa::path(delete, path = "/api/v1/files/{file_id}/shares/{share_id}", operation_id = "revoke_share", tag = "files",
    params(("file_id" = String, Path,), ("share_id" = String, Path,)), responses(
    (status = 204, description = "Revoked"),
    (status = 400, description = "`invalid-path`", body = ErrorBody),
    (status = 401, description = "`unauthorized`", body = ErrorBody),
    (status = 404, description = "`share-not-found`", body = ErrorBody),
))]
pub async fn revoke(user: User, state: web::Data<AppState>, path: web::Path<(String, String)>) -> Res {
    let (file_id, share_id) = path.into_inner();
    // Another user's file: as unknown as its links.
    if repo::get_owned(&state.db, &file_id, &user.id).await.map_err(FileError::from)?.is_none() {
        return Err(not_found());
    }
    let done = sqlx::query("UPDATE shares SET revoked_at = COALESCE(revoked_at, $3) WHERE id = $1 AND file_id = $2")
        .bind(&share_id)
        .bind(&file_id)
        .bind(now_ms())
        .execute(&state.db)
        .await
        .map_err(FileError::from)?;
    if done.rows_affected() == 0 {
        return Err(not_found());
    }
    Ok(HttpResponse::NoContent().finish())
}

/// Follow a share link: a redirect to a short-lived download of the file (no account
/// needed). An expired or revoked link is `410`.
#[utoipa::path(get, path = "/api/v1/shares/{token}", operation_id = "follow_share", tag = "files", security(()),
    params(("token" = String, Path,)), responses(
    (status = 302, description = "`Location` is a presigned GET, valid for minutes"),
    (status = 400, description = "`invalid-path`", body = ErrorBody),
    (status = 404, description = "`share-not-found`", body = ErrorBody),
    (status = 410, description = "`share-expired`, `share-revoked`", body = ErrorBody),
))]
pub async fn follow(state: web::Data<AppState>, token: web::Path<String>) -> Res {
    let share: ShareRow =
        sqlx::query_as("SELECT id, file_id, expires_at, revoked_at FROM shares WHERE token_hash = $1")
            .bind(token_hash(&token))
            .fetch_optional(&state.db)
            .await
            .map_err(FileError::from)?
            .ok_or_else(not_found)?;
    let gone = |code, what| ApiError::new(actix_web::http::StatusCode::GONE, code, what);
    if share.revoked_at.is_some() {
        return Err(gone(Code::ShareRevoked, "this link was revoked"));
    }
    if share.expires_at <= now_ms() {
        return Err(gone(Code::ShareExpired, "this link has expired"));
    }
    let file = repo::get(&state.db, &share.file_id).await.map_err(FileError::from)?.ok_or_else(not_found)?;
    tracing::debug!(share = %share.id, file = %file.id, "share link followed");
    let url = super::routes::download_url(&state, &file).await?;
    Ok(HttpResponse::Found()
        .insert_header((header::LOCATION, url))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish())
}

/// Drops a file's share links (with the file).
pub async fn delete_for_file(db: &Db, file_id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM shares WHERE file_id = $1").bind(file_id).execute(db).await?;
    Ok(())
}

fn not_found() -> ApiError {
    ApiError::new(actix_web::http::StatusCode::NOT_FOUND, Code::ShareNotFound, "no such share link")
}

type Res = Result<HttpResponse, ApiError>;
