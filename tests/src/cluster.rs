//! A whole Thinline deployment on loopback, for failover tests and the
//! failover benchmark.
//!
//! Failover is a property of several processes together: a directory (or
//! two), some hosts and the one store they share. [`Cluster`] starts them
//! as real processes, the way `cargo xtask demo` does, over a SQLite file
//! in a temporary folder or a fresh PostgreSQL database, with one ticket
//! key (the harness's, see [`crate::tickets`]) and one shared home root.
//! The test's user has a real account and signs in over HTTP like a
//! browser; [`Cluster::cookie`] is that sign-in. The test keeps its own handle on the store, so it
//! can check what the processes wrote (owner, epoch, who saved the screen)
//! rather than trusting what they say.
//!
//! Hosts are killed, stopped and resumed with signals sent through rustix
//! to one checked, positive process id: never `kill(1)` and never a process
//! group, because a negative id once signalled everything on the machine.
//!
//! [`CutProxy`] is a TCP proxy that can drop every connection through it at
//! once, and [`RoamingClient`] is a native client that follows the
//! directory's failover decisions the way the browser does.

/// The secret hosts present to the directory (THINLINE_HOST_TOKEN); the
/// cluster runs with host registration closed, as production should.
pub const HOST_TOKEN: &str = "cluster-host-token";

use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail, ensure};
use protocol::{SessionId, Size};
use rustix::process::{Pid, Signal, kill_process};
use serde_json::{Value, json};
use store::{SessionRecord, Store};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::client::{Client, Event};
use crate::database::{self, FreshDatabase};
use crate::host::Log;
use crate::http::{Body, request_with};
use crate::tickets::{self, TEST_PASSWORD, TEST_USER};
use crate::{host, paths, wait_until};

/// Which shared backend the cluster runs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    /// A SQLite file in the cluster's temporary folder.
    Sqlite,
    /// A fresh database on `DATABASE_URL`'s server, dropped afterwards.
    Postgres,
}

/// How a cluster is started.
#[derive(Clone, Debug)]
pub struct ClusterOptions {
    pub hosts: usize,
    /// One, or two replicas that name each other with `--peer`.
    pub directories: usize,
    pub backend: Backend,
    /// `--lease-ttl-ms` and `--renew-interval-ms` of every host; `None`
    /// keeps the host's defaults (5000 and 1000).
    pub lease: Option<(u64, u64)>,
    /// Release builds print less; tests want the host's info log.
    pub rust_log: Option<String>,
    /// More arguments for every host's `serve`.
    pub host_args: Vec<String>,
    /// More arguments for every directory's `serve`.
    pub directory_args: Vec<String>,
    /// Enrol every host (`directory host add`) before it starts and give
    /// it its own secret, as production does; `false` leaves registration
    /// open, which the store allows for loopback urls only.
    pub enrol_hosts: bool,
}

impl Default for ClusterOptions {
    fn default() -> Self {
        ClusterOptions {
            hosts: 2,
            directories: 1,
            backend: Backend::Sqlite,
            lease: None,
            rust_log: None,
            host_args: Vec::new(),
            directory_args: Vec::new(),
            enrol_hosts: true,
        }
    }
}

/// One child process of the cluster: a directory or a host.
pub struct Server {
    child: Child,
    pub name: String,
    pub port: u16,
    log: Log,
}

/// Reads the port out of `thinline: directory listening on http://127.0.0.1:PORT/`.
pub fn parse_directory_ready_line(line: &str) -> Option<u16> {
    let url = line.strip_prefix("thinline: directory listening on ")?;
    let authority = url.trim().strip_prefix("http://")?.trim_end_matches('/');
    authority.rsplit_once(':')?.1.parse().ok()
}

impl Server {
    fn spawn(mut command: Command, name: &str, ready: fn(&str) -> Option<u16>) -> Result<Server> {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Its own group: a Ctrl-C at the terminal running the tests
            // does not reach it, and nothing it signals reaches the tests.
            .process_group(0);
        let mut child = command
            .spawn()
            .with_context(|| format!("starting {name}: {command:?}"))?;
        let log: Log = Arc::default();
        let stdout = child.stdout.take().context("child stdout")?;
        let stderr = child.stderr.take().context("child stderr")?;
        let lines = host::keep_lines(stdout, format!("{name} stdout"), log.clone());
        let _ = host::keep_lines(stderr, format!("{name} stderr"), log.clone());
        let mut server = Server {
            child,
            name: name.to_string(),
            port: 0,
            log,
        };
        server.port = host::wait_ready(name, &lines, ready, &mut server.child, &server.log)?;
        Ok(server)
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log_text(&self) -> String {
        host::log_text(&self.log)
    }

    /// Whether the process has not exited (a stopped one is running).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// Sends `signal` to this process and to nothing else.
    ///
    /// The id is checked to be a positive number above 1 that is not this
    /// process: `kill(2)` reads 0 and negative ids as process groups (and
    /// -1 as everything we may signal), and rustix's `Pid::from_raw` only
    /// debug-asserts against them. A child already reaped is not
    /// signalled, since its id may belong to another process by now.
    pub fn signal(&mut self, signal: Signal) -> Result<()> {
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
        let pid = Pid::from_raw(raw).context("pid 0")?;
        kill_process(pid, signal).with_context(|| format!("sending {signal:?} to {}", self.name))
    }

    /// `kill -9`, then reaps the process.
    pub fn kill9(&mut self) -> Result<()> {
        self.signal(Signal::KILL)?;
        let _ = self.child.wait();
        Ok(())
    }

    pub fn stop(&mut self) -> Result<()> {
        self.signal(Signal::STOP)
    }

    pub fn resume(&mut self) -> Result<()> {
        self.signal(Signal::CONT)
    }

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
}

impl Drop for Server {
    fn drop(&mut self) {
        // A stopped process dies of SIGKILL too; its PTYs close with it,
        // which hangs up the shells it ran.
        if self.is_running() {
            let _ = self.signal(Signal::KILL);
            let _ = self.child.wait();
        }
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

/// The directory binary: `THINLINE_DIRECTORY_BIN`, or the one next to the
/// host binary, built there if missing (as `paths::host_binary` does for
/// the host).
pub fn directory_binary() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("THINLINE_DIRECTORY_BIN").filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        ensure!(
            path.is_file(),
            "THINLINE_DIRECTORY_BIN points at {}, which does not exist",
            path.display()
        );
        return Ok(path);
    }
    let host = paths::host_binary()?;
    let profile_dir = host.parent().context("the host binary has no folder")?;
    let binary = profile_dir.join("directory");
    if binary.is_file() && std::env::var_os("THINLINE_HOST_BIN").is_some() {
        return Ok(binary);
    }
    static BUILT: std::sync::OnceLock<Result<(), String>> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| build_directory(profile_dir).map_err(|e| format!("{e:#}")))
        .clone()
        .map_err(anyhow::Error::msg)?;
    ensure!(binary.is_file(), "{} is missing", binary.display());
    Ok(binary)
}

fn build_directory(profile_dir: &Path) -> Result<()> {
    let target = profile_dir.parent().context("no target folder")?;
    let profile = profile_dir
        .file_name()
        .and_then(|n| n.to_str())
        .context("unnamed profile folder")?;
    let profile = if profile == "debug" { "dev" } else { profile };
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("harness: building directory ({profile} profile) for the tests");
    let status = Command::new(cargo)
        .current_dir(paths::workspace_root())
        .args(["build", "--package", "directory", "--profile", profile])
        .env("CARGO_TARGET_DIR", target)
        .status()
        .context("running cargo build -p directory")?;
    ensure!(
        status.success(),
        "cargo build -p directory failed ({status})"
    );
    Ok(())
}

/// A free loopback port, for the directories, which must know each
/// other's urls before either starts.
fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("finding a free port")?;
    Ok(listener.local_addr()?.port())
}

/// A host of the cluster.
pub struct ClusterHost {
    pub id: String,
    pub server: Server,
    /// What the host registers as its url (its own port, or a proxy's).
    pub public_url: String,
    /// `--public-url` and `--store` it was started with, to start it again
    /// the same way.
    public_url_arg: Option<String>,
    store_spec: String,
    /// Its enrolment secret, if the cluster enrolled it.
    secret: Option<String>,
}

/// A directory (or two), hosts and a store, as real processes.
pub struct Cluster {
    pub options: ClusterOptions,
    /// `thinline_login=...`: the test user's sign-in, as a `Cookie` value.
    pub cookie: String,
    /// The `--store` every process was given.
    pub store_spec: String,
    /// The test's own connection to the store.
    pub store: Arc<dyn Store>,
    pub directories: Vec<Server>,
    pub hosts: Vec<ClusterHost>,
    directory_urls: Vec<String>,
    next_host: usize,
    root: tempfile::TempDir,
    // Dropped after every process (fields drop in order), so no process
    // holds the database open when it is dropped.
    _pg: Option<FreshDatabase>,
}

impl Cluster {
    /// Starts the directories, then `options.hosts` hosts `h1`, `h2`, …,
    /// and waits until every host holds a lease.
    pub async fn start(options: ClusterOptions) -> Result<Cluster> {
        ensure!(
            (1..=2).contains(&options.directories),
            "one or two directories"
        );
        let root = tempfile::Builder::new()
            .prefix("thinline-cluster-")
            .tempdir()
            .context("creating the cluster's folder")?;
        std::fs::create_dir_all(root.path().join("homes"))?;
        let pg = match options.backend {
            Backend::Sqlite => None,
            Backend::Postgres => {
                let url = database::database_url()
                    .context("DATABASE_URL is not set; `cargo xtask test` sets it")?;
                Some(FreshDatabase::create(&url, "thinline_fo").await?)
            }
        };
        let store_spec = match &pg {
            Some(db) => db.url(),
            None => format!("sqlite:{}", root.path().join("store.sqlite").display()),
        };
        let directories = start_directories(&options, &store_spec)?;
        let directory_urls: Vec<String> = directories.iter().map(Server::url).collect();
        let store: Arc<dyn Store> = match &pg {
            Some(db) => Arc::new(store::PgStore::connect(&db.url()).await?),
            None => Arc::new(store::SqliteStore::open(&root.path().join("store.sqlite")).await?),
        };
        tickets::ensure_account(store.as_ref(), TEST_USER, TEST_PASSWORD).await?;
        let mut cluster = Cluster {
            options: options.clone(),
            cookie: String::new(),
            store_spec,
            store,
            directories,
            hosts: Vec::new(),
            directory_urls,
            next_host: 1,
            root,
            _pg: pg,
        };
        cluster.cookie = cluster.sign_in(TEST_USER, TEST_PASSWORD).await?;
        for _ in 0..options.hosts {
            cluster.start_host(None)?;
        }
        cluster.wait_hosts_live().await?;
        Ok(cluster)
    }

    /// Signs in at the first directory's `/login` form, as a browser
    /// does; returns the `thinline_login=...` cookie pair.
    pub async fn sign_in(&self, user: &str, password: &str) -> Result<String> {
        let response = self.post_login(user, password).await?;
        ensure!(
            response.status == 303,
            "signing in as {user} answered {}: {}",
            response.status,
            response.body
        );
        response
            .cookie(auth::login::COOKIE_NAME)
            .context("signing in set no cookie")
    }

    /// Signs out at the first directory's `/logout`, as the page's button
    /// does, with the `thinline_login=...` cookie pair `sign_in` returned.
    pub async fn sign_out(&self, cookie: &str) -> Result<()> {
        let origin = self.page_origin();
        let answer = request_with(
            self.directories[0].port,
            "POST",
            "/logout",
            &[("Cookie", cookie), ("Origin", origin.as_str())],
            None,
        )
        .await?;
        ensure!(
            answer.status == 303,
            "/logout answered {}: {}",
            answer.status,
            answer.body
        );
        Ok(())
    }

    /// `POST /login` with the page's Origin; the raw answer.
    pub async fn post_login(&self, user: &str, password: &str) -> Result<crate::http::Response> {
        let form = format!(
            "user={}&password={}",
            form_encode(user),
            form_encode(password)
        );
        let origin = self.page_origin();
        request_with(
            self.directories[0].port,
            "POST",
            "/login",
            &[("Origin", origin.as_str())],
            Some(Body::Form(&form)),
        )
        .await
    }

    /// The url of directory `i` (the page and the API).
    pub fn directory_url(&self, i: usize) -> String {
        self.directory_urls.get(i).cloned().unwrap_or_default()
    }

    /// The Origin of a page served by the first directory; every host
    /// allows it.
    pub fn page_origin(&self) -> String {
        self.directory_url(0)
    }

    pub fn home_root(&self) -> PathBuf {
        self.root.path().join("homes")
    }

    /// Starts the next host (`h<n>`), registering `public_url` if given
    /// (a proxy in front of it), and returns its id. It is not yet known
    /// to be live: see [`Cluster::wait_hosts_live`].
    pub fn start_host(&mut self, public_url: Option<String>) -> Result<String> {
        self.start_host_with(public_url, None)
    }

    /// Like [`Cluster::start_host`], with the host's own `--store` (the
    /// cluster's store through a proxy, say) instead of the cluster's.
    pub fn start_host_with(
        &mut self,
        public_url: Option<String>,
        store_spec: Option<String>,
    ) -> Result<String> {
        let id = format!("h{}", self.next_host);
        self.next_host += 1;
        let store_spec = store_spec.unwrap_or_else(|| self.store_spec.clone());
        // An enrolled host's url is fixed before it starts, so its port is.
        let (port, secret) = if self.options.enrol_hosts {
            let port = free_port()?;
            let url = public_url
                .clone()
                .unwrap_or_else(|| format!("http://127.0.0.1:{port}"));
            (port, Some(self.enrol(&id, &url)?))
        } else {
            (0, None)
        };
        let mut command = self.host_command(&id, port, public_url.as_deref(), &store_spec)?;
        if let Some(secret) = &secret {
            command.env("THINLINE_HOST_SECRET", secret);
        }
        let server = Server::spawn(command, &id, host::parse_ready_line)?;
        let registered = public_url.clone().unwrap_or_else(|| server.url());
        self.hosts.push(ClusterHost {
            id: id.clone(),
            server,
            public_url: registered,
            public_url_arg: public_url,
            store_spec,
            secret,
        });
        Ok(id)
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

    /// Starts a host process outside the cluster's books: id `id`, its
    /// own port, the cluster's store, and `secret` if given. For impostor
    /// tests; the caller keeps the process alive.
    pub fn spawn_host_as(&self, id: &str, secret: Option<&str>) -> Result<Server> {
        let mut command = self.host_command(id, 0, None, &self.store_spec)?;
        if let Some(secret) = secret {
            command.env("THINLINE_HOST_SECRET", secret);
        }
        Server::spawn(command, id, host::parse_ready_line)
    }

    /// Enrols host `id` again at its url, as an operator revokes a leaked
    /// secret; the running process keeps the old one, and a restart takes
    /// the new.
    pub fn enrol_again(&mut self, id: &str) -> Result<()> {
        let url = self
            .host(id)
            .with_context(|| format!("no host {id}"))?
            .public_url
            .clone();
        let secret = self.enrol(id, &url)?;
        self.host_mut(id)?.secret = Some(secret);
        Ok(())
    }

    /// The enrolment secret the cluster gave host `id`.
    pub fn host_secret(&self, id: &str) -> Option<String> {
        self.host(id).and_then(|host| host.secret.clone())
    }

    /// Starts host `id` again after it exited, as a StatefulSet does: the
    /// same command, id, port and store. Returns once it listens.
    pub async fn restart_host(&mut self, id: &str) -> Result<()> {
        let (port, public_url, store_spec, secret) = {
            let host = self.host_mut(id)?;
            ensure!(
                !host.server.is_running(),
                "{id} is still running; stop it before starting it again"
            );
            (
                host.server.port,
                host.public_url_arg.clone(),
                host.store_spec.clone(),
                host.secret.clone(),
            )
        };
        let mut command = self.host_command(id, port, public_url.as_deref(), &store_spec)?;
        if let Some(secret) = &secret {
            command.env("THINLINE_HOST_SECRET", secret);
        }
        let server = Server::spawn(command, id, host::parse_ready_line)?;
        self.host_mut(id)?.server = server;
        Ok(())
    }

    fn host_command(
        &self,
        id: &str,
        port: u16,
        public_url: Option<&str>,
        store_spec: &str,
    ) -> Result<Command> {
        let mut command = Command::new(paths::host_binary()?);
        command
            .args([
                "serve",
                "--listen",
                &format!("127.0.0.1:{port}"),
                "--host-id",
                id,
            ])
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
        if let Some(filter) = &self.options.rust_log {
            command.env("RUST_LOG", filter);
        }
        Ok(command)
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
        self.directories[i] = Server::spawn(command, &name, parse_directory_ready_line)?;
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

    /// The PostgreSQL server the cluster's database is on (a PostgreSQL
    /// cluster only).
    pub fn database_addr(&self) -> Option<SocketAddr> {
        self._pg.as_ref().and_then(|db| db.server_addr().ok())
    }

    /// The cluster's store url, reaching the server through a proxy on
    /// `port` (a PostgreSQL cluster only).
    pub fn store_spec_through(&self, port: u16) -> Option<String> {
        self._pg.as_ref().map(|db| db.url_through(port))
    }

    pub fn host(&self, id: &str) -> Option<&ClusterHost> {
        self.hosts.iter().find(|h| h.id == id)
    }

    pub fn host_mut(&mut self, id: &str) -> Result<&mut ClusterHost> {
        self.hosts
            .iter_mut()
            .find(|h| h.id == id)
            .with_context(|| format!("no host {id} in this cluster"))
    }

    /// Waits until every running host holds a live lease and no host that
    /// has exited still appears live (its lease ran out).
    pub async fn wait_hosts_live(&mut self) -> Result<()> {
        let mut running = Vec::new();
        for host in &mut self.hosts {
            if host.server.is_running() {
                running.push(host.id.clone());
            }
        }
        let port = self.directories[0].port;
        wait_until(
            Duration::from_secs(30),
            "every host to hold a lease",
            || {
                let running = running.clone();
                async move {
                    let (_, hosts) = request_json(port, "GET", "/v1/hosts", None).await?;
                    let live: Vec<String> = hosts
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter(|h| h["live"] == true)
                        .filter_map(|h| h["id"].as_str().map(str::to_owned))
                        .collect();
                    let mut want = running.clone();
                    want.sort();
                    let mut have = live.clone();
                    have.sort();
                    Ok(if want == have {
                        Ok(())
                    } else {
                        Err(format!("want live {want:?}, directory says {hosts}"))
                    })
                }
            },
        )
        .await
    }

    /// Asks the directories in turn, like a client would, signed in as
    /// the test user.
    pub async fn ask_directory(
        &self,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value)> {
        let mut last = None;
        for directory in &self.directories {
            match request_as(
                directory.port,
                method,
                path,
                body,
                &self.cookie,
                &self.page_origin(),
            )
            .await
            {
                Ok(answer) => return Ok(answer),
                Err(err) => last = Some(err),
            }
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("no directory")))
    }

    /// The id of the test user's sign-in, as tickets carry it.
    pub fn login_id(&self) -> Result<[u8; 32]> {
        let value = self
            .cookie
            .split_once('=')
            .map(|(_, v)| v)
            .context("no sign-in cookie")?;
        let token =
            auth::login::LoginToken::parse(value).context("an unreadable sign-in cookie")?;
        Ok(token.id().0)
    }

    /// The session's record in the store.
    pub async fn session(&self, id: &str) -> Result<SessionRecord> {
        self.store
            .get_session(id)
            .await?
            .with_context(|| format!("no session {id} in the store"))
    }

    /// The host that owns `id` and its epoch, per the store.
    pub async fn owner(&self, id: &str) -> Result<(String, u64)> {
        let record = self.session(id).await?;
        Ok((record.owner_host, record.epoch))
    }

    /// The persisted screen of a session: who saved it and its rows as
    /// text; `None` while nothing is saved.
    pub async fn saved_screen(&self, id: &str) -> Result<Option<SavedView>> {
        let Some(stored) = self.store.load_screen(id).await? else {
            return Ok(None);
        };
        let screen = host_server::persist::decode_screen(&stored.screen)
            .map_err(anyhow::Error::msg)
            .context("decoding the saved screen")?;
        Ok(Some(SavedView {
            saved_by: stored.saved_by,
            saved_at: stored.saved_at,
            rows: screen.rows.iter().map(|l| l.text()).collect(),
        }))
    }

    /// Waits until the store holds a screen of `id` with a row equal to
    /// `line`: the failover tests kill a host only after that, because a
    /// restore shows the last persisted screen (DESIGN.md promise 2).
    pub async fn wait_persisted(&self, id: &str, line: &str) -> Result<SavedView> {
        wait_until(
            Duration::from_secs(20),
            &format!("the store to hold a screen with {line:?}"),
            || async {
                Ok(match self.saved_screen(id).await? {
                    Some(view) if view.rows.iter().any(|r| r.trim_end() == line) => Ok(view),
                    Some(view) => Err(view.rows.join("\n")),
                    None => Err("nothing saved".into()),
                })
            },
        )
        .await
    }

    /// Everything every process printed, for a failure message.
    pub fn logs(&self) -> String {
        let mut text = String::new();
        for server in self
            .directories
            .iter()
            .chain(self.hosts.iter().map(|h| &h.server))
        {
            text.push_str(&format!(
                "---- {} ----\n{}\n",
                server.name,
                server.log_text()
            ));
        }
        text
    }
}

fn start_directories(options: &ClusterOptions, store_spec: &str) -> Result<Vec<Server>> {
    let ports: Vec<u16> = (0..options.directories)
        .map(|_| free_port())
        .collect::<Result<_>>()?;
    let mut servers = Vec::new();
    for i in 0..ports.len() {
        let (command, name) = directory_command(options, store_spec, &ports, i)?;
        servers.push(Server::spawn(command, &name, parse_directory_ready_line)?);
    }
    Ok(servers)
}

/// Directory `i` of replicas listening on `ports`, each naming the others.
fn directory_command(
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

/// A persisted screen as text.
#[derive(Clone, Debug)]
pub struct SavedView {
    pub saved_by: String,
    pub saved_at: store::Millis,
    pub rows: Vec<String>,
}

impl SavedView {
    pub fn has_line(&self, line: &str) -> bool {
        self.rows.iter().any(|r| r.trim_end() == line)
    }
}

/// One JSON exchange on loopback; returns the status and the parsed body
/// (`null` when it is not JSON).
pub async fn request_json(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> Result<(u16, Value)> {
    let response = crate::http::request(port, method, path, body).await?;
    Ok((
        response.status,
        serde_json::from_str(&response.body).unwrap_or(Value::Null),
    ))
}

/// One JSON exchange as a signed-in browser page would make it: with the
/// sign-in cookie and the page's Origin.
pub async fn request_as(
    port: u16,
    method: &str,
    path: &str,
    body: Option<&Value>,
    cookie: &str,
    origin: &str,
) -> Result<(u16, Value)> {
    let response = request_with(
        port,
        method,
        path,
        &[("Cookie", cookie), ("Origin", origin)],
        body.map(Body::Json),
    )
    .await?;
    Ok((
        response.status,
        serde_json::from_str(&response.body).unwrap_or(Value::Null),
    ))
}

/// `application/x-www-form-urlencoded` encoding of one value.
pub fn form_encode(value: &str) -> String {
    let mut out = String::new();
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(byte as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

/// The WebSocket url of a host's http url.
pub fn ws_url(http_url: &str) -> String {
    let base = http_url.trim_end_matches('/');
    match base.strip_prefix("https://") {
        Some(rest) => format!("wss://{rest}/ws"),
        None => format!("ws://{}/ws", base.trim_start_matches("http://")),
    }
}

// ---- a TCP proxy that cuts connections ------------------------------------

/// A loopback TCP proxy whose connections can all be cut at once, to break
/// a client's socket while the host stays alive (promise 1). The upstream
/// can be set after the proxy listens, so a host can be started with the
/// proxy's url as its `--public-url`.
pub struct CutProxy {
    pub port: u16,
    upstream: Arc<Mutex<Option<SocketAddr>>>,
    pipes: Arc<Mutex<Vec<JoinHandle<()>>>>,
    accepted: Arc<AtomicU64>,
    acceptor: JoinHandle<()>,
}

impl CutProxy {
    pub async fn start() -> Result<CutProxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let port = listener.local_addr()?.port();
        let upstream: Arc<Mutex<Option<SocketAddr>>> = Arc::default();
        let pipes: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let accepted = Arc::new(AtomicU64::new(0));
        let acceptor = tokio::spawn({
            let (upstream, pipes, accepted) = (upstream.clone(), pipes.clone(), accepted.clone());
            async move {
                while let Ok((mut inbound, _)) = listener.accept().await {
                    let Some(to) = upstream.lock().ok().and_then(|u| *u) else {
                        continue;
                    };
                    accepted.fetch_add(1, Ordering::Relaxed);
                    let pipe = tokio::spawn(async move {
                        let Ok(mut outbound) = TcpStream::connect(to).await else {
                            return;
                        };
                        let _ = inbound.set_nodelay(true);
                        let _ = outbound.set_nodelay(true);
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    });
                    if let Ok(mut pipes) = pipes.lock() {
                        pipes.retain(|p| !p.is_finished());
                        pipes.push(pipe);
                    }
                }
            }
        });
        Ok(CutProxy {
            port,
            upstream,
            pipes,
            accepted,
            acceptor,
        })
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub fn set_upstream(&self, port: u16) {
        if let Ok(mut upstream) = self.upstream.lock() {
            *upstream = Some(SocketAddr::from(([127, 0, 0, 1], port)));
        }
    }

    /// Drops every connection through the proxy, with whatever bytes were
    /// in flight in it; returns how many were open.
    pub fn cut_all(&self) -> usize {
        let Ok(mut pipes) = self.pipes.lock() else {
            return 0;
        };
        let open = pipes.iter().filter(|p| !p.is_finished()).count();
        for pipe in pipes.drain(..) {
            pipe.abort();
        }
        open
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::Relaxed)
    }
}

impl Drop for CutProxy {
    fn drop(&mut self) {
        self.acceptor.abort();
        self.cut_all();
    }
}

// ---- a native client that follows failover --------------------------------

/// Why a socket ended, which decides what to ask the directory.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loss {
    /// Dropped or refused: report the owner unreachable.
    Dropped,
    /// The host said go elsewhere (1001 draining, 4008 lost): ask for
    /// the session's placement.
    SentAway,
}

impl Loss {
    pub fn from_close(code: u16) -> Loss {
        match code {
            1001 | 4008 => Loss::SentAway,
            _ => Loss::Dropped,
        }
    }
}

/// A native protocol client that, like the browser, goes to the directory
/// when its host is lost and follows the decision: `POST
/// /v1/sessions/{id}/unreachable` (or `/v1/placement` when sent away),
/// then a hello naming the session on the host it was given. Unlike the
/// page it does not resend unacknowledged input on a new socket, so
/// callers see their keys echoed before they break one.
pub struct RoamingClient {
    pub client: Client,
    pub session: SessionId,
    pub host: String,
    pub epoch: u64,
    pub url: String,
    /// The last ticket the directory gave, and when: reused for a
    /// reconnect to the same host while fresh, as the page does.
    ticket: String,
    ticket_at: Instant,
    directory_ports: Vec<u16>,
    cookie: String,
    origin: String,
    size: Size,
}

/// How long the client reuses a ticket (they live 60 s; the page refreshes
/// with 10 s to spare).
const TICKET_REUSE: Duration = Duration::from_secs(45);

impl RoamingClient {
    /// Starts a new session where the directory places it.
    pub async fn place(cluster: &Cluster, size: Size) -> Result<RoamingClient> {
        let (status, answer) = cluster
            .ask_directory("POST", "/v1/placement", Some(&json!({ "new": true })))
            .await?;
        ensure!(status == 200, "placement answered {status}: {answer}");
        Self::place_existing(cluster, &answer, size).await
    }

    /// Starts a new session where the directory places it, signed in as
    /// the user of `cookie` (a `thinline_login=...` pair).
    pub async fn place_as(cluster: &Cluster, cookie: &str, size: Size) -> Result<RoamingClient> {
        let (status, answer) = request_as(
            cluster.directories[0].port,
            "POST",
            "/v1/placement",
            Some(&json!({ "new": true })),
            cookie,
            &cluster.page_origin(),
        )
        .await?;
        ensure!(status == 200, "placement answered {status}: {answer}");
        let mut client = Self::place_existing(cluster, &answer, size).await?;
        client.cookie = cookie.to_owned();
        Ok(client)
    }

    /// Connects where a placement `answer` says (its url, session and
    /// ticket), as the test user.
    pub async fn place_existing(
        cluster: &Cluster,
        answer: &Value,
        size: Size,
    ) -> Result<RoamingClient> {
        let url = answer["url"].as_str().context("placement without a url")?;
        let ticket = answer["ticket"]
            .as_str()
            .context("placement without a ticket")?;
        let session: SessionId = answer["session"]
            .as_str()
            .and_then(|s| s.parse().ok())
            .context("placement without a session id")?;
        Self::connect_with_ticket(cluster, url, session, ticket, size).await
    }

    /// Starts a new session on the host whose registered url is `url`
    /// (a proxy in front of one host, say), with a ticket the harness signs
    /// for the test user's sign-in, as the directory would.
    pub async fn attach(cluster: &Cluster, url: &str, size: Size) -> Result<RoamingClient> {
        let host = cluster
            .hosts
            .iter()
            .find(|h| h.public_url.trim_end_matches('/') == url.trim_end_matches('/'))
            .with_context(|| format!("no host of the cluster registered {url}"))?;
        let grant = tickets::Grant {
            user: TEST_USER.into(),
            session: tickets::new_session_id(),
            host: host.id.clone(),
            epoch: 1,
            login: cluster.login_id()?,
        };
        Self::connect_with_ticket(cluster, url, grant.session, &grant.ticket(), size).await
    }

    /// Opens `session` on the host at `url` with `ticket`; fails with the
    /// host's close code if it refuses.
    pub async fn connect_with_ticket(
        cluster: &Cluster,
        url: &str,
        session: SessionId,
        ticket: &str,
        size: Size,
    ) -> Result<RoamingClient> {
        let origin = cluster.page_origin();
        let mut client = Client::connect_with_origin(&ws_url(url), &origin).await?;
        let welcome = client.handshake(ticket, session, size).await?;
        Ok(RoamingClient {
            client,
            session: welcome.session,
            host: welcome.host,
            epoch: welcome.epoch,
            url: url.to_string(),
            ticket: ticket.to_owned(),
            ticket_at: Instant::now(),
            directory_ports: cluster.directories.iter().map(|d| d.port).collect(),
            cookie: cluster.cookie.clone(),
            origin,
            size,
        })
    }

    /// Reads until the host closes the socket; returns how it ended.
    pub async fn wait_lost(&mut self, timeout: Duration) -> Result<Loss> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.client.next_event_until(deadline).await? {
                Some(Event::Closed { code, .. }) => return Ok(Loss::from_close(code)),
                Some(Event::Message(_)) => {}
                None => bail!("the socket to {} did not end within {timeout:?}", self.host),
            }
        }
    }

    /// Asks the directory replicas in turn; the first answer wins.
    async fn ask(&self, path: &str, body: &Value) -> Result<Value> {
        let mut last = None;
        for port in &self.directory_ports {
            match request_as(*port, "POST", path, Some(body), &self.cookie, &self.origin).await {
                Ok((200, answer)) => return Ok(answer),
                Ok((status, answer)) => last = Some(anyhow::anyhow!("{path}: {status} {answer}")),
                Err(err) => last = Some(err),
            }
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("no directory")))
    }

    /// Gets back to a live socket on whichever host the directory names,
    /// within `timeout` and `MAX_ROUNDS` questions. Returns once welcomed
    /// with a first frame.
    pub async fn recover(&mut self, loss: Loss, timeout: Duration) -> Result<()> {
        const MAX_ROUNDS: usize = 50;
        let deadline = Instant::now() + timeout;
        let mut loss = loss;
        let mut why = String::from("not tried");
        for _ in 0..MAX_ROUNDS {
            if Instant::now() >= deadline {
                break;
            }
            let session = self.session.to_string();
            let answer = match loss {
                Loss::Dropped => {
                    let body = json!({ "host": self.host, "epoch": self.epoch });
                    self.ask(&format!("/v1/sessions/{session}/unreachable"), &body)
                        .await
                }
                Loss::SentAway => {
                    self.ask("/v1/placement", &json!({ "session": session }))
                        .await
                }
            };
            let answer = match answer {
                Ok(answer) => answer,
                Err(err) => {
                    why = format!("{err:#}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            };
            if answer["decision"] == "retry_owner" {
                let wait = answer["retry_after_ms"].as_u64().unwrap_or(250).min(5_000);
                tokio::time::sleep(Duration::from_millis(wait)).await;
            }
            let url = answer["url"].as_str().context("an answer without a url")?;
            if let Some(ticket) = answer["ticket"].as_str() {
                self.ticket = ticket.to_owned();
                self.ticket_at = Instant::now();
            }
            match self.connect(url).await {
                Ok(()) => return Ok(()),
                Err(err) => {
                    why = format!("{err:#}");
                    // Whatever the host said, the directory decides next.
                    loss = Loss::Dropped;
                }
            }
        }
        bail!(
            "session {} did not come back within {timeout:?}: {why}",
            self.session
        )
    }

    async fn connect(&mut self, url: &str) -> Result<()> {
        let mut client = Client::connect_with_origin(&ws_url(url), &self.origin).await?;
        let welcome = client
            .handshake(&self.ticket, self.session, self.size)
            .await?;
        ensure!(
            welcome.session == self.session,
            "asked for {} and was given {}",
            self.session,
            welcome.session
        );
        self.client = client;
        self.host = welcome.host;
        self.epoch = welcome.epoch;
        self.url = url.to_string();
        Ok(())
    }

    /// Drops the socket and reconnects to the same host for the same
    /// session, as after a Wi-Fi blip.
    pub async fn reconnect_same_host(&mut self) -> Result<()> {
        if self.ticket_at.elapsed() > TICKET_REUSE {
            self.refresh_ticket().await?;
        }
        let url = self.url.clone();
        self.connect(&url).await
    }

    /// Signs this client in again with `cookie` (a fresh sign-in of the
    /// same user) and reconnects to its session where it is.
    pub async fn resume_signed_in(&mut self, cookie: &str) -> Result<()> {
        self.cookie = cookie.to_owned();
        self.refresh_ticket().await?;
        let url = self.url.clone();
        self.connect(&url).await
    }

    /// Asks the directory for a new ticket for the session where it is.
    pub async fn refresh_ticket(&mut self) -> Result<()> {
        let session = self.session.to_string();
        let answer = self
            .ask("/v1/placement", &json!({ "session": session }))
            .await?;
        self.ticket = answer["ticket"]
            .as_str()
            .context("placement without a ticket")?
            .to_owned();
        self.ticket_at = Instant::now();
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

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

    #[test]
    fn websocket_urls_follow_the_http_url() {
        assert_eq!(ws_url("http://127.0.0.1:81"), "ws://127.0.0.1:81/ws");
        assert_eq!(ws_url("http://127.0.0.1:81/"), "ws://127.0.0.1:81/ws");
        assert_eq!(ws_url("https://h.example"), "wss://h.example/ws");
    }

    #[test]
    fn going_away_and_lost_send_the_client_to_placement() {
        assert_eq!(Loss::from_close(1001), Loss::SentAway);
        assert_eq!(Loss::from_close(4008), Loss::SentAway);
        assert_eq!(Loss::from_close(1006), Loss::Dropped);
    }

    #[tokio::test]
    async fn the_proxy_forwards_and_cuts() -> Result<()> {
        let upstream = TcpListener::bind("127.0.0.1:0").await?;
        let proxy = CutProxy::start().await?;
        proxy.set_upstream(upstream.local_addr()?.port());
        let mut client = TcpStream::connect(("127.0.0.1", proxy.port)).await?;
        let (mut server, _) = upstream.accept().await?;
        client.write_all(b"ping").await?;
        let mut buf = [0u8; 4];
        server.read_exact(&mut buf).await?;
        assert_eq!(&buf, b"ping");
        assert_eq!(proxy.cut_all(), 1);
        let mut rest = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(5), client.read_to_end(&mut rest))
            .await
            .context("the cut did not reach the client")?;
        assert!(read.is_err() || rest.is_empty(), "{read:?} {rest:?}");
        assert_eq!(proxy.accepted(), 1);
        Ok(())
    }
}
