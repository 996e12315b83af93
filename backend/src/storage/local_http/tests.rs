//! The local store driven the way clients drive it: sign, PUT over HTTP, list, complete,
//! download. Parts are a few bytes; the store itself enforces no S3 minimum.
//! One file of tests for one module (over 400 lines: each route's refusals are spelled out).

use std::time::Duration;

use actix_web::body::MessageBody;
use actix_web::http::header::{CONTENT_LENGTH, CONTENT_RANGE, ETAG, RANGE};
use actix_web::test::{self, TestRequest};
use actix_web::App;
use futures_util::TryStreamExt;
use shardrop_engine::hashing::sha1;
use shardrop_engine::Sha1B64;

use super::*;
use crate::storage::{DownloadTarget, PartTarget, SignedRequest, StorageError, Store, StoredPart};

const ORIGIN: &str = "http://127.0.0.1:8080";
const PARTS: [&[u8]; 3] = [b"hello", b", world", b"!!!"];

async fn new_store() -> (tempfile::TempDir, web::Data<LocalStore>) {
    let dir = tempfile::tempdir().unwrap();
    let store =
        LocalStore::new(dir.path().join("objects"), b"a test secret of 16+ bytes".to_vec(), format!("{ORIGIN}/"))
            .unwrap();
    store.prepare().await.unwrap();
    (dir, web::Data::new(store))
}

macro_rules! app {
    ($store:expr) => {
        test::init_service(App::new().app_data($store.clone()).configure(configure)).await
    };
}

fn path_of(url: &str) -> &str {
    url.strip_prefix(ORIGIN).unwrap()
}

async fn sign(store: &LocalStore, key: &str, upload: &str, number: u32, bytes: &[u8]) -> SignedRequest {
    let upload = Some(upload);
    let sha1 = Sha1B64::from_digest(&sha1(bytes));
    let target = PartTarget {
        key,
        upload,
        number,
        size: bytes.len() as u64,
        sha1: &sha1,
        md5: None,
        content_type: "text/plain",
    };
    store.sign_part(target, Duration::from_secs(60)).await.unwrap()
}

fn put(signed: &SignedRequest, body: &[u8]) -> TestRequest {
    assert_eq!(signed.method, "PUT");
    let mut req = TestRequest::put().uri(path_of(&signed.url));
    for (name, value) in &signed.headers {
        req = req.insert_header((name.as_str(), value.as_str()));
    }
    req.set_payload(body.to_vec())
}

async fn download_url(store: &LocalStore, key: &str) -> String {
    let target =
        DownloadTarget { key, file_name: "greeting.txt", content_type: "text/plain", ttl: Duration::from_secs(60) };
    path_of(&store.sign_download(target).await.unwrap()).to_owned()
}

fn error_code(body: &[u8]) -> String {
    let v: serde_json::Value = serde_json::from_slice(body).unwrap();
    v["code"].as_str().unwrap().to_owned()
}

/// Starts an upload of `PARTS` under `key` and PUTs them all.
macro_rules! upload_parts {
    ($app:expr, $store:expr, $key:expr) => {{
        let upload = $store.create_multipart($key, "text/plain").await.unwrap();
        let mut etags = Vec::new();
        for (bytes, number) in PARTS.iter().zip(1..) {
            let signed = sign(&$store, $key, &upload, number, bytes).await;
            let resp = test::call_service(&$app, put(&signed, bytes).to_request()).await;
            assert_eq!(resp.status(), StatusCode::OK);
            assert_eq!(resp.headers().get(CHECKSUM_HEADER).unwrap(), signed.headers[CHECKSUM_HEADER].as_str());
            let etag = resp.headers().get(ETAG).unwrap().to_str().unwrap().to_owned();
            etags.push(StoredPart { number, etag, size: bytes.len() as u64, sha1: None });
        }
        (upload, etags)
    }};
}

async fn read_all(store: &LocalStore, key: &str) -> Vec<u8> {
    let chunks: Vec<Bytes> = store.read(key).await.unwrap().try_collect().await.unwrap();
    chunks.concat()
}

#[actix_web::test]
async fn parts_put_list_complete_and_read_back() {
    let (_dir, store) = new_store().await;
    let app = app!(store);
    let key = "pre/objects/1";
    let (upload, etags) = upload_parts!(app, store, key);
    let listed = store.list_parts(key, &upload).await.unwrap();
    assert_eq!(listed.iter().map(|p| (p.number, p.size)).collect::<Vec<_>>(), [(1, 5), (2, 7), (3, 3)]);
    assert_eq!(listed.iter().map(|p| &p.etag).collect::<Vec<_>>(), etags.iter().map(|p| &p.etag).collect::<Vec<_>>());
    assert_eq!(listed[0].sha1.as_deref(), Some(Sha1B64::from_digest(&sha1(b"hello")).as_str()));
    assert!(store.list_parts("pre/objects/2", &upload).await.is_err(), "an upload belongs to its key");

    store.complete(key, &upload, &etags).await.unwrap();
    assert_eq!(read_all(&store, key).await, b"hello, world!!!");
    assert_eq!(store.head(key).await.unwrap(), Some(15));
    assert!(matches!(store.list_parts(key, &upload).await, Err(StorageError::NoSuchUpload)));

    let resp = test::call_service(&app, TestRequest::get().uri(&download_url(&store, key).await).to_request()).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers().get("content-disposition").unwrap(), &super::super::content_disposition("greeting.txt"));
    assert_eq!(resp.headers().get("accept-ranges").unwrap(), "bytes");
    assert_eq!(test::read_body(resp).await, &b"hello, world!!!"[..]);

    let head = TestRequest::default().method(Method::HEAD).uri(&download_url(&store, key).await);
    let resp = test::call_service(&app, head.to_request()).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers().get("content-type").unwrap(), "text/plain");
    assert_eq!(resp.into_body().size(), actix_web::body::BodySize::Sized(15));
}

#[actix_web::test]
async fn complete_is_idempotent_and_checks_parts() {
    let (_dir, store) = new_store().await;
    let app = app!(store);
    let (upload, etags) = upload_parts!(app, store, "k");
    let mut wrong = etags.clone();
    wrong[1].etag = "\"0000\"".into();
    assert!(matches!(store.complete("k", &upload, &wrong).await, Err(StorageError::InvalidPart(_))));
    assert!(matches!(store.complete("other", &upload, &etags).await, Err(StorageError::NoSuchUpload)));
    store.complete("k", &upload, &etags).await.unwrap();
    store.complete("k", &upload, &etags).await.unwrap();
    assert!(matches!(store.complete("k", &upload, &wrong).await, Err(StorageError::NoSuchUpload)));
    assert!(matches!(store.complete("k", &"0".repeat(32), &etags).await, Err(StorageError::NoSuchUpload)));
    assert_eq!(read_all(&store, "k").await, b"hello, world!!!");
    store.delete("k").await.unwrap();
    store.delete("k").await.unwrap();
    assert_eq!(store.head("k").await.unwrap(), None);
}

#[actix_web::test]
async fn complete_keeps_only_the_parts_named() {
    let (_dir, store) = new_store().await;
    let app = app!(store);
    let (upload, etags) = upload_parts!(app, store, "k");
    store.complete("k", &upload, &[etags[0].clone(), etags[2].clone()]).await.unwrap();
    assert_eq!(read_all(&store, "k").await, b"hello!!!");
}

#[actix_web::test]
async fn a_re_put_replaces_the_part() {
    let (_dir, store) = new_store().await;
    let app = app!(store);
    let upload = store.create_multipart("k", "text/plain").await.unwrap();
    for bytes in [&b"first"[..], b"again"] {
        let resp = test::call_service(&app, put(&sign(&store, "k", &upload, 1, bytes).await, bytes).to_request()).await;
        assert_eq!(resp.status(), StatusCode::OK);
    }
    let listed = store.list_parts("k", &upload).await.unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].etag, format!("\"{}\"", hex::encode(sha1(b"again"))));
}

#[actix_web::test]
async fn wrong_bytes_are_refused_and_nothing_is_kept() {
    let (dir, store) = new_store().await;
    let app = app!(store);
    let upload = store.create_multipart("k", "text/plain").await.unwrap();
    let signed = sign(&store, "k", &upload, 1, b"hello").await;

    let resp = test::call_service(&app, put(&signed, b"hellO").to_request()).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&test::read_body(resp).await), "bad-digest");

    let resp = test::call_service(&app, put(&signed, b"hello!").to_request()).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert_eq!(error_code(&test::read_body(resp).await), "size-mismatch");

    // A lying Content-Length is caught by counting while streaming.
    let lying = put(&signed, b"hello!").insert_header((CONTENT_LENGTH, 5));
    let resp = test::call_service(&app, lying.to_request()).await;
    assert_eq!(error_code(&test::read_body(resp).await), "size-mismatch");

    let other = Sha1B64::from_digest(&sha1(b"other"));
    let swapped = put(&signed, b"hello").insert_header((CHECKSUM_HEADER, other.as_str()));
    let resp = test::call_service(&app, swapped.to_request()).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);

    assert!(store.list_parts("k", &upload).await.unwrap().is_empty());
    assert_eq!(std::fs::read_dir(dir.path().join("objects/tmp")).unwrap().count(), 0, "no litter");
}

#[actix_web::test]
async fn short_and_broken_bodies_are_refused() {
    let (_dir, store) = new_store().await;
    let upload = store.create_multipart("k", "text/plain").await.unwrap();
    let signed = sign(&store, "k", &upload, 1, b"hello").await;
    let query: PartQuery =
        web::Query::<PartQuery>::from_query(signed.url.split_once('?').unwrap().1).unwrap().into_inner();
    let grant = store.verify_part(query).unwrap();
    let short = futures_util::stream::iter([Ok::<_, std::io::Error>(Bytes::from_static(b"hell"))]);
    assert!(matches!(store.put_part(&grant, short).await, Err(LocalError::SizeMismatch(_))));
    let broken = futures_util::stream::iter([Ok(Bytes::from_static(b"he")), Err(std::io::Error::other("cut"))]);
    assert!(matches!(store.put_part(&grant, broken).await, Err(LocalError::IncompleteBody(_))));
    assert!(store.list_parts("k", &upload).await.unwrap().is_empty());
}

#[actix_web::test]
async fn expired_and_tampered_urls_are_refused() {
    let (_dir, store) = new_store().await;
    let app = app!(store);
    let upload = store.create_multipart("k", "text/plain").await.unwrap();
    let signed = sign(&store, "k", &upload, 1, b"hello").await;

    let mut query: PartQuery =
        web::Query::<PartQuery>::from_query(signed.url.split_once('?').unwrap().1).unwrap().into_inner();
    query.expires = chrono::Utc::now().timestamp() - 10;
    store.signer().sign_part(&mut query);
    let expired = SignedRequest { url: query.to_url(&format!("{ORIGIN}{PARTS_PATH}")), ..signed.clone() };
    let resp = test::call_service(&app, put(&expired, b"hello").to_request()).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    let body = test::read_body(resp).await;
    assert_eq!(error_code(&body), "request-expired");
    assert!(String::from_utf8_lossy(&body).contains("Request has expired"));

    let tampered = SignedRequest { url: signed.url.replace("size=5", "size=6"), ..signed.clone() };
    let resp = test::call_service(&app, put(&tampered, b"hello!").to_request()).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);
    assert_eq!(error_code(&test::read_body(resp).await), "signature-invalid");

    let flipped = if signed.url.ends_with('0') { '1' } else { '0' };
    let forged = SignedRequest { url: format!("{}{flipped}", &signed.url[..signed.url.len() - 1]), ..signed.clone() };
    let resp = test::call_service(&app, put(&forged, b"hello").to_request()).await;
    assert_eq!(resp.status(), StatusCode::FORBIDDEN);

    let bare = TestRequest::put().uri(PARTS_PATH).set_payload("x").to_request();
    let resp = test::call_service(&app, bare).await;
    assert_eq!(resp.status(), StatusCode::BAD_REQUEST);
    assert!(store.list_parts("k", &upload).await.unwrap().is_empty());
}

#[actix_web::test]
async fn ranges_are_served_from_the_parts_they_cover() {
    let (_dir, store) = new_store().await;
    let app = app!(store);
    let (upload, etags) = upload_parts!(app, store, "k");
    store.complete("k", &upload, &etags).await.unwrap();
    let url = download_url(&store, "k").await;
    let cases: [(&str, StatusCode, &[u8], Option<&str>); 7] = [
        ("bytes=0-3", StatusCode::PARTIAL_CONTENT, b"hell", Some("bytes 0-3/15")),
        ("bytes=3-7", StatusCode::PARTIAL_CONTENT, b"lo, w", Some("bytes 3-7/15")),
        ("bytes=-4", StatusCode::PARTIAL_CONTENT, b"d!!!", Some("bytes 11-14/15")),
        ("bytes=10-", StatusCode::PARTIAL_CONTENT, b"ld!!!", Some("bytes 10-14/15")),
        ("bytes=0-1,4-5", StatusCode::OK, b"hello, world!!!", None),
        ("bytes=x-1", StatusCode::OK, b"hello, world!!!", None),
        ("bytes=15-", StatusCode::RANGE_NOT_SATISFIABLE, b"", Some("bytes */15")),
    ];
    for (range, status, body, content_range) in cases {
        let resp =
            test::call_service(&app, TestRequest::get().uri(&url).insert_header((RANGE, range)).to_request()).await;
        assert_eq!(resp.status(), status, "{range}");
        assert_eq!(resp.headers().get(CONTENT_RANGE).map(|v| v.to_str().unwrap()), content_range, "{range}");
        let got = test::read_body(resp).await;
        if status == StatusCode::RANGE_NOT_SATISFIABLE {
            assert_eq!(error_code(&got), "range-not-satisfiable");
        } else {
            assert_eq!(got, body, "{range}");
        }
    }
}

#[actix_web::test]
async fn one_part_uploads_make_objects_even_empty_ones_and_their_urls_die_with_them() {
    let (_dir, store) = new_store().await;
    let app = app!(store);
    for (key, bytes) in [("one", &b"whole file"[..]), ("empty", b"")] {
        let upload = store.create_multipart(key, "text/plain").await.unwrap();
        let signed = sign(&store, key, &upload, 1, bytes).await;
        let resp = test::call_service(&app, put(&signed, bytes).to_request()).await;
        assert_eq!(resp.status(), StatusCode::OK, "{key}");
        let parts = store.list_parts(key, &upload).await.unwrap();
        store.complete(key, &upload, &parts).await.unwrap();
        assert_eq!(store.head(key).await.unwrap(), Some(bytes.len() as u64));
        assert_eq!(read_all(&store, key).await, bytes);
        // Still within its lifetime, the URL cannot write to the completed object.
        let etag = store.stat(key).await.unwrap().unwrap().etag;
        let resp = test::call_service(&app, put(&signed, bytes).to_request()).await;
        assert_eq!(resp.status(), StatusCode::NOT_FOUND, "{key}");
        assert_eq!(error_code(&test::read_body(resp).await), "upload-not-found");
        assert_eq!(store.stat(key).await.unwrap().unwrap().etag, etag);
    }
    // A single-PUT URL (signed before every upload was multipart) writes nothing.
    let sha1 = Sha1B64::from_digest(&sha1(b"other"));
    let mut query = crate::storage::local::PartQuery {
        key: "one".into(),
        upload: None,
        part: 1,
        size: 5,
        sha1: sha1.as_str().into(),
        content_type: "text/plain".into(),
        expires: chrono::Utc::now().timestamp() + 60,
        sig: String::new(),
    };
    store.signer().sign_part(&mut query);
    let url = query.to_url(&format!("{ORIGIN}{PARTS_PATH}"));
    let req = TestRequest::put().uri(path_of(&url)).insert_header((CHECKSUM_HEADER, sha1.as_str()));
    let resp = test::call_service(&app, req.set_payload(&b"other"[..]).to_request()).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(read_all(&store, "one").await, b"whole file");
    let url = download_url(&store, "empty").await;
    let resp = test::call_service(&app, TestRequest::get().uri(&url).to_request()).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(test::read_body(resp).await.is_empty());
    let resp =
        test::call_service(&app, TestRequest::get().uri(&url).insert_header((RANGE, "bytes=0-")).to_request()).await;
    assert_eq!(resp.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    let missing = download_url(&store, "never").await;
    let resp = test::call_service(&app, TestRequest::get().uri(&missing).to_request()).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
}

#[actix_web::test]
async fn abort_removes_the_upload_and_its_parts() {
    let (dir, store) = new_store().await;
    let app = app!(store);
    let upload = store.create_multipart("k", "text/plain").await.unwrap();
    let signed = sign(&store, "k", &upload, 1, b"hello").await;
    assert_eq!(test::call_service(&app, put(&signed, b"hello").to_request()).await.status(), StatusCode::OK);
    store.abort("k", &upload).await.unwrap();
    store.abort("k", &upload).await.unwrap();
    assert!(matches!(store.list_parts("k", &upload).await, Err(StorageError::NoSuchUpload)));
    assert!(!dir.path().join("objects/uploads").join(&upload).exists());
    let resp = test::call_service(&app, put(&signed, b"hello").to_request()).await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_code(&test::read_body(resp).await), "upload-not-found");
}

#[actix_web::test]
async fn keys_that_could_escape_the_root_are_refused() {
    let (_dir, store) = new_store().await;
    let sha1 = Sha1B64::from_digest(&sha1(b""));
    for key in ["../escape", "/etc/passwd", "a/../../b", "a\\b", "a\0b", ""] {
        assert!(store.create_multipart(key, "text/plain").await.is_err(), "{key:?}");
        let target = PartTarget { key, upload: None, number: 1, size: 0, sha1: &sha1, md5: None, content_type: "x" };
        assert!(store.sign_part(target, Duration::from_secs(60)).await.is_err(), "{key:?}");
        assert!(store.head(key).await.is_err(), "{key:?}");
        assert!(store.delete(key).await.is_err(), "{key:?}");
    }
    assert!(store.list_parts("k", "../../tmp").await.is_err());
}

#[actix_web::test]
async fn ping_checks_the_folder() {
    let (dir, store) = new_store().await;
    store.ping().await.unwrap();
    std::fs::remove_dir_all(dir.path().join("objects")).unwrap();
    assert!(matches!(store.ping().await, Err(StorageError::Unavailable(_))));
}

#[test]
fn range_headers_parse_like_http_says() {
    use ByteRange::{Full, Partial, Unsatisfiable};
    let cases = [
        ("bytes=0-3", 10, Partial { start: 0, end: 3 }),
        ("bytes=2-", 10, Partial { start: 2, end: 9 }),
        ("bytes=5-100", 10, Partial { start: 5, end: 9 }),
        ("bytes=-3", 10, Partial { start: 7, end: 9 }),
        ("bytes=-30", 10, Partial { start: 0, end: 9 }),
        ("BYTES = 1-1", 10, Partial { start: 1, end: 1 }),
        ("bytes=10-", 10, Unsatisfiable),
        ("bytes=-0", 10, Unsatisfiable),
        ("bytes=0-", 0, Unsatisfiable),
        ("bytes=-5", 0, Unsatisfiable),
        ("bytes=0-1,3-4", 10, Full),
        ("bytes=3-2", 10, Full),
        ("bytes=-", 10, Full),
        ("bytes=a-b", 10, Full),
        ("bytes=+1-2", 10, Full),
        ("bytes=99999999999999999999-", 10, Full),
        ("items=0-1", 10, Full),
        ("bytes 0-1", 10, Full),
    ];
    for (header, size, want) in cases {
        assert_eq!(parse_range(header, size), want, "{header} of {size}");
    }
}

type BoxedBody = std::pin::Pin<Box<dyn futures_util::Stream<Item = Result<Bytes, PayloadError>>>>;

/// A PUT whose body stops coming is given up after the body timeout: `408 body-timeout`,
/// the connection closed, and nothing kept (not even in `tmp/`).
#[actix_web::test]
async fn a_silent_body_is_cut_off_and_leaves_nothing() {
    let (dir, store) = new_store().await;
    let timeout = web::Data::new(BodyTimeout(Some(Duration::from_millis(100))));
    let app = test::init_service(App::new().app_data(store.clone()).app_data(timeout).configure(configure)).await;
    let upload = store.create_multipart("k", "text/plain").await.unwrap();
    let signed = sign(&store, "k", &upload, 1, b"hello").await;
    let stalled =
        futures_util::stream::once(async { Ok(Bytes::from_static(b"he")) }).chain(futures_util::stream::pending());
    let body: BoxedBody = Box::pin(stalled);
    let (req, _) = put(&signed, b"").insert_header((CONTENT_LENGTH, 5)).to_request().replace_payload(body.into());
    let resp = tokio::time::timeout(Duration::from_secs(5), test::call_service(&app, req)).await.expect("an answer");
    assert_eq!(resp.status(), StatusCode::REQUEST_TIMEOUT);
    assert_eq!(resp.response().head().connection_type(), actix_web::http::ConnectionType::Close);
    assert_eq!(error_code(&test::read_body(resp).await), "body-timeout");
    assert!(store.list_parts("k", &upload).await.unwrap().is_empty());
    assert_eq!(std::fs::read_dir(dir.path().join("objects/tmp")).unwrap().count(), 0, "no litter");
}

/// The limit is on silence, not on the whole body: a slow but steady sender gets through.
#[actix_web::test]
async fn a_slow_but_steady_body_is_not_cut_off() {
    let (_dir, store) = new_store().await;
    let upload = store.create_multipart("k", "text/plain").await.unwrap();
    let signed = sign(&store, "k", &upload, 1, b"hello").await;
    let query = web::Query::<PartQuery>::from_query(signed.url.split_once('?').unwrap().1).unwrap().into_inner();
    let grant = store.verify_part(query).unwrap();
    let steady = futures_util::stream::iter([&b"he"[..], b"l", b"lo"]).then(|chunk| async move {
        tokio::time::sleep(Duration::from_millis(60)).await;
        Ok(Bytes::from_static(chunk))
    });
    let (body, idled) = idle_limited(Box::pin(steady), BodyTimeout(Some(Duration::from_millis(100))));
    store.put_part(&grant, body).await.unwrap();
    assert!(!idled.load(Ordering::Relaxed));
    assert_eq!(store.list_parts("k", &upload).await.unwrap().len(), 1);

    let silent = futures_util::stream::pending::<Result<Bytes, PayloadError>>();
    let (body, idled) = idle_limited(silent, BodyTimeout(Some(Duration::from_millis(50))));
    assert!(matches!(store.put_part(&grant, body).await, Err(LocalError::IncompleteBody(_))));
    assert!(idled.load(Ordering::Relaxed));
    assert_eq!(BodyTimeout::from_secs(0), BodyTimeout(None), "0 turns the limit off");
}
