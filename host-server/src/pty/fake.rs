//! An in-memory program for tests of the session task: the test plays the
//! program, writing its output and reading what the session typed into it,
//! and decides when it exits. Nothing is spawned, so tests run with paused
//! time and see every hang-up, resize and kill.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use protocol::{Size, TtyModes};
use tokio::io::{AsyncWrite, DuplexStream};
use tokio::sync::oneshot;

use super::{Launcher, Program, ProgramProcess, ProgramSpec, SpawnError, TerminalInput};
use crate::procfs::ProcessFacts;
use crate::sandbox::Identity;

/// Bytes each direction of the fake terminal buffers, as a PTY does.
const TERMINAL_BUFFER: usize = 64 * 1024;

/// What the test runs when the program is hung up, shared with the
/// fake process.
type HangUpHook = Arc<Mutex<Option<Box<dyn FnMut() + Send>>>>;

/// What the session did to the fake program, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FakeEvent {
    Resized(Size),
    HungUp,
    Killed,
}

/// The test's end of a fake program.
pub struct FakeProgram {
    /// Bytes written here are the program's output; dropping it is the
    /// program closing its terminal.
    pub output: DuplexStream,
    /// What the session wrote to the program.
    pub input: DuplexStream,
    events: Arc<Mutex<Vec<FakeEvent>>>,
    facts: Arc<Mutex<ProcessFacts>>,
    on_hang_up: HangUpHook,
    exit: Option<oneshot::Sender<Option<i32>>>,
    tty: Arc<Mutex<TtyModes>>,
}

/// A program whose other end is the returned `FakeProgram`.
pub fn program() -> (Program, FakeProgram) {
    let (session_output, test_output) = tokio::io::duplex(TERMINAL_BUFFER);
    let (session_input, test_input) = tokio::io::duplex(TERMINAL_BUFFER);
    let events = Arc::new(Mutex::new(Vec::new()));
    let facts = Arc::new(Mutex::new(ProcessFacts::default()));
    let on_hang_up: HangUpHook = Arc::new(Mutex::new(None));
    let (exit, exited) = oneshot::channel();
    // A fresh terminal's settings: cooked, echoing.
    let tty = Arc::new(Mutex::new(TtyModes(TtyModes::ECHO | TtyModes::CANONICAL)));
    let program = Program {
        output: Box::new(session_output),
        input: Box::new(FakeInput {
            stream: session_input,
            events: events.clone(),
            tty: tty.clone(),
        }),
        process: Box::new(FakeProcess {
            events: events.clone(),
            facts: facts.clone(),
            on_hang_up: on_hang_up.clone(),
            exited: Some(exited),
        }),
    };
    let fake = FakeProgram {
        output: test_output,
        input: test_input,
        events,
        facts,
        on_hang_up,
        exit: Some(exit),
        tty,
    };
    (program, fake)
}

impl FakeProgram {
    /// Everything the session did to the program so far.
    pub fn events(&self) -> Vec<FakeEvent> {
        lock(&self.events).clone()
    }

    /// What the process will say about itself from now on.
    pub fn set_facts(&self, facts: ProcessFacts) {
        *lock(&self.facts) = facts;
    }

    /// The terminal's settings from now on, as `stty` would set them.
    pub fn set_tty(&self, tty: TtyModes) {
        *lock(&self.tty) = tty;
    }

    /// Runs `hook` at the moment the session hangs the program up, so a
    /// test can look at the world as the program is told to go.
    pub fn on_hang_up(&self, hook: impl FnMut() + Send + 'static) {
        *lock(&self.on_hang_up) = Some(Box::new(hook));
    }

    /// The program exits with `status`; the session's wait for it ends.
    pub fn exit(&mut self, status: Option<i32>) {
        if let Some(exit) = self.exit.take() {
            let _ = exit.send(status);
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

struct FakeInput {
    stream: DuplexStream,
    events: Arc<Mutex<Vec<FakeEvent>>>,
    tty: Arc<Mutex<TtyModes>>,
}

impl AsyncWrite for FakeInput {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bytes: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, bytes)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

impl TerminalInput for FakeInput {
    fn resize(&self, size: Size) -> io::Result<()> {
        lock(&self.events).push(FakeEvent::Resized(size));
        Ok(())
    }

    fn tty_modes(&self) -> TtyModes {
        *lock(&self.tty)
    }
}

struct FakeProcess {
    events: Arc<Mutex<Vec<FakeEvent>>>,
    facts: Arc<Mutex<ProcessFacts>>,
    on_hang_up: HangUpHook,
    /// Resolves when the test says the program exited; a test that drops
    /// its end leaves a program that never exits by itself.
    exited: Option<oneshot::Receiver<Option<i32>>>,
}

impl ProgramProcess for FakeProcess {
    fn hang_up(&mut self) {
        lock(&self.events).push(FakeEvent::HungUp);
        if let Some(hook) = lock(&self.on_hang_up).as_mut() {
            hook();
        }
    }

    fn wait(&mut self) -> Pin<Box<dyn Future<Output = io::Result<Option<i32>>> + Send + '_>> {
        Box::pin(async move {
            match self.exited.take() {
                Some(exited) => match exited.await {
                    Ok(status) => Ok(status),
                    Err(_) => std::future::pending().await,
                },
                None => std::future::pending().await,
            }
        })
    }

    fn kill(&mut self) {
        lock(&self.events).push(FakeEvent::Killed);
    }

    fn facts(&self) -> ProcessFacts {
        lock(&self.facts).clone()
    }

    /// A fake has no process to find files through.
    fn pid(&self) -> Option<u32> {
        None
    }
}

/// A launcher whose programs are fakes; the test takes each one's end
/// with `take`.
#[derive(Default)]
pub struct FakeLauncher {
    launched: Mutex<Vec<(ProgramSpec, Size, FakeProgram)>>,
}

impl FakeLauncher {
    /// The oldest program launched and not taken yet, with what it was
    /// started as.
    pub fn take(&self) -> Option<(ProgramSpec, Size, FakeProgram)> {
        let mut launched = lock(&self.launched);
        (!launched.is_empty()).then(|| launched.remove(0))
    }
}

impl Launcher for FakeLauncher {
    fn launch(
        &self,
        spec: &ProgramSpec,
        size: Size,
        _identity: &Identity,
        _session: &str,
    ) -> Result<Program, SpawnError> {
        let (program, fake) = program();
        lock(&self.launched).push((spec.clone(), size, fake));
        Ok(program)
    }
}
