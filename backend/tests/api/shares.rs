//! Share links: someone without an account downloads one file, until the link expires or is
//! revoked; both refusals hold at once.

use std::time::Duration;

use reqwest::Method;
use serde_json::json;

use crate::support::*;

on_both_backends!(share_links_expire_and_revoke);

async fn share_links_expire_and_revoke(backend: Backend) {
    let app = spawn_app(backend).await;
    let bytes = part_bytes(41, 5000);
    let (_, last) = app.upload("shared.bin", std::slice::from_ref(&bytes)).await;
    let file_id = last["file"]["file_id"].as_str().unwrap().to_owned();
    let shares = format!("/files/{file_id}/shares");
    let share = |body| app.post(&shares, body);
    // Anyone with the link downloads the file (a fresh client: no cookies, no token).
    let (status, link) = share(json!({})).await;
    assert_eq!(status, 201, "{link}");
    let token = link["token"].as_str().unwrap();
    assert_eq!(link["url"], format!("/api/v1/shares/{token}"));
    let stranger = reqwest::Client::new();
    let follow = |url: String| stranger.get(format!("{}{url}", app.base)).send();
    let got = follow(link["url"].as_str().unwrap().to_owned()).await.unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(got.bytes().await.unwrap().as_ref(), &bytes[..]);
    // Revoked: refused at once.
    let revoke = format!("/files/{file_id}/shares/{}", link["share_id"].as_str().unwrap());
    assert_eq!(app.call(Method::DELETE, &revoke, None).await.0, 204);
    let r = follow(link["url"].as_str().unwrap().to_owned()).await.unwrap();
    assert_eq!(r.status(), 410);
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["code"], "share-revoked");
    // Expired: refused.
    let (_, short) = share(json!({"ttl_secs": 1})).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let r = follow(short["url"].as_str().unwrap().to_owned()).await.unwrap();
    assert_eq!(r.status(), 410);
    assert_eq!(r.json::<serde_json::Value>().await.unwrap()["code"], "share-expired");
    // Bad input and unknown ids.
    let (status, v) = share(json!({"ttl_secs": 0})).await;
    assert_eq!((status, v["code"].as_str()), (422, Some("invalid-ttl")));
    let (status, v) = app.post("/files/fi_nope/shares", json!({})).await;
    assert_eq!((status, v["code"].as_str()), (404, Some("file-not-found")));
    let (status, v) = app.call(Method::DELETE, &format!("/files/{file_id}/shares/sh_nope"), None).await;
    assert_eq!((status, v["code"].as_str()), (404, Some("share-not-found")));
    let r = follow("/api/v1/shares/not-a-token".into()).await.unwrap();
    assert_eq!(r.status(), 404);
    // The file deleted: its links go with it.
    let (_, live) = share(json!({})).await;
    assert_eq!(app.call(Method::DELETE, &format!("/files/{file_id}"), None).await.0, 204);
    assert_eq!(follow(live["url"].as_str().unwrap().to_owned()).await.unwrap().status(), 404);
}
