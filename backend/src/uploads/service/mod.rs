//! The upload flows, one file per operation: `create`, `sign`, `report`, `complete`,
//! `instant` (claims, proofs, links) and `abort`. This module holds what they share: loading
//! an upload, its view, the tracker rebuilt from storage. The handlers in `routes` only
//! parse and answer. Order of writes is chosen so a crash between two steps leaves nothing
//! that the next request or the reaper cannot finish: storage first, then SQL, then the
//! tracker (which can always be rebuilt from storage).

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use sha1::{Digest, Sha1};
use shardrop_engine::{Md5B64, Plan, Sha1B64, Sha1Hex};

use super::dedup::{self, Claim};
use super::repo::{self, UploadRow, ABORTING, COMPLETE, COMPLETING, INSTANT, UPLOADING};
use super::{
    quota, validate, Challenge, CreateUpload, ReportAnswer, SignPart, SignedPart, UploadError, UploadState, UploadView,
};
use crate::app::AppState;
use crate::auth::User;
use crate::db::now_ms;
use crate::files::{self, FileRow, FileView};
use crate::storage::{PartCheck, PartTarget, StorageError, StoredPart};
use crate::tracker::PartRecord;

mod abort;
mod complete;
mod create;
mod instant;
mod report;
mod sign;

pub use self::abort::{abort, abort_claimed};
pub use self::complete::{complete, finish, Finish};
pub use self::create::{create, Created};
pub use self::instant::{prove, set_sha1};
pub use self::report::report;
pub use self::sign::sign;
// Shared between the flows.
use self::abort::drop_parts;
use self::complete::{file_of, lease_ms, record_claim};
use self::instant::{dedup, dedup_candidate};

/// Activity is written to SQL at most this often per upload (each write keeps the reaper
/// off), and at least four times per TTL.
const TOUCH_EVERY_MS: i64 = 30_000;

fn plan_of(u: &UploadRow) -> Plan {
    Plan {
        size: u64::try_from(u.size).unwrap_or(0),
        part_size: u64::try_from(u.part_size).unwrap_or(0),
        part_count: u32::try_from(u.part_count).unwrap_or(0),
    }
}

/// The caller's upload: another user's is `upload-not-found`, exactly like a missing one.
async fn load(state: &AppState, user: &User, id: &str) -> Result<UploadRow, UploadError> {
    match repo::get(&state.db, id).await? {
        Some(u) if u.state != ABORTING && u.user_id.as_deref() == Some(user.id.as_str()) => Ok(u),
        _ => Err(UploadError::NotFound),
    }
}

/// The upload as it is now, whoever owns it (for flows that already checked).
async fn reload(state: &AppState, id: &str) -> Result<UploadRow, UploadError> {
    match repo::get(&state.db, id).await? {
        Some(u) if u.state != ABORTING => Ok(u),
        _ => Err(UploadError::NotFound),
    }
}

pub async fn status(state: &AppState, user: &User, id: &str) -> Result<UploadView, UploadError> {
    let u = load(state, user, id).await?;
    if u.state == COMPLETING && u.updated_at < now_ms() - lease_ms(state) {
        // Its completer died: take the completion over.
        let _ = finish(state, &u).await?;
        return view(state, load(state, user, id).await?).await;
    }
    view(state, u).await
}

async fn restart(state: &AppState, u: &UploadRow) -> Result<(), UploadError> {
    tracing::warn!(upload = %u.id, "the storage forgot this multipart upload; starting it again");
    let sid = state.store.create_multipart(&u.storage_key, &u.content_type).await?;
    repo::restart(&state.db, &u.id, &sid, now_ms()).await?;
    state.tracker.rebuild(&u.id, &[], state.ttl()).await?;
    Ok(())
}

/// Refills the tracker from `ListParts`; answers the parts storage holds.
async fn rebuild_from_storage(state: &AppState, u: &UploadRow) -> Result<Vec<u32>, UploadError> {
    let plan = plan_of(u);
    let stored: Vec<StoredPart> = match &u.storage_upload_id {
        Some(sid) => match state.store.list_parts(&u.storage_key, sid).await {
            Ok(parts) => parts,
            Err(StorageError::NoSuchUpload) => {
                restart(state, u).await?;
                return Ok(Vec::new());
            }
            Err(e) => return Err(e.into()),
        },
        None => match state.store.head(&u.storage_key).await? {
            Some(size) if size == plan.size => vec![StoredPart { number: 1, etag: String::new(), size, sha1: None }],
            _ => Vec::new(),
        },
    };
    let records: Vec<PartRecord> = stored
        .iter()
        .filter(|p| plan.part_len(p.number) == Some(p.size))
        .map(|p| PartRecord { number: p.number, etag: p.etag.clone(), sha1: p.sha1.clone().unwrap_or_default() })
        .collect();
    state.tracker.rebuild(&u.id, &records, state.ttl()).await?;
    Ok(records.iter().map(|r| r.number).collect())
}

async fn touch(state: &AppState, u: &UploadRow) -> Result<(), UploadError> {
    let now = now_ms();
    if u.updated_at < now - TOUCH_EVERY_MS.min(state.ttl_ms() / 4) {
        repo::touch(&state.db, &u.id, now).await?;
    }
    Ok(())
}

async fn finished_file(state: &AppState, u: &UploadRow) -> Result<FileRow, UploadError> {
    let file = match &u.file_id {
        Some(fid) => files::repo::get(&state.db, fid).await?,
        None => files::repo::by_upload(&state.db, &u.id).await?,
    };
    // The upload says complete but its file is gone (deleted since): report that plainly.
    file.ok_or(UploadError::NotFound)
}

/// The upload as the API shows it, with its done parts from the tracker (or storage).
async fn view(state: &AppState, u: UploadRow) -> Result<UploadView, UploadError> {
    let parts = match u.state.as_str() {
        UPLOADING | COMPLETING => match state.tracker.parts(&u.id).await? {
            Some(parts) => parts.into_keys().collect(),
            None => rebuild_from_storage(state, &u).await?,
        },
        _ => (1..=plan_of(&u).part_count).collect(),
    };
    view_with_parts(state, &u, parts).await
}

async fn view_with_parts(state: &AppState, u: &UploadRow, parts_done: Vec<u32>) -> Result<UploadView, UploadError> {
    let plan = plan_of(u);
    let (st, file) = match u.state.as_str() {
        COMPLETE => (UploadState::Complete, Some(FileView::from(&finished_file(state, u).await?))),
        INSTANT => (UploadState::Instant, Some(FileView::from(&finished_file(state, u).await?))),
        COMPLETING => (UploadState::Completing, None),
        _ => (UploadState::Uploading, None),
    };
    Ok(UploadView {
        upload_id: u.id.clone(),
        name: u.name.clone(),
        size: plan.size,
        content_type: u.content_type.clone(),
        part_size: plan.part_size,
        part_count: plan.part_count,
        parts_done,
        state: st,
        sha1: u.sha1.clone(),
        expires_at: crate::db::to_time(u.updated_at + state.ttl_ms()),
        file,
        dedup_candidate: false,
        part_check: state.store.part_check(),
        challenge: match (&u.challenge_file, u.challenge_offset, u.challenge_length, &u.challenge_nonce) {
            (Some(_), Some(offset), Some(length), Some(nonce)) if st == UploadState::Uploading => Some(Challenge {
                offset: u64::try_from(offset).unwrap_or(0),
                length: u64::try_from(length).unwrap_or(0),
                nonce: nonce.clone(),
            }),
            _ => None,
        },
    })
}

fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}
