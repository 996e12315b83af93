//! SQL for users and sessions. A password change and the sessions it ends are one
//! transaction, and a login stores its session only under the password it checked.

use sqlx::FromRow;

use crate::db::Db;

#[derive(Debug, Clone, FromRow)]
pub struct UserRow {
    pub id: String,
    pub username: String,
    pub password_hash: String,
    pub created_at: i64,
}

/// Inserts the user; false when the username is taken.
pub async fn insert_user(db: &Db, u: &UserRow) -> Result<bool, sqlx::Error> {
    let r = sqlx::query(
        "INSERT INTO users (id, username, password_hash, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (username) DO NOTHING",
    )
    .bind(&u.id)
    .bind(&u.username)
    .bind(&u.password_hash)
    .bind(u.created_at)
    .execute(db)
    .await?;
    Ok(r.rows_affected() == 1)
}

pub async fn user_by_name(db: &Db, username: &str) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as("SELECT id, username, password_hash, created_at FROM users WHERE username = $1")
        .bind(username)
        .fetch_optional(db)
        .await
}

pub async fn user_by_id(db: &Db, id: &str) -> Result<Option<UserRow>, sqlx::Error> {
    sqlx::query_as("SELECT id, username, password_hash, created_at FROM users WHERE id = $1")
        .bind(id)
        .fetch_optional(db)
        .await
}

/// A session about to be stored.
pub struct NewSession<'a> {
    pub id: &'a str,
    pub user_id: &'a str,
    pub token_hash: &'a str,
    pub now: i64,
    pub expires_at: i64,
}

/// Stores the session if the user's password is still `verified_hash` (the one the login
/// checked); false if it changed meanwhile. The no-op write takes the user's row lock, so a
/// password change either commits first (and this misses) or waits for this session and
/// then revokes it with the others.
pub async fn insert_session(db: &Db, s: &NewSession<'_>, verified_hash: &str) -> Result<bool, sqlx::Error> {
    let mut tx = db.begin().await?;
    let held = sqlx::query("UPDATE users SET password_hash = password_hash WHERE id = $1 AND password_hash = $2")
        .bind(s.user_id)
        .bind(verified_hash)
        .execute(&mut *tx)
        .await?
        .rows_affected()
        == 1;
    if !held {
        return Ok(false);
    }
    insert_session_row(&mut tx, s).await?;
    tx.commit().await?;
    Ok(true)
}

/// Replaces the password if it is still `old_hash`, ends every session of the user and
/// stores `session`, all at once; false if the password changed meanwhile.
pub async fn change_password(
    db: &Db,
    old_hash: &str,
    new_hash: &str,
    session: &NewSession<'_>,
) -> Result<bool, sqlx::Error> {
    let mut tx = db.begin().await?;
    let changed = sqlx::query("UPDATE users SET password_hash = $3 WHERE id = $1 AND password_hash = $2")
        .bind(session.user_id)
        .bind(old_hash)
        .bind(new_hash)
        .execute(&mut *tx)
        .await?
        .rows_affected()
        == 1;
    if !changed {
        return Ok(false);
    }
    sqlx::query("DELETE FROM sessions WHERE user_id = $1").bind(session.user_id).execute(&mut *tx).await?;
    insert_session_row(&mut tx, session).await?;
    tx.commit().await?;
    Ok(true)
}

async fn insert_session_row(tx: &mut sqlx::Transaction<'_, sqlx::Any>, s: &NewSession<'_>) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO sessions (id, user_id, token_hash, created_at, expires_at) VALUES ($1, $2, $3, $4, $5)")
        .bind(s.id)
        .bind(s.user_id)
        .bind(s.token_hash)
        .bind(s.now)
        .bind(s.expires_at)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// The user (id, username) of a live session.
pub async fn session_user(db: &Db, token_hash: &str, now: i64) -> Result<Option<(String, String)>, sqlx::Error> {
    sqlx::query_as(
        "SELECT users.id, users.username FROM sessions JOIN users ON users.id = sessions.user_id \
         WHERE sessions.token_hash = $1 AND sessions.expires_at > $2",
    )
    .bind(token_hash)
    .bind(now)
    .fetch_optional(db)
    .await
}

pub async fn delete_session(db: &Db, token_hash: &str) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM sessions WHERE token_hash = $1").bind(token_hash).execute(db).await?;
    Ok(())
}

/// Ends every session of the user; answers how many.
pub async fn delete_user_sessions(db: &Db, user_id: &str) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query("DELETE FROM sessions WHERE user_id = $1").bind(user_id).execute(db).await?.rows_affected())
}

/// Drops sessions that expired before `now` (the reaper's job); answers how many.
pub async fn delete_expired_sessions(db: &Db, now: i64) -> Result<u64, sqlx::Error> {
    Ok(sqlx::query("DELETE FROM sessions WHERE expires_at <= $1").bind(now).execute(db).await?.rows_affected())
}
