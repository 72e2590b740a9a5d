//! Flow control for the screen stream, sans IO.
//!
//! The host never queues output for a slow client: it keeps at most
//! `window` unacknowledged frames in flight and folds everything newer into
//! the next frame. Under a flood it also waits `coalesce` between frames so a
//! fast client is sent a display-rate stream rather than one frame per read.

use std::time::{Duration, Instant};

/// Frames a client may hold unacknowledged.
pub const FRAME_WINDOW: u64 = 3;

/// Longest a flood may delay a frame; roughly one display refresh.
pub const FLOOD_COALESCE: Duration = Duration::from_millis(16);

#[derive(Debug)]
pub struct FramePacer {
    window: u64,
    /// Sequence number of the last frame sent; frames count from 1.
    sent: u64,
    /// Highest frame the client acknowledged; never above `sent`.
    acked: u64,
}

impl FramePacer {
    pub fn new(window: u64) -> FramePacer {
        FramePacer {
            window,
            sent: 0,
            acked: 0,
        }
    }

    pub fn can_send(&self) -> bool {
        self.sent - self.acked < self.window
    }

    /// Reserves the next frame number.
    pub fn next_seq(&mut self) -> u64 {
        self.sent += 1;
        self.sent
    }

    pub fn in_flight(&self) -> u64 {
        self.sent - self.acked
    }

    /// Applies an acknowledgement; stale, duplicate and impossible ones (for
    /// frames never sent) are ignored.
    pub fn on_ack(&mut self, frame: u64) {
        if frame > self.acked && frame <= self.sent {
            self.acked = frame;
        }
    }
}

/// Decides when continuous output has been read long enough without a frame.
#[derive(Debug, Default)]
pub struct FloodClock {
    since: Option<Instant>,
}

impl FloodClock {
    /// Output was read at `now`; returns true when a frame is due although
    /// more output is waiting.
    pub fn on_output(&mut self, now: Instant) -> bool {
        let since = *self.since.get_or_insert(now);
        now.duration_since(since) >= FLOOD_COALESCE
    }

    /// A frame went out (or the output went quiet).
    pub fn reset(&mut self) {
        self.since = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_limits_frames_in_flight() {
        let mut pacer = FramePacer::new(2);
        assert!(pacer.can_send());
        assert_eq!(pacer.next_seq(), 1);
        assert_eq!(pacer.next_seq(), 2);
        assert!(!pacer.can_send());
        pacer.on_ack(1);
        assert!(pacer.can_send());
        assert_eq!(pacer.next_seq(), 3);
        assert!(!pacer.can_send());
    }

    #[test]
    fn bogus_acks_are_ignored() {
        let mut pacer = FramePacer::new(2);
        pacer.next_seq();
        pacer.on_ack(99);
        assert_eq!(pacer.in_flight(), 1, "ack for a frame never sent");
        pacer.on_ack(1);
        pacer.on_ack(0);
        assert_eq!(pacer.in_flight(), 0, "stale ack does not go backwards");
    }

    #[test]
    fn flood_clock_fires_after_the_coalesce_interval() {
        let start = Instant::now();
        let mut clock = FloodClock::default();
        assert!(!clock.on_output(start));
        assert!(!clock.on_output(start + FLOOD_COALESCE / 2));
        assert!(clock.on_output(start + FLOOD_COALESCE));
        clock.reset();
        assert!(!clock.on_output(start + FLOOD_COALESCE * 3));
    }
}
