//! Issue 16's predictive echo in Chromium, over a link that delays every
//! byte 200 ms each way (a fault proxy in front of the host): typed text
//! shows at once, the host's screen ends up the same with prediction on
//! and off, and a password typed at `read -s` is never shown.

use std::time::Duration;

use anyhow::{Result, ensure};
use fantoccini::key::Key;
use tests::browser::Browser;
use tests::echo::{self, ONE_WAY, SlowLink};
use tests::percentile;

use crate::PATIENCE;
use crate::failover::browser_turn;

/// Between keys, as a quick typist types.
const GAP: Duration = Duration::from_millis(80);

#[tokio::test]
async fn typing_shows_at_once_over_a_slow_link_and_never_a_password() -> Result<()> {
    let test = "typing_shows_at_once_over_a_slow_link_and_never_a_password";
    let Some(_turn) = browser_turn(test).await? else {
        return Ok(());
    };
    let link = SlowLink::start().await?;
    let outcome = slow_typing(&link).await;
    if outcome.is_err() {
        eprintln!("{}", link.cluster.logs());
    }
    link.close().await;
    outcome
}

async fn slow_typing(link: &SlowLink) -> Result<()> {
    let browser = &link.browser;
    let round_trip = 2 * ONE_WAY;

    // The first key of a line waits for the host (nothing is shown until
    // the host confirms a guess); the rest of the line shows at once.
    settle_after(browser, "echo").await?;
    let typed = "abcdefghijklmnopqrstuvwx";
    let latencies = echo::type_and_time(browser, typed, GAP).await?;
    let mut sorted = latencies.clone();
    sorted.sort();
    let median = percentile(&sorted, 50.0);
    let slowest = percentile(&sorted, 100.0);
    eprintln!("slow_typing: key to screen: {latencies:?}");
    ensure!(
        median < Duration::from_millis(50),
        "typed text took {median:?} (median) to show; predicted echo shows it at once: {latencies:?}"
    );
    ensure!(
        slowest < round_trip,
        "a key took {slowest:?}, as long as the host's echo ({round_trip:?}): {latencies:?}"
    );
    browser.type_keys(&Key::Enter.to_string()).await?;
    browser
        .wait_mirror_line(PATIENCE, "echo's output", |l| l == typed)
        .await?;

    // A password is never shown, not even for a moment: not even when a
    // key typed ahead of the prompt (echoed by the terminal, so the page's
    // guess of it was confirmed) leaves the page guessing.
    let command = "sleep 3; read -s -p 'Password: ' pw; echo got-${#pw}";
    browser.run(command).await?;
    browser
        .wait_mirror_line(PATIENCE, "the command echoed", |l| {
            l == format!("$ {command}")
        })
        .await?;
    // Once the host has vouched for the Enter (the page guesses nothing
    // until then), while `sleep` runs: the terminal echoes the key.
    tokio::time::sleep(2 * ONE_WAY + Duration::from_millis(300)).await;
    browser.type_keys("x").await?;
    browser
        .wait_mirror_line(PATIENCE, "the key typed ahead", |l| l == "x")
        .await?;
    browser
        .wait_mirror_line(PATIENCE, "the password prompt", |l| l == "xPassword:")
        .await?;
    echo::watch(browser, "").await?;
    for ch in "hunter2".chars() {
        browser.type_keys(&ch.to_string()).await?;
        tokio::time::sleep(GAP).await;
    }
    // Past the host's echo of every key.
    tokio::time::sleep(2 * ONE_WAY + Duration::from_millis(300)).await;
    browser.type_keys(&Key::Enter.to_string()).await?;
    browser
        .wait_mirror_line(PATIENCE, "read's count", |l| l == "xPassword: got-8")
        .await?;
    let seen = echo::texts_seen(browser).await?;
    ensure!(!seen.is_empty(), "the watcher saw nothing at all");
    for text in &seen {
        ensure!(
            !text.contains("Password: h") && !text.contains("hunter"),
            "the page showed the password being typed:\n{text}"
        );
    }

    // The same edits with prediction on and off leave the same screen.
    let predicted = edit_a_line(browser).await?;
    echo::set_prediction(browser, "never").await?;
    let plain = edit_a_line(browser).await?;
    ensure!(
        predicted == plain,
        "the screens differ:\nwith prediction:\n{predicted}\nwithout:\n{plain}"
    );
    // And off means off: every key waits for the host's echo.
    settle_after(browser, "echo").await?;
    let latencies = echo::type_and_time(browser, "abc", GAP).await?;
    ensure!(
        latencies.iter().all(|&t| t >= round_trip),
        "with prediction off a key showed before the host echoed it: {latencies:?}"
    );
    browser.type_keys(&Key::Enter.to_string()).await?;
    Ok(())
}

/// Types `word` and a space and waits until the host has echoed it and
/// confirmed the page's guesses.
async fn settle_after(browser: &Browser, word: &str) -> Result<()> {
    browser.type_keys(&format!("{word} ")).await?;
    browser
        .wait_mirror_line(PATIENCE, "the word echoed", |l| l == format!("$ {word}"))
        .await?;
    // The frame that vouches for the last key's echo comes a round trip
    // and the host's echo wait after it.
    tokio::time::sleep(2 * ONE_WAY + Duration::from_millis(300)).await;
    Ok(())
}

/// On a cleared screen: types a command line with Backspace and the Left
/// arrow in it, runs it, and returns the screen once it has settled.
async fn edit_a_line(browser: &Browser) -> Result<String> {
    browser.run("clear").await?;
    browser
        .wait_mirror_line(PATIENCE, "a cleared screen", |l| l == "$")
        .await?;
    settle_after(browser, "echo").await?;
    for keys in [
        "12345".to_owned(),
        Key::Backspace.to_string(),
        Key::Backspace.to_string(),
        Key::Left.to_string(),
        "x".to_owned(),
        Key::Right.to_string(),
        "y".to_owned(),
    ] {
        browser.type_keys(&keys).await?;
        tokio::time::sleep(GAP).await;
    }
    browser.type_keys(&Key::Enter.to_string()).await?;
    browser
        .wait_mirror_line(PATIENCE, "the edited line's output", |l| l == "12x3y")
        .await?;
    tokio::time::sleep(2 * ONE_WAY).await;
    Ok(browser.mirror_lines().await?.join("\n"))
}
