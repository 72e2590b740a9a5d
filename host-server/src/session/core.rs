//! The session core: everything a session decides, and no IO.
//!
//! `SessionCore` owns the emulator, the scrollback, the input log
//! (sequence numbers, duplicates, acknowledgements), the attached client
//! with its `FramePacer`, the viewers watching through share links (each
//! with its own pacer), the flood state and the persist and idle
//! deadlines. It is a plain struct in the style of `quinn-proto`: it is fed
//! what happened (`handle_output`, `handle_command`, `handle_written`,
//! `handle_timeout`, and the facts only IO can learn: a client that stopped
//! reading, a program that went away, its exit status) together with the
//! time, and answers what to do next (`poll_timeout`, `poll_effect`,
//! `input_to_write`). It reads no clock, holds no channel, touches no file
//! or process, so every interleaving is a unit test with a fake clock
//! (`core/tests.rs`); `session::task` is the only code that carries its
//! effects out. `cargo xtask test` checks that this file and every module
//! it uses name no runtime, clock or OS interface.

mod echo;
mod input;
pub mod record;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use protocol::{
    ClientToServerMsg, CloseCode, Frame, Line, Role, ServerToClientMsg, SessionId, Size, TtyModes,
    Welcome,
};

use crate::emulator::{CellBudget, Emulator, GridFit};
use crate::metrics::Metrics;
use crate::pacer::{FRAME_WINDOW, FloodClock, FrameGate, FramePacer};
use crate::persist::saved::{SavedScreen, encode_block, encode_screen};
use crate::scrollback::{BLOCK_LINES, Scrollback};

use self::echo::EchoWait;
pub use self::echo::{ECHO_SILENT, ECHO_WAIT};
pub use self::input::MAX_PENDING_INPUT;
use self::input::{InputLog, Writer};
use self::record::{Recorder, RecordingSetup};

/// Longest scrolled lines wait in the emulator during a flood.
pub const FLOOD_DRAIN_EVERY: Duration = Duration::from_millis(250);

/// Scrolled lines beyond which output counts as a flood.
pub const FLOOD_BACKLOG: usize = 1000;

/// Silence after which a flood is over.
pub const FLOOD_QUIET: Duration = Duration::from_millis(50);

/// Longest an input acknowledgement waits for a frame to travel with.
/// A keystroke's echo follows its write within microseconds, and one
/// message instead of two is one write and one wake-up less on each side
/// of the socket, which is what a hundred sessions typing at once are
/// short of; input the program does not echo is acknowledged after this.
pub const ACK_HOLD: Duration = Duration::from_millis(5);

/// What a session starts from.
pub struct CoreSetup {
    pub id: SessionId,
    /// This host's id, for the client's welcome.
    pub host: String,
    pub epoch: u64,
    /// The terminal's size; what does not fit `budget` is clamped.
    pub size: Size,
    pub budget: CellBudget,
    /// How long the session runs on with no client attached.
    pub idle_timeout: Duration,
    /// Longest a screen change waits before it is persisted; `None` for a
    /// host without a store.
    pub persist_interval: Option<Duration>,
    /// Scrollback and bytes to draw before the program's first output, for
    /// a session restored from the store.
    pub restored: Option<(Scrollback, Vec<u8>)>,
    /// After a restore: what Enter types to run again the command the
    /// lost host was running (the restore notice offers it).
    pub rerun: Option<Vec<u8>>,
    /// Record the session (only where it persists: the blocks travel with
    /// its snapshots).
    pub recording: Option<RecordingSetup>,
    pub metrics: Arc<Metrics>,
}

/// The offer to run again what a lost host was running. The user's next
/// key decides: Enter types the command (and Enter), anything else goes to
/// the program as typed and the offer is gone. Only keys sent after the
/// client showed the offer count: input typed before it (resent after the
/// failover) passes untouched. A client that leaves without answering
/// takes the offer with it; nothing runs without that keypress.
#[derive(Debug)]
struct RerunOffer {
    /// The command and a carriage return.
    keys: Vec<u8>,
    /// The first frame of the attach that shows the offer; its
    /// acknowledgement means the user has it in front of them.
    shown_in: Option<u64>,
    /// The client acknowledged that frame.
    seen: bool,
}

/// What a session is asked, besides attaching a client
/// (`SessionCore::handle_attach`, `SessionCore::handle_watch`).
#[derive(Debug)]
pub enum Command {
    /// A message from connection `conn`; ignored unless it is the attached
    /// one (a replaced connection's last words must not reach the program)
    /// or a viewer's (who may fetch history and acknowledge frames, and
    /// whose keys and sizes are dropped).
    Client { conn: u64, msg: ClientToServerMsg },
    /// Connection `conn` is gone; the session runs on without a client.
    Detach { conn: u64 },
    /// Hang up the program; the client is closed with `close`.
    /// `SessionEnded` (its user ended it) ends the session everywhere;
    /// `GoingAway` (drain) persists the last state for a restore
    /// elsewhere; `SessionLost` (fenced or leaseless) writes nothing more.
    Terminate { close: CloseCode },
}

/// What the task must do, in the order the core asks.
#[derive(Debug)]
pub enum Effect {
    /// Bytes the terminal owes the program (answers to its queries),
    /// written whole before the task reads on.
    Reply(Vec<u8>),
    /// The program's terminal has a new size.
    Resize(Size),
    /// A message for connection `conn`. If its channel has no room the
    /// task says so with `handle_client_stalled`.
    Send { conn: u64, msg: ServerToClientMsg },
    /// Close connection `conn` and forget it.
    Close { conn: u64, code: CloseCode },
    /// Hand a snapshot to the persister.
    Persist(Snapshot),
    /// The store keeps this many scrollback lines from the next write on.
    KeepLines(usize),
    /// Record the session as ended, everywhere.
    PersistEnded { at: Instant },
    /// Wait (bounded) until the persister has written everything queued.
    Flush,
    /// The attached client asked to upload a file (`crate::files`).
    Upload {
        conn: u64,
        /// The request's text form (`protocol::UploadRequest::parse`).
        request: String,
    },
    /// A program asked (OSC 8445) to hand the attached client a file; the
    /// task checks `key` against the session's download key.
    Download {
        conn: u64,
        key: String,
        path: Vec<u8>,
    },
    /// Hang up the program's process group.
    HangUp,
    /// Nothing more will come: the task ends.
    Ended,
}

/// A snapshot of the session for the store. The program's working
/// directory and foreground command are facts of its process, so the
/// task adds them.
#[derive(Debug)]
pub struct Snapshot {
    /// The encoded `SavedScreen`.
    pub screen: Vec<u8>,
    /// Scrollback blocks sealed since the last snapshot.
    pub blocks: Vec<store::ScrollbackBlock>,
    /// Recording blocks sealed since the last snapshot.
    pub recording: Vec<store::RecordingBlock>,
    pub size: Size,
    pub title: Option<String>,
    /// When the oldest change in it happened, for the lag measurement.
    pub changed_at: Instant,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Phase {
    Running,
    /// The program was hung up or went away; its last output is still fed
    /// in until the task reports its exit.
    Ending {
        close: CloseCode,
    },
    Ended,
}

struct Attached {
    conn: u64,
    pacer: FramePacer,
    /// Number of the scrollback line the client expects next: a frame's
    /// `scrolled` lines continue from here, anything else travels as a
    /// numbered `History` block.
    history_end: u64,
    /// The `echo_ack` and `tty` of the last frame sent.
    echo_ack: u64,
    tty: TtyModes,
}

/// Someone watching the session through a share link. The screen they
/// see is the owner's: viewers never resize it, and their keys reach the
/// program only if the share lets them type. Each has its own window of frames, so a slow viewer
/// never holds back the owner: it misses frames while its window is full
/// (`in_step` false) and catches up with a full repaint (`full_frame`)
/// once it acknowledges, plus the newest scrollback it missed as a
/// numbered block (the client fetches older ones as it scrolls).
struct Viewer {
    conn: u64,
    /// Who watches, as the owner is told (`ServerToClientMsg::Watchers`).
    user: String,
    pacer: FramePacer,
    /// Number of the scrollback line this viewer expects next.
    history_end: u64,
    /// Has every frame since its last full repaint: the next change can
    /// go to it as the same delta the owner gets.
    in_step: bool,
    /// The share lets it type: its keys join the owner's in the input
    /// log, numbered by this connection.
    may_type: bool,
}

/// When the next snapshot is due, for a session that persists.
struct PersistSchedule {
    interval: Duration,
    /// `None` while nothing changed since the last snapshot.
    due: Option<Instant>,
    changed_at: Option<Instant>,
    /// Sealed scrollback blocks below this number are already queued.
    blocks_queued: u64,
}

/// The flood state: scrolled lines are held back in the emulator during a
/// flood (see `drain_scrolled`) and caught up when the output pauses.
struct Flood {
    clock: FloodClock,
    /// Spaces frames a refresh apart while output floods in.
    gate: FrameGate,
    /// When the frame the gate held back is due; `None` when none is.
    frame_due: Option<Instant>,
    flooding: bool,
    last_drain: Instant,
    last_output: Instant,
}

pub struct SessionCore {
    id: SessionId,
    host: String,
    epoch: u64,
    emulator: Emulator,
    scrollback: Scrollback,
    client: Option<Attached>,
    /// Share-link viewers, in the order they came.
    viewers: Vec<Viewer>,
    input: InputLog,
    /// Lines for the attached client's scrollback not sent yet: drained
    /// from the emulator, or a notice (bounded by the scrollback length).
    pending_scrolled: Vec<Line>,
    flood: Flood,
    /// The synchronized update being timed: which one (the emulator's
    /// count) and when it must be flushed.
    sync_due: Option<(u64, Instant)>,
    persist: Option<PersistSchedule>,
    idle_timeout: Duration,
    /// When the last client went; `None` while one is attached.
    detached_at: Option<Instant>,
    /// The attached client was told its size request was clamped, and has
    /// asked for nothing that fits since (see `tell_clamped`).
    told_clamped: bool,
    phase: Phase,
    metrics: Arc<Metrics>,
    effects: VecDeque<Effect>,
    /// The attached client's input acknowledgement not sent yet (the
    /// highest sequence number written) and when it goes alone: it leaves
    /// ahead of the next message, normally the echo's frame (`ACK_HOLD`).
    held_ack: Option<(u64, Instant)>,
    rerun: Option<RerunOffer>,
    /// Which input the screen has had time to echo (`Frame::echo_ack`).
    echo: EchoWait,
    /// The program's terminal settings as the task last read them.
    tty: TtyModes,
    recorder: Option<Recorder>,
}

/// The first line a recorded session shows: nobody is recorded without
/// being told, whichever policy recorded them.
pub const RECORDING_NOTICE: &[u8] =
    b"\x1b[2m-- thinline: this session is recorded; your recordings are at /recordings --\x1b[0m\r\n";

/// What a recording of a restored session gets before the restored screen
/// is drawn again: a full reset, so a replay of the recording draws it on
/// a terminal in the very state of the new host's (ESC c, RIS).
const RECORDING_RESET: &[u8] = b"\x1bc";

impl SessionCore {
    pub fn new(setup: CoreSetup, now: Instant) -> SessionCore {
        let CoreSetup {
            id,
            host,
            epoch,
            size,
            budget,
            idle_timeout,
            persist_interval,
            restored,
            rerun,
            recording,
            metrics,
        } = setup;
        let mut emulator = Emulator::with_budget(size, budget);
        let history = emulator.history_limit();
        let mut recorder = recording
            .filter(|_| persist_interval.is_some())
            .map(|setup| Recorder::new(setup, epoch, now));
        if let Some(recorder) = &mut recorder {
            recorder.resize(emulator.size(), now);
        }
        if let (Some(recorder), None) = (&mut recorder, &restored) {
            recorder.output(RECORDING_NOTICE, now);
            emulator.feed(RECORDING_NOTICE);
        }
        let scrollback = match restored {
            Some((mut scrollback, preface)) => {
                if let Some(recorder) = &mut recorder {
                    recorder.output(RECORDING_RESET, now);
                    recorder.output(&preface, now);
                }
                emulator.feed(&preface);
                scrollback.set_limit(history);
                scrollback
            }
            None => Scrollback::new(history),
        };
        // The first snapshot is due at once, so the store sees the session
        // (and a restore its notice) without waiting for output.
        let persist = persist_interval.map(|interval| PersistSchedule {
            interval,
            due: Some(now),
            changed_at: Some(now),
            // Restored blocks came from the store; only newer ones are
            // written.
            blocks_queued: scrollback.next_seq(),
        });
        let mut core = SessionCore {
            id,
            host,
            epoch,
            emulator,
            scrollback,
            client: None,
            viewers: Vec::new(),
            input: InputLog::default(),
            pending_scrolled: Vec::new(),
            flood: Flood {
                clock: FloodClock::default(),
                gate: FrameGate::default(),
                frame_due: None,
                flooding: false,
                last_drain: now,
                last_output: now,
            },
            sync_due: None,
            persist,
            idle_timeout,
            detached_at: Some(now),
            told_clamped: false,
            phase: Phase::Running,
            metrics,
            effects: VecDeque::new(),
            held_ack: None,
            rerun: rerun.map(|keys| RerunOffer {
                keys,
                shown_in: None,
                seen: false,
            }),
            echo: EchoWait::default(),
            tty: TtyModes::default(),
            recorder,
        };
        core.time_sync(now);
        if core.persist.is_some() {
            core.effects.push_back(Effect::KeepLines(history));
        }
        core
    }

    pub fn id(&self) -> SessionId {
        self.id
    }

    /// Whether the session still takes commands, input and output; once
    /// false the task only feeds the program's last output and reports
    /// its exit.
    pub fn is_running(&self) -> bool {
        self.phase == Phase::Running
    }

    /// Whether the core has said `Ended`.
    pub fn has_ended(&self) -> bool {
        self.phase == Phase::Ended
    }

    /// Whether the task may take the next command: not while the program
    /// has `MAX_PENDING_INPUT` bytes of input waiting, which pushes back on
    /// the connections.
    pub fn takes_commands(&self) -> bool {
        self.is_running() && self.input.has_room()
    }

    /// The input to write to the program next, if any.
    pub fn input_to_write(&self) -> Option<&[u8]> {
        if !self.is_running() {
            return None;
        }
        self.input.to_write()
    }

    /// The next thing to do.
    pub fn poll_effect(&mut self) -> Option<Effect> {
        self.effects.pop_front()
    }

    /// When `handle_timeout` is due next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if !self.is_running() {
            return None;
        }
        let idle = match (&self.client, self.detached_at) {
            (None, Some(at)) => Some(at + self.idle_timeout),
            _ => None,
        };
        let persist = self.persist.as_ref().and_then(|p| p.due);
        let flood_over = self
            .flood
            .flooding
            .then(|| self.flood.last_output + FLOOD_QUIET);
        let sync = self.sync_due.map(|(_, at)| at);
        let ack = self.held_ack.map(|(_, at)| at);
        let frame = self.flood.frame_due.filter(|_| self.has_audience());
        // A keystroke's echo is confirmed by a frame of its own if nothing
        // else went out after the wait.
        let echo = self
            .client
            .as_ref()
            .and(self.echo.next_due(self.flood.last_output));
        [idle, persist, flood_over, sync, ack, frame, echo]
            .into_iter()
            .flatten()
            .min()
    }

    /// The program wrote `bytes`.
    pub fn handle_output(&mut self, bytes: &[u8], now: Instant) {
        self.flood.last_output = now;
        self.flood.gate.on_output(bytes.len(), now);
        self.metrics.pty_bytes_read(bytes.len());
        if let Some(recorder) = &mut self.recorder {
            recorder.output(bytes, now);
        }
        self.emulator.feed(bytes);
        for (key, path) in self.emulator.take_downloads() {
            // Only a user looking at the session can take a file; a
            // request with nobody attached is dropped.
            if let Some(client) = &self.client {
                let conn = client.conn;
                self.effects.push_back(Effect::Download { conn, key, path });
            }
        }
        self.time_sync(now);
        self.persist_soon(now);
    }

    /// Whether the task should read on (if more output is ready at once)
    /// before a frame goes out. It is asked after every read, so a flood
    /// becomes one frame per display refresh (`FloodClock`) and a lone echo
    /// goes out at once.
    pub fn reads_on(&mut self, now: Instant) -> bool {
        !self.flood.clock.on_output(now)
    }

    /// The output that was ready has been read: answer the program's
    /// queries and show the client what changed.
    pub fn handle_output_paused(&mut self, now: Instant) {
        if !self.is_running() {
            return;
        }
        let replies = self.emulator.take_replies();
        if !replies.is_empty() {
            self.effects.push_back(Effect::Reply(replies));
        }
        self.flood.clock.reset();
        self.send_frame(now);
    }

    /// `n` bytes of `input_to_write` reached the program. Its
    /// acknowledgement is held for the echo's frame (`ACK_HOLD`).
    pub fn handle_written(&mut self, n: usize, now: Instant) {
        match self.input.written_by(n) {
            Some((Writer::Owner, seq)) => {
                self.echo.written(seq, now);
                if self.client.is_some() {
                    let due = self.held_ack.map_or(now + ACK_HOLD, |(_, due)| due);
                    self.held_ack = Some((seq, due));
                }
            }
            Some((Writer::Viewer(conn), seq)) if self.viewers.iter().any(|v| v.conn == conn) => {
                self.send_to(conn, ServerToClientMsg::InputAck { seq });
            }
            // A viewer gone since: nobody to tell.
            Some((Writer::Viewer(_), _)) | None => {}
        }
    }

    /// The program's terminal settings, as the task read them just now
    /// (`tcgetattr`); the next frame carries them, and a change goes out
    /// in a frame of its own if no other is due (a password prompt that
    /// turns echo off must stop the client predicting at once).
    pub fn handle_tty(&mut self, tty: TtyModes) {
        self.tty = tty;
    }

    pub fn handle_command(&mut self, command: Command, now: Instant) {
        if !self.is_running() {
            return;
        }
        match command {
            Command::Detach { conn } => {
                if self.remove_viewer(conn) {
                    tracing::info!(session = %self.id, "viewer left");
                }
                if self.client.as_ref().is_some_and(|c| c.conn == conn) {
                    self.client = None;
                    if self
                        .rerun
                        .as_ref()
                        .is_some_and(|offer| offer.shown_in.is_some())
                    {
                        tracing::info!(session = %self.id, "the offer to run the lost command again went unanswered");
                        self.rerun = None;
                    }
                    // A reattaching client learns what was applied from
                    // its welcome.
                    self.held_ack = None;
                    self.detached_at = Some(now);
                    tracing::info!(session = %self.id, "client detached");
                }
            }
            Command::Client { conn, msg } => {
                if let Some(at) = self.viewers.iter().position(|v| v.conn == conn) {
                    self.on_viewer_msg(at, msg, now);
                    return;
                }
                if self.client.as_ref().is_none_or(|c| c.conn != conn) {
                    // A replaced connection's last words; the program must
                    // not see them.
                    return;
                }
                self.on_client_msg(msg, now);
            }
            Command::Terminate { close } => {
                if close != CloseCode::SessionLost {
                    // Draining: make the latest screen durable before the
                    // program is hung up.
                    self.drain_scrolled(true, now);
                    self.snapshot(now);
                    if self.persist.is_some() {
                        self.effects.push_back(Effect::Flush);
                    }
                }
                self.hang_up(close);
            }
        }
    }

    /// Every connection's way to the session is gone (the host is going
    /// down without a drain): the program is hung up.
    pub fn handle_commands_closed(&mut self, _now: Instant) {
        if self.is_running() {
            self.hang_up(CloseCode::SessionEnded);
        }
    }

    /// A deadline from `poll_timeout` has passed.
    pub fn handle_timeout(&mut self, now: Instant) {
        if !self.is_running() {
            return;
        }
        if self.flood.frame_due.is_some_and(|due| now >= due) {
            self.flood.frame_due = None;
            self.send_frame(now);
        }
        if self.flood.flooding && now >= self.flood.last_output + FLOOD_QUIET {
            // The flood is over: catch up on the lines it scrolled.
            self.drain_scrolled(true, now);
            self.send_frame(now);
        }
        if self.sync_due.is_some_and(|(_, at)| now >= at) {
            self.emulator.flush_sync();
            self.time_sync(now);
            self.send_frame(now);
        }
        if self
            .persist
            .as_ref()
            .and_then(|p| p.due)
            .is_some_and(|due| now >= due)
        {
            self.snapshot(now);
        }
        if let Some((seq, due)) = self.held_ack
            && now >= due
        {
            // Nothing went out to travel with: the program did not echo.
            self.held_ack = None;
            self.send(ServerToClientMsg::InputAck { seq });
        }
        // Input whose echo wait is over, and terminal settings the client
        // has not seen, go out even if the screen did not change.
        self.echo.settle(now, self.flood.last_output);
        self.send_frame(now);
        let idle_over = self.client.is_none()
            && self
                .detached_at
                .is_some_and(|at| now >= at + self.idle_timeout);
        if idle_over {
            tracing::info!(session = %self.id, "idle timeout: ending the session");
            self.hang_up(CloseCode::SessionEnded);
        }
    }

    /// Connection `conn` did not take a message: its channel is full (it
    /// stopped reading) or closed. It is cut off rather than waited for,
    /// and nothing more queued for it is sent.
    pub fn handle_client_stalled(&mut self, conn: u64, now: Instant) {
        self.effects
            .retain(|effect| !matches!(effect, Effect::Send { conn: to, .. } if *to == conn));
        if self.remove_viewer(conn) {
            tracing::warn!(session = %self.id, "a viewer is not reading; closing it");
            self.effects.push_back(Effect::Close {
                conn,
                code: CloseCode::GoingAway,
            });
        }
        if self.client.as_ref().is_some_and(|c| c.conn == conn) {
            tracing::warn!(session = %self.id, "client is not reading; detaching it");
            self.effects.push_back(Effect::Close {
                conn,
                code: CloseCode::GoingAway,
            });
            self.client = None;
            self.held_ack = None;
            self.detached_at = Some(now);
        }
    }

    /// The program closed its terminal, or it could not be written to: it
    /// is going by itself, and the session ends with it.
    pub fn handle_program_gone(&mut self, _now: Instant) {
        if self.is_running() {
            self.phase = Phase::Ending {
                close: CloseCode::SessionEnded,
            };
        }
    }

    /// The program has exited with `status` (`None`: killed, or not known).
    /// The client sees the last screen; a program that ended by itself
    /// ends the session everywhere and shows its status, a drained or lost
    /// one lives on elsewhere.
    pub fn handle_exit(&mut self, status: Option<i32>, now: Instant) {
        let close = match self.phase {
            Phase::Ended => return,
            Phase::Running => CloseCode::SessionEnded,
            Phase::Ending { close } => close,
        };
        self.phase = Phase::Ended;
        self.drain_scrolled(true, now);
        tracing::info!(session = %self.id, ?status, "session ended");
        self.send_frame_unpaced(now);
        let ended_here = close == CloseCode::SessionEnded;
        if ended_here && self.persist.is_some() {
            self.snapshot(now);
            self.effects.push_back(Effect::PersistEnded { at: now });
            self.effects.push_back(Effect::Flush);
        }
        let owner = self.client.take().map(|client| client.conn);
        let viewers = std::mem::take(&mut self.viewers);
        // Viewers see the end as the owner does; on a drain or a move they
        // reconnect and follow the session.
        for conn in owner.into_iter().chain(viewers.iter().map(|v| v.conn)) {
            if ended_here {
                self.effects.push_back(Effect::Send {
                    conn,
                    msg: ServerToClientMsg::Exited { status },
                });
            }
            self.effects.push_back(Effect::Close { conn, code: close });
        }
        self.effects.push_back(Effect::Ended);
    }

    fn hang_up(&mut self, close: CloseCode) {
        self.effects.push_back(Effect::HangUp);
        self.phase = Phase::Ending { close };
    }

    /// Keeps the deadline of the emulator's synchronized update: a new one
    /// started with the bytes fed at `now`.
    fn time_sync(&mut self, now: Instant) {
        self.sync_due = match (self.emulator.sync_timeout(), self.sync_due) {
            (None, _) => None,
            (Some(sync), Some((started, at))) if started == sync.started => Some((started, at)),
            (Some(sync), _) => Some((sync.started, now + sync.wait)),
        };
    }

    fn persist_soon(&mut self, now: Instant) {
        if let Some(p) = &mut self.persist
            && p.due.is_none()
        {
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
    fn drain_scrolled(&mut self, force: bool, now: Instant) {
        let backlog = self.emulator.scrolled_len();
        if backlog == 0 {
            self.flood.flooding = false;
            return;
        }
        if !force
            && backlog > FLOOD_BACKLOG
            && now.saturating_duration_since(self.flood.last_drain) < FLOOD_DRAIN_EVERY
        {
            self.flood.flooding = true;
            return;
        }
        self.flood.flooding = false;
        self.flood.last_drain = now;
        let scrolled = self.emulator.drain_scrolled();
        if scrolled.is_empty() {
            return;
        }
        self.scrollback.push(&scrolled);
        if self.has_audience() {
            self.pending_scrolled.extend(scrolled);
            let excess = self
                .pending_scrolled
                .len()
                .saturating_sub(self.scrollback.limit());
            self.pending_scrolled.drain(..excess);
        }
    }

    /// Queues the current state for the persister.
    fn snapshot(&mut self, now: Instant) {
        if self.persist.is_none() {
            return;
        }
        self.drain_scrolled(false, now);
        let saved = SavedScreen {
            size: self.emulator.size(),
            rows: self.emulator.visible_lines(),
            cursor: self.emulator.cursor(),
            modes: self.emulator.modes(),
            title: self.emulator.title().map(str::to_owned),
            tail: self.scrollback.open_tail().to_vec(),
            next_block_seq: self.scrollback.next_seq(),
        };
        let Some(p) = &mut self.persist else {
            return;
        };
        let blocks: Vec<store::ScrollbackBlock> = self
            .scrollback
            .sealed_since(p.blocks_queued)
            .map(|(seq, block)| store::ScrollbackBlock {
                seq,
                lines: block.count,
                data: encode_block(block),
            })
            .collect();
        p.blocks_queued = self.scrollback.next_seq();
        let changed_at = p.changed_at.take().unwrap_or(now);
        p.due = None;
        let recording = self
            .recorder
            .as_mut()
            .map(Recorder::take_blocks)
            .unwrap_or_default();
        self.effects.push_back(Effect::Persist(Snapshot {
            screen: encode_screen(&saved),
            blocks,
            recording,
            size: saved.size,
            title: saved.title,
            changed_at,
        }));
    }

    fn on_client_msg(&mut self, msg: ClientToServerMsg, now: Instant) {
        match msg {
            ClientToServerMsg::Input { seq, mut data } => {
                if self.input.is_new(seq)
                    && let Some(keys) = self.answer_rerun(&data)
                {
                    data.splice(..1, keys);
                }
                if !self.input.take(seq, data) {
                    // A resend of input already taken: acknowledge what is
                    // applied and drop the duplicate.
                    let seq = self.input.applied();
                    self.send(ServerToClientMsg::InputAck { seq });
                }
            }
            ClientToServerMsg::Resize(size) => {
                let before = self.emulator.size();
                let fit = self.apply_size(size, now);
                let told = self.tell_clamped(&fit);
                if fit.granted != before {
                    self.persist_soon(now);
                }
                if fit.granted != before || told {
                    self.send_frame(now);
                }
            }
            ClientToServerMsg::Ack { frame } => {
                if let Some(client) = &mut self.client {
                    client.pacer.on_ack(frame);
                    if let Some(offer) = &mut self.rerun
                        && offer
                            .shown_in
                            .is_some_and(|shown| client.pacer.acked() >= shown)
                    {
                        offer.seen = true;
                    }
                }
                self.send_frame(now);
            }
            // Pings are answered by the connection itself.
            ClientToServerMsg::Ping { .. } => {}
            ClientToServerMsg::FetchHistory { before, from } => {
                // Lines a flood holds back in the emulator are newer than
                // anything a client fetches: they need not be drained.
                let (start, lines) = self.scrollback.lines_before(before, from);
                self.send(ServerToClientMsg::History { start, lines });
            }
            ClientToServerMsg::Upload(request) => {
                if let Some(client) = &self.client {
                    let conn = client.conn;
                    self.effects.push_back(Effect::Upload { conn, request });
                }
            }
        }
    }

    /// A viewer's message: acknowledgements and history fetches are
    /// served, keys only if the share lets it type; sizes and uploads are
    /// the owner's alone and dropped.
    fn on_viewer_msg(&mut self, at: usize, msg: ClientToServerMsg, now: Instant) {
        match msg {
            ClientToServerMsg::Input { seq, data } => {
                let Some(viewer) = self.viewers.get(at).filter(|v| v.may_type) else {
                    return;
                };
                let writer = Writer::Viewer(viewer.conn);
                if !self.input.take_from(writer, seq, data) {
                    let seq = self.input.applied_of(writer);
                    let conn = viewer.conn;
                    self.send_to(conn, ServerToClientMsg::InputAck { seq });
                }
            }
            ClientToServerMsg::Ack { frame } => {
                if let Some(viewer) = self.viewers.get_mut(at) {
                    viewer.pacer.on_ack(frame);
                }
                self.send_frame(now);
            }
            ClientToServerMsg::FetchHistory { before, from } => {
                let (start, lines) = self.scrollback.lines_before(before, from);
                if let Some(viewer) = self.viewers.get(at) {
                    let conn = viewer.conn;
                    self.send_to(conn, ServerToClientMsg::History { start, lines });
                }
            }
            ClientToServerMsg::Resize(_)
            | ClientToServerMsg::Upload(_)
            | ClientToServerMsg::Ping { .. } => {}
        }
    }

    /// Whether anyone is attached: the owner or a viewer.
    fn has_audience(&self) -> bool {
        self.client.is_some() || !self.viewers.is_empty()
    }

    /// Forgets viewer `conn`; whether it was one. The owner is told who
    /// watches now.
    fn remove_viewer(&mut self, conn: u64) -> bool {
        let before = self.viewers.len();
        self.viewers.retain(|v| v.conn != conn);
        let removed = self.viewers.len() != before;
        if removed {
            self.input.forget_viewer(conn);
            self.tell_watchers(false);
        }
        removed
    }

    /// Tells the owner who watches (each user once, sorted); `if_any`: only
    /// when someone does (an owner's attach starts from nobody).
    fn tell_watchers(&mut self, if_any: bool) {
        if self.client.is_none() || (if_any && self.viewers.is_empty()) {
            return;
        }
        let mut names: Vec<String> = self.viewers.iter().map(|v| v.user.clone()).collect();
        names.sort_unstable();
        names.dedup();
        self.send(ServerToClientMsg::Watchers { names });
    }

    /// The user's answer to the offer to run the lost command again, if
    /// one is open and shown: `Some(keys)` to put in place of the Enter
    /// that starts `data`; any other first key closes the offer and goes
    /// to the program as typed.
    fn answer_rerun(&mut self, data: &[u8]) -> Option<Vec<u8>> {
        if !self.rerun.as_ref().is_some_and(|offer| offer.seen) || data.is_empty() {
            return None;
        }
        let offer = self.rerun.take()?;
        if matches!(data[0], b'\r' | b'\n') {
            tracing::info!(session = %self.id, "running the lost command again, as the user asked");
            Some(offer.keys)
        } else {
            None
        }
    }

    /// Resizes the emulator to what a request for `asked` gets within its
    /// budget. The scrollback and the store keep as many lines as the
    /// emulator can hold at the new size, so a wider terminal keeps fewer.
    fn apply_size(&mut self, asked: Size, now: Instant) -> GridFit {
        let fit = self.emulator.fit(asked);
        if fit.granted == self.emulator.size() {
            return fit;
        }
        // The emulator may keep fewer lines at the new size: the waiting
        // ones move to the scrollback first.
        self.drain_scrolled(true, now);
        self.emulator.resize(fit.granted);
        if let Some(recorder) = &mut self.recorder {
            recorder.resize(fit.granted, now);
        }
        let history = self.emulator.history_limit();
        self.scrollback.set_limit(history);
        if self.persist.is_some() {
            self.effects.push_back(Effect::KeepLines(history));
        }
        self.effects.push_back(Effect::Resize(fit.granted));
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
        self.send(ServerToClientMsg::Notice { text });
        true
    }

    /// Makes `conn` the session's one client, asking for `size`
    /// (`created`: this connection started the session). A connection
    /// attached before is closed with `Replaced`: the same user opened the
    /// session on another terminal (hot desking), and the newest one wins.
    pub fn handle_attach(&mut self, conn: u64, created: bool, size: Size, now: Instant) {
        if !self.is_running() {
            return;
        }
        if let Some(old) = self.client.take() {
            self.effects.push_back(Effect::Close {
                conn: old.conn,
                code: CloseCode::Replaced,
            });
        }
        // The welcome says what was applied.
        self.held_ack = None;
        let fit = self.apply_size(size, now);
        // Everything that scrolled while no one watched joins the scrollback
        // before it is sent.
        self.drain_scrolled(true, now);
        self.pending_scrolled.clear();
        let history = self.scrollback.span();
        self.client = Some(Attached {
            conn,
            pacer: FramePacer::new(FRAME_WINDOW),
            history_end: history.end,
            echo_ack: 0,
            tty: TtyModes::default(),
        });
        self.detached_at = None;
        // No history goes in front of the screen: the client keeps what it
        // holds and fetches the rest once the prompt is live.
        self.send(ServerToClientMsg::Welcome(Welcome {
            session: self.id,
            host: self.host.clone(),
            epoch: self.epoch,
            created,
            input_seq: self.input.applied(),
            history,
            role: Role::Owner,
        }));
        self.told_clamped = false;
        self.tell_clamped(&fit);
        self.emulator.mark_full();
        // The screen goes at once, whatever a flood's frame gate says: it is
        // what the user waits for.
        self.send_frame_unpaced(now);
        if let (Some(offer), Some(client)) = (&mut self.rerun, &self.client) {
            offer.shown_in = client.pacer.last_sent();
            offer.seen = false;
        }
        self.tell_watchers(true);
        tracing::info!(session = %self.id, history = self.scrollback.len(), "client attached");
    }

    /// Adds `conn` as a viewer (`user`, through a share link; `role` is the
    /// grant its welcome states). The owner's client, size and frames are
    /// untouched: the viewer gets a full repaint of its own and the owner
    /// is told who watches.
    pub fn handle_watch(&mut self, conn: u64, user: String, role: Role) {
        if !self.is_running() {
            return;
        }
        let history = self.scrollback.span();
        self.viewers.push(Viewer {
            conn,
            user,
            pacer: FramePacer::new(FRAME_WINDOW),
            history_end: history.end,
            in_step: false,
            may_type: role.may_type(),
        });
        self.send_to(
            conn,
            ServerToClientMsg::Welcome(Welcome {
                session: self.id,
                host: self.host.clone(),
                epoch: self.epoch,
                created: false,
                input_seq: 0,
                history,
                role,
            }),
        );
        self.catch_up_viewers();
        self.tell_watchers(false);
        tracing::info!(session = %self.id, viewers = self.viewers.len(), "viewer attached");
    }

    /// Queues a message for connection `conn`, a viewer.
    fn send_to(&mut self, conn: u64, msg: ServerToClientMsg) {
        if let ServerToClientMsg::Frame(_) = &msg {
            self.metrics.frame_sent();
        }
        self.effects.push_back(Effect::Send { conn, msg });
    }

    /// Viewers that missed frames and have room again get a full repaint,
    /// after the newest scrollback they missed.
    fn catch_up_viewers(&mut self) {
        let end = self.scrollback.span().end;
        let mut sends = Vec::new();
        for viewer in &mut self.viewers {
            if viewer.in_step || !viewer.pacer.can_send() {
                continue;
            }
            if viewer.history_end < end {
                let (start, lines) = self.scrollback.lines_before(end, viewer.history_end);
                sends.push((viewer.conn, ServerToClientMsg::History { start, lines }));
            }
            viewer.history_end = end;
            viewer.in_step = true;
            let frame = self.emulator.full_frame(viewer.pacer.next_seq());
            sends.push((viewer.conn, ServerToClientMsg::Frame(frame)));
        }
        for (conn, msg) in sends {
            self.send_to(conn, msg);
        }
    }

    /// Queues a message for the attached client, if there is one, after
    /// the held input acknowledgement: the client learns what reached the
    /// program before it sees the program's answer, in the same write.
    fn send(&mut self, msg: ServerToClientMsg) {
        let Some(client) = &self.client else { return };
        let conn = client.conn;
        if let Some((seq, _)) = self.held_ack.take() {
            // An acknowledgement sent now covers the held one.
            if !matches!(msg, ServerToClientMsg::InputAck { .. }) {
                self.effects.push_back(Effect::Send {
                    conn,
                    msg: ServerToClientMsg::InputAck { seq },
                });
            }
        }
        if let ServerToClientMsg::Frame(_) = &msg {
            self.metrics.frame_sent();
        }
        self.effects.push_back(Effect::Send { conn, msg });
    }

    /// Sends the screen's changes if the owner has room for a frame (with
    /// no owner attached, if a viewer in step has), and catches up the
    /// viewers that fell behind.
    fn send_frame(&mut self, now: Instant) {
        if !self.has_audience() {
            return;
        }
        let owner_behind = self
            .client
            .as_ref()
            .is_some_and(|c| c.echo_ack != self.echo.settled() || c.tty != self.tty);
        let changed = self.emulator.is_dirty()
            || !self.pending_scrolled.is_empty()
            || (!self.flood.flooding && self.emulator.has_scrolled())
            || owner_behind;
        // The owner paces the screen's changes; a viewer never slows them.
        let ready = match &self.client {
            Some(client) => client.pacer.can_send(),
            None => self.viewers.iter().any(|v| v.in_step && v.pacer.can_send()),
        };
        if ready && changed {
            if let Some(due) = self.flood.gate.hold_until(now) {
                // Output floods in: this frame waits for the next refresh
                // and shows everything read until then.
                self.flood.frame_due = Some(due);
                return;
            }
            self.send_frame_unpaced(now);
        }
        if self.flood.frame_due.is_none() {
            self.catch_up_viewers();
        }
    }

    /// Sends the screen's changes whatever the owner's window says, to the
    /// owner and to every viewer in step that has room (the others catch
    /// up later). One frame is built, so the emulator's damage is read once
    /// for everyone.
    fn send_frame_unpaced(&mut self, now: Instant) {
        self.drain_scrolled(false, now);
        let mut scrolled = std::mem::take(&mut self.pending_scrolled);
        // The waiting lines are the newest of the scrollback.
        let end = self.scrollback.span().end;
        let start = end.saturating_sub(scrolled.len() as u64);
        self.flood.gate.on_frame(now);
        self.flood.frame_due = None;
        // A frame that only tells the owner how far its input was echoed
        // (or the terminal's settings) is nothing to a viewer.
        let screen_changed = self.emulator.is_dirty() || !scrolled.is_empty();
        let mut frame: Frame = self.emulator.frame(0, Vec::new());
        frame.tty = self.tty;
        if screen_changed && !self.viewers.is_empty() {
            self.send_viewers(&frame, &scrolled, start, end);
        }
        let Some(client) = &mut self.client else {
            return;
        };
        frame.seq = client.pacer.next_seq();
        let continues = start == client.history_end;
        client.history_end = end;
        // A big scroll travels as compressed history blocks ahead of the
        // frame, keeping every message far below the client's size limit;
        // so do lines that skip some (a flood scrolled more than the
        // scrollback keeps), numbered so the client sees the gap.
        if scrolled.len() > BLOCK_LINES || (!continues && !scrolled.is_empty()) {
            let scrolled = std::mem::take(&mut scrolled);
            for (i, chunk) in scrolled.chunks(BLOCK_LINES).enumerate() {
                self.send(ServerToClientMsg::History {
                    start: start + (i * BLOCK_LINES) as u64,
                    lines: protocol::compress_lines(chunk),
                });
            }
        }
        frame.scrolled = scrolled;
        frame.echo_ack = self.echo.settle(now, self.flood.last_output);
        if let Some(client) = &mut self.client {
            client.echo_ack = frame.echo_ack;
            client.tty = frame.tty;
        }
        self.send(ServerToClientMsg::Frame(frame));
    }

    /// Sends the viewers in step `frame`, the screen's changes since the
    /// last frame, without what a program gives the owner alone (clipboard
    /// text, desktop notifications), after the lines `scrolled` (numbered
    /// `start..end`) each has not had, as numbered history blocks. A
    /// viewer without room misses it and catches up later.
    fn send_viewers(&mut self, frame: &Frame, scrolled: &[Line], start: u64, end: u64) {
        let mut theirs = Frame {
            clipboard: None,
            notification: None,
            ..frame.clone()
        };
        let mut sends = Vec::new();
        for viewer in &mut self.viewers {
            if !viewer.in_step {
                continue;
            }
            if !viewer.pacer.can_send() {
                viewer.in_step = false;
                continue;
            }
            let skip = viewer.history_end.saturating_sub(start) as usize;
            if let Some(new) = scrolled.get(skip..).filter(|new| !new.is_empty()) {
                for (i, chunk) in new.chunks(BLOCK_LINES).enumerate() {
                    sends.push((
                        viewer.conn,
                        ServerToClientMsg::History {
                            start: start + (skip + i * BLOCK_LINES) as u64,
                            lines: protocol::compress_lines(chunk),
                        },
                    ));
                }
            }
            viewer.history_end = end;
            theirs.seq = viewer.pacer.next_seq();
            sends.push((viewer.conn, ServerToClientMsg::Frame(theirs.clone())));
        }
        for (conn, msg) in sends {
            self.send_to(conn, msg);
        }
    }
}

#[cfg(test)]
mod tests;
