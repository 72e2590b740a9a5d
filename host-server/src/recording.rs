//! A session's recording: what its program wrote, when, at what size, and
//! where its hosts changed, kept in the shared store in blocks
//! (`store::RecordingBlock`) so that it goes on across a failover.
//!
//! The session core's `Recorder` (`session::core::record`) turns output,
//! resizes and markers into [`TimedEvent`]s and seals them into blocks with
//! [`encode_block`]; the directory reads them back with [`decode_block`] to
//! replay them into frames for the page's player ([`replay`]) and to export
//! them as asciicast or plain text ([`cast`]).
//!
//! A block is a version byte and the lz4-compressed postcard encoding of
//! its events, each timed as the milliseconds since the previous one (the
//! first since the recording started), so a block of keystroke echoes
//! costs a few bytes per event.

use protocol::Size;
use serde::{Deserialize, Serialize};

pub mod cast;
pub mod replay;

/// What happened at one moment of a recording.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Event {
    /// Bytes the program wrote (or the host drew, as a restore's notice).
    Output(Vec<u8>),
    /// The terminal took this size.
    Resize(Size),
    /// A moment worth a mark on the player's timeline: a failover or a
    /// restore naming the hosts, or why recording stopped.
    Marker(String),
}

/// An event and when it happened: milliseconds since the recording
/// started.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimedEvent {
    pub at_ms: u64,
    pub event: Event,
}

/// The first byte of every block.
const BLOCK_VERSION: u8 = 1;

/// The most bytes a block may decompress to: a recorder seals a block long
/// before (`session::core::record::SEAL_BYTES`), so anything bigger is not
/// one of ours and is refused rather than allocated.
pub const MAX_BLOCK_BYTES: usize = 16 << 20;

/// Why a block could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    #[error(
        "a recording block of an unknown format (version {0}); a newer host may have written it"
    )]
    UnknownVersion(u8),
    #[error("a recording block is damaged: {0}")]
    Damaged(String),
}

/// Encodes `events` (in time order) as one block.
pub fn encode_block(events: &[TimedEvent]) -> Vec<u8> {
    let mut last = events.first().map_or(0, |e| e.at_ms);
    let mut wire = Vec::with_capacity(events.len());
    let first = last;
    for event in events {
        let delta = event.at_ms.saturating_sub(last);
        last = last.max(event.at_ms);
        wire.push((delta, &event.event));
    }
    let plain = postcard::to_allocvec(&(first, wire)).unwrap_or_default();
    let mut block = vec![BLOCK_VERSION];
    block.extend_from_slice(&lz4_flex::compress_prepend_size(&plain));
    block
}

/// Decodes a block written by [`encode_block`].
pub fn decode_block(bytes: &[u8]) -> Result<Vec<TimedEvent>, BlockError> {
    let (&version, compressed) = bytes
        .split_first()
        .ok_or_else(|| BlockError::Damaged("it is empty".into()))?;
    if version != BLOCK_VERSION {
        return Err(BlockError::UnknownVersion(version));
    }
    let size = compressed
        .get(..4)
        .and_then(|b| <[u8; 4]>::try_from(b).ok())
        .map(u32::from_le_bytes)
        .ok_or_else(|| BlockError::Damaged("it is truncated".into()))?;
    if size as usize > MAX_BLOCK_BYTES {
        return Err(BlockError::Damaged(format!(
            "it claims {size} bytes, more than any block holds"
        )));
    }
    let plain = lz4_flex::decompress_size_prepended(compressed)
        .map_err(|e| BlockError::Damaged(e.to_string()))?;
    let (first, wire): (u64, Vec<(u64, Event)>) =
        postcard::from_bytes(&plain).map_err(|e| BlockError::Damaged(e.to_string()))?;
    let mut at_ms = first;
    let mut events = Vec::with_capacity(wire.len());
    for (delta, event) in wire {
        at_ms = at_ms.saturating_add(delta);
        events.push(TimedEvent { at_ms, event });
    }
    Ok(events)
}

/// Events in a line each, for the tests of everything that reads them.
#[cfg(test)]
pub(crate) mod testing {
    use super::{Event, TimedEvent};
    use protocol::Size;

    pub(crate) fn out(at_ms: u64, bytes: &[u8]) -> TimedEvent {
        TimedEvent {
            at_ms,
            event: Event::Output(bytes.to_vec()),
        }
    }

    pub(crate) fn resize(at_ms: u64, cols: u16, rows: u16) -> TimedEvent {
        TimedEvent {
            at_ms,
            event: Event::Resize(Size { cols, rows }),
        }
    }

    pub(crate) fn marker(at_ms: u64, label: &str) -> TimedEvent {
        TimedEvent {
            at_ms,
            event: Event::Marker(label.into()),
        }
    }

    /// `len` bytes from a small deterministic generator, so the noise is
    /// the same every run.
    pub(crate) fn noise(seed: &mut u64, len: usize) -> Vec<u8> {
        (0..len)
            .map(|_| {
                *seed = seed
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                (*seed >> 56) as u8
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
