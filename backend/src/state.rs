//! The shared state of the control plane. It depends only on the services it holds (never
//! on a domain module), so every domain can take it without an import circle; what one
//! route alone needs (the readiness cache, the password-hashing gate, the local store) is
//! registered with the app on its own, and its handler takes just that.

use std::sync::Arc;
use std::time::Duration;

use crate::config::Settings;
use crate::db::Db;
use crate::metrics::Metrics;
use crate::storage::Store;
use crate::tracker::Tracker;

/// What the flows share: settings, SQL, storage, the tracker and the metrics. Cheap to
/// clone; holds no per-upload state of its own.
pub struct AppState {
    pub settings: Arc<Settings>,
    pub db: Db,
    pub store: Arc<dyn Store>,
    pub tracker: Arc<dyn Tracker>,
    pub metrics: Arc<Metrics>,
    /// Names this replica in completion claims and logs.
    pub replica: String,
}

impl AppState {
    pub fn ttl(&self) -> Duration {
        Duration::from_secs(self.settings.uploads.ttl_secs)
    }
    pub fn ttl_ms(&self) -> i64 {
        i64::try_from(self.settings.uploads.ttl_secs.saturating_mul(1000)).unwrap_or(i64::MAX)
    }
}
