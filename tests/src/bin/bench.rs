//! The benchmark driver behind `cargo xtask bench`: measures Thinline
//! against the targets in DESIGN.md and prints them side by side.
//!
//! Figures come from real processes on loopback: a release `host-server`
//! running bash, and native protocol clients. Benchmarks print figures and
//! never fail on them (speed is not asserted in tests); they fail only when
//! something does not work at all. Every loop is bounded in time and count.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use protocol::Size;
use tests::bench_memory::{descendants, isolation_of, resident_bytes};
use tests::client::Client;
use tests::host::{HostOptions, HostProcess};
use tests::screen_text::ScreenText;
use tests::tickets::new_session_id;
use tests::{Figure, http, percentile};

const ONE_SESSION_KEYS: usize = 300;
const MANY_SESSIONS: usize = 100;
const MANY_SESSIONS_KEYS: usize = 120;
const KEY_INTERVAL: Duration = Duration::from_millis(10);
/// Keystrokes discarded at the start of each session (caches, first frames).
const WARMUP_KEYS: usize = 5;
/// A keystroke whose echo takes longer than this counts as lost.
const ECHO_TIMEOUT: Duration = Duration::from_secs(10);
const THROUGHPUT_BYTES: u64 = 100 * 1000 * 1000;
/// A line of the flood after its 9-digit number, newline included: 98
/// bytes a line with the number.
const FLOOD_LINE: &str =
    " the quick brown fox jumps over the lazy dog 9e3779b97f4a7c15 lorem ipsum dolor sit amet\n";
const THROUGHPUT_TIMEOUT: Duration = Duration::from_secs(300);

/// What can be measured; `failover`, `capacity`, `memory` and `soak` are
/// left out of `all` (they take minutes and start hundreds of processes),
/// and so are `page`, `files` and `echo` (they need Chromium; `files` moves 2 GiB).
const VERBS: [&str; 17] = [
    "latency",
    "viewers",
    "start",
    "throughput",
    "size",
    "page",
    "files",
    "echo",
    "persist",
    "recording",
    "failover",
    // `cargo xtask bench failover --containers`: the process figures,
    // then the same on the containerised cluster.
    "failover-containers",
    "capacity",
    "memory",
    "auth",
    "soak",
    "all",
];

/// How long `bench soak` loads each backend, unless THINLINE_SOAK_MINUTES
/// says otherwise.
const SOAK_MINUTES: u64 = 30;

/// The soak on SQLite and on PostgreSQL side by side: 100 sessions typing
/// and flooding for THINLINE_SOAK_MINUTES (default 30) on each, then idle;
/// prints RSS before, at peak and after per process, and descriptors,
/// PTYs and processes before and after.
async fn soak(figures: &mut Vec<Figure>) -> Result<()> {
    use tests::cluster::Backend;
    use tests::soak::{RSS_SLACK, SoakOptions};
    let minutes = std::env::var("THINLINE_SOAK_MINUTES")
        .ok()
        .and_then(|m| m.parse().ok())
        .unwrap_or(SOAK_MINUTES);
    let load_for = Duration::from_secs(minutes * 60);
    eprintln!("bench: soak: {minutes} min of load on SQLite and PostgreSQL at once, then idle");
    let (sqlite, postgres) = tokio::join!(
        tests::soak::run(SoakOptions::new(Backend::Sqlite, load_for)),
        tests::soak::run(SoakOptions::new(Backend::Postgres, load_for)),
    );
    for report in [sqlite?, postgres?] {
        eprint!("{}", report.table());
        for process in &report.processes {
            figures.push(Figure {
                what: format!(
                    "soak {:?} {}: RSS before / peak / after",
                    report.backend, process.name
                ),
                measured: format!(
                    "{:.1} / {:.1} / {:.1} MB ({:.0} %)",
                    process.before.rss_kib as f64 / 1024.0,
                    process.peak_rss_kib as f64 / 1024.0,
                    process.after.rss_kib as f64 / 1024.0,
                    process.rss_ratio() * 100.0
                ),
                target: "after ≤ 120 % of before",
                met: Some(process.rss_ratio() <= RSS_SLACK),
            });
            figures.push(Figure {
                what: format!(
                    "soak {:?} {}: fds before → after, PTYs, children, zombies after",
                    report.backend, process.name
                ),
                measured: format!(
                    "{} → {}, {}, {}, {}",
                    process.before.fds,
                    process.after.fds,
                    process.after.ptys,
                    process.after.children,
                    process.after.zombies
                ),
                target: "no leak",
                met: Some(
                    process.after.fds <= process.before.fds + tests::soak::FD_SLACK
                        && process.after.ptys == 0
                        && process.after.children == 0
                        && process.after.zombies == 0,
                ),
            });
        }
    }
    Ok(())
}

fn main() -> ExitCode {
    let which = std::env::args().nth(1).unwrap_or_else(|| "all".into());
    if !VERBS.contains(&which.as_str()) {
        eprintln!(
            "usage: bench [latency|viewers|start|throughput|size|page|persist|recording|failover|failover-containers|capacity|memory|auth|soak|all]"
        );
        return ExitCode::FAILURE;
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("bench: cannot start tokio: {err}");
            return ExitCode::FAILURE;
        }
    };
    let mut figures = Vec::new();
    let mut failed = false;
    let all = which == "all";
    if all || which == "size" {
        let mut lines = Vec::new();
        let result = runtime.block_on(tests::bench_page::page_weight(&progress, &mut lines));
        figures.extend(lines);
        report(&mut failed, result, "page weight");
    }
    if which == "page" {
        let mut lines = Vec::new();
        let result = runtime.block_on(tests::bench_page::page_load(&progress, &mut lines));
        figures.extend(lines);
        report(&mut failed, result, "page load");
    }
    if which == "files" {
        let mut lines = Vec::new();
        let result = runtime.block_on(tests::bench_files::files(&progress, &mut lines));
        figures.extend(lines);
        report(&mut failed, result, "files");
    }
    if which == "echo" {
        let mut lines = Vec::new();
        let result = runtime.block_on(tests::bench_echo::echo(&progress, &mut lines));
        figures.extend(lines);
        report(&mut failed, result, "echo");
    }
    if all || which == "latency" {
        report(
            &mut failed,
            runtime.block_on(latency(&mut figures)),
            "latency",
        );
    }
    if all || which == "viewers" {
        report(
            &mut failed,
            runtime.block_on(viewers(&mut figures)),
            "viewers",
        );
    }
    if all || which == "start" {
        report(
            &mut failed,
            runtime.block_on(session_start(&mut figures)),
            "session start",
        );
    }
    if all || which == "throughput" {
        report(
            &mut failed,
            runtime.block_on(throughput(&mut figures)),
            "throughput",
        );
    }
    if all || which == "persist" {
        let persisted = runtime.block_on(tests::bench_persist::persist(&progress));
        let persisted = persisted.map(|lines| figures.extend(lines));
        report(&mut failed, persisted, "persistence");
    }
    if all || which == "recording" {
        let mut lines = Vec::new();
        let result = runtime.block_on(tests::bench_recording::recording(&progress, &mut lines));
        figures.extend(lines);
        report(&mut failed, result, "recording");
    }
    if all || which == "auth" {
        let mut lines = Vec::new();
        let result = runtime.block_on(tests::bench_auth::auth(&progress, &mut lines));
        figures.extend(lines);
        report(&mut failed, result, "auth");
    }
    if which == "memory" {
        let mut lines = Vec::new();
        let result = runtime.block_on(tests::bench_memory::memory(&progress, &mut lines));
        figures.extend(lines);
        report(&mut failed, result, "memory");
    }
    if which == "capacity" {
        report(
            &mut failed,
            runtime.block_on(capacity(&mut figures)),
            "capacity",
        );
    }
    // Not part of `all`: it kills processes for minutes (see README).
    if which == "failover" || which == "failover-containers" {
        let mut lines = Vec::new();
        let result = runtime.block_on(tests::bench_failover::failover(&progress, &mut lines));
        report(&mut failed, result, "failover");
        if which == "failover-containers" {
            let result = runtime.block_on(tests::bench_failover::containers::failover(
                &progress, &mut lines,
            ));
            report(&mut failed, result, "failover --containers");
        }
        figures.extend(lines);
    }
    if which == "soak" {
        report(&mut failed, runtime.block_on(soak(&mut figures)), "soak");
    }
    print_table(&figures);
    if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

fn report(failed: &mut bool, result: Result<()>, what: &str) {
    if let Err(err) = result {
        eprintln!("bench: {what} failed: {err:#}");
        *failed = true;
    }
}

fn progress(text: &str) {
    eprintln!("bench: {text}");
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn start_host() -> Result<HostProcess> {
    start_host_with(&[])
}

/// A benchmark host with extra `serve` flags (`--isolation none` and the like).
fn start_host_with(flags: &[&str]) -> Result<HostProcess> {
    let mut options = HostOptions::bash().for_benchmarks();
    options.flags.extend(flags.iter().map(|f| f.to_string()));
    let host = HostProcess::start(options)?;
    progress(&format!(
        "host-server (pid {}) on port {}",
        host.pid(),
        host.port
    ));
    Ok(host)
}

// ---- keystroke-to-echo latency --------------------------------------------

async fn latency(figures: &mut Vec<Figure>) -> Result<()> {
    let host = start_host()?;
    let mode = isolation_of(&host).await?;

    progress(&format!(
        "latency: 1 session, {ONE_SESSION_KEYS} keystrokes ({mode})"
    ));
    let mut one = typing_session(&host, ONE_SESSION_KEYS).await?;
    one.sort();
    figures.push(latency_figure(
        &format!("keystroke echo, 1 session ({mode})"),
        &one,
    ));

    for pace in [Pace::Spread, Pace::Lockstep] {
        many_typing(&host, &mode, pace, figures).await?;
    }
    Ok(())
}

/// How the many sessions of `bench latency` time their keystrokes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Pace {
    /// People do not type in lockstep: the sessions' keystrokes are spread
    /// evenly over the interval.
    Spread,
    /// Every session sends its key at the same instant (a barrier before
    /// each key): the worst case for the host's scheduling.
    Lockstep,
}

/// `MANY_SESSIONS` sessions on `host`, each typing `MANY_SESSIONS_KEYS`
/// keys every `KEY_INTERVAL`, timed as `pace` says.
async fn many_typing(
    host: &HostProcess,
    mode: &str,
    pace: Pace,
    figures: &mut Vec<Figure>,
) -> Result<()> {
    progress(&format!(
        "latency: starting {MANY_SESSIONS} sessions, each typing {MANY_SESSIONS_KEYS} keys every {} ms ({pace:?})",
        KEY_INTERVAL.as_millis()
    ));
    let barrier = std::sync::Arc::new(tokio::sync::Barrier::new(MANY_SESSIONS));
    let cpu_before = (cpu_time(host.pid()), cpu_time(std::process::id()));
    let mut tasks = Vec::new();
    for i in 0..MANY_SESSIONS {
        let timing = match pace {
            Pace::Spread => KeyTiming::Phase(KEY_INTERVAL * i as u32 / MANY_SESSIONS as u32),
            Pace::Lockstep => KeyTiming::Together(barrier.clone()),
        };
        let session = new_session_id();
        let ticket = host.ticket(session, 1).await;
        let ws_url = host.ws_url();
        let origin = host.origin();
        tasks.push(tokio::spawn(async move {
            let mut client = Client::connect_with_origin(&ws_url, &origin).await?;
            client
                .handshake(&ticket, session, Size { cols: 80, rows: 24 })
                .await?;
            type_keys(&mut client, MANY_SESSIONS_KEYS, timing, None)
                .await
                .map(|(owner, _)| owner)
        }));
    }
    let mut all = Vec::new();
    let mut failures = 0;
    for task in tasks {
        match task.await {
            Ok(Ok(samples)) => all.extend(samples),
            Ok(Err(err)) => {
                failures += 1;
                progress(&format!("latency: a session failed: {err:#}"));
            }
            Err(err) => {
                failures += 1;
                progress(&format!("latency: a session panicked: {err}"));
            }
        }
    }
    // Both sides share the two cores: what each spent per key says which
    // one a figure is made of.
    let cpu_host = cpu_time(host.pid()).saturating_sub(cpu_before.0);
    let cpu_client = cpu_time(std::process::id()).saturating_sub(cpu_before.1);
    let keys = (MANY_SESSIONS * (MANY_SESSIONS_KEYS + WARMUP_KEYS)) as u32;
    figures.push(Figure {
        what: format!("  CPU per keystroke ({pace:?}, setup included): host / bench client"),
        measured: format!(
            "{:.0} µs / {:.0} µs",
            (cpu_host / keys).as_secs_f64() * 1e6,
            (cpu_client / keys).as_secs_f64() * 1e6
        ),
        target: "",
        met: None,
    });
    all.sort();
    let how = match pace {
        Pace::Spread => "spread over the interval",
        Pace::Lockstep => "in lockstep",
    };
    let mut figure = latency_figure(
        &format!("keystroke echo, {MANY_SESSIONS} sessions {how} ({mode})"),
        &all,
    );
    if failures > 0 {
        figure
            .measured
            .push_str(&format!(" ({failures} sessions failed)"));
        figure.met = Some(false);
    }
    figures.push(figure);
    if all.is_empty() {
        bail!("no latency samples from {MANY_SESSIONS} sessions ({pace:?})");
    }
    Ok(())
}

/// CPU time all threads of `pid` have run so far (`schedstat`, in ns), or
/// zero if procfs cannot say.
fn cpu_time(pid: u32) -> Duration {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Duration::ZERO;
    };
    let nanos: u64 = tasks
        .filter_map(|task| {
            let path = task.ok()?.path().join("schedstat");
            let text = std::fs::read_to_string(path).ok()?;
            text.split_whitespace().next()?.parse::<u64>().ok()
        })
        .sum();
    Duration::from_nanos(nanos)
}

fn latency_figure(what: &str, sorted: &[Duration]) -> Figure {
    let p50 = percentile(sorted, 50.0);
    let p99 = percentile(sorted, 99.0);
    Figure {
        what: what.to_string(),
        measured: format!(
            "p50 {:.3} ms, p99 {:.3} ms, max {:.3} ms (n={})",
            ms(p50),
            ms(p99),
            ms(sorted.last().copied().unwrap_or_default()),
            sorted.len()
        ),
        target: "p50 <= 1 ms, p99 <= 5 ms",
        met: Some(
            !sorted.is_empty()
                && p50 <= Duration::from_millis(1)
                && p99 <= Duration::from_millis(5),
        ),
    }
}

async fn typing_session(host: &HostProcess, keys: usize) -> Result<Vec<Duration>> {
    let mut client = Client::attach(host, None, Size { cols: 80, rows: 24 }).await?;
    let (owner, _) = type_keys(&mut client, keys, KeyTiming::Phase(Duration::ZERO), None).await?;
    Ok(owner)
}

/// When a typing session sends each key.
enum KeyTiming {
    /// Every `KEY_INTERVAL`, starting this long after `cat` is up.
    Phase(Duration),
    /// Every `KEY_INTERVAL`, and then only once every session sharing the
    /// barrier is ready to send: all of them send at the same instant.
    Together(std::sync::Arc<tokio::sync::Barrier>),
}

/// Starts `cat` (the terminal echoes what is typed at it, with no shell
/// line editing in between) and times each keystroke until the frame that
/// shows it, one key every `KEY_INTERVAL`; with a `viewer` of the session,
/// also until that viewer's screen shows it (the second list).
async fn type_keys(
    client: &mut Client,
    keys: usize,
    timing: KeyTiming,
    mut viewer: Option<&mut Client>,
) -> Result<(Vec<Duration>, Vec<Duration>)> {
    client
        .wait_for(ECHO_TIMEOUT, "the prompt", |s| s.at_prompt())
        .await?;
    // Readline echoes the newline before bash gives the terminal back its
    // line editing: a key typed in between would reach `cat` unechoed, as
    // a line of its own. What bash runs, it runs after that.
    client.type_str("echo cat-re''ady; cat\r").await?;
    client
        .wait_for(ECHO_TIMEOUT, "cat to start", |s| {
            s.cursor().col == 0 && s.cursor_line().is_empty() && s.has_line("cat-ready")
        })
        .await?;
    let mut samples = Vec::with_capacity(keys);
    let mut watched = Vec::new();
    let phase = match &timing {
        KeyTiming::Phase(phase) => *phase,
        KeyTiming::Together(_) => Duration::ZERO,
    };
    let start = tokio::time::Instant::now() + phase;
    let mut ticker = tokio::time::interval_at(start, KEY_INTERVAL);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let alphabet = b"abcdefghijklmnopqrstuvwxyz";
    for i in 0..keys + WARMUP_KEYS {
        ticker.tick().await;
        // Start a fresh line now and then so the typed line never wraps.
        if client.screen.cursor().col >= 60 {
            // The terminal echoes the newline, then cat prints the line back:
            // wait for both, or the next key lands on a moving target.
            let typed = client.screen.cursor_line();
            client.type_str("\r").await?;
            client
                .wait_for(ECHO_TIMEOUT, "cat to print the line back", |s| {
                    let row = s.cursor().row;
                    let above = |n: u16| row.checked_sub(n).map(|r| s.row_text(r));
                    s.cursor().col == 0
                        && above(1).as_ref() == Some(&typed)
                        && above(2).as_ref() == Some(&typed)
                })
                .await?;
        }
        let key = alphabet[i % alphabet.len()] as char;
        let (row, col) = (client.screen.cursor().row, client.screen.cursor().col);
        if let KeyTiming::Together(barrier) = &timing {
            // Bounded: a session that failed never arrives.
            tokio::time::timeout(ECHO_TIMEOUT, barrier.wait())
                .await
                .context("the other sessions never got ready to type")?;
        }
        let sent = Instant::now();
        client.type_str(&key.to_string()).await?;
        let shown = |s: &web_terminal::screen::Screen| {
            s.cursor().col == col + 1 && s.row_text(row).chars().nth(usize::from(col)) == Some(key)
        };
        client
            .wait_for(ECHO_TIMEOUT, &format!("the echo of {key:?}"), shown)
            .await?;
        if i >= WARMUP_KEYS {
            samples.push(sent.elapsed());
        }
        if let Some(viewer) = viewer.as_deref_mut() {
            viewer
                .wait_for(ECHO_TIMEOUT, &format!("{key:?} at the viewer's"), shown)
                .await?;
            if i >= WARMUP_KEYS {
                watched.push(sent.elapsed());
            }
        }
    }
    client.type_bytes(b"\x04").await?;
    Ok((samples, watched))
}

// ---- viewers ----------------------------------------------------------------

/// Keys the owner types in each round of `bench viewers`.
const VIEWER_KEYS: usize = 200;
/// Viewers besides the timed one, in each round.
const VIEWER_ROUNDS: [usize; 3] = [0, 10, 50];

/// One session's owner typing (as `latency` times it) while share-link
/// viewers watch: the owner's echo with none, 10 and 50 viewers reading
/// along, and with 50 that stopped reading (they must cost the owner
/// nothing: the host drops them); the time until a viewer's screen shows
/// each key; and the host's memory per viewer.
async fn viewers(figures: &mut Vec<Figure>) -> Result<()> {
    for (extra, reading) in VIEWER_ROUNDS
        .iter()
        .map(|n| (*n, true))
        .chain([(VIEWER_ROUNDS[2], false)])
    {
        let host = start_host()?;
        let session = new_session_id();
        let mut owner = Client::attach(&host, Some(session), Size { cols: 80, rows: 24 }).await?;
        let rss_before = resident_bytes(host.pid()).unwrap_or(0);
        let mut probe = watch(&host, session, 0).await?;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let mut watchers = Vec::new();
        let mut idle = Vec::new();
        for n in 0..extra {
            let mut viewer = watch(&host, session, n as u64 + 1).await?;
            if !reading {
                // Connected, never read again: its socket fills.
                idle.push(viewer);
                continue;
            }
            let stop = stop.clone();
            watchers.push(tokio::spawn(async move {
                // Reads (and acknowledges) until told to stop, looking up
                // every 100 ms.
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    let soon = Instant::now() + Duration::from_millis(100);
                    let event = viewer.next_event_until(soon).await;
                    if let Ok(Some(tests::client::Event::Closed { .. })) | Err(_) = event {
                        break;
                    }
                }
                (viewer.frames, viewer.frame_bytes)
            }));
        }
        let rss_watched = resident_bytes(host.pid()).unwrap_or(0);
        let how = if reading { "reading" } else { "not reading" };
        progress(&format!(
            "viewers: {VIEWER_KEYS} keys typed, 1 timed viewer and {extra} more {how}"
        ));
        let (mut typed, mut seen) = type_keys(
            &mut owner,
            VIEWER_KEYS,
            KeyTiming::Phase(Duration::ZERO),
            Some(&mut probe),
        )
        .await?;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let mut received = (0u64, 0u64);
        for task in watchers {
            if let Ok((frames, bytes)) = task.await {
                received = (received.0 + frames, received.1 + bytes);
            }
        }
        drop(idle);
        typed.sort();
        seen.sort();
        let mut owner_figure = latency_figure(
            &format!("keystroke echo, owner, {extra} more viewers {how}"),
            &typed,
        );
        owner_figure.target = "p50 <= 1 ms, p99 <= 5 ms (as with none)";
        figures.push(owner_figure);
        let p50 = percentile(&seen, 50.0);
        figures.push(Figure {
            what: format!("  key to a viewer's screen, {extra} more viewers {how}"),
            measured: format!(
                "p50 {:.3} ms, p99 {:.3} ms (n={})",
                ms(p50),
                ms(percentile(&seen, 99.0)),
                seen.len()
            ),
            target: "",
            met: None,
        });
        if extra > 0 && reading {
            let per_viewer = (rss_watched.saturating_sub(rss_before)) as f64 / (extra + 1) as f64;
            figures.push(Figure {
                what: format!(
                    "  host RSS per viewer; each viewer's frames per key ({extra} viewers)"
                ),
                measured: format!(
                    "{:.0} KB; {:.2} frames, {:.0} B per key",
                    per_viewer / 1024.0,
                    received.0 as f64 / (extra * (VIEWER_KEYS + WARMUP_KEYS)) as f64,
                    received.1 as f64 / (extra * (VIEWER_KEYS + WARMUP_KEYS)) as f64
                ),
                target: "",
                met: None,
            });
        }
    }
    Ok(())
}

/// A viewer of `session` on `host` through a (watch-only) share grant; the
/// host has no store, so the grant is all it checks.
async fn watch(host: &HostProcess, session: protocol::SessionId, n: u64) -> Result<Client> {
    let mut claims = host.grant(session, 1).await.claims();
    claims.share = Some(auth::ticket::ShareGrant {
        id: [n as u8; 16],
        owner: claims.user.clone(),
        may_type: false,
    });
    claims.user = format!("viewer{n}");
    let ticket = tests::tickets::sign(&claims);
    let mut client = Client::connect(host).await?;
    client
        .handshake(&ticket, session, Size { cols: 40, rows: 10 })
        .await
        .context("a viewer's handshake")?;
    Ok(client)
}

// ---- session start -----------------------------------------------------------

/// Sessions started one after another on each host, after the warm-up.
const START_SAMPLES: usize = 60;
/// Starts discarded first (page cache, the first cgroup, the first home).
const START_WARMUP: usize = 3;

/// The time from a ticket's WebSocket opening to the first prompt on the
/// screen, for sessions started one at a time: on a sandboxed host (the
/// default, `auto`) and on one with `--isolation none`, so the figure shows
/// what the sandbox costs a user.
async fn session_start(figures: &mut Vec<Figure>) -> Result<()> {
    let mut medians = Vec::new();
    for flags in [&[][..], &["--isolation", "none"][..]] {
        let host = start_host_with(flags)?;
        let mode = isolation_of(&host).await?;
        progress(&format!(
            "start: {START_SAMPLES} sessions one after another ({mode})"
        ));
        let mut samples = Vec::with_capacity(START_SAMPLES);
        for i in 0..START_SAMPLES + START_WARMUP {
            let session = new_session_id();
            let ticket = host.ticket(session, 1).await;
            let started = Instant::now();
            let mut client = Client::connect_with_origin(&host.ws_url(), &host.origin()).await?;
            client
                .handshake(&ticket, session, Size { cols: 80, rows: 24 })
                .await?;
            client
                .wait_for(ECHO_TIMEOUT, "the prompt", |s| s.at_prompt())
                .await?;
            if i >= START_WARMUP {
                samples.push(started.elapsed());
            }
            // End it before the next one starts, so every start sees the
            // same host.
            client.type_str("exit\r").await?;
            client.expect_close(ECHO_TIMEOUT).await?;
        }
        samples.sort();
        let p50 = percentile(&samples, 50.0);
        medians.push(p50);
        figures.push(Figure {
            what: format!("session start to first prompt ({mode})"),
            measured: format!(
                "p50 {:.1} ms, p99 {:.1} ms (n={})",
                ms(p50),
                ms(percentile(&samples, 99.0)),
                samples.len()
            ),
            target: "none (compare the two)",
            met: None,
        });
    }
    if let [sandboxed, plain] = medians[..] {
        figures.push(Figure {
            what: "what the sandbox adds to a session start (p50)".into(),
            measured: format!("{:+.1} ms", ms(sandboxed) - ms(plain)),
            target: "none",
            met: None,
        });
    }
    Ok(())
}

// ---- sessions per host -------------------------------------------------------

/// Sessions held open (each a real bash) while one more types.
const CAPACITY_SESSIONS: usize = 999;

/// Fills one host with `CAPACITY_SESSIONS` idle shells, then measures the
/// host's memory per session (attached and detached) and the echo latency
/// of one more session typing among them.
async fn capacity(figures: &mut Vec<Figure>) -> Result<()> {
    let host = start_host()?;
    let mode = isolation_of(&host).await?;
    let before = resident_bytes(host.pid())?;
    progress(&format!(
        "capacity: opening {CAPACITY_SESSIONS} sessions, {} at a time ({mode})",
        tests::bench_memory::BATCH
    ));
    let started = Instant::now();
    let clients = tests::bench_memory::open_idle(&host, CAPACITY_SESSIONS, &|open| {
        if open % 200 < tests::bench_memory::BATCH {
            progress(&format!("capacity: {open} sessions open"));
        }
    })
    .await?;
    let opened = started.elapsed();
    let attached = resident_bytes(host.pid())?;
    let processes = descendants(host.pid())?;
    progress(&format!("capacity: the host's descendants: {processes:?}"));
    let mut samples = typing_session(&host, ONE_SESSION_KEYS).await?;
    samples.sort();
    drop(clients);
    // Let the host notice the closed sockets before reading its memory.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut detached = resident_bytes(host.pid())?;
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(200)).await;
        let now = resident_bytes(host.pid())?;
        if now == detached {
            break;
        }
        detached = now;
    }
    let per = |total: u64| total.saturating_sub(before) / CAPACITY_SESSIONS as u64;
    let sessions = CAPACITY_SESSIONS as u64;
    figures.push(Figure {
        what: format!("sandbox processes per idle session ({mode})"),
        measured: format!(
            "{} KB PSS in {:.1} bwrap processes",
            processes.sandbox_kib / sessions,
            processes.sandbox_processes as f64 / CAPACITY_SESSIONS as f64
        ),
        target: "none (reported)",
        met: None,
    });
    figures.push(Figure {
        what: "shell per idle session (bash, PSS)".into(),
        measured: format!(
            "{} KB in {:.1} processes",
            processes.program_kib / sessions,
            processes.programs as f64 / CAPACITY_SESSIONS as f64
        ),
        target: "none (reported)",
        met: None,
    });
    figures.push(Figure {
        what: "everything per idle session (host RSS + sandbox + shell)".into(),
        measured: format!(
            "{} KB",
            (per(attached) / 1024) + (processes.sandbox_kib + processes.program_kib) / sessions
        ),
        target: "none (reported)",
        met: None,
    });
    figures.push(Figure {
        what: format!("sessions on one host (real bash each, {mode})"),
        measured: format!(
            "{} + 1 typing, opened in {:.1} s",
            CAPACITY_SESSIONS,
            opened.as_secs_f64()
        ),
        target: ">= 1,000",
        met: Some(CAPACITY_SESSIONS + 1 >= 1000),
    });
    figures.push(Figure {
        what: "host memory per idle session".into(),
        measured: format!(
            "{} KB attached, {} KB detached",
            per(attached) / 1024,
            per(detached) / 1024
        ),
        target: "<= 100 KB besides the shell",
        met: Some(per(attached) <= 100 * 1024),
    });
    let mut figure = latency_figure(
        &format!("keystroke echo among {} sessions", CAPACITY_SESSIONS + 1),
        &samples,
    );
    figure.target = "p99 <= 50 ms";
    figure.met = samples
        .get(samples.len() * 99 / 100)
        .map(|p99| *p99 <= Duration::from_millis(50));
    figures.push(figure);
    Ok(())
}

// ---- output throughput ---------------------------------------------------

async fn throughput(figures: &mut Vec<Figure>) -> Result<()> {
    let host = start_host()?;
    let size = Size {
        cols: 200,
        rows: 50,
    };
    let mut client = Client::attach(&host, None, size).await?;
    client
        .wait_for(ECHO_TIMEOUT, "the prompt", |s| s.at_prompt())
        .await?;
    // The session writes the file itself, as its user, into its own home:
    // nothing of the host's is visible inside the sandbox. Each line is
    // FLOOD_LINE bytes long, like the text of a log.
    let lines = THROUGHPUT_BYTES / (9 + FLOOD_LINE.len() as u64);
    progress(&format!(
        "throughput: the session writes {} MB to ~/flood.txt",
        THROUGHPUT_BYTES / 1_000_000
    ));
    client
        .type_str(&format!(
            "seq -f '%09.0f {}' 0 {} > ~/flood.txt; echo __wri''tten__\r",
            FLOOD_LINE.trim_end(),
            lines - 1
        ))
        .await?;
    client
        .wait_for(THROUGHPUT_TIMEOUT, "the flood file", |s| {
            s.has_line("__written__")
        })
        .await?;
    client.type_str("clear\r").await?;
    client
        .wait_for(ECHO_TIMEOUT, "a clear screen", |s| {
            !s.has_line("__written__") && s.at_prompt()
        })
        .await?;
    let before = http::metrics(host.port).await?;
    let pty_before = before
        .get("thinline_pty_bytes_read_total")
        .copied()
        .unwrap_or(0.0);
    let (frames_before, bytes_before) = (client.frames, client.frame_bytes);

    progress("throughput: cat of the file, acknowledging every frame");
    // The quotes keep the marker out of the echoed command line.
    client
        .type_str("cat ~/flood.txt; echo __do''ne__\r")
        .await?;
    let started = Instant::now();
    let mut last_report = Instant::now();
    let deadline = started + THROUGHPUT_TIMEOUT;
    loop {
        let slice_end = (Instant::now() + Duration::from_secs(1)).min(deadline);
        let done = client
            .wait_for(
                slice_end.saturating_duration_since(Instant::now()),
                "__done__",
                |s| s.has_line("__done__"),
            )
            .await
            .is_ok();
        if done {
            break;
        }
        if let Some((code, reason)) = &client.closed {
            bail!("the host closed the connection during the flood: {code} {reason}");
        }
        if Instant::now() >= deadline {
            bail!("cat of {THROUGHPUT_BYTES} bytes did not finish within {THROUGHPUT_TIMEOUT:?}");
        }
        if last_report.elapsed() >= Duration::from_secs(2) {
            last_report = Instant::now();
            let now = http::metrics(host.port).await?;
            let read = now
                .get("thinline_pty_bytes_read_total")
                .copied()
                .unwrap_or(0.0)
                - pty_before;
            progress(&format!(
                "throughput: {:.0} MB read by the host after {:.1} s",
                read / 1e6,
                started.elapsed().as_secs_f64()
            ));
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    let after = http::metrics(host.port).await?;
    let pty_read = after
        .get("thinline_pty_bytes_read_total")
        .copied()
        .unwrap_or(0.0)
        - pty_before;
    let frames = client.frames - frames_before;
    let frame_bytes = client.frame_bytes - bytes_before;
    let host_rate = pty_read / elapsed / 1e6;
    figures.push(Figure {
        what: "cat 100 MB: consumed by the host".into(),
        measured: format!(
            "{host_rate:.1} MB/s ({:.0} MB in {elapsed:.2} s)",
            pty_read / 1e6
        ),
        target: ">= 100 MB/s",
        met: Some(host_rate >= 100.0),
    });
    figures.push(Figure {
        what: "cat 100 MB: received by the client".into(),
        measured: format!(
            "{:.0} frames/s, {:.2} MB/s ({frames} frames, {:.1} MB)",
            frames as f64 / elapsed,
            frame_bytes as f64 / elapsed / 1e6,
            frame_bytes as f64 / 1e6
        ),
        target: "display rate, not output rate",
        met: None,
    });
    Ok(())
}

// ---- the table -----------------------------------------------------------

fn print_table(figures: &[Figure]) {
    let what_width = figures
        .iter()
        .map(|f| f.what.len())
        .max()
        .unwrap_or(4)
        .max(4);
    let measured_width = figures
        .iter()
        .map(|f| f.measured.len())
        .max()
        .unwrap_or(8)
        .max(8);
    println!();
    println!(
        "{:what_width$}  {:measured_width$}  {:28}  verdict",
        "what", "measured", "target (DESIGN.md)"
    );
    println!("{}", "-".repeat(what_width + measured_width + 28 + 13));
    for figure in figures {
        let verdict = match figure.met {
            Some(true) => "ok",
            Some(false) => "MISSED",
            None => "",
        };
        println!(
            "{:what_width$}  {:measured_width$}  {:28}  {verdict}",
            figure.what, figure.measured, figure.target
        );
    }
}
