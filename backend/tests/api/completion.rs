//! Several replicas, one upload: exactly-once completion, and losing Redis mid-upload.

use serde_json::json;

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eight_concurrent_last_reports_on_three_replicas_compose_once() {
    let apps = spawn_replicas(3).await;
    let parts = [part_bytes(21, PART as usize), part_bytes(22, 1000)];
    let created = apps[0].create("race.bin", PART + 1000).await;
    let id = created["upload_id"].as_str().unwrap().to_owned();
    let mut last = (String::new(), String::new());
    for (i, bytes) in parts.iter().enumerate() {
        let n = i as u32 + 1;
        let sha = sha1_b64(bytes);
        // Sign and PUT through different replicas.
        let (status, etag) = apps[i % 3].put_part(&id, n, bytes, bytes).await;
        assert_eq!(status, 200);
        if n == 1 {
            let (_, v) = apps[1].report(&id, 1, &etag, &sha).await;
            assert_eq!(v["state"], "uploading");
        } else {
            last = (etag, sha);
        }
    }
    let reports = (0..8).map(|i| {
        let app = &apps[i % 3];
        let (etag, sha) = &last;
        let id = &id;
        async move { app.report(id, 2, etag, sha).await }
    });
    let answers = futures_util::future::join_all(reports).await;
    for (status, v) in &answers {
        assert_eq!(*status, 200, "{v}");
        assert!(["complete", "completing"].contains(&v["state"].as_str().unwrap()), "{v}");
    }
    let mut compositions = 0;
    let mut completed = 0;
    for app in &apps {
        compositions += app.metric("shardrop_compositions_total").await;
        completed += app.metric("shardrop_uploads_completed_total").await;
    }
    assert_eq!((compositions, completed), (1, 1), "composed once, across all replicas");
    let (rows,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM files WHERE upload_id = $1")
        .bind(&id)
        .fetch_one(&apps[0].state.db)
        .await
        .unwrap();
    assert_eq!(rows, 1, "one file row");
    // Every replica now answers the same file.
    let file_ids: Vec<_> =
        futures_util::future::join_all(apps.iter().map(|a| async { a.get(&format!("/uploads/{id}")).await }))
            .await
            .into_iter()
            .map(|(_, v)| v["file"]["file_id"].clone())
            .collect();
    assert!(file_ids.iter().all(|f| f == &file_ids[0] && f.is_string()), "{file_ids:?}");
}

async fn flush_prefix(app: &TestApp) -> usize {
    let client = redis::Client::open(redis_url()).unwrap();
    let mut c = client.get_multiplexed_async_connection().await.unwrap();
    let pattern = format!("{}:*", app.settings.tracker.prefix);
    let keys: Vec<String> = redis::cmd("KEYS").arg(&pattern).query_async(&mut c).await.unwrap();
    if !keys.is_empty() {
        let _: () = redis::cmd("DEL").arg(&keys).query_async(&mut c).await.unwrap();
    }
    keys.len()
}

/// Redis loses everything about an upload mid-way (as after FLUSHALL, scoped to this
/// test's key prefix so parallel tests keep theirs): the upload completes from ListParts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_flushed_mid_upload_still_completes() {
    let apps = spawn_replicas(2).await;
    let parts: Vec<Vec<u8>> = (0..4).map(|i| part_bytes(30 + i, if i == 3 { 77 } else { PART as usize })).collect();
    let whole = parts.concat();
    let created = apps[0].create("flush.bin", whole.len() as u64).await;
    let id = created["upload_id"].as_str().unwrap();
    let mut etags = Vec::new();
    for (i, bytes) in parts.iter().enumerate() {
        let (status, etag) = apps[i % 2].put_part(id, i as u32 + 1, bytes, bytes).await;
        assert_eq!(status, 200);
        etags.push(etag);
    }
    for n in [1u32, 2] {
        apps[0].report(id, n, &etags[n as usize - 1], &sha1_b64(&parts[n as usize - 1])).await;
    }
    assert!(flush_prefix(&apps[0]).await > 0, "the test must really delete the tracker's keys");
    // The status is rebuilt from storage: all four parts are there (3 and 4 never reported).
    let (_, v) = apps[1].get(&format!("/uploads/{id}")).await;
    assert_eq!(v["parts_done"], json!([1, 2, 3, 4]), "{v}");
    flush_prefix(&apps[0]).await;
    // A report after the loss rebuilds and completes.
    let (status, v) = apps[1].report(id, 4, &etags[3], &sha1_b64(&parts[3])).await;
    assert_eq!((status, &v["state"]), (200, &json!("complete")), "{v}");
    let file_id = v["file"]["file_id"].as_str().unwrap();
    let (_, body) = apps[0].download(file_id, None).await;
    assert_eq!(sha1_hex(&body), sha1_hex(&whole));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reaper_on_three_replicas_aborts_once_and_spares_active_uploads() {
    let (mut s, dir) = settings(Backend::S3).await;
    s.uploads.ttl_secs = 1;
    let mut apps = vec![spawn_with(s.clone(), dir).await];
    for _ in 0..2 {
        let d = tempfile::tempdir().unwrap();
        let mut s = s.clone();
        s.data_dir = d.path().to_owned();
        // One user throughout: any replica serves their uploads.
        apps.push(spawn_with(s, d).await.with_token(&apps[0].token, &apps[0].username));
    }
    let abandoned: Vec<String> = futures_util::future::join_all((0..3).map(|i| {
        let app = &apps[0];
        async move { app.create(&format!("a{i}"), 3 * PART).await }
    }))
    .await
    .into_iter()
    .map(|v| v["upload_id"].as_str().unwrap().to_owned())
    .collect();
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let active = apps[1].create("active", 3 * PART).await;
    let sweeps =
        futures_util::future::join_all(apps.iter().map(|a| shardrop_backend::uploads::reaper::sweep(&a.state))).await;
    let aborted: usize = sweeps.into_iter().map(|s| s.unwrap().aborted).sum();
    assert_eq!(aborted, 3, "each abandoned upload aborted exactly once");
    for id in &abandoned {
        assert_eq!(apps[2].get(&format!("/uploads/{id}")).await.0, 404);
    }
    assert_eq!(apps[2].get(&format!("/uploads/{}", active["upload_id"].as_str().unwrap())).await.0, 200);
}
