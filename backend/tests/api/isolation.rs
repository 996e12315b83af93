//! Each user sees only their own uploads and files: on every route, another user's id gets
//! exactly what an id that never existed gets (404, same code and message), and the owner's
//! data is unchanged afterwards. Without a token, every such route is 401.

use reqwest::Method;
use serde_json::{json, Value};

use crate::support::*;

on_both_backends!(another_users_ids_are_unknown_on_every_route);

async fn another_users_ids_are_unknown_on_every_route(backend: Backend) {
    let alice = spawn_app(backend).await;
    // Alice's open upload (one part of three sent), stored file and share link.
    let parts = [part_bytes(71, PART as usize), part_bytes(72, PART as usize), part_bytes(73, 100)];
    let size: usize = parts.iter().map(Vec::len).sum();
    let (status, open) = alice.post("/uploads", json!({"name": "a.bin", "size": size, "last_modified": 7})).await;
    assert_eq!(status, 201, "{open}");
    let up = open["upload_id"].as_str().unwrap().to_owned();
    alice.send_part(&up, 1, &parts[0]).await;
    let content = part_bytes(74, 3000);
    let (_, last) = alice.upload("secret.txt", std::slice::from_ref(&content)).await;
    let file = last["file"]["file_id"].as_str().unwrap().to_owned();
    // Settled first, so that the comparison at the end sees only what Bob could change.
    assert_eq!(alice.wait_verified(&file).await, "verified");
    let (_, share) = alice.post(&format!("/files/{file}/shares"), json!({})).await;
    let share_id = share["share_id"].as_str().unwrap().to_owned();
    let before_upload = alice.get(&format!("/uploads/{up}")).await;
    let before_files = alice.get("/files").await;

    let bob = alice.as_new_user().await;
    let part = json!({"parts": [{"number": 2, "sha1": sha1_b64(&parts[1]), "size": PART}]});
    let report = json!({"etag": "\"x\"", "sha1": sha1_b64(&parts[1])});
    let claim = json!({"sha1": sha1_hex(b"x")});
    // Every route that names an upload or file, with Alice's id and with one that never was.
    let routes = |u: &str, f: &str, s: &str| -> Vec<(Method, String, Option<Value>)> {
        vec![
            (Method::GET, format!("/uploads/{u}"), None),
            (Method::PATCH, format!("/uploads/{u}"), Some(claim.clone())),
            (Method::POST, format!("/uploads/{u}/parts/sign"), Some(part.clone())),
            (Method::PUT, format!("/uploads/{u}/parts/2"), Some(report.clone())),
            (Method::POST, format!("/uploads/{u}/complete"), Some(json!({}))),
            (Method::POST, format!("/uploads/{u}/proof"), Some(claim.clone())),
            (Method::DELETE, format!("/uploads/{u}"), None),
            (Method::GET, format!("/files/{f}"), None),
            (Method::GET, format!("/files/{f}/content"), None),
            (Method::GET, format!("/files/{f}/download-url"), None),
            (Method::POST, format!("/files/{f}/shares"), Some(json!({}))),
            (Method::DELETE, format!("/files/{f}/shares/{s}"), None),
            (Method::DELETE, format!("/files/{f}"), None),
        ]
    };
    let theirs = routes(&up, &file, &share_id);
    let nobodys = routes("up_00000000000000000000000000000000", "fi_00000000000000000000000000000000", &share_id);
    for ((method, path, body), (_, unknown, _)) in theirs.iter().zip(&nobodys) {
        let got = bob.call(method.clone(), path, body.clone()).await;
        let none = bob.call(method.clone(), unknown, body.clone()).await;
        assert_eq!(got.0, 404, "{method} {path}: {}", got.1);
        assert_eq!(got, none, "{method} {path} must look exactly like an unknown id");
        // And without a token: 401, saying how to authenticate.
        let mut req = alice.client.request(method.clone(), alice.url(path));
        if let Some(b) = body {
            req = req.json(b);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status().as_u16(), 401, "{method} {path} without a token");
        assert_eq!(r.headers()["www-authenticate"], "Bearer realm=\"shardrop\"");
        assert_eq!(r.json::<Value>().await.unwrap()["code"], "unauthorized");
    }
    for path in ["/files", "/uploads", "/users/me"] {
        let method = if path == "/uploads" { Method::POST } else { Method::GET };
        let r = alice.client.request(method, alice.url(path)).json(&json!({})).send().await.unwrap();
        assert_eq!(r.status().as_u16(), 401, "{path} without a token");
    }
    // Bob's list holds nothing of Alice's; the same file (name, size, time) is a new upload
    // for him, not a resume of hers.
    assert_eq!(bob.get("/files").await, (200, json!({"files": [], "next_cursor": null})));
    let (status, v) = bob.post("/uploads", json!({"name": "a.bin", "size": size, "last_modified": 7})).await;
    assert_eq!(status, 201, "{v}");
    assert_ne!(v["upload_id"], json!(up));
    assert_eq!(v["parts_done"], json!([]));

    // Alice's data is as it was, and still hers to use.
    assert_eq!(alice.get(&format!("/uploads/{up}")).await, before_upload);
    assert_eq!(alice.get("/files").await, before_files);
    assert_eq!(alice.download(&file, None).await, (200, content));
    let r = alice.client.get(format!("{}{}", alice.base, share["url"].as_str().unwrap())).send().await.unwrap();
    assert_eq!(r.status(), 302, "Alice's share link still works");
    for (i, bytes) in parts.iter().enumerate().skip(1) {
        alice.send_part(&up, i as u32 + 1, bytes).await;
    }
    let (_, v) = alice.get(&format!("/uploads/{up}")).await;
    assert_eq!(v["state"], "complete", "{v}");
}
