//! Checks of client input that need no I/O.

use super::UploadError;

const MAX_NAME_BYTES: usize = 1024;
const MAX_CONTENT_TYPE: usize = 255;
const MAX_ETAG: usize = 256;
pub const DEFAULT_CONTENT_TYPE: &str = "application/octet-stream";

/// The Unicode bidirectional controls: the embeddings, overrides and isolates, and the
/// implicit marks. Shown, they reorder the text around them, so `invoice\u{202E}fdp.exe`
/// reads as `invoiceexe.pdf`. They are format characters, not control characters, so
/// [`char::is_control`] lets them through. (The schema of `name` in `uploads/mod.rs`
/// spells the same set.)
pub const BIDI_CONTROLS: [char; 12] = [
    '\u{061C}', // ARABIC LETTER MARK
    '\u{200E}', // LEFT-TO-RIGHT MARK
    '\u{200F}', // RIGHT-TO-LEFT MARK
    '\u{202A}', // LEFT-TO-RIGHT EMBEDDING
    '\u{202B}', // RIGHT-TO-LEFT EMBEDDING
    '\u{202C}', // POP DIRECTIONAL FORMATTING
    '\u{202D}', // LEFT-TO-RIGHT OVERRIDE
    '\u{202E}', // RIGHT-TO-LEFT OVERRIDE
    '\u{2066}', // LEFT-TO-RIGHT ISOLATE
    '\u{2067}', // RIGHT-TO-LEFT ISOLATE
    '\u{2068}', // FIRST STRONG ISOLATE
    '\u{2069}', // POP DIRECTIONAL ISOLATE
];

/// A file's name: what its owner, and anyone they share it with, reads and trusts.
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
    if let Some(c) = name.chars().find(|c| BIDI_CONTROLS.contains(c)) {
        return Err(UploadError::BidiControlInName(c));
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

// Lenient whole numbers (`172.0`) are read by the wire types themselves.
pub fn etag(etag: &str) -> Result<(), UploadError> {
    if etag.is_empty() || etag.len() > MAX_ETAG || !etag.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(UploadError::InvalidEtag);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    // The lenient whole numbers of the wire types (`shardrop_engine::protocol::de`), tested
    // here where the requests are read.
    use serde::Deserialize;
    use shardrop_engine::protocol::de::{integer, opt_integer};

    /// 2^53 - 1: the largest whole number that a float, and so JavaScript, holds exactly.
    const MAX_SAFE_INTEGER: f64 = 9_007_199_254_740_991.0;

    #[test]
    fn names() {
        assert!(name("holiday.mp4").is_ok());
        assert!(name("photos/2026/ü €.jpg").is_ok());
        assert!(name("").is_err());
        assert!(name("a\nb").is_err());
        assert!(name("a\0b").is_err());
        assert!(name(&"x".repeat(1025)).is_err());
        // Right-to-left text itself is fine, and so are other invisible format characters.
        assert!(name("\u{5E9}\u{5DC}\u{5D5}\u{5DD}.txt").is_ok());
        assert!(name("a\u{200D}b\u{FEFF}.txt").is_ok());
    }

    #[test]
    fn names_with_bidi_controls_are_refused_naming_the_character() {
        let all = ('\u{202A}'..='\u{202E}').chain('\u{2066}'..='\u{2069}').chain(['\u{200E}', '\u{200F}', '\u{061C}']);
        for c in all {
            let e = name(&format!("invoice{c}fdp.exe")).unwrap_err();
            assert!(matches!(e, UploadError::BidiControlInName(found) if found == c), "{c:?}: {e:?}");
            assert!(e.to_string().contains(&format!("U+{:04X}", u32::from(c))), "{e}");
        }
        assert_eq!(
            name("invoice\u{202E}fdp.exe").unwrap_err().to_string(),
            "name: must not contain the bidirectional control U+202E (it reorders how the name reads)"
        );
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
    fn integers_may_have_a_zero_fraction() {
        #[derive(Deserialize)]
        struct N {
            #[serde(deserialize_with = "integer")]
            n: u32,
            #[serde(default, deserialize_with = "opt_integer")]
            o: Option<i64>,
        }
        let parse = |s: &str| serde_json::from_str::<N>(s).map(|v| (v.n, v.o));
        assert_eq!(parse(r#"{"n": 7}"#).unwrap(), (7, None));
        assert_eq!(parse(r#"{"n": 7.0, "o": -2.0}"#).unwrap(), (7, Some(-2)));
        assert_eq!(parse(r#"{"n": 1e3, "o": null}"#).unwrap(), (1000, None));
        for bad in [
            r#"{"n": 7.5}"#,
            r#"{"n": -1}"#,
            r#"{"n": 4294967296}"#,
            r#"{"n": "7"}"#,
            r#"{"n": 1e300}"#,
            r#"{"n": 1, "o": -9223372036854775809}"#,
        ] {
            let e = parse(bad).unwrap_err();
            assert!(e.is_data(), "{bad}: {e}");
        }
    }

    #[test]
    fn etags() {
        assert!(etag("\"9b2cf535f27731c974343645a3985328\"").is_ok());
        assert!(etag("").is_err());
        assert!(etag("a b").is_err());
    }

    mod properties {
        //! The parsers of client input, over arbitrary input: a verdict, never a panic, and
        //! the verdict is exactly the documented rule.
        use super::*;
        use proptest::prelude::*;
        use shardrop_engine::{Md5B64, Sha1B64, Sha1Hex};

        proptest! {
            #[test]
            fn name_is_refused_exactly_when_the_rule_says(s in "\\PC{0,40}|[\\x00-\\x20a-z/]{0,10}|.{1020,1030}|[a-z.\\x{061B}-\\x{061D}\\x{200B}-\\x{2070}]{1,10}") {
                let refused = |c: char| c.is_control() || BIDI_CONTROLS.contains(&c);
                let ok = !s.is_empty() && s.len() <= 1024 && !s.chars().any(refused);
                prop_assert_eq!(name(&s).is_ok(), ok);
            }

            #[test]
            fn content_type_is_printable_ascii_with_a_slash(s in "\\PC{0,20}|[ -~]{0,300}") {
                let ok = s.is_empty() || (s.len() <= 255 && s.contains('/') && s.bytes().all(|b| (b' '..=b'~').contains(&b)));
                match content_type(Some(&s)) {
                    Ok(ct) => { prop_assert!(ok); prop_assert_eq!(ct, if s.is_empty() { DEFAULT_CONTENT_TYPE.to_owned() } else { s.clone() }); }
                    Err(_) => prop_assert!(!ok),
                }
            }

            #[test]
            fn etag_is_visible_ascii(s in "\\PC{0,20}|[!-~]{250,260}") {
                let ok = (1..=256).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_graphic());
                prop_assert_eq!(etag(&s).is_ok(), ok);
            }

            #[test]
            fn integers_round_trip_and_never_lose_precision(n in any::<u64>(), f in any::<f64>()) {
                #[derive(Deserialize)]
                struct N { #[serde(deserialize_with = "integer")] n: u64 }
                let exact: N = serde_json::from_str(&format!("{{\"n\": {n}}}")).unwrap();
                prop_assert_eq!(exact.n, n);
                // A float is taken only where it names exactly one whole number.
                if let Ok(v) = serde_json::from_str::<N>(&format!("{{\"n\": {f:?}}}")) {
                    prop_assert!(f.fract() == 0.0 && (0.0..=MAX_SAFE_INTEGER).contains(&f));
                    prop_assert_eq!(v.n as f64, f);
                }
            }

            #[test]
            fn digests_parse_exactly_their_spelling(bytes in proptest::collection::vec(any::<u8>(), 0..24), junk in "\\PC{0,44}") {
                use base64::Engine as _;
                let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
                prop_assert_eq!(Sha1B64::parse(&b64).is_ok(), bytes.len() == 20);
                prop_assert_eq!(Md5B64::parse(&b64).is_ok(), bytes.len() == 16);
                let hex = hex::encode(&bytes);
                prop_assert_eq!(Sha1Hex::parse(&hex).is_ok(), bytes.len() == 20);
                prop_assert_eq!(Sha1Hex::parse(&hex.to_uppercase()).map(|h| h.as_str().to_owned()).ok(), (bytes.len() == 20).then(|| hex.clone()));
                let junk_ok = junk.len() == 40 && junk.bytes().all(|b| b.is_ascii_hexdigit());
                prop_assert_eq!(Sha1Hex::parse(&junk).is_ok(), junk_ok);
                let _ = (Sha1B64::parse(&junk), Md5B64::parse(&junk));
            }
        }
    }
}
