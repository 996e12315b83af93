//! Sending one part straight to storage, and the policy around it: the pause gate, a hold
//! on every PUT of every file after a `429`, a fresh URL when the storage calls one expired, backoff with
//! jitter on network and server faults, and waiting for `online` instead of failing while
//! the browser is offline. Kept apart from the upload's life (`task`), as Uppy keeps its
//! transport apart from its uploader: the task decides *which* parts go, this decides
//! *how* one gets there. Which storage answers mean what is `protocol::StorageRefusal`.

use std::rc::Rc;

use wasm_bindgen::JsValue;
use web_sys::Blob;

use super::api::Api;
use super::control::{self, Control};
use super::error::EngineError;
use super::io::{fetch, now_ms, online, text, until_online};
use super::part_urls::PartUrls;
use crate::progress::backoff_ms;
use crate::protocol::{SignPart, SignedPart, StorageRefusal};
use crate::slots::Queue;

/// Tries of one part PUT (network and 5xx failures) before the task fails.
const PART_ATTEMPTS: u32 = 12;
/// Re-signs of one part (expired URLs) before the task fails.
const RESIGNS: u32 = 5;
/// How long every PUT waits after a `429` without `Retry-After`.
const SLOW_DOWN_SECS: f64 = 2.0;

/// What became of a part's PUT.
pub enum Put {
    /// The storage took it; its ETag header, if the browser could read it.
    Stored { etag: Option<String> },
    /// The upload finished (instant) before it went: nothing was sent.
    Skipped,
}

pub struct Transport {
    ctl: Rc<Control>,
    /// The engine's part PUT slots and its hold after a storage `429`, shared by every file.
    queue: Rc<Queue>,
    urls: PartUrls,
}

impl Transport {
    pub fn new(ctl: Rc<Control>, queue: Rc<Queue>) -> Self {
        Self { ctl, queue, urls: PartUrls::default() }
    }

    /// A part hashed and waiting: its URL is signed for these digests, in a batch with others.
    pub fn know(&self, part: SignPart) {
        self.urls.know(part);
    }

    /// URLs signed already, in the answer that started the upload.
    pub fn add_signed(&self, parts: Vec<SignedPart>) {
        self.urls.add_signed(parts);
    }

    /// The part is stored and reported: its URL is not needed again.
    pub fn forget(&self, number: u32) {
        self.urls.forget(number);
    }

    /// PUTs part `number` of upload `upload`, re-signing and retrying as needed;
    /// `sending` hears each attempt just before it leaves.
    pub async fn put(
        &self,
        api: &Api,
        upload: &str,
        number: u32,
        body: &Blob,
        sending: &dyn Fn(),
    ) -> Result<Put, EngineError> {
        let ctl = &*self.ctl;
        let (mut failures, mut resigns) = (0u32, 0u32);
        loop {
            ctl.gate().await?;
            if ctl.is_finished() {
                return Ok(Put::Skipped);
            }
            let wait = self.queue.hold_until.get() - now_ms();
            if wait > 0.0 {
                ctl.sleep(wait).await?;
                continue;
            }
            // The slot first, then the URL: a URL signed before a long wait for a slot
            // could expire before it is used.
            let slot = control::race_for(self.queue.puts.take(), ctl).await?;
            let signed = self.urls.url(api, upload, number).await?;
            if ctl.is_paused() || ctl.is_cancelled() || ctl.is_finished() {
                continue; // paused while waiting: no await from here to fetch(), so none slips through
            }
            sending();
            let in_flight = ctl.track(number);
            let signal = in_flight.as_ref().and_then(|f| f.signal());
            let headers: Vec<(&str, &str)> = signed.headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let result =
                fetch(&signed.method, &signed.url, &headers, Some(&JsValue::from(body)), signal.as_ref()).await;
            if let Some(f) = in_flight {
                f.done();
            }
            let error = match result {
                Ok(resp) if resp.ok() => return Ok(Put::Stored { etag: resp.headers().get("etag").ok().flatten() }),
                Ok(resp) => {
                    let status = resp.status();
                    let body = text(&resp).await.unwrap_or_default();
                    let refusal = StorageRefusal::of(status, &body);
                    if refusal == StorageRefusal::Expired && resigns < RESIGNS {
                        resigns += 1;
                        self.urls.invalidate(number);
                        continue;
                    }
                    if refusal == StorageRefusal::SlowDown {
                        let after =
                            resp.headers().get("retry-after").ok().flatten().and_then(|s| s.parse::<f64>().ok());
                        self.queue.hold_until.set(now_ms() + after.unwrap_or(SLOW_DOWN_SECS) * 1000.0);
                    }
                    drop(slot);
                    let snippet: String = body.chars().take(300).collect();
                    let e = EngineError {
                        status: Some(status),
                        retry: matches!(refusal, StorageRefusal::SlowDown | StorageRefusal::Transient),
                        ..EngineError::new(
                            "storage-refused",
                            format!("the storage refused part {number} ({status}): {snippet}"),
                        )
                    };
                    if !e.retry {
                        return Err(e);
                    }
                    e
                }
                Err(e) => {
                    drop(slot);
                    if ctl.is_paused() || ctl.is_cancelled() || ctl.is_finished() {
                        continue; // aborted on purpose: the gate decides what next
                    }
                    if !online() {
                        until_online().await;
                        continue;
                    }
                    EngineError::network(&e)
                }
            };
            failures += 1;
            if failures >= PART_ATTEMPTS {
                return Err(error);
            }
            ctl.sleep(backoff_ms(failures - 1, js_sys::Math::random())).await?;
        }
    }
}
