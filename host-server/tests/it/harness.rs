//! The host served in-process on a loopback port, tickets signed here the
//! way the directory signs them, and a native WebSocket client that applies
//! frames to the browser client's own screen model
//! (`web_terminal::screen::Screen`) and reads it as text rows.

use std::sync::{Arc, LazyLock};
use std::time::{Duration, Instant};

use auth::login::LoginToken;
use auth::ticket::{Claims, TicketSigner, TicketVerifier, now_ms};
use futures_util::{SinkExt, StreamExt};
use host_server::address_limit::AddressLimiter;
use host_server::cgroup::Limits;
use host_server::host_token::HostToken;
use host_server::metrics::Metrics;
use host_server::pty::ProgramSpec;
use host_server::registry::{Registry, StoreConfig, new_session_id};
use host_server::sandbox::{Isolation, Sandbox, SandboxOptions, SessionNetwork};
use host_server::session::SessionConfig;
use host_server::{AppState, run_with_control};
use protocol::{
    ClientToServerMsg, Hello, ServerToClientMsg, SessionId, Size, Welcome, decode_server,
    decompress_lines, encode_client, encode_hello,
};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use web_terminal::screen::Screen;

pub type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The directory's signing key for every host of this test binary.
pub static SIGNER: LazyLock<TicketSigner> = LazyLock::new(TicketSigner::generate);

pub const SIZE: Size = Size { cols: 80, rows: 24 };

/// How long a test waits for anything the host does.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// Tests count every line that scrolled by, so the client's screen keeps
/// all of them (the page keeps `SCROLLBACK_LINES`).
const KEEP_EVERY_LINE: usize = usize::MAX;

/// How a test host is set up.
pub struct HostOptions {
    pub name: String,
    pub store: Option<StoreConfig>,
    pub idle_timeout: Duration,
    pub max_connections_per_address: usize,
    pub host_token: Option<String>,
    pub tls: Option<Arc<rustls::ServerConfig>>,
    /// Where `host-server drain` reaches this host (`--control-socket`).
    pub control_socket: Option<std::path::PathBuf>,
}

impl HostOptions {
    pub fn new(name: &str) -> HostOptions {
        HostOptions {
            name: name.into(),
            store: None,
            idle_timeout: Duration::from_secs(60),
            max_connections_per_address: host_server::DEFAULT_MAX_CONNECTIONS_PER_ADDRESS,
            host_token: None,
            tls: None,
            control_socket: None,
        }
    }

    pub fn store(mut self, store: StoreConfig) -> HostOptions {
        self.store = Some(store);
        self
    }
}

pub struct Host {
    pub port: u16,
    pub name: String,
    pub registry: Arc<Registry>,
    pub store: Option<Arc<dyn store::Store>>,
    /// The user every plain `Client::connect` signs in as.
    pub alice: Pass,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

/// A signed-in user: a login the host's store (if any) knows.
#[derive(Clone)]
pub struct Pass {
    pub user: String,
    pub login: [u8; 32],
}

impl Pass {
    /// Claims for `session` at `epoch` on `host`, valid for a minute.
    pub fn claims(&self, host: &str, session: SessionId, epoch: u64) -> Claims {
        let now = now_ms();
        Claims {
            user: self.user.clone(),
            session: session.0,
            host: host.into(),
            epoch,
            login: self.login,
            max_sessions: 10,
            share: None,
            record: None,
            issued_at_ms: now,
            expires_at_ms: now + 60_000,
        }
    }

    pub fn ticket(&self, host: &str, session: SessionId, epoch: u64) -> String {
        SIGNER.sign(&self.claims(host, session, epoch)).unwrap()
    }
}

/// Signs `user` in: an account and a live login in `store`, as the
/// directory's login page makes them; without a store, just a login id.
pub async fn sign_in(store: Option<&Arc<dyn store::Store>>, user: &str) -> Pass {
    let token = LoginToken::generate();
    if let Some(store) = store {
        match store.create_account(user, "not-a-real-hash").await {
            Ok(()) | Err(store::StoreError::Duplicate(_)) => {}
            Err(error) => panic!("creating the account {user}: {error}"),
        }
        store
            .create_login(&token.id().to_string(), user, 3_600_000)
            .await
            .unwrap();
    }
    Pass {
        user: user.into(),
        login: token.id().0,
    }
}

pub async fn start_host() -> Host {
    start_host_with("h-test", None).await
}

pub async fn start_host_with(name: &str, store: Option<StoreConfig>) -> Host {
    let mut options = HostOptions::new(name);
    options.store = store;
    start(options).await
}

/// The sandbox every test host runs its sessions in, as a real host does
/// (`--isolation auto`: per-user when the tests run as root).
pub fn test_sandbox(host: &str) -> Sandbox {
    let options = SandboxOptions {
        isolation: Isolation::parse("auto").unwrap(),
        bwrap: "/usr/bin/bwrap".into(),
        system_root: "/".into(),
        network: SessionNetwork::Host,
        limits: Limits::default(),
        uid_range: "200000-299999".parse().unwrap(),
        runtime_dir: std::env::temp_dir().join("thinline-tests"),
    };
    Sandbox::new(options, host).expect("the test sandbox")
}

pub async fn start(options: HostOptions) -> Host {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let metrics = Arc::new(Metrics::default());
    let store = options.store.as_ref().map(|s| s.store.clone());
    let registry = Registry::new(
        SessionConfig {
            host: options.name.clone(),
            program: ProgramSpec {
                program: "/bin/bash".into(),
                args: vec!["--noprofile".into(), "--norc".into()],
                login: false,
                cwd: Some(std::env::temp_dir()),
                home: None,
                env: vec![("PS1".into(), "$ ".into())],
                download_key: None,
            },
            sandbox: Arc::new(test_sandbox(&options.name)),
            idle_timeout: options.idle_timeout,
            persist_interval: Duration::from_millis(100),
            transfers: host_server::files::Transfers::new(1 << 30, 1 << 30),
        },
        options.store,
        10,
        metrics.clone(),
    );
    let scheme = if options.tls.is_some() {
        "https"
    } else {
        "http"
    };
    let mut state = AppState::standalone(
        registry.clone(),
        metrics,
        TicketVerifier::new(vec![SIGNER.public_key()]),
        vec![format!("{scheme}://127.0.0.1:{port}")],
    );
    state.connections = AddressLimiter::new(options.max_connections_per_address);
    state.host_token = options.host_token.map(HostToken);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let control = match &options.control_socket {
        Some(path) => Some(host_server::control::bind(path).await.unwrap()),
        None => None,
    };
    tokio::spawn(run_with_control(
        listener,
        options.tls,
        state,
        None,
        control,
        async {
            let _ = rx.await;
        },
    ));
    let alice = sign_in(store.as_ref(), "alice").await;
    Host {
        port,
        name: options.name,
        registry,
        store,
        alice,
        _shutdown: tx,
    }
}

impl Host {
    /// The epoch a ticket for `session` must name here: the running
    /// session's, else its record's, else 1 (a new session).
    pub async fn epoch_of(&self, session: SessionId) -> u64 {
        if let Some(handle) = self.registry.get(&session) {
            return handle.epoch;
        }
        if let Some(store) = &self.store
            && let Some(record) = store.get_session(&session.to_string()).await.unwrap()
        {
            return record.epoch;
        }
        1
    }

    /// Waits until `session` no longer runs here.
    pub async fn wait_session_gone(&self, session: SessionId, what: &str) {
        testkit::wait_until(PATIENCE, what, || async {
            Ok(match self.registry.get(&session) {
                None => Ok(()),
                Some(_) => Err(format!("{session} still runs")),
            })
        })
        .await
        .unwrap();
    }

    /// A WebSocket to this host with an allowed Origin, before any hello.
    pub async fn socket(&self) -> Socket {
        let mut request = format!("ws://127.0.0.1:{}/ws", self.port)
            .into_client_request()
            .unwrap();
        request.headers_mut().insert(
            "origin",
            format!("http://127.0.0.1:{}", self.port).parse().unwrap(),
        );
        let (socket, _) = tokio_tungstenite::connect_async(request).await.unwrap();
        socket
    }
}

pub struct Client {
    pub socket: Socket,
    pub welcome: Welcome,
    pub screen: Screen,
    pub next_input: u64,
    /// The history fetch in flight, by its `before`: one at a time, as the
    /// shipping client does.
    fetching: Option<u64>,
}

impl Client {
    /// Alice opens `session` (its current epoch), or a new one.
    pub async fn connect(host: &Host, session: Option<SessionId>) -> Client {
        let session = session.unwrap_or_else(new_session_id);
        let epoch = host.epoch_of(session).await;
        let ticket = host.alice.ticket(&host.name, session, epoch);
        Client::open(host, ticket, session)
            .await
            .unwrap_or_else(|code| panic!("refused with {code}"))
    }

    /// Sends a hello with `ticket` for `session`: the client, or the close
    /// code the host refused it with.
    pub async fn open(host: &Host, ticket: String, session: SessionId) -> Result<Client, u16> {
        let mut socket = host.socket().await;
        let hello = Hello {
            ticket,
            session,
            size: SIZE,
        };
        socket
            .send(Message::Binary(encode_hello(&hello).into()))
            .await
            .unwrap();
        let welcome = match first_msg(&mut socket).await? {
            ServerToClientMsg::Welcome(welcome) => welcome,
            other => panic!("expected a welcome, got {other:?}"),
        };
        let mut screen = Screen::with_capacity(SIZE, KEEP_EVERY_LINE);
        screen.begin_attach(false, welcome.history);
        Ok(Client {
            socket,
            next_input: welcome.input_seq + 1,
            welcome,
            screen,
            fetching: None,
        })
    }

    pub async fn send(&mut self, msg: ClientToServerMsg) {
        self.socket
            .send(Message::Binary(encode_client(&msg).into()))
            .await
            .unwrap();
    }

    pub async fn type_text(&mut self, text: &str) {
        let seq = self.next_input;
        self.next_input += 1;
        self.send(ClientToServerMsg::Input {
            seq,
            data: text.as_bytes().to_vec(),
        })
        .await;
    }

    /// At the shell's prompt, runs `command` and waits for a row that
    /// reads exactly `expected`.
    pub async fn run_at_prompt(&mut self, command: &str, expected: &str) {
        self.wait_screen("the prompt", |rows| contains(rows, "$"))
            .await;
        self.type_text(&format!("{command}\r")).await;
        self.wait_screen(expected, |rows| rows.iter().any(|r| r == expected))
            .await;
    }

    /// The visible rows, without trailing blanks.
    pub fn rows(&self) -> Vec<String> {
        (0..self.screen.size().rows)
            .map(|r| self.screen.row_text(r))
            .collect()
    }

    /// Every line that scrolled off the screen, oldest first.
    pub fn history(&self) -> Vec<String> {
        self.screen.history().map(|line| line.text()).collect()
    }

    /// Applies messages until `done` holds for the screen, acking frames.
    pub async fn wait_screen(&mut self, what: &str, done: impl Fn(&[String]) -> bool) {
        self.wait_until(what, |client| done(&client.rows())).await;
    }

    /// Applies messages until `done` holds for the client, acking frames.
    pub async fn wait_until(&mut self, what: &str, done: impl Fn(&Client) -> bool) {
        let deadline = Instant::now() + PATIENCE;
        while !done(self) {
            assert!(
                Instant::now() < deadline,
                "timed out waiting for {what}; screen:\n{}",
                self.screen.text()
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
            ServerToClientMsg::History { start, lines } => {
                let lines = decompress_lines(&lines).unwrap();
                if self.fetching == Some(start + lines.len() as u64) {
                    self.fetching = None;
                }
                self.screen.apply_history(start, lines);
            }
            ServerToClientMsg::Frame(frame) => {
                let seq = frame.seq;
                self.screen.apply_frame(frame);
                self.send(ClientToServerMsg::Ack { frame: seq }).await;
            }
            _ => {}
        }
        if self.fetching.is_none()
            && let Some((before, from)) = self.screen.history_wanted()
        {
            self.fetching = Some(before);
            self.send(ClientToServerMsg::FetchHistory { before, from })
                .await;
        }
    }
}

/// The first message, or the close code if the host closed instead.
pub async fn first_msg(socket: &mut Socket) -> Result<ServerToClientMsg, u16> {
    loop {
        let next = tokio::time::timeout(Duration::from_secs(10), socket.next())
            .await
            .expect("no answer to the hello in time");
        match next {
            Some(Ok(Message::Binary(bytes))) => return Ok(decode_server(&bytes).unwrap()),
            Some(Ok(Message::Close(Some(frame)))) => return Err(frame.code.into()),
            Some(Ok(_)) => continue,
            other => panic!("socket ended without a close frame: {other:?}"),
        }
    }
}

pub async fn next_msg(socket: &mut Socket) -> ServerToClientMsg {
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
pub async fn close_code(socket: &mut Socket) -> u16 {
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

pub fn contains(rows: &[String], needle: &str) -> bool {
    rows.iter().any(|row| row.contains(needle))
}

/// A fresh SQLite store in `dir`.
pub async fn sqlite(dir: &std::path::Path) -> Arc<dyn store::Store> {
    Arc::new(
        store::SqliteStore::open(&dir.join("db.sqlite"))
            .await
            .unwrap(),
    )
}
