//! A raw client of the Thinline wire protocol, for tests and benchmarks of
//! a host on its own.
//!
//! It speaks exactly what `protocol/PROTOCOL.md` describes, through the
//! `protocol` crate's own codec, and applies frames to the client's own
//! screen model (`web_terminal::screen::Screen`), so tests can wait for
//! "the prompt came back" without a browser. Unlike the shipping client
//! ([`crate::page::NativePage`]) it follows no policy: it does what the
//! test says, and can misbehave on purpose (raw bytes, no acks, an old
//! ticket) because the host must survive clients that do. It also needs no
//! directory, so it serves lone hosts whose tickets the harness signs.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures_util::{SinkExt, StreamExt};
use protocol::{
    ClientToServerMsg, Hello, ServerToClientMsg, SessionId, Size, Welcome, decode_server,
    decompress_lines, encode_client, encode_hello,
};
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{self, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};
use web_terminal::screen::Screen;

use crate::host::HostProcess;
use crate::screen_text::{ScreenText, Terminal};
use crate::tickets;

type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// One thing the host did.
#[derive(Debug)]
pub enum Event {
    Message(ServerToClientMsg),
    /// The host closed the connection with this code and reason.
    Closed {
        code: u16,
        reason: String,
    },
}

/// Opens the WebSocket upgrade with the given `Origin` and reports the HTTP
/// status: 101 when the upgrade succeeded, the refusal's status otherwise.
pub async fn upgrade_status(url: &str, origin: &str) -> Result<u16> {
    match open_socket(url, origin).await {
        Ok(mut socket) => {
            let _ = socket.close(None).await;
            Ok(101)
        }
        Err(err) => match err.downcast_ref::<tungstenite::Error>() {
            Some(tungstenite::Error::Http(response)) => Ok(response.status().as_u16()),
            _ => Err(err),
        },
    }
}

/// Opens a WebSocket to `url` with the `Origin` a page there would send.
pub(crate) async fn open_socket(url: &str, origin: &str) -> Result<Socket> {
    let mut request = url.into_client_request()?;
    request
        .headers_mut()
        .insert("Origin", HeaderValue::from_str(origin)?);
    let config = WebSocketConfig::default().max_message_size(Some(protocol::MAX_SERVER_MESSAGE));
    let (socket, _) = tokio::time::timeout(
        Duration::from_secs(10),
        tokio_tungstenite::connect_async_with_config(request, Some(config), true),
    )
    .await
    .with_context(|| format!("websocket upgrade to {url} took over 10 s"))??;
    Ok(socket)
}

pub struct Client {
    socket: Socket,
    pub screen: Screen,
    pub welcome: Option<Welcome>,
    /// Acknowledge every frame as soon as it is applied (what a real client
    /// does); tests of flow control turn it off.
    pub auto_ack: bool,
    /// Sequence number of the last input sent.
    pub input_seq: u64,
    /// Highest `InputAck` received.
    pub input_acked: u64,
    /// Sequence number of the last frame received.
    pub last_frame: u64,
    /// Frames and their encoded bytes received on this connection.
    pub frames: u64,
    pub frame_bytes: u64,
    /// Set once the host has closed the connection.
    pub closed: Option<(u16, String)>,
    /// The history fetch in flight, by its `before`: like the shipping
    /// client, one block at a time once the first frame is shown.
    fetching: Option<u64>,
}

impl Client {
    /// Opens a socket to `host` with the Origin its page would send.
    pub async fn connect(host: &HostProcess) -> Result<Client> {
        Self::connect_with_origin(&host.ws_url(), &host.origin()).await
    }

    pub async fn connect_with_origin(url: &str, origin: &str) -> Result<Client> {
        Ok(Client {
            socket: open_socket(url, origin).await?,
            // Resized by the first frame.
            screen: Screen::new(Size { cols: 80, rows: 24 }),
            welcome: None,
            auto_ack: true,
            input_seq: 0,
            input_acked: 0,
            last_frame: 0,
            frames: 0,
            frame_bytes: 0,
            closed: None,
            fetching: None,
        })
    }

    /// Connects and completes the handshake with a ticket the harness
    /// signs: a new session for `None`, else `session` at epoch 1 (where a
    /// session a host started stays until it moves). Returns once the first
    /// frame is in.
    pub async fn attach(
        host: &HostProcess,
        session: Option<SessionId>,
        size: Size,
    ) -> Result<Client> {
        let session = session.unwrap_or_else(tickets::new_session_id);
        Self::attach_at(host, session, 1, size).await
    }

    /// Like [`Client::attach`] for `session` at `epoch`.
    pub async fn attach_at(
        host: &HostProcess,
        session: SessionId,
        epoch: u64,
        size: Size,
    ) -> Result<Client> {
        let mut client = Self::connect(host).await?;
        let ticket = host.ticket(session, epoch).await;
        client.handshake(&ticket, session, size).await?;
        Ok(client)
    }

    pub async fn send_raw(&mut self, bytes: Vec<u8>) -> Result<()> {
        self.socket
            .send(Message::Binary(bytes.into()))
            .await
            .context("sending to the host")
    }

    pub async fn send(&mut self, msg: &ClientToServerMsg) -> Result<()> {
        self.send_raw(encode_client(msg)).await
    }

    pub async fn send_hello(&mut self, ticket: &str, session: SessionId, size: Size) -> Result<()> {
        let hello = Hello {
            ticket: ticket.to_string(),
            session,
            size,
        };
        self.send_raw(encode_hello(&hello)).await
    }

    /// Sends a hello and waits for the welcome and the first frame.
    pub async fn handshake(
        &mut self,
        ticket: &str,
        session: SessionId,
        size: Size,
    ) -> Result<Welcome> {
        self.send_hello(ticket, session, size).await?;
        self.handshake_rest(Duration::from_secs(15)).await
    }

    /// After a hello: waits for the welcome and the first frame.
    pub async fn handshake_rest(&mut self, timeout: Duration) -> Result<Welcome> {
        let deadline = Instant::now() + timeout;
        while self.welcome.is_none() || self.frames == 0 {
            match self.next_event_until(deadline).await? {
                Some(Event::Closed { code, reason }) => {
                    bail!("host closed the connection during the handshake: {code} {reason}")
                }
                Some(Event::Message(_)) => {}
                None => bail!("no welcome and first frame within {timeout:?}"),
            }
        }
        let welcome = self.welcome.clone().context("welcome vanished")?;
        self.input_seq = welcome.input_seq;
        Ok(welcome)
    }

    pub fn session(&self) -> Option<SessionId> {
        self.welcome.as_ref().map(|w| w.session)
    }

    /// Sends `data` as the next numbered input; returns its sequence number.
    pub async fn type_bytes(&mut self, data: &[u8]) -> Result<u64> {
        self.input_seq += 1;
        let seq = self.input_seq;
        self.send(&ClientToServerMsg::Input {
            seq,
            data: data.to_vec(),
        })
        .await?;
        Ok(seq)
    }

    pub async fn type_str(&mut self, text: &str) -> Result<u64> {
        self.type_bytes(text.as_bytes()).await
    }

    pub async fn ack(&mut self) -> Result<()> {
        let frame = self.last_frame;
        self.send(&ClientToServerMsg::Ack { frame }).await
    }

    /// Waits for the next event until `deadline`; `None` when it passed.
    /// Frames are applied to [`Client::screen`] (and acknowledged if
    /// `auto_ack`) before they are returned.
    pub async fn next_event_until(&mut self, deadline: Instant) -> Result<Option<Event>> {
        if let Some((code, reason)) = self.closed.clone() {
            return Ok(Some(Event::Closed { code, reason }));
        }
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let next = match tokio::time::timeout(left, self.socket.next()).await {
                Err(_) => return Ok(None),
                Ok(next) => next,
            };
            let message = match next {
                None => return Ok(Some(self.mark_closed(1006, "closed without a close frame"))),
                Some(Err(
                    tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed,
                )) => {
                    return Ok(Some(self.mark_closed(1006, "connection closed")));
                }
                Some(Err(tungstenite::Error::Protocol(err))) => {
                    return Ok(Some(self.mark_closed(1006, &err.to_string())));
                }
                Some(Err(tungstenite::Error::Io(err))) => {
                    return Ok(Some(self.mark_closed(1006, &err.to_string())));
                }
                Some(Err(err)) => return Err(err).context("reading from the host"),
                Some(Ok(message)) => message,
            };
            match message {
                Message::Binary(bytes) => {
                    let msg = decode_server(&bytes).with_context(|| {
                        format!("undecodable host message of {} bytes", bytes.len())
                    })?;
                    self.absorb(&msg, bytes.len()).await?;
                    return Ok(Some(Event::Message(msg)));
                }
                Message::Close(frame) => {
                    let (code, reason) = frame
                        .map(|f| (u16::from(f.code), f.reason.to_string()))
                        .unwrap_or((1005, String::new()));
                    return Ok(Some(self.mark_closed(code, &reason)));
                }
                Message::Text(text) => bail!("host sent a text message: {text}"),
                Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => {}
            }
        }
    }

    fn mark_closed(&mut self, code: u16, reason: &str) -> Event {
        self.closed = Some((code, reason.to_string()));
        Event::Closed {
            code,
            reason: reason.to_string(),
        }
    }

    async fn absorb(&mut self, msg: &ServerToClientMsg, len: usize) -> Result<()> {
        match msg {
            ServerToClientMsg::Welcome(welcome) => {
                // One connection, one attach: its history is fetched anew.
                self.screen.begin_attach(false, welcome.history);
                self.welcome = Some(welcome.clone());
            }
            ServerToClientMsg::History { start, lines } => {
                let lines = decompress_lines(lines).context("history block")?;
                if self.fetching == start.checked_add(lines.len() as u64) {
                    self.fetching = None;
                }
                self.screen.apply_history(*start, lines);
            }
            ServerToClientMsg::Frame(frame) => {
                self.screen.apply_frame(frame.clone());
                self.last_frame = frame.seq;
                self.frames += 1;
                self.frame_bytes += len as u64;
                if self.auto_ack {
                    self.ack().await?;
                }
            }
            ServerToClientMsg::InputAck { seq } => self.input_acked = self.input_acked.max(*seq),
            ServerToClientMsg::Pong { .. }
            | ServerToClientMsg::Exited { .. }
            | ServerToClientMsg::Notice { .. }
            | ServerToClientMsg::Files(_)
            | ServerToClientMsg::Watchers { .. } => {}
        }
        if self.fetching.is_none()
            && self.closed.is_none()
            && let Some((before, from)) = self.screen.history_wanted()
        {
            self.fetching = Some(before);
            self.send(&ClientToServerMsg::FetchHistory { before, from })
                .await?;
        }
        Ok(())
    }

    /// Processes events until `ready(screen)` holds, failing on close or
    /// after `timeout` with `what` and the screen as it was.
    pub async fn wait_for(
        &mut self,
        timeout: Duration,
        what: &str,
        mut ready: impl FnMut(&Screen) -> bool,
    ) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            if ready(&self.screen) {
                return Ok(());
            }
            match self.next_event_until(deadline).await? {
                Some(Event::Message(_)) => {}
                Some(Event::Closed { code, reason }) => bail!(
                    "host closed the connection ({code} {reason}) while waiting for {what}; screen:\n{}",
                    self.screen.text()
                ),
                None => bail!(
                    "timed out after {timeout:?} waiting for {what}; screen:\n{}",
                    self.screen.text()
                ),
            }
        }
    }

    /// Waits until the host has acknowledged input up to `seq`.
    pub async fn wait_input_acked(&mut self, seq: u64, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        while self.input_acked < seq {
            match self.next_event_until(deadline).await? {
                Some(Event::Message(_)) => {}
                Some(Event::Closed { code, reason }) => {
                    bail!("host closed ({code} {reason}) before acknowledging input {seq}")
                }
                None => bail!(
                    "input {seq} not acknowledged within {timeout:?} (acked: {})",
                    self.input_acked
                ),
            }
        }
        Ok(())
    }

    /// Reads until the host closes the connection; returns code and reason.
    pub async fn expect_close(&mut self, timeout: Duration) -> Result<(u16, String)> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.next_event_until(deadline).await? {
                Some(Event::Closed { code, reason }) => return Ok((code, reason)),
                Some(Event::Message(_)) => {}
                None => bail!("the host did not close the connection within {timeout:?}"),
            }
        }
    }

    /// Types `command` + Enter at a prompt and waits until a line of output
    /// equal to `expected` appears and the prompt is back.
    pub async fn run_expecting(
        &mut self,
        command: &str,
        expected: &str,
        timeout: Duration,
    ) -> Result<()> {
        self.type_str(&format!("{command}\r")).await?;
        self.wait_for(
            timeout,
            &format!("`{command}` to print {expected:?}"),
            |screen| screen.has_line(expected) && screen.at_prompt(),
        )
        .await
    }

    /// Closes the connection politely.
    pub async fn close(mut self) {
        let _ = self.socket.close(None).await;
    }
}

impl Terminal for Client {
    async fn keys(&mut self, text: &str) -> Result<()> {
        self.type_str(text).await.map(|_| ())
    }

    async fn screen_until(
        &mut self,
        timeout: Duration,
        what: &str,
        ready: impl FnMut(&Screen) -> bool,
    ) -> Result<()> {
        self.wait_for(timeout, what, ready).await
    }

    fn screen_text(&self) -> String {
        self.screen.text()
    }
}
