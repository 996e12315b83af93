//! Thin async wrappers over the browser APIs the engine uses from inside a worker: fetch,
//! `Blob.slice().arrayBuffer()`, WebCrypto's SHA-1, timers and the `online` event. One
//! function each, so the upload logic above reads as plain Rust.

use futures_channel::oneshot;
use js_sys::{Promise, Uint8Array};
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use wasm_bindgen_futures::JsFuture;
use web_sys::{AbortSignal, Blob, Headers, Request, RequestInit, Response, WorkerGlobalScope};

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
    let buf = JsFuture::from(slice.array_buffer()).await.map_err(EngineError::read)?;
    Ok(Uint8Array::new(&buf))
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
