//! The cluster's processes: how a directory and a host are started, where
//! the directory binary is, and the operator's `directory` command line.

use std::process::{Command, Stdio};

use anyhow::{Context, Result, ensure};
use testkit::process::{Process, port_of_http_url};

use super::{Cluster, ClusterOptions};
use crate::paths::{self, directory_binary};
use crate::{host, tickets};

/// The secret hosts present to the directory (THINLINE_HOST_TOKEN); the
/// cluster runs with host registration closed, as production should.
pub const HOST_TOKEN: &str = "cluster-host-token";

/// Reads the port out of `thinline: directory listening on http://127.0.0.1:PORT/`.
pub fn parse_directory_ready_line(line: &str) -> Option<u16> {
    port_of_http_url(line.strip_prefix("thinline: directory listening on ")?)
}

/// A free loopback port, for the directories, which must know each
/// other's urls before either starts.
/// A port for a server the cluster starts later (a directory, or a host
/// whose url is enrolled before it runs). Picked below Linux's ephemeral
/// range (32768-60999), which the kernel hands to outgoing connections and
/// to `bind(0)`: a port from that range, free when picked, was now and then
/// taken by some connection before the server bound it ("Address already
/// in use"). Below it, only another pick could take it, and no port is
/// picked twice by this process.
pub(super) fn free_port() -> Result<u16> {
    static PICKED: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut picked = PICKED.lock().unwrap_or_else(|e| e.into_inner());
    for _ in 0..200 {
        let mut bytes = [0u8; 2];
        getrandom::fill(&mut bytes).context("the random source failed")?;
        let port = 20_000 + u16::from_le_bytes(bytes) % 12_000;
        if picked.contains(&port) {
            continue;
        }
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            picked.push(port);
            return Ok(port);
        }
    }
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

/// Starts `options.directories` replicas on free ports, each naming the
/// others.
pub(super) fn start_directories(
    options: &ClusterOptions,
    store_spec: &str,
) -> Result<Vec<Process>> {
    let ports: Vec<u16> = (0..options.directories)
        .map(|_| free_port())
        .collect::<Result<_>>()?;
    (0..ports.len())
        .map(|i| {
            let (command, name) = directory_command(options, store_spec, &ports, i)?;
            Process::spawn(command, &name, Some(parse_directory_ready_line))
        })
        .collect()
}

/// Directory `i` of replicas listening on `ports`, each naming the others.
pub(super) fn directory_command(
    options: &ClusterOptions,
    store_spec: &str,
    ports: &[u16],
    i: usize,
) -> Result<(Command, String)> {
    let name = format!("directory{}", i + 1);
    let mut command = Command::new(directory_binary()?);
    command
        .args(["serve", "--listen", &format!("127.0.0.1:{}", ports[i])])
        .args(["--store", store_spec])
        .arg("--static-dir")
        .arg(paths::static_dir());
    for (j, peer) in ports.iter().enumerate() {
        if j != i {
            command.args(["--peer", &format!("http://127.0.0.1:{peer}")]);
        }
    }
    command.args(&options.directory_args);
    command
        .env("THINLINE_HOST_TOKEN", HOST_TOKEN)
        .env("THINLINE_TICKET_KEY", tickets::secret_key())
        .env_remove("THINLINE_DIRECTORY_PEERS")
        .env_remove("THINLINE_DIRECTORY_URL");
    if let Some(filter) = &options.rust_log {
        command.env("RUST_LOG", filter);
    }
    Ok((command, name))
}

impl Cluster {
    /// Starts host `id`: its port (0: its choice), the url it registers
    /// (a proxy's, say), its store and its enrolment secret, with the
    /// cluster's key, home root and directories; returns once it listens.
    pub(super) fn spawn_host(
        &self,
        id: &str,
        port: u16,
        public_url: Option<&str>,
        store_spec: &str,
        secret: Option<&str>,
    ) -> Result<Process> {
        let mut command = Command::new(paths::host_binary()?);
        command
            .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
            .args(["--host-id", id])
            .args(["--allow-origin", &self.page_origin()])
            .args([
                "--program",
                "/bin/bash",
                "--arg=--noprofile",
                "--arg=--norc",
            ])
            .args(["--store", store_spec])
            .arg("--session-env=PS1=$ ")
            .arg("--home-root")
            .arg(self.home_root())
            .args(["--directory", &self.directory_urls.join(",")]);
        if let Some((ttl, renew)) = self.options.lease {
            command
                .args(["--lease-ttl-ms", &ttl.to_string()])
                .args(["--renew-interval-ms", &renew.to_string()]);
        }
        if let Some(url) = public_url {
            command.args(["--public-url", url]);
        }
        command.args(&self.options.host_args);
        command
            .env("THINLINE_TICKET_PUBLIC_KEY", tickets::public_key())
            .env("THINLINE_HOST_TOKEN", HOST_TOKEN)
            .env("HOME", self.home_root())
            .env_remove("PROMPT_COMMAND")
            .env_remove("THINLINE_STORE")
            .env_remove("THINLINE_HOST_SECRET")
            .env_remove("THINLINE_DIRECTORY");
        if let Some(secret) = secret {
            command.env("THINLINE_HOST_SECRET", secret);
        }
        if let Some(filter) = &self.options.rust_log {
            command.env("RUST_LOG", filter);
        }
        Process::spawn(command, id, Some(host::parse_ready_line))
    }

    /// Starts directory `i` again after it exited, on its own port.
    pub async fn restart_directory(&mut self, i: usize) -> Result<()> {
        let directory = self
            .directories
            .get_mut(i)
            .with_context(|| format!("no directory {i}"))?;
        ensure!(
            !directory.is_running(),
            "{} is still running; stop it before starting it again",
            directory.name
        );
        let ports: Vec<u16> = self.directories.iter().map(|d| d.port).collect();
        let (command, name) = directory_command(&self.options, &self.store_spec, &ports, i)?;
        self.directories[i] = Process::spawn(command, &name, Some(parse_directory_ready_line))?;
        Ok(())
    }

    /// `directory ARGS --store STORE`, as an operator runs it; its standard
    /// output, or an error with what it printed.
    pub fn directory_cli(&self, args: &[&str]) -> Result<String> {
        self.directory_cli_with_input(args, "")
    }

    /// [`Cluster::directory_cli`] with `input` on its standard input, as
    /// an operator types a new password.
    pub fn directory_cli_with_input(&self, args: &[&str], input: &str) -> Result<String> {
        use std::io::Write;
        let mut child = Command::new(directory_binary()?)
            .args(args)
            .args(["--store", &self.store_spec])
            .env_remove("THINLINE_STORE")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("running directory {args:?}"))?;
        if let Some(mut stdin) = child.stdin.take() {
            stdin.write_all(input.as_bytes())?;
        }
        let output = child
            .wait_with_output()
            .with_context(|| format!("running directory {args:?}"))?;
        ensure!(
            output.status.success(),
            "directory {args:?} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    }

    /// `directory host add ID --url URL`, as an operator enrols a host;
    /// returns its secret.
    pub fn enrol(&self, id: &str, url: &str) -> Result<String> {
        let printed = self.directory_cli(&["host", "add", id, "--url", url])?;
        printed
            .lines()
            .find_map(|line| line.strip_prefix("THINLINE_HOST_SECRET="))
            .map(str::to_owned)
            .with_context(|| format!("`directory host add {id}` printed no secret: {printed}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_directory_ready_line() {
        assert_eq!(
            parse_directory_ready_line("thinline: directory listening on http://127.0.0.1:4512/"),
            Some(4512)
        );
        assert_eq!(
            parse_directory_ready_line("thinline: host h1 listening on http://127.0.0.1:1/"),
            None
        );
    }
}
