//! SQL for uploads. Every state change is a conditional UPDATE, so when replicas race,
//! exactly one of them sees its change applied (`rows_affected() == 1`).

use sqlx::FromRow;

use super::state::State;
use crate::db::Db;

#[derive(Debug, Clone, FromRow)]
pub struct UploadRow {
    pub id: String,
    pub name: String,
    pub size: i64,
    pub content_type: String,
    pub last_modified: Option<i64>,
    pub sha1: Option<String>,
    pub part_size: i64,
    pub part_count: i64,
    pub storage_key: String,
    pub storage_upload_id: Option<String>,
    pub state: State,
    pub file_id: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
    /// A pending proof-of-possession challenge: the file whose content was claimed, and the
    /// byte range whose SHA-1 the client must give.
    pub challenge_file: Option<String>,
    pub challenge_offset: Option<i64>,
    pub challenge_length: Option<i64>,
    /// Hex of 16 random bytes hashed before the range.
    pub challenge_nonce: Option<String>,
    /// The owner: only they see and act on the upload.
    pub user_id: Option<String>,
}

const COLUMNS: &str = "id, name, size, content_type, last_modified, sha1, part_size, part_count, storage_key, \
                       storage_upload_id, state, file_id, created_at, updated_at, challenge_file, challenge_offset, \
                       challenge_length, challenge_nonce, user_id";

pub async fn insert<'e, E: sqlx::Executor<'e, Database = sqlx::Any>>(
    exec: E,
    u: &UploadRow,
) -> Result<(), sqlx::Error> {
    sqlx::query(&format!(
        "INSERT INTO uploads ({COLUMNS}) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19)"
    ))
    .bind(&u.id)
    .bind(&u.name)
    .bind(u.size)
    .bind(&u.content_type)
    .bind(u.last_modified)
    .bind(&u.sha1)
    .bind(u.part_size)
    .bind(u.part_count)
    .bind(&u.storage_key)
    .bind(&u.storage_upload_id)
    .bind(u.state)
    .bind(&u.file_id)
    .bind(u.created_at)
    .bind(u.updated_at)
    .bind(&u.challenge_file)
    .bind(u.challenge_offset)
    .bind(u.challenge_length)
    .bind(&u.challenge_nonce)
    .bind(&u.user_id)
    .execute(exec)
    .await?;
    Ok(())
}

/// Sets the upload's proof-of-possession challenge, unless it ever had one: one challenge
/// per upload, so a client cannot draw ranges until one lands on bytes it knows.
pub async fn set_challenge(
    db: &Db,
    id: &str,
    file: &str,
    offset: i64,
    length: i64,
    nonce: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE uploads SET challenge_file = $2, challenge_offset = $3, challenge_length = $4, challenge_nonce = $5 \
         WHERE id = $1 AND state = 'uploading' AND challenge_file IS NULL",
    )
    .bind(id)
    .bind(file)
    .bind(offset)
    .bind(length)
    .bind(nonce)
    .execute(db)
    .await?;
    Ok(())
}

/// Uses up the challenge the caller saw: true for exactly one answer, so each challenge
/// gets one try. The file stays noted (with no nonce), so no new challenge is drawn.
pub async fn take_challenge(db: &Db, id: &str, file: &str, nonce: &str) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE uploads SET challenge_nonce = NULL \
         WHERE id = $1 AND challenge_file = $2 AND challenge_nonce = $3",
    )
    .bind(id)
    .bind(file)
    .bind(nonce)
    .execute(db)
    .await?;
    Ok(r.rows_affected() == 1)
}

pub async fn get(db: &Db, id: &str) -> Result<Option<UploadRow>, sqlx::Error> {
    sqlx::query_as(&format!("SELECT {COLUMNS} FROM uploads WHERE id = $1")).bind(id).fetch_optional(db).await
}

/// The user's newest open upload of the same file (name, size and modification time),
/// still alive.
pub async fn find_resumable(
    db: &Db,
    user: &str,
    name: &str,
    size: i64,
    last_modified: i64,
    alive_since: i64,
) -> Result<Option<UploadRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM uploads WHERE state = 'uploading' AND user_id = $5 AND name = $1 AND size = $2 \
         AND last_modified = $3 AND updated_at >= $4 ORDER BY created_at DESC LIMIT 1"
    ))
    .bind(name)
    .bind(size)
    .bind(last_modified)
    .bind(alive_since)
    .bind(user)
    .fetch_optional(db)
    .await
}

/// The user's uploads in progress and still alive, after `(created_at, id)`, newest first
/// (see `crate::paging`).
pub async fn list_open(
    db: &Db,
    user: &str,
    alive_since: i64,
    limit: i64,
    (at, id): (i64, &str),
) -> Result<Vec<UploadRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM uploads WHERE user_id = $4 AND state IN ('uploading', 'completing') \
         AND updated_at >= $5 AND (created_at < $1 OR (created_at = $1 AND id < $2)) \
         ORDER BY created_at DESC, id DESC LIMIT $3"
    ))
    .bind(at)
    .bind(id)
    .bind(limit)
    .bind(user)
    .bind(alive_since)
    .fetch_all(db)
    .await
}

/// Marks activity, so the reaper leaves the upload alone.
pub async fn touch(db: &Db, id: &str, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE uploads SET updated_at = $2 WHERE id = $1 AND state = 'uploading'")
        .bind(id)
        .bind(now)
        .execute(db)
        .await?;
    Ok(())
}

/// Records the whole-file SHA-1 unless a different one is already recorded.
pub async fn set_sha1(db: &Db, id: &str, sha1: &str) -> Result<bool, sqlx::Error> {
    let r = sqlx::query("UPDATE uploads SET sha1 = $2 WHERE id = $1 AND (sha1 IS NULL OR sha1 = $2)")
        .bind(id)
        .bind(sha1)
        .execute(db)
        .await?;
    Ok(r.rows_affected() == 1)
}

/// Moves the upload from `from` to `to`; also takes over an upload stuck in `to` since
/// before `stale_before` (its holder died). True for exactly one racing caller.
pub async fn transition(
    db: &Db,
    id: &str,
    from: State,
    to: State,
    now: i64,
    stale_before: i64,
) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "UPDATE uploads SET state = $3, updated_at = $4 WHERE id = $1 AND (state = $2 OR (state = $3 AND updated_at < $5))",
    )
    .bind(id)
    .bind(from)
    .bind(to)
    .bind(now)
    .bind(stale_before)
    .execute(db)
    .await?;
    Ok(r.rows_affected() == 1)
}

/// Moves the upload out of `from` into `to`, only if nobody changed it since `seen_at`.
pub async fn transition_if_unchanged(
    db: &Db,
    id: &str,
    from: State,
    seen_at: i64,
    to: State,
    now: i64,
) -> Result<bool, sqlx::Error> {
    let r =
        sqlx::query("UPDATE uploads SET state = $4, updated_at = $5 WHERE id = $1 AND state = $2 AND updated_at = $3")
            .bind(id)
            .bind(from)
            .bind(seen_at)
            .bind(to)
            .bind(now)
            .execute(db)
            .await?;
    Ok(r.rows_affected() == 1)
}

pub async fn finish(db: &Db, id: &str, state: State, file_id: &str, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE uploads SET state = $2, file_id = $3, updated_at = $4 WHERE id = $1")
        .bind(id)
        .bind(state)
        .bind(file_id)
        .bind(now)
        .execute(db)
        .await?;
    Ok(())
}

/// Points the upload at a fresh multipart upload (the storage forgot the old one).
pub async fn restart(db: &Db, id: &str, storage_upload_id: &str, now: i64) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE uploads SET storage_upload_id = $2, state = 'uploading', updated_at = $3 WHERE id = $1")
        .bind(id)
        .bind(storage_upload_id)
        .bind(now)
        .execute(db)
        .await?;
    Ok(())
}

pub async fn delete(db: &Db, id: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM part_claims WHERE upload_id = $1").bind(id).execute(db).await?;
    sqlx::query("DELETE FROM uploads WHERE id = $1").bind(id).execute(db).await?;
    Ok(())
}

/// Inserts a new upload unless it would take its owner past `quota` (files plus uploads in
/// progress); answers the bytes in use when it refused. The check and the insert run under
/// a lock on the owner's row (PostgreSQL holds it until commit; SQLite has one writer), so
/// uploads started side by side take turns and cannot all fit.
pub async fn insert_within_quota(db: &Db, u: &UploadRow, quota: Option<i64>) -> Result<Option<i64>, sqlx::Error> {
    let (Some(quota), Some(user)) = (quota, &u.user_id) else {
        insert(db, u).await?;
        return Ok(None);
    };
    let mut tx = db.begin().await?;
    sqlx::query("UPDATE users SET username = username WHERE id = $1").bind(user).execute(&mut *tx).await?;
    let used = crate::quota::used_bytes(&mut *tx, user).await?;
    if used.saturating_add(u.size) > quota {
        tx.rollback().await?;
        return Ok(Some(used));
    }
    insert(&mut *tx, u).await?;
    tx.commit().await?;
    Ok(None)
}

/// Pins the SHA-1 (base64) each part is signed with, the first time it is signed, and
/// answers the numbers already pinned to another SHA-1: a part can never be signed for two
/// contents, so no second URL exists to swap its bytes after the first was checked.
pub async fn pin_parts(db: &Db, upload: &str, parts: &[(u32, &str)]) -> Result<Vec<u32>, sqlx::Error> {
    let mut conflicts = Vec::new();
    // 2 binds a part; well inside both databases' limits on binds per statement.
    for chunk in parts.chunks(400) {
        let values: Vec<String> = (0..chunk.len()).map(|i| format!("($1, ${}, ${})", 2 * i + 2, 2 * i + 3)).collect();
        let sql = format!(
            "INSERT INTO part_claims (upload_id, number, sha1) VALUES {} ON CONFLICT (upload_id, number) DO NOTHING",
            values.join(", ")
        );
        let mut q = sqlx::query(&sql).bind(upload);
        for (number, sha1) in chunk {
            q = q.bind(i64::from(*number)).bind(*sha1);
        }
        q.execute(db).await?;
        let lo = chunk.iter().map(|p| p.0).min().unwrap_or(0);
        let hi = chunk.iter().map(|p| p.0).max().unwrap_or(0);
        let pinned: Vec<(i64, String)> = sqlx::query_as(
            "SELECT number, sha1 FROM part_claims WHERE upload_id = $1 AND number >= $2 AND number <= $3",
        )
        .bind(upload)
        .bind(i64::from(lo))
        .bind(i64::from(hi))
        .fetch_all(db)
        .await?;
        for (number, sha1) in chunk {
            if pinned.iter().any(|(n, s)| *n == i64::from(*number) && s != sha1) {
                conflicts.push(*number);
            }
        }
    }
    Ok(conflicts)
}

/// Gives an upload made before every upload was multipart its storage upload id; false
/// when another request gave it one first.
pub async fn set_storage_upload(db: &Db, id: &str, storage_upload_id: &str) -> Result<bool, sqlx::Error> {
    let r = sqlx::query("UPDATE uploads SET storage_upload_id = $2 WHERE id = $1 AND storage_upload_id IS NULL")
        .bind(id)
        .bind(storage_upload_id)
        .execute(db)
        .await?;
    Ok(r.rows_affected() == 1)
}

/// Whether an upload row accounts for this stored object.
pub async fn key_in_use(db: &Db, storage_key: &str) -> Result<bool, sqlx::Error> {
    let row: Option<(String,)> = sqlx::query_as("SELECT id FROM uploads WHERE storage_key = $1 LIMIT 1")
        .bind(storage_key)
        .fetch_optional(db)
        .await?;
    Ok(row.is_some())
}

/// Uploads the reaper should look at: idle past the TTL, stuck while aborting, or
/// finished records past their keep time.
pub async fn idle(db: &Db, idle_before: i64, aborting_before: i64, limit: i64) -> Result<Vec<UploadRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM uploads WHERE (state <> 'aborting' AND updated_at < $1) \
         OR (state = 'aborting' AND updated_at < $2) ORDER BY updated_at LIMIT $3"
    ))
    .bind(idle_before)
    .bind(aborting_before)
    .bind(limit)
    .fetch_all(db)
    .await
}
