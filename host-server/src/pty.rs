//! Starting a session's program on a pseudo-terminal.
//!
//! `pty-process` gives native tokio reads and writes on the PTY and makes the
//! child a session leader with the PTY as its controlling terminal, so job
//! control and Ctrl-C behave as in any terminal.

use std::path::PathBuf;

use protocol::Size;
use rustix::process::{Pid, Signal, kill_process_group};

use crate::cgroup::SessionCgroup;
use crate::sandbox::{Identity, Prepared, Sandbox};

/// What to run for a new session.
#[derive(Clone, Debug)]
pub struct ProgramSpec {
    pub program: PathBuf,
    pub args: Vec<String>,
    /// Start it as a login shell, as `login` does; used for the default
    /// shell.
    pub login: bool,
    pub cwd: Option<PathBuf>,
    /// The user's home on the shared home root, if the host has one.
    pub home: Option<PathBuf>,
    /// The session's own variables, on top of the sandbox's allowlist
    /// (see `sandbox`): nothing of the host's environment is inherited.
    pub env: Vec<(String, String)>,
}

pub struct SpawnedPty {
    pub reader: pty_process::OwnedReadPty,
    pub writer: pty_process::OwnedWritePty,
    pub child: tokio::process::Child,
    /// The session's cgroups; dropping them kills whatever is left.
    pub cgroup: Option<SessionCgroup>,
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

pub fn pty_size(size: Size) -> pty_process::Size {
    pty_process::Size::new(size.rows, size.cols)
}

/// Starts `spec` for `identity` on a new PTY, in its sandbox.
pub fn spawn(
    spec: &ProgramSpec,
    size: Size,
    sandbox: &Sandbox,
    identity: &Identity,
    session: &str,
) -> Result<SpawnedPty, SpawnError> {
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
    let (reader, writer) = pty.into_split();
    Ok(SpawnedPty {
        reader,
        writer,
        child,
        cgroup,
    })
}

/// Hangs up the session's whole process group, as a terminal closing does.
pub fn hang_up(child: &tokio::process::Child) {
    let Some(pid) = child.id().and_then(|id| Pid::from_raw(id as i32)) else {
        return;
    };
    // The child leads its own process group; ESRCH just means it is gone.
    let _ = kill_process_group(pid, Signal::HUP);
}
