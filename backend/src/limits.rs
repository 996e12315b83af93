//! Limits on what one client may ask of the API: a rate limit per client on the routes that
//! cost the most (signing part URLs) or invite guessing (sign-up and login), and which other
//! origins' pages may call the API (CORS).
//!
//! The rate limit is a token bucket per client IP (governor, through actix-governor). Behind
//! a proxy every request comes from the proxy's address, so `http.client_ip_header` names a
//! header the proxy sets to the real client (`X-Real-IP`, or the last hop of
//! `X-Forwarded-For`); only set it behind a proxy that overwrites that header.

use std::net::IpAddr;
use std::time::Duration;

use actix_cors::Cors;
use actix_governor::governor::clock::{Clock, DefaultClock, QuantaInstant};
use actix_governor::governor::middleware::NoOpMiddleware;
use actix_governor::governor::NotUntil;
use actix_governor::{GovernorConfig, GovernorConfigBuilder, KeyExtractor, SimpleKeyExtractionError};
use actix_web::dev::ServiceRequest;
use actix_web::http::header::{HeaderName, RETRY_AFTER};
use actix_web::{HttpResponse, HttpResponseBuilder};

use crate::config::HttpSettings;
use crate::error::{Code, ErrorBody};

/// A rate limit's shared state: clone it into every worker, so they share the buckets.
pub type RateLimit = GovernorConfig<ClientKey, NoOpMiddleware<QuantaInstant>>;

/// Keys requests by client IP: from `header` when set and readable, else the peer address.
#[derive(Clone, Debug)]
pub struct ClientKey {
    header: Option<HeaderName>,
}

impl ClientKey {
    fn client(&self, req: &ServiceRequest) -> Option<IpAddr> {
        let from_header = self.header.as_ref().and_then(|h| {
            // X-Forwarded-For lists every hop; the last was added by our own proxy.
            req.headers().get(h)?.to_str().ok()?.rsplit(',').next()?.trim().parse().ok()
        });
        // An IPv6 client usually holds a whole /64: one bucket for it, not one per address.
        from_header.or_else(|| req.peer_addr().map(|a| a.ip())).map(|ip| match ip {
            IpAddr::V6(v6) => {
                let mut octets = v6.octets();
                octets[8..].fill(0);
                IpAddr::V6(octets.into())
            }
            v4 => v4,
        })
    }
}

impl KeyExtractor for ClientKey {
    type Key = IpAddr;
    type KeyExtractionError = SimpleKeyExtractionError<&'static str>;

    fn extract(&self, req: &ServiceRequest) -> Result<IpAddr, Self::KeyExtractionError> {
        self.client(req).ok_or_else(|| SimpleKeyExtractionError::new("no client address"))
    }

    fn exceed_rate_limit_response(
        &self,
        negative: &NotUntil<QuantaInstant>,
        mut response: HttpResponseBuilder,
    ) -> HttpResponse {
        let wait = negative.wait_time_from(DefaultClock::default().now());
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        response.insert_header((RETRY_AFTER, secs.to_string())).json(ErrorBody {
            code: Code::RateLimited.into(),
            message: format!("too many requests from this client; retry in {secs} s"),
        })
    }
}

/// The rate limit of the signing route, or `None` when `http.sign_rate` is 0.
pub fn sign_limit(http: &HttpSettings) -> anyhow::Result<Option<RateLimit>> {
    if http.sign_rate == 0 {
        return Ok(None);
    }
    let period = Duration::from_secs(1) / http.sign_rate;
    per_client(http, period, http.sign_burst).map(Some)
}

/// The rate limit shared by sign-up and login, or `None` when `http.auth_rate_per_minute` is 0.
pub fn auth_limit(http: &HttpSettings) -> anyhow::Result<Option<RateLimit>> {
    if http.auth_rate_per_minute == 0 {
        return Ok(None);
    }
    let period = Duration::from_secs(60) / http.auth_rate_per_minute;
    per_client(http, period, http.auth_burst).map(Some)
}

/// A token bucket per client that gains one request every `period`, holding `burst`.
fn per_client(http: &HttpSettings, period: Duration, burst: u32) -> anyhow::Result<RateLimit> {
    let header = match http.client_ip_header.as_str() {
        "" => None,
        name => Some(HeaderName::try_from(name).map_err(|e| anyhow::anyhow!("http.client_ip_header: {e}"))?),
    };
    GovernorConfigBuilder::default()
        .key_extractor(ClientKey { header })
        .period(period.max(Duration::from_nanos(1)))
        .burst_size(burst.max(1))
        .finish()
        .ok_or_else(|| anyhow::anyhow!("a rate limit's rate and burst must be > 0"))
}

/// CORS for the API: only the configured origins (none: same-origin pages only).
pub fn cors(http: &HttpSettings) -> Cors {
    // Without a grant the browser keeps another origin's page from reading the answer, so
    // a mismatched origin is not an error here: same-origin pages send `Origin` on POSTs too.
    let mut cors = Cors::default()
        .block_on_origin_mismatch(false)
        .allowed_methods(["GET", "POST", "PUT", "PATCH", "DELETE"])
        .allowed_headers(["content-type", "authorization"])
        .expose_headers(["retry-after"])
        .max_age(3600);
    for origin in &http.cors_origins {
        cors = cors.allowed_origin(origin);
    }
    cors
}
