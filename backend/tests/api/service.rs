//! Health, readiness, metrics and the OpenAPI document.

use serde_json::Value;

use crate::support::*;

#[tokio::test]
async fn health_ready_metrics_and_openapi() {
    for backend in BACKENDS {
        let app = spawn_app(backend).await;
        let r = app.client.get(format!("{}/healthz", app.base)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let r = app.client.get(format!("{}/readyz", app.base)).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 200);
        let v: Value = r.json().await.unwrap();
        assert_eq!((v["checks"]["database"].as_str(), v["checks"]["storage"].as_str()), (Some("ok"), Some("ok")));

        app.upload("m.txt", &[part_bytes(1, 10)]).await;
        let text = app.client.get(format!("{}/metrics", app.base)).send().await.unwrap().text().await.unwrap();
        assert!(
            text.contains(r#"shardrop_http_requests_total{method="POST",route="/api/v1/uploads",status="201"} 1"#),
            "{text}"
        );
        assert_eq!(app.metric("shardrop_uploads_started_total").await, 1);
        assert_eq!(app.metric("shardrop_uploads_completed_total").await, 1);
        assert_eq!(app.metric("shardrop_parts_reported_total").await, 1);
        assert_eq!(app.metric("shardrop_bytes_completed_total").await, 10);

        let (status, doc) = app.get("/openapi.json").await;
        assert_eq!(status, 200);
        assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
        let paths = doc["paths"].as_object().unwrap();
        for p in [
            "/api/v1/uploads",
            "/api/v1/uploads/{upload_id}",
            "/api/v1/uploads/{upload_id}/parts/sign",
            "/api/v1/uploads/{upload_id}/parts/{number}",
            "/api/v1/uploads/{upload_id}/complete",
            "/api/v1/files",
            "/api/v1/files/{file_id}",
            "/api/v1/files/{file_id}/content",
            "/healthz",
            "/readyz",
        ] {
            assert!(paths.contains_key(p), "{p} missing from the OpenAPI document");
        }
    }
}

#[tokio::test]
async fn readyz_says_which_service_is_down() {
    let (mut s, dir) = settings(Backend::S3).await;
    s.tracker.redis_url = "redis://127.0.0.1:1".into();
    let app = spawn_with(s, dir).await;
    let r = app.client.get(format!("{}/readyz", app.base)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 503);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["checks"]["database"], "ok");
    assert_ne!(v["checks"]["tracker"], "ok");
}

/// A browser can PUT parts to the bucket and read the ETag: the CORS rule written at
/// start-up answers a real preflight.
#[tokio::test]
async fn bucket_cors_lets_a_browser_put_parts() {
    let app = spawn_app(Backend::S3).await;
    let env = s3_env();
    let url = format!("{}/{}/{}objects/x", env.endpoint, env.bucket, app.settings.storage.s3.prefix);
    let r = app
        .client
        .request(reqwest::Method::OPTIONS, url)
        .header("origin", "http://127.0.0.1:8080")
        .header("access-control-request-method", "PUT")
        .header("access-control-request-headers", "content-type,x-amz-checksum-sha1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let h = |name: &str| r.headers().get(name).map(|v| v.to_str().unwrap().to_ascii_lowercase()).unwrap_or_default();
    assert_eq!(h("access-control-allow-origin"), "http://127.0.0.1:8080");
    assert!(h("access-control-allow-methods").contains("put"), "{:?}", r.headers());
    assert!(h("access-control-expose-headers").contains("etag"), "{:?}", r.headers());
    assert!(h("access-control-allow-headers").contains("x-amz-checksum-sha1"), "{:?}", r.headers());
}
