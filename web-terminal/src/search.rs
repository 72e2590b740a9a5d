//! Searching the screen and the whole scrollback the page holds (which,
//! once history is fetched, is everything the host keeps).
//!
//! A row becomes a haystack of its cells' text with, for every UTF-16 unit,
//! the column it came from, so a match found by a finder that counts in
//! UTF-16 (the browser's own `RegExp`) maps back to cells. A match never spans a soft-wrapped row's end.

use crate::screen::{Row, Screen};

/// One match: columns `start..end` of line `line` (numbered as the screen
/// numbers lines).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Match {
    pub line: u64,
    pub start: u16,
    pub end: u16,
}

/// A row's text for searching, with the column of every UTF-16 unit.
pub struct Haystack {
    pub text: String,
    columns: Vec<u16>,
}

impl Haystack {
    /// Blank cells read as spaces, up to the last cell that is not blank
    /// (so `$` ends a line's text); the spacer half of a wide character
    /// adds nothing. Case is the finder's business (the page asks the
    /// browser's `RegExp` to fold it, so no Unicode tables ship in the
    /// wasm).
    pub fn of_row(row: &Row) -> Haystack {
        let used = row
            .cells
            .iter()
            .rposition(|c| !c.is_blank())
            .map_or(0, |i| i + 1);
        let mut text = String::with_capacity(used);
        let mut columns = Vec::with_capacity(used);
        for (col, piece) in row
            .text_cells()
            .take_while(|(col, _)| usize::from(*col) < used)
        {
            columns.extend(std::iter::repeat_n(col, piece.encode_utf16().count()));
            text.push_str(piece);
        }
        Haystack { text, columns }
    }

    /// The columns covered by UTF-16 units `start..end` of `text`, or
    /// `None` for an empty or out-of-range span.
    pub fn columns(&self, start: usize, end: usize) -> Option<(u16, u16)> {
        if start >= end {
            return None;
        }
        let first = *self.columns.get(start)?;
        let last = *self.columns.get(end - 1)?;
        Some((first, last + 1))
    }
}

/// `text` as a regular expression that matches it literally (for the
/// browser's `RegExp`, which then also folds case when asked).
pub fn regex_literal(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    for c in text.chars() {
        if "\\^$.*+?()[]{}|/-".contains(c) {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// The matches of one search, oldest line first, and the one shown.
#[derive(Debug, Default)]
pub struct Search {
    matches: Vec<Match>,
    current: Option<usize>,
}

impl Search {
    /// Searches every line the screen holds with `find` (spans in UTF-16
    /// units of a row's haystack).
    /// The newest match is the current one: searching goes up from the
    /// bottom, as people read a terminal.
    pub fn run(screen: &Screen, mut find: impl FnMut(&str) -> Vec<(usize, usize)>) -> Search {
        let (first, end) = screen.line_range();
        let mut matches = Vec::new();
        for line in first..end {
            let Some(row) = screen.line(line) else {
                continue;
            };
            if row.cells.iter().all(|c| c.is_blank()) {
                continue;
            }
            let hay = Haystack::of_row(&row);
            for (start, stop) in find(&hay.text) {
                if let Some((start, end)) = hay.columns(start, stop) {
                    matches.push(Match { line, start, end });
                }
            }
        }
        let current = matches.len().checked_sub(1);
        Search { matches, current }
    }

    pub fn len(&self) -> usize {
        self.matches.len()
    }

    pub fn is_empty(&self) -> bool {
        self.matches.is_empty()
    }

    pub fn current(&self) -> Option<Match> {
        self.matches.get(self.current?).copied()
    }

    /// Moves to the next older match (wrapping to the newest).
    pub fn older(&mut self) -> Option<Match> {
        let n = self.matches.len();
        self.current = self.current.map(|i| (i + n - 1) % n);
        self.current()
    }

    /// Moves to the next newer match (wrapping to the oldest).
    pub fn newer(&mut self) -> Option<Match> {
        let n = self.matches.len();
        self.current = self.current.map(|i| (i + 1) % n);
        self.current()
    }

    /// Whether the cell at `line`, `col` is part of a match.
    pub fn covers(&self, line: u64, col: u16) -> bool {
        let from = self.matches.partition_point(|m| m.line < line);
        self.matches[from..]
            .iter()
            .take_while(|m| m.line == line)
            .any(|m| (m.start..m.end).contains(&col))
    }

    /// What the search bar says: "3 of 17", counted from the newest.
    pub fn summary(&self) -> String {
        match self.current {
            Some(i) if !self.matches.is_empty() => {
                format!("{} of {}", self.matches.len() - i, self.matches.len())
            }
            _ => "no matches".to_owned(),
        }
    }
}

/// The view offset that shows `line` on a screen of `rows` rows whose
/// newest line is `end - 1`, with the line a third of the way down when
/// the view has to move; `None` if it is already in view (`offset` now).
pub fn offset_showing(line: u64, end: u64, rows: u16, offset: usize) -> Option<usize> {
    let rows = u64::from(rows.max(1));
    let bottom = end.saturating_sub(1 + offset as u64);
    let top = (bottom + 1).saturating_sub(rows);
    if (top..=bottom).contains(&line) {
        return None;
    }
    let wanted_top = line.saturating_sub(rows / 3);
    let wanted_bottom = wanted_top + rows - 1;
    Some(end.saturating_sub(1).saturating_sub(wanted_bottom) as usize)
}

#[cfg(test)]
mod tests;
