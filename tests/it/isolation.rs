//! Every account in a sandbox of its own: real hosts, real uids, real
//! cgroups. alice tries what a hostile user would; bob must not notice.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use protocol::Size;
use tests::client::Client;
use tests::cluster::{Cluster, ClusterOptions};
use tests::host::{HostOptions, HostProcess};
use tests::page::NativePage;
use tests::screen_text::{ScreenText, Terminal};
use tests::tickets;

use crate::PATIENCE;

/// Tall enough that each probe's output fits on one screen.
const TALL: Size = Size {
    cols: 100,
    rows: 40,
};

/// Clears the screen, runs `command` and returns what it printed (the
/// screen up to the end marker).
async fn sh(terminal: &mut impl Terminal, command: &str) -> Result<String> {
    let marker = tests::unique_marker("done");
    terminal
        .keys(&format!("clear; {command}; echo {marker}\r"))
        .await?;
    terminal
        .screen_until(PATIENCE, &format!("`{command}` to finish"), |s| {
            s.has_line(&marker)
        })
        .await?;
    Ok(terminal.screen_text())
}

/// Whether `token` (say `U=200000`) was printed as a word of its own.
fn has_token(text: &str, token: &str) -> bool {
    text.lines()
        .filter(|l| !l.contains("; echo "))
        .any(|l| l.split_whitespace().any(|w| w == token))
}

async fn cluster(test: &str, hosts: usize, host_args: &[&str]) -> Result<Option<Cluster>> {
    if !tests::browser::e2e_enabled() {
        eprintln!("{test}: skipped (cargo xtask test runs it)");
        return Ok(None);
    }
    let cluster = Cluster::start(ClusterOptions {
        hosts,
        host_args: host_args.iter().map(|a| a.to_string()).collect(),
        ..ClusterOptions::default()
    })
    .await?;
    for user in ["alice", "bob"] {
        tickets::ensure_account(cluster.store.as_ref(), user, tickets::TEST_PASSWORD).await?;
    }
    Ok(Some(cluster))
}

async fn place(cluster: &Cluster, user: &str) -> Result<NativePage> {
    let cookie = cluster.sign_in(user, tickets::TEST_PASSWORD).await?;
    let placed = cluster.open_page_as(&cookie, TALL);
    placed
        .wait_prompt(PATIENCE)
        .await
        .with_context(|| format!("{user}'s prompt"))?;
    Ok(placed)
}

async fn uid_of(cluster: &Cluster, user: &str) -> Result<u32> {
    let identities = cluster.store.list_unix_identities().await?;
    identities
        .into_iter()
        .find(|(name, _)| name == user)
        .map(|(_, identity)| identity.uid)
        .with_context(|| format!("the store gave {user} no Unix identity"))
}

/// Host pids of processes whose command line contains `needle`.
fn host_processes(needle: &str) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .map(|c| {
                    String::from_utf8_lossy(&c)
                        .replace('\0', " ")
                        .contains(needle)
                })
                .unwrap_or(false)
        })
        .collect()
}

/// alice and bob on one host, then alice after a failover: her own uid
/// everywhere, her files keep their owner, and nothing of bob, the host,
/// the store or the keys is within her reach.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accounts_cannot_reach_each_other_or_the_host() -> Result<()> {
    let Some(mut cluster) = cluster("accounts_cannot_reach_each_other_or_the_host", 1, &[]).await?
    else {
        return Ok(());
    };
    let bob = place(&cluster, "bob").await?;
    let alice = place(&cluster, "alice").await?;
    ensure!(alice.host() == bob.host(), "one host, both users");
    let alice_uid = uid_of(&cluster, "alice").await?;
    let bob_uid = uid_of(&cluster, "bob").await?;
    ensure!(alice_uid != bob_uid && alice_uid != 0 && bob_uid != 0);

    // bob leaves a process and a file for alice to go after.
    let bob_says = sh(
        &mut &bob,
        "echo secret > ~/diary; sleep 4242 & echo U=$(id -u)",
    )
    .await?;
    ensure!(has_token(&bob_says, &format!("U={bob_uid}")), "{bob_says}");
    // The shell has forked the sleep when it echoes, but the child may
    // not have exec'd it yet (its command line is still the shell's).
    let bob_sleep = tests::wait_until(
        Duration::from_secs(10),
        "bob's sleep running on the host",
        || async {
            Ok(match host_processes("sleep 4242").first() {
                Some(pid) => Ok(*pid),
                None => Err("no `sleep 4242` in /proc".to_owned()),
            })
        },
    )
    .await?;

    let said = sh(
        &mut &alice,
        "echo hers > ~/mine; echo U=$(id -u) O=$(stat -c %u ~/mine) N=$(id -un) T=$(tty)",
    )
    .await?;
    ensure!(has_token(&said, &format!("U={alice_uid}")), "{said}");
    ensure!(
        has_token(&said, &format!("O={alice_uid}")),
        "her file is hers: {said}"
    );
    ensure!(has_token(&said, "N=alice"), "her name resolves: {said}");
    ensure!(
        has_token(&said, "T=/dev/console"),
        "tty names her terminal: {said}"
    );

    let home_root = cluster.home_root();
    let host_pid = cluster
        .host(&alice.host().context("alice's page has no host")?)
        .context("alice's host")?
        .server
        .pid();
    let store_file = home_root
        .parent()
        .context("the cluster's root")?
        .join("store.sqlite");
    let targets = [
        home_root.join("bob"),
        home_root.join("bob/diary"),
        store_file,
        format!("/proc/{host_pid}/environ").into(),
        format!("/proc/{bob_sleep}/environ").into(),
    ];
    let probe: Vec<String> = targets
        .iter()
        .map(|t| format!("'{}'", t.display()))
        .collect();
    let said = sh(
        &mut &alice,
        &format!(
            "for p in {}; do if cat \"$p\" >/dev/null 2>&1 || ls \"$p\" >/dev/null 2>&1; then echo \"LEAK $p\"; fi; done",
            probe.join(" ")
        ),
    )
    .await?;
    ensure!(
        !said.lines().any(|l| l.starts_with("LEAK ")),
        "alice reached: {said}"
    );
    // Of the shared home root she sees her own home, nothing else.
    let said = sh(
        &mut &alice,
        &format!("echo HOMES=$(ls -A '{}' | tr '\\n' ,)", home_root.display()),
    )
    .await?;
    ensure!(has_token(&said, "HOMES=alice,"), "{said}");

    // No other terminal, process or signal target is in her world.
    let said = sh(
        &mut &alice,
        &format!(
            "echo PTS=$(ls /dev/pts | grep -vc ptmx) MASTERS=$(ls -l /proc/[0-9]*/fd 2>/dev/null | grep -c ptmx) SLEEPS=$(ps -eo args | grep -c 'sleep 424[2]') HOSTS=$(ps -eo args | grep -c 'host-serve[r]') PIDS=$(ps -e --no-headers | wc -l); kill -9 {bob_sleep} 2>/dev/null; echo KILL=$?"
        ),
    )
    .await?;
    // MASTERS: no process of hers holds a PTY's controlling side (the host
    // keeps a second descriptor of it to read the terminal's settings).
    for token in ["PTS=0", "MASTERS=0", "SLEEPS=0", "HOSTS=0", "KILL=1"] {
        ensure!(has_token(&said, token), "expected {token}: {said}");
    }
    ensure!(
        Path::new(&format!("/proc/{bob_sleep}")).exists(),
        "bob's sleep survived alice"
    );

    // The terminal still behaves as one: job control, vim, less, tmux;
    // and an orphan is reaped by the shell, PID 1 of the sandbox (no
    // zombie left in its /proc).
    let said = sh(
        &mut &alice,
        "sleep 300 & jobs; kill %1; wait; vim -es -c 'q'; echo VIM=$?; echo x | less -F; echo LESS=$?; tmux -L t new-session -d 'sleep 5' && tmux -L t ls >/dev/null; echo TMUX=$?; tmux -L t kill-server; (sleep 0.2 &); sleep 1; echo ZOMBIES=$(cat /proc/[0-9]*/stat 2>/dev/null | awk '$3 == \"Z\"' | wc -l) INIT=$(cat /proc/1/comm)",
    )
    .await?;
    for token in ["VIM=0", "LESS=0", "TMUX=0", "ZOMBIES=0", "INIT=bash"] {
        ensure!(has_token(&said, token), "expected {token}: {said}");
    }
    ensure!(said.contains("sleep 300"), "jobs lists the job: {said}");

    // alice's host dies; on the next one she is still alice, and so are
    // her files.
    cluster.start_host(None)?;
    cluster.wait_hosts_live().await?;
    let lost = alice.host().context("alice's page has no host")?;
    cluster.host_mut(&lost)?.server.kill9()?;
    alice
        .wait_for(
            Duration::from_secs(60),
            "alice's page on another host",
            |p| p.is_live() && p.host() != Some(lost.as_str()),
        )
        .await?;
    alice.wait_prompt(PATIENCE).await?;
    ensure!(
        alice.host().as_deref() != Some(lost.as_str()),
        "alice moved to another host"
    );
    let said = sh(
        &mut &alice,
        "echo U=$(id -u) O=$(stat -c %u ~/mine) C=$(cat ~/mine)",
    )
    .await?;
    for token in [
        format!("U={alice_uid}"),
        format!("O={alice_uid}"),
        "C=hers".into(),
    ] {
        ensure!(
            has_token(&said, &token),
            "after the move, expected {token}: {said}"
        );
    }
    let meta = std::fs::metadata(home_root.join("alice/mine"))?;
    ensure!(std::os::unix::fs::MetadataExt::uid(&meta) == alice_uid);
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(home_root.join("bob"))?.permissions(),
    );
    ensure!(mode & 0o777 == 0o700, "bob's home is {mode:o}");
    Ok(())
}

/// A fork loop stops at alice's pids limit and a memory hog dies at her
/// memory limit, while bob's session keeps answering; when her session
/// ends, what she `setsid`-ed away ends with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_hold_and_nothing_outlives_its_session() -> Result<()> {
    let Some(cluster) = cluster(
        "limits_hold_and_nothing_outlives_its_session",
        1,
        &["--session-pids=40", "--session-memory=64M"],
    )
    .await?
    else {
        return Ok(());
    };
    let bob = place(&cluster, "bob").await?;
    let alice = place(&cluster, "alice").await?;

    // 100 sleeps at once cannot all start under a limit of 40.
    alice.type_str(
        "clear; sh -c 'for i in $(seq 100); do sleep 2 & done; wait' 2>/dev/null; echo FORKED\r",
    )?;
    let said = sh(&mut &bob, "echo bob-answers").await?;
    ensure!(said.lines().any(|l| l.trim() == "bob-answers"));
    alice
        .wait_screen(PATIENCE, "the fork loop to end", |s| s.has_line("FORKED"))
        .await?;
    let said = sh(
        &mut &alice,
        "head -c 300M /dev/zero | tail > /dev/null; echo HOG=$?",
    )
    .await?;
    ensure!(
        has_token(&said, "HOG=137"),
        "the hog was not killed: {said}"
    );
    let said = sh(&mut &bob, "echo bob-still-answers").await?;
    ensure!(said.lines().any(|l| l.trim() == "bob-still-answers"));

    // The limits were hit (read from the host's side of alice's cgroups).
    let events = cgroup_files(&alice.session_id()?.to_string(), "pids.events");
    ensure!(
        events
            .iter()
            .any(|text| text.lines().any(|l| l.starts_with("max ") && l != "max 0")),
        "alice's pids limit was never reached: {events:?}"
    );

    sh(
        &mut &alice,
        "setsid nohup sleep 4343 >/dev/null 2>&1 < /dev/null & disown",
    )
    .await?;
    let deadline = Instant::now() + PATIENCE;
    while host_processes("sleep 4343").is_empty() {
        ensure!(Instant::now() < deadline, "the escapee never started");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    alice.type_str("exit\r")?;
    let deadline = Instant::now() + PATIENCE;
    while !host_processes("sleep 4343").is_empty() {
        if Instant::now() > deadline {
            bail!("`setsid nohup sleep` outlived alice's session");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let said = sh(&mut &bob, "echo bob-after").await?;
    ensure!(said.lines().any(|l| l.trim() == "bob-after"));
    Ok(())
}

/// The contents of `file` in every cgroup named after `session`.
fn cgroup_files(session: &str, file: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![std::path::PathBuf::from("/sys/fs/cgroup/pids")];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if !path.is_dir() {
                continue;
            }
            if entry.file_name().to_string_lossy() == session {
                if let Ok(text) = std::fs::read_to_string(path.join(file)) {
                    found.push(text);
                }
            } else if entry.file_name().to_string_lossy().starts_with("thinline-")
                || dir.ends_with("pids")
            {
                stack.push(path);
            }
        }
    }
    found
}

/// Nothing of the host's environment reaches a session: a canary set
/// for the host is absent from the shell's environment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_hosts_environment_stays_off_the_user_plane() -> Result<()> {
    if !tests::browser::e2e_enabled() {
        return Ok(());
    }
    let mut options = HostOptions::bash();
    options
        .env
        .push(("CANARY_SECRET".into(), "canary-3f1c".into()));
    let host = HostProcess::start(options)?;
    let mut client = Client::attach(&host, None, TALL).await?;
    client
        .wait_for(PATIENCE, "the prompt", |s| s.at_prompt())
        .await?;
    let said = sh(&mut client, "env | grep -c canary-3f1c; echo HOME=$HOME").await?;
    ensure!(
        has_token(&said, "0"),
        "the canary reached the session: {said}"
    );
    Ok(())
}

/// The uid an unprivileged host runs as in
/// [`an_unprivileged_host_still_isolates`]: no account on the machine has it.
const UNPRIVILEGED_UID: u32 = 64_123;

/// A host not started as root (a laptop, a rootless container) falls back
/// to `shared-uid`: every account runs as the host's uid outside its
/// sandbox, and says so, yet alice still cannot see the host's store, its
/// processes, bob's home or the host's environment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unprivileged_host_still_isolates() -> Result<()> {
    if !tests::browser::e2e_enabled() {
        eprintln!("an_unprivileged_host_still_isolates: skipped (cargo xtask test runs it)");
        return Ok(());
    }
    use std::os::unix::fs::PermissionsExt;
    let state = tempfile::Builder::new()
        .prefix("thinline-unprivileged-")
        .tempdir()?;
    std::os::unix::fs::chown(state.path(), Some(UNPRIVILEGED_UID), Some(UNPRIVILEGED_UID))?;
    std::fs::set_permissions(state.path(), std::fs::Permissions::from_mode(0o700))?;
    let db = state.path().join("store.sqlite");
    let homes = state.path().join("homes");
    let mut options = HostOptions::bash();
    options.host_id = "unprivileged".into();
    options.run_as = Some(UNPRIVILEGED_UID);
    options.env.extend([
        (
            "THINLINE_STORE".to_string(),
            format!("sqlite:{}", db.display()),
        ),
        (
            "THINLINE_HOME_ROOT".to_string(),
            homes.display().to_string(),
        ),
        ("CANARY_SECRET".to_string(), "canary-77d2".to_string()),
    ]);
    options.flags.extend([
        "--runtime-dir".to_string(),
        state.path().join("run").display().to_string(),
    ]);
    let host = HostProcess::start(options)?;

    let health: serde_json::Value =
        serde_json::from_str(&tests::http::get(host.port, "/healthz").await?.body)?;
    ensure!(
        health["isolation"] == "shared-uid",
        "an unprivileged host should run shared-uid: {health}"
    );
    ensure!(
        host.log_text()
            .contains("every account runs as this host's uid"),
        "the host did not warn that accounts share its uid:\n{}",
        host.log_text()
    );

    // The host made the store; the harness opens it only now, so every
    // file of it stays the host's.
    let store = store::SqliteStore::open(&db).await?;
    let mut bob = {
        let session = tickets::new_session_id();
        let grant = tickets::Grant {
            user: "bob".into(),
            session,
            host: host.host_id.clone(),
            epoch: 1,
            login: tickets::sign_in(&store, "bob").await?,
        };
        let mut client = Client::connect(&host).await?;
        client.handshake(&grant.ticket(), session, TALL).await?;
        client
            .wait_for(PATIENCE, "bob's prompt", |s| s.at_prompt())
            .await?;
        client
    };
    sh(&mut bob, "echo secret > ~/diary; sleep 4545 & true").await?;
    let mut alice = Client::attach(&host, None, TALL).await?;
    alice
        .wait_for(PATIENCE, "alice's prompt", |s| s.at_prompt())
        .await?;

    let targets = [
        db.display().to_string(),
        homes.join("bob/diary").display().to_string(),
        format!("/proc/{}/environ", host.pid()),
    ];
    let probe: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
    let said = sh(
        &mut alice,
        &format!(
            "for p in {}; do if cat \"$p\" >/dev/null 2>&1 || ls \"$p\" >/dev/null 2>&1; then echo \"LEAK $p\"; fi; done; echo U=$(id -u)",
            probe.join(" ")
        ),
    )
    .await?;
    ensure!(
        !said.lines().any(|l| l.starts_with("LEAK ")),
        "alice reached: {said}"
    );
    ensure!(
        has_token(&said, &format!("U={UNPRIVILEGED_UID}")),
        "shared-uid runs alice as the host's uid: {said}"
    );
    let said = sh(
        &mut alice,
        &format!(
            "echo HOMES=$(ls -A '{}' | tr '\\n' ,) SLEEPS=$(ps -eo args | grep -c 'sleep 454[5]') HOSTS=$(ps -eo args | grep -c 'host-serve[r]') CANARY=$(env | grep -c canary-77d2)",
            homes.display()
        ),
    )
    .await?;
    for token in ["HOMES=alice,", "SLEEPS=0", "HOSTS=0", "CANARY=0"] {
        ensure!(has_token(&said, token), "expected {token}: {said}");
    }
    let bob_says = sh(&mut bob, "cat ~/diary").await?;
    ensure!(bob_says.lines().any(|l| l.trim() == "secret"), "{bob_says}");
    Ok(())
}

/// What a shell can dial on loopback: `NAME=open` or `NAME=closed` for
/// each of `targets` (a name and a port on 127.0.0.1).
async fn dial(page: &NativePage, targets: &[(&str, u16)]) -> Result<String> {
    let probes: Vec<String> = targets
        .iter()
        .map(|(name, port)| {
            format!("(exec 3<>/dev/tcp/127.0.0.1/{port}) 2>/dev/null && echo {name}=open || echo {name}=closed")
        })
        .collect();
    sh(&mut &*page, &probes.join("; ")).await
}

/// The store and the control plane are services on the network. A host
/// run with `--session-network none` (as the README tells deployments whose
/// store or control plane hosts can reach) leaves a shell no way to the
/// PostgreSQL store, its own host or the directory; with the default, the
/// host's network, the same probe does reach them, so the flag is what
/// closes them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sandbox_without_network_dials_no_service() -> Result<()> {
    let test = "a_sandbox_without_network_dials_no_service";
    for (args, expected) in [
        (&["--session-network", "none"][..], "closed"),
        (&[][..], "open"),
    ] {
        let Some(cluster) = cluster(test, 1, args).await? else {
            return Ok(());
        };
        let alice = place(&cluster, "alice").await?;
        let host = alice.host().context("alice's page has no host")?;
        let targets = [
            ("STORE", 5432),
            (
                "HOST",
                cluster.host(&host).context("alice's host")?.server.port,
            ),
            ("DIRECTORY", cluster.directories[0].port),
        ];
        let said = dial(&alice, &targets).await?;
        for (name, _) in targets {
            // The machine's PostgreSQL is the store only where it runs.
            if name == "STORE" && expected == "open" && !postgres_listens() {
                continue;
            }
            let token = format!("{name}={expected}");
            ensure!(
                has_token(&said, &token),
                "with {args:?}, expected {token}: {said}"
            );
        }
    }
    Ok(())
}

/// Whether PostgreSQL answers on 127.0.0.1:5432 here.
fn postgres_listens() -> bool {
    std::net::TcpStream::connect(("127.0.0.1", 5432)).is_ok()
}
