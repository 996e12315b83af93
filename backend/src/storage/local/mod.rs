//! The embedded object store of the one-command run: parts kept as files under one folder,
//! PUT by clients to this server's own routes ([`super::local_http`]) at HMAC-signed,
//! expiring URLs on the API's origin (so no CORS).
//!
//! It keeps the promises of an S3 store that the control plane relies on: a part whose
//! bytes do not hash to the SHA-1 and length signed into its URL is refused and leaves
//! nothing behind; the folder of parts is the truth `list_parts` reports; completion is a
//! rename, never a copy. It assumes one process owns the folder (the one-machine setup):
//! one in-process lock serializes the few renames and removals that change which parts
//! and objects exist, while bytes stream outside it. See `layout` for the folder layout.
//!
//! Over 400 lines on purpose: it is the one implementation of the `Store` trait for the
//! embedded store, method for method beside `s3.rs`; the pieces that stand alone (layout,
//! part files, objects, URL signing) are its submodules already.

use std::path::PathBuf;
use std::time::Duration;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use futures_util::stream::{BoxStream, Stream};
use shardrop_engine::Sha1B64;
use tokio::fs;
use tokio::sync::Mutex;

use self::layout::{ensure_dir, part_path, remove_tree, write_atomic, Layout, TempFile, MANIFEST, META};
use self::object::{etag, select_parts, ManifestPart};
use self::parts::{read_parts, receive};
use self::signing::Signer;
use super::{DownloadTarget, ListedObject, ObjectStat, PartTarget, SignedRequest, StorageError, Store, StoredPart};

mod error;
mod layout;
mod object;
mod parts;
mod signing;

pub use self::error::LocalError;
pub use self::object::{Manifest, StoredObject};
pub use self::signing::{AccessError, ObjectGrant, ObjectQuery, PartGrant, PartQuery};

/// Route of part PUTs (query: `key`, `upload`, `part`, `size`, `sha1`, `type`, `expires`, `sig`).
pub const PARTS_PATH: &str = "/api/v1/local/parts";
/// Route of downloads, GET and HEAD (query: `key`, `name`, `type`, `expires`, `sig`).
pub const OBJECTS_PATH: &str = "/api/v1/local/objects";
/// The header that carries a part's base64 SHA-1, as in S3.
pub const CHECKSUM_HEADER: &str = "x-amz-checksum-sha1";
/// Litter in `tmp/` older than this is swept at start-up.
const TMP_MAX_AGE: Duration = Duration::from_secs(3600);

/// What `meta.json` of an upload says.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
struct UploadMeta {
    key: String,
    content_type: String,
}

pub struct LocalStore {
    layout: Layout,
    signer: Signer,
    public_url: String,
    /// Held while names change (part renames, completion, abort, delete), never while
    /// bytes stream.
    names: Mutex<()>,
}

impl std::fmt::Debug for LocalStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalStore").field("layout", &self.layout).field("public_url", &self.public_url).finish()
    }
}

fn now() -> i64 {
    Utc::now().timestamp()
}

fn expiry(ttl: Duration) -> Result<(i64, DateTime<Utc>), StorageError> {
    let secs = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX / 2);
    let expires = now().saturating_add(secs);
    let at = DateTime::from_timestamp(expires, 0).ok_or_else(|| StorageError::Other("ttl out of range".into()))?;
    Ok((expires, at))
}

impl LocalStore {
    /// `root` is a folder this store owns; `secret` (16 bytes or more) signs its URLs;
    /// `public_url` is the origin clients reach this server at, like `http://127.0.0.1:8080`.
    pub fn new(root: PathBuf, secret: Vec<u8>, public_url: String) -> Result<Self, StorageError> {
        Ok(Self {
            layout: Layout::new(root),
            signer: Signer::new(&secret)?,
            public_url: public_url.trim_end_matches('/').to_owned(),
            names: Mutex::new(()),
        })
    }

    pub fn verify_part(&self, query: PartQuery) -> Result<PartGrant, AccessError> {
        self.signer.verify_part(&query, now())?;
        Ok(PartGrant(query))
    }

    pub fn verify_object(&self, query: ObjectQuery) -> Result<ObjectGrant, AccessError> {
        self.signer.verify_object(&query, now())?;
        Ok(ObjectGrant(query))
    }

    #[cfg(test)]
    pub(crate) fn signer(&self) -> &Signer {
        &self.signer
    }

    /// The object under `key`, if it is complete.
    pub async fn object(&self, key: &str) -> Result<Option<StoredObject>, StorageError> {
        let dir = self.layout.object_dir(key)?;
        let bytes = match fs::read(dir.join(MANIFEST)).await {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        let manifest =
            serde_json::from_slice(&bytes).map_err(|e| StorageError::Other(format!("manifest of {key:?}: {e}")))?;
        Ok(Some(StoredObject { dir, manifest }))
    }

    /// Stores the body of a verified part PUT: streamed to `tmp/` while hashed and
    /// counted, kept only if length and SHA-1 are the signed ones.
    pub async fn put_part<S, E>(&self, grant: &PartGrant, body: S) -> Result<StoredPart, LocalError>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
        E: std::fmt::Display,
    {
        let q = &grant.0;
        self.layout.object_dir(&q.key)?;
        // Without an upload, only the empty object may be PUT (see `PartTarget::upload`); a
        // larger single-PUT URL (signed before every upload became multipart) could
        // overwrite a stored object, so it is worthless now.
        match &q.upload {
            Some(upload) => drop(self.upload_meta(&q.key, upload).await?),
            None if q.size == 0 => {}
            None => return Err(StorageError::NoSuchUpload.into()),
        }
        let mut tmp = TempFile::create(&self.layout).await?;
        let digest = receive(&mut tmp.file, body, q.size).await?;
        if Sha1B64::from_digest(&digest).as_str() != q.sha1 {
            return Err(LocalError::BadDigest);
        }
        let hex = hex::encode(digest);
        let _names = self.names.lock().await;
        match &q.upload {
            Some(upload) => self.keep_part(&q.key, upload, q.part, &hex, tmp).await?,
            None => self.keep_single(&q.key, &q.content_type, q.size, &hex, tmp).await?,
        }
        Ok(StoredPart { number: q.part, etag: etag(&hex), size: q.size, sha1: Some(q.sha1.clone()) })
    }

    /// Moves a part into its upload, replacing an earlier PUT of the same number.
    async fn keep_part(
        &self,
        key: &str,
        upload: &str,
        number: u32,
        hex: &str,
        tmp: TempFile,
    ) -> Result<(), StorageError> {
        self.upload_meta(key, upload).await?; // still there (not completed or aborted meanwhile)
        let dir = self.layout.upload_dir(upload)?;
        let number_dir = dir.join(layout::number_dir(number));
        ensure_dir(&number_dir).await?;
        tmp.keep(&number_dir.join(hex)).await?;
        let mut entries = fs::read_dir(&number_dir).await?;
        while let Some(entry) = entries.next_entry().await? {
            if entry.file_name() != hex {
                fs::remove_file(entry.path()).await?;
            }
        }
        Ok(())
    }

    /// The single PUT of an empty object: it becomes a one-part object at once.
    async fn keep_single(
        &self,
        key: &str,
        content_type: &str,
        size: u64,
        hex: &str,
        tmp: TempFile,
    ) -> Result<(), StorageError> {
        let stage = self.layout.tmp_path("single");
        let result = async {
            fs::create_dir(&stage).await?;
            let dest = part_path(&stage, 1, hex);
            if let Some(number_dir) = dest.parent() {
                fs::create_dir(number_dir).await?;
            }
            tmp.keep(&dest).await?;
            let parts = vec![ManifestPart { number: 1, size, sha1: hex.to_owned() }];
            let manifest = Manifest { key: key.into(), upload: None, content_type: content_type.into(), size, parts };
            self.install(&stage, &manifest).await
        }
        .await;
        if result.is_err() {
            let _ = remove_tree(&stage).await;
        }
        result
    }

    /// Writes the manifest into a folder of parts and renames it to the object's place,
    /// replacing any object under that key. Call with `names` held.
    async fn install(&self, dir: &std::path::Path, manifest: &Manifest) -> Result<(), StorageError> {
        let json = serde_json::to_vec_pretty(manifest).map_err(|e| StorageError::Other(e.to_string()))?;
        write_atomic(&self.layout, &dir.join(MANIFEST), &json).await?;
        let dest = self.layout.object_dir(&manifest.key)?;
        if fs::try_exists(&dest).await? {
            let old = self.layout.tmp_path("replaced");
            fs::rename(&dest, &old).await?;
            fs::rename(dir, &dest).await?;
            remove_tree(&old).await?;
        } else {
            fs::rename(dir, &dest).await?;
        }
        Ok(())
    }

    /// The upload's meta, or `NoSuchUpload` when it is gone or belongs to another key.
    async fn upload_meta(&self, key: &str, upload: &str) -> Result<UploadMeta, StorageError> {
        let dir = self.layout.upload_dir(upload)?;
        let bytes = match fs::read(dir.join(META)).await {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Err(StorageError::NoSuchUpload),
            Err(e) => return Err(e.into()),
        };
        let meta: UploadMeta =
            serde_json::from_slice(&bytes).map_err(|e| StorageError::Other(format!("upload meta: {e}")))?;
        if meta.key != key {
            return Err(StorageError::NoSuchUpload);
        }
        Ok(meta)
    }

    async fn sweep_tmp(&self) -> Result<(), StorageError> {
        let mut entries = fs::read_dir(self.layout.tmp()).await?;
        while let Some(entry) = entries.next_entry().await? {
            let old = entry.metadata().await?.modified()?.elapsed().is_ok_and(|age| age > TMP_MAX_AGE);
            if old {
                let path = entry.path();
                let removed = if entry.file_type().await?.is_dir() {
                    remove_tree(&path).await
                } else {
                    fs::remove_file(&path).await
                };
                if let Err(e) = removed {
                    tracing::warn!(path = %path.display(), error = %e, "cannot sweep a leftover");
                }
            }
        }
        Ok(())
    }
}

#[async_trait::async_trait]
impl Store for LocalStore {
    async fn prepare(&self) -> Result<(), StorageError> {
        for dir in [self.layout.uploads(), self.layout.objects(), self.layout.tmp()] {
            fs::create_dir_all(&dir).await?;
        }
        self.sweep_tmp().await
    }

    async fn ping(&self) -> Result<(), StorageError> {
        let probe = self.layout.tmp_path("ping");
        let unavailable = |e: std::io::Error| StorageError::Unavailable(format!("local store: {e}"));
        fs::write(&probe, b"ok").await.map_err(unavailable)?;
        let read = fs::read(&probe).await.map_err(unavailable);
        fs::remove_file(&probe).await.map_err(unavailable)?;
        if read? != b"ok" {
            return Err(StorageError::Unavailable("local store: a probe file read back wrong".into()));
        }
        Ok(())
    }

    async fn create_multipart(&self, key: &str, content_type: &str) -> Result<String, StorageError> {
        self.layout.object_dir(key)?;
        let upload = layout::random_hex();
        let stage = self.layout.tmp_path("upload");
        fs::create_dir(&stage).await?;
        let meta = serde_json::to_vec(&UploadMeta { key: key.into(), content_type: content_type.into() })
            .map_err(|e| StorageError::Other(e.to_string()))?;
        let placed = async {
            write_atomic(&self.layout, &stage.join(META), &meta).await?;
            fs::rename(&stage, self.layout.upload_dir(&upload)?).await?;
            Ok::<_, StorageError>(())
        }
        .await;
        if placed.is_err() {
            let _ = remove_tree(&stage).await;
        }
        placed.map(|()| upload)
    }

    async fn sign_part(&self, part: PartTarget<'_>, ttl: Duration) -> Result<SignedRequest, StorageError> {
        self.layout.object_dir(part.key)?;
        if let Some(upload) = part.upload {
            self.layout.upload_dir(upload)?;
        }
        if part.number == 0 || (part.upload.is_none() && (part.number != 1 || part.size != 0)) {
            return Err(StorageError::Other(format!("cannot sign part number {}", part.number)));
        }
        let (expires, expires_at) = expiry(ttl)?;
        let mut query = PartQuery {
            key: part.key.into(),
            upload: part.upload.map(str::to_owned),
            part: part.number,
            size: part.size,
            sha1: part.sha1.as_str().into(),
            content_type: part.content_type.into(),
            expires,
            sig: String::new(),
        };
        self.signer.sign_part(&mut query);
        let url = query.to_url(&format!("{}{PARTS_PATH}", self.public_url));
        let headers = [(CHECKSUM_HEADER.to_owned(), part.sha1.as_str().to_owned())].into();
        Ok(SignedRequest { url, method: "PUT".into(), headers, expires_at })
    }

    async fn list_parts(&self, key: &str, upload: &str) -> Result<Vec<StoredPart>, StorageError> {
        let _names = self.names.lock().await;
        self.upload_meta(key, upload).await?;
        read_parts(&self.layout.upload_dir(upload)?).await
    }

    async fn complete(&self, key: &str, upload: &str, parts: &[StoredPart]) -> Result<(), StorageError> {
        let _names = self.names.lock().await;
        let meta = match self.upload_meta(key, upload).await {
            Err(StorageError::NoSuchUpload) => {
                // Already completed with these very parts: say yes again.
                let done = self.object(key).await?.is_some_and(|o| o.was_completed_from(upload, parts));
                return if done { Ok(()) } else { Err(StorageError::NoSuchUpload) };
            }
            other => other?,
        };
        let dir = self.layout.upload_dir(upload)?;
        let stored = read_parts(&dir).await?;
        let chosen = select_parts(&stored, parts)?;
        for extra in stored.iter().filter(|s| !chosen.iter().any(|c| c.number == s.number)) {
            remove_tree(&dir.join(layout::number_dir(extra.number))).await?;
        }
        let size = chosen.iter().map(|p| p.size).sum();
        let manifest = Manifest {
            key: key.into(),
            upload: Some(upload.into()),
            content_type: meta.content_type,
            size,
            parts: chosen,
        };
        self.install(&dir, &manifest).await
    }

    async fn abort(&self, key: &str, upload: &str) -> Result<(), StorageError> {
        let _names = self.names.lock().await;
        match self.upload_meta(key, upload).await {
            Ok(_) => Ok(remove_tree(&self.layout.upload_dir(upload)?).await?),
            Err(StorageError::NoSuchUpload) => Ok(()),
            Err(e) => Err(e),
        }
    }

    async fn stat(&self, key: &str) -> Result<Option<ObjectStat>, StorageError> {
        Ok(self.object(key).await?.map(|o| ObjectStat { size: o.size(), etag: o.etag() }))
    }

    async fn list_objects(&self, prefix: &str) -> Result<Vec<ListedObject>, StorageError> {
        let mut found = Vec::new();
        let mut entries = fs::read_dir(self.layout.objects()).await?;
        while let Some(entry) = entries.next_entry().await? {
            let Some(key) = layout::key_of(&entry.file_name()) else { continue };
            if !key.starts_with(prefix) {
                continue;
            }
            // The manifest is written last, when the object is installed.
            let modified = match fs::metadata(entry.path().join(MANIFEST)).await {
                Ok(m) => m.modified()?,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => entry.metadata().await?.modified()?,
                Err(e) => return Err(e.into()),
            };
            found.push(ListedObject { key, modified: modified.into() });
        }
        Ok(found)
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        let dir = self.layout.object_dir(key)?;
        let old = self.layout.tmp_path("deleted");
        let moved = {
            let _names = self.names.lock().await;
            fs::rename(&dir, &old).await
        };
        // The object vanished atomically with the rename; its files go outside the lock.
        match moved {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(e.into()),
            Ok(()) => Ok(remove_tree(&old).await?),
        }
    }

    async fn sign_download(&self, target: DownloadTarget<'_>) -> Result<String, StorageError> {
        self.layout.object_dir(target.key)?;
        let (expires, _) = expiry(target.ttl)?;
        let mut query = ObjectQuery {
            key: target.key.into(),
            name: target.file_name.into(),
            content_type: target.content_type.into(),
            expires,
            sig: String::new(),
        };
        self.signer.sign_object(&mut query);
        Ok(query.to_url(&format!("{}{OBJECTS_PATH}", self.public_url)))
    }

    async fn read(&self, key: &str) -> Result<BoxStream<'static, Result<Bytes, StorageError>>, StorageError> {
        self.read_range(key, 0, u64::MAX).await
    }

    async fn read_range(
        &self,
        key: &str,
        offset: u64,
        len: u64,
    ) -> Result<BoxStream<'static, Result<Bytes, StorageError>>, StorageError> {
        let object = self.object(key).await?.ok_or(StorageError::NotFound)?;
        let start = offset.min(object.size());
        Ok(object.stream(start, len.min(object.size() - start)))
    }
}
