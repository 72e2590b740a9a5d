//! What the sans-IO core asks of the glue, and what the glue reports back
//! of a request it made.
//!
//! Both the connection and the directory client queue `Action`s, so the
//! type sits below both of them rather than in either: the glue (the
//! browser's `web.rs`, or the tests' native page) carries them out in
//! order and answers a `Fetch` with an `HttpOutcome`.

use protocol::SessionId;

/// What the glue must do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Open a new WebSocket to this URL, forgetting any old one.
    Open(String),
    /// Send one binary message on the current socket.
    Send(Vec<u8>),
    /// Close the current socket with this code and reason.
    Close { code: u16, reason: &'static str },
    /// The page now shows this session: remember it for the next page load
    /// and put it in the address bar (`/?session=ID`); `None`: forget it.
    StoreSession(Option<SessionId>),
    /// The sign-in has ended: send the browser to this sign-in page.
    SignIn(String),
    /// Typed input that will never reach a program (or may not have): the
    /// session moved, was restarted or was taken over before the host
    /// acknowledged it. `notice` says so to the user.
    InputLost { messages: usize, notice: String },
    /// Make this HTTP request and report with `Connection::handle_http`.
    Fetch(HttpRequest),
    /// The answer to this request is no longer wanted: abort it.
    CancelFetch(u64),
}

/// An HTTP request for the glue to make (with `fetch`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpRequest {
    /// Echoed back in `handle_http`; answers to other ids are stale.
    pub id: u64,
    pub method: &'static str,
    /// Absolute, or relative to the page for `/v1/me` and `/v1/config`.
    pub url: String,
    /// A JSON body, sent as `application/json`.
    pub body: Option<String>,
    /// The request goes to the page's own origin: its cookie goes along
    /// with `credentials: "same-origin"`. A peer replica needs
    /// `credentials: "include"` (and answers CORS with credentials).
    pub same_origin: bool,
}

/// How an HTTP request ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HttpOutcome {
    Response {
        status: u16,
        body: String,
    },
    /// No response at all: refused, reset, CORS, aborted.
    Failed,
}
