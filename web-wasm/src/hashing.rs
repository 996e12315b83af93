//! SHA-1 in the two spellings the system uses, and a part's MD5, as validated newtypes.
//!
//! A whole file is named by the hex of its SHA-1 (what people and the API read); a part's
//! SHA-1 travels as base64 of the raw 20 bytes, because that is what S3's
//! `x-amz-checksum-sha1` carries. A part's MD5 travels as base64 of its 16 raw bytes, as
//! `Content-MD5` carries it: servers that ignore SHA-1 checksums (Ceph RGW 16) enforce that
//! one. Parsing at the edge means the rest of the code never sees a malformed digest.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use sha1::{Digest, Sha1};

/// A SHA-1 digest spelled as 40 lowercase hex characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Sha1Hex(String);

/// A SHA-1 digest spelled as base64 of its 20 raw bytes (28 characters).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Sha1B64(String);

/// An MD5 digest spelled as base64 of its 16 raw bytes (24 characters), as `Content-MD5`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(transparent)]
pub struct Md5B64(String);

/// Why a digest string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DigestError {
    #[error("a SHA-1 in hex is 40 hex characters")]
    BadHex,
    #[error("a SHA-1 in base64 is the 20 raw bytes in standard base64 (28 characters)")]
    BadBase64,
    #[error("an MD5 in base64 is the 16 raw bytes in standard base64 (24 characters)")]
    BadMd5,
}

impl Sha1Hex {
    /// Accepts either case; stores lowercase so equal digests compare equal.
    pub fn parse(s: &str) -> Result<Self, DigestError> {
        if s.len() != 40 || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(DigestError::BadHex);
        }
        Ok(Self(s.to_ascii_lowercase()))
    }
    pub fn from_digest(raw: &[u8; 20]) -> Self {
        Self(hex::encode(raw))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Sha1B64 {
    pub fn parse(s: &str) -> Result<Self, DigestError> {
        match STANDARD.decode(s) {
            Ok(raw) if raw.len() == 20 && s.len() == 28 => Ok(Self(s.to_owned())),
            _ => Err(DigestError::BadBase64),
        }
    }
    pub fn from_digest(raw: &[u8; 20]) -> Self {
        Self(STANDARD.encode(raw))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Md5B64 {
    pub fn parse(s: &str) -> Result<Self, DigestError> {
        match STANDARD.decode(s) {
            Ok(raw) if raw.len() == 16 && s.len() == 24 => Ok(Self(s.to_owned())),
            _ => Err(DigestError::BadMd5),
        }
    }
    pub fn from_digest(raw: &[u8; 16]) -> Self {
        Self(STANDARD.encode(raw))
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Sha1Hex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::fmt::Display for Sha1B64 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The raw SHA-1 of `bytes`.
pub fn sha1(bytes: &[u8]) -> [u8; 20] {
    Sha1::digest(bytes).into()
}

/// The raw MD5 of `bytes`.
pub fn md5(bytes: &[u8]) -> [u8; 16] {
    md5::Md5::digest(bytes).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_vectors() {
        // FIPS 180 test vectors.
        assert_eq!(Sha1Hex::from_digest(&sha1(b"")).as_str(), "da39a3ee5e6b4b0d3255bfef95601890afd80709");
        assert_eq!(Sha1Hex::from_digest(&sha1(b"abc")).as_str(), "a9993e364706816aba3e25717850c26c9cd0d89d");
        assert_eq!(Sha1B64::from_digest(&sha1(b"")).as_str(), "2jmj7l5rSw0yVb/vlWAYkK/YBwk=");
        // RFC 1321, as Content-MD5 spells it.
        assert_eq!(hex::encode(md5(b"abc")), "900150983cd24fb0d6963f7d28e17f72");
        assert_eq!(Md5B64::from_digest(&md5(b"")).as_str(), "1B2M2Y8AsgTpgAmY7PhCfg==");
    }

    #[test]
    fn parses_and_refuses() {
        let upper = "A9993E364706816ABA3E25717850C26C9CD0D89D";
        assert_eq!(Sha1Hex::parse(upper).unwrap().as_str(), upper.to_lowercase());
        assert_eq!(Sha1Hex::parse("a9993e"), Err(DigestError::BadHex));
        assert_eq!(Sha1Hex::parse(&"g".repeat(40)), Err(DigestError::BadHex));
        assert!(Sha1B64::parse("2jmj7l5rSw0yVb/vlWAYkK/YBwk=").is_ok());
        assert_eq!(Sha1B64::parse("2jmj7l5rSw0yVb/vlWAYkK/YBw=="), Err(DigestError::BadBase64));
        assert_eq!(Sha1B64::parse("not base64 at all!!!!!!!!!!!"), Err(DigestError::BadBase64));
        assert!(Md5B64::parse("1B2M2Y8AsgTpgAmY7PhCfg==").is_ok());
        assert_eq!(Md5B64::parse("2jmj7l5rSw0yVb/vlWAYkK/YBwk="), Err(DigestError::BadMd5));
    }
}
