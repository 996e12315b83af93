//! Thin async wrappers over the browser APIs the engine uses from inside a worker: fetch,
//! `Blob.slice().arrayBuffer()` (also read ahead), WebCrypto's SHA-1, timers, yielding to
//! the event loop and the `online` event. One function each, so the upload logic above
//! reads as plain Rust.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::ops::Range;

use futures_channel::oneshot;
use js_sys::{Function, Promise, Uint8Array};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortSignal, Blob, Headers, MessageChannel, Request, RequestInit, Response, WorkerGlobalScope};

use super::error::EngineError;
use crate::Sha1B64;

pub fn global() -> WorkerGlobalScope {
    js_sys::global().unchecked_into()
}

pub fn now_ms() -> f64 {
    js_sys::Date::now()
}

/// Sends a request; a network failure (or an abort) is `Err`, any HTTP status is `Ok`.
pub async fn fetch(
    method: &str,
    url: &str,
    headers: &[(&str, &str)],
    body: Option<&JsValue>,
    signal: Option<&AbortSignal>,
) -> Result<Response, JsValue> {
    let init = RequestInit::new();
    init.set_method(method);
    let h = Headers::new()?;
    for (k, v) in headers {
        h.set(k, v)?;
    }
    init.set_headers(&h);
    if let Some(b) = body {
        init.set_body(b);
    }
    init.set_signal(signal);
    let request = Request::new_with_str_and_init(url, &init)?;
    let response = JsFuture::from(global().fetch_with_request(&request)).await?;
    response.dyn_into()
}

pub async fn text(response: &Response) -> Result<String, JsValue> {
    Ok(JsFuture::from(response.text()?).await?.as_string().unwrap_or_default())
}

/// Reads `[start, end)` of a file into a fresh buffer (outside wasm memory).
pub async fn read(blob: &Blob, start: u64, end: u64) -> Result<Uint8Array, EngineError> {
    finish_read(start_read(blob, start, end)?).await
}

/// Starts reading `[start, end)`: the browser reads while this thread does other work (a
/// JS promise runs from its creation); [`finish_read`] takes the bytes.
fn start_read(blob: &Blob, start: u64, end: u64) -> Result<JsFuture, EngineError> {
    let slice = blob.slice_with_f64_and_f64(start as f64, end as f64).map_err(EngineError::read)?;
    Ok(JsFuture::from(slice.array_buffer()))
}

async fn finish_read(reading: JsFuture) -> Result<Uint8Array, EngineError> {
    Ok(Uint8Array::new(&reading.await.map_err(EngineError::read)?))
}

/// Starts WebCrypto's SHA-1 of `bytes` (it copies them and hashes off this thread).
pub fn start_sha1(bytes: &Uint8Array) -> Result<Promise, EngineError> {
    let subtle = global().crypto().map_err(EngineError::read)?.subtle();
    subtle.digest_with_str_and_buffer_source("SHA-1", bytes).map_err(EngineError::read)
}

pub async fn finish_sha1(promise: Promise) -> Result<Sha1B64, EngineError> {
    let digest = JsFuture::from(promise).await.map_err(EngineError::read)?;
    let mut raw = [0u8; 20];
    Uint8Array::new(&digest).copy_to(&mut raw);
    Ok(Sha1B64::from_digest(&raw))
}

/// Reads byte ranges of a file in order, each one started while the one before is in use:
/// the browser's read of part n+1 overlaps the hashing of part n (a read alone is about a
/// third of hashing's time), at the cost of one more part in memory.
pub struct ReadAhead {
    blob: Blob,
    queue: VecDeque<(u32, Range<u64>)>,
    next: Option<Reading>,
}

/// A range being read.
struct Reading {
    number: u32,
    range: Range<u64>,
    bytes: JsFuture,
}

/// A range read: its number, where it is in the file, and its bytes.
pub struct Piece {
    pub number: u32,
    pub range: Range<u64>,
    pub bytes: Uint8Array,
}

impl ReadAhead {
    pub fn new(blob: &Blob, ranges: impl IntoIterator<Item = (u32, Range<u64>)>) -> Self {
        Self { blob: blob.clone(), queue: ranges.into_iter().collect(), next: None }
    }

    /// The next range read; `None` after the last.
    pub async fn next(&mut self) -> Option<Result<Piece, EngineError>> {
        let current = match self.next.take() {
            Some(started) => started,
            None => match self.start_next()? {
                Ok(started) => started,
                Err(e) => return Some(Err(e)),
            },
        };
        self.next = match self.start_next() {
            Some(Ok(started)) => Some(started),
            Some(Err(e)) => return Some(Err(e)),
            None => None,
        };
        let Reading { number, range, bytes } = current;
        Some(finish_read(bytes).await.map(|bytes| Piece { number, range, bytes }))
    }

    fn start_next(&mut self) -> Option<Result<Reading, EngineError>> {
        let (number, range) = self.queue.pop_front()?;
        Some(start_read(&self.blob, range.start, range.end).map(|bytes| Reading { number, range, bytes }))
    }
}

/// A message channel whose port answers each posted message by resolving the oldest
/// waiting [`yield_now`]: a task boundary without `setTimeout`'s 4 ms clamp.
struct Yielder {
    channel: MessageChannel,
    waiting: RefCell<VecDeque<Function>>,
    _wake: Closure<dyn FnMut()>,
}

thread_local! {
    static YIELDER: Option<Yielder> = MessageChannel::new().ok().map(|channel| {
        let wake = Closure::<dyn FnMut()>::new(|| {
            let next = YIELDER.with(|y| y.as_ref().and_then(|y| y.waiting.borrow_mut().pop_front()));
            if let Some(resolve) = next {
                let _ = resolve.call0(&JsValue::NULL);
            }
        });
        channel.port1().set_onmessage(Some(wake.as_ref().unchecked_ref()));
        Yielder { channel, waiting: RefCell::default(), _wake: wake }
    });
}

/// Lets the event loop run what is waiting (a signed URL's answer, a fetch to start, a
/// pause) and comes back in the next task. Long hashing yields between chunks with this,
/// so a part's PUT never waits behind the hashing of the next one.
pub async fn yield_now() {
    let promise = Promise::new(&mut |resolve, _| {
        let queued = YIELDER.with(|y| {
            let Some(y) = y else { return false };
            y.waiting.borrow_mut().push_back(resolve.clone());
            let posted = y.channel.port2().post_message(&JsValue::NULL).is_ok();
            if !posted {
                y.waiting.borrow_mut().pop_back();
            }
            posted
        });
        if !queued {
            let _ = resolve.call0(&JsValue::NULL);
        }
    });
    let _ = JsFuture::from(promise).await;
}

pub async fn sleep_ms(ms: f64) {
    gloo_timers::future::TimeoutFuture::new(ms.clamp(0.0, f64::from(u32::MAX)) as u32).await;
}

pub fn online() -> bool {
    global().navigator().on_line()
}

/// Resolves on the next `online` event.
pub async fn until_online() {
    let (tx, rx) = oneshot::channel::<()>();
    let mut tx = Some(tx);
    let cb = Closure::<dyn FnMut()>::new(move || {
        if let Some(tx) = tx.take() {
            let _ = tx.send(());
        }
    });
    let g = global();
    let _ = g.add_event_listener_with_callback("online", cb.as_ref().unchecked_ref());
    let _ = rx.await;
    let _ = g.remove_event_listener_with_callback("online", cb.as_ref().unchecked_ref());
}
