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

    /// The last frame sent, if any.
    pub fn last_sent(&self) -> Option<u64> {
        (self.sent > 0).then_some(self.sent)
    }

    /// The highest frame the client acknowledged (0 for none).
    pub fn acked(&self) -> u64 {
        self.acked
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

/// Output within one `FLOOD_COALESCE` beyond which the session counts as
/// flooding, and frames are spaced a display refresh apart: 2 KiB a refresh
/// is 128 KB/s, far above what typing and its echo make and far below a
/// `cat`, whose every read of the PTY brings up to 4 KiB.
pub const FLOOD_RATE_BYTES: usize = 2048;

/// Spaces frames a display refresh apart while output floods in, and lets
/// them go at once otherwise.
///
/// `FloodClock` bounds how long one burst of reads may delay its frame;
/// this bounds how often frames go when the host keeps up with the program
/// and every read ends a burst. Without it a flood read 4 KiB at a time
/// would be one frame per read: every screen row and every scrolled line
/// converted, encoded and drawn hundreds of times a second, which costs the
/// host more than parsing the output, and the client more than it can draw.
#[derive(Debug, Default)]
pub struct FrameGate {
    /// The window output is counted in: when it started and what it holds.
    window: Option<(Instant, usize)>,
    /// The last window that ended held a flood's worth of output.
    flooded: bool,
    last_frame: Option<Instant>,
}

impl FrameGate {
    /// `n` bytes of output were read at `now`.
    pub fn on_output(&mut self, n: usize, now: Instant) {
        match &mut self.window {
            Some((start, bytes)) if now < *start + FLOOD_COALESCE => *bytes += n,
            window => {
                self.flooded = window.is_some_and(|(start, bytes)| {
                    bytes >= FLOOD_RATE_BYTES && now < start + 2 * FLOOD_COALESCE
                });
                *window = Some((now, n));
            }
        }
    }

    /// Whether output floods in: the current window or the one just
    /// before it holds a flood's worth.
    pub fn flooding(&self, now: Instant) -> bool {
        match self.window {
            Some((start, bytes)) if now < start + FLOOD_COALESCE => {
                self.flooded || bytes >= FLOOD_RATE_BYTES
            }
            Some((start, bytes)) => bytes >= FLOOD_RATE_BYTES && now < start + 2 * FLOOD_COALESCE,
            None => false,
        }
    }

    /// When a frame may go, if not at once: a refresh after the last one,
    /// while output floods in.
    pub fn hold_until(&self, now: Instant) -> Option<Instant> {
        let next = self.last_frame? + FLOOD_COALESCE;
        (now < next && self.flooding(now)).then_some(next)
    }

    /// A frame went out at `now`.
    pub fn on_frame(&mut self, now: Instant) {
        self.last_frame = Some(now);
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

    #[test]
    fn frame_gate_spaces_frames_only_while_output_floods_in() {
        let start = Instant::now();
        let ms = Duration::from_millis(1);
        let mut gate = FrameGate::default();

        // Typing: a few bytes at a time, each echo goes at once, however
        // close together.
        for i in 0..20 {
            let now = start + ms * i;
            gate.on_output(3, now);
            assert_eq!(gate.hold_until(now), None, "echo {i}");
            gate.on_frame(now);
        }

        // A flood read 4 KiB at a time: the first frame goes at once, the
        // next waits a refresh after it, whatever was read meanwhile.
        let flood = start + Duration::from_secs(1);
        gate.on_output(4096, flood);
        assert_eq!(gate.hold_until(flood), None);
        gate.on_frame(flood);
        let later = flood + ms / 10;
        gate.on_output(4096, later);
        assert_eq!(gate.hold_until(later), Some(flood + FLOOD_COALESCE));
        let due = flood + FLOOD_COALESCE;
        gate.on_output(4096, due);
        assert_eq!(gate.hold_until(due), None, "a refresh has passed");
        gate.on_frame(due);
        // Still flooding in the next window: held again.
        gate.on_output(4096, due + ms);
        assert_eq!(gate.hold_until(due + ms), Some(due + FLOOD_COALESCE));

        // Quiet for two refreshes: the flood is over and an echo goes at once.
        let after = due + FLOOD_COALESCE * 3;
        gate.on_output(1, after);
        assert_eq!(gate.hold_until(after), None);
    }
}
