//! Checks of client input that need no I/O.

use super::UploadError;

const MAX_NAME_BYTES: usize = 1024;
const MAX_CONTENT_TYPE: usize = 255;
const MAX_ETAG: usize = 256;
pub const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";

pub fn name(name: &str) -> Result<(), UploadError> {
    if name.is_empty() {
        return Err(UploadError::InvalidName("must not be empty"));
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(UploadError::InvalidName("must be at most 1024 bytes of UTF-8"));
    }
    if name.chars().any(char::is_control) {
        return Err(UploadError::InvalidName("must not contain control characters"));
    }
    Ok(())
}

pub fn content_type(ct: Option<&str>) -> Result<String, UploadError> {
    let Some(ct) = ct.filter(|c| !c.is_empty()) else { return Ok(DEFAULT_CONTENT_TYPE.to_owned()) };
    let printable = ct.bytes().all(|b| b == b' ' || b.is_ascii_graphic());
    if ct.len() > MAX_CONTENT_TYPE || !printable || !ct.contains('/') {
        return Err(UploadError::InvalidContentType);
    }
    Ok(ct.to_owned())
}

pub fn etag(etag: &str) -> Result<(), UploadError> {
    if etag.is_empty() || etag.len() > MAX_ETAG || !etag.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(UploadError::InvalidEtag);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(name("holiday.mp4").is_ok());
        assert!(name("photos/2026/ü €.jpg").is_ok());
        assert!(name("").is_err());
        assert!(name("a\nb").is_err());
        assert!(name("a\0b").is_err());
        assert!(name(&"x".repeat(1025)).is_err());
    }

    #[test]
    fn content_types() {
        assert_eq!(content_type(None).unwrap(), DEFAULT_CONTENT_TYPE);
        assert_eq!(content_type(Some("")).unwrap(), DEFAULT_CONTENT_TYPE);
        assert_eq!(content_type(Some("text/plain; charset=utf-8")).unwrap(), "text/plain; charset=utf-8");
        assert!(content_type(Some("text")).is_err());
        assert!(content_type(Some("text/plain\r\nX: y")).is_err());
    }

    #[test]
    fn etags() {
        assert!(etag("\"9b2cf535f27731c974343645a3985328\"").is_ok());
        assert!(etag("").is_err());
        assert!(etag("a b").is_err());
    }
}
