//! The host's side of the directory API: lease renewals and drain.
//!
//! A minimal HTTP/1.1 client on hyper (already in the tree through axum),
//! with one short-lived connection per request so a directory replica that
//! died never leaves a stuck pooled connection behind.

use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::{Method, Request, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Deserialize;

/// Longest one directory request may take before the next replica is tried.
const REQUEST_TIMEOUT: Duration = Duration::from_millis(800);

#[derive(Debug, thiserror::Error)]
pub enum DirectoryError {
    #[error("directory url {0} is not an http://host:port url")]
    BadUrl(String),
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
    token: Option<&HostToken>,
    base: &str,
    method: Method,
    path: &str,
    body: &serde_json::Value,
) -> Result<Vec<u8>, DirectoryError> {
    let url = format!("{}{path}", base.trim_end_matches('/'));
    let uri: hyper::Uri = url
        .parse()
        .map_err(|_| DirectoryError::BadUrl(base.into()))?;
    let (Some(host), Some(port)) = (uri.host(), uri.port_u16()) else {
        return Err(DirectoryError::BadUrl(base.into()));
    };
    let unreachable = |reason: String| DirectoryError::Unreachable {
        url: base.into(),
        reason,
    };
    let exchange = async {
        let stream = tokio::net::TcpStream::connect((host, port))
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        tokio::spawn(connection);
        let mut request = Request::builder()
            .method(method)
            .uri(path)
            .header(hyper::header::HOST, format!("{host}:{port}"))
            .header(hyper::header::CONTENT_TYPE, "application/json");
        if let Some(HostToken(token)) = token {
            request = request.header(hyper::header::AUTHORIZATION, format!("Bearer {token}"));
        }
        let request = request
            .body(Full::new(Bytes::from(body.to_string())))
            .map_err(|e| unreachable(e.to_string()))?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let status = response.status();
        let bytes = response
            .into_body()
            .collect()
            .await
            .map_err(|e| unreachable(e.to_string()))?
            .to_bytes();
        if !status.is_success() {
            return Err(DirectoryError::Refused {
                url: base.into(),
                status,
                body: String::from_utf8_lossy(&bytes).chars().take(200).collect(),
            });
        }
        Ok(bytes.to_vec())
    };
    tokio::time::timeout(REQUEST_TIMEOUT, exchange)
        .await
        .map_err(|_| unreachable("timed out".into()))?
}

/// Renews this host's lease with the first directory that answers.
pub async fn renew(
    token: Option<&HostToken>,
    directories: &[String],
    host: &str,
    public_url: &str,
    ttl: Duration,
    load: usize,
    draining: Option<bool>,
) -> Result<LeaseGrant, DirectoryError> {
    let body = serde_json::json!({
        "url": public_url,
        "ttl_ms": ttl.as_millis() as u64,
        "load": load,
        "draining": draining,
    });
    let path = format!("/v1/hosts/{host}/lease");
    let mut last = DirectoryError::BadUrl("no directory configured".into());
    for base in directories {
        match request(token, base, Method::PUT, &path, &body).await {
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
