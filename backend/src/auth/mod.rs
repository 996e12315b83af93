//! Accounts: who is asking. Every upload and file belongs to a user, and each route under
//! `/uploads` and `/files` acts only on the caller's own (another user's id is a plain 404).
//!
//! Passwords are stored as Argon2id PHC strings and checked off the async workers, at most a
//! few at once (`gate`). A login yields an opaque bearer token: 32 random bytes that only the
//! client ever holds; SQL keeps its SHA-256, so a leaked database yields no working session.
//! Tokens expire (`auth.session_ttl_secs`); logout deletes one, "sign out everywhere" and a
//! password change delete them all; any replica checks any token, since the session lives
//! in SQL. Sign-up, login and a password change share a per-client rate limit
//! (`crate::limits`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub mod error;
pub mod extract;
pub mod gate;
pub mod password;
pub mod repo;
pub mod routes;
pub mod validate;

pub use error::AuthError;
pub use extract::User;

/// `POST /api/v1/users` and `POST /api/v1/sessions`
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    /// 3 to 64 of `a-z 0-9 . _ -`, starting with a letter or digit; upper case is folded.
    #[schema(example = "alice", min_length = 3, max_length = 64, pattern = r"^[A-Za-z0-9][A-Za-z0-9._-]{2,63}$")]
    pub username: String,
    /// 8 to 1024 characters.
    #[schema(min_length = 8, max_length = 1024)]
    pub password: String,
}

/// Never shows the password, whatever logs a request.
impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials").field("username", &self.username).field("password", &"<redacted>").finish()
    }
}

/// `PUT /api/v1/users/me/password`
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChange {
    /// The password the account has now.
    #[schema(max_length = 1024)]
    pub current_password: String,
    /// 8 to 1024 characters, as at sign-up.
    #[schema(min_length = 8, max_length = 1024)]
    pub new_password: String,
}

impl std::fmt::Debug for PasswordChange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordChange").finish_non_exhaustive()
    }
}

/// An account as its owner sees it.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserView {
    #[schema(example = "us_1b4e28ba2fa1411da6a1b2f3c4d5e6f7")]
    pub user_id: String,
    pub username: String,
    pub created_at: DateTime<Utc>,
    /// Bytes this user may store (uploads in progress included); absent: no limit.
    pub quota_bytes: Option<u64>,
    /// Bytes stored and reserved by uploads in progress.
    pub used_bytes: u64,
}

/// A new session: send `token` as `Authorization: Bearer <token>`. (No `Debug`: the token
/// must not reach a log.)
#[derive(Serialize, utoipa::ToSchema)]
pub struct SessionView {
    /// Shown once; the server keeps only its hash.
    pub token: String,
    pub expires_at: DateTime<Utc>,
    pub user: UserView,
}

#[cfg(test)]
mod tests {
    #[test]
    fn debug_never_shows_the_password() {
        let c = super::Credentials { username: "ann".into(), password: "hunter22".into() };
        assert!(!format!("{c:?}").contains("hunter22"));
        let c = super::PasswordChange { current_password: "hunter22".into(), new_password: "hunter23".into() };
        assert!(!format!("{c:?}").contains("hunter2"));
    }
}
