//! Ref tests in the alacritty style: recorded bytes in, expected grid out.

use super::*;

fn emulator(cols: u16, rows: u16, bytes: &[u8]) -> Emulator {
    let mut emulator = Emulator::new(Size { cols, rows });
    emulator.feed(bytes);
    emulator
}

fn row_line(frame: &Frame, row: u16) -> Line {
    frame
        .rows
        .iter()
        .find(|update| update.row == row)
        .map(|update| update.line.clone())
        .unwrap_or_default()
}

#[test]
fn plain_text_lands_on_the_grid() {
    let emu = emulator(20, 4, b"hello\r\nworld");
    assert_eq!(emu.screen_text(), ["hello", "world", "", ""]);
    assert_eq!(emu.cursor().row, 1);
    assert_eq!(emu.cursor().col, 5);
}

#[test]
fn colours_and_attributes_become_styled_runs() {
    let mut emu = emulator(
        40,
        2,
        b"\x1b[31mR\x1b[0m \x1b[38;2;1;2;3mT\x1b[48;5;200;1;3;4;9mX\x1b[0m\x1b[2;7mD",
    );
    let frame = emu.frame(1, vec![]);
    let line = row_line(&frame, 0);
    let styles: Vec<(Style, &str)> = line
        .runs
        .iter()
        .map(|r| (r.style, r.text.as_str()))
        .collect();
    assert_eq!(
        styles,
        [
            (
                Style {
                    fg: Color::Indexed(1),
                    ..Style::default()
                },
                "R"
            ),
            (Style::default(), " "),
            (
                Style {
                    fg: Color::Rgb(1, 2, 3),
                    ..Style::default()
                },
                "T"
            ),
            (
                Style {
                    fg: Color::Rgb(1, 2, 3),
                    bg: Color::Indexed(200),
                    flags: StyleFlags(
                        StyleFlags::BOLD
                            | StyleFlags::ITALIC
                            | StyleFlags::UNDERLINE
                            | StyleFlags::STRIKE
                    ),
                },
                "X"
            ),
            (
                Style {
                    flags: StyleFlags(StyleFlags::DIM | StyleFlags::INVERSE),
                    ..Style::default()
                },
                "D"
            ),
        ]
    );
}

#[test]
fn wide_characters_and_clusters_keep_their_columns() {
    let mut emu = emulator(10, 2, "漢字ab😀e\u{301}".as_bytes());
    let frame = emu.frame(1, vec![]);
    let line = row_line(&frame, 0);
    let layouts: Vec<(CellLayout, &str)> = line
        .runs
        .iter()
        .map(|r| (r.layout, r.text.as_str()))
        .collect();
    assert_eq!(
        layouts,
        [
            (CellLayout::Wide, "漢字"),
            (CellLayout::Narrow, "ab"),
            (CellLayout::Wide, "😀"),
            (CellLayout::Cluster { wide: false }, "e\u{301}"),
        ]
    );
    assert_eq!(line.columns(), 9);
    assert_eq!(emu.cursor().col, 9);
}

#[test]
fn a_wide_char_that_does_not_fit_wraps_whole() {
    let mut emu = emulator(5, 3, "abcd漢".as_bytes());
    let frame = emu.frame(1, vec![]);
    assert_eq!(row_line(&frame, 0).text(), "abcd");
    assert!(row_line(&frame, 0).wrapped);
    assert_eq!(row_line(&frame, 1).text(), "漢");
}

#[test]
fn scroll_region_scrolls_only_inside_it() {
    // Rows 2-3 (1-based) form the region; a linefeed at its bottom scrolls
    // only those rows and nothing enters the scrollback.
    let emu = emulator(10, 4, b"top\r\nr2\r\nr3\r\nbottom\x1b[2;3r\x1b[3;1H\nnew");
    assert_eq!(emu.screen_text(), ["top", "r3", "new", "bottom"]);
    let mut emu = emu;
    assert!(emu.drain_scrolled().is_empty());
}

#[test]
fn lines_scrolled_off_the_top_are_drained_in_order() {
    let mut bytes = Vec::new();
    for i in 1..=30 {
        bytes.extend_from_slice(format!("line{i}\r\n").as_bytes());
    }
    let mut emu = emulator(20, 10, &bytes);
    let scrolled: Vec<String> = emu.drain_scrolled().iter().map(Line::text).collect();
    let expected: Vec<String> = (1..=21).map(|i| format!("line{i}")).collect();
    assert_eq!(scrolled, expected);
    assert!(emu.drain_scrolled().is_empty(), "drained once");
    assert_eq!(emu.screen_text()[0], "line22");
    assert_eq!(emu.screen_text()[8], "line30");
}

#[test]
fn a_flood_keeps_the_newest_ten_thousand_lines() {
    let mut emu = emulator(20, 5, b"");
    let mut bytes = Vec::new();
    for i in 0..25_000 {
        bytes.extend_from_slice(format!("{i}\r\n").as_bytes());
    }
    emu.feed(&bytes);
    let scrolled = emu.drain_scrolled();
    assert_eq!(scrolled.len(), SCROLLBACK_LINES);
    assert_eq!(
        scrolled[0].text(),
        (25_000 - 4 - SCROLLBACK_LINES).to_string()
    );
    assert_eq!(
        scrolled.last().map(Line::text),
        Some((25_000 - 5).to_string())
    );
}

#[test]
fn alternate_screen_hides_and_restores_the_primary() {
    let mut emu = emulator(10, 3, b"primary");
    assert!(!emu.modes().has(Modes::ALT_SCREEN));
    emu.feed(b"\x1b[?1049h\x1b[Halt");
    assert!(emu.modes().has(Modes::ALT_SCREEN));
    assert_eq!(emu.screen_text(), ["alt", "", ""]);
    // Output on the alternate screen never reaches the scrollback.
    emu.feed(b"\r\n1\r\n2\r\n3\r\n4");
    assert!(emu.drain_scrolled().is_empty());
    emu.feed(b"\x1b[?1049l");
    assert!(!emu.modes().has(Modes::ALT_SCREEN));
    assert_eq!(emu.screen_text(), ["primary", "", ""]);
}

#[test]
fn modes_follow_the_program() {
    let mut emu = emulator(10, 3, b"\x1b[?1h\x1b[?2004h\x1b[?1002h\x1b[?1006h\x1b=");
    let modes = emu.modes();
    for mode in [
        Modes::APP_CURSOR,
        Modes::BRACKETED_PASTE,
        Modes::MOUSE_DRAG,
        Modes::SGR_MOUSE,
        Modes::APP_KEYPAD,
    ] {
        assert!(modes.has(mode), "{mode:#x} in {modes:?}");
    }
    emu.feed(b"\x1b[?1l\x1b[?2004l\x1b[?1002l");
    assert!(!emu.modes().has(Modes::APP_CURSOR));
    assert!(!emu.modes().has(Modes::BRACKETED_PASTE));
    assert!(!emu.modes().mouse_reporting());
}

#[test]
fn cursor_shape_and_visibility_are_reported() {
    let mut emu = emulator(10, 3, b"\x1b[6 q");
    assert_eq!(emu.cursor().shape, CursorShape::Beam);
    assert!(!emu.cursor().blink);
    emu.feed(b"\x1b[3 q");
    assert_eq!(emu.cursor().shape, CursorShape::Underline);
    assert!(emu.cursor().blink);
    emu.feed(b"\x1b[?25l");
    assert!(!emu.cursor().visible);
}

#[test]
fn frames_carry_only_damaged_rows() {
    let mut emu = emulator(10, 5, b"one\r\ntwo\r\nthree");
    let first = emu.frame(1, vec![]);
    assert!(first.full);
    assert_eq!(
        first.rows.len(),
        3,
        "blank rows are implied by a full frame"
    );
    assert!(!emu.is_dirty());
    emu.feed(b"\x1b[2;1HTWO");
    assert!(emu.is_dirty());
    let second = emu.frame(2, vec![]);
    assert!(!second.full);
    // The changed row, plus the rows the cursor left and entered (alacritty
    // reports those so cursor moves repaint); never the untouched rows.
    let rows: Vec<u16> = second.rows.iter().map(|u| u.row).collect();
    assert!(rows.contains(&1), "{rows:?}");
    assert!(!rows.contains(&3) && !rows.contains(&4), "{rows:?}");
    assert_eq!(row_line(&second, 1).text(), "TWO");
}

#[test]
fn queries_are_answered_to_the_program() {
    let mut emu = emulator(10, 5, b"ab\x1b[6n");
    assert_eq!(emu.take_replies(), b"\x1b[1;3R");
    assert!(emu.take_replies().is_empty());
    emu.feed(b"\x1b]11;?\x07");
    let reply = String::from_utf8(emu.take_replies()).unwrap_or_default();
    assert!(reply.starts_with("\x1b]11;rgb:1e1e/1e1e/1e1e"), "{reply:?}");
}

#[test]
fn title_and_bell_are_sent_once() {
    let mut emu = emulator(10, 2, b"\x1b]0;my title\x07\x07");
    let frame = emu.frame(1, vec![]);
    assert_eq!(frame.title.as_deref(), Some("my title"));
    assert!(frame.bell);
    emu.feed(b"x");
    let frame = emu.frame(2, vec![]);
    assert_eq!(frame.title, None);
    assert!(!frame.bell);
    emu.mark_full();
    assert_eq!(emu.frame(3, vec![]).title.as_deref(), Some("my title"));
}

#[test]
fn osc52_writes_reach_the_frame_once_and_reads_get_no_answer() {
    // "yanked" in base64, as tmux and vim send it; BEL and ST endings.
    let mut emu = emulator(10, 2, b"\x1b]52;c;eWFua2Vk\x07");
    assert!(emu.is_dirty());
    assert_eq!(emu.frame(1, vec![]).clipboard.as_deref(), Some("yanked"));
    assert_eq!(emu.frame(2, vec![]).clipboard, None);
    // Two writes before a frame: the last is the clipboard's.
    emu.feed(b"\x1b]52;c;Zmlyc3Q=\x1b\\\x1b]52;p;c2Vjb25k\x07");
    assert_eq!(emu.frame(3, vec![]).clipboard.as_deref(), Some("second"));
    // A program asking to read the clipboard gets nothing back, and the
    // page is never asked.
    emu.feed(b"\x1b]52;c;?\x07");
    assert!(emu.take_replies().is_empty());
    assert_eq!(emu.frame(4, vec![]).clipboard, None);
    // Beyond what the protocol carries: dropped whole, not cut.
    let big = "a".repeat(protocol::MAX_CLIPBOARD + 3);
    let encoded = base64_of(big.as_bytes());
    emu.feed(format!("\x1b]52;c;{encoded}\x07").as_bytes());
    assert_eq!(emu.frame(5, vec![]).clipboard, None);
}

/// Standard base64 with padding, for OSC 52 payloads.
fn base64_of(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().fold(0u32, |n, b| (n << 8) | u32::from(*b)) << (8 * (3 - chunk.len()));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[test]
fn resize_reflows_and_forces_a_full_frame() {
    let mut emu = emulator(10, 3, b"0123456789abc");
    emu.frame(1, vec![]);
    emu.resize(Size { cols: 20, rows: 3 });
    let frame = emu.frame(2, vec![]);
    assert!(frame.full);
    assert_eq!(frame.size, Size { cols: 20, rows: 3 });
    assert_eq!(row_line(&frame, 0).text(), "0123456789abc");
}

/// `count` numbered lines, each followed by CR LF.
fn numbered_lines(count: usize) -> Vec<u8> {
    (0..count)
        .flat_map(|i| format!("{i}\r\n").into_bytes())
        .collect()
}

/// Cells alacritty's grids hold: the primary grid's screen and history (its
/// `Dimensions`), plus the alternate screen of the same size.
fn grid_cells(emu: &Emulator) -> usize {
    let grid = emu.term.grid();
    (grid.total_lines() + grid.screen_lines()) * grid.columns()
}

#[test]
fn a_wide_flood_stays_within_the_cell_budget() {
    let size = Size {
        cols: 1000,
        rows: 500,
    };
    let mut emu = emulator(size.cols, size.rows, &numbered_lines(12_000));
    assert_eq!(emu.size(), size, "the protocol's largest grid is admitted");
    let grid = emu.term.grid();
    assert!(
        grid.total_lines() * grid.columns() <= CELL_BUDGET,
        "{} lines of {} cells",
        grid.total_lines(),
        grid.columns()
    );
    assert!(grid_cells(&emu) <= CELL_BUDGET, "{}", grid_cells(&emu));
    // What the emulator keeps is the newest history, contiguous.
    let scrolled = emu.drain_scrolled();
    assert_eq!(scrolled.len(), emu.history_limit());
    assert!(emu.history_limit() > 0 && emu.history_limit() < SCROLLBACK_LINES);
    assert_eq!(
        scrolled.last().map(Line::text),
        Some((12_000 - usize::from(size.rows)).to_string())
    );
}

#[test]
fn common_terminals_keep_the_full_history() {
    for (cols, rows) in [(80, 24), (200, 50)] {
        let mut emu = emulator(cols, rows, &numbered_lines(SCROLLBACK_LINES + 5000));
        assert_eq!(emu.history_limit(), SCROLLBACK_LINES);
        let scrolled = emu.drain_scrolled();
        assert_eq!(scrolled.len(), SCROLLBACK_LINES, "{cols}x{rows}");
        assert_eq!(
            scrolled[0].text(),
            (5000 - usize::from(rows) + 1).to_string()
        );
    }
}

#[test]
fn wider_terminals_keep_fewer_lines_of_history() {
    let mut emu = emulator(80, 24, &numbered_lines(100));
    assert_eq!(emu.drain_scrolled().len(), 100 - 23);
    let fit = emu.resize(Size {
        cols: 1000,
        rows: 500,
    });
    assert!(!fit.is_clamped());
    assert!(emu.history_limit() < SCROLLBACK_LINES);
    emu.feed(&numbered_lines(12_000));
    assert!(grid_cells(&emu) <= CELL_BUDGET, "{}", grid_cells(&emu));
    assert_eq!(emu.drain_scrolled().len(), emu.history_limit());
    // Back at 80 columns the full history is allowed again.
    emu.resize(Size { cols: 80, rows: 24 });
    assert_eq!(emu.history_limit(), SCROLLBACK_LINES);
    emu.feed(&numbered_lines(SCROLLBACK_LINES + 100));
    assert_eq!(emu.drain_scrolled().len(), SCROLLBACK_LINES);
}

#[test]
fn a_grid_beyond_the_budget_is_clamped_to_the_largest_of_its_shape() {
    let budget = CellBudget::new(300_000);
    let mut emu = Emulator::with_budget(Size::default(), budget);
    let asked = Size {
        cols: 600,
        rows: 200,
    };
    assert!(!budget.admits(asked));
    let fit = emu.resize(asked);
    let granted = fit.granted;
    assert_eq!(emu.size(), granted);
    assert!(fit.is_clamped());
    assert!(budget.admits(granted), "{granted}");
    // The shape asked for (3:1), as near as whole cells allow.
    let ratio = f64::from(granted.cols) / f64::from(granted.rows);
    assert!((ratio - 3.0).abs() < 0.1, "{granted}");
    // And the largest of that shape: one row more does not fit.
    let bigger = Size {
        cols: granted.cols + 3,
        rows: granted.rows + 1,
    };
    assert!(!budget.admits(bigger), "{bigger}");
    let notice = fit.notice().unwrap_or_default();
    assert!(
        notice.contains("limited to 300000 cells on this host")
            && notice.contains("600×200")
            && notice.contains(&format!("clamped to {granted}")),
        "{notice}"
    );
    // Whatever the program prints, the grid stays within the budget.
    emu.feed(&numbered_lines(5000));
    assert!(grid_cells(&emu) <= budget.cells(), "{}", grid_cells(&emu));
    assert_eq!(emu.drain_scrolled().len(), emu.history_limit());
}

#[test]
fn the_protocol_limit_clamps_each_side_and_says_so() {
    let mut emu = emulator(80, 24, b"");
    let fit = emu.resize(Size {
        cols: 4000,
        rows: 100,
    });
    assert_eq!(
        fit.granted,
        Size {
            cols: Size::MAX.cols,
            rows: 100
        }
    );
    let notice = fit.notice().unwrap_or_default();
    assert!(
        notice.contains(&format!("limited to {} cells", Size::MAX)) && notice.contains("4000×100"),
        "{notice}"
    );
    // A size that fits, or one below the minimum, needs no notice.
    assert_eq!(emu.resize(Size { cols: 80, rows: 24 }).notice(), None);
    assert_eq!(emu.resize(Size { cols: 1, rows: 0 }).notice(), None);
}

#[test]
fn a_tiny_budget_still_fits_the_default_terminal() {
    let budget = CellBudget::new(0);
    assert_eq!(budget, CellBudget::MIN);
    assert!(budget.admits(Size::default()));
    // Even one row of an extreme shape gets a usable width.
    let fit = budget.fit(Size {
        cols: 1000,
        rows: 1,
    });
    assert!(budget.admits(fit.granted), "{}", fit.granted);
    assert!(fit.granted.cols >= 80, "{}", fit.granted);
}

/// The heap alacritty really allocates, as jemalloc counts it for the
/// calling thread, so tests running in parallel do not disturb it.
pub(crate) mod heap {
    use alacritty_terminal::term::cell::Cell;
    use protocol::Size;
    use tikv_jemalloc_ctl::thread;

    use crate::emulator::Emulator;

    // The host runs on jemalloc (see main.rs); so do these tests.
    #[global_allocator]
    static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

    /// Bytes this thread allocated and has not freed.
    pub fn live() -> i64 {
        let allocated = thread::allocatedp::read().expect("jemalloc's thread.allocatedp");
        let freed = thread::deallocatedp::read().expect("jemalloc's thread.deallocatedp");
        allocated.get() as i64 - freed.get() as i64
    }

    /// The most heap a terminal `cols` wide holding `cells` may take: each
    /// row of cells as jemalloc rounds it up to its size class, plus what
    /// the grid's list of rows takes per row (a `Row` header, with room to
    /// grow), plus what every terminal costs whatever its size (mostly the
    /// parser's 2 MiB buffer for synchronized updates).
    pub fn allowed(cols: u16, cells: usize) -> i64 {
        let before = live();
        let row = vec![Cell::default(); usize::from(cols)];
        let row_bytes = live() - before;
        drop(row);
        let before = live();
        let smallest = Emulator::new(Size::MIN);
        let fixed = live() - before;
        drop(smallest);
        let rows = (cells / usize::from(cols)) as i64;
        fixed + rows * (row_bytes + 64)
    }
}

#[test]
fn a_wide_session_allocates_no_more_than_its_budget() {
    let wide = Size {
        cols: 1000,
        rows: 500,
    };
    let limit = heap::allowed(wide.cols, CELL_BUDGET);
    let flood = numbered_lines(12_000);
    // How a session can reach the widest grid: started at it, grown into
    // it from the default, by rows alone (alacritty allocates rows ahead),
    // or by one column (a row's cells double when it grows).
    let paths: [(&str, Size, Option<Size>); 4] = [
        ("started wide", wide, None),
        ("grown from 80x24", Size::default(), Some(wide)),
        (
            "grown by rows",
            Size {
                cols: 1000,
                rows: 400,
            },
            Some(wide),
        ),
        (
            "grown by a column",
            Size {
                cols: 999,
                rows: 500,
            },
            Some(wide),
        ),
    ];
    for (path, start, then) in paths {
        let before = heap::live();
        let mut emu = Emulator::new(start);
        if let Some(size) = then {
            emu.resize(size);
        }
        let mut most = 0;
        for chunk in flood.chunks(flood.len() / 12) {
            emu.feed(chunk);
            most = most.max(heap::live() - before);
        }
        assert!(
            most <= limit,
            "{path}: {:.1} MiB held, budget {:.1} MiB",
            most as f64 / 1048576.0,
            limit as f64 / 1048576.0
        );
        drop(emu);
    }
}

#[test]
fn a_narrowed_session_gives_back_its_wide_rows() {
    let flood = numbered_lines(12_000);
    let narrow = Size {
        cols: 200,
        rows: 500,
    };
    let before = heap::live();
    let mut emu = emulator(1000, 500, &flood);
    emu.drain_scrolled();
    emu.resize(narrow);
    emu.feed(&flood);
    let held = heap::live() - before;
    let limit = heap::allowed(narrow.cols, cells_held(narrow, emu.history_limit()));
    // Rows keep their capacity when the grid narrows; without giving it
    // back the narrow grid would still hold the wide grid's cells.
    assert!(
        held <= limit,
        "{:.1} MiB held, {:.1} MiB allowed",
        held as f64 / 1048576.0,
        limit as f64 / 1048576.0
    );
}

#[test]
fn resizing_keeps_both_screens_and_the_saved_cursor() {
    // Resizes release memory in both grids, reaching the hidden one by
    // switching to it and back; none of that may show.
    let mut emu = emulator(20, 4, b"primary\x1b[2;3H\x1b7\x1b[4;1H");
    emu.resize(Size { cols: 30, rows: 4 });
    emu.resize(Size { cols: 30, rows: 6 });
    assert_eq!(emu.screen_text()[0], "primary");
    assert!(!emu.modes().has(Modes::ALT_SCREEN));
    emu.feed(b"\x1b8");
    assert_eq!((emu.cursor().row, emu.cursor().col), (1, 2));
    emu.feed(b"\x1b[?1049h\x1b[Halt");
    emu.resize(Size { cols: 25, rows: 8 });
    emu.resize(Size { cols: 25, rows: 5 });
    assert_eq!(emu.screen_text()[0], "alt");
    assert!(emu.modes().has(Modes::ALT_SCREEN));
    emu.feed(b"\x1b[?1049l");
    assert_eq!(emu.screen_text()[0], "primary");
}

#[test]
fn hostile_sizes_are_clamped() {
    let emu = Emulator::new(Size {
        cols: u16::MAX,
        rows: 0,
    });
    assert_eq!(
        emu.size(),
        Size {
            cols: 1000,
            rows: 1
        }
    );
}

#[test]
fn recorded_vim_like_session_renders() {
    // Bytes as vim emits them for a two-line file on a 20x4 screen: enter
    // the alternate screen, clear, draw with colours, park the cursor.
    let recorded = b"\x1b[?1049h\x1b[22;0;0t\x1b[?1h\x1b=\x1b[H\x1b[2J\x1b[?2004h\
\x1b[1;1Hfn main() {}\r\n\x1b[34m~                   \x1b[m\r\n\x1b[34m~\x1b[m\
\x1b[4;1H\"a.rs\" 1L, 13B\x1b[1;1H\x1b[?25h";
    let mut emu = emulator(20, 4, recorded);
    assert_eq!(
        emu.screen_text(),
        ["fn main() {}", "~", "~", "\"a.rs\" 1L, 13B"]
    );
    let frame = emu.frame(1, vec![]);
    assert!(frame.modes.has(Modes::ALT_SCREEN | Modes::APP_CURSOR));
    assert_eq!(row_line(&frame, 1).runs[0].style.fg, Color::Indexed(4));
    assert_eq!((frame.cursor.row, frame.cursor.col), (0, 0));
}

#[test]
fn garbage_never_panics() {
    let mut emu = emulator(7, 3, b"");
    let mut state = 0x1234_5678_9abc_def0u64;
    let mut bytes = Vec::with_capacity(1 << 16);
    for _ in 0..(1 << 16) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        // Bias towards escape sequences so the parser's states are exercised.
        let b = state as u8;
        bytes.push(if b.is_multiple_of(5) { 0x1b } else { b });
    }
    for chunk in bytes.chunks(997) {
        emu.feed(chunk);
        let _ = emu.take_replies();
        let scrolled = emu.drain_scrolled();
        let _ = emu.frame(1, scrolled);
    }
}

#[test]
fn a_synchronized_update_is_counted_and_its_wait_kept_without_a_clock() {
    let mut emu = emulator(20, 2, b"\x1b[?2026h");
    let first = emu.sync_timeout().expect("an update buffers output");
    assert_eq!(first.started, 1);
    assert!(first.wait > Duration::ZERO);
    emu.feed(b"held");
    assert_eq!(emu.sync_timeout(), Some(first), "the same update");
    assert_eq!(emu.screen_text(), ["", ""], "buffered until it ends");
    emu.feed(b"\x1b[?2026l");
    assert_eq!(emu.sync_timeout(), None);
    assert_eq!(emu.screen_text(), ["held", ""]);

    emu.feed(b"\x1b[?2026hlate");
    assert_eq!(emu.sync_timeout().map(|sync| sync.started), Some(2));
    emu.flush_sync();
    assert_eq!(emu.sync_timeout(), None, "flushed when its time was up");
    assert_eq!(emu.screen_text(), ["heldlate", ""]);
}

#[test]
fn osc8_links_reach_the_row_and_only_web_and_mail_ones() {
    let mut emu = emulator(
        40,
        2,
        b"see \x1b]8;;https://example.com/a\x1b\\the docs\x1b]8;;\x1b\\ or \
          \x1b]8;id=x;javascript:alert(1)\x07this\x1b]8;;\x07, \x1b]8;;mailto:ada@example.com\x07mail\x1b]8;;\x07",
    );
    let frame = emu.frame(1, vec![]);
    let row = frame.rows.iter().find(|r| r.row == 0).expect("row 0");
    assert_eq!(row.line.text(), "see the docs or this, mail");
    assert_eq!(
        row.links,
        [
            Hyperlink {
                start: 4,
                end: 12,
                uri: "https://example.com/a".into()
            },
            Hyperlink {
                start: 22,
                end: 26,
                uri: "mailto:ada@example.com".into()
            },
        ]
    );
    // A row without links carries none.
    emu.feed(b"\r\nplain https://example.com");
    let frame = emu.frame(2, vec![]);
    let row = frame.rows.iter().find(|r| r.row == 1).expect("row 1");
    assert!(row.links.is_empty());
}
