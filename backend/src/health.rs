//! Liveness and readiness for load balancers and orchestrators.

use actix_web::{web, HttpResponse};
use serde::Serialize;

use crate::app::AppState;

#[derive(Serialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok`, `ready` or `not-ready`.
    pub status: &'static str,
    /// Per backing service: `ok`, or why not (readiness only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checks: Option<Checks>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Checks {
    pub database: String,
    pub tracker: String,
    pub storage: String,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "health", security(()), responses((status = 200, body = Health)))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok", checks: None })
}

/// SQL, the part tracker and storage all answer.
#[utoipa::path(get, path = "/readyz", tag = "health", security(()), responses(
    (status = 200, body = Health), (status = 503, description = "A backing service is down", body = Health)
))]
pub async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let (db, tracker, storage) =
        tokio::join!(sqlx::query("SELECT 1").execute(&state.db), state.tracker.ping(), state.store.ping(),);
    let verdict = |ok: bool, e: String| if ok { "ok".to_owned() } else { e };
    let all_ok = db.is_ok() && tracker.is_ok() && storage.is_ok();
    let checks = Checks {
        database: verdict(db.is_ok(), db.err().map(|e| e.to_string()).unwrap_or_default()),
        tracker: verdict(tracker.is_ok(), tracker.err().map(|e| e.to_string()).unwrap_or_default()),
        storage: verdict(storage.is_ok(), storage.err().map(|e| e.to_string()).unwrap_or_default()),
    };
    if all_ok {
        HttpResponse::Ok().json(Health { status: "ready", checks: Some(checks) })
    } else {
        tracing::warn!(database = %checks.database, tracker = %checks.tracker, storage = %checks.storage, "not ready");
        HttpResponse::ServiceUnavailable().json(Health { status: "not-ready", checks: Some(checks) })
    }
}
