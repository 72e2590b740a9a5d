//! The session's input log: what reaches the program exactly once, in
//! order. The client numbers its input and resends what was not
//! acknowledged, so the log drops any chunk at or below the newest one
//! taken, writes the rest in order (a PTY may take part of a chunk) and
//! knows the highest sequence number applied, which acknowledgements and
//! a reattaching client's welcome carry.

use std::collections::VecDeque;

/// Input bytes a session accepts before it stops taking commands, which
/// pushes back on the connection and so on the client: the window the
/// client keeps to (`protocol::INPUT_WINDOW`).
pub const MAX_PENDING_INPUT: usize = protocol::INPUT_WINDOW;

#[derive(Debug, Default)]
pub(super) struct InputLog {
    /// Highest input sequence number written to the program.
    applied: u64,
    /// Accepted chunks not written yet, in order, by sequence number.
    pending: VecDeque<(u64, Vec<u8>)>,
    /// Bytes in `pending`: what the limit counts.
    pending_bytes: usize,
    /// Bytes of the front chunk already written.
    written: usize,
}

impl InputLog {
    /// Takes chunk `seq`; false for a resend of input already taken
    /// (written or not), which is dropped.
    pub(super) fn take(&mut self, seq: u64, data: Vec<u8>) -> bool {
        if !self.is_new(seq) {
            return false;
        }
        self.pending_bytes += data.len();
        self.pending.push_back((seq, data));
        true
    }

    /// Whether chunk `seq` would be taken: not a resend.
    pub(super) fn is_new(&self, seq: u64) -> bool {
        seq > self.pending.back().map_or(self.applied, |(seq, _)| *seq)
    }

    /// Highest sequence number written to the program.
    pub(super) fn applied(&self) -> u64 {
        self.applied
    }

    /// Whether the log is under `MAX_PENDING_INPUT`.
    pub(super) fn has_room(&self) -> bool {
        self.pending_bytes < MAX_PENDING_INPUT
    }

    /// What to write to the program next.
    pub(super) fn to_write(&self) -> Option<&[u8]> {
        let (_, front) = self.pending.front()?;
        Some(&front[self.written..])
    }

    /// `n` bytes of `to_write` reached the program; the sequence number of
    /// the chunk they completed, if they did.
    pub(super) fn written(&mut self, n: usize) -> Option<u64> {
        self.written += n;
        let (seq, front) = self.pending.front()?;
        if self.written < front.len() {
            return None;
        }
        let seq = *seq;
        self.pending_bytes -= front.len();
        self.pending.pop_front();
        self.written = 0;
        self.applied = seq;
        Some(seq)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_are_written_in_order_and_each_applied_when_whole() {
        let mut log = InputLog::default();
        assert!(log.take(1, b"ab".to_vec()));
        assert!(log.take(2, b"c".to_vec()));
        assert_eq!(log.to_write(), Some(&b"ab"[..]));
        assert_eq!(log.written(1), None, "half a chunk");
        assert_eq!(log.to_write(), Some(&b"b"[..]));
        assert_eq!(log.written(1), Some(1));
        assert_eq!(log.applied(), 1);
        assert_eq!(log.written(1), Some(2));
        assert_eq!(log.to_write(), None);
    }

    #[test]
    fn resends_are_dropped_whether_written_or_waiting() {
        let mut log = InputLog::default();
        assert!(log.take(5, b"x".to_vec()), "numbers may start anywhere");
        assert!(!log.take(5, b"x".to_vec()), "waiting");
        assert!(!log.take(3, b"old".to_vec()));
        assert_eq!(log.written(1), Some(5));
        assert!(!log.take(5, b"x".to_vec()), "written");
        assert_eq!(log.to_write(), None);
        assert!(log.take(6, b"y".to_vec()));
    }

    #[test]
    fn the_limit_counts_bytes_not_yet_written() {
        let mut log = InputLog::default();
        let half = vec![0; MAX_PENDING_INPUT / 2];
        log.take(1, half.clone());
        assert!(log.has_room());
        log.take(2, half.clone());
        assert!(!log.has_room());
        log.written(half.len() - 1);
        assert!(!log.has_room(), "a chunk counts until it is whole");
        log.written(1);
        assert!(log.has_room());
    }
}
