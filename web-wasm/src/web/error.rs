//! Engine errors: the backend's `{code, message}` passed through, or a network, storage
//! or file code of the engine's own. `retry` says whether trying again may help.

use serde::Serialize;
use wasm_bindgen::JsValue;

use crate::protocol::{Code, ErrorBody};

#[derive(Debug, Clone, Serialize)]
pub struct EngineError {
    pub code: String,
    pub message: String,
    /// HTTP status, when a server answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    #[serde(skip)]
    pub retry: bool,
}

fn describe(e: &JsValue) -> String {
    js_sys::Reflect::get(e, &JsValue::from_str("message"))
        .ok()
        .and_then(|m| m.as_string())
        .or_else(|| e.as_string())
        .unwrap_or_else(|| format!("{e:?}"))
}

impl EngineError {
    pub fn new(code: &str, message: impl Into<String>) -> Self {
        Self { code: code.into(), message: message.into(), status: None, retry: false }
    }
    pub fn network(e: &JsValue) -> Self {
        Self { retry: true, ..Self::new("network-error", describe(e)) }
    }
    pub fn read(e: JsValue) -> Self {
        Self::new(
            "file-unreadable",
            format!("the file could not be read (moved, changed or deleted?): {}", describe(&e)),
        )
    }
    pub fn cancelled() -> Self {
        Self::new("cancelled", "the upload was cancelled")
    }
    /// An answer of the backend: `{code, message}` when it sent one.
    pub fn backend(status: u16, body: &str) -> Self {
        let (code, message) = match serde_json::from_str::<ErrorBody>(body) {
            Ok(b) => (b.code, b.message),
            Err(_) => ("http-error".to_owned(), format!("the server answered {status}")),
        };
        Self { code, message, status: Some(status), retry: status == 429 || status >= 500 }
    }
    pub fn is_cancelled(&self) -> bool {
        self.code == "cancelled"
    }
    /// Whether the backend answered with this code.
    pub fn is(&self, code: Code) -> bool {
        self.status.is_some() && self.code == code.as_str()
    }
}
