//! Server-side terminal emulation: program output in, protocol frames out.
//!
//! `alacritty_terminal` parses the bytes and keeps the grid; this module turns
//! its damage into [`Frame`]s and moves lines that scrolled off the top into
//! the session's scrollback. It does no IO, so the ref tests at the bottom
//! feed recorded bytes and compare grids without a PTY.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use alacritty_terminal::event::{Event, EventListener, WindowSize};
use alacritty_terminal::grid::Dimensions;
use alacritty_terminal::index::{Column, Line as GridLine};
use alacritty_terminal::term::cell::{Cell, Flags};
use alacritty_terminal::term::{Config, Term, TermDamage, TermMode};
use alacritty_terminal::vte::ansi::{
    Color as AnsiColor, CursorShape as AnsiCursorShape, NamedColor, Processor, Rgb, StdSyncHandler,
};
use protocol::{
    CellLayout, Color, Cursor, CursorShape, Frame, Line, Modes, RowUpdate, Run, Size, Style,
    StyleFlags,
};

/// Lines alacritty may hold between two drains. Anything older than this
/// many lines would also have left a scrollback of the same length, so a
/// flood that outruns the drains loses nothing the user could scroll to.
pub const SCROLLBACK_LINES: usize = 10_000;

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
            // Clipboard access from the program is refused: OSC 52 reads would
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
    parser: Processor<StdSyncHandler>,
    listener: Listener,
    size: Size,
    /// The title as last sent, so frames carry it only when it changes.
    title: Option<String>,
    title_changed: bool,
    bell: bool,
    /// The next frame must repaint every row (after attach or resize).
    force_full: bool,
    /// Output arrived since the last frame. Tracked here because alacritty
    /// always reports the cursor row as damaged, so its damage cannot say
    /// "nothing happened".
    dirty: bool,
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

impl Emulator {
    pub fn new(size: Size) -> Emulator {
        let size = size.clamped();
        let listener = Listener::default();
        *listener.size.lock().unwrap_or_else(|e| e.into_inner()) = size;
        let config = Config {
            scrolling_history: SCROLLBACK_LINES,
            ..Config::default()
        };
        let term = Term::new(config, &GridSize(size), listener.clone());
        Emulator {
            term,
            parser: Processor::new(),
            listener,
            size,
            title: None,
            title_changed: false,
            bell: false,
            force_full: true,
            dirty: true,
        }
    }

    pub fn size(&self) -> Size {
        self.size
    }

    pub fn title(&self) -> Option<&str> {
        self.title.as_deref()
    }

    /// Parses program output.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.parser.advance(&mut self.term, bytes);
        self.dirty |= !bytes.is_empty();
        self.collect_requests_state();
    }

    /// When a synchronized update (mode 2026) is buffering output, the time
    /// by which it must be flushed even if the program never ends it.
    pub fn sync_deadline(&self) -> Option<Instant> {
        self.parser.sync_timeout().sync_timeout()
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
    }

    pub fn resize(&mut self, size: Size) {
        let size = size.clamped();
        if size == self.size {
            return;
        }
        self.size = size;
        *self.listener.size.lock().unwrap_or_else(|e| e.into_inner()) = size;
        self.term.resize(GridSize(size));
        self.force_full = true;
    }

    /// Whether anything changed since the last frame.
    pub fn is_dirty(&self) -> bool {
        self.dirty || self.force_full || self.title_changed || self.bell
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
            .map(|(row, _)| RowUpdate {
                row: row as u16,
                line: convert_row(&grid[GridLine(row as i32)]),
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
mod tests;
