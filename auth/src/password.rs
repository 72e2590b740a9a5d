//! Password hashes for accounts kept in the store.
//!
//! argon2id is the algorithm OWASP recommends first: it is memory-hard, so a
//! stolen table of hashes cannot be cracked cheaply on GPUs or ASICs. We use
//! the `argon2` crate's defaults (m=19456 KiB, t=2, p=1), which are OWASP's
//! minimum; the parameters travel inside each PHC string, so raising them
//! later still verifies the old hashes.

use argon2::Argon2;
use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};

/// The fewest characters a new password may have.
pub const MIN_LEN: usize = 8;

/// The most bytes a password may have. argon2 itself takes any length, but
/// an unbounded form field is a free way to make the server hash megabytes.
pub const MAX_LEN: usize = 1024;

/// A PHC string of the default parameters whose password nobody types, so
/// that `verify_dummy` does exactly the work of a real check.
/// (Its password is "thinline dummy password"; a test proves it parses.)
const DUMMY_PHC: &str = "$argon2id$v=19$m=19456,t=2,p=1$Cr0ut6sUDlQY8smQfrnlEw$T1NTAAspp00UGXcS+cGIoLcpmbO+HuU+8Ok/UYiSfk8";

/// Why a password cannot be hashed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PasswordError {
    #[error("the password is too short: use at least {MIN_LEN} characters")]
    TooShort,
    #[error("the password is too long: use at most {MAX_LEN} bytes")]
    TooLong,
    /// argon2 or the random number generator for the salt failed.
    #[error("could not hash the password: {0}")]
    Hashing(String),
}

/// Hashes `password` to an argon2id PHC string with a fresh random salt.
pub fn hash(password: &str) -> Result<String, PasswordError> {
    if password.chars().count() < MIN_LEN {
        return Err(PasswordError::TooShort);
    }
    if password.len() > MAX_LEN {
        return Err(PasswordError::TooLong);
    }
    Argon2::default()
        .hash_password(password.as_bytes())
        .map(|phc| phc.to_string())
        .map_err(|e| PasswordError::Hashing(e.to_string()))
}

/// Whether `password` matches the PHC string `phc`. False on any mismatch,
/// on a hash that does not parse and on a password longer than `MAX_LEN`.
/// The comparison of the hash outputs is constant-time.
pub fn verify(password: &str, phc: &str) -> bool {
    if password.len() > MAX_LEN {
        return false;
    }
    Argon2::default()
        .verify_password(password.as_bytes(), phc)
        .is_ok()
}

/// Does the work of one `verify` and throws the answer away. Call it when the
/// user does not exist, so that how long a refusal takes does not tell an
/// attacker which user names are real.
pub fn verify_dummy(password: &str) {
    std::hint::black_box(verify(password, DUMMY_PHC));
}

#[cfg(test)]
mod tests;
