//! `protocol::SessionId` as JSON text.
//!
//! The protocol crate derives serde for its 16 bytes (postcard writes them
//! raw in the hello), but the directory's JSON has always carried session
//! ids as 32 lowercase hex digits. Fields of this crate's types say
//! `#[serde(with = "session_id")]` (or `session_id::option`) to get that
//! text from `SessionId`'s own `Display` and `FromStr`, the one codec.

use core::fmt;

use protocol::SessionId;
use serde::de::{self, Visitor};
use serde::{Deserializer, Serializer};

/// Writes `id` as its 32 lowercase hex digits.
pub fn serialize<S: Serializer>(id: &SessionId, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_str(id)
}

/// Reads 32 hex digits of either case.
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<SessionId, D::Error> {
    deserializer.deserialize_str(SessionIdText)
}

/// The message every malformed id gets, naming it (at most 40 characters
/// of it, so an enormous value does not fill the answer).
fn invalid<E: de::Error>(text: &str) -> E {
    let cut = text.char_indices().nth(40).map_or(text.len(), |(i, _)| i);
    E::custom(format_args!(
        "invalid session id {:?}: expected 32 hex digits",
        &text[..cut]
    ))
}

struct SessionIdText;

impl Visitor<'_> for SessionIdText {
    type Value = SessionId;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a session id: 32 hex digits")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<SessionId, E> {
        text.parse().map_err(|_| invalid(text))
    }
}

/// The same text for an `Option<SessionId>`: `null` (or, with
/// `#[serde(default)]`, an absent member) is `None`.
pub mod option {
    use protocol::SessionId;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(
        id: &Option<SessionId>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match id {
            Some(id) => serializer.collect_str(id),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<SessionId>, D::Error> {
        #[derive(Deserialize)]
        struct Text(#[serde(with = "super")] SessionId);
        Ok(Option::<Text>::deserialize(deserializer)?.map(|Text(id)| id))
    }
}
