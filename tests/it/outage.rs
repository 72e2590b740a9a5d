//! The store goes away and comes back: live sessions must not notice, the
//! host must say it is degraded, and the state must catch up afterwards
//! (DESIGN.md, promise 4).
//!
//! PostgreSQL is shared by every test on the machine, so it is never
//! stopped; instead each test gets a fresh database and reaches it through
//! a [`FaultProxy`], which breaks the path the way a network or a database
//! failover does: every live connection cut, and new ones refused (a server
//! that is down) or black-holed (a silent partition). What the test reads
//! back it reads from the real server, not through the proxy.
//!
//! The connection to the host is never touched: live typing must not
//! depend on the store at all.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use sqlx::Connection;
use sqlx::postgres::PgConnection;
use store::{PgStore, Store};
use tests::client::Client;
use tests::host::{HostOptions, HostProcess};
use tests::http;
use tests::pg::{FreshDatabase, database_url};
use tests::proxy::{FaultProxy, NewConnections};
use tests::screen_text::ScreenText;
use tests::{unique_marker, wait_until};

use crate::{PATIENCE, attach_at_prompt};

/// How long one command may take to echo while the store is down. Far
/// above a healthy echo (about a millisecond) and far below the time a
/// session that waited on its store would take (the pool gives up on a
/// connection after 5 s, a black-holed query never).
const ECHO_DURING_OUTAGE: Duration = Duration::from_secs(5);

/// Commands typed while the store is unreachable.
const OUTAGE_COMMANDS: usize = 5;

async fn health(host: &HostProcess) -> Result<serde_json::Value> {
    let response = http::get(host.port, "/healthz").await?;
    serde_json::from_str(&response.body)
        .with_context(|| format!("/healthz answered {:?}", response.body))
}

async fn wait_health(host: &HostProcess, status: &str) -> Result<serde_json::Value> {
    wait_health_where(host, &format!("/healthz to report {status:?}"), |body| {
        body["status"] == status
    })
    .await
}

async fn wait_health_where(
    host: &HostProcess,
    what: &str,
    ready: impl Fn(&serde_json::Value) -> bool,
) -> Result<serde_json::Value> {
    wait_until(PATIENCE, what, || async {
        let body = health(host).await?;
        Ok(if ready(&body) {
            Ok(body)
        } else {
            Err(body.to_string())
        })
    })
    .await
}

/// The saved screen's visible rows and unsealed scrollback, as text.
async fn saved_text(store: &PgStore, session: &str) -> Result<Vec<String>> {
    let Some(stored) = store.load_screen(session).await? else {
        return Ok(Vec::new());
    };
    let screen = host_server::persist::decode_screen(&stored.screen)
        .map_err(anyhow::Error::msg)
        .context("decoding the saved screen")?;
    Ok(screen
        .tail
        .iter()
        .chain(&screen.rows)
        .map(|line| line.text().trim_end().to_string())
        .collect())
}

/// How the path to the store breaks.
#[derive(Clone, Copy, Debug)]
enum Fault {
    /// Live connections cut, new ones reset: the server is down.
    Refuse,
    /// Live connections cut, new ones hang: a partition that resets what
    /// was open.
    BlackHole,
    /// Live connections stay open but go silent, new ones hang: a
    /// partition nobody notices, which no error ever reports.
    Stall,
}

/// Makes the path silent while one of the host's writes is on it, the
/// case that no error ever reports: the test holds the session's row lock
/// so the host's next write waits on the server, then stalls the proxy,
/// then lets the write finish, whose answer the proxy now holds back.
async fn stall_with_a_write_in_flight(
    database: &FreshDatabase,
    proxy: &FaultProxy,
    session: &str,
    client: &mut Client,
) -> Result<()> {
    let mut lock = PgConnection::connect(&database.url()).await?;
    sqlx::query("BEGIN").execute(&mut lock).await?;
    sqlx::query("SELECT id FROM sessions WHERE id = $1 FOR UPDATE")
        .bind(session)
        .fetch_all(&mut lock)
        .await?;
    client
        .run_expecting("echo write-in-flight-$((1))", "write-in-flight-1", PATIENCE)
        .await?;
    let url = database.url();
    wait_until(PATIENCE, "a host write to wait on the row lock", || async {
        let mut probe = PgConnection::connect(&url).await?;
        let (waiting,): (i64,) = sqlx::query_as(
            "SELECT count(*) FROM pg_stat_activity \
             WHERE datname = current_database() AND wait_event_type = 'Lock'",
        )
        .fetch_one(&mut probe)
        .await?;
        let _ = probe.close().await;
        Ok(if waiting > 0 {
            Ok(())
        } else {
            Err("no write waiting yet".to_string())
        })
    })
    .await?;
    proxy.stall();
    proxy.set_new_connections(NewConnections::BlackHole);
    sqlx::query("ROLLBACK").execute(&mut lock).await?;
    lock.close().await?;
    Ok(())
}

async fn outage(test: &str, fault: Fault) -> Result<()> {
    let Some(base) = database_url() else {
        eprintln!("{test}: skipped, DATABASE_URL is not set (cargo xtask test sets it)");
        return Ok(());
    };
    let database = FreshDatabase::create(&base, "thinline_outage").await?;
    let proxy = FaultProxy::start(database.server_addr()?).await?;
    let mut options = HostOptions::bash();
    options
        .env
        .push(("THINLINE_STORE".into(), database.url_through(proxy.port)));
    let host = HostProcess::start(options)?;
    // The test's own view of the store goes around the proxy.
    let store = PgStore::connect(&database.url())
        .await
        .context("connecting to the test database")?;

    let mut client = attach_at_prompt(&host).await?;
    let session = client.session().context("no session id")?.to_string();
    crate::assert_echoes(&mut client).await?;
    wait_until(PATIENCE, "the session to be in the store", || async {
        Ok(match store.get_session(&session).await? {
            Some(record) => Ok(record),
            None => Err("no record yet".to_string()),
        })
    })
    .await?;
    ensure!(
        health(&host).await?["status"] == "ok",
        "degraded before the outage"
    );

    match fault {
        Fault::Refuse => proxy.fail_refusing(),
        Fault::BlackHole => proxy.fail_black_holing(),
        Fault::Stall => {
            stall_with_a_write_in_flight(&database, &proxy, &session, &mut client).await?
        }
    }
    let marker = unique_marker("during-outage-");
    let mut slowest = Duration::ZERO;
    let mut typed = Vec::new();
    for i in 0..OUTAGE_COMMANDS {
        let started = Instant::now();
        let expected = format!("{marker}-{i}");
        client
            .run_expecting(
                &format!("echo {marker}-$(({i}))"),
                &expected,
                ECHO_DURING_OUTAGE,
            )
            .await
            .with_context(|| {
                format!("typing while the store is down; host:\n{}", host.log_text())
            })?;
        slowest = slowest.max(started.elapsed());
        typed.push(expected);
        if i == 0 {
            // The failed write of the first command's screen makes the
            // host say its store is unreachable; the others are typed while
            // it says so. (Its lease lapses too, which alone would make it
            // degraded: it takes no new sessions, but serves this one.)
            let body = wait_health_where(&host, "/healthz to report the store unreachable", |b| {
                b["store"] == "unreachable"
            })
            .await?;
            ensure!(body["status"] == "degraded", "{body}");
        }
    }
    eprintln!("{test}: slowest command during the outage took {slowest:?}");

    // A dropped socket comes back while the store is still down: the host
    // cannot look the ticket's sign-in up, so it admits on the signed
    // ticket alone (promise 4 holds for reconnects too).
    let id = client.session().context("no session id")?;
    client.close().await;
    client = Client::attach(&host, Some(id), crate::SIZE)
        .await
        .with_context(|| {
            format!(
                "reconnecting while the store is down; host:\n{}",
                host.log_text()
            )
        })?;
    // The harness reads the host's log on a thread of its own: wait for
    // the line rather than race it.
    wait_until(
        PATIENCE,
        "the host to say it skipped the sign-in check",
        || async {
            let log = host.log_text();
            Ok(if log.contains("admitted on the ticket alone") {
                Ok(())
            } else {
                Err(log)
            })
        },
    )
    .await?;
    let expected = format!("{marker}-reconnected");
    client
        .run_expecting(
            &format!("echo {marker}-reconnected"),
            &expected,
            ECHO_DURING_OUTAGE,
        )
        .await?;
    typed.push(expected);
    ensure!(
        health(&host).await?["status"] == "degraded",
        "the host stopped reporting the outage while it lasted"
    );

    proxy.restore();
    let caught_up = wait_until(PATIENCE, "the saved screen to catch up", || async {
        let text = saved_text(&store, &session).await?;
        let all = typed.iter().all(|line| text.contains(line));
        Ok(if all { Ok(text) } else { Err(text.join("\n")) })
    })
    .await
    .with_context(|| host.log_text())?;
    ensure!(!caught_up.is_empty());
    wait_health(&host, "ok").await?;
    crate::assert_echoes(&mut client).await?;
    client.close().await;
    drop(host);
    store.close().await;
    Ok(())
}

// Several threads: the proxy runs on the test's runtime while the harness
// blocks one thread starting the host.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_survives_a_refusing_store_and_state_catches_up() -> Result<()> {
    outage(
        "typing_survives_a_refusing_store_and_state_catches_up",
        Fault::Refuse,
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_survives_a_black_holed_store_and_state_catches_up() -> Result<()> {
    outage(
        "typing_survives_a_black_holed_store_and_state_catches_up",
        Fault::BlackHole,
    )
    .await
}

/// The host must notice a store that stops answering in the middle of a
/// write: before the persister bounded each write, it waited on the silent
/// connection forever, `/healthz` kept saying "ok" and nothing more was
/// saved even after the path came back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_survives_a_silent_store_and_state_catches_up() -> Result<()> {
    outage(
        "typing_survives_a_silent_store_and_state_catches_up",
        Fault::Stall,
    )
    .await
}

/// A new session starts while the store is down, as long as the host's
/// lease (granted before the outage) holds; once it lapses, new sessions
/// are sent elsewhere while the live one goes on; with the store back, new
/// sessions start again and the late record is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_session_starts_while_the_store_is_down() -> Result<()> {
    const TEST: &str = "a_new_session_starts_while_the_store_is_down";
    let Some(base) = database_url() else {
        eprintln!("{TEST}: skipped, DATABASE_URL is not set (cargo xtask test sets it)");
        return Ok(());
    };
    let database = FreshDatabase::create(&base, "thinline_outage").await?;
    let proxy = FaultProxy::start(database.server_addr()?).await?;
    let mut options = HostOptions::bash();
    options
        .env
        .push(("THINLINE_STORE".into(), database.url_through(proxy.port)));
    // A lease long enough that the new session below surely arrives while
    // the grant from before the outage still holds, on a busy machine too.
    options
        .flags
        .extend(["--lease-ttl-ms".into(), "10000".into()]);
    let host = HostProcess::start(options)?;
    let store = PgStore::connect(&database.url()).await?;
    // The sign-in the tickets carry, made while the store answers.
    host.login().await;
    // A user this host has served before: it knows their Unix identity
    // (the store hands each account one uid, once, for every host; a
    // first-ever session needs the store to get it).
    let mut earlier = Client::attach(&host, None, crate::SIZE).await?;
    earlier
        .wait_for(PATIENCE, "an earlier session's prompt", |s| s.at_prompt())
        .await?;
    drop(earlier);

    proxy.fail_refusing();
    let mut client = Client::attach(&host, None, crate::SIZE).await?;
    client
        .wait_for(PATIENCE, "the first prompt", |s| s.at_prompt())
        .await?;
    let session = client.session().context("no session id")?.to_string();
    crate::assert_echoes(&mut client).await?;
    wait_health(&host, "degraded").await?;
    ensure!(
        store.get_session(&session).await?.is_none(),
        "the record was written through a refusing proxy"
    );
    // Once its lease has lapsed the host takes no more new sessions (a
    // directory may count it as lost, and nobody would find them), while
    // the live one goes on.
    wait_health_where(&host, "the lease to lapse", |b| b["lease"] == "lapsed").await?;
    match Client::attach(&host, None, crate::SIZE).await {
        Ok(_) => bail!("a host without a lease started a new session"),
        Err(error) => ensure!(
            format!("{error:#}").contains("1001"),
            "a new session was refused, but not with 1001 (go elsewhere): {error:#}"
        ),
    }
    crate::assert_echoes(&mut client).await?;

    proxy.restore();
    // The record queued at the start is created late, and the screen
    // follows it.
    wait_until(PATIENCE, "the late record and screen", || async {
        let record = store.get_session(&session).await?;
        let screen = store.load_screen(&session).await?;
        Ok(match (record, screen) {
            (Some(record), Some(_)) => Ok(record),
            other => Err(format!("{:?}", other.0)),
        })
    })
    .await
    .with_context(|| host.log_text())?;
    wait_health(&host, "ok").await?;
    // With the lease back, new sessions start again.
    let mut another = attach_at_prompt(&host).await?;
    crate::assert_echoes(&mut another).await?;
    another.close().await;
    client.close().await;
    drop(host);
    store.close().await;
    Ok(())
}
