//! The server-rendered pages' handlers: the user's sessions and the forms
//! that end one, share one and revoke a share link; the user's recordings
//! and the forms that choose to be recorded and delete one.
//!
//! The top of the directory's layers with `web`: they take a signed-in
//! user (`signin`), act through the same code as the JSON API
//! (`sessions`, `shares`, `recordings`), and answer with `views`. A
//! stranger is sent to `/login` rather than shown a 401, since a person,
//! not a script, follows these.

use axum::extract::rejection::FormRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use directory_api::openapi::{SessionPath, SharePath};
use directory_api::{ErrorAnswer, RecordingPreferenceForm, ShareCreated, ShareForm, ShareState};
use store::SessionRecord;

use crate::edge;
use crate::error::AppError;
use crate::recordings;
use crate::sessions;
use crate::shares;
use crate::signin::SignedIn;
use crate::state::AppState;
use crate::views;

/// The caller's sessions as a page: open, end, share, start a new one, sign out
#[utoipa::path(
    get,
    path = "/sessions",
    security(("loginCookie" = [])),
    responses(
        (status = 200, description = "the sessions page", content_type = "text/html", body = String),
        (status = 303, description = "not signed in: to /login", headers(("Location" = String))),
        (status = 503, description = "the store is unavailable", content(
            (String = "text/html"),
            (ErrorAnswer = "application/json"),
        )),
    )
)]
pub async fn sessions_page(State(state): State<AppState>, signed_in: Option<SignedIn>) -> Response {
    let Some(signed_in) = signed_in else {
        return Redirect::to("/login").into_response();
    };
    let sessions = match state.store.list_sessions(Some(&signed_in.user)).await {
        Ok(sessions) => sessions,
        Err(store_error) => return views::error(store_error.into()),
    };
    let own: Vec<SessionRecord> = sessions
        .into_iter()
        .filter(|s| s.owner == signed_in.user)
        .collect();
    let live = match shares::shares_of(&state, &signed_in.user).await {
        Ok(shares) => shares
            .into_iter()
            .filter(|(_, state)| *state == ShareState::Live)
            .map(|(share, _)| share)
            .collect::<Vec<_>>(),
        Err(app_error) => return views::error(app_error),
    };
    views::page(
        StatusCode::OK,
        views::sessions_list(&signed_in.user, &own, &live),
    )
}

/// The form twin of POST /v1/sessions/{id}/end
///
/// Answers 303 back to `/sessions`.
#[utoipa::path(
    post,
    path = "/sessions/{id}/end",
    params(SessionPath),
    security(("loginCookie" = [])),
    responses(
        (status = 303, description = "ended: back to /sessions; not signed in: to /login", headers(("Location" = String))),
        (status = 400, description = "malformed session id", content_type = "text/html", body = String),
        (status = 403, description = "the Origin is missing or not allowed", content_type = "text/html", body = String),
        (status = 404, description = "the caller has no such session", content_type = "text/html", body = String),
        (status = 503, description = "the store is unavailable", content(
            (String = "text/html"),
            (ErrorAnswer = "application/json"),
        )),
    )
)]
pub async fn end_form(
    State(state): State<AppState>,
    signed_in: Option<SignedIn>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let signed_in = match form_caller(&state, &headers, signed_in) {
        Ok(signed_in) => signed_in,
        Err(refused) => return *refused,
    };
    back_to_sessions(sessions::end_own_session(&state, &signed_in.user, &id).await)
}

/// The form twin of POST /v1/sessions/{id}/shares
///
/// Answers a page showing the new link, `{page origin}/#share=TOKEN`,
/// once (the page is never cached, and no other answer holds the token).
/// The checkbox may_type lets the viewer type.
#[utoipa::path(
    post,
    path = "/sessions/{id}/share",
    params(SessionPath),
    security(("loginCookie" = [])),
    request_body(content = ShareForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 200, description = "the page showing the link, once", content_type = "text/html", body = String),
        (status = 303, description = "not signed in: to /login", headers(("Location" = String))),
        (status = 400, description = "malformed session id or form", content_type = "text/html", body = String),
        (status = 403, description = "the Origin is missing or not allowed", content_type = "text/html", body = String),
        (status = 404, description = "the caller has no such session", content_type = "text/html", body = String),
        (status = 409, description = "the session has ended", content_type = "text/html", body = String),
        (status = 503, description = "the store is unavailable", content(
            (String = "text/html"),
            (ErrorAnswer = "application/json"),
        )),
    )
)]
pub async fn share_form(
    State(state): State<AppState>,
    signed_in: Option<SignedIn>,
    headers: HeaderMap,
    Path(id): Path<String>,
    form: Result<axum::Form<ShareForm>, FormRejection>,
) -> Response {
    let signed_in = match form_caller(&state, &headers, signed_in) {
        Ok(signed_in) => signed_in,
        Err(refused) => return *refused,
    };
    let Ok(axum::Form(form)) = form else {
        return views::error(AppError::BadRequest(
            "the share form was not sent as a form; use the sessions page".to_owned(),
        ));
    };
    // The allowlist passed it, so it is the page's own origin, exactly.
    let Some(origin) = headers
        .get(header::ORIGIN)
        .and_then(|origin| origin.to_str().ok())
    else {
        return views::error(AppError::Internal(
            "an allowed Origin header went missing".to_owned(),
        ));
    };
    match shares::create_share(&state, &signed_in.user, &id, form.may_type.is_some()).await {
        Ok((share, token)) => {
            let link = format!("{origin}/{}", ShareCreated::fragment(token.as_str()));
            views::page(
                StatusCode::OK,
                views::share_created(&link, share.expires_at, share.may_type),
            )
        }
        Err(app_error) => views::error(app_error),
    }
}

/// The form twin of POST /v1/shares/{id}/revoke
///
/// Answers 303 back to `/sessions`.
#[utoipa::path(
    post,
    path = "/shares/{id}/revoke",
    params(SharePath),
    security(("loginCookie" = [])),
    responses(
        (status = 303, description = "revoked: back to /sessions; not signed in: to /login", headers(("Location" = String))),
        (status = 400, description = "malformed share id", content_type = "text/html", body = String),
        (status = 403, description = "the Origin is missing or not allowed", content_type = "text/html", body = String),
        (status = 404, description = "the caller has no such share link", content_type = "text/html", body = String),
        (status = 503, description = "the store is unavailable", content(
            (String = "text/html"),
            (ErrorAnswer = "application/json"),
        )),
    )
)]
pub async fn revoke_form(
    State(state): State<AppState>,
    signed_in: Option<SignedIn>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let signed_in = match form_caller(&state, &headers, signed_in) {
        Ok(signed_in) => signed_in,
        Err(refused) => return *refused,
    };
    back_to_sessions(shares::revoke_share(&state, &signed_in.user, &id).await)
}

/// The caller's recordings as a page: play, export, delete, and whether to record new sessions
#[utoipa::path(
    get,
    path = "/recordings",
    security(("loginCookie" = [])),
    responses(
        (status = 200, description = "the recordings page", content_type = "text/html", body = String),
        (status = 303, description = "not signed in: to /login", headers(("Location" = String))),
        (status = 503, description = "the store is unavailable", content(
            (String = "text/html"),
            (ErrorAnswer = "application/json"),
        )),
    )
)]
pub async fn recordings_page(
    State(state): State<AppState>,
    signed_in: Option<SignedIn>,
) -> Response {
    let Some(signed_in) = signed_in else {
        return Redirect::to("/login").into_response();
    };
    match recordings::recordings_of(&state, &signed_in.user).await {
        Ok(recordings) => views::page(
            StatusCode::OK,
            views::recordings_list(&signed_in.user, &recordings),
        ),
        Err(app_error) => views::error(app_error),
    }
}

/// The form twin of PUT /v1/recordings/preference
///
/// The checkbox record_new_sessions, sent when ticked, turns recording of
/// the caller's new sessions on; unticked, off. Answers 303 back to
/// `/recordings`.
#[utoipa::path(
    post,
    path = "/recordings/preference",
    security(("loginCookie" = [])),
    request_body(content = RecordingPreferenceForm, content_type = "application/x-www-form-urlencoded"),
    responses(
        (status = 303, description = "saved: back to /recordings; not signed in: to /login", headers(("Location" = String))),
        (status = 400, description = "malformed form", content_type = "text/html", body = String),
        (status = 403, description = "the Origin is missing or not allowed", content_type = "text/html", body = String),
        (status = 409, description = "the policy is off or always, so there is no choice to make", content_type = "text/html", body = String),
        (status = 503, description = "the store is unavailable", content(
            (String = "text/html"),
            (ErrorAnswer = "application/json"),
        )),
    )
)]
pub async fn recording_preference_form(
    State(state): State<AppState>,
    signed_in: Option<SignedIn>,
    headers: HeaderMap,
    form: Result<axum::Form<RecordingPreferenceForm>, FormRejection>,
) -> Response {
    let signed_in = match form_caller(&state, &headers, signed_in) {
        Ok(signed_in) => signed_in,
        Err(refused) => return *refused,
    };
    let Ok(axum::Form(form)) = form else {
        return views::error(AppError::BadRequest(
            "the recording form was not sent as a form; use the recordings page".to_owned(),
        ));
    };
    let on = form.record_new_sessions.is_some();
    back_to(
        "/recordings",
        recordings::set_preference(&state, &signed_in.user, on).await,
    )
}

/// The form twin of POST /v1/recordings/{id}/delete
///
/// Answers 303 back to `/recordings`.
#[utoipa::path(
    post,
    path = "/recordings/{id}/delete",
    params(SessionPath),
    security(("loginCookie" = [])),
    responses(
        (status = 303, description = "deleted: back to /recordings; not signed in: to /login", headers(("Location" = String))),
        (status = 400, description = "malformed session id", content_type = "text/html", body = String),
        (status = 403, description = "the Origin is missing or not allowed", content_type = "text/html", body = String),
        (status = 404, description = "the caller has no such recording", content_type = "text/html", body = String),
        (status = 503, description = "the store is unavailable", content(
            (String = "text/html"),
            (ErrorAnswer = "application/json"),
        )),
    )
)]
pub async fn delete_recording_form(
    State(state): State<AppState>,
    signed_in: Option<SignedIn>,
    headers: HeaderMap,
    Path(id): Path<String>,
) -> Response {
    let signed_in = match form_caller(&state, &headers, signed_in) {
        Ok(signed_in) => signed_in,
        Err(refused) => return *refused,
    };
    back_to(
        "/recordings",
        recordings::delete_recording(&state, &signed_in.user, &id).await,
    )
}

/// What every form on the pages checks first: the Origin (as the
/// JSON API does), then a sign-in; otherwise the answer to give instead
/// (a refusal page, or the sign-in page).
fn form_caller(
    state: &AppState,
    headers: &HeaderMap,
    signed_in: Option<SignedIn>,
) -> Result<SignedIn, Box<Response>> {
    if let Err(why) = edge::check_origin(state, headers) {
        return Err(Box::new(views::page(
            StatusCode::FORBIDDEN,
            views::message("Refused", &why),
        )));
    }
    signed_in.ok_or_else(|| Box::new(Redirect::to("/login").into_response()))
}

/// A form's action done: back to the sessions page, or its error's page.
fn back_to_sessions<T>(done: Result<T, AppError>) -> Response {
    back_to("/sessions", done)
}

/// A form's action done: back to the page at `location`, or its error's
/// page.
fn back_to<T>(location: &str, done: Result<T, AppError>) -> Response {
    match done {
        Ok(_) => Redirect::to(location).into_response(),
        Err(app_error) => views::error(app_error),
    }
}
