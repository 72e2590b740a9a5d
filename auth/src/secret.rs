//! A 32-byte random secret in its one text form: what a sign-in cookie and
//! a share link carry. The text is base64url without padding (43
//! characters), and only the form `generate` writes parses back (the
//! decoder refuses stray bits), so each secret has one text and one
//! digest. What is kept of it anywhere is its sha256 (`digest`): right
//! without salt or stretching, because the secret is uniformly random, not
//! a guessable password.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest as _, Sha256};

/// Length of the text form: 32 bytes in unpadded base64.
pub(crate) const TEXT_LEN: usize = 43;

#[derive(Clone)]
pub(crate) struct Secret {
    text: String,
    bytes: [u8; 32],
}

impl Secret {
    /// 32 bytes from the operating system's generator.
    pub(crate) fn generate() -> Secret {
        let mut bytes = [0u8; 32];
        // Failing to read the OS generator means the machine cannot do any
        // cryptography at all; there is nothing sensible to fall back on.
        #[allow(clippy::expect_used)]
        getrandom::fill(&mut bytes).expect("the operating system's random number generator failed");
        Secret {
            text: URL_SAFE_NO_PAD.encode(bytes),
            bytes,
        }
    }

    /// `None` unless `text` is exactly the form `generate` writes.
    pub(crate) fn parse(text: &str) -> Option<Secret> {
        if text.len() != TEXT_LEN {
            return None;
        }
        let decoded = URL_SAFE_NO_PAD.decode(text).ok()?;
        let bytes = <[u8; 32]>::try_from(decoded.as_slice()).ok()?;
        Some(Secret {
            text: text.to_owned(),
            bytes,
        })
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.text
    }

    /// sha256 of the secret's bytes.
    pub(crate) fn digest(&self) -> [u8; 32] {
        Sha256::digest(self.bytes).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_secret_parses_back_to_the_same_digest() {
        let secret = Secret::generate();
        assert_eq!(secret.as_str().len(), TEXT_LEN);
        let parsed = Secret::parse(secret.as_str()).unwrap();
        assert_eq!(parsed.as_str(), secret.as_str());
        assert_eq!(parsed.digest(), secret.digest());
        assert_ne!(Secret::generate().digest(), secret.digest());
    }

    #[test]
    fn the_digest_is_the_sha256_of_the_bytes() {
        // 32 zero bytes; sha256 of them is a published test value, as the
        // login id and the share hash write it.
        let zeros = Secret::parse("AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA").unwrap();
        let hash = crate::share::ShareToken::parse(zeros.as_str())
            .unwrap()
            .hash();
        let id = crate::login::LoginToken::parse(zeros.as_str())
            .unwrap()
            .id();
        let expected = "66687aadf862bd776c8fc18b8e9f8e20089714856ee233b3902a591d0d5f2925";
        assert_eq!(
            (hash.to_string(), id.to_string()),
            (expected.to_owned(), expected.to_owned())
        );
    }

    #[test]
    fn anything_but_the_canonical_form_is_refused() {
        let secret = Secret::generate();
        let text = secret.as_str();
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
                assert!(Secret::parse(&bad).is_none(), "{bad:?} parsed");
            }
        }
    }
}
