//! A whole Thinline deployment on loopback, for failover tests and the
//! failover benchmark.
//!
//! Failover is a property of several processes together: a directory (or
//! two), some hosts and the one store they share. [`Cluster`] starts them
//! as real processes, the way `cargo xtask demo` does, over a SQLite file
//! in a temporary folder or a fresh PostgreSQL database, with one ticket
//! key (the harness's, see [`crate::tickets`]) and one shared home root.
//! The test's user has a real account and signs in over HTTP like a
//! browser; [`Cluster::cookie`] is that sign-in, and pages of the shipping
//! client ([`crate::page::NativePage`]) open on the first directory with it.
//! The test keeps its own handle on the store, so it can check what the
//! processes wrote (owner, epoch, who saved the screen) rather than
//! trusting what they say.
//!
//! Processes are `testkit::process::Process`es: killed, stopped and
//! resumed with signals to one checked pid. The rest is split by concern:
//! `servers` (how each process is started), `directory` (signing in,
//! questions, pages) and `records` (reading the store).

mod directory;
mod records;
mod servers;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, ensure};
use store::Store;
use testkit::pg::FreshDatabase;
use testkit::process::Process;
use testkit::proxy::FaultProxy;

pub use directory::{read_answer, request_as, request_body};
pub use records::{
    SavedView, recorded_events, saved_screen, wait_persisted, wait_persisted_within,
};
pub use servers::{HOST_TOKEN, parse_directory_ready_line};

pub use crate::paths::directory_binary;

use crate::tickets::{self, TEST_PASSWORD, TEST_USER};

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

/// A host of the cluster.
pub struct ClusterHost {
    pub id: String,
    pub server: Process,
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
    pub directories: Vec<Process>,
    pub hosts: Vec<ClusterHost>,
    directory_urls: Vec<String>,
    next_host: usize,
    root: tempfile::TempDir,
    // Dropped after every process (fields drop in order), so no process
    // holds the database open when it is dropped.
    pg: Option<FreshDatabase>,
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
                let url = testkit::pg::database_url()
                    .context("DATABASE_URL is not set; `cargo xtask test` sets it")?;
                Some(FreshDatabase::create(&url, "thinline_fo").await?)
            }
        };
        let sqlite = root.path().join("store.sqlite");
        let store_spec = match &pg {
            Some(db) => db.url(),
            None => format!("sqlite:{}", sqlite.display()),
        };
        let directories = servers::start_directories(&options, &store_spec)?;
        let directory_urls: Vec<String> = directories.iter().map(Process::url).collect();
        let store: Arc<dyn Store> = match &pg {
            Some(db) => Arc::new(store::PgStore::connect(&db.url()).await?),
            None => Arc::new(store::SqliteStore::open(&sqlite).await?),
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
            pg,
        };
        cluster.cookie = cluster.sign_in(TEST_USER, TEST_PASSWORD).await?;
        for _ in 0..options.hosts {
            cluster.start_host(None)?;
        }
        cluster.wait_hosts_live().await?;
        Ok(cluster)
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

    /// A cluster whose one host the pages reach only through a fresh
    /// fault proxy, with the host live.
    pub async fn start_behind_proxy() -> Result<(Cluster, FaultProxy)> {
        let mut cluster = Cluster::start(ClusterOptions {
            hosts: 0,
            ..ClusterOptions::default()
        })
        .await?;
        let proxy = FaultProxy::start_without_target().await?;
        cluster.start_host_behind(&proxy)?;
        cluster.wait_hosts_live().await?;
        Ok((cluster, proxy))
    }

    /// Starts the next host behind `proxy`: the host registers the
    /// proxy's url, so the directory sends pages through it. Returns its
    /// id; see [`Cluster::wait_hosts_live`].
    pub fn start_host_behind(&mut self, proxy: &FaultProxy) -> Result<String> {
        let id = self.start_host(Some(proxy.url()))?;
        proxy.retarget_port(self.host(&id).context("the host just started")?.server.port)?;
        Ok(id)
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
            let port = servers::free_port()?;
            let url = public_url
                .clone()
                .unwrap_or_else(|| format!("http://127.0.0.1:{port}"));
            (port, Some(self.enrol(&id, &url)?))
        } else {
            (0, None)
        };
        let server = self.spawn_host(
            &id,
            port,
            public_url.as_deref(),
            &store_spec,
            secret.as_deref(),
        )?;
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

    /// Starts a host process outside the cluster's books: id `id`, its
    /// own port, the cluster's store, and `secret` if given. For impostor
    /// tests; the caller keeps the process alive.
    pub fn spawn_host_as(&self, id: &str, secret: Option<&str>) -> Result<Process> {
        self.spawn_host(id, 0, None, &self.store_spec, secret)
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
        let host = self.host_mut(id)?;
        ensure!(
            !host.server.is_running(),
            "{id} is still running; stop it before starting it again"
        );
        let (port, public_url, store_spec, secret) = (
            host.server.port,
            host.public_url_arg.clone(),
            host.store_spec.clone(),
            host.secret.clone(),
        );
        let server = self.spawn_host(
            id,
            port,
            public_url.as_deref(),
            &store_spec,
            secret.as_deref(),
        )?;
        self.host_mut(id)?.server = server;
        Ok(())
    }

    /// The PostgreSQL server the cluster's database is on (a PostgreSQL
    /// cluster only).
    pub fn database_addr(&self) -> Option<SocketAddr> {
        self.pg.as_ref().and_then(|db| db.server_addr().ok())
    }

    /// Freezes host `id` (SIGSTOP) in the middle of saving `session`'s
    /// screen, holding the session's row lock that a takeover needs: the
    /// worst moment a host can freeze. The test holds the session's
    /// `screens` row itself, so the host's next save updates the session's
    /// row and then waits on it; the host is stopped while it waits, and
    /// the test lets go, so the save's statement finishes on the server
    /// and its transaction sits idle, its client frozen. Checked in
    /// `pg_stat_activity` and `pg_locks` (`application_name` `thinline-host
    /// ID`). The session's screen must be changing, so a save comes.
    /// PostgreSQL clusters only.
    pub async fn stop_host_mid_save(&mut self, id: &str, session: &str) -> Result<()> {
        use sqlx::Connection;
        ensure!(
            self.pg.is_some(),
            "only a PostgreSQL cluster shows who is in a transaction"
        );
        let connect = || async {
            sqlx::PgConnection::connect(&self.store_spec)
                .await
                .context("connecting to the cluster's database")
        };
        let (mut holder, mut watcher) = (connect().await?, connect().await?);
        let application = format!("thinline-host {id}");
        let mut hold = holder.begin().await?;
        let held: Option<i32> =
            sqlx::query_scalar("SELECT 1 FROM screens WHERE session_id = $1 FOR UPDATE")
                .bind(session)
                .fetch_optional(&mut *hold)
                .await?;
        ensure!(
            held.is_some(),
            "session {session} has no saved screen to hold"
        );
        // Saves come every persist interval while the screen changes.
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let (waiting,): (i64,) = sqlx::query_as(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE application_name = $1 AND wait_event_type = 'Lock'",
            )
            .bind(&application)
            .fetch_one(&mut watcher)
            .await?;
            if waiting > 0 {
                break;
            }
            ensure!(
                std::time::Instant::now() < deadline,
                "{id} made no save of {session} in 20 s"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        self.host_mut(id)?.server.stop()?;
        hold.rollback().await?;
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let (holding,): (i64,) = sqlx::query_as(
                "SELECT count(*) FROM pg_stat_activity AS a \
                 JOIN pg_locks AS l ON l.pid = a.pid \
                 JOIN pg_class AS c ON c.oid = l.relation \
                 WHERE a.application_name = $1 AND a.state = 'idle in transaction' \
                 AND c.relname = 'sessions' AND l.mode = 'RowExclusiveLock' AND l.granted",
            )
            .bind(&application)
            .fetch_one(&mut watcher)
            .await?;
            if holding > 0 {
                return Ok(());
            }
            ensure!(
                std::time::Instant::now() < deadline,
                "the frozen {id} holds no transaction on the session's row"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The cluster's store url, reaching the server through a proxy on
    /// `port` (a PostgreSQL cluster only).
    pub fn store_spec_through(&self, port: u16) -> Option<String> {
        self.pg.as_ref().map(|db| db.url_through(port))
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
