//! The control socket: `host-server drain` (a Kubernetes preStop hook)
//! starts the shutdown drain and learns when every session is persisted
//! and gone, while the host goes on answering until its signal comes.

use std::time::Duration;

use host_server::control::{DrainOutcome, bind, request_drain};
use host_server::registry::{StoreConfig, new_session_id};
use testkit::http::Request;

use crate::harness::{
    Client, HostOptions, PATIENCE, close_code, contains, sqlite, start, start_host_with,
};

#[tokio::test]
async fn a_drain_asked_on_the_control_socket_persists_every_session_and_moves_it() {
    let dir = tempfile::tempdir().unwrap();
    let store = sqlite(dir.path()).await;
    let config = |adopt| StoreConfig {
        store: store.clone(),
        home_root: Some(dir.path().join("home")),
        adopt,
    };
    let socket = dir.path().join("control.sock");
    let mut options = HostOptions::new("h-drained").store(config(false));
    options.control_socket = Some(socket.clone());
    let host = start(options).await;
    let mut client = Client::connect(&host, None).await;
    client
        .run_at_prompt("echo drained-$((40+2))", "drained-42")
        .await;
    let id = client.welcome.session;

    let outcome = request_drain(&socket, PATIENCE).await.unwrap();
    assert_eq!(outcome, DrainOutcome::Drained);
    // Done means done: nothing runs here any more, and the client was
    // sent on (1001, going away) rather than cut off.
    assert!(host.registry.is_empty());
    assert_eq!(close_code(&mut client.socket).await, 1001);
    // The host still answers, says it drains, and takes nothing new.
    let health = Request::local("GET", host.port, "/healthz")
        .send()
        .await
        .unwrap()
        .json();
    assert_eq!(health["status"], "draining", "{health}");
    assert_eq!(health["new_sessions"], false, "{health}");
    let fresh = new_session_id();
    let refused = Client::open(&host, host.alice.ticket(&host.name, fresh, 1), fresh).await;
    assert_eq!(
        refused.err(),
        Some(1001),
        "a draining host took a new session"
    );
    // Asking again joins the drain that is over: drained at once.
    let again = tokio::time::timeout(
        Duration::from_secs(2),
        request_drain(&socket, Duration::ZERO),
    )
    .await
    .unwrap();
    assert_eq!(again, Ok(DrainOutcome::Drained));

    // What the drain persisted comes back on another host.
    let next = start_host_with("h-next", Some(config(true))).await;
    let mut restored = Client::connect(&next, Some(id)).await;
    restored
        .wait_screen("the screen the drain persisted", |rows| {
            rows.iter().any(|r| r == "drained-42") && contains(rows, "restored from host h-drained")
        })
        .await;
}

#[tokio::test]
async fn the_control_socket_is_mode_0600_and_never_taken_from_a_live_host() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("control.sock");
    let live = bind(&path).await.unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let taken = bind(&path).await.unwrap_err().to_string();
    assert!(taken.contains("another process serves"), "{taken}");
    // A socket left by a host that is gone is replaced.
    drop(live);
    bind(&path).await.unwrap();
    // Not a socket: never removed.
    let file = dir.path().join("not-a-socket");
    std::fs::write(&file, "keep me").unwrap();
    assert!(bind(&file).await.is_err());
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "keep me");
    // Nobody there: the error says what to check.
    let absent = request_drain(&dir.path().join("absent.sock"), Duration::ZERO)
        .await
        .unwrap_err();
    assert!(absent.contains("--control-socket"), "{absent}");
}

#[tokio::test]
async fn anything_but_a_drain_request_is_answered_with_an_error() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("control.sock");
    let mut options = HostOptions::new("h-asked");
    options.control_socket = Some(socket.clone());
    let host = start(options).await;
    let mut stream = tokio::net::UnixStream::connect(&socket).await.unwrap();
    stream.write_all(b"shutdown now\n").await.unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).await.unwrap();
    assert!(reply.starts_with("error: unknown request"), "{reply}");
    let health = Request::local("GET", host.port, "/healthz")
        .send()
        .await
        .unwrap()
        .json();
    assert_eq!(
        health["status"], "ok",
        "a bad request drained the host: {health}"
    );
}
