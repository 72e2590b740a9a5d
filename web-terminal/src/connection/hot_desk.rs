//! Which session the page shows, and hot desking.
//!
//! A user has one running session they come back to from any browser
//! (DESIGN.md promise 6). So the page asks for the session its address
//! names, else the one this browser last showed, else lets the directory
//! pick the user's most recently active one; an id only remembered here
//! gives way quietly when that session has ended. Opening the session on
//! another terminal replaces this one (close 4005): retrying would only
//! take it straight back and start a tug of war, so nothing is retried
//! until the user asks for it back. This is an `impl Connection` beside
//! `connection.rs` because it shares its state.

use protocol::{CloseCode, SessionId};

use super::{Action, ClosedBecause, Connection, Phase};

/// Which session the page asks for when it loads (`from_page`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionChoice {
    /// `?session=ID`: this one, and no other.
    Named(SessionId),
    /// `?new=1`: a new session.
    New,
    /// The session this browser last showed (localStorage): if the
    /// directory no longer runs it, the user's running one will do.
    Remembered(SessionId),
    /// Whatever the user runs (the directory picks the most recently
    /// active: hot desking), or a new one.
    Any,
}

impl SessionChoice {
    /// From the page's query string (`location.search`, with or without
    /// its `?`) and the session id this browser remembered: `session=ID`
    /// first, then `new=1`, then the remembered id, else any. An id that is
    /// not 32 hex digits is ignored.
    pub fn from_page(search: &str, remembered: Option<&str>) -> Self {
        let mut named = None;
        let mut new = false;
        for pair in search.trim_start_matches('?').split('&') {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            match key {
                "session" => named = named.or_else(|| value.parse().ok()),
                "new" => new |= matches!(value, "1" | "true"),
                _ => {}
            }
        }
        match (named, new, remembered.and_then(|r| r.parse().ok())) {
            (Some(id), _, _) => SessionChoice::Named(id),
            (None, true, _) => SessionChoice::New,
            (None, false, Some(id)) => SessionChoice::Remembered(id),
            (None, false, None) => SessionChoice::Any,
        }
    }
}

impl Connection {
    /// Hot desking: the session was attached from another terminal (4005).
    /// Retrying would take it straight back, so nothing is retried until
    /// the user says so with `take_back`.
    pub(super) fn replaced(&mut self, now: u64) {
        self.error = Some(CloseCode::Replaced.advice().to_owned());
        self.stop(ClosedBecause::Replaced, now);
        // The other terminal may have typed since: numbers held here could
        // name its input by the time this one is back, so held input is
        // not resent.
        let messages = self.input.drop_all();
        if messages > 0 {
            self.undelivered += messages as u64;
            let count = if messages == 1 {
                "1 keystroke".to_owned()
            } else {
                format!("{messages} keystrokes")
            };
            self.actions.push_back(Action::InputLost {
                messages,
                notice: format!(
                    "{count} may not have been delivered: the session was opened on another terminal"
                ),
            });
        }
    }

    /// "Take it back": attach the replaced session here again with a fresh
    /// ticket, which replaces the other terminal in turn.
    pub fn take_back(&mut self, now: u64) {
        if self.phase == Phase::Closed(ClosedBecause::Replaced) {
            self.reconnect(now);
        }
    }

    /// The directory named the session this page shows from now on.
    /// A page that asked for a new session keeps asking for a new one if
    /// this one turns out unknown (its host never started it): picking the
    /// user's running session instead would take over another terminal.
    pub(super) fn choose(&mut self, session: SessionId) {
        self.session = Some(session);
        self.remembered = false;
        if self.announced != Some(session) {
            self.announced = Some(session);
            self.actions.push_back(Action::StoreSession(Some(session)));
        }
    }

    /// The session asked for is not there (or not this user's): the
    /// directory picks the user's running session, or starts one.
    pub(super) fn pick_another(&mut self, now: u64) {
        self.session = None;
        self.remembered = false;
        self.ticket = None;
        let query = self.placement_query();
        self.ask(query, now);
    }
}
