//! Which input a frame may be held to have echoed (`Frame::echo_ack`).
//!
//! The client predicts the echo of what is typed and checks each guess
//! against the first frame that covers the keystroke. Mosh's rule is that
//! input written [`ECHO_WAIT`] before a frame has had its echo drawn, if
//! the program echoes at all. A program starved of CPU (a busy machine)
//! can take longer, and a guess judged before its echo came is taken back
//! on the user's screen; so here input also waits until the program has
//! written something since it got it, or [`ECHO_SILENT`] has passed
//! without a byte (a program that does not echo: its guesses were never
//! shown, and are judged that much later).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// How long after a write its echo is taken to be on the screen.
pub const ECHO_WAIT: Duration = Duration::from_millis(protocol::ECHO_WAIT_MS);

/// How long a write waits for the program to write anything at all before
/// it is taken to have no echo.
pub const ECHO_SILENT: Duration = Duration::from_millis(protocol::ECHO_SILENT_MS);

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

    /// When the write made at `at` settles, given the program last wrote
    /// output at `last_output`.
    fn due(at: Instant, last_output: Instant) -> Instant {
        if last_output > at {
            at + ECHO_WAIT
        } else {
            at + ECHO_SILENT
        }
    }

    /// The highest sequence number written at least `ECHO_WAIT` before
    /// `now` and followed by output at `last_output` (or `ECHO_SILENT`
    /// before `now`, with no output since).
    pub(super) fn settle(&mut self, now: Instant, last_output: Instant) -> u64 {
        while let Some(&(seq, at)) = self.recent.front()
            && now >= Self::due(at, last_output)
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

    /// When the next write settles, if the program writes nothing new.
    pub(super) fn next_due(&self, last_output: Instant) -> Option<Instant> {
        self.recent
            .front()
            .map(|&(_, at)| Self::due(at, last_output))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn input_settles_an_echo_wait_after_it_was_written_and_echoed() {
        let t0 = Instant::now();
        let mut echo = EchoWait::default();
        assert_eq!(echo.settle(t0, t0), 0);
        echo.written(1, t0);
        echo.written(2, t0 + 10 * MS);
        let output = t0 + MS;
        assert_eq!(echo.next_due(output), Some(t0 + ECHO_WAIT));
        assert_eq!(echo.settle(t0 + ECHO_WAIT - MS, output), 0);
        assert_eq!(echo.settle(t0 + ECHO_WAIT, output), 1);
        // Nothing came after the second write: it waits for output.
        assert_eq!(echo.next_due(output), Some(t0 + 10 * MS + ECHO_SILENT));
        let echoed = t0 + 11 * MS;
        assert_eq!(echo.next_due(echoed), Some(t0 + 10 * MS + ECHO_WAIT));
        assert_eq!(echo.settle(t0 + 10 * MS + ECHO_WAIT, echoed), 2);
        assert_eq!(echo.settled(), 2);
        assert_eq!(echo.next_due(echoed), None);
    }

    #[test]
    fn a_program_slower_than_the_wait_is_waited_for() {
        let t0 = Instant::now();
        let mut echo = EchoWait::default();
        echo.written(1, t0);
        // A busy machine: the program has not answered after the wait.
        assert_eq!(echo.settle(t0 + 3 * ECHO_WAIT, t0 - MS), 0);
        // Its echo comes; the frame with it settles the write.
        assert_eq!(echo.settle(t0 + 3 * ECHO_WAIT, t0 + 3 * ECHO_WAIT), 1);
    }

    #[test]
    fn a_program_that_never_answers_settles_after_the_silence() {
        let t0 = Instant::now();
        let mut echo = EchoWait::default();
        echo.written(1, t0);
        assert_eq!(echo.settle(t0 + ECHO_SILENT - MS, t0 - MS), 0);
        assert_eq!(echo.settle(t0 + ECHO_SILENT, t0 - MS), 1);
    }

    #[test]
    fn a_flood_of_writes_is_bounded_and_never_settles_early() {
        let t0 = Instant::now();
        let mut echo = EchoWait::default();
        for seq in 1..=10_000u64 {
            echo.written(seq, t0 + Duration::from_micros(seq));
        }
        assert_eq!(echo.recent.len(), MAX_RECENT);
        let output = t0 + Duration::from_secs(1);
        // Nothing settles before the wait after the oldest kept write.
        assert_eq!(echo.settle(t0 + ECHO_WAIT, output), 0);
        assert_eq!(echo.settle(t0 + ECHO_WAIT + 10 * MS, output), 10_000);
    }
}
