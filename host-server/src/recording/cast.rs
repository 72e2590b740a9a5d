//! Export of a recording as asciicast v2 and v3, and as plain text, so a
//! session can leave Thinline: `asciinema play`, asciinema-player and
//! every tool of that ecosystem read the casts, anything reads the text.
//!
//! An [`Exporter`] takes the recording one event at a time and gives back
//! whole lines, so the directory can stream an export of any length. Casts
//! carry the program's output as text while the recording holds raw bytes:
//! a character split between two reads is carried over to the next output
//! (and written, lossily, before a resize, a marker or the end), invalid
//! bytes become U+FFFD. The text export is what a terminal's own
//! scrollback would have kept: every line as it scrolled off the top of
//! the screen, then the last screen, without colours and without what the
//! alternate screen showed.
//!
//! asciicast v2: <https://docs.asciinema.org/manual/asciicast/v2/>;
//! v3: <https://docs.asciinema.org/manual/asciicast/v3/>.

use protocol::{Line, Modes, Size};

use super::{Event, TimedEvent};
use crate::emulator::Emulator;

/// What a recording is exported as.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Format {
    /// asciicast v2: event times since the start (asciinema 2.x).
    CastV2,
    /// asciicast v3: event times since the previous event (asciinema 3).
    CastV3,
    /// The session's text, as its scrollback and last screen read.
    Text,
}

impl Format {
    /// The file name extension, without the dot.
    pub fn extension(self) -> &'static str {
        match self {
            Format::CastV2 | Format::CastV3 => "cast",
            Format::Text => "txt",
        }
    }

    /// The media type of the export.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::CastV2 | Format::CastV3 => "application/x-asciicast",
            Format::Text => "text/plain; charset=utf-8",
        }
    }
}

/// What an export says about the recording as a whole.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// The terminal's size when the recording started.
    pub cols: u16,
    pub rows: u16,
    /// When the recording started (a cast keeps it in whole seconds).
    pub started_at_unix_ms: u64,
    pub title: Option<String>,
}

/// Turns a recording's events, in order, into an export's text.
pub struct Exporter {
    kind: Kind,
}

enum Kind {
    Cast(CastWriter),
    /// Boxed: an emulator is a few KiB, a cast's writer a few words.
    Text(Box<TextWriter>),
}

impl Exporter {
    /// The exporter and its first text: the header line of a cast, nothing
    /// for text.
    pub fn new(format: Format, header: &Header) -> (Exporter, String) {
        let (kind, first) = match format {
            Format::CastV2 => (
                Kind::Cast(CastWriter::new(CastVersion::V2)),
                cast_header(CastVersion::V2, header),
            ),
            Format::CastV3 => (
                Kind::Cast(CastWriter::new(CastVersion::V3)),
                cast_header(CastVersion::V3, header),
            ),
            Format::Text => {
                let size = Size {
                    cols: header.cols,
                    rows: header.rows,
                };
                (Kind::Text(Box::new(TextWriter::new(size))), String::new())
            }
        };
        (Exporter { kind }, first)
    }

    /// The text for one more event: zero or more whole lines.
    pub fn event(&mut self, event: &TimedEvent) -> String {
        match &mut self.kind {
            Kind::Cast(cast) => cast.event(event),
            Kind::Text(text) => text.event(&event.event),
        }
    }

    /// The rest: a character held back for its missing bytes, or for text
    /// the last screen.
    pub fn finish(self) -> String {
        match self.kind {
            Kind::Cast(cast) => cast.finish(),
            Kind::Text(text) => text.finish(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CastVersion {
    V2,
    V3,
}

/// The header line, members in the order the specifications show them.
fn cast_header(version: CastVersion, header: &Header) -> String {
    let timestamp = header.started_at_unix_ms / 1000;
    let (cols, rows) = (header.cols, header.rows);
    let mut line = match version {
        CastVersion::V2 => format!(
            r#"{{"version": 2, "width": {cols}, "height": {rows}, "timestamp": {timestamp}"#
        ),
        CastVersion::V3 => format!(
            r#"{{"version": 3, "term": {{"cols": {cols}, "rows": {rows}}}, "timestamp": {timestamp}"#
        ),
    };
    if let Some(title) = &header.title {
        line.push_str(r#", "title": "#);
        line.push_str(&json_string(title));
    }
    line.push_str("}\n");
    line
}

/// `text` as a JSON string, escaped by serde_json.
fn json_string(text: &str) -> String {
    // Serialising a `str` cannot fail; the fallback only keeps this total.
    serde_json::to_string(text).unwrap_or_else(|_| String::from("\"\""))
}

/// Milliseconds as seconds with millisecond precision: `1.234`.
fn seconds(ms: u64) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

/// The event lines of a cast.
struct CastWriter {
    version: CastVersion,
    /// The start of a UTF-8 sequence whose other bytes the next output
    /// should bring (at most 3 bytes).
    carry: Vec<u8>,
    /// The latest event time seen; an event stamped earlier is taken to
    /// happen then, so times never go back.
    now_ms: u64,
    /// The time of the last line written, which a v3 interval counts from.
    written_ms: u64,
}

impl CastWriter {
    fn new(version: CastVersion) -> CastWriter {
        CastWriter {
            version,
            carry: Vec::new(),
            now_ms: 0,
            written_ms: 0,
        }
    }

    fn event(&mut self, event: &TimedEvent) -> String {
        self.now_ms = self.now_ms.max(event.at_ms);
        match &event.event {
            Event::Output(bytes) => {
                let text = decode_utf8(&mut self.carry, bytes);
                self.line("o", &text)
            }
            Event::Resize(size) => {
                let mut out = self.flush();
                out.push_str(&self.line("r", &format!("{}x{}", size.cols, size.rows)));
                out
            }
            Event::Marker(label) => {
                let mut out = self.flush();
                out.push_str(&self.line_always("m", label));
                out
            }
        }
    }

    fn finish(mut self) -> String {
        self.flush()
    }

    /// Output held back for its missing bytes, written as it is.
    fn flush(&mut self) -> String {
        let held = std::mem::take(&mut self.carry);
        self.line("o", &String::from_utf8_lossy(&held))
    }

    /// One event line now, or nothing if `data` is empty.
    fn line(&mut self, code: &str, data: &str) -> String {
        if data.is_empty() {
            return String::new();
        }
        self.line_always(code, data)
    }

    /// One event line now, even with empty data (a marker without a label
    /// is still a mark).
    fn line_always(&mut self, code: &str, data: &str) -> String {
        let time = match self.version {
            CastVersion::V2 => self.now_ms,
            CastVersion::V3 => self.now_ms.saturating_sub(self.written_ms),
        };
        self.written_ms = self.now_ms;
        format!("[{}, \"{code}\", {}]\n", seconds(time), json_string(data))
    }
}

/// `bytes`, after the `carry` of the previous output, as text: invalid
/// bytes become U+FFFD (as `String::from_utf8_lossy` replaces them), and a
/// sequence cut off at the end stays in `carry` for the next output.
fn decode_utf8(carry: &mut Vec<u8>, bytes: &[u8]) -> String {
    let mut buf = std::mem::take(carry);
    buf.extend_from_slice(bytes);
    *carry = buf.split_off(incomplete_tail(&buf));
    String::from_utf8(buf).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
}

/// Where a UTF-8 sequence that is cut off at the end of `bytes` starts
/// (its first bytes are valid so far), or `bytes.len()` if there is none.
fn incomplete_tail(bytes: &[u8]) -> usize {
    let len = bytes.len();
    // A sequence is at most 4 bytes: a cut-off one is its lead byte and at
    // most 2 continuation bytes.
    for start in (len.saturating_sub(3)..len).rev() {
        let Some(&byte) = bytes.get(start) else { break };
        if byte & 0xC0 == 0x80 {
            continue;
        }
        let cut_off = matches!(
            std::str::from_utf8(&bytes[start..]),
            Err(e) if e.valid_up_to() == 0 && e.error_len().is_none()
        );
        return if cut_off { start } else { len };
    }
    len
}

/// Output in bytes fed to the text export's emulator at a time: fewer than
/// the history it keeps at any size (1000 lines at least), since a byte
/// scrolls at most one line unless a program scrolls on purpose, so no
/// line leaves the history before it is drained.
const TEXT_CHUNK: usize = 512;

/// The plain text of a session: an emulator fed its output, and the lines
/// that scrolled off its primary screen.
struct TextWriter {
    emulator: Emulator,
    /// The start of a line that wrapped onto a row not scrolled yet.
    partial: String,
}

impl TextWriter {
    fn new(size: Size) -> TextWriter {
        TextWriter {
            emulator: Emulator::new(size),
            partial: String::new(),
        }
    }

    fn event(&mut self, event: &Event) -> String {
        match event {
            Event::Output(bytes) => {
                let mut out = String::new();
                for chunk in bytes.chunks(TEXT_CHUNK) {
                    self.emulator.feed(chunk);
                    // What a live program would get or hand the user.
                    drop(self.emulator.take_replies());
                    drop(self.emulator.take_downloads());
                    // Time is of no account here: a synchronized update
                    // shows the same text when flushed at once, and its
                    // lines cannot pile up beyond the history.
                    if self.emulator.sync_timeout().is_some() {
                        self.emulator.flush_sync();
                    }
                    self.drain(&mut out);
                }
                out
            }
            Event::Resize(size) => {
                let mut out = String::new();
                self.drain(&mut out);
                self.emulator.resize(*size);
                out
            }
            Event::Marker(_) => String::new(),
        }
    }

    /// Appends the lines that scrolled off the primary screen.
    fn drain(&mut self, out: &mut String) {
        let cols = self.emulator.size().cols;
        for line in self.emulator.drain_scrolled() {
            self.push_line(&line, cols, out);
        }
    }

    /// Appends `line` (of a `cols`-wide grid), or keeps it for the next if
    /// it wrapped onto it: a soft-wrapped line reads as one, as a
    /// terminal's copy joins it.
    fn push_line(&mut self, line: &Line, cols: u16, out: &mut String) {
        if line.wrapped {
            // Blanks at the end of a row that wrapped were written: they
            // stay between the two halves.
            for run in &line.runs {
                self.partial.push_str(&run.text);
            }
            let blanks = usize::from(cols).saturating_sub(line.columns());
            self.partial.extend(std::iter::repeat_n(' ', blanks));
            return;
        }
        let mut text = std::mem::take(&mut self.partial);
        text.push_str(&line.text());
        out.push_str(text.trim_end_matches(' '));
        out.push('\n');
    }

    /// The last screen: the primary one, without trailing blank lines.
    fn finish(mut self) -> String {
        let mut out = String::new();
        if self.emulator.sync_timeout().is_some() {
            self.emulator.flush_sync();
        }
        if self.emulator.modes().0 & Modes::ALT_SCREEN != 0 {
            // Back to the primary screen, as the program's exit would have
            // gone, after cancelling (CAN) a sequence the recording cut off.
            self.emulator.feed(b"\x18\x1b[?1049l");
        }
        self.drain(&mut out);
        let cols = self.emulator.size().cols;
        let mut screen = String::new();
        for line in self.emulator.visible_lines() {
            self.push_line(&line, cols, &mut screen);
        }
        if !self.partial.is_empty() {
            // The screen's last row wrapped onto nothing.
            screen.push_str(self.partial.trim_end_matches(' '));
            screen.push('\n');
        }
        let kept = screen.trim_end_matches('\n').len();
        screen.truncate(kept);
        if !screen.is_empty() {
            out.push_str(&screen);
            out.push('\n');
        }
        out
    }
}

#[cfg(test)]
mod tests;
