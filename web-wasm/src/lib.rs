//! Shardrop's upload engine.
//!
//! The top-level modules are pure (no I/O, no `web-sys`): the backend and the browser
//! worker share one definition of the part plan, the content probe and the SHA-1
//! encodings, and they all run under a plain `cargo test`. `web` (wasm32 only) is the
//! engine that runs in a dedicated Web Worker: it slices, hashes and uploads.

pub mod hashing;
pub mod plan;
pub mod probe;
pub mod progress;
pub mod protocol;
pub mod slots;

#[cfg(target_arch = "wasm32")]
mod web;

pub use hashing::{Md5B64, Sha1B64, Sha1Hex};
pub use plan::{Plan, PlanError};
