//! What the connection tests share: reading the queued actions, the
//! directory's answers as JSON, and a page walked through sign-in,
//! replicas and placement.

use protocol::{
    ClientToServerMsg, Hello, HistorySpan, ServerToClientMsg, SessionId, Size, Welcome,
    decode_client, decode_hello, encode_server,
};

use super::*;
use crate::directory::{HttpOutcome, HttpRequest};

pub const SIZE: Size = Size { cols: 80, rows: 24 };
pub const S1: SessionId = SessionId([1; 16]);
pub const S2: SessionId = SessionId([2; 16]);
/// The replica that served the page, and a peer.
pub const D1: &str = "http://127.0.0.1:8080";
pub const D2: &str = "http://127.0.0.1:8090";
pub const H1_WS: &str = "ws://127.0.0.1:8081/ws";
pub const H2_WS: &str = "ws://127.0.0.1:8082/ws";
pub const LIFETIME: u64 = 60_000;

pub fn actions(c: &mut Connection) -> Vec<Action> {
    std::iter::from_fn(|| c.poll_action()).collect()
}

pub fn fetches(a: &[Action]) -> Vec<HttpRequest> {
    a.iter()
        .filter_map(|x| match x {
            Action::Fetch(r) => Some(r.clone()),
            _ => None,
        })
        .collect()
}

/// The one request among the actions.
pub fn one_fetch(a: &[Action]) -> HttpRequest {
    let f = fetches(a);
    assert_eq!(f.len(), 1, "{a:?}");
    f[0].clone()
}

pub fn opens(a: &[Action]) -> Vec<String> {
    a.iter()
        .filter_map(|x| match x {
            Action::Open(url) => Some(url.clone()),
            _ => None,
        })
        .collect()
}

/// The client messages among the actions (hellos excluded).
pub fn sent(a: &[Action]) -> Vec<ClientToServerMsg> {
    a.iter()
        .filter_map(|x| match x {
            Action::Send(b) if !b.starts_with(b"TL") => decode_client(b).ok(),
            _ => None,
        })
        .collect()
}

pub fn inputs(a: &[Action]) -> Vec<(u64, Vec<u8>)> {
    sent(a)
        .into_iter()
        .filter_map(|m| match m {
            ClientToServerMsg::Input { seq, data } => Some((seq, data)),
            _ => None,
        })
        .collect()
}

pub fn hello(a: &[Action]) -> Option<Hello> {
    a.iter().find_map(|x| match x {
        Action::Send(b) if b.starts_with(b"TL") => decode_hello(b).ok(),
        _ => None,
    })
}

pub fn ok(body: &str) -> HttpOutcome {
    status(200, body)
}

pub fn status(status: u16, body: &str) -> HttpOutcome {
    HttpOutcome::Response {
        status,
        body: body.into(),
    }
}

/// A placement answer with ticket `ticket`, valid for `LIFETIME`, as the
/// directory writes it (from its own types).
pub fn placed(session: SessionId, host: &str, port: u16, epoch: u64, ticket: &str) -> String {
    directory_json(&directory_api::Placement {
        session,
        host: host.into(),
        url: format!("http://127.0.0.1:{port}"),
        epoch,
        ticket: ticket.into(),
        ticket_expires_in_ms: LIFETIME,
    })
}

/// The directory's decision that the session now lives on `host`.
pub fn moved(host: &str, port: u16, epoch: u64) -> String {
    directory_json(&directory_api::UnreachableAnswer::Moved {
        host: host.into(),
        url: format!("http://127.0.0.1:{port}"),
        epoch,
        ticket: format!("t-{host}-{epoch}"),
        ticket_expires_in_ms: LIFETIME,
    })
}

/// The directory's decision that the owner `host` is to be tried again
/// after `retry_after_ms`.
pub fn retry_owner(host: &str, port: u16, epoch: u64, retry_after_ms: u64) -> String {
    directory_json(&directory_api::UnreachableAnswer::RetryOwner {
        host: host.into(),
        url: format!("http://127.0.0.1:{port}"),
        epoch,
        retry_after_ms,
        ticket: format!("t-{host}-{epoch}"),
        ticket_expires_in_ms: LIFETIME,
    })
}

fn directory_json(answer: &impl serde::Serialize) -> String {
    serde_json::to_string(answer).expect("the directory's types serialise")
}

pub fn welcome(
    host: &str,
    session: SessionId,
    epoch: u64,
    input_seq: u64,
    created: bool,
) -> Vec<u8> {
    welcome_holding(
        host,
        session,
        epoch,
        input_seq,
        created,
        HistorySpan::default(),
    )
}

/// A welcome from a host that holds `history`.
pub fn welcome_holding(
    host: &str,
    session: SessionId,
    epoch: u64,
    input_seq: u64,
    created: bool,
    history: HistorySpan,
) -> Vec<u8> {
    encode_server(&ServerToClientMsg::Welcome(Welcome {
        session,
        host: host.into(),
        epoch,
        created,
        input_seq,
        history,
        role: protocol::Role::Owner,
    }))
}

pub fn msg(m: ServerToClientMsg) -> Vec<u8> {
    encode_server(&m)
}

/// Answers `/v1/me` (alice) and `/v1/config` (`replicas`) for a page served
/// by D1, leaving the placement request queued.
pub fn signed_in(choice: SessionChoice, replicas: &[&str], now: u64, seed: u64) -> Connection {
    let mut c = Connection::start(choice, SIZE, now, seed, D1.into());
    assert_eq!(c.phase(), Phase::Locating);
    let me = one_fetch(&actions(&mut c));
    assert_eq!(
        (me.method, me.url.as_str(), me.same_origin),
        ("GET", "/v1/me", true)
    );
    c.handle_http(me.id, ok(r#"{"user":"alice"}"#), now);
    assert_eq!(c.user(), Some("alice"));
    let config = one_fetch(&actions(&mut c));
    assert_eq!((config.method, config.url.as_str()), ("GET", "/v1/config"));
    let list: Vec<String> = replicas.iter().map(|r| format!("\"{r}\"")).collect();
    c.handle_http(
        config.id,
        ok(&format!(r#"{{"directories":[{}]}}"#, list.join(","))),
        now,
    );
    c
}

/// A page placed on h1 (session `session`, epoch 1, ticket "tk1") with
/// D1 as the only replica; the `Open` is still queued.
pub fn placed_on_h1(session: SessionId, now: u64, seed: u64) -> Connection {
    let mut c = signed_in(SessionChoice::Named(session), &[D1], now, seed);
    let place = one_fetch(&actions(&mut c));
    assert_eq!(place.url, format!("{D1}/v1/placement"));
    c.handle_http(place.id, ok(&placed(session, "h1", 8081, 1, "tk1")), now);
    c
}
