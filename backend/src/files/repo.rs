//! SQL for files. The UNIQUE `upload_id` makes "one file row per upload" hold however many
//! replicas complete the same upload at once.

use sqlx::FromRow;

use crate::db::Db;

pub const PENDING: &str = "pending";
pub const VERIFIED: &str = "verified";
pub const CORRUPT: &str = "corrupt";

#[derive(Debug, Clone, FromRow)]
pub struct FileRow {
    pub id: String,
    pub upload_id: Option<String>,
    /// The owner. Several users' files may share one stored object (`storage_key`).
    pub user_id: Option<String>,
    pub name: String,
    pub size: i64,
    pub content_type: String,
    pub sha1: Option<String>,
    pub storage_key: String,
    pub status: String,
    pub created_at: i64,
    pub verified_at: Option<i64>,
    /// The content probe of the stored bytes, set by the verifier.
    pub probe: Option<String>,
    /// The stored object's ETag when the verifier read it: a link to this content first
    /// checks the object still has it (nothing may have written it since).
    pub verified_etag: Option<String>,
}

const COLUMNS: &str = "id, upload_id, user_id, name, size, content_type, sha1, storage_key, status, created_at, \
                       verified_at, probe, verified_etag";

/// Inserts the file of an upload unless the upload already has one, and answers the one
/// row; `None` when the row would take its owner past `quota` (the quota counts files; the
/// check and the insert run under a lock on the owner's row, so racing completions of one
/// user take turns). Without a quota it is one statement: completion is a hot path. A row
/// without a SHA-1 takes the upload's claim as it is when the row is written (a claim may
/// come while the object is being composed).
pub async fn insert_once(db: &Db, f: &FileRow, quota: Option<i64>) -> Result<Option<FileRow>, sqlx::Error> {
    let upload = f.upload_id.as_deref().unwrap_or_default();
    let inserted = match (quota, &f.user_id) {
        (Some(quota), Some(user)) => {
            // A retried completion finds its row; it must not count against the quota twice.
            if let Some(existing) = by_upload(db, upload).await? {
                return Ok(Some(existing));
            }
            let mut tx = db.begin().await?;
            // A write to the owner's row: PostgreSQL holds its lock until commit (SQLite has
            // one writer at a time anyway).
            sqlx::query("UPDATE users SET username = username WHERE id = $1").bind(user).execute(&mut *tx).await?;
            let (stored,): (i64,) =
                sqlx::query_as("SELECT CAST(COALESCE(SUM(size), 0) AS BIGINT) FROM files WHERE user_id = $1")
                    .bind(user)
                    .fetch_one(&mut *tx)
                    .await?;
            if stored.saturating_add(f.size) > quota {
                tx.rollback().await?;
                return Ok(None);
            }
            let row = insert_row(&mut *tx, f).await?;
            tx.commit().await?;
            row
        }
        _ => insert_row(db, f).await?,
    };
    // Nothing inserted: the upload's row was there already (a retried completion).
    match inserted {
        Some(row) => Ok(Some(row)),
        None => by_upload(db, upload).await,
    }
}

/// `INSERT … ON CONFLICT (upload_id) DO NOTHING RETURNING …`: one file row per upload,
/// however many replicas complete it at once; answers the row if this call wrote it.
async fn insert_row<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
    exec: E,
    f: &FileRow,
) -> Result<Option<FileRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "INSERT INTO files ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, \
         COALESCE($7, (SELECT sha1 FROM uploads WHERE id = $2)), $8, $9, $10, $11, $12, $13) \
         ON CONFLICT (upload_id) DO NOTHING RETURNING {COLUMNS}"
    ))
    .bind(&f.id)
    .bind(&f.upload_id)
    .bind(&f.user_id)
    .bind(&f.name)
    .bind(f.size)
    .bind(&f.content_type)
    .bind(&f.sha1)
    .bind(&f.storage_key)
    .bind(&f.status)
    .bind(f.created_at)
    .bind(f.verified_at)
    .bind(&f.probe)
    .bind(&f.verified_etag)
    .fetch_optional(exec)
    .await
}

/// The file, if it exists and `user` owns it: another user's file is as absent as one that
/// never was.
pub async fn get_owned(db: &Db, id: &str, user: &str) -> Result<Option<FileRow>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM files WHERE id = $1 AND user_id = $2"))
        .bind(id)
        .bind(user)
        .fetch_optional(db)
        .await
}

pub async fn get(db: &Db, id: &str) -> Result<Option<FileRow>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM files WHERE id = $1")).bind(id).fetch_optional(db).await
}

pub async fn by_upload(db: &Db, upload_id: &str) -> Result<Option<FileRow>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM files WHERE upload_id = $1"))
        .bind(upload_id)
        .fetch_optional(db)
        .await
}

/// A verified file with this content, if the server holds one.
pub async fn find_verified(db: &Db, sha1: &str, size: i64) -> Result<Option<FileRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM files WHERE sha1 = $1 AND size = $2 AND status = 'verified' ORDER BY created_at LIMIT 1"
    ))
    .bind(sha1)
    .bind(size)
    .fetch_optional(db)
    .await
}

/// A verified file of `user`'s with this content: they hold it already, nothing to prove.
pub async fn find_verified_owned(db: &Db, sha1: &str, size: i64, user: &str) -> Result<Option<FileRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM files WHERE sha1 = $1 AND size = $2 AND status = 'verified' AND user_id = $3 \
         ORDER BY created_at LIMIT 1"
    ))
    .bind(sha1)
    .bind(size)
    .bind(user)
    .fetch_optional(db)
    .await
}

/// Whether a verified file has this size and content probe (a hint, not a match); with
/// `owner`, only that user's files count.
pub async fn probe_matches(db: &Db, size: i64, probe: &str, owner: Option<&str>) -> Result<bool, sqlx::Error> {
    let row: Option<(String,)> = sqlx::query_as(
        "SELECT id FROM files WHERE size = $1 AND probe = $2 AND status = 'verified' \
         AND ($3 IS NULL OR user_id = $3) LIMIT 1",
    )
    .bind(size)
    .bind(probe)
    .bind(owner)
    .fetch_optional(db)
    .await?;
    Ok(row.is_some())
}

/// Marks every verified file of an object as corrupt: its object was written again after
/// it was verified, so what it holds is no longer what was checked.
pub async fn mark_changed(db: &Db, storage_key: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE files SET status = 'corrupt' WHERE storage_key = $1 AND status = 'verified'")
        .bind(storage_key)
        .execute(db)
        .await?;
    Ok(())
}

/// Whether any file row points at this stored object.
pub async fn key_in_use(db: &Db, storage_key: &str) -> Result<bool, sqlx::Error> {
    let row: Option<(String,)> = sqlx::query_as("SELECT id FROM files WHERE storage_key = $1 LIMIT 1")
        .bind(storage_key)
        .fetch_optional(db)
        .await?;
    Ok(row.is_some())
}

/// The user's files, newest first; `after` is the (created_at, id) of the last row of the
/// previous page.
/// The user's files after `(created_at, id)`, newest first (see `crate::paging`).
/// A page of the user's files, newest first; with `like` (a lower-case `LIKE` pattern with
/// `\\` as its escape), only those whose lower-cased name matches it.
pub async fn list(
    db: &Db,
    user: &str,
    limit: i64,
    (at, id): (i64, &str),
    like: Option<&str>,
) -> Result<Vec<FileRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM files WHERE user_id = $4 AND (created_at < $1 OR (created_at = $1 AND id < $2)) \
         AND ($5 = '' OR LOWER(name) LIKE $5 ESCAPE '\\') \
         ORDER BY created_at DESC, id DESC LIMIT $3"
    ))
    .bind(at)
    .bind(id)
    .bind(limit)
    .bind(user)
    .bind(like.unwrap_or(""))
    .fetch_all(db)
    .await
}

/// Deletes the row; answers whether another file still uses the same stored object.
///
/// With [`shared_by_others`] this is a handshake: a deleter deletes its row and then counts,
/// a linker inserts its row and then counts. At least one of the two sees the other, so
/// the object is never deleted under a file that was just linked to it.
pub async fn delete(db: &Db, f: &FileRow) -> Result<bool, sqlx::Error> {
    sqlx::query("DELETE FROM files WHERE id = $1").bind(&f.id).execute(db).await?;
    shared_by_others(db, f).await
}

/// Whether a file other than `f` uses `f`'s stored object.
pub async fn shared_by_others(db: &Db, f: &FileRow) -> Result<bool, sqlx::Error> {
    let (others,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM files WHERE storage_key = $1 AND id <> $2")
        .bind(&f.storage_key)
        .bind(&f.id)
        .fetch_one(db)
        .await?;
    Ok(others > 0)
}

/// Deletes one row, nothing else.
pub async fn delete_row(db: &Db, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM files WHERE id = $1").bind(id).execute(db).await?;
    Ok(())
}

/// Records a client's SHA-1 claim on a file that has none yet; true when the file's SHA-1
/// (claimed or verified) now equals `sha1`.
pub async fn set_claim(db: &Db, id: &str, sha1: &str) -> Result<bool, sqlx::Error> {
    sqlx::query("UPDATE files SET sha1 = $2 WHERE id = $1 AND sha1 IS NULL").bind(id).bind(sha1).execute(db).await?;
    Ok(get(db, id).await?.is_some_and(|f| f.sha1.as_deref() == Some(sha1)))
}

/// What the verifier found in the stored bytes.
#[derive(Debug)]
pub struct Verdict<'a> {
    /// Hex SHA-1 of the bytes read.
    pub actual: &'a str,
    pub probe: &'a str,
    pub size_ok: bool,
    /// The object's ETag before and after the read (the same, or the read does not count).
    pub etag: &'a str,
}

/// Records the verifier's verdict from the SHA-1 of the stored bytes, against whatever
/// claim the row holds at that moment (one statement, so a claim made while hashing still
/// counts). Answers the resulting status.
pub async fn set_verdict(db: &Db, id: &str, v: &Verdict<'_>, now: i64) -> Result<String, sqlx::Error> {
    sqlx::query(
        "UPDATE files SET \
           status = CASE WHEN $3 = 1 AND (sha1 IS NULL OR sha1 = $2) THEN 'verified' ELSE 'corrupt' END, \
           sha1 = COALESCE(sha1, $2), verified_at = $4, probe = $5, verified_etag = $6 \
         WHERE id = $1 AND status = 'pending'",
    )
    .bind(id)
    .bind(v.actual)
    .bind(i64::from(v.size_ok))
    .bind(now)
    .bind(v.probe)
    .bind(v.etag)
    .execute(db)
    .await?;
    Ok(get(db, id).await?.map(|f| f.status).unwrap_or_default())
}

/// Notes that the file was just put on the verification queue.
pub async fn mark_queued(db: &Db, id: &str, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE files SET verify_queued_at = $2 WHERE id = $1").bind(id).bind(now).execute(db).await?;
    Ok(())
}

/// Pending files queued (or made) so long ago that their job must have been lost: before
/// `before`, plus the time reading the file at a slow 20 MB/s would take. Answers each id
/// with the queue time it was seen with, for [`claim_requeue`].
pub async fn verify_overdue(db: &Db, before: i64, limit: i64) -> Result<Vec<(String, i64)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, COALESCE(verify_queued_at, created_at) FROM files \
         WHERE status = 'pending' AND COALESCE(verify_queued_at, created_at) + size / 20000 < $1 LIMIT $2",
    )
    .bind(before)
    .bind(limit)
    .fetch_all(db)
    .await
}

/// Claims the queueing again of an overdue file: true for exactly one caller.
pub async fn claim_requeue(db: &Db, id: &str, seen: i64, now: i64) -> Result<bool, sqlx::Error> {
    let done = sqlx::query(
        "UPDATE files SET verify_queued_at = $3 \
         WHERE id = $1 AND status = 'pending' AND COALESCE(verify_queued_at, created_at) = $2",
    )
    .bind(id)
    .bind(seen)
    .bind(now)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}
