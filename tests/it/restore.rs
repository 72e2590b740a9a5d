//! A session survives `kill -9` of its host: a second host process over the
//! same store and home root restores it (DESIGN.md, promise 2).
//!
//! These tests need no directory: hosts started with `--adopt-sessions`
//! take over a session whose record names another host when a client asks
//! for it by id, which is exactly what a single-host deployment does after
//! a crash and restart. The test checks the store itself (with the `store`
//! crate, as the host reads it) before killing the host, so it never kills
//! before the state it expects back was durable; then it checks what the
//! user gets: the old output, the notice, a shell in the same directory
//! with the same history, and a higher epoch.

use std::path::PathBuf;

use anyhow::{Context, Result, ensure};
use protocol::SessionId;
use store::{SqliteStore, Store};
use tests::client::Client;
use tests::host::{HostOptions, HostProcess};
use tests::screen_text::ScreenText;
use tests::{unique_marker, wait_until};

use crate::{PATIENCE, SIZE};

/// A SQLite store and a home root shared by every host of one test, the
/// way hosts on one machine share them.
struct SharedBackend {
    dir: tempfile::TempDir,
}

impl SharedBackend {
    fn new() -> Result<SharedBackend> {
        let dir = tempfile::Builder::new()
            .prefix("thinline-restore-")
            .tempdir()
            .context("creating the backend folder")?;
        Ok(SharedBackend { dir })
    }

    fn db(&self) -> PathBuf {
        self.dir.path().join("db.sqlite")
    }

    fn homes(&self) -> PathBuf {
        self.dir.path().join("homes")
    }

    /// Options for a host `host_id` on `port` (0: any) over this backend,
    /// adopting sessions whose host is gone.
    fn host(&self, host_id: &str, port: u16) -> HostOptions {
        let mut options = HostOptions::bash();
        options.host_id = host_id.into();
        options.port = port;
        options.env.extend([
            (
                "THINLINE_STORE".to_string(),
                format!("sqlite:{}", self.db().display()),
            ),
            (
                "THINLINE_HOME_ROOT".to_string(),
                self.homes().display().to_string(),
            ),
            ("THINLINE_ADOPT_SESSIONS".to_string(), "true".to_string()),
        ]);
        options
    }

    async fn open_store(&self) -> Result<SqliteStore> {
        SqliteStore::open(&self.db())
            .await
            .context("opening the hosts' SQLite store from the test")
    }
}

/// What the store must hold before the host may be killed.
struct Durable {
    cwd: String,
    epoch: u64,
}

/// Waits until the store has the session in `dir_name` and a saved screen
/// showing `line`; returns the stored cwd and epoch.
async fn wait_durable(
    store: &SqliteStore,
    session: &str,
    dir_name: &str,
    line: &str,
) -> Result<Durable> {
    wait_until(
        PATIENCE,
        &format!("the store to hold cwd …/{dir_name} and a screen with {line:?}"),
        || async {
            let Some(record) = store.get_session(session).await? else {
                return Ok(Err(format!("no record of session {session}")));
            };
            let screen = match store.load_screen(session).await? {
                Some(stored) => host_server::persist::decode_screen(&stored.screen)
                    .map_err(anyhow::Error::msg)
                    .context("decoding the saved screen")?,
                None => return Ok(Err(format!("record {record:?}, no screen"))),
            };
            let text: Vec<String> = screen.rows.iter().map(|l| l.text()).collect();
            let has_line = text.iter().any(|row| row.trim_end() == line);
            Ok(if record.cwd.ends_with(dir_name) && has_line {
                Ok(Durable {
                    cwd: record.cwd,
                    epoch: record.epoch,
                })
            } else {
                Err(format!(
                    "cwd {:?}, screen:\n{}",
                    record.cwd,
                    text.join("\n")
                ))
            })
        },
    )
    .await
}

/// The commands a test runs before the crash, and what they print.
struct Script {
    dir_name: String,
    cd: String,
    echo: String,
    echoed: String,
}

impl Script {
    fn new() -> Script {
        let marker = unique_marker("");
        let dir_name = format!("work-{marker}-dir");
        Script {
            cd: format!("mkdir -p {dir_name} && cd {dir_name}"),
            // Computed by the shell, so the echoed command line alone
            // cannot satisfy a check for the output.
            echo: format!("echo restore-marker-{marker}-$((6*7))"),
            echoed: format!("restore-marker-{marker}-42"),
            dir_name,
        }
    }

    /// A `history` line (`  12  echo …`) that lists the echo command.
    fn in_history(&self, line: &str) -> bool {
        let mut words = line.split_whitespace();
        words.next().is_some_and(|n| n.parse::<u32>().is_ok())
            && line.trim_end().ends_with(&self.echo)
    }
}

#[tokio::test]
async fn a_killed_hosts_session_is_restored_by_the_next_host() -> Result<()> {
    let backend = SharedBackend::new()?;
    let store = backend.open_store().await?;
    let script = Script::new();

    let mut first = HostProcess::start(backend.host("h1", 0))?;
    let mut client = Client::attach(&first, None, SIZE).await?;
    client
        .wait_for(PATIENCE, "the first prompt", |s| s.at_prompt())
        .await?;
    let session: SessionId = client.session().context("no session id")?;
    client.type_str(&format!("{}\r", script.cd)).await?;
    client
        .wait_for(PATIENCE, "cd and the next prompt", |s| {
            s.at_prompt() && s.text().contains(&script.dir_name)
        })
        .await?;
    client
        .run_expecting(&script.echo, &script.echoed, PATIENCE)
        .await?;
    let durable = wait_durable(
        &store,
        &session.to_string(),
        &script.dir_name,
        &script.echoed,
    )
    .await
    .with_context(|| first.log_text())?;

    first.kill9()?;
    let second = HostProcess::start(backend.host("h2", 0))?;
    // The ticket names the epoch the store holds; adopting moves the
    // session here and raises it, which the welcome shows.
    let mut client = Client::attach_at(&second, session, durable.epoch, SIZE)
        .await
        .with_context(|| second.log_text())?;
    let welcome = client.welcome.clone().context("no welcome")?;
    ensure!(welcome.session == session, "attached {welcome:?}");
    ensure!(welcome.host == "h2", "served by {}", welcome.host);
    ensure!(
        welcome.epoch > durable.epoch,
        "epoch {} after the takeover, {} before",
        welcome.epoch,
        durable.epoch
    );
    client
        .wait_for(PATIENCE, "the old output, the notice and a prompt", |s| {
            s.has_line_anywhere(&script.echoed)
                && s.text().contains("restored from host h1")
                && s.at_prompt()
        })
        .await
        .with_context(|| second.log_text())?;
    client.run_expecting("pwd", &durable.cwd, PATIENCE).await?;
    client.type_str("history\r").await?;
    client
        .wait_for(PATIENCE, "`history` to list the earlier echo", |s| {
            s.rows().iter().any(|row| script.in_history(row)) && s.at_prompt()
        })
        .await?;
    let record = store
        .get_session(&session.to_string())
        .await?
        .context("the record vanished")?;
    ensure!(
        record.owner_host == "h2" && record.epoch == welcome.epoch,
        "the store says {record:?}"
    );
    Ok(())
}
