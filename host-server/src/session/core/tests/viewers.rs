//! Viewers watching through share links: they see what the owner sees,
//! never change the session, never hold the owner back, and end with it.

use super::*;

const OWNER: u64 = 1;
const VIEWER: u64 = 2;

fn viewer_role() -> Role {
    Role::Viewer {
        owner: "alice".into(),
        may_type: false,
    }
}

impl Bench {
    fn watch(&mut self, conn: u64, user: &str) {
        self.core.handle_watch(conn, user.into(), viewer_role());
    }
}

/// The frames `effects` send to `conn`.
fn frames_to(effects: &[Effect], conn: u64) -> Vec<Frame> {
    sent_to(effects, conn)
        .into_iter()
        .filter_map(|msg| match msg {
            ServerToClientMsg::Frame(frame) => Some(frame.clone()),
            _ => None,
        })
        .collect()
}

/// The watcher lists `effects` send to `conn`.
fn watchers_to(effects: &[Effect], conn: u64) -> Vec<Vec<String>> {
    sent_to(effects, conn)
        .into_iter()
        .filter_map(|msg| match msg {
            ServerToClientMsg::Watchers { names } => Some(names.clone()),
            _ => None,
        })
        .collect()
}

/// The history blocks `effects` send to `conn`, as `history_blocks`.
fn history_to(effects: &[Effect], conn: u64) -> Vec<(u64, Vec<String>)> {
    let mine: Vec<Effect> = effects
        .iter()
        .filter_map(|effect| match effect {
            Effect::Send { conn: to, msg } if *to == conn => Some(Effect::Send {
                conn: *to,
                msg: msg.clone(),
            }),
            _ => None,
        })
        .collect();
    history_blocks(&mine)
}

/// Owner 1 attached and caught up, viewer 2 (bob) welcomed and caught up.
fn watched() -> Bench {
    let mut bench = Bench::attached();
    bench.output(b"$ ");
    acked_frames(&mut bench, OWNER);
    bench.watch(VIEWER, "bob");
    let effects = bench.effects();
    for frame in frames_to(&effects, VIEWER) {
        bench.ack(VIEWER, frame.seq);
    }
    bench.effects();
    bench
}

#[test]
fn a_viewer_is_welcomed_as_one_with_the_screen_and_the_owner_is_told() {
    let mut bench = Bench::attached();
    bench.output(b"$ make test");
    acked_frames(&mut bench, OWNER);
    bench.watch(VIEWER, "bob");
    let effects = bench.effects();
    let to_viewer = sent_to(&effects, VIEWER);
    let Some(ServerToClientMsg::Welcome(welcome)) = to_viewer.first() else {
        panic!("no welcome first: {effects:?}");
    };
    assert_eq!(welcome.role, viewer_role());
    assert_eq!(welcome.history, bench.core.scrollback.span());
    let frames = frames_to(&effects, VIEWER);
    assert_eq!(frames.len(), 1);
    assert!(frames[0].full, "a full repaint of its own");
    assert!(rows_text(&frames[0]).contains("$ make test"));
    assert_eq!(watchers_to(&effects, OWNER), [vec!["bob".to_owned()]]);
    // The owner's screen is not sent again for the viewer's sake.
    assert!(frames_to(&effects, OWNER).is_empty());
}

#[test]
fn viewers_see_the_owners_output_and_their_keys_and_sizes_go_nowhere() {
    let mut bench = watched();
    bench.output(b"hello");
    let effects = bench.effects();
    let owner = frames_to(&effects, OWNER);
    let viewer = frames_to(&effects, VIEWER);
    assert_eq!((owner.len(), viewer.len()), (1, 1));
    assert_eq!(viewer[0].rows, owner[0].rows, "the same change");
    assert!(rows_text(&viewer[0]).contains("$ hello"));

    let size = bench.core.emulator.size();
    bench.input(VIEWER, 1, b"rm -rf ~\r");
    bench.client(
        VIEWER,
        ClientToServerMsg::Resize(Size {
            cols: 200,
            rows: 60,
        }),
    );
    bench.client(VIEWER, ClientToServerMsg::Upload("2\x003\x00\x00a".into()));
    assert!(bench.write_all_input().is_empty(), "no key of theirs");
    assert_eq!(bench.core.emulator.size(), size);
    let effects = bench.effects();
    assert!(
        !effects
            .iter()
            .any(|e| matches!(e, Effect::Resize(_) | Effect::Upload { .. })),
        "{effects:?}"
    );
    // The owner's keys go on as before.
    bench.input(OWNER, 1, b"ls\r");
    assert_eq!(bench.write_all_input(), b"ls\r");
}

#[test]
fn what_a_program_gives_the_owner_alone_never_reaches_a_viewer() {
    let mut bench = watched();
    // OSC 52 (clipboard) and OSC 9 (notification) ride the owner's frame.
    bench.output(b"\x1b]52;c;c2VjcmV0\x07\x1b]9;build done\x07x");
    let effects = bench.effects();
    let owner = frames_to(&effects, OWNER);
    let viewer = frames_to(&effects, VIEWER);
    assert!(owner.iter().any(|f| f.clipboard.is_some()));
    assert!(owner.iter().any(|f| f.notification.is_some()));
    assert!(!viewer.is_empty());
    assert!(
        viewer
            .iter()
            .all(|f| f.clipboard.is_none() && f.notification.is_none())
    );
}

#[test]
fn viewers_fetch_history_for_themselves() {
    let mut bench = watched();
    bench.output(&numbered_lines(300));
    let effects = bench.effects();
    for frame in frames_to(&effects, VIEWER) {
        bench.ack(VIEWER, frame.seq);
    }
    for frame in frames_to(&effects, OWNER) {
        bench.ack(OWNER, frame.seq);
    }
    bench.effects();
    let end = bench.core.scrollback.span().end;
    bench.client(
        VIEWER,
        ClientToServerMsg::FetchHistory {
            before: end,
            from: 0,
        },
    );
    let effects = bench.effects();
    assert!(sent_to(&effects, OWNER).is_empty());
    let blocks = history_to(&effects, VIEWER);
    assert_eq!(blocks.len(), 1);
    assert_eq!(blocks[0].0 + blocks[0].1.len() as u64, end);
}

#[test]
fn a_viewer_gets_every_scrolled_line_numbered_as_the_owner_does() {
    let mut bench = watched();
    let start = bench.core.scrollback.span().end;
    bench.output(&numbered_lines(40));
    let effects = bench.effects();
    let owner: usize = frames_to(&effects, OWNER)
        .iter()
        .map(|f| f.scrolled.len())
        .sum();
    assert!(owner > 0);
    // The viewer's lines come as numbered blocks, continuing its numbers.
    let blocks = history_to(&effects, VIEWER);
    assert_eq!(blocks.first().map(|b| b.0), Some(start));
    let lines: usize = blocks.iter().map(|b| b.1.len()).sum();
    assert_eq!(lines, owner);
    assert_eq!(blocks[0].1.first().map(String::as_str), Some("$ line 0"));
}

#[test]
fn a_slow_viewer_never_holds_the_owner_back_and_catches_up_with_a_full_repaint() {
    let mut bench = watched();
    let before = bench.core.scrollback.span().end;
    // The viewer stops acknowledging; the owner goes on.
    let mut owner_frames = 0;
    let mut viewer_frames = Vec::new();
    for i in 0..FRAME_WINDOW * 3 {
        bench.advance(MS * 20);
        // Five lines a step: the screen scrolls while the viewer is away.
        bench.output(format!("step {i}\r\n\r\n\r\n\r\n\r\n").as_bytes());
        let effects = bench.effects();
        let owner = frames_to(&effects, OWNER);
        for frame in &owner {
            bench.ack(OWNER, frame.seq);
        }
        bench.effects();
        owner_frames += owner.len();
        viewer_frames.extend(frames_to(&effects, VIEWER));
    }
    assert_eq!(owner_frames as u64, FRAME_WINDOW * 3, "one frame per step");
    assert_eq!(viewer_frames.len() as u64, FRAME_WINDOW, "its window");
    // It acknowledges: the screen as it is now, and the newest lines it
    // missed, numbered so the rest shows as a gap to fetch.
    let last = viewer_frames.last().map_or(0, |f| f.seq);
    bench.ack(VIEWER, last);
    let effects = bench.effects();
    let frames = frames_to(&effects, VIEWER);
    assert_eq!(frames.len(), 1);
    assert!(frames[0].full);
    let last_step = format!("step {}", FRAME_WINDOW * 3 - 1);
    let end = bench.core.scrollback.span().end;
    let blocks = history_to(&effects, VIEWER);
    let shown = rows_text(&frames[0]);
    assert!(
        shown.contains(&last_step)
            || blocks
                .iter()
                .any(|(_, lines)| lines.iter().any(|l| l.contains(&last_step))),
        "{shown}"
    );
    assert!(end > before);
    assert_eq!(
        blocks
            .last()
            .map(|(start, lines)| start + lines.len() as u64),
        Some(end)
    );
    // In step again: the next change reaches it as a delta.
    bench.output(b"more");
    let effects = bench.effects();
    let frames = frames_to(&effects, VIEWER);
    assert_eq!(frames.len(), 1);
    assert!(!frames[0].full);
}

#[test]
fn viewers_alone_still_see_the_session_live() {
    let mut bench = watched();
    bench.command(Command::Detach { conn: OWNER });
    bench.effects();
    bench.output(b"still running");
    let effects = bench.effects();
    let frames = frames_to(&effects, VIEWER);
    assert_eq!(frames.len(), 1);
    assert!(rows_text(&frames[0]).contains("still running"));
    // The owner coming back is a full attach, and the viewer stays.
    bench.attach(3);
    let effects = bench.effects();
    assert!(!effects.iter().any(|e| matches!(e, Effect::Close { .. })));
    assert_eq!(watchers_to(&effects, 3), [vec!["bob".to_owned()]]);
}

#[test]
fn an_owners_new_terminal_keeps_the_viewers_and_a_viewer_leaving_is_told() {
    let mut bench = watched();
    bench.watch(4, "carol");
    bench.watch(5, "bob");
    let effects = bench.effects();
    assert_eq!(
        watchers_to(&effects, OWNER).last(),
        Some(&vec!["bob".to_owned(), "carol".to_owned()]),
        "each once, sorted"
    );
    bench.attach(3);
    let effects = bench.effects();
    let closed: Vec<u64> = effects
        .iter()
        .filter_map(|e| match e {
            Effect::Close { conn, .. } => Some(*conn),
            _ => None,
        })
        .collect();
    assert_eq!(closed, [OWNER], "only the owner's old terminal");
    bench.command(Command::Detach { conn: 4 });
    assert_eq!(watchers_to(&bench.effects(), 3), [vec!["bob".to_owned()]]);
    // A replaced connection's words are dropped, a viewer's too once gone.
    bench.input(4, 1, b"x");
    bench.input(OWNER, 1, b"y");
    assert!(bench.write_all_input().is_empty());
}

#[test]
fn a_viewer_that_stops_reading_is_cut_off_alone() {
    let mut bench = watched();
    bench.core.handle_client_stalled(VIEWER, bench.now);
    let effects = bench.effects();
    assert!(
        matches!(
            effects[..],
            [
                Effect::Send {
                    conn: OWNER,
                    msg: ServerToClientMsg::Watchers { .. }
                },
                Effect::Close {
                    conn: VIEWER,
                    code: CloseCode::GoingAway
                }
            ]
        ),
        "{effects:?}"
    );
    bench.output(b"on");
    let effects = bench.effects();
    assert_eq!(frames_to(&effects, OWNER).len(), 1);
    assert!(sent_to(&effects, VIEWER).is_empty());
}

#[test]
fn the_sessions_end_reaches_its_viewers_as_its_owner() {
    let mut bench = watched();
    bench.core.handle_program_gone(bench.now);
    bench.core.handle_exit(Some(0), bench.now);
    let effects = bench.effects();
    for conn in [OWNER, VIEWER] {
        assert!(
            sent_to(&effects, conn)
                .iter()
                .any(|m| matches!(m, ServerToClientMsg::Exited { status: Some(0) }))
        );
        assert!(effects.iter().any(|e| matches!(
            e,
            Effect::Close { conn: c, code: CloseCode::SessionEnded } if *c == conn
        )));
    }
    // A drain closes viewers with GoingAway: they follow the session.
    let mut bench = watched();
    bench.command(Command::Terminate {
        close: CloseCode::GoingAway,
    });
    bench.core.handle_exit(None, bench.now);
    let effects = bench.effects();
    assert!(effects.iter().any(|e| matches!(
        e,
        Effect::Close {
            conn: VIEWER,
            code: CloseCode::GoingAway
        }
    )));
}

#[test]
fn a_viewer_the_share_lets_type_types_in_turn_with_the_owner() {
    let mut bench = watched();
    bench.core.handle_watch(
        4,
        "carol".into(),
        Role::Viewer {
            owner: "alice".into(),
            may_type: true,
        },
    );
    bench.effects();
    bench.input(OWNER, 1, b"ls");
    bench.input(4, 1, b" -l");
    bench.input(VIEWER, 1, b" /");
    bench.input(4, 1, b" -l");
    let effects = bench.effects();
    assert_eq!(
        acks(&effects),
        [0],
        "carol's resend: what was applied of hers"
    );
    assert_eq!(bench.write_all_input(), b"ls -l", "bob may only watch");
    let effects = bench.effects();
    // Each writer hears of its own keys only: carol at once, the owner
    // with its echo (held).
    assert!(matches!(
        sent_to(&effects, 4)[..],
        [ServerToClientMsg::InputAck { seq: 1 }]
    ));
    assert!(sent_to(&effects, VIEWER).is_empty());
    assert_eq!(bench.acks_after_hold(), [1]);
}

#[test]
fn a_frame_only_about_the_owners_echo_never_reaches_a_viewer() {
    let mut bench = watched();
    bench.input(OWNER, 1, b"x");
    bench.write_all_input();
    bench.advance(MS);
    bench.output(b"x");
    let effects = bench.effects();
    assert_eq!(frames_to(&effects, VIEWER).len(), 1, "the echo itself");
    for frame in frames_to(&effects, OWNER) {
        bench.ack(OWNER, frame.seq);
    }
    bench.effects();
    // The echo wait ends: the owner hears of it in a frame of its own.
    bench.advance(ECHO_WAIT * 2);
    bench.timeout();
    let effects = bench.effects();
    let owner = frames_to(&effects, OWNER);
    assert_eq!(owner.len(), 1);
    assert_eq!(owner[0].echo_ack, 1);
    assert!(frames_to(&effects, VIEWER).is_empty(), "{effects:?}");
}
