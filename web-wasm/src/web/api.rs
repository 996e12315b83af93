//! The backend's REST API as the engine uses it (see docs/api.md), in the wire types of
//! `crate::protocol` that the backend serves. Transient failures (network, 429, 5xx) are
//! retried here with backoff; a `429` waits its `Retry-After` (for up to a quarter of an
//! hour in all) and going offline waits for `online`, neither counted as a failure. Every
//! wait ends when the task is cancelled, and the cleanup after a cancel (`abort`) neither
//! waits for `online` nor can be cancelled. What comes out is an answer or an error worth
//! showing.

use std::rc::Rc;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use super::control::{self, Control};
use super::error::EngineError;
use super::io::{fetch, online, sleep_ms, text, until_online};
use crate::progress::backoff_ms;
use crate::protocol::{
    CompleteRequest, CreateUpload, FileView, PatchUpload, ProofRequest, ReportAnswer, ReportPart, SignPart,
    SignRequest, SignResponse, SignedPart, UploadView,
};

/// Attempts at one API call before giving up.
const ATTEMPTS: u32 = 8;
/// The most one call waits on `429`s in all before it gives up.
const MAX_SLOWED_MS: f64 = 15.0 * 60_000.0;

/// Whether a call belongs to the task (its waits end on cancel; offline waits for `online`)
/// or cleans up after it (it runs to its end, and offline is a failure like any other).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Task,
    Cleanup,
}

/// What `POST /uploads` answered.
pub enum Started {
    Upload(UploadView),
    Instant(FileView),
}

pub struct Api {
    endpoint: String,
    token: Option<String>,
    /// The task's controls, whose cancel ends every wait of its calls.
    ctl: Option<Rc<Control>>,
}

impl Api {
    pub fn new(endpoint: &str, token: Option<String>) -> Self {
        Self { endpoint: endpoint.trim_end_matches('/').to_owned(), token, ctl: None }
    }

    /// The same API, for the task that `ctl` controls.
    pub fn for_task(self, ctl: Rc<Control>) -> Self {
        Self { ctl: Some(ctl), ..self }
    }

    /// Waits `ms`; in a task's call, less when the task is cancelled (`Err` then).
    async fn wait(&self, ms: f64, mode: Mode) -> Result<(), EngineError> {
        match (&self.ctl, mode) {
            (Some(ctl), Mode::Task) => ctl.sleep(ms).await,
            _ => {
                sleep_ms(ms).await;
                Ok(())
            }
        }
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Option<&impl Serialize>,
    ) -> Result<T, EngineError> {
        self.call_as(method, path, body, Mode::Task).await
    }

    async fn call_as<T: DeserializeOwned>(
        &self,
        method: &str,
        path: &str,
        body: Option<&impl Serialize>,
        mode: Mode,
    ) -> Result<T, EngineError> {
        let url = format!("{}{path}", self.endpoint);
        let body = match body.map(serde_json::to_string).transpose() {
            Ok(body) => body.map(|b| wasm_bindgen::JsValue::from_str(&b)),
            Err(e) => return Err(EngineError::new("internal", format!("{method} {path}: {e}"))),
        };
        let auth = self.token.as_ref().map(|t| format!("Bearer {t}"));
        let mut headers = vec![("content-type", "application/json")];
        if let Some(a) = &auth {
            headers.push(("authorization", a));
        }
        let mut attempt = 0;
        let mut slowed_ms = 0.0;
        loop {
            let err = match fetch(method, &url, &headers, body.as_ref(), None).await {
                Ok(resp) => {
                    let status = resp.status();
                    let retry_after = resp.headers().get("retry-after").ok().flatten();
                    let body = text(&resp).await.unwrap_or_default();
                    if (200..300).contains(&status) {
                        let body = if body.is_empty() { "null" } else { &body };
                        return serde_json::from_str(body)
                            .map_err(|e| EngineError::new("bad-response", format!("{method} {path}: {e}")));
                    }
                    let err = EngineError::backend(status, &body);
                    if status == 429 && slowed_ms < MAX_SLOWED_MS {
                        // Asked to slow down: wait as long as the server says, and do not count
                        // it as a failure (a big drop meets the rate limit by design).
                        let secs = retry_after.and_then(|s| s.trim().parse::<f64>().ok()).unwrap_or(1.0);
                        let ms = secs.clamp(0.0, 600.0) * 1000.0;
                        slowed_ms += ms.max(1.0);
                        self.wait(ms, mode).await?;
                        continue;
                    }
                    if status == 429 {
                        return Err(err);
                    }
                    err
                }
                Err(e) => match (&self.ctl, mode) {
                    (Some(ctl), Mode::Task) if !online() => {
                        // Offline is no failure either: go on when the browser is back.
                        control::race_for(until_online(), ctl).await?;
                        continue;
                    }
                    _ => EngineError::network(&e),
                },
            };
            attempt += 1;
            if !err.retry || attempt >= ATTEMPTS {
                return Err(err);
            }
            self.wait(backoff_ms(attempt - 1, js_sys::Math::random()), mode).await?;
        }
    }

    pub async fn start(&self, req: &CreateUpload) -> Result<Started, EngineError> {
        let u: UploadView = self.call("POST", "/uploads", Some(req)).await?;
        Ok(match u.instant_file() {
            Some(file) => Started::Instant(file.clone()),
            None => Started::Upload(u),
        })
    }

    /// The upload, or `None` when the backend no longer knows it.
    pub async fn get(&self, id: &str) -> Result<Option<UploadView>, EngineError> {
        match self.call("GET", &format!("/uploads/{id}"), NO_BODY).await {
            Ok(u) => Ok(Some(u)),
            Err(e) if e.status == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn sign(&self, id: &str, parts: Vec<SignPart>) -> Result<Vec<SignedPart>, EngineError> {
        let s: SignResponse =
            self.call("POST", &format!("/uploads/{id}/parts/sign"), Some(&SignRequest { parts })).await?;
        Ok(s.parts)
    }

    pub async fn report(&self, id: &str, number: u32, report: &ReportPart) -> Result<ReportAnswer, EngineError> {
        self.call("PUT", &format!("/uploads/{id}/parts/{number}"), Some(report)).await
    }

    pub async fn set_sha1(&self, id: &str, sha1: &str) -> Result<UploadView, EngineError> {
        self.call("PATCH", &format!("/uploads/{id}"), Some(&PatchUpload { sha1: sha1.to_owned() })).await
    }

    /// Answers the upload's challenge with the hex SHA-1 of its byte range.
    pub async fn prove(&self, id: &str, sha1: &str) -> Result<UploadView, EngineError> {
        self.call("POST", &format!("/uploads/{id}/proof"), Some(&ProofRequest { sha1: sha1.to_owned() })).await
    }

    pub async fn complete(&self, id: &str, sha1: &str) -> Result<UploadView, EngineError> {
        let req = CompleteRequest { sha1: Some(sha1.to_owned()) };
        self.call("POST", &format!("/uploads/{id}/complete"), Some(&req)).await
    }

    pub async fn abort(&self, id: &str) -> Result<(), EngineError> {
        match self.call_as::<Value>("DELETE", &format!("/uploads/{id}"), NO_BODY, Mode::Cleanup).await {
            Ok(_) => Ok(()),
            Err(e) if e.status == Some(404) => Ok(()),
            Err(e) => Err(e),
        }
    }
}

/// A call without a body.
const NO_BODY: Option<&()> = None;
