//! `host-server`: run a Thinline session host.

/// jemalloc, which gives freed memory back to the kernel within seconds;
/// glibc's malloc kept a host at its peak long after the load ended
/// (ARCHITECTURE.md, "Crate choices", has the measurements).
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use auth::ticket::{TicketPublicKey, TicketVerifier};
use clap::{Parser, Subcommand};
use host_server::address_limit::AddressLimiter;
use host_server::cgroup::{Limits, parse_bytes};
use host_server::host_token::{HostSecret, HostToken};
use host_server::metrics::Metrics;
use host_server::pty::ProgramSpec;
use host_server::registry::{Registry, StoreConfig};
use host_server::sandbox::{Isolation, Sandbox, SandboxOptions, SessionNetwork};
use host_server::session::SessionConfig;
use host_server::standing::Standing;
use host_server::{AppState, DEFAULT_MAX_CONNECTIONS_PER_ADDRESS, LeaseConfig};

#[derive(Parser)]
#[command(version, about = "Thinline session host")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve terminals over WebSocket (the directory serves the page).
    Serve(Box<ServeArgs>),
    /// Drain the host serving --control-socket on this machine: it stops
    /// taking sessions, persists every session and sends its clients on;
    /// returns when that is done. For a Kubernetes preStop hook.
    Drain(DrainArgs),
}

#[derive(clap::Args)]
struct DrainArgs {
    /// The serving host's control socket (its --control-socket).
    #[arg(long, env = "THINLINE_CONTROL_SOCKET")]
    control_socket: PathBuf,
    /// Longest to wait for the sessions to be persisted and gone once the
    /// drain has begun. Keep it under the pod's grace period.
    #[arg(long, default_value_t = 40)]
    timeout_secs: u64,
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Address to listen on; loopback unless told otherwise.
    #[arg(long, env = "THINLINE_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// The directory's ticket public key (base64, as `directory keygen`
    /// prints it); repeat or comma-separate to accept several while the
    /// directory's key is rotated.
    #[arg(
        long = "ticket-public-key",
        env = "THINLINE_TICKET_PUBLIC_KEY",
        value_delimiter = ',',
        required = true
    )]
    ticket_public_keys: Vec<String>,
    /// PEM certificate chain: serve HTTPS and WSS (with --tls-key).
    #[arg(long, env = "THINLINE_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// PEM private key of --tls-cert (PKCS#8, PKCS#1 or SEC1).
    #[arg(long, env = "THINLINE_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// This host's name, shown to users and used by the directory.
    #[arg(long, env = "THINLINE_HOST_ID", default_value = "h1")]
    host_id: String,
    /// Program each session runs; defaults to $SHELL as a login shell.
    #[arg(long, env = "THINLINE_PROGRAM")]
    program: Option<PathBuf>,
    /// Argument for the program (repeat for several).
    #[arg(long = "arg", allow_hyphen_values = true)]
    args: Vec<String>,
    /// Working directory of new sessions; defaults to $HOME.
    #[arg(long, env = "THINLINE_CWD")]
    cwd: Option<PathBuf>,
    /// Origin allowed to open a terminal (repeat); defaults to the
    /// directories' origins and this host's own 127.0.0.1 and localhost.
    #[arg(
        long = "allow-origin",
        env = "THINLINE_ALLOW_ORIGIN",
        value_delimiter = ','
    )]
    allow_origins: Vec<String>,
    /// Most sessions this host runs at once.
    #[arg(long, default_value_t = 1000)]
    max_sessions: usize,
    /// Most WebSockets one client address holds open at once; more are
    /// closed with 4010. Behind a reverse proxy all clients share its
    /// address: raise this there.
    #[arg(long, default_value_t = DEFAULT_MAX_CONNECTIONS_PER_ADDRESS)]
    max_connections_per_address: usize,
    #[command(flatten)]
    http: auth::serve::HttpArgs,
    /// End a session after this many seconds without a client.
    #[arg(long, default_value_t = 24 * 3600)]
    idle_timeout_secs: u64,
    /// The shared user-data backend: `sqlite:PATH` (embedded default) or
    /// `postgres://...`. Without it sessions live only on this host.
    #[arg(long, env = "THINLINE_STORE")]
    store: Option<String>,
    /// Shared root of users' home directories (a shared volume in
    /// production).
    #[arg(long, env = "THINLINE_HOME_ROOT")]
    home_root: Option<PathBuf>,
    /// Take over a running session whose record names another host when a
    /// ticket for it arrives here (its previous host is gone). The ticket
    /// must name the record's epoch; the takeover raises it.
    #[arg(long, env = "THINLINE_ADOPT_SESSIONS")]
    adopt_sessions: bool,
    /// Longest a screen change waits before it is written to the store.
    #[arg(long, default_value_t = 100)]
    persist_interval_ms: u64,
    /// Largest file a user may upload into a session, in bytes.
    #[arg(long, env = "THINLINE_MAX_UPLOAD_BYTES", default_value_t = host_server::files::DEFAULT_MAX_UPLOAD)]
    max_upload_bytes: u64,
    /// Largest file `tl-download` may hand a user, in bytes.
    #[arg(long, env = "THINLINE_MAX_DOWNLOAD_BYTES", default_value_t = host_server::files::DEFAULT_MAX_DOWNLOAD)]
    max_download_bytes: u64,
    /// Directory replica whose pages open terminals here (repeat, or
    /// comma-separate): their origins are allowed by default. Directories
    /// find hosts in the store, where each host keeps its own lease, so
    /// this needs --store; the host never calls a directory.
    #[arg(long = "directory", env = "THINLINE_DIRECTORY", value_delimiter = ',')]
    directories: Vec<String>,
    /// The URL clients and the directory use to reach this host; defaults
    /// to http://127.0.0.1:PORT (https:// with --tls-cert).
    #[arg(long, env = "THINLINE_PUBLIC_URL")]
    public_url: Option<String>,
    /// Lease time to live, renewed in the store by the store's clock. A
    /// host that cannot renew within it takes no new sessions (its live
    /// ones go on) and may have them moved elsewhere.
    #[arg(long, default_value_t = 5000, value_parser = clap::value_parser!(u64).range(1000..=60_000))]
    lease_ttl_ms: u64,
    /// How often the lease is renewed; at most a third of the TTL.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(100..=20_000))]
    renew_interval_ms: u64,
    /// How sessions are kept apart: `per-user` (each account its own uid,
    /// needs root), `shared-uid` (the sandbox without uid changes, for a
    /// host not started as root), `none` (no sandbox: benchmarks only), or
    /// `auto` (per-user as root, else shared-uid).
    #[arg(long, env = "THINLINE_ISOLATION", default_value = "auto", value_parser = Isolation::parse)]
    isolation: Isolation,
    /// The bubblewrap binary sandboxes are made with.
    #[arg(long, env = "THINLINE_BWRAP", default_value = "/usr/bin/bwrap")]
    bwrap: PathBuf,
    /// Where sandboxes' read-only system tree (usr, bin, lib*, etc) comes
    /// from: the host's own, or a root file system unpacked for sessions.
    #[arg(long, env = "THINLINE_SYSTEM_ROOT", default_value = "/")]
    system_root: PathBuf,
    /// Whether sessions reach the network: `host` or `none`.
    #[arg(long, default_value = "host", value_parser = SessionNetwork::parse)]
    session_network: SessionNetwork,
    /// Most processes and threads one session runs at once.
    #[arg(long, default_value_t = Limits::default().pids, value_parser = clap::value_parser!(u64).range(8..))]
    session_pids: u64,
    /// Most memory one session uses (K, M or G), page cache included.
    #[arg(long, default_value = "1G", value_parser = parse_bytes)]
    session_memory: u64,
    /// CPU weight of one session against the others (cgroup cpu.shares).
    #[arg(long, default_value_t = Limits::default().cpu_shares, value_parser = clap::value_parser!(u64).range(2..=262_144))]
    session_cpu_shares: u64,
    /// Uids the store gives accounts, once each, for every host
    /// (`per-user` isolation). Never overlap system users.
    #[arg(long, env = "THINLINE_UID_RANGE", default_value = "200000-299999")]
    uid_range: store::UidRange,
    /// A directory for files sandboxes read (their /etc/passwd); defaults
    /// to thinline-HOST_ID in the temporary directory.
    #[arg(long, env = "THINLINE_RUNTIME_DIR")]
    runtime_dir: Option<PathBuf>,
    /// A Unix socket where `host-server drain` (run as this host's uid on
    /// this machine) asks this host to drain and waits for it; none
    /// without it.
    #[arg(long, env = "THINLINE_CONTROL_SOCKET")]
    control_socket: Option<PathBuf>,
    /// A variable every session starts with, as KEY=VALUE (repeat):
    /// nothing of the host's own environment reaches a session.
    #[arg(long = "session-env", value_parser = parse_variable)]
    session_env: Vec<(String, String)>,
}

fn parse_variable(text: &str) -> Result<(String, String), String> {
    let (key, value) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?} is not KEY=VALUE"))?;
    let plain = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    if key.is_empty() || !key.bytes().all(plain) || key.as_bytes()[0].is_ascii_digit() {
        return Err(format!("{key:?} is not a variable name"));
    }
    Ok((key.into(), value.into()))
}

async fn open_store(spec: &str, host_id: &str) -> anyhow::Result<Arc<dyn store::Store>> {
    // The setting is not repeated: a PostgreSQL URL may hold a password.
    let application = format!("thinline-host {host_id}");
    store::open(spec, &application).await.context(
        "opening the store named by --store (check the setting, and that PostgreSQL is up if it is one)",
    )
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Purge freed pages on jemalloc's own thread, on time, rather than on
    // the next allocation, which an idle host never makes.
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
        Command::Drain(args) => drain(args).await,
    }
}

async fn drain(args: DrainArgs) -> anyhow::Result<()> {
    use host_server::control::{DrainOutcome, request_drain};
    let patience = Duration::from_secs(args.timeout_secs);
    match request_drain(&args.control_socket, patience)
        .await
        .map_err(anyhow::Error::msg)?
    {
        DrainOutcome::Drained => {
            println!("thinline: host drained: every session persisted and sent on");
            Ok(())
        }
        DrainOutcome::NotDrained(what) => anyhow::bail!(
            "the host did not finish draining ({what}); its sessions persist at their \
             next write or restore from their last saved screen; raise --timeout-secs \
             (and the pod's grace period) if the store is slow"
        ),
    }
}

/// A host holds a PTY and a socket per session; the common soft limit of
/// 1024 descriptors would stop it near 500 sessions.
fn raise_descriptor_limit() {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    if let (Some(current), Some(maximum)) = (limit.current, limit.maximum)
        && current < maximum
    {
        let raised = Rlimit {
            current: Some(maximum),
            maximum: Some(maximum),
        };
        if let Err(error) = setrlimit(Resource::Nofile, raised) {
            tracing::warn!(%error, current, "could not raise the open-file limit");
        }
    }
}

fn ticket_verifier(keys: &[String]) -> anyhow::Result<TicketVerifier> {
    let keys = keys
        .iter()
        .map(|key| key.trim())
        .filter(|key| !key.is_empty())
        .map(|key| {
            TicketPublicKey::from_base64(key)
                .context("reading --ticket-public-key (THINLINE_TICKET_PUBLIC_KEY)")
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    anyhow::ensure!(
        !keys.is_empty(),
        "no ticket public key: set THINLINE_TICKET_PUBLIC_KEY to what `directory keygen` printed"
    );
    Ok(TicketVerifier::new(keys))
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    raise_descriptor_limit();
    let tickets = ticket_verifier(&args.ticket_public_keys)?;
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(
            auth::tls::server_config(cert, key)
                .context("loading --tls-cert and --tls-key (PEM files)")?,
        ),
        _ => None,
    };
    anyhow::ensure!(
        args.directories.is_empty() || args.store.is_some(),
        "--directory needs --store: hosts keep their lease in the shared store, \
         where directories find them; give this host the directories' --store"
    );
    anyhow::ensure!(
        args.renew_interval_ms * 3 <= args.lease_ttl_ms,
        "--renew-interval-ms {} is too long for --lease-ttl-ms {}: renew at least three \
         times per lease, so one slow renewal does not lapse it",
        args.renew_interval_ms,
        args.lease_ttl_ms
    );
    let scheme = if tls.is_some() { "https" } else { "http" };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {}; is another host running there? pick another with --listen",
                args.listen
            )
        })?;
    let addr = listener.local_addr().context("reading the bound address")?;
    let allowed_origins = if args.allow_origins.is_empty() {
        // The directories' pages, which open sockets to whichever host
        // serves the session, and this host's own address for native
        // clients and tools on this machine.
        let mut origins = vec![
            format!("{scheme}://127.0.0.1:{}", addr.port()),
            format!("{scheme}://localhost:{}", addr.port()),
        ];
        origins.extend(
            args.directories
                .iter()
                .map(|url| url.trim_end_matches('/').to_owned()),
        );
        origins
    } else {
        args.allow_origins
    };
    let public_url = args
        .public_url
        .clone()
        .unwrap_or_else(|| format!("{scheme}://127.0.0.1:{}", addr.port()));
    check_public_url(&public_url)?;
    // Only from the environment, never a flag: flags show up in `ps`.
    let host_token = std::env::var("THINLINE_HOST_TOKEN")
        .ok()
        .filter(|t| !t.is_empty())
        .map(HostToken);
    // Likewise: this host's enrolment secret, for the store.
    let secret = host_secret()?;
    if args.store.is_some() && secret.is_none() {
        if store::is_loopback_url(&public_url) {
            tracing::warn!(
                url = %public_url,
                "THINLINE_HOST_SECRET is not set: this host registers without enrolment, \
                 which the store allows only while no host is enrolled and only for loopback urls; \
                 enrol hosts with `directory host add` for anything but one machine"
            );
        } else {
            tracing::error!(
                url = %public_url,
                "THINLINE_HOST_SECRET is not set: the store will refuse this host's lease \
                 (a host that is not on loopback must be enrolled with `directory host add`)"
            );
        }
    }
    let lease = args.store.is_some().then(|| LeaseConfig {
        public_url: public_url.clone(),
        secret,
        ttl: Duration::from_millis(args.lease_ttl_ms),
        renew_every: Duration::from_millis(args.renew_interval_ms),
    });
    let (program, login) = match args.program {
        Some(program) => (program, false),
        None => (
            std::env::var_os("SHELL")
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("/bin/sh")),
            true,
        ),
    };
    let cwd = args
        .cwd
        .or_else(|| std::env::var_os("HOME").map(PathBuf::from));
    let store = match &args.store {
        Some(spec) => Some(StoreConfig {
            store: open_store(spec, &args.host_id).await?,
            home_root: args.home_root.clone(),
            adopt: args.adopt_sessions,
        }),
        None => None,
    };
    let sandbox = Sandbox::new(
        SandboxOptions {
            isolation: args.isolation,
            bwrap: args.bwrap.clone(),
            system_root: args.system_root.clone(),
            network: args.session_network,
            limits: Limits {
                pids: args.session_pids,
                memory: args.session_memory,
                cpu_shares: args.session_cpu_shares,
            },
            uid_range: args.uid_range,
            runtime_dir: args
                .runtime_dir
                .clone()
                .unwrap_or_else(|| std::env::temp_dir().join(format!("thinline-{}", args.host_id))),
        },
        &args.host_id,
    )
    .map_err(anyhow::Error::msg)?;
    host_server::pty::probe(&sandbox)
        .await
        .map_err(anyhow::Error::msg)
        .context("the session sandbox does not work on this host")?;
    match sandbox.isolation() {
        Isolation::PerUser => {}
        Isolation::SharedUid => tracing::warn!(
            "isolation shared-uid: every account runs as this host's uid outside its sandbox; \
             start the host as root for a uid per account"
        ),
        Isolation::None => tracing::warn!(
            "isolation none: sessions run unsandboxed as this host's uid and can reach its \
             files and processes; never serve users like this"
        ),
    }
    let limits = sandbox.limits();
    tracing::info!(
        isolation = sandbox.isolation().as_str(),
        limits = %sandbox.limiter(),
        pids = limits.pids,
        memory = limits.memory,
        cpu_shares = limits.cpu_shares,
        network = ?sandbox.network(),
        "sessions are sandboxed"
    );
    let metrics = Arc::new(Metrics::default());
    let registry = Registry::new(
        SessionConfig {
            host: args.host_id.clone(),
            program: ProgramSpec {
                program,
                args: args.args,
                login,
                cwd,
                home: None,
                env: args.session_env,
                download_key: None,
            },
            sandbox: Arc::new(sandbox),
            idle_timeout: Duration::from_secs(args.idle_timeout_secs),
            persist_interval: Duration::from_millis(args.persist_interval_ms),
            transfers: host_server::files::Transfers::new(
                args.max_upload_bytes,
                args.max_download_bytes,
            ),
        },
        store,
        args.max_sessions,
        metrics.clone(),
    );
    registry.load_identities().await;
    let mut state = AppState::standalone(registry, metrics, tickets, allowed_origins);
    state.connections = AddressLimiter::new(args.max_connections_per_address);
    state.http = args.http.options();
    state.host_token = host_token;
    if lease.is_some() {
        state.standing = Arc::new(Standing::leased());
    }
    let shown = if addr.ip().is_loopback() {
        format!("127.0.0.1:{}", addr.port())
    } else {
        addr.to_string()
    };
    // The ready line tools wait for; keep its shape.
    println!(
        "thinline: host {} listening on {scheme}://{shown}/",
        args.host_id
    );
    tracing::info!(host = %args.host_id, %addr, %public_url, tls = tls.is_some(), "serving");
    let control = match &args.control_socket {
        Some(path) => Some(
            host_server::control::bind(path)
                .await
                .with_context(|| format!("opening the control socket {}", path.display()))?,
        ),
        None => None,
    };
    host_server::run_with_control(listener, tls, state, lease, control, shutdown_signal())
        .await
        .context("serving")?;
    if let Some(path) = &args.control_socket {
        let _ = std::fs::remove_file(path);
    }
    tracing::info!("stopped");
    Ok(())
}

/// The url is stored with the lease and handed to browsers, which open
/// WebSockets to it, and it enters the page's Content-Security-Policy:
/// only a plain `http(s)://host[:port][/path]`.
fn check_public_url(url: &str) -> anyhow::Result<()> {
    let bad = |why: &str| {
        anyhow::anyhow!(
            "--public-url {url:?} {why}; give e.g. https://h1.example.com or http://10.0.0.5:8081"
        )
    };
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| bad("is not an http:// or https:// url"))?;
    let authority = rest.split('/').next().unwrap_or_default();
    let plain = |b: u8| b.is_ascii_alphanumeric() || b".-:[]".contains(&b);
    if authority.is_empty() || !authority.bytes().all(plain) {
        return Err(bad("has no plain host[:port]"));
    }
    if url.len() > 2048 || url.contains(['?', '#', '@', ' ', ';', ',', '\'', '"']) {
        return Err(bad(
            "holds a query, credentials or characters a url may not",
        ));
    }
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        // Without signal handlers the host can still be killed; it just
        // cannot hang up its sessions first.
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

/// This host's enrolment secret: `THINLINE_HOST_SECRET`, or the file named
/// by `THINLINE_HOST_SECRET_FILE` (a mounted Secret: on Kubernetes,
/// `/run/secrets/thinline-hosts/$(POD_NAME)` gives each pod its own).
fn host_secret() -> anyhow::Result<Option<HostSecret>> {
    if let Some(secret) = std::env::var("THINLINE_HOST_SECRET")
        .ok()
        .filter(|t| !t.is_empty())
    {
        return Ok(Some(HostSecret(secret)));
    }
    let Some(path) = std::env::var_os("THINLINE_HOST_SECRET_FILE").filter(|p| !p.is_empty()) else {
        return Ok(None);
    };
    let text = std::fs::read_to_string(&path).with_context(|| {
        format!(
            "cannot read THINLINE_HOST_SECRET_FILE {}: mount the secret `directory host add` printed for this host",
            std::path::Path::new(&path).display()
        )
    })?;
    let secret = text.trim();
    let secret = secret
        .strip_prefix("THINLINE_HOST_SECRET=")
        .unwrap_or(secret);
    anyhow::ensure!(
        !secret.is_empty(),
        "THINLINE_HOST_SECRET_FILE {} is empty",
        std::path::Path::new(&path).display()
    );
    Ok(Some(HostSecret(secret.to_owned())))
}

#[cfg(test)]
mod tests {
    use super::check_public_url;

    #[test]
    fn public_urls_are_plain_http_origins_with_an_optional_path() {
        for good in [
            "http://127.0.0.1:8081",
            "https://h1.example.com",
            "http://[::1]:9000/thinline/",
        ] {
            assert!(check_public_url(good).is_ok(), "{good}");
        }
        for bad in [
            "127.0.0.1:8081",
            "ftp://h1",
            "http://h1/?q=1",
            "http://user@h1",
            "http://h1; script-src *",
            "http://",
            "",
        ] {
            assert!(check_public_url(bad).is_err(), "{bad}");
        }
    }
}
