//! The data plane outlives the control plane (DESIGN.md promises 3, 4 and
//! 5; issue "directory outages and host restarts must never end
//! sessions"): every directory gone for longer than any lease or ticket
//! refresh, hosts cut off from directory and store, a rolling restart of
//! every host, an operator's drain across a restart.
//!
//! Each outage outlasts every timeout it could hide behind (lease TTL,
//! store write timeout, ticket refresh), things come back under their own
//! ids and ports, and what is checked afterwards is read from the store
//! the processes share, not from what they say.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use directory_api::{Placement, PlacementRequest};
use serde_json::Value;
use tests::browser::Browser;
use tests::client::Client;
use tests::cluster::{Backend, Cluster, ClusterOptions, read_answer, request_body};
use tests::page::NativePage;
use tests::proxy::{FaultProxy, NewConnections};
use tests::tickets::{self, TEST_PASSWORD, TEST_USER};
use tests::{http, unique_marker, wait_until};
use web_terminal::directory::websocket_url;

use crate::browser::ONE_BROWSER_AT_A_TIME;
use crate::{PATIENCE, SIZE, assert_echoes};

/// Longer than the lease TTL (5 s), the persister's write timeout (5 s)
/// and its longest backoff, and than the page's ticket refresh (30 s), so
/// a renewal through a directory, a ticket refresh or a lapse all have
/// happened while the directories were gone.
const DIRECTORY_OUTAGE: Duration = Duration::from_secs(35);

/// Lease settings for the partition, where the lease must run out.
const SHORT_TTL_MS: u64 = 2_000;
const SHORT_RENEW_MS: u64 = 400;
/// How long hosts stay cut off from the store: many leases, and past the
/// persister's 5 s write timeout and its backoff.
const PARTITION: Duration = Duration::from_secs(12);

async fn health(port: u16) -> Result<Value> {
    let response = http::get(port, "/healthz").await?;
    serde_json::from_str(&response.body)
        .with_context(|| format!("/healthz answered {:?}", response.body))
}

/// `thinline_connections_total` of a host: WebSockets it admitted.
async fn connections_admitted(port: u16) -> Result<u64> {
    let metrics = http::get(port, "/metrics").await?.body;
    metrics
        .lines()
        .find_map(|line| line.strip_prefix("thinline_connections_total "))
        .and_then(|n| n.trim().parse().ok())
        .with_context(|| format!("no thinline_connections_total in:\n{metrics}"))
}

/// The shell's process id, as it prints it.
async fn shell_pid(browser: &Browser) -> Result<String> {
    let marker = unique_marker("pid");
    browser.run(&format!("echo {marker}-$$")).await?;
    let line = browser
        .wait_mirror_line(PATIENCE, "the shell's pid", |l| {
            l.starts_with(&format!("{marker}-")) && !l.contains('$')
        })
        .await?;
    Ok(line.trim_start_matches(&format!("{marker}-")).to_owned())
}

/// Waits for this test's turn with the browser and opens the page of a
/// new cluster; `None` without `THINLINE_E2E=1`.
async fn cluster_page(test: &str, options: ClusterOptions) -> Result<Option<(Cluster, Browser)>> {
    if !tests::browser::e2e_enabled() {
        eprintln!("{test}: skipped, set THINLINE_E2E=1 (cargo xtask test does)");
        return Ok(None);
    }
    let cluster = Cluster::start(options).await?;
    let browser = Browser::start(1000, 700).await?;
    let opened = async {
        browser
            .open_and_sign_in(
                &format!("{}/", cluster.directory_url(0)),
                TEST_USER,
                TEST_PASSWORD,
            )
            .await?;
        browser
            .wait_mirror_line(PATIENCE, "a `$` prompt", |line| line == "$")
            .await
    }
    .await;
    if let Err(error) = opened {
        eprintln!("{}", cluster.logs());
        browser.close().await;
        return Err(error);
    }
    Ok(Some((cluster, browser)))
}

/// Every directory killed, and kept down past every lease and ticket
/// refresh: the page keeps its shell (same `$$`), commands run, it never
/// reconnects; the hosts' leases stay live in the store throughout. When
/// the directories come back (same ports), placement and failover work.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_directory_down_leaves_live_sessions_alone() -> Result<()> {
    let test = "every_directory_down_leaves_live_sessions_alone";
    let _turn = ONE_BROWSER_AT_A_TIME.lock().await;
    let options = ClusterOptions {
        hosts: 2,
        directories: 2,
        ..ClusterOptions::default()
    };
    let Some((mut cluster, browser)) = cluster_page(test, options).await? else {
        return Ok(());
    };
    let outcome = directories_down(test, &mut cluster, &browser).await;
    if outcome.is_err() {
        eprintln!("{}", cluster.logs());
    }
    browser.close().await;
    outcome
}

async fn directories_down(test: &str, cluster: &mut Cluster, browser: &Browser) -> Result<()> {
    let pid = shell_pid(browser).await?;
    let before = browser.wait_live(PATIENCE).await?;
    let host = before["host"].as_str().context("no host")?.to_owned();
    let epoch = before["epoch"].as_u64().context("no epoch")?;
    let session = before["session"].as_str().context("no session")?.to_owned();
    let ports: Vec<(String, u16)> = cluster
        .hosts
        .iter()
        .map(|h| (h.id.clone(), h.server.port))
        .collect();
    let mut admitted = Vec::new();
    for (_, port) in &ports {
        admitted.push(connections_admitted(*port).await?);
    }

    for directory in &mut cluster.directories {
        directory.kill9()?;
    }
    let down_at = Instant::now();
    let mut typed = 0;
    while down_at.elapsed() < DIRECTORY_OUTAGE {
        browser.echo_marker("no-directory", PATIENCE).await?;
        typed += 1;
        // The hosts keep their leases in the store themselves.
        let now = cluster.store.now().await?;
        for record in cluster.store.list_hosts().await? {
            ensure!(
                record.is_live(now),
                "{} lost its lease {:?} into the directory outage",
                record.id,
                down_at.elapsed()
            );
        }
        for (id, port) in &ports {
            let body = health(*port).await?;
            ensure!(
                body["status"] == "ok" && body["lease"] == "live",
                "{id} is not ok without the directories: {body}"
            );
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    let state = browser.state().await?;
    ensure!(
        state["connection"] == "live" && state["host"] == host.as_str() && state["epoch"] == epoch,
        "the page left {host} at epoch {epoch} during the outage: {state}"
    );
    ensure!(
        shell_pid(browser).await? == pid,
        "the shell was restarted during the outage"
    );
    for ((id, port), before) in ports.iter().zip(&admitted) {
        let now = connections_admitted(*port).await?;
        ensure!(
            now == *before,
            "{id} admitted {} WebSockets during the directory outage: the page reconnected",
            now - before
        );
    }
    let record = cluster.session(&session).await?;
    ensure!(
        record.owner_host == host && record.epoch == epoch,
        "the store moved the session to {} at {} during the outage",
        record.owner_host,
        record.epoch
    );
    eprintln!(
        "{test}: {typed} commands ran on {host} with every directory down for {:?}",
        down_at.elapsed()
    );

    // Back under their own ports: placement answers, and failover moves
    // the page off a killed host again.
    for i in 0..cluster.directories.len() {
        cluster.restart_directory(i).await?;
    }
    let again = PlacementRequest {
        session: Some(
            session
                .parse()
                .map_err(|e| anyhow::anyhow!("the page's session id {session}: {e}"))?,
        ),
        new: false,
    };
    let (status, answer) = cluster
        .ask_directory("POST", "/v1/placement", Some(&request_body(&again)?))
        .await?;
    let placed: Placement = read_answer(status, &answer)?;
    ensure!(
        placed.host == host,
        "placement after the outage moved the session: {answer}"
    );
    let old_line = browser.echo_marker("before-kill", PATIENCE).await?;
    cluster.wait_persisted(&session, &old_line).await?;
    cluster.host_mut(&host)?.server.kill9()?;
    let moved = wait_until(PATIENCE, "the page to move off the killed host", || async {
        let state = browser.state().await?;
        let moved = state["connection"] == "live"
            && state["host"].as_str().is_some_and(|h| h != host)
            && state["epoch"].as_u64().is_some_and(|e| e > epoch);
        Ok(if moved {
            Ok(state)
        } else {
            Err(state.to_string())
        })
    })
    .await?;
    browser
        .wait_mirror_line(PATIENCE, "the restore notice", |l| {
            l.contains(&format!("restored from host {host}"))
        })
        .await?;
    browser.echo_marker("after-failover", PATIENCE).await?;
    eprintln!(
        "{test}: after the outage, failover moved the page to {}",
        moved["host"]
    );
    Ok(())
}

/// A host cut off from the store (and so from everything that could fence
/// it) keeps serving the client attached to it, though its lease lapses
/// and a directory moves its sessions elsewhere meanwhile. When the path
/// comes back, the host ends its copies: the one with a write pending by
/// its refused write, the idle one by the ownership check after the lapse.
/// No write of the cut-off host reached the store: the last screen of each
/// session was written by the new owner at the current epoch.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_cut_off_serves_on_and_is_fenced_when_it_returns() -> Result<()> {
    let test = "a_host_cut_off_serves_on_and_is_fenced_when_it_returns";
    if tests::pg::database_url().is_none() {
        eprintln!("{test}: skipped, DATABASE_URL is not set (cargo xtask test sets it)");
        return Ok(());
    }
    let mut cluster = Cluster::start(ClusterOptions {
        hosts: 1,
        backend: Backend::Postgres,
        lease: Some((SHORT_TTL_MS, SHORT_RENEW_MS)),
        ..ClusterOptions::default()
    })
    .await?;
    let outcome = partition(test, &mut cluster).await;
    if outcome.is_err() {
        eprintln!("{}", cluster.logs());
    }
    outcome
}

async fn partition(test: &str, cluster: &mut Cluster) -> Result<()> {
    // h2 reaches PostgreSQL only through the proxy; h1 directly.
    let server = cluster.database_addr().context("no PostgreSQL address")?;
    let proxy = FaultProxy::start(server).await?;
    let store_through_proxy = cluster
        .store_spec_through(proxy.port)
        .context("no store url")?;
    let cut = cluster.start_host_with(None, Some(store_through_proxy))?;
    cluster.wait_hosts_live().await?;
    let cut_port = cluster.host(&cut).context("the cut host")?.server.port;
    let cut_url = cluster
        .host(&cut)
        .context("the cut host")?
        .public_url
        .clone();

    // Two sessions on the host to be cut off: one that will keep typing,
    // one left idle.
    let busy = cluster.open_page_on(&cut_url, SIZE).await?;
    let idle = cluster.open_page_on(&cut_url, SIZE).await?;
    for (page, name) in [(&busy, "busy"), (&idle, "idle")] {
        page.wait_prompt(PATIENCE).await?;
        let line = format!("{name}-before-{}", 6 * 7);
        page.run_expecting(&format!("echo {name}-before-$((6*7))"), &line, PATIENCE)
            .await?;
        cluster
            .wait_persisted(&page.session_id()?.to_string(), &line)
            .await?;
    }
    let epoch = busy.epoch().context("no epoch")?;

    // Silent partition: open connections hang, new ones are black-holed.
    proxy.stall();
    proxy.set_new_connections(NewConnections::BlackHole);
    let cut_at = Instant::now();
    wait_until(PATIENCE, "the cut host to say it has no lease", || async {
        let body = health(cut_port).await?;
        Ok(
            if body["status"] == "degraded" && body["lease"] == "lapsed" {
                Ok(())
            } else {
                Err(body.to_string())
            },
        )
    })
    .await?;
    // The host stops believing in its lease before the store lets it go.
    wait_until(PATIENCE, "the store to let the lease go", || async {
        let now = cluster.store.now().await?;
        let record = cluster
            .store
            .get_host(&cut)
            .await?
            .context("no host record")?;
        Ok(if record.is_live(now) {
            Err(format!("{record:?} at {now}"))
        } else {
            Ok(())
        })
    })
    .await?;

    // It refuses new sessions, which nobody could find...
    let grant = tickets::Grant {
        user: TEST_USER.into(),
        session: tickets::new_session_id(),
        host: cut.clone(),
        epoch: 1,
        login: cluster.login_id()?,
    };
    let ws = websocket_url(&cut_url).context("the cut host's url")?;
    let mut stranger = Client::connect_with_origin(&ws, &cluster.page_origin()).await?;
    let refused = stranger
        .handshake(&grant.ticket(), grant.session, SIZE)
        .await;
    ensure!(
        refused
            .as_ref()
            .err()
            .is_some_and(|e| format!("{e:#}").contains("1001")),
        "a leaseless host took a new session: {:?}",
        refused.map(|w| w.host)
    );
    // ...but the attached page types on, through the whole partition.
    let mut typed_while_cut = Vec::new();
    while cut_at.elapsed() < PARTITION {
        let line = unique_marker("cut-off");
        busy.run_expecting(&format!("echo {line}"), &line, PATIENCE)
            .await
            .context("typing on the cut-off host")?;
        typed_while_cut.push(line);
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    // Meanwhile the user opens both sessions elsewhere: the directory sees
    // the lapsed lease and moves them (epoch + 1) to h1, restored from the
    // store, so two hosts run each session for a while.
    let mut moved = Vec::new();
    for page in [&busy, &idle] {
        let session = page.session_id()?;
        let open = PlacementRequest {
            session: Some(session),
            new: false,
        };
        let (status, answer) = cluster
            .ask_directory("POST", "/v1/placement", Some(&request_body(&open)?))
            .await?;
        let placed: Placement = read_answer(status, &answer)?;
        ensure!(
            placed.host == "h1" && Some(placed.epoch) == page.epoch().map(|e| e + 1),
            "the session was not moved off the lapsed host: {answer}"
        );
        // The user's other browser, opening the session by name.
        let other = NativePage::open(cluster.page_options(&cluster.cookie, SIZE).session(session));
        other.wait_prompt(PATIENCE).await?;
        ensure!(
            other.host().as_deref() == Some("h1"),
            "the other page went to {:?}",
            other.host()
        );
        let line = unique_marker("new-owner");
        other
            .run_expecting(&format!("echo {line}"), &line, PATIENCE)
            .await?;
        cluster.wait_persisted(&session.to_string(), &line).await?;
        moved.push((session, other, line));
    }
    // The busy page's last command, unsaved on the cut-off host.
    let last = unique_marker("cut-off-last");
    busy.run_expecting(&format!("echo {last}"), &last, PATIENCE)
        .await?;
    typed_while_cut.push(last);

    // The path comes back: the cut-off host's writes are refused and it
    // ends both copies; its pages are sent to the directory.
    let restored_at = tokio::time::Instant::now();
    proxy.restore();
    for (page, name) in [(&busy, "busy"), (&idle, "idle")] {
        let code = page
            .wait_close_since(restored_at, PATIENCE)
            .await
            .with_context(|| format!("the {name} session's old copy was never ended"))?;
        ensure!(
            code == 1001 || code == 4008,
            "the {name} copy ended with {code}"
        );
        page.wait_for(PATIENCE, "the page to come back on h1", |p| {
            p.is_live() && p.host() == Some("h1") && p.epoch() == Some(epoch + 1)
        })
        .await
        .with_context(|| format!("the {name} page"))?;
        assert_echoes(&mut &*page).await?;
    }
    wait_until(PATIENCE, "the returned host to serve again", || async {
        let body = health(cut_port).await?;
        Ok(if body["status"] == "ok" && body["sessions"] == 0 {
            Ok(())
        } else {
            Err(body.to_string())
        })
    })
    .await?;

    // One writer per session: the store's last screen is the new owner's,
    // at the current epoch, and holds nothing typed on the cut-off copy.
    for (session, _other, line) in &moved {
        let id = session.to_string();
        let record = cluster.session(&id).await?;
        let stored = cluster.store.load_screen(&id).await?.context("no screen")?;
        ensure!(
            record.owner_host == "h1" && stored.saved_by == "h1" && stored.epoch == record.epoch,
            "session {id}: owner {} at {}, screen saved by {} at {}",
            record.owner_host,
            record.epoch,
            stored.saved_by,
            stored.epoch
        );
        let saved = cluster.saved_screen(&id).await?.context("no screen")?;
        ensure!(saved.has_line(line), "the new owner's output is not saved");
        for typed in &typed_while_cut {
            ensure!(
                !saved.rows.iter().any(|row| row.contains(typed.as_str())),
                "{typed}, typed on the cut-off copy, reached the store"
            );
        }
    }
    let log = cluster
        .host(&cut)
        .context("the cut host")?
        .server
        .log_text();
    ensure!(
        log.contains("moved to another host")
            || log.contains("moved on while this host had no lease"),
        "the cut-off host never said it lost the sessions:\n{log}"
    );
    eprintln!(
        "{test}: cut off for {:?}; {} commands ran there; both copies ended when it came back",
        PARTITION,
        typed_while_cut.len()
    );
    Ok(())
}

/// A rolling restart: each host in turn gets SIGTERM, drains, exits, and
/// is started again with the same command (id, port). The page's session
/// survives every step, every host ends up serving (none stays drained),
/// and nothing typed is lost or doubled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_of_every_host_loses_nothing() -> Result<()> {
    let test = "a_rolling_restart_of_every_host_loses_nothing";
    let _turn = ONE_BROWSER_AT_A_TIME.lock().await;
    let options = ClusterOptions {
        hosts: 3,
        ..ClusterOptions::default()
    };
    let Some((mut cluster, browser)) = cluster_page(test, options).await? else {
        return Ok(());
    };
    let outcome = rolling_restart(test, &mut cluster, &browser).await;
    if outcome.is_err() {
        eprintln!("{}", cluster.logs());
    }
    browser.close().await;
    outcome
}

async fn rolling_restart(test: &str, cluster: &mut Cluster, browser: &Browser) -> Result<()> {
    let session = browser.wait_live(PATIENCE).await?["session"]
        .as_str()
        .context("no session")?
        .to_owned();
    // A directory to come back to after every step.
    browser.run("mkdir -p rolling && cd rolling").await?;
    let mut lines = vec![browser.echo_marker("start", PATIENCE).await?];
    let ids: Vec<String> = cluster.hosts.iter().map(|h| h.id.clone()).collect();
    for id in &ids {
        let before = browser.wait_live(PATIENCE).await?;
        cluster
            .wait_persisted(&session, lines.last().context("no line")?)
            .await?;
        let started = Instant::now();
        cluster.host_mut(id)?.server.terminate()?;
        let status = cluster
            .host_mut(id)?
            .server
            .wait_exit(Duration::from_secs(20))
            .await?;
        ensure!(status.success(), "{id} exited with {status} on SIGTERM");
        cluster.restart_host(id).await?;
        wait_until(PATIENCE, &format!("{id} to serve again"), || async {
            let port = cluster.host(id).context("host")?.server.port;
            let body = health(port).await?;
            let record = cluster.store.get_host(id).await?;
            let serving = body["status"] == "ok"
                && body["new_sessions"] == true
                && record.is_some_and(|r| !r.is_draining());
            Ok(if serving {
                Ok(())
            } else {
                Err(body.to_string())
            })
        })
        .await?;
        let now = browser.wait_live(PATIENCE).await?;
        ensure!(
            now["session"] == session.as_str(),
            "the page came back with another session: {now}"
        );
        // Typed now, checked at the end: every line exactly once.
        lines.push(
            browser
                .echo_marker(&format!("after-{id}"), PATIENCE)
                .await?,
        );
        browser.run("pwd").await?;
        browser
            .wait_mirror_line(PATIENCE, "the working directory kept", |l| {
                l.ends_with("/rolling")
            })
            .await?;
        eprintln!(
            "{test}: {id} restarted in {:?}; the page went from {} to {}",
            started.elapsed(),
            before["host"],
            now["host"]
        );
    }
    let state = browser.wait_live(PATIENCE).await?;
    ensure!(
        state["undelivered"] == 0,
        "input was lost in the rolling restart: {state}"
    );
    // Nothing doubled: no marker's output is on the screen twice (older
    // ones may have scrolled off), and the last is there exactly once.
    let screen = browser.mirror_lines().await?;
    for line in &lines {
        let shown = screen.iter().filter(|l| *l == line).count();
        ensure!(
            shown <= 1,
            "{line} is shown {shown} times:\n{}",
            screen.join("\n")
        );
    }
    let last = lines.last().context("no line")?;
    ensure!(
        screen.iter().filter(|l| *l == last).count() == 1,
        "the last line typed is not on the screen exactly once"
    );
    // Every host serves; a new session goes to the least loaded, not
    // necessarily the one the page is on.
    let now = cluster.store.now().await?;
    for record in cluster.store.list_hosts().await? {
        ensure!(
            record.is_live(now) && !record.is_draining(),
            "{} does not serve after the rolling restart: {record:?}",
            record.id
        );
    }
    Ok(())
}

/// An operator's drain moves a host's sessions off it and lasts across the
/// host's restart; only the operator's `undrain` lifts it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operators_drain_survives_a_restart_until_lifted() -> Result<()> {
    let mut cluster = Cluster::start(ClusterOptions {
        hosts: 2,
        ..ClusterOptions::default()
    })
    .await?;
    let outcome = operator_drain(&mut cluster).await;
    if outcome.is_err() {
        eprintln!("{}", cluster.logs());
    }
    outcome
}

async fn operator_drain(cluster: &mut Cluster) -> Result<()> {
    let url = cluster.host("h1").context("h1")?.public_url.clone();
    let page = cluster.open_page_on(&url, SIZE).await?;
    page.wait_prompt(PATIENCE).await?;
    let line = format!("drained-{}", 6 * 7);
    page.run_expecting("echo drained-$((6*7))", &line, PATIENCE)
        .await?;
    cluster
        .wait_persisted(&page.session_id()?.to_string(), &line)
        .await?;

    let drained_at = tokio::time::Instant::now();
    cluster.directory_cli(&["host", "drain", "h1"])?;
    let code = page.wait_close_since(drained_at, PATIENCE).await?;
    ensure!(
        code == 1001 || code == 4008,
        "h1 did not send the page away: it closed with {code}"
    );
    page.wait_for(PATIENCE, "the page to move to h2", |p| {
        p.is_live() && p.host() == Some("h2")
    })
    .await?;
    assert_echoes(&mut &page).await?;
    let listed = cluster.directory_cli(&["host", "list"])?;
    ensure!(
        listed
            .lines()
            .any(|l| l.starts_with("h1\tlive\tdrain:operator")),
        "`directory host list` does not show the operator's drain:\n{listed}"
    );

    // Restarted, h1 is still drained: it is the operator's word, not its
    // process's.
    cluster.host_mut("h1")?.server.terminate()?;
    let status = cluster
        .host_mut("h1")?
        .server
        .wait_exit(Duration::from_secs(20))
        .await?;
    ensure!(status.success(), "h1 exited with {status}");
    cluster.restart_host("h1").await?;
    let port = cluster.host("h1").context("h1")?.server.port;
    wait_until(
        PATIENCE,
        "h1 to renew its lease after the restart",
        || async {
            let record = cluster.store.get_host("h1").await?.context("no record")?;
            let now = cluster.store.now().await?;
            Ok(if record.is_live(now) && !record.shutting_down {
                Ok(())
            } else {
                Err(format!("{record:?}"))
            })
        },
    )
    .await?;
    let body = health(port).await?;
    ensure!(
        body["status"] == "draining" && body["drain"] == "operator",
        "h1 forgot the operator's drain on restart: {body}"
    );
    for _ in 0..3 {
        let placed = cluster.open_page(SIZE);
        placed.wait_live(PATIENCE).await?;
        ensure!(
            placed.host().as_deref() == Some("h2"),
            "a new session went to drained h1"
        );
    }

    cluster.directory_cli(&["host", "undrain", "h1"])?;
    wait_until(PATIENCE, "h1 to serve again", || async {
        let body = health(port).await?;
        Ok(if body["status"] == "ok" && body["drain"].is_null() {
            Ok(())
        } else {
            Err(body.to_string())
        })
    })
    .await?;
    // h2 runs four sessions now, h1 none: the next goes to h1.
    let placed = cluster.open_page(SIZE);
    placed.wait_live(PATIENCE).await?;
    ensure!(
        placed.host().as_deref() == Some("h1"),
        "after undrain a new session went to {:?}",
        placed.host()
    );
    let listed = cluster.directory_cli(&["host", "list"])?;
    if !listed.lines().any(|l| l.starts_with("h1\tlive\tserving")) {
        bail!("`directory host list` after undrain:\n{listed}");
    }
    Ok(())
}
