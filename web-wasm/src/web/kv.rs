//! A small key-value store in IndexedDB: what lets an upload resume after a reload.
//!
//! Keys are file fingerprints (name, size, lastModified); values are JSON strings. Every
//! failure here is soft (private mode, quota): the backend can still match an open upload
//! by name, size and modification time, so the engine carries on without it.

use std::cell::RefCell;
use std::rc::Rc;

use futures_channel::oneshot;
use wasm_bindgen::closure::Closure;
use wasm_bindgen::{JsCast, JsValue};
use web_sys::{IdbDatabase, IdbRequest, IdbTransactionMode};

use super::io::global;

const DB: &str = "shardrop";
const STORE: &str = "uploads";

async fn done(req: &IdbRequest) -> Result<JsValue, JsValue> {
    let (tx, rx) = oneshot::channel::<Result<JsValue, JsValue>>();
    let tx = Rc::new(RefCell::new(Some(tx)));
    let (ok_tx, err_tx) = (tx.clone(), tx);
    let ok_req = req.clone();
    let on_ok = Closure::once(move || {
        if let Some(t) = ok_tx.borrow_mut().take() {
            let _ = t.send(ok_req.result());
        }
    });
    let err_req = req.clone();
    let on_err = Closure::once(move || {
        if let Some(t) = err_tx.borrow_mut().take() {
            let _ = t.send(Err(err_req.error().map(JsValue::from).unwrap_or(JsValue::NULL)));
        }
    });
    req.set_onsuccess(Some(on_ok.as_ref().unchecked_ref()));
    req.set_onerror(Some(on_err.as_ref().unchecked_ref()));
    rx.await.unwrap_or(Err(JsValue::from_str("indexedDB request dropped")))
}

async fn open() -> Result<IdbDatabase, JsValue> {
    let factory = global().indexed_db()?.ok_or_else(|| JsValue::from_str("no indexedDB"))?;
    let req = factory.open_with_u32(DB, 1)?;
    let upgrade_req = req.clone();
    let on_upgrade = Closure::once(move || {
        if let Ok(db) = upgrade_req.result().and_then(|r| r.dyn_into::<IdbDatabase>()) {
            let _ = db.create_object_store(STORE);
        }
    });
    req.set_onupgradeneeded(Some(on_upgrade.as_ref().unchecked_ref()));
    done(&req).await?.dyn_into()
}

async fn request(
    mode: IdbTransactionMode,
    op: impl FnOnce(&web_sys::IdbObjectStore) -> Result<IdbRequest, JsValue>,
) -> Result<JsValue, JsValue> {
    let db = open().await?;
    let tx = db.transaction_with_str_and_mode(STORE, mode)?;
    let result = done(&op(&tx.object_store(STORE)?)?).await;
    db.close();
    result
}

pub async fn get(key: &str) -> Option<String> {
    let key = JsValue::from_str(key);
    request(IdbTransactionMode::Readonly, |s| s.get(&key)).await.ok().and_then(|v| v.as_string())
}

pub async fn put(key: &str, value: &str) {
    let (key, value) = (JsValue::from_str(key), JsValue::from_str(value));
    let _ = request(IdbTransactionMode::Readwrite, |s| s.put_with_key(&value, &key)).await;
}

pub async fn delete(key: &str) {
    let key = JsValue::from_str(key);
    let _ = request(IdbTransactionMode::Readwrite, |s| s.delete(&key)).await;
}
