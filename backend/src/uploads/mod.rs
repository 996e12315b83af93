//! Uploads: from "I have a file" to a stored, composed object.
//!
//! The backend plans the parts, starts the storage's multipart upload, signs part URLs in
//! batches, counts reported parts in the tracker, and composes the object exactly once when
//! the set is whole, after checking it against `ListParts` (storage is the source of
//! truth). It never carries file bytes. Any replica may serve any step: all shared state
//! is in SQL, the tracker, and storage.

//!
//! One file per operation, each with its handler and its flow: `create`, `list`, `get`, `patch`
//! (the whole-file SHA-1), `prove` (the answer to a challenge), `sign`, `report`,
//! `complete`, `abort`. What they share: `model` (loading an upload, its view), `state`
//! (where an upload stands), `instant` (linking stored content), `dedup` (who may link
//! what), `repo` (SQL), `error`. The reaper finishes what clients leave behind.
//! Order of writes in every flow is chosen so a crash between two steps leaves nothing
//! that the next request or the reaper cannot finish: storage first, then SQL, then the
//! tracker (which can always be rebuilt from storage).

use actix_governor::Governor;
use actix_web::web::{self, delete, get, patch, post, put, resource};

pub mod abort;
pub mod complete;
pub mod create;
pub mod dedup;
pub mod error;
pub mod get;
mod instant;
pub mod list;
mod model;
pub mod patch;
pub mod prove;
pub mod reaper;
pub mod repo;
pub mod report;
pub mod sign;
pub mod state;
pub(crate) mod validate;

pub use abort::abort_claimed;
pub use complete::{finish, Finish};

pub use error::UploadError;

// The wire types are the protocol module's: the engine compiles against the same ones.
pub use shardrop_engine::protocol::{
    Challenge, CompleteRequest, CreateUpload, PatchUpload, ProofRequest, ReportAnswer, ReportPart, SignPart,
    SignRequest, SignResponse, SignedPart, UploadList, UploadState, UploadSummary, UploadView,
};

/// The `/uploads` routes, under the API's scope. `limit` is the client's signing bucket,
/// shared by signing and proofs (each reads up to 1 MiB from storage).
pub fn configure(cfg: &mut web::ServiceConfig, limit: Option<&crate::limits::RateLimit>) {
    let limited = |route: actix_web::Route| match limit {
        Some(limit) => route.wrap(Governor::new(limit)),
        None => route,
    };
    cfg.service(resource("/uploads").route(get().to(list::handler)).route(post().to(create::handler)))
        .service(
            resource("/uploads/{upload_id}")
                .route(get().to(get::handler))
                .route(patch().to(patch::handler))
                .route(delete().to(abort::handler)),
        )
        .service(resource("/uploads/{upload_id}/proof").route(limited(post().to(prove::handler))))
        // Before `parts/{number}`: actix matches in order, and that resource (PUT only)
        // would take `parts/sign` and answer POST with 405, so every signing test would fail.
        .service(resource("/uploads/{upload_id}/parts/sign").route(limited(post().to(sign::handler))))
        .service(resource("/uploads/{upload_id}/parts/{number}").route(put().to(report::handler)))
        .service(resource("/uploads/{upload_id}/complete").route(post().to(complete::handler)));
}
