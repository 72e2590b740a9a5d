//! The directory: host registry, session placement, failover decisions and
//! drain, as an HTTP JSON API under `/v1`.
//!
//! It keeps no state of its own: hosts renew leases into the shared store,
//! sessions live there, and every decision is read from and written to the
//! store with the backend's clock and the session's epoch. So any number of
//! replicas may run side by side (DESIGN.md promise 5), and two replicas
//! answering the same failover at once agree, because only one fenced
//! `take_over` can win.
//!
//! The decision itself is sans IO in [`failover`]; `sessions.rs` and
//! `hosts.rs` are the thin HTTP shell around it and the store.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderValue, Method, header};
use axum::routing::{get, post, put};
use store::Store;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tower_http::set_header::SetResponseHeaderLayer;

pub mod error;
pub mod failover;
pub mod hosts;
pub mod openapi;
pub mod probe;
pub mod sessions;
pub mod web;

pub use error::AppError;

/// How the directory behaves; everything else it reads from the store.
#[derive(Clone, Debug)]
pub struct DirectoryConfig {
    /// This replica's url as browsers reach it, listed first by
    /// `/v1/config`. `None`: the url the client used (its Host header).
    pub public_url: Option<String>,
    /// The other directory replicas' urls.
    pub peers: Vec<String>,
    /// How long probing an owner's `/healthz` may take. A probe that times
    /// out is no evidence, so this bounds how long a report waits, not
    /// whether a session moves.
    pub probe_timeout: Duration,
    /// What `retry_owner` answers tell clients to wait before retrying.
    pub retry_after: Duration,
    /// Folder served at `/`, if any.
    pub static_dir: Option<PathBuf>,
    /// The page's `connect-src` sources; empty means every live host's
    /// origins, computed per request.
    pub connect_src: Vec<String>,
    /// The secret hosts present to register, renew and be drained. `None`
    /// leaves host registration open to anyone who can reach the directory.
    pub host_token: Option<HostToken>,
}

/// The hosts' shared secret; its `Debug` never shows it.
#[derive(Clone)]
pub struct HostToken(pub String);

impl std::fmt::Debug for HostToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HostToken(..)")
    }
}

impl HostToken {
    /// Whether an `Authorization` header carries this token as a bearer
    /// credential; compared in time independent of where they differ.
    pub fn admits(&self, authorization: Option<&str>) -> bool {
        let Some(given) = authorization.and_then(|v| v.strip_prefix("Bearer ")) else {
            return false;
        };
        let (a, b) = (given.as_bytes(), self.0.as_bytes());
        a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}

impl Default for DirectoryConfig {
    fn default() -> Self {
        DirectoryConfig {
            public_url: None,
            peers: Vec::new(),
            probe_timeout: Duration::from_millis(300),
            retry_after: Duration::from_millis(250),
            static_dir: None,
            connect_src: Vec::new(),
            host_token: None,
        }
    }
}

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn Store>,
    pub config: Arc<DirectoryConfig>,
}

impl AppState {
    pub fn new(store: Arc<dyn Store>, config: DirectoryConfig) -> AppState {
        AppState {
            store,
            config: Arc::new(config),
        }
    }
}

/// The whole HTTP API, ready to serve or to call in tests.
pub fn app(state: AppState) -> Router {
    let api = Router::new()
        .route("/hosts", get(hosts::list_hosts))
        .route("/hosts/{id}/lease", put(hosts::renew_lease))
        .route("/hosts/{id}/drain", post(hosts::drain))
        .route("/placement", post(sessions::placement))
        .route("/sessions", get(sessions::list_sessions))
        .route("/sessions/{id}/unreachable", post(sessions::unreachable))
        .route("/config", get(web::config))
        .route("/openapi.json", get(openapi::document))
        .fallback(web::api_not_found)
        .layer(cors(&state.config));
    let router = Router::new()
        .nest("/v1", api)
        .route("/healthz", get(web::health));
    let router = match &state.config.static_dir {
        Some(dir) => router.fallback_service(web::static_files(dir, state.clone())),
        None => router.fallback(web::not_found),
    };
    router
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(web::API_CONTENT_SECURITY_POLICY),
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
        .with_state(state)
}

/// The page a peer replica served may call this one (the client learns
/// every replica from `/v1/config`), so peers' origins may make requests.
fn cors(config: &DirectoryConfig) -> CorsLayer {
    let origins: Vec<HeaderValue> = config
        .public_url
        .iter()
        .chain(&config.peers)
        .filter_map(|url| web::origin(url))
        .filter_map(|origin| HeaderValue::from_str(&origin).ok())
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([Method::GET, Method::POST, Method::PUT])
        .allow_headers([header::CONTENT_TYPE])
}

/// Serves `app(state)` on an already-bound listener until `shutdown`
/// completes, then lets requests in flight finish.
pub async fn run(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Answers are small and a failover waits on them: no Nagle delay.
    let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await
}
