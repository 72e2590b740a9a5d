//! The JSON answers of the page's test API (`window.thinline`).
//!
//! End-to-end tests read the client's state through these strings, so their
//! shape is a contract (see the comment at the top of `web.rs`). They are
//! built by hand rather than with serde_json to keep the wasm small, and
//! tested here natively.

use protocol::StyleFlags;

use crate::connection::Connection;
use crate::json::json_string;
use crate::render::{Theme, color_spec};
use crate::screen::{Cell, CellWidth, Screen};

fn opt_string(s: Option<&str>) -> String {
    s.map_or_else(|| "null".to_owned(), json_string)
}

fn opt_number(n: Option<u64>) -> String {
    n.map_or_else(|| "null".to_owned(), |n| n.to_string())
}

/// `thinline.state()`. `now` dates the stage's elapsed time.
pub fn state_json(conn: &Connection, screen: &Screen, now: u64) -> String {
    let size = screen.size();
    let session = conn.session().map(|s| s.to_string());
    format!(
        "{{\"connection\":{},\"host\":{},\"session\":{},\"epoch\":{},\"rtt_ms\":{},\"cols\":{},\"rows\":{},\"error\":{},\"frames\":{},\"stage\":{},\"undelivered\":{},\"directory\":{},\"user\":{}}}",
        json_string(conn.phase_name()),
        opt_string(conn.host()),
        opt_string(session.as_deref()),
        opt_number(conn.epoch()),
        opt_number(conn.rtt_ms()),
        size.cols,
        size.rows,
        opt_string(conn.error()),
        screen.frames(),
        json_string(&conn.stage(now)),
        conn.undelivered(),
        opt_string(conn.directory()),
        opt_string(conn.user()),
    )
}

/// `thinline.cell(row, col)`: colours resolved through the palette before
/// inverse is applied, plus how they were specified. `null` off the grid.
pub fn cell_json(cell: Option<&Cell>, theme: &Theme) -> String {
    let Some(cell) = cell else {
        return "null".to_owned();
    };
    let style = cell.style;
    let flags = style.flags;
    let fg = theme.foreground_of(style.fg).hex();
    let bg = theme.background_of(style.bg).hex();
    let text = if cell.width == CellWidth::Spacer || cell.text.is_empty() {
        if cell.width == CellWidth::Spacer {
            ""
        } else {
            " "
        }
    } else {
        cell.text.as_str()
    };
    format!(
        "{{\"text\":{},\"fg\":\"{fg}\",\"bg\":\"{bg}\",\"fg_spec\":\"{}\",\"bg_spec\":\"{}\",\"bold\":{},\"dim\":{},\"italic\":{},\"underline\":{},\"inverse\":{},\"strike\":{},\"wide\":{}}}",
        json_string(text),
        color_spec(style.fg),
        color_spec(style.bg),
        flags.has(StyleFlags::BOLD),
        flags.has(StyleFlags::DIM),
        flags.has(StyleFlags::ITALIC),
        flags.has(StyleFlags::UNDERLINE | StyleFlags::DOUBLE_UNDERLINE | StyleFlags::UNDERCURL),
        flags.has(StyleFlags::INVERSE),
        flags.has(StyleFlags::STRIKE),
        cell.width == CellWidth::Wide,
    )
}

#[cfg(test)]
mod tests {
    use protocol::{CellLayout, Color, Line, Run, Size, Style};

    use super::*;
    use crate::connection::SessionChoice;
    use crate::testutil::*;

    #[test]
    fn strings_are_escaped() {
        assert_eq!(json_string("a\"b\\c\n\u{1}é"), "\"a\\\"b\\\\c\\n\\u0001é\"");
    }

    #[test]
    fn state_before_and_after_welcome() {
        let screen = Screen::new(Size { cols: 80, rows: 24 });
        let conn = Connection::start(SessionChoice::Any, screen.size(), 0, 1, "http://d:1".into());
        assert_eq!(
            state_json(&conn, &screen, 0),
            "{\"connection\":\"connecting\",\"host\":null,\"session\":null,\"epoch\":null,\"rtt_ms\":null,\"cols\":80,\"rows\":24,\"error\":null,\"frames\":0,\"stage\":\"\",\"undelivered\":0,\"directory\":null,\"user\":null}"
        );
    }

    #[test]
    fn cell_reports_specs_colours_and_flags() {
        let theme = Theme::default();
        let style = Style {
            fg: Color::Indexed(1),
            bg: Color::Rgb(1, 2, 3),
            flags: StyleFlags(StyleFlags::BOLD | StyleFlags::INVERSE | StyleFlags::UNDERCURL),
        };
        let l = Line {
            runs: vec![Run {
                style,
                layout: CellLayout::Wide,
                text: "漢".into(),
            }],
            wrapped: false,
        };
        let mut s = Screen::new(SMALL);
        s.apply_frame(frame(1, SMALL, &[(0, l)]));
        let json = cell_json(s.cell(0, 0).as_ref(), &theme);
        assert_eq!(
            json,
            format!(
                "{{\"text\":\"漢\",\"fg\":\"{}\",\"bg\":\"#010203\",\"fg_spec\":\"indexed:1\",\"bg_spec\":\"rgb:1,2,3\",\"bold\":true,\"dim\":false,\"italic\":false,\"underline\":true,\"inverse\":true,\"strike\":false,\"wide\":true}}",
                theme.ansi[1].hex()
            )
        );
        let blank = cell_json(s.cell(0, 5).as_ref(), &theme);
        assert!(
            blank.starts_with("{\"text\":\" \",\"fg\":\"#d8d8d8\""),
            "{blank}"
        );
        assert!(blank.contains("\"fg_spec\":\"default\""));
        assert_eq!(cell_json(None, &theme), "null");
    }
}
