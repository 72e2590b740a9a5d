//! What the directory serves besides the registry and sessions: its health,
//! the list of directory replicas for the browser, and the static page
//! with a Content-Security-Policy that lets it reach the live hosts.
//!
//! The page itself (`/` and `/index.html`) is for signed-in users: anyone
//! else is sent to `/login` (303). Its assets (`pkg/`, `style.css`,
//! `loader.js`) need no login, since the sign-in page uses the stylesheet
//! and none of them holds anything of a user's.
//!
//! The page is served by the directory but opens WebSockets to hosts, so
//! the policy's `connect-src` names every live host (its http and ws
//! origins), computed per request from the registry unless an operator
//! configured the list. Host urls are what hosts wrote into the store, so they are
//! reduced to a scheme and a plain authority before they enter the header.

use std::path::Path;

use axum::Json;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::Router;
use directory_api::{
    ClientConfig, Degraded, DegradedStatus, ErrorAnswer, Healthy, HealthyStatus, StoreKind,
};
use tower::ServiceExt as _;
use tower_http::services::{ServeDir, ServeFile};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::error::AppError;
use crate::origins::{host_sources, origin, plain_authority, plain_source};
use crate::signin::SignedIn;
use crate::state::AppState;

/// Liveness and the store's kind
#[utoipa::path(
    get,
    path = "/healthz",
    responses(
        (status = 200, description = "OK", body = Healthy),
        (status = 503, description = "the store is unavailable", body = Degraded),
    )
)]
pub async fn health(State(state): State<AppState>) -> Result<Response, AppError> {
    let name = state.store.kind();
    let store = StoreKind::from_name(name)
        .ok_or_else(|| AppError::Internal(format!("a store of unknown kind {name:?}")))?;
    Ok(match state.store.now().await {
        Ok(_) => Json(Healthy {
            status: HealthyStatus::Ok,
            store,
        })
        .into_response(),
        Err(error) => {
            tracing::warn!(%error, "health check: the store is unavailable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(Degraded {
                    status: DegradedStatus::Degraded,
                    store,
                    error: "the session store is unavailable".to_owned(),
                }),
            )
                .into_response()
        }
    })
}

/// What the browser client needs: every directory replica
#[utoipa::path(
    get,
    path = "/config",
    responses((status = 200, description = "OK", body = ClientConfig))
)]
pub async fn config(State(state): State<AppState>, headers: HeaderMap) -> Json<ClientConfig> {
    let this = state.config.public_url.clone().or_else(|| {
        // Without a configured url, the replica is wherever the client
        // reached it. Only a plain authority is echoed back.
        let host = headers.get(header::HOST)?.to_str().ok()?;
        plain_authority(host).then(|| format!("http://{host}"))
    });
    let directories = this
        .into_iter()
        .chain(state.config.peers.iter().cloned())
        .map(|url| url.trim_end_matches('/').to_owned())
        .collect();
    Json(ClientConfig { directories })
}

/// Unknown paths under `/v1`.
pub async fn api_not_found() -> AppError {
    AppError::NotFound("no such endpoint; GET /v1/openapi.json lists them all".to_owned())
}

/// Unknown paths when no page is served.
pub async fn not_found() -> AppError {
    AppError::NotFound(
        "no such page; this directory serves no static files (see --static-dir)".to_owned(),
    )
}

/// The terminal page; ?session=ID or ?new=1 choose the session
#[utoipa::path(
    get,
    path = "/",
    security(("loginCookie" = [])),
    responses(
        (status = 200, description = "the page", content_type = "text/html", body = String),
        (status = 303, description = "not signed in: to /login", headers(("Location" = String))),
        (status = 404, description = "this directory serves no page (started without --static-dir)", body = ErrorAnswer),
        (status = 503, description = "the store is unavailable", body = ErrorAnswer),
    )
)]
pub async fn page(
    state: State<AppState>,
    signed_in: Option<SignedIn>,
    request: Request,
) -> Response {
    terminal_page(state, signed_in, request).await
}

/// The terminal page under its file's name, as `/`
#[utoipa::path(
    get,
    path = "/index.html",
    security(("loginCookie" = [])),
    responses(
        (status = 200, description = "the page", content_type = "text/html", body = String),
        (status = 303, description = "not signed in: to /login", headers(("Location" = String))),
        (status = 404, description = "this directory serves no page (started without --static-dir)", body = ErrorAnswer),
        (status = 503, description = "the store is unavailable", body = ErrorAnswer),
    )
)]
pub async fn index_html(
    state: State<AppState>,
    signed_in: Option<SignedIn>,
    request: Request,
) -> Response {
    terminal_page(state, signed_in, request).await
}

/// The terminal page, for a signed-in user; anyone else goes to `/login`.
async fn terminal_page(
    State(state): State<AppState>,
    signed_in: Option<SignedIn>,
    request: Request,
) -> Response {
    if signed_in.is_none() {
        return Redirect::to("/login").into_response();
    }
    let Some(dir) = &state.config.static_dir else {
        return not_found().await.into_response();
    };
    let response = match ServeFile::new(dir.join("index.html"))
        .oneshot(request)
        .await
    {
        Ok(response) => response.into_response(),
        Err(infallible) => match infallible {},
    };
    let mut response = with_page_policy(&state, response).await;
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// The static folder, with the page's headers. `index.html` is only served
/// through [`page`], however its path is spelt.
pub fn static_files(dir: &Path, state: AppState) -> Router {
    Router::new()
        .fallback_service(ServeDir::new(dir).append_index_html_on_directories(false))
        .layer(middleware::from_fn(only_assets))
        .layer(middleware::from_fn_with_state(state, page_policy))
        // A stale client next to newer hosts would fail the protocol
        // handshake, so browsers must revalidate.
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CACHE_CONTROL,
            HeaderValue::from_static("no-cache"),
        ))
}

/// Sends any other spelling of the page (`/%69ndex.html`, `/./index.html`)
/// to `/`, where the login is checked.
async fn only_assets(request: Request, next: Next) -> Response {
    let path = request.uri().path().to_ascii_lowercase();
    if path.ends_with("/index.html") || path.contains(['%', '\\']) || path.contains("/.") {
        return Redirect::to("/").into_response();
    }
    next.run(request).await
}

async fn page_policy(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    with_page_policy(&state, response).await
}

async fn with_page_policy(state: &AppState, mut response: Response) -> Response {
    let sources = connect_sources(state).await;
    let policy = content_security_policy(&sources);
    let value = HeaderValue::from_str(&policy).unwrap_or_else(|_| {
        // Every source was checked to be plain ASCII; this is a bug.
        tracing::error!(%policy, "unusable content security policy");
        HeaderValue::from_static(
            "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; object-src 'none'",
        )
    });
    response
        .headers_mut()
        .insert(header::CONTENT_SECURITY_POLICY, value);
    response
}

/// The `connect-src` sources besides `'self'`: the configured list, or
/// every live host's http and ws origins; then the peer directories.
async fn connect_sources(state: &AppState) -> Vec<String> {
    let config = &state.config;
    let mut sources: Vec<String> = Vec::new();
    if config.connect_src.is_empty() {
        let live = async {
            let hosts = state.store.list_hosts().await?;
            let now = state.store.now().await?;
            Ok::<_, store::StoreError>(
                hosts
                    .into_iter()
                    .filter(|host| host.is_live(now))
                    .collect::<Vec<_>>(),
            )
        };
        match live.await {
            Ok(hosts) => {
                for host in hosts {
                    sources.extend(host_sources(&host.url));
                }
            }
            Err(error) => {
                tracing::warn!(%error, "page served without host origins: the store is unavailable");
            }
        }
    } else {
        sources.extend(
            config
                .connect_src
                .iter()
                .filter(|source| plain_source(source))
                .cloned(),
        );
    }
    for peer in &config.peers {
        sources.extend(origin(peer));
    }
    let mut seen = std::collections::HashSet::new();
    sources.retain(|source| seen.insert(source.clone()));
    sources
}

/// The page's Content-Security-Policy, with `connect` added to
/// `connect-src 'self'`.
pub fn content_security_policy(connect: &[String]) -> String {
    let connect: String = connect.iter().map(|source| format!(" {source}")).collect();
    format!(
        "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; \
         img-src 'self' data:; connect-src 'self'{connect}; frame-ancestors 'none'; \
         base-uri 'none'; form-action 'self'; object-src 'none'"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_keeps_the_security_floor() {
        let policy = content_security_policy(&["ws://127.0.0.1:8081".to_owned()]);
        assert!(policy.contains("script-src 'self' 'wasm-unsafe-eval';"));
        assert!(policy.contains("connect-src 'self' ws://127.0.0.1:8081;"));
        assert!(policy.contains("frame-ancestors 'none'"));
        assert!(policy.contains("object-src 'none'"));
        assert_eq!(
            content_security_policy(&[])
                .matches("connect-src 'self';")
                .count(),
            1
        );
    }
}
