//! Signed, short-lived tickets: the directory's word that a signed-in user
//! may attach to one session on one host at one epoch.
//!
//! Ed25519 because its signatures are small (64 bytes, so a ticket fits in a
//! hello and a URL-safe string), fast to check, deterministic (signing needs
//! no randomness), and because hosts need only the public key: a broken-into
//! host cannot mint tickets for any other host. `verify_strict` refuses the
//! malleable and weak-key edge cases, so a ticket has exactly one valid text
//! form. Claims are postcard, the encoding the wire protocol already uses.

use std::fmt;
use std::str::FromStr;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Serialize};

/// The longest a ticket may live. A signer refuses to sign longer, a verifier
/// refuses longer tickets, so a leaked ticket is worthless within a minute.
pub const MAX_LIFETIME_MS: u64 = 60_000;

/// How far the directory's and a host's clocks may disagree.
pub const CLOCK_SKEW_MS: u64 = 5_000;

/// The longest text form a verifier reads (it is ASCII, so bytes = chars).
pub const MAX_TICKET_LEN: usize = 1024;

/// The first byte of every ticket, covered by the signature, so that a later
/// format can never be confused with this one.
const TICKET_VERSION: u8 = 4;

const SIGNATURE_LEN: usize = ed25519_dalek::SIGNATURE_LENGTH;

/// What a ticket says. Every field is covered by the signature.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claims {
    pub user: String,
    /// `protocol::SessionId`'s bytes.
    pub session: [u8; 16],
    /// The host id the ticket is for, e.g. "h1"; other hosts refuse it.
    pub host: String,
    /// The session's epoch on that host (1 for a brand-new session), so a
    /// ticket minted before a failover cannot attach to a fenced copy.
    pub epoch: u64,
    /// The sign-in it came from: `LoginId` bytes (sha256 of the cookie
    /// secret), so a host can check the login was not ended since.
    pub login: [u8; 32],
    /// The most running sessions the user may have: a host starting a new
    /// session (epoch 1) claims it in the store within this cap, atomically
    /// (`Store::claim_session`), so the cap the directory is configured
    /// with holds exactly, however many tickets were taken.
    pub max_sessions: u32,
    /// For a viewer: the share link that lets `user` watch another user's
    /// session. `None`: `user` owns the session.
    pub share: Option<ShareGrant>,
    /// Record the session, keeping at most this many bytes of its
    /// recording: the deployment's recording policy and the user's choice,
    /// as the directory applied them. Read only by a host starting a new
    /// session; a restored one goes on with the recording it has (or none).
    pub record: Option<u64>,
    /// Unix milliseconds by the signer's clock.
    pub issued_at_ms: u64,
    /// Unix milliseconds; at most `MAX_LIFETIME_MS` after `issued_at_ms`.
    pub expires_at_ms: u64,
}

/// What a share link grants its viewer, inside a ticket. Signed with the
/// rest, so a viewer cannot widen it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShareGrant {
    /// The share's id (`store::ShareRecord::id`'s bytes): the host watches
    /// it and closes the viewer when it is revoked or expires.
    pub id: [u8; 16],
    /// The session's owner; the ticket's `user` is the viewer.
    pub owner: String,
    /// The viewer may type into the session, not only watch.
    pub may_type: bool,
}

/// Why a ticket was refused (or could not be made).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum TicketError {
    #[error("the ticket is longer than {MAX_TICKET_LEN} characters")]
    TooLong,
    #[error("the ticket is malformed")]
    Malformed,
    #[error(
        "the ticket has an unknown format version; the directory and the host may run different releases"
    )]
    UnknownVersion,
    #[error(
        "the ticket is not signed by a trusted key; check the host's THINLINE_TICKET_PUBLIC_KEY against the directory's key"
    )]
    BadSignature,
    /// Also what a ticket that expires no later than it was issued gets: it
    /// was never valid.
    #[error("the ticket has expired; ask the directory for a new one")]
    Expired,
    #[error("the ticket is not valid yet; check that the directory's and the host's clocks agree")]
    NotYetValid,
    #[error("the ticket's lifetime is longer than {MAX_LIFETIME_MS} ms")]
    LifetimeTooLong,
}

/// Why a key could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("the key is not base64; `directory keygen` prints a valid pair")]
    NotBase64,
    #[error("the key is {found} bytes long, not 32; `directory keygen` prints a valid pair")]
    WrongLength { found: usize },
    #[error("the key is not a usable ed25519 public key; `directory keygen` prints a valid pair")]
    NotAPublicKey,
}

fn key_bytes(text: &str) -> Result<[u8; 32], KeyError> {
    let bytes = crate::decode_base64_lenient(text).ok_or(KeyError::NotBase64)?;
    <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| KeyError::WrongLength { found: bytes.len() })
}

/// The directory's signing key. Its `Debug` shows the public half only.
pub struct TicketSigner {
    key: SigningKey,
}

impl TicketSigner {
    /// A new random key from the operating system's generator.
    pub fn generate() -> TicketSigner {
        let mut seed = [0u8; 32];
        // Failing to read the OS generator means the machine cannot do any
        // cryptography at all; there is nothing sensible to fall back on.
        #[allow(clippy::expect_used)]
        getrandom::fill(&mut seed).expect("the operating system's random number generator failed");
        TicketSigner {
            key: SigningKey::from_bytes(&seed),
        }
    }

    /// Reads a 32-byte secret seed, base64url without padding (what
    /// `to_base64` writes) or standard base64.
    pub fn from_base64(seed: &str) -> Result<TicketSigner, KeyError> {
        Ok(TicketSigner {
            key: SigningKey::from_bytes(&key_bytes(seed)?),
        })
    }

    /// The secret seed, for `keygen` only: whoever has it can sign tickets.
    pub fn to_base64(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.key.to_bytes())
    }

    /// The secret seed, for deriving the device cookie key
    /// (`device::DeviceKey`) from the one secret every replica already holds.
    pub(crate) fn seed(&self) -> [u8; 32] {
        self.key.to_bytes()
    }

    pub fn public_key(&self) -> TicketPublicKey {
        TicketPublicKey(self.key.verifying_key())
    }

    /// The ticket's text form: base64url-no-pad of the version byte, the
    /// postcard claims and the signature over both.
    pub fn sign(&self, claims: &Claims) -> Result<String, TicketError> {
        check_lifetime(claims)?;
        let mut bytes = postcard::to_extend(claims, vec![TICKET_VERSION])
            .map_err(|_| TicketError::Malformed)?;
        let signature = self.key.sign(&bytes);
        bytes.extend_from_slice(&signature.to_bytes());
        let text = URL_SAFE_NO_PAD.encode(&bytes);
        if text.len() > MAX_TICKET_LEN {
            return Err(TicketError::TooLong);
        }
        Ok(text)
    }
}

impl fmt::Debug for TicketSigner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TicketSigner")
            .field("public_key", &self.public_key())
            .finish_non_exhaustive()
    }
}

/// The public half, all a host needs. `Display`/`FromStr` are base64url.
#[derive(Clone, PartialEq, Eq)]
pub struct TicketPublicKey(VerifyingKey);

impl TicketPublicKey {
    pub fn to_base64(&self) -> String {
        URL_SAFE_NO_PAD.encode(self.0.as_bytes())
    }

    /// Reads 32 bytes of base64url (no padding) or standard base64, refusing
    /// bytes that are not a curve point and the weak small-order keys.
    pub fn from_base64(text: &str) -> Result<TicketPublicKey, KeyError> {
        let key =
            VerifyingKey::from_bytes(&key_bytes(text)?).map_err(|_| KeyError::NotAPublicKey)?;
        if key.is_weak() {
            return Err(KeyError::NotAPublicKey);
        }
        Ok(TicketPublicKey(key))
    }
}

impl fmt::Display for TicketPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_base64())
    }
}

impl fmt::Debug for TicketPublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TicketPublicKey({self})")
    }
}

impl FromStr for TicketPublicKey {
    type Err = KeyError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        TicketPublicKey::from_base64(text)
    }
}

/// Checks tickets against one or more public keys; several keys let the
/// directory's key be rotated without refusing tickets already handed out.
#[derive(Debug, Clone)]
pub struct TicketVerifier {
    keys: Vec<TicketPublicKey>,
}

impl TicketVerifier {
    pub fn new(keys: Vec<TicketPublicKey>) -> TicketVerifier {
        TicketVerifier { keys }
    }

    /// The claims of `ticket` if it is well formed, signed by one of the keys
    /// and valid at `now_ms` (unix ms, the verifier's clock). Never panics,
    /// whatever the input.
    pub fn verify(&self, ticket: &str, now_ms: u64) -> Result<Claims, TicketError> {
        if ticket.len() > MAX_TICKET_LEN {
            return Err(TicketError::TooLong);
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(ticket)
            .map_err(|_| TicketError::Malformed)?;
        match bytes.first() {
            None => return Err(TicketError::Malformed),
            Some(&TICKET_VERSION) => {}
            Some(_) => return Err(TicketError::UnknownVersion),
        }
        let Some(split) = bytes.len().checked_sub(SIGNATURE_LEN).filter(|&at| at > 1) else {
            return Err(TicketError::Malformed);
        };
        let (signed, signature) = bytes.split_at(split);
        let signature = Signature::from_slice(signature).map_err(|_| TicketError::Malformed)?;
        // The signature is checked before the claims are parsed: nothing an
        // attacker wrote is interpreted until a trusted key vouched for it.
        if !self
            .keys
            .iter()
            .any(|key| key.0.verify_strict(signed, &signature).is_ok())
        {
            return Err(TicketError::BadSignature);
        }
        let (claims, rest) = postcard::take_from_bytes::<Claims>(&signed[1..])
            .map_err(|_| TicketError::Malformed)?;
        if !rest.is_empty() {
            return Err(TicketError::Malformed);
        }
        check_lifetime(&claims)?;
        if claims.issued_at_ms > now_ms.saturating_add(CLOCK_SKEW_MS) {
            return Err(TicketError::NotYetValid);
        }
        if claims.expires_at_ms.saturating_add(CLOCK_SKEW_MS) <= now_ms {
            return Err(TicketError::Expired);
        }
        Ok(claims)
    }
}

fn check_lifetime(claims: &Claims) -> Result<(), TicketError> {
    match claims.expires_at_ms.checked_sub(claims.issued_at_ms) {
        None | Some(0) => Err(TicketError::Expired),
        Some(lifetime) if lifetime > MAX_LIFETIME_MS => Err(TicketError::LifetimeTooLong),
        Some(_) => Ok(()),
    }
}

/// Unix milliseconds by this machine's clock (0 if it is set before 1970).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|since| u64::try_from(since.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests;
