//! Issue 15's files in and out, in headless Chromium against real hosts:
//! a file picked in the page lands in the program's working directory,
//! byte for byte (md5), as the session's user, never replacing a file; a
//! directory the user may not write refuses it with the reason;
//! `tl-download` offers a file that the browser saves, byte for byte, and
//! a sequence without the session's key offers nothing; an upload cut by
//! a `kill -9` of its host finishes on the host the session moves to, and
//! one whose directory died with the host says so plainly.

use std::os::unix::fs::MetadataExt as _;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use serde_json::Value;
use tests::browser::Browser;
use tests::cluster::{Backend, ClusterOptions};
use tests::files::{md5, noise_file};
use tests::tickets::TEST_USER;
use tests::wait_until;

use crate::PATIENCE;
use crate::browser::{Page, run, wait_eval, with_page};
use crate::failover::{ClusterPage, finish, open_cluster_page, served, wait_moved};

/// The `[state, text]` of the transfer row `selector` names, once its
/// state is `state`.
async fn wait_row(
    browser: &Browser,
    selector: &str,
    state: &str,
    timeout: Duration,
) -> Result<String> {
    let css = serde_json::to_string(&format!("#files .file{selector}"))?;
    let expr = format!(
        "(() => {{ const r = document.querySelector({css}); \
         return r ? [r.dataset.state || '', r.querySelector('.file-state').textContent] : null; }})()"
    );
    let found = wait_until(
        timeout,
        &format!("the row {selector} to be {state}"),
        || async {
            let got = browser.eval(&expr).await?;
            Ok(if got[0] == state {
                Ok(got)
            } else {
                Err(got.to_string())
            })
        },
    )
    .await?;
    Ok(found[1].as_str().unwrap_or_default().to_owned())
}

/// Partial files (`.NAME.thinline-XXXXXXXX.part`) left in `dir`.
fn partials(dir: &Path) -> Result<Vec<(String, u64)>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).with_context(|| format!("listing {}", dir.display()))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.contains(".thinline-") && name.ends_with(".part") {
            found.push((name, entry.metadata()?.len()));
        }
    }
    Ok(found)
}

async fn echo_done(browser: &Browser, command: &str, marker: &str) -> Result<()> {
    run(browser, &format!("{command} && echo {marker}-$((6*7))")).await?;
    let expected = format!("{marker}-42");
    browser
        .wait_mirror_line(PATIENCE, &expected, |l| l == expected)
        .await?;
    Ok(())
}

#[tokio::test]
async fn files_go_up_and_down_with_their_bytes() -> Result<()> {
    with_page("files_go_up_and_down_with_their_bytes", |page| {
        Box::pin(up_and_down(page))
    })
    .await
}

async fn up_and_down(page: &Page) -> Result<()> {
    let browser = &page.browser;
    let home = page.cluster.home_root().join(TEST_USER);
    let local = tempfile::tempdir()?;
    let name = "data é 1.bin";
    let source = noise_file(local.path(), name, 48 << 20, 1)?;
    let source_md5 = md5(&source)?;
    echo_done(browser, "mkdir -p ~/inbox && cd ~/inbox", "in").await?;

    let picked = source
        .to_str()
        .context("a temporary path that is not UTF-8")?;
    let started = Instant::now();
    browser.type_into("#upload-input", picked).await?;
    let said = wait_row(browser, "[data-upload='1']", "done", PATIENCE).await?;
    eprintln!(
        "48 MiB uploaded through the page in {:?}",
        started.elapsed()
    );
    let landed = home.join("inbox").join(name);
    ensure!(
        said.contains(&format!("inbox/{name}")),
        "the row says {said:?}"
    );
    ensure!(md5(&landed)? == source_md5, "the uploaded file differs");
    let meta = std::fs::metadata(&landed)?;
    let home_uid = std::fs::metadata(&home)?.uid();
    ensure!(
        meta.uid() == home_uid && meta.uid() != 0,
        "the file belongs to uid {}, the user is {home_uid}",
        meta.uid()
    );
    ensure!(
        meta.mode() & 0o777 == 0o644,
        "mode {:o}, not what umask 022 gives",
        meta.mode() & 0o777
    );

    // The same name again: a numbered name, nothing replaced.
    browser.type_into("#upload-input", picked).await?;
    let said = wait_row(browser, "[data-upload='2']", "done", PATIENCE).await?;
    ensure!(
        said.contains("data é 1 (1).bin"),
        "the second upload says {said:?}"
    );
    ensure!(md5(&landed)? == source_md5, "the first upload was replaced");
    ensure!(
        partials(&home.join("inbox"))?.is_empty(),
        "partial files left behind: {:?}",
        partials(&home.join("inbox"))?
    );

    // Where the user may not write, the reason, and nothing written.
    let small = noise_file(local.path(), "small.txt", 1000, 2)?;
    echo_done(browser, "cd /usr", "usr").await?;
    browser
        .type_into("#upload-input", small.to_str().unwrap_or_default())
        .await?;
    let said = wait_row(browser, "[data-upload='3']", "failed", PATIENCE).await?;
    ensure!(
        said.contains("/usr") && (said.contains("read-only") || said.contains("may not")),
        "the refusal says {said:?}"
    );

    // More at once than a host takes from a session (16): they take
    // turns, and every one arrives whole.
    echo_done(browser, "mkdir -p ~/many && cd ~/many", "many").await?;
    let mut picked = Vec::new();
    for i in 0..20u64 {
        picked.push(noise_file(
            local.path(),
            &format!("part-{i}.bin"),
            (1 << 20) + i,
            10 + i,
        )?);
    }
    let paths: Vec<&str> = picked.iter().filter_map(|p| p.to_str()).collect();
    browser
        .type_into("#upload-input", &paths.join("\n"))
        .await?;
    for id in 4..24 {
        wait_row(browser, &format!("[data-upload='{id}']"), "done", PATIENCE).await?;
    }
    for path in &picked {
        let name = path.file_name().context("a file without a name")?;
        ensure!(
            md5(&home.join("many").join(name))? == md5(path)?,
            "{} differs",
            path.display()
        );
    }

    // Down: tl-download offers the file, the browser saves it.
    echo_done(
        browser,
        "cd ~/inbox && tl-download 'data é 1.bin'",
        "offered",
    )
    .await?;
    let row = format!("[data-download='{name}']");
    wait_eval(
        browser,
        "the download offer",
        &format!("!!document.querySelector(\"#files .file{row} button\")"),
        |v| *v == Value::Bool(true),
    )
    .await?;
    let started = Instant::now();
    browser.click(&format!("#files .file{row} button")).await?;
    let saved = browser.downloads.path().join(name);
    wait_until(
        Duration::from_secs(60),
        "the browser to save the file",
        || async {
            let len = std::fs::metadata(&saved).map(|m| m.len()).unwrap_or(0);
            Ok(if len == 48 << 20 {
                Ok(())
            } else {
                Err(format!("{len} bytes saved"))
            })
        },
    )
    .await?;
    eprintln!(
        "48 MiB downloaded through the page in {:?}",
        started.elapsed()
    );
    ensure!(md5(&saved)? == source_md5, "the downloaded file differs");

    // Output that only looks like tl-download (no key) offers nothing.
    echo_done(
        browser,
        r"printf '\033]8445;download;not-the-key;2f6574632f686f73746e616d65\007'",
        "forged",
    )
    .await?;
    echo_done(browser, "true", "after").await?;
    let offered = browser
        .eval("!!document.querySelector(\"#files .file[data-download='hostname']\")")
        .await?;
    ensure!(
        offered == Value::Bool(false),
        "a keyless request offered a file"
    );
    Ok(())
}

/// An upload in flight when its host is killed goes on, on the host the
/// session moves to, from what the shared home holds; one into the lost
/// host's `/tmp` says it was not completed.
#[tokio::test]
async fn an_upload_cut_by_a_host_loss_completes_on_the_next_host() -> Result<()> {
    let test = "an_upload_cut_by_a_host_loss_completes_on_the_next_host";
    let options = ClusterOptions {
        hosts: 2,
        backend: Backend::Sqlite,
        ..ClusterOptions::default()
    };
    let Some(mut page) = open_cluster_page(test, options).await? else {
        return Ok(());
    };
    let outcome = upload_across_failover(&mut page).await;
    finish(page, outcome).await
}

async fn upload_across_failover(page: &mut ClusterPage) -> Result<()> {
    let browser = &page.browser;
    let big_dir = page.cluster.home_root().join(TEST_USER).join("big");
    let local = tempfile::tempdir()?;
    let lost = noise_file(local.path(), "lost.bin", 8 << 20, 3)?;
    let big = noise_file(local.path(), "big.bin", 24 << 20, 4)?;
    let big_md5 = md5(&big)?;
    browser.throttle_uploads(Some(3 << 20)).await?;

    echo_done(browser, "cd /tmp", "tmp").await?;
    browser
        .type_into("#upload-input", lost.to_str().unwrap_or_default())
        .await?;
    wait_eval(
        browser,
        "the upload into /tmp under way",
        "document.querySelector(\"#files .file[data-upload='1'] progress\")?.value",
        |v| v.as_f64().is_some_and(|sent| sent > 0.0),
    )
    .await?;
    echo_done(browser, "mkdir -p ~/big && cd ~/big", "big").await?;
    browser
        .type_into("#upload-input", big.to_str().unwrap_or_default())
        .await?;
    let held = wait_until(PATIENCE, "part of big.bin on the shared home", || async {
        let held = partials(&big_dir).unwrap_or_default();
        Ok(match held.first() {
            Some((_, len)) if *len >= 2 << 20 => Ok(*len),
            _ => Err(format!("{held:?}")),
        })
    })
    .await?;

    let before = served(browser.state().await?)?;
    let killed_at = Instant::now();
    page.cluster.host_mut(&before.host)?.server.kill9()?;
    let after = wait_moved(browser, &before, PATIENCE).await?;
    browser.throttle_uploads(None).await?;
    let said = wait_row(
        browser,
        "[data-upload='2']",
        "done",
        Duration::from_secs(90),
    )
    .await?;
    eprintln!(
        "big.bin: {held} bytes in when {} was killed; finished on {} {:?} after the kill",
        before.host,
        after.host,
        killed_at.elapsed()
    );
    ensure!(said.contains("big/big.bin"), "the row says {said:?}");
    ensure!(
        md5(&big_dir.join("big.bin"))? == big_md5,
        "the file finished after the failover differs"
    );
    ensure!(
        partials(&big_dir)?.is_empty(),
        "partial files left behind: {:?}",
        partials(&big_dir)?
    );
    let said = wait_row(browser, "[data-upload='1']", "failed", PATIENCE).await?;
    ensure!(
        said.contains("lost.bin") && said.contains("/tmp") && said.contains("again"),
        "the lost upload says {said:?}"
    );
    // The store agrees on who serves the session now.
    let (owner, epoch) = page.cluster.owner(&before.session).await?;
    ensure!(
        owner == after.host && epoch > before.epoch,
        "the store says {owner} at {epoch}, the page {} after {}",
        after.host,
        before.host
    );
    Ok(())
}
