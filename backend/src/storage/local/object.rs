//! A completed object of the local store: its manifest and the streaming of its bytes.
//!
//! Completion never copies bytes: an object is the folder of parts its upload left, plus a
//! manifest that lists them in order. Reading a range therefore opens only the parts it
//! covers and seeks inside the first, so a `Range` request near the end of a 50 GiB
//! object touches one file.

use std::io::SeekFrom;
use std::path::PathBuf;

use bytes::Bytes;
use futures_util::stream::{self, BoxStream, StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncSeekExt};
use tokio_util::io::ReaderStream;

use super::layout::part_path;
use crate::storage::{StorageError, StoredPart};

/// `manifest.json` of an object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub key: String,
    /// The multipart upload it was composed from; `None` for a single PUT (made before
    /// every upload was multipart; such URLs are refused now).
    pub upload: Option<String>,
    pub content_type: String,
    pub size: u64,
    pub parts: Vec<ManifestPart>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestPart {
    pub number: u32,
    pub size: u64,
    /// SHA-1 of the part in hex; also its file name and (quoted) its ETag.
    pub sha1: String,
}

/// An object found on disk.
#[derive(Debug, Clone)]
pub struct StoredObject {
    pub(super) dir: PathBuf,
    pub manifest: Manifest,
}

/// The ETag of a part: its SHA-1 hex, quoted as HTTP wants.
pub fn etag(sha1_hex: &str) -> String {
    format!("\"{sha1_hex}\"")
}

fn unquote(etag: &str) -> &str {
    etag.trim().trim_matches('"')
}

impl StoredObject {
    pub fn size(&self) -> u64 {
        self.manifest.size
    }

    /// The object's ETag, S3's multipart form: a digest of its parts' SHA-1s and their
    /// count. Another composition (other parts, or the same key written again) changes it.
    pub fn etag(&self) -> String {
        let mut h = <sha1::Sha1 as sha1::Digest>::new();
        for p in &self.manifest.parts {
            sha1::Digest::update(&mut h, p.sha1.as_bytes());
            sha1::Digest::update(&mut h, b"\n");
        }
        if let Some(upload) = &self.manifest.upload {
            sha1::Digest::update(&mut h, upload.as_bytes());
        }
        format!("\"{}-{}\"", hex::encode(sha1::Digest::finalize(h)), self.manifest.parts.len())
    }

    /// Whether this object is exactly what completing `upload` with `parts` would give.
    pub fn was_completed_from(&self, upload: &str, parts: &[StoredPart]) -> bool {
        self.manifest.upload.as_deref() == Some(upload)
            && self.manifest.parts.len() == parts.len()
            && self.manifest.parts.iter().zip(parts).all(|(m, p)| m.number == p.number && m.sha1 == unquote(&p.etag))
    }

    /// `len` bytes from `start`, opening each covered part only when the reader gets to it.
    pub fn stream(&self, start: u64, len: u64) -> BoxStream<'static, Result<Bytes, StorageError>> {
        let pieces: Vec<(PathBuf, u64, u64)> = segments(&self.manifest.parts, start, len)
            .into_iter()
            .map(|s| {
                (
                    part_path(&self.dir, self.manifest.parts[s.index].number, &self.manifest.parts[s.index].sha1),
                    s.offset,
                    s.len,
                )
            })
            .collect();
        stream::iter(pieces)
            .then(|(path, offset, len)| async move {
                let mut file = tokio::fs::File::open(&path).await?;
                if offset > 0 {
                    file.seek(SeekFrom::Start(offset)).await?;
                }
                Ok::<_, std::io::Error>(ReaderStream::with_capacity(file.take(len), 64 * 1024))
            })
            .try_flatten()
            .map_err(StorageError::from)
            .boxed()
    }
}

/// The piece of one part that a byte range covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub index: usize,
    pub offset: u64,
    pub len: u64,
}

/// The parts (and where in them) that bytes `start..start + len` of the object lie in.
pub fn segments(parts: &[ManifestPart], start: u64, len: u64) -> Vec<Segment> {
    let end = start.saturating_add(len);
    let mut out = Vec::new();
    let mut part_start = 0u64;
    for (index, part) in parts.iter().enumerate() {
        let part_end = part_start.saturating_add(part.size);
        if part_start >= end {
            break;
        }
        if part_end > start && part.size > 0 {
            let from = start.max(part_start);
            out.push(Segment { index, offset: from - part_start, len: end.min(part_end) - from });
        }
        part_start = part_end;
    }
    out
}

/// Checks the parts a Complete names against the parts stored, as S3 does: at least one,
/// numbers ascending, each stored with the same ETag. Returns them for the manifest.
pub fn select_parts(stored: &[StoredPart], wanted: &[StoredPart]) -> Result<Vec<ManifestPart>, StorageError> {
    if wanted.is_empty() {
        return Err(StorageError::InvalidPart("a complete must name at least one part".into()));
    }
    let mut last = 0;
    let mut chosen = Vec::with_capacity(wanted.len());
    for w in wanted {
        if w.number <= last {
            return Err(StorageError::InvalidPart(format!("part {} is out of order or repeated", w.number)));
        }
        last = w.number;
        let Some(s) = stored.iter().find(|s| s.number == w.number) else {
            return Err(StorageError::InvalidPart(format!("part {} is not stored", w.number)));
        };
        if unquote(&s.etag) != unquote(&w.etag) {
            return Err(StorageError::InvalidPart(format!("part {} is stored with another ETag", w.number)));
        }
        chosen.push(ManifestPart { number: s.number, size: s.size, sha1: unquote(&s.etag).to_owned() });
    }
    Ok(chosen)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(sizes: &[u64]) -> Vec<ManifestPart> {
        sizes.iter().zip(1..).map(|(&size, number)| ManifestPart { number, size, sha1: String::new() }).collect()
    }

    fn seg(index: usize, offset: u64, len: u64) -> Segment {
        Segment { index, offset, len }
    }

    #[test]
    fn ranges_touch_only_the_parts_they_cover() {
        let p = parts(&[5, 7, 3]);
        assert_eq!(segments(&p, 0, 15), vec![seg(0, 0, 5), seg(1, 0, 7), seg(2, 0, 3)]);
        assert_eq!(segments(&p, 0, 4), vec![seg(0, 0, 4)]);
        assert_eq!(segments(&p, 3, 5), vec![seg(0, 3, 2), seg(1, 0, 3)]);
        assert_eq!(segments(&p, 6, 3), vec![seg(1, 1, 3)]);
        assert_eq!(segments(&p, 12, 3), vec![seg(2, 0, 3)]);
        assert_eq!(segments(&p, 5, 0), vec![]);
        assert_eq!(segments(&parts(&[0]), 0, 0), vec![]);
        assert_eq!(segments(&parts(&[4, 0, 4]), 3, 2), vec![seg(0, 3, 1), seg(2, 0, 1)]);
    }

    fn stored(number: u32, etag: &str) -> StoredPart {
        StoredPart { number, etag: etag.into(), size: 1, sha1: None }
    }

    #[test]
    fn complete_names_exactly_stored_parts_in_order() {
        let have = [stored(1, "\"a\""), stored(2, "\"b\""), stored(3, "\"c\"")];
        let chosen = select_parts(&have, &[stored(1, "a"), stored(3, "\"c\"")]).unwrap();
        assert_eq!(chosen.iter().map(|p| (p.number, p.sha1.as_str())).collect::<Vec<_>>(), [(1, "a"), (3, "c")]);
        for bad in
            [vec![], vec![stored(2, "\"b\""), stored(1, "\"a\"")], vec![stored(4, "\"d\"")], vec![stored(1, "\"x\"")]]
        {
            assert!(matches!(select_parts(&have, &bad), Err(StorageError::InvalidPart(_))), "{bad:?}");
        }
    }
}
