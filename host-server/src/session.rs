//! One running session: its program, its emulator and its attached client.
//!
//! A session is a sans-IO core (`session::core`, which decides everything:
//! frames, flood control, input order and acknowledgements, attachment,
//! persistence, timeouts and how it ends) inside one tokio task
//! (`session::task`, which only waits on the program, the commands and the
//! core's next deadline, and carries out what the core asks). The task owns
//! everything mutable about the session, so there are no locks on the hot
//! path. Connections talk to it through `SessionCmd`s and receive
//! `Outgoing` messages on their own channel. The task never awaits a
//! client: a client that stops reading is cut off rather than allowed to
//! stall the program.

pub mod core;
#[cfg(test)]
mod footprint;
mod task;

use std::sync::Arc;
use std::time::Duration;

use protocol::{CloseCode, ServerToClientMsg, SessionId, Size};
use tokio::sync::{mpsc, oneshot};

pub use self::core::Command;
use self::core::{CoreSetup, SessionCore};
use crate::emulator::CellBudget;
use crate::files::access::Who;
use crate::files::{SessionFiles, Transfers};
use crate::metrics::Metrics;
use crate::persist::PersistQueue;
use crate::pty::{Launcher, Program, ProgramSpec, SpawnError};
use crate::sandbox::{Identity, Sandbox};
use crate::scrollback::Scrollback;

/// Messages from the session task to one connection.
#[derive(Debug)]
pub enum Outgoing {
    Msg(ServerToClientMsg),
    Close(CloseCode),
}

/// Capacity of a connection's outgoing channel. The frame window bounds
/// frames; this bounds the rest (acks, history blocks) for a client that has
/// stopped reading.
const OUTGOING_CAPACITY: usize = 256;

/// Commands a session's channel holds before senders wait. Input beyond
/// `core::MAX_PENDING_INPUT` is not taken off it, so a flood of keystrokes
/// pushes back on the connection and so on the client.
const COMMAND_CAPACITY: usize = 64;

/// What connections (and the registry, to end it) send a session.
#[derive(Debug)]
pub enum SessionCmd {
    /// Make `conn` the session's one client (`SessionCore::handle_attach`),
    /// sending to it on `tx`; `done` is answered once the welcome is there.
    Attach {
        conn: u64,
        /// This connection started the session.
        created: bool,
        size: Size,
        /// A share link's viewer: its user and the role its welcome
        /// states (`SessionCore::handle_watch`); `None` for the owner.
        viewer: Option<(String, protocol::Role)>,
        tx: mpsc::Sender<Outgoing>,
        done: oneshot::Sender<()>,
    },
    /// Anything else, for the core as it is.
    Core(Command),
}

/// The handle the registry keeps.
#[derive(Clone, Debug)]
pub struct SessionHandle {
    pub id: SessionId,
    pub tx: mpsc::Sender<SessionCmd>,
    /// The user the session belongs to: only their tickets attach to it.
    pub owner: Arc<str>,
    /// The epoch this host serves the session at. It never changes while
    /// the session runs here: a move to another host ends it here.
    pub epoch: u64,
}

pub fn outgoing_channel() -> (mpsc::Sender<Outgoing>, mpsc::Receiver<Outgoing>) {
    mpsc::channel(OUTGOING_CAPACITY)
}

pub struct SessionConfig {
    pub host: String,
    pub program: ProgramSpec,
    /// Where and as whom sessions' programs run.
    pub sandbox: Arc<Sandbox>,
    pub idle_timeout: Duration,
    /// Longest a screen change waits before it is handed to the persister.
    pub persist_interval: Duration,
    /// Uploads and downloads in progress, and their limits.
    pub transfers: Arc<Transfers>,
}

/// How a session task persists, when the host has a store.
pub struct Persistence {
    pub queue: Arc<PersistQueue>,
    pub interval: Duration,
    /// The epoch this host holds the session at.
    pub epoch: u64,
}

/// What a new session task starts from.
pub struct SessionStart {
    pub id: SessionId,
    /// The user the session belongs to.
    pub owner: String,
    /// The Unix identity its program runs as.
    pub identity: Identity,
    pub size: Size,
    pub program: ProgramSpec,
    pub epoch: u64,
    pub persistence: Option<Persistence>,
    /// Scrollback and bytes to draw before the program's first output, for
    /// a session restored from the store.
    pub restored: Option<(Scrollback, Vec<u8>)>,
    /// What Enter types to run again what the lost host was running,
    /// offered by the restore notice (`core::CoreSetup::rerun`).
    pub rerun: Option<Vec<u8>>,
    /// Where its recording, if it has one, goes on from.
    pub recording: Option<core::record::RecordingSetup>,
}

/// Starts a session's program with `launcher`, and its task. `on_exit`
/// runs when the task ends, to take the session out of the registry.
pub fn start(
    start: SessionStart,
    config: &SessionConfig,
    launcher: &dyn Launcher,
    metrics: Arc<Metrics>,
    on_exit: impl FnOnce() + Send + 'static,
) -> Result<SessionHandle, SpawnError> {
    let SessionStart {
        id,
        owner,
        identity,
        size,
        mut program,
        epoch,
        persistence,
        restored,
        rerun,
        recording,
    } = start;
    // A key only this program's processes know, which `tl-download` shows
    // with its requests: output that is merely displayed cannot ask.
    let download_key = crate::files::new_download_key();
    program.download_key = Some(download_key.clone());
    let files = SessionFiles {
        session: id,
        transfers: config.transfers.clone(),
        who: Who {
            uid: identity.uid,
            gid: identity.gid,
            become_user: rustix::process::geteuid().is_root(),
        },
        download_key,
    };
    // `SessionConfig` carries no budget yet, so every session gets the
    // default one.
    let budget = CellBudget::default();
    let size = budget.fit(size).granted;
    let running = launcher.launch(&program, size, &identity, &id.to_string())?;
    let setup = CoreSetup {
        id,
        host: config.host.clone(),
        epoch,
        size,
        budget,
        idle_timeout: config.idle_timeout,
        persist_interval: persistence.as_ref().map(|p| p.interval),
        restored,
        rerun,
        recording,
        metrics,
    };
    let queue = persistence.map(|p| p.queue);
    Ok(spawn(
        setup,
        running,
        queue,
        Some(files),
        owner.into(),
        on_exit,
    ))
}

/// Runs a session task for a program already started.
fn spawn(
    setup: CoreSetup,
    program: Program,
    persistence: Option<Arc<PersistQueue>>,
    files: Option<SessionFiles>,
    owner: Arc<str>,
    on_exit: impl FnOnce() + Send + 'static,
) -> SessionHandle {
    let (tx, rx) = mpsc::channel(COMMAND_CAPACITY);
    let handle = SessionHandle {
        id: setup.id,
        tx,
        owner,
        epoch: setup.epoch,
    };
    let core = SessionCore::new(setup, task::now());
    tokio::spawn(async move {
        task::run(core, program, rx, persistence, files).await;
        on_exit();
    });
    handle
}

/// The text of the screen rows a frame carries, for tests that look for
/// what a program printed.
#[cfg(test)]
fn rows_text(frame: &protocol::Frame) -> String {
    frame
        .rows
        .iter()
        .flat_map(|update| &update.line.runs)
        .map(|run| run.text.as_str())
        .collect()
}
