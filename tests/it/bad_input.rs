//! Promise 8 of DESIGN.md: bad input gets a specific error and disturbs no
//! one else. Each case misbehaves on a fresh connection while another
//! session is attached to the same host, then checks that session still
//! echoes input.

use std::time::Duration;

use anyhow::Result;
use protocol::{
    CloseCode, Hello, MAX_CLIENT_MESSAGE, PROTOCOL_VERSION, decode_client,
    encode_hello_with_version,
};
use tests::client::{Client, upgrade_status};
use tests::host::HostProcess;

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
    let other_port = format!("http://127.0.0.1:{}", host.port.wrapping_add(1));
    assert_eq!(upgrade_status(&host.ws_url(), &other_port).await?, 403);
    // The host's own origin is accepted, so the 403s above mean something.
    assert_eq!(upgrade_status(&host.ws_url(), &host.origin()).await?, 101);
    assert_echoes(&mut bystander).await
}

#[tokio::test]
async fn missing_or_wrong_token_closes_with_4001() -> Result<()> {
    let (host, mut bystander) = host_with_bystander().await?;
    for token in ["", "not-the-token", &format!("{}x", host.token)] {
        let mut client = Client::connect(&host).await?;
        client.send_hello(token, None, SIZE).await?;
        let (got, reason) = client.expect_close(CLOSE_WAIT).await?;
        assert_eq!(
            got,
            code(CloseCode::Unauthorized),
            "token {token:?}: {reason}"
        );
        assert!(client.welcome.is_none(), "token {token:?} was welcomed");
    }
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
    let hello = Hello {
        token: host.token.clone(),
        session: None,
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
