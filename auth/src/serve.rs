//! Serving an axum app with the edge's connection deadlines.
//!
//! `axum::serve` gives hyper no timer, so hyper enforces no deadline at all:
//! a client that sends half a request line, or opens a connection and says
//! nothing, holds a socket, a task and its buffers for as long as it likes
//! (slowloris). Both servers serve through [`serve`] instead, which is
//! `axum::serve` with hyper's own deadlines switched on:
//!
//! - **Headers within [`HEADER_READ_TIMEOUT`].** hyper starts the clock when
//!   the connection opens and again whenever it falls idle after a
//!   response, so the same deadline is the keep-alive idle timeout.
//! - **A whole request within [`REQUEST_TIMEOUT`]**, answered 408: a body
//!   trickled in a byte at a time is cut too; and bodies are capped.
//!
//! A WebSocket leaves both behind once upgraded: from then on the session's
//! own heartbeat decides when a silent client is gone.

use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::serve::Listener;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use tower::ServiceExt as _;

/// How long a client may take to send a request's headers, from the moment
/// the connection opens or falls idle.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long one request may take from its headers to its answer, body
/// included. Sign-ins wait in the password pool's queue (which answers 503
/// when it is full) well within it.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a graceful shutdown waits for requests in flight.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// The edge's flags, the same on both servers (`#[command(flatten)]`).
#[derive(Clone, Debug, clap::Args)]
pub struct HttpArgs {
    /// Seconds a client may take to send a request's headers; also how
    /// long an idle keep-alive connection is kept.
    #[arg(long, env = "THINLINE_HTTP_HEADER_TIMEOUT_SECS", default_value_t = HEADER_READ_TIMEOUT.as_secs())]
    pub http_header_timeout_secs: u64,
    /// Seconds one request may take from its headers to its answer (408
    /// after); WebSockets, once upgraded, are not under it.
    #[arg(long, env = "THINLINE_HTTP_REQUEST_TIMEOUT_SECS", default_value_t = REQUEST_TIMEOUT.as_secs())]
    pub http_request_timeout_secs: u64,
    /// The largest request body taken, in bytes (413 above).
    #[arg(long, env = "THINLINE_HTTP_MAX_BODY_BYTES", default_value_t = DEFAULT_MAX_BODY_BYTES)]
    pub http_max_body_bytes: usize,
    /// Open HTTP connections at most, WebSockets included; past it new
    /// connections are closed unanswered.
    #[arg(long, env = "THINLINE_MAX_HTTP_CONNECTIONS", default_value_t = DEFAULT_MAX_CONNECTIONS)]
    pub max_http_connections: usize,
    /// Open HTTP connections from one client address (IPv6: one /64) at
    /// most; 0 for none, e.g. behind a reverse proxy.
    #[arg(long, env = "THINLINE_MAX_HTTP_CONNECTIONS_PER_ADDRESS", default_value_t = DEFAULT_MAX_CONNECTIONS_PER_ADDRESS)]
    pub max_http_connections_per_address: usize,
}

impl HttpArgs {
    /// The options these flags ask for; a zero deadline is taken as one
    /// second, since none at all would cut every client.
    pub fn options(&self) -> ServeOptions {
        let secs = |n: u64| Duration::from_secs(n.max(1));
        ServeOptions {
            header_read_timeout: secs(self.http_header_timeout_secs),
            request_timeout: secs(self.http_request_timeout_secs),
            max_body_bytes: self.http_max_body_bytes,
            max_connections: self.max_http_connections,
            max_connections_per_address: self.max_http_connections_per_address,
        }
    }
}

/// The layers every request passes: 408 when not done within the
/// request deadline, and a cap on the body. WebSocket upgrades answer at
/// once, so the terminal behind one is under neither.
fn request_limits(app: Router, options: &ServeOptions) -> Router {
    app.layer(axum::extract::DefaultBodyLimit::max(options.max_body_bytes))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            options.request_timeout,
        ))
}

/// Default of `--max-http-connections`.
pub const DEFAULT_MAX_CONNECTIONS: usize = 16_384;

/// Default of `--max-http-connections-per-address`: far above what
/// browsers open (six per origin, plus one socket per terminal), far below
/// what would let one address hold a server's descriptors.
pub const DEFAULT_MAX_CONNECTIONS_PER_ADDRESS: usize = 256;

/// Default of `--http-max-body-bytes`: every body either server takes is
/// a small form or JSON object.
pub const DEFAULT_MAX_BODY_BYTES: usize = 64 * 1024;

/// The edge's limits on connections and requests.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ServeOptions {
    /// How long a client may take to send a request's headers (also the
    /// idle keep-alive timeout).
    pub header_read_timeout: Duration,
    /// How long one request may take from its headers to its answer.
    pub request_timeout: Duration,
    /// The largest request body taken; a larger one gets 413.
    pub max_body_bytes: usize,
    /// Open connections at most, WebSockets included; past it a new
    /// connection is closed at once.
    pub max_connections: usize,
    /// Open connections from one client address at most (an IPv6 /64
    /// counts as one); 0 for no such cap, behind a proxy that is every
    /// client's address.
    pub max_connections_per_address: usize,
}

impl Default for ServeOptions {
    fn default() -> Self {
        ServeOptions {
            header_read_timeout: HEADER_READ_TIMEOUT,
            request_timeout: REQUEST_TIMEOUT,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_connections_per_address: DEFAULT_MAX_CONNECTIONS_PER_ADDRESS,
        }
    }
}

/// Open connections, in total and per address; a [`Slot`] is one of them.
#[derive(Debug, Default)]
struct Census {
    open: std::sync::Mutex<(usize, std::collections::HashMap<IpAddr, usize>)>,
}

/// One admitted connection, given back when dropped.
struct Slot {
    census: Arc<Census>,
    key: IpAddr,
}

impl Census {
    fn admit(self: &Arc<Self>, peer: IpAddr, options: &ServeOptions) -> Option<Slot> {
        let key = crate::limit::address_key(peer);
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let (total, by_address) = &mut *open;
        let here = by_address.get(&key).copied().unwrap_or(0);
        let per_address_full =
            options.max_connections_per_address > 0 && here >= options.max_connections_per_address;
        if *total >= options.max_connections || per_address_full {
            return None;
        }
        *total += 1;
        by_address.insert(key, here + 1);
        Some(Slot {
            census: Arc::clone(self),
            key,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = self.census.open.lock().unwrap_or_else(|e| e.into_inner());
        let (total, by_address) = &mut *open;
        *total = total.saturating_sub(1);
        if let Some(here) = by_address.get_mut(&self.key) {
            *here = here.saturating_sub(1);
            if *here == 0 {
                by_address.remove(&self.key);
            }
        }
    }
}

/// Serves `app` on `listener` until `shutdown` completes, then waits up to
/// [`SHUTDOWN_GRACE`] for the connections in flight. Handlers see each
/// peer's address as `ConnectInfo<SocketAddr>`, as with
/// `into_make_service_with_connect_info`.
pub async fn serve<L>(
    listener: L,
    app: Router,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()>
where
    L: Listener<Addr = SocketAddr>,
{
    serve_with(listener, app, ServeOptions::default(), shutdown).await
}

/// [`serve`] with other limits.
pub async fn serve_with<L>(
    listener: L,
    app: Router,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()>
where
    L: Listener<Addr = SocketAddr>,
{
    serve_with_streams(listener, app, Router::new(), options, shutdown).await
}

/// [`serve_with`], plus `streams`: routes whose bodies may take longer
/// than any request deadline (a host's file transfers), which are outside
/// the request deadline and the body cap and bound their own bodies. The
/// connection limits and the header deadline hold for them too.
pub async fn serve_with_streams<L>(
    mut listener: L,
    app: Router,
    streams: Router,
    options: ServeOptions,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()>
where
    L: Listener<Addr = SocketAddr>,
{
    let app = request_limits(app, &options).merge(streams);
    let census = Arc::new(Census::default());
    // Refusals are logged once per second at most: a flood must not
    // become a flood of log lines.
    let mut last_refusal_logged: Option<std::time::Instant> = None;
    // HTTP/1.1 only, as the TLS listener's ALPN says: WebSocket upgrades
    // need it, and the answers are small.
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(options.header_read_timeout);
    // Every connection's task holds a receiver: `true` asks it to finish
    // its request in flight and close, and once every receiver is gone
    // (`closed`), every connection is.
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let (io, peer) = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let Some(slot) = census.admit(peer.ip(), &options) else {
            // Closed unanswered: an answer would cost what the cap saves.
            if last_refusal_logged.is_none_or(|at| at.elapsed() >= Duration::from_secs(1)) {
                last_refusal_logged = Some(std::time::Instant::now());
                tracing::warn!(
                    %peer,
                    max = options.max_connections,
                    max_per_address = options.max_connections_per_address,
                    "refused a connection: too many open, in total or from this address"
                );
            }
            drop(io);
            continue;
        };
        let app = app.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            let app = app.clone();
            async move {
                let response = app.oneshot(request).await;
                Ok::<_, Infallible>(match response {
                    Ok(response) => response,
                    Err(never) => match never {},
                })
            }
        });
        let connection = builder
            .serve_connection(TokioIo::new(io), service)
            .with_upgrades();
        let mut stopping = stopping.clone();
        tokio::spawn(async move {
            let _slot = slot;
            let mut connection = std::pin::pin!(connection);
            let ended = tokio::select! {
                ended = connection.as_mut() => ended,
                () = async {
                    // A closed channel (the server gone) means stop too.
                    let _ = stopping.wait_for(|stop| *stop).await;
                } => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            // A client that stalls or breaks the protocol ends only its
            // own connection; hyper has already answered what it could.
            if let Err(error) = ended {
                tracing::debug!(%peer, %error, "connection ended");
            }
        });
    }
    drop(listener);
    drop(stopping);
    let _ = stop.send(true);
    if tokio::time::timeout(SHUTDOWN_GRACE, stop.closed())
        .await
        .is_err()
    {
        tracing::warn!(
            "connections still open {SHUTDOWN_GRACE:?} after shutdown began; closing them"
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::{TcpListener, TcpStream};

    const SHORT: Duration = Duration::from_millis(300);
    /// Far longer than SHORT: a connection still open by then was not cut.
    const PATIENCE: Duration = Duration::from_secs(5);

    fn short() -> ServeOptions {
        ServeOptions {
            header_read_timeout: SHORT,
            ..ServeOptions::default()
        }
    }

    async fn server() -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
        server_with(short()).await
    }

    async fn server_with(options: ServeOptions) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app =
            Router::new()
                .route(
                    "/",
                    get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move {
                        peer.ip().to_string()
                    }),
                )
                .route(
                    "/echo",
                    axum::routing::post(|body: String| async move { body.len().to_string() }),
                )
                .route(
                    "/slow",
                    get(|| async {
                        tokio::time::sleep(PATIENCE).await;
                        "too late"
                    }),
                );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(serve_with(listener, app, options, async {
            let _ = stopped.await;
        }));
        (addr, stop)
    }

    /// Reads until the server closes; returns what it sent and how long
    /// that took, or `None` if it was still open after `PATIENCE`.
    async fn until_closed(stream: &mut TcpStream) -> Option<(String, Duration)> {
        let started = std::time::Instant::now();
        let mut seen = Vec::new();
        let read = tokio::time::timeout(PATIENCE, stream.read_to_end(&mut seen)).await;
        match read {
            Ok(_) => Some((
                String::from_utf8_lossy(&seen).into_owned(),
                started.elapsed(),
            )),
            Err(_) => None,
        }
    }

    /// Whether a fresh connection to `addr` is served: `GET /` answered.
    async fn served(addr: SocketAddr) -> bool {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let _ = stream
            .write_all(b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
            .await;
        until_closed(&mut stream)
            .await
            .is_some_and(|(answer, _)| answer.starts_with("HTTP/1.1 200"))
    }

    /// Opens `n` connections that say nothing (held open by a long header
    /// deadline).
    async fn hold(addr: SocketAddr, n: usize) -> Vec<TcpStream> {
        let mut held = Vec::new();
        for _ in 0..n {
            held.push(TcpStream::connect(addr).await.unwrap());
        }
        // Accepted and counted before the next connection arrives.
        tokio::time::sleep(Duration::from_millis(200)).await;
        held
    }

    /// One request on a fresh connection; the whole answer.
    async fn ask(addr: SocketAddr, request: String) -> String {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        until_closed(&mut stream)
            .await
            .map(|(answer, _)| answer)
            .unwrap_or_default()
    }

    #[tokio::test]
    async fn a_body_past_the_cap_is_refused_and_one_within_it_taken() {
        let (addr, _stop) = server_with(ServeOptions {
            max_body_bytes: 1000,
            ..short()
        })
        .await;
        let post = |len: usize| {
            format!(
                "POST /echo HTTP/1.1\r\nHost: a\r\nConnection: close\r\nContent-Length: {len}\r\n\r\n{}",
                "x".repeat(len)
            )
        };
        let within = ask(addr, post(1000)).await;
        assert!(
            within.starts_with("HTTP/1.1 200") && within.ends_with("1000"),
            "{within}"
        );
        let past = ask(addr, post(1001)).await;
        assert!(past.starts_with("HTTP/1.1 413"), "{past}");
    }

    #[tokio::test]
    async fn a_request_not_answered_in_time_gets_408() {
        let (addr, _stop) = server_with(ServeOptions {
            request_timeout: SHORT,
            ..short()
        })
        .await;
        let answer = ask(
            addr,
            "GET /slow HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n".to_owned(),
        )
        .await;
        assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    }

    #[tokio::test]
    async fn one_address_holds_at_most_its_share_of_connections() {
        let (addr, _stop) = server_with(ServeOptions {
            header_read_timeout: PATIENCE * 4,
            max_connections: 100,
            max_connections_per_address: 2,
            ..ServeOptions::default()
        })
        .await;
        let mut held = hold(addr, 2).await;
        // The third from the same address is closed at once, unanswered.
        let mut third = TcpStream::connect(addr).await.unwrap();
        let (answer, after) = until_closed(&mut third)
            .await
            .expect("the third stayed open");
        assert_eq!(answer, "");
        assert!(after < PATIENCE, "{after:?}");
        // One closed gives its place back.
        held.pop();
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(served(addr).await, "a freed place was not given back");
    }

    #[tokio::test]
    async fn the_server_holds_at_most_its_total_of_connections() {
        let (addr, _stop) = server_with(ServeOptions {
            header_read_timeout: PATIENCE * 4,
            max_connections: 2,
            // No cap per address: a proxy in front is every client.
            max_connections_per_address: 0,
            ..ServeOptions::default()
        })
        .await;
        let mut held = hold(addr, 2).await;
        assert!(
            !served(addr).await,
            "a third connection was served past the total"
        );
        held.clear();
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(served(addr).await);
        assert!(served(addr).await);
    }

    #[tokio::test]
    async fn a_trickled_header_is_cut_at_the_deadline() {
        let (addr, _stop) = server().await;
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: a\r\n")
            .await
            .unwrap();
        let (_, after) = until_closed(&mut stream).await.expect("still open");
        assert!(after >= SHORT / 2, "cut too early: {after:?}");
    }

    #[tokio::test]
    async fn a_silent_connection_is_cut() {
        let (addr, _stop) = server().await;
        let mut stream = TcpStream::connect(addr).await.unwrap();
        let (sent, _) = until_closed(&mut stream).await.expect("still open");
        assert!(sent.is_empty(), "{sent}");
    }

    #[tokio::test]
    async fn an_idle_keep_alive_connection_is_cut_after_its_answer() {
        let (addr, _stop) = server().await;
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            .await
            .unwrap();
        let (sent, _) = until_closed(&mut stream).await.expect("still open");
        assert!(sent.starts_with("HTTP/1.1 200"), "{sent}");
        assert!(
            sent.ends_with("127.0.0.1"),
            "the handler sees the peer: {sent}"
        );
    }

    #[tokio::test]
    async fn shutdown_ends_the_server() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve_with(listener, Router::new(), short(), async {
            let _ = stopped.await;
        }));
        stop.send(()).unwrap();
        let served = tokio::time::timeout(PATIENCE, server).await;
        assert!(matches!(served, Ok(Ok(Ok(())))), "{served:?}");
    }
}
