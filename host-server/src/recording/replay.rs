//! Replaying a recording through the emulator into frames for the player.
//!
//! The page's player draws the same [`Frame`]s as the live terminal, with
//! the same renderer, so a recording is replayed here the way its host ran
//! it: output through an [`Emulator`], the lines that scrolled drained
//! before a resize (alacritty pulls undrained history back onto a grid
//! that grows), and a synchronized update (mode 2026) flushed at the
//! deadline the session core would have kept, counted in recording time.
//! What a program gives the owner alone (clipboard writes, notifications)
//! and what only a live program gets (answers to its queries, downloads)
//! are dropped: a recording shows a screen and acts for no one.
//!
//! The player fetches the recording a [`window`] of time at a time, in the
//! wire form of [`encode_window`]: a full frame of the screen at the
//! window's start, so it can seek anywhere, then the changes as a viewer
//! would have seen them, one frame per [`FRAME_MS`] of recording time at
//! most.

use protocol::{
    Cursor, Frame, Hyperlink, Line, Modes, RowUpdate, ServerToClientMsg, Size, decode_server,
    encode_server,
};

use super::{Event, TimedEvent};
use crate::emulator::Emulator;
use crate::pacer::FLOOD_COALESCE;

/// Recording time one player frame gathers, as the host's display refresh
/// does.
///
/// A live viewer gets a frame per burst of output, and under a flood at
/// most one per refresh (`FrameGate`, `FLOOD_COALESCE`); the page draws at
/// most once per display refresh either way. Gathering each 16 ms of
/// recording into one frame therefore hides nothing a viewer could have
/// seen, and caps a flood's replay at about 62 frames a second.
pub const FRAME_MS: u64 = 16;

// The player's frame is the host's refresh: if one changes, so does the
// other.
const _: () = assert!(FLOOD_COALESCE.as_millis() == FRAME_MS as u128);

/// A recording being played back: an emulator fed its events, and the
/// frames that bring a player's screen along.
pub struct Replayer {
    emulator: Emulator,
    /// The `seq` of the last frame taken; the first frame is 1.
    seq: u64,
    /// Recording time of the latest event applied. An event stamped earlier
    /// (a clock that stepped back across a failover) is taken to happen
    /// now, so time here never runs backwards.
    now_ms: u64,
    /// The synchronized update being timed: which one (the emulator's
    /// count) and when, in recording time, it is flushed if the program
    /// never ends it. `SessionCore::time_sync` keeps the same deadline in
    /// real time.
    sync_due: Option<(u64, u64)>,
    /// The player's screen as the frames taken so far left it. Alacritty
    /// reports the cursor's row damaged whether or not it changed, and a
    /// query or a still-buffering synchronized update marks the emulator
    /// dirty without a visible change, so frames carry only the rows that
    /// differ from this, and a frame that changes nothing is not taken.
    shown: Shown,
}

/// What a player's screen shows after the frames taken so far.
#[derive(Default)]
struct Shown {
    rows: Vec<(Line, Vec<Hyperlink>)>,
    cursor: Cursor,
    modes: Modes,
}

impl Replayer {
    /// A replayer for a recording that starts at `size`.
    pub fn new(size: Size) -> Replayer {
        Replayer {
            emulator: Emulator::new(size),
            seq: 0,
            now_ms: 0,
            sync_due: None,
            shown: Shown::default(),
        }
    }

    /// Applies one event at its time, after flushing a synchronized update
    /// that was overdue by then: output is fed to the emulator (what it
    /// would send the program or hand the user is dropped), a resize
    /// resizes it, a marker changes nothing.
    pub fn apply(&mut self, event: &TimedEvent) {
        let at_ms = event.at_ms.max(self.now_ms);
        self.advance_to(at_ms);
        match &event.event {
            Event::Output(bytes) => {
                self.emulator.feed(bytes);
                drop(self.emulator.take_replies());
                drop(self.emulator.take_downloads());
                self.time_sync();
            }
            Event::Resize(size) => {
                // As the session core does: the emulator may keep fewer
                // lines at the new size, and lines still in its history
                // would come back onto a grid that grows.
                drop(self.emulator.drain_scrolled());
                self.emulator.resize(*size);
            }
            Event::Marker(_) => {}
        }
    }

    /// Lets recording time run to `now_ms` (never backwards): a
    /// synchronized update whose wait is over by then is flushed.
    pub fn advance_to(&mut self, now_ms: u64) {
        self.now_ms = self.now_ms.max(now_ms);
        if self.sync_due.is_some_and(|(_, at)| at <= self.now_ms) {
            self.emulator.flush_sync();
            drop(self.emulator.take_replies());
            self.time_sync();
        }
    }

    /// When, in recording time, the synchronized update buffering output
    /// will be flushed if no event ends it first.
    pub fn deadline_ms(&self) -> Option<u64> {
        self.sync_due.map(|(_, at)| at)
    }

    /// Keeps the deadline of the emulator's synchronized update: one that
    /// started (or was extended) with the output just fed waits from now.
    fn time_sync(&mut self) {
        self.sync_due = match (self.emulator.sync_timeout(), self.sync_due) {
            (None, _) => None,
            (Some(sync), Some((started, at))) if started == sync.started => Some((started, at)),
            (Some(sync), _) => {
                let wait = u64::try_from(sync.wait.as_millis()).unwrap_or(u64::MAX);
                Some((sync.started, self.now_ms.saturating_add(wait)))
            }
        };
    }

    /// The whole screen as it is now (`full: true`, no scrolled lines, no
    /// bell). The frames taken after it carry what changed since.
    pub fn full_frame(&mut self) -> Frame {
        drop(self.emulator.drain_scrolled());
        self.emulator.mark_full();
        let frame = self.take(false);
        self.seq = frame.seq;
        self.shown.apply(&frame);
        frame
    }

    /// What changed since the last frame taken, or None if nothing did.
    /// After a resize it is a full frame at the new size: the player's
    /// screen keeps rows across a size change, the emulator has reflowed
    /// them.
    pub fn frame(&mut self) -> Option<Frame> {
        if !self.emulator.is_dirty() {
            return None;
        }
        drop(self.emulator.drain_scrolled());
        let mut frame = self.take(true);
        if !frame.full {
            let shown = &self.shown;
            frame.rows.retain(|update| !shown.has(update));
            let unchanged = frame.rows.is_empty()
                && frame.cursor == shown.cursor
                && frame.modes == shown.modes
                && frame.title.is_none()
                && !frame.bell;
            if unchanged {
                // Its seq stays free: the player's frames are numbered
                // without gaps.
                return None;
            }
        }
        self.seq = frame.seq;
        self.shown.apply(&frame);
        Some(frame)
    }

    /// The emulator's next frame, numbered after the last one kept, without
    /// what a recording never shows: the clipboard and notifications, and
    /// the bell unless `bell`.
    fn take(&mut self, bell: bool) -> Frame {
        let mut frame = self.emulator.frame(self.seq + 1, Vec::new());
        frame.clipboard = None;
        frame.notification = None;
        frame.bell &= bell;
        frame
    }

    /// The terminal's size now.
    pub fn size(&self) -> Size {
        self.emulator.size()
    }

    /// The visible rows' text, as `Emulator::screen_text` gives it.
    pub fn screen_text(&self) -> Vec<String> {
        self.emulator.screen_text()
    }
}

impl Shown {
    /// Whether the screen already shows `update`'s row.
    fn has(&self, update: &RowUpdate) -> bool {
        self.rows
            .get(usize::from(update.row))
            .is_some_and(|(line, links)| *line == update.line && *links == update.links)
    }

    /// The screen after `frame`: a full one clears it (at its size) first.
    fn apply(&mut self, frame: &Frame) {
        if frame.full {
            self.rows = vec![Default::default(); usize::from(frame.size.rows)];
        }
        for update in &frame.rows {
            if let Some(row) = self.rows.get_mut(usize::from(update.row)) {
                *row = (update.line.clone(), update.links.clone());
            }
        }
        self.cursor = frame.cursor;
        self.modes = frame.modes;
    }
}

/// A stretch of a recording as frames for the player, each with the
/// recording time it is shown at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Window {
    /// Where the window ended: the time asked for, or, when it was cut
    /// short at its most frames, the end of the last frame's slot. The next
    /// window starts here.
    pub end_ms: u64,
    pub frames: Vec<(u64, Frame)>,
}

/// Replays `events` (the whole recording, in time order, starting at
/// `size`) and returns the frames of `[from_ms, to_ms)`.
///
/// The first frame is a full one of the screen as it was at `from_ms`
/// (every event at or before it applied), timed `from_ms`. Then, for every
/// [`FRAME_MS`] slot of recording time (slots are counted from the
/// recording's start, so windows that meet agree on them) in which the
/// screen changed, one frame timed at the last change of that slot:
/// played at their times they show what a live viewer saw.
///
/// A window holds at most `max_frames` frames, and at least the full frame
/// and one more: a player asking for the next window from `end_ms` always
/// gets further.
pub fn window(
    size: Size,
    events: &[TimedEvent],
    from_ms: u64,
    to_ms: u64,
    max_frames: usize,
) -> Window {
    Playhead::new(size).window(events, from_ms, to_ms, max_frames)
}

/// A replay stopped where its last window ended, to serve the next one
/// without replaying the recording from its start: a player playing on, or
/// seeking forward, asks for windows in order. Valid for the same
/// recording read again later, since a recording only grows at its end.
pub struct Playhead {
    replayer: Replayer,
    /// Events of the recording already applied, and the time of the last.
    consumed: usize,
    last_at: Option<u64>,
}

impl Playhead {
    pub fn new(size: Size) -> Playhead {
        Playhead {
            replayer: Replayer::new(size),
            consumed: 0,
            last_at: None,
        }
    }

    /// Whether this playhead can serve a window of `events` from
    /// `from_ms`: it has not passed that moment, and `events` begins with
    /// what it applied.
    pub fn serves(&self, events: &[TimedEvent], from_ms: u64) -> bool {
        let same_start = match (self.consumed.checked_sub(1), self.last_at) {
            (None, _) => true,
            (Some(last), Some(at)) => events.get(last).is_some_and(|e| e.at_ms == at),
            (Some(_), None) => false,
        };
        same_start && self.replayer.now_ms <= from_ms
    }

    /// The frames of `events` between `from_ms` and `to_ms`, as [`window`]
    /// gives them, from where this playhead stands (`serves` must hold;
    /// otherwise the window starts from what it holds, later than asked).
    pub fn window(
        &mut self,
        events: &[TimedEvent],
        from_ms: u64,
        to_ms: u64,
        max_frames: usize,
    ) -> Window {
        let mut rest = events.get(self.consumed..).unwrap_or_default();
        let window = self.play(&mut rest, from_ms, to_ms, max_frames);
        self.consumed = events.len() - rest.len();
        self.last_at = self
            .consumed
            .checked_sub(1)
            .and_then(|i| events.get(i))
            .map(|e| e.at_ms);
        window
    }

    fn play(
        &mut self,
        rest: &mut &[TimedEvent],
        from_ms: u64,
        to_ms: u64,
        max_frames: usize,
    ) -> Window {
        let replayer = &mut self.replayer;
        let max_frames = max_frames.max(2);
        while let Some((event, tail)) = rest.split_first()
            && event.at_ms <= from_ms
        {
            replayer.apply(event);
            *rest = tail;
        }
        replayer.advance_to(from_ms);
        let mut frames = vec![(from_ms, replayer.full_frame())];
        while let Some(first) = next_change(replayer, rest).filter(|&at| at < to_ms) {
            // The slot of the first change; the window's end cuts the last.
            let slot_end = (first / FRAME_MS)
                .saturating_add(1)
                .saturating_mul(FRAME_MS)
                .min(to_ms);
            let mut last = first;
            while let Some(at) = next_change(replayer, rest).filter(|&at| at < slot_end) {
                match rest.split_first() {
                    Some((event, tail)) if event.at_ms.max(replayer.now_ms) == at => {
                        replayer.apply(event);
                        *rest = tail;
                    }
                    _ => {
                        replayer.advance_to(at);
                    }
                }
                last = at;
            }
            if let Some(frame) = replayer.frame() {
                frames.push((last, frame));
                if frames.len() >= max_frames {
                    let more = next_change(replayer, rest).is_some_and(|at| at < to_ms);
                    let end_ms = if more { slot_end } else { to_ms };
                    return Window { end_ms, frames };
                }
            }
        }
        Window {
            end_ms: to_ms.max(from_ms),
            frames,
        }
    }
}

/// When the screen may change next: the next event, or the synchronized
/// update's deadline if that comes first.
fn next_change(replayer: &Replayer, rest: &[TimedEvent]) -> Option<u64> {
    let event = rest.first().map(|e| e.at_ms.max(replayer.now_ms));
    match (event, replayer.deadline_ms()) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
    .map(|at| at.max(replayer.now_ms))
}

/// The wire form of a window, which the directory serves and the page's
/// player reads: `end_ms` as a little-endian u64, then for each frame its
/// time (u64 LE), its length (u32 LE) and the frame as the live terminal
/// gets it, `encode_server(&ServerToClientMsg::Frame(frame))`.
pub fn encode_window(window: &Window) -> Vec<u8> {
    let mut out = window.end_ms.to_le_bytes().to_vec();
    for (at_ms, frame) in &window.frames {
        let message = encode_server(&ServerToClientMsg::Frame(frame.clone()));
        // No frame comes near 4 GiB (a full one of the largest grid is a
        // few MiB); one that did could not be read back and is left out.
        let Ok(len) = u32::try_from(message.len()) else {
            continue;
        };
        out.extend_from_slice(&at_ms.to_le_bytes());
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(&message);
    }
    out
}

/// Reads what [`encode_window`] wrote: an error for anything else
/// (truncated, a message that is not a frame, frames out of time order).
pub fn decode_window(bytes: &[u8]) -> Result<Window, String> {
    let mut reader = Reader(bytes);
    let end_ms = reader.u64().ok_or("a window too short for its end time")?;
    let mut frames: Vec<(u64, Frame)> = Vec::new();
    while !reader.0.is_empty() {
        let n = frames.len();
        let at_ms = reader
            .u64()
            .ok_or_else(|| format!("frame {n}: truncated time"))?;
        let len = reader
            .u32()
            .ok_or_else(|| format!("frame {n}: truncated length"))?;
        let message = usize::try_from(len)
            .ok()
            .and_then(|len| reader.take(len))
            .ok_or_else(|| format!("frame {n}: {len} bytes announced, fewer follow"))?;
        let frame = match decode_server(message) {
            Ok(ServerToClientMsg::Frame(frame)) => frame,
            Ok(_) => return Err(format!("frame {n}: a message that is not a frame")),
            Err(e) => return Err(format!("frame {n}: {e}")),
        };
        if frames.last().is_some_and(|(before, _)| *before > at_ms) {
            return Err(format!("frame {n}: earlier than the frame before it"));
        }
        frames.push((at_ms, frame));
    }
    Ok(Window { end_ms, frames })
}

/// A cursor over bytes that never reads past their end.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if n > self.0.len() {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }

    fn u64(&mut self) -> Option<u64> {
        let bytes = self.take(8)?.try_into().ok()?;
        Some(u64::from_le_bytes(bytes))
    }

    fn u32(&mut self) -> Option<u32> {
        let bytes = self.take(4)?.try_into().ok()?;
        Some(u32::from_le_bytes(bytes))
    }
}

/// The screen's text after every event, and after a synchronized update
/// left open at the end has been flushed, as its host would have: what a
/// recording ends on.
pub fn final_screen(size: Size, events: &[TimedEvent]) -> Vec<String> {
    let mut replayer = Replayer::new(size);
    for event in events {
        replayer.apply(event);
    }
    replayer.advance_to(u64::MAX);
    replayer.screen_text()
}

#[cfg(test)]
mod tests;
