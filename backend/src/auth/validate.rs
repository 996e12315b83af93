//! Checks of account input that need no I/O: usernames, passwords, bearer tokens.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use sha2::{Digest, Sha256};

use super::AuthError;

const MIN_USERNAME: usize = 3;
const MAX_USERNAME: usize = 64;
/// NIST SP 800-63B's floor for a chosen password.
const MIN_PASSWORD: usize = 8;
/// Argon2 takes any length; this only bounds the work one request can ask for.
const MAX_PASSWORD: usize = 1024;
/// Tokens carry this prefix, so a leaked one is easy to recognise (secret scanners, logs).
const TOKEN_PREFIX: &str = "sd_";
/// Random bytes in a token: 256 bits, beyond guessing.
const TOKEN_BYTES: usize = 32;

/// The username as stored (lower case), or why it is refused.
pub fn username(name: &str) -> Result<String, AuthError> {
    let name = name.to_ascii_lowercase();
    if !(MIN_USERNAME..=MAX_USERNAME).contains(&name.len()) {
        return Err(AuthError::InvalidUsername("must be 3 to 64 characters"));
    }
    let allowed = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-');
    if !name.bytes().all(allowed) {
        return Err(AuthError::InvalidUsername("may hold only a-z, 0-9, '.', '_' and '-'"));
    }
    if !name.as_bytes()[0].is_ascii_alphanumeric() {
        return Err(AuthError::InvalidUsername("must start with a letter or a digit"));
    }
    Ok(name)
}

/// Counted in characters, as the OpenAPI document's `minLength`/`maxLength` count them.
pub fn password(password: &str) -> Result<(), AuthError> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD {
        return Err(AuthError::InvalidPassword("must be at least 8 characters"));
    }
    if chars > MAX_PASSWORD {
        return Err(AuthError::InvalidPassword("must be at most 1024 characters"));
    }
    Ok(())
}

/// A fresh session token.
pub fn new_token() -> String {
    format!("{TOKEN_PREFIX}{}", URL_SAFE_NO_PAD.encode(rand::random::<[u8; TOKEN_BYTES]>()))
}

/// What SQL keeps of a token.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// The token of an `Authorization` header value, if it is `Bearer <token>` with a token of
/// the shape this server hands out (anything else cannot name a session).
pub fn bearer(header: &str) -> Option<&str> {
    let (scheme, token) = header.split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim_matches(' ');
    let body = token.strip_prefix(TOKEN_PREFIX)?;
    let shaped = body.len() == URL_SAFE_NO_PAD.encode([0u8; TOKEN_BYTES]).len()
        && body.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    shaped.then_some(token)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn usernames() {
        assert_eq!(username("Alice").unwrap(), "alice");
        assert_eq!(username("a.b_c-9").unwrap(), "a.b_c-9");
        for bad in ["ab", "", "-ab", ".ab", "a b", "ålice", "al/ce", &"a".repeat(65)] {
            assert!(username(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn passwords() {
        assert!(password("12345678").is_ok());
        assert!(password("1234567").is_err());
        assert!(password(&"x".repeat(1025)).is_err());
        assert!(password(&"ü".repeat(1024)).is_ok(), "characters, not bytes");
        assert!(password("üüüüüüü").is_err());
    }

    #[test]
    fn bearer_takes_only_our_tokens() {
        let t = new_token();
        assert_eq!(bearer(&format!("Bearer {t}")), Some(t.as_str()));
        assert_eq!(bearer(&format!("bearer {t}")), Some(t.as_str()));
        assert_eq!(bearer(&format!("Basic {t}")), None);
        assert_eq!(bearer("Bearer sd_short"), None);
        assert_eq!(bearer(&format!("Bearer {}", &t[3..])), None);
        assert_eq!(bearer("Bearer"), None);
    }

    proptest! {
        /// Any string: a verdict, never a panic; an accepted name is stored in the shape
        /// the OpenAPI document gives, and accepting is the same as that shape.
        #[test]
        fn username_verdict_matches_the_documented_shape(s in "\\PC{0,80}|[A-Za-z0-9._-]{0,70}") {
            let shaped = {
                let b = s.as_bytes();
                (3..=64).contains(&b.len())
                    && b[0].is_ascii_alphanumeric()
                    && b.iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b'-'))
            };
            match username(&s) {
                Ok(name) => {
                    prop_assert!(shaped);
                    prop_assert_eq!(name, s.to_ascii_lowercase());
                }
                Err(_) => prop_assert!(!shaped),
            }
        }

        #[test]
        fn bearer_never_panics_and_round_trips(s in "\\PC{0,120}", pad in " {0,3}") {
            let _ = bearer(&s);
            let t = new_token();
            let padded = format!("Bearer {pad}{t}{pad}");
            prop_assert_eq!(bearer(&padded), Some(t.as_str()));
            let extended = format!("Bearer {t}{s}");
            prop_assert_eq!(bearer(&extended).is_some(), s.trim_matches(' ').is_empty());
        }
    }
}
