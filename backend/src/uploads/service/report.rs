//! `PUT /uploads/{id}/parts/{n}`: a stored part is counted in the tracker (idempotently);
//! the report that completes the set composes the file.

use super::*;

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
    let plan = plan_of(&u);
    if plan.part_range(number).is_none() {
        return Err(UploadError::InvalidPartNumber { number, part_count: plan.part_count });
    }
    match u.state.as_str() {
        COMPLETE | INSTANT => return answer_finished(state, &u).await,
        COMPLETING => {
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
    let plan = plan_of(u);
    let file = finished_file(state, u).await?;
    let st = if u.state == INSTANT { UploadState::Instant } else { UploadState::Complete };
    Ok(ReportAnswer {
        parts_done: plan.part_count,
        part_count: plan.part_count,
        state: st,
        file: Some(FileView::from(&file)),
    })
}
