//! Sessions over HTTP: placement, unreachable-owner reports, ticket
//! renewals, the list and ending one, each for the signed-in user's own
//! sessions only, except that placement, reports and renewals also open a
//! session another user shared with the caller (below).
//!
//! This is the IO shell around [`FailoverPlan`]: it reads the session, the
//! hosts and the backend's clock, probes the owner when the plan asks, and
//! carries out a move with the store's fenced `take_over`. A takeover that
//! is fenced means another request (here or on another replica) moved the
//! session first; the shell reads again and answers the winner, so clients
//! asking at the same moment all get the same host and the epoch rises by
//! exactly one.
//!
//! Every answer that sends the browser to a host carries a ticket: claims
//! naming the user, the session, the host, the epoch and the login, signed
//! with the directory's key and valid for a minute. The host admits the
//! browser on it alone. An owner's ticket also says whether to record the
//! session, and how much to keep (`Claims::record`: the deployment's
//! `--recording` policy and, under `opt-in`, the owner's choice); a
//! viewer's never does. A session of another user answers exactly like an
//! unknown one (404), so ids cannot be probed for.
//!
//! New sessions get their id here (16 random bytes) and epoch 1; the host
//! that receives the ticket creates the record when the browser attaches.
//! A session therefore exists for this API only once its host started it.
//!
//! # Viewers
//!
//! A share link, once redeemed (`shares.rs`), leaves the cookie
//! `thinline_share_<session id>` holding its token. A caller who does not
//! own a session but sends that cookie, naming a live share of exactly
//! that session (not revoked, not expired by the store's clock, the
//! session running), is answered as its owner would be (the same
//! `resolve`, so a viewer's report moves a session whose host died, and
//! viewers follow failover), with a ticket naming the viewer as `user`,
//! the viewer's login, and the share's grant (`Claims::share`), which the
//! host enforces and rechecks. Anything short of that is the unknown
//! session's 404, so ids still cannot be probed. A viewer never ends a
//! session, nor gets a new one from a share.

use auth::share::{ShareId, ShareToken};
use auth::ticket::{Claims, MAX_LIFETIME_MS, ShareGrant};
use axum::Json;
use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use directory_api::openapi::SessionPath;
use directory_api::{
    EndAnswer, EndedState, ErrorAnswer, Placement, PlacementRequest, RenewalRequest, Session,
    UnreachableAnswer, UnreachableRequest,
};
use protocol::SessionId;
use store::{SessionRecord, SessionState, StoreError};

use crate::edge::AllowedOrigin;
use crate::error::{AppError, JsonObject, object_body};
use crate::failover::{
    Attachment, Decision, FailoverPlan, ProbeOutcome, Target, UnreachableReport, least_loaded,
};
use crate::hosts::check_host_id;
use crate::probe::{end_on_host, probe_owner};
use crate::signin::{SignedIn, cookie_values};
use crate::state::AppState;

/// How many times one request re-reads after losing a takeover race. Each
/// loss means the session moved, so the next read normally answers; more
/// losses in a row mean hosts are dying faster than we can move sessions.
const MOVE_ATTEMPTS: usize = 4;

/// How long a ticket is valid: the longest a host accepts. The client
/// refreshes it before a reconnect when less than 10 s are left.
pub const TICKET_LIFETIME_MS: u64 = MAX_LIFETIME_MS;

/// How the API shows a session record. The store keeps ids as the text
/// `SessionId` writes; one that does not read back is a broken record.
fn session_view(record: SessionRecord) -> Result<Session, AppError> {
    Ok(Session {
        id: stored_id(&record)?,
        owner: record.owner,
        owner_host: record.owner_host,
        epoch: record.epoch,
        state: match record.state {
            SessionState::Running => directory_api::SessionState::Running,
            SessionState::Ended => directory_api::SessionState::Ended,
        },
        title: record.title,
        foreground: record.foreground,
        cwd: record.cwd,
        created_at: record.created_at,
        last_active: record.last_active,
    })
}

/// The id of a record read from the store.
fn stored_id(record: &SessionRecord) -> Result<SessionId, AppError> {
    record.id.parse().map_err(|_| {
        AppError::Internal(format!(
            "the store holds a session with the unusable id {:?}",
            record.id
        ))
    })
}

/// Where to open a session, with a ticket for it
///
/// session named: that session of the caller's; a live owner keeps it, one
/// whose lease expired is moved first. No session and new unset: the
/// caller's most recently active running session (hot desking), else a new
/// one. new: a new session, with an id minted here and epoch 1, on the
/// least-loaded live host that is not draining, unless the caller already
/// runs --max-sessions-per-user sessions. The ticket (Ed25519, valid
/// ticket_expires_in_ms, bound to user, session, host, epoch and login)
/// goes in the WebSocket hello; refresh it by asking again with the
/// session. Needs an allowed Origin.
#[utoipa::path(
    post,
    path = "/placement",
    security(("loginCookie" = [])),
    request_body = PlacementRequest,
    responses(
        (status = 200, description = "OK", body = Placement),
        (status = 400, description = "malformed session id or body, or both session and new", body = ErrorAnswer),
        (status = 401, description = "not signed in; open /login", body = ErrorAnswer),
        (status = 403, description = "the Origin is missing or not allowed", body = ErrorAnswer),
        (status = 404, description = "the caller has no such session, nor a live share of it (another user's answers the same; a new session exists once its host started it)", body = ErrorAnswer),
        (status = 409, description = "the session has ended", body = ErrorAnswer),
        (status = 429, description = "the caller runs the most sessions allowed", body = ErrorAnswer),
        (status = 503, description = "no healthy host, or the store is unavailable", body = ErrorAnswer),
    )
)]
pub async fn placement(
    State(state): State<AppState>,
    _origin: AllowedOrigin,
    signed_in: SignedIn,
    headers: HeaderMap,
    body: Result<Json<JsonObject>, JsonRejection>,
) -> Result<Json<Placement>, AppError> {
    let request: PlacementRequest = object_body(body)?;
    let (record, share) = match (request.session, request.new) {
        (Some(_), true) => {
            return Err(AppError::BadRequest(
                "name a session or ask for a new one, not both".to_owned(),
            ));
        }
        (Some(id), false) => {
            let (record, share) = open_session(&state, &signed_in, &headers, id).await?;
            if record.state == SessionState::Ended {
                return Err(ended(id));
            }
            (Some(record), share)
        }
        // Hot desking and new sessions are the caller's own, whatever
        // shares the browser holds.
        (None, false) => (most_recent_running(&state, &signed_in.user).await?, None),
        (None, true) => (None, None),
    };
    let Some(record) = record else {
        return new_session(&state, &signed_in).await.map(Json);
    };
    let id = stored_id(&record)?;
    let (target, epoch) = resolve(&state, record, Asked::Placement)
        .await?
        .into_target();
    let (ticket, ticket_expires_in_ms) =
        issue_ticket(&state, &signed_in, id, &target.host, epoch, share).await?;
    Ok(Json(Placement {
        session: id,
        host: target.host,
        url: target.url,
        epoch,
        ticket,
        ticket_expires_in_ms,
    }))
}

/// Hot desking: the running session the user touched last, if any.
async fn most_recent_running(
    state: &AppState,
    user: &str,
) -> Result<Option<SessionRecord>, AppError> {
    let sessions = state.store.list_sessions(Some(user)).await?;
    Ok(sessions
        .into_iter()
        .filter(|s| s.state == SessionState::Running && s.owner == user)
        .max_by(|a, b| {
            (a.last_active, a.created_at, &a.id).cmp(&(b.last_active, b.created_at, &b.id))
        }))
}

/// A new session on the least-loaded live host, within the user's cap.
async fn new_session(state: &AppState, signed_in: &SignedIn) -> Result<Placement, AppError> {
    let user = &signed_in.user;
    let running = state
        .store
        .list_sessions(Some(user))
        .await?
        .iter()
        .filter(|s| s.state == SessionState::Running)
        .count();
    // A fast answer for the common case. Two requests at once may both
    // pass here, and tickets not yet used count for nothing; the cap is
    // exact where it matters, in the store: the host claims every new
    // session within the cap the ticket carries (`Store::claim_session`).
    if running >= state.config.max_sessions_per_user {
        return Err(AppError::TooMany(format!(
            "you already run {running} sessions, the most allowed; end one on /sessions"
        )));
    }
    let hosts = state.store.list_hosts().await?;
    let now = state.store.now().await?;
    let host = least_loaded(&hosts, now, None).ok_or(AppError::NoHealthyHost)?;
    let id = mint_session_id()?;
    let (ticket, ticket_expires_in_ms) =
        issue_ticket(state, signed_in, id, &host.id, 1, None).await?;
    tracing::info!(session = %id, %user, host = %host.id, "placed a new session");
    Ok(Placement {
        session: id,
        host: host.id.clone(),
        url: host.url.clone(),
        epoch: 1,
        ticket,
        ticket_expires_in_ms,
    })
}

/// Report that the client cannot reach the session's host
///
/// retry_owner while the owner's lease is live and there is no evidence
/// its process is gone (a probe of its /healthz is refused or answered by
/// another host); moved once the lease expired or the owner is proven
/// gone, or when the session had already moved. Concurrent reports get the
/// same answer; the epoch rises by exactly one per move. Both answers
/// carry a fresh ticket for the host they name. Only the caller's own
/// sessions, or one a live share cookie lets the caller watch; needs an
/// allowed Origin.
#[utoipa::path(
    post,
    path = "/sessions/{id}/unreachable",
    params(SessionPath),
    security(("loginCookie" = [])),
    request_body = UnreachableRequest,
    responses(
        (status = 200, description = "OK", body = UnreachableAnswer),
        (status = 400, description = "malformed session id, host or body", body = ErrorAnswer),
        (status = 401, description = "not signed in; open /login", body = ErrorAnswer),
        (status = 403, description = "the Origin is missing or not allowed", body = ErrorAnswer),
        (status = 404, description = "the caller has no such session, nor a live share of it", body = ErrorAnswer),
        (status = 409, description = "the session has ended", body = ErrorAnswer),
        (status = 503, description = "no healthy host, or the store is unavailable", body = ErrorAnswer),
    )
)]
pub async fn unreachable(
    State(state): State<AppState>,
    _origin: AllowedOrigin,
    signed_in: SignedIn,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Json<JsonObject>, JsonRejection>,
) -> Result<Json<UnreachableAnswer>, AppError> {
    let request: UnreachableRequest = object_body(body)?;
    let id = parse_session_id(&id)?;
    check_host_id(&request.host)?;
    let (record, share) = open_session(&state, &signed_in, &headers, id).await?;
    let report = UnreachableReport {
        host: request.host,
        epoch: request.epoch,
    };
    let answer = match resolve(&state, record, Asked::Unreachable(&report)).await? {
        Resolved::Retry(target, epoch) => {
            let (ticket, ticket_expires_in_ms) =
                issue_ticket(&state, &signed_in, id, &target.host, epoch, share).await?;
            UnreachableAnswer::RetryOwner {
                host: target.host,
                url: target.url,
                epoch,
                retry_after_ms: u64::try_from(state.config.retry_after.as_millis())
                    .unwrap_or(u64::MAX),
                ticket,
                ticket_expires_in_ms,
            }
        }
        Resolved::Current(target, epoch) | Resolved::Moved(target, epoch) => {
            let (ticket, ticket_expires_in_ms) =
                issue_ticket(&state, &signed_in, id, &target.host, epoch, share).await?;
            UnreachableAnswer::Moved {
                host: target.host,
                url: target.url,
                epoch,
                ticket,
                ticket_expires_in_ms,
            }
        }
    };
    Ok(Json(answer))
}

/// A fresh ticket for the host the client is attached to
///
/// For a live page, which renews its ticket in the background so that a
/// reconnect after a drop needs no directory. When host and epoch are the
/// session's current owner and epoch, the answer names that owner whatever
/// its lease says: a working connection is better evidence that it lives,
/// and moving the session would restart its programs. Otherwise (the
/// session moved on, or its owner drains) the answer is a placement's.
/// Only the caller's own sessions, or one a live share cookie lets the
/// caller watch; needs an allowed Origin.
#[utoipa::path(
    post,
    path = "/sessions/{id}/ticket",
    params(SessionPath),
    security(("loginCookie" = [])),
    request_body = RenewalRequest,
    responses(
        (status = 200, description = "OK", body = Placement),
        (status = 400, description = "malformed session id, host or body", body = ErrorAnswer),
        (status = 401, description = "not signed in; open /login", body = ErrorAnswer),
        (status = 403, description = "the Origin is missing or not allowed", body = ErrorAnswer),
        (status = 404, description = "the caller has no such session, nor a live share of it", body = ErrorAnswer),
        (status = 409, description = "the session has ended", body = ErrorAnswer),
        (status = 503, description = "no healthy host, or the store is unavailable", body = ErrorAnswer),
    )
)]
pub async fn renew_ticket(
    State(state): State<AppState>,
    _origin: AllowedOrigin,
    signed_in: SignedIn,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Json<JsonObject>, JsonRejection>,
) -> Result<Json<Placement>, AppError> {
    let request: RenewalRequest = object_body(body)?;
    let id = parse_session_id(&id)?;
    check_host_id(&request.host)?;
    let (record, share) = open_session(&state, &signed_in, &headers, id).await?;
    let attachment = Attachment {
        host: request.host,
        epoch: request.epoch,
    };
    let (target, epoch) = resolve(&state, record, Asked::Renewal(&attachment))
        .await?
        .into_target();
    let (ticket, ticket_expires_in_ms) =
        issue_ticket(&state, &signed_in, id, &target.host, epoch, share).await?;
    Ok(Json(Placement {
        session: id,
        host: target.host,
        url: target.url,
        epoch,
        ticket,
        ticket_expires_in_ms,
    }))
}

/// The caller's sessions, newest first
#[utoipa::path(
    get,
    path = "/sessions",
    security(("loginCookie" = [])),
    responses(
        (status = 200, description = "OK", body = Vec<Session>),
        (status = 401, description = "not signed in; open /login", body = ErrorAnswer),
        (status = 503, description = "the store is unavailable", body = ErrorAnswer),
    )
)]
pub async fn list_sessions(
    State(state): State<AppState>,
    signed_in: SignedIn,
) -> Result<Json<Vec<Session>>, AppError> {
    let sessions = state.store.list_sessions(Some(&signed_in.user)).await?;
    let own = sessions
        .into_iter()
        .filter(|s| s.owner == signed_in.user)
        .map(session_view)
        .collect::<Result<_, _>>()?;
    Ok(Json(own))
}

/// End one of the caller's sessions
///
/// Marks the session ended and raises its epoch (fencing its host), then
/// asks the host to hang up at once (best effort). Ending an ended session
/// changes nothing. Needs an allowed Origin.
#[utoipa::path(
    post,
    path = "/sessions/{id}/end",
    params(SessionPath),
    security(("loginCookie" = [])),
    responses(
        (status = 200, description = "OK", body = EndAnswer),
        (status = 400, description = "malformed session id", body = ErrorAnswer),
        (status = 401, description = "not signed in; open /login", body = ErrorAnswer),
        (status = 403, description = "the Origin is missing or not allowed", body = ErrorAnswer),
        (status = 404, description = "the caller has no such session", body = ErrorAnswer),
        (status = 503, description = "the store is unavailable", body = ErrorAnswer),
    )
)]
pub async fn end_json(
    State(state): State<AppState>,
    _origin: AllowedOrigin,
    signed_in: SignedIn,
    Path(id): Path<String>,
) -> Result<Json<EndAnswer>, AppError> {
    let (session, epoch) = end_own_session(&state, &signed_in.user, &id).await?;
    Ok(Json(EndAnswer {
        session,
        state: EndedState::Ended,
        epoch,
    }))
}

/// Ends one of `user`'s sessions: the store first (state ended, epoch up,
/// which fences its host), then, best effort, the host itself so it hangs
/// up at once instead of at its next write. Ending an ended session is a
/// no-op. Returns the id and the epoch after ending.
pub async fn end_own_session(
    state: &AppState,
    user: &str,
    id: &str,
) -> Result<(SessionId, u64), AppError> {
    let id = parse_session_id(id)?;
    let record = own_session(state, user, id).await?;
    if record.state == SessionState::Ended {
        return Ok((id, record.epoch));
    }
    let epoch = match state.store.end_session(&id.to_string()).await {
        Ok(epoch) => epoch,
        Err(StoreError::NotFound(_)) => return Err(unknown_session(id)),
        Err(error) => return Err(error.into()),
    };
    tracing::info!(session = %id, %user, host = %record.owner_host, epoch, "ended by its user");
    match state.store.get_host(&record.owner_host).await {
        Ok(Some(host)) => {
            let outcome = end_on_host(
                &host.url,
                id,
                state.config.host_token.as_ref(),
                state.config.host_tls.as_ref(),
            )
            .await;
            if let Err(reason) = outcome {
                tracing::info!(session = %id, host = %host.id, %reason, "the host was not told; its next write is fenced");
            }
        }
        Ok(None) => {}
        Err(error) => {
            tracing::info!(session = %id, %error, "the host was not told; its next write is fenced");
        }
    }
    Ok((id, epoch))
}

/// The session `id` if `user` owns it; any other session answers exactly
/// as an unknown one.
async fn own_session(
    state: &AppState,
    user: &str,
    id: SessionId,
) -> Result<SessionRecord, AppError> {
    state
        .store
        .get_session(&id.to_string())
        .await?
        .filter(|record| record.owner == user)
        .ok_or_else(|| unknown_session(id))
}

/// The session `id` as `signed_in` may open it: their own (no grant), or
/// another user's that a live share in the request's cookies lets them
/// watch (with the grant for the ticket). Anything else answers exactly as
/// an unknown session.
async fn open_session(
    state: &AppState,
    signed_in: &SignedIn,
    headers: &HeaderMap,
    id: SessionId,
) -> Result<(SessionRecord, Option<ShareGrant>), AppError> {
    let Some(record) = state.store.get_session(&id.to_string()).await? else {
        return Err(unknown_session(id));
    };
    if record.owner == signed_in.user {
        return Ok((record, None));
    }
    match viewer_grant(state, headers, &record, id).await? {
        Some(grant) => {
            tracing::debug!(session = %id, viewer = %signed_in.user, share = %ShareId(grant.id), "a viewer opens a shared session");
            Ok((record, Some(grant)))
        }
        None => Err(unknown_session(id)),
    }
}

/// The grant of a live share of exactly `record` among the tokens in the
/// request's `thinline_share_<id>` cookies (at most a few are looked at),
/// if there is one: not revoked, not expired by the store's clock, made by
/// the session's owner, and the session running.
async fn viewer_grant(
    state: &AppState,
    headers: &HeaderMap,
    record: &SessionRecord,
    id: SessionId,
) -> Result<Option<ShareGrant>, AppError> {
    if record.state != SessionState::Running {
        return Ok(None);
    }
    let name = auth::share::cookie_name(&id.0);
    let tokens: Vec<ShareToken> = cookie_values(headers, &name)
        .filter_map(ShareToken::parse)
        .take(4)
        .collect();
    if tokens.is_empty() {
        return Ok(None);
    }
    let now = state.store.now().await?;
    for token in tokens {
        let Some(share) = state
            .store
            .share_by_token(&token.hash().to_string())
            .await?
        else {
            continue;
        };
        if share.session != record.id || share.owner != record.owner || !share.is_live(now) {
            continue;
        }
        let share_id: ShareId = share.id.parse().map_err(|_| {
            AppError::Internal(format!(
                "the store holds a share with the unusable id {:?}",
                share.id
            ))
        })?;
        return Ok(Some(ShareGrant {
            id: share_id.0,
            owner: share.owner,
            may_type: share.may_type,
        }));
    }
    Ok(None)
}

/// Signs a ticket for `user` to attach to `session` on `host` at `epoch`
/// (as a viewer, with `share`); returns it with its lifetime.
///
/// An owner's ticket says whether to record the session (`record`: the
/// most bytes to keep) as the deployment's policy and the owner's choice
/// say; a host reads it only when it starts the session. A viewer's never
/// does: recording is the owner's business, not the watcher's.
async fn issue_ticket(
    state: &AppState,
    signed_in: &SignedIn,
    session: SessionId,
    host: &str,
    epoch: u64,
    share: Option<ShareGrant>,
) -> Result<(String, u64), AppError> {
    let record = match share {
        Some(_) => None,
        None => state
            .records_new_sessions(&signed_in.user)
            .await?
            .then_some(state.config.recording.max_bytes),
    };
    let issued_at_ms = auth::ticket::now_ms();
    let claims = Claims {
        user: signed_in.user.clone(),
        session: session.0,
        host: host.to_owned(),
        epoch,
        login: signed_in.login.0,
        max_sessions: state
            .config
            .max_sessions_per_user
            .try_into()
            .unwrap_or(u32::MAX),
        share,
        record,
        issued_at_ms,
        expires_at_ms: issued_at_ms + TICKET_LIFETIME_MS,
    };
    let ticket = state
        .config
        .ticket_signer
        .sign(&claims)
        .map_err(|error| AppError::Internal(format!("signing a ticket: {error}")))?;
    Ok((ticket, TICKET_LIFETIME_MS))
}

/// 16 random bytes: a new session's id.
fn mint_session_id() -> Result<SessionId, AppError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)
        .map_err(|error| AppError::Internal(format!("no randomness for a session id: {error}")))?;
    Ok(SessionId(bytes))
}

fn ended(id: SessionId) -> AppError {
    AppError::Conflict(format!(
        "session {id} has ended and cannot be restored; start a new one with POST /v1/placement {{\"new\": true}}"
    ))
}

/// Where a session is served after a decision.
enum Resolved {
    /// Its current owner, unchanged by this request.
    Current(Target, u64),
    /// Its owner, whom the client should retry.
    Retry(Target, u64),
    /// The host this request moved it to.
    Moved(Target, u64),
}

impl Resolved {
    fn into_target(self) -> (Target, u64) {
        match self {
            Resolved::Current(target, epoch)
            | Resolved::Retry(target, epoch)
            | Resolved::Moved(target, epoch) => (target, epoch),
        }
    }
}

/// Which question about a session the directory is answering.
#[derive(Clone, Copy, Debug)]
enum Asked<'a> {
    /// Where is it? (`/v1/placement`)
    Placement,
    /// Its owner does not answer the client.
    Unreachable(&'a UnreachableReport),
    /// A fresh ticket for the host the client is attached to.
    Renewal(&'a Attachment),
}

/// Decides where a running session is served, moving it if the plan says
/// so. `record` is the first read; later rounds read again.
async fn resolve(
    state: &AppState,
    mut record: SessionRecord,
    asked: Asked<'_>,
) -> Result<Resolved, AppError> {
    for _ in 0..MOVE_ATTEMPTS {
        let hosts = state.store.list_hosts().await?;
        let now = state.store.now().await?;
        let mut plan = FailoverPlan::new(&record, &hosts, now);
        match asked {
            Asked::Placement => {}
            Asked::Unreachable(report) => plan = plan.with_report(report),
            Asked::Renewal(attachment) => plan = plan.with_attachment(attachment),
        }
        let mut decision = plan.decide(&ProbeOutcome::NotProbed);
        if let Decision::Probe { host, url } = &decision {
            let outcome = probe_owner(
                url,
                host,
                state.config.probe_timeout,
                state.config.host_tls.as_ref(),
            )
            .await;
            tracing::info!(session = %record.id, %host, ?outcome, "probed the owner");
            decision = plan.decide(&outcome);
        }
        match decision {
            Decision::Current { owner, epoch } => return Ok(Resolved::Current(owner, epoch)),
            Decision::RetryOwner { owner, epoch } => return Ok(Resolved::Retry(owner, epoch)),
            Decision::Move {
                expected_epoch,
                lost,
                to,
            } => match state
                .store
                .take_over(&record.id, expected_epoch, &to.host)
                .await
            {
                Ok(epoch) => {
                    tracing::info!(session = %record.id, from = %lost, to = %to.host, epoch, "moved");
                    return Ok(Resolved::Moved(to, epoch));
                }
                Err(StoreError::Fenced { .. }) => {
                    tracing::debug!(session = %record.id, "another request moved it first");
                }
                Err(StoreError::NotFound(_)) => return Err(unknown_session(stored_id(&record)?)),
                Err(error) => return Err(error.into()),
            },
            Decision::Ended => return Err(ended(stored_id(&record)?)),
            Decision::NoHealthyHost => return Err(AppError::NoHealthyHost),
            Decision::Probe { .. } => {
                // `decide` never asks again once given an outcome.
                return Err(AppError::Busy(
                    "the directory could not decide; retry shortly".to_owned(),
                ));
            }
        }
        let id = stored_id(&record)?;
        record = state
            .store
            .get_session(&record.id)
            .await?
            .ok_or_else(|| unknown_session(id))?;
    }
    Err(AppError::Busy(format!(
        "session {} keeps changing hands; retry shortly",
        record.id
    )))
}

/// The answer for a session that is missing or not the caller's.
pub fn unknown_session(id: SessionId) -> AppError {
    AppError::NotFound(format!(
        "you have no session {id}; GET /v1/sessions lists yours, POST /v1/placement starts a new one"
    ))
}

/// A session id from a path: 32 hex digits of either case
/// (`SessionId::from_str`, the pattern the document publishes); it is
/// written back in lowercase, as the store keeps it.
pub fn parse_session_id(id: &str) -> Result<SessionId, AppError> {
    id.parse().map_err(|_| {
        AppError::BadRequest(format!("invalid session id {id:?}: expected 32 hex digits"))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minted_ids_are_checked_ids_and_their_text_round_trips() {
        let id = mint_session_id().unwrap();
        assert_eq!(parse_session_id(&id.to_string()).unwrap(), id);
        assert_ne!(mint_session_id().unwrap(), id);
        let text = "0123456789ABCDEF0123456789abcdef";
        assert_eq!(
            parse_session_id(text).unwrap().to_string(),
            text.to_ascii_lowercase()
        );
        assert!(parse_session_id("0g23456789abcdef0123456789abcdef").is_err());
        assert!(parse_session_id("0123").is_err());
        assert!(parse_session_id(&"+a".repeat(16)).is_err());
    }
}
