//! Accounts: sign-up, sign-in and out, tokens that expire, closed sign-up with accounts made
//! on the server, the sign-up and login rate limit, the bound on password hashing, signing
//! out everywhere, changing the password, and the per-user quota.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use shardrop_backend::app::Application;
use shardrop_backend::auth::repo::{self, NewSession};

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

/// The password `spawn_app`'s users sign up with (`TestApp::as_new_user`).
const PASSWORD: &str = "correct horse battery";

/// `n` logins of `app`'s user at once: (status, `Retry-After`, body) of each.
async fn burst_of_logins(app: &TestApp, n: usize) -> Vec<(u16, Option<u64>, Value)> {
    let creds = json!({"username": app.username, "password": PASSWORD});
    let logins = (0..n).map(|_| async {
        let r = app.client.post(app.url("/sessions")).json(&creds).send().await.unwrap();
        let retry = r.headers().get("retry-after").map(|v| v.to_str().unwrap().parse().unwrap());
        (r.status().as_u16(), retry, r.json().await.unwrap_or(Value::Null))
    });
    futures_util::future::join_all(logins).await
}

/// Argon2 costs 19 MiB and a core per hash, so a replica runs only so many at once
/// (`auth.hash_concurrency`) with a few more waiting (`auth.hash_queue`): past that, a burst
/// of logins is told `503 auth-busy` with `Retry-After` at once, and never gets a 500. With
/// the default bound the same burst all signs in.
async fn a_burst_of_logins_past_the_hashing_bound_is_told_to_retry(backend: Backend) {
    let (mut s, dir) = settings(backend).await;
    s.auth.hash_concurrency = 1;
    s.auth.hash_queue = 1;
    let tight = spawn_with(s, dir).await;
    let answers = burst_of_logins(&tight, 20).await;
    let signed_in = answers.iter().filter(|(status, ..)| *status == 201).count();
    let busy: Vec<_> = answers.iter().filter(|(status, ..)| *status == 503).collect();
    assert_eq!(signed_in + busy.len(), 20, "only 201 or 503: {answers:?}");
    assert!(signed_in >= 1 && !busy.is_empty(), "{signed_in} signed in, {} busy", busy.len());
    for (_, retry, body) in busy {
        assert_eq!(body["code"], "auth-busy", "{body}");
        assert!(retry.is_some_and(|s| (1..=60).contains(&s)), "retry-after {retry:?}");
    }
    // The bound passes: the next login gets in.
    assert_eq!(burst_of_logins(&tight, 1).await[0].0, 201);

    let roomy = spawn_app(backend).await;
    let answers = burst_of_logins(&roomy, 20).await;
    assert!(answers.iter().all(|(status, ..)| *status == 201), "{answers:?}");
}

on_both_backends!(a_burst_of_logins_past_the_hashing_bound_is_told_to_retry);

/// A password change ends every session of the account, the caller's too, and answers a new
/// one; other accounts' sessions go on. The old password stops working, the new one works.
/// A wrong current password (`403`, not a `401`: the token is fine) or a new one too weak for
/// sign-up changes nothing.
async fn changing_the_password_ends_every_session_of_the_account(backend: Backend) {
    let app = spawn_app(backend).await;
    let other = app.as_new_user().await;
    let (_, second) = post_anon(&app, "/sessions", json!({"username": app.username, "password": PASSWORD})).await;
    let second = bearer_client(second["token"].as_str().unwrap());
    let change = |body: Value| app.call(Method::PUT, "/users/me/password", Some(body));
    for (body, status, code) in [
        (json!({"current_password": "not it at all", "new_password": "a new password"}), 403, "wrong-password"),
        (json!({"current_password": PASSWORD, "new_password": "short"}), 422, "invalid-password"),
        (json!({"current_password": PASSWORD, "new_password": "x".repeat(1025)}), 422, "invalid-password"),
        (json!({"current_password": PASSWORD}), 422, "invalid-field"),
    ] {
        let (s, v) = change(body.clone()).await;
        assert_eq!((s, v["code"].as_str()), (status, Some(code)), "{body}: {v}");
    }
    let anonymous = app
        .client
        .put(app.url("/users/me/password"))
        .json(&json!({"current_password": PASSWORD, "new_password": "a new password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401);
    assert_eq!(app.get("/users/me").await.0, 200, "a refused change ends nothing");
    assert_eq!(me(&second, &app).await.0, 200);

    let (user_id, old_hash): (String, String) =
        sqlx::query_as("SELECT id, password_hash FROM users WHERE username = $1")
            .bind(&app.username)
            .fetch_one(&app.state.db)
            .await
            .unwrap();
    let (status, session) = change(json!({"current_password": PASSWORD, "new_password": "a new password"})).await;
    assert_eq!(status, 200, "{session}");
    // A login that checked the old password while the change ran gets no session.
    let late = NewSession { id: "se_late", user_id: &user_id, token_hash: "late", now: 0, expires_at: i64::MAX };
    assert!(!repo::insert_session(&app.state.db, &late, &old_hash).await.unwrap());
    assert_eq!(session["user"]["username"], json!(app.username));
    let fresh = bearer_client(session["token"].as_str().unwrap());
    assert_eq!(me(&fresh, &app).await.0, 200, "the answer is a working session");
    for old in [&app.api, &second] {
        let (status, v) = me(old, &app).await;
        assert_eq!((status, v["code"].as_str()), (401, Some("unauthorized")), "every earlier token ends");
    }
    assert_eq!(other.get("/users/me").await.0, 200, "another account's session goes on");
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM sessions WHERE user_id = $1")
        .bind(&user_id)
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    assert_eq!(n, 1, "only the new session");
    let (status, v) = post_anon(&app, "/sessions", json!({"username": app.username, "password": PASSWORD})).await;
    assert_eq!((status, v["code"].as_str()), (401, Some("invalid-credentials")), "the old password: {v}");
    let (status, v) =
        post_anon(&app, "/sessions", json!({"username": app.username, "password": "a new password"})).await;
    assert_eq!(status, 201, "the new password: {v}");
    // The old password is no longer the current one either.
    let again = fresh
        .put(app.url("/users/me/password"))
        .json(&json!({"current_password": PASSWORD, "new_password": "a third password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 403);

    let (_, doc) = app.get("/openapi.json").await;
    let declared = |path: &str, method: &str| -> Vec<String> {
        doc["paths"][path][method]["responses"].as_object().unwrap().keys().cloned().collect()
    };
    assert_eq!(
        declared("/api/v1/users/me/password", "put"),
        ["200", "400", "401", "403", "413", "415", "422", "429", "503"]
    );
}

on_both_backends!(changing_the_password_ends_every_session_of_the_account);

/// `DELETE /sessions` ends every session of the caller's account (this one included), and no
/// other account's; the password still signs in. `DELETE /sessions/current` still ends one.
async fn signing_out_everywhere_ends_every_session_of_the_caller_only(backend: Backend) {
    let app = spawn_app(backend).await;
    let other = app.as_new_user().await;
    let creds = json!({"username": app.username, "password": PASSWORD});
    let (_, second) = post_anon(&app, "/sessions", creds.clone()).await;
    let second = bearer_client(second["token"].as_str().unwrap());
    let r = app.client.delete(app.url("/sessions")).send().await.unwrap();
    assert_eq!(r.status(), 401, "it needs a token");

    let r = second.delete(app.url("/sessions")).send().await.unwrap();
    assert_eq!(r.status(), 204);
    for old in [&app.api, &second] {
        let (status, v) = me(old, &app).await;
        assert_eq!((status, v["code"].as_str()), (401, Some("unauthorized")));
    }
    assert_eq!(second.delete(app.url("/sessions")).send().await.unwrap().status(), 401, "nor a dead one");
    assert_eq!(other.get("/users/me").await.0, 200, "another account's session goes on");
    let (n,): (i64,) = sqlx::query_as("SELECT COUNT(*) FROM sessions WHERE user_id = $1")
        .bind(other.get("/users/me").await.1["user_id"].as_str().unwrap())
        .fetch_one(&app.state.db)
        .await
        .unwrap();
    assert_eq!(n, 1);

    let (status, session) = post_anon(&app, "/sessions", creds).await;
    assert_eq!(status, 201, "the password still signs in: {session}");
    assert_eq!(me(&bearer_client(session["token"].as_str().unwrap()), &app).await.0, 200);
    // One route, two methods: another is a 405 that names them.
    let r = app.client.get(app.url("/sessions")).send().await.unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["allow"], "POST, DELETE");
}

on_both_backends!(signing_out_everywhere_ends_every_session_of_the_caller_only);
