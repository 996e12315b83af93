//! HTTP handlers for `/api/v1/users` and `/api/v1/sessions`.
//!
//! Every route that checks or makes a password hash does it in a slot of the app's
//! [`HashGate`](super::gate::HashGate): past its places the answer is `503 auth-busy`, never a pile-up of hashes.

use actix_web::{web, HttpResponse};

use super::gate::HashGate;
use super::repo::NewSession;
use super::{password, repo, validate, AuthError, Credentials, PasswordChange, SessionView, User, UserView};
use crate::db::{now_ms, to_time};
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

type Res = Result<HttpResponse, ApiError>;

/// Create an account (when `auth.open_signup`). Then sign in with `POST /sessions`.
#[utoipa::path(post, path = "/api/v1/users", operation_id = "create_user", tag = "accounts", request_body = Credentials, security(()), responses(
    (status = 201, body = UserView),
    (status = 400, description = "`malformed-json`", body = ErrorBody),
    (status = 403, description = "`signup-closed`", body = ErrorBody),
    (status = 409, description = "`username-taken`", body = ErrorBody),
    (status = 413, description = "`body-too-large`", body = ErrorBody),
    (status = 415, description = "`unsupported-media-type`", body = ErrorBody),
    (status = 422, description = "`invalid-username`, `invalid-password`, `invalid-field`", body = ErrorBody),
    (status = 429, description = "`rate-limited`: over `http.auth_rate_per_minute`; see `Retry-After`", body = ErrorBody),
    (status = 503, description = "`auth-busy`: too many passwords being checked at once (`auth.hash_concurrency`, `auth.hash_queue`)", body = ErrorBody,
        headers(("Retry-After" = u32, description = "Seconds to wait"))),
))]
pub async fn sign_up(state: web::Data<AppState>, gate: web::Data<HashGate>, body: web::Json<Credentials>) -> Res {
    if !state.settings.auth.open_signup {
        return Err(AuthError::SignupClosed.into());
    }
    let Credentials { username, password } = body.into_inner();
    let username = validate::username(&username)?;
    validate::password(&password)?;
    let slot = gate.enter().await?;
    let password_hash = slot.run(move || password::hash_blocking(&password)).await??;
    let user = insert_user(&state.db, username, password_hash).await?;
    Ok(HttpResponse::Created().json(view(&state, &user).await?))
}

/// Makes an account on the server's command line (`shardrop user-add`).
pub async fn create_user(db: &crate::db::Db, username: &str, pw: String) -> Result<repo::UserRow, AuthError> {
    let username = validate::username(username)?;
    validate::password(&pw)?;
    insert_user(db, username, password::hash(pw).await?).await
}

async fn insert_user(db: &crate::db::Db, username: String, password_hash: String) -> Result<repo::UserRow, AuthError> {
    let user = repo::UserRow {
        id: format!("us_{}", uuid::Uuid::new_v4().simple()),
        username,
        password_hash,
        created_at: now_ms(),
    };
    if !repo::insert_user(db, &user).await? {
        return Err(AuthError::UsernameTaken);
    }
    tracing::info!(user = %user.id, username = %user.username, "account created");
    Ok(user)
}

/// Sign in: a bearer token for every other route.
#[utoipa::path(post, path = "/api/v1/sessions", operation_id = "create_session", tag = "accounts", request_body = Credentials, security(()), responses(
    (status = 201, body = SessionView),
    (status = 400, description = "`malformed-json`", body = ErrorBody),
    (status = 401, description = "`invalid-credentials`", body = ErrorBody),
    (status = 413, description = "`body-too-large`", body = ErrorBody),
    (status = 415, description = "`unsupported-media-type`", body = ErrorBody),
    (status = 422, description = "`invalid-field`", body = ErrorBody),
    (status = 429, description = "`rate-limited`: over `http.auth_rate_per_minute`; see `Retry-After`", body = ErrorBody),
    (status = 503, description = "`auth-busy`: too many passwords being checked at once (`auth.hash_concurrency`, `auth.hash_queue`)", body = ErrorBody,
        headers(("Retry-After" = u32, description = "Seconds to wait"))),
))]
pub async fn sign_in(state: web::Data<AppState>, gate: web::Data<HashGate>, body: web::Json<Credentials>) -> Res {
    let Credentials { username, password } = body.into_inner();
    // A name that cannot exist still costs a hash, like a wrong password.
    let user = match validate::username(&username) {
        Ok(name) => repo::user_by_name(&state.db, &name).await.map_err(AuthError::from)?,
        Err(_) => None,
    };
    let stored = user.as_ref().map(|u| u.password_hash.clone());
    let slot = gate.enter().await?;
    let ok = slot.run(move || password::verify_blocking(&password, stored.as_deref())).await??;
    let session = Session::new(&state);
    // Stored only under the password just checked: a change meanwhile makes this a refusal.
    let stored = match user.filter(|_| ok) {
        Some(user) => repo::insert_session(&state.db, &session.row(&user.id), &user.password_hash)
            .await
            .map_err(AuthError::from)?
            .then_some(user),
        None => None,
    };
    let Some(user) = stored else {
        state.metrics.logins_failed.inc();
        return Err(AuthError::InvalidCredentials.into());
    };
    Ok(HttpResponse::Created().json(session.view(view(&state, &user).await?)))
}

/// Sign out: the token stops working at once.
#[utoipa::path(delete, path = "/api/v1/sessions/current", operation_id = "delete_session", tag = "accounts", responses(
    (status = 204, description = "Signed out"),
    (status = 401, description = "`unauthorized`", body = ErrorBody),
))]
pub async fn sign_out(state: web::Data<AppState>, user: User) -> Res {
    repo::delete_session(&state.db, &user.token_hash).await.map_err(AuthError::from)?;
    Ok(HttpResponse::NoContent().finish())
}

/// Sign out everywhere: every token of the caller's account stops working at once, this one
/// included. Other accounts' sessions go on.
#[utoipa::path(delete, path = "/api/v1/sessions", operation_id = "delete_all_sessions", tag = "accounts", responses(
    (status = 204, description = "Every session of the account ended"),
    (status = 401, description = "`unauthorized`", body = ErrorBody),
))]
pub async fn sign_out_everywhere(state: web::Data<AppState>, user: User) -> Res {
    let ended = repo::delete_user_sessions(&state.db, &user.id).await.map_err(AuthError::from)?;
    tracing::info!(user = %user.id, sessions = ended, "signed out everywhere");
    Ok(HttpResponse::NoContent().finish())
}

/// Change the password. Every session of the account ends (every device is signed out, this
/// one included), and the answer is a new session for the caller, as sign-in gives.
#[utoipa::path(put, path = "/api/v1/users/me/password", operation_id = "change_password", tag = "accounts", request_body = PasswordChange, responses(
    (status = 200, description = "Changed; every earlier token of the account is revoked, and this is a new one", body = SessionView),
    (status = 400, description = "`malformed-json`", body = ErrorBody),
    (status = 401, description = "`unauthorized`", body = ErrorBody),
    (status = 403, description = "`wrong-password`: `current_password` is not the account's password", body = ErrorBody),
    (status = 413, description = "`body-too-large`", body = ErrorBody),
    (status = 415, description = "`unsupported-media-type`", body = ErrorBody),
    (status = 422, description = "`invalid-password` (the new one, as at sign-up), `invalid-field`", body = ErrorBody),
    (status = 429, description = "`rate-limited`: over `http.auth_rate_per_minute`; see `Retry-After`", body = ErrorBody),
    (status = 503, description = "`auth-busy`: too many passwords being checked at once (`auth.hash_concurrency`, `auth.hash_queue`)", body = ErrorBody,
        headers(("Retry-After" = u32, description = "Seconds to wait"))),
))]
pub async fn change_password(
    state: web::Data<AppState>,
    gate: web::Data<HashGate>,
    user: User,
    body: web::Json<PasswordChange>,
) -> Res {
    let PasswordChange { current_password, new_password } = body.into_inner();
    validate::password(&new_password)?;
    let row = repo::user_by_id(&state.db, &user.id).await.map_err(AuthError::from)?.ok_or(AuthError::Unauthorized)?;
    let stored = row.password_hash.clone();
    let slot = gate.enter().await?;
    let new_hash = slot
        .run(move || {
            if !password::verify_blocking(&current_password, Some(&stored))? {
                return Ok(None);
            }
            password::hash_blocking(&new_password).map(Some)
        })
        .await??
        .ok_or(AuthError::WrongPassword)?;
    let session = Session::new(&state);
    // Against the hash just checked: of two changes at once, the second finds it gone.
    if !repo::change_password(&state.db, &row.password_hash, &new_hash, &session.row(&row.id))
        .await
        .map_err(AuthError::from)?
    {
        return Err(AuthError::WrongPassword.into());
    }
    tracing::info!(user = %row.id, "password changed; every session ended");
    Ok(HttpResponse::Ok().json(session.view(view(&state, &row).await?)))
}

/// The signed-in account, with its storage use.
#[utoipa::path(get, path = "/api/v1/users/me", operation_id = "get_me", tag = "accounts", responses(
    (status = 200, body = UserView),
    (status = 401, description = "`unauthorized`", body = ErrorBody),
))]
pub async fn me(state: web::Data<AppState>, user: User) -> Res {
    let row = repo::user_by_id(&state.db, &user.id).await.map_err(AuthError::from)?.ok_or(AuthError::Unauthorized)?;
    Ok(HttpResponse::Ok().json(view(&state, &row).await?))
}

/// A new session's token and times, before it is stored.
struct Session {
    id: String,
    token: String,
    token_hash: String,
    now: i64,
    expires_at: i64,
}

impl Session {
    fn new(state: &AppState) -> Self {
        let token = validate::new_token();
        let now = now_ms();
        let ttl_ms = i64::try_from(state.settings.auth.session_ttl_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
        Self {
            id: format!("se_{}", uuid::Uuid::new_v4().simple()),
            token_hash: validate::token_hash(&token),
            token,
            now,
            expires_at: now.saturating_add(ttl_ms),
        }
    }

    fn row<'a>(&'a self, user_id: &'a str) -> NewSession<'a> {
        NewSession { id: &self.id, user_id, token_hash: &self.token_hash, now: self.now, expires_at: self.expires_at }
    }

    fn view(self, user: UserView) -> SessionView {
        SessionView { token: self.token, expires_at: to_time(self.expires_at), user }
    }
}

async fn view(state: &AppState, u: &repo::UserRow) -> Result<UserView, ApiError> {
    let used = crate::quota::used_bytes(&state.db, &u.id).await?;
    let quota = state.settings.auth.quota_bytes;
    Ok(UserView {
        user_id: u.id.clone(),
        username: u.username.clone(),
        created_at: to_time(u.created_at),
        quota_bytes: (quota > 0).then_some(quota),
        used_bytes: u64::try_from(used).unwrap_or(0),
    })
}
