//! The client's screen read as text, the way a test looks at a terminal.
//!
//! There is one model of the screen in the workspace,
//! `web_terminal::screen::Screen`, which the page draws from; the native
//! page and the raw protocol client both keep one and apply frames to it
//! exactly as the browser does. Tests only need to ask it a few questions
//! in words ("is this line on the screen", "is the shell at its prompt"),
//! and those are here, with [`Terminal`]: what a test does at either.

use std::future::Future;
use std::time::Duration;

use anyhow::Result;
use web_terminal::screen::Screen;

/// A terminal a test types into and reads: the raw client or a page of the
/// shipping client, so one check (`echo` comes back, a command's output)
/// serves both.
pub trait Terminal {
    /// Types `text` as keys.
    fn keys(&mut self, text: &str) -> impl Future<Output = Result<()>>;
    /// Waits until `ready` holds for the screen, failing after `timeout`
    /// with `what` and the screen.
    fn screen_until(
        &mut self,
        timeout: Duration,
        what: &str,
        ready: impl FnMut(&Screen) -> bool,
    ) -> impl Future<Output = Result<()>>;
    /// The visible rows joined by newlines.
    fn screen_text(&self) -> String;
}

/// Questions a test asks a screen.
pub trait ScreenText {
    /// The visible rows, without trailing blanks.
    fn rows(&self) -> Vec<String>;
    /// The row under the cursor, without trailing blanks.
    fn cursor_line(&self) -> String;
    /// Whether some visible row is exactly `line` (ignoring trailing blanks).
    fn has_line(&self, line: &str) -> bool;
    /// Whether some visible row or scrollback line is exactly `line`.
    fn has_line_anywhere(&self, line: &str) -> bool;
    /// Whether some visible row contains `needle`.
    fn shows(&self, needle: &str) -> bool;
    /// The shell is waiting at an empty `$ ` prompt.
    fn at_prompt(&self) -> bool;
}

impl ScreenText for Screen {
    fn rows(&self) -> Vec<String> {
        (0..self.size().rows).map(|r| self.row_text(r)).collect()
    }

    fn cursor_line(&self) -> String {
        self.row_text(self.cursor().row)
    }

    fn has_line(&self, line: &str) -> bool {
        (0..self.size().rows).any(|r| self.row_text(r) == line.trim_end())
    }

    fn has_line_anywhere(&self, line: &str) -> bool {
        self.has_line(line) || self.history().any(|kept| kept.text() == line.trim_end())
    }

    fn shows(&self, needle: &str) -> bool {
        (0..self.size().rows).any(|r| self.row_text(r).contains(needle))
    }

    fn at_prompt(&self) -> bool {
        self.cursor_line() == "$"
    }
}

#[cfg(test)]
mod tests {
    use protocol::{Cursor, Frame, Line, RowUpdate, Run, Size};

    use super::*;

    fn line(text: &str) -> Line {
        Line {
            runs: vec![Run {
                text: text.into(),
                ..Run::default()
            }],
            wrapped: false,
        }
    }

    #[test]
    fn frames_read_as_rows_history_and_a_prompt() {
        let size = Size { cols: 10, rows: 3 };
        let mut screen = Screen::new(size);
        screen.apply_frame(Frame {
            seq: 1,
            size,
            full: true,
            rows: vec![RowUpdate {
                row: 0,
                line: line("$ "),
                links: vec![],
            }],
            cursor: Cursor {
                row: 0,
                col: 2,
                ..Cursor::default()
            },
            ..Frame::default()
        });
        assert_eq!(screen.rows(), vec!["$", "", ""]);
        assert!(screen.at_prompt());

        screen.apply_frame(Frame {
            seq: 2,
            size,
            scrolled: vec![line("old")],
            rows: vec![RowUpdate {
                row: 1,
                line: line("hi  "),
                links: vec![],
            }],
            cursor: Cursor {
                row: 1,
                col: 2,
                ..Cursor::default()
            },
            ..Frame::default()
        });
        assert!(screen.has_line("hi"));
        assert!(!screen.has_line("old"));
        assert!(screen.has_line_anywhere("old"));
        assert!(screen.shows("h"));
        assert!(!screen.at_prompt());
        assert_eq!(screen.cursor_line(), "hi");
    }
}
