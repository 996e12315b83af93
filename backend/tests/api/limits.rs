//! What one client may ask: a rate limit on signing, and CORS only for configured origins.

use reqwest::Method;
use serde_json::json;

use crate::support::*;

#[tokio::test]
async fn signing_is_rate_limited_per_client_with_retry_after() {
    let (mut s, dir) = settings(Backend::Embedded).await;
    s.http.sign_rate = 1;
    s.http.sign_burst = 3;
    s.http.client_ip_header = "x-real-ip".into();
    let app = spawn_with(s, dir).await;
    let created = app.create("r.bin", 10).await;
    let path = app.url(&format!("/uploads/{}/parts/sign", created["upload_id"].as_str().unwrap()));
    let body = json!({"parts": [{"number": 1, "sha1": sha1_b64(&[0; 10]), "size": 10}]});
    let sign = |client: &'static str| app.api.post(&path).header("x-real-ip", client).json(&body).send();
    for _ in 0..3 {
        assert_eq!(sign("10.0.0.1").await.unwrap().status(), 200, "within the burst");
    }
    let refused = sign("10.0.0.1").await.unwrap();
    assert_eq!(refused.status(), 429);
    let retry: u64 = refused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry), "retry-after {retry}");
    let v: serde_json::Value = refused.json().await.unwrap();
    assert_eq!(v["code"], "rate-limited", "{v}");
    // Another client has a bucket of its own; other routes are not limited.
    assert_eq!(sign("10.0.0.2").await.unwrap().status(), 200);
    for _ in 0..5 {
        assert_eq!(app.get(&format!("/uploads/{}", created["upload_id"].as_str().unwrap())).await.0, 200);
    }
}

#[tokio::test]
async fn cors_answers_only_configured_origins() {
    let (mut s, dir) = settings(Backend::Embedded).await;
    s.http.cors_origins = vec!["https://app.example".into()];
    let app = spawn_with(s, dir).await;
    let preflight = |origin: &'static str| {
        app.client
            .request(Method::OPTIONS, app.url("/uploads"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type,authorization")
            .send()
    };
    let ok = preflight("https://app.example").await.unwrap();
    assert_eq!(ok.status(), 200);
    assert_eq!(ok.headers()["access-control-allow-origin"], "https://app.example");
    let other = preflight("https://evil.example").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none(), "{:?}", other.headers());
    // A simple request from an unlisted origin gets no CORS grant either (the browser hides the answer).
    let r = app.api.get(app.url("/files")).header("origin", "https://evil.example").send().await.unwrap();
    assert!(r.headers().get("access-control-allow-origin").is_none());
}
