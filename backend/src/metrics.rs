//! Prometheus metrics: requests by route and status, and the upload life cycle.
//!
//! Each application instance has its own registry (no process-global state), so several
//! instances in one test process count separately.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::Method;
use actix_web::middleware::Next;
use actix_web::{web, HttpResponse};
use prometheus::{Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, Opts, Registry, TextEncoder};

/// Seconds: the histogram buckets of request latency and of completion steps alike.
const LATENCY_BUCKETS: [f64; 12] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];

pub struct Metrics {
    registry: Registry,
    pub requests: IntCounterVec,
    pub latency: HistogramVec,
    /// Time of each step of composing a file (`claim`, `check`, `compose`, `record`): where
    /// completion's latency goes, next to the storage's own Complete.
    pub completion_steps: HistogramVec,
    pub uploads_started: IntCounter,
    pub uploads_completed: IntCounter,
    pub uploads_instant: IntCounter,
    pub challenges_failed: IntCounter,
    /// Claims of stored content that got no challenge, by why (`locked`, `rate`, `changed`).
    pub dedup_refusals: IntCounterVec,
    /// Stored objects that no upload or file accounted for, deleted by the orphan sweep.
    pub orphans_deleted: IntCounter,
    pub logins_failed: IntCounter,
    pub quota_refusals: IntCounter,
    pub uploads_aborted: IntCounterVec,
    /// CompleteMultipartUpload (or single-PUT check) calls that succeeded: one per upload.
    pub compositions: IntCounter,
    pub parts_signed: IntCounter,
    pub parts_reported: IntCounter,
    pub bytes_completed: IntCounter,
    /// Readiness probes of the backing services actually run (`/readyz` answers from a
    /// cache in between).
    pub readiness_probes: IntCounter,
}

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let counter = |name: &str, help: &str| -> Result<IntCounter, prometheus::Error> {
            let c = IntCounter::new(name, help)?;
            registry.register(Box::new(c.clone()))?;
            Ok(c)
        };
        let requests = IntCounterVec::new(
            Opts::new("shardrop_http_requests_total", "HTTP requests by route, method and status"),
            &["route", "method", "status"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        let latency = HistogramVec::new(
            HistogramOpts::new("shardrop_http_request_duration_seconds", "HTTP request latency by route")
                .buckets(LATENCY_BUCKETS.to_vec()),
            &["route"],
        )?;
        registry.register(Box::new(latency.clone()))?;
        let completion_steps = HistogramVec::new(
            HistogramOpts::new("shardrop_completion_step_seconds", "Time of each step of composing a file")
                .buckets(LATENCY_BUCKETS.to_vec()),
            &["step"],
        )?;
        registry.register(Box::new(completion_steps.clone()))?;
        let uploads_aborted = IntCounterVec::new(
            Opts::new("shardrop_uploads_aborted_total", "Uploads aborted, by who asked"),
            &["reason"],
        )?;
        registry.register(Box::new(uploads_aborted.clone()))?;
        let dedup_refusals = IntCounterVec::new(
            Opts::new("shardrop_dedup_refusals_total", "Claims of stored content that got no challenge, by why"),
            &["reason"],
        )?;
        registry.register(Box::new(dedup_refusals.clone()))?;
        Ok(Self {
            dedup_refusals,
            orphans_deleted: counter("shardrop_orphans_deleted_total", "Stored objects no row accounted for, deleted")?,
            requests,
            latency,
            completion_steps,
            uploads_aborted,
            uploads_started: counter("shardrop_uploads_started_total", "Uploads started")?,
            uploads_completed: counter("shardrop_uploads_completed_total", "Uploads completed into a file")?,
            uploads_instant: counter("shardrop_uploads_instant_total", "Uploads answered by content already stored")?,
            challenges_failed: counter(
                "shardrop_challenges_failed_total",
                "Claims of stored content whose proof of possession was wrong",
            )?,
            logins_failed: counter(
                "shardrop_logins_failed_total",
                "Sign-ins refused for a wrong username or password",
            )?,
            quota_refusals: counter(
                "shardrop_quota_refusals_total",
                "Uploads refused or aborted for passing the quota",
            )?,
            compositions: counter("shardrop_compositions_total", "Objects composed in storage by this replica")?,
            parts_signed: counter("shardrop_parts_signed_total", "Part URLs signed")?,
            parts_reported: counter("shardrop_parts_reported_total", "Part reports accepted")?,
            bytes_completed: counter("shardrop_bytes_completed_total", "Bytes in completed uploads")?,
            readiness_probes: counter(
                "shardrop_readiness_probes_total",
                "Probes of SQL, the tracker and storage run for /readyz (answers are cached between them)",
            )?,
            registry,
        })
    }

    /// Records a completion step that began at `since`; answers now, where the next begins.
    pub fn step(&self, step: &str, since: Instant) -> Instant {
        let now = Instant::now();
        self.completion_steps.with_label_values(&[step]).observe(now.duration_since(since).as_secs_f64());
        now
    }

    pub fn render(&self) -> Result<String, prometheus::Error> {
        let mut buf = Vec::new();
        TextEncoder::new().encode(&self.registry.gather(), &mut buf)?;
        Ok(String::from_utf8_lossy(&buf).into_owned())
    }
}

/// The `route` label of a request that matched no route.
pub const UNMATCHED_ROUTE: &str = "unmatched";
/// The `method` label of a request whose method is none of [`KNOWN_METHODS`].
pub const OTHER_METHOD: &str = "other";
/// The methods that get a label of their own: HTTP's standard ones that this API or a
/// browser sends. Anything else (`curl -X M1`) shares [`OTHER_METHOD`].
static KNOWN_METHODS: [Method; 7] =
    [Method::GET, Method::HEAD, Method::POST, Method::PUT, Method::PATCH, Method::DELETE, Method::OPTIONS];

/// The `method` label of a request: from a fixed set, so a client cannot mint series.
pub fn method_label(method: &Method) -> &'static str {
    KNOWN_METHODS.iter().find(|m| *m == method).map_or(OTHER_METHOD, Method::as_str)
}

/// Middleware: counts every request under its route pattern (not its raw path, which
/// would give one series per upload id) and a method from a fixed set. Every label comes
/// from a set fixed by the code, never from the client: each new series costs memory for
/// the life of the process.
pub async fn track(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let metrics = req.app_data::<web::Data<Metrics>>().cloned();
    let method = method_label(req.method());
    let res = next.call(req).await?;
    if let Some(m) = metrics {
        let route = res.request().match_pattern().unwrap_or_else(|| UNMATCHED_ROUTE.into());
        let status = res.status().as_u16().to_string();
        m.requests.with_label_values(&[route.as_str(), method, status.as_str()]).inc();
        m.latency.with_label_values(&[route.as_str()]).observe(started.elapsed().as_secs_f64());
    }
    Ok(res)
}

/// `GET /metrics` in Prometheus' text format.
pub async fn render(metrics: web::Data<Metrics>) -> HttpResponse {
    match metrics.render() {
        Ok(text) => HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(text),
        Err(e) => HttpResponse::InternalServerError().body(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn methods_outside_the_fixed_set_share_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        assert_eq!(method_label(&Method::OPTIONS), "OPTIONS");
        for made_up in ["M1", "get", "PROPFIND", "CONNECT", "TRACE"] {
            assert_eq!(method_label(&Method::from_bytes(made_up.as_bytes()).unwrap()), OTHER_METHOD, "{made_up}");
        }
    }
}
