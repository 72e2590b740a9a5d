//! A real `host-server` process, started on a free loopback port.
//!
//! Tests run the host as users do, as a separate process, so that its CLI,
//! its ready line, its signal handling and its HTTP surface are covered too.
//! The port is chosen by the host (`--listen 127.0.0.1:0`) and read from the
//! ready line on stdout, which avoids races over "free" ports.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, ExitStatus};
use std::time::Duration;

use anyhow::{Context, Result};
use protocol::SessionId;
use testkit::process::{OnDrop, Process, port_of_http_url};

use crate::{paths, tickets};

/// The page origin every test host allows (`--allow-origin`); native
/// clients send it as a browser on that page would.
pub const TEST_ORIGIN: &str = "http://page.thinline.test";

/// How long a dropped host gets to drain before it is killed.
const DRAIN_ON_DROP: Duration = Duration::from_secs(5);

/// How a test host is started.
#[derive(Clone, Debug)]
pub struct HostOptions {
    pub host_id: String,
    /// Loopback port to listen on; 0 (the default) lets the host choose,
    /// which avoids races over "free" ports. A fixed port is for starting a
    /// host where a page already expects one, such as a restarted host.
    pub port: u16,
    pub program: String,
    pub args: Vec<String>,
    /// Origins allowed besides [`TEST_ORIGIN`].
    pub allow_origins: Vec<String>,
    /// Whom the harness's tickets for this host name.
    pub user: String,
    /// Extra `host-server serve` flags.
    pub flags: Vec<String>,
    /// Extra environment for the host (and so for the programs it starts).
    pub env: Vec<(String, String)>,
    /// Starts the host as this uid (and gid) instead of the tests' own,
    /// as a laptop or a rootless container would; its temporary `HOME` is
    /// handed to that uid.
    pub run_as: Option<u32>,
}

impl HostOptions {
    /// Lifts the per-address connection cap: a benchmark opens hundreds of
    /// sessions from one loopback address.
    pub fn for_benchmarks(mut self) -> Self {
        self.flags.extend([
            "--max-connections-per-address".to_string(),
            "100000".to_string(),
        ]);
        self
    }

    /// A deterministic bash: no profile, no rc files, prompt `$ `, and a
    /// fresh temporary `HOME` (set when the host starts).
    pub fn bash() -> Self {
        HostOptions {
            host_id: "h1".into(),
            port: 0,
            program: "/bin/bash".into(),
            args: vec!["--noprofile".into(), "--norc".into()],
            allow_origins: Vec::new(),
            user: tickets::TEST_USER.into(),
            flags: Vec::new(),
            env: Vec::new(),
            run_as: None,
        }
    }
}

/// One `host-server` process with its own temporary `HOME`; dropped, it
/// gets SIGTERM and a few seconds to drain before SIGKILL.
pub struct HostProcess {
    process: Process,
    pub port: u16,
    pub host_id: String,
    pub user: String,
    /// The store the host was given, where its tickets' sign-in must live.
    store_spec: Option<String>,
    login: tokio::sync::OnceCell<[u8; 32]>,
    home: tempfile::TempDir,
}

/// Reads the port out of `thinline: host NAME listening on http://127.0.0.1:PORT/`.
pub fn parse_ready_line(line: &str) -> Option<u16> {
    let rest = line.strip_prefix("thinline: host ")?;
    let (_, url) = rest.split_once(" listening on ")?;
    port_of_http_url(url)
}

impl HostProcess {
    pub fn start(options: HostOptions) -> Result<HostProcess> {
        let binary = paths::host_binary()?;
        let home = tempfile::Builder::new()
            .prefix("thinline-home-")
            .tempdir()
            .context("creating a temporary HOME")?;
        let mut command = Command::new(&binary);
        if let Some(uid) = options.run_as {
            std::os::unix::fs::chown(home.path(), Some(uid), Some(uid))
                .context("handing the temporary HOME to the host's uid")?;
            command.uid(uid).gid(uid);
        }
        command
            .args(["serve", "--listen"])
            .arg(format!("127.0.0.1:{}", options.port))
            .args(["--host-id", &options.host_id, "--program", &options.program])
            .args(["--allow-origin", TEST_ORIGIN])
            .arg("--session-env=PS1=$ ")
            .args(&options.flags);
        for arg in &options.args {
            command.args(["--arg", arg]);
        }
        for origin in &options.allow_origins {
            command.args(["--allow-origin", origin]);
        }
        command
            .env("THINLINE_TICKET_PUBLIC_KEY", tickets::public_key())
            .env_remove("THINLINE_HOST_TOKEN")
            .env("HOME", home.path())
            .env_remove("PROMPT_COMMAND")
            .envs(options.env.iter().map(|(k, v)| (k, v)));
        let process = Process::spawn(command, &options.host_id, Some(parse_ready_line))
            .with_context(|| format!("starting {}", binary.display()))?
            .on_drop(OnDrop::Terminate(DRAIN_ON_DROP));
        let store_spec = options
            .env
            .iter()
            .find(|(k, _)| k == "THINLINE_STORE")
            .map(|(_, v)| v.clone());
        Ok(HostProcess {
            port: process.port,
            process,
            host_id: options.host_id,
            user: options.user,
            store_spec,
            login: tokio::sync::OnceCell::new(),
            home,
        })
    }

    pub fn ws_url(&self) -> String {
        format!("ws://127.0.0.1:{}/ws", self.port)
    }

    pub fn http_url(&self) -> String {
        format!("http://127.0.0.1:{}/", self.port)
    }

    /// The Origin the page that uses this host sends.
    pub fn origin(&self) -> String {
        TEST_ORIGIN.to_string()
    }

    /// The sign-in the host's tickets carry: a real one in the host's store
    /// when it has one (made once, on first use), otherwise none, since a
    /// host without a store cannot look sign-ins up. If the store cannot be
    /// reached (a test of an outage), the ticket carries none either: the
    /// host admits a valid ticket while its store is down.
    pub async fn login(&self) -> [u8; 32] {
        *self
            .login
            .get_or_init(|| async {
                let Some(spec) = &self.store_spec else {
                    return [0; 32];
                };
                let signed_in = tokio::time::timeout(Duration::from_secs(5), async {
                    let store = store::open(spec, "thinline-test").await?;
                    tickets::sign_in(store.as_ref(), &self.user).await
                })
                .await;
                match signed_in {
                    Ok(Ok(login)) => login,
                    Ok(Err(e)) => {
                        eprintln!(
                            "harness: no sign-in in the host's store ({e:#}); tickets carry none"
                        );
                        [0; 32]
                    }
                    Err(_) => {
                        eprintln!(
                            "harness: the host's store did not answer; tickets carry no sign-in"
                        );
                        [0; 32]
                    }
                }
            })
            .await
    }

    /// A ticket for `session` at `epoch` on this host.
    pub async fn ticket(&self, session: SessionId, epoch: u64) -> String {
        self.grant(session, epoch).await.ticket()
    }

    /// What a ticket for `session` at `epoch` on this host would claim.
    pub async fn grant(&self, session: SessionId, epoch: u64) -> tickets::Grant {
        tickets::Grant {
            user: self.user.clone(),
            session,
            host: self.host_id.clone(),
            epoch,
            login: self.login().await,
        }
    }

    /// The `HOME` of the programs this host starts.
    pub fn home(&self) -> &Path {
        self.home.path()
    }

    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Everything the host printed so far, one line each.
    pub fn log_text(&self) -> String {
        self.process.log_text()
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        self.process.is_running()
    }

    /// `kill -9` to the host's own, checked pid (never a group, never
    /// pid 1), then reaps it.
    pub fn kill9(&mut self) -> Result<()> {
        self.process.kill9()
    }

    /// Asks the host to stop with SIGTERM and waits for it, killing it if it
    /// has not exited within `grace`. Returns its exit status if it stopped
    /// by itself in time, `None` if it had to be killed.
    pub fn terminate(&mut self, grace: Duration) -> Option<ExitStatus> {
        self.process.terminate_within(grace)
    }
}

#[cfg(test)]
mod tests {
    use super::parse_ready_line;

    #[test]
    fn reads_the_port_from_the_ready_line() {
        assert_eq!(
            parse_ready_line("thinline: host h1 listening on http://127.0.0.1:43121/"),
            Some(43121)
        );
        assert_eq!(parse_ready_line("thinline: access token: abc"), None);
        assert_eq!(parse_ready_line("listening on http://127.0.0.1:1/"), None);
    }
}
