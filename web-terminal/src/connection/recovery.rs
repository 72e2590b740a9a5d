//! The failover policy: what the connection does after a socket fails.
//!
//! Promises 1 to 3 and 5 meet here. A blip is healed by retrying the same
//! host quickly (`QUICK_RETRIES`); a host that stays silent is reported to
//! the directory, whose decision is followed (wait for the owner, or go
//! where the session was moved); a draining host or one that lost the
//! session sends the client straight to the directory; and while no
//! directory answers, the owner keeps being retried with a capped backoff,
//! so a directory outage never stands between a user and a live host.
//! This is an `impl Connection` beside `connection.rs` because it shares all
//! of its state; `Recovery` also holds what the overlay tells the user.

use protocol::Welcome;

use super::{Action, Connection, Phase};
use crate::directory::{Answer, DirectoryClient, HttpOutcome, Placement, Progress, Query, Trouble};

/// Retries of the same host after a drop before asking the directory. Two
/// (after ~100 and ~200 ms) heal a blip yet leave room for the 500 ms p50
/// failover target when the host is really gone.
pub const QUICK_RETRIES: u32 = 2;

/// How the client finds its host.
#[derive(Debug)]
pub(super) enum Route {
    /// Waiting for `/v1/config` from the page's origin.
    Discovering {
        config: DirectoryClient,
        page_origin: String,
    },
    /// No directory: the host that served the page is the only one.
    Single,
    Directory(DirectoryClient),
}

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

/// Why the client is (re)connecting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Cause {
    /// The page just loaded, or the user asked to reconnect.
    Starting,
    /// The socket dropped or went silent.
    Dropped,
    /// The host is draining (1001).
    Draining,
    /// The host no longer owns the session (4008).
    Lost,
    /// A host answered with an epoch older than one already seen.
    Stale,
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
        format!("{words} ({secs:.1} s)")
    }

    fn stage_words(&self, rec: &Recovery) -> String {
        match self.directory_client().and_then(DirectoryClient::trouble) {
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
            (Stage::WaitingOwner, _) => {
                format!("waiting for {host} to come back (its lease is still live)")
            }
            (Stage::Moving { from, to }, Cause::Dropped) => {
                format!("{from} is down — moving your session to {to}")
            }
            (Stage::Moving { from, to }, Cause::Draining) => {
                format!("{from} is shutting down — moving your session to {to}")
            }
            (Stage::Moving { to, .. }, Cause::Lost | Cause::Stale) => {
                format!("moving your session to {to}")
            }
            (Stage::Moving { to, .. }, Cause::Starting) => format!("connecting to {to}"),
            (Stage::Restoring, _) if !starting => {
                format!("{host} answered — restoring your screen")
            }
            _ => String::new(),
        }
    }

    fn directory_client(&self) -> Option<&DirectoryClient> {
        match &self.route {
            Route::Discovering { config, .. } => Some(config),
            Route::Directory(dir) => Some(dir),
            Route::Single => None,
        }
    }

    /// The directory replica in use; `None` without a directory.
    pub fn directory(&self) -> Option<&str> {
        match &self.route {
            Route::Directory(dir) => dir.in_use(),
            _ => None,
        }
    }

    fn set_stage(&mut self, stage: Stage) {
        if let Some(rec) = &mut self.recovery {
            rec.stage = stage;
        }
    }

    /// Finds the way to a host from scratch: the page's own host, the
    /// config, or a placement.
    pub(super) fn locate(&mut self, now: u64) {
        match &self.route {
            Route::Single => self.open(now),
            Route::Discovering { .. } => {
                self.set_phase(Phase::Locating, now);
                self.ask(Query::Config, now);
            }
            Route::Directory(_) => {
                self.set_phase(Phase::Locating, now);
                self.set_stage(Stage::Asking);
                let session = self.session;
                self.ask(Query::Placement { session }, now);
            }
        }
    }

    /// Opens a socket to the current target.
    pub(super) fn open(&mut self, now: u64) {
        self.set_phase(Phase::Connecting, now);
        let url = self.target.as_ref().map(|t| t.ws_url.clone());
        self.actions.push_back(Action::Open(url));
    }

    fn ask(&mut self, query: Query, now: u64) {
        if let Route::Discovering { config: dir, .. } | Route::Directory(dir) = &mut self.route {
            dir.ask(query, now, &mut self.actions);
        }
    }

    pub(super) fn forget_directory_question(&mut self) {
        if let Route::Discovering { config: dir, .. } | Route::Directory(dir) = &mut self.route {
            dir.cancel(&mut self.actions);
        }
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
        let Route::Directory(dir) = &self.route else {
            self.set_stage(Stage::Reconnecting);
            self.enter_backoff(now);
            return;
        };
        let asking = dir.query().is_some();
        let directory_down = dir.trouble().is_some();
        match cause {
            Cause::Dropped | Cause::Starting if self.attempt < QUICK_RETRIES => {
                self.set_stage(Stage::Reconnecting);
                self.enter_backoff(now);
            }
            Cause::Dropped | Cause::Starting if asking => self.meanwhile(directory_down, now),
            Cause::Dropped | Cause::Starting => {
                self.set_stage(Stage::Asking);
                self.set_phase(Phase::Locating, now);
                let query = match (self.session, &self.target) {
                    (Some(session), Some(t)) => Query::Unreachable {
                        session,
                        host: t.host.clone(),
                        epoch: self.epoch.or(t.epoch),
                    },
                    (session, _) => Query::Placement { session },
                };
                self.ask(query, now);
            }
            Cause::Draining | Cause::Lost | Cause::Stale => {
                self.set_stage(Stage::Asking);
                self.set_phase(Phase::Locating, now);
                let session = self.session;
                self.ask(Query::Placement { session }, now);
            }
        }
    }

    /// While a question to the directory is out: wait for its answer, or,
    /// when no replica answers, keep trying the owner (promise 5).
    fn meanwhile(&mut self, directory_down: bool, now: u64) {
        if directory_down && self.target.is_some() {
            self.enter_backoff(now);
        } else {
            self.set_phase(Phase::Locating, now);
        }
    }

    /// The glue's report on an HTTP request it made for `Action::Fetch`.
    pub fn handle_http(&mut self, id: u64, outcome: HttpOutcome, now: u64) {
        let progress = match &mut self.route {
            Route::Discovering { config: dir, .. } | Route::Directory(dir) => {
                dir.handle_http(id, outcome, now, &mut self.actions)
            }
            Route::Single => return,
        };
        self.directory_progress(progress, now);
    }

    pub(super) fn directory_timeout(&self) -> Option<u64> {
        self.directory_client()
            .and_then(DirectoryClient::poll_timeout)
    }

    pub(super) fn directory_timer(&mut self, now: u64) {
        let progress = match &mut self.route {
            Route::Discovering { config: dir, .. } | Route::Directory(dir) => {
                dir.handle_timeout(now, &mut self.actions)
            }
            Route::Single => return,
        };
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
        if matches!(self.phase, Phase::Live | Phase::Closed(_)) {
            // Settled meanwhile; the question is moot.
            return;
        }
        match answer {
            Answer::NoDirectory => {
                self.route = Route::Single;
                self.open(now);
            }
            Answer::Directories(bases) => {
                let Route::Discovering {
                    config,
                    page_origin,
                } = &self.route
                else {
                    return;
                };
                let dir = DirectoryClient::new(bases, page_origin, config.next_id(), self.rng);
                self.route = Route::Directory(dir);
                self.locate(now);
            }
            Answer::Placed(p) => {
                // The directory may not know the stored session any more:
                // then this starts a new one.
                self.session = p.session;
                self.go_to(p, now);
            }
            Answer::Moved(p) => self.go_to(p, now),
            Answer::RetryOwner {
                owner,
                retry_after_ms,
            } => {
                let same = self.target.as_ref().map(|t| &t.ws_url) == Some(&owner.ws_url);
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
            Answer::UnknownSession => {
                self.session = None;
                self.ask(Query::Placement { session: None }, now);
            }
            Answer::SessionEnded => self.session_ended(now),
        }
    }

    /// Connects to where the directory placed the session.
    fn go_to(&mut self, place: Placement, now: u64) {
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
        if matches!(self.phase, Phase::Connecting | Phase::Handshaking) {
            self.close_socket("the session lives elsewhere");
        }
        self.target = Some(place.into());
        self.attempt = 0;
        self.open(now);
    }

    /// A welcome was accepted: the directory's help is no longer needed.
    pub(super) fn welcomed(&mut self, welcome: &Welcome) {
        if let Some(t) = &mut self.target {
            t.host.clone_from(&welcome.host);
            t.epoch = Some(welcome.epoch);
        }
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
        let why = if self.session != Some(welcome.session) || welcome.created {
            "the session was restarted".to_owned()
        } else {
            match cause {
                Cause::Draining => format!("{old} shut down before it received them"),
                Cause::Lost | Cause::Stale => format!("the session moved away from {old}"),
                Cause::Dropped | Cause::Starting => format!("{old} was lost"),
            }
        };
        format!("{count} not delivered: {why}")
    }
}
