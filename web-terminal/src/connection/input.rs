//! Input on its way to the program: numbered and in flight until the host
//! acknowledges it, or waiting in the page behind the window.
//!
//! The window is the flow control of typing and pasting: the host
//! acknowledges input once the program's terminal took it, so at most
//! `INPUT_WINDOW` bytes (what the host holds for a session) are ever
//! between the page and the program, and a
//! paste of any size streams at the pace the program reads it, in order,
//! with whatever is typed after it behind it.

use std::collections::VecDeque;

pub use protocol::INPUT_WINDOW;
use protocol::MAX_INPUT_CHUNK;

/// Input the page holds at most, in flight and waiting; beyond it input is
/// refused rather than growing memory without bound (a paste of this much
/// is already in the page as text).
pub const MAX_PENDING_INPUT: usize = 64 * 1024 * 1024;

#[derive(Debug, Default)]
pub(super) struct InputQueue {
    /// Numbered input sent (or to be resent) and not yet covered by an
    /// `InputAck`, oldest first, with consecutive numbers.
    unacked: VecDeque<(u64, Vec<u8>)>,
    unacked_bytes: usize,
    /// Input without a number yet: typed before the first welcome, or
    /// behind the window. Chunks of at most `MAX_INPUT_CHUNK`.
    waiting: VecDeque<Vec<u8>>,
    waiting_bytes: usize,
}

impl InputQueue {
    /// Bytes held: in flight and waiting.
    pub fn pending(&self) -> usize {
        self.unacked_bytes + self.waiting_bytes
    }

    /// Bytes waiting behind the window.
    pub fn waiting(&self) -> usize {
        self.waiting_bytes
    }

    /// Whether `len` more bytes fit under `MAX_PENDING_INPUT`.
    pub fn has_room(&self, len: usize) -> bool {
        self.pending().saturating_add(len) <= MAX_PENDING_INPUT
    }

    /// Queues `data` behind everything held.
    pub fn hold(&mut self, data: &[u8]) {
        for chunk in data.chunks(MAX_INPUT_CHUNK) {
            self.waiting_bytes += chunk.len();
            self.waiting.push_back(chunk.to_vec());
        }
    }

    /// The next waiting chunk, numbered `seq`, if the window has room for
    /// it; it is held as unacknowledged from now on, and a copy returned
    /// to send.
    pub fn release(&mut self, seq: u64) -> Option<Vec<u8>> {
        if self.unacked_bytes >= INPUT_WINDOW {
            return None;
        }
        let data = self.waiting.pop_front()?;
        self.waiting_bytes -= data.len();
        self.unacked_bytes += data.len();
        self.unacked.push_back((seq, data.clone()));
        Some(data)
    }

    /// The host applied everything up to `seq`.
    pub fn acked(&mut self, seq: u64) {
        while let Some((s, data)) = self.unacked.front()
            && *s <= seq
        {
            self.unacked_bytes -= data.len();
            self.unacked.pop_front();
        }
    }

    /// The unacknowledged input, oldest first, to send again.
    pub fn unacked(&self) -> impl Iterator<Item = &(u64, Vec<u8>)> {
        self.unacked.iter()
    }

    /// The number after the newest one given out, if any is held.
    pub fn after_last(&self) -> Option<u64> {
        self.unacked.back().map(|(s, _)| s + 1)
    }

    /// Drops the numbered input; returns how many messages it was.
    pub fn drop_unacked(&mut self) -> usize {
        let messages = self.unacked.len();
        self.unacked.clear();
        self.unacked_bytes = 0;
        messages
    }

    /// Drops the waiting input; returns how many bytes it was.
    pub fn drop_waiting(&mut self) -> usize {
        let bytes = self.waiting_bytes;
        self.waiting.clear();
        self.waiting_bytes = 0;
        bytes
    }

    /// Drops everything; returns how many messages it was (waiting chunks
    /// counted as the messages they would have become).
    pub fn drop_all(&mut self) -> usize {
        let messages = self.unacked.len() + self.waiting.len();
        self.drop_unacked();
        self.drop_waiting();
        messages
    }
}
