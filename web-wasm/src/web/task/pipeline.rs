//! The hashing and sending pipeline of a task: one hasher reading the file front to back,
//! senders taking hashed parts off a bounded queue, each PUT handed to the
//! transport and each report run while the next PUT goes.

use std::collections::BTreeSet;
use std::rc::Rc;

use futures_channel::{mpsc, oneshot};
use futures_util::lock::Mutex;
use futures_util::{SinkExt, StreamExt};
use js_sys::Uint8Array;
use md5::Md5;
use sha1::{Digest, Sha1};

use super::super::control::{self, Control};
use super::super::error::EngineError;
use super::super::io::{self, now_ms, ReadAhead};
use super::super::transport::Put;
use super::{Event, Task};
use crate::protocol::{Code, ReportPart, SignPart, UploadState};
use crate::{Md5B64, Plan, Sha1Hex};

/// Senders of one file: as many as the browser's connections per origin; the PUTs in flight
/// across all files are bounded by the engine's PUT slots.
const MAX_SENDERS: usize = 6;
/// Bytes copied into wasm memory at a time for the whole-file hash (the buffer is reused).
pub(in crate::web) const CHUNK: u32 = 1 << 20;

/// A hashed part, waiting to be sent. Its body is a slice of the file (a Blob): the browser
/// streams it from the file, so the bytes read for hashing are dropped at once; fetch
/// bodies from a Blob also run ~12x faster here than from an ArrayBuffer (measured:
/// 200 vs 17 MB/s, 8 MiB bodies, Chromium 156).
struct Hashed {
    number: u32,
    body: web_sys::Blob,
    len: u64,
    sha1: String,
}

impl Task {
    /// Hashes and sends every part not in `done`; answers the whole-file SHA-1.
    pub(super) async fn pipeline(
        self: Rc<Self>,
        plan: &Plan,
        done: &BTreeSet<u32>,
        whole: Option<Sha1Hex>,
    ) -> Result<Sha1Hex, EngineError> {
        // Capacity 1 (+ the one each sender holds): hashing stays a few parts ahead of sending.
        let (tx, rx) = mpsc::channel::<Hashed>(0);
        let rx = Mutex::new(rx);
        let hasher = self.hasher(plan, done, tx, whole);
        // One sender per part at most; the engine's PUT slots bound them across files.
        let senders = (0..MAX_SENDERS.min(plan.part_count.max(1) as usize)).map(|_| Self::sender(self.clone(), &rx));
        let senders = futures_util::future::join_all(senders);
        let (whole, sent) = futures_util::future::join(hasher, senders).await;
        for r in sent {
            r?;
        }
        whole
    }

    async fn hasher(
        &self,
        plan: &Plan,
        done: &BTreeSet<u32>,
        mut tx: mpsc::Sender<Hashed>,
        known: Option<Sha1Hex>,
    ) -> Result<Sha1Hex, EngineError> {
        // One of the engine's hashing slots while this file is read and hashed; given back
        // (with the part buffers) while paused, and while every sender is busy if another
        // file waits to hash, so other files hash meanwhile and memory stays bounded.
        let mut hashing = None;
        let mut whole = Sha1::new();
        let mut buf = vec![0u8; CHUNK as usize];
        // With the whole-file SHA-1 known, only the parts still to send are read.
        let mut parts = ReadAhead::new(&self.file, plan.parts().filter(|(n, _)| known.is_none() || !done.contains(n)));
        loop {
            if self.ctl.is_paused() {
                hashing = None;
                parts.park();
            }
            self.ctl.gate().await?;
            if hashing.is_none() {
                hashing = Some(control::race_for(self.queue.hashing.take(), &self.ctl).await?);
            }
            if self.ctl.is_finished() {
                break;
            }
            let Some(next) = parts.next().await else { break };
            let io::Piece { number, range: r, bytes } = next?;
            // WebCrypto hashes the part off-thread while Rust hashes it for the whole file
            // (and for its MD5, where the storage checks that), from one copy of the bytes.
            let digest = if done.contains(&number) { None } else { Some(io::start_sha1(&bytes)?) };
            let mut md5 = (digest.is_some() && self.md5_parts.get()).then(Md5::new);
            let mut whole_fed = known.is_some();
            if md5.is_some() {
                // The MD5 is signed into the part's URL: it must be known before sending.
                feed((!whole_fed).then_some(&mut whole), md5.as_mut(), &bytes, &mut buf).await;
                whole_fed = true;
            }
            // The part goes to a free sender before it is added to the whole-file hash, so
            // its sign and PUT run while this thread hashes (it yields between chunks).
            let mut waiting = None;
            if let Some(digest) = digest {
                let sha1 = io::finish_sha1(digest).await?;
                let len = r.end - r.start;
                let md5 = md5.map(|m| Md5B64::from_digest(&m.finalize().into()).as_str().to_owned());
                self.transport.know(SignPart { number, sha1: sha1.as_str().to_owned(), size: len, md5 });
                let body = self.file.slice_with_f64_and_f64(r.start as f64, r.end as f64).map_err(EngineError::read)?;
                let part = Hashed { number, body, len, sha1: sha1.as_str().to_owned() };
                match tx.try_send(part) {
                    Ok(()) => {}
                    Err(e) if e.is_full() => waiting = Some(e.into_inner()),
                    Err(_) => return Err(EngineError::new("stopped", "the senders stopped")),
                }
            }
            if !whole_fed {
                feed(Some(&mut whole), None, &bytes, &mut buf).await;
            }
            if known.is_none() {
                self.progress.borrow_mut().hashed(r.end - r.start);
                self.report_progress();
            }
            // WebCrypto copied the bytes when it started, and both Rust hashes have them.
            parts.recycle(bytes);
            // Every sender busy: wait for one (hashing stays a part or two ahead of sending),
            // making way for a file that waits to hash.
            if let Some(part) = waiting {
                if self.queue.hashing.wanted() {
                    hashing = None;
                    parts.park();
                }
                if tx.send(part).await.is_err() {
                    return Err(EngineError::new("stopped", "the senders stopped"));
                }
            }
        }
        drop(tx);
        drop(hashing);
        let told = known.is_some();
        let sha1 = match known {
            Some(k) => k,
            None => Sha1Hex::from_digest(&whole.finalize().into()),
        };
        // Tell the backend as soon as the hash is known: if it holds this content, stop. A
        // SHA-1 known before hashing is one the backend has already (given at the start, by
        // `PATCH` for a probable duplicate, or with a completion that found parts missing).
        if !told && !self.ctl.is_finished() {
            let id = self.upload_id.borrow().clone();
            let u = self.settle(self.api.set_sha1(&id, sha1.as_str()).await?).await?;
            if let Some(file) = u.instant_file() {
                *self.file_info.borrow_mut() = Some(file.clone());
                self.ctl.finish();
            }
        }
        Ok(sha1)
    }

    /// Sends the one part of a small file, hashed before it started (nothing read twice).
    pub(super) async fn send_small(self: &Rc<Self>, part: &SignPart) -> Result<(), EngineError> {
        let body = self.file.slice_with_f64_and_f64(0.0, part.size as f64).map_err(EngineError::read)?;
        let hashed = Hashed { number: part.number, body, len: part.size, sha1: part.sha1.clone() };
        let stored = match self.put(&hashed).await {
            Ok(Put::Stored { etag }) => self.stored(&hashed, etag).await,
            Ok(Put::Skipped) => Ok(()),
            Err(e) => Err(e),
        };
        stored.or_else(|e| self.ended_or(e))
    }

    /// Takes hashed parts and PUTs them, one at a time. A part's report runs while the next
    /// part goes (a PUT never waits for the API), and must have succeeded before the report
    /// after it starts; the sender's last report is awaited before it ends.
    async fn sender(task: Rc<Self>, rx: &Mutex<mpsc::Receiver<Hashed>>) -> Result<(), EngineError> {
        let mut reporting: Option<oneshot::Receiver<Result<(), EngineError>>> = None;
        let result = async {
            loop {
                let next = rx.lock().await.next().await;
                let Some(part) = next else { return Ok(()) };
                if task.ctl.is_finished() {
                    continue;
                }
                let put = task.put(&part).await;
                if let Some(report) = reporting.take() {
                    task.reported(report).await?;
                }
                match put {
                    Ok(Put::Stored { etag }) => reporting = Some(task.report_later(part, etag)),
                    Ok(Put::Skipped) => {}
                    Err(e) => task.ended_or(e)?,
                }
            }
        }
        .await;
        let last = match reporting {
            Some(report) => task.reported(report).await,
            None => Ok(()),
        };
        if result.is_err() || last.is_err() {
            rx.lock().await.close();
        }
        result.and(last)
    }

    /// Reports a stored part on its own (spawned: it runs while this sender's next PUT goes).
    fn report_later(self: &Rc<Self>, part: Hashed, etag: Option<String>) -> oneshot::Receiver<Result<(), EngineError>> {
        let (tx, rx) = oneshot::channel();
        let task = self.clone();
        wasm_bindgen_futures::spawn_local(async move {
            let _ = tx.send(task.stored(&part, etag).await);
        });
        rx
    }

    async fn reported(&self, report: oneshot::Receiver<Result<(), EngineError>>) -> Result<(), EngineError> {
        match report.await {
            Ok(Err(e)) => self.ended_or(e),
            _ => Ok(()),
        }
    }

    /// An error is no failure when the upload ended as instant under us.
    fn ended_or(&self, e: EngineError) -> Result<(), EngineError> {
        if self.ctl.is_finished() || e.is(Code::UploadComplete) {
            Ok(())
        } else {
            Err(e)
        }
    }

    /// PUTs one part through the transport; the first PUT of the task starts the clock.
    async fn put(&self, part: &Hashed) -> Result<Put, EngineError> {
        let id = self.upload_id.borrow().clone();
        let sending = || {
            if !self.first_put.replace(true) {
                (self.emit)(Event::Timing { task: self.id, name: "first_put_ms", ms: now_ms() - self.started_ms });
                self.progress.borrow_mut().start(now_ms());
                self.state("uploading");
            }
        };
        self.transport.put(&self.api, &id, part.number, &part.body, &sending).await
    }

    /// The part is stored: report it (the report that completes the set composes the file).
    async fn stored(&self, part: &Hashed, etag: Option<String>) -> Result<(), EngineError> {
        let Some(etag) = etag else {
            return Err(EngineError::new(
                "etag-not-readable",
                "the storage's answer has no readable ETag: its CORS rule must expose the ETag header",
            ));
        };
        let id = self.upload_id.borrow().clone();
        let report = self.api.report(&id, part.number, &ReportPart { etag, sha1: part.sha1.clone() }).await?;
        self.transport.forget(part.number);
        let mut progress = self.progress.borrow_mut();
        if let Some(at) = self.ctl.take_resumed() {
            progress.resumed(at);
        }
        progress.sent(now_ms(), part.len);
        drop(progress);
        self.report_progress();
        if let Some(file) = report.file {
            match report.state {
                UploadState::Complete => *self.composed.borrow_mut() = Some(file),
                _ => *self.file_info.borrow_mut() = Some(file),
            }
        }
        Ok(())
    }
}

/// The SHA-1 of a whole file, read a part of `plan` at a time with the next part read
/// ahead; `hashed` hears each part's length once it is hashed. A pause waits at `ctl`'s gate.
pub(in crate::web) async fn whole_sha1(
    file: &web_sys::Blob,
    plan: &Plan,
    ctl: Option<&Control>,
    mut hashed: impl FnMut(u64),
) -> Result<Sha1Hex, EngineError> {
    let mut hasher = Sha1::new();
    let mut buf = vec![0u8; CHUNK as usize];
    let mut parts = ReadAhead::new(file, plan.parts());
    while let Some(next) = parts.next().await {
        if let Some(ctl) = ctl {
            ctl.gate().await?;
        }
        let piece = next?;
        feed(Some(&mut hasher), None, &piece.bytes, &mut buf).await;
        hashed(piece.range.end - piece.range.start);
        parts.recycle(piece.bytes);
    }
    Ok(Sha1Hex::from_digest(&hasher.finalize().into()))
}

/// Hashes `bytes` into the whole-file SHA-1 and/or a part's MD5, copying them into wasm
/// memory once, `buf` at a time, and yielding to the event loop between chunks.
pub(in crate::web) async fn feed(
    mut sha1: Option<&mut Sha1>,
    mut md5: Option<&mut Md5>,
    bytes: &Uint8Array,
    buf: &mut [u8],
) {
    let len = bytes.length();
    let mut off = 0;
    while off < len {
        let n = (len - off).min(CHUNK);
        let chunk = &mut buf[..n as usize];
        bytes.subarray(off, off + n).copy_to(chunk);
        if let Some(h) = sha1.as_deref_mut() {
            h.update(&*chunk);
        }
        if let Some(h) = md5.as_deref_mut() {
            h.update(&*chunk);
        }
        off += n;
        if off < len {
            io::yield_now().await;
        }
    }
}
