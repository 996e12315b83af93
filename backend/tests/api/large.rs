//! Large uploads to Garage: 1 GiB through the API. (The cost of completing 1,000 and
//! 10,000 parts next to Garage's own CompleteMultipartUpload is benchmark P4,
//! `node bench/control/p4.mjs`.)

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use serde_json::json;
use sha1::{Digest, Sha1};

use crate::support::*;

/// Sends `size` bytes as planned by the server, 4 parts in flight; answers
/// (whole-file SHA-1, file id, time the completing report took).
async fn send(app: &TestApp, name: &str, size: u64) -> (String, String, Duration) {
    let created = app.create(name, size).await;
    let id = created["upload_id"].as_str().unwrap().to_owned();
    let part_size = created["part_size"].as_u64().unwrap();
    let count = created["part_count"].as_u64().unwrap() as u32;
    let mut whole = Sha1::new();
    let results: Vec<_> = futures_util::stream::iter(1..=count)
        .map(|n| {
            let len = part_size.min(size - u64::from(n - 1) * part_size) as usize;
            let bytes = part_bytes(u64::from(n), len);
            whole.update(&bytes);
            let id = id.clone();
            async move {
                let sha = sha1_b64(&bytes);
                let (status, etag) = app.put_part(&id, n, &bytes, &bytes).await;
                assert_eq!(status, 200, "part {n}");
                (n, etag, sha)
            }
        })
        .buffer_unordered(4)
        .collect()
        .await;
    // Report all but one, then time the report that completes.
    let mut last = None;
    for (n, etag, sha) in results {
        if n == count {
            last = Some((etag, sha));
            continue;
        }
        let (status, _) = app.report(&id, n, &etag, &sha).await;
        assert_eq!(status, 200);
    }
    let (etag, sha) = last.unwrap();
    let started = Instant::now();
    let (status, v) = app.report(&id, count, &etag, &sha).await;
    let took = started.elapsed();
    assert_eq!((status, &v["state"]), (200, &json!("complete")), "{v}");
    (hex::encode(whole.finalize()), v["file"]["file_id"].as_str().unwrap().to_owned(), took)
}

async fn stored_sha1(app: &TestApp, file_id: &str) -> String {
    let resp = app.api.get(app.url(&format!("/files/{file_id}/content"))).send().await.unwrap();
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    let mut resp = app.client.get(location).send().await.unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    let mut h = Sha1::new();
    while let Some(chunk) = resp.chunk().await.unwrap() {
        h.update(&chunk);
    }
    hex::encode(h.finalize())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_gib_to_garage_is_stored_intact() {
    let (mut s, dir) = settings(Backend::S3).await;
    s.uploads.part_size = 8 * MIB;
    let app = spawn_with(s, dir).await;
    let started = Instant::now();
    let (sha, file_id, complete) = send(&app, "1gib.bin", 1024 * MIB).await;
    eprintln!("1 GiB (128 parts) sent in {:?}; the completing report took {complete:?}", started.elapsed());
    assert_eq!(stored_sha1(&app, &file_id).await, sha, "stored bytes hash to the source's SHA-1");
    assert_eq!(app.wait_verified(&file_id).await, "verified");
    let (_, f) = app.get(&format!("/files/{file_id}")).await;
    assert_eq!(f["sha1"], sha, "the server's own hash of the stored bytes");
    app.call(reqwest::Method::DELETE, &format!("/files/{file_id}"), None).await;
}
