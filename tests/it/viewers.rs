//! Share-link viewers at a real host, over its real store: the grant in
//! the ticket decides whether keys reach the shell, a viewer never sizes
//! the session, and the host closes a viewer whose share was revoked with
//! 4014, leaving the owner and other viewers be.

use std::time::{Duration, Instant};

use anyhow::{Context, Result, ensure};
use auth::share::{ShareId, ShareToken};
use auth::ticket::{Claims, MAX_LIFETIME_MS, ShareGrant, now_ms};
use protocol::{CloseCode, Role, SessionId, Size};
use store::Store;
use tests::client::Client;
use tests::host::{HostOptions, HostProcess};
use tests::screen_text::ScreenText;
use tests::tickets;

use crate::{PATIENCE, SIZE, attach_at_prompt};

const VIEWER: &str = "bob";

/// A share of `session` by `owner` in `store`; returns its id.
async fn share(
    store: &dyn Store,
    session: SessionId,
    owner: &str,
    may_type: bool,
) -> Result<ShareId> {
    let id = ShareId::generate();
    store
        .create_share(
            &id.to_string(),
            &ShareToken::generate().hash().to_string(),
            &session.to_string(),
            owner,
            may_type,
            60_000,
        )
        .await
        .context("making a share")?;
    Ok(id)
}

/// bob's ticket for `share` of `owner`'s `session` on `host`.
fn viewer_ticket(
    host: &HostProcess,
    session: SessionId,
    login: [u8; 32],
    share: ShareId,
    may_type: bool,
) -> String {
    let now = now_ms();
    tickets::sign(&Claims {
        user: VIEWER.into(),
        session: session.0,
        host: host.host_id.clone(),
        epoch: 1,
        login,
        max_sessions: 10,
        share: Some(ShareGrant {
            id: share.0,
            owner: host.user.clone(),
            may_type,
        }),
        record: None,
        issued_at_ms: now,
        expires_at_ms: now + MAX_LIFETIME_MS,
    })
}

#[tokio::test]
async fn a_viewer_types_only_with_its_grant_and_is_closed_when_its_share_is_revoked() -> Result<()>
{
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("db.sqlite");
    let mut options = HostOptions::bash();
    options.env.extend([
        (
            "THINLINE_STORE".to_owned(),
            format!("sqlite:{}", db.display()),
        ),
        (
            "THINLINE_HOME_ROOT".to_owned(),
            dir.path().join("homes").display().to_string(),
        ),
    ]);
    let host = HostProcess::start(options)?;
    let mut owner = attach_at_prompt(&host).await?;
    let session = owner.session().context("no session")?;
    let store = store::SqliteStore::open(&db).await?;
    let login = tickets::sign_in(&store, VIEWER).await?;

    // A viewer's ticket for a session nobody runs starts nothing.
    let nowhere = tickets::new_session_id();
    let stray = share(&store, session, &host.user, true).await?;
    let mut refused = Client::connect(&host).await?;
    refused
        .send_hello(
            &viewer_ticket(&host, nowhere, login, stray, true),
            nowhere,
            SIZE,
        )
        .await?;
    let (code, _) = refused.expect_close(PATIENCE).await?;
    ensure!(code == CloseCode::Unauthorized.code(), "closed with {code}");

    let small = Size { cols: 30, rows: 8 };
    let typing = share(&store, session, &host.user, true).await?;
    let mut typist = Client::connect(&host).await?;
    let welcome = typist
        .handshake(
            &viewer_ticket(&host, session, login, typing, true),
            session,
            small,
        )
        .await?;
    ensure!(
        welcome.role
            == Role::Viewer {
                owner: host.user.clone(),
                may_type: true
            },
        "welcomed as {:?}",
        welcome.role
    );
    let watching = share(&store, session, &host.user, false).await?;
    let mut watcher = Client::connect(&host).await?;
    watcher
        .handshake(
            &viewer_ticket(&host, session, login, watching, false),
            session,
            small,
        )
        .await?;
    ensure!(
        watcher.screen.size() == SIZE,
        "the viewer sees {:?}, not the owner's size",
        watcher.screen.size()
    );

    // The watcher's keys go nowhere; the typist's reach the shell, and
    // everyone sees the answer.
    watcher.type_str("echo watcher-$((6*7))\r").await?;
    let seq = typist.type_str("echo typist-$((6*7))\r").await?;
    typist.wait_input_acked(seq, PATIENCE).await?;
    for (who, client) in [
        ("owner", &mut owner),
        ("watcher", &mut watcher),
        ("typist", &mut typist),
    ] {
        client
            .wait_for(
                PATIENCE,
                &format!("the typist's command's output at the {who}'s"),
                |s| s.has_line("typist-42"),
            )
            .await?;
    }
    let owner_screen = owner.screen.text();
    ensure!(
        !owner_screen.contains("watcher"),
        "the watcher's keys reached the shell:\n{owner_screen}"
    );
    ensure!(owner.screen.size() == SIZE, "a viewer resized the session");

    // Revoked: that viewer is closed within the recheck (2 s) and a store
    // round trip; the others watch and type on.
    store
        .revoke_share(&host.user, &watching.to_string())
        .await?;
    let revoked_at = Instant::now();
    let (code, reason) = watcher.expect_close(Duration::from_secs(10)).await?;
    eprintln!(
        "viewer closed {:?} after the revocation",
        revoked_at.elapsed()
    );
    ensure!(
        code == CloseCode::ShareRevoked.code(),
        "closed with {code} {reason}"
    );
    typist
        .run_expecting("echo still-$((6*7))", "still-42", PATIENCE)
        .await?;
    owner
        .wait_for(
            PATIENCE,
            "the typist's second command at the owner's",
            |s| s.has_line("still-42"),
        )
        .await?;
    Ok(())
}
