//! Exports are pinned line by line, as asciinema and the specifications
//! read them; the text export is judged against what a terminal's
//! scrollback and screen would hold.

use super::*;
use crate::recording::testing::{marker, noise, out, resize};

fn header(cols: u16, rows: u16, title: Option<&str>) -> Header {
    Header {
        cols,
        rows,
        started_at_unix_ms: 1_700_000_000_999,
        title: title.map(str::to_owned),
    }
}

/// The whole export, checking that every piece is whole lines.
fn export(format: Format, header: &Header, events: &[TimedEvent]) -> String {
    let (mut exporter, mut text) = Exporter::new(format, header);
    for event in events {
        let piece = exporter.event(event);
        assert!(piece.is_empty() || piece.ends_with('\n'), "{piece:?}");
        text.push_str(&piece);
    }
    let rest = exporter.finish();
    assert!(rest.is_empty() || rest.ends_with('\n'), "{rest:?}");
    text + &rest
}

fn lines(text: &str) -> Vec<&str> {
    text.lines().collect()
}

fn small_recording() -> Vec<TimedEvent> {
    vec![
        out(0, b"$ "),
        out(1_234, b"ls\r\n"),
        resize(2_000, 100, 30),
        marker(2_500, "restored on h2 after h1 was lost"),
        out(3_001, b"\x1b[1;31mbin\x1b[0m\r\n"),
        marker(3_001, ""),
    ]
}

#[test]
fn formats_name_their_files_and_media_types() {
    assert_eq!(Format::CastV2.extension(), "cast");
    assert_eq!(Format::CastV3.extension(), "cast");
    assert_eq!(Format::Text.extension(), "txt");
    assert_eq!(Format::CastV2.content_type(), "application/x-asciicast");
    assert_eq!(Format::CastV3.content_type(), "application/x-asciicast");
    assert_eq!(Format::Text.content_type(), "text/plain; charset=utf-8");
}

#[test]
fn a_v2_cast_times_events_from_the_start() {
    let cast = export(
        Format::CastV2,
        &header(80, 24, Some("demo")),
        &small_recording(),
    );
    assert_eq!(
        lines(&cast),
        [
            r#"{"version": 2, "width": 80, "height": 24, "timestamp": 1700000000, "title": "demo"}"#,
            r#"[0.000, "o", "$ "]"#,
            r#"[1.234, "o", "ls\r\n"]"#,
            r#"[2.000, "r", "100x30"]"#,
            r#"[2.500, "m", "restored on h2 after h1 was lost"]"#,
            r#"[3.001, "o", "\u001b[1;31mbin\u001b[0m\r\n"]"#,
            r#"[3.001, "m", ""]"#,
        ]
    );
}

#[test]
fn a_v3_cast_times_events_from_the_one_before() {
    let cast = export(Format::CastV3, &header(80, 24, None), &small_recording());
    assert_eq!(
        lines(&cast),
        [
            r#"{"version": 3, "term": {"cols": 80, "rows": 24}, "timestamp": 1700000000}"#,
            r#"[0.000, "o", "$ "]"#,
            r#"[1.234, "o", "ls\r\n"]"#,
            r#"[0.766, "r", "100x30"]"#,
            r#"[0.500, "m", "restored on h2 after h1 was lost"]"#,
            r#"[0.501, "o", "\u001b[1;31mbin\u001b[0m\r\n"]"#,
            r#"[0.000, "m", ""]"#,
        ]
    );
}

#[test]
fn a_character_split_between_outputs_is_written_whole() {
    let events = [
        out(10, b"caf\xc3"),
        out(20, b"\xa9!"),
        // A four-byte character in three reads: nothing until it is whole.
        out(30, b"\xf0"),
        out(40, b"\x9f\x98"),
        out(50, b"\x80"),
    ];
    let cast = export(Format::CastV2, &header(80, 24, None), &events);
    assert_eq!(
        lines(&cast)[1..],
        [
            r#"[0.010, "o", "caf"]"#,
            r#"[0.020, "o", "é!"]"#,
            r#"[0.050, "o", "😀"]"#
        ]
    );
    // v3 counts the interval from the last line written.
    let cast = export(Format::CastV3, &header(80, 24, None), &events);
    assert_eq!(lines(&cast)[3], r#"[0.030, "o", "😀"]"#);
}

#[test]
fn a_character_cut_off_by_a_resize_a_marker_or_the_end_is_replaced() {
    let events = [
        out(10, b"a\xe2\x82"),
        resize(20, 90, 30),
        out(30, b"\xac b\xc3"),
        marker(40, "m"),
        out(50, b"c\xf0\x9f"),
    ];
    let cast = export(Format::CastV2, &header(80, 24, None), &events);
    assert_eq!(
        lines(&cast)[1..],
        [
            r#"[0.010, "o", "a"]"#,
            r#"[0.020, "o", "�"]"#,
            r#"[0.020, "r", "90x30"]"#,
            r#"[0.030, "o", "� b"]"#,
            r#"[0.040, "o", "�"]"#,
            r#"[0.040, "m", "m"]"#,
            r#"[0.050, "o", "c"]"#,
            r#"[0.050, "o", "�"]"#,
        ]
    );
}

#[test]
fn invalid_bytes_become_replacement_characters() {
    let events = [
        out(0, b"a\xffb\xc3(c"),
        // A lone continuation byte at the end can begin nothing: written
        // at once.
        out(1, b"d\x80"),
        // A cut-off sequence followed by what cannot continue it.
        out(2, b"\xe2\x82"),
        out(3, b"x\xed\xa0\x80"),
    ];
    let cast = export(Format::CastV2, &header(80, 24, None), &events);
    assert_eq!(
        lines(&cast)[1..],
        [
            r#"[0.000, "o", "a�b�(c"]"#,
            r#"[0.001, "o", "d�"]"#,
            // A surrogate's encoding is three invalid bytes.
            r#"[0.003, "o", "�x���"]"#,
        ]
    );
}

#[test]
fn json_hostile_text_is_escaped() {
    let hostile = "say \"hi\" \\ back\\slash\ttab\nnew\u{0}nul\u{7}bel\u{1b}[0m\u{7f}\u{2028}";
    let events = [out(5, hostile.as_bytes()), marker(6, hostile)];
    let cast = export(Format::CastV2, &header(80, 24, Some(hostile)), &events);
    let escaped = r#""say \"hi\" \\ back\\slash\ttab\nnew\u0000nul\u0007bel\u001b[0m"#.to_owned()
        + "\u{7f}\u{2028}\"";
    assert_eq!(
        lines(&cast),
        [
            format!(
                r#"{{"version": 2, "width": 80, "height": 24, "timestamp": 1700000000, "title": {escaped}}}"#
            ),
            format!(r#"[0.005, "o", {escaped}]"#),
            format!(r#"[0.006, "m", {escaped}]"#),
        ]
    );
    // Each line is JSON that reads back as what went in.
    let header: serde_json::Value = serde_json::from_str(lines(&cast)[0]).expect("json");
    assert_eq!(header["title"], hostile);
    for line in &lines(&cast)[1..] {
        let event: (f64, String, String) = serde_json::from_str(line).expect("json");
        assert_eq!(event.2, hostile);
    }
}

#[test]
fn times_never_go_back() {
    let events = [out(1_000, b"a"), out(400, b"b"), resize(900, 10, 5)];
    let v2 = export(Format::CastV2, &header(80, 24, None), &events);
    assert_eq!(
        lines(&v2)[1..],
        [
            r#"[1.000, "o", "a"]"#,
            r#"[1.000, "o", "b"]"#,
            r#"[1.000, "r", "10x5"]"#
        ]
    );
    let v3 = export(Format::CastV3, &header(80, 24, None), &events);
    assert_eq!(
        lines(&v3)[1..],
        [
            r#"[1.000, "o", "a"]"#,
            r#"[0.000, "o", "b"]"#,
            r#"[0.000, "r", "10x5"]"#
        ]
    );
    // Far-off times keep their precision.
    let late = export(
        Format::CastV2,
        &header(80, 24, None),
        &[out(u64::MAX, b"z")],
    );
    assert_eq!(lines(&late)[1], r#"[18446744073709551.615, "o", "z"]"#);
}

#[test]
fn any_output_reads_back_as_its_bytes_would_decode() {
    let mut seed = 11;
    // Bytes biased towards multi-byte characters, cut anywhere.
    let text = "é€😀 plain \u{1b}[31m".as_bytes();
    let mut events = Vec::new();
    let mut all = Vec::new();
    for i in 0..400u64 {
        let len = (seed % 9) as usize;
        let mut bytes = noise(&mut seed, len);
        let start = (seed % text.len() as u64) as usize;
        bytes.extend_from_slice(&text[start..]);
        all.extend_from_slice(&bytes);
        events.push(out(i * 3, &bytes));
    }
    for format in [Format::CastV2, Format::CastV3] {
        let cast = export(format, &header(80, 24, None), &events);
        let mut shown = String::new();
        for line in &lines(&cast)[1..] {
            let (_, code, data): (f64, String, String) = serde_json::from_str(line).expect("json");
            assert_eq!(code, "o");
            shown.push_str(&data);
        }
        assert_eq!(shown, String::from_utf8_lossy(&all));
    }
    let text = export(Format::Text, &header(80, 24, None), &events);
    assert!(!text.contains('\u{1b}'));
}

#[test]
fn text_is_every_line_that_scrolled_then_the_last_screen() {
    let header = header(20, 4, Some("ignored"));
    let (mut exporter, first) = Exporter::new(Format::Text, &header);
    assert_eq!(first, "");
    let scrolled = exporter.event(&out(
        0,
        b"line 1  \r\nline 2\r\n\x1b[32mline \x1b[1;4m3\x1b[0m\r\nline 4\r\nline 5\r\n$ ",
    ));
    // Two lines left the top of a four-row screen, trailing blanks dropped.
    assert_eq!(scrolled, "line 1\nline 2\n");
    assert_eq!(exporter.event(&marker(1, "a mark")), "");
    // A line longer than the screen is wide reads as one, blanks at the
    // wrap included.
    let wrapped = exporter.event(&out(
        2,
        b"echo 0123456789012 x\r\n0123456789012345678 X\r\n",
    ));
    assert_eq!(wrapped, "line 3\nline 4\nline 5\n");
    assert_eq!(
        exporter.event(&out(3, b"\r\n\r\n")),
        "$ echo 0123456789012 x\n"
    );
    assert_eq!(exporter.finish(), "0123456789012345678 X\n");
}

#[test]
fn text_leaves_out_the_alternate_screen_and_trailing_blank_rows() {
    let events = [
        out(0, b"$ vim\r\n"),
        out(
            10,
            b"\x1b[?1049h\x1b[H\x1b[2Jfirst\r\nsecond\r\nthird\r\nfourth\r\nfifth\r\n",
        ),
        out(20, b"\x1b[?1049l$ ls\r\n\x1b[34ma\x1b[0m b\r\n$ "),
        // A program still on the alternate screen when the recording ends.
        out(30, b"\x1b[?1049h\x1b[Hless is showing this\x1b[5;1H"),
    ];
    let text = export(Format::Text, &header(20, 6, None), &events);
    assert_eq!(text, "$ vim\n$ ls\na b\n$\n");
}

#[test]
fn text_follows_resizes_and_a_recording_without_output_is_empty() {
    assert_eq!(export(Format::Text, &header(20, 4, None), &[]), "");
    let blank = [out(0, b"\r\n\r\n   \r\n"), marker(1, "m")];
    assert_eq!(export(Format::Text, &header(20, 4, None), &blank), "");
    let events = [
        out(0, b"1\r\n2\r\n3\r\n"),
        resize(10, 40, 2),
        out(20, b"a line as wide as thirty characters\r\n"),
        resize(30, 10, 3),
        out(40, b"\r\nend"),
    ];
    let text = export(Format::Text, &header(20, 4, None), &events);
    // Shrunk to two rows, the screen's first two lines went into the
    // history; narrowed to ten columns, the long line was rewrapped, and
    // still reads as one.
    assert_eq!(
        text,
        "1\n2\n3\na line as wide as thirty characters\n\nend\n"
    );
}

#[test]
fn text_keeps_what_a_clear_screen_cleared() {
    let events = [
        out(0, b"$ ls\r\nnotes\r\n$ clear\r\n"),
        out(10, b"\x1b[H\x1b[2J$ "),
    ];
    let text = export(Format::Text, &header(20, 6, None), &events);
    assert_eq!(text, "$ ls\nnotes\n$ clear\n$\n");
}

#[test]
fn an_unfinished_synchronized_update_and_a_cut_off_sequence_still_export() {
    let events = [
        out(0, b"$ \x1b[?2026hdrawn"),
        out(5, b"\x1b]0;title without an end"),
    ];
    let text = export(Format::Text, &header(20, 4, None), &events);
    assert_eq!(text, "$ drawn\n");
    let cast = export(Format::CastV2, &header(20, 4, None), &events);
    assert_eq!(lines(&cast).len(), 3);
}
