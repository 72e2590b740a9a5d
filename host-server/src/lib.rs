//! The Thinline session host: an axum shell around sessions that each run a
//! program on a PTY behind a server-side terminal emulator.
//!
//! `app` builds the router (so tests can drive it without a port) and `run`
//! serves it on a listener the caller bound, until the shutdown future ends.

pub mod emulator;
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

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::IntoResponse;
use axum::routing::get;
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
}

impl AppState {
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
    axum::Json(serde_json::json!({
        "status": if degraded { "degraded" } else { "ok" },
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

/// Serves until `shutdown` completes, then hangs up every session, which
/// closes their clients and lets the server finish.
pub async fn run(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let registry = state.registry.clone();
    let shutdown = async move {
        shutdown.await;
        tracing::info!("shutting down: hanging up {} sessions", registry.len());
        registry.terminate_all(protocol::CloseCode::GoingAway).await;
    };
    axum::serve(listener, app(state))
        .with_graceful_shutdown(shutdown)
        .await
}
