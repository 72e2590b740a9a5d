//! The client's small JSON reader held to the directory's API types.
//!
//! The page reads the directory's answers with `json.rs` rather than serde
//! (page weight), so nothing at compile time ties what it reads to what the
//! directory writes. Here every answer variant is serialised with
//! `directory_api`'s types, exactly as the directory serialises it, and
//! the client must read each one into the right `Answer`; and what the
//! client sends must read back as the request types the directory parses.
//! Renaming a member on either side fails this test.

use std::collections::VecDeque;

use directory_api::{
    ClientConfig, EndAnswer, EndedState, ErrorAnswer, Me, Placement as PlacementAnswer,
    PlacementRequest, RenewalRequest, UnreachableAnswer, UnreachableRequest,
};
use protocol::SessionId;

use super::*;

/// An answer as the directory writes it. (A macro, not a generic
/// function: naming `Serialize` would take serde as a dependency of its
/// own, and only directory-api and serde_json are allowed here.)
macro_rules! wire {
    ($answer:expr) => {
        serde_json::to_string(&$answer).unwrap()
    };
}

const ID: SessionId = SessionId([0x3c; 16]);
const D1: &str = "http://127.0.0.1:8080";

/// The client's question, as it goes out, and what it makes of `answer`
/// with `status`.
fn ask(query: Query, status: u16, body: String) -> (HttpRequest, Progress, DirectoryClient) {
    let mut out = VecDeque::new();
    let mut client = DirectoryClient::new(vec![D1.into()], D1, 1, 1);
    client.ask(query, 0, &mut out);
    let request = match out.pop_front() {
        Some(Action::Fetch(request)) => request,
        other => panic!("the client asked nothing: {other:?}"),
    };
    let progress = client.handle_http(
        request.id,
        HttpOutcome::Response { status, body },
        1,
        &mut out,
    );
    (request, progress, client)
}

fn answered(query: Query, status: u16, body: String) -> Answer {
    match ask(query, status, body).1 {
        Progress::Answer(answer) => answer,
        other => panic!("no answer: {other:?}"),
    }
}

fn unreachable_query() -> Query {
    Query::Unreachable {
        session: ID,
        host: "h1".into(),
        epoch: Some(4),
    }
}

fn placement_answer() -> PlacementAnswer {
    PlacementAnswer {
        session: ID,
        host: "h2".into(),
        url: "https://h2.example.com:8443".into(),
        epoch: 5,
        ticket: "AQID-_x.sig".into(),
        ticket_expires_in_ms: 60_000,
    }
}

fn ticket() -> Ticket {
    Ticket {
        text: "AQID-_x.sig".into(),
        lifetime_ms: 60_000,
    }
}

#[test]
fn who_is_signed_in_and_the_replicas_are_read() {
    assert_eq!(
        answered(Query::Me, 200, wire!(Me { user: "ada".into() })),
        Answer::User("ada".into())
    );
    let replicas = vec![D1.to_owned(), "https://d2.example.com".to_owned()];
    assert_eq!(
        answered(
            Query::Config,
            200,
            wire!(ClientConfig {
                directories: replicas.clone()
            })
        ),
        Answer::Directories(replicas)
    );
    assert_eq!(
        answered(
            Query::Config,
            200,
            wire!(ClientConfig {
                directories: Vec::new()
            })
        ),
        Answer::NoDirectory
    );
}

#[test]
fn a_placement_is_read_with_its_session_host_epoch_and_ticket() {
    let query = Query::Placement {
        session: None,
        new: true,
    };
    assert_eq!(
        answered(query, 200, wire!(placement_answer())),
        Answer::Placed(Placement {
            session: Some(ID),
            host: "h2".into(),
            ws_url: "wss://h2.example.com:8443/ws".into(),
            epoch: Some(5),
            ticket: ticket(),
        })
    );
}

/// A renewal is answered with a placement's shape, and read as one.
#[test]
fn a_renewal_is_read_as_a_placement() {
    let query = Query::Renewal {
        session: ID,
        host: "h2".into(),
        epoch: 5,
    };
    assert_eq!(
        answered(query.clone(), 200, wire!(placement_answer())),
        Answer::Placed(Placement {
            session: Some(ID),
            host: "h2".into(),
            ws_url: "wss://h2.example.com:8443/ws".into(),
            epoch: Some(5),
            ticket: ticket(),
        })
    );
    assert_eq!(
        answered(
            query.clone(),
            404,
            wire!(ErrorAnswer {
                error: "you have no session".into()
            })
        ),
        Answer::UnknownSession
    );
    assert_eq!(
        answered(
            query,
            409,
            wire!(ErrorAnswer {
                error: "session has ended".into()
            })
        ),
        Answer::SessionEnded
    );
}

#[test]
fn both_unreachable_decisions_are_read() {
    let owner = Placement {
        session: None,
        host: "h1".into(),
        ws_url: "ws://127.0.0.1:8081/ws".into(),
        epoch: Some(4),
        ticket: ticket(),
    };
    let retry = UnreachableAnswer::RetryOwner {
        host: "h1".into(),
        url: "http://127.0.0.1:8081".into(),
        epoch: 4,
        retry_after_ms: 250,
        ticket: "AQID-_x.sig".into(),
        ticket_expires_in_ms: 60_000,
    };
    assert_eq!(
        answered(unreachable_query(), 200, wire!(retry)),
        Answer::RetryOwner {
            owner: owner.clone(),
            retry_after_ms: 250
        }
    );
    let moved = UnreachableAnswer::Moved {
        host: "h1".into(),
        url: "http://127.0.0.1:8081".into(),
        epoch: 4,
        ticket: "AQID-_x.sig".into(),
        ticket_expires_in_ms: 60_000,
    };
    assert_eq!(
        answered(unreachable_query(), 200, wire!(moved)),
        Answer::Moved(owner)
    );
}

#[test]
fn refusals_are_read_with_their_words() {
    let error = |words: &str| ErrorAnswer {
        error: words.into(),
    };
    let new = Query::Placement {
        session: None,
        new: true,
    };
    let named = Query::Placement {
        session: Some(ID),
        new: false,
    };
    assert_eq!(
        answered(
            new.clone(),
            429,
            wire!(error("you already run 10 sessions"))
        ),
        Answer::TooManySessions("you already run 10 sessions".into())
    );
    assert_eq!(
        answered(named.clone(), 404, wire!(error("you have no session"))),
        Answer::UnknownSession
    );
    assert_eq!(
        answered(unreachable_query(), 409, wire!(error("session has ended"))),
        Answer::SessionEnded
    );
    assert_eq!(
        answered(named, 401, wire!(error("not signed in; open /login"))),
        Answer::SignedOut {
            login: "/login".into()
        }
    );
    let (_, progress, client) = ask(new, 503, wire!(error("no healthy host is available")));
    assert_eq!(progress, Progress::RoundFailed);
    assert_eq!(
        client.trouble(),
        Some(&Trouble::NoHost("no healthy host is available".into()))
    );
}

#[test]
fn what_the_client_sends_is_what_the_directory_reads() {
    for (session, new) in [(None, false), (None, true), (Some(ID), false)] {
        let (request, ..) = ask(
            Query::Placement { session, new },
            200,
            wire!(placement_answer()),
        );
        let body = request.body.unwrap();
        let read: PlacementRequest = serde_json::from_str(&body).unwrap();
        assert_eq!(read, PlacementRequest { session, new }, "{body}");
    }
    let (request, ..) = ask(
        unreachable_query(),
        404,
        wire!(ErrorAnswer {
            error: String::new()
        }),
    );
    assert_eq!(request.url, format!("{D1}/v1/sessions/{ID}/unreachable"));
    let (renewal, ..) = ask(
        Query::Renewal {
            session: ID,
            host: "h-2.eu".into(),
            epoch: u64::MAX,
        },
        200,
        wire!(placement_answer()),
    );
    assert_eq!(renewal.url, format!("{D1}/v1/sessions/{ID}/ticket"));
    let read: RenewalRequest = serde_json::from_str(&renewal.body.unwrap()).unwrap();
    assert_eq!(
        read,
        RenewalRequest {
            host: "h-2.eu".into(),
            epoch: u64::MAX
        }
    );
    let read: UnreachableRequest = serde_json::from_str(&request.body.unwrap()).unwrap();
    assert_eq!(
        read,
        UnreachableRequest {
            host: "h1".into(),
            epoch: 4
        }
    );
}

/// The client never asks to end a session (the sessions page does), but
/// an end answer is a directory answer like the others: it must not be
/// taken for a placement by a confused replica.
#[test]
fn an_end_answer_places_nothing() {
    let ended = EndAnswer {
        session: ID,
        state: EndedState::Ended,
        epoch: 9,
    };
    let (_, progress, _) = ask(
        Query::Placement {
            session: Some(ID),
            new: false,
        },
        200,
        wire!(ended),
    );
    assert!(
        !matches!(progress, Progress::Answer(Answer::Placed(_))),
        "{progress:?}"
    );
}
