//! The container engine's command line, as `cargo xtask` chose it.

use std::process::Stdio;

use anyhow::{Context, Result, bail, ensure};
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

/// podman or docker with the global flags this machine needs, from
/// `THINLINE_CONTAINER_ENGINE` (e.g. `podman --runtime /usr/sbin/runc
/// --cgroup-manager cgroupfs`).
#[derive(Clone, Debug)]
pub struct Engine {
    words: Vec<String>,
}

impl Engine {
    pub fn from_env() -> Result<Engine> {
        let line = std::env::var("THINLINE_CONTAINER_ENGINE").context(
            "THINLINE_CONTAINER_ENGINE is not set: run this through `cargo xtask` \
             (cluster, test or bench), which chooses podman or docker",
        )?;
        Engine::new(&line)
    }

    pub fn new(line: &str) -> Result<Engine> {
        let words: Vec<String> = line.split_whitespace().map(str::to_owned).collect();
        ensure!(
            !words.is_empty(),
            "the container engine's command line is empty"
        );
        Ok(Engine { words })
    }

    pub fn is_podman(&self) -> bool {
        self.words[0].ends_with("podman")
    }

    /// The engine with `args`; every `run` gets [`ulimit_args`].
    fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(&self.words[0]);
        command.args(&self.words[1..]);
        match args.split_first() {
            Some((&"run", rest)) => command.arg("run").args(ulimit_args()).args(rest),
            _ => command.args(args),
        };
        command.stdin(Stdio::null()).kill_on_drop(true);
        command
    }

    fn describe(&self, args: &[&str]) -> String {
        let mut words: Vec<&str> = self.words.iter().map(String::as_str).collect();
        words.extend_from_slice(args);
        words.join(" ")
    }

    /// Runs `args`; its standard output, or an error with what it said.
    pub async fn run(&self, args: &[&str]) -> Result<String> {
        self.run_with_input(args, "").await
    }

    pub async fn run_strings(&self, args: &[String]) -> Result<String> {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.run(&args).await
    }

    /// Runs `args` with `input` on its standard input.
    pub async fn run_with_input(&self, args: &[&str], input: &str) -> Result<String> {
        let mut command = self.command(args);
        command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command
            .spawn()
            .with_context(|| format!("could not start `{}`", self.describe(args)))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(input.as_bytes()).await?;
        }
        let output = child.wait_with_output().await?;
        if !output.status.success() {
            bail!(
                "`{}` failed ({}): {}",
                self.describe(args),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// Standard output and error of `args`, whatever its status.
    pub async fn output(&self, args: &[&str]) -> Result<(String, String)> {
        let output = self
            .command(args)
            .output()
            .await
            .with_context(|| format!("could not start `{}`", self.describe(args)))?;
        Ok((
            String::from_utf8_lossy(&output.stdout).into_owned(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        ))
    }

    /// Whether `args` succeeds (an existence check).
    pub async fn succeeds(&self, args: &[&str]) -> bool {
        self.command(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .await
            .is_ok_and(|s| s.success())
    }
}

/// `--ulimit` for `run`: the engine's defaults ask for more than a process
/// without CAP_SYS_RESOURCE may set (shared NOTES), so containers get this
/// process's own soft limits, which it may always pass on.
fn ulimit_args() -> Vec<String> {
    let limits = std::fs::read_to_string("/proc/self/limits").unwrap_or_default();
    let mut args = Vec::new();
    // runc here refuses an nproc above about 32768 though the hard limit
    // is higher (the same "operation not permitted"), hence the caps.
    for (name, flag, cap) in [
        ("Max open files", "nofile", 65_536),
        ("Max processes", "nproc", 16_384),
    ] {
        let soft = limits
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|n| n.parse::<u64>().ok());
        if let Some(soft) = soft {
            let limit = soft.min(cap);
            args.push("--ulimit".to_owned());
            args.push(format!("{flag}={limit}:{limit}"));
        }
    }
    args
}
