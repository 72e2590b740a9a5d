//! Tickets, sign-in and hot desking, driven by a fake clock: when a ticket
//! is renewed, what a refused one leads to, where a 401 sends the page, and
//! how a replaced session stays put until it is taken back.

use protocol::{CloseCode, ServerToClientMsg};

use super::testkit::*;
use super::*;
use crate::directory::HttpOutcome;

/// Live on S1 at h1 (epoch 1) since `now`, with ticket "tk1" good for
/// `lifetime` ms; actions drained.
fn live_with(lifetime: u64, now: u64) -> Connection {
    let mut c = signed_in(SessionChoice::Named(S1), &[D1, D2], now, 5);
    let place = one_fetch(&actions(&mut c));
    let body = placed(S1, "h1", 8081, 1, "tk1").replace(
        &format!("\"ticket_expires_in_ms\":{LIFETIME}"),
        &format!("\"ticket_expires_in_ms\":{lifetime}"),
    );
    c.handle_http(place.id, ok(&body), now);
    c.handle_open(now);
    c.handle_message(&welcome("h1", S1, 1, 0, false), now);
    actions(&mut c);
    assert_eq!(c.phase(), Phase::Live);
    c
}

/// Every replica is down: fails the requests among `a` and those their
/// failures lead to, until none is left in flight.
fn fail_all(c: &mut Connection, a: &[Action], now: u64) {
    let mut pending = fetches(a);
    while !pending.is_empty() {
        for f in pending {
            c.handle_http(f.id, HttpOutcome::Failed, now);
        }
        let more = actions(c);
        assert!(opens(&more).is_empty(), "{more:?}");
        pending = fetches(&more);
    }
}

#[test]
fn a_ticket_about_to_run_out_is_renewed_before_connecting() {
    // A short-lived ticket is renewed after half its life while live...
    let mut c = live_with(15_000, 0);
    assert_eq!(c.poll_timeout(), Some(PING_INTERVAL_MS));
    // ...but the socket drops first, with 9 s left: too little to connect.
    c.handle_close(1006, 6_000);
    let retry = c.retry_at().expect("quick retry");
    c.handle_timeout(retry);
    let a = actions(&mut c);
    assert!(opens(&a).is_empty(), "{a:?}");
    let renew = one_fetch(&a);
    assert_eq!(renew.body, Some(format!("{{\"session\":\"{S1}\"}}")));
    assert_eq!(c.phase(), Phase::Locating);
    c.handle_http(renew.id, ok(&placed(S1, "h1", 8081, 1, "tk2")), retry + 20);
    assert_eq!(opens(&actions(&mut c)), vec![H1_WS.to_owned()]);
    c.handle_open(retry + 30);
    assert_eq!(
        hello(&actions(&mut c)).map(|h| h.ticket),
        Some("tk2".into())
    );
}

#[test]
fn a_fresh_ticket_is_renewed_every_30_s_while_live_and_sooner_when_short() {
    let c = live_with(LIFETIME, 1_000);
    assert_eq!(c.refresh_due(), Some(1_000 + TICKET_REFRESH_MS));
    let c = live_with(20_000, 1_000);
    // 10 s before it runs out at the latest.
    assert_eq!(c.refresh_due(), Some(1_000 + 10_000));
    let c = live_with(4_000, 1_000);
    assert_eq!(c.refresh_due(), Some(1_000 + 2_000));
    // A directory that hands out nonsense does not make the page spin.
    let c = live_with(0, 1_000);
    assert_eq!(c.refresh_due(), Some(1_000 + 1_000));
}

#[test]
fn while_no_directory_answers_the_owner_is_tried_until_the_ticket_runs_out() {
    let mut c = live_with(LIFETIME, 0);
    let mut now = 0;
    // The renewal at 30 s finds every replica down, and keeps failing.
    while now < 52_000 {
        now = c.poll_timeout().expect("scheduled");
        c.handle_timeout(now);
        let a = actions(&mut c);
        fail_all(&mut c, &a, now);
        if a.iter().any(|x| matches!(x, Action::Send(_))) {
            let id = c.ping_id;
            let pong = protocol::encode_server(&ServerToClientMsg::Pong { id });
            c.handle_message(&pong, now + 1);
        }
    }
    assert!(c.dir.trouble().is_some());
    // The host drops with 8 s of ticket left: still worth a try.
    c.handle_close(1006, now);
    let mut tries = Vec::new();
    while now < 80_000 {
        now = c.poll_timeout().expect("scheduled");
        c.handle_timeout(now);
        let a = actions(&mut c);
        fail_all(&mut c, &a, now);
        if !opens(&a).is_empty() {
            tries.push(now);
            c.handle_open(now);
            assert_eq!(
                hello(&actions(&mut c)).map(|h| h.ticket),
                Some("tk1".into())
            );
            c.handle_close(1006, now + 1);
            let a = actions(&mut c);
            fail_all(&mut c, &a, now + 1);
        }
    }
    assert!(!tries.is_empty());
    // Never with a ticket that has run out: the host would refuse it.
    assert!(tries.iter().all(|t| *t < LIFETIME), "{tries:?}");
    assert_eq!(c.phase(), Phase::Locating);
    // The directory is back: a fresh ticket, and in.
    loop {
        now = c.poll_timeout().expect("the directory is asked again");
        c.handle_timeout(now);
        if let Some(f) = fetches(&actions(&mut c)).first() {
            c.handle_http(f.id, ok(&placed(S1, "h1", 8081, 1, "tk9")), now);
            break;
        }
    }
    assert_eq!(opens(&actions(&mut c)), vec![H1_WS.to_owned()]);
}

#[test]
fn a_refused_ticket_is_renewed_once_then_the_advice_is_shown() {
    let mut c = placed_on_h1(S1, 0, 1);
    actions(&mut c);
    c.handle_open(1);
    actions(&mut c);
    c.handle_close(CloseCode::Unauthorized.code(), 2);
    assert_eq!(c.phase(), Phase::Locating);
    let a = actions(&mut c);
    assert!(opens(&a).is_empty());
    let renew = one_fetch(&a);
    assert_eq!(renew.body, Some(format!("{{\"session\":\"{S1}\"}}")));
    assert_eq!(
        c.stage(2),
        "h1 refused the sign-in ticket — getting a new one (0.0 s)"
    );
    c.handle_http(renew.id, ok(&placed(S1, "h1", 8081, 2, "tk2")), 3);
    assert_eq!(opens(&actions(&mut c)), vec![H1_WS.to_owned()]);
    c.handle_open(4);
    assert_eq!(
        hello(&actions(&mut c)).map(|h| h.ticket),
        Some("tk2".into())
    );
    // Refused again: no loop, the user is told.
    c.handle_close(CloseCode::Unauthorized.code(), 5);
    assert_eq!(c.phase(), Phase::Closed(ClosedBecause::Unauthorized));
    assert_eq!(c.phase_name(), "closed");
    assert_eq!(c.error(), Some(CloseCode::Unauthorized.advice()));
    assert!(actions(&mut c).is_empty());
    assert_eq!(c.poll_timeout(), None);
    // Enter tries again from a fresh placement.
    c.restart(10);
    assert!(one_fetch(&actions(&mut c)).url.ends_with("/v1/placement"));
}

#[test]
fn a_welcome_earns_another_renewal_after_a_refusal() {
    let mut c = live_with(LIFETIME, 0);
    for round in 0..3u64 {
        let at = 1_000 * (round + 1);
        c.handle_close(CloseCode::Unauthorized.code(), at);
        let renew = one_fetch(&actions(&mut c));
        c.handle_http(renew.id, ok(&placed(S1, "h1", 8081, 1, "tk")), at);
        actions(&mut c);
        c.handle_open(at);
        c.handle_message(&welcome("h1", S1, 1, 0, false), at);
        actions(&mut c);
        assert_eq!(c.phase(), Phase::Live, "round {round}");
    }
}

#[test]
fn a_401_anywhere_sends_the_page_to_sign_in() {
    // At load.
    let mut c = Connection::start(SessionChoice::Any, SIZE, 0, 1, D1.into());
    let me = one_fetch(&actions(&mut c));
    c.handle_http(
        me.id,
        status(401, r#"{"error":"not signed in; open /login"}"#),
        1,
    );
    assert_eq!(c.phase(), Phase::Closed(ClosedBecause::SignedOut));
    assert_eq!(c.phase_name(), "signed_out");
    assert_eq!(actions(&mut c), vec![Action::SignIn("/login".into())]);
    assert_eq!(c.poll_timeout(), None);
    c.restart(2);
    assert!(actions(&mut c).is_empty(), "the page is leaving");

    // While live: signed out on another tab, found out by the renewal.
    let mut c = live_with(LIFETIME, 0);
    c.handle_timeout(TICKET_REFRESH_MS);
    let renew = one_fetch(&actions(&mut c));
    c.handle_http(renew.id, status(401, "{}"), TICKET_REFRESH_MS + 1);
    let a = actions(&mut c);
    assert!(matches!(a.first(), Some(Action::Close { .. })), "{a:?}");
    assert_eq!(a.last(), Some(&Action::SignIn("/login".into())));

    // From a peer replica of another origin (the page's own is down):
    // the peer never saw the page's cookie, so the live terminal stays
    // and the renewal is tried again later, at the page's own origin first.
    let mut c = live_with(LIFETIME, 0);
    c.handle_timeout(TICKET_REFRESH_MS);
    let renew = one_fetch(&actions(&mut c));
    assert!(renew.same_origin);
    c.handle_http(renew.id, HttpOutcome::Failed, TICKET_REFRESH_MS + 1);
    let peer = one_fetch(&actions(&mut c));
    assert_eq!(peer.url, format!("{D2}/v1/sessions/{S1}/ticket"));
    assert!(
        !peer.same_origin,
        "a peer is asked with credentials: include"
    );
    c.handle_http(peer.id, status(401, "{}"), TICKET_REFRESH_MS + 2);
    let after = actions(&mut c);
    assert!(
        !after
            .iter()
            .any(|a| matches!(a, Action::SignIn(_) | Action::Close { .. })),
        "a peer's 401 ended a live terminal: {after:?}"
    );
    assert_eq!(c.phase(), Phase::Live);
    let retry_at = c.poll_timeout().expect("the renewal is retried");
    c.handle_timeout(retry_at);
    let again = one_fetch(&actions(&mut c));
    assert!(again.same_origin, "asked again at the page's own origin");

    // Placing a session (not live) with the page's own directory down: the
    // peer's 401 is no news either; the page keeps asking, its own first.
    let mut c = Connection::start(SessionChoice::Any, SIZE, 0, 1, D1.into());
    let me = one_fetch(&actions(&mut c));
    c.handle_http(me.id, status(200, r#"{"user":"alice"}"#), 1);
    let config = one_fetch(&actions(&mut c));
    c.handle_http(
        config.id,
        status(200, &format!(r#"{{"directories":["{D1}","{D2}"]}}"#)),
        2,
    );
    let place = one_fetch(&actions(&mut c));
    c.handle_http(place.id, HttpOutcome::Failed, 3);
    let peer = one_fetch(&actions(&mut c));
    assert!(!peer.same_origin);
    c.handle_http(peer.id, status(401, "{}"), 4);
    let after = actions(&mut c);
    assert!(
        !after.iter().any(|a| matches!(a, Action::SignIn(_))),
        "a peer's 401 sent the page away: {after:?}"
    );
    let retry_at = c.poll_timeout().expect("the placement is retried");
    c.handle_timeout(retry_at);
    let again = one_fetch(&actions(&mut c));
    assert!(again.same_origin, "asked again at the page's own origin");
}

#[test]
fn a_replaced_session_stays_put_until_taken_back() {
    let mut c = live_with(LIFETIME, 0);
    c.send_input(b"ls");
    actions(&mut c);
    // The renewal is in flight when another terminal takes the session.
    c.handle_timeout(TICKET_REFRESH_MS);
    let renew = one_fetch(&actions(&mut c));
    c.handle_close(CloseCode::Replaced.code(), TICKET_REFRESH_MS + 1);
    assert_eq!(c.phase(), Phase::Closed(ClosedBecause::Replaced));
    assert_eq!(c.phase_name(), "replaced");
    assert_eq!(
        c.error(),
        Some("this session was opened on another terminal")
    );
    assert_eq!(c.stage(TICKET_REFRESH_MS + 1), "");
    let a = actions(&mut c);
    assert!(a.contains(&Action::CancelFetch(renew.id)), "{a:?}");
    assert!(a.contains(&Action::InputLost {
        messages: 1,
        notice: "1 keystroke may not have been delivered: the session was opened on another terminal"
            .into()
    }));
    // Nothing at all happens by itself, and Enter does not steal it back.
    assert_eq!(c.poll_timeout(), None);
    c.handle_timeout(1_000_000);
    c.handle_http(renew.id, ok(&placed(S1, "h1", 8081, 1, "late")), 1_000_000);
    c.restart(1_000_000);
    assert!(actions(&mut c).is_empty());
    assert!(!c.send_input(b"x"));

    // "Take it back": a fresh ticket (the old one would still do), then in.
    c.take_back(1_000_001);
    let place = one_fetch(&actions(&mut c));
    assert_eq!(place.body, Some(format!("{{\"session\":\"{S1}\"}}")));
    assert_eq!(c.phase_name(), "connecting");
    c.handle_http(
        place.id,
        ok(&placed(S1, "h1", 8081, 1, "tk-back")),
        1_000_002,
    );
    assert_eq!(opens(&actions(&mut c)), vec![H1_WS.to_owned()]);
    c.handle_open(1_000_003);
    assert_eq!(
        hello(&actions(&mut c)).map(|h| h.ticket),
        Some("tk-back".into())
    );
    // Same session: the screen keeps its scrollback; the other terminal
    // typed meanwhile, so numbering continues after its input.
    let d = c.handle_message(&welcome("h1", S1, 1, 7, false), 1_000_004);
    assert!(matches!(
        d,
        Some(Delivery::Welcome {
            same_session: true,
            ..
        })
    ));
    assert_eq!(c.error(), None);
    let a = actions(&mut c);
    assert!(inputs(&a).is_empty(), "held input is not replayed: {a:?}");
    c.send_input(b"y");
    assert_eq!(inputs(&actions(&mut c)), vec![(8, b"y".to_vec())]);
    // Take it back is only for a replaced session.
    c.take_back(1_000_005);
    assert!(fetches(&actions(&mut c)).is_empty());
}

#[test]
fn a_renewal_naming_another_host_or_epoch_is_not_used_here() {
    let mut c = live_with(LIFETIME, 0);
    c.handle_timeout(TICKET_REFRESH_MS);
    let renew = one_fetch(&actions(&mut c));
    c.handle_http(
        renew.id,
        ok(&placed(S1, "h2", 8082, 2, "tk-h2")),
        TICKET_REFRESH_MS,
    );
    // The live socket stays where it is.
    let a = actions(&mut c);
    assert!(a.is_empty(), "{a:?}");
    assert_eq!(c.phase(), Phase::Live);
    // A blip: the old ticket still has 30 s, and it is for h1.
    c.handle_close(1006, TICKET_REFRESH_MS + 10);
    let retry = c.retry_at().expect("quick retry");
    c.handle_timeout(retry);
    assert_eq!(opens(&actions(&mut c)), vec![H1_WS.to_owned()]);
    c.handle_open(retry);
    assert_eq!(
        hello(&actions(&mut c)).map(|h| h.ticket),
        Some("tk1".into())
    );
}

#[test]
fn a_session_ended_elsewhere_is_closed_here_on_renewal() {
    let mut c = live_with(LIFETIME, 0);
    c.handle_timeout(TICKET_REFRESH_MS);
    let renew = one_fetch(&actions(&mut c));
    c.handle_http(
        renew.id,
        status(409, r#"{"error":"ended"}"#),
        TICKET_REFRESH_MS,
    );
    assert_eq!(c.phase(), Phase::Closed(ClosedBecause::SessionEnded));
    let a = actions(&mut c);
    assert!(matches!(a.first(), Some(Action::Close { .. })), "{a:?}");
    assert!(a.contains(&Action::StoreSession(None)));
}

#[test]
fn too_many_sessions_is_shown_and_not_retried() {
    let mut c = signed_in(SessionChoice::New, &[D1], 0, 1);
    let place = one_fetch(&actions(&mut c));
    assert_eq!(place.body.as_deref(), Some(r#"{"new":true}"#));
    let words = "you already run 10 sessions, the most allowed; end one on /sessions";
    c.handle_http(
        place.id,
        status(429, &format!(r#"{{"error":"{words}"}}"#)),
        1,
    );
    assert_eq!(c.phase(), Phase::Closed(ClosedBecause::TooManySessions));
    assert_eq!(c.error(), Some(words));
    assert!(actions(&mut c).is_empty());
    assert_eq!(c.poll_timeout(), None);
    c.restart(2);
    let again = one_fetch(&actions(&mut c));
    assert_eq!(again.body.as_deref(), Some(r#"{"new":true}"#));
}

#[test]
fn too_many_connections_waits_for_the_user() {
    let mut c = live_with(LIFETIME, 0);
    c.handle_close(CloseCode::TooManyConnections.code(), 10);
    assert_eq!(
        c.phase(),
        Phase::Closed(ClosedBecause::Refused(CloseCode::TooManyConnections))
    );
    assert_eq!(c.error(), Some(CloseCode::TooManyConnections.advice()));
    assert!(actions(&mut c).is_empty());
    assert_eq!(c.poll_timeout(), None);
}

#[test]
fn a_renewal_that_crosses_a_drop_does_not_restart_the_reconnect() {
    let mut c = live_with(LIFETIME, 0);
    c.handle_timeout(TICKET_REFRESH_MS);
    let renew = one_fetch(&actions(&mut c));
    c.handle_close(1006, TICKET_REFRESH_MS + 1);
    let retry = c.retry_at().expect("quick retry");
    c.handle_timeout(retry);
    assert_eq!(opens(&actions(&mut c)), vec![H1_WS.to_owned()]);
    c.handle_open(retry + 1);
    assert_eq!(
        hello(&actions(&mut c)).map(|h| h.ticket),
        Some("tk1".into())
    );
    // The renewal answers now, for the same host and epoch.
    c.handle_http(renew.id, ok(&placed(S1, "h1", 8081, 1, "tk2")), retry + 2);
    assert!(actions(&mut c).is_empty(), "the handshake goes on");
    assert_eq!(c.phase(), Phase::Handshaking);
    c.handle_close(1006, retry + 3);
    let again = c.retry_at().expect("quick retry");
    c.handle_timeout(again);
    actions(&mut c);
    c.handle_open(again);
    assert_eq!(
        hello(&actions(&mut c)).map(|h| h.ticket),
        Some("tk2".into())
    );
}
