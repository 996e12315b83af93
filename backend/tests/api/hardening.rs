//! The smaller holes an attacker with a plain HTTP client found (issue 13): metric labels a
//! client can mint, a page that can be framed, a readiness probe that anyone can make hit
//! storage and that tells its errors, file names that read as other names, and part PUTs
//! that stall for ever.

use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use reqwest::Method;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

on_both_backends!(
    made_up_methods_and_paths_are_counted_under_fixed_labels,
    the_page_is_served_with_a_policy_that_forbids_framing,
    readyz_probes_once_per_window_and_keeps_its_errors_in_the_logs,
    names_with_bidi_controls_are_refused,
);

async fn made_up_methods_and_paths_are_counted_under_fixed_labels(backend: Backend) {
    let app = spawn_app(backend).await;
    let made_up = ["MADEUPM1", "MADEUPM2", "MADEUPM100000", "BREWX"];
    for (i, name) in made_up.iter().enumerate() {
        let method = Method::from_bytes(name.as_bytes()).unwrap();
        for path in ["/healthz".to_owned(), "/api/v1/uploads".to_owned(), format!("/made-up-path-{i}")] {
            let r = app.client.request(method.clone(), format!("{}{path}", app.base)).send().await.unwrap();
            assert!(r.status().is_client_error(), "{name} {path}: {}", r.status());
        }
        let r = app.client.get(format!("{}/api/v1/made-up-route-{i}", app.base)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 404);
    }
    let text = app.client.get(format!("{}/metrics", app.base)).send().await.unwrap().text().await.unwrap();
    for name in made_up {
        assert!(!text.contains(name), "{name} became a label:\n{text}");
    }
    assert!(!text.contains("made-up"), "a raw path became a label:\n{text}");
    let requests = |route: &str, method: &str| {
        text.lines()
            .filter(|l| l.starts_with("shardrop_http_requests_total{"))
            .filter(|l| l.contains(&format!("route=\"{route}\"")) && l.contains(&format!("method=\"{method}\"")))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .sum::<u64>()
    };
    // Each made-up method hit two routes and one unknown path; each unknown path was also a GET.
    assert_eq!(requests("/healthz", "other"), 4, "{text}");
    assert_eq!(requests("unmatched", "other"), 4, "{text}");
    assert_eq!(requests("unmatched", "GET"), 4, "{text}");
}

async fn the_page_is_served_with_a_policy_that_forbids_framing(backend: Backend) {
    let (mut s, dir) = settings(backend).await;
    let web = dir.path().join("web");
    std::fs::create_dir(&web).unwrap();
    let import_map = r#"{ "imports": { "shardrop": "./vendor/shardrop/index.js" } }"#;
    let html = format!(
        "<!doctype html>\n<script type=\"importmap\">{import_map}</script>\n\
         <script type=\"module\" src=\"./app.js\"></script>\n<p>page</p>\n"
    );
    std::fs::write(web.join("index.html"), html).unwrap();
    std::fs::write(web.join("app.js"), "import 'shardrop';\n").unwrap();
    s.web_dir = web.to_str().unwrap().to_owned();
    s.serve_page = true;
    let app = spawn_with(s, dir).await;

    let hash = format!("'sha256-{}'", STANDARD.encode(Sha256::digest(import_map.as_bytes())));
    let storage = match backend {
        Backend::Embedded => app.base.clone(),
        Backend::S3 => s3_env().endpoint.trim_end_matches('/').to_owned(),
    };
    for path in ["/", "/index.html", "/app.js"] {
        let r = app.client.get(format!("{}{path}", app.base)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200, "{path}");
        let header = |name: &str| r.headers().get(name).map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
        assert_eq!(header("x-frame-options"), "DENY", "{path}");
        assert_eq!(header("x-content-type-options"), "nosniff", "{path}");
        let csp = header("content-security-policy");
        let directives: Vec<&str> = csp.split(';').map(str::trim).collect();
        for want in [
            "default-src 'none'".to_owned(),
            "frame-ancestors 'none'".to_owned(),
            format!("script-src 'self' 'wasm-unsafe-eval' {hash}"),
            format!("connect-src 'self' {storage}"),
            "worker-src 'self'".to_owned(),
            "base-uri 'none'".to_owned(),
        ] {
            assert!(directives.contains(&want.as_str()), "{path}: {want:?} missing from {csp:?}");
        }
        assert!(!csp.contains("unsafe-inline") && !csp.contains("'unsafe-eval'"), "{csp}");
    }
}

async fn readyz_probes_once_per_window_and_keeps_its_errors_in_the_logs(backend: Backend) {
    let app = spawn_app(backend).await;
    let probes = || app.metric("shardrop_readiness_probes_total");
    assert_eq!(probes().await, 0);
    for _ in 0..3 {
        let r = app.client.get(format!("{}/readyz", app.base)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
    }
    assert_eq!(probes().await, 1, "three calls within the cache window probe once");

    // A service that fails its probe: the local store's folder for bytes in flight gone, or
    // Redis at a port where nothing listens.
    let (mut s, dir) = settings(backend).await;
    if backend == Backend::S3 {
        s.tracker.redis_url = "redis://127.0.0.1:1".into();
    }
    let broken = spawn_with(s, dir).await;
    if backend == Backend::Embedded {
        std::fs::remove_dir_all(broken.settings.data_dir.join("objects").join("tmp")).unwrap();
    }
    let r = broken.client.get(format!("{}/readyz", broken.base)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 503);
    let text = r.text().await.unwrap();
    let v: Value = serde_json::from_str(&text).unwrap();
    let down = if backend == Backend::S3 { "tracker" } else { "storage" };
    let mut want = json!({"status": "not-ready", "checks": {"database": "ok", "tracker": "ok", "storage": "ok"}});
    want["checks"][down] = json!("down");
    assert_eq!(v, want, "only fixed words, never the inner error: {text}");
    assert_eq!(broken.metric("shardrop_readiness_probes_total").await, 1);
}

async fn names_with_bidi_controls_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    for (c, shown) in [('\u{202E}', "U+202E"), ('\u{2066}', "U+2066"), ('\u{200F}', "U+200F"), ('\u{061C}', "U+061C")] {
        let (status, v) = app.post("/uploads", json!({"name": format!("invoice{c}fdp.exe"), "size": 1})).await;
        assert_eq!((status, v["code"].as_str()), (422, Some("invalid-name")), "{shown}: {v}");
        assert!(v["message"].as_str().unwrap().contains(shown), "{v}");
    }
    // Right-to-left names are fine: only the invisible controls that reorder them are not.
    let (status, v) = app.post("/uploads", json!({"name": "\u{5E9}\u{5DC}\u{5D5}\u{5DD}.txt", "size": 1})).await;
    assert_eq!(status, 201, "{v}");
    let (_, me) = app.get("/users/me").await;
    assert_eq!(me["used_bytes"], 1, "only the right-to-left name made an upload: {me}");
    // The schema that clients (and the API fuzz) read says the same.
    let (_, doc) = app.get("/openapi.json").await;
    let pattern = doc["components"]["schemas"]["CreateUpload"]["properties"]["name"]["pattern"].as_str().unwrap();
    for spelled in [r"\u061c", r"\u200e", r"\u200f", r"\u202a-\u202e", r"\u2066-\u2069"] {
        assert!(pattern.contains(spelled), "{spelled} missing from {pattern}");
    }
}

/// A sender that says a part is 10 bytes, sends 5 and falls silent is cut off after the
/// body timeout with `408`, and the bytes it sent leave nothing behind.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stalled_part_put_is_cut_off_and_leaves_no_temp_file() {
    let (mut s, dir) = settings(Backend::Embedded).await;
    s.storage.local.body_timeout_secs = 2;
    let app = spawn_with(s, dir).await;
    let bytes = b"helloworld";
    let created = app.create("slow.bin", bytes.len() as u64).await;
    let id = created["upload_id"].as_str().unwrap();
    let part = json!({"number": 1, "sha1": sha1_b64(bytes), "size": bytes.len()});
    let (status, signed) = app.post(&format!("/uploads/{id}/parts/sign"), json!({ "parts": [part] })).await;
    assert_eq!(status, 200, "{signed}");
    let url = signed["parts"][0]["url"].as_str().unwrap();
    let target = url.strip_prefix(&app.base).expect("the local store signs for this server");
    let mut head = format!("PUT {target} HTTP/1.1\r\nHost: {}\r\nContent-Length: 10\r\n", &app.base[7..]);
    for (k, v) in signed["parts"][0]["headers"].as_object().unwrap() {
        head.push_str(&format!("{k}: {}\r\n", v.as_str().unwrap()));
    }
    head.push_str("\r\n");

    let started = Instant::now();
    let mut socket = tokio::net::TcpStream::connect(&app.base[7..]).await.unwrap();
    socket.write_all(head.as_bytes()).await.unwrap();
    socket.write_all(&bytes[..5]).await.unwrap();
    let tmp = app.settings.data_dir.join("objects").join("tmp");
    let in_flight = || std::fs::read_dir(&tmp).unwrap().map(|e| e.unwrap().file_name()).collect::<Vec<_>>();
    let mut seen = false;
    while !seen && started.elapsed() < Duration::from_millis(1500) {
        seen = !in_flight().is_empty();
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(seen, "the PUT's bytes should be in a temp file while it waits");

    // Then silence: the server must answer and close, not wait for ever.
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(15), socket.read_to_end(&mut answer))
        .await
        .expect("the server neither answered nor closed a stalled PUT")
        .unwrap();
    let elapsed = started.elapsed();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains(r#""code":"body-timeout""#), "{answer}");
    assert!(elapsed >= Duration::from_millis(1900), "cut off after {elapsed:?}, before the timeout");
    let mut left = in_flight();
    for _ in 0..100 {
        if left.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
        left = in_flight();
    }
    assert!(left.is_empty(), "left in the store's tmp/: {left:?}");
    // The part is not stored: the upload still waits for it, and a whole PUT still works.
    let (_, v) = app.get(&format!("/uploads/{id}")).await;
    assert_eq!(v["parts_done"], json!([]), "{v}");
    assert_eq!(put_signed(&app.client, &signed["parts"][0], bytes.to_vec()).await.0, 200);
}
