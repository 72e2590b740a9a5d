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
//! - **A whole request within [`REQUEST_TIMEOUT`]** (see
//!   [`request_deadline`]): a body trickled in a byte at a time is cut too.
//!
//! A WebSocket leaves both behind once upgraded: from then on the session's
//! own heartbeat decides when a silent client is gone.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
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

/// The layer that answers 408 to a request not done within
/// [`REQUEST_TIMEOUT`]. WebSocket upgrades answer at once, so the
/// terminal behind one is not under it.
pub fn request_deadline() -> tower_http::timeout::TimeoutLayer {
    tower_http::timeout::TimeoutLayer::with_status_code(
        axum::http::StatusCode::REQUEST_TIMEOUT,
        REQUEST_TIMEOUT,
    )
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
    serve_with(listener, app, HEADER_READ_TIMEOUT, shutdown).await
}

/// [`serve`] with another header deadline (tests use a short one).
pub async fn serve_with<L>(
    mut listener: L,
    app: Router,
    header_read_timeout: Duration,
    shutdown: impl Future<Output = ()> + Send,
) -> std::io::Result<()>
where
    L: Listener<Addr = SocketAddr>,
{
    // HTTP/1.1 only, as the TLS listener's ALPN says: WebSocket upgrades
    // need it, and the answers are small.
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
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

    async fn server() -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = Router::new().route(
            "/",
            get(|ConnectInfo(peer): ConnectInfo<SocketAddr>| async move { peer.ip().to_string() }),
        );
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        tokio::spawn(serve_with(listener, app, SHORT, async {
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
        let server = tokio::spawn(serve_with(listener, Router::new(), SHORT, async {
            let _ = stopped.await;
        }));
        stop.send(()).unwrap();
        let served = tokio::time::timeout(PATIENCE, server).await;
        assert!(matches!(served, Ok(Ok(Ok(())))), "{served:?}");
    }
}
