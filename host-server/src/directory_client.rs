//! The host's side of the directory API: lease renewals and drain.
//!
//! A minimal HTTP/1.1 client on hyper (already in the tree through axum),
//! over TLS (`tokio-rustls`, trusting `--directory-ca`) for an `https://`
//! directory, with one short-lived connection per request so a directory
//! replica that died never leaves a stuck pooled connection behind.

use std::sync::Arc;
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use tokio::io::{AsyncRead, AsyncWrite};

/// Longest one directory request may take before the next replica is tried.
const REQUEST_TIMEOUT: Duration = Duration::from_millis(800);

/// How a host finds and reports to its directory.
#[derive(Clone, Debug)]
pub struct DirectoryConfig {
    /// Every directory replica; each request tries them in turn.
    pub urls: Vec<String>,
    /// Where clients and the directory reach this host.
    pub public_url: String,
    pub lease_ttl: Duration,
    pub renew_every: Duration,
    /// The hosts' shared secret the directory asks for (THINLINE_HOST_TOKEN).
    pub host_token: Option<HostToken>,
    /// Whom to trust when a directory url is `https://` (`--directory-ca`).
    pub tls: Option<Arc<rustls::ClientConfig>>,
}

#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("directory url {0} is not an http:// or https:// url with a host")]
    BadUrl(String),
    #[error("directory url {0} is https, but no CA to check it was given; pass --directory-ca")]
    NoCa(String),
    #[error("directory {url} is unreachable: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("directory {url} answered {status}: {body}")]
    Refused {
        url: String,
        status: StatusCode,
        body: String,
    },
}

/// The hosts' shared secret; its `Debug` never shows it.
#[derive(Clone)]
pub struct HostToken(pub String);

impl HostToken {
    /// Whether `presented` is this secret, in time independent of where
    /// the two differ (only the length can be learned by timing).
    pub fn matches(&self, presented: &str) -> bool {
        let (a, b) = (self.0.as_bytes(), presented.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl std::fmt::Debug for HostToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HostToken(..)")
    }
}

/// What a renewal grants.
#[derive(Debug, Deserialize)]
pub struct LeaseGrant {
    /// An operator asked the directory to drain this host.
    pub draining: bool,
}

/// Sends one JSON request to one directory and returns the body.
pub async fn request(
    config: &DirectoryConfig,
    base: &str,
    method: Method,
    path: &str,
    body: &serde_json::Value,
) -> Result<Vec<u8>, DirectoryError> {
    let url = format!("{}{path}", base.trim_end_matches('/'));
    let uri: hyper::Uri = url
        .parse()
        .map_err(|_| DirectoryError::BadUrl(base.into()))?;
    let https = match uri.scheme_str() {
        Some("https") => true,
        Some("http") => false,
        _ => return Err(DirectoryError::BadUrl(base.into())),
    };
    let Some(host) = uri.host() else {
        return Err(DirectoryError::BadUrl(base.into()));
    };
    let port = uri.port_u16().unwrap_or(if https { 443 } else { 80 });
    let authority = uri
        .authority()
        .map_or_else(|| host.to_owned(), |a| a.to_string());
    // An IPv6 literal comes bracketed; connecting and checking the
    // certificate want the bare address.
    let bare_host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let tls = match (https, &config.tls) {
        (false, _) => None,
        (true, Some(tls)) => Some(tls.clone()),
        (true, None) => return Err(DirectoryError::NoCa(base.into())),
    };
    let unreachable = |reason: String| DirectoryError::Unreachable {
        url: base.into(),
        reason,
    };
    let mut request = Request::builder()
        .method(method)
        .uri(path)
        .header(hyper::header::HOST, authority)
        .header(hyper::header::CONTENT_TYPE, "application/json");
    if let Some(HostToken(token)) = &config.host_token {
        request = request.header(hyper::header::AUTHORIZATION, format!("Bearer {token}"));
    }
    let request = request
        .body(Full::new(Bytes::from(body.to_string())))
        .map_err(|e| unreachable(e.to_string()))?;
    let exchange = async {
        let stream = tokio::net::TcpStream::connect((bare_host.as_str(), port))
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let _ = stream.set_nodelay(true);
        match tls {
            None => send(stream, request).await,
            Some(tls) => {
                let name = rustls::pki_types::ServerName::try_from(bare_host.clone())
                    .map_err(|_| DirectoryError::BadUrl(base.into()))?;
                let stream = tokio_rustls::TlsConnector::from(tls)
                    .connect(name, stream)
                    .await
                    .map_err(|e| unreachable(format!("TLS: {e}")))?;
                send(stream, request).await
            }
        }
        .map_err(|e| unreachable(e.to_string()))
    };
    let (status, bytes) = tokio::time::timeout(REQUEST_TIMEOUT, exchange)
        .await
        .map_err(|_| unreachable("timed out".into()))??;
    if !status.is_success() {
        return Err(DirectoryError::Refused {
            url: base.into(),
            status,
            body: String::from_utf8_lossy(&bytes).chars().take(200).collect(),
        });
    }
    Ok(bytes.to_vec())
}

/// One request and its whole answer over a fresh connection.
async fn send<IO>(
    io: IO,
    request: Request<Full<Bytes>>,
) -> Result<(StatusCode, Bytes), hyper::Error>
where
    IO: AsyncRead + AsyncWrite + Send + Unpin + 'static,
{
    let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(io)).await?;
    tokio::spawn(connection);
    let response = sender.send_request(request).await?;
    let status = response.status();
    let bytes = response.into_body().collect().await?.to_bytes();
    Ok((status, bytes))
}

/// Renews this host's lease with the first directory that answers.
pub async fn renew(
    config: &DirectoryConfig,
    host: &str,
    load: usize,
    draining: Option<bool>,
) -> Result<LeaseGrant, DirectoryError> {
    let body = serde_json::json!({
        "url": config.public_url,
        "ttl_ms": config.lease_ttl.as_millis() as u64,
        "load": load,
        "draining": draining,
    });
    let path = format!("/v1/hosts/{host}/lease");
    let mut last = DirectoryError::BadUrl("no directory configured".into());
    for base in &config.urls {
        match request(config, base, Method::PUT, &path, &body).await {
            Ok(bytes) => {
                return serde_json::from_slice(&bytes).map_err(|e| DirectoryError::Refused {
                    url: base.clone(),
                    status: StatusCode::OK,
                    body: format!("unreadable lease grant: {e}"),
                });
            }
            Err(error) => last = error,
        }
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_token_matches_only_itself() {
        let token = HostToken("s3cret-token".into());
        assert!(token.matches("s3cret-token"));
        assert!(!token.matches("s3cret-tokeN"));
        assert!(!token.matches("s3cret-token "));
        assert!(!token.matches(""));
        assert_eq!(format!("{token:?}"), "HostToken(..)");
    }
}
