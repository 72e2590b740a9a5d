//! The directory: accounts and sign-in, host registry, session placement,
//! failover decisions and drain, as an HTTP JSON API under `/v1`, plus the
//! browser page, the recordings' player, the sign-in page and the sessions
//! and recordings pages.
//!
//! It keeps no state of its own: hosts renew leases into the shared store,
//! sessions and logins live there, and every decision is read from and
//! written to the store with the backend's clock and the session's epoch.
//! So any number of replicas may run side by side (DESIGN.md promise 5),
//! and two replicas answering the same failover at once agree, because only
//! one fenced `take_over` can win. The only per-process state is the
//! sign-in rate limiter, which is a best-effort defence and need not agree
//! across replicas.
//!
//! A person signs in with a password ([`signin`]); the cookie names a login
//! in the store. Every answer that sends a browser to a host carries a
//! ticket signed with the directory's Ed25519 key and bound to user,
//! session, host, epoch and login, which the host verifies with the public
//! key ([`sessions`]). An owner's share link ([`shares`]) lets another
//! signed-in user watch a session with tickets of their own. Owners list,
//! play, export and delete their sessions' recordings ([`recordings`]),
//! which hosts write when the owner's ticket tells them to. The failover
//! decision itself is sans IO in [`failover`]; `sessions.rs` and
//! `hosts.rs` are the thin HTTP shell around it and the store.
//!
//! Every JSON shape is a type of the `directory_api` crate, which the
//! browser client and the tests share; `/v1/openapi.json` is generated
//! from those types and from the routes below ([`openapi`]). The modules
//! are layers, each naming only those below it (`layering.rs` checks);
//! this file assembles the router on top of them.

use std::sync::Arc;

use axum::http::{HeaderValue, Method, header};
use axum::{Extension, Router, middleware};
use tower_http::cors::{AllowOrigin, CorsLayer};
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

pub mod accounts;
pub mod edge;
pub mod error;
pub mod failover;
pub mod hosts;
pub mod identities;
pub mod openapi;
pub mod origins;
pub mod pages;
pub mod probe;
pub mod recordings;
pub mod sessions;
pub mod settings;
pub mod shares;
pub mod signin;
pub mod state;
pub mod views;
pub mod web;

#[cfg(test)]
mod layering;

pub use error::AppError;
pub use signin::SignedIn;
pub use state::{
    AppState, DirectoryConfig, HostToken, LOGIN_LIFETIME, PASSWORD_QUEUE, PASSWORD_THREADS,
    RecordingConfig,
};

/// The whole HTTP API and the pages, ready to serve or to call in tests.
pub fn app(state: AppState) -> Router {
    let (router, document) = routes(&state).split_for_parts();
    let router = match &state.config.static_dir {
        Some(dir) => router.fallback_service(web::static_files(dir)),
        None => router.fallback(web::not_found),
    };
    let router = router.layer(Extension(openapi::ApiDocument::new(document)));
    edge::security_headers(router, state.config.tls).with_state(state)
}

/// Every route, each registered with its OpenAPI description (`routes!`
/// reads the handler's `#[utoipa::path]`): nothing is routed that the
/// document does not list. Plain `.route` calls have no place here.
fn routes(state: &AppState) -> OpenApiRouter<AppState> {
    // What a signed-in user calls; `signin::identify` finds who that is.
    let user_api = OpenApiRouter::new()
        .routes(routes!(signin::me))
        .routes(routes!(sessions::placement))
        .routes(routes!(sessions::list_sessions))
        .routes(routes!(sessions::unreachable))
        .routes(routes!(sessions::renew_ticket))
        .routes(routes!(sessions::end_json))
        .routes(routes!(shares::create_json))
        .routes(routes!(shares::list_json))
        .routes(routes!(shares::revoke_json))
        .routes(routes!(shares::redeem))
        .routes(routes!(settings::get_settings, settings::put_settings))
        .routes(routes!(recordings::list_json))
        .routes(routes!(recordings::put_preference))
        .routes(routes!(recordings::detail_json))
        .routes(routes!(recordings::frames))
        .routes(routes!(recordings::export))
        .routes(routes!(recordings::delete_json))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            signin::identify,
        ));
    let api = OpenApiRouter::new()
        .routes(routes!(hosts::list_hosts))
        .routes(routes!(hosts::drain, hosts::undrain))
        .routes(routes!(web::config))
        .routes(routes!(openapi::document))
        .merge(user_api)
        .fallback(web::api_not_found)
        .layer(cors(state));
    let user_pages = OpenApiRouter::new()
        .routes(routes!(web::page))
        .routes(routes!(web::index_html))
        .routes(routes!(pages::sessions_page))
        .routes(routes!(pages::end_form))
        .routes(routes!(pages::share_form))
        .routes(routes!(pages::revoke_form))
        .routes(routes!(pages::recordings_page))
        .routes(routes!(pages::recording_preference_form))
        .routes(routes!(pages::delete_recording_form))
        .routes(routes!(web::play))
        .routes(routes!(signin::logout))
        .route_layer(middleware::from_fn_with_state(
            state.clone(),
            signin::identify,
        ));
    OpenApiRouter::with_openapi(openapi::ApiFrame::openapi())
        .nest("/v1", api)
        .routes(routes!(web::health))
        .routes(routes!(signin::login_page, signin::login))
        .merge(user_pages)
}

/// The page a peer replica served may call this one (the client learns
/// every replica from `/v1/config`), so allowed origins may make requests,
/// with the sign-in cookie.
fn cors(state: &AppState) -> CorsLayer {
    let origins: Vec<HeaderValue> = state
        .allowed_origins
        .iter()
        .filter_map(|origin| HeaderValue::from_str(origin).ok())
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([Method::GET, Method::POST, Method::PUT])
        .allow_headers([header::CONTENT_TYPE])
        .allow_credentials(true)
}

/// Serves `app(state)` on an already-bound listener until `shutdown`
/// completes, then lets requests in flight finish. Meanwhile it deletes
/// recordings past the retention (`recordings::keep_retention`). With `tls`, every
/// connection is a TLS one (HTTPS and WSS); handshakes run in their own
/// tasks so a slow client never blocks the others. Handlers learn each
/// peer's address (`ConnectInfo<SocketAddr>`) for rate limits and the
/// trusted-proxy check.
pub async fn run(
    listener: tokio::net::TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    state: AppState,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    // Connections get the edge's deadlines (auth::serve): a client that
    // trickles its headers or says nothing is cut, not kept forever.
    let options = state.config.http;
    // Recordings past the retention are deleted while this replica
    // serves, and no longer: dropping this future stops the sweep too.
    let _sweeper = AbortOnDrop(tokio::spawn(recordings::keep_retention(
        state.store.clone(),
        state.config.recording.retention,
    )));
    let app = app(state);
    match tls {
        Some(config) => {
            let listener = auth::tls::TlsListener::new(listener, config);
            auth::serve::serve_with(listener, app, options, shutdown).await
        }
        None => {
            // Answers are small and a failover waits on them: no Nagle delay.
            let listener = axum::serve::ListenerExt::tap_io(listener, |tcp| {
                let _ = tcp.set_nodelay(true);
            });
            auth::serve::serve_with(listener, app, options, shutdown).await
        }
    }
}

/// A background task that ends with its owner.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
