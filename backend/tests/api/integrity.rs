//! Stored bytes never drift from their SHA-1, a signed URL dies with its upload, and instant
//! upload is no oracle: each test here is an attack a plain HTTP client can make (issue 13),
//! on the local store and on S3 (Garage, then Ceph RGW in the suite's second run).

use std::time::Duration;

use serde_json::{json, Value};
use shardrop_backend::config::DedupScope;
use shardrop_backend::storage::{PartCheck, PartTarget};
use shardrop_engine::{Md5B64, Sha1B64};

use crate::support::*;

on_both_backends!(
    a_part_signed_for_one_content_cannot_be_signed_for_another,
    a_stored_file_cannot_be_written_through_its_old_url,
    a_url_signed_before_delete_or_instant_stores_nothing,
    an_empty_part_is_signed_only_for_no_bytes,
    an_object_written_after_verification_is_no_dedup_target,
    orphans_are_swept_and_files_kept,
    the_same_claim_gets_the_same_challenge_and_a_failure_locks_it,
    a_challenge_left_to_expire_is_not_drawn_again,
    claims_of_others_content_are_rate_limited,
    with_the_default_scope_nobody_learns_of_others_content,
    parallel_starts_cannot_pass_the_quota,
    an_upload_left_completing_keeps_its_files_object,
    the_reaper_drains_any_backlog,
);

/// More than the 1 MiB a proof covers, less than one part: the shape of the swap attack.
const SIZE: usize = 2 * 1024 * 1024 + 17;

fn sign_body(app: &TestApp, number: u32, signed_for: &[u8]) -> Value {
    let mut part = json!({"number": number, "sha1": sha1_b64(signed_for), "size": signed_for.len()});
    if app.state.store.part_check() == PartCheck::Md5 {
        part["md5"] = json!(base64_md5(signed_for));
    }
    json!({ "parts": [part] })
}

/// Signs part `number` for `signed_for`; answers (status, the signed part or the error).
async fn sign(app: &TestApp, upload: &str, number: u32, signed_for: &[u8]) -> (u16, Value) {
    let (status, v) = app.post(&format!("/uploads/{upload}/parts/sign"), sign_body(app, number, signed_for)).await;
    (status, if status == 200 { v["parts"][0].clone() } else { v })
}

fn upload_id(v: &Value) -> String {
    v["upload_id"].as_str().unwrap().to_owned()
}

/// Writes `bytes` as the object under `key` through the store itself, as someone with
/// write access to the storage would (a multipart upload of one part, completed).
async fn write_object(app: &TestApp, key: &str, bytes: &[u8]) {
    let store = &app.state.store;
    let upload = store.create_multipart(key, "application/octet-stream").await.unwrap();
    let sha1 = Sha1B64::from_digest(&shardrop_engine::hashing::sha1(bytes));
    let md5 = Md5B64::from_digest(&shardrop_engine::hashing::md5(bytes));
    let target = PartTarget {
        key,
        upload: Some(&upload),
        number: 1,
        size: bytes.len() as u64,
        sha1: &sha1,
        md5: Some(&md5),
        content_type: "application/octet-stream",
    };
    let signed = store.sign_part(target, Duration::from_secs(60)).await.unwrap();
    let signed = serde_json::to_value(&signed).unwrap();
    assert_eq!(put_signed(&app.client, &signed, bytes.to_vec()).await.0, 200);
    let parts = store.list_parts(key, &upload).await.unwrap();
    store.complete(key, &upload, &parts).await.unwrap();
}

async fn storage_key(app: &TestApp, file_id: &str) -> String {
    shardrop_backend::files::repo::get(&app.state.db, file_id).await.unwrap().unwrap().storage_key
}

/// The attack of issue 13: sign part 1 for P and for P' (P with a few bytes changed), PUT
/// P, complete, and PUT P' over the verified object. The second signing is refused, and a
/// re-sign for the same bytes (an expired URL) still works.
async fn a_part_signed_for_one_content_cannot_be_signed_for_another(backend: Backend) {
    let app = spawn_app(backend).await;
    let p = part_bytes(1, SIZE);
    let mut p2 = p.clone();
    p2[SIZE - 3..].copy_from_slice(b"EVL");
    let up = upload_id(&app.create("p.bin", SIZE as u64).await);
    let (status, _) = sign(&app, &up, 1, &p).await;
    assert_eq!(status, 200);
    let (status, e) = sign(&app, &up, 1, &p2).await;
    assert_eq!((status, e["code"].as_str()), (409, Some("part-sha1-conflict")), "{e}");
    let (status, again) = sign(&app, &up, 1, &p).await;
    assert_eq!(status, 200, "the same bytes may be signed again: {again}");
    let (status, etag) = put_signed(&app.client, &again, p.clone()).await;
    assert_eq!(status, 200);
    let (_, v) = app.report(&up, 1, &etag, &sha1_b64(&p)).await;
    assert_eq!(v["state"], "complete", "{v}");
}

/// Once composed, nothing can write to the object through a URL signed for the upload.
async fn a_stored_file_cannot_be_written_through_its_old_url(backend: Backend) {
    let app = spawn_app(backend).await;
    let p = part_bytes(2, SIZE);
    let up = upload_id(&app.create("p.bin", SIZE as u64).await);
    let (_, signed) = sign(&app, &up, 1, &p).await;
    let (status, etag) = put_signed(&app.client, &signed, p.clone()).await;
    assert_eq!(status, 200);
    let (_, v) = app.report(&up, 1, &etag, &sha1_b64(&p)).await;
    let file = v["file"]["file_id"].as_str().unwrap().to_owned();
    assert_eq!(app.wait_verified(&file).await, "verified");
    let key = storage_key(&app, &file).await;
    let before = app.state.store.stat(&key).await.unwrap().unwrap();
    // The URL is still within its lifetime; the storage must refuse it all the same.
    let (status, _) = put_signed(&app.client, &signed, p.clone()).await;
    assert_ne!(status, 200, "a PUT to a completed upload's URL was stored");
    assert_eq!(app.state.store.stat(&key).await.unwrap().unwrap(), before, "the object was written again");
    assert_eq!(app.download(&file, None).await, (200, p));
}

/// A URL signed before the upload ended (deleted, or instant) writes nothing anywhere.
async fn a_url_signed_before_delete_or_instant_stores_nothing(backend: Backend) {
    let app = spawn_app(backend).await;
    let p = part_bytes(3, 4000);
    let up = upload_id(&app.create("gone.bin", p.len() as u64).await);
    let (_, signed) = sign(&app, &up, 1, &p).await;
    let key = shardrop_backend::uploads::repo::get(&app.state.db, &up).await.unwrap().unwrap().storage_key;
    assert_eq!(app.call(reqwest::Method::DELETE, &format!("/uploads/{up}"), None).await.0, 204);
    assert_ne!(put_signed(&app.client, &signed, p.clone()).await.0, 200, "a deleted upload's URL stored bytes");
    assert_eq!(app.state.store.head(&key).await.unwrap(), None, "an object no row accounts for");

    // The same with an upload that became instant (the user's own stored content).
    let (_, last) = app.upload("mine.bin", std::slice::from_ref(&p)).await;
    let mine = last["file"]["file_id"].as_str().unwrap().to_owned();
    assert_eq!(app.wait_verified(&mine).await, "verified");
    let up = upload_id(&app.create("again.bin", p.len() as u64).await);
    let (_, signed) = sign(&app, &up, 1, &p).await;
    let patch = json!({"sha1": sha1_hex(&p)});
    let (_, v) = app.call(reqwest::Method::PATCH, &format!("/uploads/{up}"), Some(patch)).await;
    assert_eq!(v["state"], "instant", "{v}");
    let key = shardrop_backend::uploads::repo::get(&app.state.db, &up).await.unwrap().unwrap().storage_key;
    assert_ne!(put_signed(&app.client, &signed, p.clone()).await.0, 200, "an instant upload's URL stored bytes");
    assert_eq!(app.state.store.head(&key).await.unwrap(), None);
}

/// S3 does not sign an empty length into a URL, so only the digest of no bytes pins it.
async fn an_empty_part_is_signed_only_for_no_bytes(backend: Backend) {
    let app = spawn_app(backend).await;
    let up = upload_id(&app.create("empty.txt", 0).await);
    let mut body = sign_body(&app, 1, b"");
    body["parts"][0]["sha1"] = json!(sha1_b64(b"a megabyte of something else"));
    let (status, e) = app.post(&format!("/uploads/{up}/parts/sign"), body).await;
    assert_eq!((status, e["code"].as_str()), (422, Some("invalid-empty-part")), "{e}");
    // Where the storage checks only Content-MD5 (Ceph RGW), the MD5 of no bytes pins it.
    let mut body = sign_body(&app, 1, b"");
    body["parts"][0]["md5"] = json!(base64_md5(b"a megabyte of something else"));
    let (status, e) = app.post(&format!("/uploads/{up}/parts/sign"), body).await;
    assert_eq!((status, e["code"].as_str()), (422, Some("invalid-empty-part")), "{e}");
    let (status, signed) = sign(&app, &up, 1, b"").await;
    assert_eq!(status, 200);
    let (status, etag) = put_signed(&app.client, &signed, Vec::new()).await;
    assert_eq!(status, 200);
    let (_, v) = app.report(&up, 1, &etag, &sha1_b64(b"")).await;
    assert_eq!(v["state"], "complete", "{v}");
    let file = v["file"]["file_id"].as_str().unwrap().to_owned();
    assert_eq!(app.wait_verified(&file).await, "verified");
    // The empty file is the one single PUT (S3 servers refuse an empty part): its URL lives
    // on, but the storage takes nothing through it but no bytes again.
    assert_ne!(put_signed(&app.client, &signed, b"bytes".to_vec()).await.0, 200, "other bytes through an empty URL");
    assert_eq!(app.download(&file, None).await, (200, Vec::new()));
}

/// Verification records the object's ETag; an object written since (by anyone with
/// access to the storage) is no dedup target, and its files are marked corrupt.
async fn an_object_written_after_verification_is_no_dedup_target(backend: Backend) {
    let app = spawn_sharing_app(backend).await;
    let p = part_bytes(4, SIZE);
    let (_, last) = app.upload("p.bin", std::slice::from_ref(&p)).await;
    let file = last["file"]["file_id"].as_str().unwrap().to_owned();
    assert_eq!(app.wait_verified(&file).await, "verified");
    let key = storage_key(&app, &file).await;
    let mut p2 = p.clone();
    p2[..3].copy_from_slice(b"EVL");
    write_object(&app, &key, &p2).await;
    for who in [app.clone(), app.as_new_user().await] {
        let (status, v) = who.post("/uploads", json!({"name": "x", "size": SIZE, "sha1": sha1_hex(&p)})).await;
        assert_eq!((status, &v["state"], &v["challenge"]), (201, &json!("uploading"), &json!(null)), "{v}");
    }
    let (_, f) = app.get(&format!("/files/{file}")).await;
    assert_eq!(f["status"], "corrupt", "{f}");
    assert_eq!(app.metric("shardrop_dedup_refusals_total{reason=\"changed\"}").await, 1);
}

/// Objects under the upload prefix that no row accounts for go, once older than the TTL;
/// a file's object and an open upload's parts stay.
async fn orphans_are_swept_and_files_kept(backend: Backend) {
    let (mut s, dir) = settings(backend).await;
    // Two seconds: S3 servers give object times in whole seconds.
    s.uploads.ttl_secs = 2;
    let app = spawn_with(s, dir).await;
    let kept = part_bytes(5, 3000);
    let (_, last) = app.upload("kept.bin", std::slice::from_ref(&kept)).await;
    let file = last["file"]["file_id"].as_str().unwrap().to_owned();
    let open = upload_id(&app.create("open.bin", 10).await);
    write_object(&app, "objects/up_orphan", b"bytes nobody accounts for").await;
    write_object(&app, "elsewhere/not-ours", b"outside the upload prefix").await;
    // Younger than the TTL: left alone.
    assert_eq!(shardrop_backend::uploads::reaper::sweep_orphans(&app.state).await.unwrap(), 0);
    tokio::time::sleep(Duration::from_millis(3100)).await;
    assert_eq!(shardrop_backend::uploads::reaper::sweep_orphans(&app.state).await.unwrap(), 1);
    assert_eq!(app.state.store.head("objects/up_orphan").await.unwrap(), None);
    assert!(app.state.store.head("elsewhere/not-ours").await.unwrap().is_some());
    assert_eq!(app.download(&file, None).await, (200, kept));
    assert_eq!(app.get(&format!("/uploads/{open}")).await.0, 200);
    assert_eq!(app.metric("shardrop_orphans_deleted_total").await, 1);
    // A second replica sweeping the same storage finds nothing more to do.
    assert_eq!(shardrop_backend::uploads::reaper::sweep_orphans(&app.state).await.unwrap(), 0);
    app.state.store.delete("elsewhere/not-ours").await.unwrap();
}

/// Stores `bytes` as a verified file of `owner`'s; answers its SHA-1 (hex).
async fn stored(owner: &TestApp, name: &str, bytes: &[u8]) -> String {
    let (_, last) = owner.upload(name, &[bytes.to_vec()]).await;
    assert_eq!(owner.wait_verified(last["file"]["file_id"].as_str().unwrap()).await, "verified");
    sha1_hex(bytes)
}

async fn claim(who: &TestApp, sha1: &str, size: usize) -> Value {
    let (status, v) = who.post("/uploads", json!({"name": "claim.bin", "size": size, "sha1": sha1})).await;
    assert_eq!(status, 201, "{v}");
    v
}

/// Asking again (a new upload, a PATCH) cannot redraw the range until the challenge is
/// answered; a wrong answer locks that content for the claimant.
async fn the_same_claim_gets_the_same_challenge_and_a_failure_locks_it(backend: Backend) {
    let owner = spawn_sharing_app(backend).await;
    let p = part_bytes(6, SIZE);
    let sha = stored(&owner, "p.bin", &p).await;
    let claimant = owner.as_new_user().await;
    let first = claim(&claimant, &sha, SIZE).await;
    assert!(first["challenge"].is_object(), "{first}");
    for _ in 0..5 {
        let again = claim(&claimant, &sha, SIZE).await;
        assert_eq!(again["challenge"], first["challenge"], "a new upload redrew the challenge");
    }
    let later = upload_id(&claimant.create("later.bin", SIZE as u64).await);
    let (_, v) = claimant.call(reqwest::Method::PATCH, &format!("/uploads/{later}"), Some(json!({"sha1": sha}))).await;
    assert_eq!(v["challenge"], first["challenge"], "{v}");
    // Another claimant draws their own.
    let other = owner.as_new_user().await;
    assert!(claim(&other, &sha, SIZE).await["challenge"].is_object());

    let path = format!("/uploads/{}/proof", upload_id(&first));
    let (status, e) = claimant.post(&path, json!({"sha1": sha1_hex(b"a guess")})).await;
    assert_eq!((status, e["code"].as_str()), (403, Some("challenge-failed")), "{e}");
    // Locked: no challenge for this content, in any upload, and the open ones lost theirs
    // for good once answered.
    // The same challenge on another upload takes no second answer.
    let (_, v) = claimant.call(reqwest::Method::PATCH, &format!("/uploads/{later}"), Some(json!({"sha1": sha}))).await;
    assert!(v["challenge"].is_object(), "the challenge set before the failure stays on its upload: {v}");
    let (status, e) =
        claimant.post(&format!("/uploads/{later}/proof"), json!({"sha1": sha1_hex(b"second guess")})).await;
    assert_eq!((status, e["code"].as_str()), (409, Some("no-challenge")), "{e}");
    let v = claim(&claimant, &sha, SIZE).await;
    assert_eq!((&v["state"], &v["challenge"]), (&json!("uploading"), &json!(null)), "{v}");
    assert_eq!(owner.metric("shardrop_dedup_refusals_total{reason=\"locked\"}").await, 2);
}

/// Waiting out a challenge does not redraw it: an expired one locks like a failed one.
async fn a_challenge_left_to_expire_is_not_drawn_again(backend: Backend) {
    let (mut s, dir) = settings(backend).await;
    s.dedup.scope = DedupScope::All;
    s.dedup.challenge_ttl_secs = 1;
    let owner = spawn_with(s, dir).await;
    let sha = stored(&owner, "p.bin", &part_bytes(30, SIZE)).await;
    let claimant = owner.as_new_user().await;
    let first = claim(&claimant, &sha, SIZE).await;
    assert!(first["challenge"].is_object(), "{first}");
    tokio::time::sleep(Duration::from_millis(2100)).await;
    assert_eq!(claim(&claimant, &sha, SIZE).await["challenge"], json!(null), "redrawn after expiry");
    let path = format!("/uploads/{}/proof", upload_id(&first));
    let (status, e) = claimant.post(&path, json!({"sha1": sha1_hex(b"late")})).await;
    assert_eq!((status, e["code"].as_str()), (409, Some("no-challenge")), "an expired challenge takes no answer: {e}");
}

/// Each look at other users' content, hit or miss, claim or probe, counts against
/// `dedup.claims_per_hour`: misses are what an oracle is made of.
async fn claims_of_others_content_are_rate_limited(backend: Backend) {
    let (mut s, dir) = settings(backend).await;
    s.dedup.scope = DedupScope::All;
    s.dedup.claims_per_hour = 4;
    let owner = spawn_with(s, dir).await;
    let (mut hashes, mut contents) = (Vec::new(), Vec::new());
    for i in 0..3 {
        contents.push(part_bytes(10 + i, 5000));
        hashes.push(stored(&owner, &format!("{i}.bin"), &contents[i as usize]).await);
    }
    let prober = owner.as_new_user().await;
    assert!(claim(&prober, &hashes[0], 5000).await["challenge"].is_object());
    assert_eq!(claim(&prober, &sha1_hex(b"a guess"), 5000).await["challenge"], json!(null), "a miss");
    let probe = shardrop_engine::probe::of(&contents[1]);
    let (_, v) = prober.post("/uploads", json!({"name": "p", "size": 5000, "probe": probe})).await;
    assert_eq!(v["dedup_candidate"], true, "{v}");
    assert!(claim(&prober, &hashes[1], 5000).await["challenge"].is_object());
    // Asking again for a claim already drawn is not a new look.
    assert!(claim(&prober, &hashes[0], 5000).await["challenge"].is_object());
    assert_eq!(claim(&prober, &hashes[2], 5000).await["challenge"], json!(null), "past the rate");
    let probe = shardrop_engine::probe::of(&contents[2]);
    let (_, v) = prober.post("/uploads", json!({"name": "p", "size": 5000, "probe": probe})).await;
    assert_eq!(v["dedup_candidate"], false, "no hint past the rate: {v}");
    assert_eq!(owner.metric("shardrop_dedup_refusals_total{reason=\"rate\"}").await, 2);
    // Looks sent side by side cannot all fit.
    let racer = owner.as_new_user().await;
    let looks = (0..12).map(|i| {
        let racer = racer.clone();
        async move { claim(&racer, &sha1_hex(format!("guess {i}").as_bytes()), 5000).await }
    });
    futures_util::future::join_all(looks).await;
    let (counted,): (i64,) = sqlx::query_as(
        "SELECT COUNT(*) FROM dedup_attempts WHERE user_id = (SELECT id FROM users WHERE username = $1)",
    )
    .bind(&racer.username)
    .fetch_one(&owner.state.db)
    .await
    .unwrap();
    assert!(counted <= 4, "{counted} looks counted past a rate of 4");
    assert_eq!(claim(&racer, &hashes[0], 5000).await["challenge"], json!(null), "the racer's hour is spent");
    // Another user has a rate of their own; the owner's own content never counts.
    assert!(claim(&owner.as_new_user().await, &hashes[2], 5000).await["challenge"].is_object());
    assert_eq!(claim(&owner, &hashes[2], 5000).await["state"], "instant");
}

/// `dedup.scope = user` (the default): other users' content yields no challenge and no
/// probe hint, so a claim tells nothing; a user's own content is still instant.
async fn with_the_default_scope_nobody_learns_of_others_content(backend: Backend) {
    let owner = spawn_app(backend).await;
    assert_eq!(owner.settings.dedup.scope, DedupScope::User);
    let p = part_bytes(7, SIZE);
    let sha = stored(&owner, "p.bin", &p).await;
    let probe = shardrop_engine::probe::of(&p);
    let other = owner.as_new_user().await;
    let (_, v) = other.post("/uploads", json!({"name": "x", "size": SIZE, "sha1": sha, "probe": probe})).await;
    assert_eq!(
        (&v["state"], &v["challenge"], &v["dedup_candidate"]),
        (&json!("uploading"), &json!(null), &json!(false))
    );
    let (_, v) = owner.post("/uploads", json!({"name": "y", "size": SIZE, "probe": probe})).await;
    assert_eq!(v["dedup_candidate"], true, "{v}");
    assert_eq!(claim(&owner, &sha, SIZE).await["state"], "instant");
}

/// Ten uploads of a quota's size started at once: one fits, nine are refused.
async fn parallel_starts_cannot_pass_the_quota(backend: Backend) {
    let (mut s, dir) = settings(backend).await;
    s.auth.quota_bytes = 10 * MIB;
    let app = spawn_with(s, dir).await;
    let starts = (0..10).map(|i| {
        let app = app.clone();
        async move { app.post("/uploads", json!({"name": format!("{i}.bin"), "size": 10 * MIB})).await }
    });
    let answers = futures_util::future::join_all(starts).await;
    let ok = answers.iter().filter(|(s, _)| *s == 201).count();
    assert_eq!(ok, 1, "{answers:?}");
    for (status, v) in answers.iter().filter(|(s, _)| *s != 201) {
        assert_eq!((*status, v["code"].as_str()), (403, Some("quota-exceeded")), "{v}");
    }
    let (_, me) = app.get("/users/me").await;
    assert_eq!(me["used_bytes"], json!(10 * MIB), "{me}");
}

/// A completer that wrote the file row and died before the state change leaves its upload
/// `completing`; deleting it (or the reaper) finishes it instead of dropping the file's bytes.
async fn an_upload_left_completing_keeps_its_files_object(backend: Backend) {
    let app = spawn_app(backend).await;
    for (i, deleter) in ["client", "reaper"].into_iter().enumerate() {
        let p = part_bytes(20 + i as u64, 3000);
        let (up, last) = app.upload("f.bin", std::slice::from_ref(&p)).await;
        let file = last["file"]["file_id"].as_str().unwrap().to_owned();
        sqlx::query("UPDATE uploads SET state = 'completing', updated_at = 0 WHERE id = $1")
            .bind(&up)
            .execute(&app.state.db)
            .await
            .unwrap();
        if deleter == "client" {
            let (status, e) = app.call(reqwest::Method::DELETE, &format!("/uploads/{up}"), None).await;
            assert_eq!((status, e["code"].as_str()), (409, Some("upload-complete")), "{e}");
            let (_, v) = app.get(&format!("/uploads/{up}")).await;
            assert_eq!(v["state"], "complete", "{v}");
        } else {
            shardrop_backend::uploads::reaper::sweep(&app.state).await.unwrap();
        }
        assert_eq!(app.download(&file, None).await, (200, p), "{deleter}");
    }
}

/// One sweep aborts however many uploads went idle, not a batch of them.
async fn the_reaper_drains_any_backlog(backend: Backend) {
    let (mut s, dir) = settings(backend).await;
    s.uploads.ttl_secs = 1;
    let app = spawn_with(s, dir).await;
    let mut ids = Vec::new();
    for chunk in 0..45 {
        let starts = (0..10).map(|i| {
            let app = app.clone();
            async move { upload_id(&app.create(&format!("{chunk}-{i}"), 100).await) }
        });
        ids.extend(futures_util::future::join_all(starts).await);
    }
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let swept = shardrop_backend::uploads::reaper::sweep(&app.state).await.unwrap();
    assert_eq!(swept.aborted, 450, "{swept:?}");
    assert_eq!(app.get(&format!("/uploads/{}", ids[449])).await.0, 404);
}
