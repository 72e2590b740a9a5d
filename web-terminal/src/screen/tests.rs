//! Frames in, expected grid and view out.

use protocol::{CellLayout, Color, Cursor, Line, Run, Size, Style, StyleFlags};

use super::*;
use crate::testutil::*;

fn screen_with(rows: &[(u16, Line)]) -> Screen {
    let mut s = Screen::new(SMALL);
    s.apply_frame(frame(1, SMALL, rows));
    s
}

#[test]
fn frame_rows_land_in_the_grid() {
    let s = screen_with(&[(0, line("hello")), (2, line("  x  "))]);
    assert_eq!(s.text(), "hello\n\n  x");
    assert_eq!(s.row_text(1), "");
    assert_eq!(s.frames(), 1);
    let cell = s.cell(0, 1).expect("cell");
    assert_eq!(cell.text, "e");
    assert!(s.cell(0, 10).is_none());
    assert!(s.cell(3, 0).is_none());
}

#[test]
fn full_frame_clears_unlisted_rows() {
    let mut s = screen_with(&[(0, line("a")), (1, line("b"))]);
    let mut f = frame(2, SMALL, &[(1, line("c"))]);
    f.full = true;
    s.apply_frame(f);
    assert_eq!(s.text(), "\nc\n");
}

#[test]
fn wide_and_cluster_cells() {
    let l = Line {
        runs: vec![
            narrow("a"),
            wide("漢字"),
            Run {
                style: Style::default(),
                layout: CellLayout::Cluster { wide: false },
                text: "e\u{301}".into(),
            },
            Run {
                style: Style::default(),
                layout: CellLayout::Cluster { wide: true },
                text: "👍🏽".into(),
            },
        ],
        wrapped: false,
    };
    let s = screen_with(&[(0, l)]);
    assert_eq!(s.row_text(0), "a漢字e\u{301}👍🏽");
    let widths: Vec<CellWidth> = (0..8)
        .map(|c| s.cell(0, c).map(|x| x.width).unwrap_or_default())
        .collect();
    use CellWidth::*;
    assert_eq!(
        widths,
        [Narrow, Wide, Spacer, Wide, Spacer, Narrow, Wide, Spacer]
    );
    assert_eq!(s.cell(0, 3).map(|c| c.text), Some("字".into()));
}

#[test]
fn wide_char_at_the_edge_is_dropped_not_split() {
    let l = Line {
        runs: vec![narrow("123456789"), wide("漢")],
        wrapped: false,
    };
    let s = screen_with(&[(0, l)]);
    assert_eq!(s.row_text(0), "123456789");
    assert_eq!(s.cell(0, 9).map(|c| c.width), Some(CellWidth::Narrow));
}

#[test]
fn overlong_and_out_of_range_rows_are_contained() {
    let s = screen_with(&[(0, line("0123456789abc")), (7, line("nowhere"))]);
    assert_eq!(s.text(), "0123456789\n\n");
}

#[test]
fn styles_are_kept_per_cell() {
    let style = Style {
        fg: Color::Indexed(2),
        bg: Color::Rgb(1, 2, 3),
        flags: StyleFlags(StyleFlags::BOLD),
    };
    let l = Line {
        runs: vec![
            narrow("a"),
            Run {
                style,
                layout: CellLayout::Narrow,
                text: "b".into(),
            },
        ],
        wrapped: false,
    };
    let s = screen_with(&[(0, l)]);
    assert_eq!(s.cell(0, 0).map(|c| c.style), Some(Style::default()));
    assert_eq!(s.cell(0, 1).map(|c| c.style), Some(style));
}

#[test]
fn scrolled_lines_feed_the_ring_and_drop_the_oldest() {
    let mut s = Screen::with_capacity(SMALL, 3);
    for i in 0..5 {
        let mut f = frame(i, SMALL, &[]);
        f.scrolled = vec![line(&format!("l{i}"))];
        s.apply_frame(f);
    }
    assert_eq!(s.scrollback_len(), 3);
    assert_eq!(s.line_range(), (2, 8));
    assert_eq!(s.line(2).map(|r| r.text()), Some("l2".into()));
    assert_eq!(s.line(4).map(|r| r.text()), Some("l4".into()));
    assert!(s.line(1).is_none());
    assert!(s.line(8).is_none());
}

#[test]
fn scrolling_back_shows_history_and_stays_put_on_new_output() {
    let mut s = Screen::new(SMALL);
    let mut f = frame(
        1,
        SMALL,
        &[(0, line("g0")), (1, line("g1")), (2, line("g2"))],
    );
    f.scrolled = vec![line("h0"), line("h1")];
    s.apply_frame(f);
    s.take_dirty_rows();
    assert!(s.scroll_view(1));
    assert_eq!(s.text(), "h1\ng0\ng1");
    assert_eq!(s.take_dirty_rows(), vec![0, 1, 2]);

    // New output scrolls two more lines off: the view stays on h1..g1.
    let mut f = frame(
        2,
        SMALL,
        &[(0, line("g2")), (1, line("n0")), (2, line("n1"))],
    );
    f.scrolled = vec![line("g0"), line("g1")];
    s.apply_frame(f);
    assert_eq!(s.view_offset(), 3);
    assert_eq!(s.text(), "h1\ng0\ng1");
    // The grid rows are all below the view, so nothing visible changed.
    assert_eq!(s.take_dirty_rows(), Vec::<u16>::new());

    assert!(s.scroll_to_bottom());
    assert_eq!(s.text(), "g2\nn0\nn1");
    assert!(!s.scroll_to_bottom());
}

#[test]
fn view_offset_is_clamped_to_the_scrollback() {
    let mut s = Screen::new(SMALL);
    assert!(!s.scroll_view(5));
    let mut f = frame(1, SMALL, &[]);
    f.scrolled = vec![line("h0")];
    s.apply_frame(f);
    assert!(s.scroll_view(100));
    assert_eq!(s.view_offset(), 1);
    assert!(s.scroll_view(-100));
    assert_eq!(s.view_offset(), 0);
}

#[test]
fn ring_turning_under_a_scrolled_view_clamps_it() {
    let mut s = Screen::with_capacity(SMALL, 2);
    let mut f = frame(1, SMALL, &[]);
    f.scrolled = vec![line("a"), line("b")];
    s.apply_frame(f);
    s.scroll_view(2);
    let mut f = frame(2, SMALL, &[]);
    f.scrolled = vec![line("c")];
    s.apply_frame(f);
    assert_eq!(s.view_offset(), 2);
    assert_eq!(s.row_text(0), "b");
}

#[test]
fn partly_scrolled_view_marks_visible_grid_rows() {
    let mut s = screen_with(&[]);
    let mut f = frame(2, SMALL, &[]);
    f.scrolled = vec![line("h0")];
    s.apply_frame(f);
    s.scroll_view(1);
    s.take_dirty_rows();
    s.apply_frame(frame(3, SMALL, &[(0, line("x")), (2, line("y"))]));
    // Grid row 0 is view row 1; grid row 2 is below the view.
    assert_eq!(s.take_dirty_rows(), vec![1]);
}

#[test]
fn dirty_rows_and_cursor_moves() {
    let mut s = screen_with(&[]);
    assert_eq!(s.take_dirty_rows(), vec![0, 1, 2]);
    let mut f = frame(2, SMALL, &[(1, line("x"))]);
    f.cursor = Cursor {
        row: 2,
        col: 1,
        visible: true,
        ..Cursor::default()
    };
    s.apply_frame(f);
    // Row 1 changed, the cursor left row 0 and arrived on row 2.
    assert_eq!(s.take_dirty_rows(), vec![0, 1, 2]);
    assert_eq!(s.take_dirty_rows(), Vec::<u16>::new());
    assert_eq!(s.cursor_view_row(), Some(2));
    s.scroll_view(0);
}

#[test]
fn cursor_moves_down_with_the_view_and_leaves_it() {
    let mut s = screen_with(&[]);
    let mut f = frame(2, SMALL, &[]);
    f.scrolled = vec![line("a"), line("b")];
    f.cursor.row = 1;
    s.apply_frame(f);
    s.scroll_view(1);
    assert_eq!(s.cursor_view_row(), Some(2));
    s.scroll_view(1);
    assert_eq!(s.cursor_view_row(), None);
}

#[test]
fn resize_follows_the_frame_size() {
    let mut s = screen_with(&[(0, line("abcdefghij"))]);
    let big = Size { cols: 12, rows: 4 };
    s.apply_frame(frame(2, big, &[(3, line("last"))]));
    assert_eq!(s.size(), big);
    assert_eq!(s.text(), "abcdefghij\n\n\nlast");
    let small = Size { cols: 4, rows: 2 };
    s.apply_frame(frame(3, small, &[]));
    assert_eq!(s.text(), "abcd\n");
    assert_eq!(s.take_dirty_rows(), vec![0, 1]);
}

#[test]
fn resize_blanks_a_cut_wide_char() {
    let l = Line {
        runs: vec![narrow("ab"), wide("漢")],
        wrapped: false,
    };
    let mut s = screen_with(&[(0, l)]);
    s.apply_frame(frame(2, Size { cols: 3, rows: 3 }, &[]));
    assert_eq!(s.row_text(0), "ab");
}

#[test]
fn title_and_bell_are_events() {
    let mut s = Screen::new(SMALL);
    let mut f = frame(1, SMALL, &[]);
    f.title = Some("vim".into());
    f.bell = true;
    s.apply_frame(f.clone());
    assert_eq!(s.take_title_change(), Some("vim".into()));
    assert_eq!(s.take_title_change(), None);
    assert!(s.take_bell());
    assert!(!s.take_bell());
    // The same title again is no change.
    s.apply_frame(f);
    assert_eq!(s.take_title_change(), None);
    assert_eq!(s.title(), "vim");
}

fn lines(texts: &[&str]) -> Vec<Line> {
    texts.iter().map(|t| line(t)).collect()
}

fn kept(s: &Screen) -> Vec<String> {
    s.history().map(Line::text).collect()
}

fn span(start: u64, end: u64) -> protocol::HistorySpan {
    protocol::HistorySpan { start, end }
}

#[test]
fn history_is_wanted_once_the_screen_is_live_and_fetched_backwards() {
    let mut s = Screen::new(SMALL);
    s.begin_attach(false, span(100, 110));
    assert_eq!(s.history_wanted(), None, "not in front of the first frame");
    s.apply_frame(frame(1, SMALL, &[]));
    assert_eq!(s.history_wanted(), Some((110, 0)));
    s.apply_history(105, lines(&["5", "6", "7", "8", "9"]));
    assert_eq!(s.history_wanted(), Some((105, 0)));
    // A line scrolls meanwhile: it follows the held ones.
    let mut f = frame(2, SMALL, &[]);
    f.scrolled = lines(&["10"]);
    s.apply_frame(f);
    s.apply_history(100, lines(&["0", "1", "2", "3", "4"]));
    assert_eq!(
        kept(&s),
        (0..=10).map(|i| i.to_string()).collect::<Vec<_>>()
    );
    assert_eq!(s.line_range().0, 100, "lines keep the host's numbers");
    assert!(s.history_complete());
    assert_eq!(s.history_wanted(), None);
}

#[test]
fn fetched_lines_leave_a_scrolled_view_on_the_same_lines() {
    let mut s = Screen::new(SMALL);
    s.begin_attach(false, span(0, 6));
    s.apply_frame(frame(1, SMALL, &[]));
    s.apply_history(3, lines(&["3", "4", "5"]));
    s.scroll_view(2);
    let top = s.row_text(0);
    let number = s.line_number_of_view_row(0);
    s.apply_history(0, lines(&["0", "1", "2"]));
    assert_eq!(s.row_text(0), top);
    assert_eq!(s.line_number_of_view_row(0), number);
}

#[test]
fn a_reattach_to_the_same_history_keeps_it_and_stashes_it_across_a_gap() {
    let mut s = Screen::new(SMALL);
    s.begin_attach(false, span(0, 3));
    s.apply_frame(frame(1, SMALL, &[]));
    s.apply_history(0, lines(&["a", "b", "c"]));
    // Same host and epoch, nothing new: all kept, nothing wanted.
    s.begin_attach(true, span(0, 3));
    s.apply_frame(frame(1, SMALL, &[]));
    assert_eq!(kept(&s), ["a", "b", "c"]);
    assert_eq!(s.history_wanted(), None);
    // Two lines scrolled while detached: only they are wanted, and the
    // held lines rejoin once they arrive.
    s.begin_attach(true, span(0, 5));
    s.apply_frame(frame(1, SMALL, &[]));
    assert_eq!(s.scrollback_len(), 0);
    assert_eq!(s.history_wanted(), Some((5, 3)), "only what is not held");
    s.apply_history(4, lines(&["e"]));
    assert_eq!(s.history_wanted(), Some((4, 3)));
    s.apply_history(3, lines(&["d"]));
    assert_eq!(kept(&s), ["a", "b", "c", "d", "e"]);
    assert_eq!(s.history_wanted(), None);
    // Another epoch or session: dropped at once.
    s.begin_attach(false, span(0, 2));
    assert_eq!(s.scrollback_len(), 0);
}

#[test]
fn a_numbered_gap_starts_over_and_an_empty_answer_ends_the_fetching() {
    let mut s = Screen::new(SMALL);
    s.begin_attach(false, span(0, 2));
    s.apply_frame(frame(1, SMALL, &[]));
    s.apply_history(0, lines(&["0", "1"]));
    // The host skipped lines 2..50 (more scrolled than it keeps).
    s.apply_history(50, lines(&["50", "51"]));
    assert_eq!(kept(&s), ["50", "51"]);
    assert_eq!(s.history_wanted(), Some((50, 2)));
    // It holds nothing below 50 any more: done, and the stash goes.
    s.apply_history(50, Vec::new());
    assert!(s.history_complete());
    assert_eq!(s.history_wanted(), None);
    assert_eq!(kept(&s), ["50", "51"]);
    // Lines already held are not added twice.
    s.apply_history(51, lines(&["51", "52"]));
    assert_eq!(kept(&s), ["50", "51", "52"]);
    s.apply_history(10, lines(&["x"]));
    assert_eq!(kept(&s), ["50", "51", "52"], "neither before nor after");
}

#[test]
fn fetching_stops_at_the_capacity() {
    let mut s = Screen::with_capacity(SMALL, 4);
    s.begin_attach(false, span(0, 10));
    s.apply_frame(frame(1, SMALL, &[]));
    s.apply_history(7, lines(&["7", "8", "9"]));
    s.apply_history(4, lines(&["4", "5", "6"]));
    assert_eq!(kept(&s), ["6", "7", "8", "9"], "the newest are kept");
    assert_eq!(s.history_wanted(), None);
}

#[test]
fn modes_follow_frames() {
    let mut s = Screen::new(SMALL);
    let mut f = frame(1, SMALL, &[]);
    f.modes = protocol::Modes(protocol::Modes::APP_CURSOR);
    s.apply_frame(f);
    assert!(s.modes().has(protocol::Modes::APP_CURSOR));
}

#[test]
fn line_numbers_map_to_view_rows() {
    let mut s = screen_with(&[]);
    let mut f = frame(2, SMALL, &[]);
    f.scrolled = vec![line("a"), line("b")];
    s.apply_frame(f);
    assert_eq!(s.line_number_of_view_row(0), 2);
    s.scroll_view(2);
    assert_eq!(s.line_number_of_view_row(0), 0);
    assert_eq!(s.view_row_of_line(1), Some(1));
    assert_eq!(s.view_row_of_line(3), None);
}

#[test]
fn a_programs_clipboard_text_is_taken_once_the_last_one_winning() {
    let mut s = Screen::new(SMALL);
    assert_eq!(s.take_clipboard(), None);
    for (seq, text) in [(1, "first"), (2, "second")] {
        let mut f = frame(seq, SMALL, &[]);
        f.clipboard = Some(text.into());
        s.apply_frame(f);
    }
    // A frame without one leaves the waiting text alone.
    s.apply_frame(frame(3, SMALL, &[]));
    assert_eq!(s.take_clipboard().as_deref(), Some("second"));
    assert_eq!(s.take_clipboard(), None);
}

#[test]
fn a_programs_notification_is_taken_once() {
    let mut s = Screen::new(SMALL);
    let mut f = frame(1, SMALL, &[]);
    f.notification = Some(protocol::Notification {
        title: "make".into(),
        body: "done".into(),
    });
    s.apply_frame(f);
    s.apply_frame(frame(2, SMALL, &[]));
    assert_eq!(s.take_notification().map(|n| n.body), Some("done".into()));
    assert_eq!(s.take_notification(), None);
}

#[test]
fn a_rows_hyperlinks_stay_with_it_until_it_is_sent_again() {
    let mut s = Screen::new(SMALL);
    let mut f = frame(1, SMALL, &[(0, line("docs"))]);
    f.rows[0].links = vec![protocol::Hyperlink {
        start: 0,
        end: 4,
        uri: "https://example.com".into(),
    }];
    s.apply_frame(f);
    assert_eq!(s.visible_row(0).map(|r| r.links.len()), Some(1));
    s.apply_frame(frame(2, SMALL, &[(0, line("plain"))]));
    assert_eq!(s.visible_row(0).map(|r| r.links.len()), Some(0));
}
