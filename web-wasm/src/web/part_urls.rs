//! Part URLs (`PartUrls`), signed in batches shortly before use: when a sender needs a URL, every part
//! hashed and waiting is signed with it in one request. A URL close to expiry, or one the
//! storage called expired, is signed again.

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};

use super::api::Api;
use super::error::EngineError;
use super::io::now_ms;
use crate::protocol::{SignPart, SignedPart};

/// Most parts signed in one request.
const BATCH: usize = 32;
/// A URL with less left than this is signed again before use.
const MARGIN_MS: f64 = 60_000.0;

#[derive(Default)]
pub struct PartUrls {
    /// Parts hashed and not yet stored.
    known: RefCell<BTreeMap<u32, SignPart>>,
    signed: RefCell<HashMap<u32, (SignedPart, f64)>>,
}

impl PartUrls {
    /// A part hashed and waiting: what its URL will be signed for.
    pub fn know(&self, part: SignPart) {
        self.known.borrow_mut().insert(part.number, part);
    }

    /// URLs signed already (by `POST /uploads` itself, for a small file).
    pub fn add_signed(&self, parts: Vec<SignedPart>) {
        for part in parts {
            let expires = part.expires_at.timestamp_millis() as f64;
            self.signed.borrow_mut().insert(part.number, (part, expires));
        }
    }

    pub fn forget(&self, number: u32) {
        self.known.borrow_mut().remove(&number);
        self.signed.borrow_mut().remove(&number);
    }

    pub fn invalidate(&self, number: u32) {
        self.signed.borrow_mut().remove(&number);
    }

    fn fresh(&self, number: u32) -> Option<SignedPart> {
        let signed = self.signed.borrow();
        let (part, expires) = signed.get(&number)?;
        (*expires - now_ms() > MARGIN_MS).then(|| part.clone())
    }

    pub async fn url(&self, api: &Api, upload: &str, number: u32) -> Result<SignedPart, EngineError> {
        if let Some(p) = self.fresh(number) {
            return Ok(p);
        }
        let batch: Vec<SignPart> = {
            let known = self.known.borrow();
            let first = known.get(&number).cloned();
            let others = known.values().filter(|p| p.number != number && self.fresh(p.number).is_none()).cloned();
            first.into_iter().chain(others).take(BATCH).collect()
        };
        if batch.first().map(|p| p.number) != Some(number) {
            return Err(EngineError::new("internal", format!("part {number} was never hashed")));
        }
        for part in api.sign(upload, batch).await? {
            let expires = part.expires_at.timestamp_millis() as f64;
            self.signed.borrow_mut().insert(part.number, (part, expires));
        }
        self.signed
            .borrow()
            .get(&number)
            .map(|(p, _)| p.clone())
            .ok_or_else(|| EngineError::new("bad-response", format!("part {number} was not signed")))
    }
}
