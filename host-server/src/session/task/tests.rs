//! The session task end to end, with the test playing the program (the
//! fake PTY of `pty::fake`) and tokio's clock paused, so the task's bounds
//! (reading a hung-up program's last words, waiting for its exit, the
//! store's flush) pass in no real time and no test waits on a timer.

use std::time::Duration;

use futures_util::FutureExt;
use protocol::{ClientToServerMsg, CloseCode, ServerToClientMsg, SessionId, Size};
use store::{SessionState, Store};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

use super::super::core::{Command, CoreSetup};
use super::super::{
    Outgoing, SessionCmd, SessionConfig, SessionHandle, SessionStart, outgoing_channel, rows_text,
    spawn,
};
use crate::emulator::{CellBudget, SCROLLBACK_LINES};
use crate::metrics::Metrics;
use crate::persist::{PersistQueue, Persister};
use crate::procfs::ProcessFacts;
use crate::pty::ProgramSpec;
use crate::pty::fake::{self, FakeEvent, FakeLauncher, FakeProgram};
use crate::registry::launch::new_record;
use crate::sandbox::{Identity, Isolation, Sandbox, SandboxOptions, SessionNetwork};
use std::sync::{Arc, Mutex};

const ID: SessionId = SessionId([9; 16]);
const HOST: &str = "h1";

fn setup(persist: bool) -> CoreSetup {
    CoreSetup {
        id: ID,
        host: HOST.into(),
        epoch: 1,
        size: Size::default(),
        budget: CellBudget::default(),
        idle_timeout: Duration::from_secs(3600),
        persist_interval: persist.then_some(Duration::from_millis(100)),
        restored: None,
        rerun: None,
        recording: None,
        metrics: Arc::new(Metrics::default()),
    }
}

fn sh() -> ProgramSpec {
    ProgramSpec {
        program: "/bin/sh".into(),
        args: Vec::new(),
        login: false,
        cwd: None,
        home: None,
        env: Vec::new(),
        download_key: None,
    }
}

/// A session task running a fake program.
struct Running {
    handle: SessionHandle,
    program: FakeProgram,
    /// Resolves when the task has ended (its `on_exit` ran).
    ended: oneshot::Receiver<()>,
}

fn run(setup: CoreSetup, persistence: Option<Arc<PersistQueue>>) -> Running {
    let (program, fake) = fake::program();
    let (exited, ended) = oneshot::channel();
    let handle = spawn(
        setup,
        program,
        persistence,
        None,
        "alice".into(),
        move || {
            let _ = exited.send(());
        },
    );
    Running {
        handle,
        program: fake,
        ended,
    }
}

/// A store holding the session's record, and a real persister writing
/// the session's queue into it.
async fn store_and_persister() -> (Arc<store::MemoryStore>, Arc<PersistQueue>) {
    let store = Arc::new(store::MemoryStore::new());
    let record = new_record(ID, "alice", &sh(), Size::default(), HOST);
    store.create_session(&record).await.unwrap();
    let queue = Arc::new(PersistQueue::default());
    let persister = Persister {
        store: store.clone(),
        session: ID.to_string(),
        epoch: 1,
        host: HOST.into(),
        queue: queue.clone(),
        metrics: Arc::new(Metrics::default()),
    };
    tokio::spawn(persister.run());
    (store, queue)
}

/// Attaches connection `conn` as the ws edge does, with a channel of
/// `capacity`.
async fn attach(handle: &SessionHandle, conn: u64, size: Size, tx: mpsc::Sender<Outgoing>) {
    let (done, attached) = oneshot::channel();
    let attach = SessionCmd::Attach {
        conn,
        created: true,
        size,
        viewer: None,
        tx,
        done,
    };
    handle.tx.send(attach).await.unwrap();
    attached.await.unwrap();
}

/// Waits for `future`, which must end while anything in the test can
/// still happen: time is paused, so the bound passes only once every task
/// is idle for good, and then it fails the test rather than hanging it.
async fn eventually<T>(what: &str, future: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(3600), future)
        .await
        .unwrap_or_else(|_| panic!("{what} never happened"))
}

/// Reads messages (acknowledging frames) until `until` accepts one.
async fn read_until(
    handle: &SessionHandle,
    conn: u64,
    rx: &mut mpsc::Receiver<Outgoing>,
    mut until: impl FnMut(&Outgoing) -> bool,
) -> Vec<Outgoing> {
    let mut seen = Vec::new();
    while let Some(out) = eventually("the awaited message", rx.recv()).await {
        if let Outgoing::Msg(ServerToClientMsg::Frame(frame)) = &out {
            let ack = ClientToServerMsg::Ack { frame: frame.seq };
            let client = SessionCmd::Core(Command::Client { conn, msg: ack });
            let _ = handle.tx.send(client).await;
        }
        let done = until(&out);
        seen.push(out);
        if done {
            return seen;
        }
    }
    panic!("the session closed the channel first; it sent {seen:?}");
}

fn shows(out: &Outgoing, text: &str) -> bool {
    let Outgoing::Msg(ServerToClientMsg::Frame(frame)) = out else {
        return false;
    };
    rows_text(frame).contains(text)
}

fn saved_text(stored: &store::StoredScreen) -> String {
    let saved = crate::persist::decode_screen(&stored.screen).unwrap();
    saved
        .rows
        .iter()
        .flat_map(|line| &line.runs)
        .map(|run| run.text.as_str())
        .collect()
}

#[tokio::test(start_paused = true)]
async fn a_drain_persists_the_last_screen_before_it_hangs_up() {
    let (store, queue) = store_and_persister().await;
    let mut session = run(setup(true), Some(queue));
    let (tx, mut rx) = outgoing_channel();
    attach(&session.handle, 1, Size::default(), tx).await;
    session
        .program
        .output
        .write_all(b"unsaved work")
        .await
        .unwrap();
    read_until(&session.handle, 1, &mut rx, |out| {
        shows(out, "unsaved work")
    })
    .await;

    // At the moment the program is told to go, the store must already
    // hold the screen it was showing.
    let at_hang_up = Arc::new(Mutex::new(None));
    let seen = at_hang_up.clone();
    let observer = store.clone();
    session.program.on_hang_up(move || {
        let stored = observer.load_screen(&ID.to_string()).now_or_never();
        *seen.lock().unwrap() = Some(stored);
    });
    let terminate = SessionCmd::Core(Command::Terminate {
        close: CloseCode::GoingAway,
    });
    session.handle.tx.send(terminate).await.unwrap();
    eventually("the end", &mut session.ended).await.unwrap();

    let stored = at_hang_up
        .lock()
        .unwrap()
        .take()
        .expect("the program was hung up")
        .expect("the store answers at once")
        .unwrap()
        .expect("a screen was saved before the hang-up");
    assert!(saved_text(&stored).contains("unsaved work"));
    assert_eq!(stored.saved_by, HOST);
    // The program ignored the hang-up: it was killed after the grace.
    assert_eq!(
        session.program.events(),
        [FakeEvent::HungUp, FakeEvent::Killed]
    );
    // The client is told to go elsewhere, and shown no exit status.
    let rest: Vec<Outgoing> = std::iter::from_fn(|| rx.try_recv().ok()).collect();
    assert!(matches!(
        rest.last(),
        Some(Outgoing::Close(CloseCode::GoingAway))
    ));
    assert!(
        !rest
            .iter()
            .any(|out| matches!(out, Outgoing::Msg(ServerToClientMsg::Exited { .. })))
    );
    let record = store.get_session(&ID.to_string()).await.unwrap().unwrap();
    assert_eq!(record.state, SessionState::Running, "it lives on elsewhere");
}

#[tokio::test(start_paused = true)]
async fn a_program_that_exits_ends_the_session_with_its_status_and_its_facts_kept() {
    let (store, queue) = store_and_persister().await;
    let mut session = run(setup(true), Some(queue));
    session.program.set_facts(ProcessFacts {
        cwd: Some("/home/alice/src".into()),
        foreground: Some("vim notes.txt".into()),
    });
    let (tx, mut rx) = outgoing_channel();
    attach(&session.handle, 1, Size::default(), tx).await;
    session.program.output.write_all(b"bye\r\n").await.unwrap();
    read_until(&session.handle, 1, &mut rx, |out| shows(out, "bye")).await;

    // The program closes its terminal and exits by itself.
    session.program.output.shutdown().await.unwrap();
    session.program.exit(Some(7));
    let rest = read_until(&session.handle, 1, &mut rx, |out| {
        matches!(out, Outgoing::Close(_))
    })
    .await;
    assert!(matches!(
        rest[rest.len() - 2],
        Outgoing::Msg(ServerToClientMsg::Exited { status: Some(7) })
    ));
    assert!(matches!(
        rest.last(),
        Some(Outgoing::Close(CloseCode::SessionEnded))
    ));
    eventually("the end", &mut session.ended).await.unwrap();
    assert_eq!(session.program.events(), [], "nothing hung up or killed");

    let record = store.get_session(&ID.to_string()).await.unwrap().unwrap();
    assert_eq!(record.state, SessionState::Ended);
    assert_eq!(record.cwd, "/home/alice/src");
    assert_eq!(record.foreground.as_deref(), Some("vim notes.txt"));
}

#[tokio::test(start_paused = true)]
async fn input_reaches_the_program_once_in_order_and_is_acknowledged() {
    let mut session = run(setup(false), None);
    let (tx, mut rx) = outgoing_channel();
    let size = Size {
        cols: 100,
        rows: 30,
    };
    attach(&session.handle, 1, size, tx).await;
    assert_eq!(session.program.events(), [FakeEvent::Resized(size)]);
    for (seq, data) in [(1, "ls"), (2, " -l"), (2, " -l"), (3, "\r")] {
        let msg = ClientToServerMsg::Input {
            seq,
            data: data.into(),
        };
        let client = SessionCmd::Core(Command::Client { conn: 1, msg });
        session.handle.tx.send(client).await.unwrap();
    }
    let mut typed = [0u8; 6];
    session.program.input.read_exact(&mut typed).await.unwrap();
    assert_eq!(&typed, b"ls -l\r");
    let seen = read_until(&session.handle, 1, &mut rx, |out| {
        matches!(out, Outgoing::Msg(ServerToClientMsg::InputAck { seq: 3 }))
    })
    .await;
    let acks: Vec<u64> = seen
        .iter()
        .filter_map(|out| match out {
            Outgoing::Msg(ServerToClientMsg::InputAck { seq }) => Some(*seq),
            _ => None,
        })
        .collect();
    assert_eq!(acks.last(), Some(&3));
    assert!(acks.windows(2).all(|pair| pair[0] <= pair[1]));
    // The duplicate was not written: nothing more is waiting.
    assert!(
        session
            .program
            .input
            .read(&mut typed)
            .now_or_never()
            .is_none()
    );
}

#[tokio::test(start_paused = true)]
async fn a_client_that_stops_reading_is_cut_off_while_the_program_runs_on() {
    let mut session = run(setup(false), None);
    // A connection that reads nothing, with room for two messages.
    let (tx, mut rx) = mpsc::channel(2);
    attach(&session.handle, 1, Size::default(), tx).await;
    // Far more output than the fake terminal buffers: it is all read only
    // if the task never waits for the client.
    let flood: Vec<u8> = (0..40_000)
        .flat_map(|i| format!("line {i}\r\n").into_bytes())
        .collect();
    let output = &mut session.program.output;
    eventually("the program's output being read", output.write_all(&flood))
        .await
        .unwrap();
    output.write_all(b"\x1b[2Jdone").await.unwrap();
    // A flood's frame waits for the next refresh: the client is cut off
    // when it comes, however long it is held back.
    eventually("the client being cut off", async {
        while !rx.is_closed() {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
    })
    .await;

    // The client got what fitted, and then its channel was dropped.
    let mut received = 0;
    while eventually("the client being cut off", rx.recv())
        .await
        .is_some()
    {
        received += 1;
    }
    assert_eq!(received, 2);
    // The session runs on without it: a new client sees the newest screen.
    let (tx, mut rx) = outgoing_channel();
    attach(&session.handle, 2, Size::default(), tx).await;
    read_until(&session.handle, 2, &mut rx, |out| shows(out, "done")).await;
}

#[tokio::test(start_paused = true)]
async fn the_store_keeps_as_many_lines_as_the_emulator_holds() {
    let (_store, queue) = store_and_persister().await;
    let session = run(setup(true), Some(queue.clone()));
    let wide = Size {
        cols: 1000,
        rows: 500,
    };
    let (tx, _rx) = outgoing_channel();
    attach(&session.handle, 1, wide, tx).await;
    let budget = CellBudget::default();
    let held = budget.history_lines(budget.fit(wide).granted);
    assert!(held < SCROLLBACK_LINES);
    assert_eq!(queue.keep_lines(), held);
    let (tx, _rx) = outgoing_channel();
    attach(&session.handle, 2, Size::default(), tx).await;
    assert_eq!(queue.keep_lines(), SCROLLBACK_LINES);
}

#[tokio::test(start_paused = true)]
async fn start_launches_the_program_at_the_size_it_is_granted() {
    let sandbox = SandboxOptions {
        isolation: Isolation::None,
        bwrap: "/usr/bin/bwrap".into(),
        system_root: "/".into(),
        network: SessionNetwork::Host,
        limits: Default::default(),
        uid_range: "200000-299999".parse().unwrap(),
        runtime_dir: std::env::temp_dir(),
    };
    let program = sh();
    let config = SessionConfig {
        host: HOST.into(),
        program: program.clone(),
        sandbox: Arc::new(Sandbox::new(sandbox, HOST).unwrap()),
        idle_timeout: Duration::from_secs(60),
        persist_interval: Duration::from_millis(100),
        transfers: crate::files::Transfers::new(1 << 30, 1 << 30),
    };
    let start = SessionStart {
        id: ID,
        owner: "alice".into(),
        identity: Identity {
            user: "alice".into(),
            uid: 1000,
            gid: 1000,
        },
        // Beyond what the protocol allows: the program gets what fits.
        size: Size {
            cols: 5000,
            rows: 3000,
        },
        program,
        epoch: 3,
        persistence: None,
        restored: None,
        rerun: None,
        recording: None,
    };
    let launcher = FakeLauncher::default();
    let (exited, ended) = oneshot::channel();
    let metrics = Arc::new(Metrics::default());
    let handle = super::super::start(start, &config, &launcher, metrics, move || {
        let _ = exited.send(());
    })
    .unwrap();
    assert_eq!((handle.id, handle.epoch, &*handle.owner), (ID, 3, "alice"));
    let (spec, size, mut program) = launcher.take().expect("one program launched");
    assert_eq!(spec.program, std::path::Path::new("/bin/sh"));
    assert_eq!(size, Size::MAX);

    // Its welcome names this host and epoch; the program's end ends it.
    let (tx, mut rx) = outgoing_channel();
    attach(&handle, 1, size, tx).await;
    let Some(Outgoing::Msg(ServerToClientMsg::Welcome(welcome))) = rx.recv().await else {
        panic!("a welcome first");
    };
    assert_eq!((welcome.host.as_str(), welcome.epoch), (HOST, 3));
    program.output.shutdown().await.unwrap();
    program.exit(Some(0));
    eventually("the end", ended).await.unwrap();
}
