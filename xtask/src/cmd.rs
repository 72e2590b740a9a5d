//! Running commands and finding the workspace's directories.
//!
//! Every external command goes through [`run`] so that each one is echoed
//! before it starts and a failure names the command that failed: CI logs
//! are read by people who were not there.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::Instant;

use anyhow::{Context, Result, bail};

/// The workspace root, whatever directory `cargo xtask` was started from.
pub fn workspace_root() -> PathBuf {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}

/// Cargo's target directory: `CARGO_TARGET_DIR` if set (relative paths are
/// taken from the workspace root, as cargo does from its working directory,
/// which is the root for every command this crate runs), else `target/`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => workspace_root().join(dir),
        _ => workspace_root().join("target"),
    }
}

/// The cargo that runs this xtask, so toolchain overrides carry through.
pub fn cargo() -> Command {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command.current_dir(workspace_root());
    command
}

fn started() -> Instant {
    static START: OnceLock<Instant> = OnceLock::new();
    *START.get_or_init(Instant::now)
}

/// Announces a step, with the time since xtask started so slow steps show.
pub fn step(what: &str) {
    let elapsed = started().elapsed().as_secs_f64();
    eprintln!("xtask [{elapsed:7.1}s] {what}");
}

fn describe(command: &Command) -> String {
    let mut text = command.get_program().to_string_lossy().into_owned();
    for arg in command.get_args() {
        text.push(' ');
        text.push_str(&arg.to_string_lossy());
    }
    text
}

/// Runs a command with inherited output and fails unless it succeeds.
pub fn run(command: &mut Command) -> Result<()> {
    let text = describe(command);
    step(&format!("$ {text}"));
    let status = command
        .status()
        .with_context(|| format!("could not start `{text}`"))?;
    if !status.success() {
        bail!("`{text}` failed ({status})");
    }
    Ok(())
}

/// Runs a command quietly and returns its output, whatever its status.
pub fn output(command: &mut Command) -> Result<Output> {
    let text = describe(command);
    command
        .output()
        .with_context(|| format!("could not start `{text}`"))
}

/// Whether `program` can be started (found on PATH or at the given path).
pub fn exists(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok()
}

/// apt-get is only worth trying as root; elsewhere it would ask for a
/// password or fail with a confusing message.
pub fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
        .unwrap_or(false)
}
