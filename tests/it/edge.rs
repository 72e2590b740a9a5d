//! The edge against a careful attacker: no client can hold a server's
//! connections for free, and a sign-in that ends takes its terminals with
//! it. Real directory and host processes, real timeouts.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use directory_api::{Placement, PlacementRequest};
use tests::client::Client;
use tests::cluster::{Cluster, ClusterOptions, read_answer, request_body};
use tests::page::NativePage;
use tests::screen_text::ScreenText;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::{PATIENCE, SIZE};

/// `auth::serve::HEADER_READ_TIMEOUT`, as both servers run it.
const HEADER_DEADLINE: Duration = Duration::from_secs(10);

/// How a connection misbehaves.
#[derive(Clone, Copy, Debug)]
enum Slow {
    /// Sends a request line and one header byte every second, forever.
    Trickle,
    /// Opens the connection and says nothing.
    Silent,
    /// Asks one thing with keep-alive, then says nothing.
    IdleAfterAnswer,
}

/// How long the server at `port` took to close a connection that behaves
/// as `slow`; fails if it was still open well past the deadline.
async fn cut_after(port: u16, slow: Slow) -> Result<Duration> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).await?;
    let opened = Instant::now();
    match slow {
        Slow::Trickle => {
            stream
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: a\r\n")
                .await?
        }
        Slow::Silent => {}
        Slow::IdleAfterAnswer => {
            stream
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n")
                .await?
        }
    }
    let give_up = opened + HEADER_DEADLINE * 3;
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let tick = tokio::time::sleep(Duration::from_secs(1));
        tokio::select! {
            read = stream.read(&mut buf) => match read {
                Ok(0) | Err(_) => break,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            },
            () = tick => {
                ensure!(Instant::now() < give_up, "{slow:?}: still open after {:?}", opened.elapsed());
                if let Slow::Trickle = slow {
                    // The write fails once the server has hung up.
                    let _ = stream.write_all(b"X").await;
                }
            }
        }
    }
    let after = opened.elapsed();
    if let Slow::IdleAfterAnswer = slow {
        let answer = String::from_utf8_lossy(&answer);
        ensure!(
            answer.starts_with("HTTP/1.1 200"),
            "{slow:?}: the question was not answered: {answer}"
        );
    }
    Ok(after)
}

/// Slowloris: a request whose headers never end, a connection that never
/// speaks, and one left idle after its answer are each cut at the header
/// deadline by the directory and by a host, while a live terminal on that
/// host carries on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_connections_are_cut_at_the_deadline() -> Result<()> {
    if !tests::browser::e2e_enabled() {
        eprintln!(
            "slow_and_idle_connections_are_cut_at_the_deadline: skipped (cargo xtask test runs it)"
        );
        return Ok(());
    }
    let cluster = Cluster::start(ClusterOptions {
        hosts: 1,
        ..ClusterOptions::default()
    })
    .await?;
    let user = cluster.open_page(SIZE);
    user.wait_prompt(PATIENCE).await?;
    let host_port = cluster.hosts[0].server.port;
    let directory_port = cluster.directories[0].port;
    let mut probes = Vec::new();
    for (server, port) in [("directory", directory_port), ("host", host_port)] {
        for slow in [Slow::Trickle, Slow::Silent, Slow::IdleAfterAnswer] {
            probes.push(tokio::spawn(async move {
                (server, slow, cut_after(port, slow).await)
            }));
        }
    }
    for probe in probes {
        let (server, slow, after) = probe.await.context("a probe panicked")?;
        let after = after.with_context(|| format!("the {server}"))?;
        // Cut by the header deadline, not by something sooner.
        if after < HEADER_DEADLINE - Duration::from_secs(1) {
            bail!("the {server} cut {slow:?} after {after:?}, before the deadline");
        }
    }
    // The terminal on that host never noticed.
    user.run_expecting("echo still-$((40+2))", "still-42", PATIENCE)
        .await?;
    Ok(())
}

/// How a sign-in ends while its terminal is open.
#[derive(Clone, Copy, Debug)]
enum Ending {
    /// The user presses "sign out" (`POST /logout` with the cookie).
    SignOut,
    /// An operator sets a new password (`directory user reset`).
    PasswordReset,
    /// An operator disables the account (`directory user disable`).
    Disabled,
}

/// The hosts' default `--lease-ttl-ms` and `--renew-interval-ms`.
const LEASE_TTL: Duration = Duration::from_secs(5);
const RENEW_EVERY: Duration = Duration::from_secs(1);

/// `host_server::logins::RECHECK_INTERVAL`: how often hosts ask.
const RECHECK: Duration = Duration::from_secs(2);

/// Signing out and a password reset close the terminals of the sign-ins
/// they end with 4011, a disabled account with 4013, within a couple of
/// rechecks; the old ticket is refused from then on, other users'
/// terminals carry on, and a user who signs in again finds the session
/// still running.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_that_ends_closes_its_terminals() -> Result<()> {
    if !tests::browser::e2e_enabled() {
        eprintln!("a_sign_in_that_ends_closes_its_terminals: skipped (cargo xtask test runs it)");
        return Ok(());
    }
    let cluster = Cluster::start(ClusterOptions {
        hosts: 1,
        ..ClusterOptions::default()
    })
    .await?;
    let bystander = cluster.open_page(SIZE);
    bystander.wait_prompt(PATIENCE).await?;
    let password = tests::tickets::TEST_PASSWORD;
    for (name, ending) in [
        ("leaver", Ending::SignOut),
        ("forgetful", Ending::PasswordReset),
        ("banned", Ending::Disabled),
    ] {
        tests::tickets::ensure_account(cluster.store.as_ref(), name, password).await?;
        let cookie = cluster.sign_in(name, password).await?;
        let user = cluster.open_page_as(&cookie, SIZE);
        user.wait_prompt(PATIENCE).await?;
        user.run_expecting("echo before-$((20+1))", "before-21", PATIENCE)
            .await
            .with_context(|| format!("{name}: the terminal before {ending:?}"))?;

        let ended = Instant::now();
        let ended_at = tokio::time::Instant::now();
        match ending {
            Ending::SignOut => cluster
                .sign_out(&cookie)
                .await
                .with_context(|| format!("{name}: signing out"))?,
            Ending::PasswordReset => {
                cluster.directory_cli_with_input(
                    &["user", "reset", name],
                    "a brand new passphrase\n",
                )?;
            }
            Ending::Disabled => {
                cluster.directory_cli(&["user", "disable", name])?;
            }
        }
        let code = user
            .wait_close_since(ended_at, RECHECK * 4)
            .await
            .with_context(|| format!("{name}: the terminal after {ending:?}"))?;
        let after = ended.elapsed();
        let expected = match ending {
            Ending::Disabled => protocol::CloseCode::AccountDisabled,
            Ending::SignOut | Ending::PasswordReset => protocol::CloseCode::SignedOut,
        };
        ensure!(
            code == expected.code(),
            "{name}: closed with {code} after {ending:?}, not {}: {}",
            expected.code(),
            user.with_page(|p| p.describe())
        );
        eprintln!("{name}: {ending:?} closed the terminal after {after:?}");

        // The old ticket, still within its lifetime, opens nothing now.
        let again = replay_last_hello(&cluster, &user).await;
        let refused = again
            .as_ref()
            .err()
            .map(|error| format!("{error:#}"))
            .unwrap_or_default();
        ensure!(
            refused.contains("4001"),
            "{name}: the old ticket after {ending:?}: {:?}",
            again.map(|w| w.host)
        );

        if let Ending::SignOut = ending {
            // Signing out ends the sign-in, not the work: signed in again,
            // the same shell is there with what it printed.
            let cookie = cluster.sign_in(name, password).await?;
            user.set_cookie(&cookie);
            user.press_enter_to_reconnect();
            user.wait_screen(PATIENCE, "the earlier output", |s| s.has_line("before-21"))
                .await?;
            user.wait_prompt(PATIENCE).await?;
            user.run_expecting("echo back-$((30+3))", "back-33", PATIENCE)
                .await?;
        }
    }
    // Nobody else's terminal noticed.
    bystander
        .run_expecting("echo still-$((40+2))", "still-42", PATIENCE)
        .await?;
    let logs = cluster.logs();
    ensure!(
        logs.contains("closing a terminal whose sign-in ended"),
        "the host never said why it closed the terminals"
    );
    Ok(())
}

/// Presents the hello `page` last sent (its ticket, still within its
/// lifetime) again, on a raw socket to the host it went to: the welcome,
/// or the host's refusal.
async fn replay_last_hello(cluster: &Cluster, page: &NativePage) -> Result<protocol::Welcome> {
    let (hello, url) = page.with_page(|p| {
        (
            p.last_hello().cloned(),
            p.last_socket_url().map(str::to_owned),
        )
    });
    let hello = hello.context("the page never sent a hello")?;
    let url = url.context("the page never opened a socket")?;
    let mut client = Client::connect_with_origin(&url, &cluster.page_origin()).await?;
    client.handshake(&hello.ticket, hello.session, SIZE).await
}

/// Hosts earn their trust: with hosts enrolled, a process holding one
/// host's secret cannot take that host's id at another url nor register
/// an id of its own; a removed host loses its lease (and only it) past
/// every timeout while its live terminal carries on, and comes back only
/// with the secret of a new enrolment.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_an_enrolled_host_with_its_own_secret_holds_a_lease() -> Result<()> {
    if !tests::browser::e2e_enabled() {
        eprintln!(
            "only_an_enrolled_host_with_its_own_secret_holds_a_lease: skipped (cargo xtask test runs it)"
        );
        return Ok(());
    }
    let mut cluster = Cluster::start(ClusterOptions {
        hosts: 2,
        ..ClusterOptions::default()
    })
    .await?;
    let h1_url = cluster.host("h1").context("no h1")?.public_url.clone();
    let h1_secret = cluster.host_secret("h1").context("h1 was not enrolled")?;
    let user = cluster.open_page(SIZE);
    user.wait_prompt(PATIENCE).await?;

    // Impostors with h1's secret: as h1 at their own url, and as h9.
    let mut as_h1 = cluster.spawn_host_as("h1", Some(&h1_secret))?;
    let mut as_h9 = cluster.spawn_host_as("h9", Some(&h1_secret))?;
    let mut bare = cluster.spawn_host_as("h8", None)?;
    // What must not happen can only be shown by outlasting it: several
    // refused renewals and a whole lease of h1's.
    tokio::time::sleep(LEASE_TTL + RENEW_EVERY * 2).await;
    let h1 = cluster.store.get_host("h1").await?.context("h1 vanished")?;
    ensure!(h1.url == h1_url, "an impostor moved h1 to {}", h1.url);
    ensure!(
        h1.is_live(cluster.store.now().await?),
        "h1 lost its lease to an impostor"
    );
    for id in ["h9", "h8"] {
        ensure!(
            cluster.store.get_host(id).await?.is_none(),
            "{id} registered without an enrolment"
        );
    }
    for (impostor, what) in [
        (&as_h1, "another url"),
        (&as_h9, "another id"),
        (&bare, "no secret"),
    ] {
        ensure!(
            impostor
                .log_text()
                .contains("the store refused this host's lease"),
            "the impostor with {what} was not told it was refused:\n{}",
            impostor.log_text()
        );
    }
    for impostor in [&mut as_h1, &mut as_h9, &mut bare] {
        impostor.terminate()?;
    }

    // Revoking h1 ends its lease, and only its; its terminal carries on.
    let serving = user.host().context("the page has no host")?;
    cluster.directory_cli(&["host", "remove", &serving])?;
    // Past two whole leases: the removed host's renewals keep being refused.
    tokio::time::sleep(LEASE_TTL * 2 + RENEW_EVERY * 2).await;
    let now = cluster.store.now().await?;
    let revoked = cluster
        .store
        .get_host(&serving)
        .await?
        .context("host vanished")?;
    ensure!(
        !revoked.is_live(now),
        "{serving} still holds a lease after its removal"
    );
    let other = if serving == "h1" { "h2" } else { "h1" };
    let kept = cluster
        .store
        .get_host(other)
        .await?
        .context("other host vanished")?;
    ensure!(
        kept.is_live(now),
        "removing {serving} cost {other} its lease"
    );
    user.run_expecting("echo still-$((40+2))", "still-42", PATIENCE)
        .await?;

    // Enrolled again: the running process's old secret stays refused; a
    // restart with the new one takes the lease back.
    cluster.enrol_again(&serving)?;
    // Several renewals with the old secret, all refused.
    tokio::time::sleep(RENEW_EVERY * 3).await;
    let now = cluster.store.now().await?;
    ensure!(
        !cluster
            .store
            .get_host(&serving)
            .await?
            .context("host vanished")?
            .is_live(now),
        "the revoked secret renewed a lease"
    );
    cluster.host_mut(&serving)?.server.terminate()?;
    cluster
        .host_mut(&serving)?
        .server
        .wait_exit(Duration::from_secs(20))
        .await?;
    cluster.restart_host(&serving).await?;
    cluster.wait_hosts_live().await?;
    Ok(())
}

/// The session cap is exact: six tickets for new sessions, taken before
/// any is used and then used all at once, start exactly the three the
/// directory's cap allows; the others are refused with 4012, and the
/// store holds three running sessions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_session_cap_holds_however_many_tickets_are_taken() -> Result<()> {
    if !tests::browser::e2e_enabled() {
        eprintln!(
            "the_session_cap_holds_however_many_tickets_are_taken: skipped (cargo xtask test runs it)"
        );
        return Ok(());
    }
    const CAP: usize = 3;
    let cluster = Cluster::start(ClusterOptions {
        hosts: 2,
        directory_args: vec!["--max-sessions-per-user".into(), CAP.to_string()],
        ..ClusterOptions::default()
    })
    .await?;
    let mut tickets = Vec::new();
    for _ in 0..2 * CAP {
        let new = PlacementRequest {
            new: true,
            ..PlacementRequest::default()
        };
        let (status, answer) = cluster
            .ask_directory("POST", "/v1/placement", Some(&request_body(&new)?))
            .await?;
        tickets.push(read_answer::<Placement>(status, &answer)?);
    }
    let cluster = &cluster;
    let attempts = tickets
        .iter()
        .map(|answer| async move { cluster.attach_with_answer(answer, SIZE).await });
    let results = futures_util::future::join_all(attempts).await;
    let mut started = Vec::new();
    let mut refused = 0;
    for result in results {
        match result {
            Ok(client) => started.push(client),
            Err(error) => {
                let text = format!("{error:#}");
                ensure!(
                    text.contains("4012"),
                    "a refusal other than the cap: {text}\n{}",
                    cluster.logs()
                );
                refused += 1;
            }
        }
    }
    ensure!(
        started.len() == CAP && refused == CAP,
        "{} started and {refused} refused under a cap of {CAP}",
        started.len()
    );
    let running = cluster
        .store
        .list_sessions(Some(tests::tickets::TEST_USER))
        .await?
        .into_iter()
        .filter(|s| s.state == store::SessionState::Running)
        .count();
    ensure!(running == CAP, "the store holds {running} running sessions");
    for client in &mut started {
        client
            .run_expecting("echo ok-$((6*7))", "ok-42", PATIENCE)
            .await?;
    }
    Ok(())
}

/// Sign-in cannot be used to burn the directory: wrong passwords from a
/// thousand addresses at once get 401 while the two password threads keep
/// up and 503 with Retry-After past their queue, never another 5xx, and
/// the directory's memory stays within a few hashes' worth.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_wrong_passwords_is_turned_away_not_queued() -> Result<()> {
    if !tests::browser::e2e_enabled() {
        eprintln!(
            "a_flood_of_wrong_passwords_is_turned_away_not_queued: skipped (cargo xtask test runs it)"
        );
        return Ok(());
    }
    let cluster = Cluster::start(ClusterOptions {
        hosts: 1,
        directory_args: vec!["--trusted-proxy".into(), "127.0.0.1".into()],
        ..ClusterOptions::default()
    })
    .await?;
    let flood = tests::flood::wrong_passwords(&cluster, 400, 64).await?;
    eprintln!("{flood:?}");
    ensure!(
        flood.broken.is_empty(),
        "answers outside 401/429/503: {:?}",
        flood.broken
    );
    ensure!(flood.refused > 0, "no password was checked: {flood:?}");
    ensure!(
        flood.busy > 0,
        "64 at once never filled the password queue: {flood:?}"
    );
    // Two argon2 hashes at 19 MiB each, and slack for 64 connections.
    let grew_kib = flood.rss_peak_kib.saturating_sub(flood.rss_before_kib);
    ensure!(
        grew_kib < 80 * 1024,
        "the directory grew by {} MiB under the flood",
        grew_kib / 1024
    );
    // And it still signs the right user in.
    cluster
        .sign_in(tests::tickets::TEST_USER, tests::tickets::TEST_PASSWORD)
        .await?;
    Ok(())
}
