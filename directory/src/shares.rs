//! Share links over HTTP: an owner makes, lists and revokes them; anyone
//! signed in redeems one for the cookie that lets them watch.
//!
//! The link is `{page origin}/#share=TOKEN`. Its token is 32 random bytes
//! (`auth::share::ShareToken`) that only the answer to making the link
//! carries: the store keeps their sha256, and the fragment is never sent to
//! a server, so no request line, proxy log or `Referer` holds it. The page
//! redeems it in a JSON body (`POST /v1/shares/redeem`) for the cookie
//! `thinline_share_<session id>=TOKEN; HttpOnly; SameSite=Strict;
//! Path=/v1`, which the page's script cannot read and which goes only with
//! the API calls that open the session (`sessions.rs` reads it there). The
//! cookie lasts until the link expires; revoking the link, or the session
//! ending, makes it worthless at once, here and on the hosts, which
//! recheck the share behind every viewer's socket every 2 s.
//!
//! Nothing here logs a token: log lines name the share's public id.

use auth::share::{ShareId, ShareToken};
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use directory_api::openapi::{SessionPath, SharePath};
use directory_api::{
    ErrorAnswer, RedeemRequest, Redeemed, Share, ShareCreated, ShareRequest, ShareState,
};
use store::{Millis, SessionState, ShareRecord, StoreError};

use crate::edge::AllowedOrigin;
use crate::error::{AppError, JsonObject, object_body};
use crate::sessions::{parse_session_id, unknown_session};
use crate::signin::SignedIn;
use crate::state::AppState;
use crate::views::utc_minute;

/// A new share link of one of `user`'s sessions, and its token (which
/// nothing else will ever show again).
pub async fn create_share(
    state: &AppState,
    user: &str,
    session: &str,
    may_type: bool,
) -> Result<(ShareRecord, ShareToken), AppError> {
    let session = parse_session_id(session)?;
    let token = ShareToken::generate();
    let id = ShareId::generate();
    let ttl_ms = u64::try_from(state.config.share_ttl.as_millis()).unwrap_or(u64::MAX);
    let made = state
        .store
        .create_share(
            &id.to_string(),
            &token.hash().to_string(),
            &session.to_string(),
            user,
            may_type,
            ttl_ms,
        )
        .await;
    match made {
        Ok(share) => {
            tracing::info!(share = %share.id, %session, owner = %user, may_type, "made a share link");
            Ok((share, token))
        }
        // Missing or another user's: the same answer as everywhere.
        Err(StoreError::NotFound(_)) => Err(unknown_session(session)),
        Err(StoreError::SessionEnded(_)) => Err(AppError::Conflict(format!(
            "session {session} has ended; only a running session can be shared"
        ))),
        Err(error) => Err(error.into()),
    }
}

/// Whether `share` opens its session at `now` (the store's clock), given
/// whether that session still runs; a revocation is named first, as the
/// owner's own word.
pub fn share_state(share: &ShareRecord, session_running: bool, now: Millis) -> ShareState {
    if share.revoked {
        ShareState::Revoked
    } else if share.expires_at <= now {
        ShareState::Expired
    } else if !session_running {
        ShareState::Ended
    } else {
        ShareState::Live
    }
}

/// Every share link `user` made, newest first, each with its state.
pub async fn shares_of(
    state: &AppState,
    user: &str,
) -> Result<Vec<(ShareRecord, ShareState)>, AppError> {
    let shares = state.store.list_shares(user).await?;
    if shares.is_empty() {
        return Ok(Vec::new());
    }
    let running: std::collections::HashSet<String> = state
        .store
        .list_sessions(Some(user))
        .await?
        .into_iter()
        .filter(|session| session.state == SessionState::Running && session.owner == user)
        .map(|session| session.id)
        .collect();
    let now = state.store.now().await?;
    Ok(shares
        .into_iter()
        .map(|share| {
            let state = share_state(&share, running.contains(&share.session), now);
            (share, state)
        })
        .collect())
}

/// Revokes `user`'s share link `id` for good (again is no error) and
/// returns it as it is now.
pub async fn revoke_share(state: &AppState, user: &str, id: &str) -> Result<Share, AppError> {
    if !directory_api::valid_share_id(id) {
        let shown: String = id.chars().take(40).collect();
        return Err(AppError::BadRequest(format!(
            "invalid share link id {shown:?}: expected 32 lowercase hex digits"
        )));
    }
    let unknown = || {
        AppError::NotFound(format!(
            "you have no share link {id}; GET /v1/shares lists yours"
        ))
    };
    match state.store.revoke_share(user, id).await {
        Ok(()) => {}
        Err(StoreError::NotFound(_)) => return Err(unknown()),
        Err(error) => return Err(error.into()),
    }
    tracing::info!(share = %id, owner = %user, "revoked a share link");
    shares_of(state, user)
        .await?
        .into_iter()
        .find(|(share, _)| share.id == id)
        .map(|(share, state)| share_view(share, state))
        .transpose()?
        .ok_or_else(unknown)
}

/// How the API shows a share: everything but the token's hash.
fn share_view(share: ShareRecord, state: ShareState) -> Result<Share, AppError> {
    let session = share.session.parse().map_err(|_| {
        AppError::Internal(format!(
            "the store holds share {} of the unusable session id {:?}",
            share.id, share.session
        ))
    })?;
    Ok(Share {
        id: share.id,
        session,
        may_type: share.may_type,
        created_at: share.created_at,
        expires_at: share.expires_at,
        state,
    })
}

/// Make a share link of one of the caller's running sessions
///
/// Another signed-in user who opens `{page origin}/#share=TOKEN` (the
/// answer's link_fragment) watches the session live, and types into it if
/// may_type, until the link expires (--share-ttl-hours after now) or the
/// caller revokes it. The token is in this answer only: put it in a link's
/// fragment and nowhere else. Needs an allowed Origin.
#[utoipa::path(
    post,
    path = "/sessions/{id}/shares",
    params(SessionPath),
    security(("loginCookie" = [])),
    request_body = ShareRequest,
    responses(
        (status = 200, description = "OK", body = ShareCreated),
        (status = 400, description = "malformed session id or body", body = ErrorAnswer),
        (status = 401, description = "not signed in; open /login", body = ErrorAnswer),
        (status = 403, description = "the Origin is missing or not allowed", body = ErrorAnswer),
        (status = 404, description = "the caller has no such session", body = ErrorAnswer),
        (status = 409, description = "the session has ended", body = ErrorAnswer),
        (status = 503, description = "the store is unavailable", body = ErrorAnswer),
    )
)]
pub async fn create_json(
    State(state): State<AppState>,
    _origin: AllowedOrigin,
    signed_in: SignedIn,
    Path(id): Path<String>,
    body: Result<Json<JsonObject>, JsonRejection>,
) -> Result<Json<ShareCreated>, AppError> {
    let request: ShareRequest = object_body(body)?;
    let (share, token) = create_share(&state, &signed_in.user, &id, request.may_type).await?;
    Ok(Json(ShareCreated {
        id: share.id,
        link_fragment: ShareCreated::fragment(token.as_str()),
        token: token.as_str().to_owned(),
        expires_at: share.expires_at,
        may_type: share.may_type,
    }))
}

/// The caller's share links, newest first
///
/// Revoked, expired and ended ones too, each with its state; never a
/// token.
#[utoipa::path(
    get,
    path = "/shares",
    security(("loginCookie" = [])),
    responses(
        (status = 200, description = "OK", body = Vec<Share>),
        (status = 401, description = "not signed in; open /login", body = ErrorAnswer),
        (status = 503, description = "the store is unavailable", body = ErrorAnswer),
    )
)]
pub async fn list_json(
    State(state): State<AppState>,
    signed_in: SignedIn,
) -> Result<Json<Vec<Share>>, AppError> {
    let shares = shares_of(&state, &signed_in.user)
        .await?
        .into_iter()
        .map(|(share, state)| share_view(share, state))
        .collect::<Result<_, _>>()?;
    Ok(Json(shares))
}

/// Revoke one of the caller's share links
///
/// For good: the link and the cookies it left stop opening the session at
/// once, and hosts close its viewers within 2 s. Revoking again changes
/// nothing. Needs an allowed Origin.
#[utoipa::path(
    post,
    path = "/shares/{id}/revoke",
    params(SharePath),
    security(("loginCookie" = [])),
    responses(
        (status = 200, description = "OK", body = Share),
        (status = 400, description = "malformed share id", body = ErrorAnswer),
        (status = 401, description = "not signed in; open /login", body = ErrorAnswer),
        (status = 403, description = "the Origin is missing or not allowed", body = ErrorAnswer),
        (status = 404, description = "the caller has no such share link", body = ErrorAnswer),
        (status = 503, description = "the store is unavailable", body = ErrorAnswer),
    )
)]
pub async fn revoke_json(
    State(state): State<AppState>,
    _origin: AllowedOrigin,
    signed_in: SignedIn,
    Path(id): Path<String>,
) -> Result<Json<Share>, AppError> {
    revoke_share(&state, &signed_in.user, &id).await.map(Json)
}

/// Redeem a share link's token for the cookie that opens its session
///
/// The page sends the token from its fragment (#share=TOKEN). If the link
/// is live (not revoked, not expired, its session running) the answer
/// names the session to open with POST /v1/placement and sets the cookie
/// thinline_share_SESSION=TOKEN (HttpOnly; SameSite=Strict; Path=/v1;
/// Max-Age until the link expires; Secure over TLS). Any signed-in user
/// may redeem, the owner included. Needs an allowed Origin.
#[utoipa::path(
    post,
    path = "/shares/redeem",
    security(("loginCookie" = [])),
    request_body = RedeemRequest,
    responses(
        (status = 200, description = "OK; the cookie is set", body = Redeemed, headers(("Set-Cookie" = String))),
        (status = 400, description = "malformed body", body = ErrorAnswer),
        (status = 401, description = "not signed in; open /login", body = ErrorAnswer),
        (status = 403, description = "the Origin is missing or not allowed", body = ErrorAnswer),
        (status = 404, description = "no share link has this token", body = ErrorAnswer),
        (status = 410, description = "the link was revoked, expired, or its session ended", body = ErrorAnswer),
        (status = 503, description = "the store is unavailable", body = ErrorAnswer),
    )
)]
pub async fn redeem(
    State(state): State<AppState>,
    _origin: AllowedOrigin,
    signed_in: SignedIn,
    body: Result<Json<JsonObject>, JsonRejection>,
) -> Result<Response, AppError> {
    let request: RedeemRequest = object_body(body)?;
    let unknown = || {
        AppError::NotFound(
            "this share link is not valid: check that you copied all of it, or ask its owner \
             for a new one"
                .to_owned(),
        )
    };
    let token = ShareToken::parse(request.token.trim()).ok_or_else(unknown)?;
    let share = state
        .store
        .share_by_token(&token.hash().to_string())
        .await?
        .ok_or_else(unknown)?;
    let session = state
        .store
        .get_session(&share.session)
        .await?
        .filter(|session| session.owner == share.owner);
    let now = state.store.now().await?;
    let running = session
        .as_ref()
        .is_some_and(|session| session.state == SessionState::Running);
    match share_state(&share, running, now) {
        ShareState::Live => {}
        ShareState::Revoked => {
            return Err(AppError::Gone(
                "this share link was revoked by its owner; ask them for a new one".to_owned(),
            ));
        }
        ShareState::Expired => {
            return Err(AppError::Gone(format!(
                "this share link expired at {} UTC; ask its owner for a new one",
                utc_minute(share.expires_at)
            )));
        }
        ShareState::Ended => {
            return Err(AppError::Gone(
                "the session this link shared has ended; ask its owner to share a new one"
                    .to_owned(),
            ));
        }
    }
    let id = parse_session_id(&share.session)?;
    tracing::info!(share = %share.id, session = %id, viewer = %signed_in.user, owner = %share.owner, "redeemed a share link");
    let cookie = share_cookie(&id.0, &token, share.expires_at - now, state.config.tls);
    let mut response = Json(Redeemed {
        session: id,
        owner: share.owner,
        may_type: share.may_type,
    })
    .into_response();
    response.headers_mut().append(header::SET_COOKIE, cookie);
    Ok(response)
}

/// The `Set-Cookie` value a redeemed link leaves: the token, for the API
/// calls under `/v1` only, kept as long as the link lives (`left_ms`,
/// rounded up to a whole second).
pub fn share_cookie(
    session: &[u8; 16],
    token: &ShareToken,
    left_ms: Millis,
    tls: bool,
) -> HeaderValue {
    let max_age = left_ms.max(1).saturating_add(999) / 1000;
    let secure = if tls { "; Secure" } else { "" };
    let cookie = format!(
        "{}={}; HttpOnly; SameSite=Strict; Path=/v1; Max-Age={max_age}{secure}",
        auth::share::cookie_name(session),
        token.as_str()
    );
    // Hex and base64url only, so the value is always a valid header.
    HeaderValue::from_str(&cookie)
        .unwrap_or_else(|_| HeaderValue::from_static("thinline_share=; Path=/v1; Max-Age=0"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn share(revoked: bool, expires_at: Millis) -> ShareRecord {
        ShareRecord {
            id: "0123456789abcdef0123456789abcdef".to_owned(),
            token_hash: "ab".repeat(32),
            session: "fedcba9876543210fedcba9876543210".to_owned(),
            owner: "ada".to_owned(),
            may_type: false,
            created_at: 0,
            expires_at,
            revoked,
        }
    }

    #[test]
    fn a_share_is_live_only_unrevoked_unexpired_and_running() {
        assert_eq!(share_state(&share(false, 10), true, 9), ShareState::Live);
        assert_eq!(
            share_state(&share(false, 10), true, 10),
            ShareState::Expired
        );
        assert_eq!(share_state(&share(false, 10), false, 9), ShareState::Ended);
        assert_eq!(
            share_state(&share(true, 10), false, 11),
            ShareState::Revoked
        );
    }

    #[test]
    fn the_cookie_is_http_only_strict_for_the_api_and_lasts_as_the_link() {
        let token = ShareToken::generate();
        let cookie = share_cookie(&[0xab; 16], &token, 3_600_000, false);
        assert_eq!(
            cookie.to_str().unwrap(),
            format!(
                "thinline_share_abababababababababababababababab={}; HttpOnly; SameSite=Strict; \
                 Path=/v1; Max-Age=3600",
                token.as_str()
            )
        );
        let secure = share_cookie(&[0xab; 16], &token, 1, true);
        assert!(
            secure.to_str().unwrap().ends_with("; Max-Age=1; Secure"),
            "{secure:?}"
        );
        assert!(
            share_cookie(&[0xab; 16], &token, 1_001, false)
                .to_str()
                .unwrap()
                .ends_with("; Max-Age=2")
        );
    }
}
