//! Promise 8 of DESIGN.md: bad input gets a specific error and disturbs no
//! one else. Each case misbehaves on a fresh connection while another
//! session is attached to the same host, then checks that session still
//! echoes input.

use std::time::Duration;

use anyhow::{Context, Result};
use protocol::{
    CloseCode, Hello, MAX_CLIENT_MESSAGE, PROTOCOL_VERSION, SessionId, decode_client,
    encode_hello_with_version,
};
use tests::client::{Client, upgrade_status};
use tests::host::HostProcess;
use tests::screen_text::ScreenText;
use tests::tickets;

use crate::{PATIENCE, SIZE, assert_echoes, attach_at_prompt, start_bash_host};

const CLOSE_WAIT: Duration = Duration::from_secs(15);

/// A host with one healthy session attached, the one that must not notice.
async fn host_with_bystander() -> Result<(HostProcess, Client)> {
    let host = start_bash_host()?;
    let bystander = attach_at_prompt(&host).await?;
    Ok((host, bystander))
}

fn code(close: CloseCode) -> u16 {
    close.code()
}

#[tokio::test]
async fn foreign_origin_is_refused_at_the_upgrade() -> Result<()> {
    let (host, mut bystander) = host_with_bystander().await?;
    assert_eq!(
        upgrade_status(&host.ws_url(), "http://evil.example").await?,
        403
    );
    assert_eq!(upgrade_status(&host.ws_url(), "null").await?, 403);
    // Same host name, other port: still foreign.
    // The allowed origin with another port or scheme: still foreign.
    for near in [
        format!("{}:8080", host.origin()),
        host.origin().replace("http://", "https://"),
        format!("{}.evil.example", host.origin()),
    ] {
        assert_eq!(upgrade_status(&host.ws_url(), &near).await?, 403, "{near}");
    }
    // The page's own origin is accepted, so the 403s above mean something.
    assert_eq!(upgrade_status(&host.ws_url(), &host.origin()).await?, 101);
    assert_echoes(&mut bystander).await
}

/// Sends a hello naming `session` with `ticket`; expects 4001 and no
/// welcome.
async fn expect_refused(
    host: &HostProcess,
    ticket: &str,
    session: SessionId,
    what: &str,
) -> Result<()> {
    let mut client = Client::connect(host).await?;
    client.send_hello(ticket, session, SIZE).await?;
    let (got, reason) = client.expect_close(CLOSE_WAIT).await?;
    assert_eq!(got, code(CloseCode::Unauthorized), "{what}: {reason}");
    assert!(client.welcome.is_none(), "{what} was welcomed");
    assert!(
        reason.contains("sign"),
        "{what}: the reason should tell the user to sign in again, got {reason:?}"
    );
    Ok(())
}

#[tokio::test]
async fn every_kind_of_bad_ticket_closes_with_4001() -> Result<()> {
    let (host, mut bystander) = host_with_bystander().await?;
    let running = bystander
        .session()
        .context("the bystander has no session")?;
    let fresh = tickets::new_session_id();
    let good = host.grant(fresh, 1).await;

    for (what, ticket) in [
        ("an empty ticket", String::new()),
        ("garbage", "not-a-ticket".to_string()),
        ("a huge ticket", "A".repeat(64 * 1024 - 64)),
    ] {
        expect_refused(&host, &ticket, fresh, what).await?;
    }

    // Signed by someone else's key: a forgery.
    let forger = auth::ticket::TicketSigner::generate();
    let forged = forger.sign(&good.claims())?;
    expect_refused(&host, &forged, fresh, "a forged ticket").await?;

    // One flipped character of a good ticket.
    let mut tampered = good.ticket().into_bytes();
    let middle = tampered.len() / 2;
    tampered[middle] = if tampered[middle] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered)?;
    expect_refused(&host, &tampered, fresh, "a tampered ticket").await?;

    // Expired: signed correctly, but its minute is over.
    let mut expired = good.claims();
    expired.issued_at_ms -= 5 * 60_000;
    expired.expires_at_ms = expired.issued_at_ms + 60_000;
    expect_refused(&host, &tickets::sign(&expired), fresh, "an expired ticket").await?;

    // For another host.
    let mut elsewhere = good.clone();
    elsewhere.host = "h9".into();
    expect_refused(
        &host,
        &elsewhere.ticket(),
        fresh,
        "a ticket for another host",
    )
    .await?;

    // For another session than the hello names.
    expect_refused(
        &host,
        &good.ticket(),
        tickets::new_session_id(),
        "a ticket for another session",
    )
    .await?;

    // The running session at the wrong epoch, and a new one not at 1.
    let stale = host.grant(running, 7).await;
    expect_refused(
        &host,
        &stale.ticket(),
        running,
        "a ticket for the wrong epoch",
    )
    .await?;
    let new_at_two = host.grant(fresh, 2).await;
    expect_refused(
        &host,
        &new_at_two.ticket(),
        fresh,
        "a new session at epoch 2",
    )
    .await?;

    // Another user who knows the session's id.
    let mut mallory = host.grant(running, 1).await;
    mallory.user = "mallory".into();
    expect_refused(&host, &mallory.ticket(), running, "another user's ticket").await?;

    // The good ticket still works, so the refusals above mean something.
    let mut client = Client::connect(&host).await?;
    client.handshake(&good.ticket(), fresh, SIZE).await?;
    assert_echoes(&mut client).await?;
    assert_echoes(&mut bystander).await
}

#[tokio::test]
async fn oversized_message_closes_with_1009() -> Result<()> {
    let (host, mut bystander) = host_with_bystander().await?;
    let oversized = vec![b'x'; MAX_CLIENT_MESSAGE + 4096];

    // As the very first message...
    let mut first = Client::connect(&host).await?;
    first.send_raw(oversized.clone()).await?;
    let (got, reason) = first.expect_close(CLOSE_WAIT).await?;
    assert_eq!(got, code(CloseCode::TooBig), "oversized hello: {reason}");

    // ...and after a valid hello, where the session must survive it too.
    let mut attached = attach_at_prompt(&host).await?;
    attached.send_raw(oversized).await?;
    let (got, reason) = attached.expect_close(CLOSE_WAIT).await?;
    assert_eq!(got, code(CloseCode::TooBig), "oversized message: {reason}");

    assert_echoes(&mut bystander).await
}

#[tokio::test]
async fn garbage_instead_of_a_hello_closes_with_4000() -> Result<()> {
    let (host, mut bystander) = host_with_bystander().await?;
    for garbage in [
        b"GET / HTTP/1.1".to_vec(),
        vec![0xff; 3],
        // The right magic with a truncated version.
        b"TL\x01".to_vec(),
    ] {
        let mut client = Client::connect(&host).await?;
        client.send_raw(garbage.clone()).await?;
        let (got, reason) = client.expect_close(CLOSE_WAIT).await?;
        assert_eq!(
            got,
            code(CloseCode::BadHello),
            "garbage {garbage:?}: {reason}"
        );
    }
    assert_echoes(&mut bystander).await
}

#[tokio::test]
async fn other_protocol_version_closes_with_4002_and_advice_to_reload() -> Result<()> {
    let (host, mut bystander) = host_with_bystander().await?;
    let session = tickets::new_session_id();
    let hello = Hello {
        ticket: host.ticket(session, 1).await,
        session,
        size: SIZE,
    };
    for version in [PROTOCOL_VERSION + 1, 0] {
        let mut client = Client::connect(&host).await?;
        client
            .send_raw(encode_hello_with_version(&hello, version))
            .await?;
        let (got, reason) = client.expect_close(CLOSE_WAIT).await?;
        assert_eq!(
            got,
            code(CloseCode::VersionMismatch),
            "v{version}: {reason}"
        );
        assert!(
            reason.to_lowercase().contains("reload"),
            "the reason should tell the user to reload, got {reason:?}"
        );
    }
    assert_echoes(&mut bystander).await
}

#[tokio::test]
async fn garbage_after_the_hello_closes_with_4003() -> Result<()> {
    let (host, mut bystander) = host_with_bystander().await?;
    // An unterminated varint: no client message starts like this.
    let garbage = vec![0xff, 0xff, 0xff];
    assert!(
        decode_client(&garbage).is_err(),
        "the garbage must be undecodable"
    );

    let mut client = attach_at_prompt(&host).await?;
    client.send_raw(garbage).await?;
    let (got, reason) = client.expect_close(CLOSE_WAIT).await?;
    assert_eq!(got, code(CloseCode::Malformed), "{reason}");

    // The malformed client's own session lives on and can be reattached.
    let session = client.session();
    let mut again = Client::attach(&host, session, SIZE).await?;
    assert_eq!(again.session(), session);
    again
        .wait_for(PATIENCE, "the prompt after reattaching", |s| s.at_prompt())
        .await?;
    assert_echoes(&mut again).await?;
    assert_echoes(&mut bystander).await
}
