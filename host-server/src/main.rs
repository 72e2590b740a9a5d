//! `host-server`: run a Thinline session host.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use host_server::metrics::Metrics;
use host_server::pty::ProgramSpec;
use host_server::registry::{LOCAL_USER, Registry, StoreConfig};
use host_server::session::SessionConfig;
use host_server::{AppState, DirectoryConfig, run};

#[derive(Parser)]
#[command(version, about = "Thinline session host")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve terminals over HTTP and WebSocket.
    Serve(ServeArgs),
}

#[derive(clap::Args)]
struct ServeArgs {
    /// Address to listen on; loopback unless told otherwise.
    #[arg(long, env = "THINLINE_LISTEN", default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Folder with index.html and the built client (pkg/).
    #[arg(long, env = "THINLINE_STATIC_DIR", default_value = "static")]
    static_dir: PathBuf,
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
    /// Origin allowed to open a terminal (repeat); defaults to this host's
    /// own http://127.0.0.1:PORT and http://localhost:PORT.
    #[arg(
        long = "allow-origin",
        env = "THINLINE_ALLOW_ORIGIN",
        value_delimiter = ','
    )]
    allow_origins: Vec<String>,
    /// Most sessions this host runs at once.
    #[arg(long, default_value_t = 1000)]
    max_sessions: usize,
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
    /// Restore a session from the store when a client asks for one this
    /// host does not run (its previous host is gone).
    #[arg(long, env = "THINLINE_ADOPT_SESSIONS")]
    adopt_sessions: bool,
    /// Longest a screen change waits before it is written to the store.
    #[arg(long, default_value_t = 100)]
    persist_interval_ms: u64,
    /// Directory replica to register with (repeat, or comma-separate).
    /// Without one the host serves alone, always.
    #[arg(long = "directory", env = "THINLINE_DIRECTORY", value_delimiter = ',')]
    directories: Vec<String>,
    /// The URL clients and the directory use to reach this host; defaults
    /// to http://127.0.0.1:PORT.
    #[arg(long, env = "THINLINE_PUBLIC_URL")]
    public_url: Option<String>,
    /// Lease time to live; the host stops serving if it cannot renew
    /// within it.
    #[arg(long, default_value_t = 5000)]
    lease_ttl_ms: u64,
    /// How often the lease is renewed.
    #[arg(long, default_value_t = 1000)]
    renew_interval_ms: u64,
}

async fn open_store(spec: &str) -> anyhow::Result<Arc<dyn store::Store>> {
    // The setting is not repeated: a PostgreSQL URL may hold a password.
    store::open(spec).await.context(
        "opening the store named by --store (check the setting, and that PostgreSQL is up if it is one)",
    )
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let Cli { command } = Cli::parse();
    match command {
        Command::Serve(args) => serve(args).await,
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

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    raise_descriptor_limit();
    let token = match std::env::var("THINLINE_TOKEN") {
        Ok(token) if !token.is_empty() => token,
        _ => random_token(),
    };
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
        // This host's own pages, and the directories' pages, which open
        // sockets to whichever host serves the session.
        let mut origins = vec![
            format!("http://127.0.0.1:{}", addr.port()),
            format!("http://localhost:{}", addr.port()),
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
        .unwrap_or_else(|| format!("http://127.0.0.1:{}", addr.port()));
    let directory = (!args.directories.is_empty()).then(|| DirectoryConfig {
        urls: args.directories.clone(),
        public_url,
        lease_ttl: Duration::from_millis(args.lease_ttl_ms),
        renew_every: Duration::from_millis(args.renew_interval_ms),
        // Only from the environment, never a flag: flags show up in `ps`.
        host_token: std::env::var("THINLINE_HOST_TOKEN")
            .ok()
            .filter(|t| !t.is_empty())
            .map(host_server::directory_client::HostToken),
    });
    if !args.static_dir.join("index.html").exists() {
        tracing::warn!(
            dir = %args.static_dir.display(),
            "no index.html in the static folder; run `cargo xtask build` first"
        );
    }
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
        Some(spec) => {
            let store = open_store(spec).await?;
            // Every session belongs to a user record; until accounts arrive
            // there is one, the local user.
            let user = store::User {
                id: LOCAL_USER.into(),
                name: LOCAL_USER.into(),
            };
            if let Err(error) = store.put_user(&user).await {
                tracing::warn!(%error, "could not record the local user; continuing");
            }
            Some(StoreConfig {
                store,
                home_root: args.home_root.clone(),
                adopt: args.adopt_sessions,
            })
        }
        None => None,
    };
    let metrics = Arc::new(Metrics::default());
    let registry = Registry::new(
        SessionConfig {
            host: args.host_id.clone(),
            program: ProgramSpec {
                program,
                args: args.args,
                login,
                cwd,
                env: Vec::new(),
            },
            idle_timeout: Duration::from_secs(args.idle_timeout_secs),
            persist_interval: Duration::from_millis(args.persist_interval_ms),
        },
        store,
        args.max_sessions,
        metrics.clone(),
    );
    let state = AppState::standalone(registry, metrics, &token, allowed_origins, args.static_dir);
    let host = if addr.ip().is_loopback() {
        format!("127.0.0.1:{}", addr.port())
    } else {
        addr.to_string()
    };
    // Printed, not logged: the token is for the person who started the host.
    println!(
        "thinline: host {} listening on http://{host}/",
        args.host_id
    );
    println!("thinline: access token: {}", state.token);
    tracing::info!(host = %args.host_id, %addr, "serving");
    run(listener, state, directory, shutdown_signal())
        .await
        .context("serving")?;
    tracing::info!("stopped");
    Ok(())
}

fn random_token() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the operating system's random source failed");
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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
