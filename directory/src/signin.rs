//! Signing in and out, and knowing who is signed in.
//!
//! `POST /login` checks a password against the account's argon2 hash and,
//! on success, creates a login in the store and sets the cookie
//! `thinline_login=<secret>; Path=/; HttpOnly; SameSite=Strict;
//! Max-Age=43200` (plus `Secure` over TLS). The store keeps only the
//! secret's sha256 (the login id), so a leaked database holds no usable
//! cookie. Every replica checks a cookie the same way, against the store,
//! so signing out, an expired login, a changed password or a disabled
//! account take effect everywhere at once.
//!
//! Guessing is slowed three ways: attempts are counted before any hashing
//! ([`LoginLimiter`]); an unknown user costs the same hashing as a known
//! one (`verify_dummy`), and every failure (unknown user, wrong password,
//! disabled account) answers the same "wrong user or password". Hashing
//! runs on the blocking pool so a burst of sign-ins never stalls placement
//! and failover answers.
//!
//! Counting must not let a stranger lock the owner out, so a successful
//! sign-in also sets `thinline_device=<signed user and device id>;
//! Path=/login; HttpOnly; SameSite=Strict; Max-Age=31536000` (plus
//! `Secure` over TLS; see `auth::device`). An attempt that presents one
//! made for the name it tries is counted per address and per device; any
//! other attempt per address, per name at that address and per name for
//! all such attempts together. Guessers without the owner's cookie spend
//! only the lanes the owner's browser skips, so it still gets in from any
//! address but the guessers' own. Path `/login` keeps the cookie off every
//! other request, and signing out leaves it: it says which browser this
//! is, not who is signed in.
//!
//! # Behind an authenticating reverse proxy
//!
//! With `--trusted-proxy ADDR` (repeatable) and `--proxy-user-header NAME`,
//! a request whose TCP peer is one of those addresses and that carries the
//! header is signed in as the user it names, provided that account exists
//! and is enabled: a login is created and its cookie set, as if the person
//! had typed the password, so tickets and hosts work unchanged. The header
//! from any other peer is ignored (anyone can send a header; only the
//! proxy's address is trusted), and so is a request from the proxy without
//! the header, which falls back to the cookie. For such requests the client
//! address used for rate limits is the last `X-Forwarded-For` entry, the
//! one the proxy itself appended. The proxy must strip the header from
//! what clients send, and the directory must not be reachable around it.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use auth::device::{self, DeviceCookie, DeviceId};
use auth::limit::Limit;
use auth::login::{COOKIE_NAME, LoginId, LoginToken};
use auth::password_pool::PoolError;
use axum::Json;
use axum::extract::rejection::FormRejection;
use axum::extract::{ConnectInfo, FromRequestParts, OptionalFromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use directory_api::{ErrorAnswer, LoginForm, Me};

use crate::edge;
use crate::error::AppError;
use crate::state::{AppState, LOGIN_LIFETIME};
use crate::views;

/// The only thing a failed sign-in says.
pub const WRONG_USER_OR_PASSWORD: &str = "wrong user or password";

/// A request from a signed-in user: who, and through which login (tickets
/// carry the login so hosts can tell it was not signed out).
#[derive(Clone, Debug)]
pub struct SignedIn {
    pub user: String,
    pub login: LoginId,
}

/// Handlers behind [`identify`] take this; without a live login they answer
/// 401 `{"error": "not signed in; open /login"}`.
impl FromRequestParts<AppState> for SignedIn {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, _: &AppState) -> Result<SignedIn, AppError> {
        parts
            .extensions
            .get::<SignedIn>()
            .cloned()
            .ok_or(AppError::NotSignedIn)
    }
}

/// Pages take `Option<SignedIn>` and send strangers to `/login`.
impl OptionalFromRequestParts<AppState> for SignedIn {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _: &AppState,
    ) -> Result<Option<SignedIn>, Self::Rejection> {
        Ok(parts.extensions.get::<SignedIn>().cloned())
    }
}

/// The TCP peer's address, when the server recorded it
/// (`into_make_service_with_connect_info`).
#[derive(Clone, Copy, Debug)]
pub struct PeerAddr(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for PeerAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<PeerAddr, Self::Rejection> {
        Ok(PeerAddr(
            parts
                .extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|info| info.0.ip()),
        ))
    }
}

/// Middleware for every route that needs a user: finds the live login
/// (cookie, or a trusted proxy's header) and records it for [`SignedIn`].
/// A login made for a proxy's user sets its cookie on the answer.
pub async fn identify(
    State(state): State<AppState>,
    peer: PeerAddr,
    mut request: Request,
    next: Next,
) -> Response {
    let mut new_cookie = None;
    match who(&state, request.headers(), peer.0).await {
        Ok(Some((signed_in, token))) => {
            new_cookie = token.map(|token| login_cookie(&token, state.config.tls));
            request.extensions_mut().insert(signed_in);
        }
        Ok(None) => {}
        Err(error) => return error.into_response(),
    }
    let mut response = next.run(request).await;
    if let Some(cookie) = new_cookie {
        response.headers_mut().append(header::SET_COOKIE, cookie);
    }
    response
}

/// Who sent `headers`, and the token of a login made just now for a
/// proxy's user.
async fn who(
    state: &AppState,
    headers: &HeaderMap,
    peer: Option<IpAddr>,
) -> Result<Option<(SignedIn, Option<LoginToken>)>, AppError> {
    let from_cookie = async {
        for token in cookie_tokens(headers) {
            let id = token.id();
            if let Some(login) = state.store.get_login(&id.to_string()).await? {
                return Ok::<_, AppError>(Some(SignedIn {
                    user: login.user,
                    login: id,
                }));
            }
        }
        Ok(None)
    };
    let Some(proxy_user) = proxy_user(state, headers, peer) else {
        return Ok(from_cookie.await?.map(|signed_in| (signed_in, None)));
    };
    // The proxy is the authority on who this is; a cookie of another user
    // (someone else signed in earlier on this browser) does not count.
    if let Some(signed_in) = from_cookie.await?
        && signed_in.user == proxy_user
    {
        return Ok(Some((signed_in, None)));
    }
    if !store::valid_user_name(&proxy_user) {
        tracing::warn!(header = %proxy_user.escape_debug(), "the trusted proxy named an invalid user name");
        return Ok(None);
    }
    match state.store.get_account(&proxy_user).await? {
        Some(account) if !account.disabled => {}
        _ => {
            tracing::warn!(user = %proxy_user, "the trusted proxy named no enabled account");
            return Ok(None);
        }
    }
    let token = LoginToken::generate();
    let login = create_login(state, &token, &proxy_user).await?;
    tracing::info!(user = %proxy_user, "signed in by the trusted proxy");
    Ok(Some((
        SignedIn {
            user: proxy_user,
            login,
        },
        Some(token),
    )))
}

/// The user a trusted proxy names, if this request came from one.
fn proxy_user(state: &AppState, headers: &HeaderMap, peer: Option<IpAddr>) -> Option<String> {
    let name = state.config.proxy_user_header.as_ref()?;
    let peer = peer?;
    if !state.config.trusted_proxies.contains(&peer) {
        return None;
    }
    let value = headers.get(name)?.to_str().ok()?.trim();
    (!value.is_empty()).then(|| value.to_owned())
}

/// The address sign-in attempts are counted against: the TCP peer, or for
/// a trusted proxy the last `X-Forwarded-For` entry (the one it added).
pub fn client_address(state: &AppState, headers: &HeaderMap, peer: Option<IpAddr>) -> IpAddr {
    let Some(peer) = peer else {
        // Only when `app()` is driven without connection info: one shared
        // bucket for all such callers.
        return IpAddr::V4(Ipv4Addr::UNSPECIFIED);
    };
    if !state.config.trusted_proxies.contains(&peer) {
        return peer;
    }
    headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .next_back()
        .and_then(|last| last.trim().parse().ok())
        .unwrap_or(peer)
}

/// The values of the request's cookies called `name` (a browser may send
/// several of one name, for different paths or domains).
pub fn cookie_values<'a>(headers: &'a HeaderMap, name: &'a str) -> impl Iterator<Item = &'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .filter(move |(found, _)| *found == name)
        .map(|(_, value)| value.trim())
}

/// The well-formed login tokens among the request's cookies; at most a few
/// are looked at.
fn cookie_tokens(headers: &HeaderMap) -> Vec<LoginToken> {
    cookie_values(headers, COOKIE_NAME)
        .filter_map(LoginToken::parse)
        .take(4)
        .collect()
}

/// The device id of the first device cookie this directory made for
/// `user` that is still valid; at most a few are checked. A cookie that
/// does not check out is simply not a device: the attempt is a stranger's.
fn known_device(
    state: &AppState,
    headers: &HeaderMap,
    user: &str,
    now_ms: u64,
) -> Option<DeviceId> {
    cookie_values(headers, device::COOKIE_NAME)
        .take(4)
        .find_map(|value| state.devices.verify(value, user, now_ms).ok())
}

/// The `Set-Cookie` value that makes this browser a known device.
pub fn device_cookie(cookie: &DeviceCookie, tls: bool) -> HeaderValue {
    let secure = if tls { "; Secure" } else { "" };
    let max_age = device::LIFETIME_MS / 1000;
    let cookie = format!(
        "{}={}; Path=/login; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}",
        device::COOKIE_NAME,
        cookie.as_str()
    );
    // The value is base64url, so this is always a valid header.
    HeaderValue::from_str(&cookie)
        .unwrap_or_else(|_| HeaderValue::from_static("thinline_device=; Path=/login; Max-Age=0"))
}

/// The `Set-Cookie` value for a new login.
pub fn login_cookie(token: &LoginToken, tls: bool) -> HeaderValue {
    cookie_value(token.as_str(), LOGIN_LIFETIME.as_secs(), tls)
}

/// The `Set-Cookie` value that makes the browser forget its login.
pub fn cleared_cookie(tls: bool) -> HeaderValue {
    cookie_value("", 0, tls)
}

fn cookie_value(value: &str, max_age: u64, tls: bool) -> HeaderValue {
    let secure = if tls { "; Secure" } else { "" };
    let cookie = format!(
        "{COOKIE_NAME}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}{secure}"
    );
    // The token is base64url, so the value is always a valid header.
    HeaderValue::from_str(&cookie)
        .unwrap_or_else(|_| HeaderValue::from_static("thinline_login=; Max-Age=0"))
}

async fn create_login(
    state: &AppState,
    token: &LoginToken,
    user: &str,
) -> Result<LoginId, AppError> {
    let id = token.id();
    let ttl_ms = u64::try_from(LOGIN_LIFETIME.as_millis()).unwrap_or(u64::MAX);
    state
        .store
        .create_login(&id.to_string(), user, ttl_ms)
        .await?;
    Ok(id)
}

/// The sign-in page
#[utoipa::path(
    get,
    path = "/login",
    responses((status = 200, description = "a form posting user and password to /login", content_type = "text/html", body = String))
)]
pub async fn login_page() -> Response {
    views::page(StatusCode::OK, views::login(None))
}

/// Sign in
///
/// Success sets the cookie thinline_login (Path=/; HttpOnly; SameSite=Strict; Max-Age=43200; Secure over TLS). Every failure, unknown user and disabled account included, says exactly "wrong user or password". Attempts are limited per user name and per client address. Needs an allowed Origin.
///
/// The answer is 303 to `/` with the cookie, or the form again with why
/// not.
#[utoipa::path(
    post,
    path = "/login",
    request_body(content = LoginForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "signed in: to /", headers(("Location" = String))),
        (status = 400, description = "the form is incomplete", content_type = "text/html", body = String),
        (status = 401, description = "wrong user or password", content_type = "text/html", body = String),
        (status = 403, description = "the Origin is missing or not allowed", content_type = "text/html", body = String),
        (status = 429, description = "too many sign-in attempts; Retry-After says when to try again", content_type = "text/html", body = String),
        (status = 503, description = "every password check thread is busy (Retry-After: 1), or the store is unavailable", content_type = "text/html", body = String),
    )
)]
pub async fn login(
    State(state): State<AppState>,
    peer: PeerAddr,
    headers: HeaderMap,
    form: Result<axum::Form<LoginForm>, FormRejection>,
) -> Response {
    if let Err(why) = edge::check_origin(&state, &headers) {
        tracing::warn!(%why, "refused a sign-in form");
        return views::page(StatusCode::FORBIDDEN, views::message("Refused", &why));
    }
    let Ok(axum::Form(form)) = form else {
        return views::page(
            StatusCode::BAD_REQUEST,
            views::login(Some("fill in both the user and the password")),
        );
    };
    let address = client_address(&state, &headers, peer.0);
    let name = form.user.trim();
    let known_shape = store::valid_user_name(name);
    // An impossible name shares one bucket, so junk names cannot grow the
    // limiter's table.
    let key = if known_shape { name } else { "" };
    let now_ms = auth::ticket::now_ms();
    let device = if known_shape {
        known_device(&state, &headers, name, now_ms)
    } else {
        None
    };
    if let Err(refusal) = state.limiter.check(key, address, device.as_ref()) {
        return rate_limited(refusal, key, address);
    }
    let account = if known_shape {
        match state.store.get_account(name).await {
            Ok(account) => account,
            Err(error) => return views::error(AppError::from(error)),
        }
    } else {
        None
    };
    let password = form.password;
    let checked = state
        .passwords
        .run(move || match account {
            // A disabled account is hashed like any other: its answer must
            // not come faster.
            Some(account) => {
                auth::password::verify(&password, &account.password_hash) && !account.disabled
            }
            None => {
                auth::password::verify_dummy(&password);
                false
            }
        })
        .await;
    match checked {
        Ok(true) => {}
        Ok(false) => {
            tracing::warn!(user = %key, %address, "failed sign-in");
            return views::page(
                StatusCode::UNAUTHORIZED,
                views::login(Some(WRONG_USER_OR_PASSWORD)),
            );
        }
        Err(PoolError::Busy) => {
            tracing::warn!(%address, "sign-in refused: every password thread is busy");
            let mut response = views::page(
                StatusCode::SERVICE_UNAVAILABLE,
                views::login(Some(
                    "the server is busy checking other sign-ins; try again in a second",
                )),
            );
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
            return response;
        }
        Err(error) => {
            return views::error(AppError::Internal(format!("password check: {error}")));
        }
    }
    let token = LoginToken::generate();
    if let Err(error) = create_login(&state, &token, name).await {
        return views::error(error);
    }
    tracing::info!(user = %name, %address, known_device = device.is_some(), "signed in");
    let mut response = Redirect::to("/").into_response();
    let headers = response.headers_mut();
    headers.append(header::SET_COOKIE, login_cookie(&token, state.config.tls));
    // A known device keeps its id (and so its budget); its cookie is
    // renewed for another year.
    let id = device.unwrap_or_else(DeviceId::generate);
    match state.devices.issue(name, id, now_ms) {
        Ok(cookie) => {
            headers.append(header::SET_COOKIE, device_cookie(&cookie, state.config.tls));
        }
        // Only for a name longer than any valid one; signing in still works.
        Err(error) => tracing::warn!(user = %name, %error, "no device cookie"),
    }
    response
}

/// The 429 answer for a refused attempt. The log names the lane and the
/// address (never a cookie or the password), so an operator can tell one
/// noisy address from a spread-out guess at one account.
fn rate_limited(refusal: auth::limit::Refusal, user: &str, address: IpAddr) -> Response {
    let wait = refusal.wait;
    let seconds = (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1);
    tracing::warn!(user = %user, %address, limit = %refusal.limit, seconds, "sign-in rate limited");
    let mut notice = format!("too many sign-in attempts; try again in {seconds} seconds");
    if refusal.limit == Limit::UserUntrusted {
        // Others are guessing this account from many places; its owner
        // need not wait on a browser they have signed in from before.
        notice.push_str(", or from a browser you have signed in from before");
    }
    let mut response = views::page(StatusCode::TOO_MANY_REQUESTS, views::login(Some(&notice)));
    if let Ok(value) = HeaderValue::from_str(&seconds.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

/// Sign out: ends the login everywhere and clears the cookie
///
/// The login ends in the store, so every replica and host sees it at once.
/// The device cookie stays: the browser is still one its user has signed
/// in from.
#[utoipa::path(
    post,
    path = "/logout",
    responses(
        (status = 303, description = "to /login", headers(("Location" = String))),
        (status = 403, description = "the Origin is missing or not allowed", content_type = "text/html", body = String),
        (status = 503, description = "the store is unavailable", content(
            (String = "text/html"),
            (ErrorAnswer = "application/json"),
        )),
    )
)]
pub async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    if let Err(why) = edge::check_origin(&state, &headers) {
        tracing::warn!(%why, "refused a sign-out form");
        return views::page(StatusCode::FORBIDDEN, views::message("Refused", &why));
    }
    for token in cookie_tokens(&headers) {
        if let Err(error) = state.store.end_login(&token.id().to_string()).await {
            return views::error(error.into());
        }
    }
    let mut response = Redirect::to("/login").into_response();
    response
        .headers_mut()
        .append(header::SET_COOKIE, cleared_cookie(state.config.tls));
    response
}

/// Who is signed in
#[utoipa::path(
    get,
    path = "/me",
    security(("loginCookie" = [])),
    responses(
        (status = 200, description = "OK", body = Me),
        (status = 401, description = "not signed in; open /login", body = ErrorAnswer),
        (status = 503, description = "the store is unavailable", body = ErrorAnswer),
    )
)]
pub async fn me(signed_in: SignedIn) -> Json<Me> {
    Json(Me {
        user: signed_in.user,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cookies_carry_every_flag() {
        let token = LoginToken::generate();
        let plain = login_cookie(&token, false);
        assert_eq!(
            plain.to_str().unwrap(),
            format!(
                "thinline_login={}; Path=/; HttpOnly; SameSite=Strict; Max-Age=43200",
                token.as_str()
            )
        );
        assert!(
            login_cookie(&token, true)
                .to_str()
                .unwrap()
                .ends_with("; Secure")
        );
        assert_eq!(
            cleared_cookie(false).to_str().unwrap(),
            "thinline_login=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0"
        );
    }

    #[test]
    fn device_cookies_are_for_the_login_form_only_and_last_a_year() {
        let key =
            auth::device::DeviceKey::from_ticket_signer(&auth::ticket::TicketSigner::generate());
        let cookie = key.issue("ada", DeviceId::generate(), 0).unwrap();
        assert_eq!(
            device_cookie(&cookie, false).to_str().unwrap(),
            format!(
                "thinline_device={}; Path=/login; HttpOnly; SameSite=Strict; Max-Age=31536000",
                cookie.as_str()
            )
        );
        assert!(
            device_cookie(&cookie, true)
                .to_str()
                .unwrap()
                .ends_with("; Max-Age=31536000; Secure")
        );
    }

    #[test]
    fn login_tokens_are_found_among_other_cookies() {
        let token = LoginToken::generate();
        let mut headers = HeaderMap::new();
        headers.append(
            header::COOKIE,
            HeaderValue::from_str(&format!(
                "a=b; thinline_login=junk; thinline_login={}",
                token.as_str()
            ))
            .unwrap(),
        );
        let found = cookie_tokens(&headers);
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].id(), token.id());
    }
}
