//! Thinline in containers, under the faults operators meet: the images
//! `cargo xtask image` built, run as `cargo xtask cluster` runs them
//! (PostgreSQL, two directories, three hosts, a homes volume, a private
//! network), with headless Chromium on this machine signed in and typing.
//!
//! One cluster lives through every step in turn, each timed and printed:
//! the serving host's container killed; the serving host cut off the
//! network past its lease, then put back; PostgreSQL stopped for 30 s; a
//! directory killed; and every host restarted, one at a time, with a
//! drain. Each step checks what the page shows and what the store holds,
//! and every container that was killed or stopped comes back under its
//! own name before the next step.
//!
//! It runs only with `THINLINE_CONTAINERS=1`, which `cargo xtask test`
//! sets after building the images (and `THINLINE_CONTAINER_ENGINE`), and
//! takes the browser turn, so no other browser test shares the machine.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use serde_json::Value;
use tests::browser::Browser;
use tests::cluster::{saved_screen, wait_persisted, wait_persisted_within};
use tests::containers::{ClusterSpec, ContainerCluster};
use tests::page::{NativePage, PageOptions};
use tests::tickets::{TEST_PASSWORD, TEST_USER};
use tests::wait_until;

use crate::browser::ONE_BROWSER_AT_A_TIME;
use crate::{PATIENCE, SIZE};

/// Hosts' lease: short, so waiting past it is quick, and long enough that
/// a loaded machine renews in time (three renewals per lease).
const LEASE_TTL_MS: u64 = 3_000;
const RENEW_MS: u64 = 600;
/// How long PostgreSQL stays down.
const STORE_OUTAGE: Duration = Duration::from_secs(30);
/// Generous bound on one step's wait.
const STEP: Duration = Duration::from_secs(60);

fn enabled() -> bool {
    std::env::var("THINLINE_CONTAINERS").is_ok_and(|v| v == "1")
}

#[tokio::test]
async fn a_containerised_cluster_survives_kills_partitions_and_outages() -> Result<()> {
    if !enabled() {
        eprintln!(
            "containers: skipped, set THINLINE_CONTAINERS=1 (cargo xtask test does, after \
             building the images) to run the containerised cluster"
        );
        return Ok(());
    }
    let _turn = ONE_BROWSER_AT_A_TIME.lock().await;
    let folder = tempfile::Builder::new()
        .prefix("thinline-containers-")
        .tempdir()?;
    let mut spec = ClusterSpec::new(
        &format!("thinline-it-{}", std::process::id()),
        &folder.path().join("state"),
    )
    .plain_bash();
    spec.lease = Some((LEASE_TTL_MS, RENEW_MS));
    spec.rust_log = Some("info".into());
    let mut steps = Steps::new();
    let cluster = ContainerCluster::up(spec).await?;
    steps.done("cluster up: PostgreSQL, 2 directories, 3 hosts");
    let outcome = async {
        cluster.add_user(TEST_USER, TEST_PASSWORD).await?;
        let browser = Browser::start(1000, 700).await?;
        let outcome = scenario(&cluster, &browser, &mut steps).await;
        browser.close().await;
        outcome
    }
    .await;
    if outcome.is_err() {
        eprintln!("{}", cluster.all_logs().await);
    }
    let removed = cluster.down().await;
    steps.done("cluster down");
    // The scenario's failure is the news; a failed clean-up comes second.
    outcome?;
    removed
}

/// Prints each step's time as it ends.
struct Steps {
    started: Instant,
    last: Instant,
}

impl Steps {
    fn new() -> Steps {
        let now = Instant::now();
        Steps {
            started: now,
            last: now,
        }
    }

    fn done(&mut self, what: &str) {
        let now = Instant::now();
        eprintln!(
            "containers: {what}: {:.1} s (at {:.1} s)",
            (now - self.last).as_secs_f64(),
            (now - self.started).as_secs_f64()
        );
        self.last = now;
    }
}

async fn scenario(cluster: &ContainerCluster, browser: &Browser, steps: &mut Steps) -> Result<()> {
    for host in &cluster.hosts {
        let (_, health) = cluster.health(host).await?;
        ensure!(
            health.contains("\"isolation\":\"per-user\""),
            "{} does not sandbox each account under its own uid in its container: {health}",
            host.name
        );
    }
    browser
        .open_and_sign_in(&cluster.page_url(), TEST_USER, TEST_PASSWORD)
        .await?;
    browser
        .wait_mirror_line(PATIENCE, "a `$` prompt in #mirror", |l| l == "$")
        .await?;
    browser
        .run("mkdir -p ~/work && cd ~/work && seq 1 300")
        .await?;
    browser
        .wait_mirror_line(PATIENCE, "seq's last line", |l| l == "300")
        .await?;
    steps.done("signed in in Chromium, history written");

    let before = served(browser).await?;
    let marker = browser.echo_marker("before-kill", PATIENCE).await?;
    wait_persisted(cluster.store.as_ref(), &before.session, &marker).await?;
    let killed = cluster.host(&before.host)?;
    let at = Instant::now();
    cluster.kill(&killed).await?;
    let after = wait_moved(browser, &before, STEP).await?;
    eprintln!(
        "containers: kill of {}: the page was live on {} after {:.0} ms",
        killed.name,
        after.host,
        at.elapsed().as_secs_f64() * 1e3
    );
    check_restored(cluster, browser, &before, &after, &marker).await?;
    cluster.start(&killed).await?;
    cluster.wait_healthy(&killed).await?;
    steps.done("podman kill of the serving host: moved, restored, host back");

    partition(cluster, browser, steps).await?;
    store_outage(cluster, browser, steps).await?;
    directory_down(cluster, browser, steps).await?;
    rolling_restart(cluster, browser, steps).await
}

/// The serving host cut off the network past its lease: the page moves
/// only after the lease; put back, the old host writes nothing to the
/// session and ends its copy.
async fn partition(cluster: &ContainerCluster, browser: &Browser, steps: &mut Steps) -> Result<()> {
    let before = served(browser).await?;
    let marker = browser.echo_marker("before-cut", PATIENCE).await?;
    wait_persisted(cluster.store.as_ref(), &before.session, &marker).await?;
    let cut = cluster.host(&before.host)?;
    let at = Instant::now();
    cluster.disconnect(&cut).await?;
    let after = wait_moved(browser, &before, STEP).await?;
    let moved_after = at.elapsed();
    // The lease runs out a TTL after the host's last renewal, which came
    // up to one renewal interval before the cut: no lease can have run out
    // earlier than this after it.
    let earliest_expiry = Duration::from_millis(LEASE_TTL_MS - RENEW_MS);
    ensure!(
        moved_after >= earliest_expiry,
        "the session moved {moved_after:?} after its host was cut off, before its {LEASE_TTL_MS} ms \
         lease (renewed every {RENEW_MS} ms) could have run out: it may be running twice"
    );
    eprintln!(
        "containers: {} cut off: the page was live on {} after {:.0} ms (lease {LEASE_TTL_MS} ms)",
        cut.name,
        after.host,
        moved_after.as_secs_f64() * 1e3
    );
    check_restored(cluster, browser, &before, &after, &marker).await?;
    // Off the network for longer than every timeout the old host has.
    tokio::time::sleep(Duration::from_millis(3 * LEASE_TTL_MS)).await;
    let saved_before = saved_screen(cluster.store.as_ref(), &after.session)
        .await?
        .context("nothing saved after the move")?;
    cluster.reconnect(&cut).await?;
    wait_until(STEP, &format!("{} to end its copy", cut.name), || async {
        // Just reconnected, its address may not answer yet (no route to
        // host until the neighbour is learnt again): not yet, not failed.
        let health = match cluster.health(&cut).await {
            Ok((_, health)) => health,
            Err(err) => return Ok(Err(format!("{err:#}"))),
        };
        let sessions = serde_json::from_str::<Value>(&health)
            .ok()
            .and_then(|v| v["sessions"].as_u64());
        Ok(if sessions == Some(0) {
            Ok(())
        } else {
            Err(health)
        })
    })
    .await?;
    let marker = browser.echo_marker("after-cut", PATIENCE).await?;
    wait_persisted(cluster.store.as_ref(), &after.session, &marker).await?;
    let saved = saved_screen(cluster.store.as_ref(), &after.session)
        .await?
        .context("nothing saved")?;
    ensure!(
        saved.saved_by == after.host && saved_before.saved_by == after.host,
        "the screen was saved by {} (and {} before the reconnect), not only by the new owner {}",
        saved.saved_by,
        saved_before.saved_by,
        after.host
    );
    store_agrees(cluster, &after)
        .await
        .context("after the reconnect")?;
    steps.done("serving host cut off past its lease: moved, fenced, copy ended");
    Ok(())
}

/// PostgreSQL stopped for 30 s: the live session keeps working, hosts say
/// they are degraded, and the store catches up when it is back.
async fn store_outage(
    cluster: &ContainerCluster,
    browser: &Browser,
    steps: &mut Steps,
) -> Result<()> {
    let before = served(browser).await?;
    let serving = cluster.host(&before.host)?;
    let at = Instant::now();
    cluster
        .stop(&cluster.postgres, Duration::from_secs(10))
        .await?;
    wait_until(
        STEP,
        &format!("{} to report degraded", serving.name),
        || async {
            let (status, health) = match cluster.health(&serving).await {
                Ok(answer) => answer,
                Err(err) => return Ok(Err(format!("{err:#}"))),
            };
            Ok(
                if status == 200 && health.contains("\"status\":\"degraded\"") {
                    Ok(())
                } else {
                    Err(format!("{status} {health}"))
                },
            )
        },
    )
    .await?;
    browser.echo_marker("store-down", PATIENCE).await?;
    browser
        .run("mkdir -p /tmp/outage && cd /tmp/outage")
        .await?;
    let marker = browser.echo_marker("during-outage", PATIENCE).await?;
    if let Some(left) = STORE_OUTAGE.checked_sub(at.elapsed()) {
        tokio::time::sleep(left).await;
    }
    let still = served(browser).await?;
    ensure!(
        still.host == before.host && still.epoch == before.epoch,
        "the session moved during the store outage: {} at {} -> {} at {}",
        before.host,
        before.epoch,
        still.host,
        still.epoch
    );
    cluster.start(&cluster.postgres).await?;
    steps.done("PostgreSQL stopped 30 s: session live, host degraded");
    let back = Instant::now();
    wait_persisted_within(cluster.store.as_ref(), &before.session, &marker, STEP).await?;
    eprintln!(
        "containers: the screen typed during the outage was in the store {:.1} s after \
         PostgreSQL started",
        back.elapsed().as_secs_f64()
    );
    wait_until(
        STEP,
        "the store to hold the cwd changed during the outage",
        || async {
            Ok(match cluster.store.get_session(&before.session).await {
                Ok(Some(record)) if record.cwd == "/tmp/outage" => Ok(()),
                Ok(record) => Err(format!("{record:?}")),
                Err(err) => Err(format!("{err:#}")),
            })
        },
    )
    .await?;
    wait_until(STEP, &format!("{} to report ok", serving.name), || async {
        let health = match cluster.health(&serving).await {
            Ok((_, health)) => health,
            Err(err) => return Ok(Err(format!("{err:#}"))),
        };
        Ok(if health.contains("\"status\":\"ok\"") {
            Ok(())
        } else {
            Err(health)
        })
    })
    .await?;
    for directory in &cluster.directories {
        let at = Instant::now();
        cluster.wait_healthy(directory).await?;
        eprintln!(
            "containers: {} answered /healthz ok {:.1} s after the hosts",
            directory.name,
            at.elapsed().as_secs_f64()
        );
    }
    browser.run("cd ~/work").await?;
    steps.done("PostgreSQL back: screen and cwd caught up, hosts and directories ok");
    Ok(())
}

/// One directory killed: the live session does not notice, and the other
/// directory places a new session for a page it serves.
async fn directory_down(
    cluster: &ContainerCluster,
    browser: &Browser,
    steps: &mut Steps,
) -> Result<()> {
    let before = served(browser).await?;
    let dead = &cluster.directories[0];
    let other = &cluster.directories[1];
    cluster.kill(dead).await?;
    browser.echo_marker("directory-down", PATIENCE).await?;
    let cookie = cluster.sign_in(other, TEST_USER, TEST_PASSWORD).await?;
    let page = NativePage::open(PageOptions::new(&other.url(), &cookie, SIZE).new_session());
    page.wait_prompt(STEP).await.with_context(|| {
        format!(
            "a new session through {}: {}",
            other.name,
            page.with_page(|p| p.describe())
        )
    })?;
    page.run_expecting("echo placed-$((6*7))", "placed-42", PATIENCE)
        .await?;
    let still = served(browser).await?;
    ensure!(
        still.host == before.host && still.epoch == before.epoch,
        "the live session moved when a directory died: {} at {} -> {} at {}",
        before.host,
        before.epoch,
        still.host,
        still.epoch
    );
    drop(page);
    cluster.start(dead).await?;
    cluster.wait_healthy(dead).await?;
    steps.done("a directory killed: live session untouched, the other placed a new one");
    Ok(())
}

/// Every host restarted in turn with a drain while the page types lines
/// into a file on the shared homes volume, on whichever other host serves
/// it: the session survives each step, no line arrives twice, and a line
/// is missing only where the page told the user that input was not
/// delivered (DESIGN.md: input typed into a host that is going away is
/// reported, never replayed into the program that replaces it).
async fn rolling_restart(
    cluster: &ContainerCluster,
    browser: &Browser,
    steps: &mut Steps,
) -> Result<()> {
    let mut report = Vec::new();
    for host in &cluster.hosts {
        let before = served(browser).await?;
        let undelivered_before = undelivered(&browser.state().await?);
        let restarted = std::sync::atomic::AtomicBool::new(false);
        let restart = async {
            let at = Instant::now();
            cluster.stop(host, Duration::from_secs(60)).await?;
            let drained = at.elapsed();
            cluster.start(host).await?;
            cluster.wait_healthy(host).await?;
            eprintln!(
                "containers: {} drained and exited in {:.1} s, served again {:.1} s later",
                host.name,
                drained.as_secs_f64(),
                (at.elapsed() - drained).as_secs_f64()
            );
            restarted.store(true, std::sync::atomic::Ordering::SeqCst);
            anyhow::Ok(())
        };
        let typing = async {
            let mut lines = 0;
            let mut undelivered_after = undelivered_before;
            for n in 0.. {
                let state = browser.state().await?;
                undelivered_after = undelivered_after.max(undelivered(&state));
                // Typed only into a host that is not the one restarting (or
                // into it once it serves again, a new process):
                // a line the draining host's program received but had not
                // run when the drain ended it goes with that program (the
                // page's notice says a new shell started), and this step
                // checks the keys the page delivers, not that race.
                let restarting = state["host"] == host.name.as_str()
                    && !restarted.load(std::sync::atomic::Ordering::SeqCst);
                if state["connection"] == "live" && !restarting {
                    browser
                        .run(&format!("echo {}-{n:03} >> ~/typed", host.name))
                        .await?;
                    lines += 1;
                }
                tokio::time::sleep(Duration::from_millis(300)).await;
                if n >= 10 && cluster.is_running(&host.name).await? {
                    break;
                }
            }
            anyhow::Ok((lines, undelivered_after))
        };
        let (restarted, typing) = tokio::join!(restart, typing);
        restarted?;
        let (lines, mut undelivered_after) = typing?;
        let now = wait_live(browser).await?;
        ensure!(
            now.session == before.session,
            "the page came back with {} instead of {}",
            now.session,
            before.session
        );
        browser.echo_marker("rolled", PATIENCE).await?;
        undelivered_after = undelivered_after.max(undelivered(&browser.state().await?));
        let arrived = browser
            .echo_marker_output(
                "arrived",
                &format!("$(cat ~/typed 2>/dev/null | grep -c '^{}-')", host.name),
            )
            .await?
            .parse::<u64>()
            .context("counting the lines that arrived")?;
        steps.done(&format!(
            "{} drained and restarted: session live on {}; {arrived} of {lines} lines arrived",
            host.name, now.host
        ));
        report.push((
            host.name.clone(),
            lines,
            arrived,
            undelivered_after - undelivered_before,
        ));
    }
    let doubled = browser
        .echo_marker_output("doubled", "$(sort ~/typed | uniq -d | wc -l)")
        .await?;
    ensure!(doubled == "0", "{doubled} typed lines arrived twice");
    for (host, lines, arrived, reported) in report {
        ensure!(
            arrived <= lines,
            "{arrived} lines arrived from the {lines} typed while {host} restarted"
        );
        ensure!(
            arrived == lines || reported > 0,
            "{} of {lines} lines typed while {host} restarted never arrived, and the page \
             reported no undelivered input",
            lines - arrived
        );
    }
    Ok(())
}

/// The page's count of input it reported as never delivered.
fn undelivered(state: &Value) -> u64 {
    state["undelivered"].as_u64().unwrap_or(0)
}

/// The page's session, host and epoch while it is live.
struct Served {
    session: String,
    host: String,
    epoch: u64,
}

fn read_served(state: &Value) -> Option<Served> {
    (state["connection"] == "live").then_some(())?;
    Some(Served {
        session: state["session"].as_str()?.to_owned(),
        host: state["host"].as_str()?.to_owned(),
        epoch: state["epoch"].as_u64()?,
    })
}

async fn served(browser: &Browser) -> Result<Served> {
    let state = browser.state().await?;
    read_served(&state).with_context(|| format!("the page is not live: {state}"))
}

async fn wait_live(browser: &Browser) -> Result<Served> {
    let state = browser.wait_live(STEP).await?;
    read_served(&state).with_context(|| format!("the page is not live: {state}"))
}

/// Waits until the page is live for the same session on another host, at
/// a higher epoch.
async fn wait_moved(browser: &Browser, before: &Served, timeout: Duration) -> Result<Served> {
    let now = wait_until(timeout, "the page to be live on another host", || async {
        let state = browser.state().await?;
        Ok(match read_served(&state) {
            Some(now) if now.host != before.host && now.epoch > before.epoch => Ok(now),
            _ => Err(state.to_string()),
        })
    })
    .await?;
    ensure!(
        now.session == before.session,
        "the page came back with session {} instead of {}",
        now.session,
        before.session
    );
    Ok(now)
}

/// After a move: the notice names the lost host, the last output and the
/// history are back, the shell is in the same directory, and the store
/// names the page's host and epoch.
async fn check_restored(
    cluster: &ContainerCluster,
    browser: &Browser,
    before: &Served,
    after: &Served,
    marker: &str,
) -> Result<()> {
    let notice = format!("restored from host {}", before.host);
    browser
        .wait_mirror_line(PATIENCE, &format!("the notice {notice:?}"), |l| {
            l.contains(&notice)
        })
        .await?;
    browser
        .wait_mirror_line(PATIENCE, "the output from before the move", |l| l == marker)
        .await?;
    // The history is fetched after the restored screen is shown.
    wait_until(
        PATIENCE,
        "the history to come back (seq wrote 300)",
        || async {
            let history = browser.thinline("scrollback_len", "").await?;
            Ok(if history.as_f64().is_some_and(|n| n >= 250.0) {
                Ok(())
            } else {
                Err(format!("only {history} lines of history"))
            })
        },
    )
    .await?;
    let cwd = browser.echo_marker_output("cwd", "$PWD").await?;
    ensure!(
        cwd.ends_with("/work") || cwd == "/tmp/outage",
        "the restored shell is in {cwd}, not the directory it was in"
    );
    store_agrees(cluster, after).await
}

/// The store names the page's host and epoch as the session's owner.
async fn store_agrees(cluster: &ContainerCluster, page: &Served) -> Result<()> {
    let record = cluster
        .store
        .get_session(&page.session)
        .await?
        .context("the session is gone from the store")?;
    ensure!(
        record.owner_host == page.host && record.epoch == page.epoch,
        "the page is on {} at {}, the store says {} at {}",
        page.host,
        page.epoch,
        record.owner_host,
        record.epoch
    );
    Ok(())
}
