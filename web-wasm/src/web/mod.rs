//! The engine inside a dedicated Web Worker, and its whole `#[wasm_bindgen]` surface.
//!
//! The worker shim (`js/worker.js`) constructs one [`Engine`] with a function that posts
//! messages to the page, and forwards the page's messages to it. Everything else (slicing,
//! hashing, signing, sending, resuming) happens here, off the main thread.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use wasm_bindgen::prelude::*;

mod api;
mod control;
mod error;
mod io;
mod kv;
mod part_urls;
mod task;
mod transport;

use control::Control;
use task::{Event, Task};

#[wasm_bindgen]
pub struct Engine {
    post: js_sys::Function,
    tasks: Rc<RefCell<HashMap<u32, Rc<Control>>>>,
    /// The bounds across every file of this engine, made at the first upload (whose
    /// `concurrency` is the `Uploader`'s).
    queue: RefCell<Option<Rc<crate::slots::Queue>>>,
}

#[wasm_bindgen]
impl Engine {
    /// `post` receives every event (`{type: "state" | "progress" | "done" | "failed" | "timing", task, …}`).
    #[wasm_bindgen(constructor)]
    pub fn new(post: js_sys::Function) -> Engine {
        console_error_panic_hook::set_once();
        Engine { post, tasks: Rc::default(), queue: RefCell::default() }
    }

    /// Starts uploading `file` as task `task` against the API at `endpoint` (absolute URL),
    /// named `name` (e.g. a path inside a dropped folder) or the file's own name.
    pub fn upload(
        &self,
        task: u32,
        file: web_sys::File,
        endpoint: String,
        token: Option<String>,
        concurrency: u32,
        name: Option<String>,
    ) {
        let post = self.post.clone();
        let emit: Rc<dyn Fn(Event)> = Rc::new(move |event: Event| post_event(&post, &event));
        let name = name.filter(|n| !n.is_empty()).unwrap_or_else(|| file.name());
        let queue =
            self.queue.borrow_mut().get_or_insert_with(|| crate::slots::Queue::new(concurrency as usize)).clone();
        let t = Rc::new(Task::new(task, file, name, api::Api::new(&endpoint, token), queue, emit));
        self.tasks.borrow_mut().insert(task, t.ctl.clone());
        let tasks = self.tasks.clone();
        wasm_bindgen_futures::spawn_local(async move {
            t.run().await;
            tasks.borrow_mut().remove(&task);
        });
    }

    pub fn pause(&self, task: u32) {
        if let Some(c) = self.tasks.borrow().get(&task) {
            c.pause();
            self.state(task, "paused");
        }
    }

    pub fn resume(&self, task: u32) {
        if let Some(c) = self.tasks.borrow().get(&task) {
            c.resume();
            self.state(task, c.phase());
        }
    }

    pub fn cancel(&self, task: u32) {
        if let Some(c) = self.tasks.borrow().get(&task) {
            c.cancel();
        }
    }

    fn state(&self, task: u32, state: &str) {
        post_event(&self.post, &Event::State { task, state });
    }
}

/// Posts an event to the page as a plain JS object.
fn post_event(post: &js_sys::Function, event: &Event) {
    let serializer = serde_wasm_bindgen::Serializer::json_compatible();
    if let Ok(v) = serde::Serialize::serialize(event, &serializer) {
        let _ = post.call1(&JsValue::NULL, &v);
    }
}

/// The hex SHA-1 of a whole file (or any Blob), hashed exactly as an upload hashes it: in
/// parts of the default part size, each read while the one before is hashed (exposed for
/// benchmarks and tests).
#[wasm_bindgen]
pub async fn sha1_file(file: web_sys::Blob) -> Result<String, JsValue> {
    let plan = crate::Plan::new(file.size() as u64, crate::plan::DEFAULT_PART_SIZE)
        .map_err(|e| JsValue::from_str(&e.to_string()))?;
    let sha1 = task::whole_sha1(&file, &plan, None, |_| {}).await.map_err(|e| JsValue::from_str(&e.message))?;
    Ok(sha1.as_str().to_owned())
}

/// Incremental SHA-1 in wasm, as the engine hashes whole files (exposed for benchmarks and tests).
#[wasm_bindgen]
pub struct Sha1Hasher(sha1::Sha1);

#[wasm_bindgen]
impl Sha1Hasher {
    #[wasm_bindgen(constructor)]
    pub fn new() -> Sha1Hasher {
        Sha1Hasher(sha1::Digest::new())
    }
    pub fn update(&mut self, data: &[u8]) {
        sha1::Digest::update(&mut self.0, data);
    }
    /// Hex digest; the hasher starts over.
    pub fn digest_hex(&mut self) -> String {
        hex::encode(sha1::Digest::finalize_reset(&mut self.0))
    }
}

impl Default for Sha1Hasher {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests;
