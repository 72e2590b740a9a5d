//! Every path of the connection machine, driven by a fake clock.

use protocol::{
    ClientToServerMsg, CloseCode, Frame, MAX_INPUT_CHUNK, ServerToClientMsg, compress_lines,
};

use super::testkit::*;
use super::*;
use crate::directory::HttpOutcome;
use crate::testutil::line;

/// A connection that is live on S1 at h1, epoch 1, with actions drained.
fn live(now: u64) -> Connection {
    let mut c = placed_on_h1(S1, now, 42);
    c.handle_open(now);
    c.handle_message(&welcome("h1", S1, 1, 0, true), now);
    actions(&mut c);
    c
}

/// Placed on h1 and the socket opened; actions drained.
fn greeted(session: SessionId, now: u64, seed: u64) -> Connection {
    let mut c = placed_on_h1(session, now, seed);
    c.handle_open(now);
    actions(&mut c);
    c
}

/// After `restart`: answers the placement with `session` on h1 at
/// `epoch` and opens the socket; returns the actions since the restart.
fn replaced_by_directory(
    c: &mut Connection,
    session: SessionId,
    epoch: u64,
    now: u64,
) -> Vec<Action> {
    let place = one_fetch(&actions(c));
    c.handle_http(
        place.id,
        ok(&placed(session, "h1", 8081, epoch, "tk2")),
        now,
    );
    let mut a = actions(c);
    assert_eq!(opens(&a), vec![H1_WS.to_owned()]);
    c.handle_open(now);
    a.extend(actions(c));
    a
}

#[test]
fn the_page_choice_comes_from_the_url_then_memory() {
    let s1 = S1.to_string();
    let s2 = S2.to_string();
    let cases = [
        (
            format!("?session={s1}"),
            Some(s2.as_str()),
            SessionChoice::Named(S1),
        ),
        (
            format!("session={s1}&new=1"),
            None,
            SessionChoice::Named(S1),
        ),
        ("?new=1".to_owned(), Some(s2.as_str()), SessionChoice::New),
        ("?new=true".to_owned(), None, SessionChoice::New),
        (
            String::new(),
            Some(s2.as_str()),
            SessionChoice::Remembered(S2),
        ),
        (
            "?session=zz&new=0".to_owned(),
            Some(s2.as_str()),
            SessionChoice::Remembered(S2),
        ),
        ("?x=1".to_owned(), Some("not an id"), SessionChoice::Any),
        (String::new(), None, SessionChoice::Any),
    ];
    for (search, remembered, want) in cases {
        assert_eq!(
            SessionChoice::from_page(&search, remembered),
            want,
            "{search:?} {remembered:?}"
        );
    }
}

#[test]
fn opens_then_says_hello_with_ticket_session_and_size() {
    let mut c = placed_on_h1(S1, 0, 1);
    assert_eq!(c.phase(), Phase::Connecting);
    assert_eq!(c.phase_name(), "connecting");
    // The page shows the session from the placement on: URL and memory.
    assert_eq!(
        actions(&mut c),
        vec![
            Action::StoreSession(Some(S1)),
            Action::Open(H1_WS.to_owned())
        ]
    );
    c.handle_open(5);
    assert_eq!(c.phase(), Phase::Handshaking);
    let a = actions(&mut c);
    assert_eq!(a.len(), 1);
    let hello = hello(&a).expect("hello");
    assert_eq!(hello.ticket, "tk1");
    assert_eq!(hello.session, S1);
    assert_eq!(hello.size, SIZE);
}

#[test]
fn welcome_makes_it_live() {
    let mut c = greeted(S1, 0, 1);
    let d = c.handle_message(&welcome("h1", S1, 3, 0, true), 10);
    assert!(matches!(
        d,
        Some(Delivery::Welcome {
            same_session: false,
            ..
        })
    ));
    assert_eq!(c.phase(), Phase::Live);
    assert_eq!(c.host(), Some("h1"));
    assert_eq!(c.epoch(), Some(3));
    assert_eq!(c.session(), Some(S1));
    let a = actions(&mut c);
    assert!(!a.iter().any(|x| matches!(x, Action::StoreSession(_))));
    let msgs = sent(&a);
    assert!(msgs.contains(&ClientToServerMsg::Resize(SIZE)));
    assert!(msgs.contains(&ClientToServerMsg::Ping { id: 1 }));
}

#[test]
fn a_welcome_for_another_session_is_refused() {
    let mut c = greeted(S1, 0, 1);
    assert!(
        c.handle_message(&welcome("h1", S2, 1, 0, true), 10)
            .is_none()
    );
    assert_ne!(c.phase(), Phase::Live);
    assert!(matches!(
        actions(&mut c).first(),
        Some(Action::Close { .. })
    ));
}

#[test]
fn anything_but_welcome_during_handshake_is_refused() {
    let mut c = greeted(S1, 0, 1);
    let d = c.handle_message(&msg(ServerToClientMsg::Pong { id: 1 }), 1);
    assert!(d.is_none());
    assert_eq!(c.phase(), Phase::Backoff);
    assert!(matches!(actions(&mut c).as_slice(), [Action::Close { .. }]));
}

#[test]
fn garbage_closes_and_backs_off() {
    let mut c = live(0);
    assert!(c.handle_message(&[0xff, 0xff, 0xff], 1).is_none());
    assert_eq!(c.phase(), Phase::Backoff);
    assert!(c.error().is_some_and(|e| e.contains("cannot read")));
    assert!(matches!(actions(&mut c).as_slice(), [Action::Close { .. }]));
}

#[test]
fn frames_are_delivered_and_acked() {
    let mut c = live(0);
    let frame = Frame {
        seq: 7,
        ..Frame::default()
    };
    let d = c.handle_message(&msg(ServerToClientMsg::Frame(frame)), 1);
    assert!(matches!(d, Some(Delivery::Frame(f)) if f.seq == 7));
    assert_eq!(
        sent(&actions(&mut c)),
        vec![ClientToServerMsg::Ack { frame: 7 }]
    );
}

#[test]
fn history_is_decompressed() {
    let mut c = live(0);
    let block = compress_lines(&[line("a"), line("b")]);
    let d = c.handle_message(
        &msg(ServerToClientMsg::History {
            start: 9,
            lines: block.clone(),
        }),
        1,
    );
    assert!(matches!(d, Some(Delivery::History { start: 9, lines }) if lines.len() == 2));
    let mut bad = block;
    bad.count = 5;
    assert!(
        c.handle_message(
            &msg(ServerToClientMsg::History {
                start: 11,
                lines: bad
            }),
            2
        )
        .is_none()
    );
    assert_eq!(c.phase(), Phase::Backoff);
}

#[test]
fn exited_is_delivered() {
    let mut c = live(0);
    let d = c.handle_message(&msg(ServerToClientMsg::Exited { status: Some(3) }), 1);
    assert!(matches!(d, Some(Delivery::Exited(Some(3)))));
}

#[test]
fn input_is_numbered_from_welcome_and_dropped_when_acked() {
    let mut c = greeted(S1, 0, 1);
    c.handle_message(&welcome("h1", S1, 1, 41, false), 0);
    actions(&mut c);
    assert!(c.send_input(b"a"));
    assert!(c.send_input(b"b"));
    assert_eq!(
        inputs(&actions(&mut c)),
        vec![(42, b"a".to_vec()), (43, b"b".to_vec())]
    );
    assert_eq!(c.pending_input(), 2);
    c.handle_message(&msg(ServerToClientMsg::InputAck { seq: 42 }), 1);
    assert_eq!(c.pending_input(), 1);
    c.handle_message(&msg(ServerToClientMsg::InputAck { seq: 43 }), 1);
    assert_eq!(c.pending_input(), 0);
    assert!(c.send_input(b""));
    assert!(actions(&mut c).is_empty());
}

#[test]
fn input_before_the_first_welcome_waits_for_its_number() {
    let mut c = placed_on_h1(S1, 0, 1);
    assert!(c.send_input(b"early"));
    c.handle_open(0);
    assert!(inputs(&actions(&mut c)).is_empty());
    c.handle_message(&welcome("h1", S1, 1, 9, false), 1);
    assert_eq!(inputs(&actions(&mut c)), vec![(10, b"early".to_vec())]);
}

#[test]
fn long_input_is_split_into_chunks() {
    let mut c = live(0);
    let paste = vec![b'x'; MAX_INPUT_CHUNK * 2 + 5];
    assert!(c.send_input(&paste));
    let got = inputs(&actions(&mut c));
    let lens: Vec<(u64, usize)> = got.iter().map(|(s, d)| (*s, d.len())).collect();
    assert_eq!(
        lens,
        vec![(1, MAX_INPUT_CHUNK), (2, MAX_INPUT_CHUNK), (3, 5)]
    );
}

/// The socket drops at t=1 and the retry's socket opens at t=200, not
/// yet welcomed; actions drained.
fn drop_and_reopen(c: &mut Connection) {
    c.handle_close(1006, 1);
    c.handle_timeout(c.retry_at().unwrap_or(0));
    c.handle_open(200);
    actions(c);
}

/// A paste of `len` bytes whose content says where each byte belongs.
fn numbered_paste(len: usize) -> Vec<u8> {
    (0..len).map(|i| b'a' + (i % 23) as u8).collect()
}

#[test]
fn a_paste_beyond_the_window_streams_as_the_host_acknowledges() {
    let mut c = live(0);
    let paste = numbered_paste(INPUT_WINDOW * 3 + 100);
    assert!(c.send_input(&paste));
    assert!(c.send_input(b"typed after"));
    let first = inputs(&actions(&mut c));
    let in_flight: usize = first.iter().map(|(_, d)| d.len()).sum();
    assert_eq!(
        in_flight, INPUT_WINDOW,
        "the window is filled, not exceeded"
    );
    assert_eq!(c.input_waiting(), paste.len() + 11 - INPUT_WINDOW);
    let mut sent = first;
    // The host acknowledges whatever arrived; the page sends more only then.
    for _ in 0..100 {
        let Some(&(last, _)) = sent.last() else { break };
        c.handle_message(&msg(ServerToClientMsg::InputAck { seq: last }), 1);
        let more = inputs(&actions(&mut c));
        if more.is_empty() {
            break;
        }
        assert!(more.iter().map(|(_, d)| d.len()).sum::<usize>() <= INPUT_WINDOW);
        sent.extend(more);
    }
    let seqs: Vec<u64> = sent.iter().map(|(s, _)| *s).collect();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
    let mut expected = paste.clone();
    expected.extend_from_slice(b"typed after");
    let data: Vec<Vec<u8>> = sent.into_iter().map(|(_, d)| d).collect();
    assert_eq!(data.concat(), expected, "complete and in order");
    assert_eq!(c.input_waiting(), 0);
}

#[test]
fn a_paste_waits_out_a_reconnect_and_goes_on_with_the_same_program() {
    let mut c = live(0);
    let paste = numbered_paste(INPUT_WINDOW * 2);
    c.send_input(&paste);
    let before = inputs(&actions(&mut c));
    drop_and_reopen(&mut c);
    // Same program: it took the first chunk only.
    let took = before[0].0;
    c.handle_message(&welcome("h1", S1, 1, took, false), 210);
    let mut sent = before[..1].to_vec();
    sent.extend(inputs(&actions(&mut c)));
    while let Some(&(last, _)) = sent.last() {
        c.handle_message(&msg(ServerToClientMsg::InputAck { seq: last }), 300);
        let more = inputs(&actions(&mut c));
        if more.is_empty() {
            break;
        }
        sent.extend(more);
    }
    let data: Vec<Vec<u8>> = sent.into_iter().map(|(_, d)| d).collect();
    assert_eq!(data.concat(), paste);
}

#[test]
fn the_rest_of_a_paste_never_reaches_a_restarted_program() {
    let mut c = live(0);
    c.send_input(&numbered_paste(INPUT_WINDOW * 2));
    actions(&mut c);
    drop_and_reopen(&mut c);
    c.handle_message(&welcome("h1", S1, 2, 0, false), 210);
    let a = actions(&mut c);
    assert!(inputs(&a).is_empty(), "nothing of it goes to the new shell");
    assert!(a.iter().any(|x| matches!(x, Action::InputLost { .. })));
    assert_eq!(c.pending_input(), 0);
}

#[test]
fn stopping_a_paste_drops_only_what_was_not_sent() {
    let mut c = live(0);
    c.send_input(&numbered_paste(INPUT_WINDOW + 5000));
    let sent = inputs(&actions(&mut c));
    assert_eq!(c.discard_waiting_input(), 5000);
    assert_eq!(c.input_waiting(), 0);
    assert_eq!(c.pending_input(), INPUT_WINDOW);
    let last = sent.last().map_or(0, |(s, _)| *s);
    c.handle_message(&msg(ServerToClientMsg::InputAck { seq: last }), 1);
    assert!(inputs(&actions(&mut c)).is_empty());
    assert!(c.send_input(b"x"));
    assert_eq!(inputs(&actions(&mut c)), vec![(last + 1, b"x".to_vec())]);
}

#[test]
fn pending_input_is_bounded() {
    let mut c = placed_on_h1(S1, 0, 1);
    assert!(c.send_input(&vec![0; MAX_PENDING_INPUT]));
    assert!(!c.send_input(b"x"));
}

#[test]
fn reconnect_resends_exactly_what_the_host_lacks() {
    let mut c = live(0);
    c.send_input(b"1");
    c.send_input(b"2");
    c.send_input(b"3");
    actions(&mut c);
    c.handle_message(&msg(ServerToClientMsg::InputAck { seq: 1 }), 10);
    c.handle_close(1006, 20);
    assert_eq!(c.phase(), Phase::Backoff);
    // Typed while away: numbered, held, not sent.
    c.send_input(b"4");
    assert!(inputs(&actions(&mut c)).is_empty());
    let retry = c.retry_at().expect("retry time");
    assert!((20..=20 + FIRST_RETRY_MAX_MS).contains(&retry), "{retry}");
    c.handle_timeout(retry - 1);
    assert!(actions(&mut c).is_empty());
    c.handle_timeout(retry);
    // The ticket held is good for a minute: no directory needed.
    assert_eq!(actions(&mut c), vec![Action::Open(H1_WS.to_owned())]);
    c.handle_open(retry);
    let h = hello(&actions(&mut c)).expect("hello");
    assert_eq!((h.session, h.ticket.as_str()), (S1, "tk1"));
    // The host had applied 2 (its ack was lost): resend 3 and 4 only.
    c.handle_message(&welcome("h1", S1, 1, 2, false), retry + 5);
    let a = actions(&mut c);
    assert!(!a.iter().any(|x| matches!(x, Action::StoreSession(_))));
    assert_eq!(inputs(&a), vec![(3, b"3".to_vec()), (4, b"4".to_vec())]);
    c.send_input(b"5");
    assert_eq!(inputs(&actions(&mut c)), vec![(5, b"5".to_vec())]);
}

#[test]
fn new_epoch_means_unacked_input_is_lost_not_replayed() {
    let mut c = live(0);
    c.send_input(b"rm -rf x\r");
    actions(&mut c);
    drop_and_reopen(&mut c);
    // The host died; the session was restored elsewhere with epoch 2.
    c.handle_message(&welcome("h1", S1, 2, 0, false), 210);
    let a = actions(&mut c);
    assert!(a.contains(&Action::InputLost {
        messages: 1,
        notice: "1 keystroke was not delivered: h1 was lost".into()
    }));
    assert_eq!(c.undelivered(), 1);
    assert!(inputs(&a).is_empty());
    assert_eq!(c.pending_input(), 0);
    c.send_input(b"x");
    assert_eq!(inputs(&actions(&mut c)), vec![(1, b"x".to_vec())]);
}

#[test]
fn another_session_loses_input_and_is_stored() {
    let mut c = live(0);
    c.send_input(b"ab");
    actions(&mut c);
    c.handle_close(1006, 1);
    c.restart(2);
    // The directory no longer has S1 and starts S2.
    let a = replaced_by_directory(&mut c, S2, 1, 2);
    assert!(a.contains(&Action::StoreSession(Some(S2))));
    assert_eq!(hello(&a).map(|h| h.session), Some(S2));
    let d = c.handle_message(&welcome("h1", S2, 1, 0, true), 3);
    assert!(matches!(
        d,
        Some(Delivery::Welcome {
            same_session: false,
            ..
        })
    ));
    let a = actions(&mut c);
    assert!(a.contains(&Action::InputLost {
        messages: 1,
        notice: "1 keystroke was not delivered: the session was restarted".into()
    }));
}

#[test]
fn stale_epoch_is_fenced() {
    let mut c = greeted(S1, 0, 1);
    c.handle_message(&welcome("h1", S1, 5, 0, false), 0);
    c.handle_close(1006, 1);
    c.restart(2);
    replaced_by_directory(&mut c, S1, 5, 2);
    assert!(
        c.handle_message(&welcome("h1", S1, 4, 0, false), 3)
            .is_none()
    );
    assert_eq!(c.epoch(), Some(5));
    // Dropped, and the directory asked where the session lives now.
    let a = actions(&mut c);
    assert!(matches!(a.first(), Some(Action::Close { .. })), "{a:?}");
    assert!(one_fetch(&a).url.ends_with("/v1/placement"));
}

#[test]
fn pings_every_interval_and_measures_rtt() {
    const P: u64 = PING_INTERVAL_MS;
    let mut c = live(0);
    assert_eq!(c.poll_timeout(), Some(P));
    c.handle_timeout(P - 1);
    assert!(actions(&mut c).is_empty());
    c.handle_timeout(P);
    assert_eq!(
        sent(&actions(&mut c)),
        vec![ClientToServerMsg::Ping { id: 2 }]
    );
    c.handle_message(&msg(ServerToClientMsg::Pong { id: 2 }), P + 13);
    assert_eq!(c.rtt_ms(), Some(13));
    // An unknown pong changes nothing.
    c.handle_message(&msg(ServerToClientMsg::Pong { id: 99 }), P + 500);
    assert_eq!(c.rtt_ms(), Some(13));
    let first = c.srtt_ms().expect("a smoothed round trip");
    // The next sample moves the smoothed figure an eighth of the way.
    c.handle_timeout(2 * P);
    actions(&mut c);
    c.handle_message(&msg(ServerToClientMsg::Pong { id: 3 }), 2 * P + 93);
    assert_eq!(c.rtt_ms(), Some(93));
    assert_eq!(c.srtt_ms(), Some((7 * first + 93) / 8));
}

#[test]
fn typed_input_is_known_by_the_number_it_went_out_as() {
    let mut c = live(0);
    assert_eq!(c.input_sent_as(), None);
    assert!(c.send_input(b"a"));
    let Some(seq) = c.input_sent_as() else {
        panic!("live input is numbered at once")
    };
    assert!(sent(&actions(&mut c)).contains(&ClientToServerMsg::Input {
        seq,
        data: b"a".to_vec()
    }));
    assert_eq!(c.last_input_seq(), seq);
    // Input behind a full window waits unnumbered: nothing to name.
    assert!(c.send_input(&vec![b'x'; INPUT_WINDOW + 1]));
    assert!(c.input_waiting() > 0);
    assert_eq!(c.input_sent_as(), None);
}

#[test]
fn silence_past_the_heartbeat_timeout_drops_the_socket() {
    const P: u64 = PING_INTERVAL_MS;
    let mut c = live(0);
    c.handle_timeout(P);
    // The host answers once, then falls silent.
    c.handle_message(&msg(ServerToClientMsg::Pong { id: 1 }), P + 100);
    let silent_since = P + 100;
    let mut now = P + 100;
    while now + P < silent_since + HEARTBEAT_TIMEOUT_MS {
        now += P;
        c.handle_timeout(now);
        assert_eq!(c.phase(), Phase::Live, "still within the timeout at {now}");
    }
    actions(&mut c);
    c.handle_timeout(silent_since + HEARTBEAT_TIMEOUT_MS);
    // Reported to the directory at once (see the failover tests).
    assert_eq!(c.phase(), Phase::Locating);
    let a = actions(&mut c);
    assert!(matches!(a.first(), Some(Action::Close { .. })), "{a:?}");
    // The close event of the socket we dropped is ignored.
    c.handle_close(4100, silent_since + HEARTBEAT_TIMEOUT_MS + 100);
    assert_eq!(c.phase(), Phase::Locating);
}

#[test]
fn handshake_and_connect_time_out() {
    let mut c = placed_on_h1(S1, 0, 1);
    actions(&mut c);
    assert_eq!(c.poll_timeout(), Some(CONNECT_TIMEOUT_MS));
    c.handle_timeout(CONNECT_TIMEOUT_MS);
    assert_eq!(c.phase(), Phase::Backoff);
    let mut c = placed_on_h1(S1, 0, 1);
    c.handle_open(100);
    actions(&mut c);
    c.handle_timeout(100 + HEARTBEAT_TIMEOUT_MS);
    // A host that takes the socket but stays silent is reported at once.
    assert_eq!(c.phase(), Phase::Locating);
    assert!(one_fetch(&actions(&mut c)).url.ends_with("/unreachable"));
}

#[test]
fn backoff_doubles_with_jitter_up_to_the_cap_and_resets_when_live() {
    // The directory is down throughout, so the owner is what is retried.
    let fail_fetches = |c: &mut Connection, now: u64| {
        for f in fetches(&actions(c)) {
            c.handle_http(f.id, HttpOutcome::Failed, now);
        }
    };
    let mut c = placed_on_h1(S1, 0, 7);
    actions(&mut c);
    let mut now = 0;
    let mut delays = vec![];
    for _ in 0..10 {
        c.handle_close(1006, now);
        fail_fetches(&mut c, now);
        let at = c.retry_at().expect("backoff");
        delays.push(at - now);
        now = at;
        c.handle_timeout(now);
        assert_eq!(c.phase(), Phase::Connecting);
        fail_fetches(&mut c, now);
    }
    assert!(delays[0] <= FIRST_RETRY_MAX_MS, "{delays:?}");
    let caps = [200, 400, 800, 1600, 3200, 5000, 5000, 5000, 5000];
    for (d, cap) in delays[1..].iter().zip(caps) {
        assert!(*d >= cap / 2 && *d <= cap, "{delays:?}");
    }
    c.handle_open(now);
    c.handle_message(&welcome("h1", S1, 1, 0, true), now);
    c.handle_close(1006, now);
    assert!(c.retry_at().is_some_and(|t| t - now <= FIRST_RETRY_MAX_MS));
}

#[test]
fn retryable_close_codes_reconnect() {
    // A host going away or losing the session sends the client to the
    // directory; a slow greeting is retried on the same host.
    for (code, phase) in [
        (CloseCode::GoingAway, Phase::Locating),
        (CloseCode::HandshakeTimeout, Phase::Backoff),
        (CloseCode::SessionLost, Phase::Locating),
    ] {
        let mut c = live(0);
        c.handle_close(code.code(), 1);
        assert_eq!(c.phase(), phase, "{code:?}");
        assert_eq!(c.error(), Some(code.advice()));
    }
}

#[test]
fn session_end_forgets_the_session_and_enter_starts_a_new_one() {
    let mut c = live(0);
    c.send_input(b"exit\r");
    actions(&mut c);
    c.handle_close(4004, 1);
    assert_eq!(c.phase(), Phase::Closed(ClosedBecause::SessionEnded));
    assert_eq!(c.error(), Some(CloseCode::SessionEnded.advice()));
    assert_eq!(actions(&mut c), vec![Action::StoreSession(None)]);
    c.restart(2);
    let place = one_fetch(&actions(&mut c));
    // Not the user's other running session: a new one, as the notice said.
    assert_eq!(place.body.as_deref(), Some(r#"{"new":true}"#));
    c.handle_http(place.id, ok(&placed(S2, "h1", 8081, 1, "tk2")), 2);
    actions(&mut c);
    c.handle_open(3);
    assert_eq!(hello(&actions(&mut c)).map(|h| h.session), Some(S2));
    c.handle_message(&welcome("h1", S2, 1, 0, true), 4);
    let a = actions(&mut c);
    assert!(!a.iter().any(|x| matches!(x, Action::InputLost { .. })));
}

#[test]
fn refusals_stay_closed_until_the_user_acts() {
    for code in [
        CloseCode::VersionMismatch,
        CloseCode::Overloaded,
        CloseCode::TooManyConnections,
        CloseCode::SignedOut,
        CloseCode::TooManySessions,
        CloseCode::AccountDisabled,
    ] {
        let mut c = live(0);
        c.handle_close(code.code(), 1);
        assert_eq!(c.phase(), Phase::Closed(ClosedBecause::Refused(code)));
        assert_eq!(c.phase_name(), "closed");
        assert_eq!(c.error(), Some(code.advice()));
        assert_eq!(c.poll_timeout(), None);
        // No retry storm: nothing at all until the user acts.
        c.handle_timeout(100_000);
        assert!(actions(&mut c).is_empty());
        // Enter asks the directory again (a fresh ticket), then connects.
        c.restart(100_001);
        assert!(one_fetch(&actions(&mut c)).url.ends_with("/v1/placement"));
    }
}

#[test]
fn resize_is_sent_only_when_live_and_changed() {
    let mut c = live(0);
    c.resize(SIZE);
    assert!(actions(&mut c).is_empty());
    let big = Size {
        cols: 100,
        rows: 30,
    };
    c.resize(big);
    assert_eq!(sent(&actions(&mut c)), vec![ClientToServerMsg::Resize(big)]);
    c.handle_close(1006, 1);
    let small = Size { cols: 50, rows: 10 };
    c.resize(small);
    assert!(actions(&mut c).is_empty());
    c.restart(2);
    let a = replaced_by_directory(&mut c, S1, 1, 2);
    assert_eq!(hello(&a).map(|h| h.size), Some(small));
}

#[test]
fn messages_when_not_connected_are_ignored() {
    let mut c = live(0);
    c.handle_close(1006, 1);
    let frame = msg(ServerToClientMsg::Frame(Frame::default()));
    assert!(c.handle_message(&frame, 2).is_none());
    assert!(actions(&mut c).is_empty());
}

#[test]
fn frozen_timers_do_not_count_as_host_silence() {
    let mut c = live(0);
    // The tab slept for a minute: no pings went out, nothing came back.
    c.handle_timeout(60_000);
    assert_eq!(c.phase(), Phase::Live);
    assert_eq!(
        sent(&actions(&mut c)),
        vec![ClientToServerMsg::Ping { id: 2 }]
    );
    c.handle_message(&msg(ServerToClientMsg::Pong { id: 2 }), 60_004);
    assert_eq!(c.rtt_ms(), Some(4));
    // A socket that really died after the sleep is still found out.
    let mut c = live(0);
    c.handle_timeout(60_000);
    actions(&mut c);
    // The wake-up counts as having heard from the host one interval ago.
    let heard = 60_000 - PING_INTERVAL_MS;
    c.handle_timeout(heard + HEARTBEAT_TIMEOUT_MS - 1);
    assert_eq!(c.phase(), Phase::Live);
    c.handle_timeout(heard + HEARTBEAT_TIMEOUT_MS);
    assert_eq!(c.phase(), Phase::Locating);
}

#[test]
fn deliveries_are_shown_on_the_screen_as_every_glue_shows_them() {
    use protocol::{RowUpdate, Size};

    use crate::screen::Screen;

    let size = Size { cols: 10, rows: 2 };
    let mut screen = Screen::new(size);
    let mut c = live(0);
    let frame = Frame {
        seq: 1,
        size,
        rows: vec![RowUpdate {
            row: 1,
            line: line("$ ls"),
            links: vec![],
        }],
        ..Frame::default()
    };
    let d = c.handle_message(&msg(ServerToClientMsg::Frame(frame)), 2);
    assert_eq!(d.and_then(|d| c.show(d, &mut screen)), None);
    assert_eq!(screen.row_text(1), "$ ls");
    assert_eq!(screen.frames(), 1);
    let d = c.handle_message(
        &msg(ServerToClientMsg::Notice {
            text: "clamped".into(),
        }),
        3,
    );
    assert_eq!(
        d.and_then(|d| c.show(d, &mut screen)).as_deref(),
        Some("clamped")
    );

    let d = c.handle_message(&msg(ServerToClientMsg::Exited { status: Some(3) }), 4);
    assert_eq!(
        d.and_then(|d| c.show(d, &mut screen)).as_deref(),
        Some("the program exited with status 3")
    );
}

/// The history fetches `c` sent, by their `before`.
fn history_fetches(c: &mut Connection) -> Vec<u64> {
    sent(&actions(c))
        .into_iter()
        .filter_map(|m| match m {
            ClientToServerMsg::FetchHistory { before, .. } => Some(before),
            _ => None,
        })
        .collect()
}

fn history(start: u64, texts: &[&str]) -> Vec<u8> {
    let lines: Vec<_> = texts.iter().map(|t| line(t)).collect();
    msg(ServerToClientMsg::History {
        start,
        lines: compress_lines(&lines),
    })
}

/// A frame that shows `text` on the bottom row.
fn prompt_frame(seq: u64, size: protocol::Size) -> Vec<u8> {
    msg(ServerToClientMsg::Frame(Frame {
        seq,
        size,
        rows: vec![protocol::RowUpdate {
            row: 1,
            line: line("$"),
            links: vec![],
        }],
        ..Frame::default()
    }))
}

/// Reconnects `c` (live on h1, epoch 1) after a drop, to a host that says
/// `welcome`.
fn reconnect(c: &mut Connection, welcome: &[u8], now: u64) -> Option<Delivery> {
    c.handle_close(1006, now);
    c.handle_timeout(now + 1_000);
    c.handle_open(now + 1_000);
    actions(c);
    c.handle_message(welcome, now + 1_001)
}

#[test]
fn history_is_fetched_after_the_first_frame_and_kept_across_a_reattach() {
    use protocol::{HistorySpan, Size};

    use crate::screen::Screen;

    let size = Size { cols: 10, rows: 2 };
    let mut screen = Screen::new(size);
    let mut c = live(0);
    actions(&mut c);
    // The welcome says the host holds lines 0..3; nothing is asked for
    // before the screen is shown.
    let span = HistorySpan { start: 0, end: 3 };
    let d = reconnect(&mut c, &welcome_holding("h1", S1, 1, 0, false, span), 10);
    c.show(d.expect("welcome"), &mut screen);
    assert_eq!(
        history_fetches(&mut c),
        Vec::<u64>::new(),
        "not in front of the prompt"
    );
    let d = c.handle_message(&prompt_frame(1, size), 1_020);
    c.show(d.expect("frame"), &mut screen);
    assert_eq!(history_fetches(&mut c), vec![3], "after the first frame");
    // One fetch at a time: more frames ask nothing more.
    let d = c.handle_message(&prompt_frame(2, size), 1_021);
    c.show(d.expect("frame"), &mut screen);
    assert_eq!(history_fetches(&mut c), Vec::<u64>::new());
    let d = c.handle_message(&history(1, &["l1", "l2"]), 1_022);
    c.show(d.expect("history"), &mut screen);
    assert_eq!(screen.scrollback_len(), 2);
    assert_eq!(history_fetches(&mut c), vec![1], "the next block");
    let d = c.handle_message(&history(0, &["l0"]), 1_023);
    c.show(d.expect("history"), &mut screen);
    assert!(screen.history_complete());
    assert_eq!(
        history_fetches(&mut c),
        Vec::<u64>::new(),
        "all of it is here"
    );
    let texts = |s: &Screen| s.history().map(|l| l.text()).collect::<Vec<_>>();
    assert_eq!(texts(&screen), ["l0", "l1", "l2"]);

    // A blip with no output: the same host and epoch, the same lines; the
    // screen comes and nothing is fetched again.
    let d = reconnect(&mut c, &welcome_holding("h1", S1, 1, 0, false, span), 2_000);
    c.show(d.expect("welcome"), &mut screen);
    let d = c.handle_message(&prompt_frame(1, size), 3_002);
    c.show(d.expect("frame"), &mut screen);
    assert_eq!(history_fetches(&mut c), Vec::<u64>::new());
    assert_eq!(texts(&screen), ["l0", "l1", "l2"]);

    // Output while detached: only the new lines are fetched, and the held
    // ones join them.
    let more = HistorySpan { start: 0, end: 5 };
    let d = reconnect(&mut c, &welcome_holding("h1", S1, 1, 0, false, more), 4_000);
    c.show(d.expect("welcome"), &mut screen);
    let d = c.handle_message(&prompt_frame(1, size), 5_002);
    c.show(d.expect("frame"), &mut screen);
    assert_eq!(history_fetches(&mut c), vec![5]);
    let d = c.handle_message(&history(3, &["l3", "l4"]), 5_003);
    c.show(d.expect("history"), &mut screen);
    assert_eq!(texts(&screen), ["l0", "l1", "l2", "l3", "l4"]);
    assert_eq!(
        history_fetches(&mut c),
        Vec::<u64>::new(),
        "nothing fetched twice"
    );

    // Another epoch (a restore): its numbers are its own; all is fetched.
    let restored = HistorySpan { start: 0, end: 2 };
    let d = reconnect(
        &mut c,
        &welcome_holding("h2", S1, 2, 0, false, restored),
        6_000,
    );
    c.show(d.expect("welcome"), &mut screen);
    assert_eq!(screen.scrollback_len(), 0);
    let d = c.handle_message(&prompt_frame(1, size), 7_002);
    c.show(d.expect("frame"), &mut screen);
    assert_eq!(history_fetches(&mut c), vec![2]);
}

#[test]
fn enter_answers_only_a_notice_that_asks_for_it() {
    // Live: the key is the program's.
    let mut c = live(0);
    assert!(!c.enter_on_notice(1));
    assert!(actions(&mut c).is_empty());
    // A refusal: Enter asks the directory again.
    c.handle_close(CloseCode::SignedOut.code(), 2);
    assert!(c.enter_on_notice(3));
    assert!(one_fetch(&actions(&mut c)).url.ends_with("/v1/placement"));
    // Replaced: only "Take it back" answers.
    let mut c = live(0);
    c.handle_close(CloseCode::Replaced.code(), 1);
    actions(&mut c);
    assert!(!c.enter_on_notice(2));
    assert!(actions(&mut c).is_empty());
    assert_eq!(c.phase(), Phase::Closed(ClosedBecause::Replaced));
    // Reconnecting after a drop: the key waits for the program.
    let mut c = live(0);
    c.handle_close(1006, 1);
    actions(&mut c);
    assert!(!c.enter_on_notice(2));
    assert_eq!(c.phase(), Phase::Backoff);
}

/// A welcome for a viewer of alice's session `S1` on h1 at epoch 3.
fn viewer_welcome(may_type: bool) -> Vec<u8> {
    msg(ServerToClientMsg::Welcome(protocol::Welcome {
        session: S1,
        host: "h1".into(),
        epoch: 3,
        created: false,
        input_seq: 0,
        history: protocol::HistorySpan::default(),
        role: protocol::Role::Viewer {
            owner: "alice".into(),
            may_type,
        },
    }))
}

#[test]
fn a_viewer_never_sizes_the_session_and_types_only_if_its_share_lets_it() {
    let mut c = greeted(S1, 0, 1);
    c.handle_message(&viewer_welcome(false), 10);
    assert_eq!(c.phase(), Phase::Live);
    assert!(c.role().is_viewer());
    let a = actions(&mut c);
    assert!(
        !sent(&a)
            .iter()
            .any(|m| matches!(m, ClientToServerMsg::Resize(_))),
        "{a:?}"
    );
    c.resize(Size { cols: 40, rows: 10 });
    assert!(!c.send_input(b"rm -rf ~\r"), "read-only");
    assert!(sent(&actions(&mut c)).is_empty());

    let mut c = greeted(S1, 0, 1);
    c.handle_message(&viewer_welcome(true), 10);
    actions(&mut c);
    assert!(c.send_input(b"ls\r"));
    c.resize(Size { cols: 40, rows: 10 });
    assert_eq!(inputs(&actions(&mut c)), [(1, b"ls\r".to_vec())]);
}

#[test]
fn the_owner_hears_who_watches() {
    let mut c = greeted(S1, 0, 1);
    c.handle_message(&welcome("h1", S1, 3, 0, false), 10);
    assert_eq!(c.watchers(), "");
    let names = vec!["bob".to_owned(), "carol".to_owned()];
    assert!(
        c.handle_message(&msg(ServerToClientMsg::Watchers { names }), 20)
            .is_none()
    );
    assert_eq!(c.watchers(), "bob, carol");
    assert_eq!(*c.role(), protocol::Role::Owner);
}
