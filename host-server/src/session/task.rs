//! The session task: the only code between a session's core and the world.
//!
//! It waits on the program's output, the next command, the core's next
//! deadline and (when there is input) the program's readiness to take it,
//! hands each event to the core with the time, and carries out the core's
//! effects: writing to the PTY, sending to connections, persisting,
//! hanging up. It decides nothing the core could decide; what it learns
//! only by doing IO (a connection's channel is full, the program went
//! away, its exit status) goes back to the core as a `handle_*` call.
//!
//! Time is tokio's clock (`now`), the same the deadlines sleep on, so tests
//! with paused time (`tokio::time::pause`) drive the whole task.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;

use super::core::{Command, Effect, SessionCore, Snapshot};
use super::{Outgoing, SessionCmd};
use crate::files::SessionFiles;
use crate::persist::PersistQueue;
use crate::procfs::ProcessFacts;
use crate::pty::{Program, ProgramProcess, TerminalInput};

/// Bytes taken from the PTY per read.
pub(super) const READ_BUFFER: usize = 64 * 1024;

/// Longest a hung-up program's last output is read for.
const HANG_UP_GRACE: Duration = Duration::from_secs(2);

/// Longest the task waits for a program to exit before it kills it.
const EXIT_GRACE: Duration = Duration::from_secs(2);

/// Longest a drain or an ending waits for the store to take the last state.
const FLUSH_GRACE: Duration = Duration::from_secs(2);

/// The time, from tokio's clock: the one the task's sleeps use, paused and
/// advanced by tests.
pub(super) fn now() -> Instant {
    tokio::time::Instant::now().into_std()
}

/// Runs the session until the core says it has ended.
pub(super) async fn run(
    mut core: SessionCore,
    program: Program,
    mut commands: mpsc::Receiver<SessionCmd>,
    persistence: Option<Arc<PersistQueue>>,
    files: Option<SessionFiles>,
) {
    let Program {
        mut output,
        input,
        process,
    } = program;
    let mut world = World {
        input,
        process,
        clients: HashMap::new(),
        persistence: persistence.map(|queue| PersistLink {
            queue,
            last: store::SessionUpdate::default(),
        }),
        hung_up: false,
        files,
    };
    let mut buf = vec![0u8; READ_BUFFER];
    tracing::info!(session = %core.id(), "session started");
    loop {
        world.carry_out(&mut core).await;
        if !core.is_running() {
            break;
        }
        let deadline = core.poll_timeout();
        let takes_commands = core.takes_commands();
        let writing = core.input_to_write().is_some();
        tokio::select! {
            read = output.read(&mut buf) => match read {
                Ok(0) | Err(_) => core.handle_program_gone(now()),
                Ok(n) => read_ready(&mut core, &mut output, &mut buf, n, &*world.input),
            },
            written = async {
                let pending = core.input_to_write().unwrap_or_default();
                world.input.write(pending).await
            }, if writing => match written {
                Ok(n) => core.handle_written(n, now()),
                Err(error) => {
                    tracing::warn!(session = %core.id(), %error, "writing input to the program failed");
                    core.handle_program_gone(now());
                }
            },
            command = commands.recv(), if takes_commands => match command {
                Some(command) => world.take_command(&mut core, command).await,
                None => core.handle_commands_closed(now()),
            },
            () = sleep_until(deadline) => {
                core.handle_tty(world.input.tty_modes());
                core.handle_timeout(now());
            }
        }
    }
    world.wind_down(&mut core, &mut output, &mut buf).await;
    if let Some(files) = &world.files {
        files.transfers.end_session(files.session);
    }
}

/// Feeds the core the `first` bytes read and whatever more is ready at
/// once, for as long as the core reads on (one display refresh in a
/// flood), then lets it send its frame.
fn read_ready(
    core: &mut SessionCore,
    output: &mut (dyn AsyncRead + Send + Unpin),
    buf: &mut [u8],
    first: usize,
    terminal: &dyn TerminalInput,
) {
    core.handle_output(&buf[..first], now());
    let mut gone = false;
    while core.reads_on(now()) {
        match output.read(buf).now_or_never() {
            Some(Ok(0)) | Some(Err(_)) => {
                gone = true;
                break;
            }
            Some(Ok(n)) => core.handle_output(&buf[..n], now()),
            None => break,
        }
    }
    // Read after the output: a prompt printed as echo went off goes out
    // with echo off.
    core.handle_tty(terminal.tty_modes());
    core.handle_output_paused(now());
    if gone {
        core.handle_program_gone(now());
    }
}

/// A reply to connection `tx` from work the task does not wait for (a
/// file's answer): sent if the channel has room, as everything is.
fn reply_on(
    tx: &mpsc::Sender<Outgoing>,
) -> impl FnOnce(protocol::ServerToClientMsg) + Send + 'static {
    let tx = tx.clone();
    move |msg| {
        let _ = tx.try_send(Outgoing::Msg(msg));
    }
}

async fn sleep_until(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

/// What the core's effects act on.
struct World {
    input: Box<dyn TerminalInput>,
    process: Box<dyn ProgramProcess>,
    /// The channels of the connections the core may still address: the
    /// attached one, and one being replaced until its close is sent.
    clients: HashMap<u64, mpsc::Sender<Outgoing>>,
    persistence: Option<PersistLink>,
    /// The program was hung up, so its last output is read until it goes.
    hung_up: bool,
    /// Uploads and downloads, on a host that moves files.
    files: Option<SessionFiles>,
}

impl World {
    async fn take_command(&mut self, core: &mut SessionCore, command: SessionCmd) {
        match command {
            SessionCmd::Attach {
                conn,
                created,
                size,
                viewer,
                tx,
                done,
            } => {
                self.clients.insert(conn, tx);
                match viewer {
                    Some((user, role)) => core.handle_watch(conn, user, role),
                    None => core.handle_attach(conn, created, size, now()),
                }
                self.carry_out(core).await;
                let _ = done.send(());
            }
            SessionCmd::Core(command) => {
                let detached = match command {
                    Command::Detach { conn } => Some(conn),
                    _ => None,
                };
                core.handle_command(command, now());
                if let Some(conn) = detached {
                    self.clients.remove(&conn);
                }
            }
        }
    }

    /// Does what the core asks, in order, until it asks nothing more.
    async fn carry_out(&mut self, core: &mut SessionCore) {
        while let Some(effect) = core.poll_effect() {
            match effect {
                Effect::Reply(bytes) => {
                    if self.input.write_all(&bytes).await.is_err() {
                        core.handle_program_gone(now());
                    }
                }
                Effect::Resize(size) => {
                    if let Err(error) = self.input.resize(size) {
                        tracing::warn!(session = %core.id(), %error, "resizing the pty failed");
                    }
                }
                Effect::Send { conn, msg } => {
                    let taken = self
                        .clients
                        .get(&conn)
                        .is_some_and(|tx| tx.try_send(Outgoing::Msg(msg)).is_ok());
                    if !taken {
                        core.handle_client_stalled(conn, now());
                    }
                }
                Effect::Close { conn, code } => {
                    if let Some(tx) = self.clients.remove(&conn) {
                        let _ = tx.try_send(Outgoing::Close(code));
                    }
                }
                Effect::Persist(snapshot) => {
                    if let Some(link) = &mut self.persistence {
                        link.push(snapshot, self.process.facts());
                    }
                }
                Effect::KeepLines(lines) => {
                    if let Some(link) = &self.persistence {
                        link.queue.set_keep_lines(lines);
                    }
                }
                Effect::PersistEnded { at } => {
                    if let Some(link) = &self.persistence {
                        let ended = store::SessionUpdate {
                            state: Some(store::SessionState::Ended),
                            ..Default::default()
                        };
                        link.queue
                            .push(Vec::new(), Vec::new(), Vec::new(), ended, at);
                    }
                }
                Effect::Flush => {
                    if let Some(link) = &self.persistence {
                        let flushed = link.queue.flush();
                        if tokio::time::timeout(FLUSH_GRACE, flushed).await.is_err() {
                            tracing::warn!(session = %core.id(), "the store did not take the last state in time");
                        }
                    }
                }
                Effect::Upload { conn, request } => {
                    if let (Some(files), Some(tx)) = (&self.files, self.clients.get(&conn)) {
                        files.upload(self.process.pid(), &request, reply_on(tx));
                    }
                }
                Effect::Download { conn, key, path } => {
                    if let (Some(files), Some(tx)) = (&self.files, self.clients.get(&conn)) {
                        files.download(self.process.pid(), &key, path, reply_on(tx));
                    }
                }
                Effect::HangUp => {
                    self.process.hang_up();
                    self.hung_up = true;
                }
                Effect::Ended => {}
            }
        }
    }

    /// The program is going: reads its last words if it was hung up
    /// (bounded, in case it ignores the hang-up), waits for its exit
    /// (bounded, then killed) and lets the core end the session.
    async fn wind_down(
        &mut self,
        core: &mut SessionCore,
        output: &mut (dyn AsyncRead + Send + Unpin),
        buf: &mut [u8],
    ) {
        if self.hung_up {
            let last_words = async {
                while let Ok(n) = output.read(buf).await {
                    if n == 0 {
                        break;
                    }
                    core.handle_output(&buf[..n], now());
                }
            };
            let _ = tokio::time::timeout(HANG_UP_GRACE, last_words).await;
        }
        let status = match tokio::time::timeout(EXIT_GRACE, self.process.wait()).await {
            Ok(Ok(status)) => status,
            _ => {
                self.process.kill();
                None
            }
        };
        core.handle_exit(status, now());
        self.carry_out(core).await;
    }
}

/// A session's side of its persister: the queue, and the record's fields
/// as last handed over, so each snapshot carries only what changed.
struct PersistLink {
    queue: Arc<PersistQueue>,
    last: store::SessionUpdate,
}

impl PersistLink {
    fn push(&mut self, snapshot: Snapshot, facts: ProcessFacts) {
        let current = store::SessionUpdate {
            cwd: facts.cwd,
            cols: Some(snapshot.size.cols),
            rows: Some(snapshot.size.rows),
            title: Some(snapshot.title),
            foreground: Some(facts.foreground),
            state: None,
        };
        let update = changed_fields(&self.last, &current);
        self.last = current;
        self.queue.push(
            snapshot.screen,
            snapshot.blocks,
            snapshot.recording,
            update,
            snapshot.changed_at,
        );
    }
}

/// Fields of `current` that differ from `last`.
fn changed_fields(
    last: &store::SessionUpdate,
    current: &store::SessionUpdate,
) -> store::SessionUpdate {
    fn pick<T: Clone + PartialEq>(last: &Option<T>, current: &Option<T>) -> Option<T> {
        if current != last {
            current.clone()
        } else {
            None
        }
    }
    store::SessionUpdate {
        cwd: pick(&last.cwd, &current.cwd),
        cols: pick(&last.cols, &current.cols),
        rows: pick(&last.rows, &current.rows),
        title: pick(&last.title, &current.title),
        foreground: pick(&last.foreground, &current.foreground),
        state: None,
    }
}

#[cfg(test)]
mod tests;
