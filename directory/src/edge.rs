//! What every answer passes through on its way out, and the Origin check
//! on the way in.
//!
//! The sign-in cookie is `SameSite=Strict`, so browsers do not send it on
//! requests other sites start; the Origin check is the second wall, for
//! browsers that get SameSite wrong and for sign-in itself, which has no
//! cookie yet (login CSRF). Every POST a browser makes with the cookie (the
//! forms and the `/v1` session calls) must name an allowed origin exactly:
//! scheme, host and port. `Origin: null` (sandboxed frames, `file:`) and a
//! missing Origin are refused; browsers send one on every POST.

use axum::Router;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, header};
use tower_http::set_header::SetResponseHeaderLayer;

use crate::error::AppError;
use crate::state::AppState;

/// The policy of every answer that is not a page: JSON needs nothing.
pub const API_CONTENT_SECURITY_POLICY: &str = "default-src 'none'; frame-ancestors 'none'";

/// The policy of the sign-in and sessions pages: no script at all, the
/// stylesheet from here, forms posting only here.
pub const FORM_PAGE_POLICY: &str = "default-src 'none'; style-src 'self'; form-action 'self'; \
                                    frame-ancestors 'none'; base-uri 'none'";

/// A year: browsers that saw this over TLS refuse plain http to us.
const STRICT_TRANSPORT_SECURITY: &str = "max-age=31536000";

/// Adds the headers every answer carries. A handler or an inner layer that
/// set a Content-Security-Policy of its own keeps it (the page, the forms);
/// everything else gets the API's, which allows nothing.
pub fn security_headers(router: Router<AppState>, tls: bool) -> Router<AppState> {
    let router = router
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(API_CONTENT_SECURITY_POLICY),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        // Only documents can be framed, open windows or send referrers
        // from links and forms: X-Frame-Options, Cross-Origin-Opener-Policy
        // and Referrer-Policy go on HTML answers (the terminal page, the
        // forms), where they mean something, and stay off the first
        // visit's scripts, styles and wasm (which fetch nothing from
        // another origin). Every answer still says `frame-ancestors
        // 'none'` in its Content-Security-Policy.
        .layer(axum::middleware::from_fn(document_headers));
    if tls {
        router.layer(SetResponseHeaderLayer::overriding(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(STRICT_TRANSPORT_SECURITY),
        ))
    } else {
        router
    }
}

/// X-Frame-Options, Cross-Origin-Opener-Policy and Referrer-Policy on
/// HTML answers.
async fn document_headers(
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> axum::response::Response {
    let mut response = next.run(request).await;
    let html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value.starts_with("text/html"));
    if html {
        let headers = response.headers_mut();
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        // `same-origin`, not `no-referrer`: under `no-referrer` Chromium
        // sends `Origin: null` with same-origin form posts, which the
        // Origin allowlist (rightly) refuses. Other sites still get no
        // referrer.
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        );
        headers.insert(
            header::HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        );
    }
    response
}

/// Whether `headers` carry an allowed `Origin`; the error says why not, in
/// words fit for the person who sees it.
pub fn check_origin(state: &AppState, headers: &HeaderMap) -> Result<(), String> {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return Err(
            "this request has no Origin header, so it is refused; send it from the page in a browser"
                .to_owned(),
        );
    };
    let origin = origin.to_str().unwrap_or("");
    if origin != "null"
        && state
            .allowed_origins
            .iter()
            .any(|allowed| allowed == origin)
    {
        return Ok(());
    }
    let shown: String = origin.chars().take(100).collect();
    Err(format!(
        "requests from origin {shown:?} are refused; open the page from this directory's own address"
    ))
}

/// Extracting this refuses a `/v1` call from an origin that is not allowed
/// with a JSON 403.
#[derive(Debug)]
pub struct AllowedOrigin;

impl FromRequestParts<AppState> for AllowedOrigin {
    type Rejection = AppError;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<AllowedOrigin, AppError> {
        check_origin(state, &parts.headers)
            .map(|()| AllowedOrigin)
            .map_err(AppError::Forbidden)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::DirectoryConfig;

    fn state(config: DirectoryConfig) -> AppState {
        AppState::new(std::sync::Arc::new(store::MemoryStore::new()), config).unwrap()
    }

    fn with_origin(origin: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(origin) = origin {
            headers.insert(header::ORIGIN, HeaderValue::from_str(origin).unwrap());
        }
        headers
    }

    #[test]
    fn only_exact_allowed_origins_pass() {
        let state = state(DirectoryConfig {
            public_url: Some("https://term.example.com/".to_owned()),
            peers: vec!["https://term2.example.com:8443".to_owned()],
            ..DirectoryConfig::default()
        });
        for good in ["https://term.example.com", "https://term2.example.com:8443"] {
            assert!(
                check_origin(&state, &with_origin(Some(good))).is_ok(),
                "{good}"
            );
        }
        for bad in [
            None,
            Some("null"),
            Some("http://term.example.com"),
            Some("https://term.example.com:444"),
            Some("https://term.example.com.evil.com"),
            Some("https://term2.example.com"),
            Some(""),
        ] {
            assert!(check_origin(&state, &with_origin(bad)).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_configured_list_replaces_the_defaults() {
        let state = state(DirectoryConfig {
            public_url: Some("http://127.0.0.1:8080".to_owned()),
            allowed_origins: vec!["https://term.example.com".to_owned()],
            ..DirectoryConfig::default()
        });
        assert!(check_origin(&state, &with_origin(Some("https://term.example.com"))).is_ok());
        assert!(check_origin(&state, &with_origin(Some("http://127.0.0.1:8080"))).is_err());
    }
}
