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
//! A driver task (`driver.rs`) does all of that for as long as the page
//! lives, as the browser's event loop would, whether or not the test is
//! looking. The
//! test reads the page through [`NativePage::with_page`] and waits on
//! predicates over it with [`NativePage::wait_for`], which also says when
//! the page changed to satisfy it: the benchmark's clock.

mod driver;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use protocol::{Hello, SessionId, Size};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use web_terminal::connection::{Connection, Phase, SessionChoice, TYPING_REFUSED};
use web_terminal::keys;
use web_terminal::screen::Screen;

use self::driver::Driver;
use crate::screen_text::{ScreenText, Terminal};

/// Events the page keeps for tests and the benchmark, newest last.
const EVENTS_KEPT: usize = 4096;

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
    /// Scrollback lines that arrived in `History` blocks (fetched, or sent
    /// ahead of a frame), for measuring what a reattach costs.
    history_lines_received: u64,
    /// Of those, lines the page already held when they arrived: history
    /// sent again.
    history_lines_resent: u64,
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
    pub fn history_lines_received(&self) -> u64 {
        self.history_lines_received
    }

    /// History lines that arrived although the page held them already.
    pub fn history_lines_resent(&self) -> u64 {
        self.history_lines_resent
    }

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

fn lock(page: &Mutex<Page>) -> MutexGuard<'_, Page> {
    // A panic while holding the lock is a bug in a test; the page itself
    // is still consistent (each call into the machine is whole).
    page.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
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
            history_lines_received: 0,
            history_lines_resent: 0,
        }));
        let wake = Arc::new(Notify::new());
        let (changed_tx, changed) = watch::channel(0);
        let (driver, io_rx) = Driver::new(page.clone(), options.origin);
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
