//! Sessions on one host: echo, reattach, exactly-once input, scrollback,
//! floods, the idle timeout, and restore from the shared store with epoch
//! fencing.

use std::time::{Duration, Instant};

use anyhow::Context as _;
use host_server::registry::StoreConfig;
use protocol::ClientToServerMsg;
use testkit::wait_until;

use crate::harness::{
    Client, HostOptions, PATIENCE, close_code, contains, sqlite, start, start_host, start_host_with,
};

#[tokio::test]
async fn a_shell_echoes_and_survives_a_reattach() {
    let host = start_host().await;
    let mut client = Client::connect(&host, None).await;
    assert!(client.welcome.created);
    assert_eq!(client.welcome.host, "h-test");
    client
        .wait_screen("the prompt", |rows| contains(rows, "$"))
        .await;
    client.type_text("echo $((6*7))-ok\r").await;
    client
        .wait_screen("the echo", |rows| rows.iter().any(|r| r == "42-ok"))
        .await;
    let session = client.welcome.session;
    let typed = client.next_input - 1;
    drop(client);

    let mut again = Client::connect(&host, Some(session)).await;
    assert!(!again.welcome.created, "same session, not a new one");
    assert_eq!(again.welcome.session, session);
    assert_eq!(again.welcome.input_seq, typed);
    again
        .wait_screen("the old screen", |rows| rows.iter().any(|r| r == "42-ok"))
        .await;
}

#[tokio::test]
async fn resent_input_is_applied_once() {
    let host = start_host().await;
    let mut client = Client::connect(&host, None).await;
    client
        .wait_screen("the prompt", |rows| contains(rows, "$"))
        .await;
    client
        .send(ClientToServerMsg::Input {
            seq: 1,
            data: b"echo a".to_vec(),
        })
        .await;
    // The same input again, as a client resends after a reconnect.
    client
        .send(ClientToServerMsg::Input {
            seq: 1,
            data: b"echo a".to_vec(),
        })
        .await;
    client
        .send(ClientToServerMsg::Input {
            seq: 2,
            data: b"b-done\r".to_vec(),
        })
        .await;
    client
        .wait_screen("the output", |rows| rows.iter().any(|r| r == "ab-done"))
        .await;
}

#[tokio::test]
async fn scrollback_reaches_a_reattaching_client() {
    let host = start_host().await;
    let mut client = Client::connect(&host, None).await;
    client
        .wait_screen("the prompt", |rows| contains(rows, "$"))
        .await;
    client.type_text("seq 1 3000; echo seq-done\r").await;
    client
        .wait_screen("seq", |rows| rows.iter().any(|r| r == "seq-done"))
        .await;
    client
        .wait_until("live scrollback", |c| c.history().iter().any(|l| l == "1"))
        .await;
    let session = client.welcome.session;
    drop(client);
    let mut again = Client::connect(&host, Some(session)).await;
    again
        .wait_screen("seq", |rows| rows.iter().any(|r| r == "seq-done"))
        .await;
    // The attach brought only the screen: the history is fetched after it.
    again
        .wait_until("the fetched history", |c| c.screen.history_complete())
        .await;
    let history = again.history();
    let numbers: Vec<&String> = history
        .iter()
        .filter(|l| l.chars().all(|c| c.is_ascii_digit()) && !l.is_empty())
        .collect();
    assert_eq!(numbers.first().map(|s| s.as_str()), Some("1"));
    assert!(numbers.len() >= 2970, "{} lines", numbers.len());
}

#[tokio::test]
async fn a_restored_session_shows_its_screen_and_fences_the_old_host() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(dir.path()).await;
    // Inside alice's home: nothing else of the host is in her sandbox.
    let work = dir.path().join("home/alice/work dir");
    let config = |adopt| StoreConfig {
        store: store.clone(),
        home_root: Some(dir.path().join("home")),
        adopt,
    };
    let old_host = start_host_with("h-old", Some(config(false))).await;
    let mut old = Client::connect(&old_host, None).await;
    old.wait_screen("the prompt", |rows| contains(rows, "$"))
        .await;
    old.type_text(&format!(
        "mkdir -p '{0}' && cd '{0}' && echo restore-$((40+2))\r",
        work.display()
    ))
    .await;
    old.wait_screen("the echo", |rows| rows.iter().any(|r| r == "restore-42"))
        .await;
    let id = old.welcome.session;
    let key = id.to_string();
    let want = work.display().to_string();
    wait_until(PATIENCE, "the cwd to be persisted", || async {
        let record = store.get_session(&key).await?.context("no record")?;
        Ok(if record.cwd == want {
            Ok(())
        } else {
            Err(format!("cwd {}", record.cwd))
        })
    })
    .await
    .unwrap();

    let new_host = start_host_with("h-new", Some(config(true))).await;
    let mut restored = Client::connect(&new_host, Some(id)).await;
    assert_eq!(restored.welcome.session, id);
    assert_eq!(restored.welcome.epoch, 2, "the takeover bumped the epoch");
    restored
        .wait_screen("old output and notice", |rows| {
            rows.iter().any(|r| r == "restore-42") && contains(rows, "restored from host h-old")
        })
        .await;
    restored.type_text("pwd\r").await;
    let expected = work.display().to_string();
    restored
        .wait_screen("the saved directory", |rows| rows.contains(&expected))
        .await;

    // The old host's next write is refused by the epoch fence: it must end
    // its copy and tell its client the session moved.
    old.type_text("echo still-here\r").await;
    assert_eq!(close_code(&mut old.socket).await, 4008);
    let record = store.get_session(&key).await.unwrap().unwrap();
    assert_eq!(record.owner_host, "h-new");
}

/// Numbers printed by `seq` as the client saw them: history then screen.
fn seq_numbers(client: &Client) -> Vec<u64> {
    client
        .history()
        .iter()
        .chain(client.rows().iter())
        .filter_map(|line| line.parse().ok())
        .collect()
}

#[tokio::test]
async fn every_scrolled_line_reaches_the_client_exactly_once_while_persisting() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(dir.path()).await;
    let host = start_host_with(
        "h-seq",
        Some(StoreConfig {
            store,
            home_root: None,
            adopt: false,
        }),
    )
    .await;
    let mut client = Client::connect(&host, None).await;
    client
        .wait_screen("the prompt", |rows| contains(rows, "$"))
        .await;
    // Slow enough that persistence snapshots (which also drain scrolled
    // lines) interleave with frames.
    client
        .type_text("for i in $(seq 1 400); do echo $i; sleep 0.002; done; echo loop-done\r")
        .await;
    // Play a slow client: read nothing for a while, so the frame window
    // fills and persistence snapshots drain the scrolled lines instead of
    // frames. (This pause is the stimulus, not a wait for a condition.)
    tokio::time::sleep(Duration::from_millis(600)).await;
    client
        .wait_screen("the loop", |rows| rows.iter().any(|r| r == "loop-done"))
        .await;
    client
        .wait_until("all 400 lines", |c| seq_numbers(c).len() >= 400)
        .await;
    let expected: Vec<u64> = (1..=400).collect();
    assert_eq!(seq_numbers(&client), expected);
}

#[tokio::test]
async fn a_flood_keeps_the_newest_lines_contiguous() {
    let host = start_host().await;
    let mut client = Client::connect(&host, None).await;
    client
        .wait_screen("the prompt", |rows| contains(rows, "$"))
        .await;
    client.type_text("seq 1 300000; echo flood-done\r").await;
    client
        .wait_screen("the flood", |rows| rows.iter().any(|r| r == "flood-done"))
        .await;
    // Scrolled lines catch up just after a flood ends.
    client
        .wait_until("the scrollback to catch up", |c| {
            let numbers = seq_numbers(c);
            numbers.len() >= 10_000
                && numbers[numbers.len() - 10_000..]
                    .windows(2)
                    .all(|w| w[1] == w[0] + 1)
        })
        .await;
    let numbers = seq_numbers(&client);
    assert_eq!(numbers.last(), Some(&300_000));
    // The newest ten thousand lines arrive without gaps or repeats; older
    // ones may have been skipped during the flood, never reordered.
    let tail = &numbers[numbers.len().saturating_sub(10_000)..];
    assert_eq!(tail.len(), 10_000, "{} lines in all", numbers.len());
    assert!(tail.windows(2).all(|w| w[1] == w[0] + 1));
    assert!(numbers.windows(2).all(|w| w[1] > w[0]));
}

#[tokio::test]
async fn a_detached_session_runs_until_its_idle_timeout() {
    let idle = Duration::from_millis(800);
    let mut options = HostOptions::new("h-idle");
    options.idle_timeout = idle;
    let host = start(options).await;
    let mut client = Client::connect(&host, None).await;
    client
        .wait_screen("the prompt", |rows| contains(rows, "$"))
        .await;
    let session = client.welcome.session;
    let detached = Instant::now();
    drop(client);
    // Still running without a client: a reattach finds the same session.
    let again = Client::connect(&host, Some(session)).await;
    assert!(!again.welcome.created);
    drop(again);
    host.wait_session_gone(session, "the idle session to end")
        .await;
    assert!(detached.elapsed() >= idle, "ended before its idle timeout");
}
