//! What can go wrong with accounts and sessions.

use actix_web::http::StatusCode;

use crate::error::ApiError;

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("send a valid session token: Authorization: Bearer <token> (POST /api/v1/sessions gives one)")]
    Unauthorized,
    #[error("wrong username or password")]
    InvalidCredentials,
    #[error("username: {0}")]
    InvalidUsername(&'static str),
    #[error("password: {0}")]
    InvalidPassword(&'static str),
    #[error("that username is taken")]
    UsernameTaken,
    #[error("this server does not take sign-ups; ask its operator for an account")]
    SignupClosed,
    #[error("password hashing failed: {0}")]
    Hashing(String),
    #[error(transparent)]
    Db(#[from] sqlx::Error),
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        use StatusCode as S;
        let (status, code) = match e {
            AuthError::Db(inner) => return inner.into(),
            AuthError::Hashing(cause) => return ApiError::internal("password hashing", &cause),
            AuthError::Unauthorized => (S::UNAUTHORIZED, "unauthorized"),
            AuthError::InvalidCredentials => (S::UNAUTHORIZED, "invalid-credentials"),
            AuthError::InvalidUsername(_) => (S::UNPROCESSABLE_ENTITY, "invalid-username"),
            AuthError::InvalidPassword(_) => (S::UNPROCESSABLE_ENTITY, "invalid-password"),
            AuthError::UsernameTaken => (S::CONFLICT, "username-taken"),
            AuthError::SignupClosed => (S::FORBIDDEN, "signup-closed"),
        };
        ApiError::new(status, code, e.to_string())
    }
}
