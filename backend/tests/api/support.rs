//! The shared harness: real services, started once per run, and an app per test.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use actix_web::web;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::{json, Value};
use sha1::{Digest, Sha1};
use shardrop_backend::app::Application;
use shardrop_backend::config::{Settings, StorageKind, TrackerKind};
use shardrop_backend::state::AppState;
use shardrop_backend::storage::PartCheck;
use sqlx::Connection;

pub const MIB: u64 = 1024 * 1024;
/// The smallest part size S3 allows: keeps multi-part tests small.
pub const PART: u64 = 5 * MIB;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// SQLite, in-process tracker, local store.
    Embedded,
    /// PostgreSQL, Redis, and the S3 server of `SHARDROP_TEST_S3_*` (Garage, or Ceph RGW).
    S3,
}

pub const BACKENDS: [Backend; 2] = [Backend::Embedded, Backend::S3];

/// An app on port 0, seen as one signed-in user: `call` and its helpers send that user's
/// token. `client` sends none: it is for the storage's signed URLs (a bearer header there
/// would be taken for S3 auth) and for checking what a request without a token gets.
#[derive(Clone)]
pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    /// Sends `Authorization: Bearer <token>` on every request.
    pub api: reqwest::Client,
    pub token: String,
    pub username: String,
    pub state: web::Data<AppState>,
    pub settings: Settings,
    _dir: Arc<tempfile::TempDir>,
}

/// Where the S3 server under test is, from `SHARDROP_TEST_S3_*` or a dev Garage started
/// by `infra/garage/dev.sh` (which keeps running between test runs, for speed).
pub struct S3Env {
    pub endpoint: String,
    pub region: String,
    pub bucket: String,
    pub key_id: String,
    pub secret: String,
}

pub fn s3_env() -> &'static S3Env {
    static ENV: OnceLock<S3Env> = OnceLock::new();
    ENV.get_or_init(|| {
        if std::env::var("SHARDROP_TEST_S3_ENDPOINT").is_err() {
            let root = concat!(env!("CARGO_MANIFEST_DIR"), "/..");
            let out = std::process::Command::new(format!("{root}/infra/garage/dev.sh"))
                .arg("start")
                .stderr(std::process::Stdio::inherit())
                .output()
                .expect("infra/garage/dev.sh start");
            assert!(out.status.success(), "could not start Garage for the tests");
            for line in String::from_utf8_lossy(&out.stdout).lines() {
                if let Some((k, v)) = line.split_once('=') {
                    std::env::set_var(k.trim(), v.trim());
                }
            }
        }
        let var = |k: &str| std::env::var(k).unwrap_or_else(|_| panic!("{k} is not set"));
        S3Env {
            endpoint: var("SHARDROP_TEST_S3_ENDPOINT"),
            region: var("SHARDROP_TEST_S3_REGION"),
            bucket: var("SHARDROP_TEST_S3_BUCKET"),
            key_id: var("SHARDROP_TEST_S3_ACCESS_KEY_ID"),
            secret: var("SHARDROP_TEST_S3_SECRET_ACCESS_KEY"),
        }
    })
}

pub fn pg_url() -> String {
    std::env::var("SHARDROP_TEST_DATABASE_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

pub fn redis_url() -> String {
    std::env::var("SHARDROP_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A fresh PostgreSQL database for one test. Databases of test processes that are gone
/// are dropped first, so runs do not pile them up.
pub async fn fresh_pg_database() -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    static SWEPT: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    let admin = pg_url();
    let mut conn = sqlx::PgConnection::connect(&admin).await.expect("PostgreSQL at SHARDROP_TEST_DATABASE_URL");
    SWEPT
        .get_or_init(|| async {
            let mut c = sqlx::PgConnection::connect(&admin).await.expect("postgres");
            let names: Vec<(String,)> =
                sqlx::query_as("SELECT datname FROM pg_database WHERE datname LIKE 'shardrop_t_%'")
                    .fetch_all(&mut c)
                    .await
                    .unwrap();
            for (name,) in names {
                let pid: Option<u32> = name.split('_').nth(2).and_then(|p| p.parse().ok());
                if pid.is_some_and(|p| !std::path::Path::new(&format!("/proc/{p}")).exists()) {
                    let _ =
                        sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).execute(&mut c).await;
                }
            }
        })
        .await;
    let name = format!("shardrop_t_{}_{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst));
    sqlx::query(&format!("CREATE DATABASE \"{name}\"")).execute(&mut conn).await.expect("create database");
    let (base, _) = admin.rsplit_once('/').expect("database url with a path");
    format!("{base}/{name}")
}

fn unique(prefix: &str) -> String {
    format!("{prefix}{}", &uuid::Uuid::new_v4().simple().to_string()[..12])
}

/// Settings for one test: port 0, a temp data dir, the reaper off (tests sweep by hand).
pub async fn settings(backend: Backend) -> (Settings, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut s = Settings { listen: "127.0.0.1:0".into(), data_dir: dir.path().to_owned(), ..Settings::default() };
    s.reaper.enabled = false;
    s.http.workers = 2;
    // Every test signs up and in; the limit has a test of its own.
    s.http.auth_rate_per_minute = 0;
    s.uploads.part_size = PART;
    // The API alone, whether or not www/dist was built when the tests run (a debug build
    // reads the built-in page from there); the page's own test names a web_dir.
    s.serve_page = false;
    if backend == Backend::S3 {
        let env = s3_env();
        s.database.url = fresh_pg_database().await;
        s.tracker.kind = TrackerKind::Redis;
        s.tracker.redis_url = redis_url();
        s.tracker.prefix = unique("shardrop-test-");
        s.storage.kind = StorageKind::S3;
        s.storage.s3.endpoint = env.endpoint.clone();
        s.storage.s3.region = env.region.clone();
        s.storage.s3.bucket = env.bucket.clone();
        s.storage.s3.access_key_id = env.key_id.clone();
        s.storage.s3.secret_access_key = env.secret.clone();
        s.storage.s3.prefix = format!("{}/", unique("t-"));
    }
    (s, dir)
}

pub async fn spawn_app(backend: Backend) -> TestApp {
    let (s, dir) = settings(backend).await;
    spawn_with(s, dir).await
}

/// An app whose uploads may be linked to other users' content (`dedup.scope = all`).
pub async fn spawn_sharing_app(backend: Backend) -> TestApp {
    let (mut s, dir) = settings(backend).await;
    s.dedup.scope = shardrop_backend::config::DedupScope::All;
    spawn_with(s, dir).await
}

pub async fn spawn_with(settings: Settings, dir: tempfile::TempDir) -> TestApp {
    static LOGS: OnceLock<()> = OnceLock::new();
    LOGS.get_or_init(|| {
        let filter = std::env::var("SHARDROP_LOG").unwrap_or_else(|_| "warn".into());
        let _ = tracing_subscriber::fmt().with_env_filter(filter).with_test_writer().try_init();
    });
    let app = Application::build(settings.clone()).await.expect("application builds");
    let base = format!("http://127.0.0.1:{}", app.port());
    let state = app.state();
    tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let app = TestApp {
        base,
        api: client.clone(),
        client,
        token: String::new(),
        username: String::new(),
        state,
        settings,
        _dir: Arc::new(dir),
    };
    app.as_new_user().await
}

/// A client that sends `token` as a bearer token, and follows no redirects.
pub fn bearer_client(token: &str) -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::AUTHORIZATION, format!("Bearer {token}").parse().unwrap());
    reqwest::Client::builder().default_headers(headers).redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// Several replicas sharing one database, tracker and storage prefix.
pub async fn spawn_replicas(n: usize) -> Vec<TestApp> {
    let (first, dir) = settings(Backend::S3).await;
    let mut apps = vec![spawn_with(first.clone(), dir).await];
    for _ in 1..n {
        let dir = tempfile::tempdir().unwrap();
        let mut s = first.clone();
        s.data_dir = dir.path().to_owned();
        // The same user on every replica: one session, any replica checks it.
        apps.push(spawn_with(s, dir).await.with_token(&apps[0].token, &apps[0].username));
    }
    apps
}

/// Deterministic bytes for part `number` of a test file (cheap to make, hard to compress).
pub fn part_bytes(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut out = Vec::with_capacity(len + 8);
    while out.len() < len {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        out.extend_from_slice(&x.to_le_bytes());
    }
    out.truncate(len);
    out
}

pub fn sha1_hex(bytes: &[u8]) -> String {
    hex::encode(Sha1::digest(bytes))
}

pub fn sha1_b64(bytes: &[u8]) -> String {
    STANDARD.encode(Sha1::digest(bytes))
}

/// Base64 of the raw MD5, as `Content-MD5` carries it.
pub fn base64_md5(bytes: &[u8]) -> String {
    STANDARD.encode(shardrop_engine::hashing::md5(bytes))
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.base)
    }

    /// This app as a new user: signed up and signed in through the API.
    pub async fn as_new_user(&self) -> TestApp {
        static N: AtomicU32 = AtomicU32::new(0);
        let username = format!("user{}-{}", std::process::id(), N.fetch_add(1, Ordering::SeqCst));
        let creds = json!({"username": username, "password": "correct horse battery"});
        let r = self.client.post(self.url("/users")).json(&creds).send().await.expect("sign up");
        assert_eq!(r.status().as_u16(), 201, "sign up: {}", r.text().await.unwrap_or_default());
        let r = self.client.post(self.url("/sessions")).json(&creds).send().await.expect("sign in");
        assert_eq!(r.status().as_u16(), 201, "sign in");
        let session: Value = r.json().await.unwrap();
        self.with_token(session["token"].as_str().unwrap(), &username)
    }

    /// This app as the user whose session `token` is.
    pub fn with_token(&self, token: &str, username: &str) -> TestApp {
        TestApp { api: bearer_client(token), token: token.to_owned(), username: username.to_owned(), ..self.clone() }
    }

    pub async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = self.api.request(method, self.url(path));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, None).await
    }

    pub async fn create(&self, name: &str, size: u64) -> Value {
        let (status, v) = self.post("/uploads", json!({"name": name, "size": size})).await;
        assert_eq!(status, 201, "{v}");
        v
    }

    /// Signs one part for the digests of `signed_for` (its MD5 too where the storage checks
    /// that one) and PUTs `bytes` to its URL; answers (status, etag).
    pub async fn put_part(&self, upload: &str, number: u32, bytes: &[u8], signed_for: &[u8]) -> (u16, String) {
        let mut part = json!({"number": number, "sha1": sha1_b64(signed_for), "size": bytes.len()});
        if self.state.store.part_check() == PartCheck::Md5 {
            part["md5"] = json!(base64_md5(signed_for));
        }
        let (status, v) = self.post(&format!("/uploads/{upload}/parts/sign"), json!({ "parts": [part] })).await;
        assert_eq!(status, 200, "sign: {v}");
        put_signed(&self.client, &v["parts"][0], bytes.to_vec()).await
    }

    /// Reports a part; answers the report's JSON.
    pub async fn report(&self, upload: &str, number: u32, etag: &str, sha1: &str) -> (u16, Value) {
        self.call(
            reqwest::Method::PUT,
            &format!("/uploads/{upload}/parts/{number}"),
            Some(json!({"etag": etag, "sha1": sha1})),
        )
        .await
    }

    /// PUTs a part (signed for its real SHA-1) and reports it; answers the report's JSON.
    pub async fn send_part(&self, upload: &str, number: u32, bytes: &[u8]) -> Value {
        let sha = sha1_b64(bytes);
        let (status, etag) = self.put_part(upload, number, bytes, bytes).await;
        assert_eq!(status, 200, "part {number} PUT");
        let (status, v) = self.report(upload, number, &etag, &sha).await;
        assert_eq!(status, 200, "report {number}: {v}");
        v
    }

    /// Sends a whole file made of `parts` (each a full part but the last) and reports them
    /// in order. Answers the upload id and the last report.
    pub async fn upload(&self, name: &str, parts: &[Vec<u8>]) -> (String, Value) {
        let size: usize = parts.iter().map(Vec::len).sum();
        let created = self.create(name, size as u64).await;
        let id = created["upload_id"].as_str().unwrap().to_owned();
        let mut last = Value::Null;
        for (i, bytes) in parts.iter().enumerate() {
            last = self.send_part(&id, i as u32 + 1, bytes).await;
        }
        (id, last)
    }

    /// Downloads a file through `/files/{id}/content` (the redirect and the storage).
    pub async fn download(&self, file_id: &str, range: Option<&str>) -> (u16, Vec<u8>) {
        let resp = self.api.get(self.url(&format!("/files/{file_id}/content"))).send().await.unwrap();
        assert_eq!(resp.status().as_u16(), 302);
        let location = resp.headers()["location"].to_str().unwrap().to_owned();
        let mut req = self.client.get(location);
        if let Some(r) = range {
            req = req.header("range", r);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        (status, resp.bytes().await.unwrap().to_vec())
    }

    /// Waits for the verifier to rule on a file; answers its status.
    pub async fn wait_verified(&self, file_id: &str) -> String {
        for _ in 0..600 {
            let (_, v) = self.get(&format!("/files/{file_id}")).await;
            if v["status"] != "pending" {
                return v["status"].as_str().unwrap().to_owned();
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("file {file_id} never verified");
    }

    pub async fn metric(&self, name: &str) -> u64 {
        let text = self.client.get(format!("{}/metrics", self.base)).send().await.unwrap().text().await.unwrap();
        text.lines()
            .filter(|l| l.starts_with(name) && !l.starts_with('#'))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as u64
    }
}

/// PUTs bytes to a signed part, sending exactly the headers the API gave.
pub async fn put_signed(client: &reqwest::Client, signed: &Value, bytes: Vec<u8>) -> (u16, String) {
    // As a browser does, always say the length (S3 servers such as RGW refuse a PUT without
    // one, and reqwest leaves it out for an empty body).
    let mut req = client.put(signed["url"].as_str().unwrap()).header("content-length", bytes.len()).body(bytes);
    for (k, v) in signed["headers"].as_object().unwrap() {
        req = req.header(k, v.as_str().unwrap());
    }
    let resp = req.send().await.expect("part PUT");
    let status = resp.status().as_u16();
    let etag = resp.headers().get("etag").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
    if status != 200 {
        eprintln!("part PUT answered {status}: {}", resp.text().await.unwrap_or_default());
    }
    (status, etag)
}

/// Runs `async fn $name(Backend)` once per backend, as two tests.
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn embedded() {
                super::$name(crate::support::Backend::Embedded).await
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn s3() {
                super::$name(crate::support::Backend::S3).await
            }
        }
    )*};
}
