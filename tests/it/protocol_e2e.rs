//! The wire protocol against a real host and a real shell: handshake, echo,
//! flow control under a flood (promise 7), reattach, and exactly-once input
//! (promise 1), seen from a native client so failures point at the host
//! rather than at the browser client.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use protocol::{ClientToServerMsg, Size};
use tests::client::{Client, Event};
use tests::screen_text::ScreenText;

use crate::{PATIENCE, SIZE, assert_echoes, attach_at_prompt, start_bash_host};

/// More unacknowledged frames than this means the host does not hold back.
/// PROTOCOL.md promises "a few"; this leaves room for any sensible window.
const MAX_UNACKED_FRAMES: u64 = 16;

#[tokio::test]
async fn hello_gets_a_welcome_then_frames_and_input_echoes() -> Result<()> {
    let host = start_bash_host()?;
    let mut client = Client::connect(&host).await?;
    let session = tests::tickets::new_session_id();
    client
        .send_hello(&host.ticket(session, 1).await, session, SIZE)
        .await?;

    // The first message must be the welcome, then frames follow.
    let deadline = Instant::now() + PATIENCE;
    match client.next_event_until(deadline).await? {
        Some(Event::Message(protocol::ServerToClientMsg::Welcome(welcome))) => {
            ensure!(welcome.created, "a hello for a new session creates it");
            ensure!(welcome.session == session, "created {:?}", welcome.session);
            ensure!(welcome.host == "h1", "host name {:?}", welcome.host);
            ensure!(welcome.input_seq == 0, "a new session has applied no input");
        }
        other => bail!("expected a welcome first, got {other:?}"),
    }
    client
        .wait_for(PATIENCE, "the first prompt", |s| s.at_prompt())
        .await?;
    ensure!(
        client.screen.size() == SIZE,
        "frame size {:?}",
        client.screen.size()
    );
    assert_echoes(&mut client).await?;
    ensure!(client.input_acked == client.input_seq, "input acknowledged");
    Ok(())
}

#[tokio::test]
async fn resize_reaches_the_program() -> Result<()> {
    let host = start_bash_host()?;
    let mut client = attach_at_prompt(&host).await?;
    let size = Size { cols: 97, rows: 31 };
    client.send(&ClientToServerMsg::Resize(size)).await?;
    client
        .wait_for(PATIENCE, "a frame of the new size", |s| s.size() == size)
        .await?;
    client.run_expecting("stty size", "31 97", PATIENCE).await
}

#[tokio::test]
async fn a_flood_is_held_to_the_frame_window_and_ctrl_c_answers_at_once() -> Result<()> {
    let host = start_bash_host()?;
    let mut client = attach_at_prompt(&host).await?;

    // Everything so far is acknowledged; from now on, nothing is.
    client.ack().await?;
    client.auto_ack = false;
    let frames_before = client.frames;
    client.type_str("yes\r").await?;

    // Give the host ample time to overrun a window it did not respect.
    let deadline = Instant::now() + Duration::from_secs(2);
    while let Some(event) = client.next_event_until(deadline).await? {
        if let Event::Closed { code, reason } = event {
            bail!("host closed ({code} {reason}) during the flood");
        }
    }
    let unacked = client.frames - frames_before;
    ensure!(unacked >= 1, "`yes` produced no frame at all");
    ensure!(
        unacked <= MAX_UNACKED_FRAMES,
        "the host sent {unacked} frames without an acknowledgement"
    );

    // Acknowledging opens the window again: frames resume.
    client.auto_ack = true;
    client.ack().await?;
    let resumed_from = client.frames;
    let deadline = Instant::now() + PATIENCE;
    while client.frames < resumed_from + 3 {
        match client.next_event_until(deadline).await? {
            Some(Event::Message(_)) => {}
            Some(Event::Closed { code, reason }) => bail!("host closed ({code} {reason})"),
            None => bail!("frames did not resume after the acknowledgement"),
        }
    }
    ensure!(
        client.screen.has_line("y"),
        "the flood should be on screen:\n{}",
        client.screen.text()
    );

    // Ctrl-C is answered at once even though output was flooding.
    client.type_bytes(b"\x03").await?;
    client
        .wait_for(Duration::from_secs(5), "the prompt after Ctrl-C", |s| {
            s.at_prompt()
        })
        .await?;
    assert_echoes(&mut client).await
}

#[tokio::test]
async fn reattach_finds_the_same_session_and_screen() -> Result<()> {
    let host = start_bash_host()?;
    let mut first = attach_at_prompt(&host).await?;
    first
        .run_expecting("echo before-$((3*7))", "before-21", PATIENCE)
        .await?;
    first.type_str("echo pid-$$\r").await?;
    first
        .wait_for(PATIENCE, "the shell's pid", |s| {
            pid_line(&s.rows()).is_some() && s.at_prompt()
        })
        .await?;
    let pid = pid_line(&first.screen.rows()).context("pid line")?;
    let session = first.session().context("session id")?;
    let applied = first.input_seq;
    first.wait_input_acked(applied, PATIENCE).await?;
    first.close().await;

    let mut second = Client::attach(&host, Some(session), SIZE).await?;
    let welcome = second.welcome.clone().context("welcome")?;
    ensure!(!welcome.created, "reattaching must not create a session");
    ensure!(
        welcome.session == session,
        "another session: {:?}",
        welcome.session
    );
    ensure!(
        welcome.input_seq == applied,
        "the session applied {} inputs, the welcome says {}",
        applied,
        welcome.input_seq
    );
    // The first frame after the welcome already shows the earlier screen.
    ensure!(
        second.screen.has_line_anywhere("before-21"),
        "the reattached screen lost the earlier output:\n{}",
        second.screen.text()
    );
    second.type_str("echo pid-$$\r").await?;
    second
        .wait_for(PATIENCE, "the pid again", |s| {
            s.rows().iter().filter(|r| r.trim_end() == pid).count() >= 2 && s.at_prompt()
        })
        .await
        .context("the reattached session runs another shell")?;
    Ok(())
}

/// The `pid-NNN` output line (not the `echo pid-$$` command line).
fn pid_line(rows: &[String]) -> Option<String> {
    rows.iter()
        .map(|r| r.trim_end())
        .find(|r| {
            r.strip_prefix("pid-")
                .is_some_and(|n| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
        })
        .map(str::to_string)
}

#[tokio::test]
async fn input_is_applied_exactly_once() -> Result<()> {
    let host = start_bash_host()?;
    let mut client = attach_at_prompt(&host).await?;

    // Same connection: a resent, already acknowledged input is dropped.
    let seq = client.type_str("echo once-").await?;
    client.wait_input_acked(seq, PATIENCE).await?;
    client
        .send(&ClientToServerMsg::Input {
            seq,
            data: b"echo once-".to_vec(),
        })
        .await?;
    client.type_str("A\r").await?;
    client
        .wait_for(PATIENCE, "once-A", |s| {
            s.has_line("once-A") && s.at_prompt()
        })
        .await?;
    ensure!(
        !client.screen.has_line_anywhere("once-echo once-A"),
        "the duplicate input was applied:\n{}",
        client.screen.text()
    );

    // After a reattach: the client resends what it believes unacknowledged
    // (here, deliberately, the last applied input) and only newer input runs.
    let session = client.session();
    let last = client.input_seq;
    client.wait_input_acked(last, PATIENCE).await?;
    client.close().await;
    let mut again = Client::attach(&host, session, SIZE).await?;
    ensure!(
        again.input_seq == last,
        "welcome input_seq {}",
        again.input_seq
    );
    again
        .send(&ClientToServerMsg::Input {
            seq: last,
            data: b"echo replayed-$((1+1))\r".to_vec(),
        })
        .await?;
    again
        .run_expecting("echo fresh-$((2+3))", "fresh-5", PATIENCE)
        .await?;
    ensure!(
        !again.screen.has_line_anywhere("replayed-2"),
        "a replayed input ran twice:\n{}",
        again.screen.text()
    );
    Ok(())
}
