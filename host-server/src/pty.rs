//! The session's program behind a seam: a terminal to read and write, and
//! a process to hang up, wait for and ask about.
//!
//! The session task only ever sees a [`Program`], so its tests can play the
//! program themselves with the in-memory one in `pty::fake`, as zellij's
//! tests do behind its `ServerOsApi`. The real one is started by
//! [`SandboxLauncher`] on a pseudo-terminal from `pty-process` (native
//! tokio reads and writes, the child a session leader with the PTY as its
//! controlling terminal, so job control and Ctrl-C behave as in any
//! terminal), inside the session's sandbox and cgroup.

use std::future::Future;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use protocol::{Size, TtyModes};
use rustix::process::{Pid, Signal, kill_process_group};
use rustix::termios::{LocalModes, tcgetattr};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite};

use crate::cgroup::SessionCgroup;
use crate::procfs::ProcessFacts;
pub use crate::sandbox::ProgramSpec;
use crate::sandbox::{Identity, Prepared, Sandbox};

#[cfg(test)]
pub mod fake;

/// A running program, in three parts so the session task can read its
/// output, write its input and watch its process at the same time.
pub struct Program {
    /// What the program writes to its terminal; a read of 0 bytes (or an
    /// error, as a PTY gives once no process has it open) means it is gone.
    pub output: Box<dyn AsyncRead + Send + Unpin>,
    pub input: Box<dyn TerminalInput>,
    pub process: Box<dyn ProgramProcess>,
}

/// The writing side of the program's terminal, which also sets its size
/// and tells its line settings.
pub trait TerminalInput: AsyncWrite + Send + Unpin {
    fn resize(&self, size: Size) -> io::Result<()>;
    /// Whether the terminal echoes and reads lines now, as the program
    /// last set it (`tcgetattr`, which on a PTY's controlling side reads
    /// the program's side). A terminal that cannot be asked reads as
    /// neither: nothing is predicted.
    fn tty_modes(&self) -> TtyModes;
}

/// The program's process, as the session task needs it.
pub trait ProgramProcess: Send {
    /// Hangs up the program's whole process group, as a terminal closing
    /// does.
    fn hang_up(&mut self);
    /// Resolves when the program has exited, with its exit code (`None`
    /// for one killed by a signal).
    fn wait(&mut self) -> Pin<Box<dyn Future<Output = io::Result<Option<i32>>> + Send + '_>>;
    /// Kills a program that did not go when it was hung up.
    fn kill(&mut self);
    /// Where the program is and what runs in its foreground, for the
    /// session's record; read when a snapshot is persisted.
    fn facts(&self) -> ProcessFacts;
    /// The program's own pid (below bwrap), whose root and working
    /// directory files are resolved in; `None` once it is gone.
    fn pid(&self) -> Option<u32>;
}

/// Starts sessions' programs.
pub trait Launcher: Send + Sync {
    fn launch(
        &self,
        spec: &ProgramSpec,
        size: Size,
        identity: &Identity,
        session: &str,
    ) -> Result<Program, SpawnError>;
}

#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("could not open a pseudo-terminal: {0}")]
    Pty(pty_process::Error),
    #[error("could not prepare the sandbox of {user}'s session: {source}")]
    Sandbox {
        user: String,
        source: std::io::Error,
    },
    #[error("could not start {program}: {source}")]
    Program {
        program: String,
        source: pty_process::Error,
    },
}

/// The real launcher: every program on its own PTY, in the host's sandbox.
pub struct SandboxLauncher {
    sandbox: Arc<Sandbox>,
}

impl SandboxLauncher {
    pub fn new(sandbox: Arc<Sandbox>) -> SandboxLauncher {
        SandboxLauncher { sandbox }
    }
}

impl Launcher for SandboxLauncher {
    fn launch(
        &self,
        spec: &ProgramSpec,
        size: Size,
        identity: &Identity,
        session: &str,
    ) -> Result<Program, SpawnError> {
        spawn(spec, size, &self.sandbox, identity, session)
    }
}

/// Starts `spec` for `identity` on a new PTY, in its sandbox.
pub fn spawn(
    spec: &ProgramSpec,
    size: Size,
    sandbox: &Sandbox,
    identity: &Identity,
    session: &str,
) -> Result<Program, SpawnError> {
    let (pty, pts) = pty_process::open().map_err(SpawnError::Pty)?;
    pty.resize(pty_size(size)).map_err(SpawnError::Pty)?;
    let Prepared {
        command,
        mut cgroup,
    } = sandbox
        .command(spec, identity, session)
        .map_err(|source| SpawnError::Sandbox {
            user: identity.user.clone(),
            source,
        })?;
    let child = command
        .kill_on_drop(true)
        .spawn(pts)
        .map_err(|source| SpawnError::Program {
            program: spec.program.display().to_string(),
            source,
        })?;
    if let Some(cgroup) = &mut cgroup {
        cgroup.started();
    }
    // A second descriptor of the controlling side, to read the terminal's
    // settings: the split halves do not lend theirs.
    let settings = pty
        .as_fd()
        .try_clone_to_owned()
        .map_err(|error| SpawnError::Pty(pty_process::Error::Io(error)))?;
    let (reader, writer) = pty.into_split();
    Ok(Program {
        output: Box::new(reader),
        input: Box::new(PtyInput { writer, settings }),
        process: Box::new(SandboxedProcess {
            child,
            _cgroup: cgroup,
        }),
    })
}

fn pty_size(size: Size) -> pty_process::Size {
    pty_process::Size::new(size.rows, size.cols)
}

/// The writing half of a real PTY, with a descriptor to ask its settings.
struct PtyInput {
    writer: pty_process::OwnedWritePty,
    settings: OwnedFd,
}

impl TerminalInput for PtyInput {
    fn resize(&self, size: Size) -> io::Result<()> {
        self.writer
            .resize(pty_size(size))
            .map_err(|error| io::Error::other(error.to_string()))
    }

    fn tty_modes(&self) -> TtyModes {
        tty_modes_of(&self.settings)
    }
}

/// The line settings of terminal `fd` that echo prediction needs.
pub fn tty_modes_of(fd: impl AsFd) -> TtyModes {
    let Ok(termios) = tcgetattr(fd) else {
        return TtyModes::default();
    };
    let local = termios.local_modes;
    let mut modes = 0;
    if local.contains(LocalModes::ECHO) {
        modes |= TtyModes::ECHO;
    }
    if local.contains(LocalModes::ICANON) {
        modes |= TtyModes::CANONICAL;
    }
    TtyModes(modes)
}

impl AsyncWrite for PtyInput {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.writer).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.writer).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.writer).poll_shutdown(cx)
    }
}

/// A program the host started in its sandbox.
///
/// Its pid is always asked of `child`, which forgets it once the program
/// has been waited for: a pid the kernel may since have given to another
/// process is never signalled or read.
struct SandboxedProcess {
    child: tokio::process::Child,
    /// The session's cgroups, held for as long as the program may run:
    /// dropping them kills whatever is left in them.
    _cgroup: Option<SessionCgroup>,
}

impl ProgramProcess for SandboxedProcess {
    fn hang_up(&mut self) {
        let Some(pid) = self.child.id().and_then(|id| Pid::from_raw(id as i32)) else {
            return;
        };
        // The child leads its own process group; ESRCH just means it is gone.
        let _ = kill_process_group(pid, Signal::HUP);
    }

    fn wait(&mut self) -> Pin<Box<dyn Future<Output = io::Result<Option<i32>>> + Send + '_>> {
        Box::pin(async move { Ok(self.child.wait().await?.code()) })
    }

    fn kill(&mut self) {
        let _ = self.child.start_kill();
    }

    fn facts(&self) -> ProcessFacts {
        self.child.id().map(ProcessFacts::read).unwrap_or_default()
    }

    fn pid(&self) -> Option<u32> {
        self.child.id().and_then(crate::procfs::program_pid)
    }
}

/// Starts `sh -c 'exit 0'` the way a session starts, and fails with what
/// went wrong (bwrap missing, user namespaces disabled, a cgroup refused)
/// so a host that cannot sandbox says so at start rather than at the
/// first sign-in.
pub async fn probe(sandbox: &Sandbox) -> Result<(), String> {
    let (spec, identity) = sandbox.probe_program()?;
    let size = Size { cols: 80, rows: 24 };
    let mut program = spawn(&spec, size, sandbox, &identity, "probe").map_err(|e| e.to_string())?;
    let mut said = Vec::new();
    let read = async {
        let mut buf = [0u8; 4096];
        while let Ok(n) = program.output.read(&mut buf).await {
            if n == 0 || said.len() > 16 * 1024 {
                break;
            }
            said.extend_from_slice(&buf[..n]);
        }
    };
    // EIO ends the read once the PTY has no process left.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), read).await;
    let status = tokio::time::timeout(std::time::Duration::from_secs(5), program.process.wait())
        .await
        .map_err(|_| "a sandboxed `sh -c 'exit 0'` did not end within 15 s".to_string())?
        .map_err(|e| e.to_string())?;
    let said = String::from_utf8_lossy(&said);
    match status {
        Some(0) => Ok(()),
        Some(code) => Err(format!(
            "a sandboxed `sh -c 'exit 0'` ended with exit status {code}: {}",
            said.trim()
        )),
        None => Err(format!(
            "a sandboxed `sh -c 'exit 0'` was killed by a signal: {}",
            said.trim()
        )),
    }
}

#[cfg(test)]
mod tests {
    use rustix::termios::{OptionalActions, tcsetattr};

    use super::*;

    /// The settings a program sets on its side are what the host reads on
    /// its own: `read -s` turning echo off is seen.
    #[tokio::test]
    async fn the_programs_terminal_settings_are_read_from_the_hosts_side() {
        let (pty, pts) = pty_process::open().expect("a pseudo-terminal");
        let modes = tty_modes_of(&pty);
        assert!(modes.has(TtyModes::ECHO) && modes.has(TtyModes::CANONICAL));
        assert!(!modes.hides_input());

        let mut termios = tcgetattr(&pts).expect("the program's settings");
        termios.local_modes.remove(LocalModes::ECHO);
        tcsetattr(&pts, OptionalActions::Now, &termios).expect("echo off");
        assert!(tty_modes_of(&pty).hides_input());

        termios.local_modes.remove(LocalModes::ICANON);
        tcsetattr(&pts, OptionalActions::Now, &termios).expect("raw");
        let raw = tty_modes_of(&pty);
        assert_eq!(raw, TtyModes(0));
        assert!(!raw.hides_input(), "a raw program draws its own echo");
    }
}
