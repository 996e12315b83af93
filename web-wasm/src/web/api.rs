//! The backend's REST API as the engine uses it (see docs/api.md). Transient failures
//! (network, 429, 5xx) are retried here with backoff; what comes out is an answer or an
//! error worth showing.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use super::error::EngineError;
use super::io::{fetch, sleep_ms, text};
use crate::progress::backoff_ms;

/// Attempts at one API call before giving up.
const ATTEMPTS: u32 = 8;

#[derive(Debug, Clone, Deserialize)]
pub struct FileInfo {
    pub file_id: String,
    pub sha1: Option<String>,
    pub size: u64,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Upload {
    pub upload_id: String,
    pub part_size: u64,
    pub part_count: u32,
    pub parts_done: Vec<u32>,
    pub state: String,
    pub file: Option<FileInfo>,
    #[serde(default)]
    pub dedup_candidate: bool,
    /// `md5` where the storage checks parts by Content-MD5 (Ceph RGW 16): sign each part
    /// with its MD5 as well.
    #[serde(default)]
    pub part_check: String,
    /// The backend holds the content this upload claims: prove it is ours by giving the
    /// SHA-1 of this byte range.
    #[serde(default)]
    pub challenge: Option<Challenge>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Challenge {
    pub offset: u64,
    pub length: u64,
    /// Hex of the bytes hashed before the range.
    pub nonce: String,
}

/// What signing a part binds into its URL.
#[derive(Debug, Clone)]
pub struct PartDigests {
    /// Base64 SHA-1.
    pub sha1: String,
    pub size: u64,
    /// Base64 MD5, where the storage checks that one.
    pub md5: Option<String>,
}

#[derive(Debug, Clone, Deserialize)]
pub struct SignedPart {
    pub number: u32,
    pub url: String,
    pub method: String,
    pub headers: BTreeMap<String, String>,
    pub expires_at: String,
}

#[derive(Debug, Clone, Deserialize)]
pub struct Report {
    pub file: Option<FileInfo>,
}

/// What `POST /uploads` answered.
pub enum Started {
    Upload(Upload),
    Instant(FileInfo),
}

pub struct Api {
    endpoint: String,
    token: Option<String>,
}

impl Api {
    pub fn new(endpoint: &str, token: Option<String>) -> Self {
        Self { endpoint: endpoint.trim_end_matches('/').to_owned(), token }
    }

    async fn call<T: DeserializeOwned>(&self, method: &str, path: &str, body: Option<Value>) -> Result<T, EngineError> {
        let url = format!("{}{path}", self.endpoint);
        let body = body.map(|b| wasm_bindgen::JsValue::from_str(&b.to_string()));
        let auth = self.token.as_ref().map(|t| format!("Bearer {t}"));
        let mut headers = vec![("content-type", "application/json")];
        if let Some(a) = &auth {
            headers.push(("authorization", a));
        }
        let mut attempt = 0;
        loop {
            let err = match fetch(method, &url, &headers, body.as_ref(), None).await {
                Ok(resp) => {
                    let status = resp.status();
                    let body = text(&resp).await.unwrap_or_default();
                    if (200..300).contains(&status) {
                        let body = if body.is_empty() { "null" } else { &body };
                        return serde_json::from_str(body)
                            .map_err(|e| EngineError::new("bad-response", format!("{method} {path}: {e}")));
                    }
                    EngineError::backend(status, &body)
                }
                Err(e) => EngineError::network(&e),
            };
            attempt += 1;
            if !err.retry || attempt >= ATTEMPTS {
                return Err(err);
            }
            sleep_ms(backoff_ms(attempt - 1, js_sys::Math::random())).await;
        }
    }

    pub async fn start(&self, req: Value) -> Result<Started, EngineError> {
        let v: Value = self.call("POST", "/uploads", Some(req)).await?;
        if v["state"] == "instant" {
            let file = serde_json::from_value(v["file"].clone())
                .map_err(|e| EngineError::new("bad-response", e.to_string()))?;
            return Ok(Started::Instant(file));
        }
        serde_json::from_value(v).map(Started::Upload).map_err(|e| EngineError::new("bad-response", e.to_string()))
    }

    /// The upload, or `None` when the backend no longer knows it.
    pub async fn get(&self, id: &str) -> Result<Option<Upload>, EngineError> {
        match self.call("GET", &format!("/uploads/{id}"), None).await {
            Ok(u) => Ok(Some(u)),
            Err(e) if e.status == Some(404) => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn sign(&self, id: &str, parts: &[(u32, PartDigests)]) -> Result<Vec<SignedPart>, EngineError> {
        #[derive(Deserialize)]
        struct Signed {
            parts: Vec<SignedPart>,
        }
        let parts: Vec<Value> = parts
            .iter()
            .map(|(n, d)| {
                let mut part = json!({"number": n, "sha1": d.sha1, "size": d.size});
                if let Some(md5) = &d.md5 {
                    part["md5"] = json!(md5);
                }
                part
            })
            .collect();
        let s: Signed =
            self.call("POST", &format!("/uploads/{id}/parts/sign"), Some(json!({ "parts": parts }))).await?;
        Ok(s.parts)
    }

    pub async fn report(&self, id: &str, number: u32, etag: &str, sha1: &str) -> Result<Report, EngineError> {
        self.call("PUT", &format!("/uploads/{id}/parts/{number}"), Some(json!({"etag": etag, "sha1": sha1}))).await
    }

    pub async fn set_sha1(&self, id: &str, sha1: &str) -> Result<Upload, EngineError> {
        self.call("PATCH", &format!("/uploads/{id}"), Some(json!({ "sha1": sha1 }))).await
    }

    /// Answers the upload's challenge with the hex SHA-1 of its byte range.
    pub async fn prove(&self, id: &str, sha1: &str) -> Result<Upload, EngineError> {
        self.call("POST", &format!("/uploads/{id}/proof"), Some(json!({ "sha1": sha1 }))).await
    }

    pub async fn complete(&self, id: &str, sha1: &str) -> Result<Upload, EngineError> {
        self.call("POST", &format!("/uploads/{id}/complete"), Some(json!({ "sha1": sha1 }))).await
    }

    pub async fn abort(&self, id: &str) -> Result<(), EngineError> {
        match self.call::<Value>("DELETE", &format!("/uploads/{id}"), None).await {
            Ok(_) => Ok(()),
            Err(e) if e.status == Some(404) => Ok(()),
            Err(e) => Err(e),
        }
    }
}
