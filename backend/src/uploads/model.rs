//! What the upload operations share: loading an upload (its owner's only), its view, its
//! tracker entry rebuilt from storage. Order of writes is chosen so a crash between two steps leaves nothing
//! that the next request or the reaper cannot finish: storage first, then SQL, then the
//! tracker (which can always be rebuilt from storage).

use shardrop_engine::Plan;

use super::repo::{self, UploadRow};
use super::state::State;
use super::{Challenge, UploadError, UploadState, UploadView};
use crate::auth::User;
use crate::db::now_ms;
use crate::files::{self, FileRow, FileView};
use crate::state::AppState;
use crate::storage::{StorageError, StoredPart};
use crate::tracker::PartRecord;

/// What a handler answers.
pub(super) type Res = Result<actix_web::HttpResponse, crate::error::ApiError>;

/// Activity is written to SQL at most this often per upload (each write keeps the reaper
/// off), and at least four times per TTL.
pub(super) const TOUCH_EVERY_MS: i64 = 30_000;

/// The upload's SQL columns read as what they mean. The columns are written only from
/// these types (`u64` sizes checked to fit `i64` at the start), so a negative stored value
/// can only come from outside and reads as 0.
impl UploadRow {
    pub fn plan(&self) -> Plan {
        Plan {
            size: self.size_bytes(),
            part_size: u64::try_from(self.part_size).unwrap_or(0),
            part_count: u32::try_from(self.part_count).unwrap_or(0),
        }
    }

    pub fn size_bytes(&self) -> u64 {
        u64::try_from(self.size).unwrap_or(0)
    }

    /// The challenge the client must still answer, with the file whose content it claims.
    pub fn challenge(&self) -> Option<(&str, Challenge)> {
        match (&self.challenge_file, self.challenge_offset, self.challenge_length, &self.challenge_nonce) {
            (Some(file), Some(offset), Some(length), Some(nonce)) => Some((
                file,
                Challenge {
                    offset: u64::try_from(offset).unwrap_or(0),
                    length: u64::try_from(length).unwrap_or(0),
                    nonce: nonce.clone(),
                },
            )),
            _ => None,
        }
    }
}

/// The caller's upload: another user's is `upload-not-found`, exactly like a missing one.
pub(super) async fn load(state: &AppState, user: &User, id: &str) -> Result<UploadRow, UploadError> {
    match repo::get(&state.db, id).await? {
        Some(u) if u.state != State::Aborting && u.user_id.as_deref() == Some(user.id.as_str()) => Ok(u),
        _ => Err(UploadError::NotFound),
    }
}

/// The upload as it is now, whoever owns it (for flows that already checked).
pub(super) async fn reload(state: &AppState, id: &str) -> Result<UploadRow, UploadError> {
    match repo::get(&state.db, id).await? {
        Some(u) if u.state != State::Aborting => Ok(u),
        _ => Err(UploadError::NotFound),
    }
}

pub(super) async fn restart(state: &AppState, u: &UploadRow) -> Result<(), UploadError> {
    tracing::warn!(upload = %u.id, "the storage forgot this multipart upload; starting it again");
    let sid = state.store.create_multipart(&u.storage_key, &u.content_type).await?;
    repo::restart(&state.db, &u.id, &sid, now_ms()).await?;
    state.tracker.rebuild(&u.id, &[], state.ttl()).await?;
    Ok(())
}

/// Refills the tracker from `ListParts`; answers the parts storage holds.
pub(super) async fn rebuild_from_storage(state: &AppState, u: &UploadRow) -> Result<Vec<u32>, UploadError> {
    let plan = u.plan();
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

pub(super) async fn touch(state: &AppState, u: &UploadRow) -> Result<(), UploadError> {
    let now = now_ms();
    if u.updated_at < now - TOUCH_EVERY_MS.min(state.ttl_ms() / 4) {
        repo::touch(&state.db, &u.id, now).await?;
    }
    Ok(())
}

pub(super) async fn finished_file(state: &AppState, u: &UploadRow) -> Result<FileRow, UploadError> {
    let file = match &u.file_id {
        Some(fid) => files::repo::get(&state.db, fid).await?,
        None => files::repo::by_upload(&state.db, &u.id).await?,
    };
    // The upload says complete but its file is gone (deleted since): report that plainly.
    file.ok_or(UploadError::NotFound)
}

/// The upload as the API shows it, with its done parts from the tracker (or storage).
pub(super) async fn view(state: &AppState, u: UploadRow) -> Result<UploadView, UploadError> {
    let parts = match u.state {
        State::Uploading | State::Completing => match state.tracker.parts(&u.id).await? {
            Some(parts) => parts.into_keys().collect(),
            None => rebuild_from_storage(state, &u).await?,
        },
        _ => (1..=u.plan().part_count).collect(),
    };
    view_with_parts(state, &u, parts).await
}

pub(super) async fn view_with_parts(
    state: &AppState,
    u: &UploadRow,
    parts_done: Vec<u32>,
) -> Result<UploadView, UploadError> {
    let plan = u.plan();
    let st = u.state.wire();
    let file = match u.state.is_finished() {
        true => Some(FileView::from(&finished_file(state, u).await?)),
        false => None,
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
        challenge: u.challenge().filter(|_| st == UploadState::Uploading).map(|(_, c)| c),
        signed: None,
    })
}

pub(super) fn new_id(prefix: &str) -> String {
    format!("{prefix}_{}", uuid::Uuid::new_v4().simple())
}
