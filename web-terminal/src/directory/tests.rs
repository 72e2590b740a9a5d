//! The directory client's rotation, timeouts, backoff and answers, with a
//! fake clock.

use std::collections::VecDeque;

use protocol::SessionId;

use super::*;

const S1: SessionId = SessionId([0xab; 16]);
const D1: &str = "http://127.0.0.1:8080";
const D2: &str = "http://127.0.0.1:8090";

/// Two replicas; the page was served by D1.
fn two() -> DirectoryClient {
    DirectoryClient::new(vec![D1.into(), format!("{D2}/")], D1, 10, 3)
}

fn any() -> Query {
    Query::Placement {
        session: None,
        new: false,
    }
}

fn named(session: SessionId) -> Query {
    Query::Placement {
        session: Some(session),
        new: false,
    }
}

/// The one answer to `query` from a lone replica D1 serving the page.
fn answer(query: Query, outcome: HttpOutcome) -> Progress {
    let mut out = VecDeque::new();
    let mut d = DirectoryClient::new(vec![D1.into()], D1, 1, 1);
    d.ask(query, 0, &mut out);
    let id = fetches(&mut out)[0].id;
    d.handle_http(id, outcome, 1, &mut out)
}

fn fetches(out: &mut VecDeque<Action>) -> Vec<HttpRequest> {
    out.drain(..)
        .filter_map(|a| match a {
            Action::Fetch(r) => Some(r),
            _ => None,
        })
        .collect()
}

fn ok(body: &str) -> HttpOutcome {
    HttpOutcome::Response {
        status: 200,
        body: body.into(),
    }
}

fn status(status: u16, body: &str) -> HttpOutcome {
    HttpOutcome::Response {
        status,
        body: body.into(),
    }
}

const PLACED: &str = r#"{"session":"abababababababababababababababab","host":"h2","url":"http://127.0.0.1:8082","epoch":1,"ticket":"AQID-_x","ticket_expires_in_ms":60000}"#;

fn ticket(text: &str) -> Ticket {
    Ticket {
        text: text.into(),
        lifetime_ms: 60_000,
    }
}

#[test]
fn websocket_urls_follow_the_http_url() {
    assert_eq!(
        websocket_url("http://127.0.0.1:8082").as_deref(),
        Some("ws://127.0.0.1:8082/ws")
    );
    assert_eq!(
        websocket_url("https://h3.example/app/").as_deref(),
        Some("wss://h3.example/ws")
    );
    assert_eq!(
        websocket_url("http://127.0.0.1:81/").as_deref(),
        Some("ws://127.0.0.1:81/ws")
    );
    assert_eq!(
        websocket_url("https://h.example").as_deref(),
        Some("wss://h.example/ws")
    );
    assert_eq!(websocket_url("ftp://x"), None);
    assert_eq!(websocket_url("http://"), None);
    assert_eq!(websocket_url("http://user@evil"), None);
}

#[test]
fn requests_carry_the_right_method_path_and_body() {
    let mut out = VecDeque::new();
    let mut d = two();
    d.ask(named(S1), 0, &mut out);
    let r = fetches(&mut out);
    assert_eq!(
        r,
        vec![HttpRequest {
            id: 10,
            method: "POST",
            url: format!("{D1}/v1/placement"),
            body: Some(format!("{{\"session\":\"{S1}\"}}")),
            same_origin: true,
        }]
    );
    d.ask(any(), 0, &mut out);
    let a: Vec<Action> = out.drain(..).collect();
    assert_eq!(a[0], Action::CancelFetch(10));
    assert!(matches!(&a[1], Action::Fetch(r) if r.body.as_deref() == Some("{}")));
    d.ask(
        Query::Placement {
            session: None,
            new: true,
        },
        0,
        &mut out,
    );
    let r = fetches(&mut out);
    assert_eq!(r[0].body.as_deref(), Some(r#"{"new":true}"#));
    d.ask(
        Query::Unreachable {
            session: S1,
            host: "h2".into(),
            epoch: Some(3),
        },
        0,
        &mut out,
    );
    let r = fetches(&mut out);
    assert_eq!(r[0].url, format!("{D1}/v1/sessions/{S1}/unreachable"));
    assert_eq!(r[0].body.as_deref(), Some("{\"host\":\"h2\",\"epoch\":3}"));
    let mut c = DirectoryClient::page_origin(1);
    c.ask(Query::Config, 0, &mut out);
    let r = fetches(&mut out);
    assert_eq!((r[0].method, r[0].url.as_str()), ("GET", "/v1/config"));
    assert_eq!((r[0].body.as_deref(), r[0].same_origin), (None, true));
    assert_eq!(c.in_use(), None);
    c.ask(Query::Me, 0, &mut out);
    let r = fetches(&mut out);
    assert_eq!((r[0].method, r[0].url.as_str()), ("GET", "/v1/me"));
}

#[test]
fn only_the_page_origin_is_asked_same_origin() {
    let mut out = VecDeque::new();
    let mut d = two();
    d.ask(any(), 0, &mut out);
    let first = fetches(&mut out)[0].clone();
    assert!(first.same_origin);
    d.handle_http(first.id, HttpOutcome::Failed, 1, &mut out);
    let second = fetches(&mut out)[0].clone();
    assert!(second.url.starts_with(D2));
    assert!(!second.same_origin);
}

#[test]
fn the_replica_serving_the_page_is_asked_first() {
    let d = DirectoryClient::new(vec![D1.into(), D2.into()], D2, 1, 1);
    assert_eq!(d.in_use(), Some(D2));
}

#[test]
fn config_lists_the_replicas_or_leaves_the_page_origin_alone() {
    let cases = [
        (
            ok(r#"{"directories":["http://a:1","http://b:2"]}"#),
            Some(Answer::Directories(vec![
                "http://a:1".into(),
                "http://b:2".into(),
            ])),
        ),
        (
            ok("<!doctype html><title>Thinline</title>"),
            Some(Answer::NoDirectory),
        ),
        (status(404, "not found"), Some(Answer::NoDirectory)),
        (ok(r#"{"directories":[]}"#), Some(Answer::NoDirectory)),
        (status(502, ""), None),
        (HttpOutcome::Failed, None),
    ];
    for (outcome, want) in cases {
        let mut out = VecDeque::new();
        let mut c = DirectoryClient::page_origin(1);
        c.ask(Query::Config, 0, &mut out);
        let id = fetches(&mut out)[0].id;
        let got = c.handle_http(id, outcome.clone(), 5, &mut out);
        match want {
            Some(answer) => assert_eq!(got, Progress::Answer(answer), "{outcome:?}"),
            None => {
                assert_eq!(got, Progress::RoundFailed, "{outcome:?}");
                assert_eq!(c.trouble(), Some(&Trouble::Unreachable));
            }
        }
    }
}

#[test]
fn a_failing_replica_hands_over_to_the_next() {
    let mut out = VecDeque::new();
    let mut d = two();
    d.ask(any(), 0, &mut out);
    let first = fetches(&mut out)[0].clone();
    assert_eq!(
        d.handle_http(first.id, HttpOutcome::Failed, 3, &mut out),
        Progress::Nothing
    );
    let second = fetches(&mut out)[0].clone();
    assert_eq!(second.url, format!("{D2}/v1/placement"));
    assert_eq!(d.trouble(), None, "one replica down is no trouble yet");
    // A late answer to the abandoned request is ignored.
    assert_eq!(
        d.handle_http(first.id, ok(PLACED), 4, &mut out),
        Progress::Nothing
    );
    let got = d.handle_http(second.id, ok(PLACED), 5, &mut out);
    let Progress::Answer(Answer::Placed(p)) = got else {
        panic!("{got:?}")
    };
    assert_eq!(
        (p.host.as_str(), p.ws_url.as_str()),
        ("h2", "ws://127.0.0.1:8082/ws")
    );
    assert_eq!((p.session, p.epoch), (Some(S1), Some(1)));
    assert_eq!(p.ticket, ticket("AQID-_x"));
    // The replica that answered is asked first from now on.
    assert_eq!(d.in_use(), Some(D2));
    d.ask(any(), 10, &mut out);
    assert_eq!(fetches(&mut out)[0].url, format!("{D2}/v1/placement"));
}

#[test]
fn silence_is_a_failure_after_the_timeout() {
    let mut out = VecDeque::new();
    let mut d = two();
    d.ask(any(), 100, &mut out);
    let first = fetches(&mut out)[0].id;
    assert_eq!(d.poll_timeout(), Some(100 + DIRECTORY_TIMEOUT_MS));
    d.handle_timeout(100 + DIRECTORY_TIMEOUT_MS - 1, &mut out);
    assert!(out.is_empty());
    d.handle_timeout(100 + DIRECTORY_TIMEOUT_MS, &mut out);
    let a: Vec<Action> = out.drain(..).collect();
    assert_eq!(a[0], Action::CancelFetch(first));
    assert!(matches!(&a[1], Action::Fetch(r) if r.url.starts_with(D2)));
}

#[test]
fn all_down_backs_off_with_a_cap_then_recovers() {
    let mut out = VecDeque::new();
    let mut d = two();
    d.ask(named(S1), 0, &mut out);
    let mut now = 0;
    let mut waits = vec![];
    for round in 0..8 {
        for replica in 0..2 {
            let r = fetches(&mut out);
            assert_eq!(r.len(), 1, "round {round} replica {replica}");
            let p = d.handle_http(r[0].id, status(500, ""), now, &mut out);
            assert_eq!(p == Progress::RoundFailed, replica == 1);
        }
        assert_eq!(d.trouble(), Some(&Trouble::Unreachable));
        let at = d.poll_timeout().expect("retry");
        waits.push(at - now);
        d.handle_timeout(at - 1, &mut out);
        assert!(out.is_empty());
        now = at;
        d.handle_timeout(now, &mut out);
    }
    let caps = [250, 500, 1000, 2000, 4000, 5000, 5000, 5000];
    for (w, cap) in waits.iter().zip(caps) {
        assert!(*w >= cap / 2 && *w <= cap, "{waits:?}");
    }
    let r = fetches(&mut out);
    let got = d.handle_http(r[0].id, ok(PLACED), now, &mut out);
    assert!(matches!(got, Progress::Answer(Answer::Placed(_))));
    assert_eq!(d.trouble(), None);
}

#[test]
fn no_healthy_host_is_told_in_the_directory_words() {
    let mut out = VecDeque::new();
    let mut d = DirectoryClient::new(vec![D1.into()], "", 1, 1);
    d.ask(any(), 0, &mut out);
    let r = fetches(&mut out);
    let p = d.handle_http(
        r[0].id,
        status(503, r#"{"error":"no healthy host"}"#),
        1,
        &mut out,
    );
    assert_eq!(p, Progress::RoundFailed);
    assert_eq!(
        d.trouble(),
        Some(&Trouble::NoHost("no healthy host".into()))
    );
}

#[test]
fn failover_decisions_are_read() {
    let q = Query::Unreachable {
        session: S1,
        host: "h2".into(),
        epoch: Some(3),
    };
    let cases = [
        (
            ok(
                r#"{"decision":"retry_owner","host":"h2","url":"http://127.0.0.1:8082","epoch":3,"retry_after_ms":700,"ticket":"t1","ticket_expires_in_ms":60000}"#,
            ),
            Some(Answer::RetryOwner {
                owner: Placement {
                    session: None,
                    host: "h2".into(),
                    ws_url: "ws://127.0.0.1:8082/ws".into(),
                    epoch: Some(3),
                    ticket: ticket("t1"),
                },
                retry_after_ms: 700,
            }),
        ),
        (
            ok(&format!(
                r#"{{"decision":"moved","session":"{S1}","host":"h3","url":"http://127.0.0.1:8083","epoch":4,"ticket":"t2","ticket_expires_in_ms":900000}}"#
            )),
            // A lifetime beyond what any signer signs is not believed.
            Some(Answer::Moved(Placement {
                session: Some(S1),
                host: "h3".into(),
                ws_url: "ws://127.0.0.1:8083/ws".into(),
                epoch: Some(4),
                ticket: ticket("t2"),
            })),
        ),
        (
            status(404, r#"{"error":"unknown session"}"#),
            Some(Answer::UnknownSession),
        ),
        (
            status(409, r#"{"error":"session ended"}"#),
            Some(Answer::SessionEnded),
        ),
        (
            ok(r#"{"decision":"shrug","host":"h2","url":"http://x:1"}"#),
            None,
        ),
        (
            ok(r#"{"decision":"moved","host":"h3","url":"gopher://x"}"#),
            None,
        ),
        (
            ok(
                r#"{"decision":"moved","host":"h3","url":"http://x:1","epoch":-1,"ticket":"t","ticket_expires_in_ms":1}"#,
            ),
            None,
        ),
        // Without a ticket there is nothing to greet the host with.
        (
            ok(r#"{"decision":"moved","host":"h3","url":"http://x:1","epoch":4}"#),
            None,
        ),
        (ok("not json"), None),
    ];
    for (outcome, want) in cases {
        let mut out = VecDeque::new();
        let mut d = DirectoryClient::new(vec![D1.into()], "", 1, 1);
        d.ask(q.clone(), 0, &mut out);
        let id = fetches(&mut out)[0].id;
        let got = d.handle_http(id, outcome.clone(), 1, &mut out);
        match want {
            Some(a) => assert_eq!(got, Progress::Answer(a), "{outcome:?}"),
            None => assert_eq!(got, Progress::RoundFailed, "{outcome:?}"),
        }
    }
}

#[test]
fn who_is_signed_in_is_read() {
    assert_eq!(
        answer(Query::Me, ok(r#"{"user":"alice"}"#)),
        Progress::Answer(Answer::User("alice".into()))
    );
    for bad in [ok(r#"{"user":""}"#), ok("{}"), status(500, "")] {
        assert_eq!(
            answer(Query::Me, bad.clone()),
            Progress::RoundFailed,
            "{bad:?}"
        );
    }
}

#[test]
fn a_401_from_any_question_means_signed_out_at_that_replica() {
    for query in [Query::Me, Query::Config, any(), named(S1)] {
        assert_eq!(
            answer(
                query.clone(),
                status(401, r#"{"error":"not signed in; open /login"}"#)
            ),
            Progress::Answer(Answer::SignedOut {
                login: "/login".into()
            }),
            "{query:?}"
        );
    }
}

#[test]
fn a_401_from_a_replica_of_another_origin_is_a_replica_that_could_not_help() {
    // It never got the page's cookie: nothing is known about the sign-in.
    let mut out = VecDeque::new();
    let mut d = two();
    d.ask(any(), 0, &mut out);
    let first = fetches(&mut out)[0].id;
    d.handle_http(
        first,
        status(503, r#"{"error":"no healthy host is available"}"#),
        1,
        &mut out,
    );
    let second = fetches(&mut out)[0].id;
    assert_eq!(
        d.handle_http(second, status(401, ""), 2, &mut out),
        Progress::RoundFailed
    );
    assert_eq!(
        d.trouble(),
        Some(&Trouble::NoHost("no healthy host is available".into())),
        "the page's own directory's words are what the round says"
    );
}

#[test]
fn placement_refusals_are_read() {
    assert_eq!(
        answer(
            any(),
            status(
                429,
                r#"{"error":"you already run 3 sessions, the most allowed; end one on /sessions"}"#
            )
        ),
        Progress::Answer(Answer::TooManySessions(
            "you already run 3 sessions, the most allowed; end one on /sessions".into()
        ))
    );
    assert_eq!(
        answer(named(S1), status(404, "{}")),
        Progress::Answer(Answer::UnknownSession)
    );
    assert_eq!(
        answer(named(S1), status(409, "{}")),
        Progress::Answer(Answer::SessionEnded)
    );
    // Without a session named, those answers make no sense: try another.
    assert_eq!(answer(any(), status(404, "{}")), Progress::RoundFailed);
    assert_eq!(answer(any(), status(409, "{}")), Progress::RoundFailed);
    // A placement must name the session: the hello needs it.
    assert_eq!(
        answer(
            any(),
            ok(&PLACED.replace(r#""session":"abababababababababababababababab","#, ""))
        ),
        Progress::RoundFailed
    );
}

#[test]
fn tickets_are_checked_before_they_are_kept() {
    let with = |ticket: &str, lifetime: &str| {
        PLACED
            .replace("\"AQID-_x\"", ticket)
            .replace("60000", lifetime)
    };
    let long = format!("\"{}\"", "A".repeat(MAX_TICKET_LEN + 1));
    for (ticket, lifetime) in [
        ("\"\"", "60000"),
        ("\"a b\"", "60000"),
        ("\"a\\nb\"", "60000"),
        ("\"a;b\"", "60000"),
        ("17", "60000"),
        ("null", "60000"),
        (long.as_str(), "60000"),
        ("\"ok\"", "-1"),
        ("\"ok\"", "\"60000\""),
        ("\"ok\"", "null"),
    ] {
        let body = with(ticket, lifetime);
        assert_eq!(answer(any(), ok(&body)), Progress::RoundFailed, "{body}");
    }
    let Progress::Answer(Answer::Placed(p)) = answer(any(), ok(&with("\"ok\"", "1500"))) else {
        panic!("a good placement")
    };
    assert_eq!(p.ticket.lifetime_ms, 1_500);
    // Never shown by Debug: it is a credential.
    assert!(!format!("{p:?}").contains("AQID"));
    assert!(!format!("{:?}", ticket("secret-ticket")).contains("secret"));
}

#[test]
fn an_oversized_answer_is_read_as_no_answer() {
    let huge = format!("{{\"user\":\"{}\"}}", "a".repeat(MAX_ANSWER));
    assert_eq!(
        HttpOutcome::answered(200, huge),
        HttpOutcome::Response {
            status: 200,
            body: String::new()
        }
    );
    let small = r#"{"user":"ada"}"#;
    assert_eq!(HttpOutcome::answered(200, small.into()), ok(small));
    // The body dropped, `/v1/me` gets nothing it can read: a failed replica.
    assert_eq!(
        answer(
            Query::Me,
            HttpOutcome::answered(200, "x".repeat(MAX_ANSWER + 1))
        ),
        Progress::RoundFailed
    );
}
