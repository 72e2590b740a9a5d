//! The WebSocket endpoint: admission (Origin, connections per address,
//! hello, ticket, sign-in) and the pump between one client and its
//! session.
//!
//! Every refusal is a close frame with a specific code from
//! `protocol::CloseCode`, so the client can tell the user what to do, and
//! nothing a client sends can affect another connection. A socket reaches
//! exactly the one session its ticket names: every message it sends goes to
//! that session and no other.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::{SinkExt, StreamExt};
use protocol::{
    ClientToServerMsg, CloseCode, DecodeError, Hello, MAX_CLIENT_MESSAGE, ServerToClientMsg,
    decode_client, decode_hello, encode_server,
};
use tokio::sync::{mpsc, oneshot};

use crate::AppState;
use crate::admission::{self, LoginLookup, LoginVerdict, Refusal};
use crate::registry::{STORE_READ_TIMEOUT, StartError};
use crate::session::{Command, Outgoing, SessionCmd, SessionHandle, outgoing_channel};

/// How long a client may take to send its hello.
const HELLO_TIMEOUT: Duration = Duration::from_secs(10);

/// WebSocket buffers: small, because most connections are idle terminals
/// (see NOTES.md: the defaults cost ~130 KiB per idle connection).
const SOCKET_BUFFER: usize = 4 * 1024;

/// The transport refuses anything above this outright; between
/// `MAX_CLIENT_MESSAGE` and this we refuse it ourselves with a clean 1009.
const TRANSPORT_MESSAGE_LIMIT: usize = 4 * MAX_CLIENT_MESSAGE;

static NEXT_CONN: AtomicU64 = AtomicU64::new(1);

pub async fn upgrade(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if !state.origin_allowed(origin) {
        state.metrics.connection_refused();
        tracing::warn!(origin, "refused a WebSocket from a foreign origin");
        let reason = if origin.is_empty() {
            "missing Origin header"
        } else {
            "this origin may not open a terminal on this host"
        };
        return (StatusCode::FORBIDDEN, reason).into_response();
    }
    // Counted from before the upgrade until the socket is gone, whichever
    // way it goes.
    let slot = state.connections.try_acquire(peer.ip());
    ws.read_buffer_size(SOCKET_BUFFER)
        .write_buffer_size(SOCKET_BUFFER)
        .max_write_buffer_size(8 * 1024 * 1024)
        .max_message_size(TRANSPORT_MESSAGE_LIMIT)
        .max_frame_size(TRANSPORT_MESSAGE_LIMIT)
        .on_upgrade(move |socket| async move {
            match slot {
                Some(_slot) => serve(socket, state).await,
                // Upgraded only to say why: a plain HTTP refusal would reach
                // the page as a nameless failed WebSocket.
                None => {
                    let peer = peer.ip().to_string();
                    let detail = format!("too many connections from {peer}");
                    refuse(socket, &state, CloseCode::TooManyConnections, &detail).await;
                }
            }
        })
}

fn close_message(code: CloseCode) -> Message {
    Message::Close(Some(CloseFrame {
        code: code.code(),
        reason: code.advice().into(),
    }))
}

fn decode_error_code(error: &DecodeError) -> CloseCode {
    match error {
        DecodeError::TooLarge { .. } => CloseCode::TooBig,
        DecodeError::VersionMismatch { .. } => CloseCode::VersionMismatch,
        _ => CloseCode::Malformed,
    }
}

/// tungstenite reports an over-limit message only as an error string.
fn is_capacity_error(error: &axum::Error) -> bool {
    let text = error.to_string();
    text.contains("Message too long") || text.contains("Space limit exceeded")
}

async fn refuse(mut socket: WebSocket, state: &AppState, code: CloseCode, detail: &str) {
    state.metrics.connection_refused();
    tracing::info!(close = code.code(), detail, "refused a connection");
    let _ = socket.send(close_message(code)).await;
}

async fn read_hello(socket: &mut WebSocket) -> Result<Hello, (CloseCode, String)> {
    let first = tokio::time::timeout(HELLO_TIMEOUT, socket.recv()).await;
    let message = match first {
        Err(_) => return Err((CloseCode::HandshakeTimeout, "no hello".into())),
        Ok(None) => return Err((CloseCode::Normal, "closed before hello".into())),
        Ok(Some(Err(error))) if is_capacity_error(&error) => {
            return Err((CloseCode::TooBig, error.to_string()));
        }
        Ok(Some(Err(error))) => return Err((CloseCode::BadHello, error.to_string())),
        Ok(Some(Ok(message))) => message,
    };
    match message {
        Message::Binary(bytes) => decode_hello(&bytes).map_err(|error| {
            let code = match error {
                DecodeError::TooLarge { .. } => CloseCode::TooBig,
                DecodeError::VersionMismatch { .. } => CloseCode::VersionMismatch,
                _ => CloseCode::BadHello,
            };
            (code, error.to_string())
        }),
        Message::Text(text) if text.len() > MAX_CLIENT_MESSAGE => {
            Err((CloseCode::TooBig, "text hello".into()))
        }
        _ => Err((
            CloseCode::BadHello,
            "first message was not a binary hello".into(),
        )),
    }
}

/// Refuses a connection the admission rules turned away; the log says why
/// (never with the ticket), the client gets the code.
async fn refuse_admission(socket: WebSocket, state: &AppState, hello: &Hello, refusal: &Refusal) {
    tracing::info!(session = %hello.session, reason = %refusal, "ticket refused");
    refuse(socket, state, refusal.close_code(), "admission").await;
}

async fn serve(mut socket: WebSocket, state: AppState) {
    let hello = match read_hello(&mut socket).await {
        Ok(hello) => hello,
        Err((code, detail)) => return refuse(socket, &state, code, &detail).await,
    };
    let claims = match admission::verify_ticket(
        &state.tickets,
        &hello.ticket,
        auth::ticket::now_ms(),
        state.registry.host(),
        hello.session,
    ) {
        Ok(claims) => claims,
        Err(refusal) => return refuse_admission(socket, &state, &hello, &refusal).await,
    };
    if !state.standing.admits_clients() {
        // Sessions leave a draining host; none may arrive, not even by
        // attaching to one still here.
        return refuse(socket, &state, CloseCode::GoingAway, "draining").await;
    }
    match check_login(&state, &claims).await {
        Ok(LoginVerdict::Live) => {}
        Ok(LoginVerdict::Unchecked) => {
            tracing::warn!(
                session = %hello.session,
                user = %claims.user,
                "the store is unavailable: admitted on the ticket alone, without checking its sign-in"
            );
        }
        Err(refusal) => return refuse_admission(socket, &state, &hello, &refusal).await,
    }
    let conn = NEXT_CONN.fetch_add(1, Ordering::Relaxed);
    // Watched from before the attach, so a sign-out during it still counts.
    // A viewer's socket also ends with its share (as the store writes ids).
    let share = claims.share.as_ref().map(|grant| {
        grant
            .id
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    });
    let mut sign_in = state.logins.watch_viewer(
        auth::login::LoginId(claims.login).to_string(),
        &claims.user,
        conn,
        share,
    );
    let (out_tx, out_rx) = outgoing_channel();
    let session = match attach(&state, &claims, &hello, conn, out_tx.clone()).await {
        Ok(session) => session,
        Err(StartError::Refused(refusal)) => {
            return refuse_admission(socket, &state, &hello, &refusal).await;
        }
        Err(StartError::Full(_)) => {
            return refuse(socket, &state, CloseCode::Overloaded, "host full").await;
        }
        Err(StartError::Draining | StartError::AlreadyRunning(_)) => {
            return refuse(socket, &state, CloseCode::GoingAway, "try again").await;
        }
        Err(StartError::NoLease) => {
            // Its live sessions go on, but a session that does not run here
            // must go where the directory finds a host with a lease.
            tracing::info!(session = %hello.session, "no lease: a session that does not run here was sent elsewhere");
            return refuse(socket, &state, CloseCode::GoingAway, "no lease").await;
        }
        Err(StartError::Spawn(error)) => {
            tracing::error!(%error, "could not start a session");
            return refuse(socket, &state, CloseCode::SpawnFailed, "spawn failed").await;
        }
        Err(StartError::Store(error)) => {
            // Another host took the session first, or the store is down:
            // either way the client should ask again shortly.
            tracing::warn!(session = %hello.session, %error, "could not look up or restore a session");
            let code = if error.is_transient() {
                CloseCode::GoingAway
            } else {
                CloseCode::SessionLost
            };
            return refuse(socket, &state, code, "store").await;
        }
    };
    state.metrics.connection_admitted();
    let (sink, stream) = socket.split();
    let writer = tokio::spawn(write_loop(sink, out_rx, state.clone()));
    let outcome = tokio::select! {
        outcome = read_loop(stream, &session, conn, &out_tx) => outcome,
        ending = sign_in.ended() => {
            tracing::info!(session = %hello.session, user = %claims.user, ?ending, "closing a terminal whose sign-in ended");
            Some(ending.close_code())
        }
    };
    drop(sign_in);
    let _ = session
        .tx
        .send(SessionCmd::Core(Command::Detach { conn }))
        .await;
    if let Some(code) = outcome {
        let _ = out_tx.send(Outgoing::Close(code)).await;
    }
    drop(out_tx);
    let _ = writer.await;
}

/// Whether the sign-in behind the ticket is still live, when the host has
/// a store to ask (`admission::check_login` has the rules).
///
/// A store that is down or slow admits, with a warning: the ticket alone
/// proves its user signed in and was allowed this session less than
/// `auth::ticket::MAX_LIFETIME_MS` ago, while refusing would end every
/// reconnect during a store outage, which hosts promise to ride out. A
/// sign-out is then enforced from the store's return on.
async fn check_login(
    state: &AppState,
    claims: &auth::ticket::Claims,
) -> Result<LoginVerdict, Refusal> {
    let Some(store) = state.registry.store() else {
        // No store: the ticket is all there is to check.
        return Ok(LoginVerdict::Live);
    };
    let id = auth::login::LoginId(claims.login).to_string();
    let read = tokio::time::timeout(STORE_READ_TIMEOUT, store.get_login(&id)).await;
    let login = match read {
        Ok(Ok(login)) => login,
        Ok(Err(error)) if !error.is_transient() => {
            // Unreadable rather than unreachable: fail closed.
            tracing::warn!(%error, "could not read a sign-in back from the store");
            None
        }
        Ok(Err(_)) | Err(_) => return admission::check_login(claims, LoginLookup::Unavailable),
    };
    let lookup = match &login {
        Some(login) => LoginLookup::Live { user: &login.user },
        None => LoginLookup::Missing,
    };
    admission::check_login(claims, lookup)
}

/// Finds, restores or starts the session the ticket names, and attaches
/// this connection to it (replacing any connection attached before: hot
/// desking).
async fn attach(
    state: &AppState,
    claims: &auth::ticket::Claims,
    hello: &Hello,
    conn: u64,
    tx: mpsc::Sender<Outgoing>,
) -> Result<SessionHandle, StartError> {
    // A second look only if the session ended between the lookup and the
    // attach: the registry then no longer has it, and admission decides
    // again from the store (an ended session stays ended).
    for _ in 0..2 {
        let may_start = state.standing.takes_new_sessions();
        let opened = state.registry.open(claims, hello.size, may_start).await?;
        let (done, attached) = oneshot::channel();
        let viewer = claims.share.as_ref().map(|grant| {
            let role = protocol::Role::Viewer {
                owner: grant.owner.clone(),
                may_type: grant.may_type,
            };
            (claims.user.clone(), role)
        });
        let command = SessionCmd::Attach {
            conn,
            created: opened.created,
            size: hello.size,
            viewer,
            tx: tx.clone(),
            done,
        };
        if opened.handle.tx.send(command).await.is_ok() && attached.await.is_ok() {
            return Ok(opened.handle);
        }
    }
    Err(Refusal::Ended.into())
}

/// Input allowance per connection: generous for typing and pasting, small
/// enough that one client cannot monopolise a host.
struct InputBudget {
    bytes: f64,
    messages: f64,
    at: Instant,
}

impl InputBudget {
    const BYTES_PER_SEC: f64 = 1024.0 * 1024.0;
    const BYTE_BURST: f64 = 256.0 * 1024.0;
    const MESSAGES_PER_SEC: f64 = 2000.0;
    const MESSAGE_BURST: f64 = 4000.0;

    fn new() -> InputBudget {
        InputBudget {
            bytes: Self::BYTE_BURST,
            messages: Self::MESSAGE_BURST,
            at: Instant::now(),
        }
    }

    /// How long to wait before taking a message of `len` bytes.
    fn charge(&mut self, len: usize) -> Duration {
        let now = Instant::now();
        let elapsed = now.duration_since(self.at).as_secs_f64();
        self.at = now;
        self.bytes = (self.bytes + elapsed * Self::BYTES_PER_SEC).min(Self::BYTE_BURST);
        self.messages = (self.messages + elapsed * Self::MESSAGES_PER_SEC).min(Self::MESSAGE_BURST);
        self.bytes -= len as f64;
        self.messages -= 1.0;
        let wait_bytes = (-self.bytes).max(0.0) / Self::BYTES_PER_SEC;
        let wait_messages = (-self.messages).max(0.0) / Self::MESSAGES_PER_SEC;
        Duration::from_secs_f64(wait_bytes.max(wait_messages))
    }
}

/// Reads client messages until the socket ends; returns the close code to
/// send if the client misbehaved.
async fn read_loop(
    mut stream: futures_util::stream::SplitStream<WebSocket>,
    session: &SessionHandle,
    conn: u64,
    out_tx: &mpsc::Sender<Outgoing>,
) -> Option<CloseCode> {
    let mut budget = InputBudget::new();
    while let Some(message) = stream.next().await {
        let bytes = match message {
            Ok(Message::Binary(bytes)) => bytes,
            Ok(Message::Close(_)) => return None,
            Ok(Message::Ping(_) | Message::Pong(_)) => continue,
            Ok(Message::Text(_)) => return Some(CloseCode::Malformed),
            Err(error) if is_capacity_error(&error) => return Some(CloseCode::TooBig),
            Err(_) => return None,
        };
        let wait = budget.charge(bytes.len());
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
        let msg = match decode_client(&bytes) {
            Ok(msg) => msg,
            Err(error) => {
                tracing::info!(%error, "closing a connection that sent a bad message");
                return Some(decode_error_code(&error));
            }
        };
        if let ClientToServerMsg::Ping { id } = msg {
            let _ = out_tx.try_send(Outgoing::Msg(ServerToClientMsg::Pong { id }));
            continue;
        }
        if let ClientToServerMsg::Input { data, .. } = &msg
            && data.len() > protocol::MAX_INPUT_CHUNK
        {
            return Some(CloseCode::TooBig);
        }
        if session
            .tx
            .send(SessionCmd::Core(Command::Client { conn, msg }))
            .await
            .is_err()
        {
            return None;
        }
    }
    None
}

async fn write_loop(
    mut sink: futures_util::stream::SplitSink<WebSocket, Message>,
    mut rx: mpsc::Receiver<Outgoing>,
    state: AppState,
) {
    // Messages that are ready together (an input ack and the echo's frame)
    // are written together and flushed once: one syscall, one TCP segment.
    'outer: while let Some(first) = rx.recv().await {
        let mut next = Some(first);
        while let Some(outgoing) = next.take() {
            match outgoing {
                Outgoing::Msg(msg) => {
                    let bytes = encode_server(&msg);
                    state.metrics.message_sent(bytes.len());
                    if sink.feed(Message::Binary(bytes.into())).await.is_err() {
                        break 'outer;
                    }
                }
                Outgoing::Close(code) => {
                    let _ = sink.send(close_message(code)).await;
                    break 'outer;
                }
            }
            next = rx.try_recv().ok();
        }
        if sink.flush().await.is_err() {
            break;
        }
    }
    let _ = sink.close().await;
}
