//! Predictive local echo: what is typed is shown before the host's echo
//! comes back, and taken back if the host's screen says otherwise.
//!
//! This is mosh's algorithm on Thinline's screen model. Typed printable
//! characters, Backspace and the Left and Right arrows become guesses of
//! cells and of the cursor, each tagged with the number of the input that
//! carries it. A frame whose `echo_ack` covers that number judges the
//! guess against the host's grid: right, it goes (the host's cell shows
//! the same thing); wrong, it is withdrawn with everything after it.
//!
//! Guesses belong to *epochs*. Anything this model cannot predict (Enter,
//! Tab, other control keys and escape sequences, a line about to wrap)
//! starts a new one, and no guess is made until the host has echoed every
//! input sent, so the next ones start from the host's own screen. Guesses
//! of an epoch are shown only once the host confirmed one of them (a guess
//! that changed a cell and proved right), so a program that does not echo
//! what it reads (a password typed in raw mode, a key that moves a menu)
//! never shows a typed character. A wrong guess of an unconfirmed epoch
//! drops that epoch quietly; a wrong guess that was shown drops them all.
//!
//! Nothing is predicted on the alternate screen (full-screen programs draw
//! what they like), nor while the program's terminal hides input (a cooked
//! terminal without echo: every password prompt; the host reports it in
//! each frame). Predictions go on a resize and on a new connection.
//!
//! Showing them is adaptive, as in mosh: in `auto`, guesses are shown once
//! the smoothed round trip passes [`SHOW_ABOVE_MS`] or an echo comes later
//! than [`GLITCH_MS`], and hidden again under [`HIDE_BELOW_MS`]; above
//! [`UNDERLINE_ABOVE_MS`] unconfirmed text is underlined, so the user can
//! tell what the host has not drawn yet.
//!
//! The predictor never sends anything: it is fed what was typed (`typed`),
//! the screen after each frame (`frame`) and the time, and it answers what
//! to show (`show`).

use directory_api::Prediction;
use protocol::{Size, StyleFlags};

use crate::screen::{Cell, CellWidth, Predicted, Screen};

/// Guesses are shown (in `auto`) once the smoothed round trip passes this.
pub const SHOW_ABOVE_MS: u64 = 60;
/// ... and hidden again once it falls under this.
pub const HIDE_BELOW_MS: u64 = 40;
/// Unconfirmed guesses are underlined above this round trip ...
pub const UNDERLINE_ABOVE_MS: u64 = 160;
/// ... until it falls under this.
pub const UNDERLINE_BELOW_MS: u64 = 120;
/// An echo later than this is a glitch: guesses are shown (in `auto`)
/// until [`GLITCH_REPAIR`] echoes in a row come back in under
/// [`QUICK_ECHO_MS`].
pub const GLITCH_MS: u64 = 250;
pub const GLITCH_REPAIR: u32 = 10;
pub const QUICK_ECHO_MS: u64 = 150;

/// Guesses held at most; more (a very long line typed on a very slow
/// link) start over from the host's screen.
const MAX_GUESSES: usize = 1024;

/// One predicted cell.
#[derive(Clone, Debug, PartialEq)]
struct Guess {
    row: u16,
    col: u16,
    cell: Cell,
    epoch: u64,
    /// The input that makes it true.
    seq: u64,
    /// It changes what the host showed when it was made: only such a
    /// guess, proved right, confirms its epoch.
    changes: bool,
    made_at: u64,
}

impl Guess {
    /// Whether the host shows what was guessed (a blank is a blank,
    /// whatever its look).
    fn matches(&self, host: Option<&Cell>) -> bool {
        host.is_some_and(|host| {
            host.width == self.cell.width
                && (host.text == self.cell.text || host.is_blank() && self.cell.is_blank())
        })
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
struct CursorGuess {
    row: u16,
    col: u16,
    epoch: u64,
    seq: u64,
}

/// The columns of a row that hold what the user typed since guessing
/// began there: the only cells Backspace and the arrows are predicted
/// over (so the prompt before them is never predicted away) and the only
/// ones a character typed in the middle pushes right.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Span {
    row: u16,
    start: u16,
    end: u16,
}

#[derive(Debug)]
pub struct Predictor {
    mode: Prediction,
    cells: Vec<Guess>,
    cursor: Option<CursorGuess>,
    span: Option<Span>,
    /// The epoch new guesses join, and the newest one confirmed.
    epoch: u64,
    confirmed: u64,
    /// Nothing is guessed until the host has echoed every input sent
    /// (after something unpredictable, or a wrong guess).
    catching_up: bool,
    /// The newest input number sent, by anyone.
    last_seq: u64,
    /// The screen's `grid_top` and size the guesses refer to, and the
    /// last frame judged.
    grid_top: u64,
    size: Size,
    frames: u64,
    /// The screen's `attaches` the guesses were made under.
    attaches: u64,
    srtt: Option<u64>,
    /// `auto` shows guesses (a slow link, or a recent glitch).
    slow: bool,
    underline: bool,
    /// Quick echoes still owed before a glitch is forgotten.
    glitches: u32,
}

impl Predictor {
    pub fn new(mode: Prediction) -> Predictor {
        Predictor {
            mode,
            cells: Vec::new(),
            cursor: None,
            span: None,
            epoch: 1,
            confirmed: 0,
            catching_up: false,
            last_seq: 0,
            grid_top: 0,
            size: Size::default(),
            frames: 0,
            attaches: 0,
            srtt: None,
            slow: false,
            underline: false,
            glitches: 0,
        }
    }

    pub fn set_mode(&mut self, mode: Prediction) {
        if mode != self.mode {
            self.mode = mode;
            self.reset();
        }
    }

    /// Forgets every guess: the screen changed under them (a resize, a
    /// new connection). What is typed next waits for the host to catch up.
    pub fn reset(&mut self) {
        self.cells.clear();
        self.cursor = None;
        self.span = None;
        self.become_tentative();
    }

    /// A new epoch, and no guessing until the host has echoed what was
    /// sent.
    fn become_tentative(&mut self) {
        self.epoch += 1;
        self.catching_up = true;
        self.span = None;
    }

    /// A new smoothed round-trip time.
    pub fn set_rtt(&mut self, srtt_ms: Option<u64>) {
        self.srtt = srtt_ms;
        self.update_display();
    }

    fn update_display(&mut self) {
        let srtt = self.srtt.unwrap_or(0);
        if srtt > SHOW_ABOVE_MS || self.glitches > 0 {
            self.slow = true;
        } else if srtt < HIDE_BELOW_MS {
            self.slow = false;
        }
        if srtt > UNDERLINE_ABOVE_MS {
            self.underline = true;
        } else if srtt < UNDERLINE_BELOW_MS {
            self.underline = false;
        }
    }

    /// Whether guesses are shown at all.
    pub fn showing(&self) -> bool {
        match self.mode {
            Prediction::Never => false,
            Prediction::Always => true,
            Prediction::Auto => self.slow,
        }
    }

    /// Whether the screen is one whose echo can be predicted.
    fn predictable(screen: &Screen) -> bool {
        !screen.modes().has(protocol::Modes::ALT_SCREEN) && !screen.tty().hides_input()
    }

    /// Input `data` was sent as number `seq`, or is waiting unnumbered
    /// (`None`: behind the window or before a connection).
    pub fn typed(&mut self, data: &[u8], seq: Option<u64>, screen: &Screen, now: u64) {
        if self.mode == Prediction::Never || data.is_empty() {
            return;
        }
        let Some(seq) = seq else {
            self.become_tentative();
            return;
        };
        self.last_seq = self.last_seq.max(seq);
        if self.catching_up || !Self::predictable(screen) || screen.size() != self.size {
            self.catching_up = true;
            return;
        }
        let mut rest = data;
        while !rest.is_empty() {
            let (step, used) = match rest {
                [0x1b, b'[' | b'O', b'C', ..] => (Key::Right, 3),
                [0x1b, b'[' | b'O', b'D', ..] => (Key::Left, 3),
                [0x7f | 0x08, ..] => (Key::Backspace, 1),
                [first, ..] if *first >= 0x20 => match first_char(rest) {
                    Some((ch, len)) => (Key::Char(ch), len),
                    None => (Key::Other, rest.len()),
                },
                _ => (Key::Other, rest.len()),
            };
            rest = &rest[used..];
            if !self.guess(step, seq, screen, now) {
                self.become_tentative();
                return;
            }
        }
        if self.cells.len() > MAX_GUESSES {
            self.reset();
        }
    }

    /// The cell as this model has it: the newest guess, else the host's.
    fn model(&self, screen: &Screen, row: u16, col: u16) -> Cell {
        match self.cells.iter().find(|g| g.row == row && g.col == col) {
            Some(g) => g.cell.clone(),
            None => screen.host_cell(row, col).cloned().unwrap_or_default(),
        }
    }

    /// Guesses `cell` at (`row`, `col`), in place of any older guess there.
    fn put(&mut self, screen: &Screen, (row, col): (u16, u16), cell: Cell, seq: u64, now: u64) {
        let mut guess = Guess {
            row,
            col,
            cell,
            epoch: self.epoch,
            seq,
            changes: false,
            made_at: now,
        };
        guess.changes = !guess.matches(screen.host_cell(row, col));
        match self.cells.iter_mut().find(|g| g.row == row && g.col == col) {
            Some(older) => *older = guess,
            None => self.cells.push(guess),
        }
    }

    /// Predicts one key; false if it cannot be.
    fn guess(&mut self, key: Key, seq: u64, screen: &Screen, now: u64) -> bool {
        let cols = screen.size().cols;
        let (row, col) = self.cursor.map_or_else(
            || (screen.host_cursor().row, screen.host_cursor().col),
            |c| (c.row, c.col),
        );
        let span = match self.span {
            Some(span) if span.row == row && (span.start..=span.end).contains(&col) => span,
            _ => Span {
                row,
                start: col,
                end: col,
            },
        };
        let mut span = span;
        let new_col = match key {
            Key::Char(ch) => {
                let Some(w) = char_width(ch) else {
                    return false;
                };
                // The line would wrap (or a line already does, which the
                // host rewraps): the host draws that.
                if col + w >= cols || span.end + w > cols || screen.host_row_wrapped(row) {
                    return false;
                }
                for x in (col + w..span.end + w).rev() {
                    let moved = self.model(screen, row, x - w);
                    self.put(screen, (row, x), moved, seq, now);
                }
                // Typed text takes the look of the text before it.
                let style = col
                    .checked_sub(1)
                    .and_then(|c| screen.host_cell(row, c))
                    .map(|c| c.style)
                    .unwrap_or_default();
                let typed = Cell {
                    text: {
                        let mut text = String::new();
                        text.push(ch);
                        text
                    },
                    style,
                    width: if w == 2 {
                        CellWidth::Wide
                    } else {
                        CellWidth::Narrow
                    },
                };
                self.put(screen, (row, col), typed, seq, now);
                if w == 2 {
                    let spacer = Cell {
                        text: String::new(),
                        style,
                        width: CellWidth::Spacer,
                    };
                    self.put(screen, (row, col + 1), spacer, seq, now);
                }
                span.end += w;
                col + w
            }
            Key::Backspace | Key::Left => {
                if col <= span.start {
                    return false;
                }
                let w = if self.model(screen, row, col - 1).width == CellWidth::Spacer {
                    2
                } else {
                    1
                };
                if col - w < span.start {
                    return false;
                }
                if key == Key::Backspace {
                    for x in col - w..span.end {
                        let moved = if x + w < span.end {
                            self.model(screen, row, x + w)
                        } else {
                            Cell::default()
                        };
                        self.put(screen, (row, x), moved, seq, now);
                    }
                    span.end -= w;
                }
                col - w
            }
            Key::Right => {
                if col >= span.end {
                    return false;
                }
                let w = if self.model(screen, row, col).width == CellWidth::Wide {
                    2
                } else {
                    1
                };
                col + w
            }
            Key::Other => return false,
        };
        self.span = Some(span);
        self.cursor = Some(CursorGuess {
            row,
            col: new_col,
            epoch: self.epoch,
            seq,
        });
        true
    }

    /// A frame was applied to `screen` (and `last_seq` is the newest
    /// input number sent): judges every guess it covers.
    pub fn frame(&mut self, screen: &Screen, last_seq: u64, now: u64) {
        if screen.frames() == self.frames {
            return;
        }
        self.frames = screen.frames();
        self.last_seq = self.last_seq.max(last_seq);
        let echo = screen.echo_ack();
        if screen.size() != self.size
            || screen.attaches() != self.attaches
            || !Self::predictable(screen)
        {
            // A resize, a new connection (perhaps to another host after a
            // failover), a full-screen program or a hidden input.
            self.size = screen.size();
            self.attaches = screen.attaches();
            self.grid_top = screen.grid_top();
            self.reset();
        } else {
            self.judge(screen, echo, now);
        }
        if self.catching_up && echo >= self.last_seq {
            self.catching_up = false;
        }
    }

    /// Judges the guesses a frame's `echo` covers against `screen`.
    fn judge(&mut self, screen: &Screen, echo: u64, now: u64) {
        if screen.grid_top() != self.grid_top {
            // Output scrolled the screen under the guesses: whatever the
            // user typed meanwhile is the host's to show.
            self.grid_top = screen.grid_top();
            self.reset();
            return;
        }
        while let Some(i) = self.cells.iter().position(|g| g.seq <= echo) {
            let g = self.cells.remove(i);
            if !g.matches(screen.host_cell(g.row, g.col)) {
                self.wrong(g.epoch);
                continue;
            }
            if g.changes {
                self.confirmed = self.confirmed.max(g.epoch);
                self.timed_echo(now.saturating_sub(g.made_at));
            }
        }
        if let Some(c) = self.cursor
            && c.seq <= echo
        {
            let host = screen.host_cursor();
            self.cursor = None;
            if (host.row, host.col) != (c.row, c.col) {
                self.wrong(c.epoch);
            }
        }
    }

    /// A guess of `epoch` proved wrong.
    fn wrong(&mut self, epoch: u64) {
        if epoch > self.confirmed {
            // Never shown: that epoch and the ones after it go quietly.
            self.cells.retain(|g| g.epoch < epoch);
            self.cursor = self.cursor.filter(|c| c.epoch < epoch);
            self.become_tentative();
        } else {
            // Shown and wrong: everything goes, and the next echoes are
            // watched as after a glitch.
            self.reset();
        }
    }

    /// An echo came back `ms` after its keystroke.
    fn timed_echo(&mut self, ms: u64) {
        if ms > GLITCH_MS {
            self.glitches = GLITCH_REPAIR;
        } else if ms < QUICK_ECHO_MS {
            self.glitches = self.glitches.saturating_sub(1);
        }
        self.update_display();
    }

    /// When a glitch would begin if no echo comes: the oldest guess
    /// outstanding plus [`GLITCH_MS`]. Only while guesses are hidden.
    pub fn poll_timeout(&self) -> Option<u64> {
        if self.mode != Prediction::Auto || self.slow {
            return None;
        }
        self.cells.iter().map(|g| g.made_at + GLITCH_MS).min()
    }

    /// The time from `poll_timeout` came: a guess outstanding that long
    /// is a glitch, and guesses are shown.
    pub fn handle_timeout(&mut self, now: u64) {
        if self.cells.iter().any(|g| now >= g.made_at + GLITCH_MS) {
            self.glitches = GLITCH_REPAIR;
            self.update_display();
        }
    }

    /// What to show over the host's grid: the guesses of confirmed
    /// epochs (underlined on a slow link) and the predicted cursor.
    pub fn show(&self) -> (Predicted, Option<(u16, u16)>) {
        if !self.showing() {
            return (Vec::new(), None);
        }
        let mut cells = Vec::new();
        for g in &self.cells {
            if g.epoch <= self.confirmed {
                let mut cell = g.cell.clone();
                if self.underline && !cell.is_blank() {
                    cell.style.flags.0 |= StyleFlags::UNDERLINE;
                }
                cells.push((g.row, g.col, cell));
            }
        }
        let cursor = self
            .cursor
            .filter(|c| c.epoch <= self.confirmed)
            .map(|c| (c.row, c.col));
        (cells, cursor)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Key {
    Char(char),
    Backspace,
    Left,
    Right,
    Other,
}

/// The first character of `bytes` and its length in bytes.
fn first_char(bytes: &[u8]) -> Option<(char, usize)> {
    let len = match bytes.first()? {
        0x00..=0x7f => 1,
        0xc0..=0xdf => 2,
        0xe0..=0xef => 3,
        _ => 4,
    };
    let ch = core::str::from_utf8(bytes.get(..len)?)
        .ok()?
        .chars()
        .next()?;
    Some((ch, len))
}

/// The columns `ch` takes, for the characters this model predicts: the
/// printable ones of Latin, Greek and Cyrillic, and the East Asian wide
/// ones. Anything else (combining marks, emoji, controls) the host draws.
fn char_width(ch: char) -> Option<u16> {
    match u32::from(ch) {
        0x20..=0x7e | 0xa0..=0xac | 0xae..=0x2ff | 0x370..=0x482 | 0x48a..=0x52f => Some(1),
        0x1100..=0x115f
        | 0x2e80..=0x303e
        | 0x3041..=0x33ff
        | 0x3400..=0x4dbf
        | 0x4e00..=0x9fff
        | 0xa000..=0xa4cf
        | 0xac00..=0xd7a3
        | 0xf900..=0xfaff
        | 0xfe30..=0xfe4f
        | 0xff00..=0xff60
        | 0xffe0..=0xffe6 => Some(2),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
