//! Server-side terminal emulation: program output in, protocol frames out.
//!
//! `alacritty_terminal` parses the bytes and keeps the grid; this module turns
//! its damage into [`Frame`]s and moves lines that scrolled off the top into
//! the session's scrollback. It does no IO, so the ref tests at the bottom
//! feed recorded bytes and compare grids without a PTY.
//!
//! Alacritty stores every row at the terminal's full width, so what a session
//! costs the host grows with columns × rows × history. [`CellBudget`] caps
//! that product: wider terminals keep fewer history lines, and a grid too big
//! to keep any history within the budget is shrunk ([`GridFit`]).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use alacritty_terminal::event::{Event, EventListener, WindowSize};
use alacritty_terminal::grid::Dimensions;
use alacritty_terminal::index::{Column, Line as GridLine};
use alacritty_terminal::term::cell::{Cell, Flags};
use alacritty_terminal::term::{Config, Term, TermDamage, TermMode};
use alacritty_terminal::vte::ansi::{
    Color as AnsiColor, CursorShape as AnsiCursorShape, NamedColor, Processor, Rgb, Timeout,
};
use protocol::{
    CellLayout, Color, Cursor, CursorShape, Frame, Hyperlink, Line, Modes, Notification, RowUpdate,
    Run, Size, Style, StyleFlags, linkable,
};

use self::notify::NotifyScanner;
pub use self::notify::Request;

mod notify;

/// Most lines alacritty may hold between two drains, at any width; the
/// session's scrollback keeps as many as the emulator does
/// ([`Emulator::history_limit`]). Anything older would also have left a
/// scrollback of the same length, so a flood that outruns the drains loses
/// nothing the user could scroll to.
pub const SCROLLBACK_LINES: usize = 10_000;

/// Cells one session's emulator may hold by default: 2 Mi cells, 48 MiB of
/// alacritty's 24-byte cells.
///
/// That keeps the full [`SCROLLBACK_LINES`] up to 200 columns × 50 rows
/// (200 × (2 × 50 + 10,000) = 2.02 M cells), so common terminals lose no
/// history to the budget, and still leaves the largest grid the protocol
/// allows ([`Size::MAX`], 1000 × 500) its first thousand lines of history,
/// where the unbudgeted emulator grew to 10,500 rows of 1000 cells (250 MB).
/// The heap a session takes is that many cells as the allocator rounds
/// them up (2.4 % more for 1000-cell rows), plus about 2 MiB that every
/// terminal costs, mostly the parser's buffer for synchronized updates; the
/// heap tests in `emulator/tests.rs` measure it.
pub const CELL_BUDGET: usize = 2 * 1024 * 1024;

/// Rows alacritty adds to a grid's storage at a time when its history grows
/// (its `MAX_CACHE_SIZE`). A history that is not a multiple of this still
/// pays for whole chunks, so history limits are whole chunks.
const HISTORY_CHUNK: usize = 1000;

/// Cells alacritty holds for a terminal of `size` keeping `history` lines:
/// the primary screen with its history, plus the alternate screen, which is
/// allocated in full from the start whether a program uses it or not.
pub const fn cells_held(size: Size, history: usize) -> usize {
    size.cols as usize * (2 * size.rows as usize + history)
}

// The protocol's size limit and the budget agree: by default every size a
// client may ask for fits with some history, and the common ones with all
// of it.
const _: () = assert!(cells_held(Size::MAX, HISTORY_CHUNK) <= CELL_BUDGET);
const _: () = assert!(
    cells_held(
        Size {
            cols: 200,
            rows: 50
        },
        SCROLLBACK_LINES
    ) <= CELL_BUDGET
);
const _: () = assert!(SCROLLBACK_LINES.is_multiple_of(HISTORY_CHUNK));

/// How many cells a session's emulator may hold: the screens and the
/// history together, so that a session's memory is bounded at every width.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CellBudget(usize);

impl Default for CellBudget {
    fn default() -> Self {
        CellBudget(CELL_BUDGET)
    }
}

impl CellBudget {
    /// The smallest budget there is: an 80 × 24 terminal with one chunk of
    /// history, so the default size is never clamped.
    pub const MIN: CellBudget = CellBudget(cells_held(Size { cols: 80, rows: 24 }, HISTORY_CHUNK));

    /// A budget of `cells`, raised to [`CellBudget::MIN`].
    pub fn new(cells: usize) -> CellBudget {
        CellBudget(cells.max(Self::MIN.0))
    }

    pub fn cells(self) -> usize {
        self.0
    }

    /// History lines a terminal of `size` may keep: what the budget leaves
    /// after both screens, in whole chunks, at most [`SCROLLBACK_LINES`].
    /// Zero means the grid itself is too big for the budget.
    pub fn history_lines(self, size: Size) -> usize {
        let cols = usize::from(size.cols).max(1);
        let rows = (self.0 / cols).saturating_sub(2 * usize::from(size.rows));
        (rows - rows % HISTORY_CHUNK).min(SCROLLBACK_LINES)
    }

    /// Whether a terminal of `size` keeps some history within the budget.
    pub fn admits(self, size: Size) -> bool {
        self.history_lines(size) > 0
    }

    /// The size a client asking for `asked` gets: within the protocol's
    /// limits ([`Size::clamped`]) and then, if the grid alone leaves no room
    /// for history, the largest admitted size of the shape asked for.
    pub fn fit(self, asked: Size) -> GridFit {
        let clamped = asked.clamped();
        let granted = if self.admits(clamped) {
            clamped
        } else {
            self.shrink(clamped)
        };
        GridFit {
            asked,
            granted,
            budget: self,
        }
    }

    /// The largest admitted size with `size`'s shape. Both sides shrink by
    /// the same factor, since any shape of the same area costs the same; the
    /// protocol's per-side limits are clamped side by side instead.
    fn shrink(self, size: Size) -> Size {
        let (cols, rows) = (usize::from(size.cols), usize::from(size.rows));
        for r in (usize::from(Size::MIN.rows)..=rows).rev() {
            let c = ((cols * r + rows / 2) / rows).max(usize::from(Size::MIN.cols));
            let candidate = Size {
                cols: u16::try_from(c).unwrap_or(Size::MAX.cols),
                rows: u16::try_from(r).unwrap_or(Size::MAX.rows),
            };
            if self.admits(candidate) {
                return candidate;
            }
        }
        // Even one row of that shape is too wide: keep one row and as many
        // columns as fit. MIN guarantees at least 80 of them.
        let widest = self.0 / (2 + HISTORY_CHUNK);
        Size {
            cols: u16::try_from(widest.min(cols)).unwrap_or(Size::MAX.cols),
            rows: Size::MIN.rows,
        }
    }
}

/// What became of a size a client asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GridFit {
    pub asked: Size,
    pub granted: Size,
    pub budget: CellBudget,
}

impl GridFit {
    /// Whether the client got fewer columns or rows than it asked for (a
    /// size below the protocol's minimum is raised, which needs no notice).
    pub fn is_clamped(&self) -> bool {
        self.granted.cols < self.asked.cols || self.granted.rows < self.asked.rows
    }

    /// What to tell the user when their window was clamped.
    pub fn notice(&self) -> Option<String> {
        if !self.is_clamped() {
            return None;
        }
        let (asked, granted) = (self.asked, self.granted);
        Some(if asked.clamped() == granted {
            format!(
                "the terminal is limited to {} cells on this host; the window's {asked} was clamped to {granted}",
                Size::MAX
            )
        } else {
            format!(
                "the terminal is limited to {} cells on this host, history included; the window's {asked} was clamped to {granted}",
                self.budget.0
            )
        })
    }
}

/// The default colours the client's theme uses, needed to answer programs
/// that ask for them (vim asks for the background to pick light or dark).
const THEME_FOREGROUND: Rgb = Rgb {
    r: 0xd4,
    g: 0xd4,
    b: 0xd4,
};
const THEME_BACKGROUND: Rgb = Rgb {
    r: 0x1e,
    g: 0x1e,
    b: 0x1e,
};

/// What the terminal asked of its surroundings while parsing.
#[derive(Default)]
struct Requests {
    /// Bytes the terminal answers the program with (DSR, DA, colour queries).
    replies: Vec<u8>,
    title: Option<Option<String>>,
    bell: bool,
    /// The last text a program asked to put on the clipboard (OSC 52).
    clipboard: Option<String>,
}

#[derive(Clone, Default)]
struct Listener {
    requests: Arc<Mutex<Requests>>,
    size: Arc<Mutex<Size>>,
}

impl EventListener for Listener {
    fn send_event(&self, event: Event) {
        // A poisoned lock only means another thread panicked mid-update of
        // plain data; the data is still usable.
        let mut requests = self.requests.lock().unwrap_or_else(|e| e.into_inner());
        match event {
            Event::PtyWrite(text) => requests.replies.extend_from_slice(text.as_bytes()),
            Event::Title(title) => requests.title = Some(Some(title)),
            Event::ResetTitle => requests.title = Some(None),
            Event::Bell => requests.bell = true,
            // OSC 52 writes go to the page, which puts them on the clipboard
            // only if the user allowed programs to (a setting of theirs).
            // Larger than the protocol carries: dropped, as xterm drops
            // what exceeds its own limit.
            Event::ClipboardStore(_, text) if text.len() <= protocol::MAX_CLIPBOARD => {
                requests.clipboard = Some(text);
            }
            Event::ColorRequest(index, format) => {
                let rgb = match index {
                    256 => THEME_FOREGROUND,
                    257 => THEME_BACKGROUND,
                    i if i < 256 => xterm_rgb(i as u8),
                    _ => THEME_FOREGROUND,
                };
                requests.replies.extend_from_slice(format(rgb).as_bytes());
            }
            Event::TextAreaSizeRequest(format) => {
                let size = *self.size.lock().unwrap_or_else(|e| e.into_inner());
                let window = WindowSize {
                    num_lines: size.rows,
                    num_cols: size.cols,
                    cell_width: 8,
                    cell_height: 16,
                };
                requests
                    .replies
                    .extend_from_slice(format(window).as_bytes());
            }
            // OSC 52 reads (ClipboardLoad) are never answered: they would
            // leak the user's clipboard to whatever runs in the session.
            _ => {}
        }
    }
}

/// The xterm 256-colour palette (the first 16 follow the client's theme).
pub fn xterm_rgb(index: u8) -> Rgb {
    const ANSI: [(u8, u8, u8); 16] = [
        (0x00, 0x00, 0x00),
        (0xcd, 0x31, 0x31),
        (0x0d, 0xbc, 0x79),
        (0xe5, 0xe5, 0x10),
        (0x24, 0x72, 0xc8),
        (0xbc, 0x3f, 0xbc),
        (0x11, 0xa8, 0xcd),
        (0xe5, 0xe5, 0xe5),
        (0x66, 0x66, 0x66),
        (0xf1, 0x4c, 0x4c),
        (0x23, 0xd1, 0x8b),
        (0xf5, 0xf5, 0x43),
        (0x3b, 0x8e, 0xea),
        (0xd6, 0x70, 0xd6),
        (0x29, 0xb8, 0xdb),
        (0xff, 0xff, 0xff),
    ];
    let (r, g, b) = match index {
        0..=15 => ANSI[index as usize],
        16..=231 => {
            let i = index - 16;
            let level = |v: u8| if v == 0 { 0 } else { 55 + v * 40 };
            (level(i / 36), level((i / 6) % 6), level(i % 6))
        }
        _ => {
            let v = 8 + (index - 232) * 10;
            (v, v, v)
        }
    };
    Rgb { r, g, b }
}

/// A terminal emulator for one session.
pub struct Emulator {
    term: Term<Listener>,
    parser: Processor<SyncTimer>,
    listener: Listener,
    size: Size,
    /// The title as last sent, so frames carry it only when it changes.
    title: Option<String>,
    title_changed: bool,
    bell: bool,
    /// Clipboard text for the next frame (OSC 52).
    clipboard: Option<String>,
    /// Notifications a program asked for (OSC 9 / 777), which alacritty's
    /// parser drops: found by a scan of their own over the same bytes.
    notify_scan: NotifyScanner,
    /// The last notification since the last frame (a frame carries one):
    /// a program printing OSC 9 in a loop with no client attached holds
    /// one, not all of them.
    notification: Option<Notification>,
    /// Files `tl-download` asked to hand the user, until the core takes
    /// them (`take_downloads`).
    downloads: Vec<(String, Vec<u8>)>,
    /// Scratch for the scan's requests.
    requests: Vec<Request>,
    /// The next frame must repaint every row (after attach or resize).
    force_full: bool,
    /// Output arrived since the last frame. Tracked here because alacritty
    /// always reports the cursor row as damaged, so its damage cannot say
    /// "nothing happened".
    dirty: bool,
    budget: CellBudget,
    /// The primary grid's history limit, `budget.history_lines(size)`.
    history: usize,
    /// Memory the primary grid may hold beyond its size since a resize, not
    /// given back yet because a program showed the alternate screen.
    primary_slack: Slack,
}

/// Memory a grid holds beyond what its size needs, after a resize.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Slack {
    None,
    /// Rows allocated ahead of need (alacritty adds a thousand at a time
    /// when a grid grows, and keeps up to a thousand when it shrinks).
    SpareRows,
    /// Spare rows, and rows whose capacity is another width's: a row keeps
    /// its cells when the grid narrows and doubles them when it widens.
    Capacity,
}

/// A synchronized update that is buffering output: the `started`th one
/// this emulator has seen, to be flushed `wait` after it started.
///
/// The emulator reads no clock, so it cannot say *when* that is; whoever
/// fed it the bytes that started the update knows the time they arrived
/// and keeps the deadline (`SessionCore` does). `started` tells a new
/// update from the one already timed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SyncTimeout {
    pub started: u64,
    pub wait: Duration,
}

/// The parser's timer for synchronized updates. vte's own
/// (`StdSyncHandler`) reads the system clock when an update starts; this
/// one only counts and remembers the wait, which keeps the emulator, and
/// so the session core, free of clock reads and testable with a fake clock.
#[derive(Debug, Default)]
struct SyncTimer {
    armed: Option<SyncTimeout>,
    started: u64,
}

impl Timeout for SyncTimer {
    fn set_timeout(&mut self, wait: Duration) {
        self.started += 1;
        self.armed = Some(SyncTimeout {
            started: self.started,
            wait,
        });
    }

    fn clear_timeout(&mut self) {
        self.armed = None;
    }

    fn pending_timeout(&self) -> bool {
        self.armed.is_some()
    }
}

/// Alacritty wants its size as a `Dimensions`.
struct GridSize(Size);

impl Dimensions for GridSize {
    fn total_lines(&self) -> usize {
        self.screen_lines()
    }
    fn screen_lines(&self) -> usize {
        usize::from(self.0.rows)
    }
    fn columns(&self) -> usize {
        usize::from(self.0.cols)
    }
}

fn history_config(history: usize) -> Config {
    Config {
        scrolling_history: history,
        ..Config::default()
    }
}

impl Emulator {
    /// An emulator within the default [`CellBudget`].
    pub fn new(size: Size) -> Emulator {
        Emulator::with_budget(size, CellBudget::default())
    }

    /// An emulator of `size`, or of what fits `budget` if that is smaller.
    pub fn with_budget(size: Size, budget: CellBudget) -> Emulator {
        let size = budget.fit(size).granted;
        let history = budget.history_lines(size);
        let listener = Listener::default();
        *listener.size.lock().unwrap_or_else(|e| e.into_inner()) = size;
        let term = Term::new(history_config(history), &GridSize(size), listener.clone());
        Emulator {
            term,
            parser: Processor::new(),
            listener,
            size,
            title: None,
            title_changed: false,
            bell: false,
            clipboard: None,
            notify_scan: NotifyScanner::default(),
            notification: None,
            downloads: Vec::new(),
            requests: Vec::new(),
            force_full: true,
            dirty: true,
            budget,
            history,
            primary_slack: Slack::None,
        }
    }

    pub fn size(&self) -> Size {
        self.size
    }

    pub fn budget(&self) -> CellBudget {
        self.budget
    }

    /// The most lines that can wait to be drained at the current size; the
    /// session's scrollback and its persisted history keep as many.
    pub fn history_limit(&self) -> usize {
        self.history
    }

    /// What a request for `size` would get.
    pub fn fit(&self, size: Size) -> GridFit {
        self.budget.fit(size)
    }

    pub fn title(&self) -> Option<&str> {
        self.title.as_deref()
    }

    /// Parses program output.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.notify_scan.scan(bytes, &mut self.requests);
        for request in self.requests.drain(..) {
            match request {
                Request::Notify(note) => self.notification = Some(note),
                Request::Download { key, path } => self.downloads.push((key, path)),
            }
        }
        self.parser.advance(&mut self.term, bytes);
        self.dirty |= !bytes.is_empty();
        self.collect_requests_state();
        if self.primary_slack != Slack::None && !self.term.mode().contains(TermMode::ALT_SCREEN) {
            let slack = std::mem::replace(&mut self.primary_slack, Slack::None);
            self.release_active(slack);
        }
    }

    /// The synchronized update (mode 2026) buffering output, if one is: it
    /// must be flushed (`flush_sync`) once its wait has passed, even if the
    /// program never ends it.
    pub fn sync_timeout(&self) -> Option<SyncTimeout> {
        self.parser.sync_timeout().armed
    }

    /// Ends an overdue synchronized update.
    pub fn flush_sync(&mut self) {
        self.parser.stop_sync(&mut self.term);
        self.dirty = true;
        self.collect_requests_state();
    }

    /// Bytes the terminal must send back to the program (answers to
    /// queries); empty most of the time.
    pub fn take_replies(&mut self) -> Vec<u8> {
        let mut requests = self
            .listener
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        std::mem::take(&mut requests.replies)
    }

    fn collect_requests_state(&mut self) {
        let mut requests = self
            .listener
            .requests
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(title) = requests.title.take()
            && title != self.title
        {
            self.title = title;
            self.title_changed = true;
        }
        if std::mem::take(&mut requests.bell) {
            self.bell = true;
        }
        if let Some(text) = requests.clipboard.take() {
            self.clipboard = Some(text);
        }
    }

    /// Resizes to `size`, or to what fits the budget, and says which.
    ///
    /// A smaller history drops the oldest lines still waiting to be drained,
    /// so callers drain first; draining also keeps the grid's storage in
    /// whole history chunks, which `cells_held` counts on.
    pub fn resize(&mut self, size: Size) -> GridFit {
        let fit = self.budget.fit(size);
        let size = fit.granted;
        if size == self.size {
            return fit;
        }
        let history = self.budget.history_lines(size);
        // A shorter history is set before the resize, so a wider grid does
        // not first widen the lines it is about to drop; a longer one after,
        // so a narrower grid's reflow stays within the old, wider budget.
        if history < self.history {
            self.set_history(history);
        }
        let slack = if size.cols == self.size.cols {
            Slack::SpareRows
        } else {
            Slack::Capacity
        };
        self.size = size;
        *self.listener.size.lock().unwrap_or_else(|e| e.into_inner()) = size;
        self.term.resize(GridSize(size));
        if history > self.history {
            self.set_history(history);
        }
        self.release_slack(slack);
        self.force_full = true;
        fit
    }

    fn set_history(&mut self, history: usize) {
        self.history = history;
        self.term.set_options(history_config(history));
        // Alacritty re-announces the title on a config change; it is the
        // same title, so this only clears the request.
        self.collect_requests_state();
    }

    /// Gives back what both grids hold beyond their new size.
    fn release_slack(&mut self, slack: Slack) {
        if self.term.mode().contains(TermMode::ALT_SCREEN) {
            // The primary grid is out of reach until the program leaves the
            // alternate screen; `feed` releases it then.
            self.release_active(slack);
            self.primary_slack = self.primary_slack.max(slack);
            return;
        }
        self.release_active(slack.max(self.primary_slack));
        self.primary_slack = Slack::None;
        // The alternate grid is reachable only by switching to it. Going
        // there and back shows a program nothing: its contents are reset
        // whenever a program enters it, and the one primary state the
        // switch overwrites, the saved cursor, is put back.
        let saved_cursor = self.term.grid().saved_cursor.clone();
        self.term.swap_alt();
        self.release_active(slack);
        self.term.swap_alt();
        self.term.grid_mut().saved_cursor = saved_cursor;
    }

    /// Gives back what the grid on screen holds beyond its size.
    fn release_active(&mut self, slack: Slack) {
        let grid = self.term.grid_mut();
        match slack {
            Slack::None => {}
            Slack::SpareRows => grid.truncate(),
            Slack::Capacity => {
                grid.truncate();
                // A clone allocates every row at its length.
                let compact = grid.clone();
                *grid = compact;
            }
        }
    }

    /// The download requests (key, path) found since the last call.
    pub fn take_downloads(&mut self) -> Vec<(String, Vec<u8>)> {
        std::mem::take(&mut self.downloads)
    }

    /// Whether anything changed since the last frame.
    pub fn is_dirty(&self) -> bool {
        self.dirty
            || self.force_full
            || self.title_changed
            || self.bell
            || self.clipboard.is_some()
            || self.notification.is_some()
    }

    /// Makes the next frame a full repaint (a client just attached).
    pub fn mark_full(&mut self) {
        self.force_full = true;
        self.title_changed = self.title.is_some();
    }

    /// How many lines are waiting to be drained.
    pub fn scrolled_len(&self) -> usize {
        if self.term.mode().contains(TermMode::ALT_SCREEN) {
            0
        } else {
            self.term.grid().history_size()
        }
    }

    /// Whether lines are waiting to be drained.
    pub fn has_scrolled(&self) -> bool {
        self.scrolled_len() > 0
    }

    /// Moves the lines that left the top of the primary screen out of the
    /// emulator, oldest first.
    pub fn drain_scrolled(&mut self) -> Vec<Line> {
        let grid = self.term.grid();
        let history = grid.history_size();
        if history == 0 || self.term.mode().contains(TermMode::ALT_SCREEN) {
            return Vec::new();
        }
        let lines = (1..=history)
            .rev()
            .map(|back| convert_row(&grid[GridLine(-(back as i32))]))
            .collect();
        self.term.grid_mut().clear_history();
        lines
    }

    /// Builds the frame that brings a client from the previous frame to now,
    /// and forgets the damage it covers.
    pub fn frame(&mut self, seq: u64, scrolled: Vec<Line>) -> Frame {
        let full = std::mem::take(&mut self.force_full);
        self.dirty = false;
        let rows_total = self.term.screen_lines();
        let mut changed = vec![full; rows_total];
        if !full {
            match self.term.damage() {
                TermDamage::Full => changed.iter_mut().for_each(|c| *c = true),
                TermDamage::Partial(lines) => {
                    for damage in lines {
                        if let Some(slot) = changed.get_mut(damage.line) {
                            *slot = true;
                        }
                    }
                }
            }
        }
        self.term.reset_damage();
        let grid = self.term.grid();
        let rows = changed
            .iter()
            .enumerate()
            .filter(|(_, c)| **c)
            .map(|(row, _)| {
                let grid_row = &grid[GridLine(row as i32)];
                RowUpdate {
                    row: row as u16,
                    line: convert_row(grid_row),
                    links: row_links(grid_row),
                }
            })
            .filter(|update| !(full && update.line == Line::default()))
            .collect();
        let title = if std::mem::take(&mut self.title_changed) {
            Some(self.title.clone().unwrap_or_default())
        } else {
            None
        };
        Frame {
            seq,
            size: self.size,
            full,
            scrolled,
            rows,
            cursor: self.cursor(),
            modes: self.modes(),
            title,
            bell: std::mem::take(&mut self.bell),
            clipboard: self.clipboard.take(),
            notification: self.notification.take(),
            // Facts of the input and the terminal, not of the screen: the
            // session core adds them.
            echo_ack: 0,
            tty: protocol::TtyModes::default(),
        }
    }

    /// A full repaint of the screen as it is now, for a client that joins
    /// or falls behind while another is attached: unlike `frame`, it
    /// forgets no damage and takes nothing one-shot (bell, clipboard,
    /// notifications), so the frames of the client attached before go on
    /// as they were.
    pub fn full_frame(&self, seq: u64) -> Frame {
        let grid = self.term.grid();
        let rows = (0..self.term.screen_lines())
            .filter_map(|row| {
                let grid_row = &grid[GridLine(row as i32)];
                let line = convert_row(grid_row);
                (line != Line::default()).then(|| RowUpdate {
                    row: row as u16,
                    line,
                    links: row_links(grid_row),
                })
            })
            .collect();
        Frame {
            seq,
            size: self.size,
            full: true,
            scrolled: Vec::new(),
            rows,
            cursor: self.cursor(),
            modes: self.modes(),
            title: self.title.clone(),
            bell: false,
            clipboard: None,
            notification: None,
            echo_ack: 0,
            tty: protocol::TtyModes::default(),
        }
    }

    /// The visible rows, for persisting the screen.
    pub fn visible_lines(&self) -> Vec<Line> {
        let grid = self.term.grid();
        (0..self.term.screen_lines())
            .map(|row| convert_row(&grid[GridLine(row as i32)]))
            .collect()
    }

    /// The visible rows as text, for logs, tests and restore notices.
    pub fn screen_text(&self) -> Vec<String> {
        let grid = self.term.grid();
        (0..self.term.screen_lines())
            .map(|row| convert_row(&grid[GridLine(row as i32)]).text())
            .collect()
    }

    pub fn cursor(&self) -> Cursor {
        let point = self.term.grid().cursor.point;
        let style = self.term.cursor_style();
        let visible = self.term.mode().contains(TermMode::SHOW_CURSOR)
            && style.shape != AnsiCursorShape::Hidden;
        Cursor {
            row: point.line.0.max(0) as u16,
            col: point.column.0 as u16,
            shape: match style.shape {
                AnsiCursorShape::Underline => CursorShape::Underline,
                AnsiCursorShape::Beam => CursorShape::Beam,
                AnsiCursorShape::HollowBlock => CursorShape::HollowBlock,
                AnsiCursorShape::Block | AnsiCursorShape::Hidden => CursorShape::Block,
            },
            visible,
            blink: style.blinking,
        }
    }

    pub fn modes(&self) -> Modes {
        const MAP: [(TermMode, u32); 12] = [
            (TermMode::APP_CURSOR, Modes::APP_CURSOR),
            (TermMode::APP_KEYPAD, Modes::APP_KEYPAD),
            (TermMode::BRACKETED_PASTE, Modes::BRACKETED_PASTE),
            (TermMode::ALT_SCREEN, Modes::ALT_SCREEN),
            (TermMode::MOUSE_REPORT_CLICK, Modes::MOUSE_CLICK),
            (TermMode::MOUSE_DRAG, Modes::MOUSE_DRAG),
            (TermMode::MOUSE_MOTION, Modes::MOUSE_MOTION),
            (TermMode::SGR_MOUSE, Modes::SGR_MOUSE),
            (TermMode::UTF8_MOUSE, Modes::UTF8_MOUSE),
            (TermMode::FOCUS_IN_OUT, Modes::FOCUS_EVENTS),
            (TermMode::ALTERNATE_SCROLL, Modes::ALTERNATE_SCROLL),
            (TermMode::LINE_FEED_NEW_LINE, Modes::LINE_FEED_NEW_LINE),
        ];
        let mode = *self.term.mode();
        Modes(
            MAP.iter()
                .filter(|(term, _)| mode.contains(*term))
                .fold(0, |bits, (_, ours)| bits | ours),
        )
    }
}

fn convert_color(color: AnsiColor) -> Color {
    match color {
        AnsiColor::Spec(rgb) => Color::Rgb(rgb.r, rgb.g, rgb.b),
        AnsiColor::Indexed(i) => Color::Indexed(i),
        AnsiColor::Named(named) => {
            let n = named as usize;
            if n < 16 {
                Color::Indexed(n as u8)
            } else {
                match named {
                    NamedColor::DimBlack => Color::Indexed(0),
                    NamedColor::DimRed => Color::Indexed(1),
                    NamedColor::DimGreen => Color::Indexed(2),
                    NamedColor::DimYellow => Color::Indexed(3),
                    NamedColor::DimBlue => Color::Indexed(4),
                    NamedColor::DimMagenta => Color::Indexed(5),
                    NamedColor::DimCyan => Color::Indexed(6),
                    NamedColor::DimWhite => Color::Indexed(7),
                    _ => Color::Default,
                }
            }
        }
    }
}

fn convert_flags(flags: Flags) -> StyleFlags {
    const MAP: [(Flags, u16); 9] = [
        (Flags::BOLD, StyleFlags::BOLD),
        (Flags::DIM, StyleFlags::DIM),
        (Flags::ITALIC, StyleFlags::ITALIC),
        (Flags::UNDERLINE, StyleFlags::UNDERLINE),
        (Flags::DOUBLE_UNDERLINE, StyleFlags::DOUBLE_UNDERLINE),
        (Flags::UNDERCURL, StyleFlags::UNDERCURL),
        (Flags::INVERSE, StyleFlags::INVERSE),
        (Flags::HIDDEN, StyleFlags::HIDDEN),
        (Flags::STRIKEOUT, StyleFlags::STRIKE),
    ];
    // Dotted and dashed underlines are drawn as plain underlines.
    let underline_like = Flags::DOTTED_UNDERLINE | Flags::DASHED_UNDERLINE;
    let mut bits = MAP
        .iter()
        .filter(|(theirs, _)| flags.contains(*theirs))
        .fold(0, |bits, (_, ours)| bits | ours);
    if flags.intersects(underline_like) {
        bits |= StyleFlags::UNDERLINE;
    }
    StyleFlags(bits)
}

/// Flags that make a blank cell visible (a space can still be underlined).
const VISIBLE_ON_BLANK: u16 = StyleFlags::UNDERLINE
    | StyleFlags::DOUBLE_UNDERLINE
    | StyleFlags::UNDERCURL
    | StyleFlags::INVERSE
    | StyleFlags::STRIKE;

fn cell_style(cell: &Cell) -> Style {
    let style = Style {
        fg: convert_color(cell.fg),
        bg: convert_color(cell.bg),
        flags: convert_flags(cell.flags),
    };
    // A blank that looks blank is stored as a default blank, so runs merge
    // and trailing blanks can be dropped from the wire.
    if cell.c == ' ' && style.bg == Color::Default && style.flags.0 & VISIBLE_ON_BLANK == 0 {
        Style::default()
    } else {
        style
    }
}

/// A cell that draws nothing: trailing ones are implied by a line's end.
fn is_plain_blank(cell: &Cell) -> bool {
    cell.c == ' '
        && cell.flags.is_empty()
        && matches!(cell.bg, AnsiColor::Named(NamedColor::Background))
        && cell.zerowidth().is_none()
}

/// Most OSC 8 links one row carries; a row of more is a program's mischief.
const MAX_ROW_LINKS: usize = 32;

/// The row's OSC 8 hyperlinks: runs of cells with the same one, of the
/// schemes the page may open (`protocol::linkable`), the rest dropped.
fn row_links(row: &alacritty_terminal::grid::Row<Cell>) -> Vec<Hyperlink> {
    let mut links: Vec<Hyperlink> = Vec::new();
    let mut open: Option<(alacritty_terminal::term::cell::Hyperlink, u16)> = None;
    for col in 0..=row.len() {
        // Cells without extras (nearly all) have no link: one check each.
        let here = (col < row.len())
            .then(|| &row[Column(col)])
            .filter(|cell| cell.extra.is_some())
            .and_then(Cell::hyperlink);
        if open.as_ref().map(|(link, _)| link) == here.as_ref() {
            continue;
        }
        if let Some((link, start)) = open.take()
            && linkable(link.uri())
            && links.len() < MAX_ROW_LINKS
        {
            links.push(Hyperlink {
                start,
                end: col as u16,
                uri: link.uri().to_owned(),
            });
        }
        open = here.map(|link| (link, col as u16));
    }
    links
}

fn convert_row(row: &alacritty_terminal::grid::Row<Cell>) -> Line {
    let mut runs: Vec<Run> = Vec::new();
    let mut columns = 0usize;
    let wrapped = row.len() > 0 && row[Column(row.len() - 1)].flags.contains(Flags::WRAPLINE);
    // Most rows are short text followed by blanks: find the end first so
    // the blanks cost one comparison each, not a conversion.
    let end = (0..row.len())
        .rev()
        .find(|&col| !is_plain_blank(&row[Column(col)]))
        .map_or(0, |col| col + 1);
    for col in 0..end {
        let cell = &row[Column(col)];
        if cell.flags.contains(Flags::WIDE_CHAR_SPACER) {
            continue;
        }
        let style = cell_style(cell);
        let wide = cell.flags.contains(Flags::WIDE_CHAR);
        let (c, layout) = if cell.flags.contains(Flags::LEADING_WIDE_CHAR_SPACER) {
            (' ', CellLayout::Narrow)
        } else if cell.zerowidth().is_some_and(|z| !z.is_empty()) {
            (cell.c, CellLayout::Cluster { wide })
        } else if wide {
            (cell.c, CellLayout::Wide)
        } else {
            (cell.c, CellLayout::Narrow)
        };
        let c = if c == '\0' { ' ' } else { c };
        match runs.last_mut() {
            Some(run)
                if run.style == style
                    && run.layout == layout
                    && !matches!(layout, CellLayout::Cluster { .. }) =>
            {
                run.text.push(c);
            }
            _ => {
                let mut text = String::from(c);
                if let Some(extra) = cell.zerowidth() {
                    text.extend(extra.iter());
                }
                runs.push(Run {
                    style,
                    layout,
                    text,
                });
            }
        }
        columns += 1 + usize::from(wide);
    }
    debug_assert!(columns <= row.len());
    // Trailing default blanks are implied by the line's end.
    while let Some(run) = runs.last_mut() {
        if run.style != Style::default() || run.layout != CellLayout::Narrow {
            break;
        }
        let trimmed = run.text.trim_end_matches(' ').len();
        run.text.truncate(trimmed);
        if !run.text.is_empty() {
            break;
        }
        runs.pop();
    }
    Line { runs, wrapped }
}

#[cfg(test)]
pub(crate) mod tests;
