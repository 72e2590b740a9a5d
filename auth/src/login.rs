//! The sign-in cookie and the id the store keeps for it.
//!
//! The cookie holds 32 random bytes from the operating system; the store
//! keeps only their sha256 (`LoginId`), so a leaked store table cannot be
//! replayed as cookies. sha256 without salt or stretching is right here
//! because the secret is uniformly random, not a guessable password.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest as _, Sha256};

/// The cookie's name.
pub const COOKIE_NAME: &str = "thinline_login";

/// Length of the text form: 32 bytes in unpadded base64.
const TOKEN_LEN: usize = 43;

/// The cookie secret: 32 random bytes, base64url without padding (43 chars).
/// `Debug` shows its `LoginId`, never the secret.
#[derive(Clone)]
pub struct LoginToken {
    text: String,
    secret: [u8; 32],
}

impl LoginToken {
    pub fn generate() -> LoginToken {
        let mut secret = [0u8; 32];
        // Failing to read the OS generator means the machine cannot do any
        // cryptography at all; there is nothing sensible to fall back on.
        #[allow(clippy::expect_used)]
        getrandom::fill(&mut secret)
            .expect("the operating system's random number generator failed");
        LoginToken {
            text: URL_SAFE_NO_PAD.encode(secret),
            secret,
        }
    }

    /// Reads a cookie value; `None` unless it is exactly the form `generate`
    /// writes (the decoder refuses stray bits, so each secret has one text).
    pub fn parse(text: &str) -> Option<LoginToken> {
        if text.len() != TOKEN_LEN {
            return None;
        }
        let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
        let secret = <[u8; 32]>::try_from(bytes.as_slice()).ok()?;
        Some(LoginToken {
            text: text.to_owned(),
            secret,
        })
    }

    /// The cookie value.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn id(&self) -> LoginId {
        LoginId(Sha256::digest(self.secret).into())
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
    fn a_token_parses_back_to_the_same_id() {
        let token = LoginToken::generate();
        assert_eq!(token.as_str().len(), TOKEN_LEN);
        let parsed = LoginToken::parse(token.as_str()).unwrap();
        assert_eq!(parsed.as_str(), token.as_str());
        assert_eq!(parsed.id(), token.id());
        assert_ne!(LoginToken::generate().id(), token.id());
    }

    #[test]
    fn the_id_is_the_sha256_of_the_secret() {
        // 32 zero bytes; sha256 of them is a published test value.
        let token = LoginToken::parse("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").unwrap();
        assert_eq!(
            token.id().to_string(),
            "66687aadf862bd776c8fc18b8e9f8e20089714856ee233b3902a591d0d5f2925"
        );
    }

    #[test]
    fn anything_but_the_canonical_form_is_refused() {
        let token = LoginToken::generate();
        let text = token.as_str();
        for bad in [
            String::new(),
            text[..42].to_owned(),
            format!("{text}A"),
            format!("{text}="),
            format!(" {}", &text[1..]),
            text.replace(['-', '_'], "+"),
            // The last character carries 4 unused bits; only zeros are valid.
            "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB".to_owned(),
            "ÄAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".to_owned(),
        ] {
            if bad != text {
                assert!(LoginToken::parse(&bad).is_none(), "{bad:?} parsed");
            }
        }
    }

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
