//! Device cookies: a browser's proof that it has signed in as a user before,
//! so that strangers guessing that user's password cannot lock them out.
//!
//! Counting attempts per user name alone lets anyone shut an account by
//! spending its budget with wrong passwords. OWASP's answer ("device
//! cookies", the "Slow Down Online Guessing Attacks with Device Cookies"
//! page) is a second lane: a successful sign-in leaves a signed cookie
//! naming the user and a random device id, and attempts that present it are
//! counted per device, apart from the strangers' lane (`limit`). An
//! attacker without the owner's cookie can spend only the strangers' lane.
//!
//! The text form is base64url (no padding) of a version byte, the user
//! name's length and bytes, the 16-byte device id, the issue time (unix ms,
//! big-endian u64) and an HMAC-SHA256 tag over all of those. HMAC rather
//! than the tickets' Ed25519 because only the directory ever checks one:
//! a symmetric tag is shorter and there is no public half to hand out. The
//! key is derived from the ticket key under a label of its own, so every
//! replica that can sign tickets can check device cookies without a new
//! secret to distribute, and neither kind of token can pass for the other.
//! Rotating the ticket key forgets every device, which only puts owners
//! back in the strangers' lane until they next sign in.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, KeyInit as _, Mac as _};
use sha2::Sha256;

use crate::ticket::TicketSigner;

/// The cookie's name.
pub const COOKIE_NAME: &str = "thinline_device";

/// How long a device stays known without signing in again: a year, so a
/// person who signs in monthly is never a stranger on their own laptop.
pub const LIFETIME_MS: u64 = 365 * 24 * 3600 * 1000;

/// The longest text form a verifier reads (it is ASCII, so bytes = chars);
/// the longest cookie `issue` can write, for a 255-byte name, is 418.
pub const MAX_COOKIE_LEN: usize = 512;

/// How far directory replicas' clocks may disagree about an issue time.
/// Generous, because it only matters against a cookie from the future.
const CLOCK_SKEW_MS: u64 = 5 * 60_000;

/// The first byte of every cookie, covered by the tag, so that a later
/// format can never be confused with this one.
const COOKIE_VERSION: u8 = 1;

/// What the device key is derived under. Changing it forgets every device.
const KEY_LABEL: &[u8] = b"thinline device cookie v1";

const TAG_LEN: usize = 32;
const ID_LEN: usize = 16;

type HmacSha256 = Hmac<Sha256>;

/// A browser that signed in: 128 random bits, unguessable, and only ever
/// believed when it comes inside a cookie whose tag checks. Not a secret on
/// its own (without the tag it proves nothing), but not logged either.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct DeviceId([u8; ID_LEN]);

impl DeviceId {
    /// A new id from the operating system's generator.
    pub fn generate() -> DeviceId {
        let mut id = [0u8; ID_LEN];
        // Failing to read the OS generator means the machine cannot do any
        // cryptography at all; there is nothing sensible to fall back on.
        #[allow(clippy::expect_used)]
        getrandom::fill(&mut id).expect("the operating system's random number generator failed");
        DeviceId(id)
    }

    pub fn from_bytes(bytes: [u8; ID_LEN]) -> DeviceId {
        DeviceId(bytes)
    }
}

impl fmt::Debug for DeviceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DeviceId(")?;
        self.0.iter().try_for_each(|byte| write!(f, "{byte:02x}"))?;
        f.write_str(")")
    }
}

/// A cookie made by [`DeviceKey::issue`]. `Debug` shows its id, never the
/// text, which is what a browser presents as proof.
#[derive(Clone)]
pub struct DeviceCookie {
    text: String,
    id: DeviceId,
}

impl DeviceCookie {
    /// The cookie value.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    pub fn id(&self) -> DeviceId {
        self.id
    }
}

impl fmt::Debug for DeviceCookie {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeviceCookie")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

/// Why a device cookie was refused (or could not be made). A refused cookie
/// is never an error to the person: the sign-in just counts as a stranger's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DeviceCookieError {
    #[error("the device cookie is longer than {MAX_COOKIE_LEN} characters")]
    TooLong,
    #[error("the device cookie is malformed")]
    Malformed,
    #[error("the device cookie has an unknown format version")]
    UnknownVersion,
    #[error("the device cookie is not signed by this directory's key")]
    BadSignature,
    #[error("the device cookie is for another user")]
    OtherUser,
    #[error("the device cookie has expired")]
    Expired,
    #[error("the device cookie was issued in the future; check the directories' clocks")]
    NotYetValid,
    #[error("a user name longer than 255 bytes cannot go in a device cookie")]
    UserTooLong,
}

/// The directory's key for device cookies. Its `Debug` shows nothing.
#[derive(Clone)]
pub struct DeviceKey {
    /// HMAC-SHA256 already keyed, cloned for each cookie (cheaper than
    /// keying again, which hashes the key's two pads).
    mac: HmacSha256,
}

impl DeviceKey {
    /// The key every replica with this ticket key derives:
    /// HMAC-SHA256(ticket seed, "thinline device cookie v1").
    pub fn from_ticket_signer(signer: &TicketSigner) -> DeviceKey {
        let derived = keyed(&signer.seed())
            .chain_update(KEY_LABEL)
            .finalize()
            .into_bytes();
        DeviceKey {
            mac: keyed(&derived),
        }
    }

    /// A cookie saying `id` signed in as `user` at `now_ms` (unix ms). Give
    /// a device that presented a valid cookie its old id, so its budget
    /// follows it; a new device gets [`DeviceId::generate`].
    pub fn issue(
        &self,
        user: &str,
        id: DeviceId,
        now_ms: u64,
    ) -> Result<DeviceCookie, DeviceCookieError> {
        let name_len = u8::try_from(user.len()).map_err(|_| DeviceCookieError::UserTooLong)?;
        let mut bytes = Vec::with_capacity(2 + user.len() + ID_LEN + 8 + TAG_LEN);
        bytes.push(COOKIE_VERSION);
        bytes.push(name_len);
        bytes.extend_from_slice(user.as_bytes());
        bytes.extend_from_slice(&id.0);
        bytes.extend_from_slice(&now_ms.to_be_bytes());
        let tag = self
            .mac
            .clone()
            .chain_update(&bytes)
            .finalize()
            .into_bytes();
        bytes.extend_from_slice(&tag);
        Ok(DeviceCookie {
            text: URL_SAFE_NO_PAD.encode(&bytes),
            id,
        })
    }

    /// The device id in `cookie` if this key made it for `user` and it is
    /// valid at `now_ms`. The tag is compared in constant time and checked
    /// before anything in the cookie is read; never panics, whatever the
    /// input.
    pub fn verify(
        &self,
        cookie: &str,
        user: &str,
        now_ms: u64,
    ) -> Result<DeviceId, DeviceCookieError> {
        if cookie.len() > MAX_COOKIE_LEN {
            return Err(DeviceCookieError::TooLong);
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(cookie)
            .map_err(|_| DeviceCookieError::Malformed)?;
        match bytes.first() {
            None => return Err(DeviceCookieError::Malformed),
            Some(&COOKIE_VERSION) => {}
            Some(_) => return Err(DeviceCookieError::UnknownVersion),
        }
        let Some(split) = bytes.len().checked_sub(TAG_LEN) else {
            return Err(DeviceCookieError::Malformed);
        };
        let (signed, tag) = bytes.split_at(split);
        self.mac
            .clone()
            .chain_update(signed)
            .verify_slice(tag)
            .map_err(|_| DeviceCookieError::BadSignature)?;
        let (name, id, issued_at_ms) = parse(signed).ok_or(DeviceCookieError::Malformed)?;
        if name != user.as_bytes() {
            return Err(DeviceCookieError::OtherUser);
        }
        if issued_at_ms > now_ms.saturating_add(CLOCK_SKEW_MS) {
            return Err(DeviceCookieError::NotYetValid);
        }
        if issued_at_ms.saturating_add(LIFETIME_MS) <= now_ms {
            return Err(DeviceCookieError::Expired);
        }
        Ok(id)
    }
}

impl fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("DeviceKey(..)")
    }
}

fn keyed(key: &[u8]) -> HmacSha256 {
    // HMAC hashes a long key and pads a short one: every length is valid.
    #[allow(clippy::expect_used)]
    HmacSha256::new_from_slice(key).expect("HMAC takes keys of any length")
}

/// The name, id and issue time of the signed bytes (version byte first),
/// or `None` unless they are exactly the form `issue` writes.
fn parse(signed: &[u8]) -> Option<(&[u8], DeviceId, u64)> {
    let (&name_len, rest) = signed.get(1..)?.split_first()?;
    let (name, rest) = rest.split_at_checked(usize::from(name_len))?;
    let (id, rest) = rest.split_first_chunk::<ID_LEN>()?;
    let issued_at = <[u8; 8]>::try_from(rest).ok()?;
    Some((name, DeviceId(*id), u64::from_be_bytes(issued_at)))
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_750_000_000_000;
    const ID: DeviceId = DeviceId([0x42; ID_LEN]);

    fn key() -> DeviceKey {
        let signer =
            TicketSigner::from_base64("BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc").unwrap();
        DeviceKey::from_ticket_signer(&signer)
    }

    #[test]
    fn an_issued_cookie_verifies_to_its_id_for_its_user() {
        let cookie = key().issue("alice", ID, NOW).unwrap();
        assert_eq!(cookie.id(), ID);
        assert_eq!(key().verify(cookie.as_str(), "alice", NOW), Ok(ID));
        assert!(
            cookie
                .as_str()
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_'),
            "a cookie value needs no quoting: {}",
            cookie.as_str()
        );
        let fresh = DeviceId::generate();
        assert_ne!(fresh, DeviceId::generate());
        let cookie = key().issue("alice", fresh, NOW).unwrap();
        assert_eq!(key().verify(cookie.as_str(), "alice", NOW), Ok(fresh));
    }

    #[test]
    fn the_text_form_is_pinned() {
        // Replicas of different releases check each other's cookies; a
        // change here must come with a new COOKIE_VERSION.
        let bytes = URL_SAFE_NO_PAD
            .decode(key().issue("alice", ID, NOW).unwrap().as_str())
            .unwrap();
        let mut expected = vec![COOKIE_VERSION, 5];
        expected.extend_from_slice(b"alice");
        expected.extend_from_slice(&[0x42; ID_LEN]);
        expected.extend_from_slice(&NOW.to_be_bytes());
        assert_eq!(&bytes[..bytes.len() - TAG_LEN], expected.as_slice());
        assert_eq!(bytes.len(), expected.len() + TAG_LEN);
    }

    #[test]
    fn the_key_is_separated_from_the_ticket_key() {
        let signer =
            TicketSigner::from_base64("BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc").unwrap();
        // HMAC-SHA256 under the seed itself must not make the same tags.
        let undivided = DeviceKey {
            mac: keyed(&signer.seed()),
        };
        let cookie = undivided.issue("alice", ID, NOW).unwrap();
        assert_eq!(
            key().verify(cookie.as_str(), "alice", NOW),
            Err(DeviceCookieError::BadSignature)
        );
        assert!(!format!("{:?}", key()).contains("Bw"));
    }

    #[test]
    fn every_changed_byte_is_refused() {
        let bytes = URL_SAFE_NO_PAD
            .decode(key().issue("alice", ID, NOW).unwrap().as_str())
            .unwrap();
        for at in 0..bytes.len() {
            let mut tampered = bytes.clone();
            tampered[at] ^= 0x01;
            let refused = key().verify(&URL_SAFE_NO_PAD.encode(&tampered), "alice", NOW);
            let expected = if at == 0 {
                DeviceCookieError::UnknownVersion
            } else {
                DeviceCookieError::BadSignature
            };
            assert_eq!(refused, Err(expected), "byte {at}");
        }
    }

    #[test]
    fn another_users_cookie_is_refused() {
        let bobs = key().issue("bob", ID, NOW).unwrap();
        assert_eq!(
            key().verify(bobs.as_str(), "alice", NOW),
            Err(DeviceCookieError::OtherUser)
        );
        // A prefix of the name is another name.
        let als = key().issue("al", ID, NOW).unwrap();
        assert_eq!(
            key().verify(als.as_str(), "alice", NOW),
            Err(DeviceCookieError::OtherUser)
        );
    }

    #[test]
    fn another_keys_cookie_is_refused() {
        let other = DeviceKey::from_ticket_signer(&TicketSigner::generate());
        let cookie = other.issue("alice", ID, NOW).unwrap();
        assert_eq!(
            key().verify(cookie.as_str(), "alice", NOW),
            Err(DeviceCookieError::BadSignature)
        );
    }

    #[test]
    fn a_cookie_lives_a_year_and_not_before_it_was_issued() {
        let cookie = key().issue("alice", ID, NOW).unwrap();
        let verify = |at: u64| key().verify(cookie.as_str(), "alice", at);
        assert_eq!(verify(NOW + LIFETIME_MS - 1), Ok(ID));
        assert_eq!(verify(NOW + LIFETIME_MS), Err(DeviceCookieError::Expired));
        assert_eq!(verify(u64::MAX), Err(DeviceCookieError::Expired));
        assert_eq!(verify(NOW - CLOCK_SKEW_MS), Ok(ID));
        assert_eq!(
            verify(NOW - CLOCK_SKEW_MS - 1),
            Err(DeviceCookieError::NotYetValid)
        );
        let late = key().issue("alice", ID, u64::MAX).unwrap();
        assert_eq!(
            key().verify(late.as_str(), "alice", NOW),
            Err(DeviceCookieError::NotYetValid)
        );
    }

    #[test]
    fn garbage_and_huge_input_is_refused() {
        let cookie = key().issue("alice", ID, NOW).unwrap();
        let text = cookie.as_str();
        let huge = "A".repeat(MAX_COOKIE_LEN + 1);
        let too_short = URL_SAFE_NO_PAD.encode([COOKIE_VERSION; TAG_LEN - 1]);
        let bytes = URL_SAFE_NO_PAD.decode(text).unwrap();
        let cut_tag = URL_SAFE_NO_PAD.encode(&bytes[..bytes.len() - 1]);
        for (bad, why) in [
            ("", DeviceCookieError::Malformed),
            ("not base64!", DeviceCookieError::Malformed),
            (&format!("{text}="), DeviceCookieError::Malformed),
            ("é", DeviceCookieError::Malformed),
            (&too_short, DeviceCookieError::Malformed),
            ("AA", DeviceCookieError::UnknownVersion),
            (&cut_tag, DeviceCookieError::BadSignature),
            (&huge, DeviceCookieError::TooLong),
        ] {
            assert_eq!(key().verify(bad, "alice", NOW), Err(why), "{bad:?}");
        }
        assert_eq!(
            key().issue(&"a".repeat(256), ID, NOW).unwrap_err(),
            DeviceCookieError::UserTooLong
        );
        let longest = key().issue(&"a".repeat(255), ID, NOW).unwrap();
        assert!(longest.as_str().len() <= MAX_COOKIE_LEN);
        assert_eq!(
            key().verify(longest.as_str(), &"a".repeat(255), NOW),
            Ok(ID)
        );
    }

    #[test]
    fn a_correctly_signed_but_misshapen_cookie_is_refused() {
        // Only a key holder could make these; they must still not panic.
        let mac = key().mac;
        for signed in [
            vec![COOKIE_VERSION],
            vec![COOKIE_VERSION, 200, b'a'],
            vec![COOKIE_VERSION, 0],
            [vec![COOKIE_VERSION, 0], vec![0; ID_LEN + 9]].concat(),
        ] {
            let tag = mac.clone().chain_update(&signed).finalize().into_bytes();
            let text = URL_SAFE_NO_PAD.encode([signed.as_slice(), &tag].concat());
            assert_eq!(
                key().verify(&text, "", NOW),
                Err(DeviceCookieError::Malformed),
                "{signed:?}"
            );
        }
    }

    #[test]
    fn debug_never_shows_the_cookie() {
        let cookie = key().issue("alice", ID, NOW).unwrap();
        let shown = format!("{cookie:?}");
        assert!(!shown.contains(cookie.as_str()), "{shown}");
        assert!(shown.contains("4242"), "{shown}");
    }
}
