//! The host served in-process on a loopback port, driven by a native
//! WebSocket client: sessions, reattach, exactly-once input, and restore
//! from the shared store with epoch fencing.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use host_server::metrics::Metrics;
use host_server::pty::ProgramSpec;
use host_server::registry::{Registry, StoreConfig};
use host_server::session::SessionConfig;
use host_server::{AppState, run};
use protocol::{
    ClientToServerMsg, Hello, ServerToClientMsg, SessionId, Size, Welcome, decode_server,
    decompress_lines, encode_client, encode_hello,
};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

const TOKEN: &str = "test-token";

struct Host {
    port: u16,
    registry: Arc<Registry>,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

async fn start_host() -> Host {
    start_host_with("h-test", None).await
}

async fn start_host_with(name: &str, store: Option<StoreConfig>) -> Host {
    start_host_full(name, store, Duration::from_secs(60)).await
}

async fn start_host_full(name: &str, store: Option<StoreConfig>, idle_timeout: Duration) -> Host {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let metrics = Arc::new(Metrics::default());
    let registry = Registry::new(
        SessionConfig {
            host: name.into(),
            program: ProgramSpec {
                program: "/bin/bash".into(),
                args: vec!["--noprofile".into(), "--norc".into()],
                login: false,
                cwd: Some(std::env::temp_dir()),
                env: vec![("PS1".into(), "$ ".into())],
            },
            idle_timeout,
            persist_interval: Duration::from_millis(100),
        },
        store,
        10,
        metrics.clone(),
    );
    let state = AppState::standalone(
        registry.clone(),
        metrics,
        TOKEN,
        vec![format!("http://127.0.0.1:{port}")],
        "static".into(),
    );
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(run(listener, state, None, async {
        let _ = rx.await;
    }));
    Host {
        port,
        registry,
        _shutdown: tx,
    }
}

/// A client that keeps the screen as text rows, like a minimal browser.
struct Client {
    socket: Socket,
    welcome: Welcome,
    rows: Vec<String>,
    history: Vec<String>,
    next_input: u64,
}

impl Client {
    async fn connect(host: &Host, session: Option<SessionId>) -> Client {
        let mut request = format!("ws://127.0.0.1:{}/ws", host.port)
            .into_client_request()
            .unwrap();
        request.headers_mut().insert(
            "origin",
            format!("http://127.0.0.1:{}", host.port).parse().unwrap(),
        );
        let (mut socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
        let hello = Hello {
            token: TOKEN.into(),
            session,
            size: Size { cols: 80, rows: 24 },
        };
        socket
            .send(Message::Binary(encode_hello(&hello).into()))
            .await
            .unwrap();
        let welcome = match next_msg(&mut socket).await {
            ServerToClientMsg::Welcome(welcome) => welcome,
            other => panic!("expected a welcome, got {other:?}"),
        };
        Client {
            socket,
            next_input: welcome.input_seq + 1,
            welcome,
            rows: vec![String::new(); 24],
            history: Vec::new(),
        }
    }

    async fn send(&mut self, msg: ClientToServerMsg) {
        self.socket
            .send(Message::Binary(encode_client(&msg).into()))
            .await
            .unwrap();
    }

    async fn type_text(&mut self, text: &str) {
        let seq = self.next_input;
        self.next_input += 1;
        self.send(ClientToServerMsg::Input {
            seq,
            data: text.as_bytes().to_vec(),
        })
        .await;
    }

    /// Applies messages until `done` holds for the screen, acking frames.
    async fn wait_screen(&mut self, what: &str, done: impl Fn(&[String]) -> bool) {
        self.wait_until(what, |client| done(&client.rows)).await;
    }

    /// Applies messages until `done` holds for the client, acking frames.
    async fn wait_until(&mut self, what: &str, done: impl Fn(&Client) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !done(self) {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; screen:\n{}",
                self.rows.join("\n")
            );
            if let Ok(msg) =
                tokio::time::timeout(Duration::from_millis(200), next_msg(&mut self.socket)).await
            {
                self.apply(msg).await;
            }
        }
    }

    async fn apply(&mut self, msg: ServerToClientMsg) {
        match msg {
            ServerToClientMsg::History(block) => self
                .history
                .extend(decompress_lines(&block).unwrap().iter().map(|l| l.text())),
            ServerToClientMsg::Frame(frame) => {
                self.history.extend(frame.scrolled.iter().map(|l| l.text()));
                self.rows
                    .resize(usize::from(frame.size.rows), String::new());
                if frame.full {
                    self.rows.iter_mut().for_each(String::clear);
                }
                for update in frame.rows {
                    self.rows[usize::from(update.row)] = update.line.text();
                }
                self.send(ClientToServerMsg::Ack { frame: frame.seq }).await;
            }
            _ => {}
        }
    }
}

async fn next_msg(socket: &mut Socket) -> ServerToClientMsg {
    loop {
        match socket.next().await {
            Some(Ok(Message::Binary(bytes))) => return decode_server(&bytes).unwrap(),
            Some(Ok(Message::Close(frame))) => panic!("closed: {frame:?}"),
            Some(Ok(_)) => continue,
            other => panic!("socket ended: {other:?}"),
        }
    }
}

/// Waits for the close frame and returns its code.
async fn close_code(socket: &mut Socket) -> u16 {
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(10), socket.next()).await {
            Ok(Some(Ok(Message::Close(Some(frame))))) => return frame.code.into(),
            Ok(Some(Ok(_))) => continue,
            other => panic!("socket ended without a close frame: {other:?}"),
        }
    }
    panic!("no close frame in time");
}

fn contains(rows: &[String], needle: &str) -> bool {
    rows.iter().any(|row| row.contains(needle))
}

#[tokio::test]
async fn a_shell_echoes_and_survives_a_reattach() {
    let host = start_host().await;
    let mut client = Client::connect(&host, None).await;
    assert!(client.welcome.created);
    assert_eq!(client.welcome.host, "h-test");
    client
        .wait_screen("the prompt", |rows| contains(rows, "$"))
        .await;
    client.type_text("echo $((6*7))-ok\r").await;
    client
        .wait_screen("the echo", |rows| rows.iter().any(|r| r == "42-ok"))
        .await;
    let session = client.welcome.session;
    let typed = client.next_input - 1;
    drop(client);

    let mut again = Client::connect(&host, Some(session)).await;
    assert!(!again.welcome.created, "same session, not a new one");
    assert_eq!(again.welcome.session, session);
    assert_eq!(again.welcome.input_seq, typed);
    again
        .wait_screen("the old screen", |rows| rows.iter().any(|r| r == "42-ok"))
        .await;
}

#[tokio::test]
async fn resent_input_is_applied_once() {
    let host = start_host().await;
    let mut client = Client::connect(&host, None).await;
    client
        .wait_screen("the prompt", |rows| contains(rows, "$"))
        .await;
    client
        .send(ClientToServerMsg::Input {
            seq: 1,
            data: b"echo a".to_vec(),
        })
        .await;
    // The same input again, as a client resends after a reconnect.
    client
        .send(ClientToServerMsg::Input {
            seq: 1,
            data: b"echo a".to_vec(),
        })
        .await;
    client
        .send(ClientToServerMsg::Input {
            seq: 2,
            data: b"b-done\r".to_vec(),
        })
        .await;
    client
        .wait_screen("the output", |rows| rows.iter().any(|r| r == "ab-done"))
        .await;
}

#[tokio::test]
async fn scrollback_reaches_a_reattaching_client() {
    let host = start_host().await;
    let mut client = Client::connect(&host, None).await;
    client
        .wait_screen("the prompt", |rows| contains(rows, "$"))
        .await;
    client.type_text("seq 1 3000; echo seq-done\r").await;
    client
        .wait_screen("seq", |rows| rows.iter().any(|r| r == "seq-done"))
        .await;
    client
        .wait_until("live scrollback", |c| c.history.iter().any(|l| l == "1"))
        .await;
    let session = client.welcome.session;
    drop(client);
    let mut again = Client::connect(&host, Some(session)).await;
    again
        .wait_screen("seq", |rows| rows.iter().any(|r| r == "seq-done"))
        .await;
    let numbers: Vec<&String> = again
        .history
        .iter()
        .filter(|l| l.chars().all(|c| c.is_ascii_digit()) && !l.is_empty())
        .collect();
    assert_eq!(numbers.first().map(|s| s.as_str()), Some("1"));
    assert!(numbers.len() >= 2970, "{} lines", numbers.len());
}

#[tokio::test]
async fn a_restored_session_shows_its_screen_and_fences_the_old_host() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn store::Store> = Arc::new(
        store::SqliteStore::open(&dir.path().join("db.sqlite"))
            .await
            .unwrap(),
    );
    let work = dir.path().join("work dir");
    std::fs::create_dir(&work).unwrap();
    let config = |adopt| StoreConfig {
        store: store.clone(),
        home_root: Some(dir.path().join("home")),
        adopt,
    };
    let old_host = start_host_with("h-old", Some(config(false))).await;
    let mut old = Client::connect(&old_host, None).await;
    old.wait_screen("the prompt", |rows| contains(rows, "$"))
        .await;
    old.type_text(&format!(
        "cd '{}' && echo restore-$((40+2))\r",
        work.display()
    ))
    .await;
    old.wait_screen("the echo", |rows| rows.iter().any(|r| r == "restore-42"))
        .await;
    let id = old.welcome.session;
    let key = id.to_string();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let record = store.get_session(&key).await.unwrap().unwrap();
        if record.cwd == work.display().to_string() {
            break;
        }
        assert!(Instant::now() < deadline, "cwd never persisted: {record:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    let new_host = start_host_with("h-new", Some(config(true))).await;
    let mut restored = Client::connect(&new_host, Some(id)).await;
    assert_eq!(restored.welcome.session, id);
    assert_eq!(restored.welcome.epoch, 2, "the takeover bumped the epoch");
    restored
        .wait_screen("old output and notice", |rows| {
            rows.iter().any(|r| r == "restore-42") && contains(rows, "restored from host h-old")
        })
        .await;
    restored.type_text("pwd\r").await;
    let expected = work.display().to_string();
    restored
        .wait_screen("the saved directory", |rows| rows.contains(&expected))
        .await;

    // The old host's next write is refused by the epoch fence: it must end
    // its copy and tell its client the session moved.
    old.type_text("echo still-here\r").await;
    assert_eq!(close_code(&mut old.socket).await, 4008);
    let record = store.get_session(&key).await.unwrap().unwrap();
    assert_eq!(record.owner_host, "h-new");
}

/// Numbers printed by `seq` as the client saw them: history then screen.
fn seq_numbers(client: &Client) -> Vec<u64> {
    client
        .history
        .iter()
        .chain(client.rows.iter())
        .filter_map(|line| line.parse().ok())
        .collect()
}

#[tokio::test]
async fn every_scrolled_line_reaches_the_client_exactly_once_while_persisting() {
    let dir = tempfile::tempdir().unwrap();
    let store: Arc<dyn store::Store> = Arc::new(
        store::SqliteStore::open(&dir.path().join("db.sqlite"))
            .await
            .unwrap(),
    );
    let host = start_host_with(
        "h-seq",
        Some(StoreConfig {
            store,
            home_root: None,
            adopt: false,
        }),
    )
    .await;
    let mut client = Client::connect(&host, None).await;
    client
        .wait_screen("the prompt", |rows| contains(rows, "$"))
        .await;
    // Slow enough that persistence snapshots (which also drain scrolled
    // lines) interleave with frames.
    client
        .type_text("for i in $(seq 1 400); do echo $i; sleep 0.002; done; echo loop-done\r")
        .await;
    // Play a slow client: read nothing for a while, so the frame window
    // fills and persistence snapshots drain the scrolled lines instead of
    // frames. (This pause is the stimulus, not a wait for a condition.)
    tokio::time::sleep(Duration::from_millis(600)).await;
    client
        .wait_screen("the loop", |rows| rows.iter().any(|r| r == "loop-done"))
        .await;
    client
        .wait_until("all 400 lines", |c| seq_numbers(c).len() >= 400)
        .await;
    let expected: Vec<u64> = (1..=400).collect();
    assert_eq!(seq_numbers(&client), expected);
}

#[tokio::test]
async fn a_flood_keeps_the_newest_lines_contiguous() {
    let host = start_host().await;
    let mut client = Client::connect(&host, None).await;
    client
        .wait_screen("the prompt", |rows| contains(rows, "$"))
        .await;
    client.type_text("seq 1 300000; echo flood-done\r").await;
    client
        .wait_screen("the flood", |rows| rows.iter().any(|r| r == "flood-done"))
        .await;
    // Scrolled lines catch up just after a flood ends.
    client
        .wait_until("the scrollback to catch up", |c| {
            let numbers = seq_numbers(c);
            numbers.len() >= 10_000
                && numbers[numbers.len() - 10_000..]
                    .windows(2)
                    .all(|w| w[1] == w[0] + 1)
        })
        .await;
    let numbers = seq_numbers(&client);
    assert_eq!(numbers.last(), Some(&300_000));
    // The newest ten thousand lines arrive without gaps or repeats; older
    // ones may have been skipped during the flood, never reordered.
    let tail = &numbers[numbers.len().saturating_sub(10_000)..];
    assert_eq!(tail.len(), 10_000, "{} lines in all", numbers.len());
    assert!(tail.windows(2).all(|w| w[1] == w[0] + 1));
    assert!(numbers.windows(2).all(|w| w[1] > w[0]));
}

#[tokio::test]
async fn a_detached_session_runs_until_its_idle_timeout() {
    let idle = Duration::from_millis(800);
    let host = start_host_full("h-idle", None, idle).await;
    let mut client = Client::connect(&host, None).await;
    client
        .wait_screen("the prompt", |rows| contains(rows, "$"))
        .await;
    let session = client.welcome.session;
    let detached = Instant::now();
    drop(client);
    // Still running without a client: a reattach finds the same session.
    let again = Client::connect(&host, Some(session)).await;
    assert!(!again.welcome.created);
    drop(again);
    let deadline = Instant::now() + Duration::from_secs(10);
    while host.registry.get(&session).is_some() {
        assert!(
            Instant::now() < deadline,
            "the idle session was never ended"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(detached.elapsed() >= idle, "ended before its idle timeout");
}
