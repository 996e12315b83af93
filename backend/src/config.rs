//! Configuration: defaults in code, then an optional TOML file, then environment variables.
//!
//! `SHARDROP_LISTEN` and `SHARDROP_DATA_DIR` are the two everyday knobs; every other field
//! is reachable as `SHARDROP__SECTION__KEY` (for example `SHARDROP__STORAGE__KIND=s3`).
//! Secrets may also come from files (`secret_access_key_file`), so they need not sit in the
//! environment. `shardrop.example.toml` at the repo root documents every field.
//!
//! Over 400 lines on purpose: one settings tree, each field with its comment and default
//! in one place, held equal to `shardrop.example.toml` by a test.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Serialized, Toml};
use figment::Figment;
use serde::{Deserialize, Serialize};

const MIB: u64 = 1024 * 1024;

/// Everything the server reads at start-up.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Settings {
    /// Address to listen on (`SHARDROP_LISTEN`).
    pub listen: String,
    /// Folder for the embedded database, the local object store and its signing key
    /// (`SHARDROP_DATA_DIR`).
    pub data_dir: PathBuf,
    /// The origin clients reach this server at, used in URLs the local store signs.
    /// Empty: `http://` + the bound address.
    pub public_url: String,
    /// Folder served at `/` instead of the page built into the binary (for developing the
    /// page, or serving another app). Empty: the built-in page (none when the binary was
    /// built without `www/dist`).
    pub web_dir: String,
    /// Serve a page at `/` at all (the built-in one, or `web_dir`'s). Off: the API only.
    pub serve_page: bool,
    /// Origins the page may also send requests to, besides this server and the storage
    /// (its Content-Security-Policy's `connect-src`): for an app in `web_dir` that calls
    /// another service. A list, like `http.cors_origins`.
    pub page_connect_src: Vec<String>,
    pub database: DatabaseSettings,
    pub tracker: TrackerSettings,
    pub storage: StorageSettings,
    pub uploads: UploadSettings,
    pub reaper: ReaperSettings,
    pub http: HttpSettings,
    pub auth: AuthSettings,
    pub dedup: DedupSettings,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseSettings {
    /// `sqlite://path` or `postgres://…`. Empty: SQLite at `<data_dir>/shardrop.db`.
    pub url: String,
    /// Read the URL from this file instead (it may hold a password).
    pub url_file: Option<PathBuf>,
    /// Connections in the pool of this replica.
    pub max_connections: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrackerKind {
    /// In this process only: right for one replica, wrong for several.
    Memory,
    /// Shared by every replica.
    Redis,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrackerSettings {
    pub kind: TrackerKind,
    /// `redis://host:port/db`.
    pub redis_url: String,
    /// Prefix of every Redis key, so several deployments can share one Redis.
    pub prefix: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StorageKind {
    /// Files under `<data_dir>/objects`, parts PUT to this server at signed URLs.
    Local,
    /// Any S3-compatible server.
    S3,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StorageSettings {
    pub kind: StorageKind,
    pub local: LocalStoreSettings,
    pub s3: S3Settings,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LocalStoreSettings {
    /// HMAC key for part and download URLs. Empty: a random key kept in `<data_dir>`.
    pub secret: String,
    pub secret_file: Option<PathBuf>,
    /// Longest wait for the next bytes of a part PUT's body, in seconds; past it the PUT is
    /// answered `408 body-timeout`, its connection closed and its bytes dropped, so a
    /// stalled sender holds no socket or temp file for long. 0: wait for ever.
    pub body_timeout_secs: u64,
}

/// A minute, as nginx's `client_body_timeout`: an honest browser sends a part's bytes
/// continuously, and even a stalled mobile link resumes well inside it, while a slow-loris
/// sender is cut off after a minute of silence (its client then retries the part).
fn default_body_timeout_secs() -> u64 {
    60
}

impl Default for LocalStoreSettings {
    fn default() -> Self {
        Self { secret: String::new(), secret_file: None, body_timeout_secs: default_body_timeout_secs() }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct S3Settings {
    /// `http(s)://host:port` of the S3 API, as browsers must reach it (URLs are signed for it).
    pub endpoint: String,
    /// The region the server signs with (Garage: its `s3_region`).
    pub region: String,
    pub bucket: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub secret_access_key_file: Option<PathBuf>,
    /// `https://endpoint/bucket/key` rather than `https://bucket.endpoint/key`; most
    /// self-hosted servers want path style.
    pub path_style: bool,
    /// Prefix of every object key, so several deployments (or tests) can share a bucket.
    pub prefix: String,
    /// Origins allowed to PUT parts from a browser; written into the bucket's CORS rule.
    pub cors_origins: Vec<String>,
    /// Write the bucket's CORS and lifecycle rules at start-up.
    pub configure_bucket: bool,
    /// Which part digest the server is trusted to enforce; `auto` tests it at start-up.
    pub part_check: PartCheckSetting,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PartCheckSetting {
    /// Send the server a part with a wrong digest at start-up and see what it refuses.
    Auto,
    Sha1,
    Md5,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct UploadSettings {
    /// Target part size in bytes; grown for files that would need more than 10,000 parts.
    pub part_size: u64,
    /// Largest file accepted, in bytes.
    pub max_file_size: u64,
    /// An upload with no activity for this long is aborted by the reaper.
    pub ttl_secs: u64,
    /// Lifetime of a presigned part URL; clients sign in batches shortly before use.
    pub sign_ttl_secs: u64,
    /// Lifetime of a presigned download URL.
    pub download_ttl_secs: u64,
    /// Most parts signed by one request.
    pub max_sign_batch: usize,
    /// How long a replica may hold an upload's completion; if it dies meanwhile, another
    /// replica takes the completion over after this long.
    pub completion_lease_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthSettings {
    /// Anyone may create an account (`POST /api/v1/users`). Off: accounts are made with
    /// `shardrop user-add NAME` on the server, and sign-up answers `403 signup-closed`.
    pub open_signup: bool,
    /// How long a session token (from `POST /api/v1/sessions`) stays valid.
    pub session_ttl_secs: u64,
    /// Bytes each user may store, counting uploads in progress; 0: no limit.
    pub quota_bytes: u64,
    /// Password hashes (sign-up, login, password change) run at once by this replica; each
    /// holds 19 MiB and a core for tens of milliseconds. 0: one per core.
    pub hash_concurrency: usize,
    /// Requests that may wait for one of those; past them the answer is `503 auth-busy`
    /// with `Retry-After`.
    pub hash_queue: usize,
}

/// 64 waiters cost a few KiB (a hash's memory is taken only when it runs) and, on two cores
/// at ~50 ms a hash, wait at most ~1.6 s: a rush of honest logins (everyone back at 9:00)
/// is served late rather than refused, while a flood is refused at once.
fn default_hash_queue() -> usize {
    64
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DedupScope {
    /// An upload is linked only to content its own user already stores: nobody learns
    /// anything about other users' files.
    User,
    /// Also to other users' verified content, after a proof of possession. Saves their
    /// bytes, but confirms to a claimant that someone stores a file they can name by hash
    /// (see docs/security.md).
    All,
}

/// Instant upload ("deduplication"): linking an upload to content already stored.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DedupSettings {
    /// Whose stored content an upload may be linked to.
    pub scope: DedupScope,
    /// Looks at other users' content (a claim or a probe of content the user does not hold,
    /// hit or miss) one user may make per hour; past it, a claim gets no challenge and no
    /// probe hint, and the file is sent as usual. 0: none at all.
    pub claims_per_hour: u32,
    /// How long a drawn challenge stays the same for the same user and content: asking
    /// again meanwhile gets the very same byte range.
    pub challenge_ttl_secs: u64,
    /// After a failed proof, how long the same user gets no challenge for that content.
    pub fail_lockout_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReaperSettings {
    pub enabled: bool,
    /// Seconds between sweeps (each replica sweeps; claims in SQL keep it exactly-once).
    pub interval_secs: u64,
    /// Longest one sweep works through a backlog before it yields to the next tick.
    pub max_sweep_secs: u64,
    /// Seconds between sweeps for orphans: stored objects under the upload prefix that no
    /// upload or file accounts for, older than the upload TTL, are deleted. 0: never.
    pub orphan_interval_secs: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpSettings {
    /// Largest JSON request body, in bytes.
    pub json_limit: usize,
    /// Worker threads; 0 means one per core.
    pub workers: usize,
    /// Origins whose pages may call the API (CORS); empty: pages of this server only.
    pub cors_origins: Vec<String>,
    /// Sign requests per second one client may make (a token bucket; 0: no limit).
    pub sign_rate: u32,
    /// How many sign requests a client may make at once before the rate applies.
    pub sign_burst: u32,
    /// Header that carries the client's address when a proxy is in front (`x-real-ip`,
    /// or `x-forwarded-for`, whose last hop is used); empty: the peer address. Set it only
    /// behind a proxy that overwrites the header.
    pub client_ip_header: String,
    /// Sign-ups, logins and password changes one client may make per minute (a token
    /// bucket shared by those routes, against password guessing; 0: no limit).
    pub auth_rate_per_minute: u32,
    /// How many sign-ups and logins a client may make at once before the rate applies.
    pub auth_burst: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            listen: "127.0.0.1:8080".into(),
            data_dir: PathBuf::from("./data"),
            public_url: String::new(),
            web_dir: String::new(),
            serve_page: true,
            page_connect_src: Vec::new(),
            database: DatabaseSettings::default(),
            tracker: TrackerSettings::default(),
            storage: StorageSettings::default(),
            uploads: UploadSettings::default(),
            reaper: ReaperSettings::default(),
            http: HttpSettings::default(),
            auth: AuthSettings::default(),
            dedup: DedupSettings::default(),
        }
    }
}

impl Default for DatabaseSettings {
    fn default() -> Self {
        Self { url: String::new(), url_file: None, max_connections: 16 }
    }
}

impl Default for TrackerSettings {
    fn default() -> Self {
        Self { kind: TrackerKind::Memory, redis_url: "redis://127.0.0.1:6379".into(), prefix: "shardrop".into() }
    }
}

impl Default for StorageSettings {
    fn default() -> Self {
        Self { kind: StorageKind::Local, local: LocalStoreSettings::default(), s3: S3Settings::default() }
    }
}

impl Default for S3Settings {
    fn default() -> Self {
        Self {
            endpoint: "http://127.0.0.1:3900".into(),
            region: "garage".into(),
            bucket: "shardrop".into(),
            access_key_id: String::new(),
            secret_access_key: String::new(),
            secret_access_key_file: None,
            path_style: true,
            prefix: String::new(),
            cors_origins: vec!["http://127.0.0.1:8080".into(), "http://localhost:8080".into()],
            configure_bucket: true,
            part_check: PartCheckSetting::Auto,
        }
    }
}

impl Default for UploadSettings {
    fn default() -> Self {
        Self {
            part_size: shardrop_engine::plan::DEFAULT_PART_SIZE,
            max_file_size: shardrop_engine::plan::MAX_OBJECT_SIZE,
            // A day: long enough to resume after a night's sleep.
            ttl_secs: 24 * 3600,
            // 15 minutes: a part of 8 MiB at even 100 kB/s finishes well inside.
            sign_ttl_secs: 15 * 60,
            download_ttl_secs: 5 * 60,
            max_sign_batch: 1_000,
            // Composing 10,000 parts takes seconds; a minute leaves room for a slow server.
            completion_lease_secs: 60,
        }
    }
}

impl Default for AuthSettings {
    fn default() -> Self {
        // A week: a person signs in about once a week per browser.
        Self {
            open_signup: true,
            session_ttl_secs: 7 * 24 * 3600,
            quota_bytes: 0,
            hash_concurrency: 0,
            hash_queue: default_hash_queue(),
        }
    }
}

impl Default for DedupSettings {
    fn default() -> Self {
        Self {
            // Privacy first: cross-user linking is an operator's informed choice.
            scope: DedupScope::User,
            // Each look counts, hit or miss, so a drop of many files spends it: past it they are
            // simply sent. A prober testing candidates gets 600 an hour, not millions.
            claims_per_hour: 600,
            challenge_ttl_secs: 3600,
            fail_lockout_secs: 24 * 3600,
        }
    }
}

impl Default for ReaperSettings {
    fn default() -> Self {
        Self {
            enabled: true,
            interval_secs: 300,
            // Half the interval: a backlog of any size drains, and sweeps never pile up.
            max_sweep_secs: 150,
            // Hourly: it lists every object, and an orphan can only come from a crash.
            orphan_interval_secs: 3600,
        }
    }
}

impl Default for HttpSettings {
    fn default() -> Self {
        Self {
            json_limit: MIB as usize,
            workers: 0,
            cors_origins: Vec::new(),
            // An honest engine signs up to 32 parts a request, a few requests a second.
            sign_rate: 20,
            sign_burst: 100,
            client_ip_header: String::new(),
            // Enough for a person who mistypes; a guesser gets 30 tries a minute per address.
            auth_rate_per_minute: 30,
            auth_burst: 10,
        }
    }
}

/// Why the settings could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Parse(#[from] Box<figment::Error>),
    #[error("configuration: cannot read {path}: {source}")]
    ReadFile { path: PathBuf, source: std::io::Error },
    #[error("configuration: {0}")]
    Invalid(String),
}

impl Settings {
    /// Defaults, then `file` (when given), then the environment.
    pub fn load(file: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::from(Serialized::defaults(Settings::default()));
        if let Some(file) = file {
            figment = figment.merge(Toml::file_exact(file));
        }
        let settings: Settings = figment
            .merge(
                Env::raw()
                    .only(&["SHARDROP_LISTEN", "SHARDROP_DATA_DIR"])
                    .map(|k| k.as_str().trim_start_matches("SHARDROP_").to_ascii_lowercase().into()),
            )
            .merge(Env::prefixed("SHARDROP__").split("__"))
            .extract()
            .map_err(Box::new)?;
        settings.resolve()
    }

    /// Reads secrets from their files and checks what cannot be right.
    pub fn resolve(mut self) -> Result<Self, ConfigError> {
        if let Some(path) = self.database.url_file.take() {
            self.database.url = read_secret(&path)?;
        }
        if let Some(path) = self.storage.s3.secret_access_key_file.take() {
            self.storage.s3.secret_access_key = read_secret(&path)?;
        }
        if let Some(path) = self.storage.local.secret_file.take() {
            self.storage.local.secret = read_secret(&path)?;
        }
        shardrop_engine::Plan::new(0, self.uploads.part_size)
            .map_err(|e| ConfigError::Invalid(format!("uploads.part_size: {e}")))?;
        if self.listen.parse::<SocketAddr>().is_err() {
            return Err(ConfigError::Invalid(format!("listen: {:?} is not host:port", self.listen)));
        }
        if self.uploads.max_sign_batch == 0
            || self.uploads.sign_ttl_secs == 0
            || self.uploads.completion_lease_secs == 0
        {
            return Err(ConfigError::Invalid(
                "uploads.max_sign_batch, sign_ttl_secs and completion_lease_secs must be > 0".into(),
            ));
        }
        if self.auth.session_ttl_secs == 0 {
            return Err(ConfigError::Invalid("auth.session_ttl_secs must be > 0".into()));
        }
        if self.storage.kind == StorageKind::S3 && self.storage.s3.bucket.is_empty() {
            return Err(ConfigError::Invalid("storage.s3.bucket is empty".into()));
        }
        Ok(self)
    }

    /// The database URL, defaulting to SQLite in the data dir.
    pub fn database_url(&self) -> String {
        if self.database.url.is_empty() {
            format!("sqlite://{}?mode=rwc", self.data_dir.join("shardrop.db").display())
        } else {
            self.database.url.clone()
        }
    }

    /// What `shardrop check-config` shows: these settings with every secret replaced by
    /// [`REDACTED`]: the S3 secret key, the local store's key, and the password of each URL
    /// (database, Redis). An empty secret stays empty, so "unset" still reads as unset.
    pub fn redacted(&self) -> Self {
        let mut s = self.clone();
        for secret in [&mut s.storage.s3.secret_access_key, &mut s.storage.local.secret] {
            if !secret.is_empty() {
                *secret = REDACTED.into();
            }
        }
        s.database.url = redact_url(&s.database.url);
        s.tracker.redis_url = redact_url(&s.tracker.redis_url);
        s
    }
}

/// Stands in for a secret in [`Settings::redacted`].
pub const REDACTED: &str = "<redacted>";

fn read_secret(path: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(path)
        .map(|s| s.trim_end_matches(['\n', '\r']).to_owned())
        .map_err(|source| ConfigError::ReadFile { path: path.to_owned(), source })
}

/// `scheme://user:password@host/path?password=x` with both passwords redacted. The user
/// part ends at the last `@` before the query, so a password with a stray `/` or `@` in it
/// is still hidden (at worst a path containing `@` is hidden too).
fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else { return url.to_owned() };
    let (before_query, query) = match rest.split_once('?') {
        Some((before, query)) => (before, Some(query)),
        None => (rest, None),
    };
    let mut out = format!("{scheme}://");
    match before_query.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _password)) => out.push_str(&format!("{user}:{REDACTED}@{host}")),
            None => out.push_str(before_query),
        },
        None => out.push_str(before_query),
    }
    if let Some(query) = query {
        let pairs: Vec<String> = query
            .split('&')
            .map(|pair| match pair.split_once('=') {
                Some((key, _)) if key.to_ascii_lowercase().contains("password") => format!("{key}={REDACTED}"),
                _ => pair.to_owned(),
            })
            .collect();
        out.push('?');
        out.push_str(&pairs.join("&"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::result_large_err)] // figment's Jail API fixes the closure's error type
    fn env_overrides_defaults_and_file() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("s.toml", "listen = \"127.0.0.1:9000\"\n[uploads]\npart_size = 16777216\n")?;
            jail.create_file("key", "s3cret\n")?;
            jail.set_env("SHARDROP_DATA_DIR", "/srv/shardrop");
            jail.set_env("SHARDROP__STORAGE__KIND", "s3");
            jail.set_env("SHARDROP__STORAGE__S3__SECRET_ACCESS_KEY_FILE", "key");
            jail.set_env("SHARDROP__TRACKER__KIND", "redis");
            let s = Settings::load(Some(Path::new("s.toml"))).unwrap();
            assert_eq!(s.listen, "127.0.0.1:9000");
            assert_eq!(s.data_dir, PathBuf::from("/srv/shardrop"));
            assert_eq!(s.uploads.part_size, 16 * MIB);
            assert_eq!(s.storage.kind, StorageKind::S3);
            assert_eq!(s.storage.s3.secret_access_key, "s3cret");
            assert_eq!(s.tracker.kind, TrackerKind::Redis);
            jail.set_env("SHARDROP_LISTEN", "0.0.0.0:1");
            assert_eq!(Settings::load(None).unwrap().listen, "0.0.0.0:1");
            Ok(())
        });
    }

    #[test]
    fn example_config_is_the_defaults() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../shardrop.example.toml");
        let from_file: Settings = Figment::from(Toml::file_exact(path)).extract().unwrap();
        assert_eq!(serde_json::to_value(from_file).unwrap(), serde_json::to_value(Settings::default()).unwrap());
    }

    #[test]
    fn redacted_hides_every_secret_and_nothing_else() {
        let mut s = Settings::default();
        s.storage.s3.secret_access_key = "s3-key-secret".into();
        s.storage.local.secret = "local-key-secret".into();
        s.database.url = "postgres://shardrop:db-secret@db:5432/shardrop?sslmode=require&password=q-secret".into();
        s.tracker.redis_url = "redis://:redis-secret@redis:6379/0".into();
        let r = s.redacted();
        let shown = serde_json::to_string(&r).unwrap();
        for secret in ["s3-key-secret", "local-key-secret", "db-secret", "q-secret", "redis-secret"] {
            assert!(!shown.contains(secret), "{secret} shown in {shown}");
        }
        assert_eq!(
            r.database.url,
            "postgres://shardrop:<redacted>@db:5432/shardrop?sslmode=require&password=<redacted>"
        );
        assert_eq!(r.tracker.redis_url, "redis://:<redacted>@redis:6379/0");
        assert_eq!(r.storage.s3.secret_access_key, REDACTED);
        assert_eq!(r.storage.s3.access_key_id, s.storage.s3.access_key_id);
        assert_eq!(r.listen, s.listen);
    }

    #[test]
    fn redact_url_keeps_urls_without_a_password() {
        for url in ["", "sqlite://./data/shardrop.db?mode=rwc", "redis://127.0.0.1:6379", "postgres://shardrop@db/x"] {
            assert_eq!(redact_url(url), url);
        }
        // An unencoded `/` or `@` in a password must not leak its tail.
        assert_eq!(redact_url("postgres://u:a/b@c@db/x"), "postgres://u:<redacted>@db/x");
        assert_eq!(Settings::default().redacted().storage.s3.secret_access_key, "");
    }

    #[test]
    fn refuses_a_part_size_s3_would_refuse() {
        let mut s = Settings::default();
        s.uploads.part_size = MIB;
        assert!(matches!(s.resolve(), Err(ConfigError::Invalid(_))));
    }
}
