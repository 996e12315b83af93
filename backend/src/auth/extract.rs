//! The caller, from `Authorization: Bearer <token>`: an actix extractor, so a handler that
//! takes a [`User`] cannot run for a request without a live session.

use std::future::Future;
use std::pin::Pin;

use actix_web::dev::Payload;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{web, FromRequest, HttpRequest};

use super::{repo, validate, AuthError};
use crate::db::now_ms;
use crate::error::ApiError;
use crate::state::AppState;

/// A signed-in user.
#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub username: String,
    /// The session's token hash (logout deletes that session).
    pub token_hash: String,
}

impl FromRequest for User {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = req
            .headers()
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(validate::bearer)
            .map(validate::token_hash);
        Box::pin(async move {
            let (Some(state), Some(token_hash)) = (state, token) else { return Err(AuthError::Unauthorized.into()) };
            match repo::session_user(&state.db, &token_hash, now_ms()).await {
                Ok(Some((id, username))) => Ok(User { id, username, token_hash }),
                Ok(None) => Err(AuthError::Unauthorized.into()),
                Err(e) => Err(e.into()),
            }
        })
    }
}
