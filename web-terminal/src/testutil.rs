//! Builders shared by the unit tests: lines and frames from plain strings.

use protocol::{CellLayout, Cursor, Frame, Line, Modes, RowUpdate, Run, Size, Style};

pub fn line(text: &str) -> Line {
    Line {
        runs: vec![Run {
            style: Style::default(),
            layout: CellLayout::Narrow,
            text: text.into(),
        }],
        wrapped: false,
    }
}

pub fn wrapped(text: &str) -> Line {
    Line {
        wrapped: true,
        ..line(text)
    }
}

pub fn wide(text: &str) -> Run {
    Run {
        style: Style::default(),
        layout: CellLayout::Wide,
        text: text.into(),
    }
}

pub fn narrow(text: &str) -> Run {
    Run {
        style: Style::default(),
        layout: CellLayout::Narrow,
        text: text.into(),
    }
}

pub fn frame(seq: u64, size: Size, rows: &[(u16, Line)]) -> Frame {
    Frame {
        seq,
        size,
        full: false,
        scrolled: vec![],
        rows: rows
            .iter()
            .map(|(row, line)| RowUpdate {
                row: *row,
                line: line.clone(),
                links: Vec::new(),
            })
            .collect(),
        cursor: Cursor {
            visible: true,
            ..Cursor::default()
        },
        modes: Modes(0),
        title: None,
        bell: false,
        clipboard: None,
        notification: None,
        echo_ack: 0,
        tty: protocol::TtyModes(protocol::TtyModes::ECHO | protocol::TtyModes::CANONICAL),
    }
}

pub const SMALL: Size = Size { cols: 10, rows: 3 };
