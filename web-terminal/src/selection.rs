//! Mouse selection over scrollback and screen, and the text it copies.
//!
//! Points are absolute line numbers (see `Screen::line`) so a selection
//! stays on the same text while new output scrolls the screen. Copying
//! honours soft wraps (a wrapped line joins the next without a newline) and
//! wide characters (copied once, selected whole), which is what makes a
//! copied long command line paste back as one line.

use crate::screen::{CellWidth, Row, Screen};

/// A position on an absolute line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Point {
    pub line: u64,
    pub col: u16,
}

/// How far a drag extends: by cells, or by whole words (double click).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Granularity {
    Cell,
    Word,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Selection {
    anchor: Point,
    head: Point,
    granularity: Granularity,
}

impl Selection {
    pub fn new(at: Point, granularity: Granularity) -> Selection {
        Selection {
            anchor: at,
            head: at,
            granularity,
        }
    }

    /// Moves the end being dragged.
    pub fn extend(&mut self, to: Point) {
        self.head = to;
    }

    /// A click without a drag selects nothing (in cell granularity).
    pub fn is_empty(&self) -> bool {
        self.granularity == Granularity::Cell && self.anchor == self.head
    }

    /// First and last selected cells, inclusive, in reading order and
    /// widened to whole words and whole wide characters.
    pub fn range(&self, screen: &Screen) -> (Point, Point) {
        let (mut start, mut end) = if self.anchor <= self.head {
            (self.anchor, self.head)
        } else {
            (self.head, self.anchor)
        };
        if self.granularity == Granularity::Word {
            start = word_bounds(screen, start).0;
            end = word_bounds(screen, end).1;
        }
        if let Some(row) = screen.line(start.line)
            && row.cells.get(usize::from(start.col)).map(|c| c.width) == Some(CellWidth::Spacer)
        {
            start.col = start.col.saturating_sub(1);
        }
        if let Some(row) = screen.line(end.line)
            && row.cells.get(usize::from(end.col)).map(|c| c.width) == Some(CellWidth::Wide)
        {
            end.col = end.col.saturating_add(1);
        }
        (start, end)
    }

    /// Whether a cell is inside the selection (for highlighting).
    pub fn contains(&self, range: (Point, Point), line: u64, col: u16) -> bool {
        let p = Point { line, col };
        !self.is_empty() && range.0 <= p && p <= range.1
    }

    /// The selected text.
    pub fn text(&self, screen: &Screen) -> String {
        if self.is_empty() {
            return String::new();
        }
        let (start, end) = self.range(screen);
        let mut out = String::new();
        for line in start.line..=end.line {
            let Some(row) = screen.line(line) else {
                continue;
            };
            let from = if line == start.line { start.col } else { 0 };
            let to = if line == end.line { end.col } else { u16::MAX };
            let mut piece = cells_text(&row, from, to);
            let last = line == end.line;
            let reaches_edge = usize::from(to) + 1 >= row.cells.len();
            if row.wrapped && !last && reaches_edge {
                // A soft-wrapped line continues on the next: no newline and
                // keep its trailing blanks, they are real spaces.
                out.push_str(&piece);
            } else {
                piece.truncate(piece.trim_end().len());
                out.push_str(&piece);
                if !last {
                    out.push('\n');
                }
            }
        }
        out
    }
}

fn cells_text(row: &Row, from: u16, to: u16) -> String {
    let mut out = String::new();
    for cell in row
        .cells
        .iter()
        .skip(usize::from(from))
        .take(usize::from(to.saturating_sub(from)) + 1)
    {
        match cell.width {
            CellWidth::Spacer => {}
            _ if cell.text.is_empty() => out.push(' '),
            _ => out.push_str(&cell.text),
        }
    }
    out
}

fn is_word_char(text: &str) -> bool {
    text.chars()
        .next()
        .is_some_and(|c| c.is_alphanumeric() || "_-.~/:@+%#=?&".contains(c))
}

/// The first and last cell of the word under `at` (the cell itself when it
/// is not part of a word).
pub fn word_bounds(screen: &Screen, at: Point) -> (Point, Point) {
    let Some(row) = screen.line(at.line) else {
        return (at, at);
    };
    let cells = &row.cells;
    let col = usize::from(at.col).min(cells.len().saturating_sub(1));
    let word = |i: usize| {
        cells.get(i).is_some_and(|c| match c.width {
            // A spacer belongs to the wide character before it.
            CellWidth::Spacer => i > 0 && is_word_char(&cells[i - 1].text),
            _ => is_word_char(&c.text),
        })
    };
    if !word(col) {
        return (at, at);
    }
    let mut start = col;
    while start > 0 && word(start - 1) {
        start -= 1;
    }
    let mut end = col;
    while word(end + 1) {
        end += 1;
    }
    (
        Point {
            line: at.line,
            col: start as u16,
        },
        Point {
            line: at.line,
            col: end as u16,
        },
    )
}

#[cfg(test)]
mod tests {
    use protocol::Line;

    use super::*;
    use crate::testutil::*;

    fn screen(rows: &[(u16, Line)], scrolled: Vec<Line>) -> Screen {
        let mut s = Screen::new(SMALL);
        let mut f = frame(1, SMALL, rows);
        f.scrolled = scrolled;
        s.apply_frame(f);
        s
    }

    fn pt(line: u64, col: u16) -> Point {
        Point { line, col }
    }

    fn select(s: &Screen, a: Point, b: Point) -> String {
        let mut sel = Selection::new(a, Granularity::Cell);
        sel.extend(b);
        sel.text(s)
    }

    #[test]
    fn single_line_and_reverse_drag() {
        let s = screen(&[(0, line("hello world"))], vec![]);
        assert_eq!(select(&s, pt(0, 1), pt(0, 3)), "ell");
        assert_eq!(select(&s, pt(0, 3), pt(0, 1)), "ell");
        assert_eq!(select(&s, pt(0, 2), pt(0, 2)), "");
    }

    #[test]
    fn multi_line_trims_and_joins_with_newlines() {
        let s = screen(
            &[(0, line("ab   ")), (1, line("cd")), (2, line("ef"))],
            vec![],
        );
        assert_eq!(select(&s, pt(0, 0), pt(2, 9)), "ab\ncd\nef");
        assert_eq!(select(&s, pt(0, 1), pt(1, 0)), "b\nc");
    }

    #[test]
    fn wrapped_lines_join_without_newline() {
        let s = screen(&[(0, wrapped("echo 12345")), (1, line("678"))], vec![]);
        assert_eq!(select(&s, pt(0, 0), pt(1, 9)), "echo 12345678");
        let s = screen(&[(0, wrapped("echo a    ")), (1, line("b"))], vec![]);
        assert_eq!(select(&s, pt(0, 0), pt(1, 9)), "echo a    b");
    }

    #[test]
    fn wide_chars_are_selected_whole_and_copied_once() {
        let l = Line {
            runs: vec![narrow("a"), wide("漢字"), narrow("b")],
            wrapped: false,
        };
        let s = screen(&[(0, l)], vec![]);
        // From the spacer of 漢 to the first half of 字.
        assert_eq!(select(&s, pt(0, 2), pt(0, 3)), "漢字");
        assert_eq!(select(&s, pt(0, 0), pt(0, 9)), "a漢字b");
    }

    #[test]
    fn spans_scrollback_and_screen() {
        let s = screen(
            &[(0, line("screen0"))],
            vec![wrapped("history012"), line("345")],
        );
        // Lines 0 and 1 are scrollback, 2 is grid row 0.
        assert_eq!(select(&s, pt(0, 7), pt(2, 5)), "012345\nscreen");
    }

    #[test]
    fn word_selection() {
        let s = screen(&[(0, line("ls /tmp/x ok"))], vec![]);
        let sel = Selection::new(pt(0, 5), Granularity::Word);
        assert!(!sel.is_empty());
        assert_eq!(sel.text(&s), "/tmp/x");
        let mut sel = Selection::new(pt(0, 0), Granularity::Word);
        sel.extend(pt(0, 4));
        assert_eq!(sel.text(&s), "ls /tmp/x");
        // On a blank the word is the blank itself.
        assert_eq!(word_bounds(&s, pt(0, 2)), (pt(0, 2), pt(0, 2)));
        assert_eq!(word_bounds(&s, pt(99, 2)), (pt(99, 2), pt(99, 2)));
    }

    #[test]
    fn contains_uses_the_ordered_range() {
        let s = screen(&[(0, line("abcdef")), (1, line("ghij"))], vec![]);
        let mut sel = Selection::new(pt(1, 1), Granularity::Cell);
        sel.extend(pt(0, 4));
        let range = sel.range(&s);
        assert!(sel.contains(range, 0, 4));
        assert!(sel.contains(range, 0, 9));
        assert!(sel.contains(range, 1, 0));
        assert!(!sel.contains(range, 0, 3));
        assert!(!sel.contains(range, 1, 2));
    }
}
