//! The shipping client, run natively: [`NativePage`].
//!
//! Failover tests and the failover benchmark must describe what users run,
//! so they drive the browser client's own core: `web_terminal`'s
//! `Connection` (placement, tickets, heartbeat, backoff, exactly-once
//! input, failover through the directory) and its `Screen`, the same code
//! the wasm page runs. This module is only the glue the browser provides
//! around it, doing exactly what `web-terminal/src/web.rs` does:
//!
//! - time is milliseconds since the page loaded (`performance.now()`);
//! - after every event the actions the connection queued are carried out
//!   in order, its timer is re-armed from `poll_timeout` (at most 60 s
//!   ahead) and `handle_timeout` is called when it fires;
//! - `Open` opens a WebSocket (tokio-tungstenite, binary frames, the
//!   page's `Origin`), `handle_open` when it opens, each binary message to
//!   `handle_message`, the close code (1006 without a close frame, 1005
//!   with an empty one) to `handle_close`; `Close` and a second `Open`
//!   detach the old socket first, so its late events are never reported;
//!   sends go only to an open socket;
//! - `Fetch` makes the request with the sign-in cookie (as `fetch` with
//!   credentials does, to the page's origin or a peer replica) and the
//!   page's `Origin` on a POST or a cross-origin request, and reports it
//!   as `HttpOutcome::answered` or `Failed`; `CancelFetch` aborts it;
//! - what the connection delivers is shown with `Delivery::show`; notices
//!   (input not delivered, the program exited) are kept, the session to
//!   remember and the sign-in page to go to are recorded;
//! - typing goes through `keys::encode_text` and `send_input`, after
//!   returning the view to the bottom; a refused input is a notice.
//!
//! A driver task does all of that for as long as the page lives, as the
//! browser's event loop would, whether or not the test is looking. The
//! test reads the page through [`NativePage::with_page`] and waits on
//! predicates over it with [`NativePage::wait_for`], which also says when
//! the page changed to satisfy it: the benchmark's clock.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures_util::{SinkExt, StreamExt};
use protocol::{Hello, SessionId, Size, decode_hello};
use testkit::http::Request;
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use web_terminal::connection::{
    Action, Connection, Delivery, Phase, SessionChoice, TYPING_REFUSED,
};
use web_terminal::directory::{HttpOutcome, HttpRequest};
use web_terminal::keys;
use web_terminal::screen::Screen;

use crate::client::open_socket;
use crate::screen_text::{ScreenText, Terminal};

/// The browser's timers take a 32-bit delay; the glue never arms one
/// further ahead than this, and re-arms after every event anyway.
const LONGEST_TIMER_MS: u64 = 60_000;

/// Events the page keeps for tests and the benchmark, newest last.
const EVENTS_KEPT: usize = 4096;

/// A fetch is given up on by the connection machine (its own timeout and
/// `CancelFetch`); this only bounds a request nobody cancels.
const FETCH_LIMIT: Duration = Duration::from_secs(60);

/// How a page is opened.
#[derive(Clone, Debug)]
pub struct PageOptions {
    /// The origin of the directory replica serving the page
    /// (`http://127.0.0.1:PORT`): asked first, and sent as `Origin`.
    pub origin: String,
    /// The sign-in cookie the browser holds (`thinline_login=...`).
    pub cookie: String,
    /// What the address and the browser's memory say to open.
    pub choice: SessionChoice,
    /// The terminal's size in cells.
    pub size: Size,
    /// Seeds the backoff jitter, as `Math.random()` does in the page.
    pub seed: u64,
}

impl PageOptions {
    /// The page at `origin`, signed in with `cookie`, opening whatever the
    /// user runs (the directory picks, or starts a session).
    pub fn new(origin: &str, cookie: &str, size: Size) -> PageOptions {
        PageOptions {
            origin: origin.trim_end_matches('/').to_owned(),
            cookie: cookie.to_owned(),
            choice: SessionChoice::Any,
            size,
            seed: random_seed(),
        }
    }

    /// `/?new=1`: a new session.
    pub fn new_session(mut self) -> PageOptions {
        self.choice = SessionChoice::New;
        self
    }

    /// `/?session=ID`: this session and no other.
    pub fn session(mut self, session: SessionId) -> PageOptions {
        self.choice = SessionChoice::Named(session);
        self
    }
}

fn random_seed() -> u64 {
    let mut seed = [0u8; 8];
    // Jitter only; a fixed seed would do if the machine had no randomness.
    let _ = getrandom::fill(&mut seed);
    u64::from_le_bytes(seed)
}

/// Something the page went through, with when it happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PageEvent {
    /// A socket was opened to this url.
    Opening(String),
    /// A host welcomed the page.
    Welcomed {
        host: String,
        epoch: u64,
        session: SessionId,
        created: bool,
    },
    /// The socket closed with this code (the host's, or 1006).
    Closed(u16),
    /// The connection machine gave up on its socket (silence, a stale
    /// host, a move) and closed it itself.
    Abandoned,
}

/// Everything the page holds: the connection machine, the screen, and what
/// the browser around them would show or remember.
pub struct Page {
    conn: Connection,
    screen: Screen,
    /// `performance.now()` is zero here.
    loaded: Instant,
    cookie: String,
    notices: Vec<String>,
    remembered: Option<SessionId>,
    sent_to_sign_in: Option<String>,
    last_hello: Option<Hello>,
    events: VecDeque<(Instant, PageEvent)>,
    /// When the page last changed: when the driver finished handling the
    /// event that changed it.
    changed_at: Instant,
    sockets_opened: u64,
}

impl Page {
    fn now(&self) -> u64 {
        u64::try_from(self.loaded.elapsed().as_millis()).unwrap_or(u64::MAX)
    }

    fn record(&mut self, event: PageEvent) {
        if self.events.len() == EVENTS_KEPT {
            self.events.pop_front();
        }
        self.events.push_back((Instant::now(), event));
    }

    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    pub fn screen(&self) -> &Screen {
        &self.screen
    }

    pub fn phase(&self) -> Phase {
        self.conn.phase()
    }

    pub fn is_live(&self) -> bool {
        self.conn.phase() == Phase::Live
    }

    pub fn host(&self) -> Option<&str> {
        self.conn.host()
    }

    pub fn epoch(&self) -> Option<u64> {
        self.conn.epoch()
    }

    pub fn session(&self) -> Option<SessionId> {
        self.conn.session()
    }

    /// Input messages reported as never delivered since the page loaded.
    pub fn undelivered(&self) -> u64 {
        self.conn.undelivered()
    }

    /// Notices the page showed (undelivered input, the program exited,
    /// typing refused), oldest first.
    pub fn notices(&self) -> &[String] {
        &self.notices
    }

    /// The session the browser would remember for its next visit.
    pub fn remembered(&self) -> Option<SessionId> {
        self.remembered
    }

    /// The sign-in page the browser was sent to, once the sign-in ended.
    pub fn sent_to_sign_in(&self) -> Option<&str> {
        self.sent_to_sign_in.as_deref()
    }

    /// The last hello the page sent: the ticket it presented, as it went
    /// over the wire.
    pub fn last_hello(&self) -> Option<&Hello> {
        self.last_hello.as_ref()
    }

    /// The url of the last socket the page opened (`ws://HOST:PORT/ws`).
    pub fn last_socket_url(&self) -> Option<&str> {
        self.events.iter().rev().find_map(|(_, event)| match event {
            PageEvent::Opening(url) => Some(url.as_str()),
            _ => None,
        })
    }

    /// Sockets the page opened since it loaded.
    pub fn sockets_opened(&self) -> u64 {
        self.sockets_opened
    }

    /// What the page went through, oldest first.
    pub fn events(&self) -> impl Iterator<Item = &(Instant, PageEvent)> {
        self.events.iter()
    }

    /// What the page went through after `since`, oldest first.
    pub fn events_since(&self, since: Instant) -> impl Iterator<Item = &(Instant, PageEvent)> {
        self.events.iter().filter(move |(at, _)| *at > since)
    }

    /// The code of the first socket close after `since`, if any.
    pub fn close_since(&self, since: Instant) -> Option<u16> {
        self.events_since(since).find_map(|(_, event)| match event {
            PageEvent::Closed(code) => Some(*code),
            _ => None,
        })
    }

    /// A line about the page's state, for failure messages.
    pub fn describe(&self) -> String {
        let now = self.now();
        format!(
            "{} on {} at epoch {:?}, session {:?}, error {:?}, stage {:?}, undelivered {}, notices {:?}",
            self.conn.phase_name(),
            self.conn.host().unwrap_or("no host"),
            self.conn.epoch(),
            self.conn.session().map(|s| s.to_string()),
            self.conn.error(),
            self.conn.stage(now),
            self.conn.undelivered(),
            self.notices,
        )
    }

    /// Input from the keyboard: the view returns to the program's output
    /// first, and input the connection refuses is a notice, as in the page.
    fn send_input(&mut self, bytes: &[u8]) -> bool {
        self.screen.scroll_to_bottom();
        let accepted = self.conn.send_input(bytes);
        if !accepted && !matches!(self.conn.phase(), Phase::Closed(_)) {
            self.notices.push(TYPING_REFUSED.to_owned());
        }
        accepted
    }
}

/// What the page's sockets and requests report to its driver.
enum Io {
    Opened { socket: u64 },
    Message { socket: u64, bytes: Vec<u8> },
    Closed { socket: u64, code: u16 },
    Answered { id: u64, outcome: HttpOutcome },
}

enum SocketCommand {
    Send(Vec<u8>),
    Close { code: u16, reason: &'static str },
}

/// The socket the page holds; any other socket's events are a detached
/// socket's and ignored, as the page removes its handlers before closing.
struct HeldSocket {
    id: u64,
    open: bool,
    /// The hello is the first message on each socket.
    greeted: bool,
    commands: mpsc::UnboundedSender<SocketCommand>,
}

/// The browser's side of the page: sockets, requests, timers.
struct Driver {
    page: Arc<Mutex<Page>>,
    origin: String,
    io: mpsc::UnboundedSender<Io>,
    socket: Option<HeldSocket>,
    next_socket: u64,
    fetches: HashMap<u64, JoinHandle<()>>,
}

fn lock(page: &Mutex<Page>) -> MutexGuard<'_, Page> {
    // A panic while holding the lock is a bug in a test; the page itself
    // is still consistent (each call into the machine is whole).
    page.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Driver {
    async fn run(
        mut self,
        mut io: mpsc::UnboundedReceiver<Io>,
        wake: Arc<Notify>,
        changed: watch::Sender<u64>,
    ) {
        loop {
            let timer = {
                let page = lock(&self.page);
                page.conn.poll_timeout().map(|at| {
                    let now = page.now();
                    let delay = at.saturating_sub(now).min(LONGEST_TIMER_MS);
                    Instant::now() + Duration::from_millis(delay)
                })
            };
            tokio::select! {
                Some(event) = io.recv() => self.handle_io(event),
                () = sleep_until(timer) => {
                    let mut page = lock(&self.page);
                    let now = page.now();
                    page.conn.handle_timeout(now);
                }
                () = wake.notified() => {}
            }
            self.after_event();
            changed.send_modify(|n| *n = n.wrapping_add(1));
        }
    }

    fn handle_io(&mut self, event: Io) {
        let page = self.page.clone();
        let mut page = lock(&page);
        let now = page.now();
        let held = self.socket.as_ref().map(|s| s.id);
        match event {
            Io::Opened { socket } if held == Some(socket) => {
                if let Some(s) = &mut self.socket {
                    s.open = true;
                }
                page.conn.handle_open(now);
            }
            Io::Message { socket, bytes } if held == Some(socket) => {
                let Some(delivery) = page.conn.handle_message(&bytes, now) else {
                    return;
                };
                if let Delivery::Welcome { welcome, .. } = &delivery {
                    page.record(PageEvent::Welcomed {
                        host: welcome.host.clone(),
                        epoch: welcome.epoch,
                        session: welcome.session,
                        created: welcome.created,
                    });
                }
                let page = &mut *page;
                if let Some(notice) = delivery.show(&mut page.screen) {
                    page.notices.push(notice);
                }
            }
            Io::Closed { socket, code } if held == Some(socket) => {
                self.socket = None;
                page.record(PageEvent::Closed(code));
                page.conn.handle_close(code, now);
            }
            Io::Answered { id, outcome } => {
                self.fetches.remove(&id);
                page.conn.handle_http(id, outcome, now);
            }
            // A detached socket's late event.
            Io::Opened { .. } | Io::Message { .. } | Io::Closed { .. } => {}
        }
    }

    /// Carries out what the connection asked for, in order.
    fn after_event(&mut self) {
        let page = self.page.clone();
        let mut page = lock(&page);
        while let Some(action) = page.conn.poll_action() {
            self.perform(&mut page, action);
        }
        page.changed_at = Instant::now();
    }

    fn perform(&mut self, page: &mut Page, action: Action) {
        match action {
            Action::Open(url) => {
                page.sockets_opened += 1;
                page.record(PageEvent::Opening(url.clone()));
                self.open_socket(url);
            }
            Action::Send(bytes) => {
                let Some(socket) = &mut self.socket else {
                    return;
                };
                if !socket.open {
                    return;
                }
                if !socket.greeted {
                    socket.greeted = true;
                    if let Ok(hello) = decode_hello(&bytes) {
                        page.last_hello = Some(hello);
                    }
                }
                // A failed send shows up as a close event.
                let _ = socket.commands.send(SocketCommand::Send(bytes));
            }
            Action::Close { code, reason } => {
                if let Some(socket) = self.socket.take() {
                    page.record(PageEvent::Abandoned);
                    let _ = socket.commands.send(SocketCommand::Close { code, reason });
                }
            }
            Action::StoreSession(session) => page.remembered = session,
            Action::SignIn(url) => page.sent_to_sign_in = Some(url),
            Action::InputLost { notice, .. } => page.notices.push(notice),
            Action::Fetch(request) => {
                let cookie = page.cookie.clone();
                self.fetch(request, cookie);
            }
            Action::CancelFetch(id) => {
                if let Some(task) = self.fetches.remove(&id) {
                    task.abort();
                }
            }
        }
    }

    fn open_socket(&mut self, url: String) {
        if let Some(old) = self.socket.take() {
            let _ = old.commands.send(SocketCommand::Close {
                code: 1000,
                reason: "",
            });
        }
        self.next_socket += 1;
        let id = self.next_socket;
        let (commands, receiver) = mpsc::unbounded_channel();
        tokio::spawn(run_socket(
            id,
            url,
            self.origin.clone(),
            self.io.clone(),
            receiver,
        ));
        self.socket = Some(HeldSocket {
            id,
            open: false,
            greeted: false,
            commands,
        });
    }

    fn fetch(&mut self, request: HttpRequest, cookie: String) {
        let id = request.id;
        let url = if request.url.starts_with('/') {
            format!("{}{}", self.origin, request.url)
        } else {
            request.url.clone()
        };
        let origin = self.origin.clone();
        let io = self.io.clone();
        let task = tokio::spawn(async move {
            let outcome = match fetch(&request, &url, &cookie, &origin).await {
                Ok((status, body)) => HttpOutcome::answered(status, body),
                Err(_) => HttpOutcome::Failed,
            };
            let _ = io.send(Io::Answered { id, outcome });
        });
        self.fetches.insert(id, task);
    }
}

async fn sleep_until(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// One request as the page's `fetch` makes it.
async fn fetch(
    request: &HttpRequest,
    url: &str,
    cookie: &str,
    origin: &str,
) -> Result<(u16, String)> {
    let mut http = Request::new(request.method, url)?
        .timeout(FETCH_LIMIT)
        .header("cookie", cookie);
    // Browsers send Origin with every POST, and with any cross-origin
    // request.
    if request.method != "GET" || !request.same_origin {
        http = http.header("origin", origin);
    }
    if let Some(body) = &request.body {
        http = http.body("application/json", body.clone().into_bytes());
    }
    let answer = http.send().await?;
    Ok((answer.status, answer.body))
}

/// One WebSocket, from connect to close, reporting to the driver.
async fn run_socket(
    id: u64,
    url: String,
    origin: String,
    io: mpsc::UnboundedSender<Io>,
    mut commands: mpsc::UnboundedReceiver<SocketCommand>,
) {
    // Nothing is sent before the socket opens; a close (or the page going
    // away) while connecting ends the attempt.
    let opened = tokio::select! {
        opened = open_socket(&url, &origin) => opened,
        () = async {
            while let Some(SocketCommand::Send(_)) = commands.recv().await {}
        } => return,
    };
    let Ok(mut socket) = opened else {
        let _ = io.send(Io::Closed {
            socket: id,
            code: 1006,
        });
        return;
    };
    let _ = io.send(Io::Opened { socket: id });
    loop {
        tokio::select! {
            command = commands.recv() => match command {
                Some(SocketCommand::Send(bytes)) => {
                    // A failed send shows up as the next read's failure.
                    let _ = socket.send(Message::Binary(bytes.into())).await;
                }
                Some(SocketCommand::Close { code, reason }) => {
                    let frame = CloseFrame { code: code.into(), reason: reason.into() };
                    let _ = socket.close(Some(frame)).await;
                    return;
                }
                None => {
                    let _ = socket.close(None).await;
                    return;
                }
            },
            message = socket.next() => match message {
                Some(Ok(Message::Binary(bytes))) => {
                    let _ = io.send(Io::Message { socket: id, bytes: bytes.to_vec() });
                }
                Some(Ok(Message::Close(frame))) => {
                    let code = frame.map_or(1005, |f| u16::from(f.code));
                    let _ = io.send(Io::Closed { socket: id, code });
                    // Let tungstenite answer the close, briefly.
                    let _ = tokio::time::timeout(Duration::from_secs(1), async {
                        while socket.next().await.is_some() {}
                    })
                    .await;
                    return;
                }
                // A text message is not an ArrayBuffer: the page ignores it.
                Some(Ok(_)) => {}
                Some(Err(_)) | None => {
                    let _ = io.send(Io::Closed { socket: id, code: 1006 });
                    return;
                }
            },
        }
    }
}

/// The shipping client in a page of its own; see the module comment.
/// Dropping it closes the page: its driver stops and its socket closes.
pub struct NativePage {
    page: Arc<Mutex<Page>>,
    wake: Arc<Notify>,
    changed: watch::Receiver<u64>,
    driver: JoinHandle<()>,
}

impl NativePage {
    /// Loads the page: from here on it signs in, finds its session through
    /// the directory and connects, on its own.
    pub fn open(options: PageOptions) -> NativePage {
        let loaded = Instant::now();
        let conn = Connection::start(
            options.choice,
            options.size,
            0,
            options.seed,
            options.origin.clone(),
        );
        let page = Arc::new(Mutex::new(Page {
            conn,
            screen: Screen::new(options.size),
            loaded,
            cookie: options.cookie,
            notices: Vec::new(),
            remembered: None,
            sent_to_sign_in: None,
            last_hello: None,
            events: VecDeque::new(),
            changed_at: loaded,
            sockets_opened: 0,
        }));
        let (io_tx, io_rx) = mpsc::unbounded_channel();
        let wake = Arc::new(Notify::new());
        let (changed_tx, changed) = watch::channel(0);
        let driver = Driver {
            page: page.clone(),
            origin: options.origin,
            io: io_tx,
            socket: None,
            next_socket: 0,
            fetches: HashMap::new(),
        };
        // The first actions (asking who is signed in) were queued by
        // `start`: the driver carries them out before waiting for anything.
        wake.notify_one();
        let driver = tokio::spawn(driver.run(io_rx, wake.clone(), changed_tx));
        NativePage {
            page,
            wake,
            changed,
            driver,
        }
    }

    /// Reads the page.
    pub fn with_page<R>(&self, read: impl FnOnce(&Page) -> R) -> R {
        read(&lock(&self.page))
    }

    /// Acts on the page, then lets the driver carry out what it queued.
    fn act<R>(&self, act: impl FnOnce(&mut Page) -> R) -> R {
        let result = act(&mut lock(&self.page));
        self.wake.notify_one();
        result
    }

    pub fn host(&self) -> Option<String> {
        self.with_page(|p| p.host().map(str::to_owned))
    }

    pub fn epoch(&self) -> Option<u64> {
        self.with_page(Page::epoch)
    }

    pub fn session(&self) -> Option<SessionId> {
        self.with_page(Page::session)
    }

    pub fn phase(&self) -> Phase {
        self.with_page(Page::phase)
    }

    pub fn undelivered(&self) -> u64 {
        self.with_page(Page::undelivered)
    }

    /// The visible rows joined by newlines.
    pub fn text(&self) -> String {
        self.with_page(|p| p.screen.text())
    }

    /// Types `text` as the keyboard would; fails if the page refused it
    /// (closed, or too much input waiting).
    pub fn type_str(&self, text: &str) -> Result<()> {
        let bytes = keys::encode_text(text);
        let (accepted, state) = self.act(|p| (p.send_input(&bytes), p.describe()));
        if !accepted {
            bail!("the page refused typing {text:?}: {state}");
        }
        Ok(())
    }

    /// Enter on the "closed" notice: try again (a new session after the
    /// program exited), as the page's keyboard handler does; returns
    /// whether the notice took the key.
    pub fn press_enter_to_reconnect(&self) -> bool {
        self.act(|p| {
            let now = p.now();
            p.conn.enter_on_notice(now)
        })
    }

    /// The "Take it back" button of a replaced page.
    pub fn take_back(&self) {
        self.act(|p| {
            let now = p.now();
            p.conn.take_back(now);
        });
    }

    /// The window was resized to `size` cells.
    pub fn resize(&self, size: Size) {
        self.act(|p| p.conn.resize(size));
    }

    /// The browser signed in again: later requests carry `cookie`.
    pub fn set_cookie(&self, cookie: &str) {
        self.act(|p| p.cookie = cookie.to_owned());
    }

    /// Waits until `ready` holds for the page; returns when the page
    /// changed to make it hold (or now, if it already did). Fails after
    /// `timeout` with `what`, the page's state and its screen.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        what: &str,
        mut ready: impl FnMut(&Page) -> bool,
    ) -> Result<Instant> {
        let deadline = Instant::now() + timeout;
        let mut changed = self.changed.clone();
        loop {
            changed.borrow_and_update();
            {
                let page = lock(&self.page);
                if ready(&page) {
                    return Ok(page.changed_at);
                }
            }
            match tokio::time::timeout_at(deadline, changed.changed()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => bail!("the page stopped while waiting for {what}"),
                Err(_) => {
                    let (state, text) = self.with_page(|p| (p.describe(), p.screen.text()));
                    bail!(
                        "timed out after {timeout:?} waiting for {what}; the page is {state}; screen:\n{text}"
                    )
                }
            }
        }
    }

    /// [`NativePage::wait_for`] on the screen alone.
    pub async fn wait_screen(
        &self,
        timeout: Duration,
        what: &str,
        mut ready: impl FnMut(&Screen) -> bool,
    ) -> Result<Instant> {
        self.wait_for(timeout, what, |p| ready(&p.screen)).await
    }

    /// Waits until the page is live with a frame on its screen.
    pub async fn wait_live(&self, timeout: Duration) -> Result<Instant> {
        self.wait_for(timeout, "the page to be live", |p| {
            p.is_live() && p.screen.frames() > 0
        })
        .await
    }

    /// Waits until the page is live at the shell's prompt.
    pub async fn wait_prompt(&self, timeout: Duration) -> Result<Instant> {
        self.wait_for(timeout, "a live page at the prompt", |p| {
            p.is_live() && p.screen.at_prompt()
        })
        .await
    }

    /// Types `command` + Enter and waits until a line of output equal to
    /// `expected` appears and the prompt is back.
    pub async fn run_expecting(
        &self,
        command: &str,
        expected: &str,
        timeout: Duration,
    ) -> Result<Instant> {
        self.type_str(&format!("{command}\r"))?;
        self.wait_screen(
            timeout,
            &format!("`{command}` to print {expected:?}"),
            |s| s.has_line(expected) && s.at_prompt(),
        )
        .await
    }

    /// Waits for the first socket close after `since` (taken with
    /// `tokio::time::Instant::now()` before causing it) and returns its code.
    pub async fn wait_close_since(&self, since: Instant, timeout: Duration) -> Result<u16> {
        self.wait_for(timeout, "the socket to close", |p| {
            p.close_since(since).is_some()
        })
        .await?;
        self.with_page(|p| p.close_since(since))
            .context("the close vanished")
    }

    /// The session the page shows; fails while it has none.
    pub fn session_id(&self) -> Result<SessionId> {
        self.session().context("the page has no session")
    }
}

impl Drop for NativePage {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

impl Terminal for &NativePage {
    async fn keys(&mut self, text: &str) -> Result<()> {
        self.type_str(text)
    }

    async fn screen_until(
        &mut self,
        timeout: Duration,
        what: &str,
        ready: impl FnMut(&Screen) -> bool,
    ) -> Result<()> {
        self.wait_screen(timeout, what, ready).await.map(|_| ())
    }

    fn screen_text(&self) -> String {
        self.text()
    }
}
