//! Building the application from settings: `Application::build(settings)` binds, connects
//! to SQL, the tracker and storage, and returns a server ready to run. Tests build it on
//! port 0 exactly as `shardrop serve` does.

use std::net::TcpListener;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{web, App, HttpServer};
use anyhow::Context;

use crate::config::{Settings, StorageKind, TrackerKind};
use crate::db;
use crate::metrics::Metrics;
use crate::state::AppState;
use crate::storage::local::LocalStore;
use crate::storage::local_http::BodyTimeout;
use crate::storage::s3::S3Store;
use crate::storage::Store;
use crate::tracker::memory::MemoryTracker;
use crate::tracker::redis::RedisTracker;
use crate::tracker::Tracker;

pub struct Application {
    port: u16,
    server: Server,
    state: web::Data<AppState>,
}

impl Application {
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let listener =
            TcpListener::bind(&settings.listen).with_context(|| format!("cannot listen on {}", settings.listen))?;
        let addr = listener.local_addr()?;
        let public_url = match settings.public_url.trim_end_matches('/') {
            "" => format!("http://{addr}"),
            url => url.to_owned(),
        };
        // The page's policy names the origin the local store signs part URLs for.
        let page = crate::page::Page::new(&settings, &public_url);
        std::fs::create_dir_all(&settings.data_dir)
            .with_context(|| format!("cannot create data dir {}", settings.data_dir.display()))?;
        let db = db::connect(&settings.database_url(), settings.database.max_connections)
            .await
            .context("cannot open the database")?;
        let tracker: Arc<dyn Tracker> = match settings.tracker.kind {
            TrackerKind::Memory => Arc::new(MemoryTracker::default()),
            TrackerKind::Redis => Arc::new(RedisTracker::new(&settings.tracker.redis_url, &settings.tracker.prefix)?),
        };
        let mut local = None;
        let store: Arc<dyn Store> = match settings.storage.kind {
            StorageKind::Local => {
                let secret = local_secret(&settings)?;
                let store = Arc::new(LocalStore::new(settings.data_dir.join("objects"), secret, public_url)?);
                local = Some(web::Data::from(store.clone()));
                store
            }
            StorageKind::S3 => {
                Arc::new(S3Store::new(&settings.storage.s3, Duration::from_secs(settings.uploads.ttl_secs)))
            }
        };
        store.prepare().await.context("storage is not ready")?;
        let state = web::Data::new(AppState {
            settings: Arc::new(settings.clone()),
            db,
            store,
            tracker,
            metrics: Arc::new(Metrics::new()?),
            replica: format!("{}-{}", std::process::id(), addr.port()),
        });
        crate::files::verify::spawn_worker(state.clone());
        if settings.reaper.enabled {
            crate::uploads::reaper::spawn(state.clone(), Duration::from_secs(settings.reaper.interval_secs.max(1)));
        }
        let app_state = state.clone();
        let metrics = web::Data::from(state.metrics.clone());
        // The last `/readyz` verdict, so a flood of probes does not reach the backing services.
        let readiness = web::Data::new(crate::health::Readiness::default());
        // The bound on concurrent password hashing (`auth.hash_concurrency`, `auth.hash_queue`).
        let hash_gate = web::Data::new(crate::auth::gate::HashGate::new(&settings.auth));
        let json_limit = settings.http.json_limit;
        let sign_limit = crate::limits::sign_limit(&settings.http)?;
        let auth_limit = crate::limits::auth_limit(&settings.http)?;
        let http = settings.http.clone();
        let body_timeout = web::Data::new(BodyTimeout::from_secs(settings.storage.local.body_timeout_secs));
        let mut server = HttpServer::new(move || {
            // Handlers that need one part take just that part (`/metrics`, the request counter).
            let mut app = App::new()
                .app_data(app_state.clone())
                .app_data(metrics.clone())
                .app_data(readiness.clone())
                .app_data(hash_gate.clone());
            if let Some(local) = &local {
                app = app.app_data(local.clone()).app_data(body_timeout.clone());
            }
            let routes = crate::routes::Routes {
                json_limit,
                local_store: local.is_some(),
                page: page.as_ref(),
                sign_limit: sign_limit.as_ref(),
                auth_limit: auth_limit.as_ref(),
            };
            app.wrap(crate::limits::cors(&http)).configure(|cfg| crate::routes::configure(cfg, &routes))
        })
        .listen(listener)?;
        if settings.http.workers > 0 {
            server = server.workers(settings.http.workers);
        }
        Ok(Self { port: addr.port(), server: server.run(), state })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The shared state, for tests that look behind the API (metrics, the reaper).
    pub fn state(&self) -> web::Data<AppState> {
        self.state.clone()
    }

    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.await
    }
}

/// The local store's URL-signing key: configured, or made once and kept in the data dir.
fn local_secret(settings: &Settings) -> anyhow::Result<Vec<u8>> {
    if !settings.storage.local.secret.is_empty() {
        return Ok(settings.storage.local.secret.as_bytes().to_vec());
    }
    let path = settings.data_dir.join("local-store.key");
    if let Ok(existing) = std::fs::read(&path) {
        if existing.len() >= 32 {
            return Ok(existing);
        }
    }
    let key: [u8; 32] = rand::random();
    write_private(&path, &key)?;
    Ok(key.to_vec())
}

fn write_private(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    use std::io::Write;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    opts.open(path)?.write_all(bytes)?;
    Ok(())
}
