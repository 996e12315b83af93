//! Shardrop's upload engine.
//!
//! The modules here are pure (no I/O, no `web-sys`) so that the backend and the browser
//! worker share one definition of the part plan and of the SHA-1 encodings, and so that
//! both run under a plain `cargo test`.

pub mod hashing;
pub mod plan;

pub use hashing::{Sha1B64, Sha1Hex};
pub use plan::{Plan, PlanError};
