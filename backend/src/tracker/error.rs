//! Tracker errors: the tracker is unreachable, or it answered something we cannot read.

use crate::error::ApiError;

#[derive(Debug, thiserror::Error)]
pub enum TrackerError {
    #[error("part tracker unavailable: {0}")]
    Unavailable(String),
    #[error("part tracker: {0}")]
    Other(String),
}

impl From<TrackerError> for ApiError {
    fn from(e: TrackerError) -> Self {
        match e {
            TrackerError::Unavailable(_) => ApiError::unavailable("part tracker unavailable", &e),
            TrackerError::Other(_) => ApiError::internal("part tracker error", &e),
        }
    }
}

impl From<redis::RedisError> for TrackerError {
    fn from(e: redis::RedisError) -> Self {
        if e.is_io_error() || e.is_connection_dropped() || e.is_connection_refusal() || e.is_timeout() {
            TrackerError::Unavailable(e.to_string())
        } else {
            TrackerError::Other(e.to_string())
        }
    }
}

impl From<deadpool_redis::PoolError> for TrackerError {
    fn from(e: deadpool_redis::PoolError) -> Self {
        TrackerError::Unavailable(e.to_string())
    }
}
