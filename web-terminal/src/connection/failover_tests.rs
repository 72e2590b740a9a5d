//! Failover through the directory, every path driven by a fake clock: the
//! socket events, HTTP outcomes and timer firings a browser would deliver.

use protocol::{ServerToClientMsg, encode_server};

use super::testkit::*;
use super::*;
use crate::directory::HttpOutcome;
use crate::testutil::frame;

fn hello_session(a: &[Action]) -> Option<SessionId> {
    hello(a).map(|h| h.session)
}

fn screen(seq: u64) -> Vec<u8> {
    encode_server(&ServerToClientMsg::Frame(frame(seq, SIZE, &[])))
}

/// A page served by directory D1, live on h1 (S1, epoch 1), first frame
/// shown, actions drained.
fn live_on_h1(now: u64) -> Connection {
    let mut c = signed_in(SessionChoice::Remembered(S1), &[D2, D1], now, 42);
    let place = one_fetch(&actions(&mut c));
    // The replica serving the page is asked first.
    assert_eq!(place.url, format!("{D1}/v1/placement"));
    assert!(place.same_origin);
    assert_eq!(place.body, Some(format!("{{\"session\":\"{S1}\"}}")));
    assert_eq!(c.phase_name(), "connecting");
    c.handle_http(place.id, ok(&placed(S1, "h1", 8081, 1, "tk1")), now);
    assert_eq!(opens(&actions(&mut c)), vec![H1_WS.to_owned()]);
    c.handle_open(now);
    assert_eq!(hello_session(&actions(&mut c)), Some(S1));
    c.handle_message(&welcome("h1", S1, 1, 0, false), now);
    c.handle_message(&screen(1), now);
    actions(&mut c);
    assert_eq!(c.phase(), Phase::Live);
    assert_eq!(c.stage(now), "");
    assert_eq!(c.directory(), Some(D1));
    c
}

/// Fails the next `n` socket attempts (each as soon as it is due) and
/// returns the time of the last failure.
fn fail_attempts(c: &mut Connection, n: u32, mut now: u64) -> u64 {
    for _ in 0..n {
        now = c.retry_at().expect("a retry is scheduled");
        c.handle_timeout(now);
        assert_eq!(opens(&actions(c)).len(), 1);
        c.handle_close(1006, now + 1);
        now += 1;
    }
    now
}

#[test]
fn without_a_replica_list_the_page_origin_is_the_directory() {
    for outcome in [status(404, "not found"), ok("<!doctype html>")] {
        let mut c = Connection::start(SessionChoice::Any, SIZE, 0, 1, D1.into());
        let me = one_fetch(&actions(&mut c));
        c.handle_http(me.id, ok(r#"{"user":"alice"}"#), 1);
        let config = one_fetch(&actions(&mut c));
        c.handle_http(config.id, outcome, 3);
        let place = one_fetch(&actions(&mut c));
        assert_eq!(place.url, format!("{D1}/v1/placement"));
        assert!(place.same_origin);
        // No session named: the directory picks (hot desking).
        assert_eq!(place.body.as_deref(), Some("{}"));
        assert_eq!(c.directory(), Some(D1));
    }
}

#[test]
fn config_failures_are_retried_with_backoff() {
    let mut c = Connection::start(SessionChoice::Any, SIZE, 0, 1, D1.into());
    let me = one_fetch(&actions(&mut c));
    c.handle_http(me.id, ok(r#"{"user":"alice"}"#), 0);
    let config = one_fetch(&actions(&mut c));
    c.handle_http(config.id, HttpOutcome::Failed, 5);
    assert_eq!(c.stage(5), "no directory is reachable — retrying (0.0 s)");
    assert!(opens(&actions(&mut c)).is_empty());
    let at = c.poll_timeout().expect("retry");
    assert!((5 + 125..=5 + 250).contains(&at), "{at}");
    c.handle_timeout(at);
    let again = one_fetch(&actions(&mut c));
    assert_eq!(again.url, "/v1/config");
    c.handle_http(again.id, ok(&format!(r#"{{"directories":["{D1}"]}}"#)), at);
    assert_eq!(
        one_fetch(&actions(&mut c)).url,
        format!("{D1}/v1/placement")
    );
    assert_eq!(c.stage(at), "");
}

#[test]
fn drop_and_return_to_the_same_host_delivers_input_exactly_once() {
    let mut c = live_on_h1(0);
    c.send_input(b"a");
    c.send_input(b"b");
    actions(&mut c);
    c.handle_message(&msg_ack(1), 10);
    c.handle_close(1006, 1_000);
    assert_eq!(c.phase_name(), "backoff");
    assert_eq!(
        c.stage(1_400),
        "connection lost — reconnecting to h1 (0.4 s)"
    );
    // Typed while away: kept, not sent.
    c.send_input(b"c");
    assert!(inputs(&actions(&mut c)).is_empty());
    let retry = c.retry_at().expect("quick retry");
    assert!(
        (1_000..=1_000 + FIRST_RETRY_MAX_MS).contains(&retry),
        "{retry}"
    );
    c.handle_timeout(retry);
    let a = actions(&mut c);
    assert_eq!(opens(&a), vec![H1_WS.to_owned()]);
    assert!(fetches(&a).is_empty(), "a blip needs no directory");
    c.handle_open(retry + 1);
    assert_eq!(hello_session(&actions(&mut c)), Some(S1));
    // The host had applied "b" but its ack was lost: only "c" goes again.
    c.handle_message(&welcome("h1", S1, 1, 2, false), retry + 2);
    let a = actions(&mut c);
    assert_eq!(inputs(&a), vec![(3, b"c".to_vec())]);
    assert!(!a.iter().any(|x| matches!(x, Action::InputLost { .. })));
    assert_eq!(
        c.stage(retry + 2),
        "h1 answered — restoring your screen (0.0 s)"
    );
    c.handle_message(&screen(2), retry + 3);
    assert_eq!(c.stage(retry + 3), "");
    c.handle_message(&msg_ack(3), retry + 4);
    assert_eq!(c.pending_input(), 0);
    assert_eq!(c.undelivered(), 0);
}

fn msg_ack(seq: u64) -> Vec<u8> {
    encode_server(&ServerToClientMsg::InputAck { seq })
}

#[test]
fn a_dead_host_is_reported_and_the_session_moves_without_replaying_input() {
    let mut c = live_on_h1(0);
    for k in [b"x", b"y", b"z"] {
        c.send_input(k);
    }
    actions(&mut c);
    c.handle_close(1006, 1_000);
    let t = fail_attempts(&mut c, QUICK_RETRIES, 1_000);
    assert!(t <= 1_000 + 300, "quick retries took {} ms", t - 1_000);
    let a = actions(&mut c);
    let report = one_fetch(&a);
    assert_eq!(report.method, "POST");
    assert_eq!(report.url, format!("{D1}/v1/sessions/{S1}/unreachable"));
    assert_eq!(report.body.as_deref(), Some(r#"{"host":"h1","epoch":1}"#));
    assert_eq!(c.phase_name(), "connecting");
    assert_eq!(
        c.stage(t + 50),
        format!(
            "h1 is not answering — asking the directory ({:.1} s)",
            (t + 50 - 1_000) as f64 / 1000.0
        )
    );
    c.handle_http(report.id, ok(&moved("h2", 8082, 2)), t + 60);
    assert_eq!(opens(&actions(&mut c)), vec![H2_WS.to_owned()]);
    assert_eq!(
        c.stage(1_600),
        "h1 is down — moving your session to h2 (0.6 s)"
    );
    c.handle_open(t + 70);
    assert_eq!(hello_session(&actions(&mut c)), Some(S1));
    // Restored from the store at a higher epoch: the program is new.
    c.handle_message(&welcome("h2", S1, 2, 0, false), t + 90);
    let a = actions(&mut c);
    assert!(
        inputs(&a).is_empty(),
        "unacknowledged input is never replayed"
    );
    assert!(a.contains(&Action::InputLost {
        messages: 3,
        notice: "3 keystrokes were not delivered: h1 was lost".into(),
    }));
    assert_eq!(c.undelivered(), 3);
    assert_eq!((c.host(), c.epoch()), (Some("h2"), Some(2)));
    c.handle_message(&screen(1), t + 95);
    assert_eq!(c.stage(t + 95), "");
    // New input continues the numbering the host expects.
    c.send_input(b"q");
    assert_eq!(inputs(&actions(&mut c)), vec![(1, b"q".to_vec())]);
}

#[test]
fn a_failing_directory_hands_over_to_the_next_and_all_down_keeps_retrying() {
    let mut c = live_on_h1(0);
    c.handle_close(1006, 1_000);
    let t = fail_attempts(&mut c, QUICK_RETRIES, 1_000);
    let first = one_fetch(&actions(&mut c));
    assert!(first.url.starts_with(D1));
    // D1 is down: D2 is asked at once.
    c.handle_http(first.id, HttpOutcome::Failed, t + 5);
    let second = one_fetch(&actions(&mut c));
    assert!(second.url.starts_with(D2), "{second:?}");
    // D2 does not answer in time either: every replica failed.
    c.handle_timeout(t + 5 + crate::directory::DIRECTORY_TIMEOUT_MS);
    let a = actions(&mut c);
    assert!(a.contains(&Action::CancelFetch(second.id)));
    let now = t + 5 + crate::directory::DIRECTORY_TIMEOUT_MS;
    assert!(
        c.stage(now)
            .starts_with("no directory is reachable — retrying (")
    );
    // Meanwhile the owner is still tried, with a capped backoff, and the
    // directories are asked again.
    let mut now = now;
    let mut owner_tries = 0;
    let mut asked = 0;
    while now < 60_000 {
        now = c.poll_timeout().expect("something is always scheduled");
        c.handle_timeout(now);
        let a = actions(&mut c);
        owner_tries += opens(&a).len();
        for f in fetches(&a) {
            asked += 1;
            c.handle_http(
                f.id,
                HttpOutcome::Response {
                    status: 502,
                    body: String::new(),
                },
                now,
            );
        }
        if c.phase() == Phase::Connecting {
            c.handle_close(1006, now);
        }
        let a = actions(&mut c);
        for f in fetches(&a) {
            asked += 1;
            c.handle_http(f.id, HttpOutcome::Failed, now);
        }
    }
    // About one try every 2.5 to 5 s for each, once the backoff is capped:
    // persistent, but not a storm.
    assert!((12..=30).contains(&owner_tries), "{owner_tries}");
    assert!((24..=60).contains(&asked), "{asked}");
    // The directory comes back: its decision is followed.
    loop {
        now = c.poll_timeout().expect("scheduled");
        c.handle_timeout(now);
        let a = actions(&mut c);
        if let Some(f) = fetches(&a).first() {
            c.handle_http(f.id, ok(&moved("h2", 8082, 2)), now);
            break;
        }
        if c.phase() == Phase::Connecting {
            c.handle_close(1006, now);
        }
    }
    let a = actions(&mut c);
    assert_eq!(opens(&a), vec![H2_WS.to_owned()]);
    assert_eq!(
        c.stage(now),
        format!(
            "h1 is down — moving your session to h2 ({:.1} s)",
            (now - 1_000) as f64 / 1000.0
        )
    );
}

#[test]
fn the_owner_coming_back_while_the_directory_is_down_wins() {
    let mut c = live_on_h1(0);
    c.send_input(b"k");
    actions(&mut c);
    c.handle_close(1006, 1_000);
    let t = fail_attempts(&mut c, QUICK_RETRIES, 1_000);
    for _ in 0..2 {
        let f = one_fetch(&actions(&mut c));
        c.handle_http(f.id, HttpOutcome::Failed, t);
    }
    // The owner is retried while the directory is down; it answers.
    let at = c.retry_at().expect("owner retry");
    c.handle_timeout(at);
    assert_eq!(opens(&actions(&mut c)), vec![H1_WS.to_owned()]);
    c.handle_open(at);
    actions(&mut c);
    c.handle_message(&welcome("h1", S1, 1, 0, false), at);
    let a = actions(&mut c);
    assert_eq!(inputs(&a), vec![(1, b"k".to_vec())]);
    // The pending question is dropped; nothing more is asked.
    assert!(c.directory_timeout().is_none());
    assert_eq!(
        c.stage(at),
        format!(
            "h1 answered — restoring your screen ({:.1} s)",
            (at - 1_000) as f64 / 1000.0
        )
    );
}

#[test]
fn a_live_lease_means_waiting_for_the_owner() {
    let mut c = live_on_h1(0);
    c.send_input(b"ls\r");
    actions(&mut c);
    c.handle_close(1006, 1_000);
    let t = fail_attempts(&mut c, QUICK_RETRIES, 1_000);
    let report = one_fetch(&actions(&mut c));
    c.handle_http(report.id, ok(&retry_owner("h1", 8081, 1, 700)), t + 10);
    assert!(actions(&mut c).is_empty());
    assert_eq!(c.phase_name(), "backoff");
    assert_eq!(c.retry_at(), Some(t + 710));
    assert_eq!(
        c.stage(3_300),
        "waiting for h1 to come back (its lease is still live) (2.3 s)"
    );
    // Still down: reported again at once.
    c.handle_timeout(t + 710);
    assert_eq!(opens(&actions(&mut c)), vec![H1_WS.to_owned()]);
    c.handle_close(1006, t + 711);
    let again = one_fetch(&actions(&mut c));
    assert!(again.url.ends_with("/unreachable"));
    c.handle_http(again.id, ok(&retry_owner("h1", 8081, 1, 500)), t + 720);
    // Back: same epoch, so the input is resent, not lost.
    c.handle_timeout(t + 1_220);
    assert_eq!(opens(&actions(&mut c)), vec![H1_WS.to_owned()]);
    c.handle_open(t + 1_221);
    actions(&mut c);
    c.handle_message(&welcome("h1", S1, 1, 0, false), t + 1_225);
    let a = actions(&mut c);
    assert_eq!(inputs(&a), vec![(1, b"ls\r".to_vec())]);
    assert_eq!(c.undelivered(), 0);
}

#[test]
fn resent_input_is_never_doubled() {
    let mut c = live_on_h1(0);
    for k in [b"1", b"2", b"3"] {
        c.send_input(k);
    }
    let first: Vec<u64> = inputs(&actions(&mut c)).iter().map(|(s, _)| *s).collect();
    assert_eq!(first, vec![1, 2, 3]);
    c.handle_message(&msg_ack(1), 5);
    let mut sent_after = Vec::new();
    for (round, (input_seq, at)) in [(2, 1_000), (3, 5_000)].into_iter().enumerate() {
        c.handle_close(1006, at);
        let retry = c.retry_at().expect("retry");
        c.handle_timeout(retry);
        c.handle_open(retry);
        actions(&mut c);
        c.handle_message(&welcome("h1", S1, 1, input_seq, false), retry);
        sent_after.push(inputs(&actions(&mut c)));
        c.handle_message(&screen(10 + round as u64), retry);
    }
    // The first reattach resends 3 only; the second finds it applied.
    assert_eq!(sent_after, vec![vec![(3, b"3".to_vec())], vec![]]);
    c.handle_message(&msg_ack(3), 6_000);
    assert_eq!(c.pending_input(), 0);
}

#[test]
fn a_host_from_an_older_epoch_is_ignored_and_the_directory_asked() {
    let mut c = live_on_h1(0);
    c.handle_close(4008, 100);
    let place = one_fetch(&actions(&mut c));
    c.handle_http(place.id, ok(&placed(S1, "h2", 8082, 3, "tk3")), 110);
    actions(&mut c);
    c.handle_open(120);
    actions(&mut c);
    c.handle_message(&welcome("h2", S1, 3, 0, false), 130);
    c.handle_message(&screen(1), 131);
    actions(&mut c);
    c.handle_close(1006, 1_000);
    let retry = c.retry_at().expect("retry");
    c.handle_timeout(retry);
    c.handle_open(retry);
    actions(&mut c);
    // Something at h2's address answers for epoch 2: a fenced-off owner.
    assert!(
        c.handle_message(&welcome("h1", S1, 2, 0, false), retry + 1)
            .is_none()
    );
    assert!(c.handle_message(&screen(9), retry + 2).is_none());
    assert_eq!(c.epoch(), Some(3));
    let a = actions(&mut c);
    assert!(matches!(a.first(), Some(Action::Close { .. })), "{a:?}");
    let ask = one_fetch(&a);
    assert_eq!(ask.url, format!("{D1}/v1/placement"));
}

#[test]
fn draining_and_lost_hosts_send_the_client_to_placement() {
    for (code, words) in [
        (
            1001,
            "h1 is shutting down — asking the directory where to go (0.1 s)",
        ),
        (
            4008,
            "h1 no longer serves your session — asking the directory (0.1 s)",
        ),
    ] {
        let mut c = live_on_h1(0);
        c.send_input(b"w");
        actions(&mut c);
        c.handle_close(code, 1_000);
        let a = actions(&mut c);
        assert!(opens(&a).is_empty(), "no retry of a host that sent us away");
        let place = one_fetch(&a);
        assert_eq!(place.url, format!("{D1}/v1/placement"));
        assert_eq!(place.body, Some(format!("{{\"session\":\"{S1}\"}}")));
        assert_eq!(c.stage(1_100), words);
        c.handle_http(place.id, ok(&placed(S1, "h2", 8082, 2, "tk2")), 1_150);
        assert_eq!(opens(&actions(&mut c)), vec![H2_WS.to_owned()]);
        if code == 1001 {
            assert_eq!(
                c.stage(1_200),
                "h1 is shutting down — moving your session to h2 (0.2 s)"
            );
        } else {
            assert_eq!(c.stage(1_200), "moving your session to h2 (0.2 s)");
        }
        c.handle_open(1_210);
        actions(&mut c);
        c.handle_message(&welcome("h2", S1, 2, 0, false), 1_220);
        let lost = actions(&mut c)
            .into_iter()
            .find_map(|x| match x {
                Action::InputLost { notice, .. } => Some(notice),
                _ => None,
            })
            .expect("reported");
        assert!(
            lost.starts_with("1 keystroke was not delivered: "),
            "{lost}"
        );
    }
}

#[test]
fn a_silent_host_is_detected_by_the_heartbeat_and_reported_at_once() {
    let mut c = live_on_h1(0);
    let mut pings = 0;
    let mut now = 0;
    let mut last = Vec::new();
    while c.phase() == Phase::Live {
        now = c.poll_timeout().expect("heartbeat");
        c.handle_timeout(now);
        last = actions(&mut c);
        pings += last.iter().filter(|x| matches!(x, Action::Send(_))).count();
    }
    assert_eq!(now, HEARTBEAT_TIMEOUT_MS);
    assert_eq!(pings as u64, HEARTBEAT_TIMEOUT_MS / PING_INTERVAL_MS);
    // No quick retries: a stopped host's kernel still accepts connections,
    // so each retry would only wait out a connect timeout.
    assert_eq!(c.phase(), Phase::Locating);
    let report = one_fetch(&last);
    assert_eq!(report.url, format!("{D1}/v1/sessions/{S1}/unreachable"));
    assert!(
        c.stage(now).starts_with("h1 is not answering"),
        "{}",
        c.stage(now)
    );
}

#[test]
fn an_unknown_session_is_replaced_by_the_directory_pick_and_an_ended_one_closes() {
    let mut c = live_on_h1(0);
    c.send_input(b"u");
    actions(&mut c);
    c.handle_close(1006, 1_000);
    let t = fail_attempts(&mut c, QUICK_RETRIES, 1_000);
    let report = one_fetch(&actions(&mut c));
    c.handle_http(
        report.id,
        HttpOutcome::Response {
            status: 404,
            body: r#"{"error":"unknown session"}"#.into(),
        },
        t,
    );
    let place = one_fetch(&actions(&mut c));
    // The user's running session, or a new one: the directory picks.
    assert_eq!(place.body.as_deref(), Some("{}"));
    c.handle_http(place.id, ok(&placed(S2, "h2", 8082, 1, "tk")), t + 1);
    let a = actions(&mut c);
    assert!(a.contains(&Action::StoreSession(Some(S2))));
    c.handle_open(t + 2);
    assert_eq!(hello_session(&actions(&mut c)), Some(S2));
    c.handle_message(&welcome("h2", S2, 1, 0, true), t + 3);
    let a = actions(&mut c);
    assert!(a.contains(&Action::InputLost {
        messages: 1,
        notice: "1 keystroke was not delivered: the session was restarted".into()
    }));

    let mut c = live_on_h1(0);
    c.handle_close(1006, 1_000);
    let t = fail_attempts(&mut c, QUICK_RETRIES, 1_000);
    let report = one_fetch(&actions(&mut c));
    c.handle_http(
        report.id,
        HttpOutcome::Response {
            status: 409,
            body: r#"{"error":"session ended"}"#.into(),
        },
        t,
    );
    assert_eq!(c.phase(), Phase::Closed(ClosedBecause::SessionEnded));
    assert_eq!(actions(&mut c), vec![Action::StoreSession(None)]);
    assert_eq!(c.stage(t), "");
    // Enter asks the directory to start a new session.
    c.restart(t + 1);
    let place = one_fetch(&actions(&mut c));
    assert_eq!(place.body.as_deref(), Some(r#"{"new":true}"#));
}

#[test]
fn a_remembered_session_that_ended_gives_way_to_the_running_one() {
    let mut c = signed_in(SessionChoice::Remembered(S1), &[D1], 0, 3);
    let place = one_fetch(&actions(&mut c));
    c.handle_http(place.id, status(409, r#"{"error":"ended"}"#), 1);
    let pick = one_fetch(&actions(&mut c));
    assert_eq!(pick.body.as_deref(), Some("{}"));
    c.handle_http(pick.id, ok(&placed(S2, "h2", 8082, 4, "tk")), 2);
    let a = actions(&mut c);
    assert_eq!(
        a,
        vec![
            Action::StoreSession(Some(S2)),
            Action::Open(H2_WS.to_owned())
        ]
    );
    // Asked for by name, it is the user's to see that it ended.
    let mut c = signed_in(SessionChoice::Named(S1), &[D1], 0, 3);
    let place = one_fetch(&actions(&mut c));
    c.handle_http(place.id, status(409, r#"{"error":"ended"}"#), 1);
    assert_eq!(c.phase(), Phase::Closed(ClosedBecause::SessionEnded));
}

#[test]
fn a_live_session_touches_the_directory_only_to_renew_its_ticket() {
    let mut c = live_on_h1(0);
    let mut now = 0;
    let mut renewals = Vec::new();
    while now < 120_000 {
        now = c.poll_timeout().expect("heartbeat");
        c.handle_timeout(now);
        let a = actions(&mut c);
        for f in fetches(&a) {
            // A renewal naming the host and epoch it is attached at, so a
            // lapsed lease does not move the session under the page.
            assert_eq!(f.url, format!("{D1}/v1/sessions/{S1}/ticket"));
            assert_eq!(f.body.as_deref(), Some(r#"{"host":"h1","epoch":1}"#));
            renewals.push(now);
            let ticket = format!("tk-{now}");
            c.handle_http(f.id, ok(&placed(S1, "h1", 8081, 1, &ticket)), now + 5);
        }
        if a.iter().any(|x| matches!(x, Action::Send(_))) {
            let id = c.ping_id;
            c.handle_message(&encode_server(&ServerToClientMsg::Pong { id }), now + 1);
        }
    }
    assert_eq!(renewals, vec![30_000, 60_005, 90_010]);
    assert_eq!(c.phase(), Phase::Live);
    assert_eq!(c.directory_timeout(), None);
    // A blip after that reconnects with the latest ticket, without asking.
    c.handle_close(1006, now);
    let retry = c.retry_at().expect("quick retry");
    c.handle_timeout(retry);
    let a = actions(&mut c);
    assert!(fetches(&a).is_empty());
    c.handle_open(retry);
    let h = hello(&actions(&mut c)).expect("hello");
    assert_eq!(h.ticket, "tk-90010");
}

#[test]
fn each_request_is_answered_once() {
    let mut c = live_on_h1(0);
    c.handle_close(1006, 1_000);
    let t = fail_attempts(&mut c, QUICK_RETRIES, 1_000);
    let report = one_fetch(&actions(&mut c));
    c.handle_http(report.id, ok(&moved("h2", 8082, 2)), t + 5);
    assert_eq!(opens(&actions(&mut c)), vec![H2_WS.to_owned()]);
    // A duplicate (or forged late) answer to the same id is ignored.
    c.handle_http(report.id, ok(&moved("h3", 8083, 3)), t + 6);
    assert!(actions(&mut c).is_empty());
    assert_eq!(c.phase(), Phase::Connecting);
}

#[test]
fn a_host_that_is_down_at_page_load_is_reported_too() {
    let mut c = signed_in(SessionChoice::Remembered(S1), &[D1], 0, 9);
    let place = one_fetch(&actions(&mut c));
    c.handle_http(place.id, ok(&placed(S1, "h1", 8081, 1, "tk1")), 0);
    assert_eq!(c.stage(0), "", "a normal start shows nothing");
    actions(&mut c);
    c.handle_close(1006, 5);
    assert_eq!(c.stage(5), "h1 is not answering — retrying (0.0 s)");
    let t = fail_attempts(&mut c, QUICK_RETRIES, 5);
    let report = one_fetch(&actions(&mut c));
    assert_eq!(report.body.as_deref(), Some(r#"{"host":"h1","epoch":1}"#));
    assert!(
        c.stage(t)
            .starts_with("h1 is not answering — asking the directory (")
    );
    c.handle_http(report.id, ok(&moved("h2", 8082, 2)), t);
    assert_eq!(opens(&actions(&mut c)), vec![H2_WS.to_owned()]);
    assert!(c.stage(t).starts_with("connecting to h2 ("));
}

/// A page that asked for a new session and was given one whose host has
/// not started it yet (its first connect was slow, and the directory does
/// not know the session until the host records it) asks for a new session
/// again: asking for "any" would take over the user's other terminal.
#[test]
fn a_new_session_not_yet_started_is_never_swapped_for_another() {
    let mut c = signed_in(SessionChoice::New, &[D1], 0, 3);
    let place = one_fetch(&actions(&mut c));
    assert_eq!(place.body.as_deref(), Some(r#"{"new":true}"#));
    c.handle_http(place.id, ok(&placed(S1, "h1", 8081, 1, "tk")), 1);
    let mut t = 1;
    let again = loop {
        let a = actions(&mut c);
        if let Some(f) = fetches(&a).into_iter().next() {
            break f;
        }
        if !opens(&a).is_empty() {
            // The host never answers.
            c.handle_close(1006, t);
            continue;
        }
        t = c.poll_timeout().expect("a retry is due");
        assert!(t < 60_000, "the page never asked the directory again");
        c.handle_timeout(t);
    };
    // Whether it reports the host unreachable or asks for a placement, the
    // question names the session, which the directory does not know.
    assert!(
        again.url.contains(&S1.to_string())
            || again
                .body
                .as_deref()
                .is_some_and(|b| b.contains(&S1.to_string())),
        "the page asked about something else: {again:?}"
    );
    c.handle_http(
        again.id,
        status(404, r#"{"error":"unknown session"}"#),
        t + 1,
    );
    let next = one_fetch(&actions(&mut c));
    assert_eq!(
        next.body.as_deref(),
        Some(r#"{"new":true}"#),
        "asked for any session instead of a new one"
    );
}
