//! HTTP handlers for `/api/v1/files`.

use std::time::Duration;

use actix_web::{http::header, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::Serialize;

use super::{repo, FileError, FileView};
use crate::auth::User;
use crate::error::Code;
use crate::error::{ApiError, ErrorBody};
use crate::paging::Page;
use crate::state::AppState;
use crate::storage::DownloadTarget;

type Res = Result<HttpResponse, ApiError>;

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FileList {
    /// Newest first.
    pub files: Vec<FileView>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// The longest `q` of `GET /files`, in characters.
const MAX_SEARCH: usize = 200;

/// `?limit=&cursor=&q=`: a page (as [`crate::paging::PageQuery`]) of the files whose name
/// holds `q`.
#[derive(Debug, serde::Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct FileQuery {
    /// Entries per page, 1 to 1000 (default 100).
    #[param(minimum = 1, maximum = 1000)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page (of the same `q`).
    pub cursor: Option<String>,
    /// Only files whose name contains this text, ignoring case (ASCII letters on SQLite,
    /// every letter on PostgreSQL). Empty means every file.
    #[param(max_length = 200)]
    pub q: Option<String>,
}

/// `LIKE` pattern for names that contain `q`, lower-cased, its own `%`, `_` and `\` taken
/// literally.
fn contains_pattern(q: &str) -> String {
    let mut p = String::with_capacity(q.len() + 2);
    p.push('%');
    for c in q.to_lowercase().chars() {
        if matches!(c, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(c);
    }
    p.push('%');
    p
}

/// The caller's stored files, newest first, a page at a time; `q` finds them by name.
#[utoipa::path(get, path = "/api/v1/files", operation_id = "list_files", tag = "files", params(FileQuery), responses(
    (status = 200, body = FileList),
    (status = 400, description = "`invalid-query`: a parameter of the wrong type, an unknown one, or a `q` over 200 characters", body = ErrorBody),
    (status = 401, description = "`unauthorized`", body = ErrorBody),
    (status = 422, description = "`invalid-limit`, `invalid-cursor`", body = ErrorBody),
))]
pub async fn list(user: User, state: web::Data<AppState>, q: web::Query<FileQuery>) -> Res {
    let page = Page::parse(q.limit, q.cursor.as_deref())?;
    let search = q.q.as_deref().filter(|s| !s.is_empty());
    if search.is_some_and(|s| s.chars().count() > MAX_SEARCH) {
        return Err(ApiError::bad_request(Code::InvalidQuery, format!("q: at most {MAX_SEARCH} characters")));
    }
    let like = search.map(contains_pattern);
    let mut rows =
        repo::list(&state.db, &user.id, page.fetch(), page.after(), like.as_deref()).await.map_err(FileError::from)?;
    let next_cursor = page.cut(&mut rows, |r| (r.created_at, r.id.as_str()));
    Ok(HttpResponse::Ok().json(FileList { files: rows.iter().map(FileView::from).collect(), next_cursor }))
}

/// The caller's file: another user's is `file-not-found`, exactly like a missing one.
pub(super) async fn load(state: &AppState, user: &User, id: &str) -> Result<repo::FileRow, FileError> {
    repo::get_owned(&state.db, id, &user.id).await?.ok_or(FileError::NotFound)
}

#[utoipa::path(get, path = "/api/v1/files/{file_id}", operation_id = "get_file", tag = "files", params(("file_id" = String, Path,)), responses(
    (status = 200, body = FileView),
    (status = 400, description = "`invalid-path`", body = ErrorBody),
    (status = 401, description = "`unauthorized`", body = ErrorBody),
    (status = 404, description = "`file-not-found`", body = ErrorBody),
))]
pub async fn get(user: User, state: web::Data<AppState>, id: web::Path<String>) -> Res {
    Ok(HttpResponse::Ok().json(FileView::from(&load(&state, &user, &id).await?)))
}

/// Deletes the file; its stored object goes when no other file uses it.
#[utoipa::path(delete, path = "/api/v1/files/{file_id}", operation_id = "delete_file", tag = "files", params(("file_id" = String, Path,)), responses(
    (status = 204, description = "Deleted"),
    (status = 400, description = "`invalid-path`", body = ErrorBody),
    (status = 401, description = "`unauthorized`", body = ErrorBody),
    (status = 404, description = "`file-not-found`", body = ErrorBody),
))]
pub async fn delete(user: User, state: web::Data<AppState>, id: web::Path<String>) -> Res {
    let file = load(&state, &user, &id).await?;
    super::shares::delete_for_file(&state.db, &file.id).await.map_err(FileError::from)?;
    let shared = repo::delete(&state.db, &file).await.map_err(FileError::from)?;
    if !shared {
        state.store.delete(&file.storage_key).await.map_err(FileError::from)?;
    }
    Ok(HttpResponse::NoContent().finish())
}

/// A redirect to a short-lived presigned GET of the content; Range works there.
#[utoipa::path(get, path = "/api/v1/files/{file_id}/content", operation_id = "download_file", tag = "files", params(("file_id" = String, Path,)), responses(
    (status = 302, description = "`Location` is a presigned GET, valid for minutes"),
    (status = 400, description = "`invalid-path`", body = ErrorBody),
    (status = 401, description = "`unauthorized`", body = ErrorBody),
    (status = 404, description = "`file-not-found`", body = ErrorBody),
))]
pub async fn content(user: User, state: web::Data<AppState>, id: web::Path<String>) -> Res {
    let file = load(&state, &user, &id).await?;
    let url = download_url(&state, &file).await?;
    Ok(HttpResponse::Found()
        .insert_header((header::LOCATION, url))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish())
}

/// A short-lived download URL of the file.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DownloadUrl {
    /// A presigned GET (Range works), named for download.
    pub url: String,
    pub expires_at: DateTime<Utc>,
}

/// The presigned GET of `/content` as JSON, for pages: a plain link cannot carry the
/// `Authorization` header, so a page asks for the URL and then follows it.
#[utoipa::path(get, path = "/api/v1/files/{file_id}/download-url", operation_id = "download_url", tag = "files", params(("file_id" = String, Path,)), responses(
    (status = 200, body = DownloadUrl),
    (status = 400, description = "`invalid-path`", body = ErrorBody),
    (status = 401, description = "`unauthorized`", body = ErrorBody),
    (status = 404, description = "`file-not-found`", body = ErrorBody),
))]
pub async fn content_url(user: User, state: web::Data<AppState>, id: web::Path<String>) -> Res {
    let file = load(&state, &user, &id).await?;
    let ttl = state.settings.uploads.download_ttl_secs;
    let expires_at =
        crate::db::to_time(crate::db::now_ms() + i64::try_from(ttl.saturating_mul(1000)).unwrap_or(i64::MAX));
    let url = download_url(&state, &file).await?;
    Ok(HttpResponse::Ok().insert_header((header::CACHE_CONTROL, "no-store")).json(DownloadUrl { url, expires_at }))
}

/// A presigned GET of the file, named for download, living `uploads.download_ttl_secs`.
pub(super) async fn download_url(state: &AppState, file: &repo::FileRow) -> Result<String, FileError> {
    Ok(state
        .store
        .sign_download(DownloadTarget {
            key: &file.storage_key,
            file_name: &file.name,
            content_type: &file.content_type,
            ttl: Duration::from_secs(state.settings.uploads.download_ttl_secs),
        })
        .await?)
}
