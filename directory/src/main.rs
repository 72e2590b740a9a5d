//! `directory`: run a Thinline directory replica.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use directory::{AppState, DirectoryConfig, run};

#[derive(Parser)]
#[command(
    version,
    about = "Thinline directory: host registry, placement and failover"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the directory API (and optionally the page) over HTTP.
    Serve(ServeArgs),
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
    /// Folder served at `/` (index.html and the built client).
    #[arg(long, env = "THINLINE_STATIC_DIR")]
    static_dir: Option<PathBuf>,
    /// Another directory replica's url (repeat for several), listed to
    /// browsers by /v1/config.
    #[arg(long = "peer", env = "THINLINE_DIRECTORY_PEERS", value_delimiter = ',')]
    peers: Vec<String>,
    /// This replica's url as browsers reach it; defaults to the listen
    /// address.
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

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    for source in &args.connect_src {
        anyhow::ensure!(
            directory::web::plain_source(source),
            "--connect-src {source:?} is not a plain CSP source (no quotes, ';' or ',')"
        );
    }
    if let Some(dir) = &args.static_dir
        && !dir.join("index.html").exists()
    {
        tracing::warn!(dir = %dir.display(), "no index.html in the static folder; run `cargo xtask build` first");
    }
    let store = open_store(&args.store).await?;
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
    let public_url = args.public_url.unwrap_or_else(|| format!("http://{shown}"));
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
    };
    if config.host_token.is_none() {
        tracing::warn!(
            "THINLINE_HOST_TOKEN is not set: anyone who can reach this directory can register or drain hosts"
        );
    }
    let kind = store.kind();
    let state = AppState::new(store, config);
    println!("thinline: directory listening on http://{shown}/");
    tracing::info!(%addr, store = kind, "serving");
    run(listener, state, shutdown_signal())
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
