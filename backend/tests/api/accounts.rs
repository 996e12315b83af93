//! Accounts: sign-up, sign-in and out, tokens that expire, closed sign-up with accounts made
//! on the server, the sign-up and login rate limit, and the per-user quota.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use shardrop_backend::app::Application;

use crate::support::*;

async fn post_anon(app: &TestApp, path: &str, body: Value) -> (u16, Value) {
    let r = app.client.post(app.url(path)).json(&body).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

async fn me(client: &reqwest::Client, app: &TestApp) -> (u16, Value) {
    let r = client.get(app.url("/users/me")).send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn sign_up_in_and_out() {
    let app = spawn_app(Backend::Embedded).await;
    let creds = json!({"username": "Carol.Smith", "password": "long enough"});
    let (status, user) = post_anon(&app, "/users", creds.clone()).await;
    assert_eq!(status, 201, "{user}");
    assert_eq!(
        (&user["username"], &user["used_bytes"], &user["quota_bytes"]),
        (&json!("carol.smith"), &json!(0), &json!(null))
    );
    // Names are case-insensitive; bad input says what is wrong.
    for (body, status, code) in [
        (json!({"username": "CAROL.SMITH", "password": "whatever1"}), 409, "username-taken"),
        (json!({"username": "x", "password": "long enough"}), 422, "invalid-username"),
        (json!({"username": "a b c", "password": "long enough"}), 422, "invalid-username"),
        (json!({"username": "dave", "password": "short"}), 422, "invalid-password"),
        (json!({"username": "dave"}), 422, "invalid-field"),
    ] {
        let (s, v) = post_anon(&app, "/users", body.clone()).await;
        assert_eq!((s, v["code"].as_str()), (status, Some(code)), "{body}: {v}");
    }
    // Wrong password and unknown user: the same refusal.
    let wrong = post_anon(&app, "/sessions", json!({"username": "carol.smith", "password": "long enougH"})).await;
    let nobody = post_anon(&app, "/sessions", json!({"username": "nobody", "password": "long enough"})).await;
    assert_eq!((wrong.0, wrong.1["code"].as_str()), (401, Some("invalid-credentials")));
    assert_eq!(wrong, nobody);
    assert_eq!(app.metric("shardrop_logins_failed_total").await, 2);
    // Right: a token, which works on any route until signed out.
    let (status, session) =
        post_anon(&app, "/sessions", json!({"username": "CAROL.smith", "password": "long enough"})).await;
    assert_eq!(status, 201, "{session}");
    let token = session["token"].as_str().unwrap();
    assert!(token.starts_with("sd_") && token.len() == 46, "{token}");
    assert_eq!(session["user"]["user_id"], user["user_id"]);
    let carol = bearer_client(token);
    assert_eq!(me(&carol, &app).await, (200, user.clone()));
    // Neither the password nor the token is stored as such.
    let (hash,): (String,) = sqlx::query_as("SELECT password_hash FROM users WHERE username = 'carol.smith'")
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    assert!(hash.starts_with("$argon2id$v=19$"), "{hash}");
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM sessions WHERE token_hash = $1 OR id = $1")
        .bind(token)
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    assert_eq!(n, 0);
    // Signed out: that token stops at once; another session of the same user goes on.
    let (_, other) = post_anon(&app, "/sessions", creds.clone()).await;
    let r = carol.delete(app.url("/sessions/current")).send().await.unwrap();
    assert_eq!(r.status(), 204);
    let (status, v) = me(&carol, &app).await;
    assert_eq!((status, v["code"].as_str()), (401, Some("unauthorized")));
    assert_eq!(me(&bearer_client(other["token"].as_str().unwrap()), &app).await.0, 200);
    // Tokens of the wrong shape, or none: 401.
    for auth in ["", "Bearer", "Bearer sd_nope", "Basic Y2Fyb2w6bG9uZyBlbm91Z2g=", &format!("Bearer {token}x")] {
        let r = app.client.get(app.url("/users/me")).header("authorization", auth).send().await.unwrap();
        assert_eq!(r.status(), 401, "{auth:?}");
    }
}

#[tokio::test]
async fn sessions_expire() {
    let (mut s, dir) = settings(Backend::Embedded).await;
    s.auth.session_ttl_secs = 1;
    let app = spawn_with(s, dir).await;
    assert_eq!(app.get("/files").await.0, 200);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let (status, v) = app.get("/files").await;
    assert_eq!((status, v["code"].as_str()), (401, Some("unauthorized")));
    // The reaper drops it.
    let swept = shardrop_backend::uploads::reaper::sweep(&app.state).await.unwrap();
    assert!(swept.sessions >= 1, "{swept:?}");
}

#[tokio::test]
async fn closed_sign_up_and_accounts_made_on_the_server() {
    let (mut s, _dir) = settings(Backend::Embedded).await;
    s.auth.open_signup = false;
    let app = Application::build(s.clone()).await.unwrap();
    let base = format!("http://127.0.0.1:{}/api/v1", app.port());
    tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::new();
    let post = |path: &str, body: Value| client.post(format!("{base}{path}")).json(&body).send();
    let creds = json!({"username": "erin", "password": "long enough"});
    let r = post("/users", creds.clone()).await.unwrap();
    assert_eq!(r.status(), 403);
    assert_eq!(r.json::<Value>().await.unwrap()["code"], "signup-closed");
    // `shardrop user-add` on the same data dir: the password from standard input.
    let add = |name: &str, password: &str| {
        use std::io::Write;
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_shardrop"))
            .args(["user-add", name])
            .env("SHARDROP_DATA_DIR", &s.data_dir)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        child.stdin.take().unwrap().write_all(format!("{password}\n").as_bytes()).unwrap();
        child.wait_with_output().unwrap()
    };
    let out = add("erin", "long enough");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("made user erin (us_"));
    for (name, password, says) in [("erin", "long enough", "taken"), ("frank", "short", "password")] {
        let out = add(name, password);
        assert!(!out.status.success());
        assert!(String::from_utf8_lossy(&out.stderr).contains(says), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let r = post("/sessions", creds).await.unwrap();
    assert_eq!(r.status(), 201, "the account made on the server signs in");
}

#[tokio::test]
async fn sign_up_and_login_share_a_rate_limit_per_client() {
    let (mut s, _dir) = settings(Backend::Embedded).await;
    s.http.auth_rate_per_minute = 1;
    s.http.auth_burst = 3;
    s.http.client_ip_header = "x-real-ip".into();
    let limited = Application::build(s).await.unwrap();
    let base = format!("http://127.0.0.1:{}/api/v1", limited.port());
    tokio::spawn(limited.run_until_stopped());
    let client = reqwest::Client::new();
    let call = |path: &'static str, ip: &'static str, n: u32| {
        client
            .post(format!("{base}{path}"))
            .header("x-real-ip", ip)
            .json(&json!({"username": format!("guess{n}"), "password": "long enough"}))
            .send()
    };
    assert_eq!(call("/users", "10.0.0.1", 1).await.unwrap().status(), 201);
    assert_eq!(call("/sessions", "10.0.0.1", 1).await.unwrap().status(), 201);
    assert_eq!(call("/sessions", "10.0.0.1", 2).await.unwrap().status(), 401);
    let refused = call("/sessions", "10.0.0.1", 1).await.unwrap();
    assert_eq!(refused.status(), 429, "the right password too, once over the limit");
    let retry: u64 = refused.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry), "retry-after {retry}");
    assert_eq!(refused.json::<Value>().await.unwrap()["code"], "rate-limited");
    assert_eq!(call("/users", "10.0.0.1", 3).await.unwrap().status(), 429, "sign-up shares the bucket");
    assert_eq!(call("/sessions", "10.0.0.2", 1).await.unwrap().status(), 201, "another client has its own");
}

/// The quota counts files and uploads in progress: a start that would pass it is refused,
/// with nothing made; room comes back when an upload is aborted or a file deleted; and a
/// completion past it (here: the quota lowered meanwhile) is refused with its parts gone.
async fn quota_is_checked_at_start_and_completion(backend: Backend) {
    let (mut s, dir) = settings(backend).await;
    s.auth.quota_bytes = 12 * MIB;
    let app = spawn_with(s, dir).await;
    let first = app.create("ten.bin", 10 * MIB).await;
    let first_id = first["upload_id"].as_str().unwrap();
    let (status, v) = app.post("/uploads", json!({"name": "five.bin", "size": 5 * MIB})).await;
    assert_eq!((status, v["code"].as_str()), (403, Some("quota-exceeded")), "{v}");
    let (n,): (i64,) =
        sqlx::query_as("SELECT COUNT(*) FROM uploads WHERE name = 'five.bin'").fetch_one(&app.state.db).await.unwrap();
    assert_eq!(n, 0, "a refused start leaves no row");
    let (_, me) = app.get("/users/me").await;
    assert_eq!((&me["quota_bytes"], &me["used_bytes"]), (&json!(12 * MIB), &json!(10 * MIB)));
    // Another user has a quota of their own.
    let other = app.as_new_user().await;
    assert_eq!(other.post("/uploads", json!({"name": "five.bin", "size": 5 * MIB})).await.0, 201);
    // Aborting gives the room back.
    assert_eq!(app.call(Method::DELETE, &format!("/uploads/{first_id}"), None).await.0, 204);
    let parts = [part_bytes(81, PART as usize), part_bytes(82, 1000)];
    let size = (PART + 1000) as i64;
    let created = app.create("fits.bin", size as u64).await;
    let id = created["upload_id"].as_str().unwrap().to_owned();
    app.send_part(&id, 1, &parts[0]).await;

    // The same data served with a quota lowered below what the upload needs: its completion
    // is refused, and the upload goes from storage, the tracker and SQL.
    let mut lowered = app.settings.clone();
    lowered.auth.quota_bytes = 4 * MIB;
    let strict = spawn_with(lowered, tempfile::tempdir().unwrap()).await.with_token(&app.token, &app.username);
    let row = shardrop_backend::uploads::repo::get(&app.state.db, &id).await.unwrap().unwrap();
    let sha = sha1_b64(&parts[1]);
    let (status, etag) = strict.put_part(&id, 2, &parts[1], &parts[1]).await;
    assert_eq!(status, 200);
    let (status, v) = strict.report(&id, 2, &etag, &sha).await;
    assert_eq!((status, v["code"].as_str()), (403, Some("quota-exceeded")), "{v}");
    assert_eq!(app.get(&format!("/uploads/{id}")).await.0, 404);
    let (files,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM files WHERE upload_id = $1")
        .bind(&id)
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    assert_eq!(files, 0);
    assert_eq!(app.state.store.head(&row.storage_key).await.unwrap(), None, "nothing composed is left");
    if let Some(sid) = &row.storage_upload_id {
        let listed = app.state.store.list_parts(&row.storage_key, sid).await;
        assert!(matches!(listed, Err(shardrop_backend::storage::StorageError::NoSuchUpload)), "{listed:?}");
    }
    assert_eq!(strict.metric("shardrop_quota_refusals_total").await, 1);
    // Within the quota, the same upload completes.
    let (_, last) = app.upload("fits.bin", &parts).await;
    assert_eq!(last["state"], "complete", "{last}");
    let (_, me) = app.get("/users/me").await;
    assert_eq!(me["used_bytes"], json!(size));
}

on_both_backends!(quota_is_checked_at_start_and_completion);
