//! `bench recording`: what recording a session costs its user, and what a
//! recording costs to keep and to play.
//!
//! A release host over SQLite runs one session unrecorded and one
//! recorded (its ticket says `record`, as the directory's does under the
//! policy). In each, 200 keys typed into `cat` one at a time are timed
//! from the key's send to its echo on the client's screen, and then the
//! session prints 16 MB (`seq`), timed to its last line. Then the
//! recording is read back from the store as the directory reads it: its
//! size against the output it holds, and how long the player waits to
//! seek to its end (every block decoded and replayed through the
//! emulator) and for the text export's whole replay.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use host_server::recording::Event;
use host_server::recording::replay::{Playhead, final_screen, window};
use protocol::Size;

use crate::Figure;
use crate::client::Client;
use crate::cluster::recorded_events;
use crate::host::{HostOptions, HostProcess};
use crate::screen_text::ScreenText;
use crate::tickets;

const SIZE: Size = Size {
    cols: 120,
    rows: 40,
};
const KEYS: usize = 200;
/// `seq 1 FLOOD_LINES` prints 15.9 MB.
const FLOOD_LINES: u64 = 2_000_000;
const MAX_BYTES: u64 = 64 << 20;
const PATIENCE: Duration = Duration::from_secs(60);

struct Run {
    echo: Vec<Duration>,
    flood: Duration,
}

pub async fn recording(progress: &dyn Fn(&str), figures: &mut Vec<Figure>) -> Result<()> {
    let dir = tempfile::tempdir()?;
    let spec = format!("sqlite:{}", dir.path().join("store.db").display());
    let plain = run(progress, &spec, None).await?;
    let session = tickets::new_session_id();
    let recorded = run(progress, &spec, Some(session)).await?;
    for (what, run) in [("unrecorded", &plain), ("recorded", &recorded)] {
        let (p50, p99) = quantiles(&run.echo);
        figures.push(Figure {
            what: format!("key to echo, {what} session (p50 / p99)"),
            measured: format!("{p50:.2} / {p99:.2} ms"),
            target: "p50 <= 1 ms, p99 <= 5 ms (DESIGN)",
            met: Some(p50 <= 1.0 && p99 <= 5.0),
        });
        figures.push(Figure {
            what: format!("seq of 15.9 MB to its last line, {what}"),
            measured: format!(
                "{:.2} s ({:.0} MB/s)",
                run.flood.as_secs_f64(),
                15.9 / run.flood.as_secs_f64()
            ),
            target: "recording costs the flood little",
            met: None,
        });
    }

    let store = store::open(&spec, "thinline-bench").await?;
    let id = session.to_string();
    // The flood's last line reaches the store within the persistence
    // bound; what is read once it is there is what the player reads.
    let read = std::cell::Cell::new(Duration::ZERO);
    let events = crate::wait_until(PATIENCE, "the flood's end in the recording", || async {
        let read_at = Instant::now();
        let events = recorded_events(store.as_ref(), &id).await?;
        read.set(read_at.elapsed());
        Ok(
            if events.iter().any(
                |e| matches!(&e.event, Event::Output(b) if b.windows(8).any(|w| w == b"__done__")),
            ) {
                Ok(events)
            } else {
                Err(format!("{} events, no __done__ yet", events.len()))
            },
        )
    })
    .await?;
    let read = read.get();
    let record = store
        .get_recording(&id)
        .await?
        .context("the recorded session has no recording")?;
    let output: usize = events
        .iter()
        .map(|e| match &e.event {
            Event::Output(bytes) => bytes.len(),
            _ => 0,
        })
        .sum();
    figures.push(Figure {
        what: "recording kept in the store (blocks / output)".into(),
        measured: format!(
            "{:.2} MB for {:.2} MB of output ({:.1}x), {} blocks",
            record.bytes as f64 / 1e6,
            output as f64 / 1e6,
            output as f64 / record.bytes.max(1) as f64,
            record.blocks
        ),
        target: "compact",
        met: None,
    });
    let size = Size {
        cols: record.cols,
        rows: record.rows,
    };
    let seek_at = Instant::now();
    let end = window(
        size,
        &events,
        record.duration_ms,
        record.duration_ms + 1,
        4000,
    );
    let seek = seek_at.elapsed();
    ensure!(!end.frames.is_empty(), "a window at the end holds no frame");
    figures.push(Figure {
        what: "player: seek to the end of that recording (read, decode, replay)".into(),
        measured: format!(
            "{:.0} ms ({:.0} ms reading and decoding {} events)",
            (read + seek).as_secs_f64() * 1000.0,
            read.as_secs_f64() * 1000.0,
            events.len()
        ),
        target: "reported",
        met: None,
    });
    // Playing on: the next 100 ms from the middle of its output,
    // as the directory serves a player that keeps playing (from where the
    // last window ended), against a replay from the start for it.
    let mut seen = 0;
    let mid = events
        .iter()
        .find(|e| {
            if let Event::Output(bytes) = &e.event {
                seen += bytes.len();
            }
            seen >= output / 2
        })
        .map_or(0, |e| e.at_ms);
    let step = 100;
    let fresh_at = Instant::now();
    window(size, &events, mid, mid + step, 4000);
    let fresh = fresh_at.elapsed();
    let mut playhead = Playhead::new(size);
    playhead.window(&events, mid.saturating_sub(1), mid, 4000);
    let on_at = Instant::now();
    playhead.window(&events, mid, mid + step, 4000);
    let on = on_at.elapsed();
    figures.push(Figure {
        what: format!("player: the next {step} ms from its middle (from the start / played on)"),
        measured: format!(
            "{:.0} ms / {:.1} ms",
            fresh.as_secs_f64() * 1000.0,
            on.as_secs_f64() * 1000.0
        ),
        target: "reported",
        met: None,
    });
    let replay_at = Instant::now();
    let last = final_screen(size, &events);
    let replay = replay_at.elapsed();
    ensure!(
        last.iter().any(|l| l.trim_end() == "__done__"),
        "the replay does not end on the flood's end: {last:?}"
    );
    figures.push(Figure {
        what: "replay through the emulator (export, final screen)".into(),
        measured: format!("{:.0} MB/s", output as f64 / 1e6 / replay.as_secs_f64()),
        target: "reported",
        met: None,
    });
    progress("recording: done");
    Ok(())
}

/// One session on a fresh host over `spec`, recorded if `recorded` names
/// it: its echo times and its flood's.
async fn run(
    progress: &dyn Fn(&str),
    spec: &str,
    recorded: Option<protocol::SessionId>,
) -> Result<Run> {
    let mut options = HostOptions::bash().for_benchmarks();
    options.env.push(("THINLINE_STORE".into(), spec.into()));
    let host = HostProcess::start(options)?;
    let session = recorded.unwrap_or_else(tickets::new_session_id);
    let mut claims = host.grant(session, 1).await.claims();
    claims.record = recorded.map(|_| MAX_BYTES);
    let mut client = Client::connect(&host).await?;
    client
        .handshake(&tickets::sign(&claims), session, SIZE)
        .await?;
    client
        .wait_for(PATIENCE, "the prompt", |s| s.at_prompt())
        .await?;
    let what = if recorded.is_some() {
        "recorded"
    } else {
        "unrecorded"
    };
    progress(&format!("recording: {KEYS} keys into cat, {what}"));
    client.type_str("cat\r").await?;
    client
        .wait_for(PATIENCE, "cat to start on a line of its own", |s| {
            !s.at_prompt() && s.cursor().col == 0
        })
        .await?;
    let mut echo = Vec::with_capacity(KEYS);
    for i in 0..KEYS {
        let col = (i % 100) as u16 + 1;
        if i % 100 == 0 && i > 0 {
            client.type_str("\r").await?;
            client
                .wait_for(PATIENCE, "a new line", |s| s.cursor().col == 0)
                .await?;
        }
        let sent = Instant::now();
        client.type_str("x").await?;
        client
            .wait_for(PATIENCE, "the echo", |s| s.cursor().col == col)
            .await?;
        echo.push(sent.elapsed());
        // A fast typist's pace between keys, not a wait for anything.
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    client.type_str("\r\x04").await?;
    client
        .wait_for(PATIENCE, "the prompt after cat", |s| s.at_prompt())
        .await?;
    progress(&format!("recording: seq of 15.9 MB, {what}"));
    let started = Instant::now();
    client
        .type_str(&format!("seq 1 {FLOOD_LINES}; echo __do''ne__\r"))
        .await?;
    client
        .wait_for(PATIENCE, "the flood's end", |s| s.has_line("__done__"))
        .await?;
    let flood = started.elapsed();
    drop(client);
    drop(host);
    Ok(Run { echo, flood })
}

fn quantiles(samples: &[Duration]) -> (f64, f64) {
    let mut ms: Vec<f64> = samples.iter().map(|d| d.as_secs_f64() * 1000.0).collect();
    ms.sort_by(f64::total_cmp);
    let at = |q: f64| ms[((ms.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.99))
}
