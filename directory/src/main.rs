//! `directory`: run a Thinline directory replica, manage accounts and the
//! Unix identities their sessions run as, make the ticket key.

/// jemalloc, which gives freed memory back to the kernel within seconds;
/// with glibc's malloc a directory stayed at 145 MB after a soak that
/// started at 11 MB (ARCHITECTURE.md, "Crate choices").
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use std::io::IsTerminal as _;
use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, bail};
use auth::ticket::TicketSigner;
use axum::http::HeaderName;
use clap::{Parser, Subcommand};
use directory::{AppState, DirectoryConfig, RecordingConfig, run};

#[derive(Parser)]
#[command(
    version,
    about = "Thinline directory: sign-in, host registry, placement and failover"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the directory API, the sign-in and sessions pages, and
    /// optionally the terminal page, over HTTP or HTTPS.
    Serve(Box<ServeArgs>),
    /// Manage the accounts people sign in with, and the Unix identities
    /// their sessions run as.
    User {
        #[command(subcommand)]
        action: UserAction,
    },
    /// See the session hosts and drain them for maintenance.
    Host {
        #[command(subcommand)]
        action: HostAction,
    },
    /// Make a new ticket signing key: prints THINLINE_TICKET_KEY (for every
    /// directory replica) and THINLINE_TICKET_PUBLIC_KEY (for every host).
    Keygen,
}

#[derive(Subcommand)]
enum UserAction {
    /// Add a user; the password is read from standard input (one line).
    Add {
        name: String,
        #[command(flatten)]
        store: StoreArg,
    },
    /// Set a new password (read from standard input, one line); the user
    /// is signed out everywhere and their open terminals close.
    Reset {
        name: String,
        #[command(flatten)]
        store: StoreArg,
    },
    /// Stop a user from signing in; they are signed out everywhere and
    /// their open terminals close within seconds.
    Disable {
        name: String,
        #[command(flatten)]
        store: StoreArg,
    },
    /// Let a disabled user sign in again.
    Enable {
        name: String,
        #[command(flatten)]
        store: StoreArg,
    },
    /// List the users: name, enabled or disabled, created (UTC).
    List {
        #[command(flatten)]
        store: StoreArg,
    },
    /// Run a user's sessions as an existing system user's uid and gid.
    ///
    /// Replaces the identity the hosts gave the user, on every host, for
    /// the sessions started from then on. Files keep their owner.
    Map {
        name: String,
        /// The uid to run as (never 0).
        #[arg(
            long,
            required_unless_present = "system_user",
            conflicts_with = "system_user"
        )]
        uid: Option<u32>,
        /// The gid to run as (never 0); defaults to the uid.
        #[arg(long, conflicts_with = "system_user")]
        gid: Option<u32>,
        /// Take the uid and gid of this user in /etc/passwd.
        #[arg(long, value_name = "NAME")]
        system_user: Option<String>,
        #[command(flatten)]
        store: StoreArg,
    },
    /// List the users' Unix identities: name, uid, gid, mapped (by an
    /// operator) or allocated (by a host, from its --uid-range).
    Ids {
        #[command(flatten)]
        store: StoreArg,
    },
}

#[derive(Subcommand)]
enum HostAction {
    /// List the hosts: id, live or expired, serving or drain:operator /
    /// drain:shutdown, sessions, url.
    List {
        #[command(flatten)]
        store: StoreArg,
    },
    /// Enrol a host (or enrol it again, which revokes its old secret):
    /// prints the secret its THINLINE_HOST_SECRET must hold. Once any host
    /// is enrolled, only enrolled hosts, each with its own secret and at
    /// its enrolled url, may hold a lease.
    Add {
        id: String,
        /// The url clients and directories reach the host at (its
        /// --public-url); the host cannot announce another.
        #[arg(long)]
        url: String,
        #[command(flatten)]
        store: StoreArg,
    },
    /// Revoke a host's enrolment: its secret stops working and its lease
    /// ends now, so directories move its sessions.
    Remove {
        id: String,
        #[command(flatten)]
        store: StoreArg,
    },
    /// List the enrolled hosts: id, url, enrolled (UTC).
    Enrolled {
        #[command(flatten)]
        store: StoreArg,
    },
    /// Drain a host: it moves its sessions elsewhere and takes none, across
    /// its restarts, until `undrain`.
    Drain {
        id: String,
        #[command(flatten)]
        store: StoreArg,
    },
    /// Lift an operator's drain; the host serves again from its next
    /// lease renewal.
    Undrain {
        id: String,
        #[command(flatten)]
        store: StoreArg,
    },
}

#[derive(clap::Args)]
struct StoreArg {
    /// The shared backend: `sqlite:PATH` or `postgres://...`, as the
    /// directory replicas use.
    #[arg(long, env = "THINLINE_STORE")]
    store: String,
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Address to listen on; loopback unless told otherwise.
    #[arg(
        long,
        env = "THINLINE_DIRECTORY_LISTEN",
        default_value = "127.0.0.1:8080"
    )]
    listen: SocketAddr,
    /// The shared backend: `sqlite:PATH` or `postgres://...`. Every replica
    /// and every host must name the same one.
    #[arg(long, env = "THINLINE_STORE")]
    store: String,
    /// Folder served at `/` (index.html and the built client, style.css).
    #[arg(long, env = "THINLINE_STATIC_DIR")]
    static_dir: Option<PathBuf>,
    /// Another directory replica's url (repeat for several), listed to
    /// browsers by /v1/config.
    #[arg(long = "peer", env = "THINLINE_DIRECTORY_PEERS", value_delimiter = ',')]
    peers: Vec<String>,
    /// This replica's url as browsers reach it; defaults to the listen
    /// address (https:// with --tls-cert).
    #[arg(long, env = "THINLINE_DIRECTORY_URL")]
    public_url: Option<String>,
    /// How long probing a host's /healthz may take before it counts as no
    /// evidence.
    #[arg(long, default_value_t = 300)]
    probe_timeout_ms: u64,
    /// What retry_owner answers tell clients to wait.
    #[arg(long, default_value_t = 250)]
    retry_after_ms: u64,
    /// The page's connect-src sources (repeat); defaults to every live
    /// host's http and ws origins.
    #[arg(long = "connect-src", value_delimiter = ',')]
    connect_src: Vec<String>,
    /// A file holding the ticket signing key (instead of the
    /// THINLINE_TICKET_KEY environment variable); `directory keygen` makes one.
    #[arg(long, env = "THINLINE_TICKET_KEY_FILE")]
    ticket_key_file: Option<PathBuf>,
    /// PEM certificate chain to serve HTTPS with (needs --tls-key).
    #[arg(long, env = "THINLINE_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert.
    #[arg(long, env = "THINLINE_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// PEM CA certificate(s) that https:// hosts' certificates chain to,
    /// for probing them and telling them a session ended.
    #[arg(long, env = "THINLINE_HOST_CA")]
    host_ca: Option<PathBuf>,
    /// An origin (scheme://host[:port]) allowed to post forms and call the
    /// API (repeat); defaults to --public-url and the peers.
    #[arg(long = "allow-origin", value_delimiter = ',')]
    allow_origins: Vec<String>,
    /// The address of an authenticating reverse proxy whose
    /// --proxy-user-header is trusted (repeat). Nothing else may set it.
    #[arg(long = "trusted-proxy", value_delimiter = ',')]
    trusted_proxies: Vec<IpAddr>,
    /// The header a --trusted-proxy names the signed-in user in, e.g.
    /// X-Remote-User; the account must exist and be enabled.
    #[arg(long, requires = "trusted_proxies")]
    proxy_user_header: Option<String>,
    /// Running sessions one user may have at once.
    #[arg(long, default_value_t = 10)]
    max_sessions_per_user: usize,
    /// How long a new share link lets others watch a session, in hours
    /// (at most a week).
    #[arg(
        long,
        env = "THINLINE_SHARE_TTL_HOURS",
        default_value_t = 12,
        value_parser = clap::value_parser!(u64).range(1..=168)
    )]
    share_ttl_hours: u64,
    /// Whether new sessions are recorded; sessions already running keep
    /// what they started with. Users find theirs on /recordings.
    #[arg(
        long,
        env = "THINLINE_RECORDING",
        value_enum,
        default_value_t = RecordingArg::OptIn
    )]
    recording: RecordingArg,
    /// The most one recording keeps, in MiB; the host stops recording the
    /// session there, with a marker saying so.
    #[arg(
        long,
        env = "THINLINE_RECORDING_MAX_MB",
        default_value_t = 64,
        value_parser = clap::value_parser!(u64).range(1..=4096)
    )]
    recording_max_mb: u64,
    /// How long a recording is kept after its last write, in days; older
    /// ones are deleted (checked every 10 minutes).
    #[arg(
        long,
        env = "THINLINE_RECORDING_RETENTION_DAYS",
        default_value_t = 30,
        value_parser = clap::value_parser!(u64).range(1..=3650)
    )]
    recording_retention_days: u64,
    #[command(flatten)]
    http: auth::serve::HttpArgs,
}

/// `--recording`, as typed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum RecordingArg {
    /// Nothing is recorded.
    Off,
    /// Each user's new sessions are recorded once they ask for it on
    /// /recordings.
    OptIn,
    /// Every new session is recorded, whatever its user says (audit).
    Always,
}

impl RecordingArg {
    fn policy(self) -> directory_api::RecordingPolicy {
        match self {
            RecordingArg::Off => directory_api::RecordingPolicy::Off,
            RecordingArg::OptIn => directory_api::RecordingPolicy::OptIn,
            RecordingArg::Always => directory_api::RecordingPolicy::Always,
        }
    }
}

async fn open_store(spec: &str) -> anyhow::Result<Arc<dyn store::Store>> {
    // The setting is not repeated: a PostgreSQL URL may hold a password.
    store::open(spec, "thinline-directory").await.context(
        "opening the store named by --store (check the setting, and that PostgreSQL is up if it is one)",
    )
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Purge freed pages on jemalloc's own thread, on time, rather than on
    // the next allocation, which an idle server never makes.
    let _ = tikv_jemalloc_ctl::background_thread::write(true);
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let Cli { command } = Cli::parse();
    match command {
        Command::Serve(args) => serve(*args).await,
        Command::User { action } => user(action).await,
        Command::Host { action } => host(action).await,
        Command::Keygen => {
            let signer = TicketSigner::generate();
            println!("THINLINE_TICKET_KEY={}", signer.to_base64());
            println!("THINLINE_TICKET_PUBLIC_KEY={}", signer.public_key());
            Ok(())
        }
    }
}

async fn user(action: UserAction) -> anyhow::Result<()> {
    use directory::accounts;
    match action {
        UserAction::Add { name, store } => {
            let password = password_for(&name)?;
            let store = open_store(&store.store).await?;
            accounts::add(&*store, &name, &password).await?;
            eprintln!("added user {name}");
        }
        UserAction::Reset { name, store } => {
            let password = password_for(&name)?;
            let store = open_store(&store.store).await?;
            accounts::reset(&*store, &name, &password).await?;
            eprintln!("set a new password for {name}; they are signed out everywhere");
        }
        UserAction::Disable { name, store } => {
            let store = open_store(&store.store).await?;
            accounts::set_disabled(&*store, &name, true).await?;
            eprintln!("disabled {name}; they are signed out everywhere");
        }
        UserAction::Enable { name, store } => {
            let store = open_store(&store.store).await?;
            accounts::set_disabled(&*store, &name, false).await?;
            eprintln!("enabled {name}");
        }
        UserAction::List { store } => {
            let store = open_store(&store.store).await?;
            for line in accounts::list(&*store).await? {
                println!("{line}");
            }
        }
        UserAction::Map {
            name,
            uid,
            gid,
            system_user,
            store,
        } => {
            use directory::identities;
            let (uid, gid) = match (system_user, uid) {
                (Some(user), _) => identities::system_user(&user)?,
                (None, Some(uid)) => (uid, gid.unwrap_or(uid)),
                // clap requires one of them.
                (None, None) => bail!("give --uid or --system-user"),
            };
            let store = open_store(&store.store).await?;
            let before = identities::map(&*store, &name, uid, gid).await?;
            eprintln!(
                "mapped {name} to uid {uid} gid {gid}; the sessions it starts from now on run as them on every host"
            );
            if let Some(before) = before.filter(|before| (before.uid, before.gid) != (uid, gid)) {
                eprintln!(
                    "{name} had uid {} gid {} before: files made as them keep that owner until you chown them",
                    before.uid, before.gid
                );
            }
        }
        UserAction::Ids { store } => {
            let store = open_store(&store.store).await?;
            for line in directory::identities::list(&*store).await? {
                println!("{line}");
            }
        }
    }
    Ok(())
}

async fn host(action: HostAction) -> anyhow::Result<()> {
    use directory::hosts::admin;
    match action {
        HostAction::List { store } => {
            let store = open_store(&store.store).await?;
            for line in admin::list(&*store).await? {
                println!("{line}");
            }
        }
        HostAction::Add { id, url, store } => {
            let store = open_store(&store.store).await?;
            let secret = admin::enrol(&*store, &id, &url).await?;
            println!("THINLINE_HOST_SECRET={secret}");
            eprintln!(
                "enrolled {id} at {url}: give it the line above in its environment (a Secret, \
                 never a flag), and only to it; enrolling it again revokes this secret"
            );
        }
        HostAction::Remove { id, store } => {
            let store = open_store(&store.store).await?;
            admin::remove(&*store, &id).await?;
            eprintln!(
                "removed {id}: its secret no longer renews a lease; its sessions move elsewhere"
            );
        }
        HostAction::Enrolled { store } => {
            let store = open_store(&store.store).await?;
            for line in admin::list_enrolled(&*store).await? {
                println!("{line}");
            }
        }
        HostAction::Drain { id, store } => {
            let store = open_store(&store.store).await?;
            admin::set_drain(&*store, &id, true).await?;
            eprintln!(
                "draining {id}: it moves its sessions elsewhere within a lease renewal, \
                 and stays drained until `directory host undrain {id}`"
            );
        }
        HostAction::Undrain { id, store } => {
            let store = open_store(&store.store).await?;
            admin::set_drain(&*store, &id, false).await?;
            eprintln!("lifted the drain of {id}; it takes sessions again from its next renewal");
        }
    }
    Ok(())
}

/// Reads one line from standard input; on a terminal, asks for it and
/// does not echo it.
fn password_for(name: &str) -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    if !stdin.is_terminal() {
        return directory::accounts::read_password(stdin.lock());
    }
    eprint!("password for {name}: ");
    let saved = rustix::termios::tcgetattr(&stdin).ok();
    if let Some(saved) = &saved {
        let mut quiet = saved.clone();
        quiet.local_modes.remove(rustix::termios::LocalModes::ECHO);
        let _ = rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, &quiet);
    }
    let password = directory::accounts::read_password(stdin.lock());
    if let Some(saved) = &saved {
        let _ = rustix::termios::tcsetattr(&stdin, rustix::termios::OptionalActions::Now, saved);
    }
    eprintln!();
    password
}

const NO_TICKET_KEY: &str = "no ticket signing key: run `directory keygen`, then give every directory \
     replica THINLINE_TICKET_KEY (or --ticket-key-file) and every host THINLINE_TICKET_PUBLIC_KEY";

/// The signing key from `--ticket-key-file` or `THINLINE_TICKET_KEY`; never a
/// flag holding the key itself, which would show in `ps`.
fn ticket_signer(file: Option<&Path>) -> anyhow::Result<TicketSigner> {
    let (seed, source) = match file {
        Some(path) => (
            std::fs::read_to_string(path).with_context(|| {
                format!(
                    "reading the ticket key from {} (--ticket-key-file)",
                    path.display()
                )
            })?,
            format!("--ticket-key-file {}", path.display()),
        ),
        None => match std::env::var("THINLINE_TICKET_KEY") {
            Ok(seed) if !seed.trim().is_empty() => (seed, "THINLINE_TICKET_KEY".to_owned()),
            _ => bail!(NO_TICKET_KEY),
        },
    };
    TicketSigner::from_base64(seed.trim()).map_err(|error| {
        anyhow::anyhow!(
            "{source} holds no usable ticket key ({error}); make one with `directory keygen`"
        )
    })
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    for source in &args.connect_src {
        anyhow::ensure!(
            directory::origins::plain_source(source),
            "--connect-src {source:?} is not a plain CSP source (no quotes, ';' or ',')"
        );
    }
    for origin in &args.allow_origins {
        anyhow::ensure!(
            directory::origins::origin(origin).as_deref() == Some(origin.trim_end_matches('/')),
            "--allow-origin {origin:?} is not an origin: use scheme://host[:port], e.g. https://term.example.com"
        );
    }
    let proxy_user_header = args
        .proxy_user_header
        .as_deref()
        .map(|name| {
            HeaderName::from_bytes(name.as_bytes())
                .with_context(|| format!("--proxy-user-header {name:?} is not a header name"))
        })
        .transpose()?;
    if !args.trusted_proxies.is_empty() && proxy_user_header.is_none() {
        tracing::warn!(
            "--trusted-proxy without --proxy-user-header: proxies only set X-Forwarded-For"
        );
    }
    let signer = ticket_signer(args.ticket_key_file.as_deref())?;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(
            auth::tls::server_config(cert, key)
                .context("loading --tls-cert and --tls-key (PEM certificate chain and key)")?,
        ),
        _ => None,
    };
    let host_tls = args
        .host_ca
        .as_deref()
        .map(|ca| {
            auth::tls::client_config(ca).with_context(|| {
                format!("loading --host-ca {} (PEM CA certificates)", ca.display())
            })
        })
        .transpose()?;
    if let Some(dir) = &args.static_dir {
        for page in ["index.html", "play.html"] {
            if !dir.join(page).exists() {
                tracing::warn!(dir = %dir.display(), "no {page} in the static folder; run `cargo xtask build` first");
            }
        }
    }
    let store = open_store(&args.store).await?;
    match store.list_host_enrolments().await {
        Ok(enrolled) if enrolled.is_empty() => tracing::warn!(
            "no host is enrolled: any process that can write the store may register as a host \
             with a loopback url; enrol every host with `directory host add ID --url URL` \
             (each gets a secret of its own) before serving anything but one machine"
        ),
        Ok(enrolled) => tracing::info!(
            hosts = enrolled.len(),
            "only enrolled hosts may hold a lease"
        ),
        Err(error) => tracing::warn!(%error, "could not read the host enrolments"),
    }
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {}; is another directory running there? pick another with --listen",
                args.listen
            )
        })?;
    let addr = listener.local_addr().context("reading the bound address")?;
    let shown = if addr.ip().is_loopback() {
        format!("127.0.0.1:{}", addr.port())
    } else {
        addr.to_string()
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let public_url = args
        .public_url
        .unwrap_or_else(|| format!("{scheme}://{shown}"));
    let public_key = signer.public_key();
    // Behind a proxy that terminates TLS, browsers still reach us over
    // https: cookies must be Secure all the same.
    let browsers_use_tls = tls.is_some() || public_url.starts_with("https://");
    let config = DirectoryConfig {
        public_url: Some(public_url),
        peers: args.peers,
        probe_timeout: Duration::from_millis(args.probe_timeout_ms),
        retry_after: Duration::from_millis(args.retry_after_ms),
        static_dir: args.static_dir,
        connect_src: args.connect_src,
        // Only from the environment, never a flag: flags show up in `ps`.
        host_token: std::env::var("THINLINE_HOST_TOKEN")
            .ok()
            .filter(|t| !t.is_empty())
            .map(directory::HostToken),
        operator_token: std::env::var("THINLINE_OPERATOR_TOKEN")
            .ok()
            .filter(|t| !t.is_empty())
            .map(directory::HostToken),
        ticket_signer: Arc::new(signer),
        tls: browsers_use_tls,
        allowed_origins: args
            .allow_origins
            .iter()
            .map(|origin| origin.trim_end_matches('/').to_owned())
            .collect(),
        trusted_proxies: args.trusted_proxies,
        proxy_user_header,
        max_sessions_per_user: args.max_sessions_per_user,
        share_ttl: Duration::from_secs(args.share_ttl_hours * 3600),
        http: args.http.options(),
        login_limits: auth::limit::LoginLimits::default(),
        host_tls,
        recording: RecordingConfig {
            policy: args.recording.policy(),
            max_bytes: args.recording_max_mb << 20,
            retention: Duration::from_secs(args.recording_retention_days * 24 * 3600),
        },
    };
    if config.host_token.is_none() {
        tracing::warn!(
            "THINLINE_HOST_TOKEN is not set: hosts will refuse this directory's calls to end a session \
             (the store still fences them)"
        );
    }
    if config.operator_token.is_none() {
        tracing::info!(
            "THINLINE_OPERATOR_TOKEN is not set: the HTTP drain API is off; \
             use `directory host drain ID --store ...`"
        );
    }
    tracing::info!(
        policy = ?config.recording.policy,
        max_mb = args.recording_max_mb,
        retention_days = args.recording_retention_days,
        "session recording"
    );
    let kind = store.kind();
    let state = AppState::new(store, config).context("starting the password-check threads")?;
    println!("thinline: directory listening on {scheme}://{shown}/");
    tracing::info!(%addr, store = kind, %public_key, allowed_origins = ?state.allowed_origins, "serving; hosts need THINLINE_TICKET_PUBLIC_KEY={public_key}");
    run(listener, tls, state, shutdown_signal())
        .await
        .context("serving")?;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without handlers the process can still be killed; it holds no
        // state, so nothing is lost.
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}
