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
use serde::Serialize;
use tower::ServiceExt as _;
use tower_http::services::{ServeDir, ServeFile};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::AppState;
use crate::error::AppError;
use crate::signin::SignedIn;

/// The policy of every answer that is not the page: JSON needs nothing.
pub const API_CONTENT_SECURITY_POLICY: &str = "default-src 'none'; frame-ancestors 'none'";

#[derive(Debug, Serialize)]
pub struct ClientConfig {
    /// This replica first, then its peers.
    pub directories: Vec<String>,
}

/// `GET /healthz`: ok when the store answers.
pub async fn health(State(state): State<AppState>) -> Response {
    let kind = state.store.kind();
    match state.store.now().await {
        Ok(_) => Json(serde_json::json!({ "status": "ok", "store": kind })).into_response(),
        Err(error) => {
            tracing::warn!(%error, "health check: the store is unavailable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(serde_json::json!({
                    "status": "degraded",
                    "store": kind,
                    "error": "the session store is unavailable",
                })),
            )
                .into_response()
        }
    }
}

/// `GET /v1/config`
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

/// `GET /` and `/index.html`: the terminal page, for a signed-in user.
pub async fn page(
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

/// `scheme://authority` of an http(s) url, or `None` if it is anything
/// else or its authority is not plain.
pub fn origin(url: &str) -> Option<String> {
    let uri: hyper::Uri = url.parse().ok()?;
    let scheme = uri
        .scheme_str()
        .filter(|s| matches!(*s, "http" | "https"))?;
    let authority = uri.authority()?.as_str();
    plain_authority(authority).then(|| format!("{scheme}://{authority}"))
}

/// A host's origin and its WebSocket form (`ws://` for `http://`, `wss://`
/// for `https://`).
pub fn host_sources(url: &str) -> Vec<String> {
    let Some(origin) = origin(url) else {
        return Vec::new();
    };
    let socket = match origin.strip_prefix("https://") {
        Some(rest) => format!("wss://{rest}"),
        None => format!("ws://{}", origin.trim_start_matches("http://")),
    };
    vec![origin, socket]
}

/// Letters, digits, dots, dashes, colons and brackets: enough for names,
/// IPv4, `[IPv6]` and ports; nothing that could end a CSP directive.
fn plain_authority(authority: &str) -> bool {
    !authority.is_empty()
        && authority
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
}

/// An operator's `--connect-src` entry must not break the header.
pub fn plain_source(source: &str) -> bool {
    !source.is_empty()
        && source
            .bytes()
            .all(|b| b.is_ascii_graphic() && !matches!(b, b';' | b',' | b'\'' | b'"'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_become_http_and_ws_origins() {
        assert_eq!(
            host_sources("http://127.0.0.1:8081/"),
            ["http://127.0.0.1:8081", "ws://127.0.0.1:8081"]
        );
        assert_eq!(
            host_sources("https://h1.example.com/terminal"),
            ["https://h1.example.com", "wss://h1.example.com"]
        );
        assert_eq!(
            host_sources("http://[::1]:9000"),
            ["http://[::1]:9000", "ws://[::1]:9000"]
        );
    }

    #[test]
    fn urls_that_could_inject_into_the_policy_are_dropped() {
        for bad in [
            "http://h1;script-src",
            "javascript:alert(1)",
            "http://a b",
            "",
        ] {
            assert!(host_sources(bad).is_empty(), "{bad}");
        }
        assert!(plain_source("https://*.example.com"));
        assert!(!plain_source("'unsafe-inline'"));
        assert!(!plain_source("a; script-src *"));
    }

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
