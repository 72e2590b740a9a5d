//! Asking the directory where a session lives, sans IO.
//!
//! The directory runs as several replicas, and any of them may be down
//! (promise 5: that must not disturb anyone). So a question is put to the
//! replica that answered last, then to the next one whenever one fails (a
//! network error, a 5xx, or no answer within `DIRECTORY_TIMEOUT_MS`), and
//! when every replica has failed the whole round is tried again after a
//! capped, jittered backoff. Like `connection`, this is a plain struct fed
//! the glue's HTTP outcomes and the time; it queues `Action::Fetch` and
//! `Action::CancelFetch`, and turns answers into typed `Answer`s.
//!
//! Every question travels with the user's sign-in cookie, and every answer
//! that places a session carries a `Ticket`: the directory's signed word
//! that this user may reach this session on this host at this epoch, for a
//! minute at most. A 401 from the page's own origin means the sign-in is
//! gone; a replica of another origin never sees the page's cookie, so its
//! 401 only counts as a replica that could not help (see `handle_http`).

use core::fmt;
use std::collections::VecDeque;

use protocol::SessionId;

use crate::action::Action;
pub use crate::action::{HttpOutcome, HttpRequest};
use crate::json::{Json, json_string};

/// A replica that has not answered within this long is given up on.
pub const DIRECTORY_TIMEOUT_MS: u64 = 1_500;
/// First wait after a round in which every replica failed; doubles per
/// failed round up to `DIRECTORY_BACKOFF_MAX_MS`.
pub const DIRECTORY_BACKOFF_BASE_MS: u64 = 250;
pub const DIRECTORY_BACKOFF_MAX_MS: u64 = 5_000;
/// No ticket lives longer than this (the directory's signer refuses to
/// sign longer ones); a longer promise in an answer is not believed.
pub const MAX_TICKET_LIFETIME_MS: u64 = 60_000;
/// A ticket's text is base64url of at most this many characters.
pub const MAX_TICKET_LEN: usize = 1024;

/// Directory answers are a few hundred bytes; a body far larger is not
/// one, and is not kept.
pub const MAX_ANSWER: usize = 64 * 1024;

impl HttpOutcome {
    /// A response with this status and body, as every glue reports it: a
    /// body over `MAX_ANSWER` is dropped, so the client reads it as no
    /// answer rather than holding it.
    pub fn answered(status: u16, body: String) -> HttpOutcome {
        let body = if body.len() > MAX_ANSWER {
            String::new()
        } else {
            body
        };
        HttpOutcome::Response { status, body }
    }
}

/// A question for the directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Query {
    /// `GET /v1/me` from the page's own origin: who is signed in?
    Me,
    /// `GET /v1/config` from the page's own origin: which replicas are there?
    Config,
    /// `POST /v1/placement`: where does this session live, with a fresh
    /// ticket for it? Without a session, `new` starts a new one and
    /// otherwise the directory picks the user's most recently active
    /// running session (hot desking), or starts one.
    Placement {
        session: Option<SessionId>,
        new: bool,
    },
    /// `POST /v1/sessions/{id}/ticket`: a fresh ticket for the host this
    /// live page is attached to, welcomed at `epoch`. Unlike a placement it
    /// never moves the session off that host, whatever its lease says.
    Renewal {
        session: SessionId,
        host: String,
        epoch: u64,
    },
    /// `POST /v1/sessions/{id}/unreachable`: the owner does not answer.
    Unreachable {
        session: SessionId,
        host: String,
        epoch: Option<u64>,
    },
}

/// The directory's signed permission to attach to one session on one host
/// at one epoch. Its text goes in the hello and nowhere else: never in a
/// URL, and `Debug` does not show it.
#[derive(Clone, PartialEq, Eq)]
pub struct Ticket {
    pub text: String,
    /// How long it is valid from when the answer arrived (at most
    /// `MAX_TICKET_LIFETIME_MS`).
    pub lifetime_ms: u64,
}

impl fmt::Debug for Ticket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "Ticket(<{} chars>, {} ms)",
            self.text.len(),
            self.lifetime_ms
        )
    }
}

/// Where a session lives, as the directory says, and the ticket to get in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    /// Always named by a placement (the directory mints new sessions' ids);
    /// an unreachable-owner decision leaves it out: it is the one asked about.
    pub session: Option<SessionId>,
    pub host: String,
    /// The host's WebSocket URL, derived from the HTTP URL it gave.
    pub ws_url: String,
    pub epoch: Option<u64>,
    pub ticket: Ticket,
}

/// A directory answer that settles a query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// `/v1/me`: the signed-in user's name.
    User(String),
    /// A replica answered 401: the sign-in has ended (or never was). The
    /// browser goes to `login`, the sign-in page of that replica.
    SignedOut {
        login: String,
    },
    /// `/v1/config` lists no replicas (or is not there): the page's own
    /// origin is the only directory.
    NoDirectory,
    /// The replicas, in the order the directory lists them.
    Directories(Vec<String>),
    Placed(Placement),
    /// The owner's lease is still live: try it again after a while.
    RetryOwner {
        owner: Placement,
        retry_after_ms: u64,
    },
    /// The session now lives elsewhere (at a higher epoch).
    Moved(Placement),
    /// The directory does not know the session, or it is not this user's
    /// (the two answer alike): ask for another.
    UnknownSession,
    /// The session's program has ended.
    SessionEnded,
    /// A new session would pass the user's cap (429), in the directory's
    /// words: the user must end one first.
    TooManySessions(String),
}

/// What a call into the client came to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Progress {
    Nothing,
    Answer(Answer),
    /// Every replica failed this round; the query will be retried.
    RoundFailed,
}

/// Why the last replica failed, for the user.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Trouble {
    /// No answer, or an error without words.
    Unreachable,
    /// The directory answered that it cannot place anything right now
    /// (503: no healthy host), with its reason.
    NoHost(String),
}

#[derive(Debug)]
struct Pending {
    query: Query,
    /// The replica being asked (an index into `bases`).
    dir: usize,
    /// Replicas that failed this round.
    failed: usize,
    /// What this round's failures said, the most telling kept.
    trouble: Option<Trouble>,
    /// The request in flight and when it is given up on; `None` while
    /// waiting out the backoff after a failed round.
    in_flight: Option<(u64, u64)>,
    retry_at: u64,
}

/// The directory replicas and the one question currently being asked.
#[derive(Debug)]
pub struct DirectoryClient {
    /// Base URLs without a trailing slash; `""` is the page's own origin.
    bases: Vec<String>,
    /// `scheme://host:port` of the page: a base equal to it is same-origin.
    page_origin: String,
    /// The replica that answered last, asked first next time.
    preferred: usize,
    pending: Option<Pending>,
    /// Rounds failed in a row; drives the backoff, reset by any answer.
    failed_rounds: u32,
    trouble: Option<Trouble>,
    next_id: u64,
    rng: u64,
}

impl DirectoryClient {
    /// Only the page's own origin, to ask it for `/v1/me` and `/v1/config`.
    pub fn page_origin(seed: u64) -> Self {
        Self::new(vec![String::new()], "", 1, seed)
    }

    /// The replicas from `/v1/config`. The one serving the page is asked
    /// first: it is known to be up and needs no cross-origin request.
    /// `first_id` keeps request ids unique across clients.
    pub fn new(bases: Vec<String>, page_origin: &str, first_id: u64, seed: u64) -> Self {
        let bases: Vec<String> = bases
            .into_iter()
            .map(|b| b.trim_end_matches('/').to_owned())
            .collect();
        let preferred = bases.iter().position(|b| b == page_origin).unwrap_or(0);
        DirectoryClient {
            bases,
            page_origin: page_origin.to_owned(),
            preferred,
            pending: None,
            failed_rounds: 0,
            trouble: None,
            next_id: first_id,
            rng: seed | 1,
        }
    }

    /// The replica questions go to first, or `None` for the page's origin.
    pub fn in_use(&self) -> Option<&str> {
        self.bases
            .get(self.preferred)
            .map(String::as_str)
            .filter(|b| !b.is_empty())
    }

    /// The id the next request will get; for a client that takes over.
    pub fn next_id(&self) -> u64 {
        self.next_id
    }

    pub fn query(&self) -> Option<&Query> {
        self.pending.as_ref().map(|p| &p.query)
    }

    /// Set while a query is pending and its last round failed entirely.
    pub fn trouble(&self) -> Option<&Trouble> {
        self.trouble.as_ref().filter(|_| self.pending.is_some())
    }

    /// Puts a question, replacing any pending one.
    pub fn ask(&mut self, query: Query, now: u64, out: &mut VecDeque<Action>) {
        self.cancel(out);
        self.pending = Some(Pending {
            query,
            dir: self.preferred,
            failed: 0,
            trouble: None,
            in_flight: None,
            retry_at: now,
        });
        self.send(now, out);
    }

    /// Forgets the pending question (the answer is no longer needed).
    pub fn cancel(&mut self, out: &mut VecDeque<Action>) {
        if let Some(Pending {
            in_flight: Some((id, _)),
            ..
        }) = self.pending.take()
        {
            out.push_back(Action::CancelFetch(id));
        }
        self.trouble = None;
    }

    fn send(&mut self, now: u64, out: &mut VecDeque<Action>) {
        let Some(p) = &mut self.pending else { return };
        let base = self.bases.get(p.dir).map_or("", String::as_str);
        let (method, path, body) = match &p.query {
            Query::Me => ("GET", "/v1/me".to_owned(), None),
            Query::Config => ("GET", "/v1/config".to_owned(), None),
            Query::Placement { session, new } => (
                "POST",
                "/v1/placement".to_owned(),
                Some(match (session, new) {
                    (Some(s), _) => format!("{{\"session\":{}}}", json_string(&s.to_string())),
                    (None, true) => "{\"new\":true}".to_owned(),
                    (None, false) => "{}".to_owned(),
                }),
            ),
            Query::Renewal {
                session,
                host,
                epoch,
            } => (
                "POST",
                format!("/v1/sessions/{session}/ticket"),
                Some(format!(
                    "{{\"host\":{},\"epoch\":{epoch}}}",
                    json_string(host)
                )),
            ),
            Query::Unreachable {
                session,
                host,
                epoch,
            } => (
                "POST",
                format!("/v1/sessions/{session}/unreachable"),
                Some(format!(
                    "{{\"host\":{},\"epoch\":{}}}",
                    json_string(host),
                    epoch.map_or_else(|| "null".to_owned(), |e| e.to_string())
                )),
            ),
        };
        let id = self.next_id;
        self.next_id += 1;
        p.in_flight = Some((id, now + DIRECTORY_TIMEOUT_MS));
        let same_origin = base.is_empty() || base == self.page_origin;
        out.push_back(Action::Fetch(HttpRequest {
            id,
            method,
            url: format!("{base}{path}"),
            body,
            same_origin,
        }));
    }

    /// When `handle_timeout` is next due.
    pub fn poll_timeout(&self) -> Option<u64> {
        let p = self.pending.as_ref()?;
        Some(p.in_flight.map_or(p.retry_at, |(_, deadline)| deadline))
    }

    pub fn handle_timeout(&mut self, now: u64, out: &mut VecDeque<Action>) -> Progress {
        let Some(p) = &mut self.pending else {
            return Progress::Nothing;
        };
        match p.in_flight {
            Some((id, deadline)) if now >= deadline => {
                out.push_back(Action::CancelFetch(id));
                self.replica_failed(Trouble::Unreachable, now, out)
            }
            None if now >= p.retry_at => {
                p.failed = 0;
                p.dir = self.preferred;
                self.send(now, out);
                Progress::Nothing
            }
            _ => Progress::Nothing,
        }
    }

    /// The glue's report on request `id`.
    pub fn handle_http(
        &mut self,
        id: u64,
        outcome: HttpOutcome,
        now: u64,
        out: &mut VecDeque<Action>,
    ) -> Progress {
        let Some(p) = &self.pending else {
            return Progress::Nothing;
        };
        if p.in_flight.map(|(i, _)| i) != Some(id) {
            // A request given up on, or from a question since replaced.
            return Progress::Nothing;
        }
        let base = self.bases.get(p.dir).map_or("", String::as_str);
        let own = base.is_empty() || base == self.page_origin;
        let login = if own {
            "/login".to_owned()
        } else {
            format!("{base}/login")
        };
        // A replica of another origin never gets the page's cookie (it is
        // host-only and SameSite=Strict), so its 401 says only that it
        // cannot vouch for us: a replica that could not help, like one that
        // is down. Leaving for its sign-in form would end a live terminal
        // (the page's own directory answering 503 during a store outage
        // sent it there) or a move the page's own directory is about to
        // place. Only the page's own origin can say the sign-in has ended.
        if !own && matches!(outcome, HttpOutcome::Response { status: 401, .. }) {
            return self.replica_failed(Trouble::Unreachable, now, out);
        }
        match interpret(&p.query, &outcome, login) {
            Ok(answer) => {
                self.preferred = p.dir;
                self.pending = None;
                self.failed_rounds = 0;
                self.trouble = None;
                Progress::Answer(answer)
            }
            Err(trouble) => self.replica_failed(trouble, now, out),
        }
    }

    fn replica_failed(
        &mut self,
        trouble: Trouble,
        now: u64,
        out: &mut VecDeque<Action>,
    ) -> Progress {
        let n = self.bases.len().max(1);
        let Some(p) = &mut self.pending else {
            return Progress::Nothing;
        };
        p.in_flight = None;
        p.failed += 1;
        // A replica's own words (503 "no healthy host...") say more than
        // another replica's silence: the round reports them.
        if matches!(trouble, Trouble::NoHost(_)) || p.trouble.is_none() {
            p.trouble = Some(trouble);
        }
        if p.failed < n {
            p.dir = (p.dir + 1) % n;
            self.send(now, out);
            // Keep showing the earlier round's trouble until this one ends.
            return Progress::Nothing;
        }
        let shift = self.failed_rounds.min(16);
        let cap = (DIRECTORY_BACKOFF_BASE_MS << shift).min(DIRECTORY_BACKOFF_MAX_MS);
        let delay = cap / 2 + self.random() % (cap / 2 + 1);
        self.failed_rounds = self.failed_rounds.saturating_add(1);
        if let Some(p) = &mut self.pending {
            self.trouble = p.trouble.take();
            p.retry_at = now + delay;
        }
        Progress::RoundFailed
    }

    fn random(&mut self) -> u64 {
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }
}

/// The WebSocket URL of a host from the HTTP URL the directory gives:
/// same host and port, `ws:` or `wss:`, path `/ws`.
pub fn websocket_url(http_url: &str) -> Option<String> {
    let (scheme, rest) = if let Some(rest) = http_url.strip_prefix("http://") {
        ("ws", rest)
    } else if let Some(rest) = http_url.strip_prefix("https://") {
        ("wss", rest)
    } else {
        return None;
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.is_empty() || authority.contains(['@', ' ']) {
        return None;
    }
    Some(format!("{scheme}://{authority}/ws"))
}

/// An answer to `query`, or why this replica failed. `login` is the
/// sign-in page of the replica that answered.
fn interpret(query: &Query, outcome: &HttpOutcome, login: String) -> Result<Answer, Trouble> {
    let HttpOutcome::Response { status, body } = outcome else {
        return Err(Trouble::Unreachable);
    };
    let status = *status;
    if status == 401 {
        return Ok(Answer::SignedOut { login });
    }
    let json = Json::parse(body);
    let words = || {
        json.as_ref()
            .and_then(|j| j.get("error"))
            .and_then(Json::as_str)
    };
    match (query, status) {
        (Query::Me, 200) => json
            .as_ref()
            .and_then(|j| j.get("user"))
            .and_then(Json::as_str)
            .filter(|u| !u.is_empty())
            .map(|u| Answer::User(u.to_owned()))
            .ok_or(Trouble::Unreachable),
        // A 404 or a page that is not JSON: an older directory without the
        // list; only a server error means "try again".
        (Query::Config, _) if status < 500 => {
            let bases: Vec<String> = json
                .as_ref()
                .filter(|_| status == 200)
                .and_then(|j| j.get("directories"))
                .and_then(Json::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Json::as_str)
                        .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default();
            Ok(if bases.is_empty() {
                Answer::NoDirectory
            } else {
                Answer::Directories(bases)
            })
        }
        (Query::Placement { .. } | Query::Renewal { .. }, 200) => json
            .as_ref()
            .and_then(placement)
            .filter(|p| p.session.is_some())
            .map(Answer::Placed)
            .ok_or(Trouble::Unreachable),
        (Query::Placement { .. }, 429) => Ok(Answer::TooManySessions(
            words()
                .unwrap_or("you run the most sessions allowed; end one on /sessions")
                .to_owned(),
        )),
        (Query::Unreachable { .. }, 200) => {
            let j = json.as_ref().ok_or(Trouble::Unreachable)?;
            let place = placement(j).ok_or(Trouble::Unreachable)?;
            match j.get("decision").and_then(Json::as_str) {
                Some("moved") => Ok(Answer::Moved(place)),
                Some("retry_owner") => Ok(Answer::RetryOwner {
                    owner: place,
                    retry_after_ms: j
                        .get("retry_after_ms")
                        .and_then(Json::as_u64)
                        .unwrap_or(500)
                        .min(60_000),
                }),
                _ => Err(Trouble::Unreachable),
            }
        }
        // About a named session only: a placement without one that
        // answers so is a confused replica, to be retried like a failed one.
        (
            Query::Placement {
                session: Some(_), ..
            }
            | Query::Renewal { .. }
            | Query::Unreachable { .. },
            404,
        ) => Ok(Answer::UnknownSession),
        (
            Query::Placement {
                session: Some(_), ..
            }
            | Query::Renewal { .. }
            | Query::Unreachable { .. },
            409,
        ) => Ok(Answer::SessionEnded),
        (_, 503) => {
            Err(words().map_or(Trouble::Unreachable, |why| Trouble::NoHost(why.to_owned())))
        }
        _ => Err(Trouble::Unreachable),
    }
}

/// The `host`, `url`, `session`, `epoch`, `ticket` and
/// `ticket_expires_in_ms` members of an answer.
fn placement(j: &Json) -> Option<Placement> {
    let session = match j.get("session") {
        None | Some(Json::Null) => None,
        Some(s) => Some(s.as_str()?.parse().ok()?),
    };
    let epoch = match j.get("epoch") {
        None | Some(Json::Null) => None,
        Some(e) => Some(e.as_u64()?),
    };
    let text = j.get("ticket")?.as_str()?;
    // base64url: anything else is not a ticket, and is not sent to a host.
    let plain = text
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'=' | b'+' | b'/' | b'.'));
    if text.is_empty() || text.len() > MAX_TICKET_LEN || !plain {
        return None;
    }
    let lifetime_ms = j.get("ticket_expires_in_ms")?.as_u64()?;
    Some(Placement {
        session,
        host: j.get("host")?.as_str()?.to_owned(),
        ws_url: websocket_url(j.get("url")?.as_str()?)?,
        epoch,
        ticket: Ticket {
            text: text.to_owned(),
            lifetime_ms: lifetime_ms.min(MAX_TICKET_LIFETIME_MS),
        },
    })
}

#[cfg(test)]
mod contract;
#[cfg(test)]
mod tests;
