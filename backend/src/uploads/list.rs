//! `GET /uploads`: the caller's uploads in progress, newest first, a page at a time: where a
//! client that lost its memory, or an app's list of unfinished uploads, starts. Each entry
//! is a summary (no parts: `GET /uploads/{id}` has them, from the tracker or storage).

use actix_web::{web, HttpResponse};

use super::model::*;
use super::repo::{self, UploadRow};
use super::{UploadError, UploadList, UploadSummary};
use crate::auth::User;
use crate::db::{now_ms, to_time};
use crate::error::ErrorBody;
use crate::paging::{Page, PageQuery};
use crate::state::AppState;

pub async fn list(state: &AppState, user: &User, page: &Page) -> Result<UploadList, UploadError> {
    let alive_since = now_ms() - state.ttl_ms();
    let mut rows = repo::list_open(&state.db, &user.id, alive_since, page.fetch(), page.after()).await?;
    let next_cursor = page.cut(&mut rows, |u| (u.created_at, u.id.as_str()));
    Ok(UploadList { uploads: rows.iter().map(|u| summary(state, u)).collect(), next_cursor })
}

fn summary(state: &AppState, u: &UploadRow) -> UploadSummary {
    let plan = u.plan();
    UploadSummary {
        upload_id: u.id.clone(),
        name: u.name.clone(),
        size: plan.size,
        content_type: u.content_type.clone(),
        part_size: plan.part_size,
        part_count: plan.part_count,
        state: u.state.wire(),
        sha1: u.sha1.clone(),
        last_modified: u.last_modified,
        created_at: to_time(u.created_at),
        expires_at: to_time(u.updated_at + state.ttl_ms()),
    }
}

/// The caller's uploads in progress (`uploading` or `completing`, not yet expired), newest
/// first, a page at a time.
#[utoipa::path(get, path = "/api/v1/uploads", operation_id = "list_uploads", tag = "uploads", params(PageQuery), responses(
    (status = 200, body = UploadList),
    (status = 400, description = "`invalid-query`: a parameter of the wrong type, or an unknown one", body = ErrorBody),
    (status = 401, description = "`unauthorized`", body = ErrorBody),
    (status = 422, description = "`invalid-limit`, `invalid-cursor`", body = ErrorBody),
))]
pub async fn handler(user: User, state: web::Data<AppState>, q: web::Query<PageQuery>) -> Res {
    let page = Page::parse(q.limit, q.cursor.as_deref())?;
    Ok(HttpResponse::Ok().json(list(&state, &user, &page).await?))
}
