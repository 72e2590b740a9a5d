//! The Thinline session host: an axum shell around sessions that each run a
//! program on a PTY behind a server-side terminal emulator.
//!
//! `app` builds the router (so tests can drive it without a port) and `run`
//! serves it on a listener the caller bound, until the shutdown future ends.

pub mod directory_client;
pub mod emulator;
pub mod lease;
pub mod metrics;
pub mod pacer;
pub mod persist;
pub mod pty;
pub mod registry;
pub mod scrollback;
pub mod session;
mod ws;

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::serve::ListenerExt;
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::metrics::Metrics;
use crate::registry::Registry;

/// The Content-Security-Policy of every page: scripts only from this host
/// (plus WebAssembly compilation), sockets only back to it, never framed.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; \
style-src 'self'; img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; \
base-uri 'none'; form-action 'self'; object-src 'none'";

#[derive(Clone)]
pub struct AppState {
    pub registry: Arc<Registry>,
    pub metrics: Arc<Metrics>,
    /// The access token every hello must carry.
    pub token: Arc<str>,
    /// Exact origins (scheme://host:port) allowed to open a WebSocket.
    pub allowed_origins: Arc<[String]>,
    pub static_dir: PathBuf,
    /// False while a host under a directory holds no live lease: it then
    /// takes no connections, since its sessions may be moving elsewhere.
    pub serving: Arc<AtomicBool>,
    /// The host is draining: no new sessions, existing ones are moving.
    pub draining: Arc<AtomicBool>,
}

/// How a host finds and reports to its directory.
#[derive(Clone, Debug)]
pub struct DirectoryConfig {
    /// Every directory replica; each request tries them in turn.
    pub urls: Vec<String>,
    /// Where clients and the directory reach this host.
    pub public_url: String,
    pub lease_ttl: Duration,
    pub renew_every: Duration,
    /// The hosts' shared secret the directory asks for (THINLINE_HOST_TOKEN).
    pub host_token: Option<directory_client::HostToken>,
}

impl AppState {
    /// A state for a host without a directory: always serving.
    pub fn standalone(
        registry: Arc<Registry>,
        metrics: Arc<Metrics>,
        token: &str,
        allowed_origins: Vec<String>,
        static_dir: PathBuf,
    ) -> AppState {
        AppState {
            registry,
            metrics,
            token: token.into(),
            allowed_origins: allowed_origins.into(),
            static_dir,
            serving: Arc::new(AtomicBool::new(true)),
            draining: Arc::new(AtomicBool::new(false)),
        }
    }

    pub fn origin_allowed(&self, origin: &str) -> bool {
        !origin.is_empty()
            && self
                .allowed_origins
                .iter()
                .any(|allowed| allowed.eq_ignore_ascii_case(origin))
    }
}

pub fn app(state: AppState) -> Router {
    let files = ServeDir::new(&state.static_dir).append_index_html_on_directories(true);
    Router::new()
        .route("/ws", get(ws::upgrade))
        .route("/healthz", get(health))
        .route("/metrics", get(metrics))
        .fallback_service(files)
        .layer(SetResponseHeaderLayer::overriding(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        // The client is rebuilt often; a stale WASM next to a new host would
        // fail the version handshake, so the browser must revalidate.
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-cache"),
        ))
        .with_state(state)
}

async fn health(State(state): State<AppState>) -> impl IntoResponse {
    let degraded = state.metrics.degraded();
    let status = if state.draining.load(Ordering::Relaxed) {
        "draining"
    } else if !state.serving.load(Ordering::Relaxed) {
        "no-lease"
    } else if degraded {
        "degraded"
    } else {
        "ok"
    };
    axum::Json(serde_json::json!({
        "status": status,
        "host": state.registry.host(),
        "sessions": state.registry.len(),
        "store": match (state.registry.store_kind(), degraded) {
            (None, _) => "none",
            (Some(_), true) => "unreachable",
            (Some(kind), false) => kind,
        },
    }))
}

async fn metrics(State(state): State<AppState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        state.metrics.render(state.registry.len()),
    )
}

/// Serves until `shutdown` completes, then drains: new sessions are
/// refused, every session persists its last state and hangs up, and its
/// client is told to go (1001), which sends it to the directory.
pub async fn run(
    listener: tokio::net::TcpListener,
    state: AppState,
    directory: Option<DirectoryConfig>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let lease = directory
        .clone()
        .map(|config| tokio::spawn(keep_lease(state.clone(), config)));
    let drain_state = state.clone();
    let shutdown = async move {
        shutdown.await;
        drain(&drain_state, directory.as_ref()).await;
    };
    // Keystroke echoes are tiny frames: without TCP_NODELAY each waits for
    // the client's delayed ACK (~40 ms on Linux).
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    let served = axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await;
    if let Some(lease) = lease {
        lease.abort();
    }
    served
}

/// Moves every session off this host: persisted, hung up, clients sent on.
pub async fn drain(state: &AppState, directory: Option<&DirectoryConfig>) {
    if state.draining.swap(true, Ordering::SeqCst) {
        return;
    }
    tracing::info!(sessions = state.registry.len(), "draining");
    if let Some(config) = directory {
        // Tell the directory first so it stops placing sessions here and
        // moves ours as their clients ask.
        let _ = directory_client::renew(
            config.host_token.as_ref(),
            &config.urls,
            state.registry.host(),
            &config.public_url,
            config.lease_ttl,
            state.registry.len(),
            Some(true),
        )
        .await;
    }
    state
        .registry
        .terminate_all(protocol::CloseCode::GoingAway)
        .await;
    tracing::info!("drained");
}

/// Renews the lease for as long as the host runs; fences every session the
/// moment the lease can no longer be trusted.
async fn keep_lease(state: AppState, config: DirectoryConfig) {
    use lease::{LeaseAction, LeaseKeeper};
    let mut keeper = LeaseKeeper::new(config.lease_ttl, config.renew_every);
    state.serving.store(false, Ordering::SeqCst);
    loop {
        let now = Instant::now();
        if state.serving.load(Ordering::SeqCst) && !keeper.is_valid(now) {
            tracing::error!(
                failures = keeper.failures(),
                "lease lapsed: no directory renewed it in time; ending every session here"
            );
            state.serving.store(false, Ordering::SeqCst);
            state
                .registry
                .terminate_all(protocol::CloseCode::SessionLost)
                .await;
        }
        let wake = match keeper.poll(now) {
            LeaseAction::Renew => {
                let draining = state.draining.load(Ordering::SeqCst).then_some(true);
                let result = directory_client::renew(
                    config.host_token.as_ref(),
                    &config.urls,
                    state.registry.host(),
                    &config.public_url,
                    config.lease_ttl,
                    state.registry.len(),
                    draining,
                )
                .await;
                match result {
                    Ok(grant) => {
                        keeper.on_granted(now);
                        if keeper.is_valid(Instant::now())
                            && !state.serving.swap(true, Ordering::SeqCst)
                        {
                            tracing::info!("lease granted; serving");
                        }
                        if grant.draining && !state.draining.load(Ordering::SeqCst) {
                            let state = state.clone();
                            let config = config.clone();
                            tokio::spawn(async move { drain(&state, Some(&config)).await });
                        }
                    }
                    Err(error) => {
                        if keeper.failures() == 0 {
                            tracing::warn!(%error, "lease renewal failed; retrying");
                        }
                        keeper.on_failed(Instant::now());
                    }
                }
                continue;
            }
            LeaseAction::WaitUntil(at) => at,
        };
        let deadline = match keeper.valid_until() {
            Some(until) if state.serving.load(Ordering::SeqCst) => wake.min(until),
            _ => wake,
        };
        tokio::time::sleep_until(deadline.into()).await;
    }
}
