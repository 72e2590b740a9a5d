//! Talking to hosts: asking an owner's `/healthz` whether its process is
//! still there, and telling a host that a user ended a session.
//!
//! The probe looks for positive evidence that a host is gone, because that
//! is the only thing that lets the directory move a session before the
//! host's lease expires (DESIGN.md promise 2). A refused connection means
//! nothing listens at the address; an answer naming another host means the
//! address now belongs to someone else. Everything else (a timeout, a
//! reset, a failed TLS handshake, garbage) is inconclusive: a partitioned
//! or stopped host looks exactly like that, and moving its sessions would
//! run them twice.
//!
//! One short-lived HTTP/1.1 connection per call on hyper (already in the
//! tree through axum). `https://` hosts are reached over TLS when the
//! directory was given their CA (`--host-ca`); without it they cannot be
//! probed, which only means their sessions wait for the lease to expire.

use std::io::ErrorKind;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use http_body_util::{BodyExt, Empty, Limited};
use hyper::{Method, Request, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite};

use directory_api::HostHealth;
use protocol::SessionId;

use crate::failover::ProbeOutcome;
use crate::state::HostToken;

/// A health answer is a few dozen bytes; anything much larger is not one.
const MAX_ANSWER_BYTES: usize = 16 * 1024;

/// How long telling a host about an ended session may take. The store has
/// fenced the host already, so this only bounds how long the user waits.
pub const END_TIMEOUT: Duration = Duration::from_secs(2);

/// Probes `GET {url}/healthz` and says whether the host `expected` is
/// there, gone, or unknown. Never takes longer than `timeout`. `tls` is the
/// trust for `https://` hosts.
pub async fn probe_owner(
    url: &str,
    expected: &str,
    timeout: Duration,
    tls: Option<&Arc<rustls::ClientConfig>>,
) -> ProbeOutcome {
    match tokio::time::timeout(timeout, exchange(url, Method::GET, "/healthz", None, tls)).await {
        Ok(Ok(Exchange::Refused)) => ProbeOutcome::Refused,
        Ok(Ok(Exchange::Answer(_, body))) => match host_named(&body) {
            Ok(host) if host == expected => ProbeOutcome::Alive,
            Ok(host) => ProbeOutcome::OtherHost(host),
            Err(reason) => {
                tracing::debug!(%url, %reason, "probe inconclusive");
                ProbeOutcome::Inconclusive
            }
        },
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

/// Asks the host at `url` to end session `id` at once
/// (`POST {url}/v1/sessions/{id}/end` with the hosts' token). Returns why
/// not if the host did not confirm within [`END_TIMEOUT`].
pub async fn end_on_host(
    url: &str,
    id: SessionId,
    token: Option<&HostToken>,
    tls: Option<&Arc<rustls::ClientConfig>>,
) -> Result<(), String> {
    let authorization = token.map(|token| format!("Bearer {}", token.0));
    let path = format!("/v1/sessions/{id}/end");
    let call = exchange(url, Method::POST, &path, authorization.as_deref(), tls);
    match tokio::time::timeout(END_TIMEOUT, call).await {
        Ok(Ok(Exchange::Answer(status, _))) if status.is_success() => Ok(()),
        Ok(Ok(Exchange::Answer(status, _))) => Err(format!("the host answered {status}")),
        Ok(Ok(Exchange::Refused)) => Err("the host refused the connection".to_owned()),
        Ok(Err(reason)) => Err(reason),
        Err(_) => Err(format!("no answer within {END_TIMEOUT:?}")),
    }
}

enum Exchange {
    Refused,
    Answer(StatusCode, Bytes),
}

/// Which host a `/healthz` answer says it is.
fn host_named(body: &[u8]) -> Result<String, String> {
    serde_json::from_slice::<HostHealth>(body)
        .map(|health| health.host)
        .map_err(|e| format!("not a host's health answer: {e}"))
}

/// One request to `{url}{path}` on a fresh connection.
async fn exchange(
    url: &str,
    method: Method,
    path: &str,
    authorization: Option<&str>,
    tls: Option<&Arc<rustls::ClientConfig>>,
) -> Result<Exchange, String> {
    let uri: Uri = url.parse().map_err(|e| format!("bad url: {e}"))?;
    let https = match uri.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        _ => return Err("only http:// and https:// hosts can be reached".to_owned()),
    };
    let tls = match (https, tls) {
        (true, None) => {
            return Err("an https:// host, and no --host-ca to trust it with".to_owned());
        }
        (true, Some(tls)) => Some(tls.clone()),
        (false, _) => None,
    };
    let host = uri.host().ok_or("url without a host")?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let stream = match tokio::net::TcpStream::connect((host, port)).await {
        Ok(stream) => stream,
        Err(error) if error.kind() == ErrorKind::ConnectionRefused => {
            return Ok(Exchange::Refused);
        }
        Err(error) => return Err(format!("connect: {error}")),
    };
    let _ = stream.set_nodelay(true);
    let path = format!("{}{path}", uri.path().trim_end_matches('/'));
    let authority = uri.authority().map(|a| a.as_str()).unwrap_or(host);
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header(hyper::header::HOST, authority);
    if let Some(authorization) = authorization {
        request = request.header(hyper::header::AUTHORIZATION, authorization);
    }
    let request = request
        .body(Empty::<Bytes>::new())
        .map_err(|e| format!("request: {e}"))?;
    match tls {
        Some(config) => {
            let name = ServerName::try_from(host.to_owned())
                .map_err(|e| format!("not a TLS server name: {e}"))?;
            let stream = tokio_rustls::TlsConnector::from(config)
                .connect(name, stream)
                .await
                .map_err(|e| format!("TLS handshake: {e}"))?;
            send(stream, request).await
        }
        None => send(stream, request).await,
    }
}

async fn send<S>(stream: S, request: Request<Empty<Bytes>>) -> Result<Exchange, String>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| format!("handshake: {e}"))?;
    // The connection task ends when the exchange is done or abandoned.
    tokio::spawn(connection);
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("send: {e}"))?;
    let status = response.status();
    let body = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
        .collect()
        .await
        .map_err(|e| format!("body: {e}"))?
        .to_bytes();
    Ok(Exchange::Answer(status, body))
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
        let outcome = probe_owner(&format!("http://{addr}"), "h1", TIMEOUT, None).await;
        assert_eq!(outcome, ProbeOutcome::Refused);
    }

    #[tokio::test]
    async fn the_owner_answering_as_itself_is_alive_and_another_is_not() {
        let url = serve_health(r#"{"status":"ok","host":"h1"}"#).await;
        assert_eq!(
            probe_owner(&url, "h1", TIMEOUT, None).await,
            ProbeOutcome::Alive
        );
        assert_eq!(
            probe_owner(&format!("{url}/"), "h2", TIMEOUT, None).await,
            ProbeOutcome::OtherHost("h1".to_owned())
        );
    }

    #[tokio::test]
    async fn garbage_and_silence_are_inconclusive() {
        let url = serve_health("not json").await;
        assert_eq!(
            probe_owner(&url, "h1", TIMEOUT, None).await,
            ProbeOutcome::Inconclusive
        );
        // Accepts the connection (the kernel does, from the backlog) but
        // never answers, like a stopped process.
        let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", silent.local_addr().unwrap());
        assert_eq!(
            probe_owner(&url, "h1", Duration::from_millis(200), None).await,
            ProbeOutcome::Inconclusive
        );
        assert_eq!(
            probe_owner("https://example.invalid", "h1", TIMEOUT, None).await,
            ProbeOutcome::Inconclusive
        );
    }
}
