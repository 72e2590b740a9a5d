//! Binary codec: postcard inside WebSocket binary messages.
//!
//! A WebSocket message already delimits frames, so there is no length
//! prefix; the only framing is the hello's `MAGIC` + version prefix, which
//! lets a host give a precise error to a client of another version.

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::limits::{DecodeError, MAX_CLIENT_MESSAGE, MAX_SERVER_MESSAGE};
use crate::msg::{ClientToServerMsg, Hello, ServerToClientMsg};

/// Bumped on every incompatible change of any message in this crate.
/// 4: frames carry OSC 52 clipboard text, OSC 9 / 777 notifications and
/// the screen's OSC 8 hyperlinks. 5: files in and out (`Upload` both
/// ways, `Download`).
pub const PROTOCOL_VERSION: u16 = 7;

/// The first two bytes of a hello: "TL".
pub const MAGIC: [u8; 2] = *b"TL";

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    // Serialising an in-memory value into a growable Vec cannot fail: postcard
    // only errors on writer exhaustion or unsupported types, neither of which
    // apply to our message types.
    postcard::to_allocvec(value).unwrap_or_default()
}

fn decode<T: DeserializeOwned>(bytes: &[u8], max: usize) -> Result<T, DecodeError> {
    if bytes.is_empty() {
        return Err(DecodeError::Empty);
    }
    if bytes.len() > max {
        return Err(DecodeError::TooLarge {
            len: bytes.len(),
            max,
        });
    }
    let (value, rest) =
        postcard::take_from_bytes(bytes).map_err(|e| DecodeError::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(DecodeError::TrailingBytes(rest.len()));
    }
    Ok(value)
}

/// `MAGIC`, the version as little-endian `u16`, then the postcard body.
pub fn encode_hello(hello: &Hello) -> Vec<u8> {
    encode_hello_with_version(hello, PROTOCOL_VERSION)
}

#[doc(hidden)]
pub fn encode_hello_with_version(hello: &Hello, version: u16) -> Vec<u8> {
    let mut out = Vec::with_capacity(64);
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&encode(hello));
    out
}

pub fn decode_hello(bytes: &[u8]) -> Result<Hello, DecodeError> {
    if bytes.is_empty() {
        return Err(DecodeError::Empty);
    }
    if bytes.len() > MAX_CLIENT_MESSAGE {
        return Err(DecodeError::TooLarge {
            len: bytes.len(),
            max: MAX_CLIENT_MESSAGE,
        });
    }
    if bytes.len() < 4 || bytes[..2] != MAGIC {
        return Err(DecodeError::BadMagic);
    }
    let version = u16::from_le_bytes([bytes[2], bytes[3]]);
    if version != PROTOCOL_VERSION {
        return Err(DecodeError::VersionMismatch {
            client: version,
            host: PROTOCOL_VERSION,
        });
    }
    decode(&bytes[4..], MAX_CLIENT_MESSAGE)
}

pub fn encode_client(msg: &ClientToServerMsg) -> Vec<u8> {
    encode(msg)
}

pub fn decode_client(bytes: &[u8]) -> Result<ClientToServerMsg, DecodeError> {
    decode(bytes, MAX_CLIENT_MESSAGE)
}

pub fn encode_server(msg: &ServerToClientMsg) -> Vec<u8> {
    encode(msg)
}

pub fn decode_server(bytes: &[u8]) -> Result<ServerToClientMsg, DecodeError> {
    decode(bytes, MAX_SERVER_MESSAGE)
}
