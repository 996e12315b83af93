//! Liveness and readiness for load balancers and orchestrators.
//!
//! Readiness probes SQL, the tracker and storage (the local store writes a file to do so),
//! and anyone may ask for it. So the verdict is cached for [`READY_CACHE`]: a flood of
//! `/readyz` costs the backing services one probe per window, and callers that arrive
//! while a probe runs wait for it rather than start their own. The answer says only `ok`
//! or `down` per service; why a service is down goes to the logs, never to the caller.

use std::future::Future;
use std::time::{Duration, Instant};

use actix_web::{web, HttpResponse};
use serde::Serialize;
use tokio::sync::Mutex;

use crate::state::AppState;

/// How long one probe's verdict answers `/readyz`: shorter than any orchestrator's probe
/// period worth having (Kubernetes' default is 10 s), long enough that a flood costs nothing.
pub const READY_CACHE: Duration = Duration::from_secs(5);
/// A service that has not answered by then counts as down (a hung connection must not
/// hang readiness, nor every caller queued behind the probe).
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Serialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok`, `ready` or `not-ready`.
    pub status: &'static str,
    /// Per backing service (readiness only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checks: Option<Checks>,
}

#[derive(Serialize, utoipa::ToSchema)]
pub struct Checks {
    pub database: Check,
    pub tracker: Check,
    pub storage: Check,
}

/// A backing service's verdict. Why one is down is in the server's logs only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Check {
    Ok,
    Down,
}

impl Check {
    fn of(up: bool) -> Self {
        if up {
            Check::Ok
        } else {
            Check::Down
        }
    }
}

/// The last readiness verdict and when it was probed; one per application.
#[derive(Debug, Default)]
pub struct Readiness {
    last: Mutex<Option<(Instant, Verdict)>>,
}

#[derive(Debug, Clone, Copy)]
struct Verdict {
    database: bool,
    tracker: bool,
    storage: bool,
}

impl Readiness {
    /// The cached verdict, or a fresh probe once it is older than [`READY_CACHE`]. The lock
    /// is held across the probe on purpose: concurrent callers share one probe.
    async fn verdict(&self, state: &AppState) -> Verdict {
        let mut last = self.last.lock().await;
        if let Some((at, verdict)) = *last {
            if at.elapsed() < READY_CACHE {
                return verdict;
            }
        }
        let verdict = probe(state).await;
        *last = Some((Instant::now(), verdict));
        verdict
    }
}

async fn probe(state: &AppState) -> Verdict {
    state.metrics.readiness_probes.inc();
    let (database, tracker, storage) = tokio::join!(
        check("database", sqlx::query("SELECT 1").execute(&state.db)),
        check("tracker", state.tracker.ping()),
        check("storage", state.store.ping()),
    );
    Verdict { database, tracker, storage }
}

/// Whether `ping` succeeded in time; why not is logged here and nowhere else.
async fn check<T, E: std::fmt::Display>(service: &'static str, ping: impl Future<Output = Result<T, E>>) -> bool {
    match tokio::time::timeout(PROBE_TIMEOUT, ping).await {
        Ok(Ok(_)) => true,
        Ok(Err(e)) => {
            tracing::warn!(service, error = %e, "not ready: a backing service failed its probe");
            false
        }
        Err(_) => {
            tracing::warn!(service, timeout = ?PROBE_TIMEOUT, "not ready: a backing service did not answer its probe");
            false
        }
    }
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "health", security(()), responses((status = 200, body = Health)))]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok", checks: None })
}

/// SQL, the part tracker and storage all answer. Probed at most once per 5 seconds; the
/// answer is cached meanwhile.
#[utoipa::path(get, path = "/readyz", tag = "health", security(()), responses(
    (status = 200, body = Health), (status = 503, description = "A backing service is down (why: in the server's logs)", body = Health)
))]
pub async fn readyz(state: web::Data<AppState>, readiness: web::Data<Readiness>) -> HttpResponse {
    let v = readiness.verdict(&state).await;
    let checks =
        Checks { database: Check::of(v.database), tracker: Check::of(v.tracker), storage: Check::of(v.storage) };
    if v.database && v.tracker && v.storage {
        HttpResponse::Ok().json(Health { status: "ready", checks: Some(checks) })
    } else {
        HttpResponse::ServiceUnavailable().json(Health { status: "not-ready", checks: Some(checks) })
    }
}
