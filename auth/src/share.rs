//! Share links: the secret a link carries and the ids the store keeps.
//!
//! A share link lets another signed-in user watch one session. Its token
//! is 32 random bytes from the operating system, written base64url without
//! padding, and travels only in the link's fragment (`/#share=TOKEN`, which
//! browsers never send to a server) and then in an HttpOnly cookie; the
//! store keeps its sha256 ([`ShareTokenHash`]), so a leaked store table
//! opens nothing. As for login cookies (`login.rs`), sha256 without salt or
//! stretching is right for a uniformly random secret. A share's
//! [`ShareId`], 16 random bytes, is public: the owner lists and revokes by
//! it, and tickets carry it so hosts can recheck the share.

use std::fmt;
use std::str::FromStr;

use crate::secret::Secret;

/// The cookie a redeemed link leaves is this followed by the session's id
/// (32 lowercase hex digits), so each shared session has its own.
pub const COOKIE_PREFIX: &str = "thinline_share_";

/// The name of the cookie that holds the token of a share of `session`.
pub fn cookie_name(session: &[u8; 16]) -> String {
    format!("{COOKIE_PREFIX}{}", hex(session))
}

/// A link's secret (`crate::secret`: 32 random bytes, base64url without
/// padding, 43 characters). `Debug` shows its hash, never the secret.
#[derive(Clone)]
pub struct ShareToken(Secret);

impl ShareToken {
    pub fn generate() -> ShareToken {
        ShareToken(Secret::generate())
    }

    /// Reads a token from a link or a cookie; `None` unless it is exactly
    /// the form `generate` writes (each secret has one text, and so one
    /// hash).
    pub fn parse(text: &str) -> Option<ShareToken> {
        Secret::parse(text).map(ShareToken)
    }

    /// The text a link's fragment and the cookie carry.
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    /// What the store keeps and looks the share up by.
    pub fn hash(&self) -> ShareTokenHash {
        ShareTokenHash(self.0.digest())
    }
}

impl fmt::Debug for ShareToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShareToken")
            .field("hash", &self.hash())
            .finish_non_exhaustive()
    }
}

/// sha256 of a link's secret. Not a secret; `Display` writes 64 lowercase
/// hex digits, as the store keeps it.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ShareTokenHash(pub [u8; 32]);

impl fmt::Display for ShareTokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex(&self.0))
    }
}

impl fmt::Debug for ShareTokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ShareTokenHash({self})")
    }
}

/// A share's public id: 16 random bytes, written as 32 lowercase hex
/// digits (`Display`, `FromStr`, which takes nothing else).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct ShareId(pub [u8; 16]);

impl ShareId {
    pub fn generate() -> ShareId {
        let mut id = [0u8; 16];
        #[allow(clippy::expect_used)]
        getrandom::fill(&mut id).expect("the operating system's random number generator failed");
        ShareId(id)
    }
}

impl fmt::Display for ShareId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex(&self.0))
    }
}

impl fmt::Debug for ShareId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ShareId({self})")
    }
}

/// A share id that is not 32 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a share id is 32 lowercase hex digits")]
pub struct ShareIdError;

impl FromStr for ShareId {
    type Err = ShareIdError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        fn digit(c: u8) -> Result<u8, ShareIdError> {
            match c {
                b'0'..=b'9' => Ok(c - b'0'),
                b'a'..=b'f' => Ok(c - b'a' + 10),
                _ => Err(ShareIdError),
            }
        }
        let text = text.as_bytes();
        if text.len() != 32 {
            return Err(ShareIdError);
        }
        let mut id = [0u8; 16];
        for (byte, pair) in id.iter_mut().zip(text.chunks_exact(2)) {
            *byte = digit(pair[0])? << 4 | digit(pair[1])?;
        }
        Ok(ShareId(id))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_shows_the_secret() {
        let token = ShareToken::generate();
        let shown = format!("{token:?}");
        assert!(!shown.contains(token.as_str()), "{shown}");
        assert!(shown.contains(&token.hash().to_string()), "{shown}");
    }

    #[test]
    fn ids_round_trip_through_lowercase_hex_only() {
        let id = ShareId::generate();
        let text = id.to_string();
        assert_eq!(text.len(), 32);
        assert_eq!(text.parse::<ShareId>(), Ok(id));
        assert_ne!(ShareId::generate(), id);
        for bad in [
            String::new(),
            text[..31].to_owned(),
            format!("{text}0"),
            "ABCDEF0123456789abcdef0123456789".to_owned(),
            format!("g{}", &text[1..]),
            format!("é{}", &text[2..]),
        ] {
            assert_eq!(bad.parse::<ShareId>(), Err(ShareIdError), "{bad:?}");
        }
    }

    #[test]
    fn each_session_has_its_own_cookie() {
        assert_eq!(
            cookie_name(&[0xab; 16]),
            "thinline_share_abababababababababababababababab"
        );
    }
}
