//! Blocks of lines compressed for bulk transfer (scrollback on attach, and
//! the persisted screen later on). Interactive frames stay uncompressed: they
//! are small and latency matters more than bytes.

use serde::{Deserialize, Serialize};

use crate::limits::{DecodeError, MAX_HISTORY_RAW};
use crate::screen::Line;

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CompressedLines {
    /// Number of lines in the block.
    pub count: u32,
    /// Length of the encoded lines before compression; checked against
    /// `MAX_HISTORY_RAW` before anything is allocated.
    pub raw_len: u32,
    /// LZ4 block of the postcard-encoded `Vec<Line>`.
    pub data: Vec<u8>,
}

pub fn compress_lines(lines: &[Line]) -> CompressedLines {
    // Serialising owned, in-memory values into a Vec cannot fail.
    let raw = postcard::to_allocvec(lines).unwrap_or_default();
    CompressedLines {
        count: lines.len() as u32,
        raw_len: raw.len() as u32,
        data: lz4_flex::block::compress(&raw),
    }
}

pub fn decompress_lines(block: &CompressedLines) -> Result<Vec<Line>, DecodeError> {
    let raw_len = block.raw_len as usize;
    if raw_len > MAX_HISTORY_RAW {
        return Err(DecodeError::TooLarge {
            len: raw_len,
            max: MAX_HISTORY_RAW,
        });
    }
    let raw = lz4_flex::block::decompress(&block.data, raw_len)
        .map_err(|e| DecodeError::Malformed(format!("history block: {e}")))?;
    let lines: Vec<Line> = postcard::from_bytes(&raw)
        .map_err(|e| DecodeError::Malformed(format!("history block: {e}")))?;
    if lines.len() != block.count as usize {
        return Err(DecodeError::Malformed(format!(
            "history block says {} lines but holds {}",
            block.count,
            lines.len()
        )));
    }
    Ok(lines)
}
