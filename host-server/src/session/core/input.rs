//! The session's input log: what reaches the program exactly once, in
//! order. The client numbers its input and resends what was not
//! acknowledged, so the log drops any chunk at or below the newest one
//! taken, writes the rest in order (a PTY may take part of a chunk) and
//! knows the highest sequence number applied, which acknowledgements and
//! a reattaching client's welcome carry.
//!
//! Viewers a share link lets type write into the same log, each numbered
//! by its own connection ([`Writer::Viewer`]): their chunks take turns
//! with the owner's in the order they came, and each writer's numbers
//! are checked and acknowledged on their own.

use std::collections::VecDeque;

/// Input bytes a session accepts before it stops taking commands, which
/// pushes back on the connection and so on the client: the window the
/// client keeps to (`protocol::INPUT_WINDOW`).
pub const MAX_PENDING_INPUT: usize = protocol::INPUT_WINDOW;

/// Whose input a chunk is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Writer {
    /// The session's owner, whichever connection it types on.
    Owner,
    /// A viewer that may type, by connection.
    Viewer(u64),
}

#[derive(Debug, Default)]
pub(super) struct InputLog {
    /// Highest input sequence number of the owner's written to the program.
    applied: u64,
    /// The same for each typing viewer's connection.
    viewers_applied: Vec<(u64, u64)>,
    /// Accepted chunks not written yet, in the order they came.
    pending: VecDeque<(Writer, u64, Vec<u8>)>,
    /// Bytes in `pending`: what the limit counts.
    pending_bytes: usize,
    /// Bytes of the front chunk already written.
    written: usize,
}

impl InputLog {
    /// Takes chunk `seq`; false for a resend of input already taken
    /// (written or not), which is dropped.
    pub(super) fn take(&mut self, seq: u64, data: Vec<u8>) -> bool {
        self.take_from(Writer::Owner, seq, data)
    }

    /// Takes chunk `seq` of `writer`; false for a resend, as `take`.
    pub(super) fn take_from(&mut self, writer: Writer, seq: u64, data: Vec<u8>) -> bool {
        if !self.is_new_from(writer, seq) {
            return false;
        }
        if let Writer::Viewer(conn) = writer
            && !self.viewers_applied.iter().any(|(c, _)| *c == conn)
        {
            self.viewers_applied.push((conn, 0));
        }
        self.pending_bytes += data.len();
        self.pending.push_back((writer, seq, data));
        true
    }

    /// Whether the owner's chunk `seq` would be taken: not a resend.
    pub(super) fn is_new(&self, seq: u64) -> bool {
        self.is_new_from(Writer::Owner, seq)
    }

    fn is_new_from(&self, writer: Writer, seq: u64) -> bool {
        let newest = self
            .pending
            .iter()
            .rev()
            .find(|(w, _, _)| *w == writer)
            .map_or_else(|| self.applied_of(writer), |(_, seq, _)| *seq);
        seq > newest
    }

    /// Highest sequence number of the owner's written to the program.
    pub(super) fn applied(&self) -> u64 {
        self.applied
    }

    /// Highest sequence number of `writer`'s written to the program.
    pub(super) fn applied_of(&self, writer: Writer) -> u64 {
        match writer {
            Writer::Owner => self.applied,
            Writer::Viewer(conn) => self
                .viewers_applied
                .iter()
                .find(|(c, _)| *c == conn)
                .map_or(0, |(_, seq)| *seq),
        }
    }

    /// Viewer connection `conn` is gone: its numbers are forgotten (what it
    /// sent is still written, in turn).
    pub(super) fn forget_viewer(&mut self, conn: u64) {
        self.viewers_applied.retain(|(c, _)| *c != conn);
    }

    /// Whether the log is under `MAX_PENDING_INPUT`.
    pub(super) fn has_room(&self) -> bool {
        self.pending_bytes < MAX_PENDING_INPUT
    }

    /// What to write to the program next.
    pub(super) fn to_write(&self) -> Option<&[u8]> {
        let (_, _, front) = self.pending.front()?;
        Some(&front[self.written..])
    }

    /// As `written_by`, for the owner's chunks only (the tests' shorthand).
    #[cfg(test)]
    fn written(&mut self, n: usize) -> Option<u64> {
        match self.written_by(n) {
            Some((Writer::Owner, seq)) => Some(seq),
            _ => None,
        }
    }

    /// `n` bytes of `to_write` reached the program: whose chunk they
    /// completed, if they did, and its number.
    pub(super) fn written_by(&mut self, n: usize) -> Option<(Writer, u64)> {
        self.written += n;
        let (writer, seq, front) = self.pending.front()?;
        if self.written < front.len() {
            return None;
        }
        let (writer, seq) = (*writer, *seq);
        self.pending_bytes -= front.len();
        self.pending.pop_front();
        self.written = 0;
        match writer {
            Writer::Owner => self.applied = seq,
            // A viewer already gone is not remembered again.
            Writer::Viewer(conn) => {
                if let Some((_, applied)) =
                    self.viewers_applied.iter_mut().find(|(c, _)| *c == conn)
                {
                    *applied = seq;
                }
            }
        }
        Some((writer, seq))
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
    fn a_typing_viewers_chunks_take_turns_and_are_numbered_on_their_own() {
        let mut log = InputLog::default();
        let bob = Writer::Viewer(7);
        assert!(log.take(1, b"a".to_vec()));
        assert!(log.take_from(bob, 1, b"b".to_vec()), "its own numbers");
        assert!(!log.take_from(bob, 1, b"b".to_vec()), "a resend");
        assert!(log.take(2, b"c".to_vec()));
        assert_eq!(log.written_by(1), Some((Writer::Owner, 1)));
        assert_eq!(log.written_by(1), Some((bob, 1)));
        assert_eq!(log.written_by(1), Some((Writer::Owner, 2)));
        assert_eq!((log.applied(), log.applied_of(bob)), (2, 1));
        assert!(!log.take_from(bob, 1, b"b".to_vec()), "written");
        assert!(log.take_from(bob, 2, b"d".to_vec()));
        // A viewer gone: its waiting input is still written in turn.
        log.forget_viewer(7);
        assert_eq!(log.applied_of(bob), 0);
        assert_eq!(log.written_by(1), Some((bob, 2)));
        assert_eq!(log.applied_of(bob), 0, "not remembered again");
        assert_eq!(log.to_write(), None);
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
