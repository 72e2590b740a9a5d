//! A child process under test: its output kept, its ready line read,
//! signals sent to it and to nothing else, killed when dropped.
//!
//! Tests run servers as users do, as separate processes, so that their
//! command lines, ready lines, signal handling and exit codes are covered
//! too. Every child gets a process group of its own, so a Ctrl-C at the
//! terminal running the tests does not reach it and nothing it signals
//! reaches the tests. Signals go through rustix to one checked id above 1:
//! `kill(2)` reads 0 and negative ids as process groups and -1 as every
//! process we may signal, and a negative id once signalled everything on
//! the machine.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use rustix::process::{Pid, Signal, kill_process, kill_process_group};

/// How long a process gets to print its ready line.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// Reads a port out of a ready line; `None` for any other line.
pub type ReadyLine = fn(&str) -> Option<u16>;

/// Lines a child printed, tagged with the stream, kept to explain a failure.
type Log = Arc<Mutex<Vec<String>>>;

/// What dropping a [`Process`] does to a child still running.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnDrop {
    /// SIGKILL the process (its own children, such as PTY shells, see
    /// their terminal hang up).
    Kill,
    /// SIGTERM, a grace period to exit by itself, then SIGKILL.
    Terminate(Duration),
    /// SIGKILL its whole process group: for a child that starts helpers of
    /// its own that must not outlive it (chromedriver and its Chromium).
    KillGroup,
}

/// A running (or exited) child process; see the module comment.
pub struct Process {
    child: Child,
    /// Names it in errors and in the output printed after a failure.
    pub name: String,
    /// The port its ready line named; 0 without a ready line.
    pub port: u16,
    log: Log,
    /// The threads copying its output, to let them finish what the child
    /// printed before it exited.
    readers: Vec<std::thread::JoinHandle<()>>,
    on_drop: OnDrop,
}

/// How long a child that exited gets for the last of its output to be read.
const LAST_OUTPUT: Duration = Duration::from_secs(2);

impl Process {
    /// Starts `command` with its output kept, in a process group of its
    /// own; with `ready`, waits (up to [`READY_TIMEOUT`]) for the line it
    /// reads a port from, failing with what the child said if it exits or
    /// stays silent first.
    pub fn spawn(mut command: Command, name: &str, ready: Option<ReadyLine>) -> Result<Process> {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {name}: {command:?}"))?;
        let log: Log = Arc::default();
        let stdout = child.stdout.take().context("no stdout pipe")?;
        let stderr = child.stderr.take().context("no stderr pipe")?;
        let (lines, out) = keep_lines(stdout, format!("{name} stdout"), log.clone());
        let (_, err) = keep_lines(stderr, format!("{name} stderr"), log.clone());
        let mut process = Process {
            child,
            name: name.to_owned(),
            port: 0,
            log,
            readers: vec![out, err],
            on_drop: OnDrop::Kill,
        };
        if let Some(ready) = ready {
            process.port = process.wait_ready(&lines, ready)?;
        }
        Ok(process)
    }

    /// What dropping this value does to the child if it still runs.
    pub fn on_drop(mut self, on_drop: OnDrop) -> Process {
        self.on_drop = on_drop;
        self
    }

    fn wait_ready(&mut self, lines: &mpsc::Receiver<String>, ready: ReadyLine) -> Result<u16> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) => {
                    if let Some(port) = ready(&line) {
                        return Ok(port);
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => bail!(
                    "{} printed no ready line within {READY_TIMEOUT:?}; it said:\n{}",
                    self.name,
                    self.log_text()
                ),
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = self.child.wait().ok();
                    self.wait_for_last_output();
                    bail!(
                        "{} exited ({status:?}) before it was ready; it said:\n{}",
                        self.name,
                        self.log_text()
                    )
                }
            }
        }
    }

    /// Gives the output threads a moment to copy what an exited child
    /// printed last (its error, usually); a grandchild holding the pipes
    /// open does not hold this up for longer.
    fn wait_for_last_output(&self) {
        let deadline = Instant::now() + LAST_OUTPUT;
        while Instant::now() < deadline && !self.readers.iter().all(|r| r.is_finished()) {
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `http://127.0.0.1:PORT`, the port of its ready line.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Everything the child printed so far, one tagged line each.
    pub fn log_text(&self) -> String {
        self.log
            .lock()
            .map(|lines| lines.join("\n"))
            .unwrap_or_default()
    }

    /// Whether the process has not exited (a stopped one is running).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The id to signal: checked to be above 1 and not this process, and
    /// only while the child has not been reaped, since a reaped child's id
    /// may belong to another process by now. rustix's `Pid::from_raw` only
    /// debug-asserts against the dangerous values.
    fn checked_pid(&mut self) -> Result<Pid> {
        ensure!(
            self.is_running(),
            "{} has already exited; not signalling a reused pid",
            self.name
        );
        let raw = i32::try_from(self.child.id()).context("pid does not fit an i32")?;
        ensure!(
            raw > 1 && raw.unsigned_abs() != std::process::id(),
            "refusing to signal pid {raw}"
        );
        Pid::from_raw(raw).context("pid 0")
    }

    /// Sends `signal` to this process and to nothing else.
    pub fn signal(&mut self, signal: Signal) -> Result<()> {
        let pid = self.checked_pid()?;
        kill_process(pid, signal).with_context(|| format!("sending {signal:?} to {}", self.name))
    }

    /// Sends `signal` to this process's group, which `spawn` made its own
    /// (the group id is its pid, checked like one).
    pub fn signal_group(&mut self, signal: Signal) -> Result<()> {
        let group = self.checked_pid()?;
        kill_process_group(group, signal)
            .with_context(|| format!("sending {signal:?} to the group of {}", self.name))
    }

    /// `kill -9`, then reaps the process.
    pub fn kill9(&mut self) -> Result<()> {
        self.signal(Signal::KILL)?;
        let _ = self.child.wait();
        Ok(())
    }

    /// SIGSTOP: the process holds its sockets and answers nothing.
    pub fn stop(&mut self) -> Result<()> {
        self.signal(Signal::STOP)
    }

    /// SIGCONT after [`Process::stop`].
    pub fn resume(&mut self) -> Result<()> {
        self.signal(Signal::CONT)
    }

    /// SIGTERM; see [`Process::wait_exit`] for its end.
    pub fn terminate(&mut self) -> Result<()> {
        self.signal(Signal::TERM)
    }

    /// Waits (polling, bounded) for the process to exit by itself.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().context("waiting for a child")? {
                return Ok(status);
            }
            if Instant::now() >= deadline {
                bail!("{} did not exit within {timeout:?}", self.name);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// SIGTERM, and up to `grace` for the process to exit by itself, then
    /// SIGKILL. Returns its exit status if it stopped in time, `None` if it
    /// had to be killed. Blocking, so that `Drop` can use it.
    pub fn terminate_within(&mut self, grace: Duration) -> Option<ExitStatus> {
        if let Ok(Some(status)) = self.child.try_wait() {
            return Some(status);
        }
        let _ = self.terminate();
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.signal(Signal::KILL);
        let _ = self.child.wait();
        None
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        match self.on_drop {
            OnDrop::Kill => {
                if self.is_running() {
                    let _ = self.signal(Signal::KILL);
                }
            }
            OnDrop::Terminate(grace) => {
                self.terminate_within(grace);
            }
            OnDrop::KillGroup => {
                if self.is_running() {
                    let _ = self.signal_group(Signal::KILL);
                }
            }
        }
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!(
                "---- {} (port {}) output ----\n{}\n----",
                self.name,
                self.port,
                self.log_text()
            );
        }
    }
}

/// Copies a child's output lines into `log` (tagged) and to the returned
/// channel, for as long as the child writes.
fn keep_lines(
    stream: impl Read + Send + 'static,
    tag: String,
    log: Log,
) -> (mpsc::Receiver<String>, std::thread::JoinHandle<()>) {
    let (tx, rx) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if let Ok(mut log) = log.lock() {
                log.push(format!("{tag}: {line}"));
            }
            // The receiver goes away once the ready line is found; the
            // thread keeps draining so the child never blocks on a full pipe.
            let _ = tx.send(line);
        }
    });
    (rx, reader)
}

/// The port of a ready line's `http://HOST:PORT/`; `None` for anything
/// else (an `https` url is not one the tests start servers on).
pub fn port_of_http_url(url: &str) -> Option<u16> {
    let authority = url.trim().strip_prefix("http://")?.trim_end_matches('/');
    authority.rsplit_once(':')?.1.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sh(script: &str) -> Command {
        let mut command = Command::new("/bin/sh");
        command.args(["-c", script]);
        command
    }

    fn ready(line: &str) -> Option<u16> {
        line.strip_prefix("ready on ")?.parse().ok()
    }

    #[test]
    fn reads_the_port_of_an_http_url() {
        assert_eq!(port_of_http_url("http://127.0.0.1:43121/"), Some(43121));
        assert_eq!(port_of_http_url(" http://127.0.0.1:4512 "), Some(4512));
        assert_eq!(port_of_http_url("https://127.0.0.1:4512/"), None);
        assert_eq!(port_of_http_url("http://127.0.0.1/"), None);
    }

    #[tokio::test]
    async fn reads_the_ready_line_keeps_the_output_and_signals_only_its_child() -> Result<()> {
        let mut process = Process::spawn(
            sh("echo starting; echo oops >&2; echo 'ready on 4242'; exec sleep 60"),
            "sleeper",
            Some(ready),
        )?;
        assert_eq!(process.port, 4242);
        assert!(process.is_running());
        process.terminate()?;
        let status = process.wait_exit(Duration::from_secs(10)).await?;
        assert!(!status.success(), "{status}");
        // The output threads may still be copying the last lines.
        crate::wait_until(Duration::from_secs(5), "the log", || async {
            let log = process.log_text();
            Ok(if log.contains("sleeper stderr: oops") {
                Ok(())
            } else {
                Err(log)
            })
        })
        .await?;
        assert!(process.log_text().contains("sleeper stdout: starting"));
        // Exited and reaped: its pid is never signalled again.
        let refused = process.signal(Signal::KILL).expect_err("a reaped child");
        assert!(format!("{refused}").contains("already exited"), "{refused}");
        Ok(())
    }

    #[test]
    fn a_child_that_exits_before_it_is_ready_says_what_it_said() {
        let failed = Process::spawn(
            sh("echo 'no port for you' >&2; exit 3"),
            "quitter",
            Some(ready),
        );
        let text = format!("{:#}", failed.err().expect("it exited"));
        assert!(text.contains("quitter exited"), "{text}");
        assert!(text.contains("no port for you"), "{text}");
    }

    #[test]
    fn dropping_kills_what_still_runs() -> Result<()> {
        let process = Process::spawn(sh("exec sleep 60"), "sleeper", None)?;
        let pid = Pid::from_raw(i32::try_from(process.pid())?).context("pid 0")?;
        drop(process);
        // Reaped by the drop: the id names no process of ours any more.
        assert!(kill_process(pid, Signal::CONT).is_err());
        Ok(())
    }
}
