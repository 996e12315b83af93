//! One file's upload, from `File` to stored file.
//!
//! A hasher reads the file front to back, one part at a time, feeding the whole-file SHA-1
//! (Rust, incremental) while WebCrypto hashes the same part off-thread; each hashed part
//! goes to a bounded queue that the file's senders drain (sign in batches, PUT straight
//! to storage, report; the engine's PUT slots, `super::slots`, bound the PUTs of all files). So the first PUT starts as soon as the first part is hashed, and
//! only the part being hashed is in memory: queued and in-flight parts are slices of the
//! file that the browser streams from disk, whatever the file's size. When
//! the whole-file hash is done the backend is told; if it already holds that content the
//! senders stop and the task ends `instant`.
//!
//! This file is the upload's life: start or resume, the challenge, rounds of "send what the
//! storage lacks", completion. `pipeline` hashes and hands out parts; `super::transport`
//! gets each one to storage.

use std::cell::{Cell, RefCell};
use std::collections::BTreeSet;
use std::rc::Rc;

use serde::Serialize;
use sha1::{Digest, Sha1};
use web_sys::File;

use super::api::{Api, Started};
use super::control::{self, Control};
use super::error::EngineError;
use super::io::{self, now_ms, sleep_ms};
use super::kv;
use super::transport::Transport;
use crate::probe::ProbeCollector;
use crate::progress::{Progress, Snapshot};
use crate::protocol::{Code, CreateUpload, FileView, PartCheck, SignPart, UploadState, UploadView};
use crate::slots::{Permit, Queue};
use crate::{Md5B64, Plan, Sha1B64, Sha1Hex};

mod pipeline;

pub(super) use pipeline::whole_sha1;
#[cfg(test)]
pub(super) use pipeline::{feed, CHUNK};

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

/// A file of one part, hashed before it starts.
struct Small {
    sha1: Sha1Hex,
    part: SignPart,
}

/// What a task remembers of a file in IndexedDB.
#[derive(Default, Serialize, serde::Deserialize)]
struct Memory {
    upload_id: Option<String>,
    sha1: Option<String>,
}

pub struct Task {
    pub id: u32,
    file: File,
    /// The upload's name: the file's own, or its path inside a dropped folder.
    name: String,
    api: Api,
    pub ctl: Rc<Control>,
    emit: Rc<dyn Fn(Event)>,
    /// The engine's bounds across files (`super::slots`).
    queue: Rc<Queue>,
    transport: Transport,
    progress: RefCell<Progress>,
    started_ms: f64,
    first_put: Cell<bool>,
    upload_id: RefCell<String>,
    /// Set by the report that completed the upload, or the answer that made it instant.
    file_info: RefCell<Option<FileView>>,
    /// Set by the report that composed the file.
    composed: RefCell<Option<FileView>>,
    /// The storage checks parts by Content-MD5: compute each part's MD5 too.
    md5_parts: Cell<bool>,
}

impl Task {
    pub fn new(id: u32, file: File, name: String, api: Api, queue: Rc<Queue>, emit: Rc<dyn Fn(Event)>) -> Self {
        let size = file.size() as u64;
        let ctl = Rc::new(Control::default());
        Self {
            id,
            file,
            name,
            api: api.for_task(ctl.clone()),
            transport: Transport::new(ctl.clone(), queue.clone()),
            ctl,
            emit,
            queue,
            progress: RefCell::new(Progress::new(size)),
            started_ms: now_ms(),
            first_put: Cell::new(false),
            upload_id: RefCell::new(String::new()),
            file_info: RefCell::new(None),
            composed: RefCell::new(None),
            md5_parts: Cell::new(false),
        }
    }

    /// Says the task's state; while paused the page shows "paused", so only an end (a task
    /// may finish while paused: its last report was already on its way) is said then.
    pub fn state(&self, state: &'static str) {
        self.ctl.set_phase(state);
        let end = matches!(state, "complete" | "instant" | "failed" | "cancelled");
        if end || !self.ctl.is_paused() {
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
        self.state("queued");
        let result = match self.file_slot().await {
            Ok(slot) => {
                let result = self.clone().upload().await;
                drop(slot);
                result
            }
            Err(e) => Err(e),
        };
        match result {
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

    /// One of the engine's files-at-once slots, held from the first API call to the last. A
    /// file paused while it waits gives its slot back and waits at the gate; a file cancelled
    /// while it waits ends at once, having asked the server nothing.
    async fn file_slot(&self) -> Result<Permit, EngineError> {
        loop {
            let slot = control::race_for(self.queue.files.take(), &self.ctl).await?;
            if !self.ctl.is_paused() {
                return Ok(slot);
            }
            drop(slot);
            self.ctl.gate().await?;
        }
    }

    async fn upload(self: Rc<Self>) -> Result<Stored, EngineError> {
        let size = self.file.size() as u64;
        let fp = self.fingerprint();
        self.state("hashing");
        let memory: Memory = kv::get(&fp).await.and_then(|s| serde_json::from_str(&s).ok()).unwrap_or_default();
        // A file of one part (at most S3's smallest part, whatever the server's part size) is
        // hashed before it starts: the start then carries its SHA-1 and signs its part, so it
        // is stored in three requests (start, PUT, report).
        let mut small = None;
        let upload = match self.resume(&memory).await? {
            Some(u) => u,
            None => {
                if size <= crate::plan::MIN_PART_SIZE {
                    small = Some(self.digest_small(size).await?);
                }
                let ct = self.file.type_();
                // With the SHA-1 given, a probe would only cost a second look at stored content.
                let probe = match &small {
                    Some(_) => None,
                    None => Some(self.probe(size).await?.as_str().to_owned()),
                };
                let req = CreateUpload {
                    name: self.name.clone(),
                    size,
                    content_type: (!ct.is_empty()).then_some(ct),
                    // A file this browser stored before: its SHA-1 is known, no hashing needed.
                    // A small file was just hashed: its SHA-1 now, not one remembered.
                    sha1: small.as_ref().map(|s| s.sha1.as_str().to_owned()).or_else(|| memory.sha1.clone()),
                    last_modified: Some(self.file.last_modified() as i64),
                    probe,
                    parts: small.as_ref().map(|s| vec![s.part.clone()]),
                };
                match self.api.start(&req).await? {
                    Started::Instant(file) => return Ok(Stored::of(file, true)),
                    Started::Upload(u) => u,
                }
            }
        };
        let mut upload = self.settle(upload).await?;
        if let Some(signed) = upload.signed.take() {
            self.transport.add_signed(signed);
        }
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

        let small_part = small.as_ref().map(|s| s.part.clone()).filter(|_| plan.part_count == 1);
        let mut whole = small.map(|s| s.sha1);
        if upload.dedup_candidate && whole.is_none() {
            // A verified file has this size and probe: hash everything before sending anything.
            let sha1 = self.hash_whole(&plan).await?;
            let u = self.settle(self.api.set_sha1(&upload.upload_id, sha1.as_str()).await?).await?;
            if let Some(file) = u.instant_file() {
                return Ok(Stored::of(file.clone(), true));
            }
            whole = Some(sha1);
        }
        for round in 0..ROUNDS {
            let sha1 = match (&small_part, &whole) {
                // Hashed before it started: sent without reading it again.
                (Some(part), Some(sha1)) => {
                    if !done.contains(&part.number) {
                        self.send_small(part).await?;
                    }
                    sha1.clone()
                }
                _ => self.clone().pipeline(&plan, &done, whole.clone()).await?,
            };
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

    /// The digests of a file of one part, read and hashed at once (a hashing slot held).
    async fn digest_small(&self, size: u64) -> Result<Small, EngineError> {
        let _hashing = self.queue.hashing.take().await;
        let bytes = io::read(&self.file, 0, size).await?.to_vec();
        let digest = crate::hashing::sha1(&bytes);
        let part = SignPart {
            number: 1,
            sha1: Sha1B64::from_digest(&digest).as_str().to_owned(),
            size,
            // Where the storage checks parts by MD5 it must be signed in; the answer that
            // would say so comes too late, and hashing a few MiB costs nothing.
            md5: Some(Md5B64::from_digest(&crate::hashing::md5(&bytes)).as_str().to_owned()),
        };
        self.transport.know(part.clone());
        self.progress.borrow_mut().hashed(size);
        self.report_progress();
        Ok(Small { sha1: Sha1Hex::from_digest(&digest), part })
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
        let _hashing = self.queue.hashing.take().await;
        whole_sha1(&self.file, plan, Some(&self.ctl), |len| {
            self.progress.borrow_mut().hashed(len);
            self.report_progress();
        })
        .await
    }

    /// Every part is reported: make sure the file exists and carries our SHA-1.
    async fn finish(&self, sha1: &Sha1Hex) -> Result<Stored, EngineError> {
        // The last report composed it, and the backend had our SHA-1 by then: done.
        let composed = self.composed.borrow().clone();
        if let Some(file) = composed.filter(|f| f.sha1.as_deref() == Some(sha1.as_str())) {
            return Ok(Stored::of(file, false));
        }
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
