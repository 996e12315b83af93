//! The content probe: a SHA-1 over three small windows of a file (start, middle, end).
//!
//! It lets a client ask "might this content be stored already?" in milliseconds, before
//! it has hashed the whole file: the server keeps the probe of every verified file (taken
//! from the stored bytes), and a client whose size and probe match one hashes the whole
//! file before sending anything, so a duplicate sends 0 part bytes; any other file starts
//! sending at once. A probe match is only a hint: instant upload still needs the whole
//! SHA-1 (and, with accounts, a proof of possession).

use std::ops::Range;

use sha1::{Digest, Sha1};

use crate::Sha1Hex;

/// Width of each window.
pub const WINDOW: u64 = 64 * 1024;

/// The byte ranges a probe covers, in order: the whole file when it is small, otherwise
/// the first, middle and last `WINDOW` bytes.
pub fn ranges(size: u64) -> Vec<Range<u64>> {
    if size <= 3 * WINDOW {
        #[allow(clippy::single_range_in_vec_init)] // one window: the whole file
        return vec![0..size];
    }
    let mid = size / 2 - WINDOW / 2;
    vec![0..WINDOW, mid..mid + WINDOW, size - WINDOW..size]
}

/// Collects the probe's windows from a file read front to back in chunks of any size.
pub struct ProbeCollector {
    ranges: Vec<Range<u64>>,
    hasher: Sha1,
}

impl ProbeCollector {
    pub fn new(size: u64) -> Self {
        Self { ranges: ranges(size), hasher: Sha1::new() }
    }

    /// Feeds `chunk`, which starts at byte `offset` of the file. Chunks must come in order.
    pub fn feed(&mut self, offset: u64, chunk: &[u8]) {
        let end = offset + chunk.len() as u64;
        for r in &self.ranges {
            let (s, e) = (r.start.max(offset), r.end.min(end));
            if s < e {
                self.hasher.update(&chunk[(s - offset) as usize..(e - offset) as usize]);
            }
        }
    }

    pub fn finish(self) -> Sha1Hex {
        Sha1Hex::from_digest(&self.hasher.finalize().into())
    }
}

/// The probe of bytes held in memory.
pub fn of(bytes: &[u8]) -> Sha1Hex {
    let mut c = ProbeCollector::new(bytes.len() as u64);
    c.feed(0, bytes);
    c.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[allow(clippy::single_range_in_vec_init)]
    fn windows() {
        assert_eq!(ranges(0), vec![0..0]);
        assert_eq!(ranges(3 * WINDOW), vec![0..3 * WINDOW]);
        let n = 10 * WINDOW + 7;
        assert_eq!(ranges(n), vec![0..WINDOW, n / 2 - WINDOW / 2..n / 2 + WINDOW / 2, n - WINDOW..n]);
    }

    #[test]
    fn chunking_does_not_change_the_probe() {
        let bytes: Vec<u8> = (0..1_000_003u32).map(|i| (i * 7 + i / 13) as u8).collect();
        let whole = of(&bytes);
        for chunk in [1usize, 4096, 65_537, 333_333] {
            let mut c = ProbeCollector::new(bytes.len() as u64);
            for (i, part) in bytes.chunks(chunk).enumerate() {
                c.feed((i * chunk) as u64, part);
            }
            assert_eq!(c.finish(), whole, "chunks of {chunk}");
        }
        // The probe of a small file is its SHA-1.
        assert_eq!(of(b"abc").as_str(), "a9993e364706816aba3e25717850c26c9cd0d89d");
        // Bytes outside the windows do not count; bytes inside do.
        let mut other = bytes.clone();
        other[200_000] ^= 1;
        assert_eq!(of(&other), whole);
        other[10] ^= 1;
        assert_ne!(of(&other), whole);
    }
}
