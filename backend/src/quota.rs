//! The per-user quota (`auth.quota_bytes`): bytes a user may store. A concern of users,
//! shown by `GET /users/me` and enforced by uploads, so it lives beside both. Checked twice, each time
//! inside the transaction that writes the row, under a lock on the user's row, so requests
//! side by side take turns and cannot all fit. At the start of an upload, against what the
//! user's files and open uploads hold (`repo::insert_within_quota`), so a file that cannot
//! fit is refused before any byte is sent. And when an upload becomes a file
//! (`files::repo::insert_once`), so uploads that started side by side cannot all finish
//! past the quota. Counted from SQL every time: no counter to drift when a replica dies
//! between two writes.

use crate::db::Db;
use crate::state::AppState;

/// Bytes of the user's files plus the sizes of their uploads still in progress.
pub async fn used_bytes<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
    exec: E,
    user_id: &str,
) -> Result<i64, sqlx::Error> {
    let (used,): (i64,) = sqlx::query_as(
        "SELECT CAST(COALESCE((SELECT SUM(size) FROM files WHERE user_id = $1), 0) \
         + COALESCE((SELECT SUM(size) FROM uploads WHERE user_id = $1 AND state IN ('uploading', 'completing')), 0) \
         AS BIGINT)",
    )
    .bind(user_id)
    .fetch_one(exec)
    .await?;
    Ok(used)
}

/// Bytes of the user's files alone (what the check at completion counts: the upload being
/// completed reserved its own size, and other open uploads hold no bytes yet).
pub async fn stored_bytes(db: &Db, user_id: &str) -> Result<i64, sqlx::Error> {
    let (stored,): (i64,) =
        sqlx::query_as("SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM files WHERE user_id = $1")
            .bind(user_id)
            .fetch_one(db)
            .await?;
    Ok(stored)
}

/// The quota in bytes, or `None` when there is none.
pub fn limit(state: &AppState) -> Option<i64> {
    let q = state.settings.auth.quota_bytes;
    (q > 0).then(|| i64::try_from(q).unwrap_or(i64::MAX))
}
