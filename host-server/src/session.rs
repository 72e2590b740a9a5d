//! One running session: its program, its emulator and its attached client.
//!
//! Each session is a single tokio task that owns everything mutable about it
//! (the PTY, the emulator, the scrollback, the input queue, the attached
//! client), so there are no locks on the hot path. Connections talk to it
//! through `SessionCmd`s and receive `Outgoing` messages on their own
//! channel. The task never awaits a client: a client that stops reading is
//! cut off rather than allowed to stall the program.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::FutureExt;
use protocol::{
    CellLayout, ClientToServerMsg, CloseCode, Frame, Line, Run, ServerToClientMsg, SessionId, Size,
    Style, StyleFlags, Welcome,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::{mpsc, oneshot};

use crate::emulator::{CellBudget, Emulator, GridFit};
use crate::metrics::Metrics;
use crate::pacer::{FRAME_WINDOW, FloodClock, FramePacer};
use crate::persist::{self, PersistQueue, SavedScreen};
use crate::procfs::ProcessFacts;
use crate::pty::{self, ProgramSpec, SpawnError};
use crate::sandbox::{Identity, Sandbox};
use crate::scrollback::{BLOCK_LINES, Scrollback};

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

/// Longest scrolled lines wait in the emulator during a flood.
const FLOOD_DRAIN_EVERY: Duration = Duration::from_millis(250);

/// Scrolled lines beyond which output counts as a flood.
const FLOOD_BACKLOG: usize = 1000;

/// Silence after which a flood is over.
const FLOOD_QUIET: Duration = Duration::from_millis(50);

/// Input bytes a session accepts before it stops taking commands, which
/// pushes back on the connection and so on the client.
const MAX_PENDING_INPUT: usize = 256 * 1024;

#[derive(Debug)]
pub enum SessionCmd {
    /// Make `conn` the session's one client. A connection attached before
    /// is closed with `Replaced`: the same user opened the session on
    /// another terminal (hot desking), and the newest one wins.
    Attach {
        conn: u64,
        /// This connection started the session.
        created: bool,
        size: Size,
        tx: mpsc::Sender<Outgoing>,
        done: oneshot::Sender<()>,
    },
    Client {
        conn: u64,
        msg: ClientToServerMsg,
    },
    Detach {
        conn: u64,
    },
    /// Hang up the program; the client is closed with `close`.
    /// `SessionEnded` (its user ended it) ends the session everywhere;
    /// `GoingAway` (drain) persists the last state for a restore
    /// elsewhere; `SessionLost` (fenced or leaseless) writes nothing more.
    Terminate {
        close: CloseCode,
    },
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
}

struct Attached {
    conn: u64,
    tx: mpsc::Sender<Outgoing>,
    pacer: FramePacer,
}

/// Everything the session task mutates besides the PTY halves, so the
/// select loop can borrow the PTY and this separately.
struct State {
    id: SessionId,
    host: String,
    emulator: Emulator,
    scrollback: Scrollback,
    client: Option<Attached>,
    /// Highest input sequence number written to the program.
    applied_input: u64,
    /// Input accepted but not yet written: (seq, bytes, bytes written).
    pending_input: VecDeque<(u64, Vec<u8>)>,
    pending_bytes: usize,
    resize_to: Option<Size>,
    metrics: Arc<Metrics>,
    detached_at: Option<Instant>,
    epoch: u64,
    /// Lines for the attached client's scrollback not sent yet: drained
    /// from the emulator, or a notice (bounded by the scrollback length).
    pending_scrolled: Vec<Line>,
    /// Scrolled lines are being held back in the emulator (see
    /// `drain_scrolled`); they are caught up when the output pauses.
    flooding: bool,
    last_drain: Instant,
    last_output: Instant,
    persistence: Option<PersistState>,
    /// The attached client was told its size request was clamped, and has
    /// asked for nothing that fits since (see `tell_clamped`).
    told_clamped: bool,
}

struct PersistState {
    queue: Arc<PersistQueue>,
    interval: Duration,
    /// When the next snapshot is due; `None` while nothing changed.
    due: Option<Instant>,
    changed_at: Option<Instant>,
    /// Sealed scrollback blocks below this number are already queued.
    blocks_queued: u64,
    child_pid: Option<u32>,
    last: store::SessionUpdate,
}

/// Starts a session's program and its task. `on_exit` runs when the task
/// ends, to take the session out of the registry.
pub fn start(
    start: SessionStart,
    config: &SessionConfig,
    metrics: Arc<Metrics>,
    on_exit: impl FnOnce() + Send + 'static,
) -> Result<SessionHandle, SpawnError> {
    let SessionStart {
        id,
        owner,
        identity,
        size,
        program,
        epoch,
        persistence,
        restored,
    } = start;
    // `SessionConfig` carries no budget yet, so every session gets the
    // default one.
    let budget = CellBudget::default();
    let size = budget.fit(size).granted;
    let spawned = pty::spawn(&program, size, &config.sandbox, &identity, &id.to_string())?;
    let child_pid = spawned.child.id();
    let (tx, rx) = mpsc::channel(64);
    let mut emulator = Emulator::with_budget(size, budget);
    let history = emulator.history_limit();
    let scrollback = match restored {
        Some((mut scrollback, preface)) => {
            emulator.feed(&preface);
            scrollback.set_limit(history);
            scrollback
        }
        None => Scrollback::new(history),
    };
    if let Some(p) = &persistence {
        p.queue.set_keep_lines(history);
    }
    let persistence = persistence.map(|p| PersistState {
        queue: p.queue,
        interval: p.interval,
        due: Some(Instant::now()),
        changed_at: Some(Instant::now()),
        // Restored blocks came from the store; only newer ones are written.
        blocks_queued: scrollback.next_seq(),
        child_pid,
        last: store::SessionUpdate::default(),
    });
    let state = State {
        id,
        host: config.host.clone(),
        emulator,
        scrollback,
        client: None,
        applied_input: 0,
        pending_input: VecDeque::new(),
        pending_bytes: 0,
        resize_to: None,
        metrics,
        detached_at: Some(Instant::now()),
        epoch,
        pending_scrolled: Vec::new(),
        flooding: false,
        last_drain: Instant::now(),
        last_output: Instant::now(),
        persistence,
        told_clamped: false,
    };
    let idle_timeout = config.idle_timeout;
    tokio::spawn(async move {
        run(state, spawned, rx, idle_timeout).await;
        on_exit();
    });
    Ok(SessionHandle {
        id,
        tx,
        owner: owner.into(),
        epoch,
    })
}

async fn run(
    mut state: State,
    spawned: pty::SpawnedPty,
    mut commands: mpsc::Receiver<SessionCmd>,
    idle_timeout: Duration,
) {
    let pty::SpawnedPty {
        mut reader,
        mut writer,
        mut child,
        // Held to the end: dropping it kills whatever the program left.
        cgroup: _cgroup,
    } = spawned;
    let mut buf = vec![0u8; 64 * 1024];
    let mut flood = FloodClock::default();
    let mut offset_in_front = 0usize;
    let mut end_reason = CloseCode::SessionEnded;
    tracing::info!(session = %state.id, "session started");
    loop {
        let sync_deadline = state.emulator.sync_deadline();
        let idle_deadline = match (&state.client, state.detached_at) {
            (None, Some(at)) => Some(at + idle_timeout),
            _ => None,
        };
        let can_take_commands = state.pending_bytes < MAX_PENDING_INPUT;
        let persist_due = state.persistence.as_ref().and_then(|p| p.due);
        let flood_over = state.flooding.then(|| state.last_output + FLOOD_QUIET);
        tokio::select! {
            read = reader.read(&mut buf) => {
                let n = match read {
                    Ok(0) | Err(_) => break,
                    Ok(n) => n,
                };
                state.on_output(&buf[..n]);
                // Keep reading while the program has more to say, up to one
                // display refresh, so a flood becomes one frame per refresh
                // and a lone echo goes out at once.
                let mut ended = false;
                loop {
                    if flood.on_output(Instant::now()) {
                        break;
                    }
                    match reader.read(&mut buf).now_or_never() {
                        Some(Ok(0)) | Some(Err(_)) => {
                            ended = true;
                            break;
                        }
                        Some(Ok(n)) => state.on_output(&buf[..n]),
                        None => break,
                    }
                }
                let replies = state.emulator.take_replies();
                if !replies.is_empty() && writer.write_all(&replies).await.is_err() {
                    break;
                }
                flood.reset();
                state.send_frame();
                if ended {
                    break;
                }
            }
            written = async {
                let (_, front) = &state.pending_input[0];
                writer.write(&front[offset_in_front..]).await
            }, if !state.pending_input.is_empty() => {
                match written {
                    Ok(n) => {
                        offset_in_front += n;
                        state.after_write(&mut offset_in_front);
                    }
                    Err(error) => {
                        tracing::warn!(session = %state.id, %error, "writing input to the program failed");
                        break;
                    }
                }
            }
            command = commands.recv(), if can_take_commands => {
                match command {
                    Some(SessionCmd::Terminate { close }) => {
                        end_reason = close;
                        if close != CloseCode::SessionLost {
                            // Draining: make the latest screen durable
                            // before the program is hung up.
                            state.drain_scrolled(true);
                            state.snapshot();
                            state.flush_persistence().await;
                        }
                        pty::hang_up(&child);
                        // Keep reading until the program is gone, so its
                        // last words reach the emulator; bounded by the
                        // kill-on-drop below if it ignores the hangup.
                        let _ = tokio::time::timeout(Duration::from_secs(2), async {
                            while let Ok(n) = reader.read(&mut buf).await {
                                if n == 0 { break; }
                            }
                        }).await;
                        break;
                    }
                    None => {
                        pty::hang_up(&child);
                        break;
                    }
                    Some(command) => state.on_command(command),
                }
                if let Some(size) = state.resize_to.take()
                    && let Err(error) = writer.resize(pty::pty_size(size))
                {
                    tracing::warn!(session = %state.id, %error, "resizing the pty failed");
                }
            }
            _ = sleep_until_opt(flood_over) => {
                // The flood is over: catch up on the lines it scrolled.
                state.drain_scrolled(true);
                state.send_frame();
            }
            _ = sleep_until_opt(persist_due) => {
                state.snapshot();
            }
            _ = sleep_until_opt(sync_deadline) => {
                state.emulator.flush_sync();
                state.send_frame();
            }
            _ = sleep_until_opt(idle_deadline) => {
                tracing::info!(session = %state.id, "idle timeout: ending the session");
                pty::hang_up(&child);
                break;
            }
        }
    }
    state.drain_scrolled(true);
    // The program is gone or hung up; report its status to the client.
    let status = match tokio::time::timeout(Duration::from_secs(2), child.wait()).await {
        Ok(Ok(status)) => status.code(),
        _ => {
            let _ = child.start_kill();
            None
        }
    };
    tracing::info!(session = %state.id, ?status, "session ended");
    state.send_frame_unpaced();
    if end_reason == CloseCode::SessionEnded {
        // The program ended by itself: the session is over everywhere.
        state.snapshot();
        if let Some(p) = &state.persistence {
            p.queue.push(
                Vec::new(),
                Vec::new(),
                store::SessionUpdate {
                    state: Some(store::SessionState::Ended),
                    ..Default::default()
                },
                Instant::now(),
            );
        }
        state.flush_persistence().await;
    }
    if let Some(client) = state.client.take() {
        // Only a program that ended by itself has an exit status to show; a
        // drained or lost session lives on elsewhere.
        if end_reason == CloseCode::SessionEnded {
            let _ = client
                .tx
                .try_send(Outgoing::Msg(ServerToClientMsg::Exited { status }));
        }
        let _ = client.tx.try_send(Outgoing::Close(end_reason));
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

/// `text` as dim lines in the style of the restore notice, wrapped at the
/// terminal's width so the client shows all of it.
fn notice_lines(text: &str, cols: u16) -> Vec<Line> {
    let chars: Vec<char> = format!("── thinline: {text} ──").chars().collect();
    let pieces: Vec<&[char]> = chars.chunks(usize::from(cols.max(1))).collect();
    let last = pieces.len().saturating_sub(1);
    pieces
        .iter()
        .enumerate()
        .map(|(i, piece)| Line {
            runs: vec![Run {
                style: Style {
                    flags: StyleFlags(StyleFlags::DIM),
                    ..Style::default()
                },
                layout: CellLayout::Narrow,
                text: piece.iter().collect(),
            }],
            wrapped: i < last,
        })
        .collect()
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at.into()).await,
        None => std::future::pending().await,
    }
}

impl State {
    fn on_output(&mut self, bytes: &[u8]) {
        self.last_output = Instant::now();
        self.metrics.pty_bytes_read(bytes.len());
        self.emulator.feed(bytes);
        self.persist_soon();
    }

    fn persist_soon(&mut self) {
        if let Some(p) = &mut self.persistence
            && p.due.is_none()
        {
            let now = Instant::now();
            p.due = Some(now + p.interval);
            p.changed_at = Some(now);
        }
    }

    /// Moves lines that scrolled off the emulator into the scrollback and
    /// the attached client's queue.
    ///
    /// A large backlog (a flood) is drained at most every
    /// `FLOOD_DRAIN_EVERY`: the emulator keeps the newest `history_limit`
    /// lines by itself, and most lines converted at every frame would be
    /// pushed out of the scrollback by the output that follows anyway.
    /// `force` drains regardless.
    fn drain_scrolled(&mut self, force: bool) {
        let backlog = self.emulator.scrolled_len();
        if backlog == 0 {
            self.flooding = false;
            return;
        }
        if !force && backlog > FLOOD_BACKLOG && self.last_drain.elapsed() < FLOOD_DRAIN_EVERY {
            self.flooding = true;
            return;
        }
        self.flooding = false;
        self.last_drain = Instant::now();
        let scrolled = self.emulator.drain_scrolled();
        if scrolled.is_empty() {
            return;
        }
        self.scrollback.push(&scrolled);
        if self.client.is_some() {
            self.pending_scrolled.extend(scrolled);
            let excess = self
                .pending_scrolled
                .len()
                .saturating_sub(self.scrollback.limit());
            self.pending_scrolled.drain(..excess);
        }
    }

    /// Hands the current state to the persister.
    fn snapshot(&mut self) {
        if self.persistence.is_none() {
            return;
        }
        self.drain_scrolled(false);
        let saved = SavedScreen {
            size: self.emulator.size(),
            rows: self.emulator.visible_lines(),
            cursor: self.emulator.cursor(),
            modes: self.emulator.modes(),
            title: self.emulator.title().map(str::to_owned),
            tail: self.scrollback.open_tail().to_vec(),
            next_block_seq: self.scrollback.next_seq(),
        };
        let title = self.emulator.title().map(str::to_owned);
        let size = self.emulator.size();
        let Some(p) = &mut self.persistence else {
            return;
        };
        let blocks: Vec<store::ScrollbackBlock> = self
            .scrollback
            .sealed_since(p.blocks_queued)
            .map(|(seq, block)| store::ScrollbackBlock {
                seq,
                lines: block.count,
                data: persist::encode_block(block),
            })
            .collect();
        p.blocks_queued = self.scrollback.next_seq();
        let facts = p.child_pid.map(ProcessFacts::read).unwrap_or_default();
        let current = store::SessionUpdate {
            cwd: facts.cwd,
            cols: Some(size.cols),
            rows: Some(size.rows),
            title: Some(title),
            foreground: Some(facts.foreground),
            state: None,
        };
        let update = changed_fields(&p.last, &current);
        p.last = current;
        let changed_at = p.changed_at.take().unwrap_or_else(Instant::now);
        p.due = None;
        p.queue
            .push(persist::encode_screen(&saved), blocks, update, changed_at);
    }

    async fn flush_persistence(&mut self) {
        if let Some(p) = &self.persistence {
            let flushed = p.queue.flush();
            if tokio::time::timeout(Duration::from_secs(2), flushed)
                .await
                .is_err()
            {
                tracing::warn!(session = %self.id, "the store did not take the last state in time");
            }
        }
    }

    fn on_command(&mut self, command: SessionCmd) {
        match command {
            SessionCmd::Attach {
                conn,
                created,
                size,
                tx,
                done,
            } => {
                self.attach(conn, created, size, tx);
                let _ = done.send(());
            }
            SessionCmd::Detach { conn } => {
                if self.client.as_ref().is_some_and(|c| c.conn == conn) {
                    self.client = None;
                    self.detached_at = Some(Instant::now());
                    tracing::info!(session = %self.id, "client detached");
                }
            }
            SessionCmd::Client { conn, msg } => {
                if self.client.as_ref().is_none_or(|c| c.conn != conn) {
                    // A replaced connection's last words; the program must
                    // not see them.
                    return;
                }
                self.on_client_msg(msg);
            }
            SessionCmd::Terminate { .. } => {}
        }
    }

    fn on_client_msg(&mut self, msg: ClientToServerMsg) {
        match msg {
            ClientToServerMsg::Input { seq, data } => {
                let newest = self
                    .pending_input
                    .back()
                    .map_or(self.applied_input, |(s, _)| *s);
                if seq <= newest {
                    // A resend of input already taken: acknowledge what is
                    // applied and drop the duplicate.
                    self.send(ServerToClientMsg::InputAck {
                        seq: self.applied_input,
                    });
                    return;
                }
                self.pending_bytes += data.len();
                self.pending_input.push_back((seq, data));
            }
            ClientToServerMsg::Resize(size) => {
                let before = self.emulator.size();
                let fit = self.apply_size(size);
                let told = self.tell_clamped(&fit);
                if fit.granted != before {
                    self.persist_soon();
                }
                if fit.granted != before || told {
                    self.send_frame();
                }
            }
            ClientToServerMsg::Ack { frame } => {
                if let Some(client) = &mut self.client {
                    client.pacer.on_ack(frame);
                }
                if self.emulator.is_dirty() {
                    self.send_frame();
                }
            }
            // Pings are answered by the connection itself.
            ClientToServerMsg::Ping { .. } => {}
        }
    }

    /// Bookkeeping after part of the front input chunk was written.
    fn after_write(&mut self, offset: &mut usize) {
        let Some((seq, front)) = self.pending_input.front() else {
            return;
        };
        if *offset < front.len() {
            return;
        }
        let seq = *seq;
        self.pending_bytes -= front.len();
        self.pending_input.pop_front();
        *offset = 0;
        self.applied_input = seq;
        self.send(ServerToClientMsg::InputAck { seq });
    }

    /// Resizes the emulator to what a request for `asked` gets within its
    /// budget. The scrollback and the store keep as many lines as the
    /// emulator can hold at the new size, so a wider terminal keeps fewer.
    fn apply_size(&mut self, asked: Size) -> GridFit {
        let fit = self.emulator.fit(asked);
        if fit.granted == self.emulator.size() {
            return fit;
        }
        // The emulator may keep fewer lines at the new size: the waiting
        // ones move to the scrollback first.
        self.drain_scrolled(true);
        self.emulator.resize(fit.granted);
        let history = self.emulator.history_limit();
        self.scrollback.set_limit(history);
        if let Some(p) = &self.persistence {
            p.queue.set_keep_lines(history);
        }
        self.resize_to = Some(fit.granted);
        fit
    }

    /// Tells the attached client that its size request was clamped; once
    /// per run of clamped requests, so a window dragged past the limit gets
    /// one notice rather than one per step. Returns whether it queued one.
    ///
    /// The protocol has no message for notices, so this one travels as dim
    /// lines entering the client's scrollback, right above the screen; the
    /// session's own scrollback never holds them.
    fn tell_clamped(&mut self, fit: &GridFit) -> bool {
        let Some(text) = fit.notice() else {
            self.told_clamped = false;
            return false;
        };
        if self.told_clamped || self.client.is_none() {
            return false;
        }
        self.told_clamped = true;
        tracing::info!(session = %self.id, asked = %fit.asked, granted = %fit.granted, "clamped the terminal size");
        self.pending_scrolled
            .extend(notice_lines(&text, fit.granted.cols));
        true
    }

    fn attach(&mut self, conn: u64, created: bool, size: Size, tx: mpsc::Sender<Outgoing>) {
        if let Some(old) = self.client.take() {
            let _ = old.tx.try_send(Outgoing::Close(CloseCode::Replaced));
        }
        let fit = self.apply_size(size);
        // Everything that scrolled while no one watched joins the scrollback
        // before it is sent.
        self.drain_scrolled(true);
        self.pending_scrolled.clear();
        self.client = Some(Attached {
            conn,
            tx,
            pacer: FramePacer::new(FRAME_WINDOW),
        });
        self.detached_at = None;
        self.send(ServerToClientMsg::Welcome(Welcome {
            session: self.id,
            host: self.host.clone(),
            epoch: self.epoch,
            created,
            input_seq: self.applied_input,
        }));
        for block in self.scrollback.blocks() {
            self.send(ServerToClientMsg::History(block));
        }
        self.told_clamped = false;
        self.tell_clamped(&fit);
        self.emulator.mark_full();
        self.send_frame();
        tracing::info!(session = %self.id, history = self.scrollback.len(), "client attached");
    }

    /// Sends a message to the attached client, cutting the client off if it
    /// has stopped reading.
    fn send(&mut self, msg: ServerToClientMsg) {
        let Some(client) = &self.client else { return };
        if let ServerToClientMsg::Frame(_) = &msg {
            self.metrics.frame_sent();
        }
        if client.tx.try_send(Outgoing::Msg(msg)).is_err() {
            tracing::warn!(session = %self.id, "client is not reading; detaching it");
            let _ = client.tx.try_send(Outgoing::Close(CloseCode::GoingAway));
            self.client = None;
            self.detached_at = Some(Instant::now());
        }
    }

    /// Sends the screen's changes if the client has room for a frame.
    fn send_frame(&mut self) {
        let Some(client) = &self.client else { return };
        let changed = self.emulator.is_dirty()
            || !self.pending_scrolled.is_empty()
            || (!self.flooding && self.emulator.has_scrolled());
        if !client.pacer.can_send() || !changed {
            return;
        }
        self.send_frame_unpaced();
    }

    fn send_frame_unpaced(&mut self) {
        self.drain_scrolled(false);
        let mut scrolled = std::mem::take(&mut self.pending_scrolled);
        let Some(client) = &mut self.client else {
            return;
        };
        let seq = client.pacer.next_seq();
        // A big scroll travels as compressed history blocks ahead of the
        // frame, keeping every message far below the client's size limit.
        if scrolled.len() > BLOCK_LINES {
            for chunk in std::mem::take(&mut scrolled).chunks(BLOCK_LINES) {
                self.send(ServerToClientMsg::History(protocol::compress_lines(chunk)));
            }
        }
        let frame: Frame = self.emulator.frame(seq, scrolled);
        self.send(ServerToClientMsg::Frame(frame));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::SCROLLBACK_LINES;

    fn state(budget: CellBudget) -> State {
        let emulator = Emulator::with_budget(Size::default(), budget);
        State {
            id: SessionId([7; 16]),
            host: "h1".into(),
            scrollback: Scrollback::new(emulator.history_limit()),
            emulator,
            client: None,
            applied_input: 0,
            pending_input: VecDeque::new(),
            pending_bytes: 0,
            resize_to: None,
            metrics: Arc::new(Metrics::default()),
            detached_at: Some(Instant::now()),
            epoch: 1,
            pending_scrolled: Vec::new(),
            flooding: false,
            last_drain: Instant::now(),
            last_output: Instant::now(),
            persistence: None,
            told_clamped: false,
        }
    }

    /// The frames sent so far, acknowledged as a client would.
    fn frames(state: &mut State, rx: &mut mpsc::Receiver<Outgoing>) -> Vec<Frame> {
        let mut frames = Vec::new();
        while let Ok(out) = rx.try_recv() {
            if let Outgoing::Msg(ServerToClientMsg::Frame(frame)) = out {
                frames.push(frame);
            }
        }
        for frame in &frames {
            state.on_client_msg(ClientToServerMsg::Ack { frame: frame.seq });
        }
        frames
    }

    /// The text of the lines the frames added to the client's scrollback.
    fn scrolled_text(frames: &[Frame]) -> String {
        frames
            .iter()
            .flat_map(|frame| &frame.scrolled)
            .flat_map(|line| &line.runs)
            .map(|run| run.text.as_str())
            .collect()
    }

    #[test]
    fn a_size_beyond_the_budget_is_clamped_and_the_client_told_once() {
        let budget = CellBudget::new(300_000);
        let mut state = state(budget);
        let (tx, mut rx) = outgoing_channel();
        let asked = Size {
            cols: 600,
            rows: 200,
        };
        let granted = budget.fit(asked).granted;
        assert!(granted.cols < asked.cols && granted.rows < asked.rows);
        state.attach(1, true, asked, tx);
        let sent = frames(&mut state, &mut rx);
        assert_eq!(sent.last().map(|frame| frame.size), Some(granted));
        assert_eq!(state.resize_to, Some(granted), "the program gets it too");
        let told = scrolled_text(&sent);
        assert!(
            told.contains("limited to 300000 cells on this host")
                && told.contains(&format!("the window's {asked} was clamped to {granted}")),
            "{told}"
        );
        assert!(
            state.scrollback.is_empty(),
            "the notice is the client's alone"
        );

        // Dragging the window further is not told again...
        state.on_client_msg(ClientToServerMsg::Resize(Size {
            cols: 660,
            rows: 220,
        }));
        assert_eq!(scrolled_text(&frames(&mut state, &mut rx)), "");
        // ...until a size that fits comes between.
        state.on_client_msg(ClientToServerMsg::Resize(Size::default()));
        let sent = frames(&mut state, &mut rx);
        assert_eq!(sent.last().map(|frame| frame.size), Some(Size::default()));
        assert_eq!(scrolled_text(&sent), "");
        state.on_client_msg(ClientToServerMsg::Resize(asked));
        assert!(scrolled_text(&frames(&mut state, &mut rx)).contains("was clamped"));
    }

    #[test]
    fn the_history_kept_follows_what_the_emulator_holds() {
        let mut state = state(CellBudget::default());
        let queue = Arc::new(PersistQueue::default());
        state.persistence = Some(PersistState {
            queue: queue.clone(),
            interval: Duration::from_secs(1),
            due: None,
            changed_at: None,
            blocks_queued: 0,
            child_pid: None,
            last: store::SessionUpdate::default(),
        });
        let lines: Vec<Line> = (0..SCROLLBACK_LINES)
            .map(|i| Line {
                runs: vec![Run {
                    text: i.to_string(),
                    ..Run::default()
                }],
                wrapped: false,
            })
            .collect();
        state.scrollback.push(&lines);
        assert_eq!(state.scrollback.len(), SCROLLBACK_LINES);

        state.apply_size(Size {
            cols: 1000,
            rows: 500,
        });
        let wide = state.emulator.history_limit();
        assert!(wide < SCROLLBACK_LINES);
        assert_eq!(state.scrollback.limit(), wide);
        assert!(state.scrollback.len() < wide + crate::scrollback::BLOCK_LINES);
        assert_eq!(queue.keep_lines(), wide);

        state.apply_size(Size::default());
        assert_eq!(state.scrollback.limit(), SCROLLBACK_LINES);
        assert_eq!(queue.keep_lines(), SCROLLBACK_LINES);
    }

    #[test]
    fn notices_wrap_at_the_terminal_width() {
        let text = "the terminal is limited to 1000×500 cells on this host";
        let lines = notice_lines(text, 20);
        assert!(lines.len() > 1);
        assert!(lines.iter().all(|line| line.columns() <= 20));
        let last = lines.len() - 1;
        assert!(
            lines
                .iter()
                .enumerate()
                .all(|(i, line)| line.wrapped == (i < last))
        );
        let joined: String = lines
            .iter()
            .flat_map(|line| &line.runs)
            .map(|run| run.text.as_str())
            .collect();
        assert_eq!(joined, format!("── thinline: {text} ──"));
    }
}
