//! The player's frames are judged by the client's own screen model: a
//! window's frames applied to a `web_terminal` `Screen` must read as the
//! emulator's screen at each frame's time.

use protocol::{Color, Modes};
use web_terminal::screen::Screen;

use super::*;
use crate::recording::testing::{marker, noise, out, resize};

const SIZE: Size = Size { cols: 40, rows: 6 };

fn text_of(screen: &Screen) -> Vec<String> {
    (0..screen.size().rows)
        .map(|row| {
            screen
                .visible_row(row)
                .map(|r| r.text())
                .unwrap_or_default()
        })
        .collect()
}

/// The emulator's screen at `t`: every event at or before it applied.
fn screen_at(size: Size, events: &[TimedEvent], t: u64) -> Vec<String> {
    let mut replayer = Replayer::new(size);
    for event in events.iter().filter(|e| e.at_ms <= t) {
        replayer.apply(event);
    }
    replayer.advance_to(t);
    replayer.screen_text()
}

/// Plays `whole` on a client screen of `size`, checking after every frame
/// that it shows what the emulator showed at the frame's time, and that
/// frames are numbered from 1 and timed in order within the window.
fn play(size: Size, events: &[TimedEvent], whole: &Window, from_ms: u64) -> Screen {
    let mut screen = Screen::new(size);
    let (first_at, first) = &whole.frames[0];
    assert_eq!(*first_at, from_ms);
    assert!(first.full, "a window starts with a full frame");
    let mut last_at = from_ms;
    for (i, (at_ms, frame)) in whole.frames.iter().enumerate() {
        assert_eq!(frame.seq, i as u64 + 1);
        assert!(*at_ms >= last_at && *at_ms < whole.end_ms.max(from_ms + 1));
        assert!(frame.scrolled.is_empty());
        assert_eq!(frame.clipboard, None);
        assert_eq!(frame.notification, None);
        last_at = *at_ms;
        screen.apply_frame(frame.clone());
        assert_eq!(
            text_of(&screen),
            screen_at(size, events, *at_ms),
            "frame {} at {at_ms} ms",
            frame.seq
        );
    }
    screen
}

/// A shell session: a prompt, coloured output, cursor movement, lines
/// that scroll off a six-row screen, and a line longer than the screen is
/// wide.
fn shell_session() -> Vec<TimedEvent> {
    vec![
        out(0, b"$ "),
        out(400, b"l"),
        out(520, b"s"),
        out(700, b"\r\n"),
        out(
            705,
            b"\x1b[34mbin\x1b[0m  \x1b[1;32mrun.sh\x1b[0m  notes.txt\r\n$ ",
        ),
        out(1_500, b"cat notes.txt\r\n"),
        out(1_503, b"one\r\ntwo\r\nthree\r\n"),
        out(1_509, b"four\r\nfive\r\n"),
        out(
            1_530,
            b"a line that is longer than forty columns, so it wraps\r\n$ ",
        ),
        marker(2_000, "restored on h2 after h1 was lost"),
        out(2_100, b"echo hi\x1b[3D\x1b[1@X"),
        out(2_110, b"\x1b[2;1H\x1b[2Kmoved\x1b[6;3H"),
        out(2_300, b"\x1b[0;31mred\x1b[0m"),
    ]
}

#[test]
fn a_window_from_the_start_plays_the_recording_to_its_last_screen() {
    let events = shell_session();
    let whole = window(SIZE, &events, 0, 3_000, 1_000);
    assert_eq!(whole.end_ms, 3_000);
    let screen = play(SIZE, &events, &whole, 0);
    let last = final_screen(SIZE, &events);
    assert_eq!(text_of(&screen), last);
    assert_eq!(last[1], "moved");
    // "X" inserted before " hi", then "red" written over "ech".
    assert_eq!(last[5], "$ redoX hi");
    // Colours reach the client.
    let red = screen.cell(5, 2).expect("a cell");
    assert_eq!((red.text.as_str(), red.style.fg), ("r", Color::Indexed(1)));
    // The events of one 16 ms slot of the recording (counted from its
    // start: 688..704, 704..720, 1488..1504, ...) share a frame, timed at
    // the last of them.
    let times: Vec<u64> = whole.frames.iter().map(|(at, _)| *at).collect();
    assert_eq!(
        times,
        [0, 400, 520, 700, 705, 1_503, 1_509, 1_530, 2_110, 2_300]
    );
}

#[test]
fn windows_that_meet_play_as_one_and_can_start_anywhere() {
    let events = shell_session();
    // Edges on, just after and between events, and off the slots' edges.
    let edges = [0, 400, 701, 1_505, 1_530, 2_105, 2_999, 3_000];
    for pair in edges.windows(2) {
        let (from, to) = (pair[0], pair[1]);
        let part = window(SIZE, &events, from, to, 1_000);
        assert_eq!(part.end_ms, to);
        let screen = play(SIZE, &events, &part, from);
        assert_eq!(text_of(&screen), screen_at(SIZE, &events, to - 1));
    }
    // Windows on slot edges carry the whole's frames, but for the changes
    // at an edge, which are in the full frame that opens a window.
    let whole = window(SIZE, &events, 0, 3_008, 1_000);
    let edges = [0, 400, 704, 1_504, 2_112, 3_008];
    let mut times = Vec::new();
    for pair in edges.windows(2) {
        let part = window(SIZE, &events, pair[0], pair[1], 1_000);
        times.push(pair[0]);
        for (at, frame) in &part.frames[1..] {
            times.push(*at);
            let (_, same) = whole
                .frames
                .iter()
                .find(|(t, _)| t == at)
                .expect("the whole has a frame then");
            assert_eq!(
                Frame {
                    seq: same.seq,
                    ..frame.clone()
                },
                *same
            );
        }
    }
    let mut expected: Vec<u64> = whole.frames.iter().map(|(at, _)| *at).collect();
    expected.extend(&edges[..edges.len() - 1]);
    expected.sort_unstable();
    expected.dedup();
    assert_eq!(times, expected);
}

#[test]
fn a_resize_inside_a_window_repaints_at_the_new_size() {
    let mut events = shell_session();
    events.push(resize(2_500, 30, 4));
    events.push(out(2_600, b"\r\nafter the shrink\r\n$ "));
    events.push(resize(2_700, 60, 10));
    events.push(out(2_800, b"wider"));
    let whole = window(SIZE, &events, 2_200, 3_000, 1_000);
    let screen = play(SIZE, &events, &whole, 2_200);
    assert_eq!(screen.size(), Size { cols: 60, rows: 10 });
    assert_eq!(text_of(&screen), final_screen(SIZE, &events));
    let sizes: Vec<(u64, Size, bool)> = whole
        .frames
        .iter()
        .map(|(at, f)| (*at, f.size, f.full))
        .collect();
    assert!(sizes.contains(&(2_500, Size { cols: 30, rows: 4 }, true)));
    assert!(sizes.contains(&(2_700, Size { cols: 60, rows: 10 }, true)));
}

#[test]
fn a_window_opening_after_a_resize_starts_at_the_size_of_then() {
    let events = vec![
        out(0, b"hello"),
        resize(100, 80, 24),
        out(200, b"\r\nworld"),
    ];
    let whole = window(SIZE, &events, 150, 300, 10);
    assert_eq!(whole.frames[0].1.size, Size { cols: 80, rows: 24 });
    let screen = play(SIZE, &events, &whole, 150);
    assert_eq!(text_of(&screen)[..2], ["hello", "world"]);
}

#[test]
fn a_full_screen_program_shows_and_leaves_the_alternate_screen() {
    let mut events = vec![out(0, b"$ vim notes.txt\r\n")];
    events.push(out(
        100,
        b"\x1b[?1049h\x1b[H\x1b[2Jfirst line\r\n~\r\n~\r\n\x1b[6;1H\"notes.txt\" 1L",
    ));
    events.push(out(300, b"\x1b[1;1H\x1b[7mF\x1b[27m"));
    events.push(out(900, b"\x1b[?1049l$ "));
    let whole = window(SIZE, &events, 0, 1_000, 100);
    let mut screen = Screen::new(SIZE);
    let mut seen_alt = false;
    for (i, (at, frame)) in whole.frames.iter().enumerate() {
        assert_eq!(frame.seq, i as u64 + 1);
        screen.apply_frame(frame.clone());
        assert_eq!(text_of(&screen), screen_at(SIZE, &events, *at));
        if *at == 300 {
            seen_alt = true;
            assert_ne!(frame.modes.0 & Modes::ALT_SCREEN, 0);
            assert_eq!(text_of(&screen)[..3], ["First line", "~", "~"]);
            assert_eq!(text_of(&screen)[5], "\"notes.txt\" 1L");
        }
    }
    assert!(seen_alt);
    assert_eq!(screen.modes().0 & Modes::ALT_SCREEN, 0);
    assert_eq!(text_of(&screen)[..2], ["$ vim notes.txt", "$"]);
    // A window opening on the alternate screen shows it.
    let inside = window(SIZE, &events, 500, 1_000, 100);
    let mut screen = Screen::new(SIZE);
    screen.apply_frame(inside.frames[0].1.clone());
    assert_eq!(text_of(&screen)[0], "First line");
    assert_ne!(screen.modes().0 & Modes::ALT_SCREEN, 0);
    play(SIZE, &events, &inside, 500);
}

#[test]
fn max_frames_cuts_a_window_where_the_next_one_starts() {
    // One event every 20 ms: every slot has a change.
    let events: Vec<TimedEvent> = (0..50u64)
        .map(|i| out(i * 20 + 3, format!("{i} ").as_bytes()))
        .collect();
    let cut = window(SIZE, &events, 0, 10_000, 5);
    assert_eq!(cut.frames.len(), 5);
    let last_at = cut.frames[4].0;
    assert_eq!(last_at, 63);
    // The end of the last frame's slot.
    assert_eq!(cut.end_ms, 64);
    play(SIZE, &events, &cut, 0);
    // Windows asked for from each end cover the recording to its end.
    let mut from = 0;
    let mut screen = None;
    let mut windows = 0;
    while from < 10_000 {
        let part = window(SIZE, &events, from, 10_000, 7);
        assert!(part.end_ms > from, "a window always gets further");
        screen = Some(play(SIZE, &events, &part, from));
        from = part.end_ms;
        windows += 1;
    }
    assert_eq!(windows, 9);
    assert_eq!(
        text_of(&screen.expect("a window")),
        final_screen(SIZE, &events)
    );
    // A window cut at its last change ends where it was asked to.
    let exact = window(SIZE, &events, 0, 64, 5);
    assert_eq!((exact.frames.len(), exact.end_ms), (5, 64));
    let tail = window(SIZE, &events, 900, 2_000, 100);
    assert_eq!(tail.end_ms, 2_000);
    // Fewer than two frames is taken as two: the window still moves on.
    let least = window(SIZE, &events, 0, 10_000, 0);
    assert_eq!(least.frames.len(), 2);
    assert_eq!(least.end_ms, 16);
}

#[test]
fn a_synchronized_update_shows_when_it_ends_or_when_its_wait_is_over() {
    let events = vec![
        out(0, b"$ "),
        out(100, b"\x1b[?2026h\x1b[2J\x1b[Hdrawn"),
        out(130, b" at once\x1b[?2026l"),
        // Never ended: shown 150 ms after it began, as the host would.
        out(1_000, b"\x1b[?2026h\r\nstuck"),
    ];
    let whole = window(SIZE, &events, 0, 2_000, 100);
    let times: Vec<u64> = whole.frames.iter().map(|(at, _)| *at).collect();
    assert_eq!(times, [0, 130, 1_150]);
    let screen = play(SIZE, &events, &whole, 0);
    assert_eq!(text_of(&screen)[..2], ["drawn at once", "stuck"]);
    assert_eq!(final_screen(SIZE, &events)[..2], ["drawn at once", "stuck"]);
    // Before its wait is over, nothing of it is on the screen.
    assert_eq!(screen_at(SIZE, &events, 1_149)[..2], ["drawn at once", ""]);
    let opening = window(SIZE, &events, 1_100, 2_000, 100);
    assert_eq!(opening.frames[0].1.rows.len(), 1);
    assert_eq!(opening.frames.len(), 2);
    assert_eq!(opening.frames[1].0, 1_150);
}

#[test]
fn what_a_program_asks_of_the_desktop_never_reaches_the_player() {
    let events = vec![
        out(0, b"$ "),
        // Clipboard write, notifications, a query, a download request.
        out(100, b"\x1b]52;c;aGVsbG8=\x07"),
        out(200, b"\x1b]9;build finished\x07\x1b]777;notify;t;b\x07"),
        out(
            300,
            b"\x1b[c\x1b[6n\x1b]8445;download;key;2f6574632f706173737764\x07",
        ),
        out(400, b"\x1b]0;my title\x07"),
        out(500, b"\x07"),
    ];
    let whole = window(SIZE, &events, 0, 1_000, 100);
    // Only the title and the bell change anything a viewer sees.
    let changes: Vec<(u64, Option<String>, bool)> = whole
        .frames
        .iter()
        .skip(1)
        .map(|(at, f)| (*at, f.title.clone(), f.bell))
        .collect();
    assert_eq!(
        changes,
        [(400, Some("my title".into()), false), (500, None, true)]
    );
    play(SIZE, &events, &whole, 0);
    // A window opening later carries the title in its full frame, and no
    // bell rung before it.
    let later = window(SIZE, &events, 600, 1_000, 100);
    assert_eq!(later.frames.len(), 1);
    assert_eq!(later.frames[0].1.title.as_deref(), Some("my title"));
    assert!(!later.frames[0].1.bell);
}

#[test]
fn the_replayer_takes_frames_only_for_changes() {
    let mut replayer = Replayer::new(SIZE);
    let first = replayer.frame().expect("the first frame is the screen");
    assert!(first.full);
    assert_eq!(first.seq, 1);
    assert_eq!(replayer.frame(), None);
    replayer.apply(&marker(10, "a mark"));
    replayer.apply(&out(20, b"\x1b[c"));
    assert_eq!(replayer.frame(), None);
    replayer.apply(&out(30, b"x"));
    let frame = replayer.frame().expect("a change");
    assert_eq!((frame.seq, frame.full, frame.rows.len()), (2, false, 1));
    let full = replayer.full_frame();
    assert_eq!((full.seq, full.full), (3, true));
    replayer.apply(&resize(40, 50, 8));
    assert_eq!(replayer.size(), Size { cols: 50, rows: 8 });
    let frame = replayer.frame().expect("a resize");
    assert_eq!(
        (frame.seq, frame.full, frame.size),
        (4, true, replayer.size())
    );
    assert_eq!(replayer.screen_text()[0], "x");
}

#[test]
fn events_out_of_time_order_are_taken_as_happening_in_order() {
    let events = vec![
        out(1_000, b"one\r\n"),
        out(500, b"two\r\n"),
        out(1_200, b"three\r\n"),
    ];
    let whole = window(SIZE, &events, 0, 2_000, 100);
    let times: Vec<u64> = whole.frames.iter().map(|(at, _)| *at).collect();
    assert_eq!(times, [0, 1_000, 1_200]);
    let mut screen = Screen::new(SIZE);
    for (_, frame) in &whole.frames {
        screen.apply_frame(frame.clone());
    }
    assert_eq!(text_of(&screen)[..3], ["one", "two", "three"]);
    assert_eq!(text_of(&screen), final_screen(SIZE, &events));
}

#[test]
fn any_output_plays_on_the_client_as_the_emulator_shows_it() {
    let mut seed = 7;
    // Bytes biased towards escape sequences, newlines and the sync mode.
    let pieces: [&[u8]; 6] = [
        b"\x1b[",
        b"\r\n",
        b"\x1b[?2026h",
        b"\x1b[?1049h",
        b"\x1b[?1049l",
        b"\x1b]52;c;",
    ];
    let mut events = Vec::new();
    for i in 0..300u64 {
        let len = (seed % 40) as usize;
        let mut bytes = noise(&mut seed, len);
        bytes.extend_from_slice(pieces[(seed % 6) as usize]);
        events.push(out(i * 7, &bytes));
        if i % 50 == 49 {
            let size = noise(&mut seed, 2);
            events.push(resize(i * 7, u16::from(size[0]), u16::from(size[1] / 8)));
        }
    }
    let whole = window(SIZE, &events, 0, 5_000, 10_000);
    let screen = play(SIZE, &events, &whole, 0);
    assert_eq!(text_of(&screen), final_screen(SIZE, &events));
}

#[test]
fn a_window_round_trips_its_wire_form() {
    let events = shell_session();
    let whole = window(SIZE, &events, 1_000, 2_500, 100);
    let bytes = encode_window(&whole);
    assert_eq!(bytes[..8], 2_500u64.to_le_bytes());
    assert_eq!(bytes[8..16], 1_000u64.to_le_bytes());
    assert_eq!(decode_window(&bytes), Ok(whole));
    let empty = Window {
        end_ms: 7,
        frames: Vec::new(),
    };
    assert_eq!(decode_window(&encode_window(&empty)), Ok(empty));
}

#[test]
fn a_damaged_window_is_refused_not_trusted() {
    let events = shell_session();
    let good = encode_window(&window(SIZE, &events, 0, 3_000, 100));
    assert!(decode_window(&[]).is_err());
    assert!(decode_window(&[0; 7]).is_err());
    // Every truncation of a good window but at a frame's edge is refused.
    for len in 9..good.len() {
        let cut = decode_window(&good[..len]);
        if let Ok(window) = cut {
            let again = encode_window(&window);
            assert_eq!(again, good[..len], "only whole frames may remain");
        }
    }
    // A length beyond what follows, and beyond anything there is.
    let mut long = 0u64.to_le_bytes().to_vec();
    long.extend_from_slice(&0u64.to_le_bytes());
    long.extend_from_slice(&u32::MAX.to_le_bytes());
    long.extend_from_slice(&[0; 16]);
    assert!(decode_window(&long).is_err());
    // A message that is not a frame.
    let ack = encode_server(&ServerToClientMsg::InputAck { seq: 1 });
    let mut not_frame = 0u64.to_le_bytes().to_vec();
    not_frame.extend_from_slice(&0u64.to_le_bytes());
    not_frame.extend_from_slice(&(ack.len() as u32).to_le_bytes());
    not_frame.extend_from_slice(&ack);
    assert!(
        decode_window(&not_frame)
            .unwrap_err()
            .contains("not a frame")
    );
    // Frames out of time order.
    let frame = Frame::default();
    let backwards = Window {
        end_ms: 10,
        frames: vec![(5, frame.clone()), (4, frame)],
    };
    assert!(decode_window(&encode_window(&backwards)).is_err());
    // Noise of every length, and flipped bytes in a good window.
    let mut seed = 3;
    for len in 0..2_000 {
        let _ = decode_window(&noise(&mut seed, len));
    }
    for i in 0..good.len() {
        let mut flipped = good.clone();
        flipped[i] ^= 0x5a;
        let _ = decode_window(&flipped);
    }
}

/// `frames` without their numbers, which only a player's own sequence
/// gives meaning to.
fn unnumbered(window: &Window) -> Vec<(u64, Frame)> {
    window
        .frames
        .iter()
        .map(|(at, frame)| {
            (
                *at,
                Frame {
                    seq: 0,
                    ..frame.clone()
                },
            )
        })
        .collect()
}

#[test]
fn a_playhead_serves_windows_in_order_as_a_replay_from_the_start_would() {
    // A shell session, then a synchronized update left open across a
    // window's edge, a resize and a flood cut by the frame limit.
    let mut events = shell_session();
    events.push(out(2_400, b"\x1b[?2026hbuffered"));
    events.push(resize(2_450, 50, 8));
    events.extend((0..40u64).map(|i| out(2_600 + i * 7, format!("line {i}\r\n").as_bytes())));
    let mut playhead = Playhead::new(SIZE);
    let mut from = 0;
    let mut windows = 0;
    while from < 4_000 {
        assert!(playhead.serves(&events, from));
        let fresh = window(SIZE, &events, from, from + 700, 6);
        let continued = playhead.window(&events, from, from + 700, 6);
        assert_eq!(continued.end_ms, fresh.end_ms, "from {from}");
        assert_eq!(unnumbered(&continued), unnumbered(&fresh), "from {from}");
        from = fresh.end_ms;
        windows += 1;
    }
    assert!(windows > 6, "{windows} windows");
    // Seeking forward is served; back, or over a recording that is not
    // the one it played, is not.
    assert!(playhead.serves(&events, 5_000));
    assert!(!playhead.serves(&events, 100));
    let other = shell_session()[..3].to_vec();
    assert!(!playhead.serves(&other, 5_000));
    // The same recording grown at its end still is.
    let mut grown = events.clone();
    grown.push(out(9_000, b"more"));
    assert!(playhead.serves(&grown, 5_000));
}
