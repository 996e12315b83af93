//! Where the local store keeps what, and the checks that keep every path inside its root.
//!
//! ```text
//! <root>/uploads/<upload id>/meta.json            key and content type of the upload
//! <root>/uploads/<upload id>/<nnnnn>/<sha1 hex>   one part; a folder per part number so a
//!                                                 re-PUT replaces its part without a scan
//! <root>/objects/<encoded key>/manifest.json      the parts of a completed object, in order
//! <root>/objects/<encoded key>/<nnnnn>/<sha1 hex> its parts, moved there on completion
//! <root>/tmp/                                     bytes in flight and staged folders
//! ```
//!
//! Everything is written in `tmp/` and renamed into place (same file system, so atomic):
//! a reader sees a part or object whole or not at all, and a crash leaves only `tmp/`
//! litter, which `prepare` sweeps. A key becomes one flat, percent-encoded folder name,
//! so no key can reach outside `objects/`; keys that look like path tricks are refused
//! anyway, because they can only come from a bug upstream.

use std::io;
use std::path::{Path, PathBuf};

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use tokio::fs;
use tokio::io::AsyncWriteExt;

use crate::storage::StorageError;

pub const META: &str = "meta.json";
pub const MANIFEST: &str = "manifest.json";
/// A key's folder name must fit one path component (255 bytes on common file systems).
const MAX_ENCODED_KEY: usize = 240;
const KEY_ESCAPES: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.');

#[derive(Debug, Clone)]
pub struct Layout {
    root: PathBuf,
}

impl Layout {
    pub fn new(root: PathBuf) -> Self {
        Self { root }
    }

    pub fn uploads(&self) -> PathBuf {
        self.root.join("uploads")
    }

    pub fn objects(&self) -> PathBuf {
        self.root.join("objects")
    }

    pub fn tmp(&self) -> PathBuf {
        self.root.join("tmp")
    }

    /// The folder of an upload; an id this store could not have issued is unknown.
    pub fn upload_dir(&self, upload: &str) -> Result<PathBuf, StorageError> {
        let valid = upload.len() == 32 && upload.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        if !valid {
            return Err(StorageError::NoSuchUpload);
        }
        Ok(self.uploads().join(upload))
    }

    pub fn object_dir(&self, key: &str) -> Result<PathBuf, StorageError> {
        check_key(key)?;
        let name = utf8_percent_encode(key, KEY_ESCAPES).to_string();
        if name.len() > MAX_ENCODED_KEY {
            return Err(invalid_key(key, "too long"));
        }
        Ok(self.objects().join(name))
    }

    /// A fresh, unused path in `tmp/`.
    pub fn tmp_path(&self, what: &str) -> PathBuf {
        self.tmp().join(format!("{what}-{}", random_hex()))
    }
}

/// The key an object folder's name encodes (the inverse of [`Layout::object_dir`]).
pub fn key_of(name: &std::ffi::OsStr) -> Option<String> {
    let name = name.to_str()?;
    let key = percent_encoding::percent_decode_str(name).decode_utf8().ok()?.into_owned();
    check_key(&key).ok().map(|()| key)
}

/// Where a part lives inside an upload's or object's folder.
pub fn part_path(dir: &Path, number: u32, sha1_hex: &str) -> PathBuf {
    dir.join(number_dir(number)).join(sha1_hex)
}

pub fn number_dir(number: u32) -> String {
    format!("{number:05}")
}

/// Refuses keys that could name anything but a plain relative path.
pub fn check_key(key: &str) -> Result<(), StorageError> {
    if key.is_empty() {
        return Err(invalid_key(key, "empty"));
    }
    if key.starts_with('/') || key.contains('\\') || key.chars().any(char::is_control) {
        return Err(invalid_key(key, "absolute, or holds a backslash or control character"));
    }
    if key.split('/').any(|seg| seg.is_empty() || seg == "." || seg == "..") {
        return Err(invalid_key(key, "has an empty, `.` or `..` segment"));
    }
    Ok(())
}

fn invalid_key(key: &str, why: &str) -> StorageError {
    StorageError::Other(format!("refusing object key {key:?}: {why}"))
}

/// 128 random bits from the thread's CSPRNG, as 32 hex characters.
pub fn random_hex() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

/// A file in `tmp/` that is removed on drop unless [`TempFile::keep`] moved it into place.
#[derive(Debug)]
pub struct TempFile {
    path: PathBuf,
    pub file: fs::File,
    kept: bool,
}

impl TempFile {
    pub async fn create(layout: &Layout) -> io::Result<Self> {
        let path = layout.tmp_path("part");
        let file = fs::OpenOptions::new().write(true).create_new(true).open(&path).await?;
        Ok(Self { path, file, kept: false })
    }

    /// Makes the bytes durable, then renames the file to `dest`.
    pub async fn keep(mut self, dest: &Path) -> io::Result<()> {
        self.file.flush().await?;
        self.file.sync_data().await?;
        fs::rename(&self.path, dest).await?;
        self.kept = true;
        Ok(())
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if !self.kept {
            // Best effort: a leftover is swept from tmp/ at the next start.
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Writes `bytes` to `dest` so that readers see the old file or the new one, never a part.
pub async fn write_atomic(layout: &Layout, dest: &Path, bytes: &[u8]) -> io::Result<()> {
    let mut tmp = TempFile::create(layout).await?;
    tmp.file.write_all(bytes).await?;
    tmp.keep(dest).await
}

/// Creates `dir`; an existing one is fine, but its parent must exist.
pub async fn ensure_dir(dir: &Path) -> io::Result<()> {
    match fs::create_dir(dir).await {
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(()),
        other => other,
    }
}

/// Removes a folder and all it holds; a missing one is fine.
pub async fn remove_tree(dir: &Path) -> io::Result<()> {
    match fs::remove_dir_all(dir).await {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_cannot_escape_the_root() {
        let layout = Layout::new(PathBuf::from("/r"));
        for bad in ["", "../x", "/abs", "a\\b", "a\0b", "a/../b", "a//b", "./a", "a/.", "..", "a\nb"] {
            assert!(layout.object_dir(bad).is_err(), "{bad:?}");
        }
        assert!(layout.object_dir(&"x".repeat(241)).is_err());
        let dir = layout.object_dir("pre fix/objects/0190-ab.c").unwrap();
        assert_eq!(dir, PathBuf::from("/r/objects/pre%20fix%2Fobjects%2F0190-ab.c"));
        assert_eq!(dir.parent(), Some(Path::new("/r/objects")));
    }

    #[test]
    fn upload_ids_are_what_this_store_issues() {
        let layout = Layout::new(PathBuf::from("/r"));
        assert!(layout.upload_dir(&random_hex()).is_ok());
        for bad in ["", "../../etc", &"A".repeat(32), &"a".repeat(33)] {
            assert!(matches!(layout.upload_dir(bad), Err(StorageError::NoSuchUpload)), "{bad:?}");
        }
    }
}
