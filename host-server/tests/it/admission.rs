//! Who gets in: tickets checked end to end through a real socket. Every
//! refusal is a 4001 close (4004 for an ended session) and leaves the
//! sessions already running undisturbed.

use auth::ticket::{Claims, TicketSigner};
use host_server::registry::{StoreConfig, new_session_id};
use protocol::SessionId;

use crate::harness::{Client, HostOptions, SIGNER, contains, sign_in, sqlite, start, start_host};

const UNAUTHORIZED: u16 = 4001;

/// Alice's running session on `host`, with its prompt on screen.
async fn running_session(host: &crate::harness::Host) -> Client {
    let mut client = Client::connect(host, None).await;
    client
        .wait_screen("the prompt", |rows| contains(rows, "$"))
        .await;
    client
}

#[tokio::test]
async fn bad_tickets_are_refused_and_disturb_no_one() {
    let host = start_host().await;
    let mut alice = running_session(&host).await;
    let id = alice.welcome.session;
    let claims = host.alice.claims(&host.name, id, 1);

    let forged = TicketSigner::generate().sign(&claims).unwrap();
    let expired = SIGNER
        .sign(&Claims {
            max_sessions: 10,
            share: None,
            issued_at_ms: claims.issued_at_ms - 120_000,
            expires_at_ms: claims.issued_at_ms - 70_000,
            ..claims.clone()
        })
        .unwrap();
    let other_host = host.alice.ticket("h-elsewhere", id, 1);
    let stale_epoch = host.alice.ticket(&host.name, id, 2);
    let cases = [
        ("forged", forged, id),
        ("expired", expired, id),
        ("for another host", other_host, id),
        ("at another epoch", stale_epoch, id),
        ("garbage", "not a ticket".to_string(), id),
        // A genuine ticket, but the hello asks for another session.
        (
            "for another session",
            host.alice.ticket(&host.name, id, 1),
            new_session_id(),
        ),
    ];
    for (what, ticket, session) in cases {
        let refused = Client::open(&host, ticket, session).await;
        assert_eq!(refused.err(), Some(UNAUTHORIZED), "a ticket {what}");
    }

    // The session and its client never noticed.
    alice.type_text("echo still-$((20+1))\r").await;
    alice
        .wait_screen("the echo", |rows| rows.iter().any(|r| r == "still-21"))
        .await;
    assert_eq!(
        host.registry.len(),
        1,
        "no refused ticket started a session"
    );
}

#[tokio::test]
async fn another_user_cannot_attach_even_knowing_the_id() {
    let host = start_host().await;
    let mut alice = running_session(&host).await;
    let id = alice.welcome.session;
    let mallory = sign_in(None, "mallory").await;
    // A genuine ticket for mallory naming alice's session, at its epoch.
    let ticket = mallory.ticket(&host.name, id, 1);
    assert_eq!(
        Client::open(&host, ticket, id).await.err(),
        Some(UNAUTHORIZED)
    );
    // Alice keeps her terminal: she was not replaced.
    alice.type_text("echo mine-$((1+1))\r").await;
    alice
        .wait_screen("the echo", |rows| rows.iter().any(|r| r == "mine-2"))
        .await;
}

#[tokio::test]
async fn a_new_session_starts_with_the_tickets_id_and_owner_at_epoch_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(dir.path()).await;
    let host = start(HostOptions::new("h-new").store(StoreConfig {
        store: store.clone(),
        home_root: None,
        adopt: false,
    }))
    .await;
    let id = SessionId([0x5a; 16]);
    // A new session must be at epoch 1.
    let early = host.alice.ticket(&host.name, id, 2);
    assert_eq!(
        Client::open(&host, early, id).await.err(),
        Some(UNAUTHORIZED)
    );

    let client = Client::open(&host, host.alice.ticket(&host.name, id, 1), id)
        .await
        .unwrap();
    assert!(client.welcome.created);
    assert_eq!(client.welcome.session, id);
    assert_eq!(client.welcome.epoch, 1);
    let handle = host.registry.get(&id).unwrap();
    assert_eq!(&*handle.owner, "alice");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let record = loop {
        if let Some(record) = store.get_session(&id.to_string()).await.unwrap() {
            break record;
        }
        assert!(std::time::Instant::now() < deadline, "never recorded");
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    assert_eq!(record.owner, "alice");
    assert_eq!(record.owner_host, "h-new");
    assert_eq!(record.epoch, 1);
}

#[tokio::test]
async fn a_ticket_from_a_login_that_ended_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(dir.path()).await;
    let host = start(HostOptions::new("h-login").store(StoreConfig {
        store: store.clone(),
        home_root: None,
        adopt: false,
    }))
    .await;
    let mut alice = running_session(&host).await;
    let id = alice.welcome.session;
    drop(alice);

    // A ticket replayed after its sign-out.
    let signed_out = sign_in(Some(&store), "alice").await;
    let ticket = signed_out.ticket(&host.name, id, 1);
    store
        .end_login(&auth::login::LoginId(signed_out.login).to_string())
        .await
        .unwrap();
    assert_eq!(
        Client::open(&host, ticket, id).await.err(),
        Some(UNAUTHORIZED)
    );

    // A login of another user cannot vouch for alice.
    let bob = sign_in(Some(&store), "bob").await;
    let borrowed = crate::harness::Pass {
        user: "alice".into(),
        login: bob.login,
    };
    assert_eq!(
        Client::open(&host, borrowed.ticket(&host.name, id, 1), id)
            .await
            .err(),
        Some(UNAUTHORIZED)
    );

    // A disabled account's logins end with it.
    store.set_disabled("alice", true).await.unwrap();
    assert_eq!(
        Client::open(&host, host.alice.ticket(&host.name, id, 1), id)
            .await
            .err(),
        Some(UNAUTHORIZED)
    );
    store.set_disabled("alice", false).await.unwrap();

    // A live login gets back in.
    let again = sign_in(Some(&store), "alice").await;
    alice = Client::open(&host, again.ticket(&host.name, id, 1), id)
        .await
        .unwrap();
    assert!(!alice.welcome.created);
}

#[tokio::test]
async fn an_ended_session_is_not_started_again() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(dir.path()).await;
    let host = start(HostOptions::new("h-ended").store(StoreConfig {
        store: store.clone(),
        home_root: None,
        adopt: false,
    }))
    .await;
    let mut alice = running_session(&host).await;
    let id = alice.welcome.session;
    alice.type_text("exit\r").await;
    assert_eq!(crate::harness::close_code(&mut alice.socket).await, 4004);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while host.registry.get(&id).is_some()
        || store
            .get_session(&id.to_string())
            .await
            .unwrap()
            .is_none_or(|r| r.state != store::SessionState::Ended)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "never recorded as ended"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let ticket = host.alice.ticket(&host.name, id, 1);
    assert_eq!(Client::open(&host, ticket, id).await.err(), Some(4004));
    assert!(host.registry.get(&id).is_none());
}
