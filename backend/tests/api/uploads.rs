//! The upload life cycle, on both backends.

use std::time::Duration;

use serde_json::json;

use crate::support::*;

on_both_backends!(
    multipart_round_trip,
    single_put_and_empty_file,
    corrupted_part_is_refused,
    part_reported_five_times_counts_once,
    resume_by_name_size_and_mtime,
    instant_upload_of_verified_content,
    claiming_a_stored_hash_without_the_bytes_gets_nothing,
    wrong_claimed_sha1_never_becomes_a_dedup_target,
    abort_removes_the_upload_everywhere,
    files_list_get_delete,
    files_are_found_by_name,
    download_urls_expire,
    reaper_aborts_idle_uploads,
    a_small_file_is_stored_in_three_requests,
    open_uploads_are_listed_newest_first_in_pages,
);

fn three_parts(seed: u64) -> Vec<Vec<u8>> {
    vec![part_bytes(seed, PART as usize), part_bytes(seed + 1, PART as usize), part_bytes(seed + 2, MIB as usize + 3)]
}

async fn multipart_round_trip(backend: Backend) {
    let app = spawn_app(backend).await;
    let parts = three_parts(1);
    let whole: Vec<u8> = parts.concat();
    let (id, last) = app.upload("three.bin", &parts).await;
    assert_eq!(last["state"], "complete", "{last}");
    assert_eq!(last["parts_done"], 3);
    let file_id = last["file"]["file_id"].as_str().unwrap().to_owned();

    let (status, v) = app.get(&format!("/uploads/{id}")).await;
    assert_eq!((status, &v["state"], &v["parts_done"]), (200, &json!("complete"), &json!([1, 2, 3])));

    let (status, body) = app.download(&file_id, None).await;
    assert_eq!(status, 200);
    assert_eq!(sha1_hex(&body), sha1_hex(&whole));
    // A range across the first part boundary.
    let (start, end) = (PART as usize - 10, PART as usize + 9);
    let (status, body) = app.download(&file_id, Some(&format!("bytes={start}-{end}"))).await;
    assert_eq!(status, 206);
    assert_eq!(body, &whole[start..=end]);

    // No SHA-1 was claimed: the verifier names the content from the stored bytes.
    assert_eq!(app.wait_verified(&file_id).await, "verified");
    let (_, f) = app.get(&format!("/files/{file_id}")).await;
    assert_eq!(f["sha1"], sha1_hex(&whole));
    assert_eq!(f["size"], whole.len());
    assert_eq!(app.metric("shardrop_compositions_total").await, 1);
}

async fn single_put_and_empty_file(backend: Backend) {
    let app = spawn_app(backend).await;
    for len in [1024usize, 0] {
        let bytes = part_bytes(7, len);
        let created = app.create("small.txt", len as u64).await;
        assert_eq!(created["part_count"], 1);
        let id = created["upload_id"].as_str().unwrap();
        let sha = sha1_b64(&bytes);
        let (status, etag) = app.put_part(id, 1, &bytes, &bytes).await;
        assert_eq!(status, 200);
        let (status, v) = app.report(id, 1, &etag, &sha).await;
        assert_eq!((status, &v["state"]), (200, &json!("complete")), "{v}");
        let (status, body) = app.download(v["file"]["file_id"].as_str().unwrap(), None).await;
        assert_eq!((status, body), (200, bytes));
    }
}

async fn corrupted_part_is_refused(backend: Backend) {
    let app = spawn_app(backend).await;
    let parts = three_parts(2);
    let created = app.create("corrupt.bin", parts.iter().map(|p| p.len() as u64).sum()).await;
    let id = created["upload_id"].as_str().unwrap();
    // Signed for the real bytes, sent with one byte flipped.
    let mut bad = parts[0].clone();
    bad[12345] ^= 0x40;
    let (status, _) = app.put_part(id, 1, &bad, &parts[0]).await;
    assert_eq!(status, 400, "the storage must refuse bytes that do not match the signed SHA-1");
    // Nothing was stored, so completion names every part as missing.
    let (status, v) = app.get(&format!("/uploads/{id}")).await;
    assert_eq!((status, &v["parts_done"]), (200, &json!([])));
    let (status, v) = app.post(&format!("/uploads/{id}/complete"), json!({})).await;
    assert_eq!((status, v["code"].as_str()), (409, Some("parts-missing")), "{v}");
    // A false report does not complete anything either.
    for n in 1..=3 {
        app.report(id, n, "\"forged\"", &sha1_b64(&parts[n as usize - 1])).await;
    }
    let (_, v) = app.get(&format!("/uploads/{id}")).await;
    assert_eq!(v["state"], "uploading", "{v}");
    assert_eq!(app.metric("shardrop_compositions_total").await, 0);
}

/// The storage's part check is found out, not assumed: the run's script names what its
/// server does (`SHARDROP_TEST_S3_PART_CHECK`: Garage `sha1`, Ceph RGW 16 `md5`).
#[tokio::test]
async fn part_check_is_detected() {
    let app = spawn_app(Backend::S3).await;
    let detected = app.state.store.part_check();
    if let Ok(expected) = std::env::var("SHARDROP_TEST_S3_PART_CHECK") {
        assert_eq!(serde_json::to_value(detected).unwrap(), json!(expected));
    }
    let created = app.create("check.bin", 10).await;
    assert_eq!(created["part_check"], serde_json::to_value(detected).unwrap());
}

/// Where parts are checked by MD5, signing without one is refused before any URL exists;
/// and wherever an MD5 is signed in, bytes that do not match it are refused.
#[tokio::test]
async fn md5_signed_parts() {
    let app = spawn_app(Backend::S3).await;
    let parts = three_parts(21);
    let created = app.create("md5.bin", parts.iter().map(|p| p.len() as u64).sum()).await;
    let id = created["upload_id"].as_str().unwrap();
    let path = format!("/uploads/{id}/parts/sign");
    let sign = |md5: Option<String>| {
        let mut part = json!({"number": 1, "sha1": sha1_b64(&parts[0]), "size": PART});
        if let Some(m) = md5 {
            part["md5"] = json!(m);
        }
        app.post(&path, json!({ "parts": [part] }))
    };
    if created["part_check"] == "md5" {
        let (status, v) = sign(None).await;
        assert_eq!((status, v["code"].as_str()), (422, Some("md5-required")), "{v}");
    }
    let (status, v) = sign(Some("not an md5".into())).await;
    assert_eq!((status, v["code"].as_str()), (422, Some("invalid-md5")), "{v}");
    // The SHA-1 is right; the MD5 signed in is another part's.
    let other = base64_md5(&parts[1]);
    let (status, v) = sign(Some(other)).await;
    assert_eq!(status, 200, "{v}");
    let (status, _) = put_signed(&app.client, &v["parts"][0], parts[0].clone()).await;
    assert_eq!(status, 400, "the storage must refuse bytes that do not match the signed MD5");
    let (_, v) = app.get(&format!("/uploads/{id}")).await;
    assert_eq!(v["parts_done"], json!([]));
    // With the right MD5 the same bytes go in.
    let (status, v) = sign(Some(base64_md5(&parts[0]))).await;
    assert_eq!(status, 200, "{v}");
    let (status, _) = put_signed(&app.client, &v["parts"][0], parts[0].clone()).await;
    assert_eq!(status, 200);
}

async fn part_reported_five_times_counts_once(backend: Backend) {
    let app = spawn_app(backend).await;
    let parts = three_parts(3);
    let created = app.create("five.bin", parts.iter().map(|p| p.len() as u64).sum()).await;
    let id = created["upload_id"].as_str().unwrap();
    let sha = sha1_b64(&parts[0]);
    let (_, etag) = app.put_part(id, 1, &parts[0], &parts[0]).await;
    for _ in 0..5 {
        let (status, v) = app.report(id, 1, &etag, &sha).await;
        assert_eq!((status, &v["parts_done"], &v["state"]), (200, &json!(1), &json!("uploading")), "{v}");
    }
    for n in [2u32, 3] {
        let v = app.send_part(id, n, &parts[n as usize - 1]).await;
        assert_eq!(v["parts_done"], n);
        assert_eq!(v["state"], if n == 3 { "complete" } else { "uploading" });
    }
}

async fn resume_by_name_size_and_mtime(backend: Backend) {
    let app = spawn_app(backend).await;
    let parts = three_parts(4);
    let size: u64 = parts.iter().map(|p| p.len() as u64).sum();
    let req = json!({"name": "resume.bin", "size": size, "last_modified": 1_700_000_000_000i64});
    let (status, first) = app.post("/uploads", req.clone()).await;
    assert_eq!(status, 201);
    let id = first["upload_id"].as_str().unwrap();
    app.send_part(id, 2, &parts[1]).await;
    let (status, again) = app.post("/uploads", req).await;
    assert_eq!((status, &again["upload_id"], &again["parts_done"]), (200, &first["upload_id"], &json!([2])));
    // Another modification time is another file.
    let (status, other) = app.post("/uploads", json!({"name": "resume.bin", "size": size, "last_modified": 1})).await;
    assert_eq!(status, 201);
    assert_ne!(other["upload_id"], first["upload_id"]);
}

async fn instant_upload_of_verified_content(backend: Backend) {
    let app = spawn_sharing_app(backend).await;
    let parts = three_parts(5);
    let whole = parts.concat();
    let sha = sha1_hex(&whole);
    let (id, _) = app.upload("orig.bin", &parts).await;
    let (status, v) = app.post(&format!("/uploads/{id}/complete"), json!({"sha1": sha})).await;
    assert_eq!(status, 200, "{v}");
    let file_id = v["file"]["file_id"].as_str().unwrap().to_owned();
    assert_eq!(app.wait_verified(&file_id).await, "verified");

    // Same size and probe as a verified file: a hint to hash before sending.
    let probe = shardrop_engine::probe::of(&whole);
    let (status, v) = app.post("/uploads", json!({"name": "p", "size": whole.len(), "probe": probe})).await;
    assert_eq!((status, &v["dedup_candidate"]), (201, &json!(true)), "{v}");
    let other = shardrop_engine::probe::of(b"other");
    let (status, v) = app.post("/uploads", json!({"name": "p", "size": whole.len(), "probe": other})).await;
    assert_eq!((status, &v["dedup_candidate"]), (201, &json!(false)), "{v}");
    let (status, v) = app.post("/uploads", json!({"name": "p", "size": 1, "probe": "xyz"})).await;
    assert_eq!((status, v["code"].as_str()), (422, Some("invalid-probe")));
    // The owner of verified content claims it again: instant at once, nothing to prove; a
    // file entry of its own, backed by the same stored bytes.
    let (status, v) = app.post("/uploads", json!({"name": "again.bin", "size": whole.len(), "sha1": sha})).await;
    assert_eq!((status, &v["state"], &v["challenge"]), (201, &json!("instant"), &json!(null)), "{v}");
    assert_eq!(v["parts_done"], json!([1, 2, 3]), "nothing left to send");
    let again = v["file"]["file_id"].as_str().unwrap().to_owned();
    assert_ne!(again, file_id);
    assert_eq!(
        (&v["file"]["verified"], &v["file"]["sha1"], &v["file"]["name"]),
        (&json!(true), &json!(sha), &json!("again.bin"))
    );
    // Someone else with the same content: a challenge, answered from the bytes; nothing else
    // to send, and a file entry of their own.
    let other = app.as_new_user().await;
    let (status, v) = other.post("/uploads", json!({"name": "copy.bin", "size": whole.len(), "sha1": sha})).await;
    assert_eq!((status, &v["state"]), (201, &json!("uploading")), "{v}");
    let v = prove(&other, &v, &whole).await;
    assert_eq!(v["state"], "instant", "{v}");
    let copy = v["file"]["file_id"].as_str().unwrap().to_owned();
    assert!(copy != file_id && copy != again);
    assert_eq!(other.download(&copy, None).await, (200, whole.clone()));
    // The same hash with another size is not that content.
    let (status, v) = other.post("/uploads", json!({"name": "x", "size": 3, "sha1": sha})).await;
    assert_eq!((status, &v["challenge"]), (201, &json!(null)));
    // The hash learnt mid-upload: challenged; proved, the upload ends as instant and its
    // parts are dropped.
    let third = app.as_new_user().await;
    let created = third.create("late.bin", whole.len() as u64).await;
    let late = created["upload_id"].as_str().unwrap();
    third.send_part(late, 1, &parts[0]).await;
    let (status, v) = third.call(reqwest::Method::PATCH, &format!("/uploads/{late}"), Some(json!({"sha1": sha}))).await;
    assert_eq!((status, &v["state"]), (200, &json!("uploading")), "{v}");
    let v = prove(&third, &v, &whole).await;
    assert_eq!(v["state"], "instant", "{v}");
    let late_file = v["file"]["file_id"].as_str().unwrap().to_owned();
    assert_eq!(app.metric("shardrop_compositions_total").await, 1);
    assert_eq!(app.metric("shardrop_uploads_instant_total").await, 3);

    // Users own entries, not content: deleting one user's file leaves the others' intact,
    // and the stored object goes with the last of them.
    let key = shardrop_backend::files::repo::get(&app.state.db, &file_id).await.unwrap().unwrap().storage_key;
    for (who, id) in [(&app, &file_id), (&app, &again), (&other, &copy)] {
        assert_eq!(who.call(reqwest::Method::DELETE, &format!("/files/{id}"), None).await.0, 204);
        assert_eq!(third.download(&late_file, None).await, (200, whole.clone()), "after deleting {id}");
    }
    assert!(app.state.store.head(&key).await.unwrap().is_some());
    assert_eq!(third.call(reqwest::Method::DELETE, &format!("/files/{late_file}"), None).await.0, 204);
    assert_eq!(app.state.store.head(&key).await.unwrap(), None, "the last file took the object with it");
}

/// Answers an upload's challenge from `bytes`; answers the proof's JSON.
async fn prove(app: &TestApp, upload: &serde_json::Value, bytes: &[u8]) -> serde_json::Value {
    let c = &upload["challenge"];
    let (offset, length) = (c["offset"].as_u64().unwrap() as usize, c["length"].as_u64().unwrap() as usize);
    assert!(length > 0 && offset + length <= bytes.len(), "{c}");
    let id = upload["upload_id"].as_str().unwrap();
    let nonce = hex::decode(c["nonce"].as_str().unwrap()).unwrap();
    assert_eq!(nonce.len(), 16);
    let answer = sha1_hex(&[&nonce[..], &bytes[offset..offset + length]].concat());
    let (status, v) = app.post(&format!("/uploads/{id}/proof"), json!({ "sha1": answer })).await;
    assert_eq!(status, 200, "{v}");
    v
}

/// A claimed hash alone never grants stored content: without the bytes the proof fails,
/// nothing is linked, the challenge is used up, and the upload stays an ordinary one.
async fn claiming_a_stored_hash_without_the_bytes_gets_nothing(backend: Backend) {
    let app = spawn_sharing_app(backend).await;
    let parts = three_parts(8);
    let whole = parts.concat();
    let sha = sha1_hex(&whole);
    let (_, last) = app.upload("secret.bin", &parts).await;
    let file_id = last["file"]["file_id"].as_str().unwrap().to_owned();
    assert_eq!(app.wait_verified(&file_id).await, "verified");

    let thief = app.as_new_user().await;
    let (status, v) = thief.post("/uploads", json!({"name": "stolen.bin", "size": whole.len(), "sha1": sha})).await;
    assert_eq!(status, 201, "{v}");
    let id = v["upload_id"].as_str().unwrap().to_owned();
    assert!(v["challenge"]["length"].as_u64().unwrap() > 0, "{v}");
    // A guess (here: the hash of the whole file, which the claimant knows) is refused.
    let (status, e) = thief.post(&format!("/uploads/{id}/proof"), json!({ "sha1": sha })).await;
    assert_eq!((status, e["code"].as_str()), (403, Some("challenge-failed")), "{e}");
    let (status, v) = thief.get(&format!("/uploads/{id}")).await;
    assert_eq!(
        (status, &v["state"], &v["file"], &v["challenge"]),
        (200, &json!("uploading"), &json!(null), &json!(null))
    );
    // One try per challenge, and one challenge per upload: claiming again draws no new range.
    let (status, e) = thief.post(&format!("/uploads/{id}/proof"), json!({ "sha1": sha })).await;
    assert_eq!((status, e["code"].as_str()), (409, Some("no-challenge")), "{e}");
    let (status, v) = thief.call(reqwest::Method::PATCH, &format!("/uploads/{id}"), Some(json!({"sha1": sha}))).await;
    assert_eq!((status, &v["challenge"]), (200, &json!(null)), "{v}");
    // A small file: the range is the whole file, and its SHA-1 is what the claimant knows;
    // the nonce still makes that no answer.
    let small = part_bytes(9, 1000);
    let (_, last) = app.upload("small.bin", std::slice::from_ref(&small)).await;
    assert_eq!(app.wait_verified(last["file"]["file_id"].as_str().unwrap()).await, "verified");
    let (_, v) = thief.post("/uploads", json!({"name": "s.bin", "size": 1000, "sha1": sha1_hex(&small)})).await;
    assert_eq!((&v["challenge"]["offset"], &v["challenge"]["length"]), (&json!(0), &json!(1000)), "{v}");
    let path = format!("/uploads/{}/proof", v["upload_id"].as_str().unwrap());
    let (status, e) = thief.post(&path, json!({ "sha1": sha1_hex(&small) })).await;
    assert_eq!((status, e["code"].as_str()), (403, Some("challenge-failed")), "{e}");
    assert_eq!(app.metric("shardrop_challenges_failed_total").await, 2);
    assert_eq!(app.metric("shardrop_uploads_instant_total").await, 0);
    let (_, list) = thief.get("/files").await;
    assert_eq!(list["files"], json!([]), "the thief holds no file");
}

async fn wrong_claimed_sha1_never_becomes_a_dedup_target(backend: Backend) {
    let app = spawn_sharing_app(backend).await;
    let parts = three_parts(6);
    let lie = sha1_hex(b"some other content");
    let size: usize = parts.iter().map(Vec::len).sum();
    // The lie is claimed up front (claimed after verification it would be a 409 conflict).
    let (status, v) = app.post("/uploads", json!({"name": "liar.bin", "size": size, "sha1": lie})).await;
    assert_eq!(status, 201, "{v}");
    let id = v["upload_id"].as_str().unwrap();
    let mut last = serde_json::Value::Null;
    for (i, bytes) in parts.iter().enumerate() {
        last = app.send_part(id, i as u32 + 1, bytes).await;
    }
    let file_id = last["file"]["file_id"].as_str().unwrap();
    assert_eq!(app.wait_verified(file_id).await, "corrupt");
    // Neither the liar nor anyone else gets anything for the lie: no instant, no challenge.
    let other = app.as_new_user().await;
    for who in [&app, &other] {
        let (status, v) = who.post("/uploads", json!({"name": "y", "size": size, "sha1": lie})).await;
        assert_eq!((status, &v["state"], &v["challenge"]), (201, &json!("uploading"), &json!(null)), "{v}");
    }
    // Nor for the file's real hash: its content is not verified as anything.
    let real = sha1_hex(&parts.concat());
    let (_, v) = other.post("/uploads", json!({"name": "z", "size": size, "sha1": real})).await;
    assert_eq!((&v["state"], &v["challenge"]), (&json!("uploading"), &json!(null)), "{v}");
}

async fn abort_removes_the_upload_everywhere(backend: Backend) {
    let app = spawn_app(backend).await;
    let parts = three_parts(7);
    let created = app.create("abort.bin", parts.iter().map(|p| p.len() as u64).sum()).await;
    let id = created["upload_id"].as_str().unwrap();
    app.send_part(id, 1, &parts[0]).await;
    let row = shardrop_backend::uploads::repo::get(&app.state.db, id).await.unwrap().unwrap();
    let storage_upload = row.storage_upload_id.unwrap();
    let (status, _) = app.call(reqwest::Method::DELETE, &format!("/uploads/{id}"), None).await;
    assert_eq!(status, 204);
    for (method, path) in [("GET", format!("/uploads/{id}")), ("DELETE", format!("/uploads/{id}"))] {
        let (status, v) = app.call(method.parse().unwrap(), &path, None).await;
        assert_eq!((status, v["code"].as_str()), (404, Some("upload-not-found")));
    }
    // Storage no longer knows the multipart upload.
    let listed = app.state.store.list_parts(&format!("objects/{id}"), &storage_upload).await;
    assert!(matches!(listed, Err(shardrop_backend::storage::StorageError::NoSuchUpload)), "{listed:?}");
    assert_eq!(app.metric("shardrop_uploads_aborted_total").await, 1);
}

async fn files_list_get_delete(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut ids = Vec::new();
    for i in 0..3u64 {
        let bytes = part_bytes(100 + i, 10 + i as usize);
        let (_, last) = app.upload(&format!("f{i}.txt"), &[bytes]).await;
        ids.push(last["file"]["file_id"].as_str().unwrap().to_owned());
    }
    let (status, page) = app.get("/files?limit=2").await;
    assert_eq!(status, 200);
    assert_eq!(page["files"].as_array().unwrap().len(), 2);
    assert_eq!(page["files"][0]["file_id"], ids[2], "newest first");
    let cursor = page["next_cursor"].as_str().unwrap();
    let (_, page2) = app.get(&format!("/files?limit=2&cursor={cursor}")).await;
    assert_eq!(page2["files"].as_array().unwrap().len(), 1);
    assert_eq!(page2["files"][0]["file_id"], ids[0]);
    assert!(page2["next_cursor"].is_null());

    let (status, _) = app.call(reqwest::Method::DELETE, &format!("/files/{}", ids[1]), None).await;
    assert_eq!(status, 204);
    let (status, v) = app.get(&format!("/files/{}", ids[1])).await;
    assert_eq!((status, v["code"].as_str()), (404, Some("file-not-found")));
    let (status, _) = app.get(&format!("/files/{}/content", ids[1])).await;
    assert_eq!(status, 404);
    let (_, all) = app.get("/files").await;
    assert_eq!(all["files"].as_array().unwrap().len(), 2);
}

/// `q` keeps the files whose name holds it, ignoring ASCII case, with `%`, `_` and `\\`
/// taken literally; pages of a search go on with its cursor; a `q` over 200 characters is
/// the client's mistake.
async fn files_are_found_by_name(backend: Backend) {
    let app = spawn_app(backend).await;
    let names =
        ["Holiday/beach 1.JPG", "holiday/beach 2.jpg", "work/report.pdf", "100%_done.txt", "100 done.txt", "a\\b.txt"];
    for (i, name) in names.iter().enumerate() {
        app.upload(name, &[part_bytes(300 + i as u64, 5 + i)]).await;
    }
    async fn found(app: &TestApp, q: &str) -> Vec<String> {
        let q = percent_encoding::utf8_percent_encode(q, percent_encoding::NON_ALPHANUMERIC).to_string();
        let (status, v) = app.get(&format!("/files?q={q}")).await;
        assert_eq!(status, 200, "{v}");
        let mut names: Vec<String> =
            v["files"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap().to_owned()).collect();
        names.sort();
        names
    }
    assert_eq!(found(&app, "BEACH").await, ["Holiday/beach 1.JPG", "holiday/beach 2.jpg"]);
    assert_eq!(found(&app, ".jpg").await, ["Holiday/beach 1.JPG", "holiday/beach 2.jpg"]);
    assert_eq!(found(&app, "%_").await, ["100%_done.txt"], "wildcards are literal");
    assert_eq!(found(&app, "0_d").await, Vec::<String>::new());
    assert_eq!(found(&app, "\\").await, ["a\\b.txt"]);
    assert_eq!(found(&app, "").await.len(), names.len(), "an empty q is every file");
    assert_eq!(found(&app, "nothing like it").await, Vec::<String>::new());

    let (_, first) = app.get("/files?q=holiday&limit=1").await;
    assert_eq!(first["files"][0]["name"], "holiday/beach 2.jpg", "newest first");
    let cursor = first["next_cursor"].as_str().unwrap();
    let cursor = percent_encoding::utf8_percent_encode(cursor, percent_encoding::NON_ALPHANUMERIC).to_string();
    let (_, second) = app.get(&format!("/files?q=holiday&limit=1&cursor={cursor}")).await;
    assert_eq!(second["files"][0]["name"], "Holiday/beach 1.JPG");
    assert!(second["next_cursor"].is_null(), "{second}");

    let (status, v) = app.get(&format!("/files?q={}", "x".repeat(201))).await;
    assert_eq!((status, v["code"].as_str()), (400, Some("invalid-query")), "{v}");
}

/// A download URL lives `uploads.download_ttl_secs`: within it, Range works and the name is
/// safe whatever it holds; past it, the storage refuses the URL.
async fn download_urls_expire(backend: Backend) {
    let (mut s, dir) = settings(backend).await;
    s.uploads.download_ttl_secs = 1;
    let app = spawn_with(s, dir).await;
    let bytes = part_bytes(31, 1000);
    let name = "a \"quoted\"/name ü.txt";
    let (_, last) = app.upload(name, std::slice::from_ref(&bytes)).await;
    let file_id = last["file"]["file_id"].as_str().unwrap();
    let resp = app.api.get(app.url(&format!("/files/{file_id}/content"))).send().await.unwrap();
    assert_eq!(resp.status(), 302);
    let location = resp.headers()["location"].to_str().unwrap().to_owned();
    // (Garage 2.5 sets the signed Content-Disposition on a whole GET only, not on a 206.)
    let full = app.client.get(&location).send().await.unwrap();
    assert_eq!(full.status(), 200);
    let disposition = full.headers()["content-disposition"].to_str().unwrap().to_owned();
    assert!(disposition.contains("filename*=UTF-8''a%20%22quoted%22%2Fname%20%C3%BC%2Etxt"), "{disposition}");
    assert!(disposition.starts_with("attachment; filename=\"a _quoted__name _.txt\""), "{disposition}");
    let got = app.client.get(&location).header("range", "bytes=10-19").send().await.unwrap();
    assert_eq!(got.status(), 206);
    assert_eq!(got.bytes().await.unwrap().as_ref(), &bytes[10..20]);
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    let late = app.client.get(&location).send().await.unwrap();
    let status = late.status().as_u16();
    // S3 servers answer 403 (Garage: 400 "Date is too old"); never the bytes.
    assert!(matches!(status, 400 | 403), "an expired download URL answered {status}");
}

async fn reaper_aborts_idle_uploads(backend: Backend) {
    let (mut s, dir) = settings(backend).await;
    s.uploads.ttl_secs = 1;
    let app = spawn_with(s, dir).await;
    let parts = three_parts(8);
    let idle = app.create("idle.bin", parts.iter().map(|p| p.len() as u64).sum()).await;
    let idle = idle["upload_id"].as_str().unwrap();
    app.send_part(idle, 1, &parts[0]).await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let active = app.create("active.bin", 10).await;
    let swept = shardrop_backend::uploads::reaper::sweep(&app.state).await.unwrap();
    assert_eq!(swept.aborted, 1, "{swept:?}");
    let (status, _) = app.get(&format!("/uploads/{idle}")).await;
    assert_eq!(status, 404);
    let (status, _) = app.get(&format!("/uploads/{}", active["upload_id"].as_str().unwrap())).await;
    assert_eq!(status, 200);
}

/// Start with its part signed in the same request, PUT, report: the report composes the
/// file, which carries the SHA-1 given at the start. Parts that do not fit the plan are
/// refused before anything is made.
async fn a_small_file_is_stored_in_three_requests(backend: Backend) {
    let app = spawn_app(backend).await;
    let bytes = part_bytes(77, 200_000);
    let mut part = json!({"number": 1, "sha1": sha1_b64(&bytes), "size": bytes.len(), "md5": base64_md5(&bytes)});
    let bad =
        json!({"name": "s.bin", "size": bytes.len(), "parts": [{"number": 1, "sha1": sha1_b64(&bytes), "size": 5}]});
    let (status, v) = app.post("/uploads", bad).await;
    assert_eq!((status, v["code"].as_str()), (422, Some("invalid-part-size")), "{v}");
    let (_, uploads) = app.get("/uploads").await;
    assert_eq!(uploads["uploads"], json!([]), "nothing was made");
    // Only a file of one part may sign at the start.
    let two_parts =
        json!({"name": "b.bin", "size": PART + 1, "parts": [{"number": 1, "sha1": sha1_b64(&bytes), "size": PART}]});
    let (status, v) = app.post("/uploads", two_parts).await;
    assert_eq!((status, v["code"].as_str()), (422, Some("invalid-batch")), "{v}");
    let start = json!({"name": "s.bin", "size": bytes.len(), "sha1": sha1_hex(&bytes), "parts": [part.take()]});
    let (status, v) = app.post("/uploads", start).await;
    assert_eq!(status, 201, "{v}");
    let signed = &v["signed"][0];
    assert_eq!(signed["number"], 1, "{v}");
    let (status, etag) = put_signed(&app.client, signed, bytes.clone()).await;
    assert_eq!(status, 200);
    let id = v["upload_id"].as_str().unwrap();
    let (status, r) = app.report(id, 1, &etag, &sha1_b64(&bytes)).await;
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["state"], "complete", "{r}");
    assert_eq!(r["file"]["sha1"], sha1_hex(&bytes));
    let file_id = r["file"]["file_id"].as_str().unwrap();
    assert_eq!(app.wait_verified(file_id).await, "verified");
    assert_eq!(app.download(file_id, None).await.1, bytes);
    // Resumed (same name, size and time), it signs nothing at the start: the sign route
    // and its rate limit do.
    let resumable = json!({"name": "r.bin", "size": 9, "last_modified": 5});
    let (status, _) = app.post("/uploads", resumable.clone()).await;
    assert_eq!(status, 201);
    let mut again = resumable;
    again["parts"] = json!([{"number": 1, "sha1": sha1_b64(b"123456789"), "size": 9, "md5": base64_md5(b"123456789")}]);
    let (status, v) = app.post("/uploads", again).await;
    assert_eq!(status, 200, "{v}");
    assert!(v.get("signed").is_none(), "{v}");
    // Without `parts`, no `signed` in the answer.
    let (_, v) = app.post("/uploads", json!({"name": "t.bin", "size": 3})).await;
    assert!(v.get("signed").is_none(), "{v}");
}

/// `GET /uploads` lists the caller's open uploads, newest first, in pages; finished and
/// aborted ones are gone from it, and another user sees none of them.
async fn open_uploads_are_listed_newest_first_in_pages(backend: Backend) {
    let app = spawn_app(backend).await;
    let mut ids = Vec::new();
    for i in 0..4 {
        ids.push(app.create(&format!("open {i}.bin"), 10 + i).await["upload_id"].as_str().unwrap().to_owned());
        // Apart in time, so "newest first" has one answer (a tie goes by id).
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
    // One finished, one aborted: neither is in progress.
    let bytes = part_bytes(5, 10);
    app.send_part(&ids[0], 1, &bytes).await;
    let (status, _) = app.call(reqwest::Method::DELETE, &format!("/uploads/{}", ids[1]), None).await;
    assert_eq!(status, 204);
    let (status, v) = app.get("/uploads").await;
    assert_eq!(status, 200, "{v}");
    let listed: Vec<&str> = v["uploads"].as_array().unwrap().iter().map(|u| u["upload_id"].as_str().unwrap()).collect();
    assert_eq!(listed, [ids[3].as_str(), ids[2].as_str()], "newest first, open only");
    assert_eq!(v["uploads"][0]["name"], "open 3.bin");
    assert_eq!(v["uploads"][0]["state"], "uploading");
    assert_eq!(v["uploads"][0]["size"], 13);
    assert!(v["next_cursor"].is_null(), "{v}");
    // A page at a time.
    let (_, first) = app.get("/uploads?limit=1").await;
    assert_eq!(first["uploads"][0]["upload_id"], ids[3].as_str());
    let cursor = first["next_cursor"].as_str().unwrap();
    let (_, second) = app.get(&format!("/uploads?limit=1&cursor={cursor}")).await;
    assert_eq!(second["uploads"][0]["upload_id"], ids[2].as_str());
    assert!(second["next_cursor"].is_null(), "{second}");
    // Another user's list is their own.
    let (_, other) = app.as_new_user().await.get("/uploads").await;
    assert_eq!(other["uploads"], serde_json::json!([]));
    let (status, v) = app.get("/uploads?limit=0").await;
    assert_eq!((status, v["code"].as_str()), (422, Some("invalid-limit")));
    let (status, v) = app.get("/uploads?cursor=nope").await;
    assert_eq!((status, v["code"].as_str()), (422, Some("invalid-cursor")));
}
