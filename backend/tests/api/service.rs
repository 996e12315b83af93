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
    let (mut s, dir) = settings(Backend::Garage).await;
    s.tracker.redis_url = "redis://127.0.0.1:1".into();
    let app = spawn_with(s, dir).await;
    let r = app.client.get(format!("{}/readyz", app.base)).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 503);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["checks"]["database"], "ok");
    assert_ne!(v["checks"]["tracker"], "ok");
}
