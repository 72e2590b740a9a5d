//! The real page in headless Chromium against a real directory and host,
//! signed in through the directory's form: typing, resize,
//! colours, reload-reattach and scrollback, read back through the page's
//! `#mirror` rows and its `window.thinline` test API.
//!
//! They run only with `THINLINE_E2E=1` (set by `cargo xtask test`, which
//! also builds the page into `static/dist` and installs Chromium); without it each test
//! says it was skipped. They take turns on one lock: two cores cannot run
//! several software-rendering Chromiums side by side without timing out.

use anyhow::{Context, Result, bail, ensure};
use fantoccini::key::Key;
use serde_json::Value;
use tests::browser::{Browser, e2e_enabled};
use tests::cluster::{Cluster, ClusterOptions};
use tests::tickets::{TEST_PASSWORD, TEST_USER};
use tests::{paths, wait_until};
use tokio::sync::{Mutex, MutexGuard};

use crate::PATIENCE;

pub(crate) static ONE_BROWSER_AT_A_TIME: Mutex<()> = Mutex::const_new(());

struct Page {
    cluster: Cluster,
    browser: Browser,
    _turn: MutexGuard<'static, ()>,
}

/// Starts a directory with one host and a browser, opens the page and
/// signs in; `None` (and a note) when browser tests are not enabled.
async fn open_page(test: &str) -> Result<Option<Page>> {
    if !e2e_enabled() {
        eprintln!(
            "{test}: skipped, set THINLINE_E2E=1 (cargo xtask test does) to run browser tests"
        );
        return Ok(None);
    }
    paths::built_page()?;
    let turn = ONE_BROWSER_AT_A_TIME.lock().await;
    let cluster = Cluster::start(ClusterOptions {
        hosts: 1,
        ..ClusterOptions::default()
    })
    .await?;
    let browser = Browser::start(1000, 700).await?;
    browser
        .open_and_sign_in(&cluster.directory_url(0), TEST_USER, TEST_PASSWORD)
        .await?;
    wait_prompt(&browser).await?;
    Ok(Some(Page {
        cluster,
        browser,
        _turn: turn,
    }))
}

async fn wait_prompt(browser: &Browser) -> Result<()> {
    browser
        .wait_mirror_line(PATIENCE, "a `$` prompt in #mirror", |line| line == "$")
        .await?;
    Ok(())
}

/// Types a command and presses Enter.
async fn run(browser: &Browser, command: &str) -> Result<()> {
    browser.type_keys(&format!("{command}{}", Key::Enter)).await
}

/// `prefix` followed by one or more digits, and nothing else.
fn digits_after<'a>(line: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = line.strip_prefix(prefix)?;
    (!rest.is_empty() && rest.bytes().all(|b| b.is_ascii_digit())).then_some(rest)
}

fn is_random_marker_output(line: &str) -> bool {
    line.strip_suffix("-ok")
        .is_some_and(|head| digits_after(head, "thinline-").is_some())
}

async fn finish(page: Page) {
    page.browser.close().await;
    drop(page.cluster);
}

#[tokio::test]
async fn typing_resize_and_colours_in_the_browser() -> Result<()> {
    let Some(page) = open_page("typing_resize_and_colours_in_the_browser").await? else {
        return Ok(());
    };
    let browser = &page.browser;

    // Typing: the shell's output, not just the echoed command line.
    run(browser, "echo thinline-$RANDOM-ok").await?;
    browser
        .wait_mirror_line(
            PATIENCE,
            "thinline-<digits>-ok output",
            is_random_marker_output,
        )
        .await?;

    // Resize: the program learns the size the page computed.
    let before = browser.state().await?;
    browser
        .client
        .set_window_rect(0, 0, 1400, 900)
        .await
        .context("resizing the window")?;
    let after = wait_until(PATIENCE, "the page to adopt a new size", || async {
        let state = browser.state().await?;
        Ok(
            if state["cols"] != before["cols"] && state["rows"] != before["rows"] {
                Ok(state)
            } else {
                Err(format!("before {before}, now {state}"))
            },
        )
    })
    .await?;
    let expected = format!("{} {}", after["rows"], after["cols"]);
    run(browser, "stty size").await?;
    browser
        .wait_mirror_line(PATIENCE, &format!("`stty size` to print {expected}"), |l| {
            l == expected
        })
        .await?;

    // Colours: an indexed and a true colour survive host and client.
    run(
        browser,
        r"printf '\e[31mRED\e[0m \e[38;2;1;2;3mTRUE\e[0m\n'",
    )
    .await?;
    browser
        .wait_mirror_line(PATIENCE, "RED TRUE", |l| l == "RED TRUE")
        .await?;
    let lines = browser.mirror_lines().await?;
    let row = lines
        .iter()
        .rposition(|l| l == "RED TRUE")
        .context("RED TRUE row")?;
    let red = browser.thinline("cell", &format!("{row}, 0")).await?;
    ensure!(red["text"] == "R", "cell ({row},0): {red}");
    ensure!(red["fg_spec"] == "indexed:1", "the R of RED: {red}");
    let truecolour = browser.thinline("cell", &format!("{row}, 4")).await?;
    ensure!(truecolour["text"] == "T", "cell ({row},4): {truecolour}");
    ensure!(
        truecolour["fg_spec"] == "rgb:1,2,3",
        "the T of TRUE: {truecolour}"
    );
    ensure!(truecolour["fg"] == "#010203", "the T of TRUE: {truecolour}");

    finish(page).await;
    Ok(())
}

#[tokio::test]
async fn reload_reattaches_to_the_same_shell() -> Result<()> {
    let Some(page) = open_page("reload_reattaches_to_the_same_shell").await? else {
        return Ok(());
    };
    let browser = &page.browser;

    run(browser, "echo before-$((6*7)); echo pid-$$").await?;
    let pid_line = browser
        .wait_mirror_line(PATIENCE, "the shell's pid", |l| {
            digits_after(l, "pid-").is_some()
        })
        .await?;
    let pid = digits_after(&pid_line, "pid-").context("pid")?.to_string();
    let session = browser.state().await?["session"].clone();
    ensure!(session.is_string(), "state has no session: {session}");

    browser
        .client
        .refresh()
        .await
        .context("reloading the page")?;
    browser.sign_in_if_asked(TEST_USER, TEST_PASSWORD).await?;
    let state = browser.wait_live(PATIENCE).await?;
    ensure!(
        state["session"] == session,
        "reload attached {} instead of {session}",
        state["session"]
    );
    browser
        .wait_mirror_line(PATIENCE, "the earlier output after the reload", |l| {
            l == "before-42"
        })
        .await?;

    run(browser, "echo again-$$").await?;
    let again = format!("again-{pid}");
    let seen = wait_until(PATIENCE, "`echo again-$$` output", || async {
        let lines = browser.mirror_lines().await?;
        Ok(
            match lines.iter().find(|l| digits_after(l, "again-").is_some()) {
                Some(line) => Ok(line.clone()),
                None => Err(lines.join("\n")),
            },
        )
    })
    .await?;
    if seen != again {
        bail!("after the reload the shell is {seen}, before it was pid {pid}");
    }
    finish(page).await;
    Ok(())
}

#[tokio::test]
async fn scrollback_keeps_thousands_of_lines_and_scrolls() -> Result<()> {
    let Some(page) = open_page("scrollback_keeps_thousands_of_lines_and_scrolls").await? else {
        return Ok(());
    };
    let browser = &page.browser;

    run(browser, "seq 1 3000").await?;
    wait_until(PATIENCE, "seq to finish at the prompt", || async {
        let lines = browser.mirror_lines().await?;
        let last = lines.iter().rposition(|l| !l.is_empty());
        let done = last.is_some_and(|i| i >= 1 && lines[i] == "$" && lines[i - 1] == "3000");
        Ok(if done { Ok(()) } else { Err(lines.join("\n")) })
    })
    .await?;

    // Pressed again while the view stays at the bottom: on a loaded
    // machine (the soaks run alongside) a key may reach the page before
    // the last frames of the flood, which snap the view back down.
    let presses = std::sync::atomic::AtomicU32::new(0);
    let (offset, len) = wait_until(PATIENCE, "the view to scroll back", || async {
        if presses
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            .is_multiple_of(20)
        {
            browser
                .type_keys(&format!("{}{}{}", Key::Shift, Key::PageUp, Key::Null))
                .await?;
        }
        let offset = number(browser.thinline("view_offset", "").await?);
        let len = number(browser.thinline("scrollback_len", "").await?);
        Ok(match (offset, len) {
            (Some(offset), Some(len)) if offset > 0.0 => Ok((offset, len)),
            other => Err(format!("view_offset, scrollback_len: {other:?}")),
        })
    })
    .await?;
    ensure!(len >= 2900.0, "only {len} lines of scrollback");
    ensure!(offset <= len, "view offset {offset} beyond {len} lines");
    finish(page).await;
    Ok(())
}

fn number(value: Value) -> Option<f64> {
    value.as_f64()
}
