//! The engine's browser pieces in a real dedicated worker of headless Chromium
//! (`wasm-bindgen-test`): WebCrypto against the Rust hasher, slicing a Blob, IndexedDB.

use js_sys::Uint8Array;
use sha1::{Digest, Sha1};
use wasm_bindgen::JsCast;
use wasm_bindgen_test::*;

use super::{io, kv, task};
use crate::hashing::sha1;
use crate::{Sha1B64, Sha1Hex};

wasm_bindgen_test_configure!(run_in_dedicated_worker);

fn bytes(n: usize) -> Vec<u8> {
    (0..n as u32).map(|i| (i.wrapping_mul(31) ^ (i >> 7)) as u8).collect()
}

#[wasm_bindgen_test]
fn runs_in_a_dedicated_worker() {
    assert!(js_sys::global().dyn_into::<web_sys::DedicatedWorkerGlobalScope>().is_ok());
}

#[wasm_bindgen_test]
async fn webcrypto_agrees_with_rust_on_known_vectors() {
    for (input, hex) in [
        (&b""[..], "da39a3ee5e6b4b0d3255bfef95601890afd80709"),
        (&b"a"[..], "86f7e437faa5a7fce15d1ddcb9eaeaea377667b8"),
        (&b"abc"[..], "a9993e364706816aba3e25717850c26c9cd0d89d"),
    ] {
        let web = io::finish_sha1(io::start_sha1(&Uint8Array::from(input)).unwrap()).await.unwrap();
        assert_eq!(web, Sha1B64::from_digest(&sha1(input)));
        assert_eq!(Sha1Hex::from_digest(&sha1(input)).as_str(), hex);
    }
}

#[wasm_bindgen_test]
async fn whole_file_hash_through_the_reused_buffer() {
    // More than one CHUNK, and not a multiple of it.
    let data = bytes(task::CHUNK as usize * 2 + 12_345);
    let js = Uint8Array::from(&data[..]);
    let mut h = Sha1::new();
    let mut buf = vec![0u8; task::CHUNK as usize];
    task::feed(Some(&mut h), None, &js, &mut buf).await;
    assert_eq!(<[u8; 20]>::from(h.finalize()), sha1(&data));
    // One pass can feed the part's MD5 too (storage that checks Content-MD5).
    let (mut h, mut m) = (Sha1::new(), md5::Md5::new());
    task::feed(Some(&mut h), Some(&mut m), &js, &mut buf).await;
    assert_eq!(<[u8; 20]>::from(h.finalize()), sha1(&data));
    assert_eq!(<[u8; 16]>::from(m.finalize()), crate::hashing::md5(&data));
    let web = io::finish_sha1(io::start_sha1(&js).unwrap()).await.unwrap();
    assert_eq!(web, Sha1B64::from_digest(&sha1(&data)));
}

#[wasm_bindgen_test]
async fn whole_file_hash_reads_parts_ahead_in_order() {
    // Three parts of a 5 MiB plan (5, 5 and 1 MiB + 7 bytes), each read while the one before
    // is hashed: the digest is the file's, and each part is counted once, in order.
    let data = bytes(11 * 1024 * 1024 + 7);
    let blob = web_sys::Blob::new_with_u8_array_sequence(&js_sys::Array::of1(&Uint8Array::from(&data[..]))).unwrap();
    let plan = crate::Plan::new(data.len() as u64, crate::plan::MIN_PART_SIZE).unwrap();
    let mut seen = Vec::new();
    let got = task::whole_sha1(&blob, &plan, None, |len| seen.push(len)).await.unwrap();
    assert_eq!(got, Sha1Hex::from_digest(&sha1(&data)));
    assert_eq!(seen, [5 << 20, 5 << 20, (1 << 20) + 7]);
    assert_eq!(super::sha1_file(blob).await.unwrap(), got.as_str());
}

#[wasm_bindgen_test]
async fn yielding_comes_back_in_order() {
    use std::cell::RefCell;
    use std::rc::Rc;
    let order = Rc::new(RefCell::new(Vec::new()));
    let run = |n: u32| {
        let order = order.clone();
        async move {
            for _ in 0..3 {
                io::yield_now().await;
                order.borrow_mut().push(n);
            }
        }
    };
    futures_util::future::join(run(1), run(2)).await;
    // Each yield lets the other task run: they take turns.
    assert_eq!(*order.borrow(), [1, 2, 1, 2, 1, 2]);
}

#[wasm_bindgen_test]
async fn read_ahead_gives_each_range_in_order_through_reused_buffers() {
    let data = bytes(300_017);
    let blob = web_sys::Blob::new_with_u8_array_sequence(&js_sys::Array::of1(&Uint8Array::from(&data[..]))).unwrap();
    // The third range is longer than the buffers given back; the last is empty.
    let ranges = [(1, 0..100_000), (2, 100_000..200_000), (3, 200_000..300_017), (4, 300_017..300_017)];
    let mut reader = io::ReadAhead::new(&blob, ranges.iter().cloned());
    for (n, range) in ranges {
        let piece = reader.next().await.unwrap().unwrap();
        assert_eq!((piece.number, piece.range.clone()), (n, range.clone()));
        assert_eq!(piece.bytes.to_vec(), &data[range.start as usize..range.end as usize]);
        reader.recycle(piece.bytes);
    }
    assert!(reader.next().await.is_none());
}

#[wasm_bindgen_test]
async fn reads_slices_of_a_blob() {
    let data = bytes(100_000);
    let parts = js_sys::Array::of1(&Uint8Array::from(&data[..]));
    let blob = web_sys::Blob::new_with_u8_array_sequence(&parts).unwrap();
    for (start, end) in [(0u64, 0u64), (0, 1), (99_999, 100_000), (12_345, 67_890), (0, 100_000)] {
        let got = io::read(&blob, start, end).await.unwrap().to_vec();
        assert_eq!(got, &data[start as usize..end as usize]);
    }
}

#[wasm_bindgen_test]
async fn indexeddb_keeps_what_resume_needs() {
    kv::delete("k").await;
    assert_eq!(kv::get("k").await, None);
    kv::put("k", "{\"upload_id\":\"up_1\"}").await;
    assert_eq!(kv::get("k").await.as_deref(), Some("{\"upload_id\":\"up_1\"}"));
    kv::put("k", "v2").await;
    assert_eq!(kv::get("k").await.as_deref(), Some("v2"));
    kv::delete("k").await;
    assert_eq!(kv::get("k").await, None);
}
