//! Starting a session's program on a pseudo-terminal.
//!
//! `pty-process` gives native tokio reads and writes on the PTY and makes the
//! child a session leader with the PTY as its controlling terminal, so job
//! control and Ctrl-C behave as in any terminal.

use std::path::PathBuf;

use protocol::Size;
use rustix::process::{Pid, Signal, kill_process_group};

/// What to run for a new session.
#[derive(Clone, Debug)]
pub struct ProgramSpec {
    pub program: PathBuf,
    pub args: Vec<String>,
    /// Start it as a login shell (`argv[0]` prefixed with `-`), as `login`
    /// does; used for the default shell.
    pub login: bool,
    pub cwd: Option<PathBuf>,
    /// Extra environment on top of the host's own, minus Thinline's secrets.
    pub env: Vec<(String, String)>,
}

pub struct SpawnedPty {
    pub reader: pty_process::OwnedReadPty,
    pub writer: pty_process::OwnedWritePty,
    pub child: tokio::process::Child,
}

#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error("could not open a pseudo-terminal: {0}")]
    Pty(pty_process::Error),
    #[error("could not start {program}: {source}")]
    Program {
        program: String,
        source: pty_process::Error,
    },
}

pub fn pty_size(size: Size) -> pty_process::Size {
    pty_process::Size::new(size.rows, size.cols)
}

pub fn spawn(spec: &ProgramSpec, size: Size) -> Result<SpawnedPty, SpawnError> {
    let (pty, pts) = pty_process::open().map_err(SpawnError::Pty)?;
    pty.resize(pty_size(size)).map_err(SpawnError::Pty)?;
    let mut command = pty_process::Command::new(&spec.program).args(&spec.args);
    if spec.login {
        let name = spec
            .program
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "sh".into());
        command = command.arg0(format!("-{name}"));
    }
    // The host's own secrets must not leak into users' environments.
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("THINLINE_") {
            command = command.env_remove(key);
        }
    }
    command = command
        .env("TERM", "xterm-256color")
        .env("COLORTERM", "truecolor")
        .envs(spec.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .kill_on_drop(true);
    if let Some(cwd) = &spec.cwd {
        command = command.current_dir(cwd);
    }
    let child = command.spawn(pts).map_err(|source| SpawnError::Program {
        program: spec.program.display().to_string(),
        source,
    })?;
    let (reader, writer) = pty.into_split();
    Ok(SpawnedPty {
        reader,
        writer,
        child,
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
