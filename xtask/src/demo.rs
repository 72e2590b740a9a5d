//! `cargo xtask demo`: the whole product on one machine, run like a small
//! cluster.
//!
//! A directory serving the page, three interchangeable hosts, one SQLite
//! file as the shared store and one folder as the shared home root, all
//! under `.thinline/` in the workspace. Killing the host that serves a
//! session moves it to another, in front of the user.
//!
//! This process supervises them the way Kubernetes would: a server that
//! exits is started again under the same id (the same command, port and
//! host id, as a StatefulSet does) a second or two later, and each restart
//! is printed, so a person can `kill -9` the serving host again and again
//! and watch the session move each time. The servers die with this process
//! (`PR_SET_PDEATHSIG`), so a demo killed any way never leaves orphans
//! holding its ports; Ctrl-C stops them all and waits until they are gone.
//!
//! The directory's ticket key and a `demo` account are made on the first
//! run and kept (mode 0600) under `.thinline/`, so the printed password
//! stays the same between runs.

use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use crate::{build, cmd};

const HOSTS: u16 = 3;

/// How long a server that exited waits before it is started again.
const RESTART_DELAY: Duration = Duration::from_millis(1500);
/// A server that dies again within this of its start waits longer each
/// time (up to `MAX_RESTART_DELAY`), so a broken one does not spin.
const CRASH_LOOP: Duration = Duration::from_secs(10);
const MAX_RESTART_DELAY: Duration = Duration::from_secs(30);
/// How often the supervisor looks at its children.
const TICK: Duration = Duration::from_millis(100);
/// How long Ctrl-C waits for the servers to drain before killing them.
const STOP_GRACE: Duration = Duration::from_secs(10);

pub fn demo(rest: &[String]) -> Result<()> {
    let mut port: u16 = 8080;
    let mut args = rest.iter();
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--port" => {
                port = args
                    .next()
                    .context("--port needs a number")?
                    .parse()
                    .context("--port needs a number")?;
            }
            other => bail!("unexpected argument `{other}` (demo takes --port N)"),
        }
    }
    for p in port..=port + HOSTS {
        if std::net::TcpListener::bind(("127.0.0.1", p)).is_err() {
            bail!(
                "port {p} on 127.0.0.1 is in use (an earlier demo, or another program): \
                 stop it (`fuser -k {p}/tcp` shows and ends it) or pick other ports with --port N"
            );
        }
    }
    build::build_all()?;
    crate::tools::ensure_sandbox_tools(false)?;
    let root = cmd::workspace_root();
    let state = root.join(".thinline");
    std::fs::create_dir_all(state.join("homes")).context("creating .thinline/")?;
    // Users pass through to their homes (each 0700, their own uid) but
    // cannot list the state directory; the store and keys are 0600.
    for dir in [state.clone(), state.join("homes")] {
        std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o711))
            .with_context(|| format!("securing {}", dir.display()))?;
    }
    let store = format!("sqlite:{}", state.join("demo.sqlite").display());
    let directory_url = format!("http://127.0.0.1:{port}");
    // Operators' calls to the directory and the directory's calls to hosts
    // carry a shared secret.
    let host_token = random_token()?;
    let (ticket_key, ticket_public_key) = ticket_keys(&state)?;
    let password = demo_account(&state, &store)?;
    for file in ["demo.sqlite", "demo.sqlite-wal", "demo.sqlite-shm"] {
        let path = state.join(file);
        if path.exists() {
            std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
                .with_context(|| format!("securing {}", path.display()))?;
        }
    }

    let mut directory = Command::new(build::directory_binary());
    directory
        .current_dir(&root)
        .args(["serve", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--store", &store, "--static-dir"])
        .arg(build::page_dir())
        .env("THINLINE_HOST_TOKEN", &host_token)
        .env("THINLINE_TICKET_KEY", &ticket_key);
    let mut servers = vec![Supervised::new("directory", directory)];
    for n in 1..=HOSTS {
        let mut host = Command::new(build::host_binary());
        host.current_dir(&root)
            .args(["serve", "--listen", &format!("127.0.0.1:{}", port + n)])
            .args(["--host-id", &format!("h{n}")])
            .args(["--directory", &directory_url, "--store", &store])
            .arg("--home-root")
            .arg(state.join("homes"))
            .args(["--allow-origin", &directory_url])
            .env("THINLINE_TICKET_PUBLIC_KEY", &ticket_public_key)
            .env("THINLINE_HOST_TOKEN", &host_token);
        servers.push(Supervised::new(&format!("h{n}"), host));
    }

    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        signal_hook::flag::register(signal, stop.clone())
            .context("installing the Ctrl-C handler")?;
    }
    for server in &mut servers {
        server.start()?;
    }
    println!();
    println!("  Thinline is running: open {directory_url}/");
    println!("  sign in as `demo` with password: {password}");
    println!("  (more users: target/release/directory user add NAME --store {store})");
    println!();
    for server in &servers {
        if let Some(pid) = server.pid() {
            println!("  {:<9} pid {pid}", server.name);
        }
    }
    println!();
    println!("  Kill the host named in the page's status line (kill -9 PID) and watch");
    println!("  the session move; the host comes back under its own id moments later.");
    println!("  Ctrl-C stops everything; state stays in .thinline/.");
    println!();
    while !stop.load(Ordering::SeqCst) {
        for server in &mut servers {
            server.tend()?;
        }
        std::thread::sleep(TICK);
    }
    println!();
    println!("  stopping: the hosts drain their sessions into the store");
    stop_all(&mut servers);
    Ok(())
}

/// One server the demo keeps running.
struct Supervised {
    name: String,
    command: Command,
    child: Option<Child>,
    started_at: Instant,
    /// When a server that exited is started again.
    restart_at: Option<Instant>,
    /// The wait before the next restart: `base_delay`, doubled while the
    /// server keeps dying young.
    delay: Duration,
    base_delay: Duration,
    restarts: u32,
}

impl Supervised {
    fn new(name: &str, mut command: Command) -> Supervised {
        command.stdin(Stdio::null()).stdout(Stdio::null());
        die_with_this_process(&mut command);
        Supervised {
            name: name.to_owned(),
            command,
            child: None,
            started_at: Instant::now(),
            restart_at: None,
            delay: RESTART_DELAY,
            base_delay: RESTART_DELAY,
            restarts: 0,
        }
    }

    fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    fn start(&mut self) -> Result<()> {
        let child = self
            .command
            .spawn()
            .with_context(|| format!("starting {}", self.name))?;
        self.child = Some(child);
        self.started_at = Instant::now();
        self.restart_at = None;
        Ok(())
    }

    /// Notices an exit and restarts when it is time.
    fn tend(&mut self) -> Result<()> {
        if let Some(child) = &mut self.child
            && let Some(status) = child.try_wait().context("watching a server")?
        {
            self.child = None;
            self.delay = if self.started_at.elapsed() < CRASH_LOOP && self.restarts > 0 {
                (self.delay * 2).min(MAX_RESTART_DELAY)
            } else {
                self.base_delay
            };
            println!(
                "  {} exited ({}); starting it again under its own id in {:.1} s",
                self.name,
                describe(status),
                self.delay.as_secs_f64()
            );
            self.restart_at = Some(Instant::now() + self.delay);
        }
        if self.restart_at.is_some_and(|at| Instant::now() >= at) {
            self.start()?;
            self.restarts += 1;
            println!(
                "  {} restarted (pid {}, restart {})",
                self.name,
                self.pid().unwrap_or_default(),
                self.restarts
            );
        }
        Ok(())
    }
}

/// The servers got SIGINT from the terminal (or SIGTERM from their dying
/// parent) and drain; wait for them, then kill what is left.
fn stop_all(servers: &mut [Supervised]) {
    let deadline = Instant::now() + STOP_GRACE;
    for server in servers.iter_mut() {
        if let Some(child) = &server.child {
            // Ctrl-C reached the whole process group already; a SIGTERM
            // sent to this process alone did not. The child is not reaped
            // yet, so its pid is still its own.
            let pid = rustix::process::Pid::from_child(child);
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
    }
    for server in servers.iter_mut() {
        let Some(child) = &mut server.child else {
            continue;
        };
        loop {
            match child.try_wait() {
                Ok(Some(_)) | Err(_) => break,
                Ok(None) if Instant::now() >= deadline => {
                    eprintln!("  {} did not stop in time; killing it", server.name);
                    let _ = child.kill();
                    let _ = child.wait();
                    break;
                }
                Ok(None) => std::thread::sleep(TICK),
            }
        }
    }
}

fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(9)) => "killed by SIGKILL".to_owned(),
        (None, Some(15)) => "stopped by SIGTERM".to_owned(),
        (None, Some(signal)) => format!("signal {signal}"),
        (None, None) => "unknown status".to_owned(),
    }
}

/// Asks the kernel to send the child SIGTERM when this process dies, however
/// it dies, so no server outlives the demo and holds its port.
#[allow(unsafe_code)]
fn die_with_this_process(command: &mut Command) {
    let parent = rustix::process::getpid();
    // SAFETY: the closure runs in the forked child before exec, where only
    // async-signal-safe calls are allowed; it makes two raw system calls
    // (prctl and getppid) through rustix, allocates nothing and takes no
    // lock.
    unsafe {
        command.pre_exec(move || {
            rustix::process::set_parent_process_death_signal(Some(rustix::process::Signal::TERM))?;
            // The parent may have died before the prctl took effect.
            if rustix::process::getppid() != Some(parent) {
                return Err(std::io::Error::other("the demo exited while starting"));
            }
            Ok(())
        });
    }
}

/// 128 random bits as hex, from the kernel.
fn random_token() -> Result<String> {
    let mut bytes = [0u8; 16];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("reading /dev/urandom")?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

/// The directory's ticket signing key and its public half, made once with
/// `directory keygen` and kept in `.thinline/ticket.env`.
fn ticket_keys(state: &Path) -> Result<(String, String)> {
    let file = state.join("ticket.env");
    if !file.is_file() {
        let output = Command::new(build::directory_binary())
            .arg("keygen")
            .output()
            .context("running `directory keygen`")?;
        if !output.status.success() {
            bail!(
                "`directory keygen` failed: {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        write_private(&file, &output.stdout)?;
    }
    let text =
        std::fs::read_to_string(&file).with_context(|| format!("reading {}", file.display()))?;
    let value = |name: &str| {
        text.lines()
            .find_map(|line| line.strip_prefix(&format!("{name}=")))
            .map(|v| v.trim().to_owned())
            .with_context(|| {
                format!(
                    "{} has no {name}; delete it to make a new key",
                    file.display()
                )
            })
    };
    Ok((
        value("THINLINE_TICKET_KEY")?,
        value("THINLINE_TICKET_PUBLIC_KEY")?,
    ))
}

/// The `demo` account's password: made up and set on the first run, kept
/// in `.thinline/demo-password`.
fn demo_account(state: &Path, store: &str) -> Result<String> {
    let file = state.join("demo-password");
    if let Ok(password) = std::fs::read_to_string(&file) {
        return Ok(password.trim().to_owned());
    }
    let password = random_token()?;
    // `add` fails if an earlier demo made the account: then set it anew.
    if !user_command("add", store, &password)? && !user_command("reset", store, &password)? {
        bail!("could not create the demo account; see the messages above");
    }
    write_private(&file, password.as_bytes())?;
    Ok(password)
}

/// `directory user VERB demo --store STORE` with the password on stdin.
fn user_command(verb: &str, store: &str, password: &str) -> Result<bool> {
    let mut child = Command::new(build::directory_binary())
        .args(["user", verb, "demo", "--store", store])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .with_context(|| format!("running `directory user {verb}`"))?;
    child
        .stdin
        .take()
        .context("no stdin for `directory user`")?
        .write_all(format!("{password}\n").as_bytes())
        .context("writing the password")?;
    Ok(child.wait()?.success())
}

/// Writes a secret readable by this user only.
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .and_then(|mut f| f.write_all(bytes))
        .with_context(|| format!("writing {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shell(script: &str) -> Supervised {
        let mut command = Command::new("/bin/sh");
        command.args(["-c", script]);
        let mut server = Supervised::new("test", command);
        server.base_delay = Duration::from_millis(50);
        server.delay = server.base_delay;
        server
    }

    fn tend_until(server: &mut Supervised, done: impl Fn(&Supervised) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while !done(server) {
            assert!(Instant::now() < deadline, "gave up after 20 s");
            server.tend().unwrap();
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn a_server_that_exits_is_started_again_under_the_same_command() {
        let marker = tempfile_path("restarts");
        let mut server = shell(&format!("echo run >> {}; exit 3", marker.display()));
        server.start().unwrap();
        tend_until(&mut server, |s| s.restarts >= 2);
        server.tend().unwrap();
        let runs = std::fs::read_to_string(&marker).unwrap_or_default();
        assert!(runs.lines().count() >= 2, "ran {runs:?}");
        // Dying young doubles the wait, so a broken server cannot spin.
        assert!(server.delay > server.base_delay, "{:?}", server.delay);
        let _ = std::fs::remove_file(marker);
    }

    #[test]
    fn servers_die_with_the_thread_that_started_them() {
        // The kernel's parent-death signal follows the thread that forked:
        // a starter that ends takes its server with it, as a killed demo
        // takes its directory and hosts.
        let mut child = std::thread::spawn(|| {
            let mut server = shell("sleep 300");
            server.start().unwrap();
            server.child.take().unwrap()
        })
        .join()
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "the server outlived its starter");
            std::thread::sleep(Duration::from_millis(20));
        };
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(status.signal(), Some(15), "{status:?}");
    }

    fn tempfile_path(name: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("xtask-{name}-{}", std::process::id()))
    }
}
