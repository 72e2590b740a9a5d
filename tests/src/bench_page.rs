//! `cargo xtask bench size` and `cargo xtask bench page`: what a browser
//! downloads to show the terminal, and how long it waits for its prompt.
//!
//! `size` asks a real directory process over HTTP, as Chromium does
//! (`Accept-Encoding: gzip, deflate, br, zstd`, the sign-in cookie): the
//! page at `/`, then every asset it names, transitively (the loader, the
//! wasm-bindgen glue it imports, the wasm the glue fetches), counting what
//! crosses the wire: each answer's body as sent (compressed when the
//! server chose to) plus its status line and headers. A repeat visit then
//! plays a browser's HTTP cache: an answer kept with `max-age` is not asked
//! for again while fresh, one marked `no-cache` is revalidated with its
//! ETag. The same walk without `Accept-Encoding` shows what compression
//! saves.
//!
//! `page` drives headless Chromium and times navigation start to an
//! interactive prompt (the connection live and the prompt's text on the
//! terminal), over fresh profiles (a cold cache) and over one profile
//! loading again (a warm one), with the bytes the browser itself says it
//! transferred (Resource Timing's `transferSize`).

use std::collections::{HashMap, VecDeque};
use std::io::Read as _;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use serde_json::Value;

use crate::Figure;
use crate::browser::Browser;
use crate::cluster::{Cluster, ClusterOptions};
use crate::http::{Request, Response};
use crate::paths;

/// DESIGN.md: bytes of a first visit (HTML, CSS, JS, WASM) as sent to a
/// browser asking for br/gzip. Kilobytes of 1,000 bytes: the stricter.
const FIRST_VISIT_TARGET: u64 = 100 * 1000;
/// What Chromium 156 sends.
const CHROMIUM_ACCEPT_ENCODING: &str = "gzip, deflate, br, zstd";
/// Loads timed per cache state.
const LOADS: usize = 10;

// ---- bench size -------------------------------------------------------------

/// One answer as a browser's cache keeps it.
#[derive(Clone, Debug)]
struct Cached {
    /// The decoded body, to find what it names.
    body: Vec<u8>,
    etag: Option<String>,
    /// `max-age` unless `no-cache`/`no-store` said to ask every time.
    fresh_for: Option<u64>,
}

/// One request of a visit.
#[derive(Debug)]
struct Fetch {
    path: String,
    status: u16,
    coding: String,
    body_bytes: u64,
    header_bytes: u64,
}

/// What one visit did.
#[derive(Debug, Default)]
struct Visit {
    fetches: Vec<Fetch>,
    /// Assets a fresh cached copy served with no request.
    from_cache: Vec<String>,
}

impl Visit {
    fn bytes(&self) -> u64 {
        self.fetches
            .iter()
            .map(|f| f.body_bytes + f.header_bytes)
            .sum()
    }

    fn body_bytes(&self) -> u64 {
        self.fetches.iter().map(|f| f.body_bytes).sum()
    }

    /// Assets (not the page) whose body came over the wire again.
    fn assets_downloaded(&self) -> usize {
        self.fetches
            .iter()
            .filter(|f| f.path != "/" && f.status == 200)
            .count()
    }
}

/// A visit to `/` and everything it names, through `cache`.
struct Visitor<'a> {
    port: u16,
    cookie: &'a str,
    accept_encoding: Option<&'a str>,
}

impl Visitor<'_> {
    async fn visit(&self, cache: &mut HashMap<String, Cached>) -> Result<Visit> {
        self.visit_from("/", cache).await
    }

    /// Loads the page at `start` and everything it leads to.
    async fn visit_from(&self, start: &str, cache: &mut HashMap<String, Cached>) -> Result<Visit> {
        let mut visit = Visit::default();
        let mut queue = VecDeque::from([start.to_owned()]);
        let mut seen = vec![start.to_owned()];
        while let Some(path) = queue.pop_front() {
            let body = self.load(&path, cache, &mut visit).await?;
            for reference in references(&path, &body) {
                if !seen.contains(&reference) {
                    seen.push(reference.clone());
                    queue.push_back(reference);
                }
            }
        }
        Ok(visit)
    }

    /// The decoded body of `path`, from the cache while it is fresh, else
    /// over HTTP (revalidated when the cache has a tag).
    async fn load(
        &self,
        path: &str,
        cache: &mut HashMap<String, Cached>,
        visit: &mut Visit,
    ) -> Result<Vec<u8>> {
        if let Some(cached) = cache.get(path)
            && cached.fresh_for.is_some_and(|age| age > 0)
        {
            visit.from_cache.push(path.to_owned());
            return Ok(cached.body.clone());
        }
        let mut request = Request::local("GET", self.port, path).header("cookie", self.cookie);
        if let Some(accept) = self.accept_encoding {
            request = request.header("accept-encoding", accept);
        }
        if let Some(etag) = cache.get(path).and_then(|c| c.etag.clone()) {
            request = request.header("if-none-match", &etag);
        }
        let answer = request.send().await?;
        let coding = answer.header("content-encoding").unwrap_or("").to_owned();
        visit.fetches.push(Fetch {
            path: path.to_owned(),
            status: answer.status,
            coding: if coding.is_empty() {
                "identity".to_owned()
            } else {
                coding.clone()
            },
            body_bytes: answer.bytes.len() as u64,
            header_bytes: header_bytes(&answer),
        });
        let body = match answer.status {
            200 => decode(&coding, &answer.bytes).with_context(|| format!("decoding {path}"))?,
            304 => match cache.get(path) {
                Some(cached) => cached.body.clone(),
                None => bail!("{path}: 304 to a request that named no tag"),
            },
            status => bail!("{path} answered {status}: {}", answer.body),
        };
        cache.insert(
            path.to_owned(),
            Cached {
                body: body.clone(),
                etag: answer.header("etag").map(str::to_owned),
                fresh_for: fresh_for(answer.header("cache-control").unwrap_or("")),
            },
        );
        Ok(body)
    }
}

/// The response's status line, header lines and blank line, as HTTP/1.1
/// writes them.
fn header_bytes(answer: &Response) -> u64 {
    let status_line = "HTTP/1.1 200 OK\r\n".len() as u64;
    let headers: u64 = answer
        .headers
        .iter()
        .map(|(name, value)| (name.len() + 2 + value.len() + 2) as u64)
        .sum();
    status_line + headers + 2
}

/// How long a `Cache-Control` lets a cache reuse an answer unasked.
fn fresh_for(cache_control: &str) -> Option<u64> {
    let directives: Vec<String> = cache_control
        .split(',')
        .map(|d| d.trim().to_ascii_lowercase())
        .collect();
    if directives
        .iter()
        .any(|d| d == "no-cache" || d == "no-store")
    {
        return None;
    }
    directives
        .iter()
        .find_map(|d| d.strip_prefix("max-age=")?.parse().ok())
}

fn decode(coding: &str, bytes: &[u8]) -> Result<Vec<u8>> {
    let mut decoded = Vec::new();
    match coding {
        "" | "identity" => decoded.extend_from_slice(bytes),
        "br" => brotli::BrotliDecompress(&mut &bytes[..], &mut decoded).context("brotli")?,
        "gzip" => {
            flate2::read::GzDecoder::new(bytes)
                .read_to_end(&mut decoded)
                .context("gzip")?;
        }
        other => bail!("a content coding the bench cannot read: {other}"),
    }
    Ok(decoded)
}

/// The same-origin files a page, stylesheet or script at `path` makes the
/// browser fetch: `src`/`href` of scripts and stylesheets, ES module
/// imports, `new URL('…', import.meta.url)`, CSS `url(…)`, and the web app
/// manifest with its icons (Chromium fetches both on load, to know whether
/// the page can be installed).
fn references(path: &str, body: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(body);
    let mut found = Vec::new();
    for opener in [
        "src=\"",
        "href=\"",
        "from '",
        "from \"",
        "import '",
        "import \"",
        "new URL('",
        "new URL(\"",
        "url(",
        "\"src\": \"",
    ] {
        let close = opener.chars().last().filter(|c| *c == '"' || *c == '\'');
        for piece in text.split(opener).skip(1) {
            let end = match close {
                Some(close) => piece.find(close),
                None => piece.find(')'),
            };
            let Some(end) = end else { continue };
            let target = piece[..end].trim_matches(|c| c == '"' || c == '\'');
            let fetched = [".js", ".mjs", ".css", ".wasm", ".webmanifest", ".svg"]
                .iter()
                .any(|ext| target.ends_with(ext));
            if fetched && !target.contains("://") && !target.starts_with("data:") {
                found.push(resolve(path, target));
            }
        }
    }
    found
}

/// `target` as an absolute path, relative to the folder of `base`.
fn resolve(base: &str, target: &str) -> String {
    if target.starts_with('/') {
        return target.to_owned();
    }
    let mut parts: Vec<&str> = base.split('/').collect();
    parts.pop();
    for part in target.split('/') {
        match part {
            "." | "" => {}
            ".." => {
                if parts.len() > 1 {
                    parts.pop();
                }
            }
            part => parts.push(part),
        }
    }
    parts.join("/")
}

pub async fn page_weight(progress: &dyn Fn(&str), figures: &mut Vec<Figure>) -> Result<()> {
    let dir = paths::built_page()?;
    progress(&format!("size: a directory serving {}", dir.display()));
    let cluster = Cluster::start(ClusterOptions {
        hosts: 0,
        ..ClusterOptions::default()
    })
    .await?;
    let port = cluster.directories[0].port;
    let chromium = Visitor {
        port,
        cookie: &cluster.cookie,
        accept_encoding: Some(CHROMIUM_ACCEPT_ENCODING),
    };
    let mut cache = HashMap::new();
    let first = chromium.visit(&mut cache).await?;
    ensure!(
        first.fetches.iter().any(|f| f.path.ends_with(".wasm")),
        "the page led to no wasm: {first:?}"
    );
    let repeat = chromium.visit(&mut cache).await?;
    let plain = Visitor {
        accept_encoding: None,
        ..chromium
    }
    .visit(&mut HashMap::new())
    .await?;

    for fetch in &first.fetches {
        figures.push(Figure {
            what: format!("  {}", fetch.path),
            measured: format!(
                "{} B {} + {} B headers",
                fetch.body_bytes, fetch.coding, fetch.header_bytes
            ),
            target: "",
            met: None,
        });
    }
    figures.push(Figure {
        what: "first visit, br/gzip (HTML, CSS, JS, WASM, manifest)".into(),
        measured: format!(
            "{:.1} KB in {} requests ({:.1} KB bodies + headers)",
            first.bytes() as f64 / 1000.0,
            first.fetches.len(),
            first.body_bytes() as f64 / 1000.0
        ),
        target: "<= 100 KB",
        met: Some(first.bytes() <= FIRST_VISIT_TARGET),
    });
    figures.push(Figure {
        what: "first visit, no Accept-Encoding".into(),
        measured: format!(
            "{:.1} KB in {} requests",
            plain.bytes() as f64 / 1000.0,
            plain.fetches.len()
        ),
        target: "",
        met: None,
    });
    // The recording player, loaded on demand: what opening it costs right
    // after the terminal's visit (its stylesheet is cached by then), and
    // none of it in the terminal's first visit.
    let player = chromium.visit_from("/play", &mut cache).await?;
    ensure!(
        player.fetches.iter().any(|f| f.path.contains("player_bg")),
        "the player page led to no wasm of its own: {player:?}"
    );
    for fetch in &player.fetches {
        figures.push(Figure {
            what: format!("  {}", fetch.path),
            measured: format!(
                "{} B {} + {} B headers",
                fetch.body_bytes, fetch.coding, fetch.header_bytes
            ),
            target: "",
            met: None,
        });
    }
    let in_first = first.fetches.iter().any(|f| f.path.contains("play"));
    figures.push(Figure {
        what: "opening the recording player, after the terminal (br/gzip)".into(),
        measured: format!(
            "{:.1} KB in {} requests ({} from cache)",
            player.bytes() as f64 / 1000.0,
            player.fetches.len(),
            player.from_cache.len()
        ),
        target: "loaded on demand: none in the first visit",
        met: Some(!in_first),
    });
    let revalidated: Vec<String> = repeat
        .fetches
        .iter()
        .map(|f| format!("{} {}", f.path, f.status))
        .collect();
    figures.push(Figure {
        what: "repeat visit: assets downloaded again".into(),
        measured: format!(
            "{} ({} B in {} requests: {}; {} from cache)",
            repeat.assets_downloaded(),
            repeat.bytes(),
            repeat.fetches.len(),
            revalidated.join(", "),
            repeat.from_cache.len()
        ),
        target: "0",
        met: Some(repeat.assets_downloaded() == 0),
    });
    Ok(())
}

// ---- bench page -------------------------------------------------------------

/// Waits in the page until the terminal is live with its prompt drawn, and
/// reports when that was (ms since navigation start) and what the browser
/// transferred for the page (HTML, CSS, JS, WASM) and for everything
/// (the directory's JSON too).
const UNTIL_PROMPT: &str = r#"
const done = arguments[arguments.length - 1];
const ready = () => {
  const t = window.thinline;
  if (!t || typeof t.state !== 'function' || typeof t.text !== 'function') return false;
  const state = JSON.parse(t.state());
  return state.connection === 'live' && /\S/.test(t.text());
};
const transferred = () => {
  const entries = performance.getEntriesByType('navigation')
    .concat(performance.getEntriesByType('resource'));
  const page = entries.filter(e => e.entryType === 'navigation' || /\.(css|js|wasm)$/.test(new URL(e.name).pathname));
  const sum = list => list.reduce((total, e) => total + (e.transferSize || 0), 0);
  return { page: sum(page), all: sum(entries), requests: page.filter(e => e.transferSize > 0).length };
};
const first = ready();
const poll = () => {
  if (ready()) {
    const at = performance.now();
    done({ at, late: first, bytes: transferred() });
  } else {
    setTimeout(poll, 1);
  }
};
poll();
"#;

/// One timed load.
#[derive(Debug, Clone, Copy)]
struct Load {
    to_prompt: Duration,
    page_bytes: u64,
    all_bytes: u64,
    requests: u64,
    /// The prompt was already there when the script first looked, so the
    /// time is an upper bound.
    late: bool,
}

async fn timed_load(browser: &Browser, url: &str) -> Result<Load> {
    browser
        .client
        .goto(url)
        .await
        .with_context(|| format!("opening {url}"))?;
    let answer = browser
        .client
        .execute_async(UNTIL_PROMPT, Vec::new())
        .await
        .context("waiting for the prompt")?;
    let number = |value: &Value| value.as_f64().context("not a number");
    let at = number(&answer["at"])?;
    Ok(Load {
        to_prompt: Duration::from_secs_f64(at / 1000.0),
        page_bytes: number(&answer["bytes"]["page"])? as u64,
        all_bytes: number(&answer["bytes"]["all"])? as u64,
        requests: number(&answer["bytes"]["requests"])? as u64,
        late: answer["late"] == Value::Bool(true),
    })
}

/// A fresh browser signed in with the cluster's cookie, set on a page
/// that loads nothing (`/healthz`), so its cache holds no asset.
async fn fresh_browser(cluster: &Cluster) -> Result<Browser> {
    let browser = Browser::start_with(1000, 700, "eager").await?;
    let origin = cluster.page_origin();
    browser
        .client
        .goto(&format!("{origin}/healthz"))
        .await
        .context("opening /healthz")?;
    // Chromium refuses a cookie without the page's domain, or with
    // fantoccini's default `SameSite=None` on plain http.
    let host = origin
        .split("://")
        .nth(1)
        .and_then(|rest| rest.split([':', '/']).next())
        .context("the page origin names no host")?;
    let cookie = fantoccini::cookies::Cookie::parse(format!(
        "{}; Domain={host}; Path=/; HttpOnly; SameSite=Strict",
        cluster.cookie
    ))
    .context("the sign-in cookie")?;
    browser
        .client
        .add_cookie(cookie)
        .await
        .context("setting the sign-in cookie")?;
    Ok(browser)
}

fn summarise(what: &str, loads: &[Load], figures: &mut Vec<Figure>) {
    let mut times: Vec<Duration> = loads.iter().map(|l| l.to_prompt).collect();
    times.sort();
    let late = loads.iter().filter(|l| l.late).count();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    figures.push(Figure {
        what: format!("{what}: navigation to prompt, p50 / p90 / max"),
        measured: format!(
            "{:.0} / {:.0} / {:.0} ms ({} loads{})",
            ms(crate::percentile(&times, 50.0)),
            ms(crate::percentile(&times, 90.0)),
            ms(times.last().copied().unwrap_or_default()),
            loads.len(),
            if late > 0 {
                format!(", {late} seen late: upper bounds")
            } else {
                String::new()
            }
        ),
        target: "none (reported)",
        met: None,
    });
    let mut page: Vec<u64> = loads.iter().map(|l| l.page_bytes).collect();
    page.sort_unstable();
    let all_max = loads.iter().map(|l| l.all_bytes).max().unwrap_or(0);
    let requests_max = loads.iter().map(|l| l.requests).max().unwrap_or(0);
    figures.push(Figure {
        what: format!("{what}: bytes transferred (HTML, CSS, JS, WASM), median / max"),
        measured: format!(
            "{:.1} / {:.1} KB in at most {requests_max} requests ({:.1} KB with the API)",
            page[page.len() / 2] as f64 / 1000.0,
            page.last().copied().unwrap_or(0) as f64 / 1000.0,
            all_max as f64 / 1000.0
        ),
        target: if what.starts_with("cold") {
            "<= 100 KB"
        } else {
            "no asset again"
        },
        met: Some(if what.starts_with("cold") {
            page.last().copied().unwrap_or(0) <= FIRST_VISIT_TARGET
        } else {
            // A warm load transfers only the page's revalidation (a 304,
            // a few hundred bytes of headers).
            requests_max <= 1
        }),
    });
}

pub async fn page_load(progress: &dyn Fn(&str), figures: &mut Vec<Figure>) -> Result<()> {
    paths::built_page()?;
    let cluster = Cluster::start(ClusterOptions {
        hosts: 1,
        ..ClusterOptions::default()
    })
    .await?;
    let url = format!("{}/", cluster.page_origin());

    // The session's shell starts once, untimed: every timed load attaches
    // to it, as a returning user's page does.
    progress("page: starting the session");
    {
        let browser = fresh_browser(&cluster).await?;
        timed_load(&browser, &url).await?;
    }

    let mut cold = Vec::new();
    for i in 0..LOADS {
        progress(&format!(
            "page: cold load {} of {LOADS} (a fresh profile)",
            i + 1
        ));
        let browser = fresh_browser(&cluster).await?;
        cold.push(timed_load(&browser, &url).await?);
    }
    let mut warm = Vec::new();
    let browser = fresh_browser(&cluster).await?;
    timed_load(&browser, &url).await?;
    for i in 0..LOADS {
        progress(&format!(
            "page: warm load {} of {LOADS} (the same profile)",
            i + 1
        ));
        warm.push(timed_load(&browser, &url).await?);
    }
    summarise("cold cache", &cold, figures);
    summarise("warm cache", &warm, figures);
    search_history(&browser, progress, figures).await
}

/// Searches repeated over a full scrollback: issue 15's "search time over
/// 10,000 lines of history", in the page as people run it.
async fn search_history(
    browser: &Browser,
    progress: &dyn Fn(&str),
    figures: &mut Vec<Figure>,
) -> Result<()> {
    progress("page: 10,000 lines of history, then searching them");
    browser.run("seq 1 10000").await?;
    crate::wait_until(Duration::from_secs(60), "10,000 lines held", || async {
        let held = browser.thinline("scrollback_len", "").await?;
        let held = held.as_f64().unwrap_or(0.0);
        Ok(if held >= 9_950.0 {
            Ok(())
        } else {
            Err(format!("{held} lines held"))
        })
    })
    .await?;
    let mut times = Vec::new();
    let mut last = serde_json::Value::Null;
    for _ in 0..SEARCHES {
        last = browser.thinline("bench_search", "'9999'").await?;
        let us = last["us"].as_f64().context("bench_search gave no time")?;
        times.push(us / 1000.0);
    }
    times.sort_by(f64::total_cmp);
    figures.push(Figure {
        what: format!(
            "search over {} lines held (case-blind, in Chromium)",
            last["lines"]
        ),
        measured: format!(
            "p50 {:.1} ms, max {:.1} ms over {SEARCHES} searches ({} matches)",
            times[times.len() / 2],
            times.last().copied().unwrap_or_default(),
            last["matches"]
        ),
        target: "",
        met: None,
    });
    Ok(())
}

/// Searches timed by `search_history`.
const SEARCHES: usize = 10;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_follow_the_page_to_its_wasm() {
        let page =
            br#"<link rel="icon" href="data:,"><link rel="stylesheet" href="assets/style.1.css">
            <script type="module" src="assets/loader.2.js"></script><a href="/sessions">"#;
        assert_eq!(
            references("/", page),
            ["/assets/loader.2.js", "/assets/style.1.css"]
        );
        let loader = b"import init, { start } from './web_terminal.3.js';";
        assert_eq!(
            references("/assets/loader.2.js", loader),
            ["/assets/web_terminal.3.js"]
        );
        let glue = b"module_or_path = new URL('web_terminal_bg.4.wasm', import.meta.url);";
        assert_eq!(
            references("/assets/web_terminal.3.js", glue),
            ["/assets/web_terminal_bg.4.wasm"]
        );
        assert_eq!(resolve("/assets/a.js", "../b.css"), "/b.css");
        let page = br#"<link rel="manifest" href="manifest.webmanifest">"#;
        assert_eq!(references("/", page), ["/manifest.webmanifest"]);
        let manifest = br#"{ "icons": [ { "src": "icon.svg", "sizes": "any" } ] }"#;
        assert_eq!(references("/manifest.webmanifest", manifest), ["/icon.svg"]);
    }

    #[test]
    fn a_cache_reuses_only_what_it_may() {
        assert_eq!(
            fresh_for("public, max-age=31536000, immutable"),
            Some(31_536_000)
        );
        assert_eq!(fresh_for("no-cache"), None);
        assert_eq!(fresh_for("max-age=60, no-store"), None);
        assert_eq!(fresh_for(""), None);
    }
}
