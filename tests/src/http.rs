//! A minimal HTTP client for the tests' loopback calls (`/healthz`,
//! `/metrics`, the directory's JSON API).
//!
//! A handful of small requests do not justify an HTTP client crate;
//! HTTP/1.0 keeps the server from answering in chunks, so the body is
//! simply everything after the blank line.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    /// Header names in lowercase, in the order sent.
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The `name=value` part of the `Set-Cookie` for `cookie`, if set.
    pub fn cookie(&self, cookie: &str) -> Option<String> {
        self.headers
            .iter()
            .filter(|(n, _)| n == "set-cookie")
            .filter_map(|(_, v)| v.split(';').next())
            .find(|pair| pair.starts_with(&format!("{cookie}=")))
            .map(str::to_owned)
    }
}

/// A request body.
#[derive(Clone, Copy, Debug)]
pub enum Body<'a> {
    Json(&'a serde_json::Value),
    /// `application/x-www-form-urlencoded`, already encoded.
    Form(&'a str),
}

/// `GET path` on `127.0.0.1:port`, with a deadline on the whole exchange.
pub async fn get(port: u16, path: &str) -> Result<Response> {
    request(port, "GET", path, None).await
}

/// One request with an optional JSON body on `127.0.0.1:port`, with a
/// deadline on the whole exchange.
pub async fn request(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&serde_json::Value>,
) -> Result<Response> {
    request_with(port, method, path, &[], body.map(Body::Json)).await
}

/// One request with extra headers (a cookie, an Origin) and an optional
/// body, with a deadline on the whole exchange.
pub async fn request_with(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Body<'_>>,
) -> Result<Response> {
    tokio::time::timeout(REQUEST_TIMEOUT, exchange(port, method, path, headers, body))
        .await
        .with_context(|| format!("{method} {path} on port {port} took over {REQUEST_TIMEOUT:?}"))?
}

const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

async fn exchange(
    port: u16,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Option<Body<'_>>,
) -> Result<Response> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .await
        .with_context(|| format!("connecting to 127.0.0.1:{port}"))?;
    let _ = stream.set_nodelay(true);
    let mut request = format!("{method} {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    let (kind, body) = match body {
        Some(Body::Json(value)) => (Some("application/json"), value.to_string()),
        Some(Body::Form(form)) => (Some("application/x-www-form-urlencoded"), form.to_owned()),
        None => (None, String::new()),
    };
    if let Some(kind) = kind {
        request.push_str(&format!(
            "Content-Type: {kind}\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    request.push_str("\r\n");
    request.push_str(&body);
    stream.write_all(request.as_bytes()).await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    let text = String::from_utf8_lossy(&raw);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .context("response without a blank line after the headers")?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .with_context(|| format!("no status code in {head:?}"))?;
    let headers = head
        .lines()
        .skip(1)
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_ascii_lowercase(), value.trim().to_owned()))
        .collect();
    Ok(Response {
        status,
        headers,
        body: body.to_string(),
    })
}

/// Parses the `name value` lines of `/metrics`, ignoring `#` comments and
/// Prometheus labels' absence or presence alike.
pub fn parse_metrics(body: &str) -> HashMap<String, f64> {
    body.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (name, value) = line.trim().rsplit_once(char::is_whitespace)?;
            Some((name.trim().to_string(), value.parse().ok()?))
        })
        .collect()
}

/// Fetches `/metrics` and returns its values by name.
pub async fn metrics(port: u16) -> Result<HashMap<String, f64>> {
    let response = get(port, "/metrics").await?;
    if response.status != 200 {
        bail!("/metrics answered {}", response.status);
    }
    Ok(parse_metrics(&response.body))
}

#[cfg(test)]
mod tests {
    use super::parse_metrics;

    #[test]
    fn parses_metric_lines() {
        let metrics = parse_metrics(
            "# HELP thinline_sessions live sessions\nthinline_sessions 3\nthinline_pty_bytes_read_total 1024\n\nnot-a-number x\n",
        );
        assert_eq!(metrics.get("thinline_sessions"), Some(&3.0));
        assert_eq!(metrics.get("thinline_pty_bytes_read_total"), Some(&1024.0));
        assert_eq!(metrics.len(), 2);
    }
}
