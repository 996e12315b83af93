//! The routes over real sockets, for what `actix_web::test` cannot show: a multi-MiB part
//! arriving in many chunks, a body cut short by the client, and the `Content-Length` the
//! HTTP encoder writes for HEAD and ranges.

use std::net::SocketAddr;
use std::time::Duration;

use actix_web::{App, HttpServer};
use shardrop_engine::hashing::sha1;
use shardrop_engine::Sha1B64;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;
use crate::storage::{DownloadTarget, PartTarget, SignedRequest, Store, StoredPart};

async fn serve() -> (tempfile::TempDir, web::Data<LocalStore>, SocketAddr) {
    let dir = tempfile::tempdir().unwrap();
    let store = LocalStore::new(dir.path().join("objects"), b"a test secret of 16+ bytes".to_vec(), "http://x".into());
    let store = web::Data::new(store.unwrap());
    store.prepare().await.unwrap();
    let data = store.clone();
    let server = HttpServer::new(move || App::new().app_data(data.clone()).configure(configure))
        .workers(1)
        .bind(("127.0.0.1", 0))
        .unwrap();
    let addr = server.addrs()[0];
    actix_web::rt::spawn(server.run());
    (dir, store, addr)
}

fn on(addr: SocketAddr, url: &str) -> String {
    format!("http://{addr}{}", url.strip_prefix("http://x").unwrap())
}

async fn sign(store: &LocalStore, upload: &str, number: u32, bytes: &[u8]) -> SignedRequest {
    let sha1 = Sha1B64::from_digest(&sha1(bytes));
    let target = PartTarget {
        key: "k",
        upload: Some(upload),
        number,
        size: bytes.len() as u64,
        sha1: &sha1,
        md5: None,
        content_type: "x",
    };
    store.sign_part(target, Duration::from_secs(60)).await.unwrap()
}

#[actix_web::test]
async fn big_parts_stream_in_and_out() {
    let (_dir, store, addr) = serve().await;
    let client = reqwest::Client::new();
    let upload = store.create_multipart("k", "application/octet-stream").await.unwrap();
    let parts: Vec<Vec<u8>> = (0..2u8).map(|p| (0..3_000_000u32).map(|i| (i % 251) as u8 ^ p).collect()).collect();
    let mut done = Vec::new();
    for (bytes, number) in parts.iter().zip(1..) {
        let signed = sign(&store, &upload, number, bytes).await;
        let mut req = client.put(on(addr, &signed.url)).body(bytes.clone());
        for (name, value) in &signed.headers {
            req = req.header(name, value);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(resp.headers()["access-control-expose-headers"], "ETag, x-amz-checksum-sha1");
        let etag = resp.headers()["etag"].to_str().unwrap().to_owned();
        done.push(StoredPart { number, etag, size: bytes.len() as u64, sha1: None });
    }
    store.complete("k", &upload, &done).await.unwrap();
    let target = DownloadTarget { key: "k", file_name: "f", content_type: "x/y", ttl: Duration::from_secs(60) };
    let url = on(addr, &store.sign_download(target).await.unwrap());

    let head = client.head(&url).send().await.unwrap();
    assert_eq!(head.status(), 200);
    assert_eq!(head.headers()["content-length"], "6000000");
    let all = client.get(&url).send().await.unwrap().bytes().await.unwrap();
    assert_eq!(all, parts.concat());
    let range = client.get(&url).header("range", "bytes=2999990-3000009").send().await.unwrap();
    assert_eq!(range.status(), 206);
    assert_eq!(range.headers()["content-length"], "20");
    assert_eq!(range.bytes().await.unwrap(), parts.concat()[2_999_990..3_000_010]);
}

#[actix_web::test]
async fn a_body_cut_short_leaves_nothing() {
    let (dir, store, addr) = serve().await;
    let upload = store.create_multipart("k", "x").await.unwrap();
    let signed = sign(&store, &upload, 1, b"hello").await;
    let path = signed.url.strip_prefix("http://x").unwrap();
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    let head = format!("PUT {path} HTTP/1.1\r\nhost: x\r\ncontent-length: 5\r\n\r\nhel");
    conn.write_all(head.as_bytes()).await.unwrap();
    conn.shutdown().await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), conn.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400") && answer.contains("incomplete-body"), "{answer}");
    let tmp = dir.path().join("objects/tmp");
    for _ in 0..50 {
        if std::fs::read_dir(&tmp).unwrap().count() == 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0, "the temp file is gone");
    assert!(store.list_parts("k", &upload).await.unwrap().is_empty());
}
