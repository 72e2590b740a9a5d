//! Thinline's end-to-end tests: one binary, because every extra test binary
//! costs a link. Each test starts its own `host-server` process on a free
//! loopback port, so tests run in parallel and share nothing but the
//! machine; the browser tests additionally take turns (see `browser`).

mod accounts;
mod bad_input;
mod browser;
mod containers;
mod control_plane;
mod edge;
mod failover;
mod files;
mod host_cli;
mod hot_desk;
mod isolation;
mod outage;
mod prediction;
mod protocol_e2e;
mod recording;
mod restore;
mod sharing;
mod soak;
mod viewers;

use std::time::Duration;

use anyhow::{Context, Result};
use protocol::Size;
use tests::client::Client;
use tests::host::{HostOptions, HostProcess};
use tests::screen_text::{ScreenText, Terminal};
use tests::unique_marker;

/// Generous, because two cores may be building and testing at once; a
/// passing run waits only as long as the host actually takes.
pub const PATIENCE: Duration = Duration::from_secs(20);

pub const SIZE: Size = Size { cols: 80, rows: 24 };

pub fn start_bash_host() -> Result<HostProcess> {
    HostProcess::start(HostOptions::bash())
}

/// Attaches a new session and waits for bash's first prompt.
pub async fn attach_at_prompt(host: &HostProcess) -> Result<Client> {
    let mut client = Client::attach(host, None, SIZE).await?;
    client
        .wait_for(PATIENCE, "the first prompt", |screen| screen.at_prompt())
        .await?;
    Ok(client)
}

/// Proves a session still works: a fresh marker computed by the shell
/// (so the echoed command line cannot satisfy the check) comes back.
pub async fn assert_echoes(terminal: &mut impl Terminal) -> Result<()> {
    let marker = unique_marker("alive");
    let expected = format!("{marker}-42");
    terminal
        .keys(&format!("echo {marker}-$((20+22))\r"))
        .await?;
    terminal
        .screen_until(PATIENCE, &format!("{expected:?} and a prompt"), |s| {
            s.has_line(&expected) && s.at_prompt()
        })
        .await
        .context("the session no longer echoes input")
}
