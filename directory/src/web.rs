//! What the directory serves besides the registry and sessions: its health,
//! the list of directory replicas for the browser, and the static page
//! with a Content-Security-Policy that lets it reach the live hosts.
//!
//! The page itself (`/` and `/index.html`), and the recordings' player
//! (`/play`, the built `play.html`), are for signed-in users: anyone else
//! is sent to `/login` (303). Their assets need no login, since the
//! sign-in page uses the stylesheet and none of them holds anything of a
//! user's.
//!
//! The static folder is what `cargo xtask build` writes (`static/dist`):
//! assets under `assets/` have content-hashed names, so they are sent as
//! `immutable` for a year and a new build is a new set of names; anything
//! else (the page, the plain `style.css` of the server-rendered pages) is
//! `no-cache`, and the page carries a strong ETag (a hash of its bytes) so
//! a repeat visit gets a 304. Every file is sent precompressed (`.br`, then
//! `.gz`, written at build time) to a browser that accepts it.
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
        (status = 200, description = "the page", content_type = "text/html", body = String, headers(("ETag" = String))),
        (status = 303, description = "not signed in: to /login", headers(("Location" = String))),
        (status = 304, description = "the copy the browser has is current (If-None-Match named its ETag)", headers(("ETag" = String))),
        (status = 404, description = "this directory serves no page (started without --static-dir)", body = ErrorAnswer),
        (status = 503, description = "the store is unavailable", body = ErrorAnswer),
    )
)]
pub async fn page(
    state: State<AppState>,
    signed_in: Option<SignedIn>,
    request: Request,
) -> Response {
    built_page(state, signed_in, request, BuiltPage::Terminal).await
}

/// The terminal page under its file's name, as `/`
#[utoipa::path(
    get,
    path = "/index.html",
    security(("loginCookie" = [])),
    responses(
        (status = 200, description = "the page", content_type = "text/html", body = String, headers(("ETag" = String))),
        (status = 303, description = "not signed in: to /login", headers(("Location" = String))),
        (status = 304, description = "the copy the browser has is current (If-None-Match named its ETag)", headers(("ETag" = String))),
        (status = 404, description = "this directory serves no page (started without --static-dir)", body = ErrorAnswer),
        (status = 503, description = "the store is unavailable", body = ErrorAnswer),
    )
)]
pub async fn index_html(
    state: State<AppState>,
    signed_in: Option<SignedIn>,
    request: Request,
) -> Response {
    built_page(state, signed_in, request, BuiltPage::Terminal).await
}

/// The recordings' player; ?recording=ID chooses the recording
#[utoipa::path(
    get,
    path = "/play",
    security(("loginCookie" = [])),
    responses(
        (status = 200, description = "the player", content_type = "text/html", body = String, headers(("ETag" = String))),
        (status = 303, description = "not signed in: to /login", headers(("Location" = String))),
        (status = 304, description = "the copy the browser has is current (If-None-Match named its ETag)", headers(("ETag" = String))),
        (status = 404, description = "this directory serves no player (started without --static-dir, or its folder has no play.html)", body = ErrorAnswer),
        (status = 503, description = "the store is unavailable", body = ErrorAnswer),
    )
)]
pub async fn play(
    state: State<AppState>,
    signed_in: Option<SignedIn>,
    request: Request,
) -> Response {
    built_page(state, signed_in, request, BuiltPage::Player).await
}

/// The pages the build writes into the static folder that are served
/// only to signed-in users, with the page's policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum BuiltPage {
    /// `index.html`, at `/`.
    Terminal,
    /// `play.html`, at `/play`.
    Player,
}

impl BuiltPage {
    fn file(self) -> &'static str {
        match self {
            BuiltPage::Terminal => "index.html",
            BuiltPage::Player => "play.html",
        }
    }
}

/// A built page, for a signed-in user; anyone else goes to `/login`.
async fn built_page(
    State(state): State<AppState>,
    signed_in: Option<SignedIn>,
    mut request: Request,
    built: BuiltPage,
) -> Response {
    if signed_in.is_none() {
        return Redirect::to("/login").into_response();
    }
    let Some(dir) = &state.config.static_dir else {
        return not_found().await.into_response();
    };
    let file = dir.join(built.file());
    // A page that cannot be read is the 404 below, without a tag.
    let tag = tokio::fs::read(&file)
        .await
        .ok()
        .map(|bytes| PageTag::of(&bytes));
    let matched = tag
        .as_ref()
        .and_then(|tag| tag.matched_by(request.headers()));
    let mut response = match matched {
        Some(matched) => {
            let mut response = StatusCode::NOT_MODIFIED.into_response();
            if let Ok(value) = HeaderValue::from_str(&matched) {
                response.headers_mut().insert(header::ETAG, value);
            }
            response
        }
        None => {
            // If-None-Match decides alone when a browser sends both
            // (RFC 9110, 13.1.3).
            if request.headers().contains_key(header::IF_NONE_MATCH) {
                request.headers_mut().remove(header::IF_MODIFIED_SINCE);
            }
            let served = ServeFile::new(&file)
                .precompressed_br()
                .precompressed_gzip()
                .oneshot(request)
                .await;
            let mut response = match served {
                Ok(response) => response.into_response(),
                Err(infallible) => match infallible {},
            };
            if response.status() == StatusCode::NOT_FOUND {
                // ServeFile's own 404 has no body; say what is missing,
                // as the document promises.
                return AppError::NotFound(format!(
                    "this directory's static folder has no {}; run `cargo xtask build`",
                    built.file()
                ))
                .into_response();
            }
            if let Some(tag) = &tag {
                let coding = response
                    .headers()
                    .get(header::CONTENT_ENCODING)
                    .and_then(|value| value.to_str().ok())
                    .map(str::to_owned);
                if let Ok(value) = HeaderValue::from_str(&tag.for_coding(coding.as_deref())) {
                    response.headers_mut().insert(header::ETAG, value);
                }
            }
            response
        }
    };
    response
        .headers_mut()
        .insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    let mut response = with_page_policy(&state, response).await;
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// The page's strong entity tags: one per content coding, since a
/// brotli body and a plain one are different bytes (RFC 9110, 8.8.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PageTag {
    /// The first 16 hex digits of the SHA-256 of the page's bytes.
    digest: String,
}

impl PageTag {
    pub fn of(bytes: &[u8]) -> PageTag {
        use sha2::Digest as _;
        let hash = sha2::Sha256::digest(bytes);
        let digest = hash[..8].iter().map(|byte| format!("{byte:02x}")).collect();
        PageTag { digest }
    }

    /// The quoted tag of the page sent with `coding` (`None`: as is).
    pub fn for_coding(&self, coding: Option<&str>) -> String {
        match coding {
            None | Some("identity") => format!("\"{}\"", self.digest),
            Some(coding) => format!("\"{}-{coding}\"", self.digest),
        }
    }

    /// The tag in `If-None-Match` that names this page in any coding: the
    /// browser's copy is current.
    pub fn matched_by(&self, headers: &HeaderMap) -> Option<String> {
        let mine = |tag: &str| {
            let tag = tag.trim();
            // If-None-Match compares weakly: a W/ prefix does not matter.
            let tag = tag.strip_prefix("W/").unwrap_or(tag);
            let name = tag.strip_prefix('"')?.strip_suffix('"')?;
            let (digest, coding) = name.split_once('-').unwrap_or((name, ""));
            (digest == self.digest && matches!(coding, "" | "br" | "gzip")).then(|| tag.to_owned())
        };
        headers
            .get_all(header::IF_NONE_MATCH)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(','))
            .find_map(mine)
    }
}

/// The static folder. `index.html` is only served through [`page`],
/// however its path is spelt, with the page's Content-Security-Policy;
/// everything else here is a subresource, for which a policy means
/// nothing unless it is opened as a document of its own, and then it gets
/// the edge's `default-src 'none'` (scripts in an SVG opened directly do
/// not run). That also keeps 230 bytes of policy off every asset of a
/// first visit.
pub fn static_files(dir: &Path) -> Router {
    let files = ServeDir::new(dir)
        .append_index_html_on_directories(false)
        .precompressed_br()
        .precompressed_gzip();
    Router::new()
        .fallback_service(files)
        .layer(middleware::from_fn(only_assets))
        .layer(middleware::from_fn(asset_caching))
}

/// Where the build puts the content-hashed assets.
const HASHED_ASSETS: &str = "/assets/";

/// Hashed assets are kept a year without asking again: their name changes
/// with their bytes. Anything else must be revalidated, since a stale
/// client next to newer hosts would fail the protocol handshake.
async fn asset_caching(request: Request, next: Next) -> Response {
    let hashed = request.uri().path().starts_with(HASHED_ASSETS);
    let mut response = next.run(request).await;
    let found = response.status().is_success() || response.status() == StatusCode::NOT_MODIFIED;
    let policy = if hashed && found {
        IMMUTABLE
    } else {
        "no-cache"
    };
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(policy));
    // Revalidation goes by the strong ETag; the file's build time says
    // nothing more and would ride on every answer of a first visit, as
    // would an offer of byte ranges nobody takes of files this small.
    headers.remove(header::LAST_MODIFIED);
    headers.remove(header::ACCEPT_RANGES);
    response
}

/// The `Cache-Control` of a content-hashed asset.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// Sends any other spelling of the page (`/%69ndex.html`, `/./index.html`)
/// to `/`, and the player's file to `/play`, where the login is checked.
async fn only_assets(request: Request, next: Next) -> Response {
    let path = request.uri().path().to_ascii_lowercase();
    let named = |file: &str| {
        ["", ".br", ".gz"]
            .iter()
            .any(|suffix| path.ends_with(&format!("/{file}{suffix}")))
    };
    if named("play.html") {
        return Redirect::to("/play").into_response();
    }
    if named("index.html") || path.contains(['%', '\\']) || path.contains("/.") {
        return Redirect::to("/").into_response();
    }
    next.run(request).await
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
    let sources: String = connect.iter().map(|source| format!(" {source}")).collect();
    // Downloads are forms posted to a host (the token in the body, never
    // in a URL), so the hosts' http origins may take the page's forms.
    let forms: String = connect
        .iter()
        .filter(|source| source.starts_with("http://") || source.starts_with("https://"))
        .map(|source| format!(" {source}"))
        .collect();
    format!(
        "default-src 'self'; script-src 'self' 'wasm-unsafe-eval'; style-src 'self'; \
         img-src 'self' data:; connect-src 'self'{sources}; frame-ancestors 'none'; \
         base-uri 'none'; form-action 'self'{forms}; object-src 'none'"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_keeps_the_security_floor() {
        let policy = content_security_policy(&[
            "http://127.0.0.1:8081".to_owned(),
            "ws://127.0.0.1:8081".to_owned(),
        ]);
        assert!(policy.contains("script-src 'self' 'wasm-unsafe-eval';"));
        assert!(policy.contains("connect-src 'self' http://127.0.0.1:8081 ws://127.0.0.1:8081;"));
        assert!(policy.contains("form-action 'self' http://127.0.0.1:8081;"));
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
