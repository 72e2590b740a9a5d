//! The prediction engine against recorded frames: what the host's screen
//! said after each keystroke, and what the user is shown meanwhile.

use protocol::{Cursor, Frame, Line, Modes, RowUpdate, Run, Size, StyleFlags, TtyModes};

use super::*;
use crate::testutil::{narrow, wide};

const SIZE: Size = Size { cols: 12, rows: 3 };
const COOKED: TtyModes = TtyModes(TtyModes::ECHO | TtyModes::CANONICAL);
/// A shell's line editor: raw, drawing its own echo.
const RAW: TtyModes = TtyModes(0);
/// `read -s`, `sudo`, `ssh`: cooked without echo.
const HIDDEN: TtyModes = TtyModes(TtyModes::CANONICAL);

/// A line from text, each East Asian wide character in a wide run.
fn host_line(text: &str) -> Line {
    let mut runs: Vec<Run> = Vec::new();
    for ch in text.chars() {
        let run = if char_width(ch) == Some(2) {
            wide(&ch.to_string())
        } else {
            narrow(&ch.to_string())
        };
        match runs.last_mut() {
            Some(last) if last.layout == run.layout => last.text.push(ch),
            _ => runs.push(run),
        }
    }
    Line {
        runs,
        wrapped: false,
    }
}

/// A host, a page's screen and predictor, and the clocks between them.
struct Rig {
    screen: Screen,
    predictor: Predictor,
    /// The newest input number sent.
    seq: u64,
    frame: u64,
    now: u64,
    tty: TtyModes,
    modes: Modes,
}

impl Rig {
    /// A prompt `$ ` on a slow link, prediction `auto`.
    fn new() -> Rig {
        Rig::with(Prediction::Auto, Some(300))
    }

    fn with(mode: Prediction, srtt: Option<u64>) -> Rig {
        let mut rig = Rig {
            screen: Screen::new(SIZE),
            predictor: Predictor::new(mode),
            seq: 0,
            frame: 0,
            now: 1_000,
            tty: RAW,
            modes: Modes(0),
        };
        rig.predictor.set_rtt(srtt);
        rig.host(&["$ "], (0, 2));
        rig
    }

    /// The host's screen after every input sent so far had time to echo:
    /// `rows` from the top, the cursor at `cursor`.
    fn host(&mut self, rows: &[&str], cursor: (u16, u16)) {
        let echo = self.seq;
        self.host_at(rows, cursor, echo);
    }

    /// The same, vouching for input up to `echo_ack` only.
    fn host_at(&mut self, rows: &[&str], cursor: (u16, u16), echo_ack: u64) {
        self.frame += 1;
        self.now += 10;
        let frame = Frame {
            seq: self.frame,
            size: SIZE,
            full: true,
            rows: rows
                .iter()
                .enumerate()
                .map(|(row, text)| RowUpdate {
                    row: row as u16,
                    line: host_line(text),
                    links: Vec::new(),
                })
                .collect(),
            cursor: Cursor {
                row: cursor.0,
                col: cursor.1,
                visible: true,
                ..Cursor::default()
            },
            modes: self.modes,
            echo_ack,
            tty: self.tty,
            ..Frame::default()
        };
        self.screen.apply_frame(frame);
        self.predictor.frame(&self.screen, self.seq, self.now);
        self.refresh();
    }

    fn refresh(&mut self) {
        let (cells, cursor) = self.predictor.show();
        self.screen.set_prediction(cells, cursor);
    }

    /// One keystroke's bytes, sent as the next input.
    fn key(&mut self, bytes: &[u8]) {
        self.seq += 1;
        self.now += 5;
        self.predictor
            .typed(bytes, Some(self.seq), &self.screen, self.now);
        self.refresh();
    }

    fn keys(&mut self, text: &str) {
        for ch in text.chars() {
            self.key(ch.to_string().as_bytes());
        }
    }

    /// What the user sees: the first row and the cursor.
    fn shown(&self) -> (String, u16) {
        let cursor = self.screen.cursor();
        assert_eq!(cursor.row, 0, "the cursor left the line");
        (self.screen.row_text(0), cursor.col)
    }

    /// Types `l`, lets the host echo it: the epoch is confirmed.
    fn confirmed() -> Rig {
        let mut rig = Rig::new();
        rig.key(b"l");
        rig.host(&["$ l"], (0, 3));
        rig
    }
}

const LEFT: &[u8] = b"\x1b[D";
const RIGHT: &[u8] = b"\x1b[C";
const BACKSPACE: &[u8] = b"\x7f";

#[test]
fn the_first_key_waits_for_the_host_and_the_rest_show_at_once() {
    let mut rig = Rig::new();
    rig.key(b"l");
    // Nothing of a new epoch shows before the host confirms one of it.
    assert_eq!(rig.shown(), ("$".into(), 2));
    rig.host(&["$ l"], (0, 3));
    rig.keys("s -");
    assert_eq!(rig.shown(), ("$ ls -".into(), 6));
    // The host's echo agrees; nothing moves.
    rig.host(&["$ ls -"], (0, 6));
    assert_eq!(rig.shown(), ("$ ls -".into(), 6));
    assert!(rig.predictor.cells.is_empty());
    rig.key(b"a");
    assert_eq!(rig.shown(), ("$ ls -a".into(), 7));
}

#[test]
fn guesses_wait_for_the_frame_that_covers_their_input() {
    let mut rig = Rig::confirmed();
    rig.keys("ab");
    // A frame taken before the echo wait of `b` is over judges `a` only.
    rig.host_at(&["$ la"], (0, 4), rig.seq - 1);
    assert_eq!(rig.shown(), ("$ lab".into(), 5));
    rig.host(&["$ lab"], (0, 5));
    assert_eq!(rig.shown(), ("$ lab".into(), 5));
}

#[test]
fn a_wrong_guess_never_shown_goes_quietly() {
    // A program reading keys in raw mode without echoing them: a password
    // read by hand, or a key that moves a menu.
    let mut rig = Rig::new();
    rig.key(b"s");
    rig.host(&["$ "], (0, 2));
    rig.keys("ecret");
    assert_eq!(rig.shown(), ("$".into(), 2));
    rig.host(&["$ "], (0, 2));
    rig.keys("!");
    assert_eq!(rig.shown(), ("$".into(), 2));
}

#[test]
fn a_wrong_guess_that_was_shown_takes_everything_back() {
    let mut rig = Rig::confirmed();
    rig.keys("s");
    assert_eq!(rig.shown(), ("$ ls".into(), 4));
    // The program showed something else (it upper-cases, say).
    rig.host(&["$ lS"], (0, 4));
    assert_eq!(rig.shown(), ("$ lS".into(), 4));
    // And the next key starts a new, unconfirmed epoch.
    rig.keys("x");
    assert_eq!(rig.shown(), ("$ lS".into(), 4));
}

#[test]
fn nothing_is_predicted_while_the_terminal_hides_input() {
    let mut rig = Rig::confirmed();
    rig.key(b"\r");
    rig.tty = HIDDEN;
    rig.host(&["$ l", "Password: "], (1, 10));
    for ch in "hunter2".bytes() {
        rig.key(&[ch]);
        assert_eq!(rig.screen.row_text(1), "Password:");
        assert_eq!(rig.screen.cursor().col, 10);
    }
    // Echo off arriving with keys already guessed takes them back.
    let mut rig = Rig::confirmed();
    rig.keys("s");
    rig.tty = HIDDEN;
    rig.host_at(&["$ l"], (0, 3), 1);
    assert_eq!(rig.shown(), ("$ l".into(), 3));
}

#[test]
fn cooked_terminals_are_predicted_like_line_editors() {
    let mut rig = Rig::new();
    rig.tty = COOKED;
    rig.host(&["$ "], (0, 2));
    rig.key(b"c");
    rig.host(&["$ c"], (0, 3));
    rig.keys("at");
    assert_eq!(rig.shown(), ("$ cat".into(), 5));
}

#[test]
fn nothing_is_predicted_on_the_alternate_screen() {
    let mut rig = Rig::confirmed();
    rig.modes = Modes(Modes::ALT_SCREEN);
    rig.host(&["~", "~"], (0, 0));
    rig.keys("jjj");
    assert_eq!(rig.shown(), ("~".into(), 0));
}

#[test]
fn a_line_about_to_wrap_is_left_to_the_host() {
    let mut rig = Rig::confirmed();
    // Twelve columns: `$ l` and eight more reach column 11, the last.
    rig.keys("12345678");
    assert_eq!(rig.shown(), ("$ l12345678".into(), 11));
    rig.keys("9");
    // The last column is where the line wraps: not guessed, and nothing
    // after it until the host has caught up.
    assert_eq!(rig.shown(), ("$ l12345678".into(), 11));
    rig.keys("ab");
    assert_eq!(rig.shown(), ("$ l12345678".into(), 11));
    // The host wrapped it its own way; what it shows stands.
    rig.frame += 1;
    rig.host(&["$ l123456789", "ab"], (0, 11));
    assert_eq!(rig.screen.text(), "$ l123456789\nab\n");
}

#[test]
fn wide_characters_take_two_cells_and_go_in_one_backspace() {
    let mut rig = Rig::confirmed();
    rig.keys("漢字");
    assert_eq!(rig.shown(), ("$ l漢字".into(), 7));
    let cell = rig.screen.cell(0, 3).expect("a cell");
    assert_eq!((cell.text.as_str(), cell.width), ("漢", CellWidth::Wide));
    assert_eq!(
        rig.screen.cell(0, 4).map(|c| c.width),
        Some(CellWidth::Spacer)
    );
    rig.host(&["$ l漢字"], (0, 7));
    assert!(rig.predictor.cells.is_empty(), "{:?}", rig.predictor.cells);
    rig.key(BACKSPACE);
    assert_eq!(rig.shown(), ("$ l漢".into(), 5));
    rig.key(LEFT);
    assert_eq!(rig.shown(), ("$ l漢".into(), 3));
    rig.host(&["$ l漢"], (0, 3));
    assert_eq!(rig.shown(), ("$ l漢".into(), 3));
    // A wide character that would not fit before the edge is the host's.
    rig.keys("a");
    rig.host(&["$ la漢"], (0, 4));
    rig.key(RIGHT);
    rig.host(&["$ la漢"], (0, 6));
    rig.keys("bcde");
    assert_eq!(rig.shown(), ("$ la漢bcde".into(), 10));
    rig.keys("語");
    assert_eq!(rig.shown(), ("$ la漢bcde".into(), 10));
    rig.host(&["$ la漢bcde", "語"], (1, 2));
    assert_eq!(rig.screen.text(), "$ la漢bcde\n語\n");
    assert_eq!(rig.screen.cursor().col, 2);
}

#[test]
fn backspace_and_arrows_stay_inside_what_was_typed() {
    let mut rig = Rig::confirmed();
    rig.keys("sx");
    rig.key(BACKSPACE);
    assert_eq!(rig.shown(), ("$ ls".into(), 4));
    // Editing in the middle: the rest of the line moves along.
    rig.key(LEFT);
    rig.keys("-");
    assert_eq!(rig.shown(), ("$ l-s".into(), 4));
    rig.key(RIGHT);
    assert_eq!(rig.shown(), ("$ l-s".into(), 5));
    rig.host(&["$ l-s"], (0, 5));
    assert!(rig.predictor.cells.is_empty());
    // Back to where guessing began: the prompt is never guessed away.
    let mut rig = Rig::confirmed();
    rig.key(BACKSPACE);
    assert_eq!(rig.shown(), ("$".into(), 2));
    rig.key(BACKSPACE);
    assert_eq!(rig.shown(), ("$".into(), 2));
    // The line editor refused the second: the prompt stands.
    rig.host(&["$ "], (0, 2));
    assert_eq!(rig.shown(), ("$".into(), 2));
    assert!(rig.predictor.cells.is_empty());
    // Past the end of the text, Right does nothing in a shell: not guessed.
    let mut rig = Rig::confirmed();
    rig.key(RIGHT);
    assert_eq!(rig.shown(), ("$ l".into(), 3));
}

#[test]
fn enter_and_other_keys_wait_for_the_host() {
    let mut rig = Rig::confirmed();
    rig.key(b"\r");
    rig.keys("ls");
    // Where the next prompt will be is the program's business.
    assert_eq!(rig.shown(), ("$ l".into(), 3));
    rig.host(&["$ l", "$ ls"], (1, 4));
    assert_eq!(rig.screen.text(), "$ l\n$ ls\n");
    // Caught up: the next key starts a new epoch, confirmed by the host.
    rig.key(b"x");
    rig.host(&["$ l", "$ lsx"], (1, 5));
    rig.key(b"y");
    assert_eq!(rig.screen.row_text(1), "$ lsxy");
    assert_eq!(rig.screen.cursor().col, 6);
    // Tab, Ctrl-C and Up are not guessed either.
    for key in [&b"\t"[..], b"\x03", b"\x1b[A"] {
        let mut rig = Rig::confirmed();
        rig.key(key);
        rig.keys("z");
        assert_eq!(rig.shown(), ("$ l".into(), 3), "{key:?}");
    }
}

#[test]
fn lines_scrolling_off_take_the_guesses_along() {
    let mut rig = Rig::new();
    rig.host(&["out", "$ "], (1, 2));
    rig.key(b"l");
    rig.host(&["out", "$ l"], (1, 3));
    rig.keys("s");
    assert_eq!(rig.screen.row_text(1), "$ ls");
    // Output scrolls the screen up a line while `s` is in flight.
    let mut frame = Frame {
        seq: 99,
        size: SIZE,
        scrolled: vec![host_line("out")],
        cursor: rig.screen.host_cursor(),
        ..Frame::default()
    };
    frame.cursor.row = 0;
    frame.full = true;
    frame.rows = vec![RowUpdate {
        row: 0,
        line: host_line("$ l"),
        links: Vec::new(),
    }];
    frame.tty = RAW;
    frame.echo_ack = rig.seq - 1;
    rig.screen.apply_frame(frame);
    rig.predictor.frame(&rig.screen, rig.seq, rig.now);
    rig.refresh();
    // Where the typed text ends up is the host's to show.
    assert_eq!(rig.shown(), ("$ l".into(), 3));
    rig.keys("t");
    assert_eq!(rig.shown(), ("$ l".into(), 3));
}

#[test]
fn a_resize_drops_every_guess() {
    let mut rig = Rig::confirmed();
    rig.keys("s");
    let frame = Frame {
        seq: 50,
        size: Size { cols: 20, rows: 3 },
        full: true,
        rows: vec![RowUpdate {
            row: 0,
            line: host_line("$ l"),
            links: Vec::new(),
        }],
        cursor: Cursor {
            col: 3,
            ..Cursor::default()
        },
        echo_ack: 0,
        ..Frame::default()
    };
    rig.screen.apply_frame(frame);
    rig.predictor.frame(&rig.screen, rig.seq, rig.now);
    rig.refresh();
    assert_eq!(rig.shown(), ("$ l".into(), 3));
}

#[test]
fn auto_shows_guesses_only_on_a_slow_link_or_after_a_late_echo() {
    let mut rig = Rig::with(Prediction::Auto, Some(5));
    rig.key(b"l");
    rig.host(&["$ l"], (0, 3));
    rig.keys("s");
    assert_eq!(rig.shown(), ("$ l".into(), 3), "shown on a fast link");
    // The echo is late: a glitch, after which guesses show.
    let due = rig.predictor.poll_timeout().expect("a glitch deadline");
    assert_eq!(due, rig.now + GLITCH_MS);
    rig.now = due;
    rig.predictor.handle_timeout(rig.now);
    rig.refresh();
    assert_eq!(rig.shown(), ("$ ls".into(), 4));
    // Quick echoes again, enough of them: hidden again.
    for _ in 0..GLITCH_REPAIR {
        rig.host(&["$ ls"], (0, 4));
        rig.key(BACKSPACE);
        rig.host(&["$ l"], (0, 3));
        rig.keys("s");
    }
    rig.host(&["$ ls"], (0, 4));
    rig.keys("x");
    assert_eq!(rig.shown(), ("$ ls".into(), 4));
    // A round trip that grows past the threshold shows them too.
    rig.predictor.set_rtt(Some(SHOW_ABOVE_MS + 1));
    rig.refresh();
    assert_eq!(rig.shown(), ("$ lsx".into(), 5));
    rig.predictor.set_rtt(Some(HIDE_BELOW_MS + 1));
    rig.refresh();
    assert_eq!(rig.shown(), ("$ lsx".into(), 5), "hysteresis");
    rig.predictor.set_rtt(Some(HIDE_BELOW_MS - 1));
    rig.refresh();
    assert_eq!(rig.shown(), ("$ ls".into(), 4));
}

#[test]
fn always_and_never_overrule_the_link() {
    let mut rig = Rig::with(Prediction::Always, Some(1));
    rig.key(b"l");
    rig.host(&["$ l"], (0, 3));
    rig.keys("s");
    assert_eq!(rig.shown(), ("$ ls".into(), 4));
    let mut rig = Rig::with(Prediction::Never, Some(500));
    rig.key(b"l");
    rig.host(&["$ l"], (0, 3));
    rig.keys("s");
    assert_eq!(rig.shown(), ("$ l".into(), 3));
}

#[test]
fn unconfirmed_text_is_underlined_on_a_very_slow_link() {
    let mut rig = Rig::with(Prediction::Auto, Some(UNDERLINE_ABOVE_MS + 1));
    rig.key(b"l");
    rig.host(&["$ l"], (0, 3));
    rig.keys("s");
    let cell = rig.screen.cell(0, 3).expect("a cell");
    assert!(cell.style.flags.has(StyleFlags::UNDERLINE));
    // The host's own `l` is not.
    let host = rig.screen.cell(0, 2).expect("a cell");
    assert!(!host.style.flags.has(StyleFlags::UNDERLINE));
    let mut rig = Rig::with(Prediction::Auto, Some(UNDERLINE_BELOW_MS - 1));
    rig.key(b"l");
    rig.host(&["$ l"], (0, 3));
    rig.keys("s");
    let cell = rig.screen.cell(0, 3).expect("a cell");
    assert!(!cell.style.flags.has(StyleFlags::UNDERLINE));
}

#[test]
fn input_held_back_unnumbered_is_not_predicted() {
    let mut rig = Rig::confirmed();
    rig.predictor.typed(b"s", None, &rig.screen, rig.now);
    rig.refresh();
    rig.seq += 1;
    rig.keys("t");
    assert_eq!(rig.shown(), ("$ l".into(), 3));
}

#[test]
fn a_new_connection_drops_every_guess() {
    // A failover: the next host's screen comes in a new attach, and may
    // differ from the lost host's (it restores what the store had).
    let mut rig = Rig::confirmed();
    rig.keys("s");
    assert_eq!(rig.shown(), ("$ ls".into(), 4));
    rig.screen
        .begin_attach(false, protocol::HistorySpan::default());
    rig.host_at(&["$ l"], (0, 3), 0);
    assert_eq!(rig.shown(), ("$ l".into(), 3));
    assert!(rig.predictor.cells.is_empty());
}
