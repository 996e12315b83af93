//! Shardrop's control plane: a stateless actix-web service that plans multipart uploads,
//! signs part URLs straight to S3-compatible storage, counts parts in a tracker, and
//! composes each object exactly once. See `docs/architecture.md`.

pub mod app;
pub mod auth;
pub mod config;
pub mod db;
pub mod error;
pub mod files;
pub mod health;
pub mod limits;
pub mod metrics;
pub mod page;
pub mod paging;
pub mod quota;
pub mod routes;
pub mod state;
pub mod storage;
pub mod tracker;
pub mod uploads;
