//! Thin async wrappers over the browser APIs the engine uses from inside a worker: fetch,
//! `Blob.slice().arrayBuffer()` (also read ahead), WebCrypto's SHA-1, timers, yielding to
//! the event loop and the `online` event. One function each, so the upload logic above
//! reads as plain Rust.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::ops::Range;

use futures_channel::oneshot;
use js_sys::{ArrayBuffer, Function, Promise, Uint8Array};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{
    AbortSignal, Blob, Headers, MessageChannel, ReadableStreamByobReader, ReadableStreamGetReaderOptions,
    ReadableStreamReadResult, ReadableStreamReaderMode, Request, RequestInit, Response, WorkerGlobalScope,
};

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
    let slice = blob.slice_with_f64_and_f64(start as f64, end as f64).map_err(EngineError::read)?;
    finish_read(JsFuture::from(slice.array_buffer())).await
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
/// the browser's read of part n+1 overlaps the hashing of part n (a read alone takes a third
/// to a half of hashing's time). Where the browser's blob streams take a BYOB reader, the
/// bytes land in buffers handed back with [`ReadAhead::recycle`], so a whole upload reads
/// through two part-sized buffers; `Blob.arrayBuffer()` made a new one per part, and the
/// collector let them pile up (P5: ~290 MiB over a 4 GiB upload).
pub struct ReadAhead {
    blob: Blob,
    queue: VecDeque<(u32, Range<u64>)>,
    next: Option<Reading>,
    spare: Vec<ArrayBuffer>,
}

/// A range being read, on a task of its own.
struct Reading {
    number: u32,
    range: Range<u64>,
    bytes: oneshot::Receiver<Result<Uint8Array, EngineError>>,
}

/// A range read: its number, where it is in the file, and its bytes.
pub struct Piece {
    pub number: u32,
    pub range: Range<u64>,
    pub bytes: Uint8Array,
}

impl ReadAhead {
    pub fn new(blob: &Blob, ranges: impl IntoIterator<Item = (u32, Range<u64>)>) -> Self {
        Self { blob: blob.clone(), queue: ranges.into_iter().collect(), next: None, spare: Vec::new() }
    }

    /// The next range read; `None` after the last.
    pub async fn next(&mut self) -> Option<Result<Piece, EngineError>> {
        let current = match self.next.take() {
            Some(started) => started,
            None => self.start_next()?,
        };
        self.next = self.start_next();
        let Reading { number, range, bytes } = current;
        let bytes = match bytes.await {
            Ok(read) => read,
            Err(_) => Err(EngineError::new("file-unreadable", "the read of the file stopped")),
        };
        Some(bytes.map(|bytes| Piece { number, range, bytes }))
    }

    /// Gives a piece's buffer back for a later read. Only for bytes nothing reads any more
    /// (WebCrypto copies its input when it starts).
    pub fn recycle(&mut self, bytes: Uint8Array) {
        self.spare.push(bytes.buffer());
    }

    /// Lets go of every buffer it holds: the read ahead stops (the next `next` reads that
    /// range again) and the spare buffers go. For a reader that waits a while (paused, or
    /// its file's senders busy while other files wait to hash), so that only files being
    /// hashed hold part buffers.
    pub fn park(&mut self) {
        if let Some(reading) = self.next.take() {
            self.queue.push_front((reading.number, reading.range));
        }
        self.spare.clear();
    }

    fn start_next(&mut self) -> Option<Reading> {
        let (number, range) = self.queue.pop_front()?;
        let (tx, rx) = oneshot::channel();
        let (blob, r, spare) = (self.blob.clone(), range.clone(), self.spare.pop());
        wasm_bindgen_futures::spawn_local(async move {
            // Dropping the `Reading` (the ReadAhead went: a pause, a cancel, an instant
            // upload) stops the read between chunks.
            let read = read_range(&blob, r, spare, &|| tx.is_canceled()).await;
            let _ = tx.send(read);
        });
        Some(Reading { number, range, bytes: rx })
    }
}

/// Reads `range` of `blob`: into `spare` (or a new buffer) through a BYOB reader of the
/// slice's stream, else with `arrayBuffer()`. A BYOB read stops (its stream cancelled) as
/// soon as `unwanted` says nobody waits for it any more.
async fn read_range(
    blob: &Blob,
    range: Range<u64>,
    spare: Option<ArrayBuffer>,
    unwanted: &dyn Fn() -> bool,
) -> Result<Uint8Array, EngineError> {
    let slice = blob.slice_with_f64_and_f64(range.start as f64, range.end as f64).map_err(EngineError::read)?;
    let len = u32::try_from(range.end - range.start).ok();
    let reader = len.and_then(|_| byob_reader(&slice));
    let (Some(len), Some(reader)) = (len, reader) else {
        return finish_read(JsFuture::from(slice.array_buffer())).await;
    };
    let mut buffer = spare.filter(|b| b.byte_length() >= len).unwrap_or_else(|| ArrayBuffer::new(len));
    let mut filled = 0u32;
    while filled < len {
        if unwanted() {
            let _ = reader.cancel();
            reader.release_lock();
            return Err(EngineError::new("cancelled", "the read is no longer wanted"));
        }
        // Each read moves the buffer to a new ArrayBuffer object (no copy): go on with that one.
        let view = Uint8Array::new_with_byte_offset_and_length(&buffer, filled, len - filled);
        let result: ReadableStreamReadResult = JsFuture::from(reader.read_with_array_buffer_view(&view))
            .await
            .map_err(EngineError::read)?
            .unchecked_into();
        let value: Uint8Array = result.get_value().unchecked_into();
        if result.get_done() == Some(true) || value.is_undefined() {
            break;
        }
        buffer = value.buffer();
        filled += value.byte_length();
    }
    reader.release_lock();
    if filled != len {
        return Err(EngineError::new("file-unreadable", "the file is shorter than it was: changed on disk?"));
    }
    Ok(Uint8Array::new_with_byte_offset_and_length(&buffer, 0, len))
}

/// A BYOB reader of the blob's byte stream, where the browser has them.
fn byob_reader(blob: &Blob) -> Option<ReadableStreamByobReader> {
    let stream = blob.stream();
    let options = ReadableStreamGetReaderOptions::new();
    options.set_mode(ReadableStreamReaderMode::Byob);
    // Through Reflect: a browser without byte streams throws, which an import would not catch.
    let get_reader: Function = js_sys::Reflect::get(&stream, &JsValue::from_str("getReader")).ok()?.dyn_into().ok()?;
    get_reader.call1(&stream, &options).ok()?.dyn_into().ok()
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
