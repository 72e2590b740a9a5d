//! Hot desking (DESIGN.md promise 6) in two real browsers: the same user
//! signing in on a second browser gets the running session; the first is
//! told the session was opened on another terminal and can take it back.

use std::time::Duration;

use anyhow::{Context, Result, ensure};
use fantoccini::Locator;
use fantoccini::key::Key;
use tests::browser::{Browser, e2e_enabled};
use tests::cluster::{Cluster, ClusterOptions};
use tests::tickets::{TEST_PASSWORD, TEST_USER};
use tests::{paths, unique_marker, wait_until};

use crate::PATIENCE;
use crate::browser::ONE_BROWSER_AT_A_TIME;

/// Waits until `thinline.state().connection` is `want`; returns the state.
async fn wait_connection(browser: &Browser, want: &str) -> Result<serde_json::Value> {
    wait_until(PATIENCE, &format!("the page to be {want}"), || async {
        let state = browser.state().await?;
        Ok(if state["connection"] == want {
            Ok(state)
        } else {
            Err(format!(
                "state: {state}, #status: {}",
                browser.status_text().await?
            ))
        })
    })
    .await
}

/// Whether `#take-back` is displayed.
async fn take_back_shown(browser: &Browser) -> Result<bool> {
    let shown = browser
        .eval("(() => { const b = document.getElementById('take-back'); return !!b && !b.hidden && b.offsetParent !== null; })()")
        .await?;
    Ok(shown == serde_json::Value::Bool(true))
}

async fn take_back(browser: &Browser) -> Result<()> {
    browser
        .client
        .find(Locator::Id("take-back"))
        .await
        .context("#take-back")?
        .click()
        .await
        .context("pressing #take-back")?;
    Ok(())
}

#[tokio::test]
async fn a_second_browser_takes_the_session_and_the_first_takes_it_back() -> Result<()> {
    const TEST: &str = "a_second_browser_takes_the_session_and_the_first_takes_it_back";
    if !e2e_enabled() {
        eprintln!(
            "{TEST}: skipped, set THINLINE_E2E=1 (cargo xtask test does) to run browser tests"
        );
        return Ok(());
    }
    paths::built_page()?;
    let _turn = ONE_BROWSER_AT_A_TIME.lock().await;
    let cluster = Cluster::start(ClusterOptions {
        hosts: 2,
        ..ClusterOptions::default()
    })
    .await?;
    let url = format!("{}/", cluster.directory_url(0));
    let first = Browser::start(900, 600).await?;
    let second = Browser::start(900, 600).await?;
    let outcome = async {
        let state = first
            .open_and_sign_in(&url, TEST_USER, TEST_PASSWORD)
            .await?;
        let session = state["session"].as_str().context("no session")?.to_owned();
        first
            .wait_mirror_line(PATIENCE, "a prompt in the first browser", |l| l == "$")
            .await?;
        let marker = unique_marker("desk");
        first
            .type_keys(&format!("echo {marker}-$((6*7)){}", Key::Enter))
            .await?;
        let expected = format!("{marker}-42");
        first
            .wait_mirror_line(PATIENCE, "the marker in the first browser", |l| {
                l == expected
            })
            .await?;

        // Another browser, no stored session: it gets the running one.
        let state = second
            .open_and_sign_in(&url, TEST_USER, TEST_PASSWORD)
            .await?;
        ensure!(
            state["session"] == session.as_str(),
            "the second browser got {state}"
        );
        second
            .wait_mirror_line(PATIENCE, "the first browser's output", |l| l == expected)
            .await?;
        let replaced = wait_connection(&first, "replaced").await?;
        ensure!(replaced["session"] == session.as_str(), "{replaced}");
        let status = first.status_text().await?;
        ensure!(
            status.contains("opened on another terminal"),
            "the first browser says {status:?}"
        );
        ensure!(take_back_shown(&first).await?, "no take-back button");
        // The replaced page stays put: no reconnect storm between the two.
        tokio::time::sleep(Duration::from_secs(2)).await;
        ensure!(
            first.state().await?["connection"] == "replaced",
            "the first browser came back by itself"
        );
        ensure!(
            second.state().await?["connection"] == "live",
            "the second browser lost the session"
        );

        // Typing goes to the same shell from the second browser...
        let marker2 = unique_marker("desk2");
        second
            .type_keys(&format!("echo {marker2}-$((6*7)){}", Key::Enter))
            .await?;
        let expected2 = format!("{marker2}-42");
        second
            .wait_mirror_line(PATIENCE, "the second marker", |l| l == expected2)
            .await?;
        // ...and the first takes it back, seeing what the second typed.
        take_back(&first).await?;
        wait_connection(&first, "live").await?;
        first
            .wait_mirror_line(
                PATIENCE,
                "the second browser's output after taking back",
                |l| l == expected2,
            )
            .await?;
        wait_connection(&second, "replaced").await?;
        ensure!(
            take_back_shown(&second).await?,
            "the second browser has no take-back button"
        );
        Ok(())
    }
    .await;
    if outcome.is_err() {
        eprintln!("{}", cluster.logs());
    }
    first.close().await;
    second.close().await;
    outcome
}
