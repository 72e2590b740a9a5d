//! Recordings (issue 16, part 2) in a real browser: a user turns recording
//! on at `/recordings`, starts a session, works in it across a `kill -9`
//! of its host, and then finds a recording that
//! - replays, in the store and in the page's player, to the very screen
//!   the live session ended on, with a marker naming both hosts;
//! - exports as asciicast v2 that the reference `asciinema` tool (PyPI)
//!   reads, and whose output draws that same screen;
//! - is gone from the store, every block of it, once deleted on its page.

use std::time::Instant;

use anyhow::{Context, Result, ensure};
use host_server::emulator::Emulator;
use host_server::recording::replay::final_screen;
use host_server::recording::{Event, TimedEvent};
use protocol::Size;
use serde_json::Value;
use tests::browser::Browser;
use tests::cluster::{Backend, Cluster, ClusterOptions, recorded_events};
use tests::{tickets, wait_until};

use crate::PATIENCE;
use crate::failover::{browser_turn, served, wait_moved};

#[tokio::test]
async fn a_recording_across_a_host_loss_replays_exports_and_is_deleted() -> Result<()> {
    const TEST: &str = "a_recording_across_a_host_loss_replays_exports_and_is_deleted";
    let Some(_turn) = browser_turn(TEST).await? else {
        return Ok(());
    };
    let mut cluster = Cluster::start(ClusterOptions {
        hosts: 2,
        backend: Backend::Sqlite,
        ..ClusterOptions::default()
    })
    .await?;
    let browser = Browser::start(1000, 700).await?;
    let outcome = record(TEST, &mut cluster, &browser).await;
    if outcome.is_err() {
        eprintln!("{}", cluster.logs());
    }
    browser.close().await;
    outcome
}

async fn record(test: &str, cluster: &mut Cluster, browser: &Browser) -> Result<()> {
    let directory = cluster.directory_url(0);
    let store = cluster.store.clone();
    browser.open_at_prompt(&directory, PATIENCE).await?;

    // The deployment's default policy is opt-in: the user turns it on.
    goto(browser, &format!("{directory}/recordings")).await?;
    browser
        .click("form[action='/recordings/preference'] input[type=checkbox]")
        .await?;
    browser
        .click("form[action='/recordings/preference'] button")
        .await?;
    wait_until(PATIENCE, "the opt-in to reach the store", || async {
        Ok(if store.recording_opt_in(tickets::TEST_USER).await? {
            Ok(())
        } else {
            Err("still off".to_owned())
        })
    })
    .await?;

    // A new session is recorded from its start.
    goto(browser, &format!("{directory}/?new=1")).await?;
    browser.wait_live(PATIENCE).await?;
    browser
        .wait_mirror_line(PATIENCE, "a `$` prompt", |l| l == "$")
        .await?;
    let before = served(browser.state().await?)?;
    let session = before.session.clone();
    wait_until(PATIENCE, "the session's recording in the store", || async {
        Ok(store
            .get_recording(&session)
            .await?
            .map(|_| ())
            .ok_or("none yet".to_owned()))
    })
    .await?;
    browser
        .run("printf '\\033[1;31mred\\033[0m and plain\\n'; seq 1 40")
        .await?;
    let lost = browser.echo_marker("before-the-loss", PATIENCE).await?;
    cluster.wait_persisted(&session, &lost).await?;

    // The host dies; the session, and its recording, go on elsewhere.
    cluster.host_mut(&before.host)?.server.kill9()?;
    let after = wait_moved(browser, &before, PATIENCE).await?;
    let last = browser.echo_marker("after-the-loss", PATIENCE).await?;
    let live = screen_rows(
        browser
            .eval("window.thinline.text()")
            .await?
            .as_str()
            .context("thinline.text() is not text")?,
    );
    ensure!(live.contains(&last), "{live:?}");
    let state = browser.state().await?;
    let size = Size {
        cols: u16::try_from(state["cols"].as_u64().context("cols")?)?,
        rows: u16::try_from(state["rows"].as_u64().context("rows")?)?,
    };

    // The store's recording replays to the live screen, and marks the move.
    let recording = store
        .get_recording(&session)
        .await?
        .context("no recording")?;
    let events = wait_until(
        PATIENCE,
        "the recording to end on the live screen",
        || async {
            let events = recorded_events(store.as_ref(), &session).await?;
            let replayed =
                screen_rows(&final_screen(recording_size(&recording), &events).join("\n"));
            Ok(if replayed == live {
                Ok(events)
            } else {
                Err(format!(
                    "replayed:\n{}\nlive:\n{}",
                    replayed.join("\n"),
                    live.join("\n")
                ))
            })
        },
    )
    .await?;
    let moved = format!("moved from host {} to host {}", before.host, after.host);
    ensure!(
        events
            .iter()
            .any(|e| matches!(&e.event, Event::Marker(text) if text.starts_with(&moved))),
        "no marker says {moved:?}: {:?}",
        markers(&events)
    );

    // What the lost host showed before its screen was saved is in the
    // recording as that host recorded it, not only in the new host's
    // redraw of the saved screen: nothing lost beyond the persistence
    // bound.
    let before_move: Vec<u8> = events
        .iter()
        .take_while(|e| !matches!(&e.event, Event::Marker(text) if text.starts_with(&moved)))
        .filter_map(|e| match &e.event {
            Event::Output(bytes) => Some(bytes.as_slice()),
            _ => None,
        })
        .flatten()
        .copied()
        .collect();
    ensure!(
        before_move
            .windows(lost.len())
            .any(|w| w == lost.as_bytes()),
        "{lost:?} is not in what {} recorded",
        before.host
    );

    // The page's player: seeking to the end, then playing it through.
    goto(browser, &format!("{directory}/play?recording={session}")).await?;
    let ready = wait_until(PATIENCE, "the player to be ready", || async {
        let state = player_state(browser).await?;
        Ok(if state["ready"] == true {
            Ok(state)
        } else {
            Err(format!(
                "{state}, status: {}",
                player_status(browser).await?
            ))
        })
    })
    .await?;
    let listed = browser
        .eval("document.getElementById('markers').textContent")
        .await?;
    ensure!(
        listed.as_str().is_some_and(|t| t.contains(&moved)),
        "the timeline lists {listed}"
    );
    let duration = ready["duration_ms"].as_u64().context("no duration")?;
    browser
        .eval(&format!("window.thinlinePlayer.seek({duration})"))
        .await?;
    ensure!(
        player_rows(browser).await? == live,
        "the player's last screen differs"
    );
    browser.eval("window.thinlinePlayer.seek(0)").await?;
    ensure!(
        player_rows(browser).await? != live,
        "the start of the recording shows its end"
    );
    browser.select("#speed", "8").await?;
    let played_at = Instant::now();
    browser.click("#play").await?;
    wait_until(PATIENCE * 3, "the player to play to the end", || async {
        let state = player_state(browser).await?;
        Ok(
            if state["playing"] == false && state["position_ms"].as_f64() >= Some(duration as f64) {
                Ok(())
            } else {
                Err(state.to_string())
            },
        )
    })
    .await?;
    eprintln!(
        "{test}: {duration} ms of recording played in {:?} at 8x, pauses skipped",
        played_at.elapsed()
    );
    ensure!(
        player_rows(browser).await? == live,
        "played through, the player ends elsewhere"
    );

    // asciicast v2, as the reference tool reads it.
    let cast = fetch_text(
        browser,
        &format!("/v1/recordings/{session}/export?format=cast"),
    )
    .await?;
    let output = asciinema_cat(&cast)?;
    let header: Value = serde_json::from_str(cast.lines().next().context("an empty cast")?)?;
    ensure!(
        (
            header["version"].as_u64(),
            header["width"].as_u64(),
            header["height"].as_u64()
        ) == (Some(2), Some(size.cols.into()), Some(size.rows.into())),
        "{header}"
    );
    let mut emulator = Emulator::new(size);
    emulator.feed(&output);
    ensure!(
        screen_rows(&emulator.screen_text().join("\n")) == live,
        "asciinema's output draws another screen:\n{}",
        emulator.screen_text().join("\n")
    );
    ensure!(
        cast.lines()
            .any(|l| l.contains("\"m\"") && l.contains(&moved)),
        "the cast has no marker for the move"
    );
    let text = fetch_text(
        browser,
        &format!("/v1/recordings/{session}/export?format=txt"),
    )
    .await?;
    for line in ["red and plain", &lost, &last] {
        ensure!(
            text.lines().any(|l| l.trim_end() == line),
            "{line:?} not in the text export"
        );
    }

    // Deleted on its page: the row and every block leave the store.
    goto(browser, &format!("{directory}/recordings")).await?;
    let delete = format!("form[action='/recordings/{session}/delete']");
    // It asks first: the button shows once "Delete…" is opened.
    browser
        .click(&format!("details:has({delete}) > summary"))
        .await?;
    browser.click(&format!("{delete} button")).await?;
    wait_until(PATIENCE, "the recording to leave the store", || async {
        let row = store.get_recording(&session).await?;
        let blocks = store.recording_blocks(&session, None, 10).await?;
        Ok(if row.is_none() && blocks.is_empty() {
            Ok(())
        } else {
            Err(format!("row: {}, blocks: {}", row.is_some(), blocks.len()))
        })
    })
    .await?;
    // Its player now says so.
    goto(browser, &format!("{directory}/play?recording={session}")).await?;
    wait_until(
        PATIENCE,
        "the player to say the recording is gone",
        || async {
            let status = player_status(browser).await?;
            Ok(if status.contains("no recording") {
                Ok(())
            } else {
                Err(status)
            })
        },
    )
    .await?;
    Ok(())
}

async fn goto(browser: &Browser, url: &str) -> Result<()> {
    browser
        .client
        .goto(url)
        .await
        .with_context(|| format!("opening {url}"))
}

/// Rows without trailing blanks, blank rows at the bottom dropped.
fn screen_rows(text: &str) -> Vec<String> {
    let mut rows: Vec<String> = text.lines().map(|l| l.trim_end().to_owned()).collect();
    while rows.last().is_some_and(String::is_empty) {
        rows.pop();
    }
    rows
}

fn recording_size(recording: &store::RecordingRecord) -> Size {
    Size {
        cols: recording.cols,
        rows: recording.rows,
    }
}

fn markers(events: &[TimedEvent]) -> Vec<&str> {
    events
        .iter()
        .filter_map(|e| match &e.event {
            Event::Marker(text) => Some(text.as_str()),
            _ => None,
        })
        .collect()
}

async fn player_state(browser: &Browser) -> Result<Value> {
    let raw = browser
        .eval("window.thinlinePlayer ? window.thinlinePlayer.state() : '{}'")
        .await?;
    Ok(serde_json::from_str(raw.as_str().unwrap_or("{}"))?)
}

async fn player_status(browser: &Browser) -> Result<String> {
    let value = browser
        .eval("document.getElementById('player-status').textContent")
        .await?;
    Ok(value.as_str().unwrap_or_default().to_owned())
}

async fn player_rows(browser: &Browser) -> Result<Vec<String>> {
    let text = browser.eval("window.thinlinePlayer.text()").await?;
    Ok(screen_rows(text.as_str().context("the player's text")?))
}

/// A same-origin GET from the signed-in page, as its links would make it.
async fn fetch_text(browser: &Browser, path: &str) -> Result<String> {
    let body = browser
        .eval(&format!(
            "fetch('{path}').then(r => r.ok ? r.text() : Promise.reject(new Error(`${{r.status}}`)))"
        ))
        .await?;
    Ok(body.as_str().context("no text")?.to_owned())
}

/// What `asciinema cat` prints for `cast`: the output it reads from it.
fn asciinema_cat(cast: &str) -> Result<Vec<u8>> {
    let tool = std::env::var("ASCIINEMA").unwrap_or_else(|_| "asciinema".into());
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("session.cast");
    std::fs::write(&path, cast)?;
    let out = std::process::Command::new(&tool)
        .arg("cat")
        .arg(&path)
        .output()
        .with_context(|| {
            format!("running {tool} (cargo xtask test installs it; or set ASCIINEMA)")
        })?;
    ensure!(
        out.status.success(),
        "asciinema cat refused the cast: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(out.stdout)
}
