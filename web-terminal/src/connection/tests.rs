//! Every path of the connection machine, driven by a fake clock.

use protocol::{
    ClientToServerMsg, CloseCode, Frame, MAX_INPUT_CHUNK, ServerToClientMsg, SessionId, Size,
    Welcome, compress_lines, decode_client, decode_hello, encode_server,
};

use super::*;
use crate::testutil::line;

const SIZE: Size = Size { cols: 80, rows: 24 };
const S1: SessionId = SessionId([1; 16]);
const S2: SessionId = SessionId([2; 16]);

fn actions(c: &mut Connection) -> Vec<Action> {
    std::iter::from_fn(|| c.poll_action()).collect()
}

/// The client messages among the actions (hellos excluded).
fn sent(actions: &[Action]) -> Vec<ClientToServerMsg> {
    actions
        .iter()
        .filter_map(|a| match a {
            Action::Send(b) if !b.starts_with(b"TL") => decode_client(b).ok(),
            _ => None,
        })
        .collect()
}

fn inputs(actions: &[Action]) -> Vec<(u64, Vec<u8>)> {
    sent(actions)
        .into_iter()
        .filter_map(|m| match m {
            ClientToServerMsg::Input { seq, data } => Some((seq, data)),
            _ => None,
        })
        .collect()
}

fn welcome(session: SessionId, epoch: u64, input_seq: u64, created: bool) -> Vec<u8> {
    encode_server(&ServerToClientMsg::Welcome(Welcome {
        session,
        host: "h1".into(),
        epoch,
        created,
        input_seq,
    }))
}

fn msg(m: ServerToClientMsg) -> Vec<u8> {
    encode_server(&m)
}

/// A connection that is live on S1, epoch 1, with actions drained.
fn live(now: u64) -> Connection {
    let mut c = Connection::new("tok".into(), None, SIZE, now, 42);
    c.handle_open(now);
    c.handle_message(&welcome(S1, 1, 0, true), now);
    actions(&mut c);
    c
}

#[test]
fn opens_then_says_hello_with_token_session_and_size() {
    let mut c = Connection::new("tok".into(), Some(S1), SIZE, 0, 1);
    assert_eq!(c.phase(), Phase::Connecting);
    assert_eq!(c.phase_name(), "connecting");
    assert_eq!(actions(&mut c), vec![Action::Open(None)]);
    c.handle_open(5);
    assert_eq!(c.phase(), Phase::Handshaking);
    let a = actions(&mut c);
    let [Action::Send(bytes)] = a.as_slice() else {
        panic!("{a:?}")
    };
    let hello = decode_hello(bytes).expect("hello");
    assert_eq!(hello.token, "tok");
    assert_eq!(hello.session, Some(S1));
    assert_eq!(hello.size, SIZE);
}

#[test]
fn welcome_makes_it_live_and_stores_the_session() {
    let mut c = Connection::new("tok".into(), None, SIZE, 0, 1);
    c.handle_open(0);
    actions(&mut c);
    let d = c.handle_message(&welcome(S1, 3, 0, true), 10);
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
    assert!(a.contains(&Action::StoreSession(Some(S1))));
    let msgs = sent(&a);
    assert!(msgs.contains(&ClientToServerMsg::Resize(SIZE)));
    assert!(msgs.contains(&ClientToServerMsg::Ping { id: 1 }));
}

#[test]
fn anything_but_welcome_during_handshake_is_refused() {
    let mut c = Connection::new("tok".into(), None, SIZE, 0, 1);
    c.handle_open(0);
    actions(&mut c);
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
    let d = c.handle_message(&msg(ServerToClientMsg::History(block.clone())), 1);
    assert!(matches!(d, Some(Delivery::History(l)) if l.len() == 2));
    let mut bad = block;
    bad.count = 5;
    assert!(
        c.handle_message(&msg(ServerToClientMsg::History(bad)), 2)
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
    let mut c = Connection::new("tok".into(), Some(S1), SIZE, 0, 1);
    c.handle_open(0);
    c.handle_message(&welcome(S1, 1, 41, false), 0);
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
    let mut c = Connection::new("tok".into(), Some(S1), SIZE, 0, 1);
    assert!(c.send_input(b"early"));
    c.handle_open(0);
    assert!(inputs(&actions(&mut c)).is_empty());
    c.handle_message(&welcome(S1, 1, 9, false), 1);
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

#[test]
fn pending_input_is_bounded() {
    let mut c = Connection::new("tok".into(), None, SIZE, 0, 1);
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
    assert!((20 + 50..=20 + 100).contains(&retry), "{retry}");
    c.handle_timeout(retry - 1);
    assert!(actions(&mut c).is_empty());
    c.handle_timeout(retry);
    assert_eq!(actions(&mut c), vec![Action::Open(None)]);
    c.handle_open(retry);
    let hello = actions(&mut c);
    let [Action::Send(h)] = hello.as_slice() else {
        panic!("{hello:?}")
    };
    assert_eq!(decode_hello(h).map(|h| h.session), Ok(Some(S1)));
    // The host had applied 2 (its ack was lost): resend 3 and 4 only.
    c.handle_message(&welcome(S1, 1, 2, false), retry + 5);
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
    c.handle_close(1006, 1);
    c.handle_timeout(c.retry_at().unwrap_or(0));
    c.handle_open(200);
    actions(&mut c);
    // The host died; the session was restored elsewhere with epoch 2.
    c.handle_message(&welcome(S1, 2, 0, false), 210);
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
    c.handle_open(2);
    actions(&mut c);
    let d = c.handle_message(&welcome(S2, 1, 0, true), 3);
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
    assert!(a.contains(&Action::StoreSession(Some(S2))));
}

#[test]
fn stale_epoch_is_fenced() {
    let mut c = Connection::new("tok".into(), Some(S1), SIZE, 0, 1);
    c.handle_open(0);
    c.handle_message(&welcome(S1, 5, 0, false), 0);
    c.handle_close(1006, 1);
    c.restart(2);
    c.handle_open(2);
    actions(&mut c);
    assert!(c.handle_message(&welcome(S1, 4, 0, false), 3).is_none());
    assert_eq!(c.phase(), Phase::Backoff);
    assert_eq!(c.epoch(), Some(5));
    assert!(matches!(actions(&mut c).as_slice(), [Action::Close { .. }]));
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
    assert_eq!(c.phase(), Phase::Backoff);
    let a = actions(&mut c);
    assert!(matches!(a.as_slice(), [Action::Close { .. }]), "{a:?}");
    // The close event of the socket we dropped is ignored.
    c.handle_close(4100, silent_since + HEARTBEAT_TIMEOUT_MS + 100);
    assert_eq!(c.phase(), Phase::Backoff);
}

#[test]
fn handshake_and_connect_time_out() {
    let mut c = Connection::new("tok".into(), None, SIZE, 0, 1);
    actions(&mut c);
    assert_eq!(c.poll_timeout(), Some(CONNECT_TIMEOUT_MS));
    c.handle_timeout(CONNECT_TIMEOUT_MS);
    assert_eq!(c.phase(), Phase::Backoff);
    let mut c = Connection::new("tok".into(), None, SIZE, 0, 1);
    c.handle_open(100);
    actions(&mut c);
    c.handle_timeout(100 + HEARTBEAT_TIMEOUT_MS);
    assert_eq!(c.phase(), Phase::Backoff);
}

#[test]
fn backoff_doubles_with_jitter_up_to_the_cap_and_resets_when_live() {
    let mut c = Connection::new("tok".into(), None, SIZE, 0, 7);
    let mut now = 0;
    let mut delays = vec![];
    for _ in 0..10 {
        c.handle_close(1006, now);
        let at = c.retry_at().expect("backoff");
        delays.push(at - now);
        now = at;
        c.handle_timeout(now);
        assert_eq!(c.phase(), Phase::Connecting);
    }
    let caps = [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000, 5000];
    for (d, cap) in delays.iter().zip(caps) {
        assert!(*d >= cap / 2 && *d <= cap, "{delays:?}");
    }
    c.handle_open(now);
    c.handle_message(&welcome(S1, 1, 0, true), now);
    c.handle_close(1006, now);
    assert!(c.retry_at().is_some_and(|t| t - now <= 100));
}

#[test]
fn retryable_close_codes_reconnect() {
    for code in [
        CloseCode::GoingAway,
        CloseCode::HandshakeTimeout,
        CloseCode::SessionLost,
    ] {
        let mut c = live(0);
        c.handle_close(code.code(), 1);
        assert_eq!(c.phase(), Phase::Backoff, "{code:?}");
        assert_eq!(c.phase_name(), "backoff");
        assert_eq!(c.error(), Some(code.advice()));
    }
}

#[test]
fn unauthorized_asks_for_the_token_and_does_not_retry() {
    let mut c = Connection::new("bad".into(), None, SIZE, 0, 1);
    c.handle_open(0);
    actions(&mut c);
    c.handle_close(4001, 1);
    assert_eq!(c.phase(), Phase::Closed(ClosedBecause::Unauthorized));
    assert_eq!(c.phase_name(), "closed");
    assert_eq!(
        actions(&mut c),
        vec![Action::AskToken(CloseCode::Unauthorized.advice())]
    );
    assert_eq!(c.poll_timeout(), None);
    c.handle_timeout(100_000);
    assert!(actions(&mut c).is_empty());
    assert!(!c.send_input(b"x"));
    c.set_token("good".into(), 5);
    assert_eq!(actions(&mut c), vec![Action::Open(None)]);
    assert_eq!(c.error(), None);
    c.handle_open(6);
    let a = actions(&mut c);
    let [Action::Send(h)] = a.as_slice() else {
        panic!("{a:?}")
    };
    assert_eq!(decode_hello(h).map(|h| h.token), Ok("good".to_owned()));
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
    c.handle_open(3);
    let a = actions(&mut c);
    let Some(Action::Send(h)) = a.get(1) else {
        panic!("{a:?}")
    };
    assert_eq!(decode_hello(h).map(|h| h.session), Ok(None));
    c.handle_message(&welcome(S2, 1, 0, true), 4);
    let a = actions(&mut c);
    assert!(!a.iter().any(|x| matches!(x, Action::InputLost { .. })));
}

#[test]
fn refusals_stay_closed_until_the_user_acts() {
    for code in [
        CloseCode::Replaced,
        CloseCode::VersionMismatch,
        CloseCode::Overloaded,
    ] {
        let mut c = live(0);
        c.handle_close(code.code(), 1);
        assert_eq!(c.phase(), Phase::Closed(ClosedBecause::Refused(code)));
        assert_eq!(c.error(), Some(code.advice()));
        assert_eq!(c.poll_timeout(), None);
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
    c.handle_open(2);
    let a = actions(&mut c);
    let Some(Action::Send(h)) = a.get(1) else {
        panic!("{a:?}")
    };
    assert_eq!(decode_hello(h).map(|h| h.size), Ok(small));
}

#[test]
fn waiting_for_token_does_nothing_until_given_one() {
    let mut c = Connection::waiting_for_token(SIZE, 0, 1);
    assert!(actions(&mut c).is_empty());
    assert_eq!(c.phase_name(), "closed");
    c.set_token("t".into(), 1);
    assert_eq!(actions(&mut c), vec![Action::Open(None)]);
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
    assert_eq!(c.phase(), Phase::Backoff);
}
