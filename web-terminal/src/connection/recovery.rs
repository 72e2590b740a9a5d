//! The failover policy: what the connection does after a socket fails.
//!
//! Promises 1 to 3 and 5 meet here. A blip is healed by retrying the same
//! host quickly (`QUICK_RETRIES`); a host that stays silent is reported to
//! the directory, whose decision is followed (wait for the owner, or go
//! where the session was moved); a draining host or one that lost the
//! session sends the client straight to the directory; and while no
//! directory answers, the owner keeps being retried with a capped backoff,
//! so a directory outage never stands between a user and a live host (the
//! ticket renewed while live lets it in). Before all that, the page learns
//! who is signed in and which replicas there are. This is an
//! `impl Connection` beside `connection.rs` because it shares all of its
//! state; `Recovery` also holds what the overlay tells the user.

use protocol::Welcome;

use super::tickets::Readiness;
use super::{Cause, Connection, Phase};
use crate::directory::{Answer, DirectoryClient, HttpOutcome, Placement, Progress, Query, Trouble};

/// Retries of the same host after a drop before asking the directory. Two
/// (after ~100 and ~200 ms) heal a blip yet leave room for the 500 ms p50
/// failover target when the host is really gone.
pub const QUICK_RETRIES: u32 = 2;

/// The host sockets go to, as far as the client knows.
#[derive(Clone, Debug)]
pub(super) struct Target {
    pub(super) host: String,
    pub(super) ws_url: String,
    /// The owner's epoch, from its welcome or the directory; reported
    /// with `unreachable` so the directory can tell a stale report.
    pub(super) epoch: Option<u64>,
}

impl From<Placement> for Target {
    fn from(p: Placement) -> Self {
        Target {
            host: p.host,
            ws_url: p.ws_url,
            epoch: p.epoch,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Stage {
    Reconnecting,
    Asking,
    WaitingOwner,
    Moving {
        from: String,
        to: String,
    },
    /// Welcomed; the screen is on its way.
    Restoring,
}

/// The way back to a live screen, from its first failure to the first
/// frame of a new socket.
#[derive(Debug)]
pub(super) struct Recovery {
    since: u64,
    cause: Cause,
    stage: Stage,
}

impl Recovery {
    pub(super) fn starting(now: u64) -> Self {
        Recovery {
            since: now,
            cause: Cause::Starting,
            stage: Stage::Reconnecting,
        }
    }

    pub(super) fn after_drop(&self) -> bool {
        self.cause != Cause::Starting
    }
}

impl Connection {
    /// The overlay's words: the stage and how long it has taken so far, or
    /// empty while all is well (or closed: the closed advice says it all).
    pub fn stage(&self, now: u64) -> String {
        if matches!(self.phase, Phase::Closed(_)) {
            return String::new();
        }
        let Some(rec) = &self.recovery else {
            return String::new();
        };
        let words = self.stage_words(rec);
        if words.is_empty() {
            return words;
        }
        let secs = now.saturating_sub(rec.since) as f64 / 1000.0;
        format!("{words} ({} s)", crate::numbers::fixed(secs, 1))
    }

    fn stage_words(&self, rec: &Recovery) -> String {
        match self.dir.trouble() {
            Some(Trouble::NoHost(why)) => {
                return format!("no host can take your session ({why}) — retrying");
            }
            Some(Trouble::Unreachable) => return "no directory is reachable — retrying".into(),
            None => {}
        }
        let known = self
            .target
            .as_ref()
            .map(|t| t.host.as_str())
            .or(self.host.as_deref());
        let host = known.unwrap_or("the host");
        let starting = rec.cause == Cause::Starting;
        match (&rec.stage, rec.cause) {
            (Stage::Reconnecting, Cause::Starting) if self.attempt == 0 => String::new(),
            (Stage::Reconnecting, Cause::Starting) => format!("{host} is not answering — retrying"),
            (Stage::Reconnecting, Cause::Draining) => {
                format!("{host} is shutting down — reconnecting")
            }
            (Stage::Reconnecting, _) => match known {
                Some(h) => format!("connection lost — reconnecting to {h}"),
                None => "connection lost — reconnecting".into(),
            },
            (Stage::Asking, Cause::Dropped) => {
                format!("{host} is not answering — asking the directory")
            }
            // The host placed at page load does not answer.
            (Stage::Asking, Cause::Starting) if self.attempt > 0 && known.is_some() => {
                format!("{host} is not answering — asking the directory")
            }
            (Stage::Asking, Cause::Draining) => {
                format!("{host} is shutting down — asking the directory where to go")
            }
            (Stage::Asking, Cause::Lost | Cause::Stale) => {
                format!("{host} no longer serves your session — asking the directory")
            }
            (Stage::Asking, Cause::TicketRefused) => {
                format!("{host} refused the sign-in ticket — getting a new one")
            }
            (Stage::WaitingOwner, _) => {
                format!("waiting for {host} to come back (its lease is still live)")
            }
            (Stage::Moving { from, to }, Cause::Dropped) => {
                format!("{from} is down — moving your session to {to}")
            }
            (Stage::Moving { from, to }, Cause::Draining) => {
                format!("{from} is shutting down — moving your session to {to}")
            }
            (Stage::Moving { to, .. }, Cause::Lost | Cause::Stale | Cause::TicketRefused) => {
                format!("moving your session to {to}")
            }
            (Stage::Moving { to, .. }, Cause::Starting) => format!("connecting to {to}"),
            (Stage::Restoring, _) if !starting => {
                format!("{host} answered — restoring your screen")
            }
            _ => String::new(),
        }
    }

    /// The directory replica in use; `None` until `/v1/config` has
    /// answered.
    pub fn directory(&self) -> Option<&str> {
        if self.replicas_known {
            self.dir.in_use()
        } else {
            None
        }
    }

    fn set_stage(&mut self, stage: Stage) {
        if let Some(rec) = &mut self.recovery {
            rec.stage = stage;
        }
    }

    /// Finds the way to a host from scratch: who is signed in and the
    /// replicas first if still unknown, then a placement with a ticket.
    pub(super) fn locate(&mut self, now: u64) {
        self.set_phase(Phase::Locating, now);
        if !self.replicas_known {
            let query = if self.user.is_none() {
                Query::Me
            } else {
                Query::Config
            };
            self.ask(query, now);
            return;
        }
        self.set_stage(Stage::Asking);
        let query = self.placement_query();
        self.ask(query, now);
    }

    /// A placement of the chosen session, a new one, or the user's pick.
    pub(super) fn placement_query(&self) -> Query {
        Query::Placement {
            session: self.session,
            new: self.session.is_none() && self.new_session,
        }
    }

    /// Opens a socket to the current target if the ticket held will get
    /// in; otherwise a fresh ticket comes first. While no directory answers,
    /// a ticket that has not run out is still tried (promise 5).
    pub(super) fn open(&mut self, now: u64) {
        match self.ticket_readiness(now) {
            Readiness::Ready => self.open_now(now),
            Readiness::Stale if self.dir.trouble().is_some() => self.open_now(now),
            Readiness::Stale | Readiness::Missing => self.refresh_ticket(now),
        }
    }

    /// Opens a socket to the current target with the ticket held.
    fn open_now(&mut self, now: u64) {
        let Some(target) = &self.target else {
            self.locate(now);
            return;
        };
        let url = target.ws_url.clone();
        self.set_phase(Phase::Connecting, now);
        self.actions.push_back(super::Action::Open(url));
    }

    pub(super) fn ask(&mut self, query: Query, now: u64) {
        self.dir.ask(query, now, &mut self.actions);
    }

    pub(super) fn forget_directory_question(&mut self) {
        self.dir.cancel(&mut self.actions);
    }

    /// The socket failed (or was given up on) for this reason.
    pub(super) fn socket_failed(&mut self, cause: Cause, now: u64) {
        let rec = self.recovery.get_or_insert(Recovery {
            since: now,
            cause,
            stage: Stage::Reconnecting,
        });
        // "Go elsewhere" outweighs "dropped"; a failing first connect stays
        // a start.
        if cause != Cause::Dropped {
            rec.cause = cause;
        }
        let asking = self.dir.query().is_some();
        let directory_down = self.dir.trouble().is_some();
        match cause {
            Cause::Dropped | Cause::Starting if self.attempt < QUICK_RETRIES => {
                self.set_stage(Stage::Reconnecting);
                self.enter_backoff(now);
            }
            Cause::Dropped | Cause::Starting if asking => self.meanwhile(directory_down, now),
            Cause::Dropped | Cause::Starting => {
                self.set_stage(Stage::Asking);
                self.set_phase(Phase::Locating, now);
                // The target's epoch is the latest known: from its welcome,
                // or from the placement if none came yet.
                let query = match (self.session, &self.target) {
                    (Some(session), Some(t)) => Query::Unreachable {
                        session,
                        host: t.host.clone(),
                        epoch: t.epoch.or(self.epoch),
                    },
                    _ => self.placement_query(),
                };
                self.ask(query, now);
            }
            Cause::Draining | Cause::Lost | Cause::Stale | Cause::TicketRefused => {
                self.set_stage(Stage::Asking);
                self.set_phase(Phase::Locating, now);
                let query = self.placement_query();
                self.ask(query, now);
            }
        }
    }

    /// While a question to the directory is out: wait for its answer, or,
    /// when no replica answers, keep trying the owner with the ticket held
    /// (promise 5).
    fn meanwhile(&mut self, directory_down: bool, now: u64) {
        let can_connect = self.ticket_readiness(now) != Readiness::Missing;
        if directory_down && self.target.is_some() && can_connect {
            self.enter_backoff(now);
        } else {
            self.set_phase(Phase::Locating, now);
        }
    }

    /// The glue's report on an HTTP request it made for `Action::Fetch`.
    pub fn handle_http(&mut self, id: u64, outcome: HttpOutcome, now: u64) {
        let progress = self.dir.handle_http(id, outcome, now, &mut self.actions);
        self.directory_progress(progress, now);
    }

    pub(super) fn directory_timeout(&self) -> Option<u64> {
        self.dir.poll_timeout()
    }

    pub(super) fn directory_timer(&mut self, now: u64) {
        let progress = self.dir.handle_timeout(now, &mut self.actions);
        self.directory_progress(progress, now);
    }

    fn directory_progress(&mut self, progress: Progress, now: u64) {
        match progress {
            Progress::Nothing => {}
            Progress::RoundFailed => {
                if self.phase == Phase::Locating {
                    self.meanwhile(true, now);
                }
            }
            Progress::Answer(answer) => self.follow(answer, now),
        }
    }

    /// Acts on the directory's answer.
    fn follow(&mut self, answer: Answer, now: u64) {
        match self.phase {
            _ if matches!(answer, Answer::SignedOut { .. }) => {}
            // Settled meanwhile; the question is moot.
            Phase::Closed(_) => return,
            Phase::Live => return self.follow_while_live(answer, now),
            _ => {}
        }
        match answer {
            Answer::SignedOut { login } => self.signed_out(login, now),
            Answer::User(name) => {
                self.user = Some(name);
                self.ask(Query::Config, now);
            }
            Answer::NoDirectory => {
                let only = vec![self.page_origin.clone()];
                self.use_replicas(only, now);
            }
            Answer::Directories(bases) => self.use_replicas(bases, now),
            Answer::Placed(p) => {
                if let Some(session) = p.session {
                    self.choose(session);
                }
                self.go_to(p, now);
            }
            Answer::Moved(p) => self.go_to(p, now),
            Answer::RetryOwner {
                owner,
                retry_after_ms,
            } => {
                let same = self.target.as_ref().map(|t| &t.ws_url) == Some(&owner.ws_url);
                self.take_ticket(owner.ticket.clone(), now);
                self.target = Some(owner.into());
                self.set_stage(Stage::WaitingOwner);
                // One more failure of the owner is reported again.
                self.attempt = QUICK_RETRIES;
                let trying = matches!(self.phase, Phase::Connecting | Phase::Handshaking);
                if !(same && trying) {
                    if trying {
                        self.close_socket("the directory says to wait for the owner");
                    }
                    self.set_phase(Phase::Backoff, now);
                    self.retry_at = now + retry_after_ms;
                }
            }
            Answer::UnknownSession => self.pick_another(now),
            // A session this browser only remembered may have ended since:
            // the user's running one will do (hot desking).
            Answer::SessionEnded if self.remembered => self.pick_another(now),
            Answer::SessionEnded => {
                self.close_if_open("the directory says the session has ended");
                self.session_ended(now);
            }
            Answer::TooManySessions(words) => {
                self.close_if_open("the directory refused a new session");
                self.error = Some(words);
                self.stop(super::ClosedBecause::TooManySessions, now);
            }
        }
    }

    /// An answer to the ticket renewal of a live connection. Only a ticket
    /// for the very host and epoch in use is kept: the live socket is not
    /// moved, and a reconnect with a mismatched ticket would be refused.
    fn follow_while_live(&mut self, answer: Answer, now: u64) {
        match answer {
            Answer::Placed(p) | Answer::Moved(p) | Answer::RetryOwner { owner: p, .. } => {
                let here = self.target.as_ref().is_some_and(|t| t.ws_url == p.ws_url)
                    && p.session.is_none_or(|s| self.session == Some(s))
                    && p.epoch.is_none_or(|e| self.epoch == Some(e));
                if here {
                    self.take_ticket(p.ticket, now);
                }
            }
            // Ended on the sessions page, say; the host may not have hung
            // up yet.
            Answer::SessionEnded => {
                self.close_if_open("the directory says the session has ended");
                self.session_ended(now);
            }
            _ => {}
        }
    }

    /// `/v1/config` answered: from now on, questions go to these replicas.
    fn use_replicas(&mut self, bases: Vec<String>, now: u64) {
        self.dir = DirectoryClient::new(bases, &self.page_origin, self.dir.next_id(), self.rng);
        self.replicas_known = true;
        self.locate(now);
    }

    /// Connects to where the directory placed the session.
    fn go_to(&mut self, place: Placement, now: u64) {
        let trying = matches!(self.phase, Phase::Connecting | Phase::Handshaking);
        let same = self
            .target
            .as_ref()
            .is_some_and(|t| t.ws_url == place.ws_url && t.epoch == place.epoch);
        if trying && same {
            // Already on the way there (a renewal that crossed a drop): the
            // socket goes on, and the new ticket serves the next one.
            self.take_ticket(place.ticket, now);
            return;
        }
        let from = self
            .target
            .as_ref()
            .map(|t| t.host.clone())
            .or_else(|| self.host.clone());
        let stage = match from {
            Some(from) if from != place.host => Stage::Moving {
                from,
                to: place.host.clone(),
            },
            _ => Stage::Reconnecting,
        };
        self.set_stage(stage);
        if trying {
            self.close_socket("the session lives elsewhere");
        }
        self.take_ticket(place.ticket.clone(), now);
        self.target = Some(place.into());
        self.attempt = 0;
        // Just issued: no need to look at how long it has left.
        self.open_now(now);
    }

    /// A welcome was accepted: the directory's help is no longer needed.
    pub(super) fn welcomed(&mut self, welcome: &Welcome) {
        if let Some(t) = &mut self.target {
            t.host.clone_from(&welcome.host);
            t.epoch = Some(welcome.epoch);
        }
        self.ticket_retried = false;
        self.forget_directory_question();
        self.set_stage(Stage::Restoring);
    }

    /// What the user is told about `messages` inputs that the welcome
    /// shows will never be applied.
    pub(super) fn undelivered_notice(&self, messages: usize, welcome: &Welcome) -> String {
        let count = if messages == 1 {
            "1 keystroke was".to_owned()
        } else {
            format!("{messages} keystrokes were")
        };
        let old = self.host.as_deref().unwrap_or("the host");
        let cause = self.recovery.as_ref().map_or(Cause::Dropped, |r| r.cause);
        let why = if self.attached != Some(welcome.session) || welcome.created {
            "the session was restarted".to_owned()
        } else {
            match cause {
                Cause::Draining => format!("{old} shut down before it received them"),
                Cause::Lost | Cause::Stale => format!("the session moved away from {old}"),
                Cause::Dropped | Cause::Starting | Cause::TicketRefused => {
                    format!("{old} was lost")
                }
            }
        };
        format!("{count} not delivered: {why}")
    }
}
