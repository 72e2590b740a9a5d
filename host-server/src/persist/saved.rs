//! The format of a persisted screen, and the bytes that draw it again.
//!
//! Pure data and functions, apart from the persister's queue and task in
//! `persist`, because the session core builds snapshots with them and must
//! do no IO (ARCHITECTURE: "the session core does no IO").

use protocol::{CellLayout, Color, CompressedLines, Cursor, Line, Modes, Size, Style, StyleFlags};
use serde::{Deserialize, Serialize};

/// A session's screen as persisted: everything needed to show it again.
/// The store treats it as opaque bytes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SavedScreen {
    pub size: Size,
    pub rows: Vec<Line>,
    pub cursor: Cursor,
    pub modes: Modes,
    pub title: Option<String>,
    /// Scrollback lines not yet sealed into a stored block.
    pub tail: Vec<Line>,
    /// The sequence number the next sealed block will get.
    pub next_block_seq: u64,
}

/// Format tag in front of every saved screen, bumped on incompatible change.
const SCREEN_FORMAT: u8 = 1;

pub fn encode_screen(screen: &SavedScreen) -> Vec<u8> {
    let raw = postcard::to_allocvec(screen).unwrap_or_default();
    let mut out = vec![SCREEN_FORMAT];
    out.extend_from_slice(&lz4_flex::block::compress_prepend_size(&raw));
    out
}

pub fn decode_screen(bytes: &[u8]) -> Result<SavedScreen, String> {
    match bytes.split_first() {
        Some((&SCREEN_FORMAT, body)) => {
            let raw = lz4_flex::block::decompress_size_prepended(body)
                .map_err(|e| format!("saved screen: {e}"))?;
            postcard::from_bytes(&raw).map_err(|e| format!("saved screen: {e}"))
        }
        Some((format, _)) => Err(format!("saved screen has unknown format {format}")),
        None => Err("saved screen is empty".into()),
    }
}

pub fn encode_block(block: &CompressedLines) -> Vec<u8> {
    postcard::to_allocvec(block).unwrap_or_default()
}

pub fn decode_block(bytes: &[u8]) -> Result<CompressedLines, String> {
    postcard::from_bytes(bytes).map_err(|e| format!("scrollback block: {e}"))
}

/// Renders lines as the escape sequences that draw them, so a restored
/// screen is reproduced by the new emulator exactly as it looked.
pub fn render_ansi(lines: &[Line]) -> Vec<u8> {
    let mut out = Vec::new();
    for (i, line) in lines.iter().enumerate() {
        for run in &line.runs {
            out.extend_from_slice(sgr(run.style).as_bytes());
            match run.layout {
                CellLayout::Narrow | CellLayout::Wide | CellLayout::Cluster { .. } => {
                    out.extend_from_slice(run.text.as_bytes())
                }
            }
        }
        out.extend_from_slice(b"\x1b[0m");
        if i + 1 < lines.len() {
            out.extend_from_slice(b"\r\n");
        }
    }
    out
}

fn sgr(style: Style) -> String {
    let mut codes = vec!["0".to_string()];
    let flags = [
        (StyleFlags::BOLD, "1"),
        (StyleFlags::DIM, "2"),
        (StyleFlags::ITALIC, "3"),
        (StyleFlags::UNDERLINE, "4"),
        (StyleFlags::DOUBLE_UNDERLINE, "21"),
        (StyleFlags::UNDERCURL, "4:3"),
        (StyleFlags::INVERSE, "7"),
        (StyleFlags::HIDDEN, "8"),
        (StyleFlags::STRIKE, "9"),
    ];
    for (flag, code) in flags {
        if style.flags.has(flag) {
            codes.push(code.into());
        }
    }
    for (color, base) in [(style.fg, 38), (style.bg, 48)] {
        match color {
            Color::Default => {}
            Color::Indexed(i) => codes.push(format!("{base};5;{i}")),
            Color::Rgb(r, g, b) => codes.push(format!("{base};2;{r};{g};{b}")),
        }
    }
    format!("\x1b[{}m", codes.join(";"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::Emulator;
    use protocol::Run;

    #[test]
    fn saved_screens_round_trip() {
        let screen = SavedScreen {
            size: Size { cols: 80, rows: 2 },
            rows: vec![Line {
                runs: vec![Run {
                    text: "hello".into(),
                    ..Run::default()
                }],
                wrapped: false,
            }],
            cursor: Cursor::default(),
            modes: Modes(Modes::BRACKETED_PASTE),
            title: Some("t".into()),
            tail: vec![Line::default()],
            next_block_seq: 7,
        };
        assert_eq!(decode_screen(&encode_screen(&screen)), Ok(screen));
        assert!(decode_screen(&[]).is_err());
        assert!(decode_screen(&[9, 1, 2]).is_err());
        assert!(decode_screen(&[SCREEN_FORMAT, 0xff, 0xff, 0xff, 0x7f]).is_err());
    }

    #[test]
    fn rendered_lines_reproduce_the_screen_exactly() {
        let mut original = Emulator::new(Size { cols: 30, rows: 4 });
        original.feed(
            "\x1b[31mred\x1b[0m plain \x1b[1;4;38;2;9;8;7mbold\x1b[0m\r\n漢字 e\u{301}\r\n\x1b[7minverse"
                .as_bytes(),
        );
        let lines = original.visible_lines();
        let mut copy = Emulator::new(Size { cols: 30, rows: 4 });
        copy.feed(&render_ansi(&lines));
        assert_eq!(copy.visible_lines(), lines);
    }
}
