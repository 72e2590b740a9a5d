//! The screen as the host describes it to the client.
//!
//! The host runs the terminal emulator; the client only draws. A [`Frame`]
//! therefore carries *state* (changed rows, cursor, modes, title) and never
//! raw program output, which is what lets the host coalesce floods to the
//! client's pace.

use serde::{Deserialize, Serialize};

/// Terminal size in character cells.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Size {
    pub cols: u16,
    pub rows: u16,
}

impl Size {
    /// The smallest and largest sizes a host accepts; anything outside is
    /// clamped so a hostile client cannot make the host allocate a huge grid.
    /// A host may clamp further, to what its memory budget for one session
    /// allows (the host's `CellBudget`, which by default admits `MAX`); the
    /// size it grants is the one its frames carry.
    pub const MIN: Size = Size { cols: 2, rows: 1 };
    pub const MAX: Size = Size {
        cols: 1000,
        rows: 500,
    };

    pub fn clamped(self) -> Size {
        Size {
            cols: self.cols.clamp(Self::MIN.cols, Self::MAX.cols),
            rows: self.rows.clamp(Self::MIN.rows, Self::MAX.rows),
        }
    }

    /// Cells of the grid.
    pub const fn cells(self) -> usize {
        self.cols as usize * self.rows as usize
    }
}

/// `80×24`, columns first, as terminals name their size.
impl core::fmt::Display for Size {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}×{}", self.cols, self.rows)
    }
}

/// A colour as the emulator stored it; the client owns the palette.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Color {
    /// The theme's default foreground or background, depending on use.
    #[default]
    Default,
    /// One of the 256 indexed colours (0-15 are the theme's ANSI colours).
    Indexed(u8),
    Rgb(u8, u8, u8),
}

/// Text attributes, as a bit set so the common case costs one byte.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct StyleFlags(pub u16);

impl StyleFlags {
    pub const BOLD: u16 = 1 << 0;
    pub const DIM: u16 = 1 << 1;
    pub const ITALIC: u16 = 1 << 2;
    pub const UNDERLINE: u16 = 1 << 3;
    pub const DOUBLE_UNDERLINE: u16 = 1 << 4;
    pub const UNDERCURL: u16 = 1 << 5;
    pub const INVERSE: u16 = 1 << 6;
    pub const HIDDEN: u16 = 1 << 7;
    pub const STRIKE: u16 = 1 << 8;

    pub fn has(self, flag: u16) -> bool {
        self.0 & flag != 0
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Style {
    pub fg: Color,
    pub bg: Color,
    pub flags: StyleFlags,
}

/// How the characters of a [`Run`] map onto cells.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum CellLayout {
    /// Every `char` of the text is one single-width cell.
    #[default]
    Narrow,
    /// Every `char` of the text is one double-width cell (CJK, most emoji).
    Wide,
    /// The whole text is a single cell: a base character followed by
    /// combining marks or joiners. `wide` says whether it spans two columns.
    Cluster { wide: bool },
}

/// Consecutive cells sharing one style and one layout.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Run {
    pub style: Style,
    pub layout: CellLayout,
    pub text: String,
}

impl Run {
    /// Number of columns this run covers.
    pub fn columns(&self) -> usize {
        match self.layout {
            CellLayout::Narrow => self.text.chars().count(),
            CellLayout::Wide => self.text.chars().count() * 2,
            CellLayout::Cluster { wide } => 1 + usize::from(wide),
        }
    }
}

/// One row of the grid. Cells after the last run are blank with the default
/// style, so trailing blanks cost nothing on the wire.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Line {
    pub runs: Vec<Run>,
    /// The line continues on the next one (soft wrap): selection and copy
    /// join such lines without a newline.
    pub wrapped: bool,
}

impl Line {
    /// The characters of the line, blanks included, without trailing blanks.
    pub fn text(&self) -> String {
        let mut out = String::new();
        for run in &self.runs {
            out.push_str(&run.text);
        }
        out.truncate(out.trim_end().len());
        out
    }

    pub fn columns(&self) -> usize {
        self.runs.iter().map(Run::columns).sum()
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum CursorShape {
    #[default]
    Block,
    Underline,
    Beam,
    HollowBlock,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cursor {
    pub row: u16,
    pub col: u16,
    pub shape: CursorShape,
    pub visible: bool,
    pub blink: bool,
}

/// Terminal modes the client needs in order to encode input correctly.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Modes(pub u32);

impl Modes {
    /// DECCKM: arrows send `ESC O A` instead of `ESC [ A`.
    pub const APP_CURSOR: u32 = 1 << 0;
    /// DECKPAM: the keypad sends application sequences.
    pub const APP_KEYPAD: u32 = 1 << 1;
    /// Mode 2004: pasted text is wrapped in `ESC [200~` ... `ESC [201~`.
    pub const BRACKETED_PASTE: u32 = 1 << 2;
    /// Mode 1049/47: the alternate screen is shown (no scrollback there).
    pub const ALT_SCREEN: u32 = 1 << 3;
    /// Mode 1000: report button presses and releases.
    pub const MOUSE_CLICK: u32 = 1 << 4;
    /// Mode 1002: also report motion while a button is held.
    pub const MOUSE_DRAG: u32 = 1 << 5;
    /// Mode 1003: report all motion.
    pub const MOUSE_MOTION: u32 = 1 << 6;
    /// Mode 1006: SGR mouse encoding.
    pub const SGR_MOUSE: u32 = 1 << 7;
    /// Mode 1005: UTF-8 mouse encoding.
    pub const UTF8_MOUSE: u32 = 1 << 8;
    /// Mode 1004: report focus in and out.
    pub const FOCUS_EVENTS: u32 = 1 << 9;
    /// Mode 1007: the wheel sends arrow keys on the alternate screen.
    pub const ALTERNATE_SCROLL: u32 = 1 << 10;
    /// LNM: Enter sends CR LF.
    pub const LINE_FEED_NEW_LINE: u32 = 1 << 11;

    pub fn has(self, mode: u32) -> bool {
        self.0 & mode != 0
    }

    /// Whether any mouse reporting mode is on.
    pub fn mouse_reporting(self) -> bool {
        self.has(Self::MOUSE_CLICK | Self::MOUSE_DRAG | Self::MOUSE_MOTION)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RowUpdate {
    pub row: u16,
    pub line: Line,
    /// The row's OSC 8 hyperlinks (version 4), left to right. Only rows on
    /// the screen carry them: lines in the history and saved screens are
    /// text, whose addresses the client finds itself.
    pub links: Vec<Hyperlink>,
}

/// Columns `start..end` of a row link to `uri` (OSC 8): an `http:`,
/// `https:` or `mailto:` address of at most [`MAX_LINK`] bytes; the host
/// drops any other.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hyperlink {
    pub start: u16,
    pub end: u16,
    pub uri: String,
}

/// Longest OSC 8 address a row carries.
pub const MAX_LINK: usize = 2048;

/// Whether `uri` may be a link the page opens: `http:`, `https:` or
/// `mailto:` only, so nothing a program prints can make it open
/// `javascript:`, `data:` or a local file.
pub fn linkable(uri: &str) -> bool {
    let lower = |prefix: &str| {
        uri.get(..prefix.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(prefix))
    };
    uri.len() <= MAX_LINK
        && (lower("https://") || lower("http://") || lower("mailto:"))
        && !uri.chars().any(char::is_control)
}

/// A change of the screen since the frame before it.
///
/// Frames are numbered per connection and acknowledged by the client; the
/// host keeps only a small window of unacknowledged frames in flight and
/// folds everything newer into the next frame.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frame {
    pub seq: u64,
    pub size: Size,
    /// When set, rows not listed in `rows` are blank: the client clears its
    /// grid before applying the update.
    pub full: bool,
    /// Lines that left the top of the primary screen into the scrollback
    /// since the previous frame, oldest first.
    pub scrolled: Vec<Line>,
    pub rows: Vec<RowUpdate>,
    pub cursor: Cursor,
    pub modes: Modes,
    /// The window title, present only when it changed.
    pub title: Option<String>,
    /// The program rang the bell since the previous frame.
    pub bell: bool,
    /// Text a program asked to put on the user's clipboard (OSC 52) since
    /// the previous frame, the last if several, at most
    /// [`MAX_CLIPBOARD`](crate::MAX_CLIPBOARD) bytes. The client writes it
    /// only if the user allowed programs to; nothing ever reads the
    /// clipboard for a program.
    pub clipboard: Option<String>,
    /// A desktop notification a program asked for (OSC 9 or OSC 777)
    /// since the previous frame, the last if several.
    pub notification: Option<Notification>,
    /// Every input up to this sequence number reached the program at
    /// least [`ECHO_WAIT_MS`] before the frame was taken, and the program
    /// wrote output since (or wrote nothing for [`ECHO_SILENT_MS`])
    /// (version 6): a program that echoes what it reads has drawn that
    /// echo in this frame or an earlier one. The client checks its predicted echo
    /// against the first frame that covers the keystroke's input. The
    /// host sends a frame when this number moves, screen changed or not.
    pub echo_ack: u64,
    /// The program's terminal settings when the frame was taken (version
    /// 6): whether the terminal echoes and reads lines, so the client
    /// never predicts what a password prompt hides.
    pub tty: TtyModes,
}

/// How long after a keystroke reaches the program the host takes its echo
/// to be on the screen if there is one (mosh's figure): the wait before
/// `Frame::echo_ack` covers the keystroke.
pub const ECHO_WAIT_MS: u64 = 50;

/// How long the host waits for a program that wrote nothing since a
/// keystroke before it takes the keystroke to have no echo.
pub const ECHO_SILENT_MS: u64 = 500;

/// The line discipline's settings of the program's terminal (`termios`),
/// as far as predicting echo needs them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TtyModes(pub u8);

impl TtyModes {
    /// `ECHO`: the terminal echoes what is typed.
    pub const ECHO: u8 = 1 << 0;
    /// `ICANON`: the terminal collects a line before the program reads it
    /// (cooked mode); off, the program reads each key and draws its own
    /// echo (a shell's line editor, an editor).
    pub const CANONICAL: u8 = 1 << 1;

    pub fn has(self, mode: u8) -> bool {
        self.0 & mode != 0
    }

    /// Whether typed text is hidden: a cooked terminal that does not
    /// echo, as every password prompt (`read -s`, `sudo`, `ssh`, `getpass`)
    /// sets it. Nothing typed then may be shown before the host shows it.
    pub fn hides_input(self) -> bool {
        self.has(Self::CANONICAL) && !self.has(Self::ECHO)
    }
}

/// What a program asked the user's desktop to show (OSC 9 has no title).
/// One line each, control characters removed, at most 512 characters.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Notification {
    pub title: String,
    pub body: String,
}

impl Default for Size {
    fn default() -> Self {
        Size { cols: 80, rows: 24 }
    }
}
