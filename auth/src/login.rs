//! The sign-in cookie and the id the store keeps for it.
//!
//! The cookie holds 32 random bytes from the operating system; the store
//! keeps only their sha256 (`LoginId`), so a leaked store table cannot be
//! replayed as cookies. sha256 without salt or stretching is right here
//! because the secret is uniformly random, not a guessable password.

use std::fmt;
use std::str::FromStr;

use crate::secret::Secret;

/// The cookie's name.
pub const COOKIE_NAME: &str = "thinline_login";

/// The cookie secret (`crate::secret`: 32 random bytes, base64url without
/// padding). `Debug` shows its `LoginId`, never the secret.
#[derive(Clone)]
pub struct LoginToken(Secret);

impl LoginToken {
    pub fn generate() -> LoginToken {
        LoginToken(Secret::generate())
    }

    /// Reads a cookie value; `None` unless it is exactly the form `generate`
    /// writes (the decoder refuses stray bits, so each secret has one text).
    pub fn parse(text: &str) -> Option<LoginToken> {
        Secret::parse(text).map(LoginToken)
    }

    /// The cookie value.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    pub fn id(&self) -> LoginId {
        LoginId(self.0.digest())
    }
}

impl fmt::Debug for LoginToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LoginToken")
            .field("id", &self.id())
            .finish_non_exhaustive()
    }
}

/// sha256 of a login's secret: what the store keeps and tickets carry. Not a
/// secret. `Display`/`FromStr` use 64 lowercase hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct LoginId(pub [u8; 32]);

impl fmt::Display for LoginId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|byte| write!(f, "{byte:02x}"))
    }
}

impl fmt::Debug for LoginId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LoginId({self})")
    }
}

/// A login id that is not 64 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a login id is 64 lowercase hex digits")]
pub struct LoginIdError;

impl FromStr for LoginId {
    type Err = LoginIdError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        fn digit(c: u8) -> Result<u8, LoginIdError> {
            match c {
                b'0'..=b'9' => Ok(c - b'0'),
                b'a'..=b'f' => Ok(c - b'a' + 10),
                _ => Err(LoginIdError),
            }
        }
        let text = text.as_bytes();
        if text.len() != 64 {
            return Err(LoginIdError);
        }
        let mut id = [0u8; 32];
        for (byte, pair) in id.iter_mut().zip(text.chunks_exact(2)) {
            *byte = digit(pair[0])? << 4 | digit(pair[1])?;
        }
        Ok(LoginId(id))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_secret() {
        let token = LoginToken::generate();
        let shown = format!("{token:?}");
        assert!(!shown.contains(token.as_str()), "{shown}");
        assert!(shown.contains(&token.id().to_string()), "{shown}");
    }

    #[test]
    fn ids_round_trip_through_lowercase_hex_only() {
        let id = LoginToken::generate().id();
        let text = id.to_string();
        assert_eq!(text.len(), 64);
        assert!(
            text.bytes()
                .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c))
        );
        assert_eq!(text.parse::<LoginId>(), Ok(id));
        for bad in [
            String::new(),
            text[..63].to_owned(),
            format!("{text}0"),
            text.to_uppercase(),
            format!("g{}", &text[1..]),
            format!("é{}", &text[2..]),
        ] {
            if bad != text {
                assert_eq!(bad.parse::<LoginId>(), Err(LoginIdError), "{bad:?}");
            }
        }
    }
}
