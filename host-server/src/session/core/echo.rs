//! Which input a frame may be held to have echoed (`Frame::echo_ack`).
//!
//! The client predicts the echo of what is typed and checks each guess
//! against the first frame that covers the keystroke (mosh's rule): input
//! that reached the program [`ECHO_WAIT`] before the frame was taken has
//! had its echo drawn, if the program echoes at all.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How long after a write its echo is taken to be on the screen.
pub const ECHO_WAIT: Duration = Duration::from_millis(protocol::ECHO_WAIT_MS);

/// Writes remembered at once; a client typing faster than this in
/// `ECHO_WAIT` gets the older ones counted with the newer (later) ones.
const MAX_RECENT: usize = 256;

#[derive(Debug, Default)]
pub(super) struct EchoWait {
    /// Input written less than `ECHO_WAIT` ago, by sequence number, oldest
    /// first.
    recent: VecDeque<(u64, Instant)>,
    /// The highest sequence number written at least `ECHO_WAIT` ago.
    settled: u64,
}

impl EchoWait {
    /// Input up to `seq` reached the program at `now`.
    pub(super) fn written(&mut self, seq: u64, now: Instant) {
        if self.recent.len() == MAX_RECENT {
            // Settling later than it might is safe: a frame then waits
            // longer for an echo, never less.
            self.recent.pop_front();
        }
        self.recent.push_back((seq, now));
    }

    /// The highest sequence number written at least `ECHO_WAIT` before
    /// `now`.
    pub(super) fn settle(&mut self, now: Instant) -> u64 {
        while let Some(&(seq, at)) = self.recent.front()
            && now.saturating_duration_since(at) >= ECHO_WAIT
        {
            self.settled = self.settled.max(seq);
            self.recent.pop_front();
        }
        self.settled
    }

    /// What `settle` said last.
    pub(super) fn settled(&self) -> u64 {
        self.settled
    }

    /// When the next write settles.
    pub(super) fn next_due(&self) -> Option<Instant> {
        self.recent.front().map(|&(_, at)| at + ECHO_WAIT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_settles_an_echo_wait_after_it_was_written() {
        let t0 = Instant::now();
        let mut echo = EchoWait::default();
        assert_eq!(echo.settle(t0), 0);
        echo.written(1, t0);
        echo.written(2, t0 + Duration::from_millis(10));
        assert_eq!(echo.next_due(), Some(t0 + ECHO_WAIT));
        assert_eq!(echo.settle(t0 + ECHO_WAIT - Duration::from_millis(1)), 0);
        assert_eq!(echo.settle(t0 + ECHO_WAIT), 1);
        assert_eq!(
            echo.next_due(),
            Some(t0 + Duration::from_millis(10) + ECHO_WAIT)
        );
        assert_eq!(echo.settle(t0 + Duration::from_secs(1)), 2);
        assert_eq!(echo.settled(), 2);
        assert_eq!(echo.next_due(), None);
    }

    #[test]
    fn a_flood_of_writes_is_bounded_and_never_settles_early() {
        let t0 = Instant::now();
        let mut echo = EchoWait::default();
        for seq in 1..=10_000u64 {
            echo.written(seq, t0 + Duration::from_micros(seq));
        }
        assert_eq!(echo.recent.len(), MAX_RECENT);
        // Nothing settles before the wait after the oldest kept write.
        assert_eq!(echo.settle(t0 + ECHO_WAIT), 0);
        assert_eq!(
            echo.settle(t0 + ECHO_WAIT + Duration::from_millis(10)),
            10_000
        );
    }
}
