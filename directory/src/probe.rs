//! Asking an owner's `/healthz` whether its process is still there.
//!
//! The probe looks for positive evidence that a host is gone, because that
//! is the only thing that lets the directory move a session before the
//! host's lease expires (DESIGN.md promise 2). A refused connection means
//! nothing listens at the address; an answer naming another host means the
//! address now belongs to someone else. Everything else (a timeout, a
//! reset, garbage) is inconclusive: a partitioned or stopped host looks
//! exactly like that, and moving its sessions would run them twice.
//!
//! One short-lived HTTP/1.1 connection on hyper (already in the tree
//! through axum), plain `http://` only: hosts are reached on a private
//! network or loopback.

use std::io::ErrorKind;
use std::time::Duration;

use axum::body::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::{Request, Uri};
use hyper_util::rt::TokioIo;

use crate::failover::ProbeOutcome;

/// A health answer is a few dozen bytes; anything much larger is not one.
const MAX_ANSWER_BYTES: usize = 16 * 1024;

/// Probes `GET {url}/healthz` and says whether the host `expected` is
/// there, gone, or unknown. Never takes longer than `timeout`.
pub async fn probe_owner(url: &str, expected: &str, timeout: Duration) -> ProbeOutcome {
    match tokio::time::timeout(timeout, exchange(url)).await {
        Ok(Ok(Answer::Refused)) => ProbeOutcome::Refused,
        Ok(Ok(Answer::Host(host))) if host == expected => ProbeOutcome::Alive,
        Ok(Ok(Answer::Host(host))) => ProbeOutcome::OtherHost(host),
        Ok(Err(reason)) => {
            tracing::debug!(%url, %reason, "probe inconclusive");
            ProbeOutcome::Inconclusive
        }
        Err(_) => {
            tracing::debug!(%url, ?timeout, "probe timed out");
            ProbeOutcome::Inconclusive
        }
    }
}

enum Answer {
    Refused,
    Host(String),
}

async fn exchange(url: &str) -> Result<Answer, String> {
    let uri: Uri = url.parse().map_err(|e| format!("bad url: {e}"))?;
    if uri.scheme_str() != Some("http") {
        return Err("only http:// hosts can be probed".to_owned());
    }
    let host = uri.host().ok_or("url without a host")?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = uri.port_u16().unwrap_or(80);
    let stream = match tokio::net::TcpStream::connect((host, port)).await {
        Ok(stream) => stream,
        Err(error) if error.kind() == ErrorKind::ConnectionRefused => return Ok(Answer::Refused),
        Err(error) => return Err(format!("connect: {error}")),
    };
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    // The connection task ends when the exchange is done or abandoned.
    tokio::spawn(connection);
    let path = format!("{}/healthz", uri.path().trim_end_matches('/'));
    let authority = uri.authority().map(|a| a.as_str()).unwrap_or(host);
    let request = Request::get(path)
        .header(hyper::header::HOST, authority)
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("request: {e}"))?;
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("send: {e}"))?;
    let body = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
        .collect()
        .await
        .map_err(|e| format!("body: {e}"))?
        .to_bytes();
    let answer: serde_json::Value =
        serde_json::from_slice(&body).map_err(|e| format!("not json: {e}"))?;
    match answer.get("host").and_then(|host| host.as_str()) {
        Some(host) => Ok(Answer::Host(host.to_owned())),
        None => Err("answer without a host field".to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn serve_health(body: &'static str) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app =
            axum::Router::new().route("/healthz", axum::routing::get(move || async move { body }));
        tokio::spawn(async move { axum::serve(listener, app).await });
        format!("http://{addr}")
    }

    const TIMEOUT: Duration = Duration::from_secs(2);

    #[tokio::test]
    async fn a_closed_port_is_refused() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let outcome = probe_owner(&format!("http://{addr}"), "h1", TIMEOUT).await;
        assert_eq!(outcome, ProbeOutcome::Refused);
    }

    #[tokio::test]
    async fn the_owner_answering_as_itself_is_alive_and_another_is_not() {
        let url = serve_health(r#"{"status":"ok","host":"h1"}"#).await;
        assert_eq!(probe_owner(&url, "h1", TIMEOUT).await, ProbeOutcome::Alive);
        assert_eq!(
            probe_owner(&format!("{url}/"), "h2", TIMEOUT).await,
            ProbeOutcome::OtherHost("h1".to_owned())
        );
    }

    #[tokio::test]
    async fn garbage_and_silence_are_inconclusive() {
        let url = serve_health("not json").await;
        assert_eq!(
            probe_owner(&url, "h1", TIMEOUT).await,
            ProbeOutcome::Inconclusive
        );
        // Accepts the connection (the kernel does, from the backlog) but
        // never answers, like a stopped process.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", silent.local_addr().unwrap());
        assert_eq!(
            probe_owner(&url, "h1", Duration::from_millis(200)).await,
            ProbeOutcome::Inconclusive
        );
        assert_eq!(
            probe_owner("https://example.invalid", "h1", TIMEOUT).await,
            ProbeOutcome::Inconclusive
        );
    }
}
