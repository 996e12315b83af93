//! `DELETE /uploads/{id}` and the reaper's aborts: storage, tracker, then SQL. An upload
//! whose file already exists is finished, never dropped.

use actix_web::{web, HttpResponse};

use super::complete::lease_ms;
use super::model::*;
use super::repo::{self, UploadRow};
use super::state::State;
use super::UploadError;
use crate::auth::User;
use crate::db::now_ms;
use crate::error::ErrorBody;
use crate::files::{self};
use crate::state::AppState;

pub async fn abort(state: &AppState, user: &User, id: &str) -> Result<(), UploadError> {
    // A report landing between the read and the claim changes `updated_at`: look again.
    for _ in 0..5 {
        let u = load(state, user, id).await?;
        match u.state {
            State::Complete | State::Instant => return Err(UploadError::AlreadyComplete),
            State::Completing if u.updated_at >= now_ms() - lease_ms(state) => return Err(UploadError::Completing),
            _ => {}
        }
        if repo::transition_if_unchanged(&state.db, id, u.state, u.updated_at, State::Aborting, now_ms()).await? {
            return abort_claimed(state, &u, "client").await;
        }
    }
    Err(UploadError::Completing)
}

/// Drops an upload this caller has moved to `aborting`: storage, tracker, then SQL. An
/// upload that already has its file (a completer wrote the row and died before the state
/// change) is not dropped but finished: its object belongs to the file now.
pub async fn abort_claimed(state: &AppState, u: &UploadRow, reason: &str) -> Result<(), UploadError> {
    if let Some(file) = files::repo::by_upload(&state.db, &u.id).await? {
        tracing::warn!(upload = %u.id, file = %file.id, "an upload with a file row was left unfinished; finishing it");
        // A link to other content (instant) still has its own parts to drop.
        let linked = file.storage_key != u.storage_key;
        if linked {
            drop_parts(state, u).await?;
        }
        repo::finish(&state.db, &u.id, if linked { State::Instant } else { State::Complete }, &file.id, now_ms())
            .await?;
        return Err(UploadError::AlreadyComplete);
    }
    drop_parts(state, u).await?;
    repo::delete(&state.db, &u.id).await?;
    state.metrics.uploads_aborted.with_label_values(&[reason]).inc();
    Ok(())
}

pub(super) async fn drop_parts(state: &AppState, u: &UploadRow) -> Result<(), UploadError> {
    match &u.storage_upload_id {
        Some(sid) => state.store.abort(&u.storage_key, sid).await?,
        // A single PUT's object, unless a file was made of it (never drop a file's bytes).
        None if !files::repo::key_in_use(&state.db, &u.storage_key).await? => {
            state.store.delete(&u.storage_key).await?
        }
        None => {}
    }
    if let Err(e) = state.tracker.forget(&u.id).await {
        tracing::warn!(upload = %u.id, error = %e, "tracker forget failed; its keys expire on their own");
    }
    Ok(())
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
pub async fn handler(user: User, state: web::Data<AppState>, id: web::Path<String>) -> Res {
    abort(&state, &user, &id).await?;
    Ok(HttpResponse::NoContent().finish())
}
