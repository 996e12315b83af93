//! Bad input on every route: a stable code, a fitting 4xx, and nothing written.

use reqwest::Method;
use serde_json::{json, Value};

use crate::support::*;

fn code(v: &Value) -> &str {
    v["code"].as_str().unwrap_or("<no code>")
}

async fn expect(app: &TestApp, method: Method, path: &str, body: Option<Value>, status: u16, want: &str) {
    let (got, v) = app.call(method.clone(), path, body).await;
    assert_eq!((got, code(&v)), (status, want), "{method} {path}: {v}");
    assert!(v["message"].as_str().is_some_and(|m| !m.is_empty()), "{method} {path}: no message: {v}");
}

on_both_backends!(unknown_ids_are_404_on_every_route, bad_parts_and_batches_are_refused);

async fn unknown_ids_are_404_on_every_route(backend: Backend) {
    let app = spawn_app(backend).await;
    let up = "/uploads/up_doesnotexist";
    let sha = sha1_b64(b"x");
    expect(&app, Method::GET, up, None, 404, "upload-not-found").await;
    expect(&app, Method::DELETE, up, None, 404, "upload-not-found").await;
    expect(&app, Method::PATCH, up, Some(json!({"sha1": sha1_hex(b"x")})), 404, "upload-not-found").await;
    expect(&app, Method::POST, &format!("{up}/complete"), Some(json!({})), 404, "upload-not-found").await;
    let sign = json!({"parts": [{"number": 1, "sha1": sha, "size": 1}]});
    expect(&app, Method::POST, &format!("{up}/parts/sign"), Some(sign), 404, "upload-not-found").await;
    let report = json!({"etag": "\"e\"", "sha1": sha});
    expect(&app, Method::PUT, &format!("{up}/parts/1"), Some(report), 404, "upload-not-found").await;
    for path in ["/files/fi_nope", "/files/fi_nope/content"] {
        expect(&app, Method::GET, path, None, 404, "file-not-found").await;
    }
    expect(&app, Method::DELETE, "/files/fi_nope", None, 404, "file-not-found").await;
}

async fn bad_parts_and_batches_are_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let size = 2 * PART + 10;
    let created = app.create("p.bin", size).await;
    let id = created["upload_id"].as_str().unwrap();
    let sign = format!("/uploads/{id}/parts/sign");
    let sha = sha1_b64(b"x");
    let one = |number: u64, size: u64, sha1: &str| json!({"parts": [{"number": number, "sha1": sha1, "size": size}]});
    expect(&app, Method::POST, &sign, Some(one(0, PART, &sha)), 422, "invalid-part-number").await;
    expect(&app, Method::POST, &sign, Some(one(4, 10, &sha)), 422, "invalid-part-number").await;
    expect(&app, Method::POST, &sign, Some(one(1, PART - 1, &sha)), 422, "invalid-part-size").await;
    expect(&app, Method::POST, &sign, Some(one(3, 11, &sha)), 422, "invalid-part-size").await;
    expect(&app, Method::POST, &sign, Some(one(1, PART, "abc")), 422, "invalid-sha1").await;
    expect(&app, Method::POST, &sign, Some(one(1, PART, &sha1_hex(b"x"))), 422, "invalid-sha1").await;
    expect(&app, Method::POST, &sign, Some(json!({"parts": []})), 422, "invalid-batch").await;
    expect(&app, Method::POST, &sign, Some(one(u64::from(u32::MAX) + 1, PART, &sha)), 422, "invalid-field").await;
    let report = |n: u32| format!("/uploads/{id}/parts/{n}");
    expect(&app, Method::PUT, &report(9), Some(json!({"etag": "\"e\"", "sha1": sha})), 422, "invalid-part-number")
        .await;
    expect(&app, Method::PUT, &report(1), Some(json!({"etag": "", "sha1": sha})), 422, "invalid-etag").await;
    expect(&app, Method::PUT, &report(1), Some(json!({"etag": "\"e\"", "sha1": "zz"})), 422, "invalid-sha1").await;
    let (s, v) =
        app.call(Method::PUT, &format!("/uploads/{id}/parts/one"), Some(json!({"etag": "e", "sha1": sha}))).await;
    assert_eq!((s, code(&v)), (400, "invalid-path"));
    // Nothing above counted as a part.
    let (_, v) = app.get(&format!("/uploads/{id}")).await;
    assert_eq!(v["parts_done"], json!([]));
}

#[tokio::test]
async fn bad_bodies_and_routes_get_json_errors() {
    let app = spawn_app(Backend::Embedded).await;
    // A body of all-optional fields is still an object, not an array of them.
    let created = app.create("o.bin", 1).await;
    let upload = format!("/uploads/{}", created["upload_id"].as_str().unwrap());
    expect(&app, Method::POST, &format!("{upload}/complete"), Some(json!([])), 422, "invalid-field").await;
    assert_eq!(app.call(Method::DELETE, &upload, None).await.0, 204);
    expect(&app, Method::POST, "/uploads", Some(json!({"name": "a", "size": -1})), 422, "invalid-field").await;
    expect(&app, Method::POST, "/uploads", Some(json!({"size": 1})), 422, "invalid-field").await;
    expect(&app, Method::POST, "/uploads", Some(json!({"name": "a", "size": 1, "bogus": 1})), 422, "invalid-field")
        .await;
    expect(&app, Method::POST, "/uploads", Some(json!({"name": "", "size": 1})), 422, "invalid-name").await;
    expect(&app, Method::POST, "/uploads", Some(json!({"name": "a\u{0}b", "size": 1})), 422, "invalid-name").await;
    expect(
        &app,
        Method::POST,
        "/uploads",
        Some(json!({"name": "a", "size": 1, "sha1": "nothex"})),
        422,
        "invalid-sha1",
    )
    .await;
    expect(
        &app,
        Method::POST,
        "/uploads",
        Some(json!({"name": "a", "size": 1, "content_type": "x"})),
        422,
        "invalid-content-type",
    )
    .await;
    let too_big = 5u64 * 1024 * 1024 * 1024 * 1024 + 1;
    expect(&app, Method::POST, "/uploads", Some(json!({"name": "a", "size": too_big})), 413, "file-too-large").await;

    let raw = |body: &'static str, ct: &'static str| {
        app.api.post(app.url("/uploads")).header("content-type", ct).body(body).send()
    };
    let r = raw("{\"name\": ", "application/json").await.unwrap();
    assert_eq!(r.status().as_u16(), 400);
    assert_eq!(code(&r.json::<Value>().await.unwrap()), "malformed-json");
    let r = raw("{}", "text/plain").await.unwrap();
    assert_eq!(r.status().as_u16(), 415);
    assert_eq!(code(&r.json::<Value>().await.unwrap()), "unsupported-media-type");
    let huge = format!("{{\"name\": \"{}\", \"size\": 1}}", "x".repeat(2 * 1024 * 1024));
    let r =
        app.api.post(app.url("/uploads")).header("content-type", "application/json").body(huge).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 413);
    assert_eq!(code(&r.json::<Value>().await.unwrap()), "body-too-large");

    let (s, v) = app.call(Method::GET, "/nope", None).await;
    assert_eq!((s, code(&v)), (404, "not-found"));
    let (s, v) = app.call(Method::PUT, "/uploads", None).await;
    assert_eq!((s, code(&v)), (405, "method-not-allowed"));
    let (s, v) = app.get("/files?limit=0").await;
    assert_eq!((s, code(&v)), (422, "invalid-limit"));
    let (s, v) = app.get("/files?cursor=garbage").await;
    assert_eq!((s, code(&v)), (422, "invalid-cursor"));
    let (s, v) = app.get("/files?limit=x").await;
    assert_eq!((s, code(&v)), (400, "invalid-query"));

    // None of it left a row behind.
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM uploads").fetch_one(&app.state.db).await.unwrap();
    assert_eq!(n, 0);
}

#[tokio::test]
async fn finished_uploads_refuse_more_parts_and_aborts() {
    let app = spawn_app(Backend::Embedded).await;
    let bytes = part_bytes(9, 100);
    let (id, last) = app.upload("done.txt", std::slice::from_ref(&bytes)).await;
    assert_eq!(last["state"], "complete");
    let sign = json!({"parts": [{"number": 1, "sha1": sha1_b64(&bytes), "size": 100}]});
    expect(&app, Method::POST, &format!("/uploads/{id}/parts/sign"), Some(sign), 409, "upload-complete").await;
    expect(&app, Method::DELETE, &format!("/uploads/{id}"), None, 409, "upload-complete").await;
    let other = sha1_hex(b"other");
    let (s, _) = app.post(&format!("/uploads/{id}/complete"), json!({"sha1": sha1_hex(&bytes)})).await;
    assert_eq!(s, 200, "completing twice is fine");
    expect(&app, Method::POST, &format!("/uploads/{id}/complete"), Some(json!({"sha1": other})), 409, "sha1-conflict")
        .await;
    // A second report of the last part answers the same file.
    let (s, v) = app.report(&id, 1, "\"x\"", &sha1_b64(&bytes)).await;
    assert_eq!((s, &v["file"]["file_id"]), (200, &last["file"]["file_id"]));
}

#[tokio::test]
async fn local_part_urls_refuse_tampering_and_expiry() {
    let (mut s, dir) = settings(Backend::Embedded).await;
    s.uploads.sign_ttl_secs = 1;
    let app = spawn_with(s, dir).await;
    let bytes = part_bytes(10, 64);
    let created = app.create("t.bin", 64).await;
    let id = created["upload_id"].as_str().unwrap();
    let (_, v) = app
        .post(
            &format!("/uploads/{id}/parts/sign"),
            json!({"parts": [{"number": 1, "sha1": sha1_b64(&bytes), "size": 64}]}),
        )
        .await;
    let mut tampered = v["parts"][0].clone();
    let url = tampered["url"].as_str().unwrap().replace("size=64", "size=65");
    tampered["url"] = json!(url);
    let (status, _) = put_signed(&app.client, &tampered, part_bytes(10, 65)).await;
    assert_eq!(status, 403);
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (status, _) = put_signed(&app.client, &v["parts"][0], bytes).await;
    assert_eq!(status, 403, "an expired URL is refused");
}
