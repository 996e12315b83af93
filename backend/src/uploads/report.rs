//! `PUT /uploads/{id}/parts/{n}`: a stored part is counted in the tracker (idempotently);
//! the report that completes the set composes the file.

use actix_web::{web, HttpResponse};
use shardrop_engine::Sha1B64;

use super::complete::{finish, Finish};
use super::model::*;
use super::repo::UploadRow;
use super::state::State;
use super::{validate, ReportAnswer, ReportPart, UploadError, UploadState};
use crate::auth::User;
use crate::error::ErrorBody;
use crate::files::FileView;
use crate::state::AppState;
use crate::tracker::PartRecord;

pub async fn report(
    state: &AppState,
    user: &User,
    id: &str,
    number: u32,
    etag: &str,
    sha1: &str,
) -> Result<ReportAnswer, UploadError> {
    validate::etag(etag)?;
    let sha1 = Sha1B64::parse(sha1)?;
    let u = load(state, user, id).await?;
    let plan = u.plan();
    if plan.part_range(number).is_none() {
        return Err(UploadError::InvalidPartNumber { number, part_count: plan.part_count });
    }
    match u.state {
        State::Complete | State::Instant => return answer_finished(state, &u).await,
        State::Completing => {
            return Ok(ReportAnswer {
                parts_done: plan.part_count,
                part_count: plan.part_count,
                state: UploadState::Completing,
                file: None,
            })
        }
        _ => {}
    }
    let record = PartRecord { number, etag: etag.to_owned(), sha1: sha1.as_str().to_owned() };
    let done = match state.tracker.record(id, &record, state.ttl()).await? {
        Some(n) => n,
        None => {
            // The tracker lost this upload: storage knows which parts exist.
            rebuild_from_storage(state, &u).await?;
            state.tracker.record(id, &record, state.ttl()).await?.unwrap_or(0)
        }
    };
    state.metrics.parts_reported.inc();
    touch(state, &u).await?;
    if done < plan.part_count {
        return Ok(ReportAnswer {
            parts_done: done,
            part_count: plan.part_count,
            state: UploadState::Uploading,
            file: None,
        });
    }
    match finish(state, &u).await? {
        Finish::Complete(file) => Ok(ReportAnswer {
            parts_done: plan.part_count,
            part_count: plan.part_count,
            state: UploadState::Complete,
            file: Some(FileView::from(&*file)),
        }),
        Finish::Completing => Ok(ReportAnswer {
            parts_done: done,
            part_count: plan.part_count,
            state: UploadState::Completing,
            file: None,
        }),
        Finish::Missing(missing) => Ok(ReportAnswer {
            parts_done: plan.part_count.saturating_sub(u32::try_from(missing.len()).unwrap_or(u32::MAX)),
            part_count: plan.part_count,
            state: UploadState::Uploading,
            file: None,
        }),
    }
}

pub(super) async fn answer_finished(state: &AppState, u: &UploadRow) -> Result<ReportAnswer, UploadError> {
    let plan = u.plan();
    let file = finished_file(state, u).await?;
    let st = if u.state == State::Instant { UploadState::Instant } else { UploadState::Complete };
    Ok(ReportAnswer {
        parts_done: plan.part_count,
        part_count: plan.part_count,
        state: st,
        file: Some(FileView::from(&file)),
    })
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
pub async fn handler(
    user: User,
    state: web::Data<AppState>,
    path: web::Path<(String, u32)>,
    body: web::Json<ReportPart>,
) -> Res {
    let (id, number) = path.into_inner();
    Ok(HttpResponse::Ok().json(report(&state, &user, &id, number, &body.etag, &body.sha1).await?))
}
