//! Thinline in containers: the images `cargo xtask image` builds, run the
//! way an operator runs them, for `cargo xtask cluster`, the containerised
//! fault tests and `bench failover --containers`.
//!
//! One cluster is PostgreSQL (the `thinline-postgres` image), two directory
//! replicas and three hosts (the `thinline` image), a volume of homes that
//! every host mounts and a private network. Every container gets a fixed
//! address on that network, so a container started again keeps its url:
//! the directories know hosts by url, and a host comes back under its own
//! id. This machine reaches those addresses directly (the engine routes
//! the network's subnet to its bridge), so a browser here opens the page
//! at a directory's address and the page reaches hosts at theirs, the
//! same urls the directories probe.
//!
//! Secrets (the database password, the ticket key, the hosts' token and
//! enrolment secrets) go into containers from env files in the cluster's
//! own folder, mode 0600: never on a command line, in a log or in the
//! repository. They are made here (`directory keygen` in the image makes
//! the ticket key pair; `directory host add` in a directory container
//! makes each host's secret).
//!
//! Hosts run as root in their own user namespace (`--uidmap`: root there
//! is an unprivileged uid here, as `hostUsers: false` makes it on
//! Kubernetes), with every capability dropped but the seven the sandbox
//! needs, the same as `infra/k8s/hosts.yaml`; directories run as uid 1000
//! with none. The engine comes from `THINLINE_CONTAINER_ENGINE`, which
//! `cargo xtask` sets (podman with runc here, see shared NOTES).

mod engine;

use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result, bail, ensure};
use store::Store;
use testkit::http::{Request, form_encode};
use testkit::wait_until;

pub use engine::Engine;

pub const IMAGE: &str = "localhost/thinline:latest";
pub const POSTGRES_IMAGE: &str = "localhost/thinline-postgres:latest";

/// The capabilities a host needs and why; `infra/k8s/hosts.yaml` grants
/// the same.
const HOST_CAPABILITIES: &str = "SETUID,SETGID,CHOWN,FOWNER,DAC_READ_SEARCH,KILL,SYS_PTRACE";
/// Where the hosts' user namespace starts on this machine, and the uids
/// accounts get inside it (a user namespace has 65536).
const HOST_UID_BASE: u32 = 1_000_000;
const ACCOUNT_UIDS: &str = "10000-59999";
/// Every server listens on this port at its own address.
const PORT: u16 = 8080;
/// How long a container may take to answer after it starts.
const STARTUP: Duration = Duration::from_secs(60);
/// Longest the teardown waits for podman to let go of stopped containers.
const REMOVAL: Duration = Duration::from_secs(5);

/// How a cluster is made.
#[derive(Clone, Debug)]
pub struct ClusterSpec {
    /// Prefix of every container, volume and network name; also the
    /// `thinline.cluster` label that `down` removes by.
    pub name: String,
    /// Where the env files (mode 0600) are kept.
    pub state_dir: PathBuf,
    pub directories: usize,
    pub hosts: usize,
    /// `--lease-ttl-ms` and `--renew-interval-ms` of every host.
    pub lease: Option<(u64, u64)>,
    /// More arguments for every host's `serve`.
    pub host_args: Vec<String>,
    pub rust_log: Option<String>,
    /// Keep the volumes (homes, PostgreSQL's data) and the database
    /// password of an earlier cluster of this name.
    pub keep_data: bool,
}

impl ClusterSpec {
    pub fn new(name: &str, state_dir: &Path) -> ClusterSpec {
        ClusterSpec {
            name: name.to_owned(),
            state_dir: state_dir.to_owned(),
            directories: 2,
            hosts: 3,
            lease: None,
            host_args: Vec::new(),
            rust_log: None,
            keep_data: false,
        }
    }
}

impl ClusterSpec {
    /// Sessions run bash without profile or rc files and with the prompt
    /// `$ `, as the process cluster's do, so screens read the same.
    pub fn plain_bash(mut self) -> ClusterSpec {
        self.host_args.extend(
            [
                "--program",
                "/bin/bash",
                "--arg=--noprofile",
                "--arg=--norc",
                "--session-env=PS1=$ ",
            ]
            .map(str::to_owned),
        );
        self
    }
}

/// One container of the cluster.
#[derive(Clone, Debug)]
pub struct Node {
    /// The container's name; for a host, also its host id.
    pub name: String,
    pub ip: Ipv4Addr,
}

impl Node {
    pub fn url(&self) -> String {
        format!("http://{}:{PORT}", self.ip)
    }
}

/// A running containerised cluster.
pub struct ContainerCluster {
    pub engine: Engine,
    pub spec: ClusterSpec,
    pub network: String,
    pub postgres: Node,
    pub directories: Vec<Node>,
    pub hosts: Vec<Node>,
    /// The store as this machine reaches it (the password is in it: never
    /// print it).
    store_url: String,
    /// This side's own connection to the store, to check what the
    /// containers wrote.
    pub store: Arc<dyn Store>,
}

impl ContainerCluster {
    /// Removes what a cluster of this name left, then starts PostgreSQL,
    /// the directories (which migrate the schema), enrols the hosts and
    /// starts them; returns when every server answers `/healthz`.
    pub async fn up(spec: ClusterSpec) -> Result<ContainerCluster> {
        let engine = Engine::from_env()?;
        for image in [IMAGE, POSTGRES_IMAGE] {
            ensure!(
                engine.succeeds(&["image", "exists", image]).await,
                "image {image} is missing: run `cargo xtask image` first"
            );
        }
        down(&engine, &spec.name, !spec.keep_data).await?;
        create_private_dir(&spec.state_dir)?;
        let postgres_env = spec.state_dir.join("postgres.env");
        let kept = match spec.keep_data {
            true => read_env(&postgres_env, "POSTGRES_PASSWORD"),
            false => None,
        };
        let network = spec.name.clone();
        let subnet = create_network(&engine, &network).await?;
        let at = |last: u8| {
            let [a, b, c, _] = subnet.octets();
            Ipv4Addr::new(a, b, c, last)
        };
        let postgres = Node {
            name: format!("{}-postgres", spec.name),
            ip: at(2),
        };
        let directories: Vec<Node> = (0..spec.directories)
            .map(|i| Node {
                name: format!("{}-directory-{}", spec.name, i + 1),
                ip: at(10 + i as u8),
            })
            .collect();
        let hosts: Vec<Node> = (0..spec.hosts)
            .map(|i| Node {
                name: format!("{}-host-{}", spec.name, i + 1),
                ip: at(20 + i as u8),
            })
            .collect();
        let password = match kept {
            Some(password) => password,
            None => random_hex(24)?,
        };
        let store_url = format!(
            "postgres://thinline:{password}@{}:5432/thinline",
            postgres.ip
        );
        write_env(&postgres_env, &[("POSTGRES_PASSWORD", &password)])?;
        let (ticket_key, ticket_public_key) = keygen(&engine).await?;
        let host_token = random_hex(32)?;
        write_env(
            &spec.state_dir.join("directory.env"),
            &[
                ("THINLINE_STORE", &store_url),
                ("THINLINE_TICKET_KEY", &ticket_key),
                ("THINLINE_HOST_TOKEN", &host_token),
            ],
        )?;
        let store = start_postgres(&engine, &spec, &network, &postgres, &store_url).await?;
        let cluster = ContainerCluster {
            engine,
            spec,
            network,
            postgres,
            directories,
            hosts,
            store_url,
            store,
        };
        for i in 0..cluster.directories.len() {
            cluster.start_directory(i).await?;
        }
        for i in 0..cluster.directories.len() {
            cluster
                .wait_healthy(&cluster.directories[i].clone())
                .await?;
        }
        for i in 0..cluster.hosts.len() {
            let host = cluster.hosts[i].clone();
            let secret = cluster.enrol(&host).await?;
            write_env(
                &cluster.spec.state_dir.join(format!("{}.env", host.name)),
                &[
                    ("THINLINE_STORE", &cluster.store_url),
                    ("THINLINE_TICKET_PUBLIC_KEY", &ticket_public_key),
                    ("THINLINE_HOST_TOKEN", &host_token),
                    ("THINLINE_HOST_SECRET", &secret),
                ],
            )?;
            cluster.start_host(i).await?;
        }
        for host in cluster.hosts.clone() {
            cluster.wait_healthy(&host).await?;
        }
        Ok(cluster)
    }

    fn run_args(&self, node: &Node) -> Vec<String> {
        run_args(&self.spec, &self.network, node)
    }

    fn directory_run_args(&self, i: usize) -> Vec<String> {
        let node = &self.directories[i];
        let mut args = self.run_args(node);
        args.extend(strings(&[
            "--env-file",
            &path_arg(&self.spec.state_dir.join("directory.env")),
            "--user",
            "1000:1000",
            "--read-only",
            "--cap-drop",
            "all",
            "--security-opt",
            "no-new-privileges",
            "--entrypoint",
            "directory",
            IMAGE,
            "serve",
            "--public-url",
            &node.url(),
        ]));
        for (j, peer) in self.directories.iter().enumerate() {
            if j != i {
                args.extend(strings(&["--peer", &peer.url()]));
            }
        }
        args
    }

    async fn start_directory(&self, i: usize) -> Result<()> {
        self.engine.run_strings(&self.directory_run_args(i)).await?;
        Ok(())
    }

    fn host_run_args(&self, i: usize) -> Vec<String> {
        let node = &self.hosts[i];
        let mut args = self.run_args(node);
        if self.engine.is_podman() {
            // Root in the container is HOST_UID_BASE here; `:U` gives the
            // homes volume to that root, the same for every host.
            let map = format!("0:{HOST_UID_BASE}:65536");
            args.extend(strings(&["--uidmap", &map, "--gidmap", &map]));
        }
        let homes = if self.engine.is_podman() {
            format!("{}-homes:/homes:U", self.spec.name)
        } else {
            format!("{}-homes:/homes", self.spec.name)
        };
        args.extend(strings(&[
            "--env-file",
            &path_arg(&self.spec.state_dir.join(format!("{}.env", node.name))),
            "--env",
            &format!("THINLINE_UID_RANGE={ACCOUNT_UIDS}"),
            "--user",
            "0:0",
            "--read-only",
            "--tmpfs",
            "/tmp",
            "--tmpfs",
            "/run",
            "--volume",
            &homes,
            "--cap-drop",
            "all",
            "--cap-add",
            HOST_CAPABILITIES,
            // bwrap makes namespaces and mounts a /proc in them: the
            // default seccomp profile and masked /proc paths forbid both.
            "--security-opt",
            "seccomp=unconfined",
            "--security-opt",
            "unmask=ALL",
            "--security-opt",
            "no-new-privileges",
            // SIGTERM drains; give a drain the time Kubernetes gives it.
            "--stop-timeout",
            "60",
            IMAGE,
            "serve",
            "--host-id",
            &node.name,
            "--public-url",
            &node.url(),
            "--session-network",
            "none",
        ]));
        for directory in &self.directories {
            args.extend(strings(&["--allow-origin", &directory.url()]));
        }
        if let Some((ttl, renew)) = self.spec.lease {
            args.extend(strings(&[
                "--lease-ttl-ms",
                &ttl.to_string(),
                "--renew-interval-ms",
                &renew.to_string(),
            ]));
        }
        args.extend(self.spec.host_args.iter().cloned());
        args
    }

    async fn start_host(&self, i: usize) -> Result<()> {
        self.engine.run_strings(&self.host_run_args(i)).await?;
        Ok(())
    }

    /// `directory host add` in the first directory's container, as an
    /// operator enrols a host; the secret it printed.
    async fn enrol(&self, host: &Node) -> Result<String> {
        let printed = self
            .directory_cli(&["host", "add", &host.name, "--url", &host.url()], "")
            .await?;
        printed
            .lines()
            .find_map(|line| line.strip_prefix("THINLINE_HOST_SECRET="))
            .map(str::to_owned)
            .with_context(|| format!("`directory host add {}` printed no secret", host.name))
    }

    /// `directory ARGS` in a running directory container (its store comes
    /// from its environment), `input` on its standard input.
    pub async fn directory_cli(&self, args: &[&str], input: &str) -> Result<String> {
        let running = self.first_running_directory().await?;
        let mut command = vec!["exec", "--interactive", running.as_str(), "directory"];
        command.extend_from_slice(args);
        self.engine.run_with_input(&command, input).await
    }

    async fn first_running_directory(&self) -> Result<String> {
        for directory in &self.directories {
            if self.is_running(&directory.name).await? {
                return Ok(directory.name.clone());
            }
        }
        bail!("no directory container is running")
    }

    /// Adds an account (or sets its password), as `directory user add`.
    pub async fn add_user(&self, user: &str, password: &str) -> Result<()> {
        let input = format!("{password}\n");
        self.directory_cli(&["user", "add", user], &input).await?;
        Ok(())
    }

    /// Signs in at `directory`'s form as a browser would; the
    /// `thinline_login=...` cookie pair.
    pub async fn sign_in(&self, directory: &Node, user: &str, password: &str) -> Result<String> {
        let form = format!(
            "user={}&password={}",
            form_encode(user),
            form_encode(password)
        );
        let answer = Request::new("POST", &format!("{}/login", directory.url()))?
            .header("origin", &directory.url())
            .form(&form)
            .send()
            .await?;
        ensure!(
            answer.status == 303,
            "signing in at {} answered {}: {}",
            directory.name,
            answer.status,
            answer.body
        );
        answer
            .cookie(auth::login::COOKIE_NAME)
            .context("signing in set no cookie")
    }

    /// Waits until `node` answers `/healthz` with 200.
    pub async fn wait_healthy(&self, node: &Node) -> Result<String> {
        let url = format!("{}/healthz", node.url());
        let outcome = wait_until(STARTUP, &format!("{} to answer {url}", node.name), || {
            let url = url.clone();
            async move {
                let answer = Request::new("GET", &url)?
                    .timeout(Duration::from_secs(2))
                    .send()
                    .await;
                Ok(match answer {
                    Ok(answer) if answer.status == 200 => Ok(answer.body),
                    Ok(answer) => Err(format!("{}: {}", answer.status, answer.body)),
                    Err(err) => Err(format!("{err:#}")),
                })
            }
        })
        .await;
        if outcome.is_err() {
            eprintln!("{}", self.logs(&node.name).await);
        }
        outcome
    }

    /// `/healthz` of `node` now: its status and body.
    pub async fn health(&self, node: &Node) -> Result<(u16, String)> {
        let answer = Request::new("GET", &format!("{}/healthz", node.url()))?
            .timeout(Duration::from_secs(2))
            .send()
            .await?;
        Ok((answer.status, answer.body))
    }

    pub fn host(&self, id: &str) -> Result<Node> {
        self.hosts
            .iter()
            .find(|h| h.name == id)
            .cloned()
            .with_context(|| format!("no host container named {id}"))
    }

    /// SIGKILL, as `podman kill` sends it.
    pub async fn kill(&self, node: &Node) -> Result<()> {
        self.engine.run(&["kill", &node.name]).await.map(drop)
    }

    /// SIGTERM, then SIGKILL after `timeout`: for a host, a drain.
    pub async fn stop(&self, node: &Node, timeout: Duration) -> Result<()> {
        let seconds = timeout.as_secs().to_string();
        self.engine
            .run(&["stop", "--time", &seconds, &node.name])
            .await
            .map(drop)
    }

    /// Starts a stopped or killed container again, under its own name and
    /// address.
    pub async fn start(&self, node: &Node) -> Result<()> {
        self.engine.run(&["start", &node.name]).await.map(drop)
    }

    /// Cuts `node` off the cluster's network: nothing reaches it and it
    /// reaches nothing.
    pub async fn disconnect(&self, node: &Node) -> Result<()> {
        self.engine
            .run(&["network", "disconnect", &self.network, &node.name])
            .await
            .map(drop)
    }

    /// Puts `node` back on the network at its own address.
    pub async fn reconnect(&self, node: &Node) -> Result<()> {
        let ip = node.ip.to_string();
        self.engine
            .run(&["network", "connect", "--ip", &ip, &self.network, &node.name])
            .await
            .map(drop)
    }

    pub async fn is_running(&self, name: &str) -> Result<bool> {
        let state = self
            .engine
            .run(&["inspect", "--format", "{{.State.Running}}", name])
            .await?;
        Ok(state.trim() == "true")
    }

    /// What a container logged (both streams), for a failure's report.
    pub async fn logs(&self, name: &str) -> String {
        match self.engine.output(&["logs", "--tail", "60", name]).await {
            Ok((stdout, stderr)) => format!("--- {name} ---\n{stdout}{stderr}"),
            Err(err) => format!("--- {name}: no logs: {err:#}"),
        }
    }

    /// Every container's last log lines.
    pub async fn all_logs(&self) -> String {
        let mut text = String::new();
        for node in self.nodes() {
            text.push_str(&self.logs(&node.name).await);
            text.push('\n');
        }
        text
    }

    pub fn nodes(&self) -> Vec<Node> {
        let mut nodes = vec![self.postgres.clone()];
        nodes.extend(self.directories.iter().cloned());
        nodes.extend(self.hosts.iter().cloned());
        nodes
    }

    /// The page's url: the first directory's.
    pub fn page_url(&self) -> String {
        format!("{}/", self.directories[0].url())
    }

    /// Removes every container, the network and the volumes.
    pub async fn down(self) -> Result<()> {
        down(&self.engine, &self.spec.name, true).await?;
        let _ = std::fs::remove_dir_all(&self.spec.state_dir);
        Ok(())
    }

    /// Waits until `session`'s record says `host` owns it; its epoch.
    pub async fn wait_owner(&self, session: &str, host: &str, timeout: Duration) -> Result<u64> {
        wait_until(
            timeout,
            &format!("{session} to be owned by {host}"),
            || async {
                let record = self
                    .store
                    .get_session(session)
                    .await?
                    .with_context(|| format!("no session {session}"))?;
                Ok(if record.owner_host == host {
                    Ok(record.epoch)
                } else {
                    Err(format!(
                        "owned by {} at {}",
                        record.owner_host, record.epoch
                    ))
                })
            },
        )
        .await
    }
}

/// `run --detach` arguments every container shares: its name, label,
/// network and fixed address, and limits the engine may set.
fn run_args(spec: &ClusterSpec, network: &str, node: &Node) -> Vec<String> {
    let mut args = strings(&[
        "run",
        "--detach",
        "--name",
        &node.name,
        "--hostname",
        &node.name,
        "--label",
        &format!("thinline.cluster={}", spec.name),
        "--network",
        network,
        "--ip",
        &node.ip.to_string(),
    ]);
    if let Some(filter) = &spec.rust_log {
        args.extend(strings(&["--env", &format!("RUST_LOG={filter}")]));
    }
    args
}

/// PostgreSQL in its container, then this side's connection to it.
async fn start_postgres(
    engine: &Engine,
    spec: &ClusterSpec,
    network: &str,
    node: &Node,
    url: &str,
) -> Result<Arc<dyn Store>> {
    let mut args = run_args(spec, network, node);
    args.extend(strings(&[
        "--env-file",
        &path_arg(&spec.state_dir.join("postgres.env")),
        "--volume",
        &format!("{}-pgdata:/var/lib/thinline-postgres", spec.name),
        POSTGRES_IMAGE,
    ]));
    engine.run_strings(&args).await?;
    wait_until(
        STARTUP,
        "PostgreSQL in its container to answer",
        || async move {
            Ok(match store::PgStore::connect(url).await {
                Ok(store) => Ok(Arc::new(store) as Arc<dyn Store>),
                Err(err) => Err(err.to_string()),
            })
        },
    )
    .await
}

/// Removes the containers labelled with `name`, its network and, with
/// `volumes`, its volumes. Nothing there is not an error.
pub async fn down(engine: &Engine, name: &str, volumes: bool) -> Result<()> {
    let label = format!("label=thinline.cluster={name}");
    let listed = engine
        .run(&["ps", "--all", "--filter", &label, "--format", "{{.Names}}"])
        .await?;
    let containers: Vec<&str> = listed.split_whitespace().collect();
    if !containers.is_empty() {
        let mut args = vec!["rm", "--force", "--time", "0"];
        args.extend(&containers);
        // podman may find a container's shm still mounted just after it
        // stopped ("device or resource busy"); moments later it is not.
        wait_until(
            REMOVAL,
            "the cluster's containers to be removed",
            || async {
                Ok(engine
                    .run(&args)
                    .await
                    .map(drop)
                    .map_err(|err| format!("{err:#}")))
            },
        )
        .await?;
    }
    if engine.succeeds(&["network", "exists", name]).await
        || engine.succeeds(&["network", "inspect", name]).await
    {
        engine.run(&["network", "rm", name]).await?;
    }
    if volumes {
        for volume in ["homes", "pgdata"] {
            let volume = format!("{name}-{volume}");
            if engine.succeeds(&["volume", "inspect", &volume]).await {
                engine.run(&["volume", "rm", "--force", &volume]).await?;
            }
        }
    }
    Ok(())
}

/// `name`'s containers and their states, one per line.
pub async fn status(engine: &Engine, name: &str) -> Result<String> {
    let label = format!("label=thinline.cluster={name}");
    engine
        .run(&[
            "ps",
            "--all",
            "--filter",
            &label,
            "--format",
            "{{.Names}}\t{{.Status}}",
        ])
        .await
}

/// A private network for the cluster, on a /24 no other network uses: the
/// engine refuses an overlapping subnet, so the next is tried. Returns the
/// subnet's first address.
async fn create_network(engine: &Engine, name: &str) -> Result<Ipv4Addr> {
    let start = name
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    let mut last_error = String::new();
    for attempt in 0..32u32 {
        let third = ((start + attempt) % 200 + 20) as u8;
        let subnet = Ipv4Addr::new(10, 213, third, 0);
        let made = engine
            .run(&[
                "network",
                "create",
                "--subnet",
                &format!("{subnet}/24"),
                "--label",
                &format!("thinline.cluster={name}"),
                name,
            ])
            .await;
        match made {
            Ok(_) => return Ok(subnet),
            Err(err) => last_error = format!("{err:#}"),
        }
    }
    bail!("could not create network {name} on any 10.213.x.0/24: {last_error}")
}

/// `directory keygen` in the image: the ticket signing key and its public
/// half.
async fn keygen(engine: &Engine) -> Result<(String, String)> {
    let printed = engine
        .run(&[
            "run",
            "--rm",
            "--network",
            "none",
            "--entrypoint",
            "directory",
            IMAGE,
            "keygen",
        ])
        .await?;
    let find = |name: &str| {
        printed
            .lines()
            .find_map(|l| l.strip_prefix(name)?.strip_prefix('='))
            .map(str::to_owned)
            .with_context(|| format!("`directory keygen` printed no {name}"))
    };
    Ok((
        find("THINLINE_TICKET_KEY")?,
        find("THINLINE_TICKET_PUBLIC_KEY")?,
    ))
}

fn create_private_dir(dir: &Path) -> Result<()> {
    use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("creating {}", dir.display()))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    Ok(())
}

/// An env file readable only by its owner.
fn write_env(path: &Path, variables: &[(&str, &str)]) -> Result<()> {
    let mut text = String::new();
    for (name, value) in variables {
        ensure!(
            !value.contains('\n'),
            "{name} holds a newline, which an env file cannot"
        );
        text.push_str(&format!("{name}={value}\n"));
    }
    write_private(path, &text)
}

/// Writes `text` to a file only its owner may read (mode 0600 from the
/// start, never wider).
pub fn write_private(path: &Path, text: &str) -> Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(text.as_bytes())?;
    Ok(())
}

/// A variable of an env file [`write_env`] wrote.
fn read_env(path: &Path, name: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix('='))
        .map(str::to_owned)
}

pub fn random_hex(bytes: usize) -> Result<String> {
    use std::io::Read;
    let mut buffer = vec![0u8; bytes];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut buffer))
        .context("reading /dev/urandom")?;
    Ok(buffer.iter().map(|b| format!("{b:02x}")).collect())
}

fn strings(words: &[&str]) -> Vec<String> {
    words.iter().map(|w| (*w).to_owned()).collect()
}

fn path_arg(path: &Path) -> String {
    path.display().to_string()
}
