//! The one HTTP client of the tests.
//!
//! Tests call `/healthz`, `/metrics`, the directory's pages and its JSON
//! API, as a browser or an operator would: with cookies, an `Origin`, an
//! `Accept-Encoding`, JSON or form bodies, over plain TCP or TLS. hyper's
//! HTTP/1.1 client does the protocol (chunked answers, keep-alive framing),
//! one request per connection so no test sees another's connection state;
//! this module adds the deadline, the headers a test names, and an answer
//! whose raw bytes and headers are all there to assert on.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;

/// The longest a whole exchange may take unless the request says otherwise.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A request being built; see [`Request::send`].
#[derive(Clone, Debug)]
pub struct Request {
    method: String,
    /// `host:port`, sent as the `Host` header and connected to.
    authority: String,
    /// Path and query.
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    timeout: Duration,
}

impl Request {
    /// A request for an absolute `http://` or `https://` url (`https`
    /// needs [`Request::send_over`] with a TLS stream).
    pub fn new(method: &str, url: &str) -> Result<Request> {
        let rest = url
            .strip_prefix("http://")
            .or_else(|| url.strip_prefix("https://"))
            .with_context(|| format!("{url:?} is not an http(s) url"))?;
        let (authority, target) = match rest.find('/') {
            Some(slash) => (&rest[..slash], &rest[slash..]),
            None => (rest, "/"),
        };
        if authority.is_empty() {
            bail!("{url:?} names no host");
        }
        Ok(Request {
            method: method.to_owned(),
            authority: authority.to_owned(),
            target: target.to_owned(),
            headers: Vec::new(),
            body: Vec::new(),
            timeout: REQUEST_TIMEOUT,
        })
    }

    /// A request for `path` on `127.0.0.1:port`.
    pub fn local(method: &str, port: u16, path: &str) -> Request {
        Request {
            method: method.to_owned(),
            authority: format!("127.0.0.1:{port}"),
            target: path.to_owned(),
            headers: Vec::new(),
            body: Vec::new(),
            timeout: REQUEST_TIMEOUT,
        }
    }

    /// Adds a header (several of one name are all sent).
    pub fn header(mut self, name: &str, value: &str) -> Request {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Adds several headers.
    pub fn headers(mut self, headers: &[(&str, &str)]) -> Request {
        for (name, value) in headers {
            self = self.header(name, value);
        }
        self
    }

    /// A JSON body, sent as `application/json`.
    pub fn json(self, body: &serde_json::Value) -> Request {
        self.body("application/json", body.to_string().into_bytes())
    }

    /// A form body, already encoded (see [`form_encode`]).
    pub fn form(self, encoded: &str) -> Request {
        self.body(
            "application/x-www-form-urlencoded",
            encoded.as_bytes().to_vec(),
        )
    }

    /// A body of any type.
    pub fn body(mut self, content_type: &str, body: Vec<u8>) -> Request {
        self.body = body;
        self.header("content-type", content_type)
    }

    /// How long the whole exchange may take.
    pub fn timeout(mut self, timeout: Duration) -> Request {
        self.timeout = timeout;
        self
    }

    /// Connects to the url's host over TCP and makes the exchange.
    pub async fn send(self) -> Result<Response> {
        let (what, timeout) = (self.describe(), self.timeout);
        tokio::time::timeout(timeout, async {
            let stream = TcpStream::connect(&self.authority)
                .await
                .with_context(|| format!("connecting to {}", self.authority))?;
            let _ = stream.set_nodelay(true);
            self.exchange(stream).await
        })
        .await
        .with_context(|| format!("{what} took over {timeout:?}"))?
    }

    /// Makes the exchange over a stream the caller opened (a TLS stream,
    /// say).
    pub async fn send_over<S>(self, stream: S) -> Result<Response>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (what, timeout) = (self.describe(), self.timeout);
        tokio::time::timeout(timeout, self.exchange(stream))
            .await
            .with_context(|| format!("{what} took over {timeout:?}"))?
    }

    fn describe(&self) -> String {
        format!("{} {} on {}", self.method, self.target, self.authority)
    }

    async fn exchange<S>(self, stream: S) -> Result<Response>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let what = self.describe();
        let (mut sender, connection) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .with_context(|| format!("{what}: HTTP handshake"))?;
        // The connection ends with the exchange; its error, if any, shows
        // up as the request's.
        let driver = tokio::spawn(connection);
        let mut request = hyper::Request::builder()
            .method(self.method.as_str())
            .uri(self.target.as_str());
        if !self
            .headers
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case("host"))
        {
            request = request.header("host", self.authority.as_str());
        }
        for (name, value) in &self.headers {
            request = request.header(name.as_str(), value.as_str());
        }
        let request = request
            .body(Full::new(Bytes::from(self.body)))
            .with_context(|| format!("{what}: building the request"))?;
        let response = sender
            .send_request(request)
            .await
            .with_context(|| format!("{what}: no answer"))?;
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_ascii_lowercase(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect();
        let bytes = response
            .into_body()
            .collect()
            .await
            .with_context(|| format!("{what}: reading the body"))?
            .to_bytes()
            .to_vec();
        driver.abort();
        Ok(Response {
            status,
            headers,
            body: String::from_utf8_lossy(&bytes).into_owned(),
            bytes,
        })
    }
}

/// An answer, everything of it kept.
#[derive(Clone, Debug)]
pub struct Response {
    pub status: u16,
    /// Header names in lowercase, in the order sent.
    pub headers: Vec<(String, String)>,
    /// The body as text (lossy where it is not UTF-8).
    pub body: String,
    /// The body's bytes as they came (compressed, if the server chose to).
    pub bytes: Vec<u8>,
}

impl Response {
    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of header `name` (any case), in order.
    pub fn header_all(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The `name=value` part of the `Set-Cookie` for `cookie`, if set.
    pub fn cookie(&self, cookie: &str) -> Option<String> {
        let prefix = format!("{cookie}=");
        self.header_all("set-cookie")
            .into_iter()
            .filter_map(|v| v.split(';').next())
            .find(|pair| pair.starts_with(&prefix))
            .map(str::to_owned)
    }

    /// The body as JSON; `null` when it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.bytes).unwrap_or(serde_json::Value::Null)
    }
}

/// `GET path` on `127.0.0.1:port`.
pub async fn get(port: u16, path: &str) -> Result<Response> {
    Request::local("GET", port, path).send().await
}

/// `application/x-www-form-urlencoded` encoding of one value.
pub fn form_encode(value: &str) -> String {
    let mut out = String::new();
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(byte))
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// Parses the `name value` lines of a Prometheus `/metrics` answer,
/// ignoring `#` comments and lines that are not a number.
pub fn parse_metrics(body: &str) -> HashMap<String, f64> {
    body.lines()
        .filter(|line| !line.starts_with('#'))
        .filter_map(|line| {
            let (name, value) = line.trim().rsplit_once(char::is_whitespace)?;
            Some((name.trim().to_string(), value.parse().ok()?))
        })
        .collect()
}

/// Fetches `/metrics` on `127.0.0.1:port` and returns its values by name.
pub async fn metrics(port: u16) -> Result<HashMap<String, f64>> {
    let response = get(port, "/metrics").await?;
    if response.status != 200 {
        bail!("/metrics answered {}", response.status);
    }
    Ok(parse_metrics(&response.body))
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    #[test]
    fn parses_metric_lines() {
        let metrics = parse_metrics(
            "# HELP thinline_sessions live sessions\nthinline_sessions 3\nthinline_pty_bytes_read_total 1024\n\nnot-a-number x\n",
        );
        assert_eq!(metrics.get("thinline_sessions"), Some(&3.0));
        assert_eq!(metrics.get("thinline_pty_bytes_read_total"), Some(&1024.0));
        assert_eq!(metrics.len(), 2);
    }

    #[test]
    fn encodes_form_values() {
        assert_eq!(form_encode("a b&c=d/é"), "a+b%26c%3Dd%2F%C3%A9");
        assert_eq!(form_encode("Az09-_.~"), "Az09-_.~");
    }

    #[test]
    fn urls_give_the_authority_and_the_path() -> Result<()> {
        let request = Request::new("GET", "http://127.0.0.1:81/v1/me?x=1")?;
        assert_eq!(request.authority, "127.0.0.1:81");
        assert_eq!(request.target, "/v1/me?x=1");
        assert_eq!(Request::new("GET", "https://h.example")?.target, "/");
        assert!(Request::new("GET", "ws://h/ws").is_err());
        assert!(Request::new("GET", "http:///x").is_err());
        Ok(())
    }

    /// A server that answers one request with `answer` and hands back what
    /// it was sent.
    async fn one_shot(answer: &'static str) -> Result<(u16, tokio::task::JoinHandle<String>)> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let task = tokio::spawn(async move {
            let Ok((mut stream, _)) = listener.accept().await else {
                return String::new();
            };
            let mut seen = Vec::new();
            let mut buf = [0u8; 4096];
            // Headers, then the body its Content-Length announces.
            while let Ok(n) = stream.read(&mut buf).await {
                if n == 0 {
                    break;
                }
                seen.extend_from_slice(&buf[..n]);
                let text = String::from_utf8_lossy(&seen).into_owned();
                if let Some((head, body)) = text.split_once("\r\n\r\n") {
                    let length = head
                        .lines()
                        .find_map(|l| {
                            l.to_ascii_lowercase()
                                .strip_prefix("content-length: ")
                                .map(str::to_owned)
                        })
                        .and_then(|n| n.trim().parse::<usize>().ok())
                        .unwrap_or(0);
                    if body.len() >= length {
                        break;
                    }
                }
            }
            let _ = stream.write_all(answer.as_bytes()).await;
            String::from_utf8_lossy(&seen).into_owned()
        });
        Ok((port, task))
    }

    #[tokio::test]
    async fn sends_headers_and_bodies_and_reads_chunked_answers() -> Result<()> {
        let (port, server) = one_shot(
            "HTTP/1.1 200 OK\r\nSet-Cookie: a=1; Path=/\r\nSet-Cookie: thinline_login=xyz; HttpOnly\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n",
        )
        .await?;
        let answer = Request::local("POST", port, "/login")
            .header("Origin", "http://page.test")
            .header("Cookie", "device=1")
            .form("user=ada&password=x")
            .send()
            .await?;
        assert_eq!(answer.status, 200);
        assert_eq!(answer.body, "hello world");
        assert_eq!(
            answer.cookie("thinline_login").as_deref(),
            Some("thinline_login=xyz")
        );
        assert_eq!(answer.header_all("set-cookie").len(), 2);
        let seen = server.await?;
        assert!(seen.starts_with("POST /login HTTP/1.1\r\n"), "{seen}");
        let lower = seen.to_ascii_lowercase();
        assert!(lower.contains(&format!("host: 127.0.0.1:{port}")), "{seen}");
        assert!(lower.contains("origin: http://page.test"), "{seen}");
        assert!(lower.contains("cookie: device=1"), "{seen}");
        assert!(
            lower.contains("content-type: application/x-www-form-urlencoded"),
            "{seen}"
        );
        assert!(seen.ends_with("user=ada&password=x"), "{seen}");
        Ok(())
    }

    #[tokio::test]
    async fn keeps_the_raw_bytes_and_reads_json() -> Result<()> {
        let (port, _server) = one_shot(
            "HTTP/1.1 503 Service Unavailable\r\nContent-Length: 16\r\n\r\n{\"error\":\"busy\"}",
        )
        .await?;
        let answer = get(port, "/v1/placement").await?;
        assert_eq!(answer.status, 503);
        assert_eq!(answer.json()["error"], "busy");
        assert_eq!(answer.bytes.len(), 16);
        Ok(())
    }

    #[tokio::test]
    async fn a_silent_server_fails_at_the_deadline() -> Result<()> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let _held = tokio::spawn(async move {
            let accepted = listener.accept().await;
            tokio::time::sleep(Duration::from_secs(30)).await;
            drop(accepted);
        });
        let error = Request::local("GET", port, "/")
            .timeout(Duration::from_millis(200))
            .send()
            .await
            .expect_err("nothing answers");
        assert!(format!("{error:#}").contains("took over"), "{error:#}");
        Ok(())
    }
}
