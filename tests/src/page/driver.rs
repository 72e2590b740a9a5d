//! The browser's side of a [`NativePage`](super::NativePage): one task
//! that owns its sockets, requests and timer and carries out what the
//! connection asks, as `web-terminal/src/web.rs` does with web-sys (see
//! the page's module comment for the list).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Result;
use futures_util::{SinkExt, StreamExt};
use protocol::decode_hello;
use testkit::http::Request;
use tokio::sync::{Notify, mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use web_terminal::connection::{Action, Delivery};
use web_terminal::directory::{HttpOutcome, HttpRequest};

use super::{Page, PageEvent, lock};
use crate::client::open_socket;

/// A fetch is given up on by the connection machine (its own timeout and
/// `CancelFetch`); this only bounds a request nobody cancels.
const FETCH_LIMIT: Duration = Duration::from_secs(60);

/// The browser's timers take a 32-bit delay; the glue never arms one
/// further ahead than this, and re-arms after every event anyway.
const LONGEST_TIMER_MS: u64 = 60_000;

/// What the page's sockets and requests report to its driver.
pub(super) enum Io {
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
pub(super) struct Driver {
    page: Arc<Mutex<Page>>,
    origin: String,
    io: mpsc::UnboundedSender<Io>,
    socket: Option<HeldSocket>,
    next_socket: u64,
    fetches: HashMap<u64, JoinHandle<()>>,
}

impl Driver {
    /// The driver of `page`, served at `origin`, and where its sockets and
    /// requests report.
    pub(super) fn new(
        page: Arc<Mutex<Page>>,
        origin: String,
    ) -> (Driver, mpsc::UnboundedReceiver<Io>) {
        let (io, reports) = mpsc::unbounded_channel();
        let driver = Driver {
            page,
            origin,
            io,
            socket: None,
            next_socket: 0,
            fetches: HashMap::new(),
        };
        (driver, reports)
    }

    pub(super) async fn run(
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
                if let Delivery::History { start, lines } = &delivery {
                    let numbers = *start..start.saturating_add(lines.len() as u64);
                    let held = numbers.filter(|&n| page.screen.holds_line(n)).count();
                    page.history_lines_received += lines.len() as u64;
                    page.history_lines_resent += held as u64;
                }
                let page = &mut *page;
                if let Some(notice) = page.conn.show(delivery, &mut page.screen) {
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
