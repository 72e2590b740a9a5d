//! The Thinline session host: an axum shell around sessions that each run a
//! program on a PTY behind a server-side terminal emulator.
//!
//! `app` builds the router (so tests can drive it without a port) and `run`
//! serves it, over TCP or TLS, on a listener the caller bound, until the
//! shutdown future ends. The host serves no pages: the directory serves the
//! page and signs the tickets that admit its WebSockets here.

pub mod address_limit;
pub mod admission;
pub mod cgroup;
pub mod control;
pub mod emulator;
pub mod files;
pub mod host_token;
pub mod lease;
pub mod logins;
pub mod metrics;
pub mod pacer;
pub mod persist;
pub mod procfs;
pub mod pty;
pub mod recording;
pub mod registry;
pub mod renewal;
pub mod sandbox;
pub mod scrollback;
pub mod session;
pub mod standing;
mod ws;

use std::future::Future;
use std::sync::Arc;

use auth::ticket::TicketVerifier;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::address_limit::AddressLimiter;
use crate::host_token::HostToken;
use crate::logins::LoginWatch;
use crate::metrics::Metrics;
use crate::registry::{EndOutcome, Registry};
pub use crate::renewal::LeaseConfig;
use crate::standing::{LeaseState, Standing};

/// The Content-Security-Policy of the host's own answers (health, metrics,
/// errors): none of them is a page, so nothing may load or frame them.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; frame-ancestors 'none'";

/// Default of `--max-connections-per-address`.
pub const DEFAULT_MAX_CONNECTIONS_PER_ADDRESS: usize = 64;

#[derive(Clone)]
pub struct AppState {
    pub registry: Arc<Registry>,
    pub metrics: Arc<Metrics>,
    /// Checks the directory-signed ticket every hello must carry.
    pub tickets: Arc<TicketVerifier>,
    /// Exact origins (scheme://host:port) allowed to open a WebSocket.
    pub allowed_origins: Arc<[String]>,
    /// WebSockets open per client address, under a cap.
    pub connections: Arc<AddressLimiter>,
    /// The hosts' shared secret (THINLINE_HOST_TOKEN) the directory shows
    /// to end a session here; without it no session can be ended that way.
    pub host_token: Option<HostToken>,
    /// Lease and drains: whether new sessions may start and clients may
    /// attach (see `standing`).
    pub standing: Arc<Standing>,
    /// Every open socket by the sign-in that admitted it, so a sign-out
    /// closes it (see `logins`).
    pub logins: Arc<LoginWatch>,
    /// The HTTP edge's connection limits and deadlines (`auth::serve`).
    pub http: auth::serve::ServeOptions,
}

impl AppState {
    /// A state for a host without a lease to keep: always serving, at most
    /// `DEFAULT_MAX_CONNECTIONS_PER_ADDRESS` sockets per client address,
    /// no host token. `run` with a store gives it a lease to keep.
    pub fn standalone(
        registry: Arc<Registry>,
        metrics: Arc<Metrics>,
        tickets: TicketVerifier,
        allowed_origins: Vec<String>,
    ) -> AppState {
        AppState {
            registry,
            metrics,
            tickets: Arc::new(tickets),
            allowed_origins: allowed_origins.into(),
            connections: AddressLimiter::new(DEFAULT_MAX_CONNECTIONS_PER_ADDRESS),
            host_token: None,
            standing: Arc::new(Standing::standalone()),
            logins: LoginWatch::new(),
            http: auth::serve::ServeOptions::default(),
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

/// The host's routes. The WebSocket route reads the peer address, so the
/// router must be served with `into_make_service_with_connect_info::<SocketAddr>()`
/// (as `run` does, through `auth::serve`) or given a `MockConnectInfo` in
/// tests.
pub fn app(state: AppState) -> Router {
    let routes = Router::new()
        .route("/ws", get(ws::upgrade))
        .route("/healthz", get(health))
        .route("/metrics", get(metrics))
        .route("/v1/sessions/{id}/end", post(end_session))
        // Its own fallback, so a 404 carries these headers after the file
        // routes are merged in beside it (`auth::serve_with_streams`).
        .fallback(|| async { StatusCode::NOT_FOUND });
    answer_headers(routes).with_state(state)
}

/// The headers of every answer the host gives (its routes and the file
/// routes): none is a page, so nothing may load, frame or sniff it, it
/// names no referrer, and it is a reading of this moment unless it says
/// otherwise.
pub(crate) fn answer_headers<S: Clone + Send + Sync + 'static>(routes: Router<S>) -> Router<S> {
    routes
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
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-store"),
        ))
}

fn json_error(status: StatusCode, error: &str) -> Response {
    (status, axum::Json(serde_json::json!({ "error": error }))).into_response()
}

/// `POST /v1/sessions/{id}/end`: the directory ends a session its user
/// ended, so the host hangs up at once instead of at its next fenced
/// write. Only with the hosts' shared secret, and only if the store agrees
/// the session is over (409 if it says it is live here): the secret is
/// one every host holds, and no host may end another's live session.
async fn end_session(
    State(state): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some(expected) = &state.host_token else {
        return json_error(
            StatusCode::UNAUTHORIZED,
            "this host was started without THINLINE_HOST_TOKEN and ends no session on request",
        );
    };
    let presented = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if !presented.is_some_and(|token| expected.matches(token)) {
        return json_error(
            StatusCode::UNAUTHORIZED,
            "missing or wrong host token; send Authorization: Bearer THINLINE_HOST_TOKEN",
        );
    }
    let outcome = match id.parse::<protocol::SessionId>() {
        Ok(id) => state.registry.end_if_over(&id).await,
        Err(_) => Ok(EndOutcome::NotHere),
    };
    match outcome {
        Ok(EndOutcome::Ended) => {
            tracing::info!(session = %id, "ended on the directory's request");
            StatusCode::NO_CONTENT.into_response()
        }
        Ok(EndOutcome::NotHere) => {
            json_error(StatusCode::NOT_FOUND, "no such session runs on this host")
        }
        Ok(EndOutcome::StillLive) => {
            tracing::warn!(session = %id, "refused to end a session the store says is live here");
            json_error(
                StatusCode::CONFLICT,
                "the store says this session is live on this host: end it through the directory, \
                 which ends it in the store first",
            )
        }
        Err(error) => {
            tracing::warn!(session = %id, %error, "could not confirm a session's end with the store");
            json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "could not confirm the session's end with the store; it ends at its next write",
            )
        }
    }
}

async fn health(State(state): State<AppState>) -> impl IntoResponse {
    let store_failing = state.metrics.degraded();
    let lease = state.standing.lease();
    let drain = state.standing.drain();
    // A host without its lease or its store still serves its live
    // sessions: degraded, not down.
    let status = match drain {
        Some(_) => "draining",
        None if lease == LeaseState::Lapsed || store_failing => "degraded",
        None => "ok",
    };
    axum::Json(serde_json::json!({
        "status": status,
        "host": state.registry.host(),
        "sessions": state.registry.len(),
        "store": match (state.registry.store_kind(), store_failing) {
            (None, _) => "none",
            (Some(_), true) => "unreachable",
            (Some(kind), false) => kind,
        },
        "lease": lease.as_str(),
        "drain": drain.map(store::Drain::as_str),
        "new_sessions": state.standing.takes_new_sessions(),
        "isolation": state.registry.sandbox().isolation().as_str(),
        "limits": state.registry.sandbox().limiter(),
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
///
/// With a store and `lease`, the host keeps its lease in the store for as
/// long as it runs (see `renewal`); `state.standing` should then be
/// `Standing::leased()`. With `tls` the listener speaks HTTPS and WSS
/// (`auth::tls::TlsListener`).
pub async fn run(
    listener: tokio::net::TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    state: AppState,
    lease: Option<LeaseConfig>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    run_with_control(listener, tls, state, lease, None, shutdown).await
}

/// `run`, with a control socket (`control`) through which `host-server
/// drain` starts the same drain the shutdown does, and waits for it.
pub async fn run_with_control(
    listener: tokio::net::TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    state: AppState,
    lease: Option<LeaseConfig>,
    control: Option<tokio::net::UnixListener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let lease = lease.and_then(|config| {
        let store = state.registry.store()?.clone();
        Some((store, config))
    });
    let keeper = lease
        .clone()
        .map(|(store, config)| tokio::spawn(renewal::keep_lease(state.clone(), store, config)));
    // Without a store there is no sign-in to check: the ticket was all.
    let sign_ins = state
        .registry
        .store()
        .map(|store| tokio::spawn(logins::keep_checking(state.logins.clone(), store.clone())));
    // One drain per process, whoever asks first (the signal or the control
    // socket); a second asker waits for the first one's end.
    let drained = Arc::new(ShutdownDrain {
        state: state.clone(),
        lease,
        done: tokio::sync::OnceCell::new(),
    });
    let controller = control.map(|listener| {
        let drained = drained.clone();
        tokio::spawn(control::serve(
            listener,
            state.registry.clone(),
            move || {
                let drained = drained.clone();
                async move { drained.run().await }
            },
        ))
    });
    let shutdown = async move {
        shutdown.await;
        drained.run().await;
    };
    // Connections get the edge's deadlines (auth::serve): a client that
    // trickles its headers or says nothing is cut, not kept forever.
    let options = state.http;
    let streams = files::http::routes(state.clone());
    let app = app(state);
    let served = match tls {
        Some(config) => {
            // The TLS listener sets TCP_NODELAY itself.
            let listener = auth::tls::TlsListener::new(listener, config);
            auth::serve::serve_with_streams(listener, app, streams, options, shutdown).await
        }
        None => {
            // Keystroke echoes are tiny frames: without TCP_NODELAY each
            // waits for the client's delayed ACK (~40 ms on Linux).
            let listener = listener.tap_io(|tcp| {
                let _ = tcp.set_nodelay(true);
            });
            auth::serve::serve_with_streams(listener, app, streams, options, shutdown).await
        }
    };
    for task in keeper.into_iter().chain(sign_ins).chain(controller) {
        task.abort();
    }
    served
}

/// The shutdown drain of one `run`, done once.
struct ShutdownDrain {
    state: AppState,
    lease: Option<(Arc<dyn store::Store>, LeaseConfig)>,
    done: tokio::sync::OnceCell<()>,
}

impl ShutdownDrain {
    async fn run(&self) {
        self.done
            .get_or_init(|| drain(&self.state, self.lease.as_ref()))
            .await;
    }
}

/// This process's shutdown drain: every session moves off this host,
/// persisted, hung up, its client sent on. The drain belongs to this
/// process: the store records it as a shutdown, which the host's next
/// start (under the same id) replaces.
pub async fn drain(state: &AppState, lease: Option<&(Arc<dyn store::Store>, LeaseConfig)>) {
    if !state.standing.begin_shutdown() {
        return;
    }
    tracing::info!(sessions = state.registry.len(), "draining");
    if let Some((store, config)) = lease {
        // Tell the store first, so directories stop placing sessions here
        // and move ours as their clients ask.
        renewal::announce_shutdown(state, store.as_ref(), config).await;
    }
    state
        .registry
        .terminate_all(protocol::CloseCode::GoingAway)
        .await;
    tracing::info!("drained");
}
