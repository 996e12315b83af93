//! One file's upload, from `File` to stored file.
//!
//! A hasher reads the file front to back, one part at a time, feeding the whole-file SHA-1
//! (Rust, incremental) while WebCrypto hashes the same part off-thread; each hashed part
//! goes to a bounded queue that `concurrency` senders drain (sign in batches, PUT straight
//! to storage, report). So the first PUT starts as soon as the first part is hashed, and
//! only the part being hashed is in memory: queued and in-flight parts are slices of the
//! file that the browser streams from disk, whatever the file's size. When
//! the whole-file hash is done the backend is told; if it already holds that content the
//! senders stop and the task ends `instant`.

use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::rc::Rc;

use futures_channel::{mpsc, oneshot};
use futures_util::lock::Mutex;
use futures_util::{SinkExt, StreamExt};
use js_sys::Uint8Array;
use md5::Md5;
use serde::Serialize;
use sha1::{Digest, Sha1};
use web_sys::File;

use super::api::{Api, Started};
use super::control::Control;
use super::error::EngineError;
use super::io::{self, now_ms, sleep_ms, ReadAhead};
use super::kv;
use super::transport::{Put, Transport};
use crate::probe::ProbeCollector;
use crate::progress::{Progress, Snapshot};
use crate::protocol::{Code, CreateUpload, FileView, PartCheck, ReportPart, SignPart, UploadState, UploadView};
use crate::{Md5B64, Plan, Sha1Hex};

/// Bytes copied into wasm memory at a time for the whole-file hash (the buffer is reused).
pub(super) const CHUNK: u32 = 1 << 20;
/// Rounds of "send what the storage lacks" before giving up (storage lost parts).
const ROUNDS: u32 = 3;

/// What the engine tells the page.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "kebab-case")]
pub enum Event<'a> {
    State {
        task: u32,
        state: &'a str,
    },
    /// The backend's id of this upload (new or resumed).
    Started {
        task: u32,
        upload_id: &'a str,
    },
    Progress {
        task: u32,
        progress: Snapshot,
    },
    Done {
        task: u32,
        result: Stored,
    },
    Failed {
        task: u32,
        error: EngineError,
    },
    Timing {
        task: u32,
        name: &'a str,
        ms: f64,
    },
}

#[derive(Debug, Clone, Serialize)]
pub struct Stored {
    pub file_id: String,
    pub sha1: Option<String>,
    pub size: u64,
    pub instant: bool,
}

impl Stored {
    fn of(f: FileView, instant: bool) -> Self {
        Self { file_id: f.file_id, sha1: f.sha1, size: f.size, instant }
    }
}

/// What a task remembers of a file in IndexedDB.
#[derive(Default, Serialize, serde::Deserialize)]
struct Memory {
    upload_id: Option<String>,
    sha1: Option<String>,
}

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

pub struct Task {
    pub id: u32,
    file: File,
    /// The upload's name: the file's own, or its path inside a dropped folder.
    name: String,
    api: Api,
    pub ctl: Rc<Control>,
    emit: Rc<dyn Fn(Event)>,
    concurrency: usize,
    transport: Transport,
    progress: RefCell<Progress>,
    started_ms: f64,
    first_put: Cell<bool>,
    upload_id: RefCell<String>,
    /// Set by the report that completed the upload, or the answer that made it instant.
    file_info: RefCell<Option<FileView>>,
    /// The storage checks parts by Content-MD5: compute each part's MD5 too.
    md5_parts: Cell<bool>,
}

impl Task {
    pub fn new(id: u32, file: File, name: String, api: Api, concurrency: usize, emit: Rc<dyn Fn(Event)>) -> Self {
        let size = file.size() as u64;
        let ctl = Rc::new(Control::default());
        Self {
            id,
            file,
            name,
            api,
            transport: Transport::new(ctl.clone()),
            ctl,
            emit,
            concurrency: concurrency.clamp(1, 6),
            progress: RefCell::new(Progress::new(size)),
            started_ms: now_ms(),
            first_put: Cell::new(false),
            upload_id: RefCell::new(String::new()),
            file_info: RefCell::new(None),
            md5_parts: Cell::new(false),
        }
    }

    pub fn state(&self, state: &'static str) {
        self.ctl.set_phase(state);
        if !self.ctl.is_paused() {
            (self.emit)(Event::State { task: self.id, state });
        }
    }

    fn report_progress(&self) {
        let progress = self.progress.borrow().snapshot();
        (self.emit)(Event::Progress { task: self.id, progress });
    }

    fn fingerprint(&self) -> String {
        format!("{}\u{0}{}\u{0}{}", self.name, self.file.size(), self.file.last_modified())
    }

    pub async fn run(self: Rc<Self>) {
        match self.clone().upload().await {
            Ok(stored) => {
                self.state(if stored.instant { "instant" } else { "complete" });
                self.report_progress();
                (self.emit)(Event::Done { task: self.id, result: stored });
            }
            Err(e) if e.is_cancelled() || self.ctl.is_cancelled() => {
                let id = self.upload_id.borrow().clone();
                if !id.is_empty() {
                    let _ = self.api.abort(&id).await;
                }
                kv::delete(&self.fingerprint()).await;
                self.state("cancelled");
                (self.emit)(Event::Failed { task: self.id, error: EngineError::cancelled() });
            }
            Err(error) => {
                self.state("failed");
                (self.emit)(Event::Failed { task: self.id, error });
            }
        }
    }

    async fn upload(self: Rc<Self>) -> Result<Stored, EngineError> {
        let size = self.file.size() as u64;
        let fp = self.fingerprint();
        self.state("hashing");
        let memory: Memory = kv::get(&fp).await.and_then(|s| serde_json::from_str(&s).ok()).unwrap_or_default();
        let upload = match self.resume(&memory).await? {
            Some(u) => u,
            None => {
                let ct = self.file.type_();
                let req = CreateUpload {
                    name: self.name.clone(),
                    size,
                    content_type: (!ct.is_empty()).then_some(ct),
                    // A file this browser stored before: its SHA-1 is known, no hashing needed.
                    sha1: memory.sha1.clone(),
                    last_modified: Some(self.file.last_modified() as i64),
                    probe: Some(self.probe(size).await?.as_str().to_owned()),
                };
                match self.api.start(&req).await? {
                    Started::Instant(file) => return Ok(Stored::of(file, true)),
                    Started::Upload(u) => u,
                }
            }
        };
        let upload = self.settle(upload).await?;
        if let Some(file) = upload.instant_file() {
            return Ok(Stored::of(file.clone(), true));
        }
        *self.upload_id.borrow_mut() = upload.upload_id.clone();
        self.md5_parts.set(upload.part_check == PartCheck::Md5);
        (self.emit)(Event::Started { task: self.id, upload_id: &upload.upload_id });
        let remember = Memory { upload_id: Some(upload.upload_id.clone()), sha1: None };
        kv::put(&fp, &serde_json::to_string(&remember).unwrap_or_default()).await;
        let plan = Plan { size, part_size: upload.part_size, part_count: upload.part_count };
        let mut done: BTreeSet<u32> = upload.parts_done.iter().copied().collect();
        let stored_bytes = done.iter().filter_map(|n| plan.part_len(*n)).sum();
        self.progress.borrow_mut().already_sent(stored_bytes);

        let mut whole = None;
        if upload.dedup_candidate {
            // A verified file has this size and probe: hash everything before sending anything.
            let sha1 = self.hash_whole(&plan).await?;
            let u = self.settle(self.api.set_sha1(&upload.upload_id, sha1.as_str()).await?).await?;
            if let Some(file) = u.instant_file() {
                return Ok(Stored::of(file.clone(), true));
            }
            whole = Some(sha1);
        }
        for round in 0..ROUNDS {
            let sha1 = self.clone().pipeline(&plan, &done, whole.clone()).await?;
            if self.ctl.is_finished() {
                break;
            }
            match self.finish(&sha1).await {
                Ok(stored) => {
                    let remember = Memory { upload_id: None, sha1: Some(sha1.as_str().to_owned()) };
                    kv::put(&fp, &serde_json::to_string(&remember).unwrap_or_default()).await;
                    return Ok(stored);
                }
                Err(e) if e.is(Code::PartsMissing) && round + 1 < ROUNDS => {
                    // The storage lost parts (or forgot the upload): send what it lacks.
                    let id = self.upload_id.borrow().clone();
                    let u = self
                        .api
                        .get(&id)
                        .await?
                        .ok_or_else(|| EngineError::new("upload-not-found", "the upload is gone"))?;
                    done = u.parts_done.into_iter().collect();
                    whole = Some(sha1);
                }
                Err(e) => return Err(e),
            }
        }
        // The content turned out to be stored while parts were going.
        let file = self.file_info.borrow().clone();
        let file = file.ok_or_else(|| EngineError::new("bad-response", "instant without a file"))?;
        kv::put(&fp, &serde_json::to_string(&Memory { upload_id: None, sha1: file.sha1.clone() }).unwrap_or_default())
            .await;
        Ok(Stored::of(file, true))
    }

    /// Answers the backend's proof-of-possession challenge, if it asks one: the SHA-1 of its
    /// nonce followed by the byte range it picked, read from the file here. Right, the upload ends as `instant`; a
    /// refused answer (the file changed on disk) is no failure: the parts go as usual.
    async fn settle(&self, u: UploadView) -> Result<UploadView, EngineError> {
        let Some(c) = &u.challenge else { return Ok(u) };
        let nonce = hex::decode(&c.nonce).map_err(|e| EngineError::new("bad-response", format!("nonce: {e}")))?;
        let bytes = io::read(&self.file, c.offset, c.offset + c.length).await?.to_vec();
        let mut hasher = Sha1::new();
        hasher.update(&nonce);
        hasher.update(&bytes);
        let answer = Sha1Hex::from_digest(&hasher.finalize().into());
        match self.api.prove(&u.upload_id, answer.as_str()).await {
            Ok(proved) => Ok(proved),
            Err(e) if e.is(Code::ChallengeFailed) || e.is(Code::NoChallenge) => Ok(UploadView { challenge: None, ..u }),
            Err(e) => Err(e),
        }
    }

    /// The upload this browser started for the same file, if the backend still has it open.
    async fn resume(&self, memory: &Memory) -> Result<Option<UploadView>, EngineError> {
        let Some(id) = &memory.upload_id else { return Ok(None) };
        Ok(self.api.get(id).await?.filter(|u| u.state == UploadState::Uploading && u.part_count > 0))
    }

    async fn probe(&self, size: u64) -> Result<Sha1Hex, EngineError> {
        let mut collector = ProbeCollector::new(size);
        for r in crate::probe::ranges(size) {
            let bytes = io::read(&self.file, r.start, r.end).await?;
            collector.feed(r.start, &bytes.to_vec());
        }
        Ok(collector.finish())
    }

    /// Hashes the whole file without sending (a probable duplicate).
    async fn hash_whole(&self, plan: &Plan) -> Result<Sha1Hex, EngineError> {
        whole_sha1(&self.file, plan, Some(&self.ctl), |len| {
            self.progress.borrow_mut().hashed(len);
            self.report_progress();
        })
        .await
    }

    /// Hashes and sends every part not in `done`; answers the whole-file SHA-1.
    async fn pipeline(
        self: Rc<Self>,
        plan: &Plan,
        done: &BTreeSet<u32>,
        whole: Option<Sha1Hex>,
    ) -> Result<Sha1Hex, EngineError> {
        // Capacity 1 (+ the one each sender holds): hashing stays a few parts ahead of sending.
        let (tx, rx) = mpsc::channel::<Hashed>(0);
        let rx = Mutex::new(rx);
        let hasher = self.hasher(plan, done, tx, whole);
        let senders = futures_util::future::join_all((0..self.concurrency).map(|_| Self::sender(self.clone(), &rx)));
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
        let mut whole = Sha1::new();
        let mut buf = vec![0u8; CHUNK as usize];
        // With the whole-file SHA-1 known, only the parts still to send are read.
        let mut parts = ReadAhead::new(&self.file, plan.parts().filter(|(n, _)| known.is_none() || !done.contains(n)));
        while let Some(next) = parts.next().await {
            self.ctl.gate().await?;
            if self.ctl.is_finished() {
                break;
            }
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
            // Every sender busy: wait for one (hashing stays a part or two ahead of sending).
            if let Some(part) = waiting {
                if tx.send(part).await.is_err() {
                    return Err(EngineError::new("stopped", "the senders stopped"));
                }
            }
        }
        drop(tx);
        let sha1 = match known {
            Some(k) => k,
            None => Sha1Hex::from_digest(&whole.finalize().into()),
        };
        // Tell the backend as soon as the hash is known: if it holds this content, stop.
        if !self.ctl.is_finished() {
            let id = self.upload_id.borrow().clone();
            let u = self.settle(self.api.set_sha1(&id, sha1.as_str()).await?).await?;
            if let Some(file) = u.instant_file() {
                *self.file_info.borrow_mut() = Some(file.clone());
                self.ctl.finish();
            }
        }
        Ok(sha1)
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
        self.progress.borrow_mut().sent(now_ms(), part.len);
        self.report_progress();
        if let Some(file) = report.file {
            *self.file_info.borrow_mut() = Some(file);
        }
        Ok(())
    }

    /// Every part is reported: make sure the file exists and carries our SHA-1.
    async fn finish(&self, sha1: &Sha1Hex) -> Result<Stored, EngineError> {
        self.state("completing");
        let id = self.upload_id.borrow().clone();
        for attempt in 0..40u32 {
            match self.api.complete(&id, sha1.as_str()).await {
                Ok(u) => {
                    if let Some(file) = u.file {
                        return Ok(Stored::of(file, u.state == UploadState::Instant));
                    }
                }
                Err(e) if e.is(Code::UploadCompleting) => {}
                Err(e) => return Err(e),
            }
            sleep_ms(f64::from(100 + 50 * attempt.min(20))).await;
        }
        Err(EngineError::new("completion-timeout", "the backend did not finish composing the file"))
    }
}

/// The SHA-1 of a whole file, read a part of `plan` at a time with the next part read
/// ahead; `hashed` hears each part's length once it is hashed. A pause waits at `ctl`'s gate.
pub(super) async fn whole_sha1(
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
pub(super) async fn feed(mut sha1: Option<&mut Sha1>, mut md5: Option<&mut Md5>, bytes: &Uint8Array, buf: &mut [u8]) {
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
