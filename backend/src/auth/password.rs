//! Argon2id password hashes. Hashing costs tens of milliseconds of CPU and 19 MiB by design,
//! so it never runs on an async worker that serves other requests: the routes run these
//! functions in a slot of the app's [`HashGate`](super::gate::HashGate), which bounds how
//! many run at once; `shardrop user-add` makes one hash with [`hash`].

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

use super::AuthError;

/// Argon2id with the crate's defaults (19 MiB, 2 passes, 1 lane): OWASP's minimum.
fn argon2() -> Argon2<'static> {
    Argon2::default()
}

/// A PHC string (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`) of the password. Blocks.
pub fn hash_blocking(password: &str) -> Result<String, AuthError> {
    let salt = SaltString::generate(&mut OsRng);
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AuthError::Hashing(e.to_string()))
}

/// Whether `password` matches the stored PHC string. With no stored hash (no such user) it
/// still does a hash's work, so a login's time does not tell which usernames exist. Blocks.
pub fn verify_blocking(password: &str, stored: Option<&str>) -> Result<bool, AuthError> {
    let Some(stored) = stored else {
        let salt = SaltString::generate(&mut OsRng);
        let _ = argon2().hash_password(password.as_bytes(), &salt);
        return Ok(false);
    };
    let parsed = PasswordHash::new(stored).map_err(|e| AuthError::Hashing(e.to_string()))?;
    Ok(argon2().verify_password(password.as_bytes(), &parsed).is_ok())
}

/// [`hash_blocking`] on the blocking pool, outside any gate: for one-off hashes on the
/// server's command line, never for a request.
pub async fn hash(password: String) -> Result<String, AuthError> {
    tokio::task::spawn_blocking(move || hash_blocking(&password))
        .await
        .map_err(|e| AuthError::Hashing(e.to_string()))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_differ_per_salt() {
        let a = hash("correct horse".into()).await.unwrap();
        let b = hash("correct horse".into()).await.unwrap();
        assert!(a.starts_with("$argon2id$"), "{a}");
        assert_ne!(a, b, "a fresh salt each time");
        assert!(verify_blocking("correct horse", Some(&a)).unwrap());
        assert!(!verify_blocking("correct horsf", Some(&a)).unwrap());
        assert!(!verify_blocking("correct horse", None).unwrap());
    }
}
