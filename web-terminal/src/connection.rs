//! The connection to a session host as a sans-IO state machine.
//!
//! Reconnecting, resending unacknowledged input exactly once, heartbeats,
//! backoff and ticket renewal are where a terminal client loses keystrokes,
//! storms a host or gets locked out, and they cannot be tested through a
//! real socket and real timers. So this is a plain struct in the style of
//! `quinn-proto`: the glue feeds it socket events, HTTP outcomes and the
//! current time in milliseconds, asks when it next wants to be woken
//! (`poll_timeout`), and carries out the `Action`s it queues. The tests
//! drive every path with a fake clock.
//!
//! The page is served by a directory replica and the user is signed in to
//! it with a cookie. Where a socket goes, and the ticket that lets it in,
//! come from the directory (`recovery`, over `directory::DirectoryClient`);
//! `tickets` decides when a ticket must be renewed and what a refused one
//! means, and `hot_desk` which session the page shows and what happens
//! when another terminal opens it.

use std::collections::VecDeque;

use protocol::{
    ClientToServerMsg, CloseCode, Frame, Hello, Line, Role, ServerToClientMsg, SessionId, Size,
    Welcome, decode_server, decompress_lines, encode_client, encode_hello,
};

pub use crate::action::Action;
use crate::directory::DirectoryClient;
use crate::screen::Screen;

mod hot_desk;
mod input;
mod recovery;
mod tickets;

pub use hot_desk::SessionChoice;
use input::InputQueue;
pub use input::{INPUT_WINDOW, MAX_PENDING_INPUT};
pub use recovery::QUICK_RETRIES;
use recovery::{Recovery, Target};
use tickets::HeldTicket;
pub use tickets::{TICKET_MIN_LEFT_MS, TICKET_REFRESH_MS};

/// A ping goes out this often while live.
pub const PING_INTERVAL_MS: u64 = 1_000;
/// Silence from the host for this long means the socket is dead even if the
/// browser has not noticed (a stopped host, a black-holed route). Short,
/// because a silent partition must fail over within the lease TTL + 1 s.
pub const HEARTBEAT_TIMEOUT_MS: u64 = 2_500;
/// A socket that has not opened after this long is given up on.
pub const CONNECT_TIMEOUT_MS: u64 = 6_000;
/// The same while recovering from a drop: a host that was just serving us
/// answers fast or is gone, and failover is measured in hundreds of ms.
pub const RECOVERY_CONNECT_TIMEOUT_MS: u64 = 1_000;
/// The first retry after a drop waits at most this long: a blip heals at
/// once, and the jitter still spreads a fleet that lost the same socket.
pub const FIRST_RETRY_MAX_MS: u64 = 20;
/// Reconnect delay after the first retry failed; doubles on each failure
/// up to `BACKOFF_MAX_MS`.
pub const BACKOFF_BASE_MS: u64 = 100;
pub const BACKOFF_MAX_MS: u64 = 5_000;
/// What the page tells the user when `send_input` refuses typing because
/// too much is already waiting for the host.
pub const TYPING_REFUSED: &str = "too much input is waiting for the host; typing was refused";

/// Close code the client uses when it gives up on a socket itself.
const CLIENT_GIVES_UP: u16 = 4100;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// No socket: waiting for the directory (who is signed in, which
    /// replicas, where the session lives, a fresh ticket).
    Locating,
    /// A socket is being opened.
    Connecting,
    /// The socket is open and the hello sent; waiting for the welcome.
    Handshaking,
    Live,
    /// Waiting before the next attempt.
    Backoff,
    /// Not trying any more until the user acts; see `Connection::error`.
    Closed(ClosedBecause),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClosedBecause {
    /// The directory answered 401: the page goes to the sign-in form.
    SignedOut,
    /// A host refused a freshly issued ticket too (4001 twice): the advice
    /// is shown; Enter tries again.
    Unauthorized,
    /// The session was opened on another terminal (4005, hot desking):
    /// nothing is retried until the user takes it back (`take_back`).
    Replaced,
    /// The program exited; Enter starts a new session.
    SessionEnded,
    /// The directory refused a new session: the user runs the most
    /// allowed. Enter asks again.
    TooManySessions,
    /// Any other close that retrying would not fix; Enter tries again.
    Refused(CloseCode),
}

/// Why the client is (re)connecting.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Cause {
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
    /// A host refused the ticket (4001): a fresh one is on its way.
    TicketRefused,
}

/// A message for the screen, returned by `handle_message` and shown with
/// `Connection::show`.
#[derive(Debug)]
pub enum Delivery {
    /// A new connection was welcomed. `same_session` tells whether it is
    /// the session the screen showed; `same_history` whether the lines it
    /// holds keep their numbers (the same session, host and epoch).
    Welcome {
        welcome: Welcome,
        same_session: bool,
        same_history: bool,
    },
    /// Scrollback lines numbered from `start`.
    History {
        start: u64,
        lines: Vec<Line>,
    },
    /// Apply this frame; the acknowledgement is already queued, on the
    /// understanding that the caller applies it before sending actions.
    Frame(Frame),
    Exited(Option<i32>),
    /// Something to tell the user beside the screen.
    Notice(String),
    /// About an upload or a download: the host's JSON for the page's
    /// files module (`static/files.js`, loaded on first use), passed on
    /// unread: parsing it here would cost the first visit's bytes, and the
    /// file's own bytes never pass through the wasm either (the browser
    /// streams an upload from disk to the host over HTTP and saves a
    /// download with its own download manager).
    File(String),
}

impl Delivery {
    /// Shows this on `screen`: a welcome starts a new attach (a different
    /// session's or epoch's scrollback is dropped at once), history and
    /// frames are applied. Returns what to tell the user, if anything.
    pub(crate) fn show(self, screen: &mut Screen) -> Option<String> {
        match self {
            Delivery::Welcome {
                welcome,
                same_history,
                ..
            } => screen.begin_attach(same_history, welcome.history),
            Delivery::History { start, lines } => screen.apply_history(start, lines),
            Delivery::Frame(frame) => screen.apply_frame(frame),
            Delivery::Exited(status) => {
                return Some(match status {
                    Some(code) => format!("the program exited with status {code}"),
                    None => "the program exited".to_owned(),
                });
            }
            Delivery::Notice(text) => return Some(text),
            // The glue hands these to the files module instead.
            Delivery::File(_) => {}
        }
        None
    }
}

#[derive(Debug)]
pub struct Connection {
    phase: Phase,
    /// The signed-in user, from `/v1/me`.
    user: Option<String>,
    /// The session sockets ask for: chosen by the page, then named by the
    /// directory's placement. Every hello needs one.
    session: Option<SessionId>,
    /// With no `session`: ask the directory for a new session rather than
    /// the user's running one.
    new_session: bool,
    /// `session` came from this browser's memory and no placement has
    /// confirmed it yet: if it has ended, the user's running session will
    /// do instead (hot desking must not stop at a stale id).
    remembered: bool,
    /// The session last announced with `StoreSession`.
    announced: Option<SessionId>,
    /// The session of the last welcome: what the screen shows.
    attached: Option<SessionId>,
    /// What the last welcome let this page do: a viewer neither sizes the
    /// session nor (unless it may type) sends keys.
    role: Role,
    /// Who watches the session, as the host last said ("" for nobody).
    watchers: String,
    /// The ticket for the next hello; `None` until a placement brings one.
    ticket: Option<HeldTicket>,
    /// A refused ticket (4001) was already answered with a fresh one since
    /// the last welcome; a second refusal is shown to the user.
    ticket_retried: bool,
    /// When a live connection next renews its ticket.
    refresh_at: u64,
    size: Size,
    /// Epoch of the last welcome for `attached`. A welcome with a lower
    /// epoch for the same session comes from a fenced-off host and is
    /// refused.
    epoch: Option<u64>,
    host: Option<String>,
    rtt_ms: Option<u64>,
    /// The round trip smoothed over pings (TCP's 7/8 rule), which predicted
    /// echo is shown by.
    srtt_ms: Option<u64>,
    /// The `before` of the history fetch in flight on this socket: one at
    /// a time, so history never crowds out frames.
    history_fetch: Option<u64>,
    error: Option<String>,
    /// Next input sequence number; `None` until the first welcome says
    /// where the session's numbering stands.
    next_seq: Option<u64>,
    /// Input not yet acknowledged: in flight, or waiting behind the
    /// window (or for the first welcome to say where numbering stands).
    input: InputQueue,
    /// When the current phase began.
    phase_since: u64,
    /// When anything last arrived from the host.
    last_rx: u64,
    next_ping: u64,
    ping_id: u32,
    /// Pings awaiting their pong: id and send time.
    pings: VecDeque<(u32, u64)>,
    retry_at: u64,
    /// Failed attempts since the last welcome; drives the backoff delay.
    attempt: u32,
    rng: u64,
    actions: VecDeque<Action>,
    /// The directory replicas: only the page's origin until `/v1/config`
    /// has answered (`replicas_known`).
    dir: DirectoryClient,
    replicas_known: bool,
    /// `scheme://host:port` of the page, the replica asked first.
    page_origin: String,
    /// Where the next socket goes.
    target: Option<Target>,
    /// Set from a drop (or the start) until the first frame of a new
    /// socket is shown: what the overlay tells the user.
    recovery: Option<Recovery>,
    /// Input messages reported as not delivered since the page loaded.
    undelivered: u64,
}

impl Connection {
    /// Starts at once: asks the page's origin who is signed in
    /// (`/v1/me`), then for the replicas (`/v1/config`), then for a
    /// placement of `choice` with a ticket, and connects there.
    /// `page_origin` (`http://host:port`) is the replica asked first; `seed`
    /// feeds the backoff jitter.
    pub fn start(
        choice: SessionChoice,
        size: Size,
        now: u64,
        seed: u64,
        page_origin: String,
    ) -> Self {
        let (session, new_session, remembered) = match choice {
            SessionChoice::Named(id) => (Some(id), false, false),
            SessionChoice::Remembered(id) => (Some(id), false, true),
            SessionChoice::New => (None, true, false),
            SessionChoice::Any => (None, false, false),
        };
        let mut conn = Connection {
            phase: Phase::Locating,
            user: None,
            session,
            new_session,
            remembered,
            announced: None,
            attached: None,
            role: Role::Owner,
            watchers: String::new(),
            ticket: None,
            ticket_retried: false,
            refresh_at: now,
            size: size.clamped(),
            epoch: None,
            host: None,
            rtt_ms: None,
            srtt_ms: None,
            history_fetch: None,
            error: None,
            next_seq: None,
            input: InputQueue::default(),
            phase_since: now,
            last_rx: now,
            next_ping: now,
            ping_id: 0,
            pings: VecDeque::new(),
            retry_at: now,
            attempt: 0,
            rng: seed | 1,
            actions: VecDeque::new(),
            dir: DirectoryClient::page_origin(seed),
            replicas_known: false,
            page_origin,
            target: None,
            recovery: Some(Recovery::starting(now)),
            undelivered: 0,
        };
        conn.locate(now);
        conn
    }

    pub fn phase(&self) -> Phase {
        self.phase
    }

    /// The phase in the words of the page's test API.
    pub fn phase_name(&self) -> &'static str {
        match self.phase {
            Phase::Locating | Phase::Connecting | Phase::Handshaking => "connecting",
            Phase::Live => "live",
            Phase::Backoff => "backoff",
            Phase::Closed(ClosedBecause::Replaced) => "replaced",
            Phase::Closed(ClosedBecause::SignedOut) => "signed_out",
            Phase::Closed(_) => "closed",
        }
    }

    /// The signed-in user, once `/v1/me` has answered.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    pub fn host(&self) -> Option<&str> {
        self.host.as_deref()
    }

    /// What this page may do with the session (from the last welcome).
    pub fn role(&self) -> &Role {
        &self.role
    }

    /// Who watches the session through share links, comma-separated.
    pub fn watchers(&self) -> &str {
        &self.watchers
    }

    pub fn session(&self) -> Option<SessionId> {
        self.session
    }

    pub fn epoch(&self) -> Option<u64> {
        self.epoch
    }

    pub fn rtt_ms(&self) -> Option<u64> {
        self.rtt_ms
    }

    pub fn srtt_ms(&self) -> Option<u64> {
        self.srtt_ms
    }

    /// The number of the newest input sent, while live and nothing waits
    /// unnumbered behind it: the number the input just given to
    /// `send_input` went out as. `None` otherwise.
    pub fn input_sent_as(&self) -> Option<u64> {
        let seq = self.next_seq?.checked_sub(1)?;
        (self.phase == Phase::Live && self.input.waiting() == 0 && seq > 0).then_some(seq)
    }

    /// The number of the newest input given out, sent or not.
    pub fn last_input_seq(&self) -> u64 {
        self.next_seq.map_or(0, |s| s.saturating_sub(1))
    }

    /// Advice for the user about the last failure; `None` while all is well.
    pub fn error(&self) -> Option<&str> {
        self.error.as_deref()
    }

    /// When the next backoff attempt is due, while in backoff.
    pub fn retry_at(&self) -> Option<u64> {
        (self.phase == Phase::Backoff).then_some(self.retry_at)
    }

    /// Input messages reported as not delivered since the page loaded.
    pub fn undelivered(&self) -> u64 {
        self.undelivered
    }

    /// Bytes of input not yet acknowledged by the host.
    pub fn pending_input(&self) -> usize {
        self.input.pending()
    }

    /// Bytes of input waiting in the page behind the window (the rest of a
    /// long paste): the page shows its progress.
    pub fn input_waiting(&self) -> usize {
        self.input.waiting()
    }

    /// Stops a long paste: the input waiting behind the window is not
    /// sent. Returns how many bytes that was.
    pub fn discard_waiting_input(&mut self) -> usize {
        self.input.drop_waiting()
    }

    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    fn set_phase(&mut self, phase: Phase, now: u64) {
        self.phase = phase;
        self.phase_since = now;
    }

    /// The socket opened: greet the host with the ticket.
    pub fn handle_open(&mut self, now: u64) {
        if self.phase != Phase::Connecting {
            return;
        }
        let (Some(session), Some(ticket)) = (self.session, &self.ticket) else {
            // `open` never connects without both; should it happen, the
            // directory is asked again rather than the host greeted badly.
            self.close_socket("client has no ticket for this connection");
            self.ticket = None;
            self.locate(now);
            return;
        };
        let hello = Hello {
            ticket: ticket.text().to_owned(),
            session,
            size: self.size,
        };
        self.set_phase(Phase::Handshaking, now);
        self.last_rx = now;
        self.actions.push_back(Action::Send(encode_hello(&hello)));
    }

    /// A binary message arrived. Messages the screen needs are returned;
    /// the rest (acks, pongs) are handled here.
    /// Shows `delivery` on `screen`, as every glue must, then asks for
    /// the next block of history if the screen is live and wants one.
    /// Returns what to tell the user, if anything.
    pub fn show(&mut self, delivery: Delivery, screen: &mut Screen) -> Option<String> {
        let notice = delivery.show(screen);
        self.poll_history(screen);
        notice
    }

    /// Fetches history in the background: one block at a time, only while
    /// live and only once the screen is (`Screen::history_wanted`).
    pub fn poll_history(&mut self, screen: &Screen) {
        if self.phase != Phase::Live || self.history_fetch.is_some() {
            return;
        }
        if let Some((before, from)) = screen.history_wanted() {
            self.history_fetch = Some(before);
            self.send(&ClientToServerMsg::FetchHistory { before, from });
        }
    }

    pub fn handle_message(&mut self, bytes: &[u8], now: u64) -> Option<Delivery> {
        if !matches!(self.phase, Phase::Handshaking | Phase::Live) {
            return None;
        }
        self.last_rx = now;
        let msg = match decode_server(bytes) {
            Ok(msg) => msg,
            Err(_) => {
                self.give_up_socket(
                    "the host sent a message this page cannot read",
                    Cause::Dropped,
                    now,
                );
                return None;
            }
        };
        if self.phase == Phase::Handshaking {
            return match msg {
                ServerToClientMsg::Welcome(welcome) => self.welcome(welcome, now),
                _ => {
                    self.give_up_socket(
                        "the host did not answer the greeting",
                        Cause::Dropped,
                        now,
                    );
                    None
                }
            };
        }
        match msg {
            ServerToClientMsg::Welcome(_) => {
                self.give_up_socket("the host greeted twice", Cause::Dropped, now);
                None
            }
            ServerToClientMsg::History { start, lines } => match decompress_lines(&lines) {
                Ok(lines) => {
                    let end = start.checked_add(lines.len() as u64);
                    if end.is_some() && end == self.history_fetch {
                        self.history_fetch = None;
                    }
                    Some(Delivery::History { start, lines })
                }
                Err(_) => {
                    self.give_up_socket("the host sent unreadable scrollback", Cause::Dropped, now);
                    None
                }
            },
            ServerToClientMsg::Notice { text } => Some(Delivery::Notice(text)),
            ServerToClientMsg::Frame(frame) => {
                // The restored screen is on its way to the user: recovered.
                self.recovery = None;
                self.send(&ClientToServerMsg::Ack { frame: frame.seq });
                Some(Delivery::Frame(frame))
            }
            ServerToClientMsg::InputAck { seq } => {
                self.input.acked(seq);
                self.release_input();
                None
            }
            ServerToClientMsg::Pong { id } => {
                if let Some(pos) = self.pings.iter().position(|(p, _)| *p == id) {
                    let (_, sent) = self.pings[pos];
                    let rtt = now.saturating_sub(sent);
                    self.rtt_ms = Some(rtt);
                    self.srtt_ms = Some(self.srtt_ms.map_or(rtt, |s| (7 * s + rtt) / 8));
                    self.pings.drain(..=pos);
                }
                None
            }
            ServerToClientMsg::Exited { status } => Some(Delivery::Exited(status)),
            ServerToClientMsg::Files(json) => Some(Delivery::File(json)),
            ServerToClientMsg::Watchers { names } => {
                self.watchers = names.join(", ");
                None
            }
        }
    }

    fn welcome(&mut self, welcome: Welcome, now: u64) -> Option<Delivery> {
        if self.session != Some(welcome.session) {
            // The hello named the session and the ticket allows no other.
            self.give_up_socket("the host answered for another session", Cause::Dropped, now);
            return None;
        }
        let same_session = self.attached == Some(welcome.session);
        let same_history = same_session
            && !welcome.created
            && self.epoch == Some(welcome.epoch)
            && self.host.as_deref() == Some(welcome.host.as_str());
        self.history_fetch = None;
        if same_session && self.epoch.is_some_and(|e| welcome.epoch < e) {
            // A host that lost the session to a newer owner: never show its
            // frames or give it input.
            self.give_up_socket("a stale host answered", Cause::Stale, now);
            return None;
        }
        // Input survives only when the very same program is still running
        // on the same owner: same session, same epoch, not newly created.
        let continuous = same_session && self.epoch == Some(welcome.epoch) && !welcome.created;
        if continuous {
            self.input.acked(welcome.input_seq);
        } else {
            // Input for a program that is gone, the rest of a paste
            // included, must not reach its successor. Input typed before
            // the page's first welcome is for this one.
            let messages = if self.attached.is_some() {
                self.input.drop_all()
            } else {
                self.input.drop_unacked()
            };
            if messages > 0 {
                self.undelivered += messages as u64;
                let notice = self.undelivered_notice(messages, &welcome);
                self.actions
                    .push_back(Action::InputLost { messages, notice });
            }
        }
        let after_held = self.input.after_last().unwrap_or(0);
        self.next_seq = Some(after_held.max(welcome.input_seq + 1));
        self.attached = Some(welcome.session);
        self.epoch = Some(welcome.epoch);
        self.host = Some(welcome.host.clone());
        self.welcomed(&welcome);
        self.role = welcome.role.clone();
        self.watchers.clear();
        self.error = None;
        self.attempt = 0;
        self.set_phase(Phase::Live, now);
        self.next_ping = now;
        self.pings.clear();
        // The hello carried the size at connect time; it may have changed.
        // A viewer sees the owner's size and never asks for its own.
        if !self.role.is_viewer() {
            self.send(&ClientToServerMsg::Resize(self.size));
        }
        let resend: Vec<(u64, Vec<u8>)> = self.input.unacked().cloned().collect();
        for (seq, data) in resend {
            self.send(&ClientToServerMsg::Input { seq, data });
        }
        self.release_input();
        self.poll_ping(now);
        Some(Delivery::Welcome {
            welcome,
            same_session,
            same_history,
        })
    }

    /// Input for the program, behind everything held. Returns false when
    /// it was refused (closed, or `MAX_PENDING_INPUT` already waiting).
    pub fn send_input(&mut self, data: &[u8]) -> bool {
        if data.is_empty() {
            return true;
        }
        if matches!(self.phase, Phase::Closed(_))
            || !self.input.has_room(data.len())
            || !self.role.may_type()
        {
            return false;
        }
        self.input.hold(data);
        self.release_input();
        true
    }

    /// Numbers waiting input while the window has room, and sends it if
    /// live (otherwise the welcome sends it).
    fn release_input(&mut self) {
        while let Some(seq) = self.next_seq
            && let Some(data) = self.input.release(seq)
        {
            self.next_seq = Some(seq + 1);
            if self.phase == Phase::Live {
                self.send(&ClientToServerMsg::Input { seq, data });
            }
        }
    }

    /// The terminal's size in cells changed (the glue debounces this).
    pub fn resize(&mut self, size: Size) {
        let size = size.clamped();
        if size == self.size {
            return;
        }
        self.size = size;
        if self.phase == Phase::Live && !self.role.is_viewer() {
            self.send(&ClientToServerMsg::Resize(size));
        }
    }

    pub fn size(&self) -> Size {
        self.size
    }

    /// The socket closed, by the host or the network.
    pub fn handle_close(&mut self, code: u16, now: u64) {
        if !matches!(
            self.phase,
            Phase::Connecting | Phase::Handshaking | Phase::Live
        ) {
            // We closed it ourselves, or it is an old socket's late event.
            return;
        }
        match CloseCode::from_code(code) {
            Some(CloseCode::Unauthorized) => self.ticket_refused(now),
            Some(CloseCode::SessionEnded) => self.session_ended(now),
            Some(CloseCode::Replaced) => self.replaced(now),
            // A draining host and one that lost the session both mean "the
            // session lives on elsewhere": the directory says where.
            Some(c @ (CloseCode::GoingAway | CloseCode::SessionLost)) => {
                self.error = Some(c.advice().to_owned());
                let cause = if c == CloseCode::GoingAway {
                    Cause::Draining
                } else {
                    Cause::Lost
                };
                self.socket_failed(cause, now);
            }
            // Normal from a host we did not ask to close is a proxy or a
            // restart.
            Some(c) if c.is_retryable() || c == CloseCode::Normal => {
                self.error = Some(c.advice().to_owned());
                self.socket_failed(Cause::Dropped, now);
            }
            Some(c) => {
                self.error = Some(c.advice().to_owned());
                self.set_phase(Phase::Closed(ClosedBecause::Refused(c)), now);
            }
            None => {
                self.error = Some("the connection was lost; reconnecting".to_owned());
                self.socket_failed(Cause::Dropped, now);
            }
        }
    }

    /// The program ended (close 4004, or the directory's 409).
    fn session_ended(&mut self, now: u64) {
        self.error = Some(CloseCode::SessionEnded.advice().to_owned());
        self.stop(ClosedBecause::SessionEnded, now);
        // Nothing is waiting for that input any more.
        self.input.drop_all();
        self.session = None;
        self.new_session = true;
        self.ticket = None;
        self.epoch = None;
        self.announced = None;
        self.actions.push_back(Action::StoreSession(None));
    }

    /// Closes for good until the user acts: no socket, no question, no
    /// timer.
    /// The caller closes a socket that is still open.
    fn stop(&mut self, why: ClosedBecause, now: u64) {
        self.set_phase(Phase::Closed(why), now);
        self.recovery = None;
        self.forget_directory_question();
    }

    /// Close the socket ourselves and recover as from a drop.
    fn give_up_socket(&mut self, why: &str, cause: Cause, now: u64) {
        self.error = Some(format!("{why}; reconnecting"));
        self.close_socket("client gave up on this connection");
        self.socket_failed(cause, now);
    }

    /// Closes a socket that is opening or open; after the browser reported
    /// it closed, there is none.
    fn close_if_open(&mut self, reason: &'static str) {
        if matches!(
            self.phase,
            Phase::Connecting | Phase::Handshaking | Phase::Live
        ) {
            self.close_socket(reason);
        }
    }

    fn close_socket(&mut self, reason: &'static str) {
        self.actions.push_back(Action::Close {
            code: CLIENT_GIVES_UP,
            reason,
        });
    }

    fn enter_backoff(&mut self, now: u64) {
        let delay = if self.attempt == 0 {
            self.random() % (FIRST_RETRY_MAX_MS + 1)
        } else {
            let shift = self.attempt.min(16);
            let cap = (BACKOFF_BASE_MS << shift).min(BACKOFF_MAX_MS);
            // Jitter over the upper half spreads a fleet of clients that
            // lost the same host.
            cap / 2 + self.random() % (cap / 2 + 1)
        };
        self.attempt = self.attempt.saturating_add(1);
        self.retry_at = now + delay;
        self.set_phase(Phase::Backoff, now);
    }

    fn random(&mut self) -> u64 {
        // xorshift64: plenty for jitter, and deterministic under test.
        let mut x = self.rng;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.rng = x;
        x
    }

    /// The user pressed Enter on the "closed" notice: try again now, with
    /// a fresh placement and ticket. After `SessionEnded` this starts a new
    /// session. A replaced session is only taken back with `take_back`, and
    /// a signed-out page is leaving for the sign-in form.
    pub fn restart(&mut self, now: u64) {
        if matches!(
            self.phase,
            Phase::Live | Phase::Closed(ClosedBecause::Replaced | ClosedBecause::SignedOut)
        ) {
            return;
        }
        self.reconnect(now);
    }

    /// Enter was pressed. On a "closed" notice that Enter answers (the
    /// program exited, a refusal, a refused ticket, the session cap) it
    /// tries again with `restart` and returns true: the key is the page's,
    /// not the program's. Anywhere else it returns false and the key goes
    /// to the program; a replaced session is taken back only with
    /// `take_back`, and a signed-out page is leaving.
    pub fn enter_on_notice(&mut self, now: u64) -> bool {
        let answers_enter = matches!(
            self.phase,
            Phase::Closed(
                ClosedBecause::SessionEnded
                    | ClosedBecause::Refused(_)
                    | ClosedBecause::Unauthorized
                    | ClosedBecause::TooManySessions
            )
        );
        if answers_enter {
            self.restart(now);
        }
        answers_enter
    }

    fn reconnect(&mut self, now: u64) {
        if matches!(self.phase, Phase::Connecting | Phase::Handshaking) {
            self.close_socket("client restarted the connection");
        }
        self.error = None;
        self.attempt = 0;
        self.ticket_retried = false;
        self.ticket = None;
        self.recovery = Some(Recovery::starting(now));
        self.locate(now);
    }

    /// When `handle_timeout` should next be called.
    pub fn poll_timeout(&self) -> Option<u64> {
        let socket = match self.phase {
            Phase::Locating => None,
            Phase::Connecting => Some(self.phase_since + self.connect_timeout()),
            Phase::Handshaking => Some(self.last_rx + HEARTBEAT_TIMEOUT_MS),
            Phase::Live => Some(
                self.next_ping
                    .min(self.last_rx + HEARTBEAT_TIMEOUT_MS)
                    .min(self.refresh_due().unwrap_or(u64::MAX)),
            ),
            Phase::Backoff => Some(self.retry_at),
            Phase::Closed(_) => None,
        };
        match (socket, self.directory_timeout()) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    fn connect_timeout(&self) -> u64 {
        if self.recovery.as_ref().is_some_and(Recovery::after_drop) {
            RECOVERY_CONNECT_TIMEOUT_MS
        } else {
            CONNECT_TIMEOUT_MS
        }
    }

    pub fn handle_timeout(&mut self, now: u64) {
        if self.phase == Phase::Live && now >= self.next_ping + PING_INTERVAL_MS {
            // Our own ping is a whole interval overdue: the page's timers were
            // frozen (background tab, laptop asleep), so the host's silence
            // proves nothing yet. Ask it now and give it time to answer.
            self.last_rx = self.last_rx.max(now - PING_INTERVAL_MS);
            self.next_ping = now;
        }
        self.directory_timer(now);
        self.refresh_if_due(now);
        match self.phase {
            Phase::Connecting if now >= self.phase_since + self.connect_timeout() => {
                self.give_up_socket("the host did not answer", Cause::Dropped, now);
            }
            Phase::Handshaking | Phase::Live if now >= self.last_rx + HEARTBEAT_TIMEOUT_MS => {
                // A host that went silent (stopped, partitioned) still
                // accepts TCP connections in its kernel, so quick retries
                // would each wait out a connect timeout: ask the directory
                // at once instead.
                self.attempt = self.attempt.max(QUICK_RETRIES);
                self.give_up_socket("the host stopped answering", Cause::Dropped, now);
            }
            Phase::Live => self.poll_ping(now),
            Phase::Backoff if now >= self.retry_at => self.open(now),
            _ => {}
        }
    }

    fn poll_ping(&mut self, now: u64) {
        if now < self.next_ping {
            return;
        }
        self.ping_id = self.ping_id.wrapping_add(1);
        self.pings.push_back((self.ping_id, now));
        if self.pings.len() > 4 {
            self.pings.pop_front();
        }
        self.next_ping = now + PING_INTERVAL_MS;
        self.send(&ClientToServerMsg::Ping { id: self.ping_id });
    }

    /// Asks the host for a place to upload a file to (`files.js` writes
    /// the request in `protocol::UploadRequest`'s text form); false
    /// (nothing sent) unless the session is live, so it asks again later.
    pub fn request_upload(&mut self, request: String) -> bool {
        if self.phase != Phase::Live {
            return false;
        }
        self.send(&ClientToServerMsg::Upload(request));
        true
    }

    fn send(&mut self, msg: &ClientToServerMsg) {
        self.actions.push_back(Action::Send(encode_client(msg)));
    }
}

#[cfg(test)]
mod testkit;

#[cfg(test)]
mod tests;

#[cfg(test)]
mod failover_tests;

#[cfg(test)]
mod ticket_tests;
