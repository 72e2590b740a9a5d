//! A minimal HTTP GET for `/healthz` and `/metrics` on loopback.
//!
//! Two plain-text endpoints do not justify an HTTP client crate; HTTP/1.0
//! keeps the server from answering in chunks, so the body is simply
//! everything after the blank line.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub body: String,
}

/// `GET path` on `127.0.0.1:port`, with a deadline on the whole exchange.
pub async fn get(port: u16, path: &str) -> Result<Response> {
    tokio::time::timeout(Duration::from_secs(10), get_inner(port, path))
        .await
        .with_context(|| format!("GET {path} took over 10 s"))?
}

async fn get_inner(port: u16, path: &str) -> Result<Response> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))
        .await
        .with_context(|| format!("connecting to 127.0.0.1:{port}"))?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: 127.0.0.1:{port}\r\n\r\n");
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
    Ok(Response {
        status,
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
