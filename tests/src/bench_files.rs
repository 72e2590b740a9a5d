//! `bench files`: issue 15's "upload and download throughput of a 1 GB
//! file (MB/s, and host memory while it streams)", measured as people move
//! files: the page in Chromium picks the file and shows its progress row
//! until the host says it is named; `tl-download` offers it back and
//! Chromium's download manager saves it. The host's resident memory
//! (`VmRSS`) is sampled every 20 ms while each transfer runs, and both
//! copies are checked byte for byte (md5) before a figure is printed.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use serde_json::Value;

use crate::Figure;
use crate::bench_memory::resident_bytes;
use crate::browser::Browser;
use crate::cluster::{Cluster, ClusterOptions};
use crate::files::{md5, noise_file};
use crate::paths;
use crate::tickets::{TEST_PASSWORD, TEST_USER};

/// The file moved each way.
const SIZE: u64 = 1 << 30;
/// Longest either transfer may take before the benchmark gives up.
const PATIENCE: Duration = Duration::from_secs(600);

pub async fn files(progress: &dyn Fn(&str), figures: &mut Vec<Figure>) -> Result<()> {
    paths::built_page()?;
    let cluster = Cluster::start(ClusterOptions {
        hosts: 1,
        ..ClusterOptions::default()
    })
    .await?;
    let host_pid = cluster.hosts[0].server.pid();
    let browser = Browser::start(1000, 700).await?;
    browser
        .open_and_sign_in(&cluster.directory_url(0), TEST_USER, TEST_PASSWORD)
        .await?;
    browser
        .wait_mirror_line(Duration::from_secs(30), "a prompt", |l| l == "$")
        .await?;
    browser
        .run("mkdir -p ~/bench && cd ~/bench && echo in-$((6*7))")
        .await?;
    browser
        .wait_mirror_line(Duration::from_secs(30), "in-42", |l| l == "in-42")
        .await?;

    progress("files: writing a 1 GiB file to upload");
    let local = tempfile::tempdir()?;
    let source = noise_file(local.path(), "one-gib.bin", SIZE, 0x9e37_79b9_7f4a_7c15)?;
    let source_md5 = md5(&source)?;

    progress("files: uploading 1 GiB through the page");
    let picked = source
        .to_str()
        .context("a temporary path that is not UTF-8")?;
    let (upload, upload_rss) = timed_with_rss(host_pid, async {
        browser.type_into("#upload-input", picked).await?;
        wait_js(
            &browser,
            "document.querySelector('#files .file[data-upload=\"1\"]')?.dataset.state",
            |v| v == "done",
        )
        .await
    })
    .await?;
    let landed = cluster
        .home_root()
        .join(TEST_USER)
        .join("bench/one-gib.bin");
    ensure!(md5(&landed)? == source_md5, "the uploaded file differs");

    progress("files: downloading it through the page");
    browser.run("tl-download one-gib.bin").await?;
    wait_js(
        &browser,
        "!!document.querySelector('#files .file[data-download=\"one-gib.bin\"] button')",
        |v| *v == Value::Bool(true),
    )
    .await?;
    let saved = browser.downloads.path().join("one-gib.bin");
    let (download, download_rss) = timed_with_rss(host_pid, async {
        browser
            .click("#files .file[data-download=\"one-gib.bin\"] button")
            .await?;
        crate::wait_until(PATIENCE, "Chromium to save 1 GiB", || async {
            let len = std::fs::metadata(&saved).map(|m| m.len()).unwrap_or(0);
            Ok(if len == SIZE {
                Ok(())
            } else {
                Err(format!("{len} bytes saved"))
            })
        })
        .await
    })
    .await?;
    ensure!(md5(&saved)? == source_md5, "the downloaded file differs");
    browser.close().await;

    for (what, took, rss) in [
        ("upload", upload, upload_rss),
        ("download", download, download_rss),
    ] {
        figures.push(Figure {
            what: format!("{what} of 1 GiB through the page in Chromium (md5 checked)"),
            measured: format!(
                "{:.0} MB/s ({:.2} s); host RSS {:.1} MB before, peak {:.1} MB while it streamed",
                SIZE as f64 / 1e6 / took.as_secs_f64(),
                took.as_secs_f64(),
                rss.0 as f64 / 1e6,
                rss.1 as f64 / 1e6,
            ),
            target: "1 GB works; no whole-file buffering",
            met: Some(rss.1.saturating_sub(rss.0) < 64 << 20),
        });
    }
    Ok(())
}

/// Runs `work`, timing it and sampling `pid`'s resident memory every
/// 20 ms: (elapsed, (resident before, peak resident)).
async fn timed_with_rss(
    pid: u32,
    work: impl Future<Output = Result<()>>,
) -> Result<(Duration, (u64, u64))> {
    let before = resident_bytes(pid)?;
    let peak = Arc::new(AtomicU64::new(before));
    let done = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, done) = (peak.clone(), done.clone());
        tokio::spawn(async move {
            while !done.load(Ordering::Relaxed) {
                if let Ok(now) = resident_bytes(pid) {
                    peak.fetch_max(now, Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        })
    };
    let started = Instant::now();
    let outcome = work.await;
    let took = started.elapsed();
    done.store(true, Ordering::Relaxed);
    let _ = sampler.await;
    outcome?;
    Ok((took, (before, peak.load(Ordering::Relaxed))))
}

async fn wait_js(browser: &Browser, expr: &str, accept: impl Fn(&Value) -> bool) -> Result<()> {
    crate::wait_until(PATIENCE, expr, || async {
        let got = browser.eval(expr).await?;
        Ok(if accept(&got) {
            Ok(())
        } else {
            Err(got.to_string())
        })
    })
    .await
}
