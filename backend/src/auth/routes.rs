//! HTTP handlers for `/api/v1/users` and `/api/v1/sessions`.

use actix_web::{web, HttpResponse};

use super::{password, repo, validate, AuthError, Credentials, SessionView, User, UserView};
use crate::app::AppState;
use crate::db::{now_ms, to_time};
use crate::error::{ApiError, ErrorBody};

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
))]
pub async fn sign_up(state: web::Data<AppState>, body: web::Json<Credentials>) -> Res {
    if !state.settings.auth.open_signup {
        return Err(AuthError::SignupClosed.into());
    }
    let Credentials { username, password } = body.into_inner();
    let user = create_user(&state.db, &username, password).await?;
    Ok(HttpResponse::Created().json(view(&state, &user).await?))
}

/// Makes an account (sign-up, and `shardrop user-add`).
pub async fn create_user(db: &crate::db::Db, username: &str, pw: String) -> Result<repo::UserRow, AuthError> {
    let username = validate::username(username)?;
    validate::password(&pw)?;
    let user = repo::UserRow {
        id: format!("us_{}", uuid::Uuid::new_v4().simple()),
        username,
        password_hash: password::hash(pw).await?,
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
))]
pub async fn sign_in(state: web::Data<AppState>, body: web::Json<Credentials>) -> Res {
    let Credentials { username, password } = body.into_inner();
    // A name that cannot exist still costs a hash, like a wrong password.
    let user = match validate::username(&username) {
        Ok(name) => repo::user_by_name(&state.db, &name).await.map_err(AuthError::from)?,
        Err(_) => None,
    };
    let ok = password::verify(password, user.as_ref().map(|u| u.password_hash.clone())).await?;
    let Some(user) = user.filter(|_| ok) else {
        state.metrics.logins_failed.inc();
        return Err(AuthError::InvalidCredentials.into());
    };
    let token = validate::new_token();
    let now = now_ms();
    let ttl_ms = i64::try_from(state.settings.auth.session_ttl_secs.saturating_mul(1000)).unwrap_or(i64::MAX);
    let expires_at = now.saturating_add(ttl_ms);
    let id = format!("se_{}", uuid::Uuid::new_v4().simple());
    repo::insert_session(&state.db, &id, &user.id, &validate::token_hash(&token), now, expires_at)
        .await
        .map_err(AuthError::from)?;
    Ok(HttpResponse::Created().json(SessionView {
        token,
        expires_at: to_time(expires_at),
        user: view(&state, &user).await?,
    }))
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

/// The signed-in account, with its storage use.
#[utoipa::path(get, path = "/api/v1/users/me", operation_id = "get_me", tag = "accounts", responses(
    (status = 200, body = UserView),
    (status = 401, description = "`unauthorized`", body = ErrorBody),
))]
pub async fn me(state: web::Data<AppState>, user: User) -> Res {
    let row = repo::user_by_id(&state.db, &user.id).await.map_err(AuthError::from)?.ok_or(AuthError::Unauthorized)?;
    Ok(HttpResponse::Ok().json(view(&state, &row).await?))
}

async fn view(state: &AppState, u: &repo::UserRow) -> Result<UserView, ApiError> {
    let used = crate::uploads::quota::used_bytes(&state.db, &u.id).await?;
    let quota = state.settings.auth.quota_bytes;
    Ok(UserView {
        user_id: u.id.clone(),
        username: u.username.clone(),
        created_at: to_time(u.created_at),
        quota_bytes: (quota > 0).then_some(quota),
        used_bytes: u64::try_from(used).unwrap_or(0),
    })
}
