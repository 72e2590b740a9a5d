//! Search over history and grid, case folding, wide characters, stepping.

use protocol::{Line, Size};

use super::*;

/// Spans `(start, end)` in UTF-16 units where `needle` occurs in `hay`,
/// left to right, not overlapping.
fn find_substring(hay: &str, needle: &str) -> Vec<(usize, usize)> {
    let hay: Vec<u16> = hay.encode_utf16().collect();
    let needle: Vec<u16> = needle.encode_utf16().collect();
    let mut found = Vec::new();
    if needle.is_empty() || needle.len() > hay.len() {
        return found;
    }
    let mut at = 0;
    while at + needle.len() <= hay.len() {
        if hay[at..at + needle.len()] == needle[..] {
            found.push((at, at + needle.len()));
            at += needle.len();
        } else {
            at += 1;
        }
    }
    found
}

use crate::testutil::{frame, line, narrow, wide};

const SIZE: Size = Size { cols: 12, rows: 3 };

/// A screen whose history holds `history` (oldest first) and whose grid
/// shows `grid`.
fn screen(history: &[&str], grid: &[&str]) -> Screen {
    let mut s = Screen::new(SIZE);
    let rows: Vec<(u16, Line)> = grid
        .iter()
        .enumerate()
        .map(|(r, t)| (r as u16, line(t)))
        .collect();
    let mut f = frame(1, SIZE, &rows);
    f.scrolled = history.iter().map(|t| line(t)).collect();
    s.apply_frame(f);
    s
}

#[test]
fn finds_every_match_in_history_and_grid_newest_first() {
    let s = screen(&["make all", "ok", "make test"], &["failed", "$ make"]);
    let mut search = Search::run(&s, |hay| find_substring(hay, "make"));
    assert_eq!(search.len(), 3);
    assert_eq!(search.summary(), "1 of 3");
    assert_eq!(
        search.current(),
        Some(Match {
            line: 4,
            start: 2,
            end: 6
        })
    );
    assert_eq!(search.older().map(|m| m.line), Some(2));
    assert_eq!(search.summary(), "2 of 3");
    assert_eq!(search.older().map(|m| m.line), Some(0));
    assert_eq!(
        search.older().map(|m| m.line),
        Some(4),
        "wraps to the newest"
    );
    assert_eq!(search.newer().map(|m| m.line), Some(0), "and back");
    assert!(search.covers(2, 0) && search.covers(2, 3) && !search.covers(2, 4));
    assert!(!search.covers(1, 0));
}

#[test]
fn case_is_folded_only_when_asked() {
    let s = screen(&["Error: disk", "error: net"], &[]);
    let folded = Search::run(&s, |hay| find_substring(&hay.to_lowercase(), "error"));
    assert_eq!(folded.len(), 2);
    let exact = Search::run(&s, |hay| find_substring(hay, "Error"));
    assert_eq!(exact.len(), 1);
    assert_eq!(exact.current().map(|m| m.line), Some(0));
}

#[test]
fn wide_characters_map_to_their_columns() {
    let mut s = Screen::new(SIZE);
    let row = Line {
        runs: vec![narrow("a"), wide("日本"), narrow("x")],
        wrapped: false,
    };
    s.apply_frame(frame(1, SIZE, &[(0, row)]));
    let search = Search::run(&s, |hay| find_substring(hay, "本x"));
    assert_eq!(
        search.current(),
        Some(Match {
            line: 0,
            start: 3,
            end: 6
        }),
        "a=0, 日=1-2, 本=3-4, x=5"
    );
}

#[test]
fn nothing_found_says_so() {
    let s = screen(&["abc"], &["def"]);
    let mut search = Search::run(&s, |hay| find_substring(hay, "zzz"));
    assert!(search.is_empty());
    assert_eq!(search.summary(), "no matches");
    assert_eq!(search.older(), None);
    assert_eq!(Search::run(&s, |hay| find_substring(hay, "")).len(), 0);
}

#[test]
fn substring_spans_are_in_utf16_units_and_do_not_overlap() {
    assert_eq!(find_substring("aaaa", "aa"), vec![(0, 2), (2, 4)]);
    assert_eq!(find_substring("😀a", "a"), vec![(2, 3)]);
}

#[test]
fn the_view_moves_only_for_a_line_out_of_view() {
    // 100 lines held, 10 rows: the bottom view shows 90..=99.
    assert_eq!(offset_showing(95, 100, 10, 0), None);
    // Line 10: shown a third of the way down, top at 7, bottom at 16.
    assert_eq!(offset_showing(10, 100, 10, 0), Some(83));
    assert_eq!(offset_showing(10, 100, 10, 83), None);
    // Near the bottom again from far up: the offset comes back down.
    assert_eq!(offset_showing(98, 100, 10, 83), Some(0));
}

#[test]
fn trailing_blanks_are_not_text() {
    let s = screen(&["ab  "], &[]);
    let row = s.line(0).expect("the line");
    let hay = Haystack::of_row(&row);
    assert_eq!(hay.text, "ab");
    assert_eq!(hay.columns(0, 2), Some((0, 2)));
    assert_eq!(hay.columns(1, 1), None);
    assert_eq!(hay.columns(1, 5), None);
}

#[test]
fn a_literal_escapes_every_regex_character() {
    assert_eq!(regex_literal("a.b*c"), "a\\.b\\*c");
    assert_eq!(regex_literal("(x)[y]{z}"), "\\(x\\)\\[y\\]\\{z\\}");
    assert_eq!(regex_literal("^$|+?/\\-"), "\\^\\$\\|\\+\\?\\/\\\\\\-");
    assert_eq!(regex_literal("plain 日本"), "plain 日本");
}
