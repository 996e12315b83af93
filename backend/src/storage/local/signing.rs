//! HMAC-signed URLs for the local store: the stand-in for S3's presigned requests.
//!
//! Everything a request may do is in its query string (key, upload, part number, exact
//! size, SHA-1, content type, expiry) and the signature covers all of it, so a client can
//! neither enlarge a part, swap its bytes, retarget it, nor stretch its lifetime. The MAC
//! input is a domain tag then every field length-prefixed, so no two field lists can ever
//! produce the same bytes. Verification is constant-time (`Mac::verify_slice`).

use hmac::{Hmac, Mac};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::storage::StorageError;

type HmacSha256 = Hmac<Sha256>;

/// Query values keep only RFC 3986's unreserved characters unescaped.
const QUERY_VALUE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');

/// The signed query of a part PUT (`/api/v1/local/parts?…`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartQuery {
    pub key: String,
    /// Absent for a single PUT of a whole object: such a URL is refused (every upload is
    /// multipart, so its URLs die with it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub upload: Option<String>,
    pub part: u32,
    pub size: u64,
    /// Base64 SHA-1 of the part's bytes.
    pub sha1: String,
    #[serde(rename = "type")]
    pub content_type: String,
    /// Unix seconds after which the URL is refused.
    pub expires: i64,
    #[serde(default)]
    pub sig: String,
}

/// The signed query of a download (`/api/v1/local/objects?…`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectQuery {
    pub key: String,
    /// File name for `Content-Disposition`.
    pub name: String,
    #[serde(rename = "type")]
    pub content_type: String,
    pub expires: i64,
    #[serde(default)]
    pub sig: String,
}

/// Why a signed URL was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    #[error("the request signature does not match")]
    SignatureInvalid,
    #[error("Request has expired")]
    Expired,
}

/// Signs and verifies the local store's URLs with one secret.
#[derive(Clone)]
pub struct Signer {
    mac: HmacSha256,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Signer(..)")
    }
}

impl Signer {
    pub fn new(secret: &[u8]) -> Result<Self, StorageError> {
        if secret.len() < 16 {
            return Err(StorageError::Other("the local store's secret must be at least 16 bytes".into()));
        }
        let mac = HmacSha256::new_from_slice(secret).map_err(|e| StorageError::Other(e.to_string()))?;
        Ok(Self { mac })
    }

    fn part_mac(&self, q: &PartQuery) -> HmacSha256 {
        let (part, size, expires) = (q.part.to_string(), q.size.to_string(), q.expires.to_string());
        let kind = if q.upload.is_some() { "multipart" } else { "single" };
        let upload = q.upload.as_deref().unwrap_or("");
        let fields = [kind, &q.key, upload, &part, &size, &q.sha1, &q.content_type, &expires];
        self.mac_of("shardrop-local-part-v1", &fields)
    }

    fn object_mac(&self, q: &ObjectQuery) -> HmacSha256 {
        let expires = q.expires.to_string();
        self.mac_of("shardrop-local-object-v1", &[&q.key, &q.name, &q.content_type, &expires])
    }

    fn mac_of(&self, tag: &str, fields: &[&str]) -> HmacSha256 {
        let mut mac = self.mac.clone();
        for f in std::iter::once(tag).chain(fields.iter().copied()) {
            mac.update(&(f.len() as u64).to_be_bytes());
            mac.update(f.as_bytes());
        }
        mac
    }

    /// Fills in `q.sig`.
    pub fn sign_part(&self, q: &mut PartQuery) {
        q.sig = hex::encode(self.part_mac(q).finalize().into_bytes());
    }

    pub fn sign_object(&self, q: &mut ObjectQuery) {
        q.sig = hex::encode(self.object_mac(q).finalize().into_bytes());
    }

    /// Checks the signature first (so a forged expiry reads as forged), then the expiry.
    pub fn verify_part(&self, q: &PartQuery, now: i64) -> Result<(), AccessError> {
        verify(self.part_mac(q), &q.sig)?;
        check_expiry(q.expires, now)
    }

    pub fn verify_object(&self, q: &ObjectQuery, now: i64) -> Result<(), AccessError> {
        verify(self.object_mac(q), &q.sig)?;
        check_expiry(q.expires, now)
    }
}

fn verify(mac: HmacSha256, sig: &str) -> Result<(), AccessError> {
    let sig = hex::decode(sig).map_err(|_| AccessError::SignatureInvalid)?;
    mac.verify_slice(&sig).map_err(|_| AccessError::SignatureInvalid)
}

fn check_expiry(expires: i64, now: i64) -> Result<(), AccessError> {
    if now > expires {
        Err(AccessError::Expired)
    } else {
        Ok(())
    }
}

/// A part PUT whose URL verified: the only way to reach [`LocalStore::put_part`].
#[derive(Debug)]
pub struct PartGrant(pub(super) PartQuery);

/// A download whose URL verified.
#[derive(Debug)]
pub struct ObjectGrant(pub(super) ObjectQuery);

impl PartGrant {
    pub fn query(&self) -> &PartQuery {
        &self.0
    }
}

impl ObjectGrant {
    pub fn query(&self) -> &ObjectQuery {
        &self.0
    }
}

/// `base?k=v&…` with every value percent-encoded.
pub fn url_with_query(base: &str, pairs: &[(&str, &str)]) -> String {
    let mut url = String::from(base);
    for (i, (k, v)) in pairs.iter().enumerate() {
        url.push(if i == 0 { '?' } else { '&' });
        url.push_str(k);
        url.push('=');
        url.extend(utf8_percent_encode(v, QUERY_VALUE));
    }
    url
}

impl PartQuery {
    pub fn to_url(&self, base: &str) -> String {
        let (part, size, expires) = (self.part.to_string(), self.size.to_string(), self.expires.to_string());
        let mut pairs = vec![("key", self.key.as_str())];
        if let Some(upload) = &self.upload {
            pairs.push(("upload", upload));
        }
        pairs.extend([
            ("part", part.as_str()),
            ("size", &size),
            ("sha1", &self.sha1),
            ("type", &self.content_type),
            ("expires", &expires),
            ("sig", &self.sig),
        ]);
        url_with_query(base, &pairs)
    }
}

impl ObjectQuery {
    pub fn to_url(&self, base: &str) -> String {
        let expires = self.expires.to_string();
        url_with_query(
            base,
            &[
                ("key", &self.key),
                ("name", &self.name),
                ("type", &self.content_type),
                ("expires", &expires),
                ("sig", &self.sig),
            ],
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part() -> PartQuery {
        PartQuery {
            key: "p/objects/1".into(),
            upload: Some("ab".repeat(16)),
            part: 3,
            size: 10,
            sha1: "2jmj7l5rSw0yVb/vlWAYkK/YBwk=".into(),
            content_type: "text/plain".into(),
            expires: 1_000,
            sig: String::new(),
        }
    }

    #[test]
    fn any_changed_field_breaks_the_signature() {
        let s = Signer::new(b"0123456789abcdef").unwrap();
        let mut q = part();
        s.sign_part(&mut q);
        assert_eq!(s.verify_part(&q, 1_000), Ok(()));
        assert_eq!(s.verify_part(&q, 1_001), Err(AccessError::Expired));
        let changes: [fn(&mut PartQuery); 7] = [
            |q| q.key.push('x'),
            |q| q.upload = None,
            |q| q.part = 4,
            |q| q.size = 11,
            |q| q.sha1 = "3jmj7l5rSw0yVb/vlWAYkK/YBwk=".into(),
            |q| q.content_type = "text/html".into(),
            |q| q.expires = 2_000,
        ];
        for change in changes {
            let mut t = q.clone();
            change(&mut t);
            assert_eq!(s.verify_part(&t, 0), Err(AccessError::SignatureInvalid), "{t:?}");
        }
        let other = Signer::new(b"another secret!!").unwrap();
        assert_eq!(other.verify_part(&q, 0), Err(AccessError::SignatureInvalid));
        q.sig = "zz".into();
        assert_eq!(s.verify_part(&q, 0), Err(AccessError::SignatureInvalid));
    }

    #[test]
    fn urls_round_trip_through_the_query_parser() {
        let s = Signer::new(b"0123456789abcdef").unwrap();
        let mut q = part();
        q.content_type = "text/plain; charset=utf-8".into();
        s.sign_part(&mut q);
        let url = q.to_url("http://h/api/v1/local/parts");
        let query = url.split_once('?').unwrap().1;
        let back: PartQuery = actix_web::web::Query::<PartQuery>::from_query(query).unwrap().into_inner();
        assert_eq!(back, q);
        assert!(!query.contains('/') && !query.contains('+') && !query.contains(' '));
    }

    #[test]
    fn object_urls_are_signed_too() {
        let s = Signer::new(b"0123456789abcdef").unwrap();
        let mut q = ObjectQuery {
            key: "k".into(),
            name: "a&b=c.txt".into(),
            content_type: "text/plain".into(),
            expires: 5,
            sig: String::new(),
        };
        s.sign_object(&mut q);
        let query = q.to_url("/o").split_once('?').unwrap().1.to_owned();
        let back: ObjectQuery = actix_web::web::Query::<ObjectQuery>::from_query(&query).unwrap().into_inner();
        assert_eq!(s.verify_object(&back, 5), Ok(()));
        let mut t = back.clone();
        t.name = "evil.html".into();
        assert_eq!(s.verify_object(&t, 5), Err(AccessError::SignatureInvalid));
    }

    #[test]
    fn refuses_a_short_secret() {
        assert!(Signer::new(b"short").is_err());
    }
}
