//! What can go wrong with accounts and sessions.

use actix_web::http::StatusCode;

use crate::error::{ApiError, Code};

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
    #[error("current_password is not this account's password")]
    WrongPassword,
    #[error("too many passwords are being checked at once; retry after Retry-After seconds")]
    Busy,
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
            AuthError::Unauthorized => (S::UNAUTHORIZED, Code::Unauthorized),
            AuthError::InvalidCredentials => (S::UNAUTHORIZED, Code::InvalidCredentials),
            AuthError::InvalidUsername(_) => (S::UNPROCESSABLE_ENTITY, Code::InvalidUsername),
            AuthError::InvalidPassword(_) => (S::UNPROCESSABLE_ENTITY, Code::InvalidPassword),
            AuthError::UsernameTaken => (S::CONFLICT, Code::UsernameTaken),
            // Not 401: the token is fine, and a client that reads 401 as "signed out" must not.
            AuthError::WrongPassword => (S::FORBIDDEN, Code::WrongPassword),
            AuthError::Busy => (S::SERVICE_UNAVAILABLE, Code::AuthBusy),
            AuthError::SignupClosed => (S::FORBIDDEN, Code::SignupClosed),
        };
        ApiError::new(status, code, e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use actix_web::body::MessageBody;
    use actix_web::ResponseError;

    use super::*;

    #[test]
    fn busy_is_a_503_with_retry_after() {
        let resp = ApiError::from(AuthError::Busy).error_response();
        assert_eq!(resp.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(resp.headers().get("retry-after").unwrap(), "1");
        let body = resp.into_body().try_into_bytes().unwrap();
        assert_eq!(
            &body[..],
            br#"{"code":"auth-busy","message":"too many passwords are being checked at once; retry after Retry-After seconds"}"#
        );
    }

    #[test]
    fn a_wrong_current_password_is_not_a_401() {
        let e = ApiError::from(AuthError::WrongPassword);
        assert_eq!((e.status, e.code), (StatusCode::FORBIDDEN, Code::WrongPassword));
    }
}
