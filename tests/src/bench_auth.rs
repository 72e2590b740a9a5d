//! `cargo xtask bench auth`: what authentication costs.
//!
//! - Sign-ins per second on one core: argon2id verification is the whole
//!   cost of a sign-in by design, so it is timed on one thread in-process,
//!   with the parameters the directory uses.
//! - Ticket verifications per second on one core: what every WebSocket
//!   admission pays on a host.
//! - The latency authentication adds to a reconnect: a real cluster, a
//!   socket reopened to the same host with the ticket the shipping client
//!   was given. Reconnects with a cached ticket pay the host's checks
//!   (signature and the sign-in lookup in the store); the table shows those
//!   checks timed alone next to the whole reconnect, and a reconnect that
//!   first fetches a new ticket from the directory (what the page does
//!   once its ticket is old). The page itself adds its backoff before a
//!   reconnect; `bench failover` measures that whole path.
//! - A flood of 1,000 wrong passwords from as many addresses: password
//!   checks per second with the bounded pool saturated, how many were
//!   turned away with 503, and the directory's peak RSS.
//! - Sign-out to close: how long a live terminal outlives its sign-out
//!   (hosts recheck every 2 s).

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use auth::ticket::{TicketVerifier, now_ms};
use protocol::Size;

use crate::Figure;
use crate::client::Client;
use crate::cluster::{Cluster, ClusterOptions};
use crate::percentile;
use crate::tickets::{self, Grant, TEST_USER};

const SIZE: Size = Size { cols: 80, rows: 24 };
/// How long each in-process loop runs.
const LOOP_TIME: Duration = Duration::from_secs(3);
const RECONNECTS: usize = 200;

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Calls `f` on this thread for about `LOOP_TIME`; returns calls per second.
fn per_second(mut f: impl FnMut()) -> f64 {
    let started = Instant::now();
    let mut n = 0u64;
    while started.elapsed() < LOOP_TIME {
        f();
        n += 1;
    }
    n as f64 / started.elapsed().as_secs_f64()
}

pub async fn auth(progress: &dyn Fn(&str), figures: &mut Vec<Figure>) -> Result<()> {
    progress("auth: argon2id verifications on one thread");
    let hash = auth::password::hash("a benchmark password").context("hashing")?;
    let logins = tokio::task::spawn_blocking(move || {
        per_second(|| {
            assert!(auth::password::verify("a benchmark password", &hash));
        })
    })
    .await?;
    figures.push(Figure {
        what: "Sign-ins per second, one core (argon2id verify)".into(),
        measured: format!("{logins:.1}/s ({:.1} ms each)", 1000.0 / logins),
        target: "slow on purpose; rate limited per user and address",
        met: None,
    });

    progress("auth: ticket verifications on one thread");
    let grant = Grant {
        user: TEST_USER.into(),
        session: tickets::new_session_id(),
        host: "h1".into(),
        epoch: 3,
        login: [7; 32],
    };
    let ticket = grant.ticket();
    let verifier = TicketVerifier::new(vec![tickets::signer().public_key()]);
    let verifications = tokio::task::spawn_blocking(move || {
        per_second(|| {
            let now = now_ms();
            assert!(verifier.verify(&ticket, now).is_ok());
        })
    })
    .await?;
    figures.push(Figure {
        what: "Ticket verifications per second, one core".into(),
        measured: format!("{verifications:.0}/s ({:.1} µs each)", 1e6 / verifications),
        target: "—",
        met: None,
    });

    progress("auth: a cluster for reconnects");
    let cluster = Cluster::start(ClusterOptions {
        hosts: 1,
        // The flood below comes from many addresses, through "a proxy".
        directory_args: vec!["--trusted-proxy".into(), "127.0.0.1".into()],
        ..ClusterOptions::default()
    })
    .await?;
    let login = cluster.login_id()?;
    let login_hex: String = login.iter().map(|b| format!("{b:02x}")).collect();
    let mut lookups = Vec::with_capacity(RECONNECTS);
    for _ in 0..RECONNECTS {
        let started = Instant::now();
        let found = cluster.store.get_login(&login_hex).await?;
        lookups.push(started.elapsed());
        ensure!(found.is_some(), "the benchmark's sign-in vanished");
    }
    lookups.sort();

    // The page places a session and presents its ticket; its socket url
    // and hello are what a reconnect of its would send again.
    let page = cluster.open_page(SIZE);
    page.wait_prompt(Duration::from_secs(20)).await?;
    let (hello, url) = page.with_page(|p| {
        (
            p.last_hello().cloned(),
            p.last_socket_url().map(str::to_owned),
        )
    });
    drop(page);
    let hello = hello.context("the page sent no hello")?;
    let url = url.context("the page opened no socket")?;
    let origin = cluster.page_origin();
    let mut cached = Vec::with_capacity(RECONNECTS);
    // Each new socket replaces the last, as a reconnect does.
    let mut previous: Option<Client> = None;
    for _ in 0..RECONNECTS {
        let started = Instant::now();
        let mut client = Client::connect_with_origin(&url, &origin).await?;
        client.handshake(&hello.ticket, hello.session, SIZE).await?;
        cached.push(started.elapsed());
        drop(previous.replace(client));
    }
    cached.sort();
    let mut refreshed = Vec::with_capacity(RECONNECTS / 4);
    let again = crate::cluster::request_body(&directory_api::PlacementRequest {
        session: Some(hello.session),
        new: false,
    })?;
    for _ in 0..RECONNECTS / 4 {
        let started = Instant::now();
        let (status, answer) = cluster
            .ask_directory("POST", "/v1/placement", Some(&again))
            .await?;
        let placed = crate::cluster::read_answer(status, &answer)?;
        let client = cluster.attach_with_answer(&placed, SIZE).await?;
        refreshed.push(started.elapsed());
        drop(previous.replace(client));
    }
    // The last socket closes here, before the flood.
    drop(previous);
    refreshed.sort();
    let check = Duration::from_secs_f64(1.0 / verifications) + percentile(&lookups, 50.0);
    figures.push(Figure {
        what: "Reconnect to the same host, cached ticket".into(),
        measured: format!(
            "p50 {:.2} ms, p99 {:.2} ms (n={RECONNECTS})",
            ms(percentile(&cached, 50.0)),
            ms(percentile(&cached, 99.0))
        ),
        target: "p99 ≤ 300 ms",
        met: Some(percentile(&cached, 99.0) <= Duration::from_millis(300)),
    });
    figures.push(Figure {
        what: "  of which the host's ticket checks (verify + sign-in lookup)".into(),
        measured: format!(
            "{:.3} ms (lookup p50 {:.3} ms, p99 {:.3} ms)",
            ms(check),
            ms(percentile(&lookups, 50.0)),
            ms(percentile(&lookups, 99.0))
        ),
        target: "—",
        met: None,
    });
    figures.push(Figure {
        what: "Reconnect with a new ticket from the directory".into(),
        measured: format!(
            "p50 {:.2} ms, p99 {:.2} ms (n={})",
            ms(percentile(&refreshed, 50.0)),
            ms(percentile(&refreshed, 99.0)),
            refreshed.len()
        ),
        target: "p99 ≤ 300 ms",
        met: Some(percentile(&refreshed, 99.0) <= Duration::from_millis(300)),
    });

    progress("auth: 1,000 wrong passwords from 1,000 addresses, 64 at a time");
    let flood = crate::flood::wrong_passwords(&cluster, FLOOD, 64).await?;
    ensure!(
        flood.broken.is_empty(),
        "the flood got answers outside 401/429/503: {:?}",
        flood.broken
    );
    figures.push(Figure {
        what: "Sign-ins checked per second, pool saturated (2 threads)".into(),
        measured: format!(
            "{:.1}/s; of {FLOOD}: {} checked, {} turned away (503), {} limited",
            flood.checks_per_second(),
            flood.refused,
            flood.busy,
            flood.limited
        ),
        target: "503 with Retry-After past the queue, never more memory",
        met: None,
    });
    let grew = flood.rss_peak_kib.saturating_sub(flood.rss_before_kib);
    figures.push(Figure {
        what: "Directory RSS under the flood".into(),
        measured: format!(
            "{:.1} → peak {:.1} MB (+{:.1} MB)",
            flood.rss_before_kib as f64 / 1024.0,
            flood.rss_peak_kib as f64 / 1024.0,
            grew as f64 / 1024.0
        ),
        target: "flat: at most two hashes (2 × 19 MiB)",
        met: Some(grew <= 2 * 19 * 1024 + 16 * 1024),
    });

    progress("auth: sign-out to the terminal's close");
    let mut closes = Vec::with_capacity(SIGN_OUTS);
    for n in 0..SIGN_OUTS {
        let user = format!("leaver{n}");
        tickets::ensure_account(cluster.store.as_ref(), &user, tickets::TEST_PASSWORD).await?;
        let cookie = cluster.sign_in(&user, tickets::TEST_PASSWORD).await?;
        let page = cluster.open_page_as(&cookie, SIZE);
        page.wait_prompt(Duration::from_secs(20)).await?;
        let started = tokio::time::Instant::now();
        cluster.sign_out(&cookie).await?;
        let code = page
            .wait_close_since(started, Duration::from_secs(20))
            .await?;
        let closed_at = page.with_page(|p| {
            p.events_since(started)
                .find(|(_, e)| matches!(e, crate::page::PageEvent::Closed(_)))
                .map(|(at, _)| *at)
        });
        closes.push(closed_at.context("the close vanished")? - started);
        ensure!(
            code == protocol::CloseCode::SignedOut.code(),
            "closed with {code}, not 4011"
        );
    }
    closes.sort();
    figures.push(Figure {
        what: "Sign-out to the open terminal's close (4011)".into(),
        measured: format!(
            "p50 {:.0} ms, p99 {:.0} ms (n={SIGN_OUTS})",
            ms(percentile(&closes, 50.0)),
            ms(percentile(&closes, 99.0))
        ),
        target: "within a few seconds (recheck every 2 s)",
        met: Some(percentile(&closes, 99.0) <= Duration::from_secs(5)),
    });
    Ok(())
}

/// Wrong passwords in the flood.
const FLOOD: usize = 1000;
/// Sign-outs timed.
const SIGN_OUTS: usize = 20;
