//! Live viewers (issue 16, part 3) in two real browsers: alice shares her
//! session from her sessions page, bob opens the link (signing in on the
//! way), watches her typing live without being able to type, keeps
//! watching across a `kill -9` of the host, and is cut off within seconds
//! once she revokes the link; the link then opens nothing.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use fantoccini::Locator;
use fantoccini::wd::WindowHandle;
use serde_json::Value;
use tests::browser::Browser;
use tests::cluster::{Backend, Cluster, ClusterOptions};
use tests::tickets;
use tests::wait_until;

use crate::PATIENCE;
use crate::failover::{browser_turn, served, wait_moved};

const VIEWER: &str = "bob";
const VIEWER_PASSWORD: &str = "bob's long password";

#[tokio::test]
async fn a_viewer_watches_live_cannot_type_follows_a_failover_and_is_cut_off_on_revoke()
-> Result<()> {
    const TEST: &str =
        "a_viewer_watches_live_cannot_type_follows_a_failover_and_is_cut_off_on_revoke";
    let Some(_turn) = browser_turn(TEST).await? else {
        return Ok(());
    };
    let mut cluster = Cluster::start(ClusterOptions {
        hosts: 2,
        backend: Backend::Sqlite,
        ..ClusterOptions::default()
    })
    .await?;
    tickets::ensure_account(cluster.store.as_ref(), VIEWER, VIEWER_PASSWORD).await?;
    let owner = Browser::start(1000, 700).await?;
    // Smaller than the owner's window: the viewer fits her grid by font.
    let viewer = Browser::start(640, 480).await?;
    let outcome = watch(TEST, &mut cluster, &owner, &viewer).await;
    if outcome.is_err() {
        eprintln!("{}", cluster.logs());
    }
    owner.close().await;
    viewer.close().await;
    outcome
}

async fn watch(test: &str, cluster: &mut Cluster, owner: &Browser, viewer: &Browser) -> Result<()> {
    let directory = cluster.directory_url(0);
    owner.open_at_prompt(&directory, PATIENCE).await?;
    let first = owner.echo_marker("shared", PATIENCE).await?;
    let before = served(owner.state().await?)?;

    // alice makes a watch-only link on her sessions page, in a new tab.
    let home = open_sessions_tab(owner, &directory).await?;
    let link = create_link(owner).await;
    back_from_tab(owner, home).await?;
    let link = link?;
    let fragment = format!("{directory}/#share=");
    ensure!(link.starts_with(&fragment), "the link is {link:?}");

    // bob opens it signed out: the sign-in page keeps it, and he watches.
    let opened_at = Instant::now();
    let state = viewer
        .open_and_sign_in(&link, VIEWER, VIEWER_PASSWORD)
        .await?;
    ensure!(
        state["session"] == before.session.as_str(),
        "bob watches {state}, not alice's session {}",
        before.session
    );
    let address = viewer.client.current_url().await?.to_string();
    ensure!(
        !address.contains("share") && address.contains(&before.session),
        "the token stays in the address bar: {address}"
    );
    viewer
        .wait_mirror_line(PATIENCE, "alice's earlier output at bob's", |l| l == first)
        .await?;
    eprintln!("{test}: bob watches after {:?}", opened_at.elapsed());
    wait_status(viewer, "watching alice's terminal, read-only").await?;
    wait_status(owner, &format!("watched by {VIEWER}")).await?;
    // The owner's grid, whatever bob's window: he never resized it.
    let (alice, bob) = (owner.state().await?, viewer.state().await?);
    ensure!(
        (alice["cols"].clone(), alice["rows"].clone())
            == (bob["cols"].clone(), bob["rows"].clone()),
        "alice has {alice}, bob {bob}"
    );

    // alice types; bob sees it live.
    let typed_at = Instant::now();
    let live = owner.echo_marker("live", PATIENCE).await?;
    viewer
        .wait_mirror_line(PATIENCE, "alice's new output at bob's", |l| l == live)
        .await?;
    eprintln!(
        "{test}: alice's output reached bob {:?} after her Enter",
        typed_at.elapsed()
    );

    // bob types: nothing reaches her shell, and he is told why.
    viewer.run("echo bob-was-here-$((6*7))").await?;
    wait_overlay(viewer, "you are watching").await?;
    let probe = owner.echo_marker("after-bob", PATIENCE).await?;
    viewer
        .wait_mirror_line(PATIENCE, "alice's output after bob typed", |l| l == probe)
        .await?;
    for (who, browser) in [("alice", owner), ("bob", viewer)] {
        let lines = browser.mirror_lines().await?;
        ensure!(
            !lines.iter().any(|l| l.contains("bob-was-here")),
            "bob's keys reached the shell, as {who} sees it: {lines:?}"
        );
    }

    // The host dies; both pages follow the session to the other one.
    cluster.wait_persisted(&before.session, &probe).await?;
    let killed_at = Instant::now();
    cluster.host_mut(&before.host)?.server.kill9()?;
    let after = wait_moved(owner, &before, PATIENCE).await?;
    let moved = wait_moved(viewer, &before, PATIENCE).await?;
    ensure!(
        (moved.host.as_str(), moved.epoch) == (after.host.as_str(), after.epoch),
        "bob watches {} at epoch {}, alice is on {} at {}",
        moved.host,
        moved.epoch,
        after.host,
        after.epoch
    );
    eprintln!(
        "{test}: {} -> {} after the kill: alice {:?}, bob too",
        before.host,
        after.host,
        killed_at.elapsed()
    );
    let restored = owner.echo_marker("restored", PATIENCE).await?;
    viewer
        .wait_mirror_line(PATIENCE, "alice's output on the new host at bob's", |l| {
            l == restored
        })
        .await?;
    wait_status(viewer, "watching alice's terminal, read-only").await?;

    // alice revokes the link: bob is cut off within seconds, and the link
    // opens nothing any more.
    let home = open_sessions_tab(owner, &directory).await?;
    let revoked = revoke(owner).await;
    back_from_tab(owner, home).await?;
    revoked?;
    let revoked_at = Instant::now();
    let cut = wait_until(Duration::from_secs(10), "bob to be cut off", || async {
        let state = viewer.state().await?;
        Ok(if state["connection"] == "closed" {
            Ok(state)
        } else {
            Err(state.to_string())
        })
    })
    .await?;
    let cut_after = revoked_at.elapsed();
    eprintln!("{test}: bob was cut off {cut_after:?} after the revocation");
    ensure!(
        cut["error"]
            .as_str()
            .is_some_and(|e| e.contains("stopped sharing")),
        "bob is told {cut}"
    );
    // The host has let bob go once alice is no longer told he watches;
    // his page is closed, so nothing she types after can reach it.
    wait_until(PATIENCE, "alice's status to drop bob", || async {
        let status = owner.status_text().await?;
        Ok(
            if status.contains("live") && !status.contains("watched by") {
                Ok(())
            } else {
                Err(status)
            },
        )
    })
    .await?;
    let gone = owner.echo_marker("unwatched", PATIENCE).await?;
    ensure!(
        viewer.state().await?["connection"] == "closed",
        "bob's page reconnected after the revocation"
    );
    ensure!(
        !viewer.mirror_lines().await?.contains(&gone),
        "bob still sees alice's terminal after the revocation"
    );
    viewer
        .client
        .goto(&link)
        .await
        .context("opening the revoked link")?;
    wait_status(viewer, "revoked").await?;
    Ok(())
}

/// Makes a watch-only link on the sessions page open in `browser`.
async fn create_link(browser: &Browser) -> Result<String> {
    click(browser, "details summary").await?;
    click(browser, "form[action$=\"/share\"] button[type=\"submit\"]").await?;
    browser
        .client
        .find(Locator::Css("input[readonly]"))
        .await
        .context("the new link")?
        .prop("value")
        .await?
        .context("the link has no value")
}

/// Presses Revoke on the sessions page and waits for the page it leads
/// back to, which lists the link no more: closing the tab before that
/// could abort the request.
async fn revoke(browser: &Browser) -> Result<()> {
    let form = "form[action$=\"/revoke\"]";
    click(browser, &format!("{form} button[type=\"submit\"]")).await?;
    let gone = format!("document.querySelector('{form}') === null");
    wait_until(PATIENCE, "the sessions page without the link", || async {
        Ok(match browser.eval(&gone).await? {
            Value::Bool(true) => Ok(()),
            other => Err(other.to_string()),
        })
    })
    .await
}

async fn click(browser: &Browser, css: &str) -> Result<()> {
    browser
        .client
        .find(Locator::Css(css))
        .await
        .with_context(|| format!("finding {css}"))?
        .click()
        .await
        .with_context(|| format!("clicking {css}"))?;
    Ok(())
}

/// Opens `directory`'s sessions page in a new tab of `browser`; returns
/// the terminal's window, for `back_from_tab`.
async fn open_sessions_tab(browser: &Browser, directory: &str) -> Result<WindowHandle> {
    let home = browser.client.window().await?;
    let tab = browser.client.new_window(true).await?;
    browser.client.switch_to_window(tab.handle).await?;
    browser
        .client
        .goto(&format!("{directory}/sessions"))
        .await?;
    Ok(home)
}

/// Closes the tab and comes back to the terminal.
async fn back_from_tab(browser: &Browser, home: WindowHandle) -> Result<()> {
    browser.client.close_window().await?;
    browser.client.switch_to_window(home).await?;
    Ok(())
}

/// Waits until the page's status bar contains `text`.
async fn wait_status(browser: &Browser, text: &str) -> Result<()> {
    wait_until(PATIENCE, &format!("{text:?} in the status bar"), || async {
        let status = browser.status_text().await?;
        Ok(if status.contains(text) {
            Ok(())
        } else {
            Err(status)
        })
    })
    .await
}

/// Waits until the page's overlay says something containing `text`.
async fn wait_overlay(browser: &Browser, text: &str) -> Result<()> {
    let expr = "(document.getElementById('overlay') || {}).textContent || ''";
    wait_until(PATIENCE, &format!("{text:?} over the terminal"), || async {
        let said = browser.eval(expr).await?;
        Ok(match said {
            Value::String(s) if s.contains(text) => Ok(()),
            other => Err(other.to_string()),
        })
    })
    .await
}
