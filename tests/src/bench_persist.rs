//! `bench persist`: how far behind the screen the store is, per backend.
//!
//! The design promises that a host persists each session's state at most a
//! few hundred milliseconds behind what the user sees (the persist interval
//! defaults to 100 ms), so that a host's death loses little. This starts a
//! release host over SQLite and then over a fresh PostgreSQL database, runs
//! [`SESSIONS`] shells that each print a line every [`LINE_INTERVAL`] with a
//! client attached, and reads the host's own measurements from `/metrics`:
//! the persistence lag quantiles (from the first unsaved change to the end
//! of its write) and the count of store writes.
//!
//! The shells pace themselves with `read -t`, a bash builtin, rather than
//! `sleep`, so a hundred sessions do not fork thousands of processes a
//! second and the figures measure the host, not the fork rate.

use std::time::{Duration, Instant};

use crate::Figure;
use anyhow::{Context, Result, bail};
use protocol::Size;

use crate::client::Client;
use crate::host::{HostOptions, HostProcess};
use crate::http;
use crate::pg::{FreshDatabase, database_url};
use crate::screen_text::ScreenText;

/// Sessions producing output at once.
pub const SESSIONS: usize = 100;
/// How often each session prints a line.
pub const LINE_INTERVAL: Duration = Duration::from_millis(20);
/// Output before measuring starts: every session running, queues settled.
const WARMUP: Duration = Duration::from_secs(2);
/// How long the figures are taken over.
const MEASURE: Duration = Duration::from_secs(10);
/// How long starting one session may take.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// The PostgreSQL `cargo xtask` uses when `DATABASE_URL` is not set.
const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/test";
/// The p99 lag that counts as "a few hundred milliseconds behind".
const LAG_TARGET_MS: f64 = 300.0;

/// Measures both backends; a backend that cannot run is reported as a
/// failed figure and an error, after the other one has been measured.
pub async fn persist(progress: &dyn Fn(&str)) -> Result<Vec<Figure>> {
    let mut figures = Vec::new();
    let mut failures = Vec::new();

    let dir = tempfile::Builder::new()
        .prefix("thinline-bench-persist-")
        .tempdir()
        .context("creating the SQLite folder")?;
    let sqlite = format!("sqlite:{}", dir.path().join("db.sqlite").display());
    match measure("sqlite", &sqlite, progress).await {
        Ok(mut backend) => figures.append(&mut backend),
        Err(err) => failures.push(format!("sqlite: {err:#}")),
    }

    let base = database_url().unwrap_or_else(|| DEFAULT_DATABASE_URL.to_string());
    match FreshDatabase::create(&base, "thinline_bench").await {
        Ok(database) => match measure("postgres", &database.url(), progress).await {
            Ok(mut backend) => figures.append(&mut backend),
            Err(err) => failures.push(format!("postgres: {err:#}")),
        },
        Err(err) => failures.push(format!("postgres at {base}: {err:#}")),
    }
    if !failures.is_empty() {
        bail!("{}", failures.join("; "));
    }
    Ok(figures)
}

async fn measure(backend: &str, store: &str, progress: &dyn Fn(&str)) -> Result<Vec<Figure>> {
    let mut options = HostOptions::bash().for_benchmarks();
    options.env.push(("THINLINE_STORE".into(), store.into()));
    let host = HostProcess::start(options)?;
    progress(&format!(
        "persist ({backend}): host-server (pid {}) on port {}, starting {SESSIONS} sessions",
        host.pid(),
        host.port
    ));
    let stop_at = Instant::now() + START_TIMEOUT + WARMUP + MEASURE + Duration::from_secs(5);
    let mut tasks = Vec::new();
    for _ in 0..SESSIONS {
        let session = crate::tickets::new_session_id();
        // One user runs them all: the ticket allows that many.
        let mut claims = host.grant(session, 1).await.claims();
        claims.max_sessions = SESSIONS.try_into()?;
        let ticket = crate::tickets::sign(&claims);
        let (url, origin) = (host.ws_url(), host.origin());
        tasks.push(tokio::spawn(async move {
            run_session(&url, &origin, &ticket, session, stop_at).await
        }));
    }
    // Every session is printing before the clock starts.
    let started = Instant::now();
    loop {
        let sessions = http::metrics(host.port)
            .await?
            .get("thinline_sessions")
            .copied()
            .unwrap_or(0.0);
        if sessions >= SESSIONS as f64 {
            break;
        }
        if started.elapsed() > START_TIMEOUT {
            bail!("only {sessions} of {SESSIONS} sessions started within {START_TIMEOUT:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(WARMUP).await;
    let before = http::metrics(host.port).await?;
    let measured_from = Instant::now();
    progress(&format!(
        "persist ({backend}): measuring for {} s",
        MEASURE.as_secs()
    ));
    tokio::time::sleep(MEASURE).await;
    let after = http::metrics(host.port).await?;
    let seconds = measured_from.elapsed().as_secs_f64();
    let mut failed = 0;
    for task in tasks {
        task.abort();
        if let Ok(Err(err)) = task.await {
            failed += 1;
            progress(&format!("persist ({backend}): a session failed: {err:#}"));
        }
    }
    let value = |m: &std::collections::HashMap<String, f64>, name: &str| {
        m.get(name).copied().unwrap_or(0.0)
    };
    let writes = value(&after, "thinline_store_writes_total")
        - value(&before, "thinline_store_writes_total");
    let p50 = value(&after, "thinline_persist_lag_ms{quantile=\"0.5\"}");
    let p99 = value(&after, "thinline_persist_lag_ms{quantile=\"0.99\"}");
    let failing = value(&after, "thinline_persisters_failing");
    let per_session = writes / seconds / SESSIONS as f64;
    let mut note = String::new();
    if failed > 0 {
        note.push_str(&format!(", {failed} sessions failed"));
    }
    if failing > 0.0 {
        note.push_str(&format!(", {failing} persisters failing"));
    }
    Ok(vec![
        Figure {
            what: format!("persistence lag, {SESSIONS} sessions, {backend}"),
            measured: format!("p50 {p50:.1} ms, p99 {p99:.1} ms{note}"),
            target: "p99 <= 300 ms (100 ms tick)",
            met: Some(p99 > 0.0 && p99 <= LAG_TARGET_MS && failed == 0 && failing == 0.0),
        },
        Figure {
            what: format!("store writes, {backend}"),
            measured: format!(
                "{per_session:.2} /s per session ({:.0} /s in all over {seconds:.1} s)",
                writes / seconds
            ),
            target: "<= 10 /s per session",
            met: None,
        },
    ])
}

/// One session: a shell printing a numbered line every `LINE_INTERVAL`,
/// with a client that reads (and acknowledges) frames until `stop_at`.
async fn run_session(
    url: &str,
    origin: &str,
    ticket: &str,
    session: protocol::SessionId,
    stop_at: Instant,
) -> Result<()> {
    let mut client = Client::connect_with_origin(url, origin).await?;
    client
        .handshake(ticket, session, Size { cols: 80, rows: 24 })
        .await?;
    client
        .wait_for(START_TIMEOUT, "the prompt", |s| s.at_prompt())
        .await?;
    let pause = format!("{:.3}", LINE_INTERVAL.as_secs_f64());
    client
        .type_str(&format!(
            "i=0; while :; do echo \"line $((i++)) of steady output\"; read -rt {pause}; done\r"
        ))
        .await?;
    while Instant::now() < stop_at {
        if client.next_event_until(stop_at).await?.is_none() {
            break;
        }
        if let Some((code, reason)) = &client.closed {
            bail!("the host closed the session: {code} {reason}");
        }
    }
    Ok(())
}
