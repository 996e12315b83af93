//! Shardrop's control plane. See `docs/architecture.md` for how the pieces fit.

pub mod config;
pub mod error;
pub mod storage;
