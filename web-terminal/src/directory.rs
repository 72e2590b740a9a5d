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

use std::collections::VecDeque;

use protocol::SessionId;

use crate::api::json_string;
use crate::connection::Action;
use crate::json::Json;

/// A replica that has not answered within this long is given up on.
pub const DIRECTORY_TIMEOUT_MS: u64 = 1_500;
/// First wait after a round in which every replica failed; doubles per
/// failed round up to `DIRECTORY_BACKOFF_MAX_MS`.
pub const DIRECTORY_BACKOFF_BASE_MS: u64 = 250;
pub const DIRECTORY_BACKOFF_MAX_MS: u64 = 5_000;

/// An HTTP request for the glue to make (with `fetch`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpRequest {
    /// Echoed back in `handle_http`; answers to other ids are stale.
    pub id: u64,
    pub method: &'static str,
    /// Absolute, or relative to the page for `/v1/config`.
    pub url: String,
    /// A JSON body, sent as `application/json`.
    pub body: Option<String>,
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

/// A question for the directory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Query {
    /// `GET /v1/config` from the page's own origin: is there a directory?
    Config,
    /// `POST /v1/placement`: where does this session live (or where should
    /// a new one start)?
    Placement { session: Option<SessionId> },
    /// `POST /v1/sessions/{id}/unreachable`: the owner does not answer.
    Unreachable {
        session: SessionId,
        host: String,
        epoch: Option<u64>,
    },
}

/// Where a session lives, as the directory says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Placement {
    /// The session to ask the host for; `None` starts a new one.
    pub session: Option<SessionId>,
    pub host: String,
    /// The host's WebSocket URL, derived from the HTTP URL it gave.
    pub ws_url: String,
    pub epoch: Option<u64>,
}

/// A directory answer that settles a query.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// The page's origin has no directory: use its own `/ws`.
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
    /// The directory has never heard of the session: start a new one.
    UnknownSession,
    /// The session's program has ended.
    SessionEnded,
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
    /// Only the page's own origin, to ask it for `/v1/config`.
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
            Query::Config => ("GET", "/v1/config".to_owned(), None),
            Query::Placement { session } => (
                "POST",
                "/v1/placement".to_owned(),
                Some(format!(
                    "{{\"session\":{}}}",
                    session.map_or_else(|| "null".to_owned(), |s| json_string(&s.to_string()))
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
        out.push_back(Action::Fetch(HttpRequest {
            id,
            method,
            url: format!("{base}{path}"),
            body,
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
        match interpret(&p.query, &outcome) {
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
        self.trouble = Some(trouble);
        if let Some(p) = &mut self.pending {
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

/// An answer to `query`, or why this replica failed.
fn interpret(query: &Query, outcome: &HttpOutcome) -> Result<Answer, Trouble> {
    let HttpOutcome::Response { status, body } = outcome else {
        return Err(Trouble::Unreachable);
    };
    let status = *status;
    let json = Json::parse(body);
    if let Query::Config = query {
        // A 404 or a page that is not JSON: a host serving itself, with no
        // directory in front. Only a server error means "try again".
        if status >= 500 {
            return Err(Trouble::Unreachable);
        }
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
        return Ok(if bases.is_empty() {
            Answer::NoDirectory
        } else {
            Answer::Directories(bases)
        });
    }
    let refusal = || match json
        .as_ref()
        .and_then(|j| j.get("error"))
        .and_then(Json::as_str)
    {
        Some(why) if status == 503 => Trouble::NoHost(why.to_owned()),
        _ => Trouble::Unreachable,
    };
    match (query, status) {
        (Query::Placement { .. }, 200) => json
            .as_ref()
            .and_then(placement)
            .map(Answer::Placed)
            .ok_or(Trouble::Unreachable),
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
        (Query::Unreachable { .. }, 404) => Ok(Answer::UnknownSession),
        (Query::Unreachable { .. }, 409) => Ok(Answer::SessionEnded),
        _ => Err(refusal()),
    }
}

/// The `host`, `url`, `session` and `epoch` members of an answer.
fn placement(j: &Json) -> Option<Placement> {
    let session = match j.get("session") {
        None | Some(Json::Null) => None,
        Some(s) => Some(s.as_str()?.parse().ok()?),
    };
    let epoch = match j.get("epoch") {
        None | Some(Json::Null) => None,
        Some(e) => Some(e.as_u64()?),
    };
    Some(Placement {
        session,
        host: j.get("host")?.as_str()?.to_owned(),
        ws_url: websocket_url(j.get("url")?.as_str()?)?,
        epoch,
    })
}

#[cfg(test)]
mod tests;
