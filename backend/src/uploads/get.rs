//! `GET /uploads/{id}`: the upload's state and done parts (rebuilt from storage if the
//! tracker lost them); an upload whose completer died is completed here.

use actix_web::{web, HttpResponse};

use super::complete::{finish, lease_ms};
use super::model::*;
use super::state::State;
use super::{UploadError, UploadView};
use crate::auth::User;
use crate::db::now_ms;
use crate::error::ErrorBody;
use crate::state::AppState;

pub async fn status(state: &AppState, user: &User, id: &str) -> Result<UploadView, UploadError> {
    let u = load(state, user, id).await?;
    if u.state == State::Completing && u.updated_at < now_ms() - lease_ms(state) {
        // Its completer died: take the completion over.
        let _ = finish(state, &u).await?;
        return view(state, load(state, user, id).await?).await;
    }
    view(state, u).await
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
pub async fn handler(user: User, state: web::Data<AppState>, id: web::Path<String>) -> Res {
    Ok(HttpResponse::Ok().json(status(&state, &user, &id).await?))
}
